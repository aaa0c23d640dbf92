//! Erasure (GDPR Art. 17) end to end over real mTLS: crypto-shredding, no
//! trace in any file or export, a signed receipt, idempotence, the policy
//! gate, and a failure midway that leaves everything as it was.
#![allow(clippy::unwrap_used)]

mod util;

use std::process::Command;
use std::sync::Arc;

use ring::signature::{ED25519, UnparsedPublicKey};
use secrecy::SecretString;
use serde_json::{Value, json};
use throughline::ids::CustomerId;
use throughline::store::Countable;
use throughline::{Installation, SystemClock};
use util::inproc::InProcess;
use util::server::client;
use util::{Env, PASSPHRASE};

async fn call(
    http: &reqwest::Client,
    server: &InProcess,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let res = http.request(method, server.url(path)).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn installation(env: &Env) -> Installation {
    Installation::open(&env.data, &SecretString::from(PASSPHRASE.to_owned()), Arc::new(SystemClock)).unwrap()
}

#[tokio::test]
async fn erasure_shreds_everything_and_receipts_it() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise"]);
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
        let inst = installation(&env);
        let store = inst.open_tenant("sunrise").unwrap();
        store.danger_fail_audit_writes(true).unwrap();
        [Countable::Customers, Countable::Identifiers, Countable::Turns, Countable::StateKeys]
            .map(|c| store.count(c).unwrap())
    };
    let line = env.fails(&mut env.cmd(&["erasure", "--tenant", "sunrise", "--customer", &customer]));
    assert!(line.starts_with("error: "), "{line}");
    {
        let inst = installation(&env);
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
        let inst = installation(&env);
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
