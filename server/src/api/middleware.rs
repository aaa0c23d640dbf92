//! Request middleware: a request id and one structured log line per request
//! (tenant, channel, serial, status, latency; never bodies, never PHI), and
//! the body-size limit enforced from `Content-Length` before any byte of the
//! body is read, and a deadline on the whole request, body included.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _, web};

use super::{ApiError, AppState, ConnInfo};

/// The id of one request, also returned as `x-request-id`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let serial = req.conn_data::<ConnInfo>().and_then(|c| c.identity.as_ref()).map(|i| i.serial.clone());
    let binding = match (&serial, req.app_data::<web::Data<AppState>>()) {
        (Some(s), Some(state)) => state.registry.get(s),
        _ => None,
    };
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let mut res = next.call(req).await?.map_into_boxed_body();
    let status = res.status().as_u16();
    let channel = binding.as_ref().map_or("-", |b| b.channel.as_str());
    crate::metrics::get().request("api", route.clone(), channel.to_owned(), status, started.elapsed().as_secs_f64());
    if let Some(code) = res.response().error().and_then(|e| e.as_error::<super::ApiError>()).map(|e| e.code())
        && (400..500).contains(&status)
    {
        crate::metrics::get().refusals.get_or_create(&crate::metrics::CodeLabels { code }).inc();
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    tracing::info!(
        request_id,
        method,
        route,
        status,
        latency_us = started.elapsed().as_micros() as u64,
        serial = serial.as_deref().unwrap_or("-"),
        tenant = binding.as_ref().and_then(|b| b.tenant_id.as_ref()).map(|t| t.as_str()).unwrap_or("-"),
        channel = binding.as_ref().map(|b| b.channel.as_str()).unwrap_or("-"),
        "request"
    );
    Ok(res)
}

/// The wire handshake (docs/UPGRADING.md): every answer says which wire
/// contract this core speaks in `Throughline-Wire`; a caller that names
/// another one (a bridge or agent from a build with a different contract)
/// is refused before anything is read or written. Callers that name none
/// (curl, an integrator's client) are served.
pub async fn wire_handshake(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let header = HeaderName::from_static(super::WIRE_HEADER);
    let theirs = req.headers().get(&header).map(|v| v.to_str().unwrap_or("").trim().to_owned());
    let mut res = match theirs {
        Some(v) if v != super::WIRE.to_string() => {
            let e = ApiError::bad_request(
                "wire_unsupported",
                format!(
                    "this core speaks wire {}; the caller speaks another: upgrade the older of the two (docs/UPGRADING.md)",
                    super::WIRE
                ),
            );
            req.into_response(e.error_response())
        }
        _ => next.call(req).await?.map_into_boxed_body(),
    };
    res.headers_mut().insert(header, HeaderValue::from(super::WIRE));
    Ok(res)
}

pub async fn enforce_body_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = if req.path() == "/v1/email/inbound" {
        // Raw messages carry attachments; the route enforces its own limit.
        continuity::channels::limits::EMAIL_MESSAGE_BYTES
    } else {
        req.app_data::<web::Data<AppState>>().map(|s| s.body_limit).unwrap_or(super::DEFAULT_BODY_LIMIT)
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        let response = ApiError::too_large(limit).error_response();
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A request, its body included, is read and answered within the server's
/// request deadline (`AppState::request_deadline`), else 408 and the
/// connection's work is dropped: actix's own timeout covers only the head,
/// so a certificate holder could trickle a 10 MiB body and hold a
/// connection for ever (L2). Handlers read their body before they queue any
/// write, so a cut request changed nothing.
pub async fn enforce_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let deadline = req.app_data::<web::Data<AppState>>().map(|s| s.request_deadline);
    let Some(deadline) = deadline else { return Ok(next.call(req).await?.map_into_boxed_body()) };
    match tokio::time::timeout(deadline, next.call(req)).await {
        Ok(res) => Ok(res?.map_into_boxed_body()),
        Err(_) => {
            tracing::warn!("request deadline passed; the request was dropped");
            // (The request itself went with the dropped future: the error
            // becomes the response, `{"error": "request_timeout"}`.)
            Err(ApiError::new(
                actix_web::http::StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request was not received and answered in time",
            )
            .into())
        }
    }
}
