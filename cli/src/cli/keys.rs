//! `throughline keys rotate-passphrase`: the keyring under a new passphrase
//! (crash-safe: `server::rotation`); the old one stops working.
//! `throughline keys rotate-tenant NAME`: a tenant's new root key, its store
//! re-keyed (crash-safe: `server::tenant_rotation`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::{ExposeSecret as _, SecretString};
use server::rotation::CrashAt;
use server::tenant_rotation::TenantCrashAt;
use zeroize::Zeroizing;

use super::passphrase::{MIN_LEN, Source};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every key under a new passphrase (a new argon2id master key).
    /// Backups made before keep needing the old passphrase.
    RotatePassphrase {
        /// A file whose first line is the new passphrase (prompted for otherwise).
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
        /// Tests only: stop the process dead at a step (after-next, after-reseal, after-rename).
        #[arg(long, hide = true)]
        danger_crash_at: Option<String>,
    },
    /// A new root key for one tenant: the store re-encrypted, patient keys
    /// re-wrapped, blind indexes re-keyed, a new audit key whose first
    /// checkpoint the old key also signs. Stop the server first.
    RotateTenant {
        name: String,
        /// Tests only: stop the process dead at a step (after-copy, after-stage, after-rename).
        #[arg(long, hide = true)]
        danger_crash_at: Option<String>,
    },
}

pub fn run(data_dir: &Path, source: &Source, cmd: KeysCommand) -> anyhow::Result<()> {
    let (new_passphrase_file, danger_crash_at) = match cmd {
        KeysCommand::RotatePassphrase { new_passphrase_file, danger_crash_at } => {
            (new_passphrase_file, danger_crash_at)
        }
        KeysCommand::RotateTenant { name, danger_crash_at } => {
            return rotate_tenant(data_dir, source, &name, danger_crash_at);
        }
    };
    let crash = match danger_crash_at.as_deref() {
        None => None,
        Some("after-next") => Some(CrashAt::AfterNext),
        Some("after-reseal") => Some(CrashAt::AfterReseal),
        Some("after-rename") => Some(CrashAt::AfterRename),
        Some(other) => anyhow::bail!("--danger-crash-at: unknown step {other}"),
    };
    let new = match &new_passphrase_file {
        Some(p) => {
            let raw =
                Zeroizing::new(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?);
            SecretString::from(raw.lines().next().unwrap_or_default().to_owned())
        }
        None => Source { file: None }.get_new()?,
    };
    anyhow::ensure!(
        new.expose_secret().chars().count() >= MIN_LEN,
        "the new passphrase must be at least {MIN_LEN} characters"
    );
    let mut inst = super::open(data_dir, source)?;
    let n = inst.rotate_passphrase(&new, crash)?;
    println!(
        "the keyring is now under the new passphrase ({n} sealed secrets re-sealed); the old passphrase no longer opens it"
    );
    Ok(())
}

fn rotate_tenant(data_dir: &Path, source: &Source, name: &str, crash: Option<String>) -> anyhow::Result<()> {
    let crash = match crash.as_deref() {
        None => None,
        Some("after-copy") => Some(TenantCrashAt::AfterCopy),
        Some("after-stage") => Some(TenantCrashAt::AfterStage),
        Some("after-rename") => Some(TenantCrashAt::AfterRename),
        Some(other) => anyhow::bail!("--danger-crash-at: unknown step {other}"),
    };
    let mut inst = super::open(data_dir, source)?;
    let r = inst.rotate_tenant_key(name, crash)?;
    println!(
        "tenant {name} has a new root key: {} patient keys re-wrapped, {} identifiers and {} pending identifiers re-indexed, {} sealed items re-sealed",
        r.patients, r.identifiers, r.pending, r.resealed
    );
    println!(
        "dropped {} index entries that cannot be re-keyed (call references, email Message-IDs, lockout subjects); revoked {} resume links",
        r.dropped, r.links_revoked
    );
    println!("the handover checkpoint, signed by the old audit key and the new:\n{}", r.handover.trim_end());
    println!("new verifier key: `throughline audit key --tenant {name}`");
    Ok(())
}
