//! `throughline init`: a new data directory with its keyring and system store.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use crypto::KdfParams;
use server::{Installation, SystemClock};

use super::passphrase::Source;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// argon2id memory cost in MiB (at least 19).
    #[arg(long, default_value_t = 64)]
    pub kdf_memory_mib: u32,
    /// argon2id passes (at least 2).
    #[arg(long, default_value_t = 3)]
    pub kdf_iterations: u32,
}

pub fn run(data_dir: &Path, source: &Source, args: &InitArgs) -> anyhow::Result<()> {
    let passphrase = source.get_new()?;
    let kdf = KdfParams::new(args.kdf_memory_mib.saturating_mul(1024), args.kdf_iterations, 1)?;
    let started = Instant::now();
    let inst = Installation::init(data_dir, &passphrase, kdf, Arc::new(SystemClock))?;
    println!("initialised {}", inst.data_dir().root().display());
    println!("installation {}", inst.installation_id());
    println!(
        "master key: argon2id, {} MiB, {} passes ({} ms here); keep the passphrase safe: nothing can be recovered without it",
        args.kdf_memory_mib,
        args.kdf_iterations,
        started.elapsed().as_millis()
    );
    Ok(())
}
