//! The second security review (2026-12b), replayed against the real server
//! as each attacker would play it. Every test here failed on 1efd2a7 (the
//! commit the review read); docs/THREATS.md's findings table names them.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use reqwest::Method;
use serde_json::{Value, json};
use server::Clock as _;
use util::api::Api;
use util::clinic::*;

/// A confirmation through `api`, as the integration's visitor `visitor`.
async fn guess_as(api: &Api, visitor: Option<&str>, session: &str, dob: &str) -> (u16, Value) {
    let mut req = api
        .http
        .post(format!("{}/v1/sessions/{session}/identity/confirm", api.base))
        .json(&json!({"date_of_birth": dob}));
    if let Some(v) = visitor {
        req = req.header("throughline-visitor", v);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// A number nobody is on file with, the n-th.
fn unknown_phone(n: usize) -> String {
    format!("+1 415 555 {:04}", 2000 + n)
}

/// N3: one stranger behind the clinic's shared chat certificate does not
/// switch off confirmation for everyone. Refusals that compared nothing
/// (a locked patient) cost nothing; a named visitor over budget is refused
/// alone; the certificate over budget is slowed and alerts, never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_one_stranger_cannot_switch_off_confirmation_for_every_patient() {
    let c = clinic();
    maria_calls(&c).await;
    // The review's shape: 61 guesses at Maria from one session. Five are
    // compared, the rest refused as locked without comparing.
    let session = chat_claims(&c.chat, PHONE).await;
    for n in 0..61 {
        let (status, v) = guess(&c.chat, &session, &wrong_dob(n)).await;
        assert!(matches!(status, 401 | 403), "attempt {n}: {status} {v}");
    }
    // Another patient, through the same certificate, still confirms.
    let other = json!({"identifiers": {"phone": "+1 415 555 0102"}, "evidence": {"caller_id_attestation": "A"}});
    let open = c.voice.ok(Method::POST, "/v1/sessions", Some(other)).await;
    let intake = json!({"name": "Val Two", "date_of_birth": "1990-02-02"});
    c.voice.ok(Method::PATCH, &format!("/v1/sessions/{}/customer", sid(&open)), Some(intake)).await;
    let val = chat_claims(&c.chat, "+1 415 555 0102").await;
    let (status, v) = guess(&c.chat, &val, "1990-02-02").await;
    assert_eq!(status, 200, "another patient must still confirm: {v}");

    // A named visitor guessing across unknown numbers is refused alone.
    let limit = server::throttle::VISITOR_FAILURES_PER_WINDOW;
    for n in 0..limit {
        let s = chat_claims(&c.chat, &unknown_phone(n)).await;
        let (status, v) = guess_as(&c.chat, Some("visitor-guesser"), &s, "1970-01-01").await;
        assert_eq!(status, 401, "attempt {n}: {v}");
    }
    let s = chat_claims(&c.chat, &unknown_phone(limit)).await;
    let (status, v) = guess_as(&c.chat, Some("visitor-guesser"), &s, "1970-01-01").await;
    assert_eq!((status, v["error"].as_str()), (429, Some("confirmation_throttled")), "{v}");
    let val2 = chat_claims(&c.chat, "+1 415 555 0102").await;
    let (status, v) = guess_as(&c.chat, Some("visitor-val"), &val2, "1990-02-02").await;
    assert_eq!(status, 200, "another visitor is not refused: {v}");

    // Fresh visitor names for every guess: the certificate goes over its
    // budget and is slowed (the alert), but the right answer still confirms.
    let budget = server::throttle::CERT_FAILURES_PER_WINDOW;
    let slowed = || {
        let text = server::metrics::get().encode();
        text.lines()
            .find(|l| l.starts_with("throughline_lockouts_total{reason=\"confirm_certificate_slowed\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = slowed();
    for n in limit + 1..budget + 2 {
        let s = chat_claims(&c.chat, &unknown_phone(n)).await;
        let (status, v) = guess_as(&c.chat, Some(&format!("visitor-{n}")), &s, "1970-01-01").await;
        assert_eq!(status, 401, "attempt {n}: {v}");
    }
    let val3 = chat_claims(&c.chat, "+1 415 555 0102").await;
    let (status, v) = guess_as(&c.chat, None, &val3, "1990-02-02").await;
    assert_eq!(status, 200, "slowed, not refused: {v}");
    assert!(slowed() > before, "the slowdown is counted for the alert");
    c.server.stop().await;
}

/// N4: a browser is a device, not a person. After Maria confirmed on a
/// shared computer, the next person at that browser (the cookie alone)
/// gets nothing clinical, no name and no history until they confirm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_a_shared_browser_cookie_releases_nothing_without_confirmation() {
    let c = clinic();
    let body = json!({"identifiers": {"phone": PHONE}, "evidence": {"caller_id_attestation": "A"}});
    let call = c.voice.ok(Method::POST, "/v1/sessions", Some(body)).await;
    let s = sid(&call);
    let intake = json!({"name": "Cara Three", "date_of_birth": DOB});
    c.voice.ok(Method::PATCH, &format!("/v1/sessions/{s}/customer"), Some(intake)).await;
    let turn = json!({"speaker": "patient", "text": "I have chest pain and I take warfarin"});
    c.voice.ok(Method::POST, &format!("/v1/sessions/{s}/turns"), Some(turn)).await;
    c.voice.ok(Method::POST, &format!("/v1/sessions/{s}/end"), Some(json!({"reason": "completed"}))).await;

    const COOKIE: &str = "c_shared_library_pc_0001";
    let open = json!({"identifiers": {"phone": PHONE, "cookie": COOKIE}});
    let chat = c.chat.ok(Method::POST, "/v1/sessions", Some(open)).await;
    let (status, ctx) = guess(&c.chat, &sid(&chat), DOB).await;
    assert_eq!(status, 200, "{ctx}");
    assert!(ctx.to_string().contains("warfarin"), "confirmed, she sees her history: {ctx}");
    c.chat.ok(Method::POST, &format!("/v1/sessions/{}/end", sid(&chat)), Some(json!({"reason": "completed"}))).await;

    // The next person at the same browser, minutes later.
    c.server.advance_minutes(5);
    let next = c.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"cookie": COOKIE}}))).await;
    assert_eq!(next["identity"]["confirmed"], false, "{next}");
    assert_eq!(next["identity"]["confirm_with"], json!(["date_of_birth"]), "{next}");
    let text = next.to_string();
    for secret in ["warfarin", "chest pain", "Cara", "Three", DOB] {
        assert!(!text.contains(secret), "{secret} released to a cookie alone: {text}");
    }
    let ns = sid(&next);
    let (status, v) = c.chat.send(Method::GET, &format!("/v1/sessions/{ns}/context"), None).await;
    assert_eq!(status, 200);
    assert!(!v.to_string().contains("warfarin"), "{v}");
    let turn = json!({"speaker": "patient", "text": "cancel my appointments"});
    let (status, v) = c.chat.post(&format!("/v1/sessions/{ns}/turns"), turn).await;
    assert_eq!((status, v["error"].as_str()), (403, Some("identity_confirmation_required")), "{v}");
    // Whoever confirms in this session gets the history back.
    let (status, ctx) = guess(&c.chat, &ns, DOB).await;
    assert_eq!(status, 200, "{ctx}");
    assert!(ctx.to_string().contains("warfarin"), "{ctx}");
    c.server.stop().await;
}

/// N2: the sender's evidence comes only from the clinic's hop. A forged
/// `Authentication-Results` in the clinic's name, below the MTA's stamp or
/// without one, beside a contradicting one, or a pass that names no From
/// domain, never writes into a conversation; a genuine stamp still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_only_the_clinics_own_stamp_makes_a_sender_asserted() {
    let c = clinic_with(Some(CLINIC_MTA));
    let ours = "mx.sunrise-clinic.example";
    let genuine = stamped(ours, "pass", mail("Maria Lopez <maria@example.com>", "g1@mail.example.com", "Book me in."));
    let (status, v) = c.email.raw("/v1/email/inbound", genuine).await;
    assert_eq!((status, &v["stored"], &v["sender_evidence"]), (201, &json!(true), &json!("dmarc_pass")), "{v}");

    let at_bottom = |raw: Vec<u8>| {
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let forged = format!("Authentication-Results: {ours}; dmarc=pass header.from=example.com");
        format!("{head}\r\n{forged}\r\n\r\n{body}").into_bytes()
    };
    let received = |raw: Vec<u8>| {
        let mut out = format!("Received: from out.evil.example by {ours} (Postfix) with ESMTPS id 4Q\r\n").into_bytes();
        out.extend(raw);
        out
    };
    let forged_from = |id: &str| mail("Maria Lopez <maria@example.com>", id, "Cancel all my appointments.");
    let cases = [
        ("a forged pass at the bottom, no stamp", at_bottom(forged_from("f1@evil.example"))),
        ("a forged pass below the MTA's own fail", at_bottom(stamped(ours, "fail", forged_from("f2@evil.example")))),
        (
            "a forged pass on top of the MTA's fail",
            stamped(ours, "pass", received(stamped(ours, "fail", forged_from("f3@evil.example")))),
        ),
        ("a pass naming no From domain", {
            let mut raw = format!("Authentication-Results: {ours}; dmarc=pass\r\n").into_bytes();
            raw.extend(forged_from("f4@evil.example"));
            raw
        }),
    ];
    for (label, raw) in cases {
        let (status, v) = c.email.raw("/v1/email/inbound", raw).await;
        assert_eq!(status, 201, "{label}: {v}");
        assert_eq!((&v["stored"], &v["held_for_review"]), (&json!(false), &json!(true)), "{label}: {v}");
        assert_eq!(v["context"]["identity"]["strength"], "claim", "{label}: {v}");
    }
    c.server.stop().await;
    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    assert_eq!(store.count(store::Countable::Turns).unwrap(), 1, "a forged stamp became a turn");
    let reasons = inbound_reasons(&store);
    assert_eq!(reasons.iter().filter(|r| r.contains("sender:ambiguous_headers")).count(), 3, "{reasons:?}");
    assert!(reasons[4].contains("sender:not_authenticated"), "{reasons:?}");
}

/// L2: a chat (claim) session asking for a one-time code learns nothing:
/// the answer has one shape for a number on file and one nobody has, and
/// never carries the code or the number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_a_chat_challenge_answers_alike_and_hands_out_no_code() {
    let c = clinic();
    maria_calls(&c).await;
    let mut answers = Vec::new();
    for phone in [PHONE, "+1 415 555 0199"] {
        let s = chat_claims(&c.chat, phone).await;
        let (status, v) = c.chat.post(&format!("/v1/sessions/{s}/identity/challenge"), json!({"via": "sms"})).await;
        assert_eq!(status, 202, "{v}");
        let text = v.to_string();
        assert!(!text.contains("4155550100") && !text.contains("code:"), "{text}");
        assert!(v.get("sms").is_none() && v.get("raw").is_none(), "{v}");
        answers.push((v["delivery"].clone(), v["via"].clone(), v.as_object().unwrap().len()));
    }
    assert_eq!(answers[0], answers[1], "known and unknown numbers answered alike");
    assert_eq!(answers[0].0, "unavailable");
    c.server.stop().await;
}

/// L5: a clinic that trusts its own PBX's caller ID does not thereby trust
/// the sender of every text: SMS senders have their own setting, a claim
/// unless the tenant says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l5_trusting_the_pbx_does_not_trust_sms_senders() {
    for (policy, want) in [
        ("[evidence]\ncaller_id = \"trusted\"\n", "claim"),
        ("[evidence]\ncaller_id = \"trusted\"\nsms_sender = \"trusted\"\n", "asserted"),
    ] {
        let c = clinic_with(Some(policy));
        maria_calls(&c).await;
        let v = c.sms.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE}}))).await;
        assert_eq!(v["identity"]["strength"], want, "{policy}: {v}");
        let voice = c.voice.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": PHONE}}))).await;
        assert_eq!(voice["identity"]["strength"], "asserted", "the PBX is still trusted: {voice}");
        c.server.stop().await;
    }
}

/// L9: the login email is not case-sensitive: accounts are kept lowercased,
/// and so is what a person types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l9_a_login_email_in_another_case_signs_in() {
    let c = util::console::clinic().await;
    let ana = util::console::add_staff(&c.env, "ana@sunrise-clinic.example", "front_desk", false);
    let mut b = util::console::Browser::new(c.server.console.unwrap(), &c.ca);
    let code = c.env.installation().danger_staff_totp_at(&ana, c.server.clock.now_ms()).unwrap();
    let p = b.login("Ana@Sunrise-Clinic.EXAMPLE", util::console::PASSWORD, &code).await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/")), "{}", p.body);
    c.server.stop().await;
}

/// L1: the clinic reaches a patient only at identifiers verified on file.
/// A number and an address typed into a chat and kept by intake are linked
/// unverified: neither is where a callback or an email goes by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_callbacks_and_mail_go_only_to_verified_identifiers() {
    let c = clinic();
    let body = json!({"identifiers": {"phone": "+1 415 555 0177", "email": "typed@example.net"}});
    let s = sid(&c.chat.ok(Method::POST, "/v1/sessions", Some(body)).await);
    let intake = json!({"name": "Typed Person", "date_of_birth": "1970-01-01"});
    c.chat.ok(Method::PATCH, &format!("/v1/sessions/{s}/customer"), Some(intake)).await;
    let now = time::OffsetDateTime::from_unix_timestamp(c.server.clock.now_ms() / 1000).unwrap();
    let rfc = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let window = json!({"window_start": rfc(now), "window_end": rfc(now + time::Duration::hours(2))});
    let (status, e) = c.chat.post(&format!("/v1/sessions/{s}/callbacks"), window.clone()).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("phone_required")), "{e}");
    let body = json!({"subject": "Hello", "text": "From the clinic."});
    let (status, e) = c.chat.post(&format!("/v1/sessions/{s}/email/outbound"), body).await;
    assert_eq!((status, e["error"].as_str()), (409, Some("no_email_address")), "{e}");
    // Named explicitly by the agent, they are used.
    let mut named = window;
    named["phone"] = json!("+1 415 555 0177");
    c.chat.ok(Method::POST, &format!("/v1/sessions/{s}/callbacks"), Some(named)).await;
    c.server.stop().await;
}

/// L9: behind the clinic's reverse proxy (the tests' console trusts
/// loopback as its proxy), one person's failed sign-ins lock their address,
/// not everyone's; and a client that is not the proxy cannot pick its
/// address by writing `X-Forwarded-For`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l9_the_sign_in_lockout_keys_on_the_forwarded_address_behind_a_trusted_proxy() {
    let c = util::console::clinic().await;
    let ana = util::console::add_staff(&c.env, "ana@sunrise-clinic.example", "front_desk", false);
    let b = util::console::Browser::new(c.server.console.unwrap(), &c.ca);
    let login = |from: &'static str, email: &'static str, password: String, code: String| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("email", email), ("password", password.as_str()), ("code", code.as_str())])
            .finish();
        b.http
            .post(format!("{}/login", b.base))
            .header("origin", b.base.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", from)
            .body(body)
            .send()
    };
    // A guesser behind the proxy: twenty wrong sign-ins from one address.
    for n in 0..console::lockout::SOURCE_FAILURES {
        let res =
            login("203.0.113.5", "guess@sunrise-clinic.example", format!("guess {n}"), "000000".into()).await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    // That address is refused now, even with Ana's right password.
    let res = login("203.0.113.5", "ana@sunrise-clinic.example", util::console::PASSWORD.into(), "000000".into());
    assert_eq!(res.await.unwrap().status().as_u16(), 401);
    // Ana, through the same proxy from her own address, still signs in.
    let code = c.env.installation().danger_staff_totp_at(&ana, c.server.clock.now_ms()).unwrap();
    let res = login("198.51.100.7", "ana@sunrise-clinic.example", util::console::PASSWORD.into(), code).await.unwrap();
    assert_eq!(res.status().as_u16(), 303, "one guesser locked out everyone behind the proxy");
    let records = c.env.installation().open_tenant(util::console::TENANT).unwrap().audit_records().unwrap();
    let logins: Vec<_> = records.iter().filter(|r| r.action == "staff.login").collect();
    assert!(
        logins.iter().any(|r| r.peer.as_deref() == Some("203.0.113.5") && r.reason.as_deref() == Some("source_locked")),
        "the guesser's address is on the trail"
    );
    assert!(logins.iter().any(|r| r.peer.as_deref() == Some("198.51.100.7") && r.outcome == audit::Outcome::Ok));
    c.server.stop().await;
}

#[test]
fn l9_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    use server::console::forwarded_source;
    use std::net::IpAddr;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let proxy = [ip("10.0.0.2")];
    // From the proxy: the right-most address that is not a proxy.
    assert_eq!(forwarded_source(ip("10.0.0.2"), &proxy, ["203.0.113.9, 198.51.100.7"].into_iter()), ip("198.51.100.7"));
    assert_eq!(forwarded_source(ip("10.0.0.2"), &proxy, ["198.51.100.7", "10.0.0.2"].into_iter()), ip("198.51.100.7"));
    // Not from the proxy, or no proxy configured: the header is ignored.
    assert_eq!(forwarded_source(ip("192.0.2.1"), &proxy, ["198.51.100.7"].into_iter()), ip("192.0.2.1"));
    assert_eq!(forwarded_source(ip("10.0.0.2"), &[], ["198.51.100.7"].into_iter()), ip("10.0.0.2"));
    // Garbage beyond the proxy: the proxy itself.
    assert_eq!(forwarded_source(ip("10.0.0.2"), &proxy, ["not-an-ip"].into_iter()), ip("10.0.0.2"));
}
