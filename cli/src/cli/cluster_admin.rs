//! `throughline cluster status|move`: who owns each tenant, how far each
//! standby lags, and planned moves. Reads etcd and the commit log with the
//! node's cluster file; opens no store and needs no passphrase.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use server::ha::ClusterConfig;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Each tenant's owner and epoch, the log's head and snapshot, and each standby's lag.
    Status {
        /// A node's cluster file (for etcd and PostgreSQL).
        #[arg(long)]
        cluster: PathBuf,
    },
    /// Hands a tenant to another node: its owner stops serving it, the
    /// target takes it (already caught up as a standby) and serves.
    Move {
        /// The tenant's id (`ten_…`, as `cluster status` shows it).
        tenant: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        cluster: PathBuf,
    },
}

pub fn run(cmd: ClusterCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cmd {
        ClusterCommand::Status { cluster } => rt.block_on(status(ClusterConfig::load(&cluster)?)),
        ClusterCommand::Move { tenant, to, cluster } => {
            rt.block_on(move_to(ClusterConfig::load(&cluster)?, &tenant, &to))
        }
    }
}

async fn admin(c: &ClusterConfig) -> anyhow::Result<cluster::Ownership> {
    cluster::Ownership::start(&c.etcd, &format!("{}-admin", c.node), "-", Duration::from_secs(5)).await.context("etcd")
}

async fn status(c: ClusterConfig) -> anyhow::Result<()> {
    let mut own = admin(&c).await?;
    let log = cluster::CommitLog::connect(&c.postgres).await.context("the commit log")?;
    let owners = own.owners().await?;
    let standbys = own.standbys().await?;
    let moves = own.moves().await?;
    println!(
        "{:<38} {:<8} {:>8} {:>10} {:>10}  standbys (records behind)",
        "tenant", "owner", "epoch", "log head", "snapshot"
    );
    let mut tenants: Vec<String> = owners.iter().map(|o| o.tenant.clone()).collect();
    tenants.extend(standbys.iter().filter_map(|(k, _)| k.split_once('/').map(|(t, _)| t.to_owned())));
    tenants.sort();
    tenants.dedup();
    for t in tenants {
        let head = log.head(&t).await?;
        let snap = log.snapshot_seq(&t).await?.map_or("-".to_owned(), |s| s.to_string());
        let (owner, epoch) = owners
            .iter()
            .find(|o| o.tenant == t)
            .map_or(("(none)".to_owned(), "-".to_owned()), |o| (o.node.clone(), o.epoch.to_string()));
        let lags: Vec<String> = standbys
            .iter()
            .filter_map(|(k, v)| {
                let (tenant, node) = k.split_once('/')?;
                (tenant == t && node != owner)
                    .then(|| format!("{node} ({})", head.saturating_sub(v.parse().unwrap_or(0))))
            })
            .collect();
        println!("{t:<38} {owner:<8} {epoch:>8} {head:>10} {snap:>10}  {}", lags.join(", "));
    }
    for (t, node) in moves {
        println!("move pending: {t} to {node}");
    }
    let _ = own.resign().await;
    Ok(())
}

async fn move_to(c: ClusterConfig, tenant: &str, to: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        c.nodes.iter().any(|n| n == to),
        "{to} is not one of this cluster's nodes ({})",
        c.nodes.join(", ")
    );
    let mut own = admin(&c).await?;
    let before = own.owners().await?.into_iter().find(|o| o.tenant == tenant);
    let Some(before) = before else { anyhow::bail!("no node owns {tenant} now: nothing to move") };
    if before.node == to {
        println!("{tenant} is already on {to}");
        return Ok(());
    }
    own.request_move(tenant, to).await?;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(o) = own.owners().await?.into_iter().find(|o| o.tenant == tenant && o.node == to) {
            println!(
                "{tenant} moved from {} to {to} in {:.2} s (epoch {} -> {})",
                before.node,
                started.elapsed().as_secs_f64(),
                before.epoch,
                o.epoch
            );
            let _ = own.resign().await;
            return Ok(());
        }
    }
    let _ = own.clear_move(tenant).await;
    let _ = own.resign().await;
    anyhow::bail!("{to} did not take {tenant} within 30 s; the move was withdrawn")
}
