//! `throughline bridge`: the integration for platforms that cannot present
//! a client certificate (Vapi, Retell, Twilio). It verifies each webhook
//! with the platform's own scheme, maps it onto the core's mTLS API with
//! the route's channel certificate, and answers in the platform's shape.
//!
//! Pure modules per platform ([`vapi`], [`vapi_auth`], [`retell`],
//! [`twilio`], [`ended`], [`tools`], [`context`]) parse, verify and map
//! with no I/O; the shell ([`http`], [`core`], [`load`]) is thin. The
//! bridge holds no tenant keys and stores nothing: it cannot reach the
//! store, `crypto` or `policy` (tests/tidy.rs).

pub mod act;
pub mod callbacks;
pub mod config;
pub mod context;
pub mod core;
pub mod ended;
pub mod http;
pub mod load;
pub mod memo;
pub mod outbound;
pub mod retell;
pub mod sig;
pub mod template;
pub mod texts;
pub mod tls;
pub mod tools;
pub mod twilio;
pub mod vapi;
pub mod vapi_auth;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use actix_web::{App, HttpServer, web};

pub use config::Config;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    #[error("cannot read {path}: {kind}")]
    Read { path: String, kind: std::io::ErrorKind },
    /// Every problem in the configuration, one line each.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the webhook listener stopped: {0}")]
    Serve(std::io::Error),
}

/// Reads and validates `path` (nothing else is touched on error).
pub fn read_config(path: &Path) -> Result<Config, BridgeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BridgeError::Read { path: path.display().to_string(), kind: e.kind() })?;
    config::parse(&text, path).map_err(BridgeError::Invalid)
}

/// The client for the platforms' own APIs (outbound calls and texts).
fn platform_client(config: &Config) -> Result<reqwest::Client, BridgeError> {
    let extra = match &config.platform_ca_file {
        Some(p) => {
            Some(std::fs::read(p).map_err(|e| BridgeError::Read { path: p.display().to_string(), kind: e.kind() })?)
        }
        None => None,
    };
    let tls =
        tls::platform(extra.as_deref()).map_err(|e| BridgeError::Invalid(vec![format!("platform_ca_file: {e}")]))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|_| BridgeError::Invalid(vec!["cannot build the HTTPS client for the platforms".into()]))
}

/// A bound bridge: its address, and the server to await.
pub struct Bound {
    pub addr: SocketAddr,
    pub tls: bool,
    pub server: actix_web::dev::Server,
}

/// Loads the routes' secrets and certificates and binds the listener.
/// Must run inside an actix (tokio) runtime.
pub fn bind(config: &Config) -> Result<Bound, BridgeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let routes = load::routes(config).map_err(BridgeError::Invalid)?;
    let platform = platform_client(config)?;
    let bridge = Arc::new(http::Bridge {
        routes,
        public_url: config.webhooks.public_url.clone(),
        max_body_bytes: config.webhooks.max_body_bytes,
        memo: memo::Memo::default(),
        platform: platform.clone(),
    });
    callbacks::spawn(&bridge, &platform);
    let data = web::Data::new(bridge);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(http::configure))
        .client_request_timeout(std::time::Duration::from_secs(10))
        .shutdown_timeout(5);
    let addr = config.webhooks.listen;
    let (server, tls) = match &config.webhooks.tls {
        config::ListenerTls::Files { cert, key } => {
            let read = |p: &Path| {
                std::fs::read(p).map_err(|e| BridgeError::Read { path: p.display().to_string(), kind: e.kind() })
            };
            let tls = tls::server(&read(cert)?, &read(key)?)
                .map_err(|e| BridgeError::Invalid(vec![format!("webhooks.tls_cert/tls_key: {e}")]))?;
            (server.bind_rustls_0_23(addr, tls).map_err(|source| BridgeError::Bind { addr, source })?, true)
        }
        config::ListenerTls::DangerPlainHttp => {
            (server.bind(addr).map_err(|source| BridgeError::Bind { addr, source })?, false)
        }
    };
    let addr = server.addrs().first().copied().unwrap_or(addr);
    Ok(Bound { addr, tls, server: server.run() })
}
