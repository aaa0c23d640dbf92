//! The bridge's Prometheus metrics (`metrics_listen` in bridge.toml, plain
//! HTTP `GET /metrics`): webhooks answered and their latency by platform
//! and status, and verifications refused by platform and reason. Labels
//! are the bounded names the code gives; never a route's number, a caller
//! or anything a platform sent.

use std::net::SocketAddr;
use std::sync::LazyLock;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    platform: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Platform {
    platform: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refused {
    platform: &'static str,
    reason: &'static str,
}

struct Metrics {
    registry: Registry,
    webhooks: Family<Answered, Counter>,
    latency: Family<Platform, Histogram, fn() -> Histogram>,
    refused: Family<Refused, Counter>,
}

fn histogram() -> Histogram {
    // 1 ms to 16 s: a webhook waits on the core and sometimes a platform's API.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn metrics() -> &'static Metrics {
    static M: LazyLock<Metrics> = LazyLock::new(|| {
        let mut registry = Registry::with_prefix("throughline_bridge");
        let webhooks = Family::<Answered, Counter>::default();
        registry.register("webhooks", "Webhooks answered, by platform and status", webhooks.clone());
        let latency: Family<Platform, Histogram, fn() -> Histogram> = Family::new_with_constructor(histogram);
        registry.register_with_unit(
            "webhook_duration",
            "Time to answer a webhook, by platform",
            Unit::Seconds,
            latency.clone(),
        );
        let refused = Family::<Refused, Counter>::default();
        registry.register(
            "verifications_failed",
            "Webhooks refused by the platform's signature or secret check, by platform and reason",
            refused.clone(),
        );
        // Every platform and reason starts at zero, so `increase()` sees the first refusal.
        for platform in ["vapi", "retell", "twilio", "chatwoot"] {
            for reason in ["missing", "mismatch", "stale"] {
                let _ = refused.get_or_create(&Refused { platform, reason });
            }
        }
        Metrics { registry, webhooks, latency, refused }
    });
    &M
}

/// The platform a path belongs to (its first segment), from a closed set.
fn platform_of(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next().unwrap_or("") {
        "vapi" => "vapi",
        "retell" => "retell",
        "twilio" => "twilio",
        "chatwoot" => "chatwoot",
        "healthz" => "healthz",
        _ => "other",
    }
}

/// A refused verification.
pub fn verification_failed(platform: &'static str, why: crate::sig::Refusal) {
    let reason = match why {
        crate::sig::Refusal::Missing => "missing",
        crate::sig::Refusal::Mismatch => "mismatch",
        crate::sig::Refusal::Stale => "stale",
    };
    metrics().refused.get_or_create(&Refused { platform, reason }).inc();
}

/// Middleware on the webhook listener: counts and times every answer.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let platform = platform_of(req.path());
    let res = next.call(req).await?.map_into_boxed_body();
    let m = metrics();
    m.webhooks.get_or_create(&Answered { platform, status: res.status().as_u16() }).inc();
    m.latency.get_or_create(&Platform { platform }).observe(started.elapsed().as_secs_f64());
    Ok(res)
}

/// The text exposition (OpenMetrics 1.0).
pub fn encode() -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &metrics().registry);
    out
}

/// The metrics listener, for the caller to spawn.
pub fn serve(listen: SocketAddr) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/metrics",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
                        .body(encode())
                }),
            )
            .default_service(web::to(|| async { HttpResponse::NotFound().body("only /metrics here\n") }))
    })
    .workers(1)
    .shutdown_timeout(2)
    .bind(listen)?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((server.run(), addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_come_from_a_closed_set() {
        assert_eq!(platform_of("/vapi/front-desk"), "vapi");
        assert_eq!(platform_of("/twilio/main/voice"), "twilio");
        assert_eq!(platform_of("/+14155550100"), "other");
        verification_failed("retell", crate::sig::Refusal::Stale);
        assert!(
            encode().contains("throughline_bridge_verifications_failed_total{platform=\"retell\",reason=\"stale\"} 1")
        );
    }
}
