//! The session open as one PostgreSQL transaction, statement for statement
//! what Throughline's open does in its store (`store::bench_raw`): resolve
//! the phone by its keyed hash, find or create the patient and the open
//! conversation, insert the session, touch the conversation, two audit
//! records, then the context: name and date of birth, state, the previous
//! session and the last 20 turns, decrypted by pgcrypto. One round trip per
//! statement, as an application would send them; prepared once per
//! connection.

use crate::{Peer, PeerError};

/// How the two audit records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audit {
    /// Inserted as rows (what most teams would write).
    Plain,
    /// Hash-chained per tenant through a head row locked until the commit
    /// (what Throughline's audit guarantees).
    Chained,
}

/// What one open did: whether the patient was known, and the context rows read.
#[derive(Debug)]
pub struct Opened {
    pub found: bool,
    pub rows: usize,
}

const FIND: &str = "SELECT i.customer_id FROM identifiers i JOIN customers c ON c.id = i.customer_id
     WHERE i.tenant_id = $1 AND i.kind = 'phone' AND i.value_bi = hmac('phone:' || $2, $3, 'sha256')
       AND i.unlinked_at IS NULL AND c.erased_at IS NULL ORDER BY i.id LIMIT 1";
const CREATE_CUSTOMER: &str = "INSERT INTO customers (tenant_id, created_at) VALUES ($1, $2) RETURNING id";
const LINK: &str = "INSERT INTO identifiers (tenant_id, kind, value_bi, customer_id)
     VALUES ($1, 'phone', hmac('phone:' || $2, $3, 'sha256'), $4)";
const OPEN_CONVERSATION: &str =
    "SELECT id FROM conversations WHERE customer_id = $1 AND status = 'open' ORDER BY last_activity_at DESC LIMIT 1";
const CREATE_CONVERSATION: &str = "INSERT INTO conversations (tenant_id, customer_id, status, last_activity_at)
     VALUES ($1, $2, 'open', $3) RETURNING id";
const INSERT_SESSION: &str = "INSERT INTO sessions (tenant_id, conversation_id, customer_id, channel, cert_serial,
         identity_status, identity_strength, started_at)
     VALUES ($1, $2, $3, 'voice', 'bench', 'resolved', 'asserted', $4) RETURNING id::text";
const TOUCH: &str = "UPDATE conversations SET last_activity_at = $2 WHERE id = $1";
const AUDIT_PLAIN: &str = "INSERT INTO audit_plain (tenant_id, at, actor, action, customer_id, session_id, outcome)
     VALUES ($1, $2, 'bench', $3, $4, $5::text::uuid, 'ok')";
const AUDIT_CHAINED: &str = "WITH h AS (
       UPDATE audit_head SET seq = seq + 1,
           hash = digest(hash || convert_to($3::text || ':' || $4::bigint::text || ':' || $5::text || ':' || $2::bigint::text, 'UTF8'), 'sha256')
       WHERE tenant_id = $1 RETURNING seq, hash)
     INSERT INTO audit_chain (tenant_id, seq, at, actor, action, customer_id, session_id, outcome, hash)
     SELECT $1, h.seq, $2, 'bench', $3, $4, $5::text::uuid, 'ok', h.hash FROM h";
const DISPLAY: &str = "SELECT pgp_sym_decrypt(name_ct, $2), pgp_sym_decrypt(dob_ct, $2) FROM customers WHERE id = $1";
const STATE: &str = "SELECT key, pgp_sym_decrypt(value_ct, $3) FROM session_state
     WHERE conversation_id = $1 AND expires_at > $2 ORDER BY key";
const PREVIOUS: &str = "SELECT id::text FROM sessions WHERE conversation_id = $1 AND id <> $2::text::uuid ORDER BY started_at DESC LIMIT 1";
const TURNS: &str = "SELECT channel, speaker, pgp_sym_decrypt(text_ct, $2), at FROM turns
     WHERE conversation_id = $1 ORDER BY id DESC LIMIT 20";

impl Peer {
    /// One session open for `phone` at tenant `tenant`, committed.
    pub async fn open_session(&self, tenant: u32, phone: &str, now: i64, audit: Audit) -> Result<Opened, PeerError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (t, key) = (tenant as i32, Peer::tenant_key(tenant));
        let found: Option<i64> =
            tx.query_opt(&tx.prepare_cached(FIND).await?, &[&t, &phone, &key]).await?.map(|r| r.get(0));
        let customer = match found {
            Some(c) => c,
            None => {
                let c: i64 = tx.query_one(&tx.prepare_cached(CREATE_CUSTOMER).await?, &[&t, &now]).await?.get(0);
                tx.execute(&tx.prepare_cached(LINK).await?, &[&t, &phone, &key, &c]).await?;
                c
            }
        };
        let open: Option<i64> =
            tx.query_opt(&tx.prepare_cached(OPEN_CONVERSATION).await?, &[&customer]).await?.map(|r| r.get(0));
        let conversation: i64 = match open {
            Some(c) => c,
            None => tx.query_one(&tx.prepare_cached(CREATE_CONVERSATION).await?, &[&t, &customer, &now]).await?.get(0),
        };
        let session: String = tx
            .query_one(&tx.prepare_cached(INSERT_SESSION).await?, &[&t, &conversation, &customer, &now])
            .await?
            .get(0);
        tx.execute(&tx.prepare_cached(TOUCH).await?, &[&conversation, &now]).await?;
        let append = tx.prepare_cached(if audit == Audit::Plain { AUDIT_PLAIN } else { AUDIT_CHAINED }).await?;
        for action in ["session.open", "context.read"] {
            tx.execute(&append, &[&t, &now, &action, &customer, &session]).await?;
        }
        let mut rows = tx.query(&tx.prepare_cached(DISPLAY).await?, &[&customer, &key]).await?.len();
        rows += tx.query(&tx.prepare_cached(STATE).await?, &[&conversation, &now, &key]).await?.len();
        rows += tx.query(&tx.prepare_cached(PREVIOUS).await?, &[&conversation, &session]).await?.len();
        rows += tx.query(&tx.prepare_cached(TURNS).await?, &[&conversation, &key]).await?.len();
        tx.commit().await?;
        Ok(Opened { found: found.is_some(), rows })
    }
}
