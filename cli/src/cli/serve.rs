//! `throughline serve`: unlock once, bind, serve until SIGTERM/SIGINT.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use server::backup_schedule::{BackupPlan, Backups};
use server::serve::{self, ServeOptions};
use server::{Installation, SystemClock};

use super::passphrase::Source;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file with any of these settings (default: the
    /// installation's, /etc/throughline/throughline.toml when it exists;
    /// `throughline config check FILE` checks it); a flag given here wins over the file.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    /// Default 127.0.0.1:8443.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Extra DNS name or IP for the server certificate (repeatable).
    #[arg(long = "server-name")]
    pub server_names: Vec<String>,
    /// Seconds allowed for the TLS handshake and for a request head to arrive (default 5).
    #[arg(long)]
    pub client_timeout_secs: Option<u64>,
    /// Largest request body in bytes (default 256 KiB).
    #[arg(long)]
    pub body_limit: Option<usize>,
    /// Commit every request on its own (one fsync each) instead of in groups:
    /// only to measure what group commit buys.
    #[arg(long)]
    pub no_group_commit: bool,
    /// Open every tenant at start and rehearse a call on each (undone), in
    /// the background, so no tenant's first request waits for its store.
    #[arg(long)]
    pub prewarm: bool,
    /// Writer threads running the tenants' group commits (default: twice the
    /// cores; one tenant is on one writer at a time).
    #[arg(long)]
    pub writers: Option<usize>,
    /// SQLite's memory for all tenants together, in MiB (page cache,
    /// schemas, statements); past it the least recently used pages go first (default 384).
    #[arg(long)]
    pub store_memory_mib: Option<u64>,
    /// Sign every tenant's audit checkpoint this often when its trail grew
    /// (`0s`: never; then only `throughline audit checkpoint` signs). Default 1h.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub checkpoint_interval: Option<Duration>,
    /// Take an encrypted backup (with the erasure ledger beside it) into this
    /// directory on a schedule; copy the directory off the box.
    #[arg(long)]
    pub backup_dir: Option<std::path::PathBuf>,
    /// How often to back up (default 24h; counted from the newest backup in the directory).
    #[arg(long, value_parser = humantime::parse_duration, requires = "backup_dir")]
    pub backup_every: Option<Duration>,
    /// How many backups to keep, oldest deleted first (default 14).
    #[arg(long, requires = "backup_dir")]
    pub backup_keep: Option<usize>,
    /// Also serve the staff console (HTTPS, no client certificate) on this address.
    #[arg(long)]
    pub console_listen: Option<SocketAddr>,
    /// A reverse proxy in front of the console whose X-Forwarded-For is
    /// believed for sign-in lockouts and audit records (repeatable).
    #[arg(long, requires = "console_listen")]
    pub console_trusted_proxy: Vec<std::net::IpAddr>,
    /// The console's certificate chain (PEM) for browsers; default: the server
    /// certificate from the Throughline CA (install the CA in the clinic's browsers).
    #[arg(long, requires = "console_key")]
    pub console_cert: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics (plain HTTP, `GET /metrics`, no PHI) on this
    /// address: loopback or the monitoring network only.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Cluster mode: this node's place in a cluster (etcd, the PostgreSQL
    /// commit log, HAProxy), as TOML; see docs/HA.md. Without it: one box.
    #[arg(long)]
    pub cluster: Option<std::path::PathBuf>,
    /// The console certificate's private key (PEM).
    #[arg(long, requires = "console_cert")]
    pub console_key: Option<std::path::PathBuf>,
}

/// The scheduled backups asked for, by the flags or the file.
fn backup_plan(args: &ServeArgs, file: &server::serve_config::ServeConfig) -> Option<BackupPlan> {
    let dir = args.backup_dir.clone().or_else(|| file.backup_dir.clone())?;
    let every = args.backup_every.or(file.backup_every).unwrap_or(Duration::from_secs(24 * 3600));
    let keep = args.backup_keep.or(file.backup_keep).unwrap_or(14).max(1);
    Some(BackupPlan { dir, every: every.max(Duration::from_secs(1)), keep })
}

/// The file's settings under the flags' (flags win), then the defaults.
fn options(
    args: &ServeArgs,
    file: &server::serve_config::ServeConfig,
) -> anyhow::Result<(ServeOptions, Option<BackupPlan>)> {
    let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
    let mut opts = ServeOptions::new(listen);
    opts.server_names =
        if args.server_names.is_empty() { file.server_names.clone() } else { args.server_names.clone() };
    opts.client_timeout =
        Duration::from_secs(args.client_timeout_secs.or(file.client_timeout_secs).unwrap_or(5).max(1));
    opts.body_limit = args.body_limit.or(file.body_limit).unwrap_or(server::api::DEFAULT_BODY_LIMIT);
    opts.prewarm = args.prewarm || file.prewarm.unwrap_or(false);
    opts.group_commit = !args.no_group_commit && file.group_commit.unwrap_or(true);
    opts.store_memory_mib =
        args.store_memory_mib.or(file.store_memory_mib).unwrap_or(server::tenants::DEFAULT_STORE_MEMORY_MIB).max(16);
    if let Some(n) = args.writers.or(file.writers) {
        opts.writers = n.clamp(1, 256);
    }
    let every = args.checkpoint_interval.or(file.checkpoint_interval).unwrap_or(serve::DEFAULT_CHECKPOINT_EVERY);
    opts.checkpoint_every = (!every.is_zero()).then_some(every);
    let cert = match (&args.console_cert, &args.console_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => file.console_cert.clone().zip(file.console_key.clone()),
    };
    let trusted_proxies = if args.console_trusted_proxy.is_empty() {
        file.console_trusted_proxies.clone()
    } else {
        args.console_trusted_proxy.clone()
    };
    opts.console = args.console_listen.or(file.console_listen).map(|listen| server::console::ConsoleOptions {
        listen,
        cert,
        trusted_proxies,
    });
    opts.metrics_listen = args.metrics_listen.or(file.metrics_listen);
    if let Some(p) = &args.cluster {
        opts.cluster = Some(server::ha::ClusterConfig::load(p)?);
    }
    Ok((opts, backup_plan(args, file)))
}

pub fn run(
    data_dir: &Path,
    source: &Source,
    args: &ServeArgs,
    file: server::serve_config::ServeConfig,
) -> anyhow::Result<()> {
    // The configuration was checked before any key is touched.
    let (opts, backups) = options(args, &file)?;
    init_logging();
    // Three descriptors per open tenant (file, WAL, shared memory) plus one
    // per connection: the usual soft limit of 1,024 would refuse the
    // 300th tenant. Raised to the hard limit the operator set.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(open_files = n, "file descriptor limit"),
        Err(e) => tracing::warn!(cause = %e, "could not raise the file descriptor limit"),
    }
    let mut inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    actix_web::rt::System::new().block_on(async move {
        let bound = serve::bind(&mut inst, &opts)?;
        println!("listening on https://{}", bound.addr);
        if let Some(console) = bound.console {
            println!("console on https://{}", console.addr);
            actix_web::rt::spawn(console.server);
        }
        if let Some(metrics) = bound.metrics {
            println!("metrics on http://{}/metrics", metrics.addr);
            actix_web::rt::spawn(metrics.server);
        }
        let backups = backups.map(|plan| {
            println!("backing up to {} every {}", plan.dir.display(), humantime::format_duration(plan.every));
            Backups::start(inst, plan)
        });
        let _ = std::io::stdout().flush();
        tracing::info!(addr = %bound.addr, "serving");
        // Type=notify: systemd starts what depends on us only now, with the listeners bound.
        let status = format!("serving on {}", bound.addr);
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&status)]) {
            tracing::warn!(cause = %e, "could not tell systemd we are ready");
        }
        let result = bound.server.await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        if let Some(b) = backups {
            b.stop();
        }
        bound.refresher.stop();
        bound.maintenance.stop();
        if let Some(c) = bound.cluster {
            c.resign();
        }
        tracing::info!("stopped");
        result.map_err(anyhow::Error::from)
    })
}

/// JSON logs on stderr; level from `THROUGHLINE_LOG` (default `info`).
pub(super) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("THROUGHLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
