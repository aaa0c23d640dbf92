//! A search's export that verifies offline on its own: the matching
//! records (not a contiguous run, so the chain alone cannot vouch for them),
//! each with its Merkle inclusion proof against a signed checkpoint that
//! covers it, and the checkpoint note. JSON Lines: a header line
//! `{"throughline_audit_bundle": 1, "checkpoint": "<note>", "filter": "…",
//! "seqs": [..], "signature": "<base64>"}`, then one record per line with
//! its stored `hash` and its `proof`. Verifying needs the tenant's verifier
//! key, kept apart from the file.
//!
//! Completeness (L7 of the second review): the tenant's key signs the
//! filter and the exact list of sequence numbers the search found, under
//! the checkpoint's origin and size ([`manifest_message`]). A record dropped
//! from the file, repeated or added, or the filter text changed, fails;
//! a bundle from before this (no signature) verifies record by record and
//! says it cannot prove it is complete.

use serde_json::{Value, json};

use crate::Record;
use crate::checkpoint::{Checkpoint, VerifierKey};
use crate::export::VerifyError;
use crate::merkle::{self, Hash};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, UnparsedPublicKey};

/// What the tenant's key signs for a bundle: the search and what it found.
pub fn manifest_message(origin: &str, checkpoint_size: u64, filter: &str, seqs: &[u64]) -> Vec<u8> {
    let list: Vec<String> = seqs.iter().map(u64::to_string).collect();
    format!(
        "throughline-audit-bundle/v1\n{origin}\n{checkpoint_size}\n{}\n{}\n",
        filter.replace('\n', " "),
        list.join(",")
    )
    .into_bytes()
}

/// The header line: the checkpoint, the filter, the list of records and
/// the tenant key's signature over [`manifest_message`].
pub fn header(checkpoint_note: &str, filter: &str, seqs: &[u64], signature: &[u8; 64]) -> String {
    json!({"throughline_audit_bundle": 1, "checkpoint": checkpoint_note, "filter": filter, "seqs": seqs,
           "signature": B64.encode(signature)})
    .to_string()
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
    /// The file holds exactly the records its signed list names: nothing
    /// dropped, repeated or added. False only for a bundle without a list.
    pub complete: bool,
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
    let listed: Option<Vec<u64>> = match (head.get("seqs"), head.get("signature")) {
        (None, None) => None,
        (Some(seqs), Some(sig)) => {
            let seqs: Vec<u64> = serde_json::from_value(seqs.clone()).map_err(|_| bad(1, "seqs is not a list"))?;
            let sig = sig.as_str().and_then(|s| B64.decode(s).ok()).ok_or_else(|| bad(1, "signature is not base64"))?;
            let filter = head["filter"].as_str().unwrap_or_default();
            UnparsedPublicKey::new(&ED25519, key.public_key)
                .verify(&manifest_message(&cp.origin, cp.size, filter, &seqs), &sig)
                .map_err(|_| VerifyError::ManifestSignature("not signed by this tenant's key".into()))?;
            Some(seqs)
        }
        _ => return Err(VerifyError::ManifestSignature("the list and its signature go together".into())),
    };
    let mut found = Vec::new();
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
        found.push(record.seq);
        n += 1;
    }
    if let Some(listed) = &listed
        && *listed != found
    {
        return Err(VerifyError::Incomplete);
    }
    if n == 0 && listed.as_ref().is_none_or(|l| !l.is_empty()) {
        return Err(VerifyError::Empty);
    }
    Ok(BundleVerified { records: n, checkpoint_size: cp.size, complete: listed.is_some() })
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
        let seqs: Vec<u64> = pick.iter().map(|i| c[*i].0.seq).collect();
        let signature: [u8; 64] =
            key_pair.sign(&manifest_message(&key.name, 9, "customer=cus_2", &seqs)).as_ref().try_into().unwrap();
        let mut file = vec![header(&note, "customer=cus_2", &seqs, &signature)];
        for i in pick {
            file.push(line(&c[i].0, &c[i].1, &merkle::inclusion_proof(&leaves, i)));
        }
        let text = file.join("\n");
        assert!(is_bundle(text.as_bytes()));
        assert_eq!(
            verify(text.as_bytes(), &key),
            Ok(BundleVerified { records: 3, checkpoint_size: 9, complete: true })
        );
        // L7: a record dropped, repeated or added, or the filter changed, fails.
        let dropped = [file[0].as_str(), file[1].as_str(), file[3].as_str()].join("\n");
        assert_eq!(verify(dropped.as_bytes(), &key), Err(VerifyError::Incomplete));
        let repeated = [text.as_str(), file[2].as_str()].join("\n");
        assert_eq!(verify(repeated.as_bytes(), &key), Err(VerifyError::Incomplete));
        let added = [text.clone(), line(&c[0].0, &c[0].1, &merkle::inclusion_proof(&leaves, 0))].join("\n");
        assert_eq!(verify(added.as_bytes(), &key), Err(VerifyError::Incomplete));
        let refiltered = text.replacen("customer=cus_2", "customer=cus_9", 1);
        assert!(matches!(verify(refiltered.as_bytes(), &key), Err(VerifyError::ManifestSignature(_))));
        let relisted = text.replacen("[3,6,9]", "[3,9]", 1);
        assert!(matches!(verify(relisted.as_bytes(), &key), Err(VerifyError::ManifestSignature(_))));
        // A bundle from before the signed list still checks record by record, and says so.
        let old_head =
            json!({"throughline_audit_bundle": 1, "checkpoint": note, "filter": "customer=cus_2"}).to_string();
        let old = [old_head.as_str(), file[1].as_str()].join("\n");
        assert_eq!(
            verify(old.as_bytes(), &key),
            Ok(BundleVerified { records: 1, checkpoint_size: 9, complete: false })
        );
        let altered = text.replace("\"patient.view\"", "\"patient.search\"");
        assert!(matches!(verify(altered.as_bytes(), &key), Err(VerifyError::Chain(_))));
        // A record re-hashed after changing it no longer proves into the tree.
        let mut forged = c[5].0.clone();
        forged.actor = "stf_2".into();
        let f = line(&forged, &forged.hash_hex(), &merkle::inclusion_proof(&leaves, 5));
        let text2 = [old_head, f].join("\n");
        assert!(matches!(verify(text2.as_bytes(), &key), Err(VerifyError::Rewritten { .. })));
    }
}
