//! The real server for the load benchmarks (`bench --soak`, `bench --http`):
//! this binary's `serve` as a child process on 127.0.0.1 port 0, stopped
//! with SIGTERM on drop, and its CPU time read from `/proc`.

use std::io::{BufRead as _, BufReader};
use std::path::Path;

use anyhow::{Context as _, bail};

pub struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    /// Starts `serve` on `data` with `extra` arguments and waits for its address.
    pub fn start(data: &Path, passphrase: &str, extra: &[&str]) -> anyhow::Result<Server> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("THROUGHLINE_PASSPHRASE", passphrase)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("start the server")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("server stdout")?).read_line(&mut line)?;
        let Some(port) = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()) else {
            let _ = child.kill();
            bail!("the server did not start: {line:?}");
        };
        Ok(Server { child, port })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The base URL (`localhost`, which the server's certificate names).
    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) a process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    crate::bench::cpu_seconds(Some(pid))
}

/// CPU seconds of a process and all its children now alive (PostgreSQL's
/// postmaster and its backends).
pub fn cpu_seconds_with_children(pid: u32) -> f64 {
    let mut total = cpu_seconds(pid);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let parent = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(pid) {
            total += cpu_seconds(child);
        }
    }
    total
}
