//! Audit exports and their offline verification. An export is JSON Lines:
//! one record per line with its stored `hash`. `verify` needs nothing but the
//! file and, to prove nothing was dropped or rewritten since, a signed
//! checkpoint and the tenant's verifier key: it recomputes the chain (naming
//! the first broken record) and the Merkle tree head, and checks it against
//! the checkpoint.

use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::merkle::{self, Hash};
use crate::{ChainError, GENESIS, Record, verify_chain};

/// Why an export does not verify. Messages name the record (sequence number)
/// or the line, never a record's content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("the export is empty")]
    Empty,
    #[error("line {line}: not UTF-8")]
    NotUtf8 { line: usize },
    #[error("line {line}: not an audit record ({reason})")]
    BadLine { line: usize, reason: String },
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::CheckpointError),
    #[error("checkpoint is for {found}, the export for {expected}")]
    WrongOrigin { expected: String, found: String },
    #[error("the export has {records} records but the checkpoint covers {size}: records were dropped from the end")]
    Truncated { records: u64, size: u64 },
    #[error("the first {size} records do not match the checkpoint: history was rewritten after it was signed")]
    Rewritten { size: u64 },
    #[error("a range export (records {first}..{last}) cannot be checked against a checkpoint: export the whole trail")]
    RangeWithCheckpoint { first: u64, last: u64 },
    #[error("the bundle's signed list of records does not verify: {0}")]
    ManifestSignature(String),
    #[error("the bundle's records are not the ones its signed list names: records were dropped, added or repeated")]
    Incomplete,
}

/// One export line: the record and its stored hash.
pub fn to_jsonl_line(record: &Record, hash: &str) -> String {
    let mut v = serde_json::to_value(record).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("hash".into(), serde_json::Value::String(hash.to_owned()));
    }
    v.to_string()
}

/// Parses a JSON Lines export.
pub fn parse_jsonl(bytes: &[u8]) -> Result<Vec<(Record, String)>, VerifyError> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let text = std::str::from_utf8(raw).map_err(|_| VerifyError::NotUtf8 { line })?;
        if text.trim().is_empty() {
            continue;
        }
        let mut v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| VerifyError::BadLine { line, reason: e.to_string() })?;
        let hash = v
            .as_object_mut()
            .and_then(|o| o.remove("hash"))
            .and_then(|h| h.as_str().map(str::to_owned))
            .ok_or_else(|| VerifyError::BadLine { line, reason: "no hash".into() })?;
        let record: Record =
            serde_json::from_value(v).map_err(|e| VerifyError::BadLine { line, reason: e.to_string() })?;
        out.push((record, hash));
    }
    if out.is_empty() {
        return Err(VerifyError::Empty);
    }
    Ok(out)
}

/// The Merkle leaves of a chain: each record's hash.
pub fn leaves(records: &[(Record, String)]) -> Vec<Hash> {
    records.iter().map(|(r, _)| merkle::leaf_hash(&r.hash())).collect()
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// For an export of part of the trail: first and last sequence numbers.
    pub range: Option<(u64, u64)>,
    pub root: Hash,
    /// Size of the checkpoint the export was checked against.
    pub checkpoint_size: Option<u64>,
}

/// Verifies an export: the chain, then (if given) the checkpoint.
pub fn verify(records: &[(Record, String)], checkpoint: Option<(&str, &VerifierKey)>) -> Result<Verified, VerifyError> {
    let (Some((first, _)), Some((last, _))) = (records.first(), records.last()) else {
        return Err(VerifyError::Empty);
    };
    if first.seq != 1 {
        // A range export: the links inside the range verify; what came before
        // is vouched for only by the whole trail and a checkpoint.
        if checkpoint.is_some() {
            return Err(VerifyError::RangeWithCheckpoint { first: first.seq, last: last.seq });
        }
        verify_chain(records.iter().map(|(r, h)| (r, h.as_str())), first.seq, &first.prev_hash)?;
        let leaves = leaves(records);
        return Ok(Verified {
            records: leaves.len() as u64,
            range: Some((first.seq, last.seq)),
            root: merkle::root(&leaves),
            checkpoint_size: None,
        });
    }
    verify_chain(records.iter().map(|(r, h)| (r, h.as_str())), 1, GENESIS)?;
    let leaves = leaves(records);
    let n = leaves.len() as u64;
    let mut checkpoint_size = None;
    if let Some((note, key)) = checkpoint {
        let cp = Checkpoint::verify(note, key)?;
        if let Some(t) = records[0].0.tenant_id.as_deref() {
            let expected = origin(t);
            if cp.origin != expected {
                return Err(VerifyError::WrongOrigin { expected, found: cp.origin });
            }
        }
        if cp.size > n {
            return Err(VerifyError::Truncated { records: n, size: cp.size });
        }
        let size = usize::try_from(cp.size).unwrap_or(usize::MAX);
        if merkle::root(&leaves[..size]) != cp.root {
            return Err(VerifyError::Rewritten { size: cp.size });
        }
        checkpoint_size = Some(cp.size);
    }
    Ok(Verified { records: n, range: None, root: merkle::root(&leaves), checkpoint_size })
}

/// The checkpoint origin (and key name) of a tenant.
pub fn origin(tenant_id: &str) -> String {
    format!("throughline.local/{tenant_id}")
}
