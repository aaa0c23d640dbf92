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
pub mod chatwoot;
pub mod config;
pub mod context;
pub mod core;
pub mod ended;
pub mod http;
pub mod imap;
pub mod lmtp;
pub mod load;
pub mod memo;
pub mod metrics;
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

/// TLS for the platforms' own APIs and the IMAP servers: the public roots
/// and `platform_ca_file`.
fn platform_tls(config: &Config) -> Result<rustls::ClientConfig, BridgeError> {
    let extra = match &config.platform_ca_file {
        Some(p) => {
            Some(std::fs::read(p).map_err(|e| BridgeError::Read { path: p.display().to_string(), kind: e.kind() })?)
        }
        None => None,
    };
    tls::platform(extra.as_deref()).map_err(|e| BridgeError::Invalid(vec![format!("platform_ca_file: {e}")]))
}

/// The client for the platforms' own APIs (outbound calls and texts).
fn platform_client(tls: rustls::ClientConfig) -> Result<reqwest::Client, BridgeError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|_| BridgeError::Invalid(vec!["cannot build the HTTPS client for the platforms".into()]))
}

/// A bound bridge: where it listens, and what to await.
pub struct Bound {
    /// The webhook listener's address, if there are routes.
    pub addr: Option<SocketAddr>,
    pub tls: bool,
    /// The LMTP listener, described for the operator, if there are mailboxes.
    pub lmtp: Option<String>,
    pub server: Option<actix_web::dev::Server>,
    /// One line per mailbox read over IMAP, for the operator.
    pub imaps: Vec<String>,
    /// The metrics listener's address, when configured.
    pub metrics: Option<SocketAddr>,
    lmtp_task: Option<tokio::task::JoinHandle<()>>,
    imap_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Bound {
    /// Serves until the webhook server stops (SIGTERM, SIGINT), or for a
    /// mail-only bridge until one of those signals.
    pub async fn run(self) -> Result<(), BridgeError> {
        let result = match self.server {
            Some(server) => server.await.map_err(BridgeError::Serve),
            None => {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(BridgeError::Serve)?;
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                Ok(())
            }
        };
        if let Some(t) = self.lmtp_task {
            t.abort();
        }
        for t in self.imap_tasks {
            t.abort();
        }
        result
    }
}

/// Loads the routes' and mailboxes' secrets and certificates and binds the
/// listeners. Must run inside an actix (tokio) runtime.
pub fn bind(config: &Config) -> Result<Bound, BridgeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut errs = Vec::new();
    let routes = load::routes(config).unwrap_or_else(|e| {
        errs.extend(e);
        Default::default()
    });
    let mailboxes = load::mailboxes(config).unwrap_or_else(|e| {
        errs.extend(e);
        Vec::new()
    });
    if !errs.is_empty() {
        return Err(BridgeError::Invalid(errs));
    }
    let (lmtp, lmtp_task) = match &config.lmtp {
        Some(l) if !mailboxes.is_empty() => {
            let listener =
                lmtp::bind(l).map_err(|e| BridgeError::Invalid(vec![format!("lmtp.listen: cannot listen: {e}")]))?;
            let tcp = match &listener {
                lmtp::Listener::Tcp(t) => t.local_addr().ok(),
                lmtp::Listener::Unix(_) => None,
            };
            let state = Arc::new(lmtp::LmtpState { config: l.clone(), mailboxes });
            (Some(lmtp::describe(&l.listen, tcp)), Some(actix_web::rt::spawn(lmtp::serve(listener, state))))
        }
        _ => (None, None),
    };
    let platform_tls = platform_tls(config)?;
    let mut imaps = Vec::new();
    let mut imap_tasks = Vec::new();
    for m in &config.imaps {
        let mut errs = Vec::new();
        let core = load::core_client(&config.core, &m.certs, &format!("imap {:?} certs", m.name), &mut errs)
            .ok_or(BridgeError::Invalid(errs))?;
        if let Err(e) = std::fs::create_dir_all(&m.state_dir) {
            return Err(BridgeError::Invalid(vec![format!(
                "imap {:?} state_dir: cannot create it: {}",
                m.name,
                e.kind()
            )]));
        }
        imaps.push(format!("imap {} reading {}@{}:{}/{}", m.name, m.user, m.host, m.port, m.folder));
        imap_tasks.push(actix_web::rt::spawn(imap::run(m.clone(), core, Arc::new(platform_tls.clone()))));
    }
    let metrics = match config.metrics_listen {
        Some(listen) => {
            let (server, addr) = metrics::serve(listen).map_err(|source| BridgeError::Bind { addr: listen, source })?;
            actix_web::rt::spawn(server);
            Some(addr)
        }
        None => None,
    };
    let Some(webhooks) = &config.webhooks else {
        return Ok(Bound { addr: None, tls: false, lmtp, server: None, imaps, metrics, lmtp_task, imap_tasks });
    };
    let platform = platform_client(platform_tls)?;
    let bridge = Arc::new(http::Bridge {
        routes,
        public_url: webhooks.public_url.clone(),
        max_body_bytes: webhooks.max_body_bytes,
        memo: memo::Memo::default(),
        platform: platform.clone(),
        health: tokio::sync::Mutex::new(None),
        in_flight: http::InFlight::new(webhooks.max_in_flight_per_source),
    });
    callbacks::spawn(&bridge, &platform);
    let data = web::Data::new(bridge);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(http::configure)
            .wrap(actix_web::middleware::from_fn(http::cap))
            .wrap(actix_web::middleware::from_fn(metrics::observe))
    })
    .client_request_timeout(std::time::Duration::from_secs(10))
    .shutdown_timeout(5);
    let addr = webhooks.listen;
    let (server, tls) = match &webhooks.tls {
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
    Ok(Bound { addr: Some(addr), tls, lmtp, server: Some(server.run()), imaps, metrics, lmtp_task, imap_tasks })
}
