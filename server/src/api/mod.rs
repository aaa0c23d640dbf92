//! The HTTP API (actix-web). Every route sits behind mutual TLS; the tenant
//! and channel of a request come from its client certificate through
//! [`Caller`], never from the request.

mod caller;
mod channels;
mod error;
mod health;
mod middleware;
mod openapi;
mod openapi_channels;
mod sessions;

use actix_web::web;

pub use caller::{Caller, ConnInfo};
pub use error::ApiError;

use crate::app::AppState;
pub use middleware::{RequestId, enforce_body_limit, enforce_deadline, log_requests};

/// Largest request body accepted (the raw RFC 5322 route will raise its own).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/health")
            .route(web::get().to(health::health))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions")
            .route(web::post().to(sessions::open))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/context")
            .route(web::get().to(sessions::context))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/identity/confirm")
            .route(web::post().to(sessions::confirm))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/identity/challenge")
            .route(web::post().to(sessions::challenge))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/customer")
            .route(web::patch().to(sessions::customer))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/turns")
            .route(web::post().to(sessions::turn))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/state/{key}")
            .route(web::put().to(sessions::put_state))
            .route(web::delete().to(sessions::delete_state))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/end")
            .route(web::post().to(sessions::end))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/resume-token")
            .route(web::post().to(sessions::resume_token))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/start-fresh")
            .route(web::post().to(sessions::start_fresh))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/erasure")
            .route(web::post().to(sessions::erasure))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/export")
            .route(web::get().to(sessions::export))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/appointments")
            .route(web::post().to(channels::book))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/appointments/{id}")
            .route(web::patch().to(channels::change))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/callbacks")
            .route(web::post().to(channels::request_callback))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/callbacks/claim")
            .route(web::post().to(channels::claim_callback))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/email/inbound")
            .route(web::post().to(channels::inbound))
            .default_service(web::to(error::method_not_allowed)),
    )
    .service(
        web::resource("/v1/sessions/{id}/email/outbound")
            .route(web::post().to(channels::outbound))
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
