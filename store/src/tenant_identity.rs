//! Identity assurance in SQL: the subjects a session's confirmation counts
//! against (its candidate patients and the blind indexes of the identifiers
//! it was opened with) and the failed confirmations of each, kept as rows
//! so the lockout window slides and no new session resets it.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::StoreError;
use super::tenant::IdentifierKind;
use super::tenant_tx::TenantTx;
use crate::ids::{CustomerId, SessionId};

/// Failures are kept this long at most (the longest lockout a policy sets).
const KEEP_FAILURES_MS: i64 = 24 * 3_600_000;

/// Who a failed confirmation counts against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(Vec<u8>);

impl Subject {
    pub fn customer(c: &CustomerId) -> Self {
        Subject(format!("customer:{c}").into_bytes())
    }
}

/// The failures in the window over the most-failed subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureWindow {
    pub count: u32,
    /// The oldest failure still in the window (when the count next drops).
    pub oldest: Option<i64>,
}

impl TenantTx<'_> {
    /// Records the identifiers a session was opened with as its subjects.
    pub fn add_session_subject(
        &self,
        session: &SessionId,
        kind: IdentifierKind,
        value: &str,
    ) -> Result<(), StoreError> {
        let bi = self.keys.blind_index(kind.as_str(), value);
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO session_subjects (session_id, subject) VALUES (?1, ?2)")?
            .execute(params![session.as_str(), bi.0.as_slice()])?;
        Ok(())
    }

    /// A session's identifier subjects, plus each of `customers`.
    pub fn confirm_subjects(&self, session: &SessionId, customers: &[CustomerId]) -> Result<Vec<Subject>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT subject FROM session_subjects WHERE session_id = ?1")?;
        let rows = stmt.query_map([session.as_str()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out: Vec<Subject> = rows.collect::<Result<Vec<_>, _>>()?.into_iter().map(Subject).collect();
        out.extend(customers.iter().map(Subject::customer));
        Ok(out)
    }

    /// Failures since `since` for the most-failed of `subjects`.
    pub fn confirm_failures_since(&self, subjects: &[Subject], since: i64) -> Result<FailureWindow, StoreError> {
        let mut stmt =
            self.tx.prepare_cached("SELECT COUNT(*), MIN(at) FROM confirm_failures WHERE subject = ?1 AND at > ?2")?;
        let mut worst = FailureWindow { count: 0, oldest: None };
        for s in subjects {
            let (count, oldest): (u32, Option<i64>) =
                stmt.query_row(params![s.0.as_slice(), since], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if count > worst.count {
                worst = FailureWindow { count, oldest };
            }
        }
        Ok(worst)
    }

    /// One failed confirmation against every subject; old rows go.
    pub fn record_subject_failure(&self, subjects: &[Subject], now: i64) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached("INSERT INTO confirm_failures (subject, at) VALUES (?1, ?2)")?;
        for s in subjects {
            stmt.execute(params![s.0.as_slice(), now])?;
        }
        self.tx
            .prepare_cached("DELETE FROM confirm_failures WHERE at < ?1")?
            .execute([now.saturating_sub(KEEP_FAILURES_MS)])?;
        Ok(())
    }

    /// Keeps an inbound message for staff review instead of the conversation,
    /// named with the integration's id when it gave one.
    pub fn hold_message(
        &self,
        session: &SessionId,
        reason: &str,
        raw: &[u8],
        external_ref: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let sealed = self.keys.seal_pending(format!("held/{session}").as_bytes(), raw)?;
        self.tx
            .prepare_cached(
                "INSERT INTO held_messages (session_id, reason, raw_sealed, received_at, external_ref) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![session.as_str(), reason, sealed, now, external_ref])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Whether a text with this integration id is already held in the session.
    pub fn held_by_external_ref(&self, session: &SessionId, external_ref: Option<&str>) -> Result<bool, StoreError> {
        let Some(r) = external_ref else { return Ok(false) };
        let n: i64 = self.tx.query_row(
            "SELECT COUNT(*) FROM held_messages WHERE session_id = ?1 AND external_ref = ?2",
            params![session.as_str(), r],
            |row| row.get(0),
        )?;
        Ok(n > 0)
    }

    /// Held messages not yet reviewed.
    pub fn held_message_count(&self) -> Result<i64, StoreError> {
        Ok(self.tx.query_row("SELECT COUNT(*) FROM held_messages WHERE reviewed_at IS NULL", [], |r| r.get(0))?)
    }

    /// Spends a resume token (single use, M2): `false` if it was already
    /// spent or revoked.
    pub fn spend_resume_token(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached("UPDATE resume_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
            .execute(params![id, now])?;
        Ok(n > 0)
    }

    /// Revokes every live resume token of a patient (start fresh, unlink,
    /// a confirmation lockout, `throughline token revoke`).
    pub fn revoke_customer_tokens(&self, customer: &CustomerId, now: i64) -> Result<u64, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE resume_tokens SET revoked_at = ?2 WHERE customer_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
            )?
            .execute(params![customer.as_str(), now])?;
        Ok(n as u64)
    }

    /// The most recently seen verified identifier of this kind on file for
    /// the patient: where a one-time code may go. An identifier a session
    /// offered is never verified by that session alone (it waits, or is
    /// linked unverified), so it can never be the destination.
    pub fn identifier_on_file(
        &self,
        customer: &CustomerId,
        kind: IdentifierKind,
    ) -> Result<Option<Zeroizing<String>>, StoreError> {
        let ct: Option<Vec<u8>> = self
            .tx
            .prepare_cached(
                "SELECT value_ct FROM identifiers
                 WHERE customer_id = ?1 AND kind = ?2 AND verified = 1 AND unlinked_at IS NULL
                 ORDER BY last_seen DESC, id DESC LIMIT 1",
            )?
            .query_row(params![customer.as_str(), kind.as_str()], |r| r.get(0))
            .optional()?;
        ct.map(|ct| self.open_identifier(customer, kind, &ct)).transpose()
    }

    /// Replaces the session's challenge (the count of sends is kept).
    pub fn put_challenge(&self, c: &Challenge) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO identity_challenges (session_id, customer_id, code_tag, via, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session_id) DO UPDATE SET customer_id = ?2, code_tag = ?3, via = ?4, expires_at = ?5,
                     attempts = 0, sent = sent + 1",
            )?
            .execute(params![
                c.session.as_str(),
                c.customer.as_ref().map(CustomerId::as_str),
                c.code_tag.as_slice(),
                c.via,
                c.expires_at
            ])?;
        Ok(())
    }

    /// The session's challenge and how many codes it has been sent.
    pub fn challenge(&self, session: &SessionId) -> Result<Option<(Challenge, u32, u32)>, StoreError> {
        type Row = (Option<String>, Vec<u8>, String, i64, u32, u32);
        let row: Option<Row> = self
            .tx
            .prepare_cached(
                "SELECT customer_id, code_tag, via, expires_at, attempts, sent FROM identity_challenges WHERE session_id = ?1",
            )?
            .query_row([session.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .optional()?;
        Ok(row.map(|(customer, code_tag, via, expires_at, attempts, sent)| {
            let via = if via == "sms" { "sms" } else { "email" };
            let customer = customer.as_deref().and_then(CustomerId::parse);
            (Challenge { session: session.clone(), customer, code_tag, via, expires_at }, attempts, sent)
        }))
    }

    /// A wrong code: one attempt more.
    pub fn challenge_failed(&self, session: &SessionId) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE identity_challenges SET attempts = attempts + 1 WHERE session_id = ?1",
            [session.as_str()],
        )?;
        Ok(())
    }

    /// The code was used (or the session confirmed otherwise): it is gone.
    pub fn drop_challenge(&self, session: &SessionId) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM identity_challenges WHERE session_id = ?1", [session.as_str()])?;
        Ok(())
    }

    /// Confirmation by a one-time code: the session is now proof of possession.
    pub fn set_session_possession(&self, session: &SessionId) -> Result<(), StoreError> {
        self.tx.execute("UPDATE sessions SET identity_strength = 'possession' WHERE id = ?1", [session.as_str()])?;
        Ok(())
    }
}

/// A one-time code sent for a session (only its tag is stored).
#[derive(Clone, Debug)]
pub struct Challenge {
    pub session: SessionId,
    /// `None`: there was nobody to send it to.
    pub customer: Option<CustomerId>,
    pub code_tag: Vec<u8>,
    pub via: &'static str,
    pub expires_at: i64,
}
