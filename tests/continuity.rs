//! Continuity end to end over real mTLS: the seed's first half (voice call
//! drops, chat resumes), identity policy on responses, TTL expiry with an
//! injected clock, a family phone, isolation, and bad input that leaves no
//! row behind.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::process::Command;

use serde_json::{Value, json};
use store::Countable;
use util::Env;
use util::api::Api;
use util::inproc::InProcess;

const PHONE_VOICE: &str = "+1 415 555 0100";
const PHONE_CHAT: &str = "(415) 555-0100";
const COOKIE: &str = "c_chat_cookie_0123456789";

fn env_with(tenants: &[(&str, &str)]) -> Env {
    let env = Env::initialised();
    for (name, ttl) in tenants {
        env.tenant(&[name, "--state-ttl-days", ttl]);
    }
    env
}

fn counts(env: &Env, tenant: &str) -> Vec<u64> {
    let inst = env.installation();
    let store = inst.open_tenant(tenant).unwrap();
    [
        Countable::Customers,
        Countable::Identifiers,
        Countable::Sessions,
        Countable::Turns,
        Countable::StateKeys,
        Countable::Conversations,
    ]
    .into_iter()
    .map(|c| store.count(c).unwrap())
    .collect()
}

/// Voice intake, the call drops; ten minutes later chat resumes the same
/// conversation once the patient confirms their date of birth.
async fn voice_intake_then_drop(voice: &Api) -> Value {
    let open = voice
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": PHONE_VOICE}, "external_ref": "call-1"})),
        )
        .await;
    assert_eq!(open["identity"]["status"], "new");
    assert_eq!(open["identity"]["strength"], "asserted");
    let sid = open["session_id"].as_str().unwrap().to_owned();
    // A retrying voice bridge gets the same session.
    let again = voice
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": PHONE_VOICE}, "external_ref": "call-1"})),
        )
        .await;
    assert_eq!(again["session_id"], open["session_id"]);

    let s = |p: &str| format!("/v1/sessions/{sid}{p}");
    let ctx = voice
        .ok(
            reqwest::Method::PATCH,
            &s("/customer"),
            Some(json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"})),
        )
        .await;
    assert_eq!(ctx["patient"]["name"], "Maria Lopez");
    for (speaker, text) in [
        ("agent", "Sunrise Clinic, how can I help?"),
        ("patient", "I'd like to book a check-up, Tuesday if possible."),
        ("agent", "Tuesday works. Let me check the times"),
    ] {
        voice.ok(reqwest::Method::POST, &s("/turns"), Some(json!({"speaker": speaker, "text": text}))).await;
    }
    let put =
        voice.ok(reqwest::Method::PUT, &s("/state/pending_booking_date"), Some(json!({"value": "Tuesday"}))).await;
    assert!(put["expires_at"].as_i64().unwrap() > 0);
    voice.ok(reqwest::Method::POST, &s("/end"), Some(json!({"reason": "dropped"}))).await;
    open
}

#[tokio::test]
async fn seed_first_half_voice_drops_chat_resumes() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let chat_cert = env.issue("sunrise", "chat");
    let server = InProcess::start(&env);
    let (voice, chat) = (Api::new(&server, &voice_cert), Api::new(&server, &chat_cert));

    let call = voice_intake_then_drop(&voice).await;
    server.advance_minutes(10);

    // Chat: the same number typed another way (a claim) plus the browser cookie.
    let open = chat
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": PHONE_CHAT, "cookie": COOKIE}})),
        )
        .await;
    // A claim is answered as a number nobody knows would be (M8): no
    // status, ids or greeting tell the typist that Maria is a patient.
    assert_eq!(open["identity"]["status"], "new");
    assert_eq!(open["identity"]["strength"], "claim");
    assert_eq!((&open["customer_id"], &open["conversation_id"]), (&Value::Null, &Value::Null));
    assert_eq!(open["identity"]["confirm_with"], json!(["date_of_birth"]));
    assert_eq!(open["greeting_name"], Value::Null);
    assert_eq!(open["patient"], Value::Null);
    assert_eq!(open["recent_turns"], json!([]));
    assert_eq!(open["state"], json!({}));
    let text = open.to_string();
    for secret in ["Tuesday", "1985-03-14", "Lopez", "check-up"] {
        assert!(!text.contains(secret), "{secret} leaked before confirmation: {text}");
    }
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let confirm = format!("/v1/sessions/{sid}/identity/confirm");
    // Writing into the conversation needs confirmation too.
    let (status, body) =
        chat.post(&format!("/v1/sessions/{sid}/turns"), json!({"speaker": "patient", "text": "hi"})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_confirmation_required")));

    let (status, body) = chat.post(&confirm, json!({"date_of_birth": "1985-03-15"})).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("identity_not_confirmed")));
    assert!(!body["message"].as_str().unwrap().contains("date"), "must not say which field: {body}");

    let ctx = chat.ok(reqwest::Method::POST, &confirm, Some(json!({"date_of_birth": "1985-03-14"}))).await;
    assert_eq!(ctx["identity"]["confirmed"], true);
    assert_eq!(ctx["conversation_id"], call["conversation_id"]);
    assert_eq!(ctx["state"]["pending_booking_date"], "Tuesday");
    let turns = ctx["recent_turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert!(turns.iter().all(|t| t["channel"] == "voice"));
    assert_eq!(turns[1]["text"], "I'd like to book a check-up, Tuesday if possible.");
    assert_eq!(ctx["brief"], "voice call 10 min ago, dropped; pending: booking date Tuesday");
    assert_eq!(ctx["withheld"], json!([]));

    // The cookie was linked on confirmation: the next chat on this browser
    // finds her, but a browser is a device, not a person (N4): confirm again.
    server.advance_minutes(60);
    let next = chat.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"cookie": COOKIE}}))).await;
    assert_eq!((&next["identity"]["strength"], &next["conversation_id"]), (&json!("claim"), &Value::Null));
    assert_eq!(next["identity"]["confirm_with"], json!(["date_of_birth"]));
    let sid = next["session_id"].as_str().unwrap().to_owned();
    let confirm = format!("/v1/sessions/{sid}/identity/confirm");
    let next = chat.ok(reqwest::Method::POST, &confirm, Some(json!({"date_of_birth": "1985-03-14"}))).await;
    assert_eq!(next["conversation_id"], call["conversation_id"]);
    assert_eq!(next["state"]["pending_booking_date"], "Tuesday");

    // 30 days later the state has expired and is never returned.
    server.advance_minutes(30 * 24 * 60);
    let later = chat.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"cookie": COOKIE}}))).await;
    let sid = later["session_id"].as_str().unwrap().to_owned();
    let confirm = format!("/v1/sessions/{sid}/identity/confirm");
    let later = chat.ok(reqwest::Method::POST, &confirm, Some(json!({"date_of_birth": "1985-03-14"}))).await;
    assert_eq!(later["conversation_id"], call["conversation_id"]);
    assert_eq!(later["state"], json!({}));
    assert_eq!(later["recent_turns"].as_array().unwrap().len(), 3, "history stays");
    server.stop().await;

    // The audit chain verifies and holds the PHI reads, with no PHI in it.
    let inst = env.installation();
    let store = inst.open_tenant("sunrise").unwrap();
    store.verify_audit().unwrap();
    let records = store.audit_records().unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    for expected in [
        "session.open",
        "context.read",
        "customer.update",
        "turn.append",
        "state.put",
        "session.end",
        "identity.confirm",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    let refused =
        records.iter().filter(|r| r.action == "identity.confirm" && r.outcome == audit::Outcome::Refused).count();
    assert_eq!(refused, 1);
    let dump = format!("{records:?}");
    for secret in ["Maria", "1985-03-14", "Tuesday", "5550100", COOKIE] {
        assert!(!dump.contains(secret), "{secret} in audit records");
    }
    drop(store);
    drop(inst);

    // Nothing identifying in the clear anywhere in the data directory.
    let grep = Command::new("grep")
        .args(["-r", "-l", "-a", "-F", "-e", "5550100", "-e", "Maria", "-e", "Tuesday", "-e", COOKIE, "-e", "check-up"])
        .arg(&env.data)
        .output()
        .unwrap();
    assert_eq!(grep.status.code(), Some(1), "plaintext in: {}", String::from_utf8_lossy(&grep.stdout));
}

#[tokio::test]
async fn a_seven_day_tenant_expires_state_after_seven_days() {
    let env = env_with(&[("weekly", "7")]);
    let voice_cert = env.issue("weekly", "voice");
    let server = InProcess::start(&env);
    let voice = Api::new(&server, &voice_cert);
    let open =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    let sid = open["session_id"].as_str().unwrap();
    voice
        .ok(reqwest::Method::PUT, &format!("/v1/sessions/{sid}/state/pending_refill"), Some(json!({"value": "yes"})))
        .await;
    let ctx = |v: Value| v["state"]["pending_refill"].clone();
    server.advance_minutes(6 * 24 * 60);
    let six = voice.ok(reqwest::Method::GET, &format!("/v1/sessions/{sid}/context"), None).await;
    assert_eq!(ctx(six), "yes");
    server.advance_minutes(2 * 24 * 60);
    let eight = voice.ok(reqwest::Method::GET, &format!("/v1/sessions/{sid}/context"), None).await;
    assert_eq!(ctx(eight), Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn family_phone_is_ambiguous_until_the_right_date_of_birth() {
    let env = env_with(&[("sunrise", "30")]);
    // Two patients registered with one household number.
    {
        let inst = env.installation();
        let mut store = inst.open_tenant("sunrise").unwrap();
        let who = store::AuditEntry::operator("test", audit::Action::CustomerCreate);
        for (name, dob) in [("Ana Reyes", "1979-06-02"), ("Luis Reyes", "2008-11-23")] {
            let id = store.create_customer(name, dob, &who, 1).unwrap();
            store.link_identifier(store::IdentifierKind::Phone, "+14155550177", &id, "registration", 1).unwrap();
        }
    }
    let chat_cert = env.issue("sunrise", "chat");
    let server = InProcess::start(&env);
    let chat = Api::new(&server, &chat_cert);

    let open =
        chat.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "415-555-0177"}}))).await;
    // Typed into chat, the family's number is a claim: veiled like any other.
    assert_eq!(open["identity"]["status"], "new");
    assert_eq!(open["identity"]["candidates"], 0);
    assert_eq!(open["identity"]["confirm_with"], json!(["date_of_birth"]));
    assert_eq!((open["customer_id"].clone(), open["greeting_name"].clone()), (Value::Null, Value::Null));
    assert_eq!(open["withheld"].as_array().unwrap().len(), 7);
    for secret in ["Ana", "Luis", "Reyes", "1979", "2008"] {
        assert!(!open.to_string().contains(secret), "{secret} leaked: {open}");
    }
    let sid = open["session_id"].as_str().unwrap();
    let ctx = chat
        .ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{sid}/identity/confirm"),
            Some(json!({"date_of_birth": "2008-11-23"})),
        )
        .await;
    assert_eq!(ctx["identity"]["status"], "resolved");
    assert_eq!(ctx["patient"]["name"], "Luis Reyes");

    // Five wrong dates lock the session; the sixth attempt is refused outright.
    let open =
        chat.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "415-555-0177"}}))).await;
    let confirm = format!("/v1/sessions/{}/identity/confirm", open["session_id"].as_str().unwrap());
    for attempt in 1..=5 {
        let (status, body) = chat.post(&confirm, json!({"date_of_birth": format!("1990-01-0{attempt}")})).await;
        assert_eq!(status, 401, "{body}");
        let expected = if attempt == 5 { "identity_locked" } else { "identity_not_confirmed" };
        assert_eq!(body["error"], expected);
    }
    let (status, body) = chat.post(&confirm, json!({"date_of_birth": "2008-11-23"})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_locked")));
    let ctx = chat.ok(reqwest::Method::GET, &confirm.replace("/identity/confirm", "/context"), None).await;
    assert_eq!(ctx["identity"]["locked"], true);
    server.stop().await;

    let inst = env.installation();
    let records = inst.open_tenant("sunrise").unwrap().audit_records().unwrap();
    let refusals: Vec<Option<&str>> = records
        .iter()
        .filter(|r| r.action == "identity.confirm" && r.outcome == audit::Outcome::Refused)
        .map(|r| r.reason.as_deref())
        .collect();
    assert_eq!(
        refusals,
        [
            Some("mismatch"),
            Some("mismatch"),
            Some("mismatch"),
            Some("mismatch"),
            Some("mismatch_locked"),
            Some("locked")
        ]
    );
}

#[tokio::test]
async fn tenants_and_channels_are_isolated() {
    let env = env_with(&[("sunrise", "30"), ("harbor", "30")]);
    let sunrise_voice = env.issue("sunrise", "voice");
    let sunrise_chat = env.issue("sunrise", "chat");
    let harbor_chat = env.issue("harbor", "chat");
    let server = InProcess::start(&env);
    let voice = Api::new(&server, &sunrise_voice);
    let open =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    let sid = open["session_id"].as_str().unwrap();

    // Another tenant's certificate cannot see or touch the session: it does
    // not exist for that tenant (404 rather than 403, so existence is not revealed).
    let harbor = Api::new(&server, &harbor_chat);
    let (status, body) = harbor.send(reqwest::Method::GET, &format!("/v1/sessions/{sid}/context"), None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("session_not_found")));
    let (status, _) = harbor.post(&format!("/v1/sessions/{sid}/turns"), json!({"speaker": "agent", "text": "x"})).await;
    assert_eq!(status, 404);
    // The same number on another tenant is another patient.
    let other =
        harbor.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    assert_eq!(other["identity"]["status"], "new");

    // A chat certificate cannot act in a voice session.
    let chat = Api::new(&server, &sunrise_chat);
    let (status, body) = chat.post(&format!("/v1/sessions/{sid}/end"), json!({"reason": "completed"})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong_channel")));
    // Nor can a request body name a channel.
    let (status, body) =
        chat.post("/v1/sessions", json!({"identifiers": {"cookie": COOKIE}, "channel": "voice"})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")));
    server.stop().await;
}

#[tokio::test]
async fn conflicting_identifiers_resolve_by_priority_and_are_recorded() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let email_cert = env.issue("sunrise", "email");
    let server = InProcess::start(&env);
    let voice = Api::new(&server, &voice_cert);
    let email = Api::new(&server, &email_cert);
    let a = voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    // B writes in; the clinic's MTA vouches for the sender.
    let mail = b"From: B <b@example.com>\r\nSubject: hello\r\nMessage-ID: <b1@example.com>\r\n\r\nHello.\r\n".to_vec();
    let (status, b) = email.delivered("/v1/email/inbound", mail).await;
    assert_eq!(status, 201, "{b}");
    let b = &b["context"];
    assert!(b["customer_id"].is_string(), "{b}");
    assert_ne!(a["customer_id"], b["customer_id"]);
    // Phone says A, email says B: phone wins, the conflict is recorded, nothing merges.
    let both = voice
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": PHONE_VOICE, "email": " b@Example.COM "}})),
        )
        .await;
    assert_eq!(both["customer_id"], a["customer_id"]);
    server.stop().await;
    let inst = env.installation();
    let store = inst.open_tenant("sunrise").unwrap();
    assert_eq!(store.count(Countable::Conflicts).unwrap(), 1);
    assert_eq!(store.count(Countable::Customers).unwrap(), 2);
}

#[tokio::test]
async fn bad_input_gets_a_clear_code_and_writes_nothing() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let server = InProcess::start(&env);
    let voice = Api::new(&server, &voice_cert);
    let open =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let before = counts(&env, "sunrise");

    let s = |p: &str| format!("/v1/sessions/{sid}{p}");
    let long = "x".repeat(16 * 1024 + 1);
    let cases: Vec<(reqwest::Method, String, Value, u16, &str)> = vec![
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            json!({"identifiers": {"phone": "not a phone"}}),
            400,
            "invalid_phone",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            json!({"identifiers": {"email": "maria@"}}),
            400,
            "invalid_email",
        ),
        (reqwest::Method::POST, "/v1/sessions".into(), json!({"identifiers": {}}), 400, "no_identifiers"),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            json!({"identifiers": {"phone": 4155550100u64}}),
            400,
            "invalid_json",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            json!({"identifiers": {"cookie": "short"}}),
            400,
            "invalid_cookie",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions".into(),
            json!({"identifiers": {"resume_token": "rt1.AAAA.BBBB"}}),
            401,
            "invalid_resume_token",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions/ses_0123/turns".into(),
            json!({"speaker": "agent", "text": "x"}),
            404,
            "session_not_found",
        ),
        (
            reqwest::Method::POST,
            "/v1/sessions/ses_0123456789abcdef0123456789abcdef/turns".into(),
            json!({"speaker": "agent", "text": "x"}),
            404,
            "session_not_found",
        ),
        (reqwest::Method::POST, s("/turns"), json!({"speaker": "robot", "text": "x"}), 400, "invalid_speaker"),
        (reqwest::Method::POST, s("/turns"), json!({"speaker": "agent", "text": long}), 400, "invalid_text"),
        (reqwest::Method::POST, s("/turns"), json!({"speaker": "agent"}), 400, "invalid_json"),
        (reqwest::Method::PUT, s("/state/Bad-Key"), json!({"value": "x"}), 400, "invalid_state_key"),
        (reqwest::Method::PUT, s("/state/ok_key"), json!({"value": "x".repeat(4097)}), 400, "invalid_state_value"),
        (reqwest::Method::PUT, s("/state/ok_key"), json!({"value": 5}), 400, "invalid_json"),
        (reqwest::Method::DELETE, s("/state/never_set"), Value::Null, 404, "state_key_not_found"),
        (reqwest::Method::PATCH, s("/customer"), json!({"date_of_birth": "14/03/1985"}), 400, "invalid_date_of_birth"),
        (reqwest::Method::PATCH, s("/customer"), json!({}), 400, "empty_patch"),
        (reqwest::Method::POST, s("/end"), json!({"reason": "bored"}), 400, "invalid_end_reason"),
        (reqwest::Method::POST, s("/identity/confirm"), json!({"shoe_size": 42}), 400, "invalid_json"),
    ];
    for (method, path, body, status, code) in cases {
        let sent = body.to_string();
        let body = (!body.is_null()).then_some(body);
        let (got, v) = voice.send(method.clone(), &path, body).await;
        assert_eq!((got, v["error"].as_str()), (status, Some(code)), "{method} {path}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        // Error messages never echo what was sent (it may be PHI).
        assert!(!v["message"].as_str().unwrap().contains("4155550100"), "{sent} echoed: {v}");
    }
    // Invalid UTF-8 in a JSON body.
    let res = voice
        .http
        .post(server.url("/v1/sessions"))
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_json");
    // An expired resume token.
    voice.ok(reqwest::Method::PATCH, &s("/customer"), Some(json!({"name": "Maria Lopez"}))).await;
    let token =
        voice.ok(reqwest::Method::POST, &s("/resume-token"), None).await["resume_token"].as_str().unwrap().to_owned();
    server.advance_minutes(8 * 24 * 60);
    let (status, v) = voice.post("/v1/sessions", json!({"identifiers": {"resume_token": token}})).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("resume_token_expired")));
    server.stop().await;
    assert_eq!(counts(&env, "sunrise"), before, "a refused request wrote rows");
}

#[tokio::test]
async fn resume_token_resumes_with_proof_of_possession() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let chat_cert = env.issue("sunrise", "chat");
    let server = InProcess::start(&env);
    let (voice, chat) = (Api::new(&server, &voice_cert), Api::new(&server, &chat_cert));
    let call = voice_intake_then_drop(&voice).await;
    // The voice side sends a link by SMS; a fresh voice session issues the token.
    let open =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    let sid = open["session_id"].as_str().unwrap();
    let token = voice.ok(reqwest::Method::POST, &format!("/v1/sessions/{sid}/resume-token"), None).await;
    let token = token["resume_token"].as_str().unwrap();
    // Another tenant's server would refuse it; a tampered one is refused here.
    let mut forged = token.to_owned();
    forged.push('A');
    let (status, _) = chat.post("/v1/sessions", json!({"identifiers": {"resume_token": forged}})).await;
    assert_eq!(status, 401);
    let ctx =
        chat.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"resume_token": token}}))).await;
    assert_eq!(ctx["identity"]["strength"], "possession");
    assert_eq!(ctx["conversation_id"], call["conversation_id"]);
    assert_eq!(ctx["state"]["pending_booking_date"], "Tuesday", "proof of possession needs no confirmation");
    server.stop().await;
}

#[tokio::test]
async fn email_never_receives_turn_text_or_clinical_content() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let email_cert = env.issue("sunrise", "email");
    let server = InProcess::start(&env);
    let (voice, email) = (Api::new(&server, &voice_cert), Api::new(&server, &email_cert));
    let open = voice
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": PHONE_VOICE, "email": "maria@example.com"}})),
        )
        .await;
    let sid = open["session_id"].as_str().unwrap();
    voice
        .ok(
            reqwest::Method::PATCH,
            &format!("/v1/sessions/{sid}/customer"),
            Some(json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"})),
        )
        .await;
    voice
        .ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{sid}/turns"),
            Some(json!({"speaker": "patient", "text": "my knee has been swelling"})),
        )
        .await;
    voice
        .ok(
            reqwest::Method::PUT,
            &format!("/v1/sessions/{sid}/state/visit_reason"),
            Some(json!({"value": "knee swelling"})),
        )
        .await;

    let open = email
        .ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"email": "maria@example.com"}})))
        .await;
    let esid = open["session_id"].as_str().unwrap();
    let confirmed = email
        .ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{esid}/identity/confirm"),
            Some(json!({"date_of_birth": "1985-03-14"})),
        )
        .await;
    for response in [&open, &confirmed] {
        let text = response.to_string();
        assert!(!text.contains("knee"), "turn text or state reached email: {text}");
        let withheld = response["withheld"].as_array().unwrap();
        assert!(withheld.contains(&json!("conversation")) && withheld.contains(&json!("clinical")), "{text}");
    }
    assert_eq!(confirmed["identity"]["confirmed"], true);
    assert_eq!(confirmed["patient"]["name"], "Maria Lopez", "email may see identity after confirmation");
    // Nor may email write into the conversation.
    let (status, body) =
        email.post(&format!("/v1/sessions/{esid}/turns"), json!({"speaker": "patient", "text": "x"})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_confirmation_required")));
    server.stop().await;
}

#[tokio::test]
async fn an_operator_can_undo_a_link_and_its_provenance_stays() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let server = InProcess::start(&env);
    let voice = Api::new(&server, &voice_cert);
    let first =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    let customer = first["customer_id"].as_str().unwrap().to_owned();
    let list = env.ok(&["link", "list", "--tenant", "sunrise", "--customer", &customer]);
    let line = list.lines().next().expect("one link");
    assert!(line.contains("\tphone\tsession:ses_") && line.ends_with("linked"), "{line}");
    assert!(!list.contains("5550100"), "link list must not show identifier values");
    let link_id = line.split('\t').next().unwrap();
    env.ok(&["link", "unlink", "--tenant", "sunrise", "--customer", &customer, "--link", link_id]);
    let list = env.ok(&["link", "list", "--tenant", "sunrise", "--customer", &customer]);
    assert!(list.contains("unlinked") && list.contains("session:ses_"), "{list}");
    let line =
        env.fails(&mut env.cmd(&["link", "unlink", "--tenant", "sunrise", "--customer", &customer, "--link", link_id]));
    assert!(line.contains("no live link"), "{line}");
    // The number no longer finds that patient.
    let again =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    assert_eq!(again["identity"]["status"], "new");
    assert_ne!(again["customer_id"].as_str(), Some(customer.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn start_fresh_closes_the_conversation_and_the_next_call_opens_a_new_one() {
    let env = env_with(&[("sunrise", "30")]);
    let voice_cert = env.issue("sunrise", "voice");
    let chat_cert = env.issue("sunrise", "chat");
    let server = InProcess::start(&env);
    let (voice, chat) = (Api::new(&server, &voice_cert), Api::new(&server, &chat_cert));
    let call = voice_intake_then_drop(&voice).await;

    // A mere claim cannot wipe someone's conversation.
    let claim =
        chat.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_CHAT}}))).await;
    let (status, body) =
        chat.post(&format!("/v1/sessions/{}/start-fresh", claim["session_id"].as_str().unwrap()), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_confirmation_required")));

    let open =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    assert_eq!(open["conversation_id"], call["conversation_id"]);
    let sid = open["session_id"].as_str().unwrap();
    let fresh = voice.ok(reqwest::Method::POST, &format!("/v1/sessions/{sid}/start-fresh"), None).await;
    assert_ne!(fresh["conversation_id"], call["conversation_id"]);
    assert_eq!((fresh["state"].clone(), fresh["recent_turns"].clone()), (json!({}), json!([])));
    voice.ok(reqwest::Method::POST, &format!("/v1/sessions/{sid}/end"), Some(json!({"reason": "completed"}))).await;

    server.advance_minutes(30);
    let next =
        voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE_VOICE}}))).await;
    assert_eq!(next["conversation_id"], fresh["conversation_id"], "the next call continues the fresh conversation");
    assert_eq!(next["state"], json!({}));
    assert!(!next.to_string().contains("Tuesday"), "old state or turns came back: {next}");
    server.stop().await;

    // The old conversation's history stays for the record.
    let c = counts(&env, "sunrise");
    assert_eq!((c[3], c[4], c[5]), (3, 0, 2), "turns kept, state cleared, two conversations");
}
