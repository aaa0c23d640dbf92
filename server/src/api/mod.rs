//! The HTTP API (actix-web). Every route sits behind mutual TLS; the tenant
//! and channel of a request come from its client certificate through
//! [`Caller`], never from the request.

mod caller;
mod channels;
mod error;
mod health;
mod middleware;
mod openapi;
mod sessions;
pub mod wire;

use actix_web::web;

pub use caller::{Caller, ConnInfo};
pub use error::ApiError;

use crate::app::AppState;
pub use middleware::{RequestId, enforce_body_limit, enforce_deadline, log_requests, wire_handshake};

/// The wire contract this core speaks: bumped when a change would break a
/// caller built against the previous one (a field removed or retyped, a
/// route gone). Additions do not bump it.
pub const WIRE: u32 = 1;
/// The header both sides name their wire in.
pub const WIRE_HEADER: &str = "throughline-wire";

/// Largest request body accepted (the raw RFC 5322 route will raise its own).
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// Declares the route table once: [`ROUTES`] (each path and its methods)
/// and [`routes`] (actix's registration, with a 405 and its `Allow` for
/// any other method) come from the same lines, and the OpenAPI test
/// compares the table with the document both ways.
macro_rules! route_table {
    ($( $path:literal => { $( $method:ident : $handler:path ),+ $(,)? } ),+ $(,)?) => {
        /// Every route: its path pattern and the methods it takes (lowercase).
        pub const ROUTES: &[(&str, &[&str])] = &[ $( ($path, &[ $( stringify!($method) ),+ ]) ),+ ];

        /// Registers every route.
        pub fn routes(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $( .route(web::$method().to($handler)) )+
                        .default_service(web::to(error::method_not_allowed)),
                );
            )+
        }
    };
}

route_table! {
    "/v1/health" => { get: health::health },
    "/v1/sessions" => { post: sessions::open },
    "/v1/sessions/{id}/context" => { get: sessions::context },
    "/v1/sessions/{id}/identity/confirm" => { post: sessions::confirm },
    "/v1/sessions/{id}/identity/challenge" => { post: sessions::challenge },
    "/v1/sessions/{id}/customer" => { patch: sessions::customer },
    "/v1/sessions/{id}/turns" => { post: sessions::turn },
    "/v1/sessions/{id}/state/{key}" => { put: sessions::put_state, delete: sessions::delete_state },
    "/v1/sessions/{id}/end" => { post: sessions::end },
    "/v1/sessions/{id}/resume-token" => { post: sessions::resume_token },
    "/v1/sessions/{id}/start-fresh" => { post: sessions::start_fresh },
    "/v1/sessions/{id}/erasure" => { post: sessions::erasure },
    "/v1/sessions/{id}/export" => { get: sessions::export },
    "/v1/sessions/{id}/appointments" => { post: channels::book },
    "/v1/appointments/{id}" => { patch: channels::change },
    "/v1/sessions/{id}/callbacks" => { post: channels::request_callback },
    "/v1/callbacks/claim" => { post: channels::claim_callback },
    "/v1/email/inbound" => { post: channels::inbound },
    "/v1/sessions/{id}/email/outbound" => { post: channels::outbound },
    "/openapi.json" => { get: openapi::openapi },
}

/// The methods a route takes, for `Allow` ("DELETE, PUT").
pub fn allowed_methods(pattern: &str) -> Option<String> {
    let (_, methods) = ROUTES.iter().find(|(p, _)| *p == pattern)?;
    let mut upper: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    upper.sort();
    Some(upper.join(", "))
}

/// JSON body parsing with our limit and our error shape.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| ApiError::from_json(&err).into())
}

pub use error::not_found;
pub use openapi::document as openapi_document;
