//! The seed story over the real API: what each channel integration sends and
//! what Throughline hands back, printed for people.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use server::ManualClock;

/// One channel integration: an HTTPS client holding its certificate.
pub struct Channel {
    pub name: &'static str,
    pub http: reqwest::Client,
    pub base: String,
}

impl Channel {
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let res = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = res.status().as_u16();
        let value: Value = res.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Posts raw bytes (an RFC 5322 message) rather than JSON.
    pub async fn raw(&self, path: &str, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "message/rfc822")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let shown = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        println!("    {:<5} -> {method} {} {shown}", self.name, short(path));
        let (status, value) = self.call(method, path, body).await?;
        ensure!((200..300).contains(&status), "{path} answered {status}: {value}");
        Ok(value)
    }
}

pub fn short(path: &str) -> String {
    // ses_<32 hex> is long; keep the prefix so the line stays readable.
    path.split('/')
        .map(|p| if p.starts_with("ses_") && p.len() > 12 { format!("{}…", &p[..12]) } else { p.to_owned() })
        .collect::<Vec<_>>()
        .join("/")
}

pub fn show_context(ctx: &Value) {
    let id = &ctx["identity"];
    println!(
        "           <- {} ({}), conversation {}, confirmed {}, confirm_with {}",
        id["status"].as_str().unwrap_or("?"),
        id["strength"].as_str().unwrap_or("?"),
        ctx["conversation_id"].as_str().map(|c| &c[..12.min(c.len())]).unwrap_or("-"),
        id["confirmed"],
        id["confirm_with"]
    );
    println!("              greeting {}, brief: {}", ctx["greeting_name"], ctx["brief"]);
    if let Some(state) = ctx["state"].as_object().filter(|s| !s.is_empty()) {
        println!("              state {}", Value::Object(state.clone()));
    }
    for t in ctx["recent_turns"].as_array().into_iter().flatten() {
        println!(
            "              [{} {}] {}",
            t["channel"].as_str().unwrap_or(""),
            t["speaker"].as_str().unwrap_or(""),
            t["text"].as_str().unwrap_or("")
        );
    }
    for a in ctx["appointments"].as_array().into_iter().flatten() {
        println!(
            "              appointment {} {} min, {}, reason {}",
            a["starts_at"].as_str().unwrap_or(""),
            a["duration_min"],
            a["status"].as_str().unwrap_or(""),
            a.get("reason").map(|r| r.to_string()).unwrap_or_else(|| "(withheld on this channel)".into())
        );
    }
    let withheld = ctx["withheld"].as_array().map(|w| w.len()).unwrap_or(0);
    if withheld > 0 {
        println!("              withheld {}", ctx["withheld"]);
    }
}

/// 4 PM: a new patient calls, starts intake, the call drops. 9 PM: the
/// website chat picks the conversation up; the patient confirms their date
/// of birth and the chat agent sees exactly where the call left off.
/// Returns the chat session and the conversation, for the rest of the story.
pub async fn voice_then_chat(voice: &Channel, chat: &Channel, clock: &ManualClock) -> anyhow::Result<(String, Value)> {
    super::step("4 PM, voice", "a new patient calls from (415) 555-0100; intake starts; the call drops");
    let open = voice
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({
                "identifiers": {"phone": "+1 415 555 0100"},
                "external_ref": "call-0001",
                // The carrier vouched for the number (STIR/SHAKEN A): caller ID is asserted.
                "evidence": {"caller_id_attestation": "A"},
            })),
        )
        .await?;
    show_context(&open);
    let sid = open["session_id"].as_str().context("session id")?.to_owned();
    let conversation = open["conversation_id"].clone();
    let s = |p: &str| format!("/v1/sessions/{sid}{p}");
    voice
        .ok(
            reqwest::Method::PATCH,
            &s("/customer"),
            Some(json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"})),
        )
        .await?;
    for (speaker, text) in [
        ("agent", "Sunrise Clinic, this is the virtual assistant. How can I help?"),
        ("patient", "I'd like to book a check-up, ideally Tuesday."),
        ("agent", "Tuesday it is. What is the reason for the visit?"),
    ] {
        voice.ok(reqwest::Method::POST, &s("/turns"), Some(json!({"speaker": speaker, "text": text}))).await?;
    }
    voice.ok(reqwest::Method::PUT, &s("/state/pending_booking_date"), Some(json!({"value": "Tuesday"}))).await?;
    voice.ok(reqwest::Method::POST, &s("/end"), Some(json!({"reason": "dropped"}))).await?;

    clock.advance_ms(5 * 3_600_000);
    super::step("9 PM, chat", "the patient opens the website chat and types their number");
    let open = chat
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": "(415) 555-0100", "cookie": "c_browser_7f3a9e21d4b8"}})),
        )
        .await?;
    show_context(&open);
    ensure!(
        open["conversation_id"].is_null() && open["greeting_name"].is_null() && open["state"] == json!({}),
        "a typed phone number learned something before confirmation"
    );
    println!(
        "           (a number typed into a chat is only a claim: the answer is the one a number nobody knows gets,"
    );
    println!("            no name, no ids, until the patient confirms)");
    let sid = open["session_id"].as_str().context("session id")?.to_owned();
    let ctx = chat
        .ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{sid}/identity/confirm"),
            Some(json!({"date_of_birth": "1985-03-14"})),
        )
        .await?;
    show_context(&ctx);
    ensure!(ctx["conversation_id"] == conversation, "not the same conversation");
    ensure!(ctx["state"]["pending_booking_date"] == "Tuesday", "state did not carry over");
    ensure!(ctx["brief"] == "voice call 5 h ago, dropped; pending: booking date Tuesday", "brief: {}", ctx["brief"]);
    println!("           one conversation, no repetition: the chat agent continues the Tuesday booking");
    Ok((sid, conversation))
}
