//! What a channel does inside a session: record intake
//! fields, turns and state, end the session, hand out a resume token. Each
//! runs in one transaction with its audit record; writes of PHI into a
//! conversation need the same policy clearance as reading it, so a caller
//! who only claimed an identity cannot plant text in a patient's history.

use policy::{Answer, ConfirmField, PhiClass, Strength};

use super::context::{self, ResumeContext, access, facts};
use super::identifiers::{Evidence, Identifier};
use super::open::{audit, audit_outcome};
use super::resume_token::{self, TokenClaims};
use super::{Actor, ContinuityError, TenantSettings, limits};
use store::ids::{ConversationId, CustomerId, SessionId};
use store::{SessionRow, TenantStore, TenantTx};

#[derive(Clone, Debug)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub date_of_birth: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TurnRequest {
    pub speaker: String,
    pub text: String,
    /// The integration's own id for this turn: the same one again in the
    /// same session answers the turn already recorded.
    pub external_ref: Option<String>,
    /// A patient's inbound text the integration must not lose (an SMS):
    /// when the session may not write yet, keep it for staff review.
    pub hold: bool,
}

#[derive(Clone, Debug)]
pub struct StateValue {
    pub value: String,
}

#[derive(Clone, Debug)]
pub struct EndRequest {
    pub reason: String,
}

pub struct Ack {
    pub session_id: String,
    pub turn_id: Option<i64>,
    pub key: Option<String>,
    pub expires_at: Option<i64>,
    pub ended_reason: Option<String>,
    pub resume_token: Option<String>,
    /// The turn was kept for staff review, not written (`hold`).
    pub held: Option<bool>,
    /// A call that ended dropped or with a task pending (docs/OUTCOMES.md).
    pub interrupted: Option<bool>,
    /// On an interrupted call under a recovery policy: its arm, and in the
    /// `sent` arm the resume link to text.
    pub recovery: Option<Recovery>,
}

/// What the recovery policy did with an interrupted call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub arm: policy::RecoveryArm,
    /// The link to text (its token is single use, 7 days).
    pub link: Option<String>,
    /// The callback queued to the verified number on file, if any.
    pub callback: Option<String>,
}

/// Queues a call back to the patient's verified number on file (never a
/// number only claimed), due from now for `hours`; `None` without one.
fn recovery_callback(
    tx: &TenantTx<'_>,
    actor: &Actor,
    session: &SessionId,
    customer: &CustomerId,
    conversation: &ConversationId,
    hours: u8,
    now: i64,
) -> Result<Option<String>, ContinuityError> {
    let Some(phone) = tx.identifier_on_file(customer, store::IdentifierKind::Phone)? else {
        return Ok(None);
    };
    let id = format!("cb_{}", uuid::Uuid::new_v4().simple());
    tx.insert_callback(
        &store::NewCallback {
            id: &id,
            customer,
            conversation,
            session,
            phone: &phone,
            window_start: now,
            window_end: now.saturating_add(i64::from(hours) * 3_600_000),
        },
        now,
    )?;
    audit(tx, actor, audit::Action::CallbackRequest, Some(customer), session, Some(&id), now)?;
    Ok(Some(id))
}

impl Ack {
    fn new(session: &SessionId) -> Self {
        Ack {
            session_id: session.to_string(),
            turn_id: None,
            key: None,
            expires_at: None,
            ended_reason: None,
            resume_token: None,
            held: None,
            interrupted: None,
            recovery: None,
        }
    }
}

/// Only the channel that opened a session may act in it.
pub(crate) fn require_channel(s: &SessionRow, actor: &Actor) -> Result<(), ContinuityError> {
    if s.channel == actor.channel {
        Ok(())
    } else {
        Err(ContinuityError::forbidden(
            "wrong_channel",
            format!("this session belongs to the {} channel; the certificate is for {}", s.channel, actor.channel),
        ))
    }
}

pub(crate) fn open_row(
    tx: &TenantTx<'_>,
    actor: &Actor,
    session: &SessionId,
    now: i64,
) -> Result<SessionRow, ContinuityError> {
    let row = tx.session(session)?.ok_or_else(ContinuityError::session_not_found)?;
    require_channel(&row, actor)?;
    // A session belongs to the integration that opened it, not to every
    // certificate of its channel (L14): another one is told what it would
    // be told of a made-up id.
    if row.cert_serial.as_deref().is_some_and(|s| s != actor.serial) {
        return Err(ContinuityError::session_not_found());
    }
    if row.ended_at.is_some() {
        return Err(ContinuityError::WrongState { code: "session_ended", message: "the session has ended".into() });
    }
    // The idle clock of its confirmation (M3), kept to the minute.
    tx.touch_session(session, now)?;
    Ok(row)
}

/// The patient and conversation a session may write into, if policy allows
/// `class` to this channel now.
pub(crate) fn writable(
    settings: &TenantSettings,
    row: &SessionRow,
    class: PhiClass,
    now: i64,
) -> Result<(CustomerId, ConversationId), ContinuityError> {
    let (decision, _) = access(settings, row, now);
    match (&row.customer_id, &row.conversation_id) {
        (Some(c), Some(v)) if decision.access.allows(class) => Ok((c.clone(), v.clone())),
        _ => Err(ContinuityError::forbidden(
            "identity_confirmation_required",
            format!("confirm identity before writing {class} data in this session"),
        )),
    }
}

/// Audits a refusal in the session's name.
pub(crate) fn audit_refused(
    tx: &TenantTx<'_>,
    actor: &Actor,
    row: &SessionRow,
    action: audit::Action,
    reason: &str,
    now: i64,
) -> Result<(), ContinuityError> {
    audit_outcome(tx, actor, action, row.customer_id.as_ref(), &row.id, audit::Outcome::Refused, Some(reason), now)
}

/// Records a policy refusal in the audit trail (committed on its own: the
/// refused change is not made, but the refusal is on the record) and
/// returns the error.
pub(crate) fn refuse<T>(
    tx: TenantTx<'_>,
    actor: &Actor,
    row: &SessionRow,
    action: audit::Action,
    e: ContinuityError,
    now: i64,
) -> Result<T, ContinuityError> {
    audit_refused(&tx, actor, row, action, e.code(), now)?;
    tx.commit()?;
    Err(e)
}

/// `PATCH /v1/sessions/{id}/customer`: intake fields. Only for a patient
/// created in this session or a confirmed one (otherwise a caller could set
/// the date of birth they then "confirm" with).
pub fn update_customer(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    patch: &CustomerPatch,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    let name = match &patch.name {
        Some(n) => match Answer::parse(ConfirmField::Name, n) {
            Ok(_) => Some(n.split_whitespace().collect::<Vec<_>>().join(" ")),
            Err(e) => return Err(ContinuityError::bad("invalid_name", e.to_string())),
        },
        None => None,
    };
    if let Some(d) = &patch.date_of_birth {
        Answer::parse(ConfirmField::DateOfBirth, d)
            .map_err(|e| ContinuityError::bad("invalid_date_of_birth", e.to_string()))?;
    }
    if name.is_none() && patch.date_of_birth.is_none() {
        return Err(ContinuityError::bad("empty_patch", "give name and/or date_of_birth"));
    }
    let tx = store.transaction()?;
    let mut row = open_row(&tx, actor, session, now)?;
    if context::veiled(&row, now) {
        // Intake in a session that only claimed an identity makes a record
        // of its own (H2, M8): the typist owns what they typed, never the
        // record their claim pointed at, and the answer is the same whether
        // it pointed at one or not.
        let customer = tx.create_customer(now)?;
        let conversation = tx.create_conversation(&customer, now)?;
        for (kind, value) in tx.take_pending_identifiers(session)? {
            let verified = Identifier::kind_strength(kind, row.channel, Evidence::NONE) >= Strength::Asserted;
            tx.link_identifier(kind, &value, &customer, &format!("session:{session}"), verified, now)?;
        }
        tx.attach_new_customer(session, &customer, &conversation)?;
        audit(&tx, actor, audit::Action::CustomerCreate, Some(&customer), session, Some("claim_intake"), now)?;
        row = tx.session(session)?.ok_or_else(ContinuityError::session_not_found)?;
    }
    let allowed = row.created_customer || facts(&row, now).confirmed;
    let Some(customer) = row.customer_id.clone().filter(|_| allowed) else {
        let e = ContinuityError::forbidden(
            "identity_confirmation_required",
            "intake fields can be set for a new patient or after confirmation",
        );
        return refuse(tx, actor, &row, audit::Action::CustomerUpdate, e, now);
    };
    tx.set_customer_fields(&customer, name.as_deref(), patch.date_of_birth.as_deref().map(str::trim), now)?;
    audit(&tx, actor, audit::Action::CustomerUpdate, Some(&customer), session, None, now)?;
    let ctx = context::build(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(ctx)
}

/// `POST /v1/sessions/{id}/turns`.
pub fn append_turn(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &TurnRequest,
    now: i64,
) -> Result<Ack, ContinuityError> {
    if !matches!(req.speaker.as_str(), "patient" | "agent" | "staff") {
        return Err(ContinuityError::bad("invalid_speaker", "speaker must be patient, agent or staff"));
    }
    if req.text.is_empty() || req.text.len() > limits::TURN_TEXT_BYTES {
        return Err(ContinuityError::bad("invalid_text", "text must be 1 byte to 16 KiB"));
    }
    if let Some(r) = &req.external_ref
        && (r.is_empty() || r.len() > limits::EXTERNAL_REF_BYTES)
    {
        return Err(ContinuityError::bad("invalid_external_ref", "external_ref must be 1 to 256 bytes"));
    }
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Conversation, now) {
        Ok(found) => found,
        Err(_) if req.hold && req.speaker == "patient" && row.ended_at.is_none() => {
            if tx.held_by_external_ref(session, req.external_ref.as_deref())? {
                return Ok(Ack { held: Some(true), ..Ack::new(session) });
            }
            tx.hold_message(session, "confirmation_required", req.text.as_bytes(), req.external_ref.as_deref(), now)?;
            audit_outcome(
                &tx,
                actor,
                audit::Action::TurnHold,
                row.customer_id.as_ref(),
                session,
                audit::Outcome::Ok,
                Some("confirmation_required"),
                now,
            )?;
            tx.commit()?;
            return Ok(Ack { held: Some(true), ..Ack::new(session) });
        }
        Err(e) => return refuse(tx, actor, &row, audit::Action::TurnAppend, e, now),
    };
    if let Some(r) = &req.external_ref
        && let Some(id) = tx.turn_by_external_ref(session, r)?
    {
        return Ok(Ack { turn_id: Some(id), ..Ack::new(session) });
    }
    let channel = actor.channel.as_str();
    let id = tx.append_turn(&customer, &conversation, session, channel, &req.speaker, &req.text, now)?;
    if let Some(r) = &req.external_ref {
        tx.set_turn_external_ref(id, r)?;
    }
    tx.touch_conversation(&conversation, now)?;
    audit(&tx, actor, audit::Action::TurnAppend, Some(&customer), session, None, now)?;
    tx.commit()?;
    Ok(Ack { turn_id: Some(id), ..Ack::new(session) })
}

fn check_key(key: &str) -> Result<(), ContinuityError> {
    let ok = (1..=limits::STATE_KEY_BYTES).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(ContinuityError::bad("invalid_state_key", "state keys are 1 to 64 of a-z 0-9 _")) }
}

/// `PUT /v1/sessions/{id}/state/{key}`: expires after the tenant's state TTL.
pub fn put_state(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    key: &str,
    value: &StateValue,
    now: i64,
) -> Result<Ack, ContinuityError> {
    check_key(key)?;
    if value.value.len() > limits::STATE_VALUE_BYTES {
        return Err(ContinuityError::bad("invalid_state_value", "state values are at most 4 KiB"));
    }
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Conversation, now) {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::StatePut, e, now),
    };
    if !tx.state_key_exists(&conversation, key, now)?
        && tx.count_state(&conversation, now)? >= limits::STATE_KEYS_PER_CONVERSATION
    {
        return Err(ContinuityError::bad("too_many_state_keys", "at most 64 state keys per conversation"));
    }
    let expires_at = settings.state_ttl.expires_at(now);
    tx.put_state(&customer, &conversation, key, &value.value, now, expires_at)?;
    if key.starts_with(crate::outcomes::BOOKING_INTENT_PREFIX) {
        tx.mark_booking_intent(session)?;
    }
    tx.touch_conversation(&conversation, now)?;
    audit(&tx, actor, audit::Action::StatePut, Some(&customer), session, None, now)?;
    tx.commit()?;
    Ok(Ack { key: Some(key.to_owned()), expires_at: Some(expires_at), ..Ack::new(session) })
}

/// `DELETE /v1/sessions/{id}/state/{key}`.
pub fn delete_state(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    key: &str,
    now: i64,
) -> Result<Ack, ContinuityError> {
    check_key(key)?;
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Conversation, now) {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::StateDelete, e, now),
    };
    if !tx.delete_state(&conversation, key, now)? {
        return Err(ContinuityError::Missing { code: "state_key_not_found", message: "no such state key".into() });
    }
    audit(&tx, actor, audit::Action::StateDelete, Some(&customer), session, None, now)?;
    tx.commit()?;
    Ok(Ack { key: Some(key.to_owned()), ..Ack::new(session) })
}

/// `POST /v1/sessions/{id}/end`: a dropped call leaves the conversation open.
/// An interrupted call (dropped, or a task pending) of a known patient is
/// put in an arm of the tenant's recovery policy: `roll` (uniform in
/// 0..100, the caller's randomness) decides the holdout; in the `sent` arm
/// the answer carries a resume link for the platform to text to the number
/// that called (docs/OUTCOMES.md).
pub fn end_session(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &EndRequest,
    roll: u8,
    now: i64,
) -> Result<Ack, ContinuityError> {
    if !matches!(req.reason.as_str(), "completed" | "dropped" | "transferred") {
        return Err(ContinuityError::bad("invalid_end_reason", "reason must be completed, dropped or transferred"));
    }
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let pending = tx.end_session(session, &req.reason, now)?;
    let interrupted = row.channel == policy::Channel::Voice && (req.reason == "dropped" || pending);
    let completed = req.reason == "completed";
    if let Some(cb) = tx.settle_callback(session, completed)? {
        let action = if completed { audit::Action::CallbackDone } else { audit::Action::CallbackRequeue };
        audit(&tx, actor, action, row.customer_id.as_ref(), session, Some(&cb), now)?;
    }
    if let Some(c) = &row.conversation_id {
        tx.touch_conversation(c, now)?;
    }
    audit(&tx, actor, audit::Action::SessionEnd, row.customer_id.as_ref(), session, Some(&req.reason), now)?;
    let mut recovery = None;
    if interrupted
        && !row.shared_identifier
        && let (Some(customer), Some(conversation)) = (&row.customer_id, &row.conversation_id)
        && let Some(arm) = settings.policy.recovery.arm(roll)
    {
        tx.set_recovery_arm(session, arm.as_str())?;
        audit(&tx, actor, audit::Action::RecoveryArm, Some(customer), session, Some(arm.as_str()), now)?;
        let (mut link, mut callback) = (None, None);
        if arm == policy::RecoveryArm::Sent {
            if settings.policy.recovery.link_base.is_some() {
                let (token, _) = mint_token(&tx, customer, conversation, now)?;
                audit(&tx, actor, audit::Action::ResumeTokenIssue, Some(customer), session, Some("recovery"), now)?;
                link = settings.policy.recovery.link(&token);
            }
            if let Some(hours) = settings.policy.recovery.callback_within_hours {
                callback = recovery_callback(&tx, actor, session, customer, conversation, hours, now)?;
            }
        }
        recovery = Some(Recovery { arm, link, callback });
    }
    tx.commit()?;
    Ok(Ack { ended_reason: Some(req.reason.clone()), interrupted: Some(interrupted), recovery, ..Ack::new(session) })
}

/// `POST /v1/sessions/{id}/resume-token`: for a patient this session may
/// see in full (confirmed, or no confirmation needed).
pub fn issue_resume_token(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    now: i64,
) -> Result<Ack, ContinuityError> {
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Conversation, now) {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::ResumeTokenIssue, e, now),
    };
    let (token, expires_at) = mint_token(&tx, &customer, &conversation, now)?;
    audit(&tx, actor, audit::Action::ResumeTokenIssue, Some(&customer), session, None, now)?;
    tx.commit()?;
    Ok(Ack { resume_token: Some(token), expires_at: Some(expires_at), ..Ack::new(session) })
}

/// A new single-use resume token for the patient's conversation, recorded.
fn mint_token(
    tx: &store::TenantTx<'_>,
    customer: &CustomerId,
    conversation: &ConversationId,
    now: i64,
) -> Result<(String, i64), ContinuityError> {
    let expires_at = now.saturating_add(limits::RESUME_TOKEN_DAYS * 86_400_000);
    let id = format!("rt_{}", uuid::Uuid::new_v4().simple());
    tx.insert_resume_token(&id, customer, conversation, now, expires_at)?;
    let claims = TokenClaims {
        i: id,
        t: tx.keys().tenant_id().to_owned(),
        c: customer.to_string(),
        v: conversation.to_string(),
        x: expires_at,
    };
    Ok((resume_token::issue(tx.keys(), &claims), expires_at))
}

/// `POST /v1/sessions/{id}/start-fresh`: the patient asks to start over. The
/// conversation closes and its state is cleared (its history stays for the
/// record); this session continues on a new conversation, and so will the
/// next one. Allowed when the caller may see the conversation.
pub fn start_fresh(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    if let Err(r) = policy::may_start_fresh(&settings.policy, &facts(&row, now)) {
        let e = ContinuityError::forbidden(r.code(), "confirm identity before starting fresh");
        return refuse(tx, actor, &row, audit::Action::ConversationStartFresh, e, now);
    }
    let (Some(customer), Some(old)) = (row.customer_id.clone(), row.conversation_id.clone()) else {
        return Err(ContinuityError::forbidden("identity_confirmation_required", "no patient to start fresh for"));
    };
    let cleared = tx.close_conversation(&old, "start_fresh", now)?;
    // Links handed out for the old conversation stop working (M2).
    tx.revoke_customer_tokens(&customer, now)?;
    let fresh = tx.create_conversation(&customer, now)?;
    tx.move_session(session, &fresh)?;
    audit(
        &tx,
        actor,
        audit::Action::ConversationStartFresh,
        Some(&customer),
        session,
        Some(&format!("cleared:{cleared}")),
        now,
    )?;
    let row = tx.session(session)?.ok_or_else(ContinuityError::session_not_found)?;
    let ctx = context::build(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(ctx)
}

/// `POST /v1/sessions/{id}/erasure`: who may ask. Only a confirmed,
/// unambiguous patient (GDPR Art. 17, whatever the tenant's confirmation
/// mode); refusals are audited. Returns the patient to erase.
pub fn erasure_target(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    now: i64,
) -> Result<CustomerId, ContinuityError> {
    let _ = settings;
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    if let Err(r) = policy::may_exercise_rights(&facts(&row, now)) {
        let e = ContinuityError::forbidden(r.code(), "confirm identity before asking for erasure");
        return refuse(tx, actor, &row, audit::Action::CustomerErase, e, now);
    }
    let customer = row.customer_id.clone().ok_or_else(ContinuityError::session_not_found)?;
    tx.commit()?;
    Ok(customer)
}

/// `GET /v1/sessions/{id}/export`: the confirmed patient's own data, as far
/// as this channel may receive it after confirmation.
pub fn export(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    now: i64,
) -> Result<serde_json::Value, ContinuityError> {
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let f = facts(&row, now);
    if let Err(r) = policy::may_exercise_rights(&f) {
        let e = ContinuityError::forbidden(r.code(), "confirm identity before asking for your data");
        return refuse(tx, actor, &row, audit::Action::CustomerExport, e, now);
    }
    let customer = row.customer_id.clone().ok_or_else(ContinuityError::session_not_found)?;
    let decision = policy::decide(&settings.policy, row.channel, &f);
    let peer = actor.peer.map(|p| p.ip().to_string());
    let by = store::AuditEntry {
        actor_kind: audit::ActorKind::Channel,
        actor: &actor.serial,
        channel: Some(actor.channel.as_str()),
        action: audit::Action::CustomerExport,
        tenant_id: None,
        customer_id: None,
        session_id: Some(session.as_str()),
        peer: peer.as_deref(),
        outcome: audit::Outcome::Ok,
        reason: None,
    };
    let doc = crate::patient_export::build(&tx, &customer, &decision.access, &by, now)?;
    tx.commit()?;
    Ok(doc)
}
