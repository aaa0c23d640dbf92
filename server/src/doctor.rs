//! `throughline doctor`: a checklist over an installation, one verdict a
//! line, for the clinic's IT person (and a monitoring job: any failure makes
//! the exit non-zero). It opens everything the server would, read-only in
//! intent: the directory's permissions, the keyring (checksum, passphrase),
//! the system store and every tenant store (SQLCipher active, `PRAGMA
//! integrity_check`, the audit chain against its last checkpoint and that
//! checkpoint's age), the CA's and certificates' expiry, the clock against
//! the newest audit record, an unfinished restore, and free disk space.

use crate::{Error, Installation};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of the checklist (never PHI: names, ids, counts, dates).
#[derive(Clone, Debug)]
pub struct Check {
    pub verdict: Verdict,
    pub what: String,
    pub detail: String,
}

pub(crate) fn check(verdict: Verdict, what: impl Into<String>, detail: impl Into<String>) -> Check {
    Check { verdict, what: what.into(), detail: detail.into() }
}

const DAY_MS: i64 = 86_400_000;
/// A checkpoint older than this is a warning (`serve` signs one an hour).
const CHECKPOINT_STALE_MS: i64 = DAY_MS;
/// Certificates expiring within this are a warning.
const EXPIRY_WARN_MS: i64 = 30 * DAY_MS;
/// Less free space than this is a failure; ten times it, a warning.
const DISK_FLOOR: u64 = 512 * 1024 * 1024;

fn expiry(what: String, not_after: i64, now: i64) -> Check {
    let days = (not_after - now) / DAY_MS;
    if not_after <= now {
        check(Verdict::Fail, what, "expired")
    } else if not_after - now < EXPIRY_WARN_MS {
        check(Verdict::Warn, what, format!("expires in {days} days"))
    } else {
        check(Verdict::Ok, what, format!("valid for {days} more days"))
    }
}

impl Installation {
    /// Runs every check; only a failure to open the installation at all is an `Err`.
    pub fn doctor(&self) -> Result<Vec<Check>, Error> {
        let now = self.now_ms();
        let mut out = Vec::new();
        let root = self.data_dir().root().to_owned();
        out.push(permissions(&root));
        out.push(check(Verdict::Ok, "keyring", "checksum and passphrase verified"));
        out.push(if root.join(crate::installation::RESTORE_MARKER).exists() {
            check(Verdict::Fail, "restore", "a restore did not finish: restore again into an empty directory")
        } else {
            check(Verdict::Ok, "restore", "no unfinished restore")
        });
        let system = self.system();
        out.push(match (system.integrity_check(), system.verify_audit()) {
            (Ok(i), Ok(n)) if i == "ok" => {
                check(Verdict::Ok, "system store", format!("integrity ok, {n} audit records verified"))
            }
            (Ok(i), Ok(_)) => check(Verdict::Fail, "system store", format!("integrity_check: {i}")),
            (Err(e), _) | (_, Err(e)) => check(Verdict::Fail, "system store", e.to_string()),
        });
        match system.ca_cert_pem() {
            Ok(Some(pem)) => out.push(match crate::tls::not_after_ms(&pem) {
                Some(t) => expiry("certificate authority".into(), t, now),
                None => check(Verdict::Fail, "certificate authority", "the CA certificate does not parse"),
            }),
            _ => out.push(check(Verdict::Fail, "certificate authority", "no CA")),
        }
        if let Ok(retired) = system.retired_cas()
            && let Some(r) = retired.iter().find(|r| r.trusted_until > now)
        {
            let left = self
                .certificates()?
                .iter()
                .filter(|c| c.ca_generation == r.generation && c.channel != "server")
                .filter(|c| c.revoked_at.is_none() && !c.tenant_deleted && c.not_after > now)
                .count();
            out.push(check(
                if left > 0 { Verdict::Warn } else { Verdict::Ok },
                "CA rotation",
                format!(
                    "CA {} is trusted until {}; {left} channel certificate(s) from it still to reissue",
                    r.generation,
                    crate::clock::rfc3339(r.trusted_until)
                ),
            ));
        }
        out.push(match system.last_action_at(audit::Action::BackupCreate) {
            Ok(Some(at)) if now - at > 2 * DAY_MS => {
                check(Verdict::Warn, "last backup", format!("{} days ago (`throughline backup`)", (now - at) / DAY_MS))
            }
            Ok(Some(at)) => check(Verdict::Ok, "last backup", format!("{:.1} h ago", (now - at) as f64 / 3_600_000.0)),
            Ok(None) => check(Verdict::Warn, "last backup", "none yet (`throughline backup`, or `serve --backup-dir`)"),
            Err(e) => check(Verdict::Fail, "last backup", e.to_string()),
        });
        if let Ok(Some(id)) = system.server_identity() {
            out.push(expiry("server certificate".into(), id.not_after, now));
        }
        let certs = self.certificates()?;
        let live: Vec<_> = certs
            .iter()
            .filter(|c| c.channel != "server" && c.revoked_at.is_none() && !c.tenant_deleted && c.not_after > now)
            .collect();
        let soon = live.iter().filter(|c| c.not_after - now < EXPIRY_WARN_MS).count();
        out.push(if soon > 0 {
            check(
                Verdict::Warn,
                "channel certificates",
                format!("{soon} of {} expire within 30 days (`cert list`)", live.len()),
            )
        } else {
            check(Verdict::Ok, "channel certificates", format!("{} in force, none expiring within 30 days", live.len()))
        });
        let mut newest = 0;
        for t in self.tenants()? {
            let what = format!("tenant {}", t.name);
            let store = match self.open_tenant(&t.name) {
                Ok(s) => s,
                Err(e) => {
                    out.push(check(Verdict::Fail, what, e.to_string()));
                    continue;
                }
            };
            let cipher = store.cipher_version().ok().flatten();
            let integrity = store.integrity_check().unwrap_or_else(|e| e.to_string());
            if cipher.is_none() || integrity != "ok" {
                out.push(check(Verdict::Fail, what, format!("SQLCipher {cipher:?}, integrity_check: {integrity}")));
                continue;
            }
            match store.integrity() {
                Ok(i) => {
                    newest = newest.max(store.audit_records().ok().and_then(|r| r.last().map(|r| r.at)).unwrap_or(0));
                    out.push(match (&i.broken, i.checkpoint) {
                        (Some((seq, why)), _) => {
                            check(Verdict::Fail, what, format!("audit chain broken at record {seq}: {why}"))
                        }
                        (None, Some((size, _, false))) => check(
                            Verdict::Fail,
                            what,
                            format!("the audit trail no longer matches its checkpoint at record {size}"),
                        ),
                        (None, None) => check(
                            Verdict::Warn,
                            what,
                            format!("{} audit records verified; no checkpoint yet", i.records),
                        ),
                        (None, Some((_, at, true))) if now - at > CHECKPOINT_STALE_MS => check(
                            Verdict::Warn,
                            what,
                            format!(
                                "{} audit records verified; the last checkpoint is {} h old",
                                i.records,
                                (now - at) / 3_600_000
                            ),
                        ),
                        (None, Some((size, _, true))) => check(
                            Verdict::Ok,
                            what,
                            format!("store ok, {} audit records verified, checkpoint at {size}", i.records),
                        ),
                    });
                }
                Err(e) => out.push(check(Verdict::Fail, what, e.to_string())),
            }
        }
        out.push(if newest > now + 5 * 60_000 {
            check(
                Verdict::Fail,
                "clock",
                "this machine's clock is behind the newest audit record: fix the time (NTP) before serving",
            )
        } else {
            check(Verdict::Ok, "clock", "not behind the audit trail")
        });
        out.push(match fs4::available_space(&root) {
            Ok(free) if free < DISK_FLOOR => check(Verdict::Fail, "disk", format!("{} MiB free", free >> 20)),
            Ok(free) if free < 10 * DISK_FLOOR => check(Verdict::Warn, "disk", format!("{} MiB free", free >> 20)),
            Ok(free) => check(Verdict::Ok, "disk", format!("{} MiB free", free >> 20)),
            Err(e) => check(Verdict::Warn, "disk", format!("free space unknown: {}", e.kind())),
        });
        Ok(out)
    }
}

#[cfg(unix)]
fn permissions(root: &std::path::Path) -> Check {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::metadata(root) {
        Ok(m) if m.permissions().mode() & 0o077 == 0 => check(Verdict::Ok, "data directory", "owner-only (0700)"),
        Ok(m) => check(
            Verdict::Fail,
            "data directory",
            format!("mode {:o}: others may read it (chmod 700)", m.permissions().mode() & 0o777),
        ),
        Err(e) => check(Verdict::Fail, "data directory", e.kind().to_string()),
    }
}

#[cfg(not(unix))]
fn permissions(_root: &std::path::Path) -> Check {
    check(Verdict::Warn, "data directory", "permissions not checked on this platform")
}
