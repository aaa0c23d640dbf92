//! What the channels add to a conversation: appointments, callback requests,
//! the Message-IDs of its email thread and email attachments. Times and
//! statuses are plain (they drive queries); reasons, phone numbers, file
//! names and contents are sealed under the patient's data key; Message-IDs
//! reach SQL only as blind indexes.

use policy::{Access, PhiClass};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::StoreError;
use super::tenant::IdentifierKind;
use super::tenant_tx::TenantTx;
use crate::ids::{ConversationId, CustomerId, SessionId};

/// An appointment as stored (no PHI beyond its time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentRow {
    pub id: String,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    pub starts_at: i64,
    pub utc_offset_min: i32,
    pub duration_min: u32,
    pub status: String,
    pub has_reason: bool,
}

/// A callback handed to the voice agent that claimed it.
pub struct ClaimedCallback {
    pub id: String,
    pub customer_id: CustomerId,
    pub conversation_id: ConversationId,
    pub phone: Zeroizing<String>,
    pub window_start: i64,
    pub window_end: i64,
    pub claim_expires_at: i64,
}

impl std::fmt::Debug for ClaimedCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClaimedCallback({}, phone [REDACTED])", self.id)
    }
}

/// A new callback request.
pub struct NewCallback<'a> {
    pub id: &'a str,
    pub customer: &'a CustomerId,
    pub conversation: &'a ConversationId,
    pub session: &'a SessionId,
    pub phone: &'a str,
    pub window_start: i64,
    pub window_end: i64,
}

/// A new appointment (the reason, if any, is sealed).
pub struct NewAppointment<'a> {
    pub id: &'a str,
    pub customer: &'a CustomerId,
    pub conversation: &'a ConversationId,
    pub session: &'a SessionId,
    pub starts_at: i64,
    pub utc_offset_min: i32,
    pub duration_min: u32,
    pub reason: Option<&'a str>,
}

pub(super) fn reason_aad(id: &str) -> Vec<u8> {
    format!("appointments/{id}/reason").into_bytes()
}

pub(super) fn phone_aad(id: &str) -> Vec<u8> {
    format!("callbacks/{id}/phone").into_bytes()
}

pub(super) fn attachment_aad(id: &str, part: &str) -> Vec<u8> {
    format!("attachments/{id}/{part}").into_bytes()
}

const APPOINTMENT_COLUMNS: &str =
    "id, conversation_id, customer_id, starts_at, utc_offset_min, duration_min, status, reason_ct IS NOT NULL";

/// A row as read, ids not yet shape-checked.
type RawAppointment = (String, String, String, i64, i32, u32, String, bool);

fn appointment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawAppointment> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn finish(raw: RawAppointment) -> Result<AppointmentRow, StoreError> {
    let (id, conversation, customer, starts_at, utc_offset_min, duration_min, status, has_reason) = raw;
    let bad = || StoreError::Decrypt { what: "appointment" };
    Ok(AppointmentRow {
        id,
        conversation_id: ConversationId::parse(&conversation).ok_or_else(bad)?,
        customer_id: CustomerId::parse(&customer).ok_or_else(bad)?,
        starts_at,
        utc_offset_min,
        duration_min,
        status,
        has_reason,
    })
}

impl TenantTx<'_> {
    pub fn insert_appointment(&self, a: &NewAppointment<'_>, now: i64) -> Result<(), StoreError> {
        let reason = match a.reason {
            Some(r) => Some(self.data_key(a.customer)?.seal(&reason_aad(a.id), r.as_bytes())?),
            None => None,
        };
        self.tx.execute(
            "INSERT INTO appointments (id, conversation_id, customer_id, session_id, starts_at, utc_offset_min,
                duration_min, reason_ct, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'booked', ?9, ?9)",
            params![
                a.id,
                a.conversation.as_str(),
                a.customer.as_str(),
                a.session.as_str(),
                a.starts_at,
                a.utc_offset_min,
                a.duration_min,
                reason,
                now
            ],
        )?;
        Ok(())
    }

    pub fn appointment(&self, id: &str) -> Result<Option<AppointmentRow>, StoreError> {
        let raw = self
            .tx
            .prepare_cached(&format!("SELECT {APPOINTMENT_COLUMNS} FROM appointments WHERE id = ?1"))?
            .query_row([id], appointment_row)
            .optional()?;
        raw.map(finish).transpose()
    }

    /// Booked appointments of a patient from `since` on, soonest first.
    /// Scheduling data: needs the policy's `Access`.
    pub fn upcoming_appointments(
        &self,
        customer: &CustomerId,
        since: i64,
        access: &Access,
    ) -> Result<Vec<AppointmentRow>, StoreError> {
        if !access.allows(PhiClass::Scheduling) {
            return Err(StoreError::PolicyDenied { class: PhiClass::Scheduling });
        }
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {APPOINTMENT_COLUMNS} FROM appointments
             WHERE customer_id = ?1 AND status = 'booked' AND starts_at >= ?2 ORDER BY starts_at LIMIT 20"
        ))?;
        let rows = stmt.query_map(params![customer.as_str(), since], appointment_row)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// The reason for a visit: clinical data, needs the policy's `Access`.
    pub fn appointment_reason(
        &self,
        row: &AppointmentRow,
        access: &Access,
    ) -> Result<Option<Zeroizing<String>>, StoreError> {
        if !access.allows(PhiClass::Clinical) {
            return Err(StoreError::PolicyDenied { class: PhiClass::Clinical });
        }
        let ct: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT reason_ct FROM appointments WHERE id = ?1")?
            .query_row([row.id.as_str()], |r| r.get(0))
            .optional()?
            .flatten();
        let Some(ct) = ct else { return Ok(None) };
        let bytes = self
            .data_key(&row.customer_id)?
            .open(&reason_aad(&row.id), &ct)
            .map_err(|_| StoreError::Decrypt { what: "appointment reason" })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "appointment reason" })?;
        Ok(Some(Zeroizing::new(text)))
    }

    pub fn update_appointment(&self, row: &AppointmentRow, now: i64) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE appointments SET starts_at = ?2, utc_offset_min = ?3, duration_min = ?4, status = ?5, updated_at = ?6
             WHERE id = ?1",
            params![row.id, row.starts_at, row.utc_offset_min, row.duration_min, row.status, now],
        )?;
        Ok(())
    }

    pub fn insert_callback(&self, c: &NewCallback<'_>, now: i64) -> Result<(), StoreError> {
        let phone = self.data_key(c.customer)?.seal(&phone_aad(c.id), c.phone.as_bytes())?;
        self.tx.execute(
            "INSERT INTO callback_requests (id, conversation_id, customer_id, session_id, phone_ct, window_start,
                window_end, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
            params![
                c.id,
                c.conversation.as_str(),
                c.customer.as_str(),
                c.session.as_str(),
                phone,
                c.window_start,
                c.window_end,
                now
            ],
        )?;
        Ok(())
    }

    /// Claims the oldest due callback for `session`: pending and inside its
    /// window, or claimed by someone whose claim ran out. Callbacks whose
    /// window passed unclaimed become `expired`. One transaction on one
    /// writer, so two agents never get the same one.
    pub fn claim_callback(
        &self,
        session: &SessionId,
        now: i64,
        claim_ms: i64,
    ) -> Result<Option<ClaimedCallback>, StoreError> {
        self.tx.execute(
            "UPDATE callback_requests SET status = 'expired', claimed_by = NULL, claim_expires_at = NULL
             WHERE status IN ('pending', 'claimed') AND window_end <= ?1 AND (claim_expires_at IS NULL OR claim_expires_at <= ?1)",
            [now],
        )?;
        let found: Option<(String, String, String, Vec<u8>, i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT id, customer_id, conversation_id, phone_ct, window_start, window_end FROM callback_requests
                 WHERE window_start <= ?1 AND window_end > ?1
                   AND (status = 'pending' OR (status = 'claimed' AND claim_expires_at <= ?1))
                 ORDER BY window_start, created_at LIMIT 1",
            )?
            .query_row([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .optional()?;
        let Some((id, customer, conversation, phone_ct, window_start, window_end)) = found else { return Ok(None) };
        let customer_id = CustomerId::parse(&customer).ok_or(StoreError::Decrypt { what: "callback" })?;
        let conversation_id = ConversationId::parse(&conversation).ok_or(StoreError::Decrypt { what: "callback" })?;
        let phone = self
            .data_key(&customer_id)?
            .open(&phone_aad(&id), &phone_ct)
            .map_err(|_| StoreError::Decrypt { what: "callback phone" })?;
        let phone = String::from_utf8(phone.to_vec()).map_err(|_| StoreError::Decrypt { what: "callback phone" })?;
        let claim_expires_at = now.saturating_add(claim_ms);
        self.tx.execute(
            "UPDATE callback_requests SET status = 'claimed', claimed_by = ?2, claim_expires_at = ?3 WHERE id = ?1",
            params![id, session.as_str(), claim_expires_at],
        )?;
        Ok(Some(ClaimedCallback {
            id,
            customer_id,
            conversation_id,
            phone: Zeroizing::new(phone),
            window_start,
            window_end,
            claim_expires_at,
        }))
    }

    /// When the session that claimed a callback ends: a completed call
    /// settles it; a dropped or transferred one puts it back in the queue.
    pub fn settle_callback(&self, session: &SessionId, completed: bool) -> Result<Option<String>, StoreError> {
        let id: Option<String> = self
            .tx
            .prepare_cached("SELECT id FROM callback_requests WHERE claimed_by = ?1 AND status = 'claimed'")?
            .query_row([session.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(id) = &id {
            let sql = if completed {
                "UPDATE callback_requests SET status = 'done', claim_expires_at = NULL WHERE id = ?1"
            } else {
                "UPDATE callback_requests SET status = 'pending', claimed_by = NULL, claim_expires_at = NULL WHERE id = ?1"
            };
            self.tx.execute(sql, [id])?;
        }
        Ok(id)
    }

    /// Records a Message-ID (without angle brackets) of this conversation's
    /// email thread. Returns false if it was already recorded that way.
    pub fn record_message_id(
        &self,
        conversation: &ConversationId,
        session: &SessionId,
        message_id: &str,
        direction: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let bi = self.keys.blind_index("message_id", message_id);
        let n = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO email_threads (conversation_id, session_id, message_id_bi, direction, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![conversation.as_str(), session.as_str(), bi.0.as_slice(), direction, now])?;
        Ok(n == 1)
    }

    /// The conversation (and its patient) a Message-ID of ours or theirs
    /// belongs to, newest record first.
    pub fn thread_of(&self, message_id: &str) -> Result<Option<(ConversationId, CustomerId)>, StoreError> {
        let bi = self.keys.blind_index("message_id", message_id);
        let found: Option<(String, String)> = self
            .tx
            .prepare_cached(
                "SELECT t.conversation_id, c.customer_id FROM email_threads t
                 JOIN conversations c ON c.id = t.conversation_id
                 WHERE t.message_id_bi = ?1 ORDER BY t.id DESC LIMIT 1",
            )?
            .query_row([bi.0.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(found.and_then(|(v, c)| Some((ConversationId::parse(&v)?, CustomerId::parse(&c)?))))
    }

    /// Whether a conversation is still open.
    pub fn conversation_is_open(&self, conversation: &ConversationId) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1 AND status = 'open'")?
            .exists([conversation.as_str()])?)
    }

    /// Stores an attachment sealed under the patient's key; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_attachment(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
        session: &SessionId,
        content_type: &str,
        filename: Option<&str>,
        content: &[u8],
        now: i64,
    ) -> Result<String, StoreError> {
        let id = format!("att_{}", uuid::Uuid::new_v4().simple());
        let key = self.data_key(customer)?;
        let name = filename.map(|n| key.seal(&attachment_aad(&id, "name"), n.as_bytes())).transpose()?;
        let body = key.seal(&attachment_aad(&id, "content"), content)?;
        self.tx.execute(
            "INSERT INTO attachments (id, conversation_id, session_id, customer_id, content_type, size, filename_ct,
                content_ct, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                conversation.as_str(),
                session.as_str(),
                customer.as_str(),
                content_type,
                content.len() as i64,
                name,
                body,
                now
            ],
        )?;
        Ok(id)
    }

    /// An identifier's value, unsealed with its patient's key.
    pub(super) fn open_identifier(
        &self,
        customer: &CustomerId,
        kind: IdentifierKind,
        ct: &[u8],
    ) -> Result<Zeroizing<String>, StoreError> {
        let bytes = self
            .data_key(customer)?
            .open(&super::tenant::identifier_aad(customer, kind), ct)
            .map_err(|_| StoreError::Decrypt { what: "identifier" })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "identifier" })?;
        Ok(Zeroizing::new(text))
    }
}
