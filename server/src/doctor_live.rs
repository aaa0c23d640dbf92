//! `throughline doctor --config FILE`: what the configuration file adds to
//! the checklist. The file itself (checked whole), whether the server it
//! describes is answering on its listeners, what its metrics say (the last
//! checkpoint pass, failed backups), and the scheduled backups on disk (the
//! newest one's age against the interval, its ledger beside it).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::doctor::{Check, Verdict, check};
use crate::serve_config::{ServeConfig, parse};

const TIMEOUT: Duration = Duration::from_secs(2);

/// The checks for the configuration file at `path`.
pub fn config_checks(path: &Path) -> Vec<Check> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![check(Verdict::Fail, "config file", format!("cannot read {}: {}", path.display(), e.kind()))];
        }
    };
    let config = match parse(&text) {
        Ok(c) => c,
        Err(e) => {
            let first = e.0.first().cloned().unwrap_or_default();
            return vec![check(Verdict::Fail, "config file", format!("{} problem(s), first: {first}", e.0.len()))];
        }
    };
    let mut out = vec![check(Verdict::Ok, "config file", format!("{} checks", path.display()))];
    let listen = config.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
    out.push(listener("server", listen));
    if let Some(console) = config.console_listen {
        out.push(listener("console", console));
    }
    if let Some(m) = config.metrics_listen {
        out.extend(metrics(m));
    }
    out.extend(backups(&config));
    out
}

/// Loopback for an address bound to every interface.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr }
}

fn listener(what: &str, addr: SocketAddr) -> Check {
    match TcpStream::connect_timeout(&reachable(addr), TIMEOUT) {
        Ok(_) => check(Verdict::Ok, what, format!("answering on {addr}")),
        Err(e) => check(Verdict::Fail, what, format!("nothing answers on {addr} ({}): is it running?", e.kind())),
    }
}

/// One `GET /metrics` over plain HTTP/1.0, the body.
fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&reachable(addr), TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

fn value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn metrics(addr: SocketAddr) -> Vec<Check> {
    let text = match scrape(addr) {
        Ok(t) if t.contains("throughline_start_timestamp_seconds") => t,
        Ok(_) => {
            return vec![check(Verdict::Fail, "metrics", format!("{addr} does not answer with Throughline's metrics"))];
        }
        Err(e) => return vec![check(Verdict::Fail, "metrics", format!("nothing answers on {addr} ({})", e.kind()))],
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let mut out = vec![check(Verdict::Ok, "metrics", format!("served on {addr}"))];
    let pass = value(&text, "throughline_audit_checkpoint_pass_timestamp_seconds").unwrap_or(0.0);
    let start = value(&text, "throughline_start_timestamp_seconds").unwrap_or(0.0);
    let since = now - if pass > 0.0 { pass } else { start };
    out.push(if since > 7200.0 {
        check(Verdict::Warn, "checkpoint pass", format!("none for {:.0} min (`checkpoint_interval`)", since / 60.0))
    } else {
        check(Verdict::Ok, "checkpoint pass", format!("{:.0} min ago, or since the start", since / 60.0))
    });
    if let Some(n) = value(&text, "throughline_backup_failures_total").filter(|n| *n > 0.0) {
        out.push(check(Verdict::Warn, "backup failures", format!("{n:.0} since the start: see the journal")));
    }
    out
}

fn backups(config: &ServeConfig) -> Vec<Check> {
    let Some(dir) = &config.backup_dir else {
        return vec![check(Verdict::Warn, "scheduled backups", "off (`backup_dir` in the config file)")];
    };
    let every = config.backup_every.unwrap_or(Duration::from_secs(24 * 3600));
    let newest = crate::backup_schedule::list(dir).ok().and_then(|mut l| l.pop());
    let Some(newest) = newest else {
        return vec![check(Verdict::Warn, "scheduled backups", format!("none yet in {}", dir.display()))];
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let age = crate::backup_schedule::newest_age(dir, now_ms).unwrap_or_default();
    let hours = age.as_secs_f64() / 3600.0;
    let name = newest.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let ledger = newest.with_file_name(name.replace(".tlbackup", ".ledger.jsonl"));
    if !ledger.exists() {
        return vec![check(Verdict::Fail, "scheduled backups", format!("{name} has no erasure ledger beside it"))];
    }
    // An hour's grace on both: a backup takes time, and a restart waits for the newest to age.
    let verdict = if age > every * 3 + Duration::from_secs(3600) {
        Verdict::Fail
    } else if age > every + Duration::from_secs(3600) {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    vec![check(
        verdict,
        "scheduled backups",
        format!("newest {name}, {hours:.1} h old (every {})", humantime::format_duration(every)),
    )]
}
