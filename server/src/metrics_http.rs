//! The metrics listener (`serve --metrics-listen ADDR`): plain HTTP, one
//! route, `GET /metrics`. Nothing on it names a patient or a clinic (see
//! [`crate::metrics`]); still, bind it to loopback or the monitoring
//! network only (docs/OPERATIONS.md).

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::Error;
use crate::app::AppState;
use store::SystemStore;

/// The OpenMetrics 1.0 content type Prometheus negotiates.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const THIRTY_DAYS_MS: i64 = 30 * 24 * 3600 * 1000;

/// A bound metrics server, for the caller to spawn.
pub struct MetricsBound {
    pub server: actix_web::dev::Server,
    pub addr: SocketAddr,
}

pub fn bind(state: web::Data<AppState>, listen: SocketAddr, store_memory_mib: u64) -> Result<MetricsBound, Error> {
    crate::metrics::get().store_memory_limit.set(i64::try_from(store_memory_mib << 20).unwrap_or(i64::MAX));
    let listener =
        std::net::TcpListener::bind(listen).map_err(|source| Error::Io { path: listen.to_string().into(), source })?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(|| async { HttpResponse::NotFound().body("only /metrics here\n") }))
    })
    .client_request_timeout(Duration::from_secs(5))
    .shutdown_timeout(2)
    .workers(1)
    .listen(listener)
    .map_err(|source| Error::Io { path: listen.to_string().into(), source })?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok(MetricsBound { server: server.run(), addr })
}

async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let metrics = crate::metrics::get();
    if let Ok(n) = state.tenants.open_count() {
        metrics.open_tenants.set(n as i64);
    }
    HttpResponse::Ok().content_type(CONTENT_TYPE).insert_header(("cache-control", "no-store")).body(metrics.encode())
}

/// The CA's and the server certificate's expiry and the channel
/// certificates expiring soon, from the system store (the maintenance
/// thread, every minute).
pub fn observe_certificates(system: &SystemStore, now_ms: i64) {
    let metrics = crate::metrics::get();
    let gauge = |certificate: &'static str, not_after_ms: i64| {
        metrics.cert_expiry.get_or_create(&crate::metrics::CertLabels { certificate }).set(not_after_ms / 1000);
    };
    if let Ok(Some(pem)) = system.ca_cert_pem()
        && let Some(t) = crate::tls::not_after_ms(&pem)
    {
        gauge("ca", t);
    }
    if let Ok(Some(id)) = system.server_identity() {
        gauge("server", id.not_after);
    }
    if let Ok(rows) = system.certificates() {
        let live: Vec<_> = rows
            .iter()
            .filter(|c| c.channel != "server" && c.revoked_at.is_none() && !c.tenant_deleted && c.not_after > now_ms)
            .collect();
        metrics.client_certs_live.set(live.len() as i64);
        metrics.client_certs_expiring.set(live.iter().filter(|c| c.not_after - now_ms < THIRTY_DAYS_MS).count() as i64);
    }
}
