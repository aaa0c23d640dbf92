//! Identity assurance against an adversary (the security review of
//! 2026-12): each finding replayed against the real server as the attacker
//! would play it, with only a web chat or an email account. Every test here
//! failed on a77a20d.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use reqwest::Method;
use serde_json::{Value, json};
use server::Clock as _;
use util::Env;
use util::api::Api;
use util::clinic::*;
use util::inproc::InProcess;

/// H1: the lockout counts per patient, not per session. A stranger typing
/// Maria's number into five fresh chat sessions gets five wrong answers in
/// the window, not twenty-five; then even the right date is refused until
/// the window has passed, and then it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_failed_confirmations_count_per_patient_across_sessions() {
    let c = clinic();
    maria_calls(&c).await;
    let mut taken = 0;
    let mut locked = 0;
    for s in 0..5 {
        let session = chat_claims(&c.chat, "(415) 555-0100").await;
        for g in 0..5 {
            let (status, v) = guess(&c.chat, &session, &wrong_dob(s * 5 + g)).await;
            match (status, v["error"].as_str().unwrap()) {
                (401, "identity_not_confirmed" | "identity_locked") => taken += 1,
                (403, "identity_locked") => locked += 1,
                other => panic!("unexpected {other:?}: {v}"),
            }
        }
    }
    assert_eq!((taken, locked), (5, 20), "wrong answers compared per patient per window");
    // The right answer, in yet another session, is refused while locked.
    let session = chat_claims(&c.chat, "(415) 555-0100").await;
    let (status, v) = guess(&c.chat, &session, DOB).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (403, "identity_locked"), "{v}");
    assert!(v["message"].as_str().unwrap().contains("try again in 15 minutes"), "{v}");

    // The window slides: fifteen minutes after the first failure, Maria gets in.
    c.server.advance_minutes(16);
    let session = chat_claims(&c.chat, "(415) 555-0100").await;
    let (status, v) = guess(&c.chat, &session, DOB).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["identity"]["confirmed"], true);
    c.server.stop().await;

    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    let reasons: Vec<String> = store
        .audit_records()
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "identity.confirm" && r.outcome.as_str() == "refused")
        .filter_map(|r| r.reason)
        .collect();
    assert_eq!(reasons.iter().filter(|r| r.starts_with("mismatch")).count(), 5, "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "locked_subject"), "the lockout is audited: {reasons:?}");
}

/// H3: a message that reuses a patient's Message-ID, from another sender,
/// is a new message of its own: it never gets the patient's session back,
/// nor their context, and its own text is not dropped as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_a_reused_message_id_never_returns_another_patients_session() {
    let c = clinic_with(Some(CLINIC_MTA));
    let maria = stamped(
        "mx.sunrise-clinic.example",
        "pass",
        mail("Maria Lopez <maria@example.com>", "CAF7r2h1=maria.0001@mail.example.com", "See you Tuesday."),
    );
    let (status, first) = c.email.raw("/v1/email/inbound", maria.clone()).await;
    assert_eq!((status, &first["stored"]), (201, &json!(true)), "{first}");
    // Eve is who she says she is (her own domain passes), but reuses Maria's Message-ID.
    let mut forged =
        b"Authentication-Results: mx.sunrise-clinic.example; dmarc=pass header.from=example.net\r\n".to_vec();
    forged.extend(mail("Eve <eve@example.net>", "CAF7r2h1=maria.0001@mail.example.com", "What is on file for me?"));
    let (status, v) = c.email.raw("/v1/email/inbound", forged).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["duplicate"], false, "{v}");
    assert_ne!(v["session_id"], first["session_id"]);
    assert!(v["context"]["customer_id"].is_string() && first["context"]["customer_id"].is_string(), "{v}");
    assert_ne!(v["context"]["customer_id"], first["context"]["customer_id"]);
    assert!(!v.to_string().contains("maria"), "{v}");
    // The same bytes again are the same message: idempotent.
    let (status, again) = c.email.raw("/v1/email/inbound", maria.clone()).await;
    assert_eq!((status, &again["duplicate"], &again["session_id"]), (200, &json!(true), &first["session_id"]));
    c.server.stop().await;
}

/// H3, L14: an external_ref is the session of the integration that opened
/// it, and only while it is open: another voice bridge reusing a call id
/// gets 409, not the caller's session; an ended call is not reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_an_external_ref_never_crosses_integrations_or_reopens() {
    let c = clinic();
    let body = json!({"identifiers": {"phone": PHONE}, "external_ref": "CA0001"});
    let first = c.voice.ok(Method::POST, "/v1/sessions", Some(body.clone())).await;
    let retry = c.voice.ok(Method::POST, "/v1/sessions", Some(body.clone())).await;
    assert_eq!(retry["session_id"], first["session_id"], "a retrying bridge gets the same session");
    let stranger = json!({"identifiers": {"phone": "+1 212 555 0199"}, "external_ref": "CA0001"});
    let (status, v) = c.other_voice.post("/v1/sessions", stranger).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (409, "external_ref_conflict"), "{v}");
    assert!(v.get("session_id").is_none(), "{v}");
    c.voice.ok(Method::POST, &format!("/v1/sessions/{}/end", sid(&first)), Some(json!({"reason": "completed"}))).await;
    let (status, v) = c.voice.post("/v1/sessions", body).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (409, "session_ended"), "{v}");
    c.server.stop().await;
}

/// H4: a From address proves nothing. Only a DMARC pass stamped by the
/// clinic's own MTA makes the sender asserted; a spoofed message (no stamp,
/// a failing one, or a stamp from another authserv-id) is held for staff
/// review: no turn, no attachment, no appointment change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h4_a_spoofed_sender_writes_nothing_into_the_conversation() {
    let c = clinic_with(Some(CLINIC_MTA));
    let real = stamped(
        "mx.sunrise-clinic.example",
        "pass",
        mail("Maria Lopez <maria@example.com>", "m1@mail.example.com", "Please book me in."),
    );
    let (status, v) = c.email.raw("/v1/email/inbound", real).await;
    assert_eq!((status, &v["stored"], &v["sender_evidence"]), (201, &json!(true), &json!("dmarc_pass")), "{v}");
    for (label, forged) in [
        ("no stamp", mail("Maria Lopez <maria@example.com>", "f1@evil.example", "Cancel everything.")),
        (
            "another authserv-id",
            stamped("mx.evil.example", "pass", mail("maria@example.com", "f2@evil.example", "Cancel everything.")),
        ),
        (
            "the clinic's MTA says fail",
            stamped("mx.sunrise-clinic.example", "fail", mail("maria@example.com", "f3@evil.example", "Cancel.")),
        ),
    ] {
        let (status, v) = c.email.raw("/v1/email/inbound", forged).await;
        assert_eq!(status, 201, "{label}: {v}");
        assert_eq!((&v["stored"], &v["held_for_review"]), (&json!(false), &json!(true)), "{label}: {v}");
        assert_eq!(v["context"]["identity"]["strength"], "claim", "{label}: {v}");
        let session = sid(&v);
        let (status, e) = c.email.post(&format!("/v1/sessions/{session}/start-fresh"), json!({})).await;
        assert_eq!((status, e["error"].as_str().unwrap()), (403, "identity_confirmation_required"), "{label}");
    }
    c.server.stop().await;
    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    assert_eq!(store.count(store::Countable::Turns).unwrap(), 1, "a spoofed message became a turn");
    let reasons = inbound_reasons(&store);
    assert!(reasons[0].contains("sender:dmarc_pass"), "{reasons:?}");
    assert!(reasons[1].contains("sender:no_trusted_header;held:sender_not_authenticated"), "{reasons:?}");
    assert!(reasons[2].contains("sender:no_trusted_header"), "{reasons:?}");
    assert!(reasons[3].contains("sender:not_authenticated"), "{reasons:?}");
}

/// Caller ID is asserted only with STIR/SHAKEN attestation A under the
/// default evidence policy; without it, or with B or C, it is a claim that
/// must confirm. Attestation is a voice integration's to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_id_strength_comes_from_the_attestation() {
    let c = clinic();
    let open = |att: Option<&str>| {
        let mut body = json!({"identifiers": {"phone": PHONE}});
        if let Some(a) = att {
            body["evidence"] = json!({"caller_id_attestation": a});
        }
        body
    };
    let first = c.voice.ok(Method::POST, "/v1/sessions", Some(open(Some("A")))).await;
    assert_eq!(first["identity"]["strength"], "asserted", "{first}");
    let body = json!({"name": "Maria Lopez", "date_of_birth": DOB});
    c.voice.ok(Method::PATCH, &format!("/v1/sessions/{}/customer", sid(&first)), Some(body)).await;
    for att in [None, Some("B"), Some("C")] {
        let v = c.voice.ok(Method::POST, "/v1/sessions", Some(open(att))).await;
        assert_eq!(v["identity"]["strength"], "claim", "{att:?}: {v}");
        assert_eq!(v["identity"]["confirm_with"], json!(["date_of_birth"]), "{att:?}: {v}");
        assert!(v["patient"].is_null(), "{att:?}: {v}");
    }
    let v = c.voice.ok(Method::POST, "/v1/sessions", Some(open(Some("A")))).await;
    assert_eq!((&v["identity"]["strength"], &v["customer_id"]), (&json!("asserted"), &first["customer_id"]));
    let (status, e) = c.voice.post("/v1/sessions", open(Some("D"))).await;
    assert_eq!((status, e["error"].as_str().unwrap()), (400, "invalid_attestation"));
    let mut from_chat = open(Some("A"));
    from_chat["identifiers"] = json!({"cookie": "c_0123456789abcdef"});
    let (status, e) = c.chat.post("/v1/sessions", from_chat).await;
    assert_eq!((status, e["error"].as_str().unwrap()), (400, "evidence_not_allowed"));
    c.server.stop().await;
}

/// H2: a phone number typed into chat never owns a record. The planter's
/// intake makes a record of their own; the real owner's attested call gets
/// another (the clash is recorded for staff); the planter who comes back and
/// confirms with the date they planted sees only what they typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_a_claim_never_creates_ownership_of_a_number() {
    let c = clinic();
    let planter = chat_claims(&c.chat, PHONE).await;
    let body = json!({"name": "Planted Name", "date_of_birth": "1970-01-01"});
    let planted = c.chat.ok(Method::PATCH, &format!("/v1/sessions/{planter}/customer"), Some(body)).await;
    let x = planted["customer_id"].clone();
    assert!(x.is_string(), "{planted}");

    // The real owner calls; the carrier attests the number. The number's
    // only link is the planter's claim: the call is led there behind
    // confirmation (one person, one record), learns nothing of it, and the
    // owner's intake makes her own record.
    let body = json!({"identifiers": {"phone": PHONE}, "evidence": {"caller_id_attestation": "A"}});
    let call = c.voice.ok(Method::POST, "/v1/sessions", Some(body)).await;
    assert_eq!(call["customer_id"], Value::Null, "{call}");
    assert_eq!(call["identity"]["status"], "new", "{call}");
    assert!(!call.to_string().contains("Planted"), "{call}");
    let call_id = sid(&call);
    let body = json!({"name": "Maria Lopez", "date_of_birth": DOB});
    let owner = c.voice.ok(Method::PATCH, &format!("/v1/sessions/{call_id}/customer"), Some(body)).await;
    assert!(owner["customer_id"].is_string() && owner["customer_id"] != x, "{owner}");
    let body = json!({"speaker": "patient", "text": "My knee has hurt since the fall."});
    c.voice.ok(Method::POST, &format!("/v1/sessions/{call_id}/turns"), Some(body)).await;

    // The planter comes back and confirms with the date they planted.
    let again = chat_claims(&c.chat, PHONE).await;
    let (status, ctx) = guess(&c.chat, &again, "1970-01-01").await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["customer_id"], x, "the planter reached another record");
    assert!(!ctx.to_string().contains("knee"), "the owner's call leaked to the planter: {ctx}");
    c.server.stop().await;
    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    // A clash for staff: the planter's confirmation did not merge the
    // owner's number (M4). The owner's call met the planted link as a claim
    // behind confirmation, so it had nothing to clash with.
    assert_eq!(store.count(store::Countable::Conflicts).unwrap(), 1);
}

/// M8: a claim cannot tell a patient's number from a stranger's. Typed into
/// chat, Maria's number and a number nobody knows get the same answer,
/// field for field, until confirmation; the date of birth (the confirmation
/// secret) never reaches a session that has not confirmed, even on voice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m8_a_claim_learns_nothing_before_confirmation() {
    let c = clinic();
    maria_calls(&c).await;
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("session_id");
        v
    };
    let known = c.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE}}))).await;
    let unknown =
        c.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "+1 212 555 0199"}}))).await;
    assert_eq!(strip(known.clone()), strip(unknown.clone()));
    assert!(!known.to_string().contains("Maria"), "{known}");
    // Wrong answers read alike too.
    let (a, b) = (guess(&c.chat, &sid(&known), "1999-09-09").await, guess(&c.chat, &sid(&unknown), "1999-09-09").await);
    assert_eq!((a.0, &a.1), (b.0, &b.1));
    // Voice with attested caller ID sees who is calling, but not the DOB it
    // would confirm with.
    let body = json!({"identifiers": {"phone": PHONE}, "evidence": {"caller_id_attestation": "A"}});
    let call = c.voice.ok(Method::POST, "/v1/sessions", Some(body)).await;
    assert_eq!(call["greeting_name"], "Maria", "{call}");
    assert!(!call.to_string().contains(DOB), "the confirmation secret reached an unconfirmed session: {call}");
    c.server.stop().await;
}

/// M1: a certificate is the one issued under its serial. Someone holding
/// the CA key who mints a twin with a live serial and the same binding is
/// refused as unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_a_twin_certificate_with_a_live_serial_is_refused() {
    let c = clinic();
    let inst = c.env.installation();
    let tenant_id = inst.tenant("sunrise-clinic").unwrap().id;
    let ca = inst.ca().unwrap();
    let kind = server::tls::LeafKind::Channel {
        tenant_id,
        tenant_name: "sunrise-clinic".into(),
        channel: policy::Channel::Chat,
    };
    let twin = ca.dangerous_issue_with_serial(&kind, &c.chat_cert.serial, time::OffsetDateTime::now_utc(), 30).unwrap();
    assert_eq!(twin.serial, c.chat_cert.serial);
    let tls = util::server::tls_config(ca.cert_pem(), &twin.cert_pem, &twin.key_pem);
    let http = util::server::client_with(tls);
    let res = http.get(format!("{}/v1/health", c.chat.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "certificate_unknown");
    // The issued one still works.
    assert_eq!(c.chat.send(Method::GET, "/v1/health", None).await.0, 200);
    c.server.stop().await;
}

/// M2: a resume token opens one session; start fresh, a lockout and
/// `throughline token revoke` end the ones not yet used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_resume_tokens_are_single_use_and_revocable() {
    let c = clinic();
    maria_calls(&c).await;
    let (session, ctx) = maria_confirmed_on_chat(&c).await;
    let customer = ctx["customer_id"].as_str().unwrap().to_owned();
    let token = |s: String| {
        let c = &c;
        async move {
            let v = c.chat.ok(Method::POST, &format!("/v1/sessions/{s}/resume-token"), Some(json!({}))).await;
            v["resume_token"].as_str().unwrap().to_owned()
        }
    };
    let redeem = |t: String| {
        let c = &c;
        async move { c.chat.post("/v1/sessions", json!({"identifiers": {"resume_token": t}})).await }
    };
    let t1 = token(session.clone()).await;
    assert_eq!(redeem(t1.clone()).await.0, 200);
    let (status, v) = redeem(t1).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (401, "invalid_resume_token"), "a token worked twice");

    let t2 = token(session.clone()).await;
    c.env.ok(&["token", "revoke", "--tenant", "sunrise-clinic", "--customer", &customer]);
    assert_eq!(redeem(t2).await.0, 401, "a revoked token worked");

    let t3 = token(session.clone()).await;
    c.chat.ok(Method::POST, &format!("/v1/sessions/{session}/start-fresh"), Some(json!({}))).await;
    assert_eq!(redeem(t3).await.0, 401, "a token outlived start fresh");
    c.server.stop().await;
}

/// M3: an ended session releases nothing, and a confirmation does not
/// outlive its idle limit (30 minutes) or its lifetime (8 hours) in an open one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_ended_sessions_release_nothing_and_confirmation_expires() {
    let c = clinic();
    maria_calls(&c).await;
    let (session, _) = maria_confirmed_on_chat(&c).await;
    let ctx = c.chat.ok(Method::GET, &format!("/v1/sessions/{session}/context"), None).await;
    assert_eq!(ctx["identity"]["confirmed"], true);
    // In use every 20 minutes, it stays confirmed for an hour and more.
    for _ in 0..4 {
        c.server.advance_minutes(20);
        let ctx = c.chat.ok(Method::GET, &format!("/v1/sessions/{session}/context"), None).await;
        assert_eq!(ctx["identity"]["confirmed"], true, "{ctx}");
    }
    // Left alone for 31 minutes: it must confirm again (the idle limit).
    c.server.advance_minutes(31);
    let ctx = c.chat.ok(Method::GET, &format!("/v1/sessions/{session}/context"), None).await;
    assert_eq!(ctx["identity"]["confirmed"], false, "{ctx}");
    let (status, _) = guess(&c.chat, &session, DOB).await;
    assert_eq!(status, 200);
    // Nine hours later, the chat left open: confirmed no more.
    c.server.advance_minutes(9 * 60);
    let ctx = c.chat.ok(Method::GET, &format!("/v1/sessions/{session}/context"), None).await;
    assert_eq!(ctx["identity"]["confirmed"], false, "{ctx}");
    assert!(ctx["customer_id"].is_null() && ctx["recent_turns"] == json!([]), "{ctx}");
    c.chat.ok(Method::POST, &format!("/v1/sessions/{session}/end"), Some(json!({"reason": "completed"}))).await;
    for path in ["/context", "/export"] {
        let (status, v) = c.chat.send(Method::GET, &format!("/v1/sessions/{session}{path}"), None).await;
        assert_eq!((status, v["error"].as_str().unwrap()), (409, "session_ended"), "{path}: {v}");
    }
    c.server.stop().await;
}

/// M5: a callback to a number not on file opens a claim: whoever answers
/// must confirm before hearing anything. To the number on file, the call is
/// as strong as caller ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_a_callback_to_a_number_not_on_file_must_confirm() {
    let c = clinic();
    maria_calls(&c).await;
    let (session, _) = maria_confirmed_on_chat(&c).await;
    let now = time::OffsetDateTime::from_unix_timestamp(c.server.clock.now_ms() / 1000).unwrap();
    let rfc = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let window = |phone: Option<&str>| {
        let mut w = json!({"window_start": rfc(now), "window_end": rfc(now + time::Duration::hours(2))});
        if let Some(p) = phone {
            w["phone"] = json!(p);
        }
        w
    };
    c.chat.ok(Method::POST, &format!("/v1/sessions/{session}/callbacks"), Some(window(Some("+1 212 555 0199")))).await;
    let claim = c.voice.ok(Method::POST, "/v1/callbacks/claim", Some(json!({}))).await;
    let ctx = &claim["context"];
    assert_eq!(ctx["identity"]["strength"], "claim", "{ctx}");
    assert_eq!(ctx["identity"]["confirm_with"], json!(["date_of_birth"]));
    assert!(ctx["greeting_name"].is_null() && ctx["customer_id"].is_null(), "{ctx}");
    let voice = sid(ctx);
    c.voice.ok(Method::POST, &format!("/v1/sessions/{voice}/end"), Some(json!({"reason": "completed"}))).await;

    c.chat.ok(Method::POST, &format!("/v1/sessions/{session}/callbacks"), Some(window(None))).await;
    let claim = c.voice.ok(Method::POST, "/v1/callbacks/claim", Some(json!({}))).await;
    assert_eq!(claim["context"]["identity"]["strength"], "asserted", "{claim}");
    assert_eq!(claim["context"]["greeting_name"], "Maria");
    c.server.stop().await;
}

/// Possession codes: a six-digit code goes to the number on file (never to
/// an address offered in the session); a wrong code counts as a failure;
/// the right one confirms with possession strength, once. A voice line's
/// bridge delivers the text itself (a chat integration never sees it: L2,
/// tests/trust.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_time_code_to_the_number_on_file_confirms_with_possession() {
    let c = clinic();
    maria_calls(&c).await;
    let body = json!({"identifiers": {"phone": "(415) 555-0100", "email": "eve@example.net"}});
    let session = sid(&c.voice.ok(Method::POST, "/v1/sessions", Some(body)).await);
    let challenge = format!("/v1/sessions/{session}/identity/challenge");
    // Email: Maria has no address on file, and the one offered here is never used.
    let v = c.voice.ok(Method::POST, &challenge, Some(json!({"via": "email"}))).await;
    assert_eq!(v["delivery"], "none", "{v}");
    assert!(!v.to_string().contains("eve@"), "{v}");
    let v = c.voice.ok(Method::POST, &challenge, Some(json!({"via": "sms"}))).await;
    assert_eq!((&v["delivery"], &v["sms"]["to"]), (&json!("sms"), &json!("+14155550100")), "{v}");
    let text = v["sms"]["text"].as_str().unwrap();
    let code = text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a six-digit code").to_owned();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, e) = c.voice.post(&format!("/v1/sessions/{session}/identity/confirm"), json!({"code": wrong})).await;
    assert_eq!((status, e["error"].as_str().unwrap()), (401, "identity_not_confirmed"), "{e}");
    let (status, ctx) = c.voice.post(&format!("/v1/sessions/{session}/identity/confirm"), json!({"code": code})).await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!((&ctx["identity"]["strength"], &ctx["identity"]["confirmed"]), (&json!("possession"), &json!(true)));
    assert_eq!(ctx["patient"]["name"], "Maria Lopez");
    // Spent: the same code in another session does nothing.
    let other = sid(&c.voice.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE}}))).await);
    let (status, e) = c.voice.post(&format!("/v1/sessions/{other}/identity/confirm"), json!({"code": code})).await;
    assert_eq!((status, e["error"].as_str().unwrap()), (409, "no_challenge"), "{e}");
    // A number nobody knows: the same route, nothing sent.
    let stranger = json!({"identifiers": {"phone": "+1 212 555 0199"}});
    let stranger = sid(&c.voice.ok(Method::POST, "/v1/sessions", Some(stranger)).await);
    let v = c
        .voice
        .ok(Method::POST, &format!("/v1/sessions/{stranger}/identity/challenge"), Some(json!({"via": "sms"})))
        .await;
    assert_eq!(v["delivery"], "none");
    c.server.stop().await;
    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    let reasons: Vec<String> = store
        .audit_records()
        .unwrap()
        .into_iter()
        .filter(|r| r.action.starts_with("identity."))
        .filter_map(|r| r.reason)
        .collect();
    assert!(reasons.iter().any(|r| r == "possession:sms"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "code_mismatch"), "{reasons:?}");
    let audit_text = format!("{reasons:?}");
    assert!(!audit_text.contains(&code) && !audit_text.contains("4155550100"), "PHI or the code in the audit");
}

/// M1, the other half: `serve` unseals the CA key only to issue its own
/// certificate when it has none that covers its names; a restart reuses the
/// stored one (one server certificate after two starts, not two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_serve_reuses_its_certificate_and_needs_no_ca_key_to_restart() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let voice = env.issue("sunrise-clinic", "voice");
    let servers = |list: &str| list.lines().filter(|l| l.contains("\t-\tserver\t")).count();
    for start in 1..=2 {
        let mut server = env.serve();
        let res = util::server::client(&voice).get(server.url("/v1/health")).send().await.unwrap();
        assert_eq!(res.status(), 200, "start {start}");
        let issued = server.log_text().contains("issued a new server certificate");
        assert_eq!(issued, start == 1, "start {start}: {}", server.log_text());
        server.terminate();
    }
    assert_eq!(servers(&env.ok(&["cert", "list"])), 1, "a restart issued another server certificate");
}

/// L14: a session belongs to the integration that opened it. Another chat
/// integration of the same clinic cannot read or write it, nor confirm in
/// it: to that certificate it does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l14_a_session_belongs_to_the_integration_that_opened_it() {
    let c = clinic();
    maria_calls(&c).await;
    let (session, _) = maria_confirmed_on_chat(&c).await;
    for (method, path, body) in [
        (Method::GET, format!("/v1/sessions/{session}/context"), None),
        (Method::POST, format!("/v1/sessions/{session}/turns"), Some(json!({"speaker": "agent", "text": "hi"}))),
        (Method::POST, format!("/v1/sessions/{session}/identity/confirm"), Some(json!({"date_of_birth": DOB}))),
        (Method::GET, format!("/v1/sessions/{session}/export"), None),
    ] {
        let (status, v) = c.other_chat.send(method, &path, body).await;
        assert_eq!((status, v["error"].as_str().unwrap()), (404, "session_not_found"), "{path}: {v}");
    }
    assert_eq!(c.chat.send(Method::GET, &format!("/v1/sessions/{session}/context"), None).await.0, 200);
    c.server.stop().await;
}

/// M6: erasing a patient also takes what waited, sealed under the tenant's
/// key rather than theirs, in a family session where they were one
/// candidate of several (the number and the cookie typed there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m6_erasure_reaches_family_sessions_where_the_patient_was_a_candidate() {
    use store::{AuditEntry, Countable, IdentifierKind};
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let ana = {
        let inst = env.installation();
        let mut store = inst.open_tenant("sunrise-clinic").unwrap();
        let who = AuditEntry::operator("test", audit::Action::CustomerCreate);
        let ana = store.create_customer("Ana Reyes", "1979-06-02", &who, 1).unwrap();
        let luis = store.create_customer("Luis Reyes", "2008-11-23", &who, 1).unwrap();
        for c in [&ana, &luis] {
            store.link_identifier(IdentifierKind::Phone, "+14155550177", c, "registration", 1).unwrap();
        }
        ana
    };
    let chat_cert = env.issue("sunrise-clinic", "chat");
    let server = InProcess::start(&env);
    let chat = Api::new(&server, &chat_cert);
    let body = json!({"identifiers": {"phone": "415-555-0177", "cookie": "c_family_browser_0001"}});
    chat.ok(Method::POST, "/v1/sessions", Some(body)).await;
    let pending =
        || env.installation().open_tenant("sunrise-clinic").unwrap().count(Countable::PendingIdentifiers).unwrap();
    assert_eq!(pending(), 2, "the typed number and the cookie wait in the family session");
    env.ok(&["erasure", "--tenant", "sunrise-clinic", "--customer", ana.as_str()]);
    assert_eq!(pending(), 0, "what waited in a session where Ana was a candidate survived her erasure");
    server.stop().await;
}
