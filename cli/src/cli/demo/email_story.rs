//! The rest of the seed story: the chat agent finishes intake, books the
//! next Tuesday at 2 PM and sends the confirmation email; at 8 AM the next
//! day the patient replies asking for 3 PM with their insurance card
//! attached, and the email agent reschedules the same appointment in the
//! same conversation. Every date comes from the clock, in the clinic's zone.

use anyhow::{Context as _, ensure};
use continuity::calendar::ClinicZone;
use jiff::civil::Weekday;
use reqwest::Method;
use serde_json::{Value, json};
use server::{Clock as _, ManualClock};

use super::story::{Channel, show_context};

const PATIENT_EMAIL: &str = "maria.lopez@example.com";

/// Where the first half of the story left off.
pub struct Story<'a> {
    pub chat_session: &'a str,
    pub conversation: &'a Value,
    pub clock: &'a ManualClock,
    pub zone: &'a ClinicZone,
}

pub async fn chat_books_then_email_reschedules(
    chat: &Channel,
    email: &Channel,
    story: &Story<'_>,
) -> anyhow::Result<()> {
    let Story { chat_session, conversation, clock, zone } = *story;
    let chat_at = clock.now_ms();
    let tuesday_2pm = zone.next_weekday_at(chat_at, Weekday::Tuesday, 14, 0)?;
    let tuesday_3pm = zone.next_weekday_at(chat_at, Weekday::Tuesday, 15, 0)?;
    let (tuesday_2pm_rfc, tuesday_3pm_rfc) = (zone.rfc3339(tuesday_2pm), zone.rfc3339(tuesday_3pm));
    super::step("9 PM, chat", "intake finishes; next Tuesday 2 PM is booked; a confirmation email goes out");
    println!("    at the clinic: {}", zone.render(chat_at));
    let s = |p: &str| format!("/v1/sessions/{chat_session}{p}");
    for (speaker, text) in [
        ("patient", "It's for a check-up, my knee has been hurting."),
        ("agent", "Tuesday at 2 PM is free. Shall I book it?"),
        ("patient", "Yes please. Send me an email."),
    ] {
        chat.ok(Method::POST, &s("/turns"), Some(json!({"speaker": speaker, "text": text}))).await?;
    }
    let apt = chat
        .ok(
            Method::POST,
            &s("/appointments"),
            Some(json!({"starts_at": tuesday_2pm_rfc, "duration_min": 30, "reason": "knee pain check-up"})),
        )
        .await?;
    println!(
        "           <- appointment {} at {} ({})",
        apt["id"].as_str().unwrap_or(""),
        apt["starts_at"],
        apt["local_time"].as_str().unwrap_or("")
    );
    ensure!(apt["starts_at"] == tuesday_2pm_rfc.as_str(), "booked at {}", apt["starts_at"]);
    let apt_id = apt["id"].as_str().context("appointment id")?.to_owned();
    chat.ok(Method::DELETE, &s("/state/pending_booking_date"), None).await?;
    let sent = chat
        .ok(
            Method::POST,
            &s("/email/outbound"),
            Some(json!({
                "to": PATIENT_EMAIL,
                "subject": "Your Sunrise Clinic appointment",
                "text": "Hi Maria,\n\nthank you for booking with us.",
                "appointment_id": apt_id,
            })),
        )
        .await?;
    let our_id = sent["message_id"].as_str().context("message id")?.to_owned();
    let raw = sent["raw"].as_str().context("raw message")?;
    println!("           <- delivery {}, Message-ID <{our_id}> recorded for threading", sent["delivery"]);
    let parsed = mail_parser::MessageParser::default().parse(raw.as_bytes()).context("the composed message")?;
    println!("              | Message-ID: <{}>", parsed.message_id().unwrap_or_default());
    println!("              | To: {PATIENT_EMAIL}");
    println!("              | Subject: {}", parsed.subject().unwrap_or_default());
    for line in parsed.body_text(0).unwrap_or_default().lines().filter(|l| !l.is_empty()) {
        println!("              | {line}");
    }
    ensure!(!raw.contains("knee"), "the reason for the visit went into an email");
    let confirmation = parsed.body_text(0).unwrap_or_default();
    ensure!(
        confirmation.contains(&zone.render(tuesday_2pm)),
        "the confirmation does not give the time in the clinic's zone: {confirmation}"
    );
    chat.ok(Method::POST, &s("/end"), Some(json!({"reason": "completed"}))).await?;

    let eight_am = zone.next_day_at(clock.now_ms(), 8, 0)?;
    clock.advance_ms(eight_am - clock.now_ms());
    super::step("8 AM next day, email", "the patient replies: 3 PM instead? insurance card attached");
    println!("    at the clinic: {}", zone.render(eight_am));
    let reply = patient_reply(&our_id, &zone.format(eight_am, RFC2822), &zone.format(chat_at, QUOTED));
    println!("    email -> POST /v1/email/inbound ({} bytes, In-Reply-To <{our_id}>)", reply.len());
    let (status, inbound) = email.raw("/v1/email/inbound", reply.clone()).await?;
    ensure!(status == 201, "inbound answered {status}: {inbound}");
    println!(
        "           <- sender {} (the clinic's MTA), threaded by {}, stored {}, attachments {}",
        inbound["sender_evidence"], inbound["threaded_by"], inbound["stored"], inbound["attachments"]
    );
    ensure!(inbound["stored"] == true, "an authenticated reply was not stored: {inbound}");
    let ctx = &inbound["context"];
    show_context(ctx);
    ensure!(ctx["conversation_id"] == *conversation, "the reply did not thread into the conversation");
    ensure!(inbound["threaded_by"] == "in_reply_to", "threaded by {}", inbound["threaded_by"]);
    ensure!(ctx["appointments"][0]["id"] == apt_id.as_str(), "the email agent does not see the appointment");
    ensure!(ctx["appointments"][0].get("reason").is_none(), "the reason for the visit reached the email channel");
    println!(
        "           the email agent sees the appointment time, not the reason (policy: email gets no clinical data)"
    );

    let email_session = inbound["session_id"].as_str().context("session id")?.to_owned();
    let moved = email
        .ok(
            Method::PATCH,
            &format!("/v1/appointments/{apt_id}"),
            Some(json!({"session_id": email_session, "starts_at": tuesday_3pm_rfc})),
        )
        .await?;
    println!("           <- appointment {} now at {}", moved["id"].as_str().unwrap_or(""), moved["starts_at"]);
    ensure!(moved["starts_at"] == tuesday_3pm_rfc.as_str(), "not rescheduled");
    let answer = email
        .ok(
            Method::POST,
            &format!("/v1/sessions/{email_session}/email/outbound"),
            Some(json!({
                "subject": "Re: Your Sunrise Clinic appointment",
                "text": "Hi Maria,\n\ndone: we moved you to 3 PM and have your insurance card.",
                "appointment_id": apt_id,
                "in_reply_to": "CAF7r2h1=maria.0001@mail.example.com",
            })),
        )
        .await?;
    println!("           <- answer to {}, Message-ID <{}>", answer["to"], answer["message_id"].as_str().unwrap_or(""));

    let (status, again) = email.raw("/v1/email/inbound", reply).await?;
    println!("    email -> the gateway re-delivers the same reply -> {status}, duplicate {}", again["duplicate"]);
    ensure!(status == 200 && again["duplicate"] == true, "a re-delivered message was stored twice");
    println!("           one conversation across voice, chat and email; nobody repeated themselves");
    Ok(())
}

/// The Date header's form (RFC 5322 section 3.3).
const RFC2822: &str = "%a, %-d %b %Y %H:%M:%S %z";
/// How a mail client introduces quoted history.
const QUOTED: &str = "%a, %b %-d, %Y at %-I:%M %p";

/// The patient's reply as the clinic's MTA delivers it (its
/// Authentication-Results on top: DMARC passed for example.com) and as
/// their mail client wrote it: quoted history below, a PNG attached.
fn patient_reply(our_id: &str, date: &str, quoted_at: &str) -> Vec<u8> {
    let png = base64_engine(&[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13, b'I', b'H', b'D', b'R']);
    format!(
        "Authentication-Results: mx.sunrise-clinic.example;\r\n \
         dkim=pass header.d=example.com header.s=s1;\r\n \
         spf=pass smtp.mailfrom=example.com;\r\n \
         dmarc=pass (p=reject) header.from=example.com\r\n\
         From: Maria Lopez <{PATIENT_EMAIL}>\r\n\
         To: Sunrise Clinic <appointments@sunrise-clinic.example>\r\n\
         Subject: Re: Your Sunrise Clinic appointment\r\n\
         Date: {date}\r\n\
         Message-ID: <CAF7r2h1=maria.0001@mail.example.com>\r\n\
         In-Reply-To: <{our_id}>\r\n\
         References: <{our_id}>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\
         \r\n\
         Could we make it 3 PM instead? My insurance card is attached.\r\n\
         \r\n\
         On {quoted_at} Sunrise Clinic <appointments@sunrise-clinic.example> wrote:\r\n\
         > Hi Maria,\r\n\
         > thank you for booking with us.\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: image/png; name=\"insurance-card.png\"\r\n\
         Content-Disposition: attachment; filename=\"insurance-card.png\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {png}\r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

fn base64_engine(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
