//! `POST /v1/sessions/{id}/email/outbound`: composes a message to the
//! patient (lettre's builder) with a Message-ID we generate and record, so
//! the reply threads back to this conversation. An appointment named in the
//! request is written in by Throughline with its time only: the reason for
//! the visit never goes into an email.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use policy::PhiClass;

use super::thread::{message_id, our_message_id};
use crate::calendar::ClinicZone;
use crate::channels::{Smtp, limits};
use crate::identifiers::Identifier;
use crate::{Actor, ContinuityError, TenantSettings, audit, audit_outcome, open_row, refuse, writable};
use store::ids::SessionId;
use store::{AppointmentRow, IdentifierKind, TenantStore};

#[derive(Clone, Debug)]
pub struct OutboundRequest {
    /// The recipient; the patient's most recent address when left out. A
    /// new address given in a session cleared for contact data is linked.
    pub to: Option<String>,
    pub subject: String,
    pub text: String,
    /// An appointment of this patient whose time is written into the message.
    pub appointment_id: Option<String>,
    /// A Message-ID of this conversation the message answers.
    pub in_reply_to: Option<String>,
}

/// A composed, recorded message.
pub struct Composed {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub raw: Vec<u8>,
    /// Where to send it; `None` hands it back to the caller.
    pub smtp: Option<Smtp>,
}

impl std::fmt::Debug for Composed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Composed({}, [REDACTED])", self.message_id)
    }
}

fn bad(code: &'static str, message: &str) -> ContinuityError {
    ContinuityError::bad(code, message)
}

/// "Tuesday, March 16, 2027 at 2:00 PM PDT, 30 minutes": the clinic's
/// zone, DST applied, as the resume brief writes it.
fn human_time(zone: &ClinicZone, a: &AppointmentRow) -> String {
    format!("{}, {} minutes", zone.render(a.starts_at), a.duration_min)
}

fn from_mailbox(settings: &TenantSettings) -> Result<Mailbox, ContinuityError> {
    format!("{} <{}>", settings.email.from_name, settings.email.from_address)
        .parse()
        .map_err(|_| bad("email_not_configured", "the tenant's From address is not valid: see `tenant email`"))
}

/// The message itself (lettre's builder) under a new Message-ID of ours:
/// (that id, the RFC 5322 bytes).
pub(crate) fn build_message(
    settings: &TenantSettings,
    to: &str,
    subject: &str,
    body: &str,
    replying_to: Option<&str>,
    now: i64,
) -> Result<(String, Vec<u8>), ContinuityError> {
    let to_mailbox: Mailbox =
        to.parse().map_err(|_| bad("invalid_email", "the patient's address cannot be written in a message"))?;
    let id = our_message_id(settings.email.domain());
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(now).unwrap_or(0));
    let mut builder = Message::builder()
        .message_id(Some(format!("<{id}>")))
        .from(from_mailbox(settings)?)
        .to(to_mailbox)
        .subject(subject)
        .date(date);
    if let Some(parent) = replying_to {
        builder = builder.in_reply_to(format!("<{parent}>")).references(format!("<{parent}>"));
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|_| bad("invalid_text", "the message could not be composed"))?;
    Ok((id, message.formatted()))
}

pub fn compose(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &OutboundRequest,
    now: i64,
) -> Result<Composed, ContinuityError> {
    let subject = req.subject.trim();
    if subject.is_empty() || subject.chars().count() > limits::SUBJECT_CHARS || subject.chars().any(char::is_control) {
        return Err(bad("invalid_subject", "subject must be 1 to 200 characters on one line"));
    }
    if req.text.trim().is_empty() || req.text.len() > limits::OUTBOUND_TEXT_BYTES {
        return Err(bad("invalid_text", "text must be 1 byte to 16 KiB"));
    }
    let given_to = req
        .to
        .as_deref()
        .map(Identifier::email)
        .transpose()
        .map_err(|_| bad("invalid_email", "to is not a valid email address"))?;
    let replying_to = match req.in_reply_to.as_deref() {
        Some(raw) => Some(message_id(raw).ok_or_else(|| bad("unknown_message_id", "in_reply_to is not a Message-ID"))?),
        None => None,
    };
    from_mailbox(settings)?;

    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Contact, now) {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::EmailOutbound, e, now),
    };
    let to = match &given_to {
        Some(id) => {
            // An address given in a session is the session's word, not proof: it
            // is linked unverified and never resolves an asserted sender (M4).
            tx.link_identifier(
                IdentifierKind::Email,
                id.value(),
                &customer,
                &format!("outbound:{session}"),
                false,
                now,
            )?;
            zeroize::Zeroizing::new(id.value().to_owned())
        }
        // Only an address verified on file is a default destination (L1): one
        // a session merely offered could be anybody's.
        None => {
            tx.identifier_on_file(&customer, IdentifierKind::Email)?.ok_or_else(|| ContinuityError::WrongState {
                code: "no_email_address",
                message: "no verified email address is on file for this patient: give `to`".into(),
            })?
        }
    };
    let mut body = req.text.trim_end().to_owned();
    if let Some(apt) = &req.appointment_id {
        if let Err(e) = writable(settings, &row, PhiClass::Scheduling, now) {
            return refuse(tx, actor, &row, audit::Action::EmailOutbound, e, now);
        }
        let apt = tx.appointment(apt)?.filter(|a| a.customer_id == customer).ok_or(ContinuityError::Missing {
            code: "appointment_not_found",
            message: "no such appointment for this patient".into(),
        })?;
        let what = if apt.status == "cancelled" { "Cancelled appointment" } else { "Your appointment" };
        body.push_str(&format!("\n\n{what}: {}.\n", human_time(&settings.zone, &apt)));
    }
    if let Some(parent) = &replying_to
        && tx.thread_of(parent)?.is_none_or(|(v, _)| v != conversation)
    {
        return Err(bad("unknown_message_id", "in_reply_to is not a message of this conversation"));
    }
    let (id, raw) = build_message(settings, &to, subject, &body, replying_to.as_deref(), now)?;
    tx.record_message_id(&conversation, session, &id, "outbound", now)?;
    tx.append_turn(&customer, &conversation, session, "email", "agent", &format!("{subject}\n\n{body}"), now)?;
    tx.touch_conversation(&conversation, now)?;
    let delivery = if settings.email.smtp.is_some() { "smtp" } else { "gateway" };
    audit(&tx, actor, audit::Action::EmailOutbound, Some(&customer), session, Some(delivery), now)?;
    tx.commit()?;
    Ok(Composed {
        message_id: id,
        from: settings.email.from_address.clone(),
        to: to.to_string(),
        raw,
        smtp: settings.email.smtp.clone(),
    })
}

/// Records how delivery through the relay went (`email.send`, ok or failed).
pub fn record_delivery(
    store: &mut TenantStore,
    actor: &Actor,
    session: &SessionId,
    failure: Option<&str>,
    now: i64,
) -> Result<(), ContinuityError> {
    let tx = store.transaction()?;
    let row = tx.session(session)?.ok_or_else(ContinuityError::session_not_found)?;
    let outcome = if failure.is_some() { audit::Outcome::Failed } else { audit::Outcome::Ok };
    audit_outcome(&tx, actor, audit::Action::EmailSend, row.customer_id.as_ref(), session, outcome, failure, now)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appointment_times_read_in_the_clinics_zone() {
        let mut a = AppointmentRow {
            id: "apt_x".into(),
            conversation_id: store::ids::ConversationId::generate(),
            customer_id: store::ids::CustomerId::generate(),
            starts_at: 1_764_626_400_000, // 2025-12-01T22:00:00Z
            utc_offset_min: -480,
            duration_min: 30,
            status: "booked".into(),
            has_reason: true,
        };
        let la = ClinicZone::parse("America/Los_Angeles").unwrap();
        assert_eq!(human_time(&la, &a), "Monday, December 1, 2025 at 2:00 PM PST, 30 minutes");
        a.starts_at = 1_909_774_800_000; // 2030-07-08T21:00:00Z
        assert_eq!(human_time(&la, &a), "Monday, July 8, 2030 at 2:00 PM PDT, 30 minutes");
    }
}
