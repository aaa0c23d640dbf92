//! The CA's generations in the system store: the current CA (`ca`), the
//! CAs it replaced (`retired_cas`, trusted until their overlap ends), and
//! the rotation itself, one audited transaction: a crash leaves the old CA
//! or the new one, never half of each.

use rusqlite::{OptionalExtension, params};

use super::audit_log::{self, AuditTable};
use super::{AuditEntry, StoreError, SystemStore};

/// A CA that was replaced.
#[derive(Clone, Debug)]
pub struct RetiredCa {
    pub generation: i64,
    pub cert_pem: String,
    pub retired_at: i64,
    /// Certificates it issued are accepted until then.
    pub trusted_until: i64,
}

/// The replacement CA, its key sealed by the caller.
pub struct NewCa<'a> {
    pub cert_pem: &'a str,
    pub key_sealed: &'a [u8],
    /// The new CA's certificate signed by the old one.
    pub cross_pem: &'a str,
    pub trusted_until: i64,
}

impl SystemStore {
    /// The current CA's generation (1 until the first rotation).
    pub fn ca_generation(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("SELECT generation FROM ca WHERE id = 1", [], |r| r.get(0)).optional()?.unwrap_or(1))
    }

    /// The CAs replaced so far, newest first.
    pub fn retired_cas(&self) -> Result<Vec<RetiredCa>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT generation, cert_pem, retired_at, trusted_until FROM retired_cas ORDER BY generation DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RetiredCa {
                generation: r.get(0)?,
                cert_pem: r.get(1)?,
                retired_at: r.get(2)?,
                trusted_until: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every CA certificate a client certificate may chain to at `now`: the
    /// current one, then those still in their overlap.
    pub fn trusted_ca_pems(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = self.ca_cert_pem()?.into_iter().collect();
        out.extend(self.retired_cas()?.into_iter().filter(|r| r.trusted_until > now).map(|r| r.cert_pem));
        Ok(out)
    }

    /// The current CA's certificate cross-signed by the previous CA, while
    /// the previous CA is in its overlap.
    pub fn ca_cross_pem(&self, now: i64) -> Result<Option<String>, StoreError> {
        let cross: Option<String> =
            self.conn.query_row("SELECT cross_pem FROM ca WHERE id = 1", [], |r| r.get(0)).optional()?.flatten();
        let generation = self.ca_generation()?;
        let previous_trusted =
            self.retired_cas()?.iter().any(|r| r.generation == generation - 1 && r.trusted_until > now);
        Ok(cross.filter(|_| previous_trusted))
    }

    /// Replaces the CA: the old certificate joins the retired CAs (its key
    /// is gone with the row it was in), the new one becomes current, the
    /// server's certificate is dropped so `serve` issues one from the new
    /// CA, and the rotation is audited (`until` is the overlap's end as the
    /// record shows it). Returns the new generation.
    pub fn rotate_ca(&mut self, new: &NewCa<'_>, operator: &str, until: &str, now: i64) -> Result<i64, StoreError> {
        let tx = self.conn.transaction()?;
        let (old_pem, generation): (String, i64) =
            tx.query_row("SELECT cert_pem, generation FROM ca WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        tx.execute(
            "INSERT INTO retired_cas (generation, cert_pem, retired_at, trusted_until) VALUES (?1, ?2, ?3, ?4)",
            params![generation, old_pem, now, new.trusted_until],
        )?;
        tx.execute(
            "UPDATE ca SET cert_pem = ?1, key_sealed = ?2, cross_pem = ?3, generation = ?4, created_at = ?5 WHERE id = 1",
            params![new.cert_pem, new.key_sealed, new.cross_pem, generation + 1, now],
        )?;
        tx.execute("DELETE FROM server_identity", [])?;
        let reason =
            format!("generation {} replaces {generation}; the old CA is trusted until {}", generation + 1, until);
        let entry = AuditEntry { reason: Some(&reason), ..AuditEntry::operator(operator, audit::Action::CaRotate) };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(generation + 1)
    }
}
