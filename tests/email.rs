//! Email end to end over real mTLS: a corpus of real-client reply shapes
//! threaded into the right conversation (or, from another sender, not
//! merged), quoted history kept out of the turns, hostile and broken input
//! refused with nothing stored, and outbound delivery to a real SMTP server
//! (aiosmtpd) on loopback.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use server::Clock as _;
use store::Countable;
use util::Env;
use util::api::Api;
use util::inproc::InProcess;
use util::smtp::{delivered, smtp_server};

const MARIA: &str = "maria@example.com";

/// Sunrise with Maria (created on a voice call, sent a confirmation email
/// whose Message-ID is `ours`), and Harbor, another tenant, which sent a
/// message of its own (`other`).
struct Clinic {
    env: Env,
    server: InProcess,
    email: Api,
    chat: Api,
    conversation: Value,
    ours: String,
    other: String,
}

async fn clinic(smtp_port: Option<u16>) -> Clinic {
    let env = Env::initialised();
    env.tenant(&["sunrise-clinic", "--time-zone", "America/New_York"]);
    env.tenant(&["harbor-clinic"]);
    env.ok(&["tenant", "email", "sunrise-clinic", "--from", "appointments@sunrise-clinic.example"]);
    if let Some(port) = smtp_port {
        env.ok(&["tenant", "email", "sunrise-clinic", "--smtp", &format!("127.0.0.1:{port}"), "--smtp-tls", "none"]);
    }
    let certs: Vec<_> = ["voice", "chat", "email"].iter().map(|c| env.issue("sunrise-clinic", c)).collect();
    let harbor_chat = env.issue("harbor-clinic", "chat");
    let server = InProcess::start(&env);
    let (voice, chat, email) =
        (Api::new(&server, &certs[0]), Api::new(&server, &certs[1]), Api::new(&server, &certs[2]));
    let open = voice.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "+1 415 555 0100"}}))).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let body = json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"});
    voice.ok(Method::PATCH, &format!("/v1/sessions/{sid}/customer"), Some(body)).await;
    let sent = voice
        .ok(
            Method::POST,
            &format!("/v1/sessions/{sid}/email/outbound"),
            Some(json!({"to": MARIA, "subject": "Your Sunrise Clinic appointment", "text": "Hi Maria, see you."})),
        )
        .await;
    let ours = sent["message_id"].as_str().unwrap().to_owned();
    assert!(ours.starts_with("tl.") && ours.ends_with("@sunrise-clinic.example"), "{ours}");

    let harbor = Api::new(&server, &harbor_chat);
    let h = harbor.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"email": "h@harbor.example"}}))).await;
    let hid = h["session_id"].as_str().unwrap();
    // A typed address is a claim: intake makes the record it belongs to.
    harbor.ok(Method::PATCH, &format!("/v1/sessions/{hid}/customer"), Some(json!({"name": "Hal Harbor"}))).await;
    // L1: an address a session only typed is no default destination...
    let body = json!({"subject": "Harbor", "text": "Harbor says hi"});
    let (status, e) = harbor.post(&format!("/v1/sessions/{hid}/email/outbound"), body).await;
    assert_eq!((status, e["error"].as_str()), (409, Some("no_email_address")), "{e}");
    // ...the agent names it.
    let body = json!({"to": "h@harbor.example", "subject": "Harbor", "text": "Harbor says hi"});
    let other = harbor.ok(Method::POST, &format!("/v1/sessions/{hid}/email/outbound"), Some(body)).await;
    let other = other["message_id"].as_str().unwrap().to_owned();
    Clinic { env, server, email, chat, conversation: open["conversation_id"].clone(), ours, other }
}

fn corpus(name: &str, c: &Clinic) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/email_corpus").join(name);
    // Bytes, not text: some messages are Latin-1 on purpose.
    let mut raw = std::fs::read(&path).unwrap();
    for (pat, with) in [("{{OURS}}", &c.ours), ("{{OTHER_TENANT}}", &c.other)] {
        while let Some(i) = raw.windows(pat.len()).position(|w| w == pat.as_bytes()) {
            raw.splice(i..i + pat.len(), with.bytes());
        }
    }
    raw
}

fn count(env: &Env, tenant: &str, what: Countable) -> u64 {
    env.installation().open_tenant(tenant).unwrap().count(what).unwrap()
}

/// Where each real-client shape must land: Maria's conversation or not, and how.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_client_replies_thread_into_the_right_conversation() {
    let c = clinic(None).await;
    let harbor_sessions = count(&c.env, "harbor-clinic", Countable::Sessions);
    // (file, same conversation as Maria's, threaded_by, thread_sender_mismatch)
    let cases = [
        ("gmail_reply.eml", true, "in_reply_to", false),
        ("outlook_reply.eml", true, "references", false),
        ("outlook_web_reply.eml", true, "references", false),
        ("apple_mail_reply.eml", true, "in_reply_to", false),
        ("thunderbird_changed_subject.eml", true, "in_reply_to", false),
        ("thunderbird_forward_own.eml", true, "sender", false),
        ("latin1_encoded_words.eml", true, "in_reply_to", false),
        ("no_message_id.eml", true, "sender", false),
        ("gmail_forward_by_spouse.eml", false, "new", true),
        ("reply_from_another_address.eml", false, "new", true),
        ("forged_other_tenant.eml", false, "new", false),
    ];
    for (file, same, via, mismatch) in cases {
        let (status, v) = c.email.delivered("/v1/email/inbound", corpus(file, &c)).await;
        assert_eq!(status, 201, "{file}: {v}");
        assert_eq!(v["context"]["conversation_id"] == c.conversation, same, "{file}: {v}");
        assert_eq!(v["threaded_by"], via, "{file}");
        assert_eq!(v["thread_sender_mismatch"], mismatch, "{file}");
        assert_eq!(v["stored"], true, "{file}");
        if !same {
            assert_eq!(v["context"]["identity"]["status"], "new", "{file}: another sender is another patient");
            assert_eq!(v["context"]["greeting_name"], Value::Null, "{file}: Maria's name leaked");
        }
    }
    // A forged In-Reply-To naming another tenant's message finds nothing there and touches nothing.
    assert_eq!(count(&c.env, "harbor-clinic", Countable::Sessions), harbor_sessions);

    // Re-delivery is idempotent, with and without a Message-ID.
    let turns = count(&c.env, "sunrise-clinic", Countable::Turns);
    for file in ["gmail_reply.eml", "no_message_id.eml"] {
        let (status, v) = c.email.delivered("/v1/email/inbound", corpus(file, &c)).await;
        assert_eq!((status, &v["duplicate"]), (200, &json!(true)), "{file}: {v}");
    }
    assert_eq!(count(&c.env, "sunrise-clinic", Countable::Turns), turns, "a duplicate stored a turn");

    // The chat, once Maria confirms, sees each reply's own words, decoded, and
    // none of the history their clients quoted.
    let open = c.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let sid = open["session_id"].as_str().unwrap();
    let body = json!({"date_of_birth": "1985-03-14"});
    let ctx = c.chat.ok(Method::POST, &format!("/v1/sessions/{sid}/identity/confirm"), Some(body)).await;
    assert_eq!(ctx["conversation_id"], c.conversation);
    let patient_emails: Vec<&str> = ctx["recent_turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["channel"] == "email" && t["speaker"] == "patient")
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    for expected in ["Gmail here", "Outlook here", "Outlook on the web here", "Apple Mail here", "Thunderbird here"] {
        assert!(patient_emails.iter().any(|t| t.starts_with(expected)), "{expected} missing: {patient_emails:?}");
    }
    assert!(patient_emails.contains(&"¿Podemos cambiar la cita a las 3? Gracias, María"), "{patient_emails:?}");
    assert!(patient_emails.iter().any(|t| t.contains("Apple Mail here: 3 PM please, if possible — thanks!")));
    for t in &patient_emails {
        for quoted in ["Your appointment", "wrote:", "Original Message", "Sent:", "Hi Maria"] {
            assert!(!t.contains(quoted), "quoted history kept in a turn: {t:?}");
        }
        assert!(!t.contains("husband") && !t.contains("From work") && !t.contains("everything you have"), "{t:?}");
    }
    c.server.stop().await;
}

/// Broken and hostile messages: a clear error and nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_and_store_nothing() {
    let c = clinic(None).await;
    let before =
        [Countable::Sessions, Countable::Turns, Countable::Customers].map(|w| count(&c.env, "sunrise-clinic", w));
    let big = "A".repeat(10 * 1024 * 1024);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("no header at all", b"\x00\x01\x02 not an email".to_vec(), 400, "invalid_message"),
        ("no From", b"Subject: hi\r\nMessage-ID: <n@x>\r\n\r\nbody\r\n".to_vec(), 400, "invalid_message"),
        ("bad From", b"From: not an address\r\nSubject: hi\r\n\r\nbody\r\n".to_vec(), 400, "invalid_message"),
        (
            "10 MB attachment",
            format!(
                "From: {MARIA}\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{big}\r\n--b--\r\n"
            )
            .into_bytes(),
            413,
            "body_too_large",
        ),
    ];
    for (what, raw, status, code) in cases {
        let (s, v) = c.email.delivered("/v1/email/inbound", raw).await;
        assert_eq!((s, v["error"].as_str().unwrap_or("")), (status, code), "{what}: {v}");
        assert!(!v["message"].as_str().unwrap_or("").contains(MARIA), "{what}: the error echoes the address");
    }
    // Only the email channel delivers inbound mail.
    let (s, v) = c.chat.delivered("/v1/email/inbound", corpus("gmail_reply.eml", &c)).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (403, "wrong_channel"));
    let after =
        [Countable::Sessions, Countable::Turns, Countable::Customers].map(|w| count(&c.env, "sunrise-clinic", w));
    assert_eq!(before, after, "a refused message left rows behind");

    // Broken MIME (no closing boundary, a truncated base64 part) is read as
    // far as it goes, stored whole, once. (A reply to our message: the
    // address the voice agent typed in is verified by the reply.)
    let broken = format!(
        "From: {MARIA}\r\nMessage-ID: <broken-1@example.com>\r\nIn-Reply-To: <{}>\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nbroken but readable\r\n--zz\r\nContent-Type: image/png; name=card.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo",
        c.ours
    );
    let (s, v) = c.email.delivered("/v1/email/inbound", broken.into_bytes()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["context"]["conversation_id"], c.conversation);
    assert_eq!(v["attachments"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(count(&c.env, "sunrise-clinic", Countable::Turns), after[1] + 1);

    // Outbound: an in_reply_to that is not a message of this conversation is refused.
    let open = c.email.delivered("/v1/email/inbound", corpus("thunderbird_changed_subject.eml", &c)).await.1;
    let sid = open["session_id"].as_str().unwrap();
    for (body, code) in [
        (json!({"subject": "x", "text": "y", "in_reply_to": c.other}), "unknown_message_id"),
        (json!({"subject": "x\r\nBcc: evil@example.net", "text": "y"}), "invalid_subject"),
        (json!({"subject": "x", "text": "y", "to": "not an address"}), "invalid_email"),
    ] {
        let (s, v) = c.email.post(&format!("/v1/sessions/{sid}/email/outbound"), body).await;
        assert_eq!((s, v["error"].as_str().unwrap_or("")), (400, code), "{v}");
    }
    c.server.stop().await;
}

/// A tenant with a relay sends through it; the message carries the
/// Message-ID we recorded, the appointment time and not the reason; a
/// relay that is down gives a clear 502 and an audited failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_email_is_delivered_by_a_real_smtp_server() {
    let mut smtp = smtp_server();
    let c = clinic(Some(smtp.port)).await;
    let mail = delivered(&smtp);
    assert_eq!(mail.len(), 1, "the setup's confirmation was not delivered: {mail:?}");
    assert!(mail[0].contains(&format!("Message-ID: <{}>", c.ours)), "{}", mail[0]);
    assert!(mail[0].contains("To: maria@example.com"), "{}", mail[0]);

    // Book from a confirmed chat, then send the confirmation with the appointment.
    let open = c.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let body = json!({"date_of_birth": "1985-03-14"});
    c.chat.ok(Method::POST, &format!("/v1/sessions/{sid}/identity/confirm"), Some(body)).await;
    // The next Tuesday at 2 PM in the clinic's zone, from the server's clock.
    let zone = continuity::calendar::ClinicZone::parse("America/New_York").unwrap();
    let at = zone.next_weekday_at(c.server.clock.now_ms(), jiff::civil::Weekday::Tuesday, 14, 0).unwrap();
    let body = json!({"starts_at": zone.rfc3339(at), "reason": "knee pain"});
    let apt = c.chat.ok(Method::POST, &format!("/v1/sessions/{sid}/appointments"), Some(body)).await;
    // The address the call gave is unverified: named, not assumed (L1).
    let body = json!({"to": MARIA, "subject": "Booked", "text": "See you then.", "appointment_id": apt["id"]});
    let (status, sent) = c.chat.post(&format!("/v1/sessions/{sid}/email/outbound"), body).await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["delivery"], "smtp");
    assert!(sent.get("raw").is_none(), "a relayed message is not handed back");
    let mail = delivered(&smtp);
    let msg = mail.iter().find(|m| m.contains(sent["message_id"].as_str().unwrap())).expect("delivered");
    let when = zone.render(at);
    assert!(
        when.starts_with("Tuesday, ") && (when.ends_with("2:00 PM EST") || when.ends_with("2:00 PM EDT")),
        "{when}"
    );
    assert!(msg.contains(&format!("{when}, 30 minutes")), "{msg}");
    assert!(!msg.contains("knee"), "the reason for the visit went into an email: {msg}");

    // The relay goes away: 502, the error names no address, the failure is audited.
    let _ = smtp.child.kill();
    let _ = smtp.child.wait();
    let body = json!({"to": MARIA, "subject": "Again", "text": "Second try."});
    let (status, v) = c.chat.post(&format!("/v1/sessions/{sid}/email/outbound"), body).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (502, "email_send_failed"), "{v}");
    assert!(!v["message"].as_str().unwrap().contains(MARIA), "{v}");
    let server = c.server;
    server.stop().await;
    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    let chain = store.audit_records().unwrap();
    let sends: Vec<_> = chain.iter().filter(|r| r.action == "email.send").map(|r| r.outcome.as_str()).collect();
    assert_eq!(sends, ["ok", "ok", "failed"], "delivery outcomes on the audit chain");
    // Each hand-off was recorded as an attempt before it happened (L10).
    let attempts = chain.iter().filter(|r| r.action == "email.outbound" && r.reason.as_deref() == Some("smtp")).count();
    assert_eq!(attempts, sends.len(), "an attempt before each outcome");
}
