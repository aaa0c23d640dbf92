//! A tenant's sessions in SQL: one per call, chat or email, with how its
//! patient was found, its candidates while ambiguous, its confirmation and
//! its end.

use policy::{Channel, Resolution, Strength};
use rusqlite::{OptionalExtension, params};

use super::StoreError;
use super::tenant_tx::{SessionRow, TenantTx};
use crate::ids::{ConversationId, CustomerId, SessionId};

impl TenantTx<'_> {
    pub fn session(&self, id: &SessionId) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
        Ok(self.tx.prepare_cached(&sql)?.query_row([id.as_str()], session_row).optional()?)
    }

    /// The session opened with this external reference on this channel, and
    /// the serial of the certificate that opened it.
    pub fn session_by_external_ref(
        &self,
        channel: Channel,
        external_ref: &str,
    ) -> Result<Option<(SessionRow, String)>, StoreError> {
        let bi = self.keys.blind_index("external_ref", external_ref);
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE channel = ?1 AND external_ref_bi = ?2");
        Ok(self
            .tx
            .prepare_cached(&sql)?
            .query_row(params![channel.as_str(), bi.0.as_slice()], session_row)
            .optional()?
            .map(|row| {
                let serial = row.cert_serial.clone().unwrap_or_default();
                (row, serial)
            }))
    }

    pub fn insert_session(
        &self,
        s: &SessionRow,
        external_ref: Option<&str>,
        cert_serial: &str,
    ) -> Result<(), StoreError> {
        let bi = external_ref.map(|r| self.keys.blind_index("external_ref", r).0.to_vec());
        self.tx
            .prepare_cached(
                "INSERT INTO sessions (id, conversation_id, customer_id, channel, external_ref_bi, cert_serial,
                     identity_status, identity_strength, shared_identifier, created_customer, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                s.id.as_str(),
                s.conversation_id.as_ref().map(ConversationId::as_str),
                s.customer_id.as_ref().map(CustomerId::as_str),
                s.channel.as_str(),
                bi,
                cert_serial,
                s.status.as_str(),
                s.strength.as_str(),
                s.shared_identifier,
                s.created_customer,
                s.started_at
            ])?;
        Ok(())
    }

    pub fn add_candidates(&self, session: &SessionId, candidates: &[CustomerId]) -> Result<(), StoreError> {
        let mut stmt =
            self.tx.prepare_cached("INSERT INTO session_candidates (session_id, customer_id) VALUES (?1, ?2)")?;
        for c in candidates {
            stmt.execute(params![session.as_str(), c.as_str()])?;
        }
        Ok(())
    }

    pub fn candidates(&self, session: &SessionId) -> Result<Vec<CustomerId>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT customer_id FROM session_candidates WHERE session_id = ?1 ORDER BY customer_id")?;
        let rows = stmt.query_map([session.as_str()], |r| r.get::<_, String>(0))?;
        Ok(rows.filter_map(|r| r.ok().and_then(|s| CustomerId::parse(&s))).collect())
    }

    /// Confirmation picked (or confirmed) the patient: attach and mark confirmed.
    pub fn confirm_session(
        &self,
        session: &SessionId,
        customer: &CustomerId,
        conversation: &ConversationId,
        now: i64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE sessions SET customer_id = ?2, conversation_id = ?3, identity_status = 'resolved',
                 confirmed_at = ?4, confirm_failures = 0, locked_until = NULL WHERE id = ?1",
            params![session.as_str(), customer.as_str(), conversation.as_str(), now],
        )?;
        Ok(())
    }

    pub fn record_confirm_failure(
        &self,
        session: &SessionId,
        failures: u32,
        locked_until: Option<i64>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE sessions SET confirm_failures = ?2, locked_until = ?3 WHERE id = ?1",
            params![session.as_str(), failures, locked_until],
        )?;
        Ok(())
    }

    /// Notes a request in the session, at most once a minute (the row is
    /// not rewritten for every turn of a call).
    pub fn touch_session(&self, session: &SessionId, now: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND (last_seen_at IS NULL OR last_seen_at < ?2 - 60000)",
            )?
            .execute(params![session.as_str(), now])?;
        Ok(())
    }

    /// Ends the session; returns whether it ended with a task pending
    /// (`ended_pending`, docs/OUTCOMES.md).
    pub fn end_session(&self, session: &SessionId, reason: &str, now: i64) -> Result<bool, StoreError> {
        // Whether a task was left half-done is kept with the session: the
        // state itself expires (docs/OUTCOMES.md, "interrupted").
        self.tx.execute(
            "UPDATE sessions SET ended_at = ?2, end_reason = ?3,
                ended_pending = EXISTS (SELECT 1 FROM session_state st
                    WHERE st.conversation_id = sessions.conversation_id
                      AND st.key LIKE 'pending\\_%' ESCAPE '\\' AND st.expires_at > ?2)
             WHERE id = ?1 AND ended_at IS NULL",
            params![session.as_str(), now, reason],
        )?;
        self.tx.execute("DELETE FROM session_pending_identifiers WHERE session_id = ?1", [session.as_str()])?;
        let pending: i64 =
            self.tx.query_row("SELECT ended_pending FROM sessions WHERE id = ?1", [session.as_str()], |r| r.get(0))?;
        Ok(pending == 1)
    }

    /// The most recent other session of a conversation (for the brief).
    pub fn previous_session(
        &self,
        conversation: &ConversationId,
        except: &SessionId,
    ) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE conversation_id = ?1 AND id != ?2
             ORDER BY started_at DESC, rowid DESC LIMIT 1"
        );
        Ok(self.tx.prepare_cached(&sql)?.query_row([conversation.as_str(), except.as_str()], session_row).optional()?)
    }
}

pub(super) const SESSION_COLUMNS: &str = "id, conversation_id, customer_id, channel, identity_status, identity_strength,
     shared_identifier, created_customer, confirmed_at, confirm_failures, locked_until, started_at, ended_at, end_reason,
     cert_serial, last_seen_at";

pub(super) fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    let bad =
        |i: usize| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, "bad session row".into());
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(SessionRow {
        id: SessionId::parse(&text(0)?).ok_or_else(|| bad(0))?,
        conversation_id: r.get::<_, Option<String>>(1)?.and_then(|s| ConversationId::parse(&s)),
        customer_id: r.get::<_, Option<String>>(2)?.and_then(|s| CustomerId::parse(&s)),
        channel: text(3)?.parse().map_err(|_| bad(3))?,
        status: match text(4)?.as_str() {
            "resolved" => Resolution::Resolved,
            "ambiguous" => Resolution::Ambiguous,
            "new" => Resolution::New,
            _ => return Err(bad(4)),
        },
        strength: match text(5)?.as_str() {
            "claim" => Strength::Claim,
            "asserted" => Strength::Asserted,
            "possession" => Strength::Possession,
            _ => return Err(bad(5)),
        },
        shared_identifier: r.get(6)?,
        created_customer: r.get(7)?,
        confirmed_at: r.get(8)?,
        confirm_failures: r.get(9)?,
        locked_until: r.get(10)?,
        started_at: r.get(11)?,
        ended_at: r.get(12)?,
        end_reason: r.get(13)?,
        cert_serial: r.get(14)?,
        last_seen_at: r.get(15)?,
    })
}
