//! One tenant's store: patients, identifiers (blind-indexed), conversations
//! and the tenant's audit chain. PHI is sealed under the patient's data key
//! before it reaches SQL; identifiers reach SQL only as blind indexes.

use std::path::{Path, PathBuf};

use crypto::{DataKey, TenantKeys};
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use super::audit_log::{self, AuditEntry, AuditTable};
use super::tenant_tx::TxScope;
use super::{StoreError, open_encrypted};
use crate::ids::{CustomerId, TenantId};

/// The kinds of identifier a patient is known by, in resolution priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdentifierKind {
    Phone,
    Email,
    Auth,
    Cookie,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 4] =
        [IdentifierKind::Phone, IdentifierKind::Email, IdentifierKind::Auth, IdentifierKind::Cookie];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::Auth => "auth",
            IdentifierKind::Cookie => "cookie",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A patient's display fields, decrypted. PHI: zeroized on drop, redacted in `Debug`.
pub struct CustomerDisplay {
    pub name: Zeroizing<String>,
    pub dob: Zeroizing<String>,
}

impl std::fmt::Debug for CustomerDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerDisplay([REDACTED])")
    }
}

pub struct TenantStore {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) keys: TenantKeys,
    /// Inside a group commit: transactions are savepoints of the group's.
    grouped: bool,
    /// Cluster mode: ships every commit to the log before it is answered.
    pub(super) hook: Option<std::sync::Mutex<super::tenant_hook::Hooked>>,
    /// A descriptor of the file for reading its image (cluster mode),
    /// opened on first use and closed only after the connection (fields
    /// drop in order): closing any descriptor of a file drops every POSIX
    /// lock this process holds on it, SQLite's among them.
    pub(super) image: std::cell::OnceCell<std::fs::File>,
}

impl TenantStore {
    /// Creates the tenant's file and schema, stamps it with the tenant id and
    /// records the creation as the first audit record.
    pub fn create(path: &Path, keys: TenantKeys, operator: &str, now: i64) -> Result<Self, StoreError> {
        let mut conn = open_encrypted(path, keys.store_key(), true)?;
        migrate(&mut conn, path)?;
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('tenant_id', ?1)", [keys.tenant_id()])?;
        let entry = AuditEntry {
            tenant_id: Some(keys.tenant_id()),
            ..AuditEntry::operator(operator, audit::Action::TenantCreate)
        };
        audit_log::append(&tx, AuditTable::Tenant, &entry, now)?;
        tx.commit()?;
        Ok(TenantStore {
            conn,
            path: path.to_owned(),
            keys,
            grouped: false,
            hook: None,
            image: std::cell::OnceCell::new(),
        })
    }

    /// Opens an existing tenant store and checks it is this tenant's.
    pub fn open(path: &Path, keys: TenantKeys) -> Result<Self, StoreError> {
        let mut conn = open_encrypted(path, keys.store_key(), false)?;
        migrate(&mut conn, path)?;
        let found: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'tenant_id'", [], |r| r.get(0)).optional()?;
        if found.as_deref() != Some(keys.tenant_id()) {
            return Err(StoreError::TenantMismatch {
                path: path.to_owned(),
                expected: keys.tenant_id().to_owned(),
                found: found.unwrap_or_else(|| "none".into()),
            });
        }
        Ok(TenantStore {
            conn,
            path: path.to_owned(),
            keys,
            grouped: false,
            hook: None,
            image: std::cell::OnceCell::new(),
        })
    }

    pub fn tenant_id(&self) -> Option<TenantId> {
        TenantId::parse(self.keys.tenant_id())
    }

    /// Starts an IMMEDIATE transaction (takes the write lock up front, so a
    /// read-then-write never fails half-way on a busy store).
    ///
    /// Inside a group commit it is a savepoint of the group's transaction.
    pub fn transaction(&mut self) -> Result<super::tenant_tx::TenantTx<'_>, StoreError> {
        let tx = if self.grouped {
            TxScope::Grouped(self.conn.savepoint()?)
        } else {
            TxScope::Own(self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
        };
        Ok(super::tenant_tx::TenantTx {
            tx,
            keys: &self.keys,
            hook: if self.grouped { None } else { self.hook.as_ref() },
        })
    }

    /// Starts a group commit: one IMMEDIATE transaction that the following
    /// [`Self::transaction`]s nest in as savepoints, made durable by one
    /// [`Self::commit_group`] (one fsync for the whole group).
    pub fn begin_group(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.grouped = true;
        Ok(())
    }

    /// Caps this connection's page cache at `mib` (SQLite's default is 2
    /// MiB). The server's global budget still bounds all tenants together.
    pub fn set_page_cache_mib(&self, mib: u32) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(&format!("PRAGMA cache_size = -{};", u64::from(mib) * 1024))?)
    }

    /// Runs `work` inside a transaction that is then rolled back whole
    /// (its transactions nest as savepoints, as in a group): nothing is
    /// kept, but the statements it ran stay prepared and its pages cached.
    ///
    /// Then one commit that changes nothing (the schema version written
    /// again as it is), so the WAL file has its header and its first sync
    /// (which syncs the directory too) before the first real request.
    pub fn rehearse(&mut self, work: impl FnOnce(&mut Self)) -> Result<(), StoreError> {
        self.begin_group()?;
        work(self);
        self.grouped = false;
        self.conn.execute_batch("ROLLBACK")?;
        let version = self.schema_version()?;
        self.conn.execute_batch(&format!("PRAGMA user_version = {version};"))?;
        self.ship()
    }

    /// Marks the start of one job inside a group.
    pub fn mark_job(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("SAVEPOINT tl_job")?)
    }

    /// Ends a job started with [`Self::mark_job`]: kept, or undone whole.
    pub fn settle_job(&mut self, keep: bool) -> Result<(), StoreError> {
        let sql = if keep { "RELEASE tl_job" } else { "ROLLBACK TO tl_job; RELEASE tl_job" };
        Ok(self.conn.execute_batch(sql)?)
    }

    /// Commits the group; on failure nothing of the group is kept. In
    /// cluster mode it is answered only once the log has it.
    pub fn commit_group(&mut self) -> Result<(), StoreError> {
        self.grouped = false;
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => self.ship(),
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e.into())
            }
        }
    }

    /// SQLCipher's version as the open connection reports it.
    pub fn cipher_version(&self) -> Result<Option<String>, StoreError> {
        super::cipher_version(&self.conn)
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn count(&self, what: Countable) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(what.sql(), [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// A new patient (intake by an operator or an import): their own data
    /// key, name and date of birth sealed under it, audited, one transaction.
    pub fn create_customer(
        &mut self,
        name: &str,
        dob: &str,
        audit: &AuditEntry<'_>,
        now: i64,
    ) -> Result<CustomerId, StoreError> {
        let tx = self.transaction()?;
        let id = tx.create_customer(now)?;
        tx.set_customer_fields(&id, Some(name), Some(dob), now)?;
        let entry = AuditEntry {
            customer_id: Some(id.as_str()),
            tenant_id: Some(tx.keys().tenant_id()),
            action: audit::Action::CustomerCreate,
            ..audit.clone()
        };
        tx.audit(&entry, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// Links an already-normalised identifier to a patient (one transaction).
    pub fn link_identifier(
        &mut self,
        kind: IdentifierKind,
        normalised: &str,
        customer: &CustomerId,
        provenance: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.transaction()?;
        tx.link_identifier(kind, normalised, customer, provenance, true, now)?;
        tx.commit()
    }

    /// Patients an identifier points at (several for a shared family phone).
    pub fn customers_by_identifier(
        &mut self,
        kind: IdentifierKind,
        normalised: &str,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let tx = self.transaction()?;
        let ids = tx.customers_by_identifier(kind, normalised)?;
        tx.commit()?;
        Ok(ids)
    }

    /// A patient's name and date of birth, read by an operator at the
    /// console (not a channel: no policy decision applies), audited as
    /// `customer.read` in the same transaction.
    pub fn operator_customer_display(
        &mut self,
        id: &CustomerId,
        operator: &str,
        now: i64,
    ) -> Result<Option<CustomerDisplay>, StoreError> {
        type Row = (Option<Vec<u8>>, Vec<u8>, Vec<u8>);
        let tx = self.transaction()?;
        let row: Option<Row> = tx
            .tx
            .query_row("SELECT wrapped_key, name_ct, dob_ct FROM customers WHERE id = ?1", [id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((Some(wrapped), name_ct, dob_ct)) = row else { return Ok(None) };
        let key = tx.keys().open_data_key(id.as_str(), &wrapped)?;
        let display =
            CustomerDisplay { name: open_text(&key, id, "name", &name_ct)?, dob: open_text(&key, id, "dob", &dob_ct)? };
        let entry = AuditEntry {
            tenant_id: Some(tx.keys().tenant_id()),
            customer_id: Some(id.as_str()),
            ..AuditEntry::operator(operator, audit::Action::CustomerRead)
        };
        tx.audit(&entry, now)?;
        tx.commit()?;
        Ok(Some(display))
    }

    /// Deletes expired session state, audited as a system action; returns how
    /// many keys went.
    pub fn purge_expired_state(&mut self, now: i64) -> Result<u64, StoreError> {
        let tx = self.transaction()?;
        let n = tx.purge_expired_state(now)?;
        system_audit(&tx, audit::Action::StatePurge, n, now)?;
        tx.commit()?;
        Ok(n)
    }

    /// Deletes conversations idle for longer than `retention_days`, with
    /// their history, audited; returns how many conversations went.
    pub fn purge_old_conversations(&mut self, retention_days: u32, now: i64) -> Result<u64, StoreError> {
        let cutoff = now.saturating_sub(i64::from(retention_days) * 86_400_000);
        let tx = self.transaction()?;
        let n = tx.purge_conversations_before(cutoff)?;
        system_audit(&tx, audit::Action::ConversationPurge, n, now)?;
        tx.commit()?;
        Ok(n)
    }

    /// The whole audit chain: each record with the hash stored beside it.
    pub fn audit_chain(&self) -> Result<Vec<(audit::Record, String)>, StoreError> {
        audit_log::read_all(&self.conn, AuditTable::Tenant)
    }

    /// The latest signed checkpoint: (size, root, note).
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, [u8; 32], String)>, StoreError> {
        let row: Option<(i64, Vec<u8>, String)> = self
            .conn
            .query_row("SELECT size, root_hash, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        Ok(row.and_then(|(size, root, note)| {
            let root: [u8; 32] = root.try_into().ok()?;
            Some((u64::try_from(size).ok()?, root, note))
        }))
    }

    /// Records a signed checkpoint and the operator's act, one transaction.
    pub fn insert_checkpoint(
        &mut self,
        size: u64,
        root: &[u8; 32],
        note: &str,
        operator: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.insert_checkpoint_by(
            size,
            root,
            note,
            &AuditEntry::operator(operator, audit::Action::AuditCheckpoint),
            now,
        )
    }

    /// Records a signed checkpoint and the act of whoever signed it
    /// (`actor`: its kind, name and peer), one transaction.
    pub fn insert_checkpoint_by(
        &mut self,
        size: u64,
        root: &[u8; 32],
        note: &str,
        actor: &AuditEntry<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.transaction()?;
        tx.tx.execute(
            "INSERT OR IGNORE INTO audit_checkpoints (size, root_hash, note, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![i64::try_from(size).unwrap_or(i64::MAX), root.as_slice(), note, now],
        )?;
        let reason = format!("size:{size}");
        let tenant_id = tx.keys().tenant_id().to_owned();
        let entry = AuditEntry {
            tenant_id: Some(&tenant_id),
            reason: Some(&reason),
            action: audit::Action::AuditCheckpoint,
            ..actor.clone()
        };
        tx.audit(&entry, now)?;
        tx.commit()
    }

    /// Audits an operator's export of the audit trail.
    pub fn record_operator_action(
        &mut self,
        operator: &str,
        action: audit::Action,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.transaction()?;
        let entry = AuditEntry {
            tenant_id: Some(tx.keys().tenant_id()),
            reason: Some(reason),
            ..AuditEntry::operator(operator, action)
        };
        tx.audit(&entry, now)?;
        tx.commit()
    }

    /// Test support: rewrites one audit record's action in place (as an
    /// insider with the key might), so verification is seen to catch it.
    pub fn danger_alter_audit_record(&self, seq: u64, action: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE audit SET action = ?2 WHERE seq = ?1",
            params![i64::try_from(seq).unwrap_or(i64::MAX), action],
        )?;
        Ok(())
    }

    /// Test support: makes every audit insert fail (a trigger), to prove that
    /// a request whose audit record cannot be written fails and changes nothing.
    pub fn danger_fail_audit_writes(&self, fail: bool) -> Result<(), StoreError> {
        let sql = if fail {
            "CREATE TRIGGER IF NOT EXISTS danger_audit_fails BEFORE INSERT ON audit
             BEGIN SELECT RAISE(ABORT, 'audit write refused (test)'); END;"
        } else {
            "DROP TRIGGER IF EXISTS danger_audit_fails;"
        };
        Ok(self.conn.execute_batch(sql)?)
    }
}

/// One identifier link as an operator sees it: kind and provenance, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRow {
    pub id: i64,
    pub kind: String,
    pub provenance: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub unlinked_at: Option<i64>,
    pub unlinked_by: Option<String>,
}

impl TenantStore {
    /// A patient's identifier links, including undone ones (provenance is kept).
    pub fn links(&self, customer: &CustomerId) -> Result<Vec<LinkRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, provenance, created_at, last_seen, unlinked_at, unlinked_by
             FROM identifiers WHERE customer_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([customer.as_str()], |r| {
            Ok(LinkRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                provenance: r.get(2)?,
                created_at: r.get(3)?,
                last_seen: r.get(4)?,
                unlinked_at: r.get(5)?,
                unlinked_by: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Undoes a link: the row stays (with who undid it and when) but no longer
    /// resolves. Returns false when there is no such live link.
    pub fn unlink(&mut self, customer: &CustomerId, link: i64, operator: &str, now: i64) -> Result<bool, StoreError> {
        let tx = self.transaction()?;
        let n = tx.tx.execute(
            "UPDATE identifiers SET unlinked_at = ?3, unlinked_by = ?4 WHERE id = ?1 AND customer_id = ?2 AND unlinked_at IS NULL",
            params![link, customer.as_str(), now, operator],
        )?;
        if n > 0 {
            // A link undone by staff takes the patient's resume links with it (M2).
            tx.revoke_customer_tokens(customer, now)?;
            let reason = format!("link:{link}");
            let entry = AuditEntry {
                tenant_id: Some(tx.keys().tenant_id()),
                customer_id: Some(customer.as_str()),
                reason: Some(&reason),
                ..AuditEntry::operator(operator, audit::Action::IdentifierUnlink)
            };
            tx.audit(&entry, now)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }
}

impl TenantStore {
    /// `throughline token revoke`: every live resume token of a patient,
    /// audited; returns how many.
    pub fn revoke_tokens(&mut self, customer: &CustomerId, operator: &str, now: i64) -> Result<u64, StoreError> {
        let tx = self.transaction()?;
        let n = tx.revoke_customer_tokens(customer, now)?;
        let reason = format!("tokens:{n}");
        let entry = AuditEntry {
            tenant_id: Some(tx.keys().tenant_id()),
            customer_id: Some(customer.as_str()),
            reason: Some(&reason),
            ..AuditEntry::operator(operator, audit::Action::ResumeTokenRevoke)
        };
        tx.audit(&entry, now)?;
        tx.commit()?;
        Ok(n)
    }
}

/// Records a retention purge (when it removed anything) as a system action.
fn system_audit(tx: &super::TenantTx<'_>, action: audit::Action, count: u64, now: i64) -> Result<(), StoreError> {
    if count == 0 {
        return Ok(());
    }
    let count = count.to_string();
    let entry = AuditEntry {
        actor_kind: audit::ActorKind::System,
        tenant_id: Some(tx.keys().tenant_id()),
        reason: Some(&count),
        peer: None,
        ..AuditEntry::operator("throughline", action)
    };
    tx.audit(&entry, now)?;
    Ok(())
}

/// Row counts an operator may ask for.
#[derive(Clone, Copy, Debug)]
pub enum Countable {
    Customers,
    Identifiers,
    AuditRecords,
    Sessions,
    Turns,
    StateKeys,
    Conversations,
    Conflicts,
    /// Identifiers waiting, sealed, in sessions for a confirmation.
    PendingIdentifiers,
    /// Inbound messages held for staff review.
    HeldMessages,
}

impl Countable {
    fn sql(self) -> &'static str {
        match self {
            Countable::Customers => "SELECT count(*) FROM customers WHERE erased_at IS NULL",
            Countable::Identifiers => "SELECT count(*) FROM identifiers WHERE unlinked_at IS NULL",
            Countable::AuditRecords => "SELECT count(*) FROM audit",
            Countable::Sessions => "SELECT count(*) FROM sessions",
            Countable::Turns => "SELECT count(*) FROM turns",
            Countable::StateKeys => "SELECT count(*) FROM session_state",
            Countable::Conversations => "SELECT count(*) FROM conversations",
            Countable::Conflicts => "SELECT count(*) FROM identifier_conflicts",
            Countable::PendingIdentifiers => "SELECT count(*) FROM session_pending_identifiers",
            Countable::HeldMessages => "SELECT count(*) FROM held_messages",
        }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    crate::datadir_schema::refuse_newer(conn, path, migrations::tenant_latest())?;
    migrations::tenant().to_latest(conn).map_err(|source| StoreError::Migration { path: path.to_owned(), source })
}

pub(super) fn identifier_aad(id: &CustomerId, kind: IdentifierKind) -> Vec<u8> {
    format!("identifiers/{id}/{}", kind.as_str()).into_bytes()
}

pub(super) fn field_aad(id: &CustomerId, field: &str) -> Vec<u8> {
    format!("customers/{id}/{field}").into_bytes()
}

pub(super) fn open_text(
    key: &DataKey,
    id: &CustomerId,
    field: &'static str,
    ct: &[u8],
) -> Result<Zeroizing<String>, StoreError> {
    let bytes = key.open(&field_aad(id, field), ct).map_err(|_| StoreError::Decrypt { what: field })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| StoreError::Decrypt { what: field })?;
    Ok(Zeroizing::new(text.to_owned()))
}
