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

/// `serve --backup-dir --backup-every --backup-keep`: backups arrive on the
/// schedule while the server takes requests, each with its erasure ledger,
/// only the newest are kept, no partial file is left, and the newest
/// restores with the patient who was on file.
#[tokio::test]
async fn scheduled_backups_arrive_are_pruned_and_restore() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice_cert = env.issue("sunrise", "voice");
    let dir = env.tmp.path().join("backups");
    let server = env.serve_with(&[
        "--backup-dir",
        dir.to_str().unwrap(),
        "--backup-every",
        "1s",
        "--backup-keep",
        "2",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let http = client(&voice_cert);
    let first = open(&http, &server.url("/v1/sessions"), "+1 415 555 0100").await;
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .map(|r| r.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    // Four backups' worth of time: four distinct backups seen, the directory keeps two.
    let mut seen = std::collections::BTreeSet::new();
    let taken = util::server::eventually(60, || {
        seen.extend(names(&dir).into_iter().filter(|n| n.ends_with(".tlbackup")));
        let n = seen.len();
        async move { (n >= 4).then_some(n) }
    })
    .await;
    assert!(taken.is_some(), "four scheduled backups: {seen:?}\n{}", server.log_text());
    let files = names(&dir);
    let backups: Vec<&String> = files.iter().filter(|n| n.ends_with(".tlbackup")).collect();
    let ledgers: Vec<&String> = files.iter().filter(|n| n.ends_with(".ledger.jsonl")).collect();
    assert!(backups.len() <= 2 && !backups.is_empty(), "kept: {files:?}");
    assert!(files.iter().all(|n| n.ends_with(".tlbackup") || n.ends_with(".ledger.jsonl") || n.ends_with(".partial")));
    for b in &backups {
        assert!(ledgers.contains(&&b.replace(".tlbackup", ".ledger.jsonl")), "{b} has its ledger: {files:?}");
    }
    let metrics =
        reqwest::get(format!("http://{}/metrics", server.metrics.unwrap())).await.unwrap().text().await.unwrap();
    let last = metrics
        .lines()
        .find_map(|l| l.strip_prefix("throughline_backup_last_success_timestamp_seconds "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap();
    assert!(last > 1.7e9, "{metrics}");

    // doctor with the same settings as a file: the live server, its metrics, the backups on disk.
    let config = env.tmp.path().join("throughline.toml");
    let toml = format!(
        "listen = \"{}\"\nmetrics_listen = \"{}\"\nbackup_dir = \"{}\"\nbackup_every = \"1s\"\nbackup_keep = 2\n",
        server.addr,
        server.metrics.unwrap(),
        dir.display()
    );
    std::fs::write(&config, toml).unwrap();
    let said = env.ok(&["doctor", "--config", config.to_str().unwrap()]);
    for line in ["ok    config file", "ok    server", "ok    metrics", "ok    scheduled backups", "ok    last backup"] {
        assert!(said.lines().any(|l| l.starts_with(line)), "{line:?} in\n{said}");
    }
    drop(server);
    let down = env.run(&["doctor", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&down.stdout);
    assert!(!down.status.success(), "{said}");
    assert!(said.lines().any(|l| l.starts_with("FAIL  server") && l.contains("is it running?")), "{said}");

    let newest = dir.join(backups.last().unwrap());
    let target = env.tmp.path().join("restored");
    let out = restore(&target, &newest, Some(&dir.join(ledgers.last().unwrap()))).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = Env { data: target, ..Env::new() };
    let server = restored.serve();
    let again = open(&client(&voice_cert), &server.url("/v1/sessions"), "+1 (415) 555-0100").await;
    assert_eq!(again["customer_id"], first["customer_id"], "the patient on file came back: {again}");
}
