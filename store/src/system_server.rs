//! The server's own certificate in the system store: its PEM, its key
//! sealed under the master key by the caller (this module never sees it in
//! the clear), the names it covers and when it expires.

use rusqlite::{OptionalExtension, params};

use super::{StoreError, SystemStore};

/// The stored server certificate.
pub struct ServerIdentityRow {
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub names: Vec<String>,
    pub not_after: i64,
}

impl SystemStore {
    pub fn server_identity(&self) -> Result<Option<ServerIdentityRow>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT cert_pem, key_sealed, names, not_after FROM server_identity WHERE id = 1", [], |r| {
                let names: String = r.get(2)?;
                Ok(ServerIdentityRow {
                    cert_pem: r.get(0)?,
                    key_sealed: r.get(1)?,
                    names: names.split('\n').filter(|n| !n.is_empty()).map(str::to_owned).collect(),
                    not_after: r.get(3)?,
                })
            })
            .optional()?)
    }

    pub fn store_server_identity(&mut self, row: &ServerIdentityRow, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO server_identity (id, cert_pem, key_sealed, names, not_after, issued_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET cert_pem = ?1, key_sealed = ?2, names = ?3, not_after = ?4, issued_at = ?5",
            params![row.cert_pem, row.key_sealed, row.names.join("\n"), row.not_after, now],
        )?;
        Ok(())
    }

    /// The CA certificate alone (its key stays sealed).
    pub fn ca_cert_pem(&self) -> Result<Option<String>, StoreError> {
        Ok(self.conn.query_row("SELECT cert_pem FROM ca WHERE id = 1", [], |r| r.get(0)).optional()?)
    }
}
