//! What the outcomes report reads (continuity::outcomes, docs/OUTCOMES.md):
//! per session its channel, times, ending and the flags recorded when it
//! happened; appointments and callbacks by time and status. Ids, instants
//! and flags only: nothing here is PHI, and nothing is decrypted.

use rusqlite::params;

use crate::ids::SessionId;
use crate::{StoreError, TenantStore, TenantTx};

/// One session's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOutcomeRow {
    pub id: String,
    pub conversation_id: Option<String>,
    pub channel: String,
    pub identity_strength: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub ended_pending: bool,
    pub booking_intent: bool,
    pub recovery_arm: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentOutcomeRow {
    pub conversation_id: String,
    pub created_at: i64,
    pub booked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackOutcomeRow {
    pub created_at: i64,
    pub done: bool,
}

/// Everything that started in `[from, until)`.
#[derive(Clone, Debug, Default)]
pub struct OutcomeRows {
    pub sessions: Vec<SessionOutcomeRow>,
    pub appointments: Vec<AppointmentOutcomeRow>,
    pub callbacks: Vec<CallbackOutcomeRow>,
}

impl TenantStore {
    /// The facts of sessions, appointments and callbacks made in `[from, until)`.
    pub fn outcome_rows(&self, from: i64, until: i64) -> Result<OutcomeRows, StoreError> {
        read(&self.conn, from, until)
    }
}

fn read(conn: &rusqlite::Connection, from: i64, until: i64) -> Result<OutcomeRows, StoreError> {
    let sessions = conn
        .prepare(
            "SELECT id, conversation_id, channel, identity_strength, started_at, ended_at, end_reason,
                        ended_pending, booking_intent, recovery_arm
                 FROM sessions WHERE started_at >= ?1 AND started_at < ?2 ORDER BY started_at, id",
        )?
        .query_map(params![from, until], |r| {
            Ok(SessionOutcomeRow {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                channel: r.get(2)?,
                identity_strength: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
                end_reason: r.get(6)?,
                ended_pending: r.get::<_, i64>(7)? == 1,
                booking_intent: r.get::<_, i64>(8)? == 1,
                recovery_arm: r.get(9)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let appointments = conn
        .prepare(
            "SELECT conversation_id, created_at, status FROM appointments
                 WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at",
        )?
        .query_map(params![from, until], |r| {
            Ok(AppointmentOutcomeRow {
                conversation_id: r.get(0)?,
                created_at: r.get(1)?,
                booked: r.get::<_, String>(2)? == "booked",
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let callbacks = conn
        .prepare(
            "SELECT created_at, status FROM callback_requests
                 WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at",
        )?
        .query_map(params![from, until], |r| {
            Ok(CallbackOutcomeRow { created_at: r.get(0)?, done: r.get::<_, String>(1)? == "done" })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OutcomeRows { sessions, appointments, callbacks })
}

impl TenantTx<'_> {
    /// [`TenantStore::outcome_rows`] inside a transaction (the console reads
    /// and records its read in one).
    pub fn outcome_rows(&self, from: i64, until: i64) -> Result<OutcomeRows, StoreError> {
        read(&self.tx, from, until)
    }

    /// A booking was asked for (a `pending_booking*` key) or made in this session.
    pub fn mark_booking_intent(&self, session: &SessionId) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE sessions SET booking_intent = 1 WHERE id = ?1 AND booking_intent = 0")?
            .execute([session.as_str()])?;
        Ok(())
    }

    /// Puts an interrupted call in an arm of the resume-link holdout.
    pub fn set_recovery_arm(&self, session: &SessionId, arm: &str) -> Result<(), StoreError> {
        self.tx.execute("UPDATE sessions SET recovery_arm = ?2 WHERE id = ?1", params![session.as_str(), arm])?;
        Ok(())
    }
}
