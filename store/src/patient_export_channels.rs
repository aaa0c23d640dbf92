//! The channel parts of the right-of-access export: appointments (the
//! reason only with clinical access), callback requests (the number only
//! with contact access) and attachments (type, size, name and content,
//! base64, with attachments access). Sealed parts are opened with the
//! patient's key; a class the `Access` does not release is left out.

use policy::{Access, PhiClass};
use rusqlite::params;

use super::StoreError;
use super::tenant_channels::{attachment_aad, phone_aad, reason_aad};
use super::tenant_tx::TenantTx;
use crate::ids::CustomerId;

/// An appointment as the export shows it (times in ms since the epoch and
/// the clinic's offset then; the document formats them).
pub struct AppointmentExport {
    pub id: String,
    pub conversation_id: String,
    pub starts_at: i64,
    pub utc_offset_min: i32,
    pub duration_min: u32,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A callback request as the export shows it.
pub struct CallbackExport {
    pub id: String,
    pub conversation_id: String,
    pub phone: Option<String>,
    pub window_start: i64,
    pub window_end: i64,
    pub status: String,
    pub created_at: i64,
}

/// An attachment, opened, as the export shows it.
pub struct AttachmentExport {
    pub id: String,
    pub conversation_id: String,
    pub session_id: String,
    pub content_type: String,
    pub size: i64,
    pub filename: Option<String>,
    pub content: zeroize::Zeroizing<Vec<u8>>,
    pub created_at: i64,
}

fn open_text(tx: &TenantTx<'_>, customer: &CustomerId, aad: &[u8], ct: &[u8]) -> Result<String, StoreError> {
    let bytes = tx.data_key(customer)?.open(aad, ct).map_err(|_| StoreError::Decrypt { what: "export" })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Decrypt { what: "export" })
}

impl TenantTx<'_> {
    pub fn export_appointments(
        &self,
        customer: &CustomerId,
        access: &Access,
    ) -> Result<Vec<AppointmentExport>, StoreError> {
        if !access.allows(PhiClass::Scheduling) {
            return Ok(Vec::new());
        }
        type Row = (String, String, i64, i32, u32, String, Option<Vec<u8>>, i64, i64);
        let rows: Vec<Row> = {
            let mut stmt = self.tx.prepare(
                "SELECT id, conversation_id, starts_at, utc_offset_min, duration_min, status, reason_ct, created_at,
                        updated_at
                 FROM appointments WHERE customer_id = ?1 ORDER BY starts_at",
            )?;
            let rows = stmt.query_map([customer.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, conversation, starts_at, offset, duration, status, reason_ct, created_at, updated_at) in rows {
            let reason = match (&reason_ct, access.allows(PhiClass::Clinical)) {
                (Some(ct), true) => Some(open_text(self, customer, &reason_aad(&id), ct)?),
                _ => None,
            };
            out.push(AppointmentExport {
                id,
                conversation_id: conversation,
                starts_at,
                utc_offset_min: offset,
                duration_min: duration,
                status,
                reason,
                created_at,
                updated_at,
            });
        }
        Ok(out)
    }

    pub fn export_callbacks(&self, customer: &CustomerId, access: &Access) -> Result<Vec<CallbackExport>, StoreError> {
        if !access.allows(PhiClass::Scheduling) {
            return Ok(Vec::new());
        }
        type Row = (String, String, Vec<u8>, i64, i64, String, i64);
        let rows: Vec<Row> = {
            let mut stmt = self.tx.prepare(
                "SELECT id, conversation_id, phone_ct, window_start, window_end, status, created_at
                 FROM callback_requests WHERE customer_id = ?1 ORDER BY created_at",
            )?;
            let rows = stmt.query_map(params![customer.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, conversation, phone_ct, start, end, status, created_at) in rows {
            let phone = if access.allows(PhiClass::Contact) {
                Some(open_text(self, customer, &phone_aad(&id), &phone_ct)?)
            } else {
                None
            };
            out.push(CallbackExport {
                id,
                conversation_id: conversation,
                phone,
                window_start: start,
                window_end: end,
                status,
                created_at,
            });
        }
        Ok(out)
    }

    pub fn export_attachments(
        &self,
        customer: &CustomerId,
        access: &Access,
    ) -> Result<Vec<AttachmentExport>, StoreError> {
        if !access.allows(PhiClass::Attachments) {
            return Ok(Vec::new());
        }
        type Row = (String, String, String, String, i64, Option<Vec<u8>>, Vec<u8>, i64);
        let rows: Vec<Row> = {
            let mut stmt = self.tx.prepare(
                "SELECT id, conversation_id, session_id, content_type, size, filename_ct, content_ct, created_at
                 FROM attachments WHERE customer_id = ?1 ORDER BY created_at, id",
            )?;
            let rows = stmt.query_map([customer.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (id, conversation, session, content_type, size, name_ct, content_ct, created_at) in rows {
            let filename = match &name_ct {
                Some(ct) => Some(open_text(self, customer, &attachment_aad(&id, "name"), ct)?),
                None => None,
            };
            let content = self
                .data_key(customer)?
                .open(&attachment_aad(&id, "content"), &content_ct)
                .map_err(|_| StoreError::Decrypt { what: "attachment" })?;
            out.push(AttachmentExport {
                id,
                conversation_id: conversation,
                session_id: session,
                content_type,
                size,
                filename,
                content,
                created_at,
            });
        }
        Ok(out)
    }
}
