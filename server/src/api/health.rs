//! `GET /v1/health`: liveness, and what the presented certificate is bound to
//! (so an integrator can check their certificate in one call).

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};

use super::{AppState, Caller};

#[utoipa::path(
    get,
    path = "/v1/health",
    operation_id = "health",
    summary = "Liveness, and what the presented certificate is bound to",
    responses((status = 200, description = "Serving", body = super::wire::Health))
)]
pub async fn health(caller: Caller, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(super::wire::Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        wire: super::WIRE,
        tenant: &caller.tenant_name,
        channel: caller.channel.as_str(),
        certificate_serial: &caller.serial,
        uptime_s: state.started.elapsed().as_secs(),
        refused_certificates: state.counters.refused_certificates.load(Ordering::Relaxed),
    })
}
