//! Erasure (GDPR Art. 17) end to end over real mTLS: crypto-shredding, no
//! trace in any file or export, a signed receipt, idempotence, the policy
//! gate, and a failure midway that leaves everything as it was.
#![allow(clippy::unwrap_used)]

mod util;

use std::process::Command;

use ring::signature::{ED25519, UnparsedPublicKey};
use serde_json::{Value, json};
use store::Countable;
use store::ids::CustomerId;
use util::Env;
use util::inproc::{InProcess, call};
use util::server::client;

#[tokio::test]
async fn erasure_shreds_everything_and_receipts_it() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice_cert = env.issue("sunrise", "voice");
    let chat_cert = env.issue("sunrise", "chat");
    let server = InProcess::start(&env);
    let (voice, chat) = (client(&voice_cert), client(&chat_cert));
    let post = reqwest::Method::POST;

    let (_, open) =
        call(&voice, &server, post.clone(), "/v1/sessions", json!({"identifiers": {"phone": "+1 415 555 0100"}})).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let customer = open["customer_id"].as_str().unwrap().to_owned();
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
        post.clone(),
        &format!("/v1/sessions/{sid}/turns"),
        json!({"speaker": "patient", "text": "my knee has been swelling"}),
    )
    .await;
    call(
        &voice,
        &server,
        reqwest::Method::PUT,
        &format!("/v1/sessions/{sid}/state/pending_booking_date"),
        json!({"value": "Thursday"}),
    )
    .await;
    call(&voice, &server, post.clone(), &format!("/v1/sessions/{sid}/end"), json!({"reason": "dropped"})).await;

    // An unconfirmed chat cannot ask for the erasure.
    let (_, claim) = call(
        &chat,
        &server,
        post.clone(),
        "/v1/sessions",
        json!({"identifiers": {"phone": "(415) 555-0100", "email": "maria.lopez@example.com"}}),
    )
    .await;
    let csid = claim["session_id"].as_str().unwrap().to_owned();
    let (status, body) = call(&chat, &server, post.clone(), &format!("/v1/sessions/{csid}/erasure"), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_confirmation_required")));

    // A failure midway (the audit record cannot be written) changes nothing.
    let before = {
        let inst = env.installation();
        let store = inst.open_tenant("sunrise").unwrap();
        store.danger_fail_audit_writes(true).unwrap();
        [Countable::Customers, Countable::Identifiers, Countable::Turns, Countable::StateKeys]
            .map(|c| store.count(c).unwrap())
    };
    let line = env.fails(&mut env.cmd(&["erasure", "--tenant", "sunrise", "--customer", &customer]));
    assert!(line.starts_with("error: "), "{line}");
    {
        let inst = env.installation();
        let store = inst.open_tenant("sunrise").unwrap();
        let after = [Countable::Customers, Countable::Identifiers, Countable::Turns, Countable::StateKeys]
            .map(|c| store.count(c).unwrap());
        assert_eq!(after, before, "a failed erasure changed rows");
        let tenant = inst.tenant("sunrise").unwrap();
        assert!(inst.system().ledger(&tenant.id).unwrap().is_empty(), "a failed erasure left a ledger entry");
        store.danger_fail_audit_writes(false).unwrap();
    }

    // The confirmed patient asks; the receipt is signed with the tenant's key.
    let (status, _) = call(
        &chat,
        &server,
        post.clone(),
        &format!("/v1/sessions/{csid}/identity/confirm"),
        json!({"date_of_birth": "1985-03-14"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, receipt) =
        call(&chat, &server, post.clone(), &format!("/v1/sessions/{csid}/erasure"), json!({})).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["receipt"]["customer"], customer.as_str());
    assert_eq!(receipt["receipt"]["erased"]["turns"], 1);
    let key = audit::VerifierKey::parse(env.ok(&["audit", "key", "--tenant", "sunrise"]).trim()).unwrap();
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, receipt["signature"].as_str().unwrap())
            .unwrap();
    UnparsedPublicKey::new(&ED25519, key.public_key)
        .verify(receipt["signed"].as_str().unwrap().as_bytes(), &signature)
        .expect("receipt signature verifies with the tenant's key");

    // The session and the patient are gone; the same number is a stranger now.
    let (status, _) =
        call(&chat, &server, reqwest::Method::GET, &format!("/v1/sessions/{csid}/context"), Value::Null).await;
    assert_eq!(status, 404);
    let (_, again) =
        call(&voice, &server, post.clone(), "/v1/sessions", json!({"identifiers": {"phone": "+1 415 555 0100"}})).await;
    assert_eq!(again["identity"]["status"], "new");
    assert_ne!(again["customer_id"].as_str(), Some(customer.as_str()));
    server.stop().await;

    // Idempotent: a staff request for the same patient returns the same receipt.
    let second: Value =
        serde_json::from_str(env.ok(&["erasure", "--tenant", "sunrise", "--customer", &customer]).trim()).unwrap();
    assert_eq!(second, receipt);
    let line =
        env.fails(&mut env.cmd(&["erasure", "--tenant", "sunrise", "--customer", &CustomerId::generate().to_string()]));
    assert!(line.contains("no such patient"), "{line}");

    // No key still held decrypts the old ciphertext: the only wrapped copy of
    // the patient's key is gone. The audit chain still verifies.
    {
        let inst = env.installation();
        let mut store = inst.open_tenant("sunrise").unwrap();
        let id = CustomerId::parse(&customer).unwrap();
        assert!(store.transaction().unwrap().data_key(&id).is_err());
        store.verify_audit().unwrap();
        let tenant = inst.tenant("sunrise").unwrap();
        let ledger = inst.system().ledger(&tenant.id).unwrap();
        assert_eq!(ledger.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), [customer.as_str()]);
    }
    let export = env.tmp.path().join("audit.jsonl");
    env.ok(&["audit", "export", "--tenant", "sunrise", "--out", export.to_str().unwrap()]);

    // Nothing of the patient in any file: stores, WAL, exports.
    let grep = Command::new("grep")
        .args(["-r", "-l", "-a", "-F", "-e", "5550100", "-e", "maria.lopez@example.com", "-e", "Maria", "-e", "Lopez"])
        .args(["-e", "1985-03-14", "-e", "knee", "-e", "Thursday"])
        .arg(&env.data)
        .arg(&export)
        .output()
        .unwrap();
    assert_eq!(grep.status.code(), Some(1), "found in: {}", String::from_utf8_lossy(&grep.stdout));
}

#[tokio::test]
async fn right_of_access_export_round_trips_every_fact() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice_cert = env.issue("sunrise", "voice");
    let chat_cert = env.issue("sunrise", "chat");
    let email_cert = env.issue("sunrise", "email");
    let server = InProcess::start(&env);
    let (voice, chat, email) = (client(&voice_cert), client(&chat_cert), client(&email_cert));
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    let (_, open) =
        call(&voice, &server, post.clone(), "/v1/sessions", json!({"identifiers": {"phone": "+1 415 555 0100"}})).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let customer = open["customer_id"].as_str().unwrap().to_owned();
    call(
        &voice,
        &server,
        reqwest::Method::PATCH,
        &format!("/v1/sessions/{sid}/customer"),
        json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"}),
    )
    .await;
    for (speaker, text) in [("agent", "How can I help?"), ("patient", "A check-up, Tuesday please")] {
        call(
            &voice,
            &server,
            post.clone(),
            &format!("/v1/sessions/{sid}/turns"),
            json!({"speaker": speaker, "text": text}),
        )
        .await;
    }
    call(
        &voice,
        &server,
        reqwest::Method::PUT,
        &format!("/v1/sessions/{sid}/state/pending_booking_date"),
        json!({"value": "Tuesday"}),
    )
    .await;
    call(&voice, &server, post.clone(), &format!("/v1/sessions/{sid}/end"), json!({"reason": "dropped"})).await;

    let ids = json!({"identifiers": {"phone": "(415) 555-0100", "email": "maria@example.com", "cookie": "c_browser_0123456789"}});
    let (_, open) = call(&chat, &server, post.clone(), "/v1/sessions", ids).await;
    let csid = open["session_id"].as_str().unwrap().to_owned();
    let (status, body) = call(&chat, &server, get.clone(), &format!("/v1/sessions/{csid}/export"), Value::Null).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_confirmation_required")));
    call(
        &chat,
        &server,
        post.clone(),
        &format!("/v1/sessions/{csid}/identity/confirm"),
        json!({"date_of_birth": "1985-03-14"}),
    )
    .await;
    call(
        &chat,
        &server,
        post.clone(),
        &format!("/v1/sessions/{csid}/turns"),
        json!({"speaker": "patient", "text": "hi again"}),
    )
    .await;

    let (status, doc) = call(&chat, &server, get.clone(), &format!("/v1/sessions/{csid}/export"), Value::Null).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["format"], "throughline-patient-export/v1");
    assert_eq!(doc["customer_id"], customer.as_str());
    assert_eq!(doc["withheld"], json!([]));
    assert_eq!(doc["identity"], json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"}));
    let mut identifiers: Vec<(String, String)> = doc["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap().to_owned(), i["value"].as_str().unwrap().to_owned()))
        .collect();
    identifiers.sort();
    assert_eq!(
        identifiers,
        [
            ("cookie".to_owned(), "c_browser_0123456789".to_owned()),
            ("email".to_owned(), "maria@example.com".to_owned()),
            ("phone".to_owned(), "+14155550100".to_owned())
        ]
    );
    let conversations = doc["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1);
    let c = &conversations[0];
    let sessions: Vec<(&str, Option<&str>)> = c["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["channel"].as_str().unwrap(), s["end_reason"].as_str()))
        .collect();
    assert_eq!(sessions, [("voice", Some("dropped")), ("chat", None)]);
    let turns: Vec<(&str, &str, &str)> = c["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["channel"].as_str().unwrap(), t["speaker"].as_str().unwrap(), t["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [
            ("voice", "agent", "How can I help?"),
            ("voice", "patient", "A check-up, Tuesday please"),
            ("chat", "patient", "hi again")
        ]
    );
    assert_eq!(c["turns"][0]["session_id"], sid.as_str());
    assert_eq!(c["state"]["pending_booking_date"]["value"], "Tuesday");
    assert!(c["state"]["pending_booking_date"]["expires_at"].as_i64().unwrap() > 0);
    let actions: Vec<&str> = doc["audit"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    for expected in [
        "session.open",
        "customer.update",
        "turn.append",
        "state.put",
        "session.end",
        "identity.confirm",
        "context.read",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from the export's audit part: {actions:?}");
    }
    assert!(doc["audit"].as_array().unwrap().iter().all(|r| r["customer_id"] == customer.as_str()));

    // Email, even confirmed, gets only what email may carry.
    let (_, eopen) =
        call(&email, &server, post.clone(), "/v1/sessions", json!({"identifiers": {"email": "maria@example.com"}}))
            .await;
    let esid = eopen["session_id"].as_str().unwrap().to_owned();
    call(
        &email,
        &server,
        post.clone(),
        &format!("/v1/sessions/{esid}/identity/confirm"),
        json!({"date_of_birth": "1985-03-14"}),
    )
    .await;
    let (status, edoc) = call(&email, &server, get.clone(), &format!("/v1/sessions/{esid}/export"), Value::Null).await;
    assert_eq!(status, 200, "{edoc}");
    assert!(edoc["withheld"].as_array().unwrap().contains(&json!("conversation")));
    assert!(!edoc.to_string().contains("Tuesday please") && !edoc.to_string().contains("hi again"), "{edoc}");
    assert_eq!(edoc["identity"]["name"], "Maria Lopez");
    server.stop().await;

    // Staff export: everything, audited.
    let out = env.tmp.path().join("export.json");
    env.ok(&["export", "--tenant", "sunrise", "--customer", &customer, "--out", out.to_str().unwrap()]);
    let staff: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(staff["withheld"], json!([]));
    assert_eq!(staff["conversations"][0]["turns"].as_array().unwrap().len(), 3);
    let inst = env.installation();
    let records = inst.open_tenant("sunrise").unwrap().audit_records().unwrap();
    let exports: Vec<audit::Outcome> =
        records.iter().filter(|r| r.action == "customer.export").map(|r| r.outcome).collect();
    assert_eq!(exports, [audit::Outcome::Refused, audit::Outcome::Ok, audit::Outcome::Ok, audit::Outcome::Ok]);
}

/// On a cluster node's data directory the CLI commands that write tenant
/// stores directly are refused (a standby's copy is overwritten by the log,
/// so an erasure there would be silently undone); reads still work.
#[test]
fn store_writing_commands_are_refused_on_a_cluster_node() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    std::fs::write(env.data.join("cluster-node"), "n1\n").unwrap();
    for args in [
        vec!["erasure", "--tenant", "sunrise", "--customer", "cus_00000000000000000000000000000000"],
        vec!["purge"],
        vec!["audit", "checkpoint", "--tenant", "sunrise"],
        vec!["keys", "rotate-tenant", "sunrise"],
    ] {
        let line = env.fails(&mut env.cmd(&args));
        assert!(line.contains("cluster node n1") && line.contains("use the API or the console"), "{args:?}: {line}");
    }
    let out = env.tmp.path().join("trail.jsonl");
    env.ok(&["audit", "export", "--tenant", "sunrise", "--out", out.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&out).unwrap().contains("tenant.create"));
}
