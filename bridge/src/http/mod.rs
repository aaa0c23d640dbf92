//! The webhook listener (actix-web): one path per platform and route, the
//! body read up to the configured limit, the platform's verification before
//! anything else, and `GET /healthz`. Logs name the route, the message kind
//! and the outcome, never a number, a name or a word anyone said.
// A handler's early answer is the response itself (`Result<_, HttpResponse>`);
// it is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod chatwoot;
mod retell;
mod twilio;
mod vapi;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use serde_json::json;

use crate::config::Platform;
use crate::load::LiveRoute;
use crate::memo::Memo;

/// Everything a request handler reads.
pub struct Bridge {
    pub routes: HashMap<String, LiveRoute>,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub memo: Memo,
    /// The client for the platforms' own APIs (calls and texts out).
    pub platform: reqwest::Client,
}

impl Bridge {
    /// Where a route's texts go out, if it has a Twilio route for them.
    pub fn texts<'a>(&'a self, route: &LiveRoute, caller: Option<&'a str>) -> Option<crate::texts::Texts<'a>> {
        let twilio = self.routes.get(route.cfg.sms_via.as_deref()?)?;
        Some(crate::texts::Texts { platform: &self.platform, twilio, caller })
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A refusal in the bridge's own shape (the core's error shape).
pub fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": code, "message": message}))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/vapi/{route}", web::post().to(vapi::handle))
        .route("/vapi/{route}/tools", web::get().to(vapi::tools))
        .route("/retell/{route}", web::post().to(retell::handle))
        .route("/twilio/{route}/voice", web::post().to(twilio::voice))
        .route("/twilio/{route}/status", web::post().to(twilio::status))
        .route("/twilio/{route}/sms", web::post().to(twilio::sms))
        .route("/chatwoot/{route}", web::post().to(chatwoot::handle))
        .default_service(web::to(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such path on the bridge") }));
}

/// The route named in the path, if it is one of `platform`'s.
fn route<'a>(bridge: &'a Bridge, req: &HttpRequest, platform: Platform) -> Result<&'a LiveRoute, HttpResponse> {
    let name = req.match_info().get("route").unwrap_or_default();
    match bridge.routes.get(name) {
        Some(r) if r.cfg.platform == platform => Ok(r),
        _ => Err(error(StatusCode::NOT_FOUND, "unknown_route", "no route of that name for this platform")),
    }
}

/// A webhook's route (of `platform`, named in the path) and its body:
/// what every handler reads before it verifies anything.
async fn route_and_body<'a>(
    bridge: &'a Bridge,
    req: &HttpRequest,
    payload: web::Payload,
    platform: Platform,
) -> Result<(&'a LiveRoute, web::Bytes), HttpResponse> {
    let r = route(bridge, req, platform)?;
    let bytes = body(payload, bridge.max_body_bytes).await?;
    Ok((r, bytes))
}

/// The body, refused past the limit with 413 before it is all read.
async fn body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, HttpResponse> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| error(StatusCode::BAD_REQUEST, "unreadable_body", "the body could not be read"))?;
        if buf.len() + chunk.len() > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the body is larger than this bridge accepts",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn unauthorized(route: &str, platform: &'static str, why: crate::sig::Refusal) -> HttpResponse {
    tracing::warn!(route, platform, refusal = %why, "webhook refused");
    crate::metrics::verification_failed(platform, why);
    error(StatusCode::UNAUTHORIZED, "bad_signature", &why.to_string())
}

fn malformed(route: &str, platform: &str, why: &str) -> HttpResponse {
    tracing::warn!(route, platform, problem = why, "malformed webhook");
    error(StatusCode::BAD_REQUEST, "malformed_body", why)
}

async fn healthz(bridge: web::Data<Arc<Bridge>>) -> HttpResponse {
    let mut names: Vec<&String> = bridge.routes.keys().collect();
    names.sort();
    let routes = &bridge.routes;
    let checks = names.iter().map(|n| async move { (n.as_str(), routes[*n].core.health().await.is_ok()) });
    let results = futures_util::future::join_all(checks).await;
    let all = results.iter().all(|(_, ok)| *ok);
    let routes: serde_json::Map<String, serde_json::Value> =
        results.into_iter().map(|(n, ok)| (n.to_owned(), json!(if ok { "ok" } else { "core_unreachable" }))).collect();
    let status = if all { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).json(json!({"status": if all { "ok" } else { "degraded" }, "routes": routes}))
}
