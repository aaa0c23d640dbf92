//! What was said and what is pending: turns and session state, sealed under
//! the patient's data key. Expired state is never returned and is purged.

use std::collections::BTreeMap;

use policy::{Access, PhiClass};
use rusqlite::{OptionalExtension as _, params};
use zeroize::Zeroizing;

use super::StoreError;
use super::tenant_tx::TenantTx;
use crate::ids::{ConversationId, CustomerId, SessionId};

/// One turn as handed back (PHI: only built for an `Access` that allows it).
#[derive(Clone)]
pub struct TurnView {
    pub channel: String,
    pub speaker: String,
    pub text: Zeroizing<String>,
    pub at: i64,
}

impl std::fmt::Debug for TurnView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TurnView({} {} at {}, [REDACTED])", self.channel, self.speaker, self.at)
    }
}

fn require(access: &Access, class: PhiClass) -> Result<(), StoreError> {
    if access.allows(class) { Ok(()) } else { Err(StoreError::PolicyDenied { class }) }
}

pub(super) fn turn_aad(conversation: &ConversationId, at: i64) -> Vec<u8> {
    format!("turns/{conversation}/{at}").into_bytes()
}

fn state_aad(conversation: &ConversationId, key: &str) -> Vec<u8> {
    format!("state/{conversation}/{key}").into_bytes()
}

impl TenantTx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub fn append_turn(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
        session: &SessionId,
        channel: &str,
        speaker: &str,
        text: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let key = self.data_key(customer)?;
        let ct = key.seal(&turn_aad(conversation, now), text.as_bytes())?;
        self.tx
            .prepare_cached(
                "INSERT INTO turns (conversation_id, session_id, channel, speaker, text_ct, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![conversation.as_str(), session.as_str(), channel, speaker, ct, now])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Names a turn with the integration's own id (unique per session).
    pub fn set_turn_external_ref(&self, turn: i64, external_ref: &str) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE turns SET external_ref = ?2 WHERE id = ?1")?
            .execute(params![turn, external_ref])?;
        Ok(())
    }

    /// The turn a session recorded under the integration's own id.
    pub fn turn_by_external_ref(&self, session: &SessionId, external_ref: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT id FROM turns WHERE session_id = ?1 AND external_ref = ?2")?
            .query_row(params![session.as_str(), external_ref], |r| r.get(0))
            .optional()?)
    }

    /// The last `n` turns of a conversation, oldest first. PHI (conversation
    /// class): needs the policy's `Access`.
    pub fn recent_turns(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
        n: u32,
        access: &Access,
    ) -> Result<Vec<TurnView>, StoreError> {
        require(access, PhiClass::Conversation)?;
        let key = self.data_key(customer)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT channel, speaker, text_ct, at FROM turns WHERE conversation_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![conversation.as_str(), n], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut turns = Vec::new();
        for row in rows {
            let (channel, speaker, ct, at) = row?;
            let bytes = key.open(&turn_aad(conversation, at), &ct).map_err(|_| StoreError::Decrypt { what: "turn" })?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "turn" })?;
            turns.push(TurnView { channel, speaker, text: Zeroizing::new(text), at });
        }
        turns.reverse();
        Ok(turns)
    }

    pub fn put_state(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
        key: &str,
        value: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let dk = self.data_key(customer)?;
        let ct = dk.seal(&state_aad(conversation, key), value.as_bytes())?;
        self.tx
            .prepare_cached(
                "INSERT INTO session_state (conversation_id, key, value_ct, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (conversation_id, key) DO UPDATE SET value_ct = ?3, updated_at = ?4, expires_at = ?5",
            )?
            .execute(params![conversation.as_str(), key, ct, now, expires_at])?;
        Ok(())
    }

    /// Deletes a key; returns whether it existed (unexpired).
    pub fn delete_state(&self, conversation: &ConversationId, key: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.tx.execute(
            "DELETE FROM session_state WHERE conversation_id = ?1 AND key = ?2 AND expires_at > ?3",
            params![conversation.as_str(), key, now],
        )?;
        Ok(n > 0)
    }

    /// Unexpired state of a conversation; expired keys are never returned.
    /// PHI (conversation class): needs the policy's `Access`.
    pub fn state(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
        now: i64,
        access: &Access,
    ) -> Result<BTreeMap<String, Zeroizing<String>>, StoreError> {
        require(access, PhiClass::Conversation)?;
        let dk = self.data_key(customer)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT key, value_ct FROM session_state WHERE conversation_id = ?1 AND expires_at > ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![conversation.as_str(), now], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (key, ct) = row?;
            let bytes =
                dk.open(&state_aad(conversation, &key), &ct).map_err(|_| StoreError::Decrypt { what: "state" })?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "state" })?;
            out.insert(key, Zeroizing::new(text));
        }
        Ok(out)
    }

    /// Whether an unexpired key is set (no decryption, no PHI).
    pub fn state_key_exists(&self, conversation: &ConversationId, key: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM session_state WHERE conversation_id = ?1 AND key = ?2 AND expires_at > ?3")?
            .exists(params![conversation.as_str(), key, now])?)
    }

    pub fn count_state(&self, conversation: &ConversationId, now: i64) -> Result<u64, StoreError> {
        let n: i64 = self
            .tx
            .prepare_cached("SELECT count(*) FROM session_state WHERE conversation_id = ?1 AND expires_at > ?2")?
            .query_row(params![conversation.as_str(), now], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes conversations idle since before `cutoff` with everything that
    /// hangs off them (sessions, turns, state, threads, attachments,
    /// appointments, callbacks, tokens). Audit records stay: they hold no PHI.
    pub fn purge_conversations_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        const BY_CONVERSATION: [&str; 8] = [
            "DELETE FROM session_pending_identifiers WHERE session_id IN (SELECT id FROM sessions WHERE conversation_id IN old)",
            "DELETE FROM session_candidates WHERE session_id IN (SELECT id FROM sessions WHERE conversation_id IN old)",
            "DELETE FROM turns WHERE conversation_id IN old",
            "DELETE FROM session_state WHERE conversation_id IN old",
            "DELETE FROM email_threads WHERE conversation_id IN old",
            "DELETE FROM attachments WHERE conversation_id IN old",
            "DELETE FROM appointments WHERE conversation_id IN old",
            "DELETE FROM callback_requests WHERE conversation_id IN old",
        ];
        let with = "WITH old AS (SELECT id FROM conversations WHERE last_activity_at < ?1) ";
        for sql in BY_CONVERSATION {
            self.tx.execute(&format!("{with}{sql}"), [cutoff])?;
        }
        self.tx.execute(&format!("{with}DELETE FROM resume_tokens WHERE conversation_id IN old"), [cutoff])?;
        self.tx.execute(&format!("{with}DELETE FROM sessions WHERE conversation_id IN old"), [cutoff])?;
        // Sessions that never reached a conversation (a claim that neither
        // confirmed nor took intake, a family number left ambiguous) go at
        // the same horizon, with what waited in them (L6); their held
        // messages, subjects and challenges go with them (ON DELETE CASCADE).
        const UNATTACHED: [&str; 3] = [
            "DELETE FROM session_pending_identifiers WHERE session_id IN (SELECT id FROM sessions WHERE conversation_id IS NULL AND started_at < ?1)",
            "DELETE FROM session_candidates WHERE session_id IN (SELECT id FROM sessions WHERE conversation_id IS NULL AND started_at < ?1)",
            "DELETE FROM sessions WHERE conversation_id IS NULL AND started_at < ?1",
        ];
        for sql in UNATTACHED {
            self.tx.execute(sql, [cutoff])?;
        }
        Ok(self.tx.execute("DELETE FROM conversations WHERE last_activity_at < ?1", [cutoff])? as u64)
    }

    /// Removes every expired state key of the tenant; returns how many.
    pub fn purge_expired_state(&self, now: i64) -> Result<u64, StoreError> {
        Ok(self.tx.execute("DELETE FROM session_state WHERE expires_at <= ?1", [now])? as u64)
    }
}
