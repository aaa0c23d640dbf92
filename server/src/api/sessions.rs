//! Session routes: open, context, identity confirmation, intake fields,
//! turns, state, end, resume token. Each resolves the caller's tenant from
//! the certificate, runs the continuity operation on the blocking pool, and
//! maps its refusal to the JSON error shape.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{ApiError, AppState, Caller};
use crate::tenants::TenantHandle;
use crate::throttle::Verdict;
use continuity::{self, Actor, ContinuityError, TenantSettings};

use super::wire;
use store::TenantStore;
use store::ids::SessionId;

/// Runs `op` on the caller's tenant store in its next group commit (on a
/// writer thread) and answers once that group is durable. Only the first
/// request to a tenant goes through the blocking pool, to open its store.
pub(super) async fn with_store<T, F>(state: &web::Data<AppState>, caller: &Caller, op: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut TenantStore, &TenantSettings, &Actor, i64) -> Result<T, ContinuityError> + Send + 'static,
{
    let handle = tenant(state, caller).await?;
    let actor = Actor { serial: caller.serial.clone(), channel: caller.channel, peer: caller.peer };
    let now = state.clock.now_ms();
    let settings = handle.clone();
    let out =
        handle.store.run_async(move |store| op(store, &settings.settings, &actor, now)).await.map_err(|e| match e {
            crate::group_commit::GroupError::DiskFull => ApiError::storage_full(),
            crate::group_commit::GroupError::Busy => ApiError::busy(),
            crate::group_commit::GroupError::NotReplicated => ApiError::not_durable(),
            other => ApiError::internal(&other),
        })?;
    Ok(out?)
}

/// The caller's tenant, opened on the blocking pool if this is its first request.
async fn tenant(state: &web::Data<AppState>, caller: &Caller) -> Result<Arc<TenantHandle>, ApiError> {
    let refused = |e: crate::Error| match e {
        crate::Error::TenantNotFound { .. } => {
            ApiError::forbidden("tenant_deleted", "the tenant of this certificate was deleted")
        }
        crate::Error::NotServedHere { .. } => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "not_owner",
            "this node does not serve this tenant now; retry through its hostname",
        ),
        crate::Error::Store(e) => ApiError::store(&e),
        other => ApiError::internal(&other),
    };
    if let Some(h) = state.tenants.get_open(&caller.tenant_id).map_err(refused)? {
        return Ok(h);
    }
    let state = state.clone();
    let id = caller.tenant_id.clone();
    web::block(move || state.tenants.get(&id)).await.map_err(|e| ApiError::internal(&e))?.map_err(refused)
}

pub(super) fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    // Malformed and foreign ids look alike: "not found for this tenant".
    SessionId::parse(raw)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "session_not_found", "no such session for this tenant"))
}

pub(super) fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status).json(body)
}

#[utoipa::path(
    post,
    path = "/v1/sessions",
    operation_id = "openSession",
    summary = "Open a session: resolve the patient from the identifiers offered, find or open their conversation, return the resume context",
    request_body = wire::OpenSession,
    responses((status = 200, description = "OK", body = wire::ResumeContext))
)]
pub async fn open(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<wire::OpenSession>,
) -> Result<HttpResponse, ApiError> {
    let req = body.into_inner().into();
    let ctx = with_store(&state, &caller, move |s, t, a, now| continuity::open_session(s, t, a, &req, now)).await?;
    Ok(json(StatusCode::OK, &wire::ResumeContext::from(ctx)))
}

#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/context",
    operation_id = "sessionContext",
    summary = "The resume context of an open session, as policy now allows",
    responses((status = 200, description = "OK", body = wire::ResumeContext))
)]
pub async fn context(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let ctx = with_store(&state, &caller, move |s, t, a, now| continuity::context(s, t, a, &id, now)).await?;
    Ok(json(StatusCode::OK, &wire::ResumeContext::from(ctx)))
}

/// The header an integration names its visitor with (a device cookie, a
/// chat platform's contact inbox): opaque to the core, never stored.
pub const VISITOR_HEADER: &str = "throughline-visitor";

/// The visitor the integration named, if any: 1 to 128 visible ASCII bytes.
fn visitor(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get(VISITOR_HEADER) else { return Ok(None) };
    match v.to_str() {
        Ok(s) if (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(s.to_owned())),
        _ => Err(ApiError::bad_request("invalid_visitor", "Throughline-Visitor must be 1 to 128 visible ASCII bytes")),
    }
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/identity/confirm",
    operation_id = "confirmIdentity",
    summary = "Confirm identity with the tenant's fields or a one-time code; failures count toward the lockout",
    request_body = wire::Confirm,
    responses((status = 200, description = "OK", body = wire::ResumeContext))
)]
pub async fn confirm(
    caller: Caller,
    state: web::Data<AppState>,
    http: HttpRequest,
    path: web::Path<String>,
    body: web::Json<wire::Confirm>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let visitor = visitor(&http)?;
    let now = state.clock.now_ms();
    match state.confirm_throttle.check(&caller.serial, visitor.as_deref(), now) {
        Verdict::Go => {}
        Verdict::Refuse { retry_after_secs } => {
            tracing::warn!(serial = %caller.serial, "identity confirmations throttled for one visitor");
            return Err(ApiError::too_many(
                "confirmation_throttled",
                "too many failed identity confirmations from this visitor; retry later",
                retry_after_secs,
            ));
        }
        Verdict::Slow { ms } => {
            // Everyone behind this certificate waits a little; nobody is
            // refused for what another visitor did (N3). The alert.
            tracing::warn!(serial = %caller.serial, ms, "identity confirmations slowed for this certificate");
            crate::metrics::get()
                .lockouts
                .get_or_create(&crate::metrics::ReasonLabels { reason: "confirm_certificate_slowed" })
                .inc();
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
    let out =
        with_store(&state, &caller, move |s, t, a, now| continuity::confirm_identity(s, t, a, &id, &req, now)).await;
    // Only an answer that compared something and did not match counts: a
    // refusal for a locked patient compared nothing (N3).
    if let Err(e) = &out
        && e.status() == StatusCode::UNAUTHORIZED
        && matches!(e.code(), "identity_not_confirmed" | "identity_locked")
    {
        state.confirm_throttle.failed(&caller.serial, visitor.as_deref(), now);
    }
    Ok(json(StatusCode::OK, &wire::ResumeContext::from(out?)))
}

/// `POST /v1/sessions/{id}/identity/challenge`: a one-time code to an
/// identifier on file, sent through the tenant's relay or handed back.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/identity/challenge",
    operation_id = "identityChallenge",
    summary = "Send a one-time code to the email or phone on file",
    request_body = wire::Challenge,
    responses((status = 202, description = "OK", body = wire::ChallengeSent))
)]
pub async fn challenge(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::Challenge>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let out =
        with_store(&state, &caller, move |s, t, a, now| continuity::challenge::challenge(s, t, a, &id, &req, now))
            .await?;
    if let Some((smtp, from, to, raw)) = &out.smtp
        && let Err(e) = crate::smtp::send(smtp, from, to, raw).await
    {
        tracing::warn!(failure = %e, "the SMTP relay did not take a one-time code");
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "email_send_failed",
            format!("the code could not be sent: {e}"),
        ));
    }
    Ok(json(StatusCode::ACCEPTED, &wire::ChallengeSent::from(out.answer)))
}

#[utoipa::path(
    patch,
    path = "/v1/sessions/{id}/customer",
    operation_id = "updateCustomer",
    summary = "Intake: name and date of birth for the session's patient",
    request_body = wire::CustomerPatch,
    responses((status = 200, description = "OK", body = wire::ResumeContext))
)]
pub async fn customer(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::CustomerPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let ctx =
        with_store(&state, &caller, move |s, t, a, now| continuity::update_customer(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::OK, &wire::ResumeContext::from(ctx)))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/turns",
    operation_id = "appendTurn",
    summary = "Append a turn to the conversation",
    request_body = wire::Turn,
    responses((status = 201, description = "OK", body = wire::Ack), (status = 202, description = "Held for staff review, not written", body = wire::Ack))
)]
pub async fn turn(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::Turn>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let ack = with_store(&state, &caller, move |s, t, a, now| continuity::append_turn(s, t, a, &id, &req, now)).await?;
    let status = if ack.held == Some(true) { StatusCode::ACCEPTED } else { StatusCode::CREATED };
    Ok(json(status, &wire::Ack::from(ack)))
}

#[utoipa::path(
    put,
    path = "/v1/sessions/{id}/state/{key}",
    operation_id = "putState",
    summary = "Set a conversation state key (expires with the tenant's state TTL)",
    request_body = wire::StateValue,
    responses((status = 200, description = "OK", body = wire::Ack))
)]
pub async fn put_state(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<wire::StateValue>,
) -> Result<HttpResponse, ApiError> {
    let (id, key) = path.into_inner();
    let id = session_id(&id)?;
    let req = body.into_inner().into();
    let ack =
        with_store(&state, &caller, move |s, t, a, now| continuity::put_state(s, t, a, &id, &key, &req, now)).await?;
    Ok(json(StatusCode::OK, &wire::Ack::from(ack)))
}

#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}/state/{key}",
    operation_id = "deleteState",
    summary = "Remove a conversation state key",
    responses((status = 200, description = "OK", body = wire::Ack))
)]
pub async fn delete_state(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, key) = path.into_inner();
    let id = session_id(&id)?;
    let ack =
        with_store(&state, &caller, move |s, t, a, now| continuity::delete_state(s, t, a, &id, &key, now)).await?;
    Ok(json(StatusCode::OK, &wire::Ack::from(ack)))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/end",
    operation_id = "endSession",
    summary = "End the session with how it ended",
    request_body = wire::End,
    responses((status = 200, description = "OK", body = wire::Ack))
)]
pub async fn end(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::End>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    // The holdout's roll, uniform in 0..100 (the bias of 65,536 mod 100 is under 0.1%).
    let roll = crypto::random_bytes::<2>().map(|b| (u16::from_be_bytes(b) % 100) as u8).unwrap_or(0);
    let ack =
        with_store(&state, &caller, move |s, t, a, now| continuity::end_session(s, t, a, &id, &req, roll, now)).await?;
    let reason = match ack.ended_reason.as_deref() {
        Some("completed") => "completed",
        Some("dropped") => "dropped",
        _ => "transferred",
    };
    let interrupted = if ack.interrupted == Some(true) { "true" } else { "false" };
    crate::metrics::get()
        .session_ends
        .get_or_create(&crate::metrics::EndLabels { channel: caller.channel.as_str(), reason, interrupted })
        .inc();
    Ok(json(StatusCode::OK, &wire::Ack::from(ack)))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/resume-token",
    operation_id = "issueResumeToken",
    summary = "A single-use resume token for the confirmed patient (a link in a text or email)",
    responses((status = 201, description = "OK", body = wire::Ack))
)]
pub async fn resume_token(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let ack =
        with_store(&state, &caller, move |s, t, a, now| continuity::issue_resume_token(s, t, a, &id, now)).await?;
    Ok(json(StatusCode::CREATED, &wire::Ack::from(ack)))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/start-fresh",
    operation_id = "startFresh",
    summary = "Close the patient's conversation and open a new one",
    responses((status = 200, description = "OK", body = wire::ResumeContext))
)]
pub async fn start_fresh(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let ctx = with_store(&state, &caller, move |s, t, a, now| continuity::start_fresh(s, t, a, &id, now)).await?;
    Ok(json(StatusCode::OK, &wire::ResumeContext::from(ctx)))
}

/// GDPR Art. 17 for the confirmed patient of this session: their key is
/// shredded and their data deleted; answers with the signed receipt.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/erasure",
    operation_id = "requestErasure",
    summary = "GDPR Art. 17 for the confirmed patient: key shredded, data deleted, signed receipt",
    responses((status = 200, description = "OK", body = wire::ErasureReceipt))
)]
pub async fn erasure(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let state = state.clone();
    let tenant = caller.tenant_id.clone();
    let actor = Actor { serial: caller.serial.clone(), channel: caller.channel, peer: caller.peer };
    let receipt = web::block(move || -> Result<String, ApiError> {
        let handle = state.tenants.get(&tenant).map_err(|e| ApiError::internal(&e))?;
        let mut store = handle.store.lock().map_err(|_| ApiError::internal(&"tenant store lock poisoned"))?;
        let now = state.clock.now_ms();
        let customer = continuity::erasure_target(&mut store, &handle.settings, &actor, &id, now)?;
        let peer = actor.peer.map(|p| p.ip().to_string());
        let by = crate::erasure::Requester {
            audit: store::AuditEntry {
                actor_kind: audit::ActorKind::Channel,
                actor: &actor.serial,
                channel: Some(actor.channel.as_str()),
                action: audit::Action::CustomerErase,
                tenant_id: None,
                customer_id: None,
                session_id: Some(id.as_str()),
                peer: peer.as_deref(),
                outcome: audit::Outcome::Ok,
                reason: None,
            },
            label: format!("channel:{}:{}", actor.channel, actor.serial),
        };
        let receipt = crate::erasure::erase(&mut store, state.tenants.system(), &tenant, &customer, &by, now)
            .map_err(|e| ApiError::internal(&e))?;
        state.tenants.erased(&tenant);
        // The patients' requests queue lists it, answered at once.
        let rid = store::ids::RequestId::generate().to_string();
        let mut record = || -> Result<(), store::StoreError> {
            let tx = store.transaction()?;
            let by = format!("channel:{}", actor.serial);
            tx.insert_request(&rid, customer.as_str(), "erasure", "api", now, store::rights_due(now), None, &by)?;
            tx.complete_request(&rid, None, Some(&store::receipt_id(&receipt)), now)?;
            tx.commit()
        };
        record().map_err(|e| ApiError::store(&e))?;
        Ok(receipt)
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(HttpResponse::Ok().content_type("application/json").body(receipt))
}

/// GDPR Art. 15/20: the confirmed patient's data, as far as this channel may receive it.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/export",
    operation_id = "exportPatient",
    summary = "GDPR Art. 15/20 for the confirmed patient, as far as this channel may receive it",
    responses((status = 200, description = "OK", body = wire::PatientExport))
)]
pub async fn export(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let doc = with_store(&state, &caller, move |s, t, a, now| continuity::export(s, t, a, &id, now)).await?;
    Ok(json(StatusCode::OK, &doc))
}
