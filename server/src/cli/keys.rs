//! `throughline keys rotate-passphrase`: the keyring under a new passphrase
//! (crash-safe: `throughline::rotation`); the old one stops working.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::{ExposeSecret as _, SecretString};
use throughline::rotation::CrashAt;
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
}

pub fn run(data_dir: &Path, source: &Source, cmd: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::RotatePassphrase { new_passphrase_file, danger_crash_at } = cmd;
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
