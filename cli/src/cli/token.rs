//! `throughline token revoke`: end a patient's resume links at once (a
//! phone lost, a link forwarded, a shared computer), audited.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use server::{Clock as _, Installation, SystemClock};
use store::ids::CustomerId;

use super::passphrase::Source;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke every live resume token of a patient.
    Revoke {
        #[arg(long)]
        tenant: String,
        /// The patient's pseudonymous id (cus_…).
        #[arg(long)]
        customer: String,
    },
}

pub fn run(data_dir: &Path, source: &Source, cmd: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Revoke { tenant, customer } = cmd;
    let customer = CustomerId::parse(&customer).context("--customer must be a cus_… id")?;
    let inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    let mut store = inst.open_tenant(&tenant)?;
    let n = store.revoke_tokens(&customer, inst.operator(), SystemClock.now_ms())?;
    println!("revoked {n} resume token(s) of {customer}");
    Ok(())
}
