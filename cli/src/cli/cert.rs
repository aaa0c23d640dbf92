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
    /// Print the CA certificate(s) the server presents and trusts (PEM), e.g.
    /// to install in the clinic's browsers for the console.
    Ca,
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
        for (name, _) in FILES {
            let path = out.join(name);
            if path.exists() {
                bail!("{} already exists; choose another --out directory", path.display());
            }
        }
    }
    let mut inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    match cmd {
        CertCommand::Issue { tenant, channel, out, days } => {
            // The files are created (empty) before the certificate is recorded
            // and filled after: an unwritable --out records nothing, and a
            // write that fails afterwards revokes the certificate it recorded.
            let mut files = Outputs::create(&out)?;
            let cert = match inst.issue_channel_cert(&tenant, channel, days) {
                Ok(c) => c,
                Err(e) => {
                    files.remove();
                    return Err(e.into());
                }
            };
            // Both CAs during a rotation's overlap: the server may present either.
            let written = inst
                .trusted_ca_bundle()
                .map_err(anyhow::Error::from)
                .and_then(|ca| files.fill([ca.as_bytes(), cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()]));
            if let Err(e) = written {
                files.remove();
                inst.revoke_cert(&cert.serial, "files not written")?;
                return Err(e.context(format!("certificate {} revoked: its files could not be written", cert.serial)));
            }
            println!("serial {}", cert.serial);
            println!(
                "issued {channel} certificate for tenant {tenant}, valid until {}; wrote {}/{{client.crt,client.key,ca.crt}}",
                rfc3339(cert.not_after_ms),
                out.display()
            );
        }
        CertCommand::Ca => print!("{}", inst.trusted_ca_bundle()?),
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

/// ca.crt, client.crt (0644) and client.key (0600), in this order.
const FILES: [(&str, u32); 3] = [("ca.crt", 0o644), ("client.crt", 0o644), ("client.key", 0o600)];

/// The three files of `cert issue`, created empty and new.
struct Outputs {
    created: Vec<(PathBuf, fs::File)>,
    /// The outermost directory this command created, removed with the files.
    new_dir: Option<PathBuf>,
}

impl Outputs {
    fn create(out: &Path) -> anyhow::Result<Self> {
        let new_dir =
            out.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).last().map(Path::to_path_buf);
        fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let mut this = Outputs { created: Vec::new(), new_dir };
        for (name, mode) in FILES {
            let path = out.join(name);
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
            #[cfg(not(unix))]
            let _ = mode;
            match options.open(&path) {
                Ok(f) => this.created.push((path, f)),
                Err(e) => {
                    this.remove();
                    return Err(anyhow::anyhow!("cannot create {}: {e}; nothing was issued", path.display()));
                }
            }
        }
        Ok(this)
    }

    fn fill(&mut self, contents: [&[u8]; 3]) -> anyhow::Result<()> {
        for ((path, f), bytes) in self.created.iter_mut().zip(contents) {
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    fn remove(&mut self) {
        for (path, _) in self.created.drain(..) {
            let _ = fs::remove_file(path);
        }
        // The directories this command made hold nothing else.
        if let Some(dir) = self.new_dir.take() {
            let _ = fs::remove_dir_all(&dir);
        }
    }
}
