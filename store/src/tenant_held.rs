//! Messages held for a person's review (an email from a sender no trusted
//! MTA vouched for, a text from a shared number, words sent before
//! confirmation): read back for the reviewer, then released into the
//! patient's conversation or discarded (its sealed bytes dropped). Either
//! way it happens once.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::{StoreError, TenantTx};
use crate::ids::{ConversationId, CustomerId, SessionId};

/// A held message, without its content.
#[derive(Clone, Debug)]
pub struct HeldRow {
    pub id: i64,
    pub session_id: SessionId,
    pub channel: String,
    pub customer_id: Option<CustomerId>,
    pub conversation_id: Option<ConversationId>,
    pub reason: String,
    pub received_at: i64,
    pub reviewed: bool,
}

/// (session, channel, customer, conversation, reason, received, reviewed), as stored.
type StoredHeld = (String, String, Option<String>, Option<String>, String, i64, Option<i64>);

impl TenantTx<'_> {
    pub fn held(&self, id: i64) -> Result<Option<HeldRow>, StoreError> {
        let row: Option<StoredHeld> = self
            .tx
            .prepare_cached(
                "SELECT h.session_id, s.channel, s.customer_id, s.conversation_id, h.reason, h.received_at, h.reviewed_at
                 FROM held_messages h JOIN sessions s ON s.id = h.session_id WHERE h.id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
            .optional()?;
        Ok(row.and_then(|(session, channel, customer, conversation, reason, received_at, reviewed)| {
            Some(HeldRow {
                id,
                session_id: SessionId::parse(&session)?,
                channel,
                customer_id: customer.as_deref().and_then(CustomerId::parse),
                conversation_id: conversation.as_deref().and_then(ConversationId::parse),
                reason,
                received_at,
                reviewed: reviewed.is_some(),
            })
        }))
    }

    /// The held bytes (an RFC 5322 message, or a text), unsealed.
    pub fn held_content(&self, held: &HeldRow) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let sealed: Vec<u8> = self
            .tx
            .prepare_cached("SELECT raw_sealed FROM held_messages WHERE id = ?1")?
            .query_row([held.id], |r| r.get(0))?;
        self.keys
            .open_pending(format!("held/{}", held.session_id).as_bytes(), &sealed)
            .map_err(|_| StoreError::Decrypt { what: "held message" })
    }

    /// Marks the message reviewed; a discard also drops its sealed bytes.
    /// `false` when someone else settled it first.
    pub fn settle_held(&self, id: i64, discard: bool, now: i64) -> Result<bool, StoreError> {
        let sql = if discard {
            "UPDATE held_messages SET reviewed_at = ?2, raw_sealed = x'' WHERE id = ?1 AND reviewed_at IS NULL"
        } else {
            "UPDATE held_messages SET reviewed_at = ?2 WHERE id = ?1 AND reviewed_at IS NULL"
        };
        Ok(self.tx.execute(sql, params![id, now])? == 1)
    }
}
