//! Callbacks: a chat asks "can someone call me?" with a number and a time
//! window; a voice agent claims the oldest due one and gets a new voice
//! session with the full resume context. Claims are exclusive (one
//! transaction on the tenant's single writer) and run out after
//! [`limits::CALLBACK_CLAIM_MS`], when the callback goes back to the queue;
//! ending the claiming session settles it (completed) or re-queues it.

use policy::{PhiClass, Resolution, Strength};

use super::{format_time, limits, parse_time};
use crate::identifiers::Identifier;
use crate::{Actor, ContinuityError, ResumeContext, TenantSettings, audit, build_context, open_row, refuse, writable};
use store::ids::SessionId;
use store::{IdentifierKind, NewCallback, SessionRow, TenantStore};

#[derive(Clone, Debug)]
pub struct CallbackRequest {
    /// The number to call; the patient's most recent number when left out.
    pub phone: Option<String>,
    pub window_start: String,
    pub window_end: String,
}

pub struct CallbackView {
    pub id: String,
    pub status: &'static str,
    pub window_start: String,
    pub window_end: String,
}

/// What a voice agent gets when it claims a callback.
pub struct Claim {
    pub callback: ClaimedView,
    pub context: ResumeContext,
}

pub struct ClaimedView {
    pub id: String,
    /// The number to dial (E.164): released to the claiming voice agent,
    /// whose job is to call it.
    pub phone: String,
    pub window_start: String,
    pub window_end: String,
    pub claim_expires_at: String,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Claim({}, [REDACTED])", self.callback.id)
    }
}

/// `POST /v1/sessions/{id}/callbacks`.
pub fn request(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &CallbackRequest,
    now: i64,
) -> Result<CallbackView, ContinuityError> {
    let (start, start_off) = parse_time("window_start", &req.window_start)?;
    let (end, _) = parse_time("window_end", &req.window_end)?;
    if end <= start || end <= now {
        return Err(ContinuityError::bad("invalid_window", "window_end must be after window_start and in the future"));
    }
    if end - start > limits::CALLBACK_WINDOW_MAX_MS || start - now > limits::CALLBACK_LEAD_MAX_MS {
        return Err(ContinuityError::bad(
            "invalid_window",
            "a callback window is at most 7 days long and starts within 30 days",
        ));
    }
    let given = req
        .phone
        .as_deref()
        .map(|p| Identifier::phone(p, &settings.region))
        .transpose()
        .map_err(|e| ContinuityError::bad(e.code(), e.to_string()))?;
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Scheduling, now)
        .and_then(|found| writable(settings, &row, PhiClass::Contact, now).map(|_| found))
    {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::CallbackRequest, e, now),
    };
    let phone = match given {
        Some(p) => zeroize::Zeroizing::new(p.value().to_owned()),
        // Only a number verified on file is the default (L1).
        None => tx.identifier_on_file(&customer, IdentifierKind::Phone)?.ok_or_else(|| {
            ContinuityError::bad("phone_required", "no verified phone number is on file for this patient: give one")
        })?,
    };
    let id = format!("cb_{}", uuid::Uuid::new_v4().simple());
    tx.insert_callback(
        &NewCallback {
            id: &id,
            customer: &customer,
            conversation: &conversation,
            session,
            phone: &phone,
            window_start: start,
            window_end: end,
        },
        now,
    )?;
    tx.touch_conversation(&conversation, now)?;
    audit(&tx, actor, audit::Action::CallbackRequest, Some(&customer), session, Some(&id), now)?;
    tx.commit()?;
    Ok(CallbackView {
        id,
        status: "pending",
        window_start: format_time(start, start_off),
        window_end: format_time(end, start_off),
    })
}

/// `POST /v1/callbacks/claim`: voice only. `None` when nothing is due.
pub fn claim(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    now: i64,
) -> Result<Option<Claim>, ContinuityError> {
    if actor.channel != policy::Channel::Voice {
        return Err(ContinuityError::forbidden(
            "wrong_channel",
            format!("callbacks are claimed by the voice channel; the certificate is for {}", actor.channel),
        ));
    }
    let tx = store.transaction()?;
    let session = SessionId::generate();
    let Some(cb) = tx.claim_callback(&session, now, limits::CALLBACK_CLAIM_MS)? else {
        return Ok(None);
    };
    let conversation = if tx.conversation_is_open(&cb.conversation_id)? {
        cb.conversation_id.clone()
    } else {
        match tx.open_conversation(&cb.customer_id)? {
            Some(c) => c,
            None => tx.create_conversation(&cb.customer_id, now)?,
        }
    };
    // Dialling a number verified on file for this patient is as strong as
    // a carrier's caller ID (a number shared by several patients still
    // needs confirmation under the tenant's policy). A number given with
    // the request is only the requester's word: whoever answers it must
    // confirm on the call before hearing anything (M5).
    let links = tx.identifier_links(IdentifierKind::Phone, &cb.phone)?;
    let on_file = links.iter().any(|(c, verified)| *c == cb.customer_id && *verified);
    let row = SessionRow {
        conversation_id: Some(conversation.clone()),
        customer_id: Some(cb.customer_id.clone()),
        status: Resolution::Resolved,
        strength: if on_file { Strength::Asserted } else { Strength::Claim },
        shared_identifier: links.len() > 1,
        ..SessionRow::starting(session.clone(), actor.channel, now)
    };
    tx.insert_session(&row, None, &actor.serial)?;
    tx.touch_conversation(&conversation, now)?;
    audit(&tx, actor, audit::Action::CallbackClaim, Some(&cb.customer_id), &session, Some(&cb.id), now)?;
    let context = build_context(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(Some(Claim {
        callback: ClaimedView {
            id: cb.id.clone(),
            phone: cb.phone.to_string(),
            window_start: format_time(cb.window_start, 0),
            window_end: format_time(cb.window_end, 0),
            claim_expires_at: format_time(cb.claim_expires_at, 0),
        },
        context,
    }))
}
