//! The one HTTP error boundary: every failure becomes
//! `{"error": "<stable_snake_case_code>", "message": "..."}` with the right
//! status. Internal causes are logged on the server and never sent.

use std::fmt;

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// 429 with `Retry-After`.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError { retry_after: Some(retry_after_secs), ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message) }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the request body exceeds {limit} bytes"))
    }

    /// A server-side failure: the cause is logged here, the client learns nothing of it.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the request was not applied")
    }

    /// A store failure: 507 `storage_full` when the disk is full (nothing
    /// was applied; it clears when space returns), else internal.
    pub fn store(e: &store::StoreError) -> Self {
        if matches!(e, store::StoreError::CheckpointBusy) {
            tracing::warn!("a reader held the store; the WAL was not truncated yet");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_busy",
                "applied, but the write-ahead log could not be truncated while another reader holds the store; retry",
            );
        }
        if matches!(e, store::StoreError::NotReplicated(_)) {
            tracing::warn!(cause = %e, "a commit was not acknowledged: the cluster's log did not take it");
            return Self::not_durable();
        }
        if e.is_disk_full() {
            tracing::error!(cause = %e, "disk full: request refused");
            Self::storage_full()
        } else {
            Self::internal(e)
        }
    }

    /// 503 with `Retry-After: 1`: the tenant has too many requests waiting.
    pub fn busy() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "tenant_busy",
                "too many requests are waiting for this clinic; retry",
            )
        }
    }

    /// Cluster mode: the commit log did not take the commit (this node lost
    /// the tenant, or PostgreSQL stayed away); not acknowledged, retry.
    pub fn not_durable() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_durable",
                "the request was not made durable on the cluster and is not acknowledged; retry",
            )
        }
    }

    pub fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the server's disk is full; the request was not applied",
        )
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn from_json(err: &JsonPayloadError) -> Self {
        match err {
            JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                Self::too_large(*limit)
            }
            JsonPayloadError::ContentType => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send application/json")
            }
            // serde quotes offending values between backticks; they may be PHI
            // (a phone number sent as a number), so they are cut out.
            JsonPayloadError::Deserialize(e) => Self::bad_request("invalid_json", redact_values(&e.to_string())),
            _ => Self::bad_request("invalid_body", "the request body could not be read"),
        }
    }
}

/// Replaces every `quoted` and "quoted" value in a parser message with
/// `…`: serde writes field names between backticks and offending strings
/// between double quotes (`invalid type: string "4155550100"`), and either
/// may be PHI (L3).
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside: Option<char> = None;
    for ch in message.chars() {
        match inside {
            Some(q) if ch == q => inside = None,
            Some(_) => {}
            None if ch == '`' || ch == '"' => {
                out.push(ch);
                out.push('…');
                out.push(ch);
                inside = Some(ch);
            }
            None => out.push(ch),
        }
    }
    out
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        res.json(super::wire::ErrorBody { error: self.code, message: &self.message })
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match &e {
            crate::Error::Store(s) => Self::store(s),
            _ => Self::internal(&e),
        }
    }
}

/// Fallback for unknown paths.
pub async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").error_response()
}

/// Fallback for a known path with another method.
/// 405 with the `Allow` header (RFC 9110 15.5.6), the methods read from
/// the OpenAPI document so the two cannot disagree.
pub async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    let mut res =
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
            .error_response();
    if let Some(pattern) = req.match_pattern()
        && let Some(methods) = super::allowed_methods(&pattern)
        && let Ok(v) = actix_web::http::header::HeaderValue::from_str(&methods)
    {
        res.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    res
}

/// The one place a domain refusal becomes an HTTP status.
impl From<continuity::ContinuityError> for ApiError {
    fn from(e: continuity::ContinuityError) -> Self {
        match e {
            continuity::ContinuityError::Invalid { code, message } => ApiError::bad_request(code, message),
            continuity::ContinuityError::Missing { code, message } => {
                ApiError::new(StatusCode::NOT_FOUND, code, message)
            }
            continuity::ContinuityError::Refused { code, message } => ApiError::forbidden(code, message),
            continuity::ContinuityError::NotProven { code, message } => ApiError::unauthorized(code, message),
            continuity::ContinuityError::WrongState { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            continuity::ContinuityError::TooLarge { code, message } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
            }
            continuity::ContinuityError::Store(e) => ApiError::store(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_messages_lose_their_values() {
        let raw = "invalid type: integer `4155550100`, expected a string at line 1 column 36";
        assert_eq!(redact_values(raw), "invalid type: integer `…`, expected a string at line 1 column 36");
        assert_eq!(
            redact_values("unknown field `channel`, expected one of `identifiers`"),
            "unknown field `…`, expected one of `…`"
        );
        assert_eq!(redact_values("no quotes"), "no quotes");
        assert_eq!(
            redact_values("invalid type: string \"4155550100\", expected struct Offered at line 1 column 30"),
            "invalid type: string \"…\", expected struct Offered at line 1 column 30"
        );
    }
}
