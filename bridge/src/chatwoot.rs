//! Chatwoot's webhooks and agent-bot events: `X-Chatwoot-Signature`
//! (`sha256=` HMAC-SHA256 of `{X-Chatwoot-Timestamp}.{body}`, ±5 minutes),
//! the events the bridge acts on, who the contact is (a login when Chatwoot
//! says `hmac_verified`, else claims), and the private note for the human
//! agent. Pure: no I/O.

use serde_json::{Value, json};

use crate::config::HmacAlgorithm;
use crate::context::Context;
use crate::sig::{self, Refusal};

pub fn verify(
    secret: &[u8],
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now_ms: i64,
) -> Result<(), Refusal> {
    let (Some(signature), Some(ts)) = (signature, timestamp) else { return Err(Refusal::Missing) };
    let ts_n: i64 = ts.trim().parse().map_err(|_| Refusal::Mismatch)?;
    let mut msg = ts.trim().as_bytes().to_vec();
    msg.push(b'.');
    msg.extend_from_slice(body);
    let want = format!("sha256={}", hex::encode(sig::mac(HmacAlgorithm::Sha256, secret, &msg)));
    if !sig::same(want.as_bytes(), signature.trim().as_bytes()) {
        return Err(Refusal::Mismatch);
    }
    sig::fresh(sig::as_millis(ts_n), now_ms)
}

/// What Chatwoot says about the conversation and its contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    pub account: i64,
    /// The display id, the one the API's paths take.
    pub id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The contact's identifier, when Chatwoot verified its HMAC (a login
    /// in the clinic's portal): proof of possession.
    pub verified_identifier: Option<String>,
    /// The widget's contact-inbox source id (a cookie of the visitor's browser).
    pub source_id: Option<String>,
    pub status: Option<String>,
}

impl Conversation {
    /// The session's `external_ref`: one Chatwoot conversation, one session.
    pub fn external_ref(&self) -> String {
        format!("chatwoot:{}:{}", self.account, self.id)
    }

    /// The identifiers offered to the core (at least one, or None).
    pub fn identifiers(&self) -> Option<Value> {
        let mut ids = serde_json::Map::new();
        if let Some(p) = &self.phone {
            ids.insert("phone".into(), json!(p));
        }
        if let Some(e) = &self.email {
            ids.insert("email".into(), json!(e));
        }
        if let Some(a) = &self.verified_identifier {
            ids.insert("auth".into(), json!(a));
        }
        if let Some(c) = self.source_id.as_ref().filter(|c| cookie_like(c)) {
            ids.insert("cookie".into(), json!(c));
        }
        (!ids.is_empty()).then_some(Value::Object(ids))
    }
}

fn cookie_like(s: &str) -> bool {
    (16..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    ConversationCreated(Conversation),
    StatusChanged(Conversation),
    /// A message a person wrote: the contact (`patient`), a human agent
    /// (`staff`) or a bot (`agent`). Private notes and activity are not.
    Message {
        conversation: Conversation,
        id: i64,
        speaker: &'static str,
        text: String,
    },
    /// Anything else (typing, contact updates, notes, activity).
    Other(String),
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str).filter(|x| !x.is_empty()).map(str::to_owned)
}

fn conversation(c: &Value, account: i64) -> Result<Conversation, String> {
    let id = c.get("id").and_then(Value::as_i64).ok_or("conversation.id is missing")?;
    let sender = c.get("meta").and_then(|m| m.get("sender")).cloned().unwrap_or_default();
    let verified = c.get("contact_inbox").and_then(|ci| ci.get("hmac_verified")).and_then(Value::as_bool) == Some(true);
    Ok(Conversation {
        account,
        id,
        phone: s(&sender, &["phone_number"]),
        email: s(&sender, &["email"]),
        verified_identifier: if verified { s(&sender, &["identifier"]) } else { None },
        source_id: s(c, &["contact_inbox", "source_id"]),
        status: s(c, &["status"]),
    })
}

pub fn parse(body: &[u8]) -> Result<Event, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let event = s(&v, &["event"]).ok_or("the body has no event")?;
    let account = v.get("account").and_then(|a| a.get("id")).and_then(Value::as_i64).ok_or("account.id is missing")?;
    Ok(match event.as_str() {
        "conversation_created" => Event::ConversationCreated(conversation(&v, account)?),
        "conversation_status_changed" => Event::StatusChanged(conversation(&v, account)?),
        "message_created" => {
            let c = v.get("conversation").ok_or("conversation is missing")?;
            let private = v.get("private").and_then(Value::as_bool).unwrap_or(false);
            let speaker = match (s(&v, &["message_type"]).as_deref(), s(&v, &["sender", "type"]).as_deref()) {
                _ if private => None,
                (Some("incoming"), _) => Some("patient"),
                (Some("outgoing"), Some("user")) => Some("staff"),
                (Some("outgoing"), Some("agent_bot")) => Some("agent"),
                _ => None,
            };
            let text = s(&v, &["content"]);
            match (speaker, text) {
                (Some(speaker), Some(text)) => Event::Message {
                    conversation: conversation(c, account)?,
                    id: v.get("id").and_then(Value::as_i64).ok_or("message id is missing")?,
                    speaker,
                    text,
                },
                _ => Event::Other("message_created".into()),
            }
        }
        other => Event::Other(other.chars().take(64).collect()),
    })
}

/// The private note for the human agent: what the core released to the
/// chat channel, or what to do first.
pub fn note(ctx: &Context) -> String {
    let mut out = String::from("Throughline: ");
    if !ctx.identity.confirmed && !ctx.identity.confirm_with.is_empty() {
        out.push_str(&format!(
            "identity not confirmed; ask for {} before discussing anything about the patient. ",
            ctx.identity.confirm_with.join(" and ")
        ));
    }
    if let Some(name) = &ctx.greeting_name {
        out.push_str(&format!("{name}. "));
    }
    if let Some(b) = ctx.brief.as_ref().filter(|b| !b.is_empty()) {
        out.push_str(&format!("{b}. "));
    }
    if let Some(a) = ctx.appointments.first().and_then(|a| a.local_time.as_ref()) {
        out.push_str(&format!("Next appointment {a}. "));
    }
    out.trim_end().to_owned()
}

/// `identifier_hash` for Chatwoot's `setUser` (a clinic portal logging its
/// patient into the widget): hex HMAC-SHA256 of the identifier under the
/// inbox's `hmac_token`.
pub fn identifier_hash(hmac_token: &[u8], identifier: &str) -> String {
    hex::encode(sig::mac(HmacAlgorithm::Sha256, hmac_token, identifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = r#"{"event":"message_created","id":118,"content":"hi","created_at":"2021-07-23T18:02:48.000Z",
        "message_type":"incoming","content_type":"text","private":false,"content_attributes":{},"source_id":null,
        "sender":{"id":14,"name":"Maria","avatar":"","type":"contact"},"inbox":{"id":1,"name":"Acme Support"},
        "conversation":{"id":10,"inbox_id":1,"channel":"Channel::WebWidget","status":"open","can_reply":true,
          "contact_inbox":{"id":12,"contact_id":14,"inbox_id":1,"source_id":"405f1d30-1f2b-4b69-a4a6-0c3e7f0f9f11","hmac_verified":false},
          "meta":{"sender":{"id":14,"name":"Maria","email":"maria@example.com","phone_number":"+14155550100","identifier":"portal-42",
                            "additional_attributes":{},"custom_attributes":{},"type":"contact"},"assignee":null},
          "additional_attributes":{},"messages":[],"timestamp":1627063369},
        "account":{"id":1,"name":"Acme Inc"}}"#;

    #[test]
    fn the_documented_message_created() {
        let Event::Message { conversation, id, speaker, text } = parse(CREATED.as_bytes()).unwrap() else { panic!() };
        assert_eq!((id, speaker, text.as_str()), (118, "patient", "hi"));
        assert_eq!(conversation.external_ref(), "chatwoot:1:10");
        assert_eq!(conversation.verified_identifier, None, "not hmac_verified: the identifier is only a claim");
        let ids = conversation.identifiers().unwrap();
        assert_eq!(ids["phone"], "+14155550100");
        assert_eq!(ids["cookie"], "405f1d30-1f2b-4b69-a4a6-0c3e7f0f9f11");
        assert!(ids.get("auth").is_none());
        let verified = CREATED.replace("\"hmac_verified\":false", "\"hmac_verified\":true");
        let Event::Message { conversation, .. } = parse(verified.as_bytes()).unwrap() else { panic!() };
        assert_eq!(conversation.identifiers().unwrap()["auth"], "portal-42");
        let note = CREATED.replace("\"private\":false", "\"private\":true");
        assert_eq!(parse(note.as_bytes()).unwrap(), Event::Other("message_created".into()));
        let mut agent: Value = serde_json::from_str(CREATED).unwrap();
        agent["message_type"] = json!("outgoing");
        agent["sender"]["type"] = json!("user");
        assert!(matches!(parse(agent.to_string().as_bytes()).unwrap(), Event::Message { speaker: "staff", .. }));
    }

    #[test]
    fn signature_over_timestamp_dot_body() {
        let body = br#"{"event":"conversation_created"}"#;
        let now = 1_764_000_000_000;
        let ts = (now / 1000).to_string();
        let mut m = ts.clone().into_bytes();
        m.push(b'.');
        m.extend_from_slice(body);
        let good = format!("sha256={}", hex::encode(sig::mac(HmacAlgorithm::Sha256, b"s", &m)));
        assert_eq!(verify(b"s", body, Some(&good), Some(&ts), now), Ok(()));
        assert_eq!(verify(b"s", b"{}", Some(&good), Some(&ts), now), Err(Refusal::Mismatch));
        assert_eq!(verify(b"s", body, Some(&good), Some(&ts), now + 301_000), Err(Refusal::Stale));
        assert_eq!(verify(b"s", body, None, Some(&ts), now), Err(Refusal::Missing));
        // Chatwoot's documented identity-validation example shape: hex HMAC-SHA256.
        assert_eq!(identifier_hash(b"key", "user-1").len(), 64);
    }
}
