//! Operator actions on a tenant's audit trail: signed checkpoints (never one
//! inconsistent with an earlier checkpoint), the verifier key, consistency
//! proofs and exports (JSON Lines, CSV).

use std::io::Write;

use audit::export::{self, origin};
use audit::merkle::{self, Hash};
use audit::{Checkpoint, VerifierKey};

use crate::{Error, Installation};

/// Export formats of the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    /// FHIR R4 AuditEvent resources, one per line (NDJSON).
    Fhir,
}

impl Installation {
    /// The key that verifies this tenant's checkpoints (give it to the
    /// compliance officer; it verifies, it cannot sign).
    pub fn audit_verifier_key(&self, tenant: &str) -> Result<VerifierKey, Error> {
        let row = self.tenant(tenant)?;
        let keys = self.tenant_keys(&row.id)?;
        Ok(VerifierKey { name: origin(row.id.as_str()), public_key: keys.public_key() })
    }

    /// Signs a checkpoint over the whole chain as it stands. Refuses when
    /// the chain is broken or inconsistent with the last checkpoint.
    pub fn audit_checkpoint(&self, tenant: &str) -> Result<String, Error> {
        let mut store = self.open_tenant(tenant)?;
        let actor = store::AuditEntry::operator(self.operator(), audit::Action::AuditCheckpoint);
        match store.sign_checkpoint(&actor, self.now_ms()) {
            Ok(Some(signed)) => Ok(signed.note),
            // Nothing new since the last one: it still covers the whole trail.
            Ok(None) => Ok(store.latest_checkpoint()?.map(|(_, _, note)| note).unwrap_or_default()),
            Err(store::StoreError::AuditInconsistent { reason }) => Err(Error::AuditInconsistent { reason }),
            Err(e) => Err(e.into()),
        }
    }

    /// A consistency proof from an earlier checkpoint (by size) to the
    /// current chain: (old size, new size, new root, proof).
    pub fn audit_prove(&self, tenant: &str, from_note: &str) -> Result<(u64, u64, Hash, Vec<Hash>), Error> {
        let key = self.audit_verifier_key(tenant)?;
        let old =
            Checkpoint::verify(from_note, &key).map_err(|e| Error::AuditInconsistent { reason: e.to_string() })?;
        let store = self.open_tenant(tenant)?;
        let leaves = export::leaves(&store.audit_chain()?);
        let m = usize::try_from(old.size).unwrap_or(usize::MAX);
        if m > leaves.len() || merkle::root(&leaves[..m]) != old.root {
            return Err(Error::AuditInconsistent {
                reason: format!("the chain is not consistent with the checkpoint at size {}", old.size),
            });
        }
        Ok((old.size, leaves.len() as u64, merkle::root(&leaves), merkle::consistency_proof(&leaves, m)))
    }

    /// Inclusion proof of record `seq` in the current tree: (size, root, path).
    pub fn audit_inclusion(&self, tenant: &str, seq: u64) -> Result<(u64, Hash, Vec<Hash>), Error> {
        let store = self.open_tenant(tenant)?;
        let leaves = export::leaves(&store.audit_chain()?);
        let index = usize::try_from(seq).ok().and_then(|s| s.checked_sub(1)).filter(|i| *i < leaves.len());
        let Some(index) = index else {
            return Err(Error::AuditInconsistent {
                reason: format!("no record {seq} (the trail has {})", leaves.len()),
            });
        };
        Ok((leaves.len() as u64, merkle::root(&leaves), merkle::inclusion_proof(&leaves, index)))
    }

    /// Writes the audit trail, or the records with `at` in `[since, until)`;
    /// the export itself is audited.
    pub fn audit_export(
        &self,
        tenant: &str,
        format: Format,
        range: (Option<i64>, Option<i64>),
        out: &mut dyn Write,
    ) -> Result<u64, Error> {
        let mut store = self.open_tenant(tenant)?;
        let mut chain = store.audit_chain()?;
        chain.retain(|(r, _)| range.0.is_none_or(|s| r.at >= s) && range.1.is_none_or(|u| r.at < u));
        let io = |source| Error::Io { path: "export".into(), source };
        match format {
            Format::Jsonl => {
                for (r, h) in &chain {
                    writeln!(out, "{}", export::to_jsonl_line(r, h)).map_err(io)?;
                }
            }
            Format::Fhir => {
                for (r, h) in &chain {
                    writeln!(out, "{}", audit::fhir::audit_event(r, h)).map_err(io)?;
                }
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                let header = [
                    "seq",
                    "at",
                    "actor_kind",
                    "actor",
                    "channel",
                    "action",
                    "tenant_id",
                    "customer_id",
                    "session_id",
                    "peer",
                    "outcome",
                    "reason",
                    "prev_hash",
                    "hash",
                    "role",
                    "purpose",
                    "break_glass",
                    "subjects",
                    "query_hmac",
                ];
                w.write_record(header).map_err(|e| io(e.into()))?;
                for (r, h) in &chain {
                    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
                    w.write_record([
                        r.seq.to_string(),
                        r.at.to_string(),
                        r.actor_kind.as_str().to_owned(),
                        r.actor.clone(),
                        opt(&r.channel),
                        r.action.clone(),
                        opt(&r.tenant_id),
                        opt(&r.customer_id),
                        opt(&r.session_id),
                        opt(&r.peer),
                        r.outcome.as_str().to_owned(),
                        opt(&r.reason),
                        r.prev_hash.clone(),
                        h.clone(),
                        opt(&r.role),
                        opt(&r.purpose),
                        opt(&r.break_glass),
                        r.subjects.join(" "),
                        opt(&r.query_hmac),
                    ])
                    .map_err(|e| io(e.into()))?;
                }
                w.flush().map_err(io)?;
            }
        }
        let n = chain.len() as u64;
        let what = match format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Fhir => "fhir",
        };
        store.record_operator_action(
            self.operator(),
            audit::Action::AuditExport,
            &format!("{what}:{n}"),
            self.now_ms(),
        )?;
        Ok(n)
    }
}
