//! Signed checkpoints: a tree head (origin, size, root) in the C2SP
//! tlog-checkpoint format, signed with the tenant's Ed25519 key as a C2SP
//! signed note, verifiable offline with the tenant's verifier key
//! (`<name>+<key id hex>+<base64(0x01 || public key)>`).
//!
//! ```text
//! throughline.local/ten_…          <- origin
//! 42                               <- tree size
//! 3q2+7w…=                         <- base64 root hash
//!
//! — throughline.local/ten_… <base64(key id || signature)>
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The extension line of a handover checkpoint.
const NEXT_KEY: &str = "throughline-next-key";

/// Why a checkpoint note was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("checkpoint note is malformed: {0}")]
    Malformed(&'static str),
    #[error("checkpoint is not signed by key {0}")]
    NoSignature(String),
    #[error("checkpoint signature does not verify")]
    BadSignature,
    #[error("verifier key is malformed")]
    BadKey,
}

/// A tree head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// A public key that verifies a tenant's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub public_key: [u8; 32],
}

impl VerifierKey {
    pub fn id(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update(b"\n");
        h.update([0x01]);
        h.update(self.public_key);
        let d = h.finalize();
        [d[0], d[1], d[2], d[3]]
    }

    /// `<name>+<key id hex>+<base64(0x01 || key)>`
    pub fn encode(&self) -> String {
        let mut raw = vec![0x01];
        raw.extend_from_slice(&self.public_key);
        format!("{}+{}+{}", self.name, hex::encode(self.id()), B64.encode(raw))
    }

    pub fn parse(s: &str) -> Result<Self, CheckpointError> {
        // Names never contain '+'; base64 may, so split from the left.
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CheckpointError::BadKey);
        };
        let raw = B64.decode(key).map_err(|_| CheckpointError::BadKey)?;
        let [0x01, rest @ ..] = raw.as_slice() else { return Err(CheckpointError::BadKey) };
        let public_key: [u8; 32] = rest.try_into().map_err(|_| CheckpointError::BadKey)?;
        let vk = VerifierKey { name: name.to_owned(), public_key };
        if hex::encode(vk.id()) != id {
            return Err(CheckpointError::BadKey);
        }
        Ok(vk)
    }
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// The signed note; `sign` is the tenant's Ed25519 signer.
    pub fn sign(&self, key: &VerifierKey, sign: impl FnOnce(&[u8]) -> [u8; 64]) -> String {
        let body = self.body();
        let signature = sign(body.as_bytes());
        let mut blob = key.id().to_vec();
        blob.extend_from_slice(&signature);
        format!("{body}\n\u{2014} {} {}\n", key.name, B64.encode(blob))
    }

    /// The handover checkpoint of a tenant key rotation: the body names the
    /// next key in an extension line (`throughline-next-key <key>`) and is
    /// signed by the old key and by the new, so a verifier holding the old
    /// key learns the new one from a note the old key signed.
    pub fn sign_handover(
        &self,
        old: &VerifierKey,
        old_sign: impl FnOnce(&[u8]) -> [u8; 64],
        new: &VerifierKey,
        new_sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> String {
        let body = format!("{}{NEXT_KEY} {}\n", self.body(), new.encode());
        let line = |key: &VerifierKey, signature: [u8; 64]| {
            let mut blob = key.id().to_vec();
            blob.extend_from_slice(&signature);
            format!("\u{2014} {} {}\n", key.name, B64.encode(blob))
        };
        let (a, b) = (line(new, new_sign(body.as_bytes())), line(old, old_sign(body.as_bytes())));
        format!("{body}\n{a}{b}")
    }

    /// The next key a handover note names, once `key` verified the note.
    pub fn next_key(note: &str, key: &VerifierKey) -> Result<Option<VerifierKey>, CheckpointError> {
        Self::verify(note, key)?;
        let body = note.split_once("\n\n").map_or("", |(b, _)| b);
        match body.lines().nth(3).and_then(|l| l.strip_prefix(NEXT_KEY)) {
            Some(k) => Ok(Some(VerifierKey::parse(k.trim())?)),
            None => Ok(None),
        }
    }

    /// Parses a signed note and verifies its signature by `key`.
    pub fn verify(note: &str, key: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
        let (body, sigs) =
            note.split_once("\n\n").ok_or(CheckpointError::Malformed("no blank line before the signatures"))?;
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(CheckpointError::Malformed("no origin"))?;
        // A key signs its own log only: the origin is the key's name (L13).
        if origin != key.name {
            return Err(CheckpointError::Malformed("the origin is not the verifier key's log"));
        }
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CheckpointError::Malformed("size is not a number"))?;
        let root_b64 = lines.next().ok_or(CheckpointError::Malformed("no root hash"))?;
        let root: Hash = B64
            .decode(root_b64)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Malformed("root hash is not 32 bytes of base64"))?;
        let id = key.id();
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else { continue };
            let Some((name, blob)) = rest.rsplit_once(' ') else { continue };
            let Ok(blob) = B64.decode(blob) else { continue };
            if name != key.name || blob.len() != 68 || blob[..4] != id {
                continue;
            }
            return UnparsedPublicKey::new(&ED25519, key.public_key)
                .verify(body.as_bytes(), &blob[4..])
                .map(|()| Checkpoint { origin: origin.to_owned(), size, root })
                .map_err(|_| CheckpointError::BadSignature);
        }
        Err(CheckpointError::NoSignature(key.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    use super::*;

    fn signer() -> (Ed25519KeyPair, VerifierKey) {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        // (Seeds below are fixed so the test is repeatable; key ids and
        // base64 forms with '+' in them are covered by `keys_round_trip`.)
        let mut pk = [0u8; 32];
        pk.copy_from_slice(pair.public_key().as_ref());
        (pair, VerifierKey { name: "throughline.local/ten_a".into(), public_key: pk })
    }

    fn sign_with(pair: &Ed25519KeyPair) -> impl FnOnce(&[u8]) -> [u8; 64] + '_ {
        move |m| {
            let mut out = [0u8; 64];
            out.copy_from_slice(pair.sign(m).as_ref());
            out
        }
    }

    #[test]
    fn round_trip_and_key_encoding() {
        let (pair, key) = signer();
        let cp = Checkpoint { origin: key.name.clone(), size: 42, root: [9u8; 32] };
        let note = cp.sign(&key, sign_with(&pair));
        assert!(note.contains("\n\n\u{2014} throughline.local/ten_a "));
        assert_eq!(Checkpoint::verify(&note, &key), Ok(cp));
        assert_eq!(VerifierKey::parse(&key.encode()), Ok(key.clone()));
        let mut bad = key.encode();
        bad.insert(bad.len() - 3, 'A');
        assert!(VerifierKey::parse(&bad).is_err());
    }

    #[test]
    fn a_handover_verifies_under_both_keys_and_names_the_new_one() {
        let (old_pair, old) = signer();
        let new_pair = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        let mut pk = [0u8; 32];
        pk.copy_from_slice(new_pair.public_key().as_ref());
        let new = VerifierKey { name: old.name.clone(), public_key: pk };
        let cp = Checkpoint { origin: old.name.clone(), size: 7, root: [3u8; 32] };
        let note = cp.sign_handover(&old, sign_with(&old_pair), &new, sign_with(&new_pair));
        assert_eq!(Checkpoint::verify(&note, &old), Ok(cp.clone()));
        assert_eq!(Checkpoint::verify(&note, &new), Ok(cp.clone()));
        assert_eq!(Checkpoint::next_key(&note, &old), Ok(Some(new.clone())));
        // The named key is covered by both signatures: naming another breaks them.
        let (_, other) = {
            let p = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).unwrap();
            let mut k = [0u8; 32];
            k.copy_from_slice(p.public_key().as_ref());
            (p, VerifierKey { name: old.name.clone(), public_key: k })
        };
        let forged = note.replace(&new.encode(), &other.encode());
        assert_eq!(Checkpoint::verify(&forged, &old), Err(CheckpointError::BadSignature));
        // An ordinary checkpoint names no next key.
        assert_eq!(Checkpoint::next_key(&cp.sign(&old, sign_with(&old_pair)), &old), Ok(None));
    }

    #[test]
    fn keys_round_trip() {
        for seed in 0u8..64 {
            let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
            let mut pk = [0u8; 32];
            pk.copy_from_slice(pair.public_key().as_ref());
            let key = VerifierKey { name: format!("throughline.local/ten_{seed}"), public_key: pk };
            assert_eq!(VerifierKey::parse(&key.encode()), Ok(key));
        }
    }

    #[test]
    fn every_corruption_fails() {
        let (pair, key) = signer();
        let cp = Checkpoint { origin: key.name.clone(), size: 42, root: [9u8; 32] };
        let note = cp.sign(&key, sign_with(&pair));
        // Any changed character of the body or the signature.
        for (i, ch) in note.char_indices() {
            if ch == '\n' || ch == '\u{2014}' {
                continue;
            }
            let mut bad = note.clone();
            let repl = if ch == 'A' { "B" } else { "A" };
            bad.replace_range(i..i + ch.len_utf8(), repl);
            assert!(Checkpoint::verify(&bad, &key).is_err(), "byte {i} of {note:?}");
        }
        // Another tenant's key, or a note signed by another key.
        let other = VerifierKey { name: "throughline.local/ten_b".into(), ..key.clone() };
        assert!(Checkpoint::verify(&note, &other).is_err());
        let pair_b = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        assert_eq!(Checkpoint::verify(&cp.sign(&key, sign_with(&pair_b)), &key), Err(CheckpointError::BadSignature));
        assert!(Checkpoint::verify("", &key).is_err());
        // A note for another log, signed by this key, is not this log's.
        let elsewhere = Checkpoint { origin: "throughline.local/ten_z".into(), ..cp.clone() };
        assert_eq!(
            Checkpoint::verify(&elsewhere.sign(&key, sign_with(&pair)), &key),
            Err(CheckpointError::Malformed("the origin is not the verifier key's log"))
        );
        assert!(Checkpoint::verify("x\ny\nz\n\n", &key).is_err());
    }
}
