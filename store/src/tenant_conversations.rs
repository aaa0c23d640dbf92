//! A tenant's conversations in SQL: each patient's one open conversation,
//! opened, closed (start fresh) and touched.

use rusqlite::{OptionalExtension, params};

use super::StoreError;
use super::tenant_tx::TenantTx;
use crate::ids::{ConversationId, CustomerId, SessionId};

impl TenantTx<'_> {
    pub fn open_conversation(&self, customer: &CustomerId) -> Result<Option<ConversationId>, StoreError> {
        let id: Option<String> = self
            .tx
            .prepare_cached(
                "SELECT id FROM conversations WHERE customer_id = ?1 AND status = 'open'
                 ORDER BY last_activity_at DESC LIMIT 1",
            )?
            .query_row([customer.as_str()], |r| r.get(0))
            .optional()?;
        Ok(id.and_then(|s| ConversationId::parse(&s)))
    }

    pub fn create_conversation(&self, customer: &CustomerId, now: i64) -> Result<ConversationId, StoreError> {
        let id = ConversationId::generate();
        self.tx.execute(
            "INSERT INTO conversations (id, customer_id, status, opened_at, last_activity_at) VALUES (?1, ?2, 'open', ?3, ?3)",
            params![id.as_str(), customer.as_str(), now],
        )?;
        Ok(id)
    }

    /// Closes a conversation and clears its state; its turns and sessions stay
    /// for the record. Returns how many state keys were cleared.
    pub fn close_conversation(&self, conversation: &ConversationId, reason: &str, now: i64) -> Result<u64, StoreError> {
        self.tx.execute(
            "UPDATE conversations SET status = 'closed', closed_at = ?2, close_reason = ?3 WHERE id = ?1 AND status = 'open'",
            params![conversation.as_str(), now, reason],
        )?;
        Ok(self.tx.execute("DELETE FROM session_state WHERE conversation_id = ?1", [conversation.as_str()])? as u64)
    }

    /// Moves a session onto another conversation of the same patient.
    pub fn move_session(&self, session: &SessionId, conversation: &ConversationId) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE sessions SET conversation_id = ?2 WHERE id = ?1",
            params![session.as_str(), conversation.as_str()],
        )?;
        Ok(())
    }

    /// Records activity on a conversation, to the minute: its row and two
    /// of its indexes are rewritten at most once a minute, not on every turn
    /// of a call (retention and the open-conversation window count in days).
    pub fn touch_conversation(&self, conversation: &ConversationId, now: i64) -> Result<(), StoreError> {
        self.tx.prepare_cached(TOUCH_CONVERSATION)?.execute(params![conversation.as_str(), now])?;
        Ok(())
    }
}

/// `touch_conversation`'s statement (the raw benchmark runs the same).
pub(crate) const TOUCH_CONVERSATION: &str =
    "UPDATE conversations SET last_activity_at = ?2 WHERE id = ?1 AND last_activity_at <= ?2 - 60000";
