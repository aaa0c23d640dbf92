//! A tenant's store re-keyed for `throughline keys rotate-tenant`: a fresh
//! copy under the new store key (SQLCipher's `sqlcipher_export` into an
//! attached database keyed with it: no page is ever in the clear), then, in
//! one transaction in the copy, everything that was under the old tenant
//! keys moved to the new ones:
//!
//! - every patient's data key re-wrapped (the data keys, and what they
//!   sealed, are unchanged);
//! - the blind indexes whose values we hold sealed recomputed: identifiers
//!   (from their sealed value), names (from the sealed name), pending
//!   identifiers (and their seal);
//! - what was sealed under the tenant's own key sealed again: held messages,
//!   a request's identity note;
//! - HMACs of values we never keep cannot be recomputed, so they go rather
//!   than stay under the old key: call references (`external_ref_bi`),
//!   email Message-IDs (`email_threads`), identifier lockout subjects;
//!   pending one-time codes; outstanding resume links are revoked;
//! - a `tenant.key_rotate` audit record, and a handover checkpoint signed by
//!   the old audit key and the new, naming the new one.
//!
//! The live store is only read. The copy replaces it only after the new key
//! is durable in the keyring (the server's `tenant_rotation`).

use std::path::Path;

use crypto::TenantKeys;
use rusqlite::params;
use zeroize::Zeroizing;

use super::audit_log::{AuditTable, read_all};
use super::tenant::{field_aad, identifier_aad};
use super::tenant_patients::pending_aad;
use super::{AuditEntry, IdentifierKind, StoreError, TenantStore, open_encrypted};
use crate::ids::{CustomerId, SessionId};

/// What a re-keying moved and dropped (counts only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    pub patients: usize,
    pub identifiers: usize,
    pub pending: usize,
    pub resealed: usize,
    /// Call references, Message-IDs and lockout subjects that could not be re-keyed.
    pub dropped: usize,
    pub links_revoked: usize,
    /// The handover checkpoint (signed by both audit keys).
    pub handover: String,
}

fn decrypt(what: &'static str) -> impl Fn(crypto::CryptoError) -> StoreError {
    move |_| StoreError::Decrypt { what }
}

impl TenantStore {
    /// Writes this store, re-keyed to `next`, as a new file at `dst` (see the module).
    pub fn rekey_into(&self, dst: &Path, next: TenantKeys, operator: &str, now: i64) -> Result<Rekeyed, StoreError> {
        if dst.exists() {
            return Err(StoreError::Exists { path: dst.to_owned() });
        }
        // Created here, empty (the live connection may not create files);
        // its first page is written by the export, in the new stores' format:
        // rotation is how a store of the old page HMAC moves to the new one.
        std::fs::File::create_new(dst).map_err(|e| StoreError::Snapshot { reason: format!("create the copy: {e}") })?;
        let hex = Zeroizing::new(hex::encode(next.store_key().expose_secret()));
        let path = dst.to_str().ok_or_else(|| StoreError::Snapshot { reason: "the path is not UTF-8".into() })?;
        let attach = Zeroizing::new(format!("ATTACH DATABASE ?1 AS rekeyed KEY \"x'{}'\"", hex.as_str()));
        self.conn.execute(&attach, [path])?;
        self.conn
            .execute_batch(&format!("PRAGMA rekeyed.cipher_hmac_algorithm = {};", super::new_store_hmac().as_str()))?;
        // sqlcipher_export copies schema and rows, not the schema version the migrations read.
        let version: i64 = self.conn.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
        let exported = self
            .conn
            .query_row("SELECT sqlcipher_export('rekeyed')", [], |_| Ok(()))
            .and_then(|()| self.conn.execute_batch(&format!("PRAGMA rekeyed.user_version = {version};")));
        self.conn.execute("DETACH DATABASE rekeyed", [])?;
        exported?;
        let old = &self.keys;
        let mut copy = TenantStore::open_rekeyed(dst, next)?;
        let mut out = copy.move_rows(old, now)?;
        let reason = format!(
            "patients:{} identifiers:{} pending:{} resealed:{} dropped:{} links_revoked:{}",
            out.patients, out.identifiers, out.pending, out.resealed, out.dropped, out.links_revoked
        );
        copy.record_operator_action(operator, audit::Action::TenantKeyRotate, &reason, now)?;
        out.handover = copy.sign_handover(old, operator, now)?;
        copy.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")?;
        let ok: String = copy.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(StoreError::Snapshot { reason: ok });
        }
        Ok(out)
    }

    fn open_rekeyed(path: &Path, keys: TenantKeys) -> Result<TenantStore, StoreError> {
        // The export is a whole store: opening it runs no migration and checks the tenant id.
        drop(open_encrypted(path, keys.store_key(), false)?);
        TenantStore::open(path, keys)
    }

    fn move_rows(&mut self, old: &TenantKeys, now: i64) -> Result<Rekeyed, StoreError> {
        let next = &self.keys;
        let tx = self.conn.transaction()?;
        let mut out = Rekeyed::default();
        let customers: Vec<(String, Vec<u8>, Option<Vec<u8>>)> = {
            let mut stmt =
                tx.prepare("SELECT id, wrapped_key, name_ct FROM customers WHERE wrapped_key IS NOT NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, wrapped, name_ct) in &customers {
            let customer = CustomerId::parse(id).ok_or(StoreError::Decrypt { what: "patient id" })?;
            let key = old.open_data_key(id, wrapped).map_err(decrypt("patient key"))?;
            let rewrapped = old.rewrap_data_key(id, wrapped, next).map_err(decrypt("patient key"))?;
            let name_bi = match name_ct {
                Some(ct) => {
                    let name = key.open(&field_aad(&customer, "name"), ct).map_err(decrypt("name"))?;
                    let name = String::from_utf8_lossy(&name);
                    Some(next.blind_index("name", &super::tenant_console::normalise_name(&name)).0.to_vec())
                }
                None => None,
            };
            tx.execute(
                "UPDATE customers SET wrapped_key = ?2, name_bi = ?3 WHERE id = ?1",
                params![id, rewrapped, name_bi],
            )?;
            let idents: Vec<(i64, String, Vec<u8>)> = {
                let mut stmt = tx.prepare("SELECT id, kind, value_ct FROM identifiers WHERE customer_id = ?1")?;
                let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (row, kind, ct) in idents {
                let kind = IdentifierKind::parse(&kind).ok_or(StoreError::Decrypt { what: "identifier kind" })?;
                let value = key.open(&identifier_aad(&customer, kind), &ct).map_err(decrypt("identifier"))?;
                let bi = next.blind_index(kind.as_str(), &String::from_utf8_lossy(&value));
                tx.execute("UPDATE identifiers SET value_bi = ?2 WHERE id = ?1", params![row, bi.0.as_slice()])?;
                out.identifiers += 1;
            }
            out.patients += 1;
        }
        // Identifiers of erased patients have no key to recompute from: they go.
        out.dropped += tx.execute(
            "DELETE FROM identifiers WHERE customer_id IN (SELECT id FROM customers WHERE wrapped_key IS NULL)",
            [],
        )?;
        let pending: Vec<(String, String, Vec<u8>, Vec<u8>)> = {
            let mut stmt =
                tx.prepare("SELECT session_id, kind, value_bi, value_sealed FROM session_pending_identifiers")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (session, kind_s, bi, sealed) in pending {
            let (Some(sid), Some(kind)) = (SessionId::parse(&session), IdentifierKind::parse(&kind_s)) else {
                continue;
            };
            let aad = pending_aad(&sid, kind);
            let value = old.open_pending(&aad, &sealed).map_err(decrypt("pending identifier"))?;
            let resealed = old.reseal_pending(&aad, &sealed, next).map_err(decrypt("pending identifier"))?;
            let new_bi = next.blind_index(kind.as_str(), &String::from_utf8_lossy(&value));
            tx.execute(
                "UPDATE session_pending_identifiers SET value_bi = ?4, value_sealed = ?5
                 WHERE session_id = ?1 AND kind = ?2 AND value_bi = ?3",
                params![session, kind_s, bi, new_bi.0.as_slice(), resealed],
            )?;
            out.pending += 1;
        }
        let held: Vec<(i64, String, Vec<u8>)> = {
            let mut stmt = tx.prepare("SELECT id, session_id, raw_sealed FROM held_messages")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, session, sealed) in held {
            let resealed = old
                .reseal_pending(format!("held/{session}").as_bytes(), &sealed, next)
                .map_err(decrypt("held message"))?;
            tx.execute("UPDATE held_messages SET raw_sealed = ?2 WHERE id = ?1", params![id, resealed])?;
            out.resealed += 1;
        }
        let notes: Vec<(String, Vec<u8>)> = {
            let mut stmt = tx.prepare("SELECT id, note_sealed FROM rights_requests WHERE note_sealed IS NOT NULL")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (id, sealed) in notes {
            let resealed = old
                .reseal_pending(format!("request/{id}").as_bytes(), &sealed, next)
                .map_err(decrypt("request note"))?;
            tx.execute("UPDATE rights_requests SET note_sealed = ?2 WHERE id = ?1", params![id, resealed])?;
            out.resealed += 1;
        }
        out.dropped +=
            tx.execute("UPDATE sessions SET external_ref_bi = NULL WHERE external_ref_bi IS NOT NULL", [])?;
        out.dropped += tx.execute("DELETE FROM email_threads", [])?;
        out.dropped += tx.execute("DELETE FROM session_subjects", [])?;
        out.dropped +=
            tx.execute("DELETE FROM confirm_failures WHERE substr(CAST(subject AS TEXT), 1, 9) <> 'customer:'", [])?;
        out.dropped += tx.execute("DELETE FROM identity_challenges", [])?;
        out.links_revoked = tx.execute("UPDATE resume_tokens SET revoked_at = ?1 WHERE revoked_at IS NULL", [now])?;
        tx.commit()?;
        Ok(out)
    }

    /// The first checkpoint under the new audit key, also signed by the old one.
    fn sign_handover(&mut self, old: &TenantKeys, operator: &str, now: i64) -> Result<String, StoreError> {
        let chain = read_all(&self.conn, AuditTable::Tenant)?;
        audit::verify_chain(chain.iter().map(|(r, h)| (r, h.as_str())), 1, audit::GENESIS)
            .map_err(|e| StoreError::AuditInconsistent { reason: e.to_string() })?;
        let leaves = audit::export::leaves(&chain);
        let origin = audit::export::origin(self.keys.tenant_id());
        let new_key = audit::VerifierKey { name: origin.clone(), public_key: self.keys.public_key() };
        let old_key = audit::VerifierKey { name: origin.clone(), public_key: old.public_key() };
        let cp = audit::Checkpoint { origin, size: leaves.len() as u64, root: audit::merkle::root(&leaves) };
        let note = cp.sign_handover(&old_key, |m| old.sign(m), &new_key, |m| self.keys.sign(m));
        let actor = AuditEntry::operator(operator, audit::Action::AuditCheckpoint);
        self.insert_checkpoint_by(cp.size, &cp.root, &note, &actor, now)?;
        Ok(note)
    }
}
