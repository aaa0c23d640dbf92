//! Channel routes: appointments, callbacks and email (inbound raw messages,
//! outbound composition and delivery). Same shape as the session routes:
//! tenant and channel from the certificate, the operation on the blocking
//! pool, refusals in the JSON error shape.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::sessions::{json, session_id, with_store};
use super::{ApiError, AppState, Caller};
use continuity::channels::{self, email, limits};

pub async fn book(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<channels::BookRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner();
    let view = with_store(&state, &caller, move |s, t, a, now| channels::book(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::CREATED, &view))
}

fn appointment_id(raw: &str) -> Result<String, ApiError> {
    let ok = raw.strip_prefix("apt_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "appointment_not_found", "no such appointment for this patient"))
    }
}

pub async fn change(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<channels::ChangeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&path)?;
    let req = body.into_inner();
    let view = with_store(&state, &caller, move |s, t, a, now| channels::change(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::OK, &view))
}

pub async fn request_callback(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<channels::CallbackRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner();
    let view = with_store(&state, &caller, move |s, t, a, now| channels::request(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::CREATED, &view))
}

/// 200 with the claim, or 204 when no callback is due.
pub async fn claim_callback(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let claim = with_store(&state, &caller, channels::claim).await?;
    Ok(match claim {
        Some(c) => json(StatusCode::OK, &c),
        None => HttpResponse::NoContent().finish(),
    })
}

/// The raw message, read up to the limit (a chunked body has no
/// Content-Length for the middleware to refuse early).
pub async fn inbound(
    caller: Caller,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let raw = payload
        .to_bytes_limited(limits::EMAIL_MESSAGE_BYTES)
        .await
        .map_err(|_| ApiError::too_large(limits::EMAIL_MESSAGE_BYTES))?
        .map_err(|_| ApiError::bad_request("invalid_body", "the request body could not be read"))?;
    // Parsed on the blocking pool, before the tenant's writer is involved (L1).
    let parsed = web::block(move || email::parse(raw.to_vec()))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(ApiError::from)?;
    let result = with_store(&state, &caller, move |s, t, a, now| email::receive(s, t, a, parsed, now)).await?;
    let status = if result.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok(json(status, &result))
}

#[derive(Serialize)]
struct Outbound {
    message_id: String,
    to: String,
    /// `smtp` (sent through the tenant's relay) or `gateway` (in `raw`, for
    /// the caller's email gateway to send).
    delivery: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
}

pub async fn outbound(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<email::OutboundRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner();
    let session = id.clone();
    let composed = with_store(&state, &caller, move |s, t, a, now| email::compose(s, t, a, &id, &req, now)).await?;
    let Some(smtp) = &composed.smtp else {
        let raw = String::from_utf8_lossy(&composed.raw).into_owned();
        let out = Outbound { message_id: composed.message_id, to: composed.to, delivery: "gateway", raw: Some(raw) };
        return Ok(json(StatusCode::CREATED, &out));
    };
    let sent = crate::smtp::send(smtp, &composed.from, &composed.to, &composed.raw).await;
    let failure = sent.as_ref().err().map(|e| e.to_string());
    let record = failure.clone();
    with_store(&state, &caller, move |s, _, a, now| email::record_delivery(s, a, &session, record.as_deref(), now))
        .await?;
    if let Some(reason) = failure {
        // The reason names the relay and the kind of failure only (never the
        // relay's own text, which can quote the recipient).
        tracing::warn!(failure = %reason, "the SMTP relay did not take the message");
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "email_send_failed",
            format!("the message was composed but not delivered: {reason}"),
        ));
    }
    let out = Outbound { message_id: composed.message_id, to: composed.to, delivery: "smtp", raw: None };
    Ok(json(StatusCode::CREATED, &out))
}
