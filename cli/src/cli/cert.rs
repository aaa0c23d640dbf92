//! `throughline cert issue|revoke|list`: channel certificates from the
//! clinic's CA.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use policy::Channel;
use server::clock::rfc3339;
use server::{Installation, SystemClock};
use store::Revocation;

use super::passphrase::Source;

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a channel certificate bound to one tenant and one channel.
    Issue {
        #[arg(long)]
        tenant: String,
        /// voice, chat, email or sms.
        #[arg(long)]
        channel: Channel,
        /// Directory for client.crt, client.key and ca.crt (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Validity in days (1 to 1825).
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Revoke a certificate by serial; a running server refuses it within seconds.
    Revoke {
        serial: String,
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// List the CAs and the issued certificates: which CA issued each, and
    /// which expire within 30 days.
    List,
    /// Replace the CA. Certificates from the old CA stay accepted for the
    /// overlap (reissue them in it); restart `serve` to present the new CA.
    RotateCa {
        /// How long the old CA's certificates stay accepted.
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        overlap: std::time::Duration,
    },
}

const SOON_MS: i64 = 30 * 86_400_000;

pub fn run(data_dir: &Path, source: &Source, cmd: CertCommand) -> anyhow::Result<()> {
    if let CertCommand::Issue { out, .. } = &cmd {
        for name in FILES {
            let path = out.join(name);
            if path.exists() {
                bail!("{} already exists; choose another --out directory", path.display());
            }
        }
    }
    let mut inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    match cmd {
        CertCommand::Issue { tenant, channel, out, days } => {
            let cert = inst.issue_channel_cert(&tenant, channel, days)?;
            // Both CAs during a rotation's overlap: the server may present either.
            let ca = inst.trusted_ca_bundle()?;
            fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            write(&out.join("ca.crt"), ca.as_bytes(), 0o644)?;
            write(&out.join("client.crt"), cert.cert_pem.as_bytes(), 0o644)?;
            write(&out.join("client.key"), cert.key_pem.as_bytes(), 0o600)?;
            println!("serial {}", cert.serial);
            println!(
                "issued {channel} certificate for tenant {tenant}, valid until {}; wrote {}/{{client.crt,client.key,ca.crt}}",
                rfc3339(cert.not_after_ms),
                out.display()
            );
        }
        CertCommand::Revoke { serial, reason } => match inst.revoke_cert(&serial, &reason)? {
            Revocation::Revoked => println!("revoked {serial}"),
            Revocation::AlreadyRevoked => println!("{serial} was already revoked"),
            Revocation::Unknown => bail!("no certificate with serial {serial}"),
        },
        CertCommand::List => {
            let now = inst.now_ms();
            let soon = |t: i64| if t > now && t - now < SOON_MS { " (expires within 30 days)" } else { "" };
            let (generation, retired) = inst.ca_generations()?;
            if let Some(t) = server::tls::not_after_ms(&inst.ca_cert_pem()?) {
                println!("ca {generation}\tcurrent\tuntil {}{}", rfc3339(t), soon(t));
            }
            for r in retired {
                let state = if r.trusted_until > now { "retired, still trusted" } else { "retired" };
                println!("ca {}\t{state}\ttrusted until {}", r.generation, rfc3339(r.trusted_until));
            }
            for c in inst.certificates()? {
                let status = match (c.revoked_at, c.tenant_deleted, c.ca_trusted_until) {
                    (Some(at), _, _) => format!("revoked {}", rfc3339(at)),
                    (None, true, _) => "tenant deleted".into(),
                    (None, false, Some(t)) if t <= now => "its CA was retired".into(),
                    (None, false, Some(t)) => format!("active until its CA's overlap ends {}; reissue", rfc3339(t)),
                    (None, false, None) if c.not_after <= now => "expired".into(),
                    (None, false, None) => format!("active{}", soon(c.not_after)),
                };
                println!(
                    "{}\t{}\t{}\tuntil {}\t{status}\tca {}",
                    c.serial,
                    c.tenant_name.as_deref().unwrap_or("-"),
                    c.channel,
                    rfc3339(c.not_after),
                    c.ca_generation
                );
            }
        }
        CertCommand::RotateCa { overlap } => {
            let r = inst.rotate_ca(overlap)?;
            println!(
                "CA generation {} is current; certificates from the old CA are accepted until {}",
                r.generation,
                rfc3339(r.trusted_until)
            );
            println!(
                "restart `serve` to present it; reissue the {} channel certificate(s) from the old CA before then (`cert list`)",
                r.to_reissue
            );
        }
    }
    Ok(())
}

const FILES: [&str; 3] = ["client.crt", "client.key", "ca.crt"];

fn write(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
