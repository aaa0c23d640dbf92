//! Erasure (GDPR Art. 17) by crypto-shredding: the patient's data key is
//! destroyed, so every copy of their ciphertext (WAL, freed pages, backups)
//! becomes unreadable, and their rows go too. A tombstone keeps the id
//! marked erased (idempotence, and re-applying erasures after a restore).
//! Audit records stay: they hold no PHI.

use rusqlite::{OptionalExtension, params};

use super::StoreError;
use super::tenant_tx::TenantTx;
use crate::ids::CustomerId;

/// What an erasure removed (row counts), for the receipt.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub identifiers: u64,
    pub conversations: u64,
    pub sessions: u64,
    pub turns: u64,
    pub state_keys: u64,
    pub appointments: u64,
    pub callbacks: u64,
    pub attachments: u64,
}

impl TenantTx<'_> {
    /// The stored receipt of an earlier erasure of this patient, if any.
    pub fn erasure_receipt(&self, customer: &CustomerId) -> Result<Option<String>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT receipt FROM erasure_requests WHERE customer_id = ?1 AND completed_at IS NOT NULL")?
            .query_row([customer.as_str()], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Shreds the patient's key and deletes everything about them except the
    /// tombstone row and the audit trail.
    pub fn erase_customer(&self, customer: &CustomerId, now: i64) -> Result<Erased, StoreError> {
        let c = customer.as_str();
        let conv = "(SELECT id FROM conversations WHERE customer_id = ?1)";
        let sess = format!("(SELECT id FROM sessions WHERE conversation_id IN {conv} OR customer_id = ?1)");
        let del = |sql: &str| -> Result<u64, StoreError> { Ok(self.tx.execute(sql, [c])? as u64) };
        let mut e = Erased::default();
        del(&format!("DELETE FROM session_pending_identifiers WHERE session_id IN {sess}"))?;
        // Sessions where the patient was one candidate of several (a family
        // number): what waited in them, sealed under the tenant's key rather
        // than the patient's, goes too (M6).
        let candidate_of = "(SELECT session_id FROM session_candidates WHERE customer_id = ?1)";
        del(&format!("DELETE FROM session_pending_identifiers WHERE session_id IN {candidate_of}"))?;
        del(&format!("DELETE FROM held_messages WHERE session_id IN {candidate_of}"))?;
        del("DELETE FROM confirm_failures WHERE subject = CAST('customer:' || ?1 AS BLOB)")?;
        del(&format!("DELETE FROM session_candidates WHERE session_id IN {sess} OR customer_id = ?1"))?;
        e.turns = del(&format!("DELETE FROM turns WHERE conversation_id IN {conv}"))?;
        e.state_keys = del(&format!("DELETE FROM session_state WHERE conversation_id IN {conv}"))?;
        e.attachments = del("DELETE FROM attachments WHERE customer_id = ?1")?;
        e.appointments = del("DELETE FROM appointments WHERE customer_id = ?1")?;
        e.callbacks = del("DELETE FROM callback_requests WHERE customer_id = ?1")?;
        del(&format!("DELETE FROM email_threads WHERE conversation_id IN {conv}"))?;
        del("DELETE FROM resume_tokens WHERE customer_id = ?1")?;
        del("DELETE FROM identifier_conflicts WHERE winning_customer = ?1 OR losing_customer = ?1")?;
        e.sessions = del(&format!("DELETE FROM sessions WHERE id IN {sess}"))?;
        e.conversations = del("DELETE FROM conversations WHERE customer_id = ?1")?;
        e.identifiers = del("DELETE FROM identifiers WHERE customer_id = ?1")?;
        self.tx.execute(
            "UPDATE customers SET wrapped_key = NULL, name_ct = NULL, name_bi = NULL, dob_ct = NULL, erased_at = ?2, updated_at = ?2
             WHERE id = ?1",
            params![c, now],
        )?;
        Ok(e)
    }

    pub fn record_erasure(
        &self,
        id: &str,
        customer: &CustomerId,
        by: &str,
        receipt: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO erasure_requests (id, customer_id, requested_by, requested_at, completed_at, receipt)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![id, customer.as_str(), by, now, receipt],
        )?;
        Ok(())
    }

    /// Whether the patient exists and is not erased.
    pub fn customer_is_live(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM customers WHERE id = ?1 AND erased_at IS NULL")?
            .exists([customer.as_str()])?)
    }
}
