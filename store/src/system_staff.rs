//! Staff in the system store: accounts (never deleted), a clinician's
//! assigned patients, console sessions (keyed by the hash of the cookie's
//! id, so a copy of the store opens none), emergency-access grants and the
//! alerts compliance staff see.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::{StoreError, SystemStore};
use crate::ids::TenantId;

/// One staff account.
#[derive(Clone, Debug)]
pub struct StaffRow {
    pub id: String,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: String,
    pub break_glass: bool,
    pub disabled_at: Option<i64>,
    pub failed_logins: u32,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// What a login is checked against; kept apart from [`StaffRow`] so the
/// secrets are read only where they are needed, and zeroized after.
pub struct StaffSecrets {
    pub password_hash: Zeroizing<String>,
    pub totp_secret: Zeroizing<Vec<u8>>,
    pub totp_last_step: u64,
}

/// A console session as stored.
#[derive(Clone, Debug)]
pub struct StaffSessionRow {
    pub staff_id: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    /// The clinic's provider vouched for it.
    pub via_provider: bool,
}

/// An emergency-access grant.
#[derive(Clone, Debug)]
pub struct BreakGlassRow {
    pub id: String,
    pub staff_id: String,
    pub tenant_id: String,
    pub customer_id: String,
    pub reason: Zeroizing<String>,
    pub started_at: i64,
    pub expires_at: i64,
    pub review_outcome: Option<String>,
}

/// An alert: (at, kind, staff id, reference).
pub type AlertRow = (i64, String, Option<String>, Option<String>);

/// A new account.
pub struct NewStaff<'a> {
    pub id: &'a str,
    pub tenant_id: &'a TenantId,
    pub email: &'a str,
    pub role: &'a str,
    pub break_glass: bool,
    pub password_hash: &'a str,
    pub totp_secret: &'a [u8],
}

const STAFF_COLUMNS: &str =
    "id, tenant_id, email, role, break_glass, disabled_at, failed_logins, locked_until, created_at, last_login_at";

fn staff_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffRow> {
    Ok(StaffRow {
        id: r.get(0)?,
        tenant_id: TenantId::parse(&r.get::<_, String>(1)?)
            .ok_or_else(|| rusqlite::Error::InvalidColumnType(1, "tenant_id".into(), rusqlite::types::Type::Text))?,
        email: r.get(2)?,
        role: r.get(3)?,
        break_glass: r.get::<_, i64>(4)? == 1,
        disabled_at: r.get(5)?,
        failed_logins: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
        locked_until: r.get(7)?,
        created_at: r.get(8)?,
        last_login_at: r.get(9)?,
    })
}

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BreakGlassRow> {
    Ok(BreakGlassRow {
        id: r.get(0)?,
        staff_id: r.get(1)?,
        tenant_id: r.get(2)?,
        customer_id: r.get(3)?,
        reason: Zeroizing::new(r.get(4)?),
        started_at: r.get(5)?,
        expires_at: r.get(6)?,
        review_outcome: r.get(7)?,
    })
}

const GRANT_COLUMNS: &str = "id, staff_id, tenant_id, customer_id, reason, started_at, expires_at, review_outcome";

impl SystemStore {
    pub fn insert_staff(&mut self, s: &NewStaff<'_>, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO staff (id, tenant_id, email, role, break_glass, password_hash, totp_secret, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                s.id,
                s.tenant_id.as_str(),
                s.email,
                s.role,
                i64::from(s.break_glass),
                s.password_hash,
                s.totp_secret,
                now
            ],
        )?;
        Ok(())
    }

    pub fn staff_email_taken(&self, email: &str) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM staff WHERE email = ?1")?.exists([email])?)
    }

    pub fn staff(&self, id: &str) -> Result<Option<StaffRow>, StoreError> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = ?1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([id], staff_row).optional()?)
    }

    pub fn staff_by_email(&self, email: &str) -> Result<Option<StaffRow>, StoreError> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE email = ?1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([email], staff_row).optional()?)
    }

    pub fn staff_of_tenant(&self, tenant: &TenantId) -> Result<Vec<StaffRow>, StoreError> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE tenant_id = ?1 ORDER BY created_at, id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([tenant.as_str()], staff_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn staff_secrets(&self, id: &str) -> Result<Option<StaffSecrets>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT password_hash, totp_secret, totp_last_step FROM staff WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(StaffSecrets {
                    password_hash: Zeroizing::new(r.get(0)?),
                    totp_secret: Zeroizing::new(r.get(1)?),
                    totp_last_step: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(u64::MAX),
                })
            })
            .optional()?)
    }

    /// A good login: the failures are forgotten, the TOTP step is spent.
    pub fn staff_logged_in(&self, id: &str, totp_step: u64, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE staff SET failed_logins = 0, locked_until = NULL, totp_last_step = ?2, last_login_at = ?3
             WHERE id = ?1",
            params![id, i64::try_from(totp_step).unwrap_or(i64::MAX), now],
        )?;
        Ok(())
    }

    pub fn staff_failed(&self, id: &str, failures: u32, locked_until: Option<i64>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE staff SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
            params![id, i64::from(failures), locked_until],
        )?;
        Ok(())
    }

    /// Disables or re-enables an account; disabling ends its sessions in the
    /// same transaction (164.308(a)(3)(ii)(C)). Returns the sessions ended.
    pub fn set_staff_disabled(&mut self, id: &str, disabled: bool, now: i64) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE staff SET disabled_at = ?2, status_changed_at = ?3 WHERE id = ?1",
            params![id, disabled.then_some(now), now],
        )?;
        let ended = if disabled { tx.execute("DELETE FROM staff_sessions WHERE staff_id = ?1", [id])? } else { 0 };
        tx.commit()?;
        Ok(ended)
    }

    /// Every account's last disable or enable: (id, disabled, when).
    pub fn staff_status_changes(&self) -> Result<Vec<(String, bool, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, disabled_at IS NOT NULL, status_changed_at FROM staff WHERE status_changed_at IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A disable or enable made on another node (cluster mode), applied
    /// when it is newer than this copy's last change: sessions end with a
    /// disable, and the system trail records it. Whether anything changed.
    pub fn apply_staff_status(&mut self, id: &str, disabled: bool, at: i64, now: i64) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let found: Option<(Option<i64>, Option<String>)> = tx
            .query_row("SELECT status_changed_at, tenant_id FROM staff WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((changed_at, tenant)) = found else { return Ok(false) };
        if changed_at.is_some_and(|c| c >= at) {
            return Ok(false);
        }
        tx.execute(
            "UPDATE staff SET disabled_at = ?2, status_changed_at = ?3 WHERE id = ?1",
            params![id, disabled.then_some(at), at],
        )?;
        if disabled {
            tx.execute("DELETE FROM staff_sessions WHERE staff_id = ?1", [id])?;
        }
        // Made on another node; this copy records that it took it.
        let entry = super::AuditEntry {
            tenant_id: tenant.as_deref(),
            reason: Some(id),
            ..super::AuditEntry::operator(
                "cluster",
                if disabled { audit::Action::StaffDisable } else { audit::Action::StaffEnable },
            )
        };
        super::audit_log::append(&tx, super::audit_log::AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(true)
    }

    /// A new role (or break-glass eligibility): the member's sessions end, so
    /// the next page is judged under the new role from a new login.
    pub fn set_staff_role(&mut self, id: &str, role: &str, break_glass: bool) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE staff SET role = ?2, break_glass = ?3 WHERE id = ?1",
            params![id, role, i64::from(break_glass)],
        )?;
        let ended = tx.execute("DELETE FROM staff_sessions WHERE staff_id = ?1", [id])?;
        tx.commit()?;
        Ok(ended)
    }

    /// New password and second factor; sessions end, the lock is lifted.
    pub fn reset_staff(&mut self, id: &str, password_hash: &str, totp_secret: &[u8]) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE staff SET password_hash = ?2, totp_secret = ?3, totp_last_step = 0, failed_logins = 0,
                              locked_until = NULL WHERE id = ?1",
            params![id, password_hash, totp_secret],
        )?;
        let ended = tx.execute("DELETE FROM staff_sessions WHERE staff_id = ?1", [id])?;
        tx.commit()?;
        Ok(ended)
    }

    pub fn assign_patient(&self, staff: &str, customer: &str, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO staff_assignments (staff_id, customer_id, assigned_at) VALUES (?1, ?2, ?3)",
            params![staff, customer, now],
        )?;
        Ok(())
    }

    pub fn is_assigned(&self, staff: &str, customer: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM staff_assignments WHERE staff_id = ?1 AND customer_id = ?2")?
            .exists([staff, customer])?)
    }

    // --- sessions -------------------------------------------------------

    /// A console session; `via_provider` when the clinic's identity
    /// provider vouched for it (no password and TOTP here).
    pub fn insert_staff_session(
        &self,
        id_hash: &[u8],
        staff: &str,
        csrf: &str,
        peer: Option<&str>,
        via_provider: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO staff_sessions (id_hash, staff_id, csrf, created_at, last_seen, peer, via_provider)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
            params![id_hash, staff, csrf, now, peer, via_provider],
        )?;
        Ok(())
    }

    pub fn staff_session(&self, id_hash: &[u8]) -> Result<Option<StaffSessionRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT staff_id, csrf, created_at, last_seen, via_provider FROM staff_sessions WHERE id_hash = ?1",
            )?
            .query_row([id_hash], |r| {
                Ok(StaffSessionRow {
                    staff_id: r.get(0)?,
                    csrf: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen: r.get(3)?,
                    via_provider: r.get(4)?,
                })
            })
            .optional()?)
    }

    pub fn set_staff_session_created(&self, id_hash: &[u8], created_at: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE staff_sessions SET created_at = ?2 WHERE id_hash = ?1", params![id_hash, created_at])?;
        Ok(())
    }

    pub fn touch_staff_session(&self, id_hash: &[u8], now: i64) -> Result<(), StoreError> {
        self.conn.execute("UPDATE staff_sessions SET last_seen = ?2 WHERE id_hash = ?1", params![id_hash, now])?;
        Ok(())
    }

    pub fn delete_staff_session(&self, id_hash: &[u8]) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM staff_sessions WHERE id_hash = ?1", [id_hash])? > 0)
    }

    pub fn staff_session_count(&self, staff: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT count(*) FROM staff_sessions WHERE staff_id = ?1", [staff], |r| r.get(0))?)
    }

    // --- break-glass and alerts -------------------------------------------

    pub fn insert_break_glass(&self, g: &BreakGlassRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO break_glass (id, staff_id, tenant_id, customer_id, reason, started_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![g.id, g.staff_id, g.tenant_id, g.customer_id, g.reason.as_str(), g.started_at, g.expires_at],
        )?;
        self.conn.execute(
            "INSERT INTO staff_alerts (tenant_id, kind, staff_id, reference, at) VALUES (?1, 'break_glass', ?2, ?3, ?4)",
            params![g.tenant_id, g.staff_id, g.id, g.started_at],
        )?;
        Ok(())
    }

    /// The member's live grant for this patient, if any.
    pub fn live_break_glass(&self, staff: &str, customer: &str, now: i64) -> Result<Option<BreakGlassRow>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM break_glass WHERE staff_id = ?1 AND customer_id = ?2 AND expires_at > ?3
             ORDER BY started_at DESC LIMIT 1"
        );
        Ok(self.conn.prepare_cached(&sql)?.query_row(params![staff, customer, now], grant_row).optional()?)
    }

    /// Any live grant of the member (for the banner).
    pub fn any_live_break_glass(&self, staff: &str, now: i64) -> Result<Option<BreakGlassRow>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM break_glass WHERE staff_id = ?1 AND expires_at > ?2
             ORDER BY started_at DESC LIMIT 1"
        );
        Ok(self.conn.prepare_cached(&sql)?.query_row(params![staff, now], grant_row).optional()?)
    }

    pub fn unreviewed_break_glass(&self, tenant: &TenantId) -> Result<Vec<BreakGlassRow>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM break_glass WHERE tenant_id = ?1 AND reviewed_at IS NULL ORDER BY started_at"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([tenant.as_str()], grant_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn break_glass(&self, id: &str) -> Result<Option<BreakGlassRow>, StoreError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM break_glass WHERE id = ?1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([id], grant_row).optional()?)
    }

    /// Signs a grant off once; `false` when it was already reviewed.
    pub fn review_break_glass(&self, id: &str, reviewer: &str, outcome: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE break_glass SET reviewed_by = ?2, reviewed_at = ?3, review_outcome = ?4
             WHERE id = ?1 AND reviewed_at IS NULL",
            params![id, reviewer, now, outcome],
        )? > 0)
    }

    pub fn add_staff_alert(
        &self,
        tenant: &TenantId,
        kind: &str,
        staff: Option<&str>,
        reference: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO staff_alerts (tenant_id, kind, staff_id, reference, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant.as_str(), kind, staff, reference, now],
        )?;
        Ok(())
    }

    /// The tenant's latest alerts: (at, kind, staff, reference).
    pub fn staff_alerts(&self, tenant: &TenantId, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT at, kind, staff_id, reference FROM staff_alerts WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows =
            stmt.query_map(params![tenant.as_str(), limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
