//! Appending to and reading a store's audit chain (the tenant's `audit` table
//! or the system store's `system_audit`). Appends run inside the caller's
//! transaction, so the record commits with the change it describes or not at
//! all.

use audit::{ActorKind, GENESIS, Outcome, Record};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// Which chain.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AuditTable {
    Tenant,
    System,
}

impl AuditTable {
    fn name(self) -> &'static str {
        match self {
            AuditTable::Tenant => "audit",
            AuditTable::System => "system_audit",
        }
    }
}

/// What to record; the store adds the sequence number, time and chain link.
#[derive(Clone, Debug)]
pub struct AuditEntry<'a> {
    pub actor_kind: ActorKind,
    pub actor: &'a str,
    pub channel: Option<&'a str>,
    pub action: audit::Action,
    pub tenant_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
}

impl<'a> AuditEntry<'a> {
    /// An operator's successful action from the command line.
    pub fn operator(operator: &'a str, action: audit::Action) -> Self {
        AuditEntry {
            actor_kind: ActorKind::Operator,
            actor: operator,
            channel: None,
            action,
            tenant_id: None,
            customer_id: None,
            session_id: None,
            peer: Some("cli"),
            outcome: Outcome::Ok,
            reason: None,
        }
    }
}

/// What a staff member's record carries beyond a channel's (audit v2).
#[derive(Clone, Debug, Default)]
pub struct StaffFields<'a> {
    pub role: Option<&'a str>,
    pub purpose: Option<&'a str>,
    pub break_glass: Option<&'a str>,
    pub subjects: &'a [String],
    pub query_hmac: Option<&'a str>,
}

pub(crate) fn append(
    conn: &Connection,
    table: AuditTable,
    entry: &AuditEntry<'_>,
    at: i64,
) -> Result<Record, StoreError> {
    append_with(conn, table, entry, &StaffFields::default(), at)
}

pub(crate) fn append_with(
    conn: &Connection,
    table: AuditTable,
    entry: &AuditEntry<'_>,
    staff: &StaffFields<'_>,
    at: i64,
) -> Result<Record, StoreError> {
    let t = table.name();
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(&format!("SELECT seq, hash FROM {t} ORDER BY seq DESC LIMIT 1"))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (u64::try_from(seq).unwrap_or(0) + 1, hex::encode(hash)),
        None => (1, GENESIS.to_owned()),
    };
    let record = Record {
        seq,
        at,
        actor_kind: entry.actor_kind,
        actor: entry.actor.to_owned(),
        channel: entry.channel.map(str::to_owned),
        action: entry.action.as_str().to_owned(),
        tenant_id: entry.tenant_id.map(str::to_owned),
        customer_id: entry.customer_id.map(str::to_owned),
        session_id: entry.session_id.map(str::to_owned),
        peer: entry.peer.map(str::to_owned),
        outcome: entry.outcome,
        reason: entry.reason.map(str::to_owned),
        prev_hash,
        role: staff.role.map(str::to_owned),
        purpose: staff.purpose.map(str::to_owned),
        break_glass: staff.break_glass.map(str::to_owned),
        subjects: staff.subjects.to_vec(),
        query_hmac: staff.query_hmac.map(str::to_owned),
    };
    let prev = hex::decode(&record.prev_hash).unwrap_or_default();
    conn.prepare_cached(&format!(
        "INSERT INTO {t} (seq, at, actor_kind, actor, channel, action, tenant_id, customer_id,
                          session_id, peer, outcome, reason, prev_hash, hash,
                          role, purpose, break_glass, subjects, query_hmac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    ))?
    .execute(params![
        i64::try_from(record.seq).unwrap_or(i64::MAX),
        record.at,
        record.actor_kind.as_str(),
        record.actor,
        record.channel,
        record.action,
        record.tenant_id,
        record.customer_id,
        record.session_id,
        record.peer,
        record.outcome.as_str(),
        record.reason,
        prev,
        record.hash().as_slice(),
        record.role,
        record.purpose,
        record.break_glass,
        (!record.subjects.is_empty()).then(|| record.subjects.join(" ")),
        record.query_hmac,
    ])?;
    if matches!(table, AuditTable::Tenant) {
        let mut insert =
            conn.prepare_cached("INSERT OR IGNORE INTO audit_subjects (seq, customer_id) VALUES (?1, ?2)")?;
        for s in &record.subjects {
            insert.execute(params![i64::try_from(record.seq).unwrap_or(i64::MAX), s])?;
        }
    }
    APPENDED[usize::from(matches!(table, AuditTable::Tenant))].fetch_add(1, Ordering::Relaxed);
    Ok(record)
}

/// Records appended by this process, system and tenant trails: counted here,
/// exported by the server's metrics (the store knows no metrics library).
static APPENDED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// How many audit records this process has appended, by trail.
pub fn appended() -> [(&'static str, u64); 2] {
    [("system", APPENDED[0].load(Ordering::Relaxed)), ("tenant", APPENDED[1].load(Ordering::Relaxed))]
}

/// The columns [`record_row`] reads, in its order.
pub(super) const RECORD_COLUMNS: &str = "seq, at, actor_kind, actor, channel, action, tenant_id, customer_id,
                session_id, peer, outcome, reason, prev_hash, hash,
                role, purpose, break_glass, subjects, query_hmac";

/// One stored record and its hash, from a row of [`RECORD_COLUMNS`].
pub(super) fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Record, String)> {
    let kind: String = r.get(2)?;
    let outcome: String = r.get(10)?;
    let record = Record {
        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        at: r.get(1)?,
        actor_kind: ActorKind::parse(&kind).unwrap_or(ActorKind::System),
        actor: r.get(3)?,
        channel: r.get(4)?,
        action: r.get(5)?,
        tenant_id: r.get(6)?,
        customer_id: r.get(7)?,
        session_id: r.get(8)?,
        peer: r.get(9)?,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
        reason: r.get(11)?,
        prev_hash: hex::encode(r.get::<_, Vec<u8>>(12)?),
        role: r.get(14)?,
        purpose: r.get(15)?,
        break_glass: r.get(16)?,
        subjects: r
            .get::<_, Option<String>>(17)?
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default(),
        query_hmac: r.get(18)?,
    };
    Ok((record, hex::encode(r.get::<_, Vec<u8>>(13)?)))
}

/// Every record of the chain in order, each with the hash stored beside it.
pub(crate) fn read_all(conn: &Connection, table: AuditTable) -> Result<Vec<(Record, String)>, StoreError> {
    let t = table.name();
    let mut stmt = conn.prepare(&format!("SELECT {RECORD_COLUMNS} FROM {t} ORDER BY seq"))?;
    let rows = stmt.query_map([], record_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
