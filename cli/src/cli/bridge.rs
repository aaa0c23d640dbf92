//! `throughline bridge`: the platforms' webhooks onto the core's mTLS API
//! (the `bridge` crate), and `bridge tools`, the tool definitions to paste
//! into a Vapi assistant or a Retell agent.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BridgeArgs {
    /// The bridge's configuration file (docs/INTEGRATIONS.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only validate the configuration, its secrets and certificates, then exit.
    #[arg(long)]
    pub check: bool,
    #[command(subcommand)]
    pub command: Option<BridgeCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Print the tool definitions (JSON) for a platform.
    Tools {
        #[arg(long)]
        platform: ToolPlatform,
        /// The URL the platform calls for this route (default: a placeholder).
        #[arg(long, default_value = "https://bridge.example/vapi/ROUTE")]
        url: String,
    },
    /// Chatwoot's `identifier_hash` for a patient the clinic's portal logs
    /// into the widget (`window.$chatwoot.setUser(identifier, {identifier_hash})`).
    ChatwootHash {
        /// A file holding the web widget inbox's HMAC token.
        #[arg(long)]
        token_file: PathBuf,
        identifier: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ToolPlatform {
    Vapi,
    Retell,
}

pub fn run(args: BridgeArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BridgeCommand::Tools { platform, url }) => {
            let defs = match platform {
                ToolPlatform::Vapi => bridge::tools::vapi_definitions(&url),
                ToolPlatform::Retell => bridge::tools::retell_definitions(&url.replace("/vapi/", "/retell/")),
            };
            println!("{}", serde_json::to_string_pretty(&defs)?);
            return Ok(());
        }
        Some(BridgeCommand::ChatwootHash { token_file, identifier }) => {
            let token = zeroize::Zeroizing::new(
                std::fs::read(&token_file).with_context(|| format!("cannot read {}", token_file.display()))?,
            );
            let token: &[u8] = token.as_slice();
            let token = token.strip_suffix(b"\n").unwrap_or(token);
            println!("{}", bridge::chatwoot::identifier_hash(token, &identifier));
            return Ok(());
        }
        None => {}
    }
    let path = args.config.context("--config FILE is required (or `bridge tools`)")?;
    let config = bridge::read_config(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    super::serve::init_logging();
    actix_web::rt::System::new().block_on(async move {
        if args.check {
            bridge::load::routes(&config).map_err(|errs| anyhow::anyhow!("{}", errs.join("\n")))?;
            bridge::load::mailboxes(&config).map_err(|errs| anyhow::anyhow!("{}", errs.join("\n")))?;
            println!(
                "{}: {} route(s), {} mailbox(es), configuration valid",
                path.display(),
                config.routes.len(),
                config.mailboxes.len()
            );
            return Ok(());
        }
        let bound = bridge::bind(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(addr) = bound.addr {
            println!("listening on {}://{addr}", if bound.tls { "https" } else { "http" });
        }
        if let Some(lmtp) = &bound.lmtp {
            println!("lmtp listening on {lmtp}");
        }
        for line in &bound.imaps {
            println!("{line}");
        }
        if let Some(m) = bound.metrics {
            println!("metrics on http://{m}/metrics");
        }
        let _ = std::io::stdout().flush();
        tracing::info!(routes = config.routes.len(), mailboxes = config.mailboxes.len(), "bridge serving");
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            tracing::warn!(cause = %e, "could not tell systemd we are ready");
        }
        bound.run().await.map_err(|e| anyhow::anyhow!("{e}"))
    })
}
