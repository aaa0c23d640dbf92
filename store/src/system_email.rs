//! Per-tenant email settings in the system store: the From address and an
//! optional SMTP relay (its password sealed under the master key by the
//! caller; this module never sees it in the clear).

use rusqlite::{OptionalExtension, params};

use super::audit_log::{self, AuditEntry, AuditTable};
use super::{StoreError, SystemStore};
use crate::ids::TenantId;

/// A tenant's email settings as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailSettingsRow {
    pub from_address: String,
    pub from_name: String,
    pub smtp: Option<SmtpRow>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpRow {
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    pub user: Option<String>,
    pub password_sealed: Option<Vec<u8>>,
}

impl std::fmt::Debug for EmailSettingsRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let smtp = self.smtp.as_ref().map(|s| format!("{}:{} ({})", s.host, s.port, s.tls));
        write!(f, "EmailSettingsRow({}, smtp {:?}, password [REDACTED])", self.from_address, smtp)
    }
}

impl SystemStore {
    /// Sets (replaces) a tenant's email settings, audited.
    pub fn set_tenant_email(
        &mut self,
        id: &TenantId,
        row: &EmailSettingsRow,
        operator: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let smtp = row.smtp.as_ref();
        tx.execute(
            "INSERT INTO tenant_email
                (tenant_id, from_address, from_name, smtp_host, smtp_port, smtp_tls, smtp_user, smtp_password_sealed, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (tenant_id) DO UPDATE SET from_address = ?2, from_name = ?3, smtp_host = ?4, smtp_port = ?5,
                smtp_tls = ?6, smtp_user = ?7, smtp_password_sealed = ?8, updated_at = ?9",
            params![
                id.as_str(),
                row.from_address,
                row.from_name,
                smtp.map(|s| s.host.as_str()),
                smtp.map(|s| s.port),
                smtp.map(|s| s.tls.as_str()),
                smtp.and_then(|s| s.user.as_deref()),
                smtp.and_then(|s| s.password_sealed.as_deref()),
                now
            ],
        )?;
        let entry = AuditEntry {
            tenant_id: Some(id.as_str()),
            ..AuditEntry::operator(operator, audit::Action::TenantEmailSet)
        };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    /// A tenant's email settings, if set.
    pub fn tenant_email(&self, id: &TenantId) -> Result<Option<EmailSettingsRow>, StoreError> {
        type Raw = (String, String, Option<String>, Option<u16>, Option<String>, Option<String>, Option<Vec<u8>>);
        let raw: Option<Raw> = self
            .conn
            .query_row(
                "SELECT from_address, from_name, smtp_host, smtp_port, smtp_tls, smtp_user, smtp_password_sealed
                 FROM tenant_email WHERE tenant_id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()?;
        Ok(raw.map(|(from_address, from_name, host, port, tls, user, password_sealed)| EmailSettingsRow {
            from_address,
            from_name,
            smtp: match (host, port, tls) {
                (Some(host), Some(port), Some(tls)) => Some(SmtpRow { host, port, tls, user, password_sealed }),
                _ => None,
            },
        }))
    }
}
