//! `POST /v1/email/inbound`: a raw RFC 5322 message as the clinic's email
//! gateway received it, parsed with mail-parser, threaded, and recorded in
//! the patient's conversation in one transaction.
//!
//! Threading: a candidate Message-ID (see [`super::thread`]) counts only if
//! this tenant recorded it (another tenant's ids are in another store) and
//! the sender's address belongs to that thread's patient; otherwise the
//! sender alone resolves, as any session open would (a reply from a spouse's
//! address to the patient's confirmation is a new or ambiguous identity, not
//! the patient). Re-delivery of the same message (the same bytes, by the
//! same integration) returns the first result and stores nothing.
//!
//! The sender is asserted only on the evidence of an `Authentication-Results`
//! header from an MTA the tenant trusts ([`super::auth_results`]); and the
//! message is written into the conversation only where
//! `policy::may_write_inbound` allows it. Otherwise it is held for staff
//! review (`held_for_review`), sealed, and no agent reads it.

use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use super::reply::reply_text;
use super::thread::{message_id, thread_candidates};
use crate::channels::limits;
use crate::identifiers::{Evidence, Identifier};
use crate::{
    Actor, ContinuityError, OpenInput, ResumeContext, TenantSettings, ThreadHint, audit, build_context, open_in,
};
use policy::Strength;
use store::{IdentifierKind, TenantStore};

/// What the email gateway gets back.
pub struct Inbound {
    pub session_id: String,
    /// The same message was delivered before: nothing new was stored.
    pub duplicate: bool,
    /// `in_reply_to`, `references`, `sender` (the sender's open
    /// conversation), `new` (an unknown sender) or `duplicate`.
    pub threaded_by: &'static str,
    /// The message answered a thread of another patient: not merged.
    pub thread_sender_mismatch: bool,
    /// Whether the text and attachments were recorded in the conversation.
    pub stored: bool,
    /// Not stored in the conversation but kept for staff review: the
    /// sender is not authenticated, shares the address, or must confirm.
    pub held_for_review: bool,
    /// What decided the sender's strength: `dmarc_pass`,
    /// `dkim_aligned_pass`, `not_authenticated` or `no_trusted_header`.
    pub sender_evidence: &'static str,
    pub turn_id: Option<i64>,
    pub attachments: Vec<AttachmentAck>,
    pub context: ResumeContext,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Inbound({}, {}, [REDACTED])", self.session_id, self.threaded_by)
    }
}

#[derive(Debug)]
pub struct AttachmentAck {
    pub id: String,
    pub content_type: String,
    pub size: usize,
}

struct Attachment {
    content_type: String,
    name: Option<String>,
    content: Vec<u8>,
}

fn bad(code: &'static str, message: &str) -> ContinuityError {
    ContinuityError::bad(code, message)
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> String {
    let ct = part.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")));
    let ct = ct.unwrap_or_else(|| "application/octet-stream".into()).to_ascii_lowercase();
    let ok = ct.len() <= 100 && ct.bytes().all(|b| b.is_ascii_alphanumeric() || b"/.+-_".contains(&b));
    if ok { ct } else { "application/octet-stream".into() }
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[…message cut: longer than 64 KiB]");
    }
    text
}

/// A message parsed outside the tenant's write transaction (L1): MIME,
/// the sender, the thread candidates, the text and the attachments, owned.
pub struct Parsed {
    raw: Vec<u8>,
    sender: Identifier,
    from_domain: String,
    /// `Authentication-Results` header values, topmost first.
    /// Every header field (name, raw value), in message order: the
    /// sender's evidence is read from where the clinic's MTA stamped.
    headers: Vec<(String, String)>,
    own_id: Option<String>,
    external_ref: String,
    candidates: Vec<(super::thread::Via, String)>,
    text: String,
    attachments: Vec<Attachment>,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parsed({} bytes, [REDACTED])", self.raw.len())
    }
}

impl Parsed {
    /// The message's own words (quoted history left out), for a reviewer.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Parses `raw` (CPU only: no store, no keys), so the tenant's single
/// writer never waits on a 10 MiB MIME parse.
pub fn parse(raw: Vec<u8>) -> Result<Parsed, ContinuityError> {
    let msg = MessageParser::default()
        .parse(&raw)
        .ok_or_else(|| bad("invalid_message", "the body is not an RFC 5322 message (no header fields)"))?;
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .ok_or_else(|| bad("invalid_message", "the message has no From address"))?;
    let sender =
        Identifier::email(from).map_err(|_| bad("invalid_sender", "the From address is not a valid email address"))?;
    let from_domain = sender.value().rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
    let headers = msg.headers_raw().map(|(name, value)| (name.to_owned(), value.to_owned())).collect();
    let own_id = msg.message_id().and_then(message_id);
    // Idempotency is by the message's bytes, never by its Message-ID alone:
    // anyone can write another patient's Message-ID into a message (H3).
    let external_ref = format!("sha256:{}", hex::encode(Sha256::digest(&raw)));
    let candidates = thread_candidates(&msg);
    let mut text = msg.body_text(0).map(|t| reply_text(&t)).unwrap_or_default();
    if text.is_empty() {
        text = msg.subject().map(str::trim).unwrap_or_default().to_owned();
    }
    let text = cut(text, limits::EMAIL_TURN_BYTES);
    let mut attachments = Vec::new();
    for part in msg.attachments() {
        if part.len() > limits::ATTACHMENT_BYTES {
            return Err(ContinuityError::TooLarge {
                code: "attachment_too_large",
                message: format!("an attachment is larger than {} MiB", limits::ATTACHMENT_BYTES >> 20),
            });
        }
        attachments.push(Attachment {
            content_type: content_type(part),
            name: part.attachment_name().map(|n| n.chars().take(255).collect()),
            content: part.contents().to_vec(),
        });
    }
    if attachments.len() > limits::ATTACHMENTS_PER_MESSAGE {
        return Err(bad("too_many_attachments", "at most 20 attachments per message"));
    }
    drop(msg);
    Ok(Parsed { raw, sender, from_domain, headers, own_id, external_ref, candidates, text, attachments })
}

/// Records a parsed message, in one transaction on the tenant's writer.
pub fn receive(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    parsed: Parsed,
    now: i64,
) -> Result<Inbound, ContinuityError> {
    if actor.channel != policy::Channel::Email {
        return Err(ContinuityError::forbidden(
            "wrong_channel",
            format!("inbound email is delivered by the email channel; the certificate is for {}", actor.channel),
        ));
    }
    let Parsed { raw, sender, from_domain, headers, own_id, external_ref, candidates, text, attachments } = parsed;
    let verdict = super::auth_results::verdict(
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        &from_domain,
        &settings.policy.evidence,
    );
    let tx = store.transaction()?;
    if let Some(hit) = tx.session_by_external_ref(actor.channel, &external_ref)? {
        let (existing, serial) = hit;
        if serial != actor.serial {
            return Err(ContinuityError::WrongState {
                code: "external_ref_conflict",
                message: "this message was delivered by another integration".into(),
            });
        }
        // An ended session releases nothing, even to its own integration (M3).
        let context = if existing.ended_at.is_some() {
            crate::nothing_released(settings, &existing)
        } else {
            build_context(&tx, settings, actor, &existing, now)?
        };
        tx.commit()?;
        return Ok(Inbound {
            session_id: existing.id.to_string(),
            duplicate: true,
            threaded_by: "duplicate",
            thread_sender_mismatch: false,
            stored: false,
            held_for_review: false,
            sender_evidence: verdict.as_str(),
            turn_id: None,
            attachments: Vec::new(),
            context,
        });
    }
    let senders = tx.customers_by_identifier(IdentifierKind::Email, sender.value())?;
    let mut hint = None;
    let mut threaded_by = if senders.is_empty() { "new" } else { "sender" };
    let mut mismatch = false;
    for (via, id) in &candidates {
        if let Some((conversation, customer)) = tx.thread_of(id)? {
            if senders.contains(&customer) {
                hint = Some(ThreadHint { customer, conversation });
                threaded_by = via.as_str();
                break;
            }
            mismatch = true;
        }
    }
    let evidence = Evidence { caller_id: Strength::Claim, email_sender: verdict.strength() };
    let input = OpenInput { offered: vec![sender], evidence, resume_token: None, external_ref: Some(&external_ref) };
    let row = open_in(&tx, actor, input, hint.as_ref(), now)?;
    let mut acks = Vec::new();
    let mut turn_id = None;
    let facts = crate::facts(&row, now);
    let writable = policy::may_write_inbound(&settings.policy, &facts);
    let held = if writable {
        None
    } else {
        let why = if facts.resolution == policy::Resolution::Ambiguous {
            "identifier_shared"
        } else if facts.strength == Strength::Claim {
            "sender_not_authenticated"
        } else {
            "confirmation_required"
        };
        tx.hold_message(&row.id, why, &raw, None, now)?;
        Some(why)
    };
    let stored = match (&row.customer_id, &row.conversation_id) {
        _ if held.is_some() => false,
        (Some(customer), Some(conversation)) => {
            if !text.is_empty() {
                let id = tx.append_turn(customer, conversation, &row.id, "email", "patient", &text, now)?;
                turn_id = Some(id);
            }
            for a in &attachments {
                let id = tx.insert_attachment(
                    customer,
                    conversation,
                    &row.id,
                    &a.content_type,
                    a.name.as_deref(),
                    &a.content,
                    now,
                )?;
                acks.push(AttachmentAck { id, content_type: a.content_type.clone(), size: a.content.len() });
            }
            if let Some(id) = &own_id {
                tx.record_message_id(conversation, &row.id, id, "inbound", now)?;
            }
            tx.touch_conversation(conversation, now)?;
            true
        }
        _ => false,
    };
    let mut reason = format!("{threaded_by};attachments:{};sender:{}", acks.len(), verdict.as_str());
    if mismatch {
        reason.push_str(";thread_sender_mismatch");
    }
    if let Some(why) = held {
        reason.push_str(";held:");
        reason.push_str(why);
    }
    audit(&tx, actor, audit::Action::EmailInbound, row.customer_id.as_ref(), &row.id, Some(&reason), now)?;
    let context = build_context(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(Inbound {
        session_id: row.id.to_string(),
        duplicate: false,
        threaded_by,
        thread_sender_mismatch: mismatch,
        stored,
        held_for_review: held.is_some(),
        sender_evidence: verdict.as_str(),
        turn_id,
        attachments: acks,
        context,
    })
}
