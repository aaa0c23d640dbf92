//! The commit log against a real PostgreSQL 15 (Debian's, started on
//! loopback for the test as the `postgres` user, `synchronous_commit = on`):
//! a stale owner cannot append once a new owner claims the tenant, even
//! with an append in flight; no acknowledged record is missing from what
//! the new owner reads; a batch is whole or absent; and real SQLCipher
//! commits go owner → log → standby without the key, the standby ending
//! byte-identical.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{CommitLog, LogError};
use replication::{Capture, CommitRecord, LogKey, Replica};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL cluster of its own in a temporary directory (`pg_ctl`
/// starts it and waits until it accepts), stopped on drop.
struct Pg {
    dir: tempfile::TempDir,
    dsn: String,
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres("pg_ctl")
            .args(["stop", "-D", data.to_str().unwrap_or_default(), "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a PostgreSQL program, as `postgres` when we are root (it refuses root).
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

fn start() -> Pg {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The directory is the postgres user's (PostgreSQL will not run as root).
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    let _ = std::os::unix::fs::chown(dir.path(), id("-u"), id("-g"));
    let out = as_postgres("initdb")
        .args(["-D", data.to_str().unwrap(), "-A", "trust", "-U", "throughline", "--no-sync"])
        .output()
        .expect("initdb (Debian's postgresql-15; .ci/run installs it)");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options = format!(
        "-k {} -p {port} -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on",
        dir.path().display()
    );
    let log = dir.path().join("postgres.log");
    let out = as_postgres("pg_ctl")
        .args(["start", "-D", data.to_str().unwrap(), "-w", "-t", "60", "-l", log.to_str().unwrap(), "-o", &options])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl start: {}{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let dsn = format!("host=127.0.0.1 port={port} user=throughline dbname=postgres");
    Pg { dir, dsn }
}

async fn connect(pg: &Pg) -> CommitLog {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match CommitLog::connect(&pg.dsn).await {
            Ok(log) => return log,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn rec(seq: u64) -> (u64, Vec<u8>) {
    (seq, vec![seq as u8; 64])
}

#[tokio::test]
async fn a_stale_owner_is_fenced_and_batches_are_whole() {
    let pg = start();
    let mut a = connect(&pg).await;
    let mut b = connect(&pg).await;
    assert!(a.claim("ten_a", 1).await.unwrap());
    a.append("ten_a", 1, &[rec(1), rec(2), rec(3)]).await.unwrap();
    // A new owner (a later etcd revision) claims; the old epoch cannot come back.
    assert!(b.claim("ten_a", 2).await.unwrap());
    assert!(!a.claim("ten_a", 1).await.unwrap());
    assert!(!b.claim("ten_a", 2).await.unwrap());
    let fenced = a.append("ten_a", 1, &[rec(4)]).await;
    assert!(matches!(fenced, Err(LogError::Fenced { mine: 1, current: Some(2), .. })), "{fenced:?}");
    // The new owner reads everything the old one was told was durable.
    let seen: Vec<u64> = b.since("ten_a", 0, 100).await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(seen, vec![1, 2, 3]);
    b.append("ten_a", 2, &[rec(4)]).await.unwrap();
    // A batch with a sequence already taken by another record leaves nothing of itself.
    let dup = b.append("ten_a", 2, &[rec(5), (4, vec![9; 64])]).await;
    assert!(matches!(dup, Err(LogError::Conflict { seq: 4, .. })), "{dup:?}");
    assert_eq!(b.since("ten_a", 4, 10).await.unwrap(), vec![]);
    // The very same record again (an append retried after its commit's
    // answer was lost) is accepted and kept once.
    b.append("ten_a", 2, &[rec(4)]).await.unwrap();
    assert_eq!(b.since("ten_a", 3, 10).await.unwrap(), vec![rec(4)]);
    // An unclaimed tenant takes no appends; another tenant is another fence.
    assert!(matches!(a.append("ten_b", 1, &[rec(1)]).await, Err(LogError::Fenced { current: None, .. })));
    assert_eq!(b.prune("ten_a", 2).await.unwrap(), 2);
    assert_eq!(b.since("ten_a", 0, 10).await.unwrap().len(), 2);
}

/// Revocations published by one node are every node's to read: a
/// certificate's first revocation is kept, a staff account's newest state
/// wins (L8 of the second review).
#[tokio::test]
async fn revocations_are_published_once_and_read_by_every_node() {
    use cluster::{Revocation, RevocationKind};
    let pg = start();
    let (a, b) = (connect(&pg).await, connect(&pg).await);
    let cert = |at| Revocation { kind: RevocationKind::Certificate, subject: "4f1e".into(), revoked: true, at };
    let staff = |revoked, at| Revocation { kind: RevocationKind::Staff, subject: "stf_1".into(), revoked, at };
    assert_eq!(a.publish_revocations(&[cert(10), staff(true, 20)]).await.unwrap(), 2);
    assert_eq!(b.publish_revocations(&[cert(30)]).await.unwrap(), 0, "already revoked");
    assert_eq!(b.publish_revocations(&[staff(false, 15)]).await.unwrap(), 0, "older than what is there");
    assert_eq!(b.revocations().await.unwrap(), vec![cert(10), staff(true, 20)]);
    assert_eq!(b.publish_revocations(&[staff(false, 40)]).await.unwrap(), 1, "enabled again, later");
    assert_eq!(a.revocations().await.unwrap(), vec![cert(10), staff(false, 40)]);
}

#[tokio::test]
async fn a_claim_during_appends_loses_no_acknowledged_record() {
    let pg = start();
    let mut a = connect(&pg).await;
    let b = connect(&pg).await;
    assert!(a.claim("ten_a", 1).await.unwrap());
    let writer = tokio::spawn(async move {
        let mut acked = Vec::new();
        for seq in 1..=2_000u64 {
            match a.append("ten_a", 1, &[rec(seq)]).await {
                Ok(_) => acked.push(seq),
                Err(LogError::Fenced { .. }) => return (acked, Some(seq)),
                Err(e) => panic!("{e}"),
            }
        }
        (acked, None)
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(b.claim("ten_a", 2).await.unwrap());
    let (acked, fenced_at) = writer.await.unwrap();
    let fenced_at = fenced_at.expect("the old owner was fenced before it finished");
    let seen: Vec<u64> = b.since("ten_a", 0, 10_000).await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert!(!acked.is_empty());
    assert_eq!(seen, acked, "every acknowledged append, and nothing else, is in the log");
    assert_eq!(fenced_at, *acked.last().unwrap() + 1, "nothing was acknowledged after the fence");
    println!("old owner acknowledged {} appends, fenced at {fenced_at}", acked.len());
}

const KEY: &str = "x'2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c'";

fn sqlcipher(path: &Path) -> rusqlite::Connection {
    // SQLCipher's first keyed open, once, before the tests' threads race to it
    // (see replication/tests/sqlcipher.rs: `warm_up`).
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(c) = rusqlite::Connection::open_in_memory() {
            let _ = c.execute_batch(&format!("PRAGMA key = \"{KEY}\"; CREATE TABLE warm (x);"));
        }
    });
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!("PRAGMA key = \"{KEY}\";")).unwrap();
    let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    c.execute_batch("PRAGMA wal_autocheckpoint = 0;").unwrap();
    c
}

/// A SQLCipher store with a notes table and an empty WAL, in a directory of its own.
fn tenant_store() -> (tempfile::TempDir, PathBuf, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let primary = dir.path().join("ten_a.db");
    let conn = sqlcipher(&primary);
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    (dir, primary, conn)
}

fn wal(path: &Path) -> Vec<u8> {
    std::fs::read(format!("{}-wal", path.display())).unwrap_or_default()
}

#[tokio::test]
async fn sqlcipher_commits_go_owner_to_log_to_standby_without_the_key() {
    let pg = start();
    let (dir, primary, conn) = tenant_store();
    let standby = dir.path().join("standby.db");
    std::fs::copy(&primary, &standby).unwrap();
    let key = LogKey::new(&[5; 32]);
    let mut owner = connect(&pg).await;
    assert!(owner.claim("ten_a", 1).await.unwrap());
    let mut capture = Capture::new("ten_a", 1, 0, &std::fs::read(&primary).unwrap(), 4096);
    for i in 0..50 {
        conn.execute("INSERT INTO notes (body) VALUES (?1)", [format!("a note about the knee #{i}")]).unwrap();
        let records: Vec<(u64, Vec<u8>)> =
            capture.poll(&wal(&primary)).unwrap().iter().map(|r| (r.seq, r.encode(&key))).collect();
        // Acknowledged only once the log has it.
        owner.append("ten_a", 1, &records).await.unwrap();
    }
    // The standby, on another connection (another box), reads the log and applies it.
    let log = connect(&pg).await;
    let mut replica = Replica::open(&standby, 4096, 0, 1).unwrap();
    for (_, bytes) in log.since("ten_a", 0, 1_000).await.unwrap() {
        replica.apply(&CommitRecord::decode(&bytes, &key).unwrap()).unwrap();
    }
    assert_eq!(replica.seq(), 50);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    assert!(std::fs::read(&standby).unwrap() == std::fs::read(&primary).unwrap(), "byte-identical");
    // Failover: the standby's node claims epoch 2; the old owner's next append is refused.
    assert!(log.claim("ten_a", 2).await.unwrap());
    conn.execute("INSERT INTO notes (body) VALUES ('late')", []).unwrap();
    let late: Vec<(u64, Vec<u8>)> =
        capture.poll(&wal(&primary)).unwrap().iter().map(|r| (r.seq, r.encode(&key))).collect();
    assert!(matches!(owner.append("ten_a", 1, &late).await, Err(LogError::Fenced { .. })));
    drop(replica);
    let c = rusqlite::Connection::open(&standby).unwrap();
    c.execute_batch(&format!("PRAGMA key = \"{KEY}\";")).unwrap();
    assert_eq!(c.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0)).unwrap(), 50);
}

#[tokio::test]
async fn a_snapshot_bounds_the_log_and_a_new_standby_starts_from_it() {
    let pg = start();
    let (dir, primary, conn) = tenant_store();
    let key = LogKey::new(&[5; 32]);
    let mut owner = connect(&pg).await;
    assert!(owner.claim("ten_a", 1).await.unwrap());
    let mut capture = Capture::new("ten_a", 1, 0, &std::fs::read(&primary).unwrap(), 4096);
    let commit = |i: u32, capture: &mut Capture| -> Vec<(u64, Vec<u8>)> {
        conn.execute("INSERT INTO notes (body) VALUES (?1)", [format!("note {i}")]).unwrap();
        capture.poll(&wal(&primary)).unwrap().iter().map(|r| (r.seq, r.encode(&key))).collect()
    };
    for i in 0..30 {
        let records = commit(i, &mut capture);
        owner.append("ten_a", 1, &records).await.unwrap();
    }
    // The owner checkpoints (after its last poll) and stores the file as the snapshot at seq 30.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let image = std::fs::read(&primary).unwrap();
    capture.verify(&image).unwrap();
    let snap = cluster::Snapshot { seq: capture.seq(), epoch: 1, checksum: capture.checksum(), image };
    assert_eq!(owner.put_snapshot("ten_a", 1, &snap).await.unwrap(), 30, "the records it covers are gone");
    assert!(owner.since("ten_a", 0, 100).await.unwrap().is_empty());
    for i in 30..40 {
        let records = commit(i, &mut capture);
        owner.append("ten_a", 1, &records).await.unwrap();
    }
    // A new standby: the snapshot, then the ten records after it.
    let mut standby_log = connect(&pg).await;
    let got = standby_log.snapshot("ten_a").await.unwrap().unwrap();
    assert_eq!((got.seq, got.checksum), (30, snap.checksum));
    let standby = dir.path().join("standby.db");
    std::fs::write(&standby, &got.image).unwrap();
    let mut replica = Replica::open(&standby, 4096, got.seq, got.epoch).unwrap();
    assert_eq!(replica.checksum(), got.checksum);
    for (_, bytes) in standby_log.since("ten_a", got.seq, 100).await.unwrap() {
        replica.apply(&CommitRecord::decode(&bytes, &key).unwrap()).unwrap();
    }
    assert_eq!(replica.seq(), 40);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    assert!(std::fs::read(&standby).unwrap() == std::fs::read(&primary).unwrap(), "byte-identical");
    // A stale owner cannot replace the snapshot.
    assert!(standby_log.claim("ten_a", 2).await.unwrap());
    assert!(matches!(owner.put_snapshot("ten_a", 1, &snap).await, Err(LogError::Fenced { .. })));
    assert_eq!(standby_log.snapshot("ten_a").await.unwrap().unwrap().seq, 30);
}
