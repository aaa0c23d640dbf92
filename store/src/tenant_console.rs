//! What the staff console reads and writes in a tenant store. Every PHI
//! read takes the policy's `Access` (made from the staff member's role by
//! `policy::staff_access`), and the caller writes the audit record naming
//! the person in the same transaction (`TenantTx::audit_staff`).

use policy::{Access, PhiClass};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::audit_log::{self, AuditEntry, AuditTable, StaffFields};
use super::{StoreError, TenantTx};
use crate::ids::{ConversationId, CustomerId, SessionId};

/// A name as matched by the name index: lower case, single spaces.
pub fn normalise_name(name: &str) -> String {
    name.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

/// One turn of a patient's timeline.
pub struct ConsoleTurn {
    pub session_id: String,
    pub channel: String,
    pub speaker: String,
    pub at: i64,
    /// `None` when the caller did not ask for this channel's text.
    pub text: Option<Zeroizing<String>>,
}

/// Something in the email review queue.
pub struct QueueItem {
    pub session_id: String,
    pub customer_id: Option<String>,
    pub since: i64,
    /// `waiting` (the patient wrote last) or the reason a message is held.
    pub why: String,
    /// The held message's id, for a held one.
    pub held_id: Option<i64>,
}

fn require(access: &Access, class: PhiClass) -> Result<(), StoreError> {
    if access.allows(class) { Ok(()) } else { Err(StoreError::PolicyDenied { class }) }
}

impl TenantTx<'_> {
    /// Appends a staff member's audit record (v2 fields) in this transaction.
    pub fn audit_staff(
        &self,
        entry: &AuditEntry<'_>,
        staff: &StaffFields<'_>,
        now: i64,
    ) -> Result<audit::Record, StoreError> {
        audit_log::append_with(&self.tx, AuditTable::Tenant, entry, staff, now)
    }

    /// The HMAC a search is audited under: the terms never are.
    pub fn search_hmac(&self, kind: &str, normalised: &str) -> String {
        hex::encode(self.keys.blind_index("console-search", &format!("{kind}\0{normalised}")).0)
    }

    /// Gives patients named before the name index existed their index entry
    /// (once: afterwards every name is indexed as it is written).
    pub fn backfill_name_index(&self) -> Result<u64, StoreError> {
        let ids: Vec<String> = self
            .tx
            .prepare("SELECT id FROM customers WHERE name_ct IS NOT NULL AND name_bi IS NULL AND erased_at IS NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut n = 0;
        for id in ids.iter().filter_map(|s| CustomerId::parse(s)) {
            let fields = self.stored_fields(&id)?;
            let bi = self.keys.blind_index("name", &normalise_name(&fields.name));
            self.tx
                .execute("UPDATE customers SET name_bi = ?2 WHERE id = ?1", params![id.as_str(), bi.0.as_slice()])?;
            n += 1;
        }
        Ok(n)
    }

    pub fn customers_by_name(&self, name: &str) -> Result<Vec<CustomerId>, StoreError> {
        let bi = self.keys.blind_index("name", &normalise_name(name));
        let mut stmt = self.tx.prepare_cached(
            "SELECT id FROM customers WHERE name_bi = ?1 AND erased_at IS NULL ORDER BY created_at LIMIT 50",
        )?;
        let rows = stmt.query_map([bi.0.as_slice()], |r| r.get::<_, String>(0))?;
        Ok(rows.filter_map(|r| r.ok().and_then(|s| CustomerId::parse(&s))).collect())
    }

    /// Whether the patient exists and is not erased.
    pub fn customer_live(&self, customer: &CustomerId) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM customers WHERE id = ?1 AND erased_at IS NULL")?
            .exists([customer.as_str()])?)
    }

    /// Name and date of birth for a staff page: the name needs identity or
    /// greeting, the date of birth identity.
    pub fn staff_identity(
        &self,
        customer: &CustomerId,
        access: &Access,
    ) -> Result<(Zeroizing<String>, Option<Zeroizing<String>>), StoreError> {
        require(access, PhiClass::Greeting)?;
        let f = self.stored_fields(customer)?;
        let dob = access.allows(PhiClass::Identity).then_some(f.dob);
        Ok((f.name, dob))
    }

    /// The patient's phone numbers and email addresses on file (contact class).
    pub fn contacts(&self, customer: &CustomerId, access: &Access) -> Result<Vec<Zeroizing<String>>, StoreError> {
        require(access, PhiClass::Contact)?;
        let key = self.data_key(customer)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, kind, value_ct FROM identifiers WHERE customer_id = ?1 AND unlinked_at IS NULL
             AND kind IN ('phone', 'email') ORDER BY id",
        )?;
        let rows = stmt.query_map([customer.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (_, kind, ct) = row?;
            let Some(kind) = super::IdentifierKind::parse(&kind) else { continue };
            let aad = super::tenant::identifier_aad(customer, kind);
            if let Ok(v) = key.open(&aad, &ct) {
                out.push(Zeroizing::new(String::from_utf8_lossy(&v).into_owned()));
            }
        }
        Ok(out)
    }

    /// The newest `limit` turns of every conversation of the patient, oldest
    /// first; text only for the channels `text_for` names (conversation class).
    pub fn timeline(
        &self,
        customer: &CustomerId,
        limit: u32,
        access: &Access,
        text_for: impl Fn(&str) -> bool,
    ) -> Result<Vec<ConsoleTurn>, StoreError> {
        let key = self.data_key(customer)?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT t.session_id, t.conversation_id, t.channel, t.speaker, t.text_ct, t.at FROM turns t
             JOIN conversations v ON v.id = t.conversation_id
             WHERE v.customer_id = ?1 ORDER BY t.at DESC, t.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![customer.as_str(), limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (session_id, conversation, channel, speaker, ct, at) = row?;
            let text = if text_for(&channel) && access.allows(PhiClass::Conversation) {
                let conversation = ConversationId::parse(&conversation).ok_or(StoreError::Decrypt { what: "turn" })?;
                let aad = super::tenant_content::turn_aad(&conversation, at);
                let bytes = key.open(&aad, &ct).map_err(|_| StoreError::Decrypt { what: "turn" })?;
                Some(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
            } else {
                None
            };
            out.push(ConsoleTurn { session_id, channel, speaker, at, text });
        }
        out.reverse();
        Ok(out)
    }

    /// Email waiting for a human: open email sessions whose last turn is the
    /// patient's, and held messages not yet reviewed; oldest first.
    pub fn email_queue(&self, limit: u32) -> Result<Vec<QueueItem>, StoreError> {
        let mut out = Vec::new();
        let mut stmt = self.tx.prepare_cached(
            "SELECT s.id, s.customer_id, t.at FROM sessions s
             JOIN turns t ON t.id = (SELECT max(id) FROM turns WHERE session_id = s.id)
             JOIN conversations v ON v.id = s.conversation_id
             WHERE s.channel = 'email' AND t.speaker = 'patient' AND v.status = 'open'
             ORDER BY t.at LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (session_id, customer_id, since) = row?;
            out.push(QueueItem { session_id, customer_id, since, why: "waiting".into(), held_id: None });
        }
        let mut stmt = self.tx.prepare_cached(
            "SELECT h.session_id, s.customer_id, h.received_at, h.reason, h.id FROM held_messages h
             JOIN sessions s ON s.id = h.session_id
             WHERE h.reviewed_at IS NULL ORDER BY h.received_at LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        for row in rows {
            let (session_id, customer_id, since, why, id) = row?;
            out.push(QueueItem { session_id, customer_id, since, why, held_id: Some(id) });
        }
        out.sort_by_key(|q| q.since);
        Ok(out)
    }

    /// An email session's patient and conversation, when it has both.
    pub fn email_session(&self, session: &SessionId) -> Result<Option<(CustomerId, ConversationId)>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = self
            .tx
            .prepare_cached("SELECT customer_id, conversation_id FROM sessions WHERE id = ?1 AND channel = 'email'")?
            .query_row([session.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row.and_then(|(c, v)| Some((CustomerId::parse(&c?)?, ConversationId::parse(&v?)?))))
    }

    /// Names a turn's author (`stf_…`): a staff reply is an agent turn attributed to that person.
    pub fn set_turn_author(&self, turn: i64, staff: &str) -> Result<(), StoreError> {
        self.tx.execute("UPDATE turns SET author = ?2 WHERE id = ?1", params![turn, staff])?;
        Ok(())
    }
}
