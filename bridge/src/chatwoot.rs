//! Chatwoot's webhooks and agent-bot events: `X-Chatwoot-Signature`
//! (`sha256=` HMAC-SHA256 of `{X-Chatwoot-Timestamp}.{body}`, ±5 minutes),
//! the events the bridge acts on, who the contact is, and the private note
//! for the human agent. Pure: no I/O.
//!
//! Who the contact is (N1): Chatwoot's `hmac_verified` belongs to the
//! contact *inbox* (one browser) while the identifier belongs to the
//! *contact*, which Chatwoot merges and edits after verification, so the
//! flag is never taken as a login. A login is possession only when the
//! clinic's portal signed it for the bridge: a short-lived token over
//! (identifier, source id, expiry) under the route's `portal_key_file`, in
//! the contact's custom attribute `throughline_login` ([`portal_token`]).
//! Bound to the source id, a token does not follow a merged inbox. Phone
//! and email stay claims; the widget's source id is a device cookie, only
//! for web-widget inboxes and namespaced by route (L3).

use serde_json::{Value, json};

use crate::context::Context;
use crate::sig::HmacAlgorithm;
use crate::sig::{self, Refusal, Verified};

pub fn verify<'a>(
    secret: &[u8],
    body: &'a [u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now_ms: i64,
) -> Result<Verified<'a>, Refusal> {
    let (Some(signature), Some(ts)) = (signature, timestamp) else { return Err(Refusal::Missing) };
    let ts_n: i64 = ts.trim().parse().map_err(|_| Refusal::Mismatch)?;
    let mut msg = ts.trim().as_bytes().to_vec();
    msg.push(b'.');
    msg.extend_from_slice(body);
    let want = format!("sha256={}", hex::encode(sig::mac(HmacAlgorithm::Sha256, secret, &msg)));
    if !sig::same(want.as_bytes(), signature.trim().as_bytes()) {
        return Err(Refusal::Mismatch);
    }
    sig::fresh(sig::as_millis(ts_n), now_ms)?;
    Ok(Verified::checked(body))
}

/// What Chatwoot says about the conversation and its contact.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    pub account: i64,
    /// The display id, the one the API's paths take.
    pub id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The contact's identifier (the clinic portal's login id), as Chatwoot
    /// reports it: a login only with a valid [`portal_token`].
    pub identifier: Option<String>,
    /// The contact's `throughline_login` custom attribute.
    pub login_token: Option<String>,
    /// The contact-inbox source id (a cookie of the visitor's browser on a
    /// web widget; a platform or caller-chosen id on other inboxes).
    pub source_id: Option<String>,
    /// The inbox's channel type (`Channel::WebWidget`, `Channel::Api`, ...).
    pub channel: Option<String>,
    pub status: Option<String>,
}

/// The custom attribute the clinic's portal puts its signed login in.
pub const LOGIN_ATTRIBUTE: &str = "throughline_login";
/// The longest a portal token may live: a login, not a standing credential.
pub const LOGIN_MAX_SECS: i64 = 3600;

/// What the route knows to judge a contact: its portal key and its name.
#[derive(Clone, Copy)]
pub struct Judge<'a> {
    pub route: &'a str,
    pub portal_key: Option<&'a [u8]>,
    pub now_ms: i64,
}

/// The token a clinic's portal signs for a patient logged in on its site:
/// `v1.{expiry}.{hex HMAC-SHA256}` over `throughline-login:v1`, the
/// identifier, the widget's source id and the expiry (Unix seconds), each
/// on its own line.
pub fn portal_token(key: &[u8], identifier: &str, source_id: &str, expiry_s: i64) -> String {
    format!("v1.{expiry_s}.{}", hex::encode(login_mac(key, identifier, source_id, expiry_s)))
}

fn login_mac(key: &[u8], identifier: &str, source_id: &str, expiry_s: i64) -> Vec<u8> {
    let msg = format!("throughline-login:v1\n{identifier}\n{source_id}\n{expiry_s}");
    sig::mac(HmacAlgorithm::Sha256, key, msg.as_bytes())
}

/// Whether `token` is the portal's login for this identifier on this
/// browser, unexpired and not longer-lived than [`LOGIN_MAX_SECS`].
pub fn login_verified(key: &[u8], identifier: &str, source_id: &str, token: &str, now_ms: i64) -> bool {
    let mut parts = token.trim().splitn(3, '.');
    let (Some("v1"), Some(expiry), Some(mac)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let (Ok(expiry_s), Ok(mac)) = (expiry.parse::<i64>(), hex::decode(mac)) else { return false };
    let now_s = now_ms.div_euclid(1000);
    let fresh = expiry_s > now_s && expiry_s <= now_s.saturating_add(LOGIN_MAX_SECS);
    fresh && sig::same(&login_mac(key, identifier, source_id, expiry_s), &mac)
}

impl Conversation {
    /// The session's `external_ref`: one Chatwoot conversation, one session.
    pub fn external_ref(&self) -> String {
        format!("chatwoot:{}:{}", self.account, self.id)
    }

    /// The login the portal signed for this contact on this browser, if any.
    pub fn login(&self, judge: Judge<'_>) -> Option<&str> {
        let (key, id, source, token) =
            (judge.portal_key?, self.identifier.as_deref()?, self.source_id.as_deref()?, self.login_token.as_deref()?);
        login_verified(key, id, source, token, judge.now_ms).then_some(id)
    }

    /// The browser's device cookie: a web widget's source id, namespaced by
    /// the route so one integration's ids never stand for another's (L3).
    pub fn cookie(&self, judge: Judge<'_>) -> Option<String> {
        if self.channel.as_deref() != Some("Channel::WebWidget") {
            return None;
        }
        let c = format!("cw.{}.{}", judge.route, self.source_id.as_deref()?);
        cookie_like(&c).then_some(c)
    }

    /// The identifiers offered to the core (at least one, or None).
    pub fn identifiers(&self, judge: Judge<'_>) -> Option<Value> {
        let mut ids = serde_json::Map::new();
        if let Some(p) = &self.phone {
            ids.insert("phone".into(), json!(p));
        }
        if let Some(e) = &self.email {
            ids.insert("email".into(), json!(e));
        }
        if let Some(a) = self.login(judge) {
            ids.insert("auth".into(), json!(a));
        }
        if let Some(c) = self.cookie(judge) {
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
    Ok(Conversation {
        account,
        id,
        phone: s(&sender, &["phone_number"]),
        email: s(&sender, &["email"]),
        identifier: s(&sender, &["identifier"]),
        login_token: s(&sender, &["custom_attributes", LOGIN_ATTRIBUTE]),
        source_id: s(c, &["contact_inbox", "source_id"]),
        channel: s(c, &["channel"]),
        status: s(c, &["status"]),
    })
}

pub fn parse(body: Verified<'_>) -> Result<Event, String> {
    let body = body.bytes();
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

    const NOW: i64 = 1_764_000_000_000;
    const KEY: &[u8] = b"portal-key-0123456789";
    const SOURCE: &str = "405f1d30-1f2b-4b69-a4a6-0c3e7f0f9f11";

    fn judge(key: Option<&[u8]>) -> Judge<'_> {
        Judge { route: "sunrise-chat", portal_key: key, now_ms: NOW }
    }

    fn with_token(token: &str) -> Conversation {
        let v = CREATED.replace(
            "\"custom_attributes\":{}",
            &format!("\"custom_attributes\":{{\"throughline_login\":\"{token}\"}}"),
        );
        let Event::Message { conversation, .. } = parse(Verified::checked(v.as_bytes())).unwrap() else { panic!() };
        conversation
    }

    #[test]
    fn the_documented_message_created() {
        let Event::Message { conversation, id, speaker, text } = parse(Verified::checked(CREATED.as_bytes())).unwrap()
        else {
            panic!()
        };
        assert_eq!((id, speaker, text.as_str()), (118, "patient", "hi"));
        assert_eq!(conversation.external_ref(), "chatwoot:1:10");
        let ids = conversation.identifiers(judge(Some(KEY))).unwrap();
        assert_eq!(ids["phone"], "+14155550100");
        assert_eq!(ids["cookie"], format!("cw.sunrise-chat.{SOURCE}"), "a device, namespaced by route (L3)");
        assert!(ids.get("auth").is_none(), "no portal token: the identifier is no login");
        // Chatwoot's hmac_verified is not a login (N1): the flag survives merges.
        let verified = CREATED.replace("\"hmac_verified\":false", "\"hmac_verified\":true");
        let Event::Message { conversation, .. } = parse(Verified::checked(verified.as_bytes())).unwrap() else {
            panic!()
        };
        assert!(conversation.identifiers(judge(Some(KEY))).unwrap().get("auth").is_none());
        let note = CREATED.replace("\"private\":false", "\"private\":true");
        assert_eq!(parse(Verified::checked(note.as_bytes())).unwrap(), Event::Other("message_created".into()));
        let mut agent: Value = serde_json::from_str(CREATED).unwrap();
        agent["message_type"] = json!("outgoing");
        agent["sender"]["type"] = json!("user");
        assert!(matches!(
            parse(Verified::checked(agent.to_string().as_bytes())).unwrap(),
            Event::Message { speaker: "staff", .. }
        ));
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
        assert_eq!(verify(b"s", body, Some(&good), Some(&ts), now).map(|_| ()), Ok(()));
        assert_eq!(verify(b"s", b"{}", Some(&good), Some(&ts), now).map(|_| ()), Err(Refusal::Mismatch));
        assert_eq!(verify(b"s", body, Some(&good), Some(&ts), now + 301_000).map(|_| ()), Err(Refusal::Stale));
        assert_eq!(verify(b"s", body, None, Some(&ts), now).map(|_| ()), Err(Refusal::Missing));
        // Chatwoot's documented identity-validation example shape: hex HMAC-SHA256.
        assert_eq!(identifier_hash(b"key", "user-1").len(), 64);
    }

    #[test]
    fn a_login_is_the_portals_signed_token_for_this_browser_only() {
        let expiry = NOW / 1000 + 600;
        let good = portal_token(KEY, "portal-42", SOURCE, expiry);
        assert_eq!(with_token(&good).identifiers(judge(Some(KEY))).unwrap()["auth"], "portal-42");
        // No key on the route: no login at all.
        assert!(with_token(&good).identifiers(judge(None)).unwrap().get("auth").is_none());
        let refused = [
            // Signed for another browser: a merged contact's inbox (N1).
            portal_token(KEY, "portal-42", "attacker-browser-source-id", expiry),
            // Another patient's identifier, another key, expired, too long-lived, malformed.
            portal_token(KEY, "portal-43", SOURCE, expiry),
            portal_token(b"another-key", "portal-42", SOURCE, expiry),
            portal_token(KEY, "portal-42", SOURCE, NOW / 1000 - 1),
            portal_token(KEY, "portal-42", SOURCE, NOW / 1000 + LOGIN_MAX_SECS + 60),
            "v1.x.00".to_owned(),
            good.replace("v1.", "v2."),
            good[..good.len() - 2].to_owned(),
        ];
        for t in refused {
            assert!(with_token(&t).identifiers(judge(Some(KEY))).unwrap().get("auth").is_none(), "{t}");
        }
    }

    #[test]
    fn only_a_web_widget_source_id_is_a_cookie() {
        let api = CREATED.replace("Channel::WebWidget", "Channel::Api");
        let Event::Message { conversation, .. } = parse(Verified::checked(api.as_bytes())).unwrap() else { panic!() };
        assert!(
            conversation.identifiers(judge(None)).unwrap().get("cookie").is_none(),
            "caller-chosen on API inboxes (L3)"
        );
    }
}
