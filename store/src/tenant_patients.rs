//! A tenant's patients in SQL: their records (sealed under each patient's
//! key), the identifiers linked to them as blind indexes, identifiers
//! pending confirmation, conflicts between identifiers, resume tokens.

use crypto::DataKey;
use policy::{Access, Answer, ConfirmField, PhiClass};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::StoreError;
use super::tenant::{CustomerDisplay, IdentifierKind};
use super::tenant_tx::TenantTx;
use crate::ids::{ConversationId, CustomerId, SessionId};

impl TenantTx<'_> {
    /// Every live patient this identifier is linked to, verified or not.
    pub fn customers_by_identifier(&self, kind: IdentifierKind, value: &str) -> Result<Vec<CustomerId>, StoreError> {
        Ok(self.identifier_links(kind, value)?.into_iter().map(|(c, _)| c).collect())
    }

    /// Every live patient this identifier is linked to, and whether the
    /// link is verified (made on evidence or possession, not on a claim).
    pub fn identifier_links(&self, kind: IdentifierKind, value: &str) -> Result<Vec<(CustomerId, bool)>, StoreError> {
        let bi = self.keys.blind_index(kind.as_str(), value);
        let mut stmt = self.tx.prepare_cached(
            "SELECT i.customer_id, i.verified FROM identifiers i JOIN customers c ON c.id = i.customer_id
             WHERE i.kind = ?1 AND i.value_bi = ?2 AND i.unlinked_at IS NULL AND c.erased_at IS NULL
             ORDER BY i.id",
        )?;
        let ids = stmt.query_map(params![kind.as_str(), bi.0.as_slice()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })?;
        Ok(ids.filter_map(|r| r.ok().and_then(|(s, v)| CustomerId::parse(&s).map(|c| (c, v)))).collect())
    }

    /// A new patient with their own data key and no display fields yet.
    pub fn create_customer(&self, now: i64) -> Result<CustomerId, StoreError> {
        let id = CustomerId::generate();
        let (_, wrapped) = self.keys.new_data_key(id.as_str())?;
        self.tx.execute(
            "INSERT INTO customers (id, wrapped_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![id.as_str(), wrapped, now],
        )?;
        Ok(id)
    }

    pub fn data_key(&self, customer: &CustomerId) -> Result<DataKey, StoreError> {
        let wrapped: Option<Option<Vec<u8>>> = self
            .tx
            .prepare_cached("SELECT wrapped_key FROM customers WHERE id = ?1")?
            .query_row([customer.as_str()], |r| r.get(0))
            .optional()?;
        let wrapped = wrapped.flatten().ok_or(StoreError::Decrypt { what: "patient key" })?;
        Ok(self.keys.open_data_key(customer.as_str(), &wrapped)?)
    }

    /// Sets name and/or date of birth, sealed under the patient's key.
    pub fn set_customer_fields(
        &self,
        customer: &CustomerId,
        name: Option<&str>,
        dob: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let key = self.data_key(customer)?;
        if let Some(name) = name {
            let ct = key.seal(&super::tenant::field_aad(customer, "name"), name.as_bytes())?;
            let bi = self.keys.blind_index("name", &super::tenant_console::normalise_name(name));
            self.tx.execute(
                "UPDATE customers SET name_ct = ?2, name_bi = ?3, updated_at = ?4 WHERE id = ?1",
                params![customer.as_str(), ct, bi.0.as_slice(), now],
            )?;
        }
        if let Some(dob) = dob {
            let ct = key.seal(&super::tenant::field_aad(customer, "dob"), dob.as_bytes())?;
            self.tx.execute(
                "UPDATE customers SET dob_ct = ?2, updated_at = ?3 WHERE id = ?1",
                params![customer.as_str(), ct, now],
            )?;
        }
        Ok(())
    }

    /// Name and date of birth as far as known. PHI: needs the policy's
    /// `Access` for this channel and identity state, and returns only what it
    /// allows (the name for a greeting or identity, the date of birth for identity).
    pub fn customer_fields(&self, customer: &CustomerId, access: &Access) -> Result<CustomerDisplay, StoreError> {
        let name_ok = access.allows(PhiClass::Greeting) || access.allows(PhiClass::Identity);
        let dob_ok = access.allows(PhiClass::Identity);
        if !name_ok {
            return Err(StoreError::PolicyDenied { class: PhiClass::Identity });
        }
        let fields = self.stored_fields(customer)?;
        Ok(CustomerDisplay { name: fields.name, dob: if dob_ok { fields.dob } else { Zeroizing::new(String::new()) } })
    }

    /// Whether the answers match the patient's recorded fields. The stored
    /// values never leave the store: confirmation needs no `Access`.
    pub fn answers_match(&self, customer: &CustomerId, answers: &[(ConfirmField, Answer)]) -> Result<bool, StoreError> {
        let stored = self.stored_fields(customer)?;
        Ok(answers.iter().all(|(field, given)| {
            let value = match field {
                ConfirmField::DateOfBirth => stored.dob.as_str(),
                ConfirmField::Name => stored.name.as_str(),
            };
            Answer::parse(*field, value).is_ok_and(|expected| expected.matches(given))
        }))
    }

    pub(super) fn stored_fields(&self, customer: &CustomerId) -> Result<CustomerDisplay, StoreError> {
        let (name_ct, dob_ct): (Option<Vec<u8>>, Option<Vec<u8>>) = self
            .tx
            .prepare_cached("SELECT name_ct, dob_ct FROM customers WHERE id = ?1")?
            .query_row([customer.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let key = self.data_key(customer)?;
        let open = |field: &'static str, ct: Option<Vec<u8>>| -> Result<Zeroizing<String>, StoreError> {
            match ct {
                None => Ok(Zeroizing::new(String::new())),
                Some(ct) => super::tenant::open_text(&key, customer, field, &ct),
            }
        };
        Ok(CustomerDisplay { name: open("name", name_ct)?, dob: open("dob", dob_ct)? })
    }

    /// Links an identifier to a patient; `verified` when evidence or
    /// possession backs it (a claim's link is unverified, and an asserted
    /// identifier never resolves through it). A link is upgraded, never
    /// downgraded.
    pub fn link_identifier(
        &self,
        kind: IdentifierKind,
        value: &str,
        customer: &CustomerId,
        provenance: &str,
        verified: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let bi = self.keys.blind_index(kind.as_str(), value);
        let key = self.data_key(customer)?;
        let ct = key.seal(&super::tenant::identifier_aad(customer, kind), value.as_bytes())?;
        self.tx
            .prepare_cached(
                "INSERT INTO identifiers (kind, value_bi, value_ct, customer_id, verified, provenance, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?7, ?5, ?6, ?6)
                 ON CONFLICT (kind, value_bi, customer_id) WHERE unlinked_at IS NULL
                 DO UPDATE SET last_seen = ?6, verified = MAX(verified, ?7)",
            )?
            .execute(params![kind.as_str(), bi.0.as_slice(), ct, customer.as_str(), provenance, now, verified])?;
        Ok(())
    }

    /// A claim-only session's intake made a patient of its own: the
    /// session now belongs to that new record, not to any candidate.
    pub fn attach_new_customer(
        &self,
        session: &SessionId,
        customer: &CustomerId,
        conversation: &ConversationId,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE sessions SET customer_id = ?2, conversation_id = ?3, identity_status = 'new', created_customer = 1,
                 shared_identifier = 0 WHERE id = ?1",
            params![session.as_str(), customer.as_str(), conversation.as_str()],
        )?;
        self.tx.execute("DELETE FROM session_candidates WHERE session_id = ?1", [session.as_str()])?;
        Ok(())
    }

    pub fn add_pending_identifier(
        &self,
        session: &SessionId,
        kind: IdentifierKind,
        value: &str,
    ) -> Result<(), StoreError> {
        let bi = self.keys.blind_index(kind.as_str(), value);
        let sealed = self.keys.seal_pending(&pending_aad(session, kind), value.as_bytes())?;
        self.tx.execute(
            "INSERT OR IGNORE INTO session_pending_identifiers (session_id, kind, value_bi, value_sealed) VALUES (?1, ?2, ?3, ?4)",
            params![session.as_str(), kind.as_str(), bi.0.as_slice(), sealed],
        )?;
        Ok(())
    }

    /// Removes and returns the session's pending identifiers.
    pub fn take_pending_identifiers(
        &self,
        session: &SessionId,
    ) -> Result<Vec<(IdentifierKind, Zeroizing<String>)>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT kind, value_sealed FROM session_pending_identifiers WHERE session_id = ?1")?;
            let rows = stmt.query_map([session.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        self.tx.execute("DELETE FROM session_pending_identifiers WHERE session_id = ?1", [session.as_str()])?;
        let mut out = Vec::with_capacity(rows.len());
        for (kind, sealed) in rows {
            let Some(kind) = IdentifierKind::parse(&kind) else { continue };
            let bytes = self.keys.open_pending(&pending_aad(session, kind), &sealed)?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "identifier" })?;
            out.push((kind, Zeroizing::new(text)));
        }
        Ok(out)
    }

    pub fn record_conflict(
        &self,
        session: &SessionId,
        winner: (IdentifierKind, &CustomerId),
        loser: (IdentifierKind, &CustomerId),
        now: i64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO identifier_conflicts (session_id, winning_kind, winning_customer, losing_kind, losing_customer, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![session.as_str(), winner.0.as_str(), winner.1.as_str(), loser.0.as_str(), loser.1.as_str(), now],
        )?;
        Ok(())
    }

    pub fn insert_resume_token(
        &self,
        id: &str,
        customer: &CustomerId,
        conversation: &ConversationId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO resume_tokens (id, customer_id, conversation_id, issued_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, customer.as_str(), conversation.as_str(), now, expires_at],
        )?;
        Ok(())
    }

    /// The patient (and conversation, if still open) of an unrevoked,
    /// unexpired resume token whose patient is not erased.
    pub fn resume_token_target(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<(CustomerId, Option<ConversationId>)>, StoreError> {
        let row: Option<(String, String, String)> = self
            .tx
            .prepare_cached(
                "SELECT t.customer_id, t.conversation_id, v.status FROM resume_tokens t
                 JOIN customers c ON c.id = t.customer_id JOIN conversations v ON v.id = t.conversation_id
                 WHERE t.id = ?1 AND t.revoked_at IS NULL AND t.expires_at > ?2 AND c.erased_at IS NULL",
            )?
            .query_row(params![id, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.and_then(|(c, v, status)| {
            let conversation = (status == "open").then(|| ConversationId::parse(&v)).flatten();
            CustomerId::parse(&c).map(|c| (c, conversation))
        }))
    }
}

pub(super) fn pending_aad(session: &SessionId, kind: IdentifierKind) -> Vec<u8> {
    format!("pending/{session}/{}", kind.as_str()).into_bytes()
}
