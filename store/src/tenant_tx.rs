//! `TenantTx`: one IMMEDIATE transaction on a tenant store, with the tenant's
//! keys, carrying every continuity operation, so a session open (its reads,
//! its writes and its audit record) commits whole or not at all. Its
//! methods are grouped by subject, a file each: `tenant_sessions`,
//! `tenant_patients`, `tenant_conversations`, `tenant_content` (turns and
//! state), `tenant_identity` (lockouts, tokens, held messages),
//! `tenant_channels`, `tenant_console`, `tenant_requests`, the export.

use audit::Record;
use crypto::TenantKeys;
use policy::{Channel, Resolution, Strength};
use rusqlite::{Savepoint, Transaction};

use super::StoreError;
use super::audit_log::{self, AuditEntry, AuditTable};
use crate::ids::{ConversationId, CustomerId, SessionId};

pub struct TenantTx<'a> {
    pub(super) tx: TxScope<'a>,
    pub(super) keys: &'a TenantKeys,
    /// Cluster mode, outside a group: the commit is shipped before it returns.
    pub(super) hook: Option<&'a std::sync::Mutex<super::tenant_hook::Hooked>>,
}

/// The SQL scope of a `TenantTx`: an IMMEDIATE transaction of its own, or a
/// savepoint inside a group commit ([`super::TenantStore::begin_group`]),
/// where its commit releases the savepoint and the group's one COMMIT makes
/// it durable; dropped without commit, either rolls back only its own work.
pub(super) enum TxScope<'a> {
    Own(Transaction<'a>),
    Grouped(Savepoint<'a>),
}

impl std::ops::Deref for TxScope<'_> {
    type Target = rusqlite::Connection;

    fn deref(&self) -> &rusqlite::Connection {
        match self {
            TxScope::Own(t) => t,
            TxScope::Grouped(s) => s,
        }
    }
}

impl TxScope<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            TxScope::Own(t) => t.commit(),
            TxScope::Grouped(s) => s.commit(),
        }
    }
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: SessionId,
    pub conversation_id: Option<ConversationId>,
    pub customer_id: Option<CustomerId>,
    pub channel: Channel,
    pub status: Resolution,
    pub strength: Strength,
    pub shared_identifier: bool,
    pub created_customer: bool,
    pub confirmed_at: Option<i64>,
    pub confirm_failures: u32,
    pub locked_until: Option<i64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    /// The certificate that opened it (`None` until stored).
    pub cert_serial: Option<String>,
    /// The last request in it, to the minute (`None`: none since it opened).
    pub last_seen_at: Option<i64>,
}

impl SessionRow {
    /// A session starting now: nobody resolved, nothing confirmed, not ended.
    pub fn starting(id: SessionId, channel: Channel, now: i64) -> Self {
        SessionRow {
            id,
            conversation_id: None,
            customer_id: None,
            channel,
            status: Resolution::New,
            strength: Strength::Claim,
            shared_identifier: false,
            created_customer: false,
            confirmed_at: None,
            confirm_failures: 0,
            locked_until: None,
            started_at: now,
            ended_at: None,
            end_reason: None,
            cert_serial: None,
            last_seen_at: None,
        }
    }
}

impl<'a> TenantTx<'a> {
    pub fn commit(self) -> Result<(), StoreError> {
        let hook = self.hook;
        self.tx.commit()?;
        super::tenant_hook::run_hook(hook).map(|_| ())
    }

    pub fn keys(&self) -> &TenantKeys {
        self.keys
    }

    /// Appends an audit record in this transaction.
    pub fn audit(&self, entry: &AuditEntry<'_>, now: i64) -> Result<Record, StoreError> {
        audit_log::append(&self.tx, AuditTable::Tenant, entry, now)
    }

    /// Audit records that name this patient (for their export).
    pub fn audit_records_about(&self, customer: &CustomerId) -> Result<Vec<(Record, String)>, StoreError> {
        Ok(audit_log::read_all(&self.tx, AuditTable::Tenant)?
            .into_iter()
            .filter(|(r, _)| {
                r.customer_id.as_deref() == Some(customer.as_str()) || r.subjects.iter().any(|s| s == customer.as_str())
            })
            .collect())
    }
}
