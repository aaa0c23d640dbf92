//! The seed story across voice, chat and email over real mTLS, asserting at
//! every step that nothing is repeated; appointments under each channel's
//! policy; callbacks claimed once, with context, and released when a claim
//! runs out.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use continuity::calendar::ClinicZone;
use jiff::civil::Weekday;
use reqwest::Method;
use serde_json::{Value, json};
use server::Clock as _;
use store::Countable;
use util::Env;
use util::api::Api;
use util::inproc::InProcess;

const DOB: &str = "1985-03-14";

/// The next Tuesday at 2 PM and 3 PM at the clinic, from the server's clock
/// (so the tests hold on any date): RFC 3339 with the clinic's offset, and
/// 2 PM as a person reads it.
struct Tuesday {
    two_pm: String,
    three_pm: String,
    two_pm_text: String,
}

fn la() -> ClinicZone {
    ClinicZone::parse("America/Los_Angeles").unwrap()
}

fn next_tuesday(s: &Sunrise) -> Tuesday {
    let (zone, now) = (la(), s.server.clock.now_ms());
    let two = zone.next_weekday_at(now, Weekday::Tuesday, 14, 0).unwrap();
    let three = zone.next_weekday_at(now, Weekday::Tuesday, 15, 0).unwrap();
    Tuesday { two_pm: zone.rfc3339(two), three_pm: zone.rfc3339(three), two_pm_text: zone.render(two) }
}

struct Sunrise {
    env: Env,
    server: InProcess,
    voice: Api,
    chat: Api,
    email: Api,
}

fn sunrise() -> Sunrise {
    let env = Env::initialised();
    env.tenant(&["sunrise-clinic", "--time-zone", "America/Los_Angeles"]);
    env.ok(&["tenant", "email", "sunrise-clinic", "--from", "appointments@sunrise-clinic.example"]);
    let certs: Vec<_> = ["voice", "chat", "email"].iter().map(|c| env.issue("sunrise-clinic", c)).collect();
    let server = InProcess::start(&env);
    let (voice, chat, email) =
        (Api::new(&server, &certs[0]), Api::new(&server, &certs[1]), Api::new(&server, &certs[2]));
    Sunrise { env, server, voice, chat, email }
}

fn sid(v: &Value) -> String {
    v["session_id"].as_str().unwrap().to_owned()
}

/// A chat session with Maria, confirmed by date of birth.
async fn confirmed_chat(s: &Sunrise) -> Value {
    let open = s.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let body = json!({"date_of_birth": DOB});
    s.chat.ok(Method::POST, &format!("/v1/sessions/{}/identity/confirm", sid(&open)), Some(body)).await
}

async fn voice_intake(s: &Sunrise) -> Value {
    let open =
        s.voice.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "+1 415 555 0100"}}))).await;
    let id = sid(&open);
    let body = json!({"name": "Maria Lopez", "date_of_birth": DOB});
    s.voice.ok(Method::PATCH, &format!("/v1/sessions/{id}/customer"), Some(body)).await;
    let body = json!({"speaker": "patient", "text": "I'd like a check-up on Tuesday."});
    s.voice.ok(Method::POST, &format!("/v1/sessions/{id}/turns"), Some(body)).await;
    let body = json!({"value": "Tuesday"});
    s.voice.ok(Method::PUT, &format!("/v1/sessions/{id}/state/pending_booking_date"), Some(body)).await;
    s.voice.ok(Method::POST, &format!("/v1/sessions/{id}/end"), Some(json!({"reason": "dropped"}))).await;
    open
}

fn reply(our_id: &str, text: &str) -> Vec<u8> {
    format!(
        "From: Maria Lopez <maria@example.com>\r\nTo: appointments@sunrise-clinic.example\r\n\
         Subject: Re: Your appointment\r\nMessage-ID: <reply-1@mail.example.com>\r\nIn-Reply-To: <{our_id}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n{text}\r\n\r\nOn Tue at 9:00 AM Sunrise wrote:\r\n\
         > Your appointment: Tuesday\r\n--b\r\nContent-Type: image/png; name=\"card.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUg==\r\n--b--\r\n"
    )
    .into_bytes()
}

/// The demo's story as three channel integrations play it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_conversation_across_voice_chat_and_email() {
    let s = sunrise();
    // 4 PM: voice intake, the call drops.
    let call = voice_intake(&s).await;
    let conversation = call["conversation_id"].clone();

    // 9 PM: chat, confirmed, picks up exactly there.
    s.server.advance_minutes(5 * 60);
    let ctx = confirmed_chat(&s).await;
    let chat = sid(&ctx);
    assert_eq!(ctx["conversation_id"], conversation);
    assert_eq!(ctx["state"], json!({"pending_booking_date": "Tuesday"}));
    assert_eq!(ctx["brief"], "voice call 5 h ago, dropped; pending: booking date Tuesday");
    assert_eq!(ctx["recent_turns"][0]["text"], "I'd like a check-up on Tuesday.");

    // Intake finishes: Tuesday 2 PM with a reason; the confirmation email goes out.
    let tuesday = next_tuesday(&s);
    let (two_pm, three_pm) = (tuesday.two_pm.as_str(), tuesday.three_pm.as_str());
    let body = json!({"starts_at": two_pm, "duration_min": 30, "reason": "knee pain"});
    let apt = s.chat.ok(Method::POST, &format!("/v1/sessions/{chat}/appointments"), Some(body)).await;
    assert_eq!((apt["starts_at"].as_str(), apt["reason"].as_str()), (Some(two_pm), Some("knee pain")));
    assert_eq!(apt["local_time"].as_str(), Some(tuesday.two_pm_text.as_str()));
    assert_eq!(apt["time_zone"], "America/Los_Angeles");
    let apt_id = apt["id"].as_str().unwrap().to_owned();
    s.chat.ok(Method::DELETE, &format!("/v1/sessions/{chat}/state/pending_booking_date"), None).await;
    let body =
        json!({"to": "maria@example.com", "subject": "Your appointment", "text": "Hi Maria", "appointment_id": apt_id});
    let sent = s.chat.ok(Method::POST, &format!("/v1/sessions/{chat}/email/outbound"), Some(body)).await;
    assert_eq!(sent["delivery"], "gateway");
    let raw = sent["raw"].as_str().unwrap();
    assert!(raw.contains(&format!("Message-ID: <{}>", sent["message_id"].as_str().unwrap())), "{raw}");
    assert!(raw.contains(&format!("{}, 30 minutes", tuesday.two_pm_text)), "{raw}");
    assert!(tuesday.two_pm_text.ends_with(" PST") || tuesday.two_pm_text.ends_with(" PDT"), "{}", tuesday.two_pm_text);
    assert!(!raw.contains("knee"), "the reason went into an email");
    s.chat.ok(Method::POST, &format!("/v1/sessions/{chat}/end"), Some(json!({"reason": "completed"}))).await;

    // Next morning the patient replies, 3 PM instead, card attached: same
    // conversation; the email agent sees the time, not the reason, and no turns.
    s.server.advance_minutes(11 * 60);
    let (status, inbound) = s
        .email
        .delivered("/v1/email/inbound", reply(sent["message_id"].as_str().unwrap(), "Could we make it 3 PM?"))
        .await;
    assert_eq!(status, 201, "{inbound}");
    let ctx = &inbound["context"];
    assert_eq!(ctx["conversation_id"], conversation);
    assert_eq!(inbound["threaded_by"], "in_reply_to");
    assert_eq!(inbound["attachments"][0]["content_type"], "image/png");
    assert_eq!(ctx["greeting_name"], "Maria");
    assert_eq!(ctx["appointments"][0]["starts_at"], two_pm);
    let brief = ctx["brief"].as_str().unwrap();
    assert!(brief.ends_with(&format!("next appointment {}", tuesday.two_pm_text)), "{brief}");
    assert!(ctx["appointments"][0].get("reason").is_none(), "clinical data on the email channel");
    assert_eq!(ctx["recent_turns"], json!([]), "turn text on the email channel");
    assert!(ctx["withheld"].as_array().unwrap().contains(&json!("clinical")));
    let email = sid(&inbound);

    // The email agent reschedules the same appointment; it may not add a reason.
    let body = json!({"session_id": email, "starts_at": three_pm});
    let moved = s.email.ok(Method::PATCH, &format!("/v1/appointments/{apt_id}"), Some(body)).await;
    assert_eq!((moved["id"].as_str(), moved["starts_at"].as_str()), (Some(apt_id.as_str()), Some(three_pm)));
    let body = json!({"starts_at": three_pm, "reason": "anything"});
    let (status, v) = s.email.post(&format!("/v1/sessions/{email}/appointments"), body).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (403, "phi_class_not_allowed"));

    // Back on voice the next day: one appointment at 3 PM, the email in the history.
    let open = s.voice.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "+14155550100"}}))).await;
    assert_eq!(open["conversation_id"], conversation);
    assert_eq!(open["appointments"].as_array().unwrap().len(), 1);
    assert_eq!(open["appointments"][0]["starts_at"], three_pm);
    assert_eq!(open["appointments"][0]["reason"], "knee pain");
    let texts: Vec<&str> =
        open["recent_turns"].as_array().unwrap().iter().map(|t| t["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"Could we make it 3 PM?"), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("Sunrise wrote")), "quoted history became a turn: {texts:?}");
    assert_eq!(open["state"], json!({}), "intake finished, nothing pending");

    // Right of access: the export carries the appointment, its reason and the card.
    let chat = sid(&confirmed_chat(&s).await);
    let doc = s.chat.ok(Method::GET, &format!("/v1/sessions/{chat}/export"), None).await;
    assert_eq!(doc["appointments"][0]["starts_at"], three_pm);
    assert_eq!(doc["appointments"][0]["reason"], "knee pain");
    assert_eq!(doc["attachments"][0]["filename"], "card.png");
    assert_eq!(doc["attachments"][0]["content_base64"], "iVBORw0KGgoAAAANSUhEUg==");
    s.server.stop().await;

    // Nothing readable on disk.
    for file in util::files(&s.env.data) {
        let bytes = std::fs::read(&file).unwrap();
        for phi in ["maria@example.com", "knee pain", "Could we make it", "card.png", "Maria"] {
            assert!(!util::contains(&bytes, phi), "{phi} in the clear in {}", file.display());
        }
    }
}

/// Who may book and change what: claims cannot, another patient's
/// appointment is not found, bad times are refused and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_follow_identity_and_policy() {
    let s = sunrise();
    let two_pm = next_tuesday(&s).two_pm;
    voice_intake(&s).await;
    // Unconfirmed chat (a typed phone number): refused and audited.
    let open = s.chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let (status, v) =
        s.chat.post(&format!("/v1/sessions/{}/appointments", sid(&open)), json!({"starts_at": two_pm})).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (403, "identity_confirmation_required"));

    let chat = sid(&confirmed_chat(&s).await);
    let path = format!("/v1/sessions/{chat}/appointments");
    for (body, code) in [
        (json!({"starts_at": "next Tuesday"}), "invalid_time"),
        (json!({"starts_at": "2001-01-01T10:00:00Z"}), "appointment_in_past"),
        (json!({"starts_at": two_pm, "duration_min": 2}), "invalid_duration"),
        (json!({"starts_at": two_pm, "surprise": 1}), "invalid_json"),
    ] {
        let (status, v) = s.chat.post(&path, body.clone()).await;
        assert_eq!((status, v["error"].as_str().unwrap_or("")), (400, code), "{body}: {v}");
    }
    let apt = s.chat.ok(Method::POST, &path, Some(json!({"starts_at": two_pm}))).await;
    let apt_id = apt["id"].as_str().unwrap();

    // Another patient (a new caller) cannot see or move Maria's appointment.
    let other =
        s.voice.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "+1 212 555 0199"}}))).await;
    let body = json!({"session_id": sid(&other), "status": "cancelled"});
    let (status, v) = s.voice.send(Method::PATCH, &format!("/v1/appointments/{apt_id}"), Some(body)).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (404, "appointment_not_found"));
    let body = json!({"session_id": chat, "status": "moved"});
    let (status, v) = s.chat.send(Method::PATCH, &format!("/v1/appointments/{apt_id}"), Some(body)).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (400, "invalid_status"));
    let (status, _) = s.chat.send(Method::PATCH, "/v1/appointments/apt_nope", Some(json!({"session_id": chat}))).await;
    assert_eq!(status, 404);

    // Cancelled: gone from the upcoming list.
    let body = json!({"session_id": chat, "status": "cancelled"});
    let v = s.chat.ok(Method::PATCH, &format!("/v1/appointments/{apt_id}"), Some(body)).await;
    assert_eq!(v["status"], "cancelled");
    let ctx = s.chat.ok(Method::GET, &format!("/v1/sessions/{chat}/context"), None).await;
    assert_eq!(ctx["appointments"], json!([]));
    s.server.stop().await;
    let store = s.env.installation().open_tenant("sunrise-clinic").unwrap();
    let actions: Vec<(String, String)> =
        store.audit_records().unwrap().into_iter().map(|r| (r.action, r.outcome.as_str().to_owned())).collect();
    for expected in [("appointment.book", "refused"), ("appointment.book", "ok"), ("appointment.cancel", "ok")] {
        assert!(actions.iter().any(|(a, o)| (a.as_str(), o.as_str()) == expected), "{expected:?} not audited");
    }
}

/// The offset rule against the real server, on next year's US DST days:
/// the clinic's own offset or UTC is kept (and shown in the clinic's zone),
/// a local time written with the wrong offset is refused with the right one,
/// a time in the spring gap is refused, both 1:30 AMs of the fall-back night
/// are real, and offsets no zone uses are 400, not 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointment_times_follow_the_clinics_zone_across_dst() {
    let s = sunrise();
    voice_intake(&s).await;
    let chat = sid(&confirmed_chat(&s).await);
    let path = format!("/v1/sessions/{chat}/appointments");
    let now = jiff::Timestamp::from_millisecond(s.server.clock.now_ms()).unwrap();
    let year = now.to_zoned_datetime(la().as_tz()).year() + 1;
    let sunday = |month: i8, nth: i8| {
        let d = jiff::civil::date(year, month, 1).nth_weekday_of_month(nth, Weekday::Sunday).unwrap();
        format!("{year}-{month:02}-{:02}", d.day())
    };
    let (spring, fall) = (sunday(3, 2), sunday(11, 1));
    let book = |starts_at: String| {
        let (s, path) = (&s, &path);
        async move { s.chat.post(path, json!({"starts_at": starts_at})).await }
    };

    // The spring gap: 2:30 AM does not exist; -08:00 puts it at 3:30 AM PDT.
    let (status, v) = book(format!("{spring}T02:30:00-08:00")).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (400, "offset_mismatch"), "{v}");
    assert!(v["message"].as_str().unwrap().contains(&format!("write {spring}T03:30:00-07:00")), "{v}");
    // Winter's offset on a summer date would book 3 PM: refused.
    let (status, v) = book(format!("{year}-07-06T14:00:00-08:00")).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (400, "offset_mismatch"), "{v}");
    // UTC is unambiguous: kept, shown at the clinic (2 PM PDT).
    let (status, v) = book(format!("{year}-07-06T21:00:00Z")).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["starts_at"], format!("{year}-07-06T14:00:00-07:00"));
    assert!(v["local_time"].as_str().unwrap().ends_with("2:00 PM PDT"), "{v}");
    // After the spring change and on both sides of the fall one.
    for (at, local) in [
        (format!("{spring}T03:30:00-07:00"), "3:30 AM PDT"),
        (format!("{fall}T01:30:00-07:00"), "1:30 AM PDT"),
        (format!("{fall}T01:30:00-08:00"), "1:30 AM PST"),
        (format!("{year}-12-01T14:00:00-08:00"), "2:00 PM PST"),
    ] {
        let (status, v) = book(at.clone()).await;
        assert_eq!((status, v["starts_at"].as_str()), (201, Some(at.as_str())), "{v}");
        assert!(v["local_time"].as_str().unwrap().ends_with(local), "{at}: {v}");
    }
    // Offsets no zone uses: bad input, not a server error.
    for at in [format!("{year}-07-06T14:00:00+18:30"), format!("{year}-07-06T14:00:00-23:59")] {
        let (status, v) = book(at.clone()).await;
        assert_eq!((status, v["error"].as_str().unwrap()), (400, "invalid_time"), "{at}: {v}");
    }
    // The refusals stored nothing.
    let ctx = s.chat.ok(Method::GET, &format!("/v1/sessions/{chat}/context"), None).await;
    assert_eq!(ctx["appointments"].as_array().unwrap().len(), 5);
    s.server.stop().await;
}

/// A chat asks for a call back; two voice agents race for it and exactly
/// one wins, with the conversation; a claim that runs out goes back to the
/// queue; a completed call settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_claimed_once_with_the_full_context() {
    let s = sunrise();
    let call = voice_intake(&s).await;
    let chat = sid(&confirmed_chat(&s).await);
    let now = time::OffsetDateTime::from_unix_timestamp(s.server.clock.now_ms() / 1000).unwrap();
    let rfc = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let window = json!({"window_start": rfc(now), "window_end": rfc(now + time::Duration::hours(2))});
    let path = format!("/v1/sessions/{chat}/callbacks");
    let bad = json!({"window_start": rfc(now), "window_end": rfc(now - time::Duration::hours(1))});
    assert_eq!(s.chat.post(&path, bad).await.1["error"], "invalid_window");
    let cb = s.chat.ok(Method::POST, &path, Some(window)).await;
    assert_eq!(cb["status"], "pending");

    // Only voice claims; two voice agents at once: one 200, one 204.
    let (status, v) = s.chat.post("/v1/callbacks/claim", json!({})).await;
    assert_eq!((status, v["error"].as_str().unwrap()), (403, "wrong_channel"));
    let second = Api { http: s.voice.http.clone(), base: s.voice.base.clone() };
    let (a, b) =
        tokio::join!(s.voice.post("/v1/callbacks/claim", json!({})), second.post("/v1/callbacks/claim", json!({})));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 204], "{a:?} {b:?}");
    let claim = if a.0 == 200 { a.1 } else { b.1 };
    assert_eq!(claim["callback"]["id"], cb["id"]);
    assert_eq!(claim["callback"]["phone"], "+14155550100");
    let ctx = &claim["context"];
    assert_eq!(ctx["conversation_id"], call["conversation_id"]);
    assert_eq!(ctx["greeting_name"], "Maria");
    assert_eq!(ctx["recent_turns"][0]["text"], "I'd like a check-up on Tuesday.");

    // The claim runs out after 15 minutes: another agent gets it.
    s.server.advance_minutes(16);
    let again = s.voice.ok(Method::POST, "/v1/callbacks/claim", Some(json!({}))).await;
    assert_eq!(again["callback"]["id"], cb["id"]);
    let voice = sid(&again["context"]);
    s.voice.ok(Method::POST, &format!("/v1/sessions/{voice}/end"), Some(json!({"reason": "completed"}))).await;
    let (status, _) = s.voice.post("/v1/callbacks/claim", json!({})).await;
    assert_eq!(status, 204, "a settled callback was handed out again");
    s.server.stop().await;
    assert_eq!(s.env.installation().open_tenant("sunrise-clinic").unwrap().count(Countable::Sessions).unwrap(), 4);
}
