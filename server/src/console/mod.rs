//! The staff console's shell (DESIGN.md, "Staff and the console"): a second
//! HTTPS listener without client certificates, server-rendered pages from
//! the `console` crate, server-side sessions in the system store, and every
//! page that shows a patient audited in the tenant's chain in the same
//! transaction as the read. Rules live in `console`; this reads the store.
// A refusal is the page to answer with (one per request, never on a hot path).
#![allow(clippy::result_large_err)]

mod access_review;
mod admin;
mod audit_event;
mod audit_export;
mod audit_pages;
mod email;
mod held;
mod oidc;
mod oidc_session;
mod outcomes;
mod patients;
mod requests;
mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::StatusCode, web};
use console::pages::{self, Message};

use crate::Error;
use crate::app::AppState;

/// What `serve --console-listen` asked for.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    pub listen: SocketAddr,
    /// The operator's certificate and key (PEM); the Throughline CA's server certificate otherwise.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Reverse proxies in front of the console whose `X-Forwarded-For` is
    /// believed (L9); none by default, and then the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The address a request comes from: the TCP peer, or, when the peer is
/// one of the operator's trusted proxies, the right-most `X-Forwarded-For`
/// address that is not one (each proxy appends the address it saw). The
/// per-source sign-in lockout and the audit records' peer use it, so a
/// proxy does not make every person one address; without trusted proxies
/// the header is anybody's word and is ignored.
pub fn forwarded_source<'a>(peer: IpAddr, trusted: &[IpAddr], forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            // Something unreadable from beyond the proxies: the proxy itself is the source.
            Err(_) => return peer,
        }
    }
    peer
}

/// [`forwarded_source`] for a console request.
pub(crate) fn source_ip(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req.app_data::<web::Data<ConsoleState>>().map(|c| c.trusted_proxies.clone()).unwrap_or_default();
    let xff = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    Some(forwarded_source(peer, &trusted, xff))
}

/// State of the console beyond the API's.
#[derive(Default)]
pub struct ConsoleState {
    /// Failed logins per source address (164.308(a)(5)(ii)(C)).
    sources: Mutex<HashMap<IpAddr, console::lockout::Source>>,
    /// Provider sign-ins in flight, by state (ten minutes at most).
    oidc_pending: Mutex<HashMap<String, oidc::Pending>>,
    /// See [`ConsoleOptions::trusted_proxies`].
    trusted_proxies: Vec<IpAddr>,
    /// Provider identities waiting for the account holder's own password
    /// and TOTP before they are linked to an existing account (N5), by the
    /// token in the browser's link cookie (ten minutes at most).
    oidc_links: Mutex<HashMap<String, oidc_session::PendingLink>>,
}

/// A bound console listener.
pub struct ConsoleBound {
    pub server: actix_web::dev::Server,
    pub addr: SocketAddr,
}

/// Binds the console's listener on the API's shared state.
pub fn bind(
    state: web::Data<AppState>,
    opts: &ConsoleOptions,
    tls: rustls::ServerConfig,
    workers: usize,
) -> Result<ConsoleBound, Error> {
    let console_state =
        web::Data::new(ConsoleState { trusted_proxies: opts.trusted_proxies.clone(), ..ConsoleState::default() });
    let listener = std::net::TcpListener::bind(opts.listen)
        .map_err(|source| Error::Io { path: opts.listen.to_string().into(), source })?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(console_state.clone())
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .configure(routes)
            .default_service(web::to(not_found))
            .wrap(from_fn(guard))
    })
    .client_request_timeout(Duration::from_secs(10))
    .keep_alive(Duration::from_secs(30))
    .shutdown_timeout(10)
    .workers(workers)
    .listen_rustls_0_23(listener, tls)
    .map_err(|source| Error::Io { path: opts.listen.to_string().into(), source })?;
    let addr = server.addrs().first().copied().unwrap_or(opts.listen);
    Ok(ConsoleBound { server: server.run(), addr })
}

/// Every route of the console (the header test walks this list).
pub const ROUTES: [(&str, &str); 36] = [
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("POST", "/session/extend"),
    ("GET", "/oidc/start/{tenant}"),
    ("GET", "/oidc/callback"),
    ("GET", "/"),
    ("GET", "/search"),
    ("POST", "/search"),
    ("GET", "/patients/{id}"),
    ("POST", "/patients/{id}/break-glass"),
    ("GET", "/queue"),
    ("GET", "/threads/{id}"),
    ("POST", "/threads/{id}/reply"),
    ("GET", "/held/{id}"),
    ("POST", "/held/{id}/release"),
    ("POST", "/held/{id}/discard"),
    ("GET", "/reviews"),
    ("POST", "/reviews/{id}"),
    ("GET", "/staff"),
    ("GET", "/outcomes"),
    ("GET", "/audit"),
    ("POST", "/audit"),
    ("GET", "/audit/patients/{id}"),
    ("GET", "/audit/staff/{id}"),
    ("GET", "/audit/logins"),
    ("GET", "/audit/checkpoint"),
    ("POST", "/audit/verify"),
    ("GET", "/audit/access-review"),
    ("POST", "/audit/access-review"),
    ("GET", "/requests"),
    ("POST", "/requests"),
    ("POST", "/requests/{id}/export"),
    ("POST", "/requests/{id}/clinical"),
    ("POST", "/requests/{id}/approve"),
    ("GET", "/assets/{file}"),
];

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(session::login_page))
        .route("/login", web::post().to(session::login))
        .route("/logout", web::post().to(session::logout))
        .route("/session/extend", web::post().to(session::extend))
        .route("/oidc/start/{tenant}", web::get().to(oidc::start))
        .route("/oidc/callback", web::get().to(oidc::callback))
        .route("/", web::get().to(admin::home))
        .route("/search", web::get().to(patients::search_page))
        .route("/search", web::post().to(patients::search))
        .route("/patients/{id}", web::get().to(patients::patient))
        .route("/patients/{id}/break-glass", web::post().to(patients::break_glass))
        .route("/queue", web::get().to(email::queue))
        .route("/threads/{id}", web::get().to(email::thread))
        .route("/threads/{id}/reply", web::post().to(email::reply))
        .route("/held/{id}", web::get().to(held::held))
        .route("/held/{id}/release", web::post().to(held::release))
        .route("/held/{id}/discard", web::post().to(held::discard))
        .route("/reviews", web::get().to(admin::reviews))
        .route("/reviews/{id}", web::post().to(admin::review))
        .route("/staff", web::get().to(admin::staff))
        .route("/outcomes", web::get().to(outcomes::outcomes))
        .route("/audit", web::get().to(audit_pages::audit_home))
        .route("/audit", web::post().to(audit_pages::search))
        .route("/audit/patients/{id}", web::get().to(audit_pages::patient_report))
        .route("/audit/staff/{id}", web::get().to(audit_pages::staff_report))
        .route("/audit/logins", web::get().to(audit_pages::logins_report))
        .route("/audit/checkpoint", web::get().to(audit_export::checkpoint))
        .route("/audit/verify", web::post().to(audit_export::verify))
        .route("/audit/access-review", web::get().to(access_review::review_page))
        .route("/audit/access-review", web::post().to(access_review::attest))
        .route("/requests", web::get().to(requests::requests))
        .route("/requests", web::post().to(requests::enter))
        .route("/requests/{id}/export", web::post().to(requests::export))
        .route("/requests/{id}/clinical", web::post().to(requests::approve_clinical))
        .route("/requests/{id}/approve", web::post().to(requests::approve))
        .route("/assets/{file}", web::get().to(asset));
}

/// Headers on every response, and the Fetch-Metadata/Origin half of CSRF on
/// every unsafe request (the token half is checked by each form handler).
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let unsafe_method = !matches!(req.method().as_str(), "GET" | "HEAD");
    if unsafe_method {
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let host = header("host").unwrap_or_default();
        let origin = header("origin");
        let fetch = header("sec-fetch-site");
        let own = format!("https://{host}");
        let p = console::csrf::Provenance { sec_fetch_site: fetch.as_deref(), origin: origin.as_deref() };
        if console::csrf::check_origin(p, &own).is_err() {
            let res =
                page(StatusCode::FORBIDDEN, &forbidden_page("This request came from another site and was refused."));
            let mut res = req.into_response(res).map_into_right_body();
            secure_headers(res.headers_mut());
            return Ok(res);
        }
    }
    let mut res = next.call(req).await?.map_into_left_body();
    secure_headers(res.headers_mut());
    let status = res.status().as_u16();
    crate::metrics::get().request("console", route, "-".into(), status, started.elapsed().as_secs_f64());
    Ok(res)
}

fn secure_headers(h: &mut actix_web::http::header::HeaderMap) {
    for (name, value) in console::headers::ALL {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            h.insert(n, v);
        }
    }
}

async fn asset(path: web::Path<String>) -> HttpResponse {
    match console::assets::find(&format!("/assets/{}", path.into_inner())) {
        Some(a) => HttpResponse::Ok().content_type(a.content_type).body(a.body),
        None => not_found_page(),
    }
}

async fn not_found(_req: HttpRequest) -> HttpResponse {
    not_found_page()
}

fn not_found_page() -> HttpResponse {
    let m = Message { chrome: None, title: "Not found".into(), message: "There is no such page.".into(), back: "/" };
    page(StatusCode::NOT_FOUND, &pages::render(&m))
}

fn forbidden_page(message: &str) -> String {
    pages::render(&Message { chrome: None, title: "Refused".into(), message: message.into(), back: "/" })
}

/// An HTML response.
fn page(status: StatusCode, html: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html.to_owned())
}

/// A 303 to a path of ours (never with PHI in it).
fn see_other(path: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("location", path)).finish()
}

/// The page for a failure inside the server: says nothing of the cause.
fn internal(e: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "console request failed");
    let m = Message {
        chrome: None,
        title: "Something went wrong".into(),
        message: "The page could not be shown. Nothing was changed. Try again, or tell the clinic's administrator."
            .into(),
        back: "/",
    };
    page(StatusCode::INTERNAL_SERVER_ERROR, &pages::render(&m))
}
