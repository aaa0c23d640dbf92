//! `throughline link list|unlink`: see how a patient's identifiers were
//! linked, and undo a wrong link (the row and its provenance stay).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use server::clock::rfc3339;
use server::{Clock as _, Installation, SystemClock};
use store::ids::CustomerId;

use super::passphrase::Source;

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// A patient's identifier links: kind, provenance, dates (never the value).
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        customer: String,
    },
    /// Undo one link; it no longer resolves, its provenance is kept, the act is audited.
    Unlink {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        customer: String,
        #[arg(long)]
        link: i64,
    },
}

pub fn run(data_dir: &Path, source: &Source, cmd: LinkCommand) -> anyhow::Result<()> {
    let (tenant, customer) = match &cmd {
        LinkCommand::List { tenant, customer } | LinkCommand::Unlink { tenant, customer, .. } => (tenant, customer),
    };
    let customer = CustomerId::parse(customer).context("--customer must be a cus_… id")?;
    let inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    let mut store = inst.open_tenant(tenant)?;
    match cmd {
        LinkCommand::List { .. } => {
            for l in store.links(&customer)? {
                let state = match (l.unlinked_at, &l.unlinked_by) {
                    (Some(at), by) => format!("unlinked {} by {}", rfc3339(at), by.as_deref().unwrap_or("?")),
                    (None, _) => "linked".into(),
                };
                println!(
                    "{}\t{}\t{}\tcreated {}\tlast seen {}\t{state}",
                    l.id,
                    l.kind,
                    l.provenance,
                    rfc3339(l.created_at),
                    rfc3339(l.last_seen)
                );
            }
        }
        LinkCommand::Unlink { link, .. } => {
            if !store.unlink(&customer, link, inst.operator(), SystemClock.now_ms())? {
                bail!("no live link {link} for {customer}");
            }
            println!("unlinked {link} from {customer}; its provenance is kept");
        }
    }
    Ok(())
}
