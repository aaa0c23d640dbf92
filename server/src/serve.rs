//! `throughline serve`: actix-web over rustls with client certificates
//! required, the certificate-registry refresher, and graceful shutdown
//! (SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::api::{self, ConnInfo};
use crate::app::AppState;
use crate::tls::{self, CertRegistry, PeerIdentity, TlsCounters};
use crate::{Error, Installation};
use store::SystemStore;

/// How often the certificate registry is re-read from the system store.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// What `serve` was asked for, validated.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// DNS names and IPs for the server certificate (besides localhost and 127.0.0.1).
    pub server_names: Vec<String>,
    /// Time allowed for the TLS handshake and for the request head to arrive.
    pub client_timeout: Duration,
    pub body_limit: usize,
    pub workers: usize,
    /// One commit (one fsync) per group of concurrent requests per tenant.
    pub group_commit: bool,
    /// Writer threads running the tenants' group commits.
    pub writers: usize,
    /// SQLite's memory for all tenants together, in MiB.
    pub store_memory_mib: u64,
    /// The staff console's listener, when asked for.
    pub console: Option<crate::console::ConsoleOptions>,
    /// How often every tenant's audit trail gets a signed checkpoint
    /// (when it grew); `None`: only by `throughline audit checkpoint`.
    pub checkpoint_every: Option<Duration>,
    /// The Prometheus listener (plain HTTP, `GET /metrics`), when asked for.
    pub metrics_listen: Option<SocketAddr>,
    /// Cluster mode (`serve --cluster FILE`); `None`: one box.
    pub cluster: Option<crate::ha::ClusterConfig>,
    /// Open every tenant and rehearse a call on each at start, in the
    /// background, instead of on each tenant's first request.
    pub prewarm: bool,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr) -> Self {
        ServeOptions {
            listen,
            server_names: Vec::new(),
            client_timeout: Duration::from_secs(5),
            body_limit: api::DEFAULT_BODY_LIMIT,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            group_commit: true,
            writers: crate::group_commit::default_writers(),
            store_memory_mib: crate::tenants::DEFAULT_STORE_MEMORY_MIB,
            console: None,
            checkpoint_every: Some(DEFAULT_CHECKPOINT_EVERY),
            metrics_listen: None,
            cluster: None,
            prewarm: false,
        }
    }
}

/// A bound server, ready to be awaited inside an actix system.
pub struct Bound {
    pub server: actix_web::dev::Server,
    pub addr: SocketAddr,
    pub refresher: Refresher,
    pub maintenance: Maintenance,
    /// The console's server; the caller runs it beside the API's.
    pub console: Option<crate::console::ConsoleBound>,
    /// The metrics server; the caller runs it beside the API's.
    pub metrics: Option<crate::metrics_http::MetricsBound>,
    /// Held while serving: a tenant key rotation waits for the server to stop.
    pub serving: store::datadir::DirLock,
    /// Cluster mode: the node (resign it after the server stops).
    pub cluster: Option<crate::ha::ClusterHandle>,
}

/// Binds the listener and builds the server. Call inside an actix system
/// (`actix_web::rt::System`); await `Bound::server` to serve.
pub fn bind(inst: &mut Installation, opts: &ServeOptions) -> Result<Bound, Error> {
    let serving = inst.data_dir().serving_lock(false)?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    names.extend(opts.server_names.iter().cloned());
    let (cert_pem, key_pem, issued) = inst.server_identity(names)?;
    let console_tls = match &opts.console {
        None => None,
        Some(c) => Some(match &c.cert {
            Some((cert, key)) => {
                let read = |p: &std::path::Path| {
                    std::fs::read_to_string(p).map_err(|source| Error::Io { path: p.to_owned(), source })
                };
                tls::console_config(&read(cert)?, &zeroize::Zeroizing::new(read(key)?))?
            }
            None => tls::console_config(&cert_pem, &key_pem)?,
        }),
    };
    if issued {
        tracing::info!("issued a new server certificate (the CA key was unsealed for it, and only for it)");
    }
    // During a CA rotation's overlap: both CAs trusted, and the new CA
    // cross-signed by the old one presented after the server's certificate.
    let ca_pem = inst.trusted_ca_bundle()?;
    let chain = match inst.ca_cross_pem()? {
        Some(cross) => format!("{cert_pem}{cross}"),
        None => cert_pem.clone(),
    };
    let counters = Arc::new(TlsCounters::default());
    let tls = tls::server_config(&ca_pem, &chain, &key_pem, counters.clone())?;
    let registry = Arc::new(CertRegistry::new(inst.certificates()?));
    let refresher = Refresher::start(inst.open_system_store()?, registry.clone());
    if let Some(c) = &opts.cluster {
        let marker = inst.data_dir().cluster_marker();
        std::fs::write(&marker, format!("{}\n", c.node)).map_err(|source| Error::Io { path: marker, source })?;
    }
    let cluster = match &opts.cluster {
        Some(c) => Some(
            crate::ha::ClusterNode::start(c.clone(), opts.writers)
                .map_err(|e| Error::Cluster { message: e.to_string() })?,
        ),
        None => None,
    };
    let mut tenants = inst
        .tenant_pool()?
        .with_group_commit(opts.group_commit)
        .with_writers(opts.writers)?
        .with_store_memory_mib(opts.store_memory_mib)?;
    if let Some(c) = &cluster {
        tenants = tenants.with_cluster(c.node.clone());
    }
    let state = web::Data::new(AppState {
        registry,
        counters,
        started: Instant::now(),
        body_limit: opts.body_limit,
        tenants,
        clock: inst.clock(),
        confirm_throttle: crate::throttle::ConfirmThrottle::default(),
        // Six head timeouts: 30 s by default.
        request_deadline: opts.client_timeout.saturating_mul(6),
    });
    if let Some(c) = &cluster {
        c.node.run(state.clone().into_inner());
    }
    if opts.prewarm {
        // Twice the writers: a tenant's warm-up ends in an fsync, and those overlap.
        prewarm(state.clone().into_inner(), opts.writers.saturating_mul(2));
    }
    let maintenance = Maintenance::start(state.clone().into_inner(), opts.checkpoint_every);
    let console = match (&opts.console, console_tls) {
        (Some(c), Some(tls)) => Some(crate::console::bind(state.clone(), c, tls, opts.workers.min(2))?),
        _ => None,
    };
    let metrics = match opts.metrics_listen {
        Some(listen) => Some(crate::metrics_http::bind(state.clone(), listen, opts.store_memory_mib)?),
        None => None,
    };
    crate::metrics::get().start.set(state.clock.now_ms() / 1000);
    let body_limit = opts.body_limit;
    let listener = std::net::TcpListener::bind(opts.listen)
        .map_err(|source| Error::Io { path: opts.listen.to_string().into(), source })?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(api::json_config(body_limit))
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                api::ApiError::new(actix_web::http::StatusCode::NOT_FOUND, "not_found", "no such resource").into()
            }))
            .configure(api::routes)
            .default_service(web::to(api::not_found))
            .wrap(from_fn(api::enforce_deadline))
            .wrap(from_fn(api::enforce_body_limit))
            .wrap(from_fn(api::wire_handshake))
            .wrap(from_fn(api::log_requests))
    })
    .on_connect(|conn, ext| {
        type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
        if let Some(tls) = conn.downcast_ref::<Tls>() {
            let (io, session) = tls.get_ref();
            let identity = session.peer_certificates().and_then(|c| c.first()).and_then(|d| PeerIdentity::from_der(d));
            let sni = session.server_name().map(str::to_ascii_lowercase);
            ext.insert(ConnInfo { identity, peer: io.peer_addr().ok(), sni });
        }
    })
    .client_request_timeout(opts.client_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .tls_handshake_timeout(opts.client_timeout)
    .keep_alive(Duration::from_secs(30))
    .shutdown_timeout(10)
    .workers(opts.workers)
    .listen_rustls_0_23(listener, tls)
    .map_err(|source| Error::Io { path: opts.listen.to_string().into(), source })?;
    let addr = server.addrs().first().copied().unwrap_or(opts.listen);
    Ok(Bound { server: server.run(), addr, refresher, maintenance, console, metrics, serving, cluster })
}

/// Warms every tenant on a thread of its own (`threads` at a time) while
/// the server already answers; logs how long it took.
fn prewarm(state: Arc<AppState>, threads: usize) {
    let spawned = std::thread::Builder::new().name("prewarm".into()).spawn(move || {
        let started = Instant::now();
        match state.tenants.prewarm(threads, state.clock.now_ms()) {
            Ok(n) => tracing::info!(tenants = n, ms = started.elapsed().as_millis() as u64, "prewarm done"),
            Err(e) => tracing::error!(error = %e, "prewarm failed; tenants open on their first request"),
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "prewarm thread not started; tenants open on their first request");
    }
}

/// How often `serve` signs checkpoints by default.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(3600);

/// How often expired session state is purged from open tenants.
pub const PURGE_EVERY: Duration = Duration::from_secs(60);
/// How often conversations past retention are purged.
pub const PURGE_CONVERSATIONS_EVERY: Duration = Duration::from_secs(3600);

/// Periodic maintenance: the purge of expired session state and of
/// conversations past retention, and closing idle tenants.
pub struct Maintenance {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    fn start(state: Arc<AppState>, checkpoint_every: Option<Duration>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("maintenance".into())
            .spawn(move || {
                if let Ok(system) = state.tenants.system().lock() {
                    crate::metrics_http::observe_certificates(&system, state.clock.now_ms());
                }
                // systemd's watchdog (`WatchdogSec=`): pinged at half its period
                // from this loop, so a wedged maintenance pass gets the server restarted.
                let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
                let mut last_ping = Instant::now();
                let mut last = Instant::now();
                let mut last_conversations = Instant::now();
                let mut last_checkpoint = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    if let Some(every) = watchdog
                        && last_ping.elapsed() >= every
                    {
                        last_ping = Instant::now();
                        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                    }
                    if checkpoint_every.is_some_and(|every| last_checkpoint.elapsed() >= every) {
                        last_checkpoint = Instant::now();
                        let metrics = crate::metrics::get();
                        match state.tenants.checkpoint_all(state.clock.now_ms()) {
                            Ok(n) => {
                                metrics.checkpoint_pass.set(state.clock.now_ms() / 1000);
                                metrics.checkpoints_signed.inc_by(n as u64);
                                if n > 0 {
                                    tracing::info!(tenants = n, "audit checkpoints signed");
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "audit checkpoints failed"),
                        }
                    }
                    if last.elapsed() < PURGE_EVERY {
                        continue;
                    }
                    last = Instant::now();
                    if let Ok(system) = state.tenants.system().lock() {
                        crate::metrics_http::observe_certificates(&system, state.clock.now_ms());
                    }
                    let conversations = last_conversations.elapsed() >= PURGE_CONVERSATIONS_EVERY;
                    if conversations {
                        last_conversations = Instant::now();
                        // Deleted tenants past their grace period (M7), hourly.
                        let now = state.clock.now_ms();
                        match state.tenants.shred_deleted(crate::tenants::TENANT_SHRED_GRACE_MS, now) {
                            Ok(ids) if ids.is_empty() => {}
                            Ok(ids) => tracing::info!(tenants = ids.len(), "deleted tenants crypto-shredded"),
                            Err(e) => tracing::warn!(error = %e, "shredding deleted tenants waits for the next pass"),
                        }
                    }
                    match state.tenants.purge(state.clock.now_ms(), conversations) {
                        Ok((0, 0)) => {}
                        Ok((keys, convs)) => {
                            tracing::info!(state_keys = keys, conversations = convs, "retention purge")
                        }
                        Err(e) => tracing::error!(error = %e, "retention purge failed"),
                    }
                    match state.tenants.close_idle(crate::tenants::IDLE_CLOSE) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(closed = n, "idle tenants closed"),
                        Err(e) => tracing::error!(error = %e, "closing idle tenants failed"),
                    }
                }
            })
            .ok();
        Maintenance { stop, thread }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Re-reads certificate bindings and revocations every [`REFRESH_EVERY`] on
/// its own thread with its own system-store connection.
pub struct Refresher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Refresher {
    fn start(store: SystemStore, registry: Arc<CertRegistry>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cert-registry".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(REFRESH_EVERY);
                    match store.certificates() {
                        Ok(rows) => registry.replace(rows),
                        Err(e) => tracing::error!(error = %e, "certificate registry refresh failed"),
                    }
                }
            })
            .ok();
        Refresher { stop, thread }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
