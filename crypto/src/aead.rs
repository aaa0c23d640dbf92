//! AES-256-GCM sealing (ring) with random 96-bit nonces.
//!
//! Sealed layout: `nonce (12) || ciphertext || tag (16)`. Every seal names its
//! associated data (what the ciphertext is, and whose), so a ciphertext moved
//! to another row, patient or tenant fails to open.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{CryptoError, Key256, rand};

/// An AES-256-GCM key ready to seal and open.
pub struct Aead {
    key: LessSafeKey,
}

impl Aead {
    pub fn new(key: &Key256) -> Self {
        // AES_256_GCM takes exactly 32 bytes, which a Key256 always has.
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose_secret())
            .unwrap_or_else(|_| unreachable!("a Key256 is 32 bytes, AES-256 takes 32"));
        Aead { key: LessSafeKey::new(unbound) }
    }

    /// Encrypts and authenticates `plaintext`, binding `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random_bytes()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Decrypt)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Authenticates and decrypts what [`Aead::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self.key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| CryptoError::Decrypt)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

impl fmt::Debug for Aead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Aead([REDACTED])")
    }
}

/// One patient's data key. Everything about the patient that is PHI is sealed
/// under it; destroying its wrapped form shreds every copy of that data.
#[derive(Debug)]
pub struct DataKey(pub(crate) Aead);

impl DataKey {
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.0.seal(aad, plaintext)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0.open(aad, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aead() -> Aead {
        Aead::new(&Key256::generate().unwrap())
    }

    #[test]
    fn round_trip() {
        let a = aead();
        let sealed = a.seal(b"ctx", b"Tuesday 2 PM").unwrap();
        assert_eq!(&a.open(b"ctx", &sealed).unwrap()[..], b"Tuesday 2 PM");
    }

    #[test]
    fn nonces_are_fresh() {
        let a = aead();
        assert_ne!(a.seal(b"", b"x").unwrap(), a.seal(b"", b"x").unwrap());
    }

    #[test]
    fn every_flipped_bit_and_wrong_context_fails() {
        let a = aead();
        let sealed = a.seal(b"ctx", b"secret").unwrap();
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(a.open(b"ctx", &bad).is_err(), "bit {i}");
        }
        assert!(a.open(b"other", &sealed).is_err());
        assert!(aead().open(b"ctx", &sealed).is_err());
        assert!(a.open(b"ctx", &sealed[..sealed.len() - 1]).is_err());
        assert!(a.open(b"ctx", &[]).is_err());
    }
}
