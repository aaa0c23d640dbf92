//! A full disk under the data directory (a small tmpfs): writes are refused
//! with 507 `storage_full`, nothing is half-stored (every stored turn has its
//! audit record), the server keeps serving, and once space returns writes
//! succeed again without a restart; the store passes `integrity_check`.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use store::Countable;
use util::Env;
use util::server::client;

/// A tmpfs mounted for the test and unmounted after it.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `None` where this machine does not let the test mount (no root, no
    /// CAP_SYS_ADMIN): the test says so and checks nothing.
    fn mount(parent: &std::path::Path, mib: u32) -> Option<Self> {
        let path = parent.join("small-disk");
        std::fs::create_dir_all(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { path })
    }

    fn available(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(&self.path).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let res = http.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_full_disk_refuses_writes_cleanly_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    // No skipping: the full disk is a real tmpfs, which needs root (scripts/test and .ci/run run as root).
    let Some(disk) = Tmpfs::mount(tmp.path(), 8) else {
        panic!("this test mounts a small tmpfs to fill it: run the tests as root (scripts/test, as .ci/run does)");
    };
    let env = Env { data: disk.path.join("data"), tmp };
    env.ok(&["init", "--kdf-memory-mib", "19", "--kdf-iterations", "2"]);
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let http = client(&voice);
    let mut server = env.serve();
    let (_, open) =
        post(&http, &server.url("/v1/sessions"), json!({"identifiers": {"phone": "+1 415 555 0100"}})).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let turns_url = server.url(&format!("/v1/sessions/{sid}/turns"));

    // Leave about 300 KiB free, then write 12 KiB turns until the disk is full.
    let filler = disk.path.join("filler");
    let free = disk.available();
    std::fs::write(&filler, vec![0u8; (free.saturating_sub(300 * 1024)) as usize]).unwrap();
    let text = "x".repeat(12 * 1024);
    let (mut acked, mut refused) = (0u64, None);
    for _ in 0..400 {
        let (status, v) = post(&http, &turns_url, json!({"speaker": "agent", "text": text})).await;
        match status {
            201 => acked += 1,
            _ => {
                refused = Some((status, v));
                break;
            }
        }
    }
    let (status, v) = refused.expect("the disk never filled up");
    assert_eq!((status, v["error"].as_str().unwrap()), (507, "storage_full"), "{v}");
    assert!(acked > 0, "nothing was written before the disk filled");

    // Still serving; refusing again, consistently, while full.
    let health = http.get(server.url("/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (status, _) = post(&http, &turns_url, json!({"speaker": "agent", "text": text})).await;
    assert_eq!(status, 507);

    // Space returns: writes succeed again, no restart.
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..3 {
        let (status, v) =
            post(&http, &turns_url, json!({"speaker": "agent", "text": "after the disk was freed"})).await;
        assert_eq!(status, 201, "{v}");
        acked += 1;
    }
    assert!(server.terminate().success());
    let log = server.log_text();
    assert!(log.contains("disk full"), "the refusal is not in the log");
    assert!(!log.contains("panicked"), "{log}");

    let inst = env.installation();
    let store = inst.open_tenant("sunrise").unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    store.verify_audit().unwrap();
    let turns = store.count(Countable::Turns).unwrap();
    let audits = store
        .audit_records()
        .unwrap()
        .iter()
        .filter(|r| r.action == "turn.append" && r.outcome == audit::Outcome::Ok)
        .count() as u64;
    assert_eq!(turns, acked, "acknowledged turns and stored turns differ");
    assert_eq!(audits, turns, "a stored turn without its audit record (or the reverse)");
    eprintln!("{acked} turns acknowledged around a full disk; refused with 507 while full; integrity and chain ok");
    drop((store, inst));
    drop(disk); // unmount before the temporary directory goes
    drop(env);
}
