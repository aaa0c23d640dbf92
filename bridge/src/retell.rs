//! Retell's webhooks: `x-retell-signature` (`v=<ms>,d=<hex HMAC-SHA256 of
//! body + ms>` under the API key, ±5 minutes), its call events, inbound-call
//! webhook and custom-function calls, and the answers it expects. Pure.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::context::Context;
use crate::sig::HmacAlgorithm;
use crate::sig::{self, Refusal, Verified};

pub fn verify<'a>(api_key: &[u8], body: &'a [u8], header: Option<&str>, now_ms: i64) -> Result<Verified<'a>, Refusal> {
    let header = header.ok_or(Refusal::Missing)?;
    let (mut ts, mut digest) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("v", v)) => ts = Some(v.to_owned()),
            Some(("d", d)) => digest = Some(d.to_owned()),
            _ => {}
        }
    }
    let (Some(ts), Some(digest)) = (ts, digest) else { return Err(Refusal::Missing) };
    let ts_ms: i64 = ts.parse().map_err(|_| Refusal::Mismatch)?;
    let mut msg = body.to_vec();
    msg.extend_from_slice(ts.as_bytes());
    let want = hex::encode(sig::mac(HmacAlgorithm::Sha256, api_key, &msg));
    if !sig::same(want.as_bytes(), digest.to_ascii_lowercase().as_bytes()) {
        return Err(Refusal::Mismatch);
    }
    sig::fresh(ts_ms, now_ms)?;
    Ok(Verified::checked(body))
}

/// What Retell calls about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub call_id: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub inbound: bool,
    /// What the bridge put in `metadata` (at `call_inbound`, or placing
    /// the call); trusted only with its tag ([`Call::session`]).
    pub metadata_session: Option<String>,
    pub metadata_tag: Option<String>,
}

impl Call {
    /// The session the bridge itself named for this call (L4).
    pub fn session(&self, secret: &[u8]) -> Option<String> {
        crate::sig::tagged_session(secret, self.metadata_session.as_deref(), self.metadata_tag.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub speaker: &'static str,
    pub text: String,
    /// Its place in `transcript_object` (stable across re-deliveries).
    pub index: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `call_inbound`: no call id yet.
    Inbound {
        from_number: String,
        to_number: Option<String>,
    },
    Started(Call),
    Ended {
        call: Call,
        disconnection_reason: String,
        turns: Vec<Turn>,
    },
    /// A custom function the agent called.
    Function {
        call: Call,
        name: String,
        args: Value,
    },
    /// `call_analyzed`, `transcript_updated`, transfers, chat events.
    Other(String),
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).filter(|x| !x.is_empty()).map(str::to_owned)
}

fn call(v: &Value) -> Result<Call, String> {
    let c = v.get("call").ok_or("the body has no call")?;
    let call_id = s(c, "call_id").ok_or("call.call_id is missing")?;
    if call_id.len() > 200 {
        return Err("call.call_id is longer than 200 bytes".into());
    }
    Ok(Call {
        call_id,
        from_number: s(c, "from_number"),
        to_number: s(c, "to_number"),
        inbound: c.get("direction").and_then(Value::as_str) != Some("outbound"),
        metadata_session: c.get("metadata").and_then(|m| s(m, "throughline_session")),
        metadata_tag: c.get("metadata").and_then(|m| s(m, "throughline_tag")),
    })
}

pub fn parse(body: Verified<'_>) -> Result<Event, String> {
    let body = body.bytes();
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    if let (Some(name), Some(_)) = (s(&v, "name"), v.get("call")) {
        return Ok(Event::Function { call: call(&v)?, name, args: v.get("args").cloned().unwrap_or(Value::Null) });
    }
    let event = s(&v, "event").ok_or("the body has no event")?;
    Ok(match event.as_str() {
        "call_inbound" => {
            let c = v.get("call_inbound").ok_or("call_inbound is missing")?;
            Event::Inbound {
                from_number: s(c, "from_number").ok_or("call_inbound.from_number is missing")?,
                to_number: s(c, "to_number"),
            }
        }
        "call_started" => Event::Started(call(&v)?),
        "call_ended" => {
            let c = v.get("call").ok_or("the body has no call")?;
            Event::Ended {
                call: call(&v)?,
                disconnection_reason: s(c, "disconnection_reason").unwrap_or_default(),
                turns: turns(c.get("transcript_object")),
            }
        }
        other => Event::Other(other.chars().take(64).collect()),
    })
}

fn turns(list: Option<&Value>) -> Vec<Turn> {
    let Some(list) = list.and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .enumerate()
        .filter_map(|(index, t)| {
            let speaker = match t.get("role").and_then(Value::as_str)? {
                "user" => "patient",
                "agent" => "agent",
                _ => return None,
            };
            let text = t.get("content").and_then(Value::as_str)?.trim();
            (!text.is_empty()).then(|| Turn { speaker, text: text.to_owned(), index })
        })
        .collect()
}

/// The inbound webhook's answer: string dynamic variables and the session
/// in metadata, which Retell keeps on the call and sends back with every
/// later event and function call.
pub fn inbound_response(ctx: Option<&Context>, secret: &[u8]) -> Value {
    match ctx {
        None => json!({"call_inbound": {}}),
        Some(ctx) => {
            let vars: BTreeMap<String, String> = ctx.variables();
            let metadata = crate::sig::session_metadata(secret, &ctx.session_id);
            json!({"call_inbound": {"dynamic_variables": vars, "metadata": metadata}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &[u8], body: &[u8], ts: i64) -> String {
        let mut m = body.to_vec();
        m.extend_from_slice(ts.to_string().as_bytes());
        format!("v={ts},d={}", hex::encode(sig::mac(HmacAlgorithm::Sha256, key, &m)))
    }

    #[test]
    fn signature_over_body_and_millis_within_five_minutes() {
        let body = br#"{"event":"call_started","call":{"call_id":"c"}}"#;
        let now = 1_764_000_000_000;
        assert_eq!(verify(b"key", body, Some(&signed(b"key", body, now - 1000)), now).map(|_| ()), Ok(()));
        assert_eq!(verify(b"key", b"{}", Some(&signed(b"key", body, now)), now).map(|_| ()), Err(Refusal::Mismatch));
        assert_eq!(verify(b"other", body, Some(&signed(b"key", body, now)), now).map(|_| ()), Err(Refusal::Mismatch));
        assert_eq!(
            verify(b"key", body, Some(&signed(b"key", body, now - 300_001)), now).map(|_| ()),
            Err(Refusal::Stale)
        );
        assert_eq!(verify(b"key", body, Some("v=1"), now).map(|_| ()), Err(Refusal::Missing));
    }

    #[test]
    fn the_documented_events() {
        let inbound = br#"{"event":"call_inbound","call_inbound":{"agent_id":"agent_123","agent_version":1,"from_number":"+14155552671","to_number":"+14155550100"}}"#;
        assert_eq!(
            parse(Verified::checked(inbound)).unwrap(),
            Event::Inbound { from_number: "+14155552671".into(), to_number: Some("+14155550100".into()) }
        );
        let ended = br#"{"event":"call_ended","call":{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6","agent_id":"a","call_type":"phone_call",
            "from_number":"+14155552671","to_number":"+14155550100","direction":"inbound","call_status":"ended",
            "metadata":{"throughline_session":"ses_1"},"disconnection_reason":"user_hangup",
            "transcript_object":[{"role":"agent","content":"Hi, how can I help?","words":[]},{"role":"user","content":"Move my visit","words":[]}]}}"#;
        let Event::Ended { call, disconnection_reason, turns } = parse(Verified::checked(ended)).unwrap() else {
            panic!("ended")
        };
        // Metadata without the bridge's tag names no session (L4).
        assert_eq!(call.metadata_session.as_deref(), Some("ses_1"));
        assert_eq!(call.session(b"key"), None);
        let tagged = String::from_utf8_lossy(ended)
            .replace(r#"{"throughline_session":"ses_1"}"#, &crate::sig::session_metadata(b"key", "ses_1").to_string());
        let Event::Ended { call, .. } = parse(Verified::checked(tagged.as_bytes())).unwrap() else { panic!("ended") };
        assert_eq!(call.session(b"key").as_deref(), Some("ses_1"));
        assert_eq!(call.session(b"another route's key"), None);
        assert_eq!(disconnection_reason, "user_hangup");
        assert_eq!(turns[1], Turn { speaker: "patient", text: "Move my visit".into(), index: 1 });
        let f = br#"{"name":"remember","call":{"call_id":"c"},"args":{"key":"k","value":"v"}}"#;
        assert!(matches!(parse(Verified::checked(f)).unwrap(), Event::Function { name, .. } if name == "remember"));
    }
}
