//! A person at the clinic answers an email thread from the console: the
//! message goes out under a Message-ID we record for the conversation (so
//! the patient's reply threads back), the text becomes an agent turn of the
//! thread attributed to that person, and the audit record names them, their
//! role and the purpose, all in one transaction.

use super::outbound::{Composed, build_message};
use crate::channels::limits;
use crate::{ContinuityError, TenantSettings};
use store::ids::SessionId;
use store::{AuditEntry, IdentifierKind, StaffFields, TenantStore};

/// Who is replying, as the audit records them.
pub struct StaffActor<'a> {
    pub staff_id: &'a str,
    pub role: &'a str,
    pub purpose: &'a str,
    pub break_glass: Option<&'a str>,
    pub peer: Option<&'a str>,
}

pub fn staff_reply(
    store: &mut TenantStore,
    settings: &TenantSettings,
    staff: &StaffActor<'_>,
    session: &SessionId,
    subject: &str,
    text: &str,
    now: i64,
) -> Result<Composed, ContinuityError> {
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > limits::SUBJECT_CHARS || subject.chars().any(char::is_control) {
        return Err(ContinuityError::bad("invalid_subject", "subject must be 1 to 200 characters on one line"));
    }
    if text.trim().is_empty() || text.len() > limits::OUTBOUND_TEXT_BYTES {
        return Err(ContinuityError::bad("invalid_text", "text must be 1 byte to 16 KiB"));
    }
    let tx = store.transaction()?;
    let (customer, conversation) = tx.email_session(session)?.ok_or_else(ContinuityError::session_not_found)?;
    if !tx.conversation_is_open(&conversation)? {
        return Err(ContinuityError::WrongState {
            code: "conversation_closed",
            message: "this conversation is closed; the patient's next email opens a new one".into(),
        });
    }
    // Only to an address verified on file (L1).
    let to = tx.identifier_on_file(&customer, IdentifierKind::Email)?.ok_or_else(|| ContinuityError::WrongState {
        code: "no_email_address",
        message: "no verified email address is on file for this patient".into(),
    })?;
    let body = text.trim_end().to_owned();
    let (id, raw) = build_message(settings, &to, subject, &body, None, now)?;
    tx.record_message_id(&conversation, session, &id, "outbound", now)?;
    let turn =
        tx.append_turn(&customer, &conversation, session, "email", "agent", &format!("{subject}\n\n{body}"), now)?;
    tx.set_turn_author(turn, staff.staff_id)?;
    tx.touch_conversation(&conversation, now)?;
    let delivery = if settings.email.smtp.is_some() { "smtp" } else { "gateway" };
    let tenant_id = tx.keys().tenant_id().to_owned();
    let entry = AuditEntry {
        actor_kind: audit::ActorKind::Staff,
        actor: staff.staff_id,
        channel: Some("email"),
        action: audit::Action::EmailOutbound,
        tenant_id: Some(&tenant_id),
        customer_id: Some(customer.as_str()),
        session_id: Some(session.as_str()),
        peer: staff.peer,
        outcome: audit::Outcome::Ok,
        reason: Some(delivery),
    };
    let fields = StaffFields {
        role: Some(staff.role),
        purpose: Some(staff.purpose),
        break_glass: staff.break_glass,
        ..Default::default()
    };
    tx.audit_staff(&entry, &fields, now)?;
    tx.commit()?;
    Ok(Composed {
        message_id: id,
        from: settings.email.from_address.clone(),
        to: to.to_string(),
        raw,
        smtp: settings.email.smtp.clone(),
    })
}
