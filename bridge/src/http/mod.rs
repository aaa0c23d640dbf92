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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// The last check of every route's link to the core, and when (L6).
    pub health: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
    /// Requests in flight per source address (L6).
    pub in_flight: InFlight,
}

/// Requests in flight per source address, capped: one address holding
/// many slow requests (trickled bodies) holds no more than the cap, and
/// everyone else is served (L6 of the second review).
pub struct InFlight {
    cap: usize,
    by_source: std::sync::Mutex<HashMap<std::net::IpAddr, usize>>,
}

/// One request's place; given back when dropped.
pub struct Slot<'a> {
    owner: &'a InFlight,
    source: std::net::IpAddr,
}

impl InFlight {
    pub fn new(cap: usize) -> Self {
        InFlight { cap, by_source: std::sync::Mutex::new(HashMap::new()) }
    }

    /// A place for a request from `source`, or `None` past the cap.
    pub fn enter(&self, source: std::net::IpAddr) -> Option<Slot<'_>> {
        let mut m = self.by_source.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(source).or_default();
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Slot { owner: self, source })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut m = self.owner.by_source.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.source);
            }
        }
    }
}

/// Middleware on the webhook listener: a source address past its cap of
/// requests in flight gets 503 `too_many_requests_in_flight` at once.
pub async fn cap(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let bridge = req.app_data::<web::Data<Arc<Bridge>>>().cloned();
    let source = req.peer_addr().map(|a| a.ip());
    let slot = match (&bridge, source) {
        (Some(b), Some(ip)) => match b.in_flight.enter(ip) {
            Some(slot) => Some(slot),
            None => {
                tracing::warn!("a source address is past its requests in flight; refused");
                let resp = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_requests_in_flight",
                    "this address has too many requests in flight",
                );
                return Ok(req.into_response(resp));
            }
        },
        _ => None,
    };
    let res = next.call(req).await.map(|r| r.map_into_boxed_body());
    drop(slot);
    res
}

impl Bridge {
    /// Where a route's texts go out, if it has a Twilio route for them.
    pub fn texts<'a>(&'a self, route: &LiveRoute, caller: Option<&'a str>) -> Option<crate::texts::Texts<'a>> {
        let twilio = self.routes.get(route.cfg.sms_via.as_deref()?)?;
        Some(crate::texts::Texts { platform: &self.platform, twilio, caller })
    }

    /// After an interrupted call: the core's resume link, texted to the
    /// number that called through the route's texts (a Twilio route texts
    /// through its own account). Logged by outcome, never the number or link.
    pub async fn text_recovery(&self, route: &LiveRoute, number: Option<&str>, link: Option<String>) {
        let Some(link) = link else { return };
        let texts = match route.cfg.platform {
            crate::config::Platform::Twilio => self.routes.get(&route.cfg.name).map(|twilio| crate::texts::Texts {
                platform: &self.platform,
                twilio,
                caller: number,
            }),
            _ => self.texts(route, number),
        };
        let (Some(texts), Some(to)) = (texts, number) else {
            tracing::warn!(route = route.cfg.name, "recovery link not texted: no texts route (sms_via) or no number");
            return;
        };
        match texts.send(to, &crate::texts::recovery(&link)).await {
            Ok(()) => tracing::info!(route = route.cfg.name, "recovery link texted"),
            Err(code) => tracing::warn!(route = route.cfg.name, code, "recovery link not texted"),
        }
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

/// How long a webhook's whole body may take to arrive (L6): a trickled
/// body holds a connection no longer than this.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// How long one check of the links to the core answers `/healthz`.
const HEALTH_FOR: Duration = Duration::from_secs(5);

/// The body, refused past the limit with 413 before it is all read, and
/// with 408 when it has not all arrived within [`BODY_DEADLINE`].
async fn body(payload: web::Payload, limit: usize) -> Result<web::Bytes, HttpResponse> {
    match tokio::time::timeout(BODY_DEADLINE, read_body(payload, limit)).await {
        Ok(read) => read,
        Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the body did not arrive in time")),
    }
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, HttpResponse> {
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

/// `GET /healthz` on the public listener (L6): one word, no route names
/// (they name the clinic's accounts), and at most one round of checks to
/// the core per [`HEALTH_FOR`] however often it is asked; a route whose
/// link is down is named in the log.
async fn healthz(bridge: web::Data<Arc<Bridge>>) -> HttpResponse {
    let mut last = bridge.health.lock().await;
    let all = match *last {
        Some((at, ok)) if at.elapsed() < HEALTH_FOR => ok,
        _ => {
            let routes = &bridge.routes;
            let checks = routes.iter().map(|(n, r)| async move { (n.as_str(), r.core.health().await.err()) });
            let results = futures_util::future::join_all(checks).await;
            for (name, e) in results.iter().filter_map(|(n, e)| e.as_ref().map(|e| (n, e))) {
                // core_unreachable, core_wire_mismatch, or the core's refusal code.
                tracing::warn!(route = name, cause = e.code(), "health: the route's link to the core is down");
            }
            let ok = results.iter().all(|(_, e)| e.is_none());
            *last = Some((std::time::Instant::now(), ok));
            ok
        }
    };
    let status = if all { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).json(json!({"status": if all { "ok" } else { "degraded" }}))
}
