//! Upgrades (docs/UPGRADING.md): a data directory written by every earlier
//! release (tests/fixtures/upgrade/<version>/, made by
//! scripts/upgrade-fixture.sh) opens in this build, migrates, and keeps its
//! patients, staff, audit chains and both page formats; a directory from
//! before the schema marker is copied before it is migrated; one a newer
//! build wrote is refused untouched.

mod util;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use util::Env;
use util::server::client;

/// Every committed fixture: one per release.
fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/upgrade");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures/upgrade")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("data").is_dir())
        .collect();
    all.sort();
    assert!(!all.is_empty(), "no upgrade fixture under {}", root.display());
    all
}

/// A copy of the fixture's data directory in a fresh Env, with the fixture's passphrase.
fn copy_of(fixture: &Path) -> (Env, String) {
    let env = Env::new();
    let status =
        std::process::Command::new("cp").arg("-a").arg(fixture.join("data")).arg(&env.data).status().expect("cp");
    assert!(status.success());
    std::process::Command::new("chmod").args(["-R", "go-rwx"]).arg(&env.data).status().expect("chmod");
    let passphrase = std::fs::read_to_string(fixture.join("passphrase")).expect("passphrase");
    (env, passphrase.trim().to_owned())
}

fn run(env: &Env, passphrase: &str, args: &[&str]) -> (bool, String, String) {
    let out = env.cmd(args).env("THROUGHLINE_PASSPHRASE", passphrase).output().expect("run");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn every_earlier_release_opens_migrates_and_keeps_its_patients() {
    for fixture in fixtures() {
        let (env, pass) = copy_of(&fixture);
        let release = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let ok = |args: &[&str]| {
            let (ok, out, err) = run(&env, &pass, args);
            assert!(ok, "{release}: {args:?}: {err}");
            out
        };
        let list = ok(&["tenant", "list"]);
        assert!(list.contains("sunrise-clinic\t") && list.contains("harbor-clinic\t"), "{release}: {list}");
        assert!(list.contains("region=GB"), "{release}: {list}");
        let show = ok(&["tenant", "show", "sunrise-clinic"]);
        let latest = store::datadir_schema::latest();
        assert!(show.contains(&format!("schema_version {}", latest.tenant)), "{release}: {show}");
        assert!(show.contains("(chain verified)"), "{release}: {show}");
        assert!(ok(&["staff", "list", "--tenant", "sunrise-clinic"]).contains("frontdesk@sunrise-clinic.example"));
        let doctor = run(&env, &pass, &["doctor"]).1;
        for needed in ["keyring", "system store", "audit"] {
            let line = doctor.lines().find(|l| l.contains(needed)).unwrap_or_else(|| panic!("{release}: {doctor}"));
            assert!(line.starts_with("ok"), "{release}: {line}");
        }
        let marker = std::fs::read_to_string(env.data.join("schema")).unwrap();
        assert!(marker.contains(&format!("build {}", env!("CARGO_PKG_VERSION"))), "{release}: {marker}");

        // Both page formats open, and stay what they were.
        let passphrase = secrecy::SecretString::from(pass.clone());
        let inst =
            server::Installation::open(&env.data, &passphrase, std::sync::Arc::new(server::SystemClock)).unwrap();
        let formats: Vec<store::PageHmac> = ["sunrise-clinic", "harbor-clinic"]
            .iter()
            .map(|t| inst.open_tenant(t).unwrap().page_hmac().unwrap())
            .collect();
        assert_eq!(formats, [store::PageHmac::Sha512, store::PageHmac::Sha256], "{release}");
        drop(inst);

        // The patient the release knew is found again by a new build's channel.
        let certs = {
            let dir = env.tmp.path().join("voice");
            let out = ok(&[
                "cert",
                "issue",
                "--tenant",
                "sunrise-clinic",
                "--channel",
                "voice",
                "--out",
                dir.to_str().unwrap(),
            ]);
            let serial = out.lines().find_map(|l| l.strip_prefix("serial ")).unwrap().to_owned();
            util::server::CertDir { dir, serial }
        };
        let server = {
            let mut cmd = env.cmd(&["serve", "--listen", "127.0.0.1:0"]);
            cmd.env("THROUGHLINE_PASSPHRASE", &pass);
            util::server::spawn(cmd, env.tmp.path())
        };
        let res = client(&certs)
            .post(server.url("/v1/sessions"))
            .json(&json!({"identifiers": {"phone": "+14155550100"}, "evidence": {"caller_id_attestation": "A"}}))
            .send()
            .await
            .unwrap();
        let mut v: Value = res.json().await.unwrap();
        if v["identity"]["confirmed"] != true {
            let session = v["session_id"].as_str().unwrap().to_owned();
            let res = client(&certs)
                .post(server.url(&format!("/v1/sessions/{session}/identity/confirm")))
                .json(&json!({"date_of_birth": "1985-03-14"}))
                .send()
                .await
                .unwrap();
            v = res.json().await.unwrap();
        }
        assert_eq!(v["identity"]["confirmed"], true, "{release}: {v}");
        assert_eq!(v["patient"]["name"], "Maria Lopez", "{release}: {v}");
        assert!(!v["recent_turns"].as_array().unwrap().is_empty(), "{release}: {v}");
    }
}

/// A directory from before the marker (every installation older than 0.1)
/// is copied whole into upgrades/ before anything migrates it.
#[test]
fn a_directory_without_a_marker_is_copied_before_it_is_migrated() {
    let fixture = fixtures().pop().unwrap();
    let (env, pass) = copy_of(&fixture);
    std::fs::remove_file(env.data.join("schema")).unwrap();
    let before = env.snapshot();
    let (ok, _, err) = run(&env, &pass, &["tenant", "list"]);
    assert!(ok, "{err}");
    let copies: Vec<PathBuf> =
        std::fs::read_dir(env.data.join("upgrades")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    assert!(copy.file_name().unwrap().to_string_lossy().starts_with("unmarked-to-"), "{copy:?}");
    for (path, bytes) in &before {
        let rel = path.strip_prefix(&env.data).unwrap();
        let name = rel.to_string_lossy();
        if name.ends_with(".db") || name == "keyring.json" {
            assert_eq!(&std::fs::read(copy.join(rel)).unwrap(), bytes, "{name} copied as it was");
        }
    }
    assert!(env.data.join("schema").exists(), "the marker is written after the open");
    // The next open copies nothing more.
    assert!(run(&env, &pass, &["tenant", "list"]).0);
    assert_eq!(std::fs::read_dir(env.data.join("upgrades")).unwrap().count(), 1);
}

/// What a newer build wrote, this one cannot read safely: refused, untouched.
#[test]
fn a_directory_from_a_newer_build_is_refused_untouched() {
    let fixture = fixtures().pop().unwrap();
    let (env, pass) = copy_of(&fixture);
    let l = store::datadir_schema::latest();
    std::fs::write(env.data.join("schema"), format!("system {}\ntenant {}\nbuild 99.0.0\n", l.system + 1, l.tenant))
        .unwrap();
    let before = env.snapshot();
    let (ok, _, err) = run(&env, &pass, &["tenant", "list"]);
    assert!(!ok);
    assert!(err.contains("was last opened by Throughline 99.0.0"), "{err}");
    assert!(err.contains("run that build or a later one"), "{err}");
    assert_eq!(env.snapshot(), before);
}
