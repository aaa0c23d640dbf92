//! The tamper-evident audit trail end to end: a voice → chat scenario over
//! real mTLS, a checkpoint taken early, exports verified offline against it,
//! every corruption refused with the first bad record named, fail-closed
//! writes, and no PHI in any export.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use store::Countable;
use util::Env;
use util::inproc::{InProcess, call};
use util::server::client;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[tokio::test]
async fn export_checkpoint_verify_and_every_corruption() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    env.tenant(&["harbor"]);
    let voice_cert = env.issue("sunrise", "voice");
    let chat_cert = env.issue("sunrise", "chat");
    let server = InProcess::start(&env);
    let (voice, chat) = (client(&voice_cert), client(&chat_cert));
    let (_, open) = call(
        &voice,
        &server,
        reqwest::Method::POST,
        "/v1/sessions",
        json!({"identifiers": {"phone": "+1 415 555 0100"}}),
    )
    .await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    call(
        &voice,
        &server,
        reqwest::Method::PATCH,
        &format!("/v1/sessions/{sid}/customer"),
        json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"}),
    )
    .await;
    call(
        &voice,
        &server,
        reqwest::Method::POST,
        &format!("/v1/sessions/{sid}/turns"),
        json!({"speaker": "patient", "text": "book me for Tuesday"}),
    )
    .await;
    call(&voice, &server, reqwest::Method::POST, &format!("/v1/sessions/{sid}/end"), json!({"reason": "dropped"}))
        .await;

    // The clinic takes a checkpoint and keeps it elsewhere.
    let dir = env.tmp.path().to_owned();
    let cp1 = dir.join("cp1.note");
    env.ok(&["audit", "checkpoint", "--tenant", "sunrise", "--out", cp1.to_str().unwrap()]);
    let cp1_size: u64 = std::fs::read_to_string(&cp1).unwrap().lines().nth(1).unwrap().parse().unwrap();

    let (_, open) = call(
        &chat,
        &server,
        reqwest::Method::POST,
        "/v1/sessions",
        json!({"identifiers": {"phone": "(415) 555-0100", "email": "maria@example.com"}}),
    )
    .await;
    let csid = open["session_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &chat,
        &server,
        reqwest::Method::POST,
        &format!("/v1/sessions/{csid}/identity/confirm"),
        json!({"date_of_birth": "1985-03-14"}),
    )
    .await;
    assert_eq!(status, 200);

    // Fail closed: when the audit record cannot be written, the request fails
    // and nothing is changed.
    let before = {
        let inst = env.installation();
        let store = inst.open_tenant("sunrise").unwrap();
        store.danger_fail_audit_writes(true).unwrap();
        (store.count(Countable::Turns).unwrap(), store.count(Countable::AuditRecords).unwrap())
    };
    let (status, body) = call(
        &chat,
        &server,
        reqwest::Method::POST,
        &format!("/v1/sessions/{csid}/turns"),
        json!({"speaker": "patient", "text": "fail me"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (500, Some("internal")));
    assert!(!body.to_string().contains("audit write refused"), "internals leaked: {body}");
    let (status, _) = call(
        &chat,
        &server,
        reqwest::Method::POST,
        "/v1/sessions",
        json!({"identifiers": {"cookie": "c_0123456789abcdef"}}),
    )
    .await;
    assert_eq!(status, 500, "a session open without its audit record must fail");
    {
        let inst = env.installation();
        let store = inst.open_tenant("sunrise").unwrap();
        assert_eq!((store.count(Countable::Turns).unwrap(), store.count(Countable::AuditRecords).unwrap()), before);
        assert_eq!(store.count(Countable::Customers).unwrap(), 1, "the refused open created a patient");
        store.danger_fail_audit_writes(false).unwrap();
    }
    let (status, _) = call(
        &chat,
        &server,
        reqwest::Method::POST,
        &format!("/v1/sessions/{csid}/turns"),
        json!({"speaker": "patient", "text": "works again"}),
    )
    .await;
    assert_eq!(status, 201);
    server.stop().await;

    // Exports in all three formats, with no PHI in any.
    let jsonl = dir.join("audit.jsonl");
    let csv = dir.join("audit.csv");
    let fhir = dir.join("audit.fhir.ndjson");
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "jsonl", "--out", jsonl.to_str().unwrap()]);
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "csv", "--out", csv.to_str().unwrap()]);
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "fhir", "--out", fhir.to_str().unwrap()]);
    // The FHIR export passes a real FHIR R4 validator (fhir.resources 6.1.0 = FHIR 4.0.1).
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let python = std::process::Command::new(scripts.join("fhir-venv.sh")).output().unwrap();
    assert!(python.status.success(), "validator setup: {}", String::from_utf8_lossy(&python.stderr));
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let validated =
        std::process::Command::new(&python).arg(scripts.join("validate-fhir-audit.py")).arg(&fhir).output().unwrap();
    let said = String::from_utf8_lossy(&validated.stdout);
    assert!(validated.status.success(), "{said}{}", String::from_utf8_lossy(&validated.stderr));
    assert!(said.contains("AuditEvent resources valid against FHIR R4 4.0.1"), "{said}");
    eprintln!("{said}");
    for f in [&jsonl, &csv, &fhir] {
        let text = std::fs::read_to_string(f).unwrap();
        for phi in ["5550100", "Maria", "Lopez", "1985-03-14", "maria@example.com", "Tuesday", "works again"] {
            assert!(!text.contains(phi), "{phi} in {}", f.display());
        }
    }
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("seq,at,actor_kind,actor,channel,action"));
    // Certificate events are on the tenant's own chain.
    let exported = std::fs::read_to_string(&jsonl).unwrap();
    assert!(exported.contains(&format!("voice:{}", voice_cert.serial)), "certificate.issue missing");
    assert_eq!(exported.matches("\"action\":\"certificate.issue\"").count(), 2);
    let key = env.ok(&["audit", "key", "--tenant", "sunrise"]).trim().to_owned();

    // Offline verification needs no data dir and no passphrase.
    let verify = |file: &Path, checkpoint: &Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_throughline"));
        cmd.args(["audit", "verify"]).arg(file).arg("--checkpoint").arg(checkpoint).args(["--key", &key]);
        cmd.env_remove("THROUGHLINE_PASSPHRASE").env("THROUGHLINE_DATA_DIR", "/nonexistent");
        cmd
    };
    let out = verify(&jsonl, &cp1).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("consistent with the signed checkpoint at size {cp1_size}")), "{said}");

    let good = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let join = |ls: &[&str]| format!("{}\n", ls.join("\n"));
    let altered = {
        let mut ls: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        ls[2] = ls[2].replacen("\"outcome\":\"ok\"", "\"outcome\":\"refused\"", 1);
        assert_ne!(ls[2], lines[2]);
        format!("{}\n", ls.join("\n"))
    };
    let mut dropped = lines.clone();
    dropped.remove(3);
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    let mut duplicated = lines.clone();
    duplicated.insert(2, lines[1]);
    let truncated = &lines[..(cp1_size as usize - 1)];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("altered", altered.into_bytes(), "record 3: stored hash does not match"),
        ("dropped", join(&dropped).into_bytes(), "record 5: expected sequence number 4"),
        ("swapped", join(&swapped).into_bytes(), "record 5: expected sequence number 4"),
        ("duplicated", join(&duplicated).into_bytes(), "record 2: expected sequence number 3"),
        ("truncated", join(truncated).into_bytes(), "records were dropped from the end"),
        ("empty", Vec::new(), "the export is empty"),
        ("not-utf8", vec![b'{', 0xff, 0xfe, b'}'], "line 1: not UTF-8"),
        ("garbage", b"not json\n".to_vec(), "line 1: not an audit record"),
    ];
    for (name, bytes, expected) in cases {
        let file = write(&dir, &format!("{name}.jsonl"), &bytes);
        let line = env.fails(&mut verify(&file, &cp1));
        assert!(line.contains(expected), "{name}: {line}");
    }

    // A forged signature, and a checkpoint of another tenant.
    let note = std::fs::read_to_string(&cp1).unwrap();
    let sig_at = note.rfind(' ').unwrap() + 5;
    let mut forged = note.clone();
    forged.replace_range(sig_at..sig_at + 1, if &note[sig_at..sig_at + 1] == "A" { "B" } else { "A" });
    let line = env.fails(&mut verify(&jsonl, &write(&dir, "forged.note", forged.as_bytes())));
    assert!(line.contains("checkpoint"), "{line}");
    let harbor_cp = dir.join("harbor.note");
    env.ok(&["audit", "checkpoint", "--tenant", "harbor", "--out", harbor_cp.to_str().unwrap()]);
    let line = env.fails(&mut verify(&jsonl, &harbor_cp));
    assert!(line.contains("the origin is not the verifier key's log"), "{line}");

    // History rewritten and re-signed with the right key: consistent with
    // itself, but not with the checkpoint the clinic kept.
    let inst = env.installation();
    let tenant = inst.tenant("sunrise").unwrap();
    let keys = inst.tenant_keys(&tenant.id).unwrap();
    let mut records = audit::export::parse_jsonl(good.as_bytes()).unwrap();
    records[1].0.outcome = audit::Outcome::Refused;
    let mut prev = audit::GENESIS.to_owned();
    for (r, h) in &mut records {
        r.prev_hash = prev.clone();
        *h = r.hash_hex();
        prev = h.clone();
    }
    let rewritten: String = records.iter().map(|(r, h)| audit::export::to_jsonl_line(r, h) + "\n").collect();
    let rewritten_file = write(&dir, "rewritten.jsonl", rewritten.as_bytes());
    let leaves = audit::export::leaves(&records);
    let vkey = audit::VerifierKey::parse(&key).unwrap();
    let resigned =
        audit::Checkpoint { origin: vkey.name.clone(), size: leaves.len() as u64, root: audit::merkle::root(&leaves) }
            .sign(&vkey, |m| keys.sign(m));
    let resigned_file = write(&dir, "resigned.note", resigned.as_bytes());
    assert!(verify(&rewritten_file, &resigned_file).output().unwrap().status.success(), "self-consistent forgery");
    let line = env.fails(&mut verify(&rewritten_file, &cp1));
    assert!(line.contains("history was rewritten after it was signed"), "{line}");

    // A range export verifies within its range, and says it cannot be held
    // against a checkpoint.
    let fifth: Value = serde_json::from_str(lines[4]).unwrap();
    let since = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(fifth["at"].as_i64().unwrap()) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let range = dir.join("range.jsonl");
    env.ok(&["audit", "export", "--tenant", "sunrise", "--since", &since, "--out", range.to_str().unwrap()]);
    let mut plain = std::process::Command::new(env!("CARGO_BIN_EXE_throughline"));
    let out = plain.args(["audit", "verify"]).arg(&range).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let ats: Vec<i64> =
        lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["at"].as_i64().unwrap()).collect();
    let first_range_line = std::fs::read_to_string(&range).unwrap().lines().next().unwrap_or("").to_owned();
    assert!(
        out.status.success() && said.contains("chain intact within the range"),
        "{said} since {since} ats {ats:?} first {first_range_line}"
    );
    let line = env.fails(&mut verify(&range, &cp1));
    assert!(line.contains("cannot be checked against a checkpoint"), "{line}");
    let line =
        env.fails(&mut env.cmd(&["audit", "export", "--tenant", "sunrise", "--since", "yesterday", "--out", "/tmp/x"]));
    assert!(line.contains("is not a date"), "{line}");

    // Inclusion proof of one record.
    let included = env.ok(&["audit", "prove", "--tenant", "sunrise", "--record", "3"]);
    assert!(included.starts_with("included: record 3 in "), "{included}");
    let line = env.fails(&mut env.cmd(&["audit", "prove", "--tenant", "sunrise", "--record", "100000"]));
    assert!(line.contains("no record 100000"), "{line}");

    // The server signs a new checkpoint consistent with the old one, and proves it.
    let cp2 = dir.join("cp2.note");
    env.ok(&["audit", "checkpoint", "--tenant", "sunrise", "--out", cp2.to_str().unwrap()]);
    let proof = env.ok(&["audit", "prove", "--tenant", "sunrise", "--from-checkpoint", cp1.to_str().unwrap()]);
    assert!(proof.starts_with(&format!("consistent: {cp1_size} -> ")), "{proof}");
}
