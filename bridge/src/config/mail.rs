//! `[lmtp]` and `[[mailbox]]`: where Postfix delivers, and which tenant's
//! email certificate each recipient domain is stored with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLmtp {
    listen: Option<String>,
    max_message_bytes: Option<usize>,
    hostname: Option<String>,
    socket_mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailbox {
    domain: Option<String>,
    certs: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LmtpListen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

#[derive(Clone, Debug)]
pub struct Lmtp {
    pub listen: LmtpListen,
    /// Larger messages are refused (552); the core takes at most 10 MiB.
    pub max_message_bytes: usize,
    /// Named in the greeting and the LHLO answer.
    pub hostname: String,
    /// The unix socket's permissions (0660 by default: give Postfix's group access).
    pub socket_mode: u32,
}

#[derive(Clone, Debug)]
pub struct Mailbox {
    /// Lowercase; a recipient at this domain is this mailbox's.
    pub domain: String,
    /// What `throughline cert issue --channel email --out` wrote.
    pub certs: PathBuf,
}

pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

pub(super) fn lmtp(raw: Option<RawLmtp>, base: &Path, errs: &mut Vec<String>) -> Option<Lmtp> {
    let raw = raw?;
    let listen = match raw.listen.as_deref() {
        Some(l) if l.starts_with("unix:") => Some(LmtpListen::Unix(base.join(&l["unix:".len()..]))),
        Some(l) => match l.parse::<SocketAddr>() {
            Ok(a) if a.port() == 25 => {
                errs.push("lmtp.listen: LMTP must not be offered on port 25 (RFC 2033)".to_owned());
                None
            }
            Ok(a) => Some(LmtpListen::Tcp(a)),
            Err(_) => {
                errs.push("lmtp.listen: \"unix:/path\" or an address:port such as \"127.0.0.1:2424\"".to_owned());
                None
            }
        },
        None => {
            errs.push("lmtp.listen: missing".to_owned());
            None
        }
    };
    let max_message_bytes = raw.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if !(1024..=DEFAULT_MAX_MESSAGE_BYTES).contains(&max_message_bytes) {
        errs.push(format!("lmtp.max_message_bytes: between 1024 and {DEFAULT_MAX_MESSAGE_BYTES} (the core's limit)"));
    }
    let socket_mode = match u32::from_str_radix(raw.socket_mode.as_deref().unwrap_or("0660"), 8) {
        Ok(m) if m <= 0o777 => m,
        _ => {
            errs.push("lmtp.socket_mode: an octal mode such as \"0660\"".to_owned());
            0o660
        }
    };
    let hostname = raw.hostname.unwrap_or_else(|| "throughline-bridge".to_owned());
    if hostname.is_empty() || hostname.contains(char::is_whitespace) {
        errs.push("lmtp.hostname: one word, a host name".to_owned());
    }
    Some(Lmtp { listen: listen?, max_message_bytes, hostname, socket_mode })
}

pub(super) fn mailboxes(raw: Vec<RawMailbox>, base: &Path, errs: &mut Vec<String>) -> Vec<Mailbox> {
    let mut out: Vec<Mailbox> = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let domain = m.domain.unwrap_or_default().trim().trim_start_matches('@').to_ascii_lowercase();
        let ok = !domain.is_empty()
            && domain.contains('.')
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            errs.push(format!("mailbox[{i}].domain: a domain such as \"intake.sunrise-clinic.example\""));
            continue;
        }
        if out.iter().any(|o| o.domain == domain) {
            errs.push(format!("mailbox[{i}].domain: {domain:?} is configured twice"));
            continue;
        }
        let Some(certs) = m.certs else {
            errs.push(format!("mailbox[{i}].certs: missing (what `cert issue --channel email --out` wrote)"));
            continue;
        };
        out.push(Mailbox { domain, certs: base.join(certs) });
    }
    out
}
