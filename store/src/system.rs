//! The system store: tenants, certificates, operators, the erasure ledger and
//! the installation's own audit chain.

use std::path::{Path, PathBuf};

use audit::GENESIS;
use crypto::Key256;
use rusqlite::{Connection, OptionalExtension, params};

use super::audit_log::{self, AuditEntry, AuditTable};
use super::{StoreError, open_encrypted};
use crate::ids::TenantId;

pub struct SystemStore {
    pub(super) conn: Connection,
    path: PathBuf,
}

/// One tenant as the system store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub state_ttl_days: u32,
    pub default_region: String,
    /// IANA name, validated when it was set (`calendar::ClinicZone`).
    pub time_zone: String,
    pub created_at: i64,
}

impl SystemStore {
    /// Creates the store, its schema and its first audit record.
    pub fn create(
        path: &Path,
        key: &Key256,
        installation_id: &str,
        operator: &str,
        now: i64,
    ) -> Result<Self, StoreError> {
        let mut store = Self::open_inner(path, key, true)?;
        let tx = store.conn.transaction()?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('installation_id', ?1)", [installation_id])?;
        audit_log::append(
            &tx,
            AuditTable::System,
            &AuditEntry::operator(operator, audit::Action::InstallationInit),
            now,
        )?;
        tx.commit()?;
        Ok(store)
    }

    pub fn open(path: &Path, key: &Key256) -> Result<Self, StoreError> {
        Self::open_inner(path, key, false)
    }

    fn open_inner(path: &Path, key: &Key256, create: bool) -> Result<Self, StoreError> {
        let mut conn = open_encrypted(path, key, create)?;
        crate::datadir_schema::refuse_newer(&conn, path, migrations::system_latest())?;
        migrations::system()
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migration { path: path.to_owned(), source })?;
        Ok(SystemStore { conn, path: path.to_owned() })
    }

    pub fn installation_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = 'installation_id'", [], |r| r.get(0)).optional()?)
    }

    pub fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!("{TENANT_SELECT} WHERE name = ?1 AND deleted_at IS NULL"))?
            .query_row([name], tenant_row)
            .optional()?)
    }

    /// Stores a tenant's (already validated) policy file, audited.
    pub fn set_tenant_policy(&mut self, id: &TenantId, toml: &str, operator: &str, now: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE tenants SET policy_toml = ?2 WHERE id = ?1", params![id.as_str(), toml])?;
        let entry = AuditEntry {
            tenant_id: Some(id.as_str()),
            ..AuditEntry::operator(operator, audit::Action::TenantPolicySet)
        };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    /// A tenant's stored policy file, if one was set.
    pub fn tenant_policy(&self, id: &TenantId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT policy_toml FROM tenants WHERE id = ?1", [id.as_str()], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// A live (not deleted) tenant by id.
    pub fn tenant_by_id(&self, id: &TenantId) -> Result<Option<TenantRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!("{TENANT_SELECT} WHERE id = ?1 AND deleted_at IS NULL"))?
            .query_row([id.as_str()], tenant_row)
            .optional()?)
    }

    /// Moves a tenant to another time zone (an IANA name already validated), audited.
    pub fn set_tenant_time_zone(
        &mut self,
        id: &TenantId,
        zone: &str,
        operator: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE tenants SET time_zone = ?2 WHERE id = ?1", params![id.as_str(), zone])?;
        let entry = AuditEntry {
            tenant_id: Some(id.as_str()),
            ..AuditEntry::operator(operator, audit::Action::TenantTimeZoneSet)
        };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The region a tenant's national phone numbers are read in (ISO 3166 alpha-2).
    pub fn set_tenant_region(
        &mut self,
        id: &TenantId,
        region: &str,
        operator: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE tenants SET default_region = ?2 WHERE id = ?1", params![id.as_str(), region])?;
        let entry = AuditEntry {
            tenant_id: Some(id.as_str()),
            ..AuditEntry::operator(operator, audit::Action::TenantRegionSet)
        };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    pub fn set_state_ttl_days(&mut self, id: &TenantId, days: u32) -> Result<(), StoreError> {
        self.conn.execute("UPDATE tenants SET state_ttl_days = ?2 WHERE id = ?1", params![id.as_str(), days])?;
        Ok(())
    }

    /// Erasure ledger: note an erasure about to happen (idempotent).
    pub fn ledger_pending(&self, tenant: &TenantId, customer: &str, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO erasure_ledger (tenant_id, customer_id, erased_at, receipt) VALUES (?1, ?2, ?3, 'pending')",
            params![tenant.as_str(), customer, now],
        )?;
        Ok(())
    }

    /// Erasure ledger: the erasure happened; keep its receipt.
    pub fn ledger_complete(&self, tenant: &TenantId, customer: &str, receipt: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE erasure_ledger SET receipt = ?3 WHERE tenant_id = ?1 AND customer_id = ?2",
            params![tenant.as_str(), customer, receipt],
        )?;
        Ok(())
    }

    /// Erasure ledger: the erasure failed and changed nothing; withdraw the note.
    pub fn ledger_abandon(&self, tenant: &TenantId, customer: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM erasure_ledger WHERE tenant_id = ?1 AND customer_id = ?2 AND receipt = 'pending'",
            params![tenant.as_str(), customer],
        )?;
        Ok(())
    }

    /// Every erasure recorded for a tenant: (customer id, erased at).
    pub fn ledger(&self, tenant: &TenantId) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT customer_id, erased_at FROM erasure_ledger WHERE tenant_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A consistent encrypted copy of the system store at `dst` (a new file).
    pub fn snapshot_to(&self, dst: &Path, key: &Key256) -> Result<(), StoreError> {
        super::snapshot::snapshot(&self.conn, dst, key)
    }

    /// The erasure ledger of every tenant: (tenant id, customer id).
    pub fn ledger_all(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT tenant_id, customer_id FROM erasure_ledger ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An operator or system action on the installation, audited.
    /// An operator's action about a tenant, on the system trail.
    pub fn record_tenant_action(
        &mut self,
        operator: &str,
        action: audit::Action,
        tenant: &TenantId,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let entry = AuditEntry {
            tenant_id: Some(tenant.as_str()),
            reason: Some(reason),
            ..AuditEntry::operator(operator, action)
        };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    pub fn record_action(
        &mut self,
        operator: &str,
        action: audit::Action,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let entry = AuditEntry { reason: Some(reason), ..AuditEntry::operator(operator, action) };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether a name was ever used (deleted tenants' names are not reused).
    pub fn tenant_name_taken(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM tenants WHERE name = ?1")?.exists([name])?)
    }

    /// SQLite's soft heap limit, for the whole process: past it, SQLite
    /// reuses the least recently used cached pages (of any connection: the
    /// page cache is one pool under `SQLITE_ENABLE_MEMORY_MANAGEMENT`)
    /// before it allocates more.
    pub fn set_memory_budget(&self, bytes: u64) -> Result<(), StoreError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.conn.query_row(&format!("PRAGMA soft_heap_limit = {bytes}"), [], |_| Ok(()))?;
        Ok(())
    }

    /// The process-wide soft heap limit now in force, in bytes (0: none).
    pub fn memory_budget(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA soft_heap_limit", [], |r| r.get(0))?)
    }

    pub fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("{TENANT_SELECT} WHERE deleted_at IS NULL ORDER BY name"))?;
        let rows = stmt.query_map([], tenant_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a new tenant and the operator's action in one transaction.
    pub fn insert_tenant(&mut self, row: &TenantRow, operator: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO tenants (id, name, state_ttl_days, default_region, time_zone, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![row.id.as_str(), row.name, row.state_ttl_days, row.default_region, row.time_zone, row.created_at],
        )?;
        let entry = AuditEntry {
            tenant_id: Some(row.id.as_str()),
            ..AuditEntry::operator(operator, audit::Action::TenantCreate)
        };
        audit_log::append(&tx, AuditTable::System, &entry, row.created_at)?;
        tx.commit()?;
        Ok(())
    }

    /// Verifies the system audit chain; returns how many records it holds.
    /// SQLite's own check of the file (`ok`, or what is wrong).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    pub fn verify_audit(&self) -> Result<u64, StoreError> {
        let records = audit_log::read_all(&self.conn, AuditTable::System)?;
        audit::verify_chain(records.iter().map(|(r, h)| (r, h.as_str())), 1, GENESIS)
            .map_err(|source| StoreError::AuditChain { path: self.path.clone(), source })?;
        Ok(records.len() as u64)
    }
}

/// One issued certificate and what it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRow {
    pub serial: String,
    pub tenant_id: Option<TenantId>,
    pub tenant_name: Option<String>,
    /// `voice`, `chat`, `email` or `server`.
    pub channel: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub revoked_at: Option<i64>,
    pub tenant_deleted: bool,
    /// SHA-256 of the certificate's DER, as issued.
    pub fingerprint: Vec<u8>,
    /// The CA generation that issued it (`cert rotate-ca` starts a new one).
    pub ca_generation: i64,
    /// When its CA was retired: until when it is still accepted.
    pub ca_trusted_until: Option<i64>,
}

/// What `revoke_certificate` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
    Unknown,
}

/// A certificate to record at issue time.
#[derive(Clone, Debug)]
pub struct NewCert<'a> {
    pub serial: &'a str,
    pub tenant_id: Option<&'a TenantId>,
    pub channel: &'a str,
    pub fingerprint: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
}

impl SystemStore {
    /// Stores the CA certificate and its sealed key (once, at init).
    pub fn store_ca(&mut self, cert_pem: &str, key_sealed: &[u8], operator: &str, now: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO ca (id, cert_pem, key_sealed, created_at) VALUES (1, ?1, ?2, ?3)",
            params![cert_pem, key_sealed, now],
        )?;
        audit_log::append(&tx, AuditTable::System, &AuditEntry::operator(operator, audit::Action::CaCreate), now)?;
        tx.commit()?;
        Ok(())
    }

    /// The CA certificate PEM and its sealed key.
    pub fn ca(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT cert_pem, key_sealed FROM ca WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Records an issued certificate and its binding, audited.
    pub fn insert_certificate(&mut self, cert: &NewCert<'_>, operator: &str, now: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO certificates (serial, tenant_id, channel, fingerprint, not_before, not_after, issued_at,
                                       ca_generation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT generation FROM ca WHERE id = 1))",
            params![
                cert.serial,
                cert.tenant_id.map(TenantId::as_str),
                cert.channel,
                cert.fingerprint,
                cert.not_before,
                cert.not_after,
                now
            ],
        )?;
        let entry = AuditEntry {
            tenant_id: cert.tenant_id.map(TenantId::as_str),
            channel: Some(cert.channel),
            session_id: None,
            reason: Some(cert.serial),
            ..AuditEntry::operator(operator, audit::Action::CertificateIssue)
        };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Revokes a certificate by serial, audited; idempotent.
    pub fn revoke_certificate(
        &mut self,
        serial: &str,
        reason: &str,
        operator: &str,
        now: i64,
    ) -> Result<Revocation, StoreError> {
        let tx = self.conn.transaction()?;
        let found: Option<(Option<i64>, Option<String>, String)> = tx
            .query_row("SELECT revoked_at, tenant_id, channel FROM certificates WHERE serial = ?1", [serial], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let outcome = match found {
            None => Revocation::Unknown,
            Some((Some(_), _, _)) => Revocation::AlreadyRevoked,
            Some((None, tenant, channel)) => {
                tx.execute(
                    "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 WHERE serial = ?1",
                    params![serial, now, reason],
                )?;
                let entry = AuditEntry {
                    tenant_id: tenant.as_deref(),
                    channel: Some(&channel),
                    reason: Some(serial),
                    ..AuditEntry::operator(operator, audit::Action::CertificateRevoke)
                };
                audit_log::append(&tx, AuditTable::System, &entry, now)?;
                Revocation::Revoked
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Every revoked certificate: (serial, when).
    pub fn certificate_revocations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT serial, revoked_at FROM certificates WHERE revoked_at IS NOT NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the system trail last recorded `action` (`backup.create` for `doctor`).
    pub fn last_action_at(&self, action: audit::Action) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MAX(at) FROM system_audit WHERE action = ?1", [action.as_str()], |r| r.get(0))?)
    }

    /// Every certificate with its binding, newest first.
    pub fn certificates(&self) -> Result<Vec<CertRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.serial, c.tenant_id, t.name, c.channel, c.not_before, c.not_after, c.issued_at, c.revoked_at,
                    t.deleted_at IS NOT NULL, c.fingerprint, c.ca_generation, r.trusted_until
             FROM certificates c LEFT JOIN tenants t ON t.id = c.tenant_id
                  LEFT JOIN retired_cas r ON r.generation = c.ca_generation
             ORDER BY c.issued_at DESC, c.serial",
        )?;
        let rows = stmt.query_map([], |r| {
            let tenant: Option<String> = r.get(1)?;
            Ok(CertRow {
                serial: r.get(0)?,
                tenant_id: tenant.as_deref().and_then(TenantId::parse),
                tenant_name: r.get(2)?,
                channel: r.get(3)?,
                not_before: r.get(4)?,
                not_after: r.get(5)?,
                issued_at: r.get(6)?,
                revoked_at: r.get(7)?,
                tenant_deleted: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                fingerprint: r.get(9)?,
                ca_generation: r.get(10)?,
                ca_trusted_until: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a tenant deleted: its certificates stop working, its name is
    /// never reused, its store file stays until the retention purge.
    pub fn delete_tenant(&mut self, id: &TenantId, operator: &str, now: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE tenants SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            params![id.as_str(), now],
        )?;
        let entry =
            AuditEntry { tenant_id: Some(id.as_str()), ..AuditEntry::operator(operator, audit::Action::TenantDelete) };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }
}

impl SystemStore {
    /// Tenants deleted before `cutoff` and not yet shredded.
    pub fn tenants_to_shred(&self, cutoff: i64) -> Result<Vec<TenantId>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM tenants WHERE deleted_at IS NOT NULL AND deleted_at < ?1 AND shredded_at IS NULL ORDER BY id",
        )?;
        let ids = stmt.query_map([cutoff], |r| r.get::<_, String>(0))?;
        Ok(ids.filter_map(|r| r.ok().and_then(|s| TenantId::parse(&s))).collect())
    }

    /// Records that a deleted tenant's key and files are gone, audited.
    pub fn mark_shredded(&mut self, id: &TenantId, operator: &str, now: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("UPDATE tenants SET shredded_at = ?2 WHERE id = ?1", params![id.as_str(), now])?;
        let entry =
            AuditEntry { tenant_id: Some(id.as_str()), ..AuditEntry::operator(operator, audit::Action::TenantShred) };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(())
    }
}

const TENANT_SELECT: &str = "SELECT id, name, state_ttl_days, default_region, created_at, time_zone FROM tenants";

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenantRow> {
    let id: String = r.get(0)?;
    Ok(TenantRow {
        id: TenantId::parse(&id).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, "malformed tenant id".into())
        })?,
        name: r.get(1)?,
        state_ttl_days: r.get(2)?,
        default_region: r.get(3)?,
        created_at: r.get(4)?,
        time_zone: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budget is SQLite's, for the whole process: set through one
    /// connection, in force for every other (here: a second store).
    #[test]
    fn the_memory_budget_is_process_wide() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key256::generate().unwrap();
        let a = SystemStore::create(&dir.path().join("a.db"), &key, "a", "test", 1).unwrap();
        let b = SystemStore::create(&dir.path().join("b.db"), &key, "b", "test", 1).unwrap();
        a.set_memory_budget(123 * 1024 * 1024).unwrap();
        assert_eq!(b.memory_budget().unwrap(), 123 * 1024 * 1024);
        a.set_memory_budget(u64::MAX).unwrap();
        assert_eq!(b.memory_budget().unwrap(), i64::MAX);
    }
}
