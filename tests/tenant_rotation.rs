//! `throughline keys rotate-tenant` (issue 21): a new root key for one
//! tenant. The patient on file is found again by phone through the
//! re-keyed blind index, with their turns (data keys re-wrapped); the old
//! root key opens nothing the rotation wrote; the audit trail verifies
//! across the rotation (the handover checkpoint under the old key and the
//! new); a backup taken before restores with its own keyring; the server
//! must be stopped; and a process killed after each step leaves the old
//! state or the new, which the next open finishes.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::process::Command;

use reqwest::Method;
use serde_json::json;
use util::api::Api;
use util::server::{CertDir, client};
use util::{Env, PASSPHRASE};

const PHONE: &str = "+1 415 555 0100";

/// A clinic with Maria on file (a call with intake and a turn); returns the
/// voice and chat certificates and her patient id.
async fn clinic(env: &Env) -> (CertDir, CertDir, String) {
    env.tenant(&["sunrise"]);
    let (voice, chat) = (env.issue("sunrise", "voice"), env.issue("sunrise", "chat"));
    let server = env.serve();
    let api = Api { http: client(&voice), base: server.url("") };
    api.patient_on_file(json!({"phone": PHONE, "email": "maria@example.com"}), &["my knee hurts since the fall"]).await;
    let (customer, _) = found(env, &chat).await;
    drop(server);
    (voice, chat, customer)
}

/// Opens a chat session with Maria's phone on a fresh server, confirms her
/// date of birth; returns her patient id and the texts in the context.
async fn found(env: &Env, chat: &CertDir) -> (String, Vec<String>) {
    let server = env.serve();
    let api = Api { http: client(chat), base: server.url("") };
    let open = api.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let confirmed = api
        .ok(Method::POST, &format!("/v1/sessions/{sid}/identity/confirm"), Some(json!({"date_of_birth": "1985-03-14"})))
        .await;
    let ctx = api.ok(Method::GET, &format!("/v1/sessions/{sid}/context"), None).await;
    let texts = ctx["recent_turns"]
        .as_array()
        .map(|t| t.iter().filter_map(|x| x["text"].as_str().map(str::to_owned)).collect());
    (confirmed["customer_id"].as_str().unwrap().to_owned(), texts.unwrap_or_default())
}

fn audit_key(env: &Env) -> String {
    env.ok(&["audit", "key", "--tenant", "sunrise"]).trim().to_owned()
}

#[tokio::test]
async fn a_rotated_tenant_keeps_its_patients_and_its_trail_and_the_old_key_opens_nothing_new() {
    let env = Env::initialised();
    let (_voice, chat, maria) = clinic(&env).await;
    let old_key = audit_key(&env);
    let before = env.tmp.path().join("before.tlbackup");
    env.ok(&["backup", "--out", before.to_str().unwrap()]);
    let old_keyring = std::fs::read(env.data.join("keyring.json")).unwrap();

    // Not while a server runs.
    let server = env.serve();
    let refused = env.fails(&mut env.cmd(&["keys", "rotate-tenant", "sunrise"]));
    assert!(refused.contains("a server is running"), "{refused}");
    drop(server);

    let said = env.ok(&["keys", "rotate-tenant", "sunrise"]);
    assert!(said.contains("1 patient keys re-wrapped, 2 identifiers"), "{said}");
    let new_key = audit_key(&env);
    assert_ne!(new_key, old_key);
    let handover = said.split_once("the old audit key and the new:\n").unwrap().1;
    let handover = format!("{}\n", handover.split("\nnew verifier key").next().unwrap());
    assert!(handover.contains(&format!("throughline-next-key {new_key}")), "{handover}");

    // Maria, by phone, with her call's words: the index and the keys moved with her.
    let (again, texts) = found(&env, &chat).await;
    assert_eq!(again, maria);
    assert!(texts.iter().any(|t| t == "my knee hurts since the fall"), "{texts:?}");

    // The trail: the export verifies against the handover under either key, and the chain is whole.
    let export = env.tmp.path().join("trail.jsonl");
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "jsonl", "--out", export.to_str().unwrap()]);
    let note = env.tmp.path().join("handover.note");
    std::fs::write(&note, &handover).unwrap();
    for key in [&old_key, &new_key] {
        env.ok(&["audit", "verify", export.to_str().unwrap(), "--checkpoint", note.to_str().unwrap(), "--key", key]);
    }
    let trail = std::fs::read_to_string(&export).unwrap();
    assert!(trail.contains("\"tenant.key_rotate\""));
    let doctor = env.ok(&["doctor"]);
    assert!(!doctor.contains("FAIL"), "{doctor}");

    // The old keyring against the rotated directory: the tenant's store does not open.
    let stale = Env::new();
    copy_dir(&env.data, &stale.data);
    std::fs::write(stale.data.join("keyring.json"), &old_keyring).unwrap();
    let out = stale.tmp.path().join("x.jsonl");
    let line = stale.fails(&mut stale.cmd(&["audit", "export", "--tenant", "sunrise", "--out", out.to_str().unwrap()]));
    assert!(line.contains("wrong key") || line.contains("not a database"), "{line}");
    assert!(!out.exists());

    // The backup from before restores with the keyring it carries.
    let restored = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_throughline"))
        .arg("--data-dir")
        .arg(&restored.data)
        .arg("restore")
        .arg(&before)
        .env("THROUGHLINE_PASSPHRASE", PASSPHRASE)
        .env_remove("THROUGHLINE_DATA_DIR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(audit_key(&restored), old_key);
    assert_eq!(found(&restored, &chat).await.0, maria);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[tokio::test]
async fn a_rotation_killed_after_any_step_leaves_the_old_state_or_the_new() {
    for (step, rotated) in [("after-copy", false), ("after-stage", true), ("after-rename", true)] {
        let env = Env::initialised();
        let (_voice, chat, maria) = clinic(&env).await;
        let old_key = audit_key(&env);
        let out = env.run(&["keys", "rotate-tenant", "sunrise", "--danger-crash-at", step]);
        assert!(!out.status.success(), "{step}: the process was stopped dead");
        // The next open finishes the rotation or drops its leftovers.
        let key = audit_key(&env);
        assert_eq!(key != old_key, rotated, "{step}");
        let tenants = std::fs::read_dir(env.data.join("tenants")).unwrap();
        let names: Vec<String> = tenants.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().all(|n| !n.ends_with(".next")), "{step}: {names:?}");
        let (again, texts) = found(&env, &chat).await;
        assert_eq!(again, maria, "{step}");
        assert!(texts.iter().any(|t| t.contains("knee")), "{step}: {texts:?}");
        let doctor = env.ok(&["doctor"]);
        assert!(!doctor.contains("FAIL"), "{step}: {doctor}");
        // And a rotation after the recovered one works.
        env.ok(&["keys", "rotate-tenant", "sunrise"]);
        assert_eq!(found(&env, &chat).await.0, maria, "{step}: rotated again");
    }
}

/// A store of the old page format (HMAC-SHA512: every store made before
/// SHA-256 became the format of new ones) opens as before, is backed up in
/// its own format (SQLite's backup copies pages whole), and moves to the
/// new format when its key is rotated: the migration path.
#[test]
fn an_old_format_store_opens_backs_up_and_moves_to_sha256_when_rotated() {
    use store::{AuditEntry, Countable, PageHmac, set_new_store_hmac};
    let env = Env::initialised();
    {
        let mut inst = env.installation();
        set_new_store_hmac(PageHmac::Sha512);
        let made = inst.create_tenant(
            &store::ids::TenantName::parse("oldclinic").unwrap(),
            policy::StateTtl::default(),
            &continuity::calendar::ClinicZone::utc(),
        );
        set_new_store_hmac(PageHmac::Sha256);
        made.unwrap();
        let mut store = inst.open_tenant("oldclinic").unwrap();
        assert_eq!(store.page_hmac().unwrap(), PageHmac::Sha512);
        let intake = AuditEntry::operator("test", audit::Action::CustomerCreate);
        store.create_customer("Ada Lovelace", "1970-01-01", &intake, inst.now_ms()).unwrap();
    }
    let backup = env.tmp.path().join("old.tlbackup");
    env.ok(&["backup", "--out", backup.to_str().unwrap()]);

    env.ok(&["keys", "rotate-tenant", "oldclinic"]);
    let inst = env.installation();
    let store = inst.open_tenant("oldclinic").unwrap();
    assert_eq!(store.page_hmac().unwrap(), PageHmac::Sha256, "rotation keeps the old format");
    assert_eq!(store.count(Countable::Customers).unwrap(), 1);
    store.verify_audit().unwrap();
}
