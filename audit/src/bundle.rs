//! A search's export that verifies offline on its own: the matching
//! records (not a contiguous run, so the chain alone cannot vouch for them),
//! each with its Merkle inclusion proof against a signed checkpoint that
//! covers it, and the checkpoint note. JSON Lines: a header line
//! `{"throughline_audit_bundle": 1, "checkpoint": "<note>", "filter": "…"}`,
//! then one record per line with its stored `hash` and its `proof`.
//! Verifying needs the tenant's verifier key, kept apart from the file.

use serde_json::{Value, json};

use crate::Record;
use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::export::VerifyError;
use crate::merkle::{self, Hash};

/// The header line.
pub fn header(checkpoint_note: &str, filter: &str) -> String {
    json!({"throughline_audit_bundle": 1, "checkpoint": checkpoint_note, "filter": filter}).to_string()
}

/// One record's line.
pub fn line(record: &Record, hash: &str, proof: &[Hash]) -> String {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("hash".into(), json!(hash));
        o.insert("proof".into(), json!(proof.iter().map(hex::encode).collect::<Vec<_>>()));
    }
    v.to_string()
}

/// Whether these bytes are a bundle (its first line says so).
pub fn is_bundle(bytes: &[u8]) -> bool {
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<Value>(first).is_ok_and(|v| v.get("throughline_audit_bundle").is_some())
}

/// What a verified bundle established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleVerified {
    pub records: u64,
    pub checkpoint_size: u64,
}

fn bad(line: usize, reason: &str) -> VerifyError {
    VerifyError::BadLine { line, reason: reason.to_owned() }
}

/// Verifies every record's content against its hash and its hash against
/// the checkpoint's tree, and the checkpoint against `key`.
pub fn verify(bytes: &[u8], key: &VerifierKey) -> Result<BundleVerified, VerifyError> {
    let text = std::str::from_utf8(bytes).map_err(|_| VerifyError::NotUtf8 { line: 0 })?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, head) = lines.next().ok_or(VerifyError::Empty)?;
    let head: Value = serde_json::from_str(head).map_err(|e| bad(1, &e.to_string()))?;
    let note = head["checkpoint"].as_str().ok_or_else(|| bad(1, "no checkpoint"))?;
    let cp = Checkpoint::verify(note, key)?;
    let mut n = 0;
    for (i, raw) in lines {
        let line = i + 1;
        let mut v: Value = serde_json::from_str(raw).map_err(|e| bad(line, &e.to_string()))?;
        let o = v.as_object_mut().ok_or_else(|| bad(line, "not an object"))?;
        let hash = o.remove("hash").and_then(|h| h.as_str().map(str::to_owned)).ok_or_else(|| bad(line, "no hash"))?;
        let proof = o.remove("proof").and_then(|p| p.as_array().cloned()).ok_or_else(|| bad(line, "no proof"))?;
        let record: Record = serde_json::from_value(v).map_err(|e| bad(line, &e.to_string()))?;
        if record.hash_hex() != hash {
            return Err(VerifyError::Chain(crate::ChainError::Hash { seq: record.seq }));
        }
        let proof: Vec<Hash> = proof
            .iter()
            .map(|p| {
                p.as_str()
                    .and_then(|s| hex::decode(s).ok())
                    .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
                    .ok_or_else(|| bad(line, "proof is not hex hashes"))
            })
            .collect::<Result<_, _>>()?;
        let leaf = merkle::leaf_hash(&record.hash());
        merkle::verify_inclusion(&leaf, record.seq.saturating_sub(1), cp.size, &proof, &cp.root)
            .map_err(|_| VerifyError::Rewritten { size: cp.size })?;
        n += 1;
    }
    if n == 0 {
        return Err(VerifyError::Empty);
    }
    Ok(BundleVerified { records: n, checkpoint_size: cp.size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorKind, GENESIS, Outcome};

    fn chain(n: u64) -> Vec<(Record, String)> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let r = Record {
                    seq,
                    at: seq as i64,
                    actor_kind: ActorKind::Staff,
                    actor: "stf_1".into(),
                    channel: None,
                    action: "patient.view".into(),
                    tenant_id: Some("ten_1".into()),
                    customer_id: Some(format!("cus_{}", seq % 3)),
                    session_id: None,
                    peer: None,
                    outcome: Outcome::Ok,
                    reason: None,
                    prev_hash: prev.clone(),
                    role: Some("clinician".into()),
                    purpose: Some("TREAT".into()),
                    break_glass: None,
                    subjects: vec![],
                    query_hmac: None,
                };
                prev = r.hash_hex();
                (r, prev.clone())
            })
            .collect()
    }

    #[test]
    fn a_selection_verifies_and_any_change_is_caught() {
        let c = chain(9);
        let leaves = crate::export::leaves(&c);
        let key_pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let key = VerifierKey {
            name: "throughline.local/ten_1".into(),
            public_key: ring::signature::KeyPair::public_key(&key_pair).as_ref().try_into().unwrap(),
        };
        let cp = Checkpoint { origin: key.name.clone(), size: 9, root: merkle::root(&leaves) };
        let note = cp.sign(&key, |m| key_pair.sign(m).as_ref().try_into().unwrap());
        let pick = [2usize, 5, 8];
        let mut file = vec![header(&note, "customer=cus_2")];
        for i in pick {
            file.push(line(&c[i].0, &c[i].1, &merkle::inclusion_proof(&leaves, i)));
        }
        let text = file.join("\n");
        assert!(is_bundle(text.as_bytes()));
        assert_eq!(verify(text.as_bytes(), &key), Ok(BundleVerified { records: 3, checkpoint_size: 9 }));
        let altered = text.replace("\"patient.view\"", "\"patient.search\"");
        assert!(matches!(verify(altered.as_bytes(), &key), Err(VerifyError::Chain(_))));
        // A record re-hashed after changing it no longer proves into the tree.
        let mut forged = c[5].0.clone();
        forged.actor = "stf_2".into();
        let f = line(&forged, &forged.hash_hex(), &merkle::inclusion_proof(&leaves, 5));
        let text2 = [file[0].clone(), f].join("\n");
        assert!(matches!(verify(text2.as_bytes(), &key), Err(VerifyError::Rewritten { .. })));
    }
}
