//! What the channels add to one conversation: email (inbound threading and
//! outbound messages with recorded Message-IDs), appointments and callback
//! requests. Each operation runs in one tenant transaction with its audit
//! record, under the same policy checks as the continuity operations.

pub mod appointments;
pub mod callbacks;
pub mod email;

use std::fmt;

use zeroize::Zeroizing;

pub use appointments::{AppointmentView, BookRequest, ChangeRequest, book, change};
pub use callbacks::{CallbackRequest, CallbackView, Claim, claim, request};

/// How a tenant sends email (from `throughline tenant email`).
#[derive(Clone)]
pub struct EmailSettings {
    pub from_address: String,
    pub from_name: String,
    /// Without a relay, outbound messages are handed back to the caller.
    pub smtp: Option<Smtp>,
}

#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<Zeroizing<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or a trusted segment).
    None,
    StartTls,
    /// Implicit TLS (SMTPS, usually port 465).
    Tls,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(SmtpTls::None),
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Tls),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let smtp = self.smtp.as_ref().map(|s| format!("{}:{} {}", s.host, s.port, s.tls.as_str()));
        write!(f, "EmailSettings(from {}, smtp {:?}, password [REDACTED])", self.from_address, smtp)
    }
}

impl EmailSettings {
    /// Until an operator sets one, a tenant sends from a placeholder address
    /// on a reserved domain and hands messages to its gateway.
    pub fn placeholder(tenant_name: &str) -> Self {
        EmailSettings {
            from_address: format!("noreply@{tenant_name}.invalid"),
            from_name: tenant_name.to_owned(),
            smtp: None,
        }
    }

    /// The domain our Message-IDs use.
    pub fn domain(&self) -> &str {
        self.from_address.rsplit_once('@').map(|(_, d)| d).unwrap_or("throughline.invalid")
    }
}

/// The associated data sealing a tenant's SMTP password under the master key.
pub fn smtp_password_aad(tenant: &store::ids::TenantId) -> Vec<u8> {
    format!("tenant_email/{tenant}/smtp_password").into_bytes()
}

/// A tenant's email settings from the system store, the SMTP password
/// unsealed with the master key (held by the running server).
pub fn email_settings(
    tenant: &store::ids::TenantId,
    tenant_name: &str,
    row: Option<store::EmailSettingsRow>,
    keyring: &crypto::UnlockedKeyring,
) -> Result<EmailSettings, crypto::CryptoError> {
    let Some(row) = row else { return Ok(EmailSettings::placeholder(tenant_name)) };
    let smtp = match row.smtp {
        None => None,
        Some(s) => {
            let password = match &s.password_sealed {
                Some(sealed) => {
                    let bytes = keyring.open_with_master(&smtp_password_aad(tenant), sealed)?;
                    let text = std::str::from_utf8(&bytes).map_err(|_| crypto::CryptoError::Decrypt)?;
                    Some(Zeroizing::new(text.to_owned()))
                }
                None => None,
            };
            let tls = SmtpTls::parse(&s.tls).unwrap_or(SmtpTls::StartTls);
            Some(Smtp { host: s.host, port: s.port, tls, user: s.user, password })
        }
    };
    Ok(EmailSettings { from_address: row.from_address, from_name: row.from_name, smtp })
}

/// Limits on what channels may store.
pub mod limits {
    /// Largest raw RFC 5322 message accepted by `POST /v1/email/inbound`.
    pub const EMAIL_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
    /// Largest single attachment (decoded).
    pub const ATTACHMENT_BYTES: usize = 7 * 1024 * 1024;
    pub const ATTACHMENTS_PER_MESSAGE: usize = 20;
    /// Reply text kept as one turn (longer text is cut, marked as cut).
    pub const EMAIL_TURN_BYTES: usize = 64 * 1024;
    pub const SUBJECT_CHARS: usize = 200;
    pub const OUTBOUND_TEXT_BYTES: usize = 16 * 1024;
    pub const REASON_BYTES: usize = 1024;
    /// How long a voice agent's claim on a callback lasts.
    pub const CALLBACK_CLAIM_MS: i64 = 15 * 60_000;
    pub const CALLBACK_WINDOW_MAX_MS: i64 = 7 * 86_400_000;
    pub const CALLBACK_LEAD_MAX_MS: i64 = 30 * 86_400_000;
}

/// RFC 3339 with the offset the caller gave: (UTC ms, offset minutes).
/// Offsets beyond ±18:00 (which no zone uses) are bad input.
pub fn parse_time(field: &'static str, raw: &str) -> Result<(i64, i32), crate::ContinuityError> {
    let bad = |why: &str| {
        crate::ContinuityError::bad(
            "invalid_time",
            format!("{field} must be an RFC 3339 time with an offset{why}, e.g. 2027-03-16T14:00:00-07:00"),
        )
    };
    let t =
        time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339).map_err(|_| bad(""))?;
    let offset = i32::from(t.offset().whole_minutes());
    if offset.abs() > crate::calendar::MAX_OFFSET_MIN || t.offset().seconds_past_minute() != 0 {
        return Err(bad(" of at most ±18:00"));
    }
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad(""))?;
    Ok((ms, offset))
}

pub(crate) use crate::calendar::format_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_their_offset() {
        let (ms, off) = parse_time("starts_at", "2026-12-01T14:00:00-08:00").unwrap();
        assert_eq!(off, -480);
        assert_eq!(format_time(ms, off), "2026-12-01T14:00:00-08:00");
        assert_eq!(format_time(ms, 0), "2026-12-01T22:00:00Z");
        assert!(parse_time("starts_at", "next Tuesday").is_err());
        assert!(parse_time("starts_at", "2026-12-01T14:00:00").is_err());
        for far in ["2027-03-16T14:00:00+18:01", "2027-03-16T14:00:00-23:59", "2027-03-16T14:00:00+19:00"] {
            let e = parse_time("starts_at", far).unwrap_err();
            assert!(matches!(e, crate::ContinuityError::Invalid { code: "invalid_time", .. }), "{far}");
        }
        assert_eq!(parse_time("starts_at", "2027-03-16T14:00:00+18:00").unwrap().1, 18 * 60);
    }
}
