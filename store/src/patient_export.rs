//! Reads for the right-of-access export (GDPR Art. 15/20): everything held
//! about one patient, each PHI part released only if the `Access` allows it.

use std::collections::BTreeMap;

use policy::{Access, PhiClass};
use rusqlite::params;
use serde::Serialize;

use super::StoreError;
use super::tenant::IdentifierKind;
use super::tenant_tx::TenantTx;
use crate::ids::{ConversationId, CustomerId};

#[derive(Serialize)]
pub struct IdentifierExport {
    pub kind: String,
    pub value: String,
    pub provenance: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub unlinked_at: Option<i64>,
}

#[derive(Serialize)]
pub struct SessionExport {
    pub id: String,
    pub channel: String,
    pub identity_status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}

#[derive(Serialize)]
pub struct TurnExport {
    pub session_id: String,
    pub channel: String,
    pub speaker: String,
    pub text: String,
    pub at: i64,
}

#[derive(Serialize)]
pub struct StateExport {
    pub value: String,
    pub expires_at: i64,
}

#[derive(Serialize)]
pub struct ConversationExport {
    pub id: String,
    pub status: String,
    pub opened_at: i64,
    pub last_activity_at: i64,
    pub closed_at: Option<i64>,
    pub sessions: Vec<SessionExport>,
    pub turns: Vec<TurnExport>,
    pub state: BTreeMap<String, StateExport>,
}

impl TenantTx<'_> {
    /// The patient's identifiers, decrypted (contact class).
    pub fn export_identifiers(
        &self,
        customer: &CustomerId,
        access: &Access,
    ) -> Result<Vec<IdentifierExport>, StoreError> {
        if !access.allows(PhiClass::Contact) {
            return Err(StoreError::PolicyDenied { class: PhiClass::Contact });
        }
        let key = self.data_key(customer)?;
        let mut stmt = self.tx.prepare(
            "SELECT kind, value_ct, provenance, created_at, last_seen, unlinked_at FROM identifiers
             WHERE customer_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([customer.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, ct, provenance, created_at, last_seen, unlinked_at) = row?;
            let k = IdentifierKind::parse(&kind).ok_or(StoreError::Decrypt { what: "identifier" })?;
            let bytes = key
                .open(&super::tenant::identifier_aad(customer, k), &ct)
                .map_err(|_| StoreError::Decrypt { what: "identifier" })?;
            let value = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "identifier" })?;
            out.push(IdentifierExport { kind, value, provenance, created_at, last_seen, unlinked_at });
        }
        Ok(out)
    }

    /// Every conversation of the patient with its sessions, and (conversation
    /// class) its turns and unexpired state.
    pub fn export_conversations(
        &self,
        customer: &CustomerId,
        access: &Access,
        now: i64,
    ) -> Result<Vec<ConversationExport>, StoreError> {
        let mut out = Vec::new();
        let conversations: Vec<(String, String, i64, i64, Option<i64>)> = {
            let mut stmt = self.tx.prepare(
                "SELECT id, status, opened_at, last_activity_at, closed_at FROM conversations WHERE customer_id = ?1 ORDER BY opened_at",
            )?;
            let rows =
                stmt.query_map([customer.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, status, opened_at, last_activity_at, closed_at) in conversations {
            let conversation = ConversationId::parse(&id).ok_or(StoreError::Decrypt { what: "conversation id" })?;
            let sessions = {
                let mut stmt = self.tx.prepare(
                    "SELECT id, channel, identity_status, started_at, ended_at, end_reason FROM sessions
                     WHERE conversation_id = ?1 ORDER BY started_at, rowid",
                )?;
                let rows = stmt.query_map([&id], |r| {
                    Ok(SessionExport {
                        id: r.get(0)?,
                        channel: r.get(1)?,
                        identity_status: r.get(2)?,
                        started_at: r.get(3)?,
                        ended_at: r.get(4)?,
                        end_reason: r.get(5)?,
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let (mut turns, mut state) = (Vec::new(), BTreeMap::new());
            if access.allows(PhiClass::Conversation) {
                let sids: BTreeMap<i64, String> = {
                    let mut stmt = self.tx.prepare("SELECT id, session_id FROM turns WHERE conversation_id = ?1")?;
                    let rows = stmt.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<Result<_, _>>()?
                };
                let all = self.recent_turns(customer, &conversation, u32::MAX, access)?;
                let mut ids: Vec<i64> = sids.keys().copied().collect();
                ids.sort_unstable();
                for (t, turn_id) in all.into_iter().zip(ids) {
                    turns.push(TurnExport {
                        session_id: sids.get(&turn_id).cloned().unwrap_or_default(),
                        channel: t.channel,
                        speaker: t.speaker,
                        text: t.text.to_string(),
                        at: t.at,
                    });
                }
                let expiries: BTreeMap<String, i64> = {
                    let mut stmt = self.tx.prepare(
                        "SELECT key, expires_at FROM session_state WHERE conversation_id = ?1 AND expires_at > ?2",
                    )?;
                    let rows = stmt.query_map(params![id, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<Result<_, _>>()?
                };
                for (k, v) in self.state(customer, &conversation, now, access)? {
                    let expires_at = expiries.get(&k).copied().unwrap_or_default();
                    state.insert(k, StateExport { value: v.to_string(), expires_at });
                }
            }
            out.push(ConversationExport { id, status, opened_at, last_activity_at, closed_at, sessions, turns, state });
        }
        Ok(out)
    }
}
