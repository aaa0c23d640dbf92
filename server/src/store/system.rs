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
    conn: Connection,
    path: PathBuf,
}

/// One tenant as the system store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub state_ttl_days: u32,
    pub default_region: String,
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
        audit_log::append(&tx, AuditTable::System, &AuditEntry::operator(operator, "installation.init"), now)?;
        tx.commit()?;
        Ok(store)
    }

    pub fn open(path: &Path, key: &Key256) -> Result<Self, StoreError> {
        Self::open_inner(path, key, false)
    }

    fn open_inner(path: &Path, key: &Key256, create: bool) -> Result<Self, StoreError> {
        let mut conn = open_encrypted(path, key, create)?;
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

    pub fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!("{TENANT_SELECT} WHERE deleted_at IS NULL ORDER BY name"))?;
        let rows = stmt.query_map([], tenant_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a new tenant and the operator's action in one transaction.
    pub fn insert_tenant(&mut self, row: &TenantRow, operator: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO tenants (id, name, state_ttl_days, default_region, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.id.as_str(), row.name, row.state_ttl_days, row.default_region, row.created_at],
        )?;
        let entry = AuditEntry { tenant_id: Some(row.id.as_str()), ..AuditEntry::operator(operator, "tenant.create") };
        audit_log::append(&tx, AuditTable::System, &entry, row.created_at)?;
        tx.commit()?;
        Ok(())
    }

    /// Verifies the system audit chain; returns how many records it holds.
    pub fn verify_audit(&self) -> Result<u64, StoreError> {
        let records = audit_log::read_all(&self.conn, AuditTable::System)?;
        audit::verify_chain(records.iter().map(|(r, h)| (r, h.as_str())), 1, GENESIS)
            .map_err(|source| StoreError::AuditChain { path: self.path.clone(), source })?;
        Ok(records.len() as u64)
    }
}

const TENANT_SELECT: &str = "SELECT id, name, state_ttl_days, default_region, created_at FROM tenants";

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
    })
}
