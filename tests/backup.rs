//! Backups: taken while the server runs, restored into an empty directory,
//! never resurrecting a patient erased after the backup (checked against the
//! real server on the restored data), and refusing every damaged input with
//! nothing written.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use util::inproc::InProcess;
use util::server::client;
use util::{Env, PASSPHRASE};

async fn open(http: &reqwest::Client, url: &str, phone: &str) -> Value {
    let res = http.post(url).json(&json!({"identifiers": {"phone": phone}})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn restore(target: &Path, file: &Path, ledger: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_throughline"));
    cmd.arg("--data-dir").arg(target).arg("restore").arg(file);
    if let Some(l) = ledger {
        cmd.arg("--ledger").arg(l);
    }
    cmd.env("THROUGHLINE_PASSPHRASE", PASSPHRASE).env_remove("THROUGHLINE_DATA_DIR");
    cmd
}

#[tokio::test]
async fn a_restored_backup_never_resurrects_an_erased_patient() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice_cert = env.issue("sunrise", "voice");
    let server = InProcess::start(&env);
    let http = client(&voice_cert);
    let url = server.url("/v1/sessions");
    let a = open(&http, &url, "+1 415 555 0100").await;
    let b = open(&http, &url, "+1 415 555 0111").await;
    for (who, name, text) in [(&a, "Maria Lopez", "my knee again"), (&b, "Ben Ortiz", "a refill please")] {
        let sid = who["session_id"].as_str().unwrap();
        http.patch(server.url(&format!("/v1/sessions/{sid}/customer")))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        http.post(server.url(&format!("/v1/sessions/{sid}/turns")))
            .json(&json!({"speaker": "patient", "text": text}))
            .send()
            .await
            .unwrap();
    }

    // Backup while serving; then the erasure; then the ledger export.
    let dir = env.tmp.path().to_owned();
    let backup = dir.join("nightly.tlbackup");
    let said = env.ok(&["backup", "--out", backup.to_str().unwrap()]);
    assert!(said.starts_with("backed up 2 stores"), "{said}");
    let a_id = a["customer_id"].as_str().unwrap();
    env.ok(&["erasure", "--tenant", "sunrise", "--customer", a_id]);
    let ledger = dir.join("ledger.jsonl");
    env.ok(&["erasure-ledger", "--out", ledger.to_str().unwrap()]);
    server.stop().await;
    let backup_bytes = std::fs::read(&backup).unwrap();
    for secret in ["Maria", "Ben Ortiz", "knee", "refill", "5550100"] {
        assert!(!backup_bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} in the backup file");
    }

    // Restore last night's backup on a new machine, with today's ledger.
    let restored = Env { tmp: tempfile::tempdir().unwrap(), data: dir.join("restored") };
    let out = restore(&restored.data, &backup, Some(&ledger)).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("restored 2 stores") && said.contains("re-applied 1 erasures"), "{said}");

    // The real server on the restored data: the old certificate still works
    // (same CA and registry), A is gone before the first request, B is there.
    let server = restored.serve();
    let http = client(&voice_cert);
    let url = server.url("/v1/sessions");
    let a_again = open(&http, &url, "+1 415 555 0100").await;
    assert_eq!(a_again["identity"]["status"], "new", "erased patient resurrected: {a_again}");
    let b_again = open(&http, &url, "+1 415 555 0111").await;
    assert_eq!(b_again["customer_id"], b["customer_id"]);
    assert_eq!(b_again["recent_turns"][0]["text"], "a refill please");
    drop(server);
    let grep = Command::new("grep")
        .args(["-r", "-l", "-a", "-F", "-e", "Maria", "-e", "knee", "-e", "5550100"])
        .arg(&restored.data)
        .output()
        .unwrap();
    assert_eq!(grep.status.code(), Some(1), "{}", String::from_utf8_lossy(&grep.stdout));
    restored.ok(&["tenant", "show", "sunrise"]);

    // L12: a restore that stopped before re-applying its erasures (the marker
    // it writes first is still there) is refused by everything that opens it.
    assert!(!restored.data.join("restore-incomplete").exists(), "a finished restore left its marker");
    std::fs::write(restored.data.join("restore-incomplete"), b"").unwrap();
    let line = restored.fails(&mut restored.cmd(&["tenant", "show", "sunrise"]));
    assert!(line.contains("a restore did not finish"), "{line}");
}

#[test]
fn damaged_backups_and_bad_targets_are_refused_with_nothing_written() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let dir = env.tmp.path().to_owned();
    let backup = dir.join("b.tlbackup");
    env.ok(&["backup", "--out", backup.to_str().unwrap()]);
    let good = std::fs::read(&backup).unwrap();
    let header_end = 21 + 4 + u32::from_be_bytes(good[21..25].try_into().unwrap()) as usize;

    let mut flipped_payload = good.clone();
    flipped_payload[header_end + 100] ^= 1;
    let mut flipped_header = good.clone();
    flipped_header[header_end - 40] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("payload", flipped_payload, "does not authenticate"),
        ("header", flipped_header, "error: "),
        ("truncated", good[..good.len() - 100].to_vec(), "truncated"),
        ("cut-after-header", good[..header_end].to_vec(), "the last chunk is missing"),
        ("not-a-backup", b"hello".to_vec(), "not a Throughline backup"),
    ];
    for (name, bytes, expected) in cases {
        let file = dir.join(format!("{name}.tlbackup"));
        std::fs::write(&file, bytes).unwrap();
        let target = dir.join(format!("target-{name}"));
        let line = env.fails(&mut restore(&target, &file, None));
        assert!(line.contains(expected), "{name}: {line}");
        assert!(!target.exists() || std::fs::read_dir(&target).unwrap().next().is_none(), "{name}: files written");
    }
    // Not over a non-empty directory (the live data dir, say).
    let line = env.fails(&mut restore(&env.data, &backup, None));
    assert!(line.contains("is not empty"), "{line}");
    // Another installation's passphrase.
    let target = dir.join("target-pass");
    let mut wrong = restore(&target, &backup, None);
    wrong.env("THROUGHLINE_PASSPHRASE", "some other installation's passphrase");
    assert_eq!(env.fails(&mut wrong), "error: wrong passphrase");
    assert!(!target.exists());
    // The good one restores.
    let target = dir.join("target-good");
    assert!(restore(&target, &backup, None).status().unwrap().success());
}
