//! A PostgreSQL 15 cluster of its own for one bench run: Debian's binaries,
//! a temporary directory owned by the `postgres` user (PostgreSQL refuses
//! to run as root), loopback only, `synchronous_commit = on`, `fsync = on`,
//! the same memory budget as Throughline's page cache; stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::PeerError;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct TempPostgres {
    dir: tempfile::TempDir,
    dsn: String,
}

impl TempPostgres {
    /// Initialises and starts the cluster; `shared_buffers_mib` is its buffer cache.
    pub fn start(shared_buffers_mib: u64) -> Result<Self, PeerError> {
        if !Path::new(BIN).join("postgres").exists() {
            return Err(server("PostgreSQL 15", format!("{BIN}/postgres not found (apt-get install postgresql-15)")));
        }
        let dir = tempfile::Builder::new().prefix("throughline-peer-").tempdir().map_err(|e| server("tempdir", e))?;
        let _ = std::os::unix::fs::chown(dir.path(), id("-u"), id("-g"));
        let data = dir.path().join("data");
        run(as_postgres("initdb").args([path(&data), "-A", "trust", "-U", "peer", "--no-sync"]), "initdb")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| server("a free port", e))?
            .port();
        let options = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on \
             -c shared_buffers={shared_buffers_mib}MB -c max_connections=200",
            dir.path().display()
        );
        let log = dir.path().join("postgres.log");
        run(
            as_postgres("pg_ctl").args([
                "start",
                "-D",
                path(&data),
                "-w",
                "-t",
                "60",
                "-l",
                path(&log),
                "-o",
                &options,
            ]),
            "pg_ctl start",
        )?;
        Ok(TempPostgres { dir, dsn: format!("host=127.0.0.1 port={port} user=peer dbname=postgres") })
    }

    pub fn dsn(&self) -> &str {
        &self.dsn
    }

    /// The postmaster's pid (its children are the backends).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = as_postgres("pg_ctl")
            .args(["stop", "-D", path(&data), "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn server(what: &'static str, e: impl std::fmt::Display) -> PeerError {
    PeerError::Server { what, message: e.to_string() }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn run(cmd: &mut Command, what: &'static str) -> Result<(), PeerError> {
    let out = cmd.output().map_err(|e| server(what, e))?;
    if !out.status.success() {
        return Err(server(what, String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(())
}

fn id(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// A PostgreSQL program, run as `postgres` when we are root.
fn as_postgres(program: &str) -> Command {
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &format!("{BIN}/{program}")]);
        c
    } else {
        Command::new(format!("{BIN}/{program}"))
    }
}
