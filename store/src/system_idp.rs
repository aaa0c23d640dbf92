//! A clinic's identity provider and the accounts bound to it, in the
//! system store: the OIDC client (its secret in this encrypted store only),
//! the claim roles come from and how its values map onto Throughline's.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::{StoreError, SystemStore};
use crate::ids::TenantId;

/// A clinic's provider.
#[derive(Clone)]
pub struct IdpRow {
    pub tenant_id: TenantId,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    pub redirect_url: String,
    pub role_claim: String,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// (claim value, role), tried in order.
    pub role_map: Vec<(String, String)>,
    /// Whether a session the provider vouched for may start emergency
    /// access (for accounts that have it); off unless the clinic says so.
    pub break_glass: bool,
}

impl std::fmt::Debug for IdpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdpRow({}, {}, client {}, [REDACTED])", self.tenant_id, self.issuer, self.client_id)
    }
}

fn idp_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdpRow> {
    let map: String = r.get(7)?;
    Ok(IdpRow {
        tenant_id: TenantId::parse(&r.get::<_, String>(0)?)
            .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, "tenant_id".into(), rusqlite::types::Type::Text))?,
        label: r.get(1)?,
        issuer: r.get(2)?,
        client_id: r.get(3)?,
        client_secret: Zeroizing::new(r.get(4)?),
        redirect_url: r.get(5)?,
        role_claim: r.get(6)?,
        scopes: r.get::<_, String>(8)?.split_whitespace().map(str::to_owned).collect(),
        role_map: map.lines().filter_map(|l| l.split_once('=').map(|(a, b)| (a.to_owned(), b.to_owned()))).collect(),
        break_glass: r.get(9)?,
    })
}

const IDP_COLUMNS: &str =
    "tenant_id, label, issuer, client_id, client_secret, redirect_url, role_claim, role_map, scopes, break_glass";

impl SystemStore {
    pub fn set_idp(&self, row: &IdpRow, now: i64) -> Result<(), StoreError> {
        let map: Vec<String> = row.role_map.iter().map(|(v, r)| format!("{v}={r}")).collect();
        self.conn.execute(
            "INSERT INTO tenant_idp (tenant_id, label, issuer, client_id, client_secret, redirect_url, role_claim, role_map,
                                     updated_at, scopes, break_glass)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (tenant_id) DO UPDATE SET label = ?2, issuer = ?3, client_id = ?4, client_secret = ?5,
                 redirect_url = ?6, role_claim = ?7, role_map = ?8, updated_at = ?9, scopes = ?10, break_glass = ?11",
            params![
                row.tenant_id.as_str(),
                row.label,
                row.issuer,
                row.client_id,
                row.client_secret.as_str(),
                row.redirect_url,
                row.role_claim,
                map.join("\n"),
                now,
                row.scopes.join(" "),
                row.break_glass
            ],
        )?;
        Ok(())
    }

    pub fn remove_idp(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM tenant_idp WHERE tenant_id = ?1", [tenant.as_str()])? > 0)
    }

    pub fn idp(&self, tenant: &TenantId) -> Result<Option<IdpRow>, StoreError> {
        let sql = format!("SELECT {IDP_COLUMNS} FROM tenant_idp WHERE tenant_id = ?1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([tenant.as_str()], idp_row).optional()?)
    }

    /// Every clinic with a provider: (tenant name, label), for the sign-in page.
    pub fn idp_labels(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT t.name, i.label FROM tenant_idp i JOIN tenants t ON t.id = i.tenant_id
             WHERE t.deleted_at IS NULL ORDER BY t.name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The account bound to (issuer, subject).
    pub fn staff_by_oidc(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM staff WHERE oidc_issuer = ?1 AND oidc_subject = ?2")?
            .query_row([issuer, subject], |r| r.get(0))
            .optional()?)
    }

    /// The (issuer, subject) an account is bound to, if any.
    pub fn staff_oidc_binding(&self, staff: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT oidc_issuer, oidc_subject FROM staff WHERE id = ?1 AND oidc_subject IS NOT NULL")?
            .query_row([staff], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Binds an account to (issuer, subject) once.
    pub fn bind_oidc(&self, staff: &str, issuer: &str, subject: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE staff SET oidc_issuer = ?2, oidc_subject = ?3 WHERE id = ?1 AND oidc_subject IS NULL",
            params![staff, issuer, subject],
        )?;
        Ok(())
    }

    /// The role the provider says, at each sign-in; break-glass untouched.
    pub fn set_staff_role_only(&self, staff: &str, role: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE staff SET role = ?2 WHERE id = ?1", params![staff, role])?;
        Ok(())
    }

    pub fn set_session_logout_url(&self, id_hash: &[u8], url: &str) -> Result<(), StoreError> {
        self.conn.execute("UPDATE staff_sessions SET logout_url = ?2 WHERE id_hash = ?1", params![id_hash, url])?;
        Ok(())
    }

    pub fn session_logout_url(&self, id_hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT logout_url FROM staff_sessions WHERE id_hash = ?1")?
            .query_row([id_hash], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }
}

/// A recorded access review: (period, reviewer, accounts, note, at).
pub type AccessReview = (String, String, i64, String, i64);

impl SystemStore {
    pub fn record_access_review(
        &self,
        tenant: &TenantId,
        period: &str,
        reviewer: &str,
        accounts: i64,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO access_reviews (tenant_id, period, reviewer, accounts, note, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![tenant.as_str(), period, reviewer, accounts, note, now],
        )?;
        Ok(())
    }

    pub fn access_reviews(&self, tenant: &TenantId) -> Result<Vec<AccessReview>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT period, reviewer, accounts, note, at FROM access_reviews WHERE tenant_id = ?1 ORDER BY at DESC LIMIT 40",
        )?;
        let rows =
            stmt.query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether an account signs in through the provider.
    pub fn staff_uses_provider(&self, staff: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM staff WHERE id = ?1 AND oidc_subject IS NOT NULL")?
            .exists([staff])?)
    }
}
