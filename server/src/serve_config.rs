//! The installation's configuration file (`/etc/throughline/throughline.toml`,
//! `THROUGHLINE_CONFIG`, `--config FILE`; `throughline config check FILE`):
//! where the data directory is and where the passphrase comes from, which
//! every command reads, and every `serve` option; TOML, checked whole, with
//! one line per problem naming the key; flags given on the command line win.
//!
//! ```toml
//! data_dir = "/var/lib/throughline"
//! passphrase_file = "/run/throughline/passphrase"
//! listen = "0.0.0.0:8443"
//! server_names = ["throughline.sunrise.example"]
//! console_listen = "10.0.0.5:9443"
//! metrics_listen = "127.0.0.1:9464"
//! console_cert = "/etc/throughline/console.crt"
//! console_key = "/etc/throughline/console.key"
//! console_trusted_proxies = ["10.0.0.2"]
//! client_timeout_secs = 5
//! body_limit = 262144
//! group_commit = true
//! prewarm = false
//! writers = 4
//! store_memory_mib = 384
//! checkpoint_interval = "1h"
//! backup_dir = "/var/backups/throughline"
//! backup_every = "24h"
//! backup_keep = 14
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The file's settings; `None` where the file says nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServeConfig {
    /// Where the keyring and the stores live (every command).
    pub data_dir: Option<PathBuf>,
    /// A file whose first line is the passphrase (every command); without
    /// it: the systemd credential, `THROUGHLINE_PASSPHRASE`, or a prompt.
    pub passphrase_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub server_names: Vec<String>,
    pub console_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub console_cert: Option<PathBuf>,
    pub console_key: Option<PathBuf>,
    /// Reverse proxies in front of the console (their X-Forwarded-For is believed).
    pub console_trusted_proxies: Vec<std::net::IpAddr>,
    pub client_timeout_secs: Option<u64>,
    pub body_limit: Option<usize>,
    pub group_commit: Option<bool>,
    pub prewarm: Option<bool>,
    pub writers: Option<usize>,
    pub store_memory_mib: Option<u64>,
    pub checkpoint_interval: Option<Duration>,
    pub backup_dir: Option<PathBuf>,
    pub backup_every: Option<Duration>,
    pub backup_keep: Option<usize>,
}

/// Every problem found, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

fn int(key: &str, v: &toml::Value, min: i64, max: i64, errors: &mut Vec<String>) -> Option<i64> {
    match v.as_integer() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errors.push(format!("{key}: expected a whole number from {min} to {max}"));
            None
        }
    }
}

fn addr(key: &str, v: &toml::Value, errors: &mut Vec<String>) -> Option<SocketAddr> {
    match v.as_str().and_then(|s| s.parse().ok()) {
        Some(a) => Some(a),
        None => {
            errors.push(format!("{key}: expected an address and port such as \"127.0.0.1:8443\""));
            None
        }
    }
}

fn path(key: &str, v: &toml::Value, errors: &mut Vec<String>) -> Option<PathBuf> {
    match v.as_str().filter(|s| !s.is_empty()) {
        Some(s) => Some(PathBuf::from(s)),
        None => {
            errors.push(format!("{key}: expected a file path"));
            None
        }
    }
}

/// Parses and checks the whole file.
pub fn parse(text: &str) -> Result<ServeConfig, ConfigErrors> {
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| ConfigErrors(vec![format!("not TOML: {}", e.message())]))?;
    let mut c = ServeConfig::default();
    let mut errors = Vec::new();
    for (key, v) in &table {
        let k = key.as_str();
        match k {
            "data_dir" => c.data_dir = path(k, v, &mut errors),
            "passphrase_file" => c.passphrase_file = path(k, v, &mut errors),
            "listen" => c.listen = addr(k, v, &mut errors),
            "console_listen" => c.console_listen = addr(k, v, &mut errors),
            "metrics_listen" => c.metrics_listen = addr(k, v, &mut errors),
            "console_cert" => c.console_cert = path(k, v, &mut errors),
            "console_key" => c.console_key = path(k, v, &mut errors),
            "console_trusted_proxies" => match v
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().and_then(|s| s.parse().ok())).collect::<Option<Vec<_>>>())
            {
                Some(Some(ips)) => c.console_trusted_proxies = ips,
                _ => errors
                    .push("console_trusted_proxies: expected a list of IP addresses, such as [\"10.0.0.2\"]".into()),
            },
            "server_names" => match v
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            {
                Some(Some(names)) => c.server_names = names,
                _ => errors
                    .push("server_names: expected a list of names, such as [\"throughline.clinic.example\"]".into()),
            },
            "client_timeout_secs" => c.client_timeout_secs = int(k, v, 1, 300, &mut errors).map(|n| n as u64),
            "body_limit" => c.body_limit = int(k, v, 1_024, 64 * 1024 * 1024, &mut errors).map(|n| n as usize),
            "writers" => c.writers = int(k, v, 1, 256, &mut errors).map(|n| n as usize),
            "store_memory_mib" => c.store_memory_mib = int(k, v, 16, 1 << 20, &mut errors).map(|n| n as u64),
            "group_commit" => match v.as_bool() {
                Some(b) => c.group_commit = Some(b),
                None => errors.push("group_commit: expected true or false".into()),
            },
            "prewarm" => match v.as_bool() {
                Some(b) => c.prewarm = Some(b),
                None => errors.push("prewarm: expected true or false".into()),
            },
            "checkpoint_interval" => match v.as_str().and_then(|s| humantime::parse_duration(s).ok()) {
                Some(d) => c.checkpoint_interval = Some(d),
                None => errors
                    .push("checkpoint_interval: expected a duration such as \"1h\" or \"30m\" (\"0s\": never)".into()),
            },
            "backup_dir" => c.backup_dir = path(k, v, &mut errors),
            "backup_every" => match v.as_str().and_then(|s| humantime::parse_duration(s).ok()).filter(|d| !d.is_zero())
            {
                Some(d) => c.backup_every = Some(d),
                None => errors.push("backup_every: expected a duration such as \"24h\" or \"6h\"".into()),
            },
            "backup_keep" => c.backup_keep = int(k, v, 1, 10_000, &mut errors).map(|n| n as usize),
            other => errors.push(format!("{other}: not a setting of throughline.toml")),
        }
    }
    if c.console_cert.is_some() != c.console_key.is_some() {
        errors.push("console_cert and console_key: give both or neither".into());
    }
    if c.console_cert.is_some() && c.console_listen.is_none() {
        errors.push("console_cert: needs console_listen".into());
    }
    if (c.backup_every.is_some() || c.backup_keep.is_some()) && c.backup_dir.is_none() {
        errors.push("backup_every and backup_keep: need backup_dir".into());
    }
    errors.sort();
    if errors.is_empty() { Ok(c) } else { Err(ConfigErrors(errors)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_file_parses_and_a_bad_one_names_every_problem() {
        let c = parse(
            "data_dir = \"/var/lib/throughline\"\nlisten = \"0.0.0.0:8443\"\nwriters = 4\ncheckpoint_interval = \"30m\"\nserver_names = [\"a.example\"]\n",
        )
        .unwrap();
        assert_eq!(c.listen, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(c.data_dir.as_deref(), Some(std::path::Path::new("/var/lib/throughline")));
        assert_eq!((c.writers, c.checkpoint_interval), (Some(4), Some(Duration::from_secs(1800))));
        let b = parse("backup_dir = \"/var/backups/tl\"\nbackup_every = \"6h\"\nbackup_keep = 28\n").unwrap();
        assert_eq!((b.backup_every, b.backup_keep), (Some(Duration::from_secs(6 * 3600)), Some(28)));
        let e = parse(
            "listen = \"nowhere\"\nwriters = 0\ncolour = \"blue\"\nconsole_cert = \"/x\"\nbackup_keep = 3\nbackup_every = \"0s\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            vec![
                "backup_every and backup_keep: need backup_dir",
                "backup_every: expected a duration such as \"24h\" or \"6h\"",
                "colour: not a setting of throughline.toml",
                "console_cert and console_key: give both or neither",
                "console_cert: needs console_listen",
                "listen: expected an address and port such as \"127.0.0.1:8443\"",
                "writers: expected a whole number from 1 to 256",
            ]
        );
        assert!(parse("listen = ").unwrap_err().0[0].starts_with("not TOML"));
    }
}
