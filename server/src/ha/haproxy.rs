//! HAProxy's runtime API: `set map` (or `add map` for a new hostname)
//! points a tenant's hostname at this node's backend, without a reload
//! (HAProxy 2.6 management guide, "set map"). Runtime changes live in
//! memory only, so the node says it again every few seconds: a restarted
//! HAProxy is right again within that.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::ClusterConfig;

async fn command(endpoint: &str, line: &str) -> std::io::Result<String> {
    let mut out = String::new();
    let run = async {
        if endpoint.starts_with('/') {
            let mut s = tokio::net::UnixStream::connect(endpoint).await?;
            s.write_all(line.as_bytes()).await?;
            s.read_to_string(&mut out).await?;
        } else {
            let mut s = tokio::net::TcpStream::connect(endpoint).await?;
            s.write_all(line.as_bytes()).await?;
            s.read_to_string(&mut out).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(1), run).await {
        Ok(r) => r.map(|()| out),
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "HAProxy did not answer in 1 s")),
    }
}

/// Points `hostname` at this node on every HAProxy configured.
pub async fn route(config: &ClusterConfig, hostname: &str) {
    let Some(h) = &config.haproxy else { return };
    let map = h.map.display();
    for endpoint in &h.runtime {
        let set = format!("set map {map} {hostname} {}\n", h.backend);
        match command(endpoint, &set).await {
            Ok(answer) if answer.contains("not found") => {
                let add = format!("add map {map} {hostname} {}\n", h.backend);
                if let Err(e) = command(endpoint, &add).await {
                    tracing::warn!(endpoint, cause = %e, "HAProxy: could not add the tenant's route");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(endpoint, cause = %e, "HAProxy runtime API unreachable"),
        }
    }
}
