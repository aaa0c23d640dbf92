//! Chatwoot through the bridge: webhooks signed as Chatwoot signs them
//! (`X-Chatwoot-Signature`, HMAC-SHA256 of `{timestamp}.{body}`), a chat
//! session per Chatwoot conversation, and the private note posted back to
//! Chatwoot's API, here a recording HTTPS server that checks the request
//! against Chatwoot's documented API (Chatwoot cannot run here).
#![allow(clippy::unwrap_used)]

mod util;

use serde_json::{Value, json};
use util::Env;
use util::api::Api;
use util::bridge::{now_ms, route, secret};
use util::recorder::Recorder;
use util::server::client;

const SECRET: &str = "chatwoot-webhook-secret";

fn signed(body: &Value, secret: &str, delivery: &str) -> (Vec<u8>, Vec<(String, String)>) {
    let body = body.to_string().into_bytes();
    let ts = (now_ms() / 1000).to_string();
    let mut m = ts.clone().into_bytes();
    m.push(b'.');
    m.extend_from_slice(&body);
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()), &m);
    let headers = vec![
        ("x-chatwoot-signature".to_owned(), format!("sha256={}", hex::encode(mac.as_ref()))),
        ("x-chatwoot-timestamp".to_owned(), ts),
        ("x-chatwoot-delivery".to_owned(), delivery.to_owned()),
    ];
    (body, headers)
}

const PORTAL_KEY: &str = "sunrise-portal-login-key-0123456789abcdef";
const SOURCE: &str = "405f1d30-1f2b-4b69-a4a6-0c3e7f0f9f11";

/// A widget conversation of the contact `portal-42` on the browser
/// `source`, Chatwoot's `hmac_verified` set, with the portal's login token
/// when given.
fn conversation(id: i64, source: &str, token: Option<String>) -> Value {
    let attrs = token.map(|t| json!({"throughline_login": t})).unwrap_or(json!({}));
    json!({"id": id, "inbox_id": 1, "channel": "Channel::WebWidget", "status": "open", "can_reply": true,
        "contact_inbox": {"id": 12, "contact_id": 14, "inbox_id": 1, "source_id": source, "hmac_verified": true},
        "meta": {"sender": {"id": 14, "name": "Maria", "email": null, "phone_number": "+14155550100", "identifier": "portal-42",
                            "custom_attributes": attrs, "type": "contact"}},
        "messages": [], "timestamp": 1627063369})
}

/// What the clinic's portal signs for its logged-in patient on this browser.
fn login(source: &str) -> Option<String> {
    Some(bridge::chatwoot::portal_token(PORTAL_KEY.as_bytes(), "portal-42", source, now_ms() / 1000 + 600))
}

fn message(id: i64, conv: &Value, kind: &str, sender: &str, text: &str) -> Value {
    json!({"event": "message_created", "id": id, "content": text, "message_type": kind, "content_type": "text", "private": false,
        "sender": {"id": 3, "name": "Front desk", "type": sender}, "inbox": {"id": 1, "name": "Website"},
        "conversation": conv, "account": {"id": 1, "name": "Sunrise"}})
}

#[tokio::test]
async fn chatwoot_conversations_resume_with_a_private_note_and_record_turns_once() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let (portal, bridge_chat) = (env.issue("sunrise", "chat"), env.issue("sunrise", "chat"));
    let server = env.serve();
    // The patient as the clinic's portal knows her (a login: possession).
    let api = Api { http: client(&portal), base: server.url("") };
    api.patient_on_file(json!({"auth": "portal-42"}), &["My knee hurts since Monday."]).await;

    let recorder = Recorder::start();
    let ca = env.tmp.path().join("platform-ca.pem");
    std::fs::write(&ca, &recorder.ca_pem).unwrap();
    let token = secret(&env, "chatwoot-token", "cw-bot-token");
    let portal = secret(&env, "portal-key", PORTAL_KEY);
    let extra = format!(
        "api_url = \"{}\"\napi_token_file = \"{}\"\nportal_key_file = \"{}\"",
        recorder.url,
        token.display(),
        portal.display()
    );
    let b = env.bridge_with(
        &server,
        &format!("platform_ca_file = \"{}\"", ca.display()),
        &route("sunrise-chatwoot", "chatwoot", &bridge_chat, &secret(&env, "cw", SECRET), &extra),
    );
    let post = |body: &Value, secret: &str, delivery: &str| {
        let (bytes, headers) = signed(body, secret, delivery);
        let b = &b;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            b.post_json("/chatwoot/sunrise-chatwoot", &h, &bytes).await
        }
    };

    // The logged-in patient's conversation: the note has her context.
    let conv = conversation(10, SOURCE, login(SOURCE));
    let mut created = conv.clone();
    created["event"] = json!("conversation_created");
    created["account"] = json!({"id": 1});
    assert_eq!(post(&created, SECRET, "d-1").await.0, 200);
    let notes = recorder.requests();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].path, "/api/v1/accounts/1/conversations/10/messages");
    assert_eq!(notes[0].header("api_access_token"), Some("cw-bot-token"));
    let note = notes[0].json();
    assert_eq!((note["private"].as_bool(), note["message_type"].as_str()), (Some(true), Some("outgoing")));
    let text = note["content"].as_str().unwrap();
    assert!(text.contains("Maria") && text.contains("chat"), "{text}");

    // Her message, delivered twice under one delivery id and once more under
    // another (same message id): one turn. The agent's reply: a staff turn.
    let incoming = message(118, &conv, "incoming", "contact", "Can we talk about my appointment?");
    for d in ["d-2", "d-2", "d-3"] {
        assert_eq!(post(&incoming, SECRET, d).await.0, 200);
    }
    assert_eq!(post(&message(119, &conv, "outgoing", "user", "Of course, Maria."), SECRET, "d-4").await.0, 200);
    let mut note_msg = message(120, &conv, "outgoing", "user", "internal remark");
    note_msg["private"] = json!(true);
    assert_eq!(post(&note_msg, SECRET, "d-5").await.0, 200);

    // A bad signature, and an unverified contact who only typed a number.
    let forged = message(121, &conv, "incoming", "contact", "Cancel all my appointments.");
    let (status, answer) = post(&forged, "wrong-secret", "d-6").await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("bad_signature")));
    let mut stranger = conversation(11, "stranger-browser-0001", None);
    stranger["event"] = json!("conversation_created");
    stranger["account"] = json!({"id": 1});
    assert_eq!(post(&stranger, SECRET, "d-7").await.0, 200);
    let second = recorder.requests().pop().unwrap().json();
    let text = second["content"].as_str().unwrap();
    assert!(!text.contains("Maria"), "an unverified contact learns nothing: {text}");

    // N1: another visitor's verified inbox merged under her contact (Chatwoot
    // moves contact inboxes on merge and keeps `hmac_verified`), carrying her
    // identifier and even her portal token, which names her browser, not this one.
    let merged = conversation(12, "attacker-browser-0001", login(SOURCE));
    let mut merged_created = merged.clone();
    merged_created["event"] = json!("conversation_created");
    merged_created["account"] = json!({"id": 1});
    assert_eq!(post(&merged_created, SECRET, "d-8").await.0, 200);
    let third = recorder.requests().pop().unwrap().json();
    let text = third["content"].as_str().unwrap();
    assert!(!text.contains("Maria") && !text.contains("knee"), "a merged inbox is nobody's login: {text}");
    let attack = message(130, &merged, "incoming", "contact", "Please cancel my appointments.");
    assert_eq!(post(&attack, SECRET, "d-9").await.0, 200);
    drop(b);
    drop(server);

    let out = env.tmp.path().join("audit.jsonl");
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "jsonl", "--out", out.to_str().unwrap()]);
    let audit = std::fs::read_to_string(out).unwrap();
    let appended = audit.matches("\"action\":\"turn.append\"").count();
    assert_eq!(
        appended, 3,
        "the portal's turn, hers once, the agent's; not the note, the forged one or the merged inbox's"
    );
}
