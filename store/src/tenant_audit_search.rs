//! Searching a tenant's audit trail for the compliance console (ONC
//! 170.315(d)(3)'s fields: time, patient, user, action): by patient (as the
//! record's patient or one a page showed), actor, action prefix, outcome,
//! channel, time range and break-glass, newest or oldest first, paged by
//! sequence number. The chain stays the authority; this only reads it.

use rusqlite::params;

use super::audit_log::{RECORD_COLUMNS, record_row};
use super::{StoreError, TenantTx};

/// What to look for; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub customer: Option<String>,
    pub actor: Option<String>,
    pub action_prefix: Option<String>,
    /// `ok`, `refused`, `failed`, or `not_ok` for either of the last two.
    pub outcome: Option<String>,
    pub channel: Option<String>,
    /// From this instant (ms), inclusive, to `until`, exclusive.
    pub from: Option<i64>,
    pub until: Option<i64>,
    pub break_glass_only: bool,
    /// Paging: records before (newest first) or after (oldest first) this seq.
    pub cursor: Option<u64>,
    pub oldest_first: bool,
    pub limit: u32,
}

impl TenantTx<'_> {
    pub fn audit_search(&self, f: &AuditFilter) -> Result<Vec<(audit::Record, String)>, StoreError> {
        let order = if f.oldest_first { "ASC" } else { "DESC" };
        let cursor = if f.oldest_first { "a.seq > ?8" } else { "a.seq < ?8" };
        let sql = format!(
            "SELECT {cols} FROM audit a
             WHERE (?1 IS NULL OR a.customer_id = ?1
                    OR EXISTS (SELECT 1 FROM audit_subjects s WHERE s.customer_id = ?1 AND s.seq = a.seq))
               AND (?2 IS NULL OR a.actor = ?2)
               AND (?3 IS NULL OR substr(a.action, 1, length(?3)) = ?3)
               AND (?4 IS NULL OR a.outcome = ?4 OR (?4 = 'not_ok' AND a.outcome != 'ok'))
               AND (?5 IS NULL OR a.channel = ?5)
               AND (?6 IS NULL OR a.at >= ?6)
               AND (?7 IS NULL OR a.at < ?7)
               AND (?8 IS NULL OR {cursor})
               AND (?9 = 0 OR a.break_glass IS NOT NULL)
             ORDER BY a.seq {order} LIMIT ?10",
            cols = RECORD_COLUMNS.replace("seq,", "a.seq,")
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                f.customer,
                f.actor,
                f.action_prefix,
                f.outcome,
                f.channel,
                f.from,
                f.until,
                f.cursor.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
                i64::from(f.break_glass_only),
                f.limit.clamp(1, 1_000),
            ],
            record_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A staff member's record, as the anomaly rules read it:
/// (actor, at, action, customer, outcome, reason).
pub type StaffEventRow = (String, i64, String, Option<String>, String, Option<String>);

impl TenantTx<'_> {
    /// Staff records since `since`, oldest first.
    pub fn staff_events_since(&self, since: i64) -> Result<Vec<StaffEventRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT actor, at, action, customer_id, outcome, reason FROM audit
             WHERE actor_kind = 'staff' AND at >= ?1 ORDER BY seq",
        )?;
        let rows =
            stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Distinct patients each staff member's records name in [from, until).
    pub fn distinct_patients_by_staff(&self, from: i64, until: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT actor, COUNT(DISTINCT customer_id) FROM audit
             WHERE actor_kind = 'staff' AND at >= ?1 AND at < ?2 AND customer_id IS NOT NULL GROUP BY actor",
        )?;
        let rows = stmt.query_map(params![from, until], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
