//! `serve --cluster cluster.toml`: the node's place in a cluster.
//!
//! ```toml
//! node = "n1"                          # this node's id, unique in the cluster
//! nodes = ["n1", "n2", "n3"]           # every node: who tries first for a tenant
//! advertise = "10.0.0.11:9441"         # where this node's API is reached (cluster status)
//! etcd = ["http://10.0.0.21:2379", "http://10.0.0.22:2379", "http://10.0.0.23:2379"]
//! postgres = "host=10.0.0.31,10.0.0.32 port=5432 user=throughline dbname=throughline target_session_attrs=read-write"
//! tenant_domain = "clinics.example"    # a tenant is served only under <name>.<tenant_domain>
//! lease_ttl = "2s"
//! snapshot_every = "5m"
//! append_timeout = "60s"               # how long a commit waits for the log before it is refused
//!
//! [haproxy]
//! runtime = ["/run/haproxy/admin.sock"] # HAProxy's runtime API (a unix socket, or host:port)
//! map = "/etc/haproxy/tenants.map"
//! backend = "be_n1"                    # this node's backend in HAProxy
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    node: String,
    nodes: Vec<String>,
    advertise: String,
    etcd: Vec<String>,
    postgres: String,
    tenant_domain: String,
    lease_ttl: Option<String>,
    snapshot_every: Option<String>,
    append_timeout: Option<String>,
    haproxy: Option<RawHaproxy>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHaproxy {
    runtime: Vec<String>,
    map: String,
    backend: String,
}

/// HAProxy's runtime API, for the tenant → node map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaproxyConfig {
    pub runtime: Vec<String>,
    pub map: PathBuf,
    pub backend: String,
}

/// A node's cluster settings, checked.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub node: String,
    pub nodes: Vec<String>,
    pub advertise: String,
    pub etcd: Vec<String>,
    /// libpq-style; holds a password only if the file does (keep it 0600).
    pub postgres: String,
    pub tenant_domain: String,
    pub lease_ttl: Duration,
    pub snapshot_every: Duration,
    pub append_timeout: Duration,
    pub haproxy: Option<HaproxyConfig>,
}

/// Why the cluster file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterConfigError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

fn duration(path: &Path, key: &str, v: Option<String>, default: Duration) -> Result<Duration, ClusterConfigError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(&s).map_err(|_| ClusterConfigError::Invalid {
            path: path.to_owned(),
            reason: format!("{key}: expected a duration such as \"2s\" or \"5m\""),
        }),
    }
}

impl ClusterConfig {
    pub fn load(path: &Path) -> Result<Self, ClusterConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ClusterConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ClusterConfigError> {
        let invalid = |reason: String| ClusterConfigError::Invalid { path: path.to_owned(), reason };
        // toml's message names the key and the line; it never echoes a value's secret part beyond the line.
        let raw: Raw = toml::from_str(text).map_err(|e| invalid(e.message().to_owned()))?;
        let id_ok =
            |s: &str| !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !id_ok(&raw.node) {
            return Err(invalid("node: letters, digits and '-', at most 32".into()));
        }
        if !raw.nodes.contains(&raw.node) || !raw.nodes.iter().all(|n| id_ok(n)) {
            return Err(invalid("nodes: must list every node's id, this node's among them".into()));
        }
        if raw.etcd.is_empty() {
            return Err(invalid("etcd: at least one endpoint".into()));
        }
        if raw.tenant_domain.is_empty() || raw.tenant_domain.starts_with('.') {
            return Err(invalid("tenant_domain: a DNS name such as \"clinics.example\"".into()));
        }
        let lease_ttl = duration(path, "lease_ttl", raw.lease_ttl, Duration::from_secs(2))?;
        if lease_ttl < Duration::from_secs(2) {
            return Err(invalid("lease_ttl: at least 2s (etcd's minimum with its default timing)".into()));
        }
        Ok(ClusterConfig {
            node: raw.node,
            nodes: raw.nodes,
            advertise: raw.advertise,
            etcd: raw.etcd,
            postgres: raw.postgres,
            tenant_domain: raw.tenant_domain.to_ascii_lowercase(),
            lease_ttl,
            snapshot_every: duration(path, "snapshot_every", raw.snapshot_every, Duration::from_secs(300))?,
            append_timeout: duration(path, "append_timeout", raw.append_timeout, Duration::from_secs(60))?,
            haproxy: raw.haproxy.map(|h| HaproxyConfig { runtime: h.runtime, map: h.map.into(), backend: h.backend }),
        })
    }

    /// The tenant's hostname: the SNI a client must send for it.
    pub fn hostname(&self, tenant_name: &str) -> String {
        format!("{}.{}", tenant_name.to_ascii_lowercase(), self.tenant_domain)
    }

    /// This node's rank for `tenant` (0 tries first): rendezvous hashing
    /// over the listed nodes, so every node computes the same order.
    pub fn rank(&self, tenant: &str) -> usize {
        let score = |n: &str| {
            use sha2::Digest as _;
            let d = sha2::Sha256::digest(format!("{n}/{tenant}").as_bytes());
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[..8]);
            u64::from_be_bytes(b)
        };
        let mine = score(&self.node);
        self.nodes.iter().filter(|n| score(n) > mine).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
node = "n1"
nodes = ["n1", "n2", "n3"]
advertise = "127.0.0.1:9441"
etcd = ["http://127.0.0.1:2379"]
postgres = "host=127.0.0.1 user=tl dbname=tl"
tenant_domain = "Clinics.Test"
lease_ttl = "3s"
[haproxy]
runtime = ["/run/h.sock"]
map = "/etc/haproxy/t.map"
backend = "be_n1"
"#;

    #[test]
    fn a_cluster_file_parses_and_ranks_every_tenant_once_per_node() {
        let c = ClusterConfig::parse(Path::new("c.toml"), GOOD).unwrap();
        assert_eq!(c.lease_ttl, Duration::from_secs(3));
        assert_eq!(c.hostname("Sunrise"), "sunrise.clinics.test");
        let mut ranks: Vec<usize> =
            ["n1", "n2", "n3"].iter().map(|n| ClusterConfig { node: (*n).into(), ..c.clone() }.rank("ten_x")).collect();
        ranks.sort();
        assert_eq!(ranks, vec![0, 1, 2]);
    }

    #[test]
    fn bad_cluster_files_say_what_is_wrong() {
        for (text, want) in [
            (GOOD.replace("lease_ttl = \"3s\"", "lease_ttl = \"1s\""), "lease_ttl"),
            (GOOD.replace("nodes = [\"n1\", \"n2\", \"n3\"]", "nodes = [\"n2\"]"), "nodes"),
            (GOOD.replace("node = \"n1\"", "node = \"n 1\""), "node"),
            (format!("{GOOD}\nsurprise = 1\n"), "surprise"),
        ] {
            let e = ClusterConfig::parse(Path::new("c.toml"), &text).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
