//! Channel routes: appointments, callbacks and email (inbound raw messages,
//! outbound composition and delivery). Same shape as the session routes:
//! tenant and channel from the certificate, the operation on the blocking
//! pool, refusals in the JSON error shape.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::sessions::{json, session_id, with_store};
use super::{ApiError, AppState, Caller, wire};
use continuity::channels::{self, email, limits};

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/appointments",
    operation_id = "bookAppointment",
    summary = "Book an appointment for the session's patient",
    request_body = wire::BookAppointment,
    responses((status = 201, description = "OK", body = wire::AppointmentOut))
)]
pub async fn book(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::BookAppointment>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let view = with_store(&state, &caller, move |s, t, a, now| channels::book(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::CREATED, &wire::AppointmentOut::from(view)))
}

fn appointment_id(raw: &str) -> Result<String, ApiError> {
    let ok = raw.strip_prefix("apt_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "appointment_not_found", "no such appointment for this patient"))
    }
}

#[utoipa::path(
    patch,
    path = "/v1/appointments/{id}",
    operation_id = "changeAppointment",
    summary = "Reschedule or cancel an appointment from any later session of the same patient",
    request_body = wire::ChangeAppointment,
    responses((status = 200, description = "OK", body = wire::AppointmentOut))
)]
pub async fn change(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::ChangeAppointment>,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&path)?;
    let req = body.into_inner().into();
    let view = with_store(&state, &caller, move |s, t, a, now| channels::change(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::OK, &wire::AppointmentOut::from(view)))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/callbacks",
    operation_id = "requestCallback",
    summary = "Ask for a call back in a window",
    request_body = wire::RequestCallback,
    responses((status = 201, description = "OK", body = wire::Callback))
)]
pub async fn request_callback(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::RequestCallback>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let view = with_store(&state, &caller, move |s, t, a, now| channels::request(s, t, a, &id, &req, now)).await?;
    Ok(json(StatusCode::CREATED, &wire::Callback::from(view)))
}

/// 200 with the claim, or 204 when no callback is due.
#[utoipa::path(
    post,
    path = "/v1/callbacks/claim",
    operation_id = "claimCallback",
    summary = "Voice only: claim the next due callback, exclusively, with a session opened for it",
    responses((status = 200, description = "OK", body = wire::CallbackClaim), (status = 204, description = "No callback is due"))
)]
pub async fn claim_callback(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let claim = with_store(&state, &caller, channels::claim).await?;
    Ok(match claim {
        Some(c) => json(StatusCode::OK, &wire::CallbackClaim::from(c)),
        None => HttpResponse::NoContent().finish(),
    })
}

/// The raw message, read up to the limit (a chunked body has no
/// Content-Length for the middleware to refuse early).
#[utoipa::path(
    post,
    path = "/v1/email/inbound",
    operation_id = "emailInbound",
    summary = "Email channel only: a raw RFC 5322 message as received, threaded into the sender's conversation (at most 10 MiB)",
    request_body(description = "The message, as received", content((Vec<u8> = "message/rfc822"), (Vec<u8> = "application/octet-stream"))),
    responses(
        (status = 200, description = "Delivered before: nothing new stored", body = wire::EmailInbound),
        (status = 201, description = "Recorded", body = wire::EmailInbound)
    )
)]
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
    Ok(json(status, &wire::EmailInbound::from(result)))
}

#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/email/outbound",
    operation_id = "emailOutbound",
    summary = "Compose an email to the session's patient and send it through the tenant's relay (or hand it back)",
    request_body = wire::EmailOutbound,
    responses((status = 201, description = "OK", body = wire::EmailOutboundResult))
)]
pub async fn outbound(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<wire::EmailOutbound>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let req = body.into_inner().into();
    let session = id.clone();
    let composed = with_store(&state, &caller, move |s, t, a, now| email::compose(s, t, a, &id, &req, now)).await?;
    let Some(smtp) = &composed.smtp else {
        let raw = String::from_utf8_lossy(&composed.raw).into_owned();
        let out = wire::EmailOutboundResult {
            message_id: composed.message_id,
            to: composed.to,
            delivery: "gateway",
            raw: Some(raw),
        };
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
    let out =
        wire::EmailOutboundResult { message_id: composed.message_id, to: composed.to, delivery: "smtp", raw: None };
    Ok(json(StatusCode::CREATED, &out))
}
