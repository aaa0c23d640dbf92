//! The staff console end to end: the real server with its console listener
//! on 127.0.0.1:0, staff made with `throughline staff add`, signed in with
//! a password and a TOTP code computed as an authenticator app would, and
//! driven as a browser drives it (forms, cookies, Origin). Covers the role
//! by screen by scope matrix and the audit record each page writes, CSRF,
//! headers on every route, lockout, idle logoff on the manual clock,
//! disabling, break-glass and its review, and a front-desk reply that goes
//! out through a real SMTP server and threads the patient's answer back.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use serde_json::{Value, json};
use server::Clock as _;
use util::Env;
use util::console::{Browser, PASSWORD, TENANT, add_staff, clinic};
use util::inproc::InProcess;
use util::smtp::delivered;

async fn signed_in(env: &Env, server: &InProcess, ca: &str, email: &str, id: &str) -> Browser {
    let mut b = Browser::new(server.console.unwrap(), ca);
    let code = env.installation().danger_staff_totp_at(id, server.clock.now_ms()).unwrap();
    let p = b.login(email, PASSWORD, &code).await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/")), "{}", p.body);
    assert!(b.cookie.as_deref().unwrap().starts_with("__Host-tl_console="));
    b
}

/// The tenant's audit records, as JSON, from `audit export`.
fn audit(env: &Env) -> Vec<Value> {
    let out = env.tmp.path().join(format!("audit-{}.jsonl", uuid::Uuid::new_v4().simple()));
    env.ok(&["audit", "export", "--tenant", TENANT, "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn last<'a>(records: &'a [Value], action: &str) -> &'a Value {
    records.iter().rev().find(|r| r["action"] == action).unwrap_or_else(|| panic!("no {action} record"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_desk_finds_the_patient_replies_and_the_answer_threads_back() {
    let c = clinic().await;
    let ana = add_staff(&c.env, "ana@sunrise-clinic.example", "front_desk", false);
    let mut b = signed_in(&c.env, &c.server, &c.ca, "ana@sunrise-clinic.example", &ana).await;

    // Search by phone: found through the blind index, audited with an HMAC, never the number.
    let p = b.get("/search").await;
    let csrf = p.csrf();
    let p = b.post("/search", &[("csrf", &csrf), ("kind", "phone"), ("q", "415-555-0100")]).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains(&c.maria) && p.body.contains("Maria Lopez"), "{}", p.body);
    let records = audit(&c.env);
    let search = last(&records, "patient.search");
    assert_eq!(
        (&search["actor_kind"], &search["actor"], &search["role"]),
        (&json!("staff"), &json!(ana), &json!("front_desk"))
    );
    assert_eq!(search["subjects"], json!([c.maria]));
    assert!(search["query_hmac"].as_str().unwrap().len() == 64);
    assert!(!records.iter().any(|r| r.to_string().contains("4155550100")), "a phone number reached the audit trail");

    // The patient page: identity and the appointment time, no reason, no call text.
    let p = b.get(&format!("/patients/{}", c.maria)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("1985-03-14") && p.body.contains("maria@example.com"));
    assert!(!p.body.contains("knee"), "clinical text reached the front desk: {}", p.body);
    let view = last(&audit(&c.env), "patient.view").clone();
    assert_eq!((&view["customer_id"], &view["purpose"]), (&json!(c.maria), &json!("HOPERAT")));

    // The queue lists Maria's email; the thread shows it; the reply goes out.
    let p = b.get("/queue").await;
    assert!(p.body.contains(&format!("/threads/{}", c.thread)), "{}", p.body);
    assert_eq!(last(&audit(&c.env), "conversation.queue.list")["subjects"], json!([c.maria]));
    let p = b.get(&format!("/threads/{}", c.thread)).await;
    assert!(p.body.contains("Is there parking near the clinic?"), "{}", p.body);
    let csrf = p.csrf();
    let p = b
        .post(
            &format!("/threads/{}/reply", c.thread),
            &[("csrf", &csrf), ("subject", "Re: Parking"), ("text", "Yes, behind the building.")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let mail = delivered(&c.smtp);
    let reply = mail.iter().find(|m| m.contains("behind the building")).expect("the reply reached the SMTP server");
    let id = reply.lines().find_map(|l| l.strip_prefix("Message-ID: <")).unwrap().trim_end_matches('>').to_owned();
    let out = last(&audit(&c.env), "email.outbound").clone();
    assert_eq!(
        (&out["actor"], &out["role"], &out["session_id"]),
        (&json!(ana), &json!("front_desk"), &json!(c.thread))
    );

    // Maria answers the staff reply: it threads into the same conversation.
    let raw = format!(
        "From: maria@example.com\r\nTo: appointments@sunrise-clinic.example\r\nSubject: Re: Parking\r\nMessage-ID: <m2@example.com>\r\nIn-Reply-To: <{id}>\r\n\r\nThank you!\r\n"
    );
    let (status, v) = c.email.delivered("/v1/email/inbound", raw.into_bytes()).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["threaded_by"], "in_reply_to", "{v}");
    assert_eq!(v["context"]["customer_id"], json!(c.maria));
    assert_eq!(v["context"]["conversation_id"], json!(c.conversation), "the answer opened another conversation");
    // Back in the queue, the thread holds the staff reply and the answer.
    let answered = v["context"]["session_id"].as_str().unwrap();
    let p = b.get(&format!("/threads/{answered}")).await;
    assert!(p.body.contains("Thank you!"), "{}", p.body);
    let p = b.get(&format!("/threads/{}", c.thread)).await;
    assert!(p.body.contains("behind the building"), "{}", p.body);

    // Every record still chains and verifies, v1 and v2 alike.
    let file = c.env.tmp.path().join("trail.jsonl");
    c.env.ok(&["audit", "export", "--tenant", TENANT, "--out", file.to_str().unwrap()]);
    let out = c.env.ok(&["audit", "verify", file.to_str().unwrap()]);
    assert!(out.contains("verified") || out.contains("ok"), "{out}");
}

/// Role by screen: what each role gets, and that no one but an assigned (or
/// break-glass) clinician ever sees clinical text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_only_its_screens_and_clinical_text_stays_with_clinicians() {
    let c = clinic().await;
    let roles = ["front_desk", "clinician", "email_reviewer", "compliance", "admin"];
    let pages = [
        "/search".to_owned(),
        format!("/patients/{}", c.maria),
        "/queue".to_owned(),
        format!("/threads/{}", c.thread),
        "/reviews".to_owned(),
        "/staff".to_owned(),
        "/requests".to_owned(),
        "/audit".to_owned(),
        format!("/audit/patients/{}", c.maria),
        "/outcomes".to_owned(),
    ];
    // Expected status per role, in the order of `pages` (the clinician is not
    // assigned Maria). docs/COMPLIANCE.md's role table is this matrix.
    let expected = [
        [200, 200, 200, 200, 403, 403, 403, 403, 403, 403],
        [200, 403, 403, 403, 403, 403, 403, 403, 403, 403],
        [403, 403, 200, 200, 403, 403, 403, 403, 403, 403],
        [403, 403, 403, 403, 200, 403, 200, 200, 200, 200],
        [403, 403, 403, 403, 403, 200, 200, 403, 403, 200],
    ];
    for (role, want) in roles.iter().zip(expected) {
        let email = format!("{role}@sunrise-clinic.example");
        let id = add_staff(&c.env, &email, role, false);
        let mut b = signed_in(&c.env, &c.server, &c.ca, &email, &id).await;
        for (path, status) in pages.iter().zip(want) {
            let p = b.get(path).await;
            assert_eq!(p.status, status, "{role} {path}");
            assert!(
                !p.body.contains("knee pain") && !p.body.contains("my knee hurts"),
                "{role} {path} saw clinical text"
            );
            if path == "/outcomes" && status == 200 {
                // Aggregates only: figures, the chart, no patient.
                assert!(p.body.contains("Interrupted calls") && p.body.contains("<svg"), "{}", p.body);
                assert!(!p.body.contains("Maria") && !p.body.contains(&c.maria), "{role} saw a patient on /outcomes");
            }
            for h in [
                "content-security-policy",
                "strict-transport-security",
                "cache-control",
                "referrer-policy",
                "x-frame-options",
            ] {
                assert!(p.headers.contains_key(h), "{role} {path}: no {h}");
            }
        }
        c.server.advance_minutes(1);
    }
    // The refused patient page was audited as refused, out of scope.
    let records = audit(&c.env);
    assert!(records.iter().any(|r| r["action"] == "patient.view"
        && r["outcome"] == "refused"
        && r["reason"] == "out_of_scope"
        && r["role"] == "clinician"));

    // Assigned, the clinician reads everything: the reason and the call.
    let cal = add_staff(&c.env, "cal@sunrise-clinic.example", "clinician", false);
    c.env.ok(&["staff", "assign", "--tenant", TENANT, &cal, "--customer", &c.maria]);
    let mut b = signed_in(&c.env, &c.server, &c.ca, "cal@sunrise-clinic.example", &cal).await;
    let p = b.get(&format!("/patients/{}", c.maria)).await;
    assert!(p.body.contains("knee pain") && p.body.contains("my knee hurts"), "{}", p.body);
    assert_eq!(last(&audit(&c.env), "patient.view")["purpose"], "TREAT");
}

/// Emergency access: a reason, 60 minutes, a banner, an alert, a review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_opens_for_an_hour_and_waits_for_sign_off() {
    let c = clinic().await;
    let dana = add_staff(&c.env, "dana@sunrise-clinic.example", "clinician", true);
    let cora = add_staff(&c.env, "cora@sunrise-clinic.example", "compliance", false);
    let mut b = signed_in(&c.env, &c.server, &c.ca, "dana@sunrise-clinic.example", &dana).await;
    let p = b.get(&format!("/patients/{}", c.maria)).await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("Open for 60 minutes"), "{}", p.body);
    let csrf = p.csrf();
    let path = format!("/patients/{}/break-glass", c.maria);
    let p = b.post(&path, &[("csrf", &csrf), ("reason", "short")]).await;
    assert_eq!(p.status, 422);
    let before = b.cookie.clone();
    let p = b.post(&path, &[("csrf", &csrf), ("reason", "Patient collapsed in the waiting room")]).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_ne!(b.cookie, before, "the session id is renewed when emergency access starts");
    let mut stale = Browser::new(c.server.console.unwrap(), &c.ca);
    stale.cookie = before;
    assert_eq!(stale.get("/").await.status, 303, "the old session id still works");
    // The compliance officer is told by email (ids only, no patient data).
    let alert = delivered(&c.smtp).into_iter().find(|m| m.contains("emergency access to review")).expect("alert mail");
    assert!(
        alert.contains("To: cora@sunrise-clinic.example") && !alert.contains("Maria") && !alert.contains("collapsed"),
        "{alert}"
    );
    let p = b.get(&format!("/patients/{}", c.maria)).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Emergency access") && p.body.contains("knee pain"), "{}", p.body);
    let records = audit(&c.env);
    let start = last(&records, "breakglass.start");
    let grant = start["break_glass"].as_str().unwrap().to_owned();
    assert!(grant.starts_with("brk_") && start["purpose"] == "ETREAT");
    let view = last(&records, "patient.view");
    assert_eq!((&view["purpose"], &view["break_glass"]), (&json!("ETREAT"), &json!(grant)));
    assert!(!records.iter().any(|r| r.to_string().contains("collapsed")), "the typed reason reached the audit trail");

    // The compliance officer sees it waiting, with the alert, and signs it off.
    let mut officer = signed_in(&c.env, &c.server, &c.ca, "cora@sunrise-clinic.example", &cora).await;
    let p = officer.get("/reviews").await;
    assert!(p.body.contains(&grant) && p.body.contains("break glass"), "{}", p.body);
    let csrf = p.csrf();
    let p = officer.post(&format!("/reviews/{grant}"), &[("csrf", &csrf), ("outcome", "justified")]).await;
    assert_eq!(p.status, 303);
    assert!(!officer.get("/reviews").await.body.contains(&format!("/reviews/{grant}")));
    let review = last(&audit(&c.env), "breakglass.review").clone();
    assert_eq!(
        (&review["actor"], &review["reason"], &review["break_glass"]),
        (&json!(cora), &json!("justified"), &json!(grant))
    );

    // Sixty minutes later the grant is over (the session stays alive by use).
    for _ in 0..5 {
        c.server.advance_minutes(13);
        b.get("/").await;
    }
    assert_eq!(b.get(&format!("/patients/{}", c.maria)).await.status, 403);
}

/// Sessions: idle logoff, disabling, CSRF, lockout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_or_disabled_and_forged_forms_are_refused() {
    let c = clinic().await;
    let ana = add_staff(&c.env, "ana@sunrise-clinic.example", "front_desk", false);
    let mut b = signed_in(&c.env, &c.server, &c.ca, "ana@sunrise-clinic.example", &ana).await;
    let page = b.get(&format!("/threads/{}", c.thread)).await;
    let csrf = page.csrf();
    let reply = format!("/threads/{}/reply", c.thread);
    // Another site's form, and our form without the token: refused, nothing sent.
    let p = b.post_from(&reply, &[("csrf", &csrf), ("subject", "x"), ("text", "forged")], "https://evil.example").await;
    assert_eq!(p.status, 403);
    assert_eq!(b.post(&reply, &[("csrf", "nope"), ("subject", "x"), ("text", "forged")]).await.status, 403);
    assert!(!delivered(&c.smtp).iter().any(|m| m.contains("forged")));

    // Fourteen idle minutes are fine; sixteen end the session, audited as idle.
    c.server.advance_minutes(14);
    assert_eq!(b.get("/").await.status, 200);
    c.server.advance_minutes(16);
    let p = b.get("/").await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/login?ended=1")));
    assert_eq!(last(&audit(&c.env), "staff.logout")["reason"], "idle");

    // Disabled: the live session ends at once.
    let mut b = signed_in(&c.env, &c.server, &c.ca, "ana@sunrise-clinic.example", &ana).await;
    assert_eq!(b.get("/").await.status, 200);
    let out = c.env.ok(&["staff", "disable", "--tenant", TENANT, &ana]);
    assert!(out.contains("ended 1 console session"), "{out}");
    assert_eq!(b.get("/").await.status, 303);
    c.server.advance_minutes(1);
    let code = c.env.installation().danger_staff_totp_at(&ana, c.server.clock.now_ms()).unwrap();
    assert_eq!(
        Browser::new(c.server.console.unwrap(), &c.ca)
            .login("ana@sunrise-clinic.example", PASSWORD, &code)
            .await
            .status,
        401
    );

    // Five wrong codes lock the account; the right one is then refused too.
    let eve = add_staff(&c.env, "eve@sunrise-clinic.example", "front_desk", false);
    let mut x = Browser::new(c.server.console.unwrap(), &c.ca);
    for _ in 0..5 {
        assert_eq!(x.login("eve@sunrise-clinic.example", PASSWORD, "000000").await.status, 401);
    }
    let code = c.env.installation().danger_staff_totp_at(&eve, c.server.clock.now_ms()).unwrap();
    assert_eq!(x.login("eve@sunrise-clinic.example", PASSWORD, &code).await.status, 401);
    let records = audit(&c.env);
    let fails = records.iter().filter(|r| r["action"] == "staff.login" && r["actor"] == json!(eve)).count();
    assert_eq!(fails, 6);
    assert_eq!(last(&records, "staff.login")["reason"], "locked");
    // Login, logout and the assets carry the headers too.
    for path in ["/login", "/assets/console.css", "/nowhere"] {
        let p = x.get(path).await;
        assert!(p.headers.get("content-security-policy").is_some(), "{path}");
        assert_eq!(p.headers.get("cache-control").unwrap(), "no-store", "{path}");
    }
}

/// Held messages: an email no trusted MTA vouched for waits in the queue;
/// a reviewer reads it, releases it into the patient's conversation once,
/// or discards it and its bytes are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_messages_are_read_then_released_or_discarded_once() {
    let c = clinic().await;
    let unstamped = |id: &str, from: &str, text: &str| {
        format!("From: {from}\r\nTo: appointments@sunrise-clinic.example\r\nSubject: Re: Your appointment\r\nMessage-ID: <{id}@example.com>\r\nIn-Reply-To: <{}>\r\n\r\n{text}\r\n", c.ours).into_bytes()
    };
    let (status, v) =
        c.email.raw("/v1/email/inbound", unstamped("h1", "maria@example.com", "Please move my visit to Friday.")).await;
    assert_eq!((status, &v["held_for_review"]), (201, &json!(true)), "{v}");
    let (status, v) =
        c.email.raw("/v1/email/inbound", unstamped("h2", "spam@elsewhere.example", "Spam spam spam.")).await;
    assert_eq!((status, &v["held_for_review"]), (201, &json!(true)), "{v}");

    let rev = add_staff(&c.env, "rev@sunrise-clinic.example", "email_reviewer", false);
    let mut b = signed_in(&c.env, &c.server, &c.ca, "rev@sunrise-clinic.example", &rev).await;
    let queue = b.get("/queue").await;
    let held: Vec<String> = queue
        .body
        .match_indices("/held/")
        .map(|(i, _)| queue.body[i..].split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(held.len(), 2, "{}", queue.body);
    let p = b.get(&held[0]).await;
    assert!(
        p.body.contains("Please move my visit to Friday.") && p.body.contains("no trusted mail server"),
        "{}",
        p.body
    );
    assert_eq!(last(&audit(&c.env), "held.view")["reason"], "sender_not_authenticated");
    let csrf = p.csrf();
    assert!(p.body.contains("/release"), "Maria's held reply cannot be released: {}", p.body);
    {
        assert_eq!(b.post(&format!("{}/release", held[0]), &[("csrf", &csrf)]).await.status, 303);
        let again = b.post(&format!("{}/release", held[0]), &[("csrf", &csrf)]).await;
        assert_eq!(again.status, 303);
        let records = audit(&c.env);
        assert_eq!(records.iter().filter(|r| r["action"] == "held.release" && r["outcome"] == "ok").count(), 1);
        assert_eq!(last(&records, "held.release")["reason"], "already_reviewed");
        // Released, it is Maria's turn in her conversation.
        let cal = add_staff(&c.env, "cal@sunrise-clinic.example", "clinician", false);
        c.env.ok(&["staff", "assign", "--tenant", TENANT, &cal, "--customer", &c.maria]);
        let mut doc = signed_in(&c.env, &c.server, &c.ca, "cal@sunrise-clinic.example", &cal).await;
        assert!(doc.get(&format!("/patients/{}", c.maria)).await.body.contains("Please move my visit to Friday."));
    }
    assert_eq!(b.post(&format!("{}/discard", held[1]), &[("csrf", &csrf)]).await.status, 303);
    let p = b.get(&held[1]).await;
    assert!(p.body.contains("has been reviewed") && !p.body.contains("Discard"), "{}", p.body);
    assert!(!b.get("/queue").await.body.contains(&held[1]), "a discarded message stays in the queue");
    // Discarded bytes are gone from the store, not just hidden.
    {
        let mut store = c.env.installation().open_tenant(TENANT).unwrap();
        let tx = store.transaction().unwrap();
        let id: i64 = held[1].trim_start_matches("/held/").parse().unwrap();
        let row = tx.held(id).unwrap().unwrap();
        assert!(row.reviewed && tx.held_content(&row).is_err());
    }
    // The front desk may review email too; a compliance officer may not.
    let cora = add_staff(&c.env, "cora@sunrise-clinic.example", "compliance", false);
    let mut officer = signed_in(&c.env, &c.server, &c.ca, "cora@sunrise-clinic.example", &cora).await;
    assert_eq!(officer.get(&held[0]).await.status, 403);
}
