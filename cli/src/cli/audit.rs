//! `throughline audit checkpoint|key|export|verify|prove`. `verify` needs no
//! data directory and no passphrase: a compliance officer runs it on another
//! machine with the export, a checkpoint and the tenant's verifier key.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::{Subcommand, ValueEnum};
use server::audit_ops::Format;
use server::{Installation, SystemClock};

use super::passphrase::Source;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    /// FHIR R4 AuditEvent resources as NDJSON.
    Fhir,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Sign a checkpoint (origin, size, root) over the tenant's audit chain.
    Checkpoint {
        #[arg(long)]
        tenant: String,
        /// Also write the signed note here (keep a copy away from this machine).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the tenant's verifier key (verifies checkpoints; cannot sign).
    Key {
        #[arg(long)]
        tenant: String,
    },
    /// Export the tenant's audit trail.
    Export {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        #[arg(long)]
        out: PathBuf,
        /// Only records at or after this date (YYYY-MM-DD, UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only records before this date (YYYY-MM-DD, UTC) or RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
    },
    /// Verify a JSON Lines export offline: the chain, and against a checkpoint.
    Verify {
        file: PathBuf,
        /// A signed checkpoint note taken earlier.
        #[arg(long, requires = "key")]
        checkpoint: Option<PathBuf>,
        /// The tenant's verifier key (from `audit key`).
        #[arg(long)]
        key: Option<String>,
    },
    /// Consistency proof from an earlier checkpoint to now, or inclusion
    /// proof of one record in the current tree.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["from_checkpoint", "record"]))]
    Prove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        from_checkpoint: Option<PathBuf>,
        /// Sequence number of the record.
        #[arg(long)]
        record: Option<u64>,
    },
}

pub fn run(data_dir: &Path, source: &Source, cmd: AuditCommand) -> anyhow::Result<()> {
    if let AuditCommand::Verify { file, checkpoint, key } = &cmd {
        return verify(file, checkpoint.as_deref(), key.as_deref());
    }
    let inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    match cmd {
        AuditCommand::Checkpoint { tenant, out } => {
            let note = inst.audit_checkpoint(&tenant)?;
            if let Some(out) = out {
                std::fs::write(&out, &note).with_context(|| format!("cannot write {}", out.display()))?;
            }
            print!("{note}");
        }
        AuditCommand::Key { tenant } => println!("{}", inst.audit_verifier_key(&tenant)?.encode()),
        AuditCommand::Export { tenant, format, out, since, until } => {
            let range = (since.as_deref().map(parse_time).transpose()?, until.as_deref().map(parse_time).transpose()?);
            let file = std::fs::File::create_new(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let format = match format {
                ExportFormat::Jsonl => Format::Jsonl,
                ExportFormat::Csv => Format::Csv,
                ExportFormat::Fhir => Format::Fhir,
            };
            let n = match inst.audit_export(&tenant, format, range, &mut w).map_err(anyhow::Error::from).and_then(|n| {
                w.flush()?;
                Ok(n)
            }) {
                Ok(n) => n,
                Err(e) => {
                    // No half-written or empty export left behind to be mistaken for a trail.
                    drop(w);
                    let _ = std::fs::remove_file(&out);
                    return Err(e);
                }
            };
            println!("exported {n} audit records to {}", out.display());
        }
        AuditCommand::Prove { tenant, from_checkpoint, record } => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let proof = match (from_checkpoint, record) {
                (Some(path), _) => {
                    let note =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    let (old, new, root, proof) = inst.audit_prove(&tenant, &note)?;
                    println!("consistent: {old} -> {new} records, root {}", b64.encode(root));
                    proof
                }
                (None, Some(seq)) => {
                    let (size, root, proof) = inst.audit_inclusion(&tenant, seq)?;
                    println!("included: record {seq} in {size} records, root {}", b64.encode(root));
                    proof
                }
                (None, None) => bail!("give --from-checkpoint or --record"),
            };
            for h in proof {
                println!("{}", b64.encode(h));
            }
        }
        AuditCommand::Verify { .. } => unreachable!("handled above"),
    }
    Ok(())
}

fn verify(file: &Path, checkpoint: Option<&Path>, key: Option<&str>) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if audit::bundle::is_bundle(&bytes) {
        // A search's export from the console: each record proves into its checkpoint.
        let key = key.context("a console export verifies with the tenant's key: give --key (from `audit key`)")?;
        let v = audit::bundle::verify(&bytes, &audit::VerifierKey::parse(key)?)?;
        println!(
            "verified {} records: each unchanged and included in the signed checkpoint at size {}; {}",
            v.records,
            v.checkpoint_size,
            if v.complete {
                "exactly the records the signed search found (none dropped, repeated or added)"
            } else {
                "no signed list of records: this file cannot show that none were left out"
            }
        );
        return Ok(());
    }
    let records = audit::export::parse_jsonl(&bytes)?;
    let note = match checkpoint {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read checkpoint {}", p.display()))?),
        None => None,
    };
    let key = match key {
        Some(k) => Some(audit::VerifierKey::parse(k)?),
        None => None,
    };
    let (Some(note), Some(key)) = (note.as_deref(), key.as_ref()) else {
        if checkpoint.is_some() {
            bail!("--checkpoint needs --key");
        }
        let v = audit::export::verify(&records, None)?;
        match v.range {
            Some((a, b)) => println!("verified {} records ({a}..{b}): chain intact within the range", v.records),
            None => println!(
                "verified {} records: chain intact (no checkpoint given: truncation and re-signed rewrites are not ruled out)",
                v.records
            ),
        }
        return Ok(());
    };
    let v = audit::export::verify(&records, Some((note, key)))?;
    debug_assert!(v.range.is_none());
    println!(
        "verified {} records: chain intact, consistent with the signed checkpoint at size {}",
        v.records,
        v.checkpoint_size.unwrap_or(0)
    );
    Ok(())
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time, as unix milliseconds.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = match time::OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(_) => time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339)
            .with_context(|| format!("'{s}' is not a date (YYYY-MM-DD) or an RFC 3339 time"))?,
    };
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
}
