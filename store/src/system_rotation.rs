//! What a passphrase rotation changes in the system store: the secrets
//! sealed directly under the master key (the CA key, the server
//! certificate's key, tenants' SMTP passwords), re-sealed in one
//! transaction that also records the rotation as pending, so a crash
//! leaves either the old state or the new (`Installation::open` finishes
//! or abandons it).

use rusqlite::{OptionalExtension, params};

use super::audit_log::{self, AuditEntry, AuditTable};
use super::{StoreError, SystemStore};

impl SystemStore {
    /// Re-seals every master-sealed secret with `reseal(aad, sealed)` and
    /// marks the rotation pending, with the operator's audit record.
    pub fn reseal_for_rotation(
        &mut self,
        installation_id: &str,
        reseal: impl Fn(&[u8], &[u8]) -> Result<Vec<u8>, crypto::CryptoError>,
        operator: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        let ca: Option<Vec<u8>> =
            tx.query_row("SELECT key_sealed FROM ca WHERE id = 1", [], |r| r.get(0)).optional()?;
        if let Some(sealed) = ca {
            let aad = format!("ca-key/{installation_id}").into_bytes();
            tx.execute("UPDATE ca SET key_sealed = ?1 WHERE id = 1", [reseal(&aad, &sealed)?])?;
            n += 1;
        }
        let server: Option<Vec<u8>> =
            tx.query_row("SELECT key_sealed FROM server_identity WHERE id = 1", [], |r| r.get(0)).optional()?;
        if let Some(sealed) = server {
            let aad = format!("server-key/{installation_id}").into_bytes();
            tx.execute("UPDATE server_identity SET key_sealed = ?1 WHERE id = 1", [reseal(&aad, &sealed)?])?;
            n += 1;
        }
        let smtp: Vec<(String, Vec<u8>)> = tx
            .prepare("SELECT tenant_id, smtp_password_sealed FROM tenant_email WHERE smtp_password_sealed IS NOT NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (tenant, sealed) in smtp {
            let aad = format!("tenant_email/{tenant}/smtp_password").into_bytes();
            tx.execute(
                "UPDATE tenant_email SET smtp_password_sealed = ?2 WHERE tenant_id = ?1",
                params![tenant, reseal(&aad, &sealed)?],
            )?;
            n += 1;
        }
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('passphrase_rotation', 'pending')", [])?;
        let reason = format!("resealed:{n}");
        let entry =
            AuditEntry { reason: Some(&reason), ..AuditEntry::operator(operator, audit::Action::KeysRotatePassphrase) };
        audit_log::append(&tx, AuditTable::System, &entry, now)?;
        tx.commit()?;
        Ok(n)
    }

    /// Whether a rotation re-sealed the store and has not been finished.
    pub fn rotation_pending(&self) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM meta WHERE key = 'passphrase_rotation'")?.exists([])?)
    }

    pub fn finish_rotation(&self) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM meta WHERE key = 'passphrase_rotation'", [])?;
        Ok(())
    }
}
