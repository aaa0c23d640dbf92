//! The state of a tenant's audit trail as the compliance console shows it,
//! and signing a checkpoint (the CLI's `audit checkpoint` and `serve`'s
//! schedule both come here): never one over a broken chain, never one
//! inconsistent with an earlier checkpoint.

use audit::export::{leaves, origin};
use audit::{Checkpoint, VerifierKey, merkle};
use rusqlite::OptionalExtension;

use super::audit_log::{AuditEntry, AuditTable, read_all};
use super::{StoreError, TenantStore};

/// A newly signed checkpoint.
#[derive(Clone, Debug)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub note: String,
}

/// What verifying the whole trail found.
#[derive(Clone, Debug)]
pub struct Integrity {
    pub records: u64,
    /// The first record that does not verify, and why (no content).
    pub broken: Option<(u64, String)>,
    /// The latest checkpoint: (size, when it was signed), and whether the
    /// trail still matches it (its signature and its Merkle root).
    pub checkpoint: Option<(u64, i64, bool)>,
    /// The verifier key's text form (for `audit verify --key`).
    pub verifier_key: String,
}

fn chain_error_seq(e: &audit::ChainError) -> u64 {
    match e {
        audit::ChainError::Sequence { seq, .. } | audit::ChainError::Link { seq } | audit::ChainError::Hash { seq } => {
            *seq
        }
        _ => 0,
    }
}

impl TenantStore {
    fn verifier_key(&self) -> Option<VerifierKey> {
        let tenant = self.tenant_id()?;
        Some(VerifierKey { name: origin(tenant.as_str()), public_key: self.keys.public_key() })
    }

    /// Verifies the whole chain, and the latest checkpoint against it.
    pub fn integrity(&self) -> Result<Integrity, StoreError> {
        let chain = read_all(&self.conn, AuditTable::Tenant)?;
        let broken = audit::verify_chain(chain.iter().map(|(r, h)| (r, h.as_str())), 1, audit::GENESIS)
            .err()
            .map(|e| (chain_error_seq(&e), e.to_string()));
        let key = self.verifier_key().ok_or(StoreError::AuditInconsistent { reason: "no tenant id".into() })?;
        let latest: Option<(i64, String, i64)> = self
            .conn
            .query_row("SELECT size, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let checkpoint = latest.map(|(size, note, at)| {
            let size = u64::try_from(size).unwrap_or(0);
            let ok = Checkpoint::verify(&note, &key).is_ok_and(|cp| {
                let n = usize::try_from(cp.size).unwrap_or(usize::MAX);
                n <= chain.len() && cp.size == size && merkle::root(&leaves(&chain[..n])) == cp.root
            });
            (size, at, ok)
        });
        Ok(Integrity { records: chain.len() as u64, broken, checkpoint, verifier_key: key.encode() })
    }

    /// Signs a checkpoint over the whole chain as it stands, recorded with
    /// the actor's record. `None` when nothing was added since the last one.
    /// The tenant key's signature over a search bundle's list of records
    /// (`audit::bundle::manifest_message`): what makes omission visible.
    pub fn sign_bundle_manifest(
        &self,
        checkpoint_size: u64,
        filter: &str,
        seqs: &[u64],
    ) -> Result<[u8; 64], StoreError> {
        let key = self.verifier_key().ok_or(StoreError::AuditInconsistent { reason: "no tenant id".into() })?;
        Ok(self.keys.sign(&audit::bundle::manifest_message(&key.name, checkpoint_size, filter, seqs)))
    }

    pub fn sign_checkpoint(
        &mut self,
        actor: &AuditEntry<'_>,
        now: i64,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        let chain = self.audit_chain()?;
        audit::verify_chain(chain.iter().map(|(r, h)| (r, h.as_str())), 1, audit::GENESIS)
            .map_err(|e| StoreError::AuditInconsistent { reason: e.to_string() })?;
        let leaves = leaves(&chain);
        if let Some((size, root, _)) = self.latest_checkpoint()? {
            let n = usize::try_from(size).unwrap_or(usize::MAX);
            if n > leaves.len() || merkle::root(&leaves[..n]) != root {
                return Err(StoreError::AuditInconsistent {
                    reason: format!("the chain no longer matches the checkpoint at size {size}; refusing to sign"),
                });
            }
            // Nothing new but the last checkpoint's own record: no new checkpoint.
            if chain[n.min(chain.len())..].iter().all(|(r, _)| r.action == "audit.checkpoint") {
                return Ok(None);
            }
        }
        let key = self.verifier_key().ok_or(StoreError::AuditInconsistent { reason: "no tenant id".into() })?;
        let cp = Checkpoint { origin: key.name.clone(), size: leaves.len() as u64, root: merkle::root(&leaves) };
        let note = cp.sign(&key, |m| self.keys.sign(m));
        self.insert_checkpoint_by(cp.size, &cp.root, &note, actor, now)?;
        Ok(Some(SignedCheckpoint { size: cp.size, note }))
    }
}
