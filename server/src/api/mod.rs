//! The HTTP API (actix-web). Every route sits behind mutual TLS; the tenant
//! and channel of a request come from its client certificate through
//! [`Caller`], never from the request.

mod caller;
mod error;
mod health;
mod middleware;
mod openapi;

use std::sync::Arc;
use std::time::Instant;

use actix_web::web;

pub use caller::{Caller, ConnInfo};
pub use error::ApiError;
pub use middleware::{RequestId, enforce_body_limit, log_requests};

use crate::tls::{CertRegistry, TlsCounters};

/// Largest request body accepted (the raw RFC 5322 route will raise its own).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// Shared, thread-safe server state handed to every worker.
pub struct AppState {
    pub registry: Arc<CertRegistry>,
    pub counters: Arc<TlsCounters>,
    pub started: Instant,
    pub body_limit: usize,
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/health")
            .route(web::get().to(health::health))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi::openapi))
            .default_service(web::to(error::method_not_allowed)),
    );
}

/// JSON body parsing with our limit and our error shape.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| ApiError::from_json(&err).into())
}

pub use error::not_found;
