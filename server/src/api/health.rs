//! `GET /v1/health`: liveness, and what the presented certificate is bound to
//! (so an integrator can check their certificate in one call).

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::{AppState, Caller};

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    version: &'static str,
    tenant: &'a str,
    channel: &'a str,
    certificate_serial: &'a str,
    uptime_s: u64,
    refused_certificates: u64,
}

pub async fn health(caller: Caller, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        tenant: &caller.tenant_name,
        channel: caller.channel.as_str(),
        certificate_serial: &caller.serial,
        uptime_s: state.started.elapsed().as_secs(),
        refused_certificates: state.counters.refused_certificates.load(Ordering::Relaxed),
    })
}
