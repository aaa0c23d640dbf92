//! `POST /v1/sessions/{id}/identity/confirm`: the answers the tenant's
//! policy asks for, compared without the stored values leaving the store;
//! failures counted per patient and per identifier over a sliding window,
//! whatever the session (H1); what waited in the session linked once it
//! confirmed, never merging another patient's identifier (M4).

use policy::{Answer, ConfirmField, Resolution, Strength};

use super::actions::{audit_refused, open_row};
use super::context::{self, ResumeContext, facts};
use super::identifiers::{Evidence, Identifier};
use super::open::audit;
use super::{Actor, ContinuityError, TenantSettings};
use store::ids::{CustomerId, SessionId};
use store::{SessionRow, TenantStore, TenantTx};

#[derive(Clone, Debug)]
pub struct ConfirmRequest {
    pub date_of_birth: Option<String>,
    pub name: Option<String>,
    /// The one-time code of `identity/challenge` (instead of the fields).
    pub code: Option<String>,
}

/// `POST /v1/sessions/{id}/identity/confirm`. Failures count toward the
/// lockout; the answer never says which field was wrong.
pub fn confirm_identity(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &ConfirmRequest,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    if let Some(code) = &req.code {
        return super::challenge::confirm_code(store, settings, actor, session, code, now);
    }
    let mut answers = Vec::new();
    for field in &settings.policy.confirmation.with {
        let raw = match field {
            ConfirmField::DateOfBirth => req.date_of_birth.as_deref(),
            ConfirmField::Name => req.name.as_deref(),
        }
        .ok_or_else(|| ContinuityError::bad("missing_confirmation_field", format!("{} is required", field.as_str())))?;
        let answer = Answer::parse(*field, raw).map_err(|e| ContinuityError::bad(bad_code(*field), e.to_string()))?;
        answers.push((*field, answer));
    }
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let f = facts(&row, now);
    if f.confirmed {
        let ctx = context::build(&tx, settings, actor, &row, now)?;
        tx.commit()?;
        return Ok(ctx);
    }
    if f.locked {
        audit_refused(&tx, actor, &row, audit::Action::IdentityConfirm, "locked", now)?;
        tx.commit()?;
        return Err(ContinuityError::forbidden("identity_locked", "too many failed attempts; try again later"));
    }
    let candidates = match row.status {
        Resolution::Ambiguous => tx.candidates(session)?,
        _ => row.customer_id.iter().cloned().collect(),
    };
    // Failures count per patient and per identifier over a sliding window,
    // whatever the session (H1): a fresh session does not reset them, and a
    // locked patient is refused before any answer is compared.
    let lockout = settings.policy.confirmation.lockout;
    let subjects = tx.confirm_subjects(session, &candidates)?;
    let window = tx.confirm_failures_since(&subjects, now.saturating_sub(lockout.window_ms))?;
    if window.count >= lockout.max_attempts {
        let until = window.oldest.unwrap_or(now).saturating_add(lockout.window_ms);
        tx.record_confirm_failure(session, row.confirm_failures, Some(until))?;
        audit_refused(&tx, actor, &row, audit::Action::IdentityConfirm, "locked_subject", now)?;
        tx.commit()?;
        return Err(ContinuityError::forbidden(
            "identity_locked",
            format!("too many failed attempts; try again in {} minutes", minutes_until(until, now)),
        ));
    }
    let mut matching = Vec::new();
    for c in &candidates {
        if tx.answers_match(c, &answers)? {
            matching.push(c.clone());
        }
    }
    match matching.as_slice() {
        [customer] => {
            let conversation = match (&row.conversation_id, row.customer_id.as_ref() == Some(customer)) {
                (Some(v), true) => v.clone(),
                _ => match tx.open_conversation(customer)? {
                    Some(v) => v,
                    None => tx.create_conversation(customer, now)?,
                },
            };
            tx.confirm_session(session, customer, &conversation, now)?;
            // Confirmation proves who is speaking, not that they hold every
            // identifier they typed: a phone or email typed into chat stays
            // unverified; the browser's cookie is the session's own.
            link_pending(&tx, actor, &row, customer, now)?;
            audit(&tx, actor, audit::Action::IdentityConfirm, Some(customer), session, None, now)?;
            let row = tx.session(session)?.ok_or_else(ContinuityError::session_not_found)?;
            let ctx = context::build(&tx, settings, actor, &row, now)?;
            tx.commit()?;
            Ok(ctx)
        }
        _ => {
            tx.record_subject_failure(&subjects, now)?;
            // The session's own counter is the secondary limit; the subjects'
            // window (this failure included) is the one that protects.
            let (own, own_lock) = policy::after_failed_confirmation(&settings.policy, row.confirm_failures, now);
            let failures = own.max(window.count.saturating_add(1));
            let subject_lock = (window.count.saturating_add(1) >= lockout.max_attempts)
                .then(|| window.oldest.unwrap_or(now).saturating_add(lockout.window_ms));
            let locked_until = own_lock.max(subject_lock);
            tx.record_confirm_failure(session, own, locked_until)?;
            if locked_until.is_some() {
                // Someone is guessing: the patients' resume links are revoked (M2).
                for c in &candidates {
                    tx.revoke_customer_tokens(c, now)?;
                }
            }
            let reason = if locked_until.is_some() { "mismatch_locked" } else { "mismatch" };
            audit_refused(&tx, actor, &row, audit::Action::IdentityConfirm, reason, now)?;
            tx.commit()?;
            let left = lockout.max_attempts.saturating_sub(failures);
            Err(ContinuityError::NotProven {
                code: if left == 0 { "identity_locked" } else { "identity_not_confirmed" },
                message: format!("the details given do not match our records; {left} attempts left"),
            })
        }
    }
}

/// Links the identifiers that waited in a session, once it confirmed.
/// Confirmation proves who is speaking, not that they hold every identifier
/// they typed: a phone or email typed into chat stays unverified; the
/// browser's cookie is the session's own. Never a merge (M4): an identifier
/// of another live patient stays theirs, and the clash is recorded.
pub(crate) fn link_pending(
    tx: &TenantTx<'_>,
    actor: &Actor,
    row: &SessionRow,
    customer: &CustomerId,
    now: i64,
) -> Result<(), ContinuityError> {
    let session = &row.id;
    for (kind, value) in tx.take_pending_identifiers(session)? {
        let others: Vec<CustomerId> =
            tx.customers_by_identifier(kind, &value)?.into_iter().filter(|c| c != customer).collect();
        if !others.is_empty() {
            for other in &others {
                tx.record_conflict(session, (kind, customer), (kind, other), now)?;
            }
            audit(tx, actor, audit::Action::IdentityConflict, Some(customer), session, Some(kind.as_str()), now)?;
            continue;
        }
        let verified = Identifier::kind_strength(kind, row.channel, Evidence::NONE) >= Strength::Asserted;
        tx.link_identifier(kind, &value, customer, &format!("confirmed:{session}"), verified, now)?;
    }
    Ok(())
}

fn minutes_until(until: i64, now: i64) -> i64 {
    (until.saturating_sub(now).max(0) + 59_999) / 60_000
}

fn bad_code(field: ConfirmField) -> &'static str {
    match field {
        ConfirmField::DateOfBirth => "invalid_date_of_birth",
        ConfirmField::Name => "invalid_name",
    }
}
