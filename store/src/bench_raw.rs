//! The raw SQLCipher work of one session open, for benchmarks: the same
//! statements `continuity::open_session` runs for a known patient (resolve by
//! blind index, open conversation, insert the session, two audit records,
//! read display fields, state, previous session and recent turns, commit
//! with `synchronous=FULL`), with the blind index and ciphertexts computed
//! beforehand and nothing decrypted. What the service adds on top of this is
//! its own cost.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{StoreError, TenantStore};

/// Precomputed inputs of one raw open.
pub struct RawOpen<'a> {
    pub phone_bi: &'a [u8],
    pub session_id: &'a str,
    pub now: i64,
    /// Write the two audit records (false measures what they cost).
    pub with_audit: bool,
}

impl TenantStore {
    /// Runs the raw statements; returns the number of rows read (so the
    /// optimiser cannot skip anything and the caller can sanity-check).
    pub fn bench_raw_open(&mut self, input: &RawOpen<'_>) -> Result<usize, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows = 0;
        let customer: String = tx
            .prepare_cached(
                "SELECT i.customer_id FROM identifiers i JOIN customers c ON c.id = i.customer_id
                 WHERE i.kind = 'phone' AND i.value_bi = ?1 AND i.unlinked_at IS NULL AND c.erased_at IS NULL ORDER BY i.id",
            )?
            .query_row([input.phone_bi], |r| r.get(0))?;
        let conversation: String = tx
            .prepare_cached(
                "SELECT id FROM conversations WHERE customer_id = ?1 AND status = 'open' ORDER BY last_activity_at DESC LIMIT 1",
            )?
            .query_row([&customer], |r| r.get(0))?;
        tx.prepare_cached(
            "INSERT INTO sessions (id, conversation_id, customer_id, channel, cert_serial, identity_status,
                 identity_strength, started_at) VALUES (?1, ?2, ?3, 'voice', 'bench', 'resolved', 'asserted', ?4)",
        )?
        .execute(params![input.session_id, conversation, customer, input.now])?;
        tx.prepare_cached(super::tenant_conversations::TOUCH_CONVERSATION)?
            .execute(params![conversation, input.now])?;
        for _ in 0..if input.with_audit { 2 } else { 0 } {
            let last: Option<(i64, Vec<u8>)> = tx
                .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (seq, prev) = last.map(|(s, h)| (s + 1, h)).unwrap_or((1, vec![0; 32]));
            tx.prepare_cached(
                "INSERT INTO audit (seq, at, actor_kind, actor, channel, action, tenant_id, customer_id, session_id,
                     peer, outcome, reason, prev_hash, hash)
                 VALUES (?1, ?2, 'channel', 'bench', 'voice', 'session.open', NULL, ?3, ?4, NULL, 'ok', NULL, ?5, ?5)",
            )?
            .execute(params![seq, input.now, customer, input.session_id, prev])?;
        }
        type Display = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);
        let _: Display = tx
            .prepare_cached("SELECT wrapped_key, name_ct, dob_ct FROM customers WHERE id = ?1")?
            .query_row([&customer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows += 1;
        {
            let mut st = tx.prepare_cached(
                "SELECT key, value_ct FROM session_state WHERE conversation_id = ?1 AND expires_at > ?2 ORDER BY key",
            )?;
            let mut q = st.query(params![conversation, input.now])?;
            while q.next()?.is_some() {
                rows += 1;
            }
        }
        let _prev: Option<String> = tx
            .prepare_cached(
                "SELECT id FROM sessions WHERE conversation_id = ?1 AND id != ?2 ORDER BY started_at DESC, rowid DESC LIMIT 1",
            )?
            .query_row([&conversation, &input.session_id.to_owned()], |r| r.get(0))
            .optional()?;
        {
            let mut st = tx.prepare_cached(
                "SELECT channel, speaker, text_ct, at FROM turns WHERE conversation_id = ?1 ORDER BY id DESC LIMIT 20",
            )?;
            let mut q = st.query([&conversation])?;
            while q.next()?.is_some() {
                rows += 1;
            }
        }
        tx.commit()?;
        Ok(rows)
    }

    /// The blind index the raw path looks up (computed outside the timing).
    pub fn bench_blind_index(&self, kind: &str, value: &str) -> [u8; 32] {
        self.keys.blind_index(kind, value).0
    }

    /// SQLCipher's page HMAC on this store's connection.
    pub fn page_hmac(&self) -> Result<super::PageHmac, StoreError> {
        super::open::page_hmac(&self.conn)
    }
}
