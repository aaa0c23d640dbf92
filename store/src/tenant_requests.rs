//! Patients' requests (access, erasure) and their deadlines, in the tenant
//! store: entered, approved by a second person (erasure), done with the
//! export or the receipt.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::{StoreError, TenantTx};

/// The deadline: one calendar month from receipt (GDPR Art. 12(3)).
pub fn rights_due(received: i64) -> i64 {
    jiff::Timestamp::from_millisecond(received)
        .ok()
        .and_then(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).checked_add(jiff::Span::new().months(1)).ok())
        .map_or(received + 30 * 86_400_000, |z| z.timestamp().as_millisecond())
}

/// A short, stable name for an erasure receipt (its SHA-256), to show and keep.
pub fn receipt_id(receipt: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(receipt.as_bytes()))
}

/// One request.
#[derive(Clone, Debug)]
pub struct RightsRequest {
    pub id: String,
    pub customer_id: String,
    pub kind: String,
    pub source: String,
    pub received_at: i64,
    pub due_at: i64,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub status: String,
    pub done_at: Option<i64>,
    pub receipt: Option<String>,
}

const COLUMNS: &str =
    "id, customer_id, kind, source, received_at, due_at, requested_by, approved_by, status, done_at, receipt";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RightsRequest> {
    Ok(RightsRequest {
        id: r.get(0)?,
        customer_id: r.get(1)?,
        kind: r.get(2)?,
        source: r.get(3)?,
        received_at: r.get(4)?,
        due_at: r.get(5)?,
        requested_by: r.get(6)?,
        approved_by: r.get(7)?,
        status: r.get(8)?,
        done_at: r.get(9)?,
        receipt: r.get(10)?,
    })
}

impl TenantTx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub fn insert_request(
        &self,
        id: &str,
        customer: &str,
        kind: &str,
        source: &str,
        received_at: i64,
        due_at: i64,
        note: Option<&str>,
        requested_by: &str,
    ) -> Result<(), StoreError> {
        let sealed = match note.filter(|n| !n.trim().is_empty()) {
            Some(n) => Some(self.keys.seal_pending(format!("request/{id}").as_bytes(), n.as_bytes())?),
            None => None,
        };
        self.tx.execute(
            "INSERT INTO rights_requests (id, customer_id, kind, source, received_at, due_at, note_sealed, requested_by, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open')",
            params![id, customer, kind, source, received_at, due_at, sealed, requested_by],
        )?;
        Ok(())
    }

    /// Open requests first (soonest due first), then the latest done ones.
    pub fn requests(&self, limit: u32) -> Result<Vec<RightsRequest>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM rights_requests ORDER BY status = 'done', CASE status WHEN 'open' THEN due_at ELSE -done_at END LIMIT ?1"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([limit], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn request(&self, id: &str) -> Result<Option<RightsRequest>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM rights_requests WHERE id = ?1");
        Ok(self.tx.prepare_cached(&sql)?.query_row([id], row).optional()?)
    }

    pub fn request_note(&self, id: &str) -> Result<Option<Zeroizing<String>>, StoreError> {
        let sealed: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT note_sealed FROM rights_requests WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .flatten();
        let Some(sealed) = sealed else { return Ok(None) };
        let bytes = self
            .keys
            .open_pending(format!("request/{id}").as_bytes(), &sealed)
            .map_err(|_| StoreError::Decrypt { what: "request note" })?;
        Ok(Some(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())))
    }

    /// A second person's approval of an open request (once): for an access
    /// request, that its clinical part may go to the patient.
    pub fn approve_request(&self, id: &str, staff: &str) -> Result<bool, StoreError> {
        Ok(self.tx.execute(
            "UPDATE rights_requests SET approved_by = ?2
             WHERE id = ?1 AND status = 'open' AND approved_by IS NULL AND requested_by <> ?2",
            params![id, staff],
        )? == 1)
    }

    /// Marks a request done (once), with who approved it and the receipt.
    pub fn complete_request(
        &self,
        id: &str,
        approved_by: Option<&str>,
        receipt: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.tx.execute(
            "UPDATE rights_requests SET status = 'done', done_at = ?2, approved_by = ?3, receipt = ?4
             WHERE id = ?1 AND status = 'open'",
            params![id, now, approved_by, receipt],
        )? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_due_a_calendar_month_after_receipt() {
        // 2027-01-31 → 2027-02-28 (the month's last day), 2027-03-15 → 2027-04-15.
        assert_eq!(rights_due(1_801_353_600_000), 1_803_772_800_000);
        assert_eq!(rights_due(1_805_068_800_000), 1_807_747_200_000);
    }
}
