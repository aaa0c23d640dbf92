//! Command-line interface (clap). Each command is a thin layer over the
//! library: parse flags, obtain the passphrase, call, print for people.

mod audit;
mod bench;
mod bench_bridge;
mod bench_calls;
mod bench_console;
mod bench_http;
mod bench_lmtp;
mod bench_load;
mod bench_peer;
mod bench_rotate;
mod bench_server;
mod bridge;
mod cert;
mod cluster_admin;
mod demo;
mod init;
mod keys;
mod link;
mod passphrase;
mod report;
mod serve;
mod settings;
mod soak;
mod staff;
mod tenant;
mod token;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "throughline",
    version,
    about = "One continuous, encrypted, audited conversation per patient across voice, chat and email"
)]
pub struct Cli {
    /// The installation's configuration file (data_dir, passphrase_file and
    /// serve's settings). Default: /etc/throughline/throughline.toml when it exists.
    #[arg(long, env = "THROUGHLINE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where the keyring, system store and tenant stores live (default: the
    /// configuration's data_dir, else ./throughline-data).
    #[arg(long, global = true, env = "THROUGHLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Read the passphrase from this file (first line) instead of the
    /// configuration's passphrase_file, a systemd credential,
    /// THROUGHLINE_PASSPHRASE or a prompt.
    #[arg(long, global = true)]
    pub passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play the seed scenario against a fresh, temporary installation, then exit.
    Demo {
        /// Keep the installation in this new directory instead of removing
        /// it (its passphrase is written beside it, as DIR.passphrase).
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Create the data directory: keyring, system store.
    Init(init::InitArgs),
    /// Manage tenants (clinics).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Channel certificates from the clinic's CA.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Serve the API over mutual TLS.
    Serve(serve::ServeArgs),
    /// Cluster mode: who owns each tenant, standby lag, planned moves (docs/HA.md).
    #[command(subcommand)]
    Cluster(cluster_admin::ClusterCommand),
    /// The tamper-evident audit trail: checkpoints, exports, offline verification.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// A patient's identifier links: list, and undo a wrong one.
    #[command(subcommand)]
    Link(link::LinkCommand),
    /// Resume tokens (the links a chat hands a patient): revoke a patient's.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Key lifecycle: rotate the passphrase, rotate a tenant's keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Check this installation: permissions, keyring, every store, audit
    /// chains and checkpoints, certificates, clock, disk. Exits non-zero on
    /// any failure.
    Doctor {
        /// Also check this configuration file (default: the one in effect),
        /// the server it describes (its listeners and metrics) and its
        /// scheduled backups.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Check a `serve --config` file: every problem, one line each.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The clinic's staff: console accounts, roles, break-glass, assignments.
    #[command(subcommand)]
    Staff(staff::StaffCommand),
    /// Retention purge now: expired session state and conversations past each
    /// tenant's retention (`serve` also does this periodically).
    Purge {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Reports for the clinic's manager: the seed's outcomes (docs/OUTCOMES.md).
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Erase a patient (GDPR Art. 17) on a staff request; prints the signed receipt.
    Erasure {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        customer: String,
    },
    /// Right-of-access export (GDPR Art. 15/20) of one patient, on a staff request.
    Export {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        customer: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Encrypted, authenticated, consistent backup of the whole installation (safe while serving).
    Backup {
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Restore a backup into an empty --data-dir, re-applying every known erasure before anything serves.
    Restore {
        file: std::path::PathBuf,
        /// Erasure ledger exported from the live installation (`erasure-ledger`),
        /// so erasures made after the backup are re-applied too.
        #[arg(long)]
        ledger: Option<std::path::PathBuf>,
    },
    /// Export the erasure ledger (JSON Lines of pseudonymous ids) to keep apart from backups.
    ErasureLedger {
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Benchmarks: session open (raw SQLCipher vs the service layer), HTTP,
    /// tenants, the bridge, the console, load mixes (see --help).
    Bench(bench::BenchArgs),
    /// Platform webhooks and mail (Vapi, Retell, Twilio, Chatwoot, LMTP, IMAP)
    /// onto the API over mTLS: its own process, its own bridge.toml.
    Bridge(bridge::BridgeArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the file whole; exit non-zero with one line per problem.
    Check { file: PathBuf },
}

/// Commands that write a tenant store directly. On a cluster node's data
/// directory they would be lost (a standby's copy is overwritten by the log)
/// or bypass the log: there, a tenant is written through its owner (the API
/// or the console).
fn writes_tenant_stores(command: &Command) -> Option<&'static str> {
    match command {
        Command::Erasure { .. } => Some("erasure"),
        Command::Purge { .. } => Some("purge"),
        Command::Link(link::LinkCommand::Unlink { .. }) => Some("link unlink"),
        Command::Token(token::TokenCommand::Revoke { .. }) => Some("token revoke"),
        Command::Keys(keys::KeysCommand::RotateTenant { .. }) => Some("keys rotate-tenant"),
        Command::Audit(audit::AuditCommand::Checkpoint { .. }) => Some("audit checkpoint"),
        _ => None,
    }
}

/// Commands that never read the installation's data directory or configuration.
fn stands_alone(command: &Command) -> bool {
    matches!(
        command,
        Command::Demo { .. }
            | Command::Bench(_)
            | Command::Bridge(_)
            | Command::Cluster(_)
            | Command::Config(_)
            | Command::Audit(audit::AuditCommand::Verify { .. })
    )
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if stands_alone(&cli.command) {
        return run_command(
            cli.command,
            Path::new(settings::DEFAULT_DATA_DIR),
            &passphrase::Source { file: None },
            None,
        );
    }
    // serve's and doctor's own --config name the same file.
    let named = match &cli.command {
        Command::Serve(args) => args.config.clone().or(cli.config),
        Command::Doctor { config } => config.clone().or(cli.config),
        _ => cli.config,
    };
    let (config_path, config) = settings::load(named.as_deref())?;
    let data_dir = cli.data_dir.or(config.data_dir.clone()).unwrap_or_else(|| settings::DEFAULT_DATA_DIR.into());
    let source = passphrase::Source { file: cli.passphrase_file.or(config.passphrase_file.clone()) };
    settings::check_owner(&data_dir)?;
    if let Some(what) = writes_tenant_stores(&cli.command)
        && let Some(node) = store::datadir::DataDir::existing(&data_dir).ok().and_then(|d| d.cluster_node())
    {
        anyhow::bail!(
            "{} is cluster node {node}'s: `{what}` would write its copies of the tenant stores directly; \
             use the API or the console, which reach the tenant's owner",
            data_dir.display()
        );
    }
    run_command(cli.command, &data_dir, &source, config_path.map(|p| (p, config)))
}

fn run_command(
    command: Command,
    data_dir: &Path,
    source: &passphrase::Source,
    config: Option<(PathBuf, server::serve_config::ServeConfig)>,
) -> anyhow::Result<()> {
    let source = source.clone();
    let data_dir = data_dir.to_path_buf();
    match command {
        Command::Demo { keep } => demo::run(keep.as_deref()),
        Command::Init(args) => init::run(&data_dir, &source, &args),
        Command::Tenant(cmd) => tenant::run(&data_dir, &source, cmd),
        Command::Cert(cmd) => cert::run(&data_dir, &source, cmd),
        Command::Serve(args) => serve::run(&data_dir, &source, &args, config.map(|(_, c)| c).unwrap_or_default()),
        Command::Bench(args) => bench::run(&args),
        Command::Cluster(cmd) => cluster_admin::run(cmd),
        Command::Bridge(args) => bridge::run(args),
        Command::Link(cmd) => link::run(&data_dir, &source, cmd),
        Command::Token(cmd) => token::run(&data_dir, &source, cmd),
        Command::Staff(cmd) => staff::run(&data_dir, &source, cmd),
        Command::Keys(cmd) => keys::run(&data_dir, &source, cmd),
        Command::Report(cmd) => report::run(&data_dir, &source, cmd),
        Command::Doctor { .. } => {
            let inst = open(&data_dir, &source)?;
            let mut checks = inst.doctor()?;
            if let Some((path, _)) = &config {
                checks.extend(server::doctor_live::config_checks(path));
            }
            for c in &checks {
                println!("{:<5} {:<28} {}", c.verdict.as_str(), c.what, c.detail);
            }
            let count = |v| checks.iter().filter(|c| c.verdict == v).count();
            let (warn, fail) = (count(server::doctor::Verdict::Warn), count(server::doctor::Verdict::Fail));
            println!("{} checks: {} ok, {warn} warnings, {fail} failures", checks.len(), checks.len() - warn - fail);
            if fail > 0 {
                anyhow::bail!("{fail} check(s) failed");
            }
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {}", file.display(), e.kind()))?;
            match server::serve_config::parse(&text) {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    Ok(())
                }
                Err(e) => anyhow::bail!("{}:\n{e}", file.display()),
            }
        }
        Command::Audit(cmd) => audit::run(&data_dir, &source, cmd),
        Command::Purge { tenant } => purge(&data_dir, &source, tenant.as_deref()),
        Command::Backup { out } => {
            let inst = open(&data_dir, &source)?;
            // A progress bar on a terminal; indicatif stays silent otherwise.
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} stores snapshotted")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let summary = inst.backup(&out, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            println!(
                "backed up {} stores ({} bytes, encrypted and authenticated) to {}",
                summary.files,
                summary.bytes,
                out.display()
            );
            Ok(())
        }
        Command::Restore { file, ledger } => {
            let (_, summary) = server::Installation::restore(
                &file,
                &data_dir,
                &source.get()?,
                ledger.as_deref(),
                std::sync::Arc::new(server::SystemClock),
            )?;
            println!(
                "restored {} stores into {}; re-applied {} erasures recorded after the backup",
                summary.files,
                data_dir.display(),
                summary.erasures_reapplied
            );
            Ok(())
        }
        Command::ErasureLedger { out } => {
            let inst = open(&data_dir, &source)?;
            let mut file =
                std::fs::File::create_new(&out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
            let n = inst.write_ledger(&mut file)?;
            println!("wrote {n} erasures to {}", out.display());
            Ok(())
        }
        Command::Export { tenant, customer, out } => {
            let customer = customer_id(&customer)?;
            let inst = open(&data_dir, &source)?;
            let doc = inst.export_customer(&tenant, &customer)?;
            let file =
                std::fs::File::create_new(&out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
            serde_json::to_writer_pretty(file, &doc)?;
            println!("exported everything held about {customer} to {}", out.display());
            Ok(())
        }
        Command::Erasure { tenant, customer } => {
            let customer = customer_id(&customer)?;
            let inst = open(&data_dir, &source)?;
            println!("{}", inst.erase_customer(&tenant, &customer)?);
            Ok(())
        }
    }
}

/// How long a deleted tenant stays restorable (undelete by restoring a
/// backup) before its key is destroyed.
const TENANT_SHRED_GRACE_MS: i64 = server::tenants::TENANT_SHRED_GRACE_MS;

fn purge(data_dir: &std::path::Path, source: &passphrase::Source, tenant: Option<&str>) -> anyhow::Result<()> {
    let mut inst = open(data_dir, source)?;
    if tenant.is_none() {
        for id in inst.shred_deleted_tenants(TENANT_SHRED_GRACE_MS)? {
            println!("{id}: deleted more than 30 days ago; its key is destroyed and its files removed");
        }
    }
    let names: Vec<String> = match tenant {
        Some(t) => vec![inst.tenant(t)?.name],
        None => inst.tenants()?.into_iter().map(|t| t.name).collect(),
    };
    for name in names {
        let (state, conversations) = inst.purge_tenant(&name)?;
        println!("{name}: purged {state} expired state keys, {conversations} conversations past retention");
    }
    Ok(())
}

/// Unlocks the installation in `data_dir` (argon2id runs here, once).
fn open(data_dir: &std::path::Path, source: &passphrase::Source) -> anyhow::Result<server::Installation> {
    Ok(server::Installation::open(data_dir, &source.get()?, std::sync::Arc::new(server::SystemClock))?)
}

fn customer_id(raw: &str) -> anyhow::Result<store::ids::CustomerId> {
    store::ids::CustomerId::parse(raw).ok_or_else(|| anyhow::anyhow!("--customer must be a cus_… id"))
}
