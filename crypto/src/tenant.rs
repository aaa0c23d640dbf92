//! A tenant's working keys, all derived (HKDF-SHA256) from its one random root
//! key, so the keyring wraps a single secret per tenant. Derived once when the
//! tenant is opened; nothing here runs per request except the HMAC, AES and
//! Ed25519 operations themselves.

use std::fmt;

use ring::{hkdf, hmac, signature};
use signature::KeyPair as _;

use crate::{Aead, CryptoError, DataKey, Key256};

const HKDF_SALT: &[u8] = b"throughline/tenant-keys/v1";

/// The keys of one tenant.
pub struct TenantKeys {
    tenant_id: String,
    store: Key256,
    blind: hmac::Key,
    token: hmac::Key,
    patient_kek: Aead,
    pending: Aead,
    signing: signature::Ed25519KeyPair,
    log: Key256,
}

/// HMAC-SHA256 of a normalised identifier under the tenant's blind-index key:
/// look-ups work, and the stored bytes say nothing of the identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({})", hex::encode(&self.0[..8]))
    }
}

impl TenantKeys {
    /// Derives every working key of `tenant_id` from its root key.
    pub fn derive(tenant_id: &str, root: &Key256) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(root.expose_secret());
        let sub = |label: &[u8]| -> Key256 {
            let info = [label, b"/", tenant_id.as_bytes()];
            Key256::init_with(|out| {
                // Expanding 32 bytes from SHA-256 HKDF cannot fail (limit is 255 * 32).
                if let Ok(okm) = prk.expand(&info, hkdf::HKDF_SHA256) {
                    let _ = okm.fill(out);
                }
            })
        };
        let seed = sub(b"audit-ed25519-seed");
        let signing = signature::Ed25519KeyPair::from_seed_unchecked(seed.expose_secret())
            .unwrap_or_else(|_| unreachable!("any 32 bytes are a valid Ed25519 seed"));
        TenantKeys {
            tenant_id: tenant_id.to_owned(),
            store: sub(b"sqlcipher-store"),
            blind: hmac::Key::new(hmac::HMAC_SHA256, sub(b"blind-index").expose_secret()),
            token: hmac::Key::new(hmac::HMAC_SHA256, sub(b"resume-token").expose_secret()),
            patient_kek: Aead::new(&sub(b"patient-key-wrap")),
            pending: Aead::new(&sub(b"pending-identifier")),
            signing,
            log: sub(b"commit-log-hmac"),
        }
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The key authenticating the tenant's commit records in a cluster's
    /// log (HMAC-SHA256; the records hold only ciphertext pages).
    pub fn log_key(&self) -> &Key256 {
        &self.log
    }

    /// The raw SQLCipher key of the tenant's store.
    pub fn store_key(&self) -> &Key256 {
        &self.store
    }

    /// Blind index of an identifier already normalised by its type.
    pub fn blind_index(&self, kind: &str, normalised: &str) -> BlindIndex {
        let mut ctx = hmac::Context::with_key(&self.blind);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(normalised.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        BlindIndex(out)
    }

    /// A fresh data key for a new patient, and its wrapped form to store.
    pub fn new_data_key(&self, customer_id: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let key = Key256::generate()?;
        let wrapped = self.patient_kek.seal(&wrap_aad(customer_id), key.expose_secret())?;
        Ok((DataKey(Aead::new(&key)), wrapped))
    }

    /// Unwraps a patient's data key; fails if it was wrapped for anyone else.
    pub fn open_data_key(&self, customer_id: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let bytes = self.patient_kek.open(&wrap_aad(customer_id), wrapped)?;
        let key = Key256::from_slice(&bytes).ok_or(CryptoError::Decrypt)?;
        Ok(DataKey(Aead::new(&key)))
    }

    /// A patient's data key unwrapped with these keys and wrapped with `next`'s
    /// (tenant key rotation: the data key, and so what it sealed, is unchanged).
    pub fn rewrap_data_key(
        &self,
        customer_id: &str,
        wrapped: &[u8],
        next: &TenantKeys,
    ) -> Result<Vec<u8>, CryptoError> {
        let bytes = self.patient_kek.open(&wrap_aad(customer_id), wrapped)?;
        next.patient_kek.seal(&wrap_aad(customer_id), &bytes)
    }

    /// A value sealed by [`Self::seal_pending`] opened and sealed again under `next`'s key.
    pub fn reseal_pending(&self, aad: &[u8], sealed: &[u8], next: &TenantKeys) -> Result<Vec<u8>, CryptoError> {
        let bytes = self.pending.open(aad, sealed)?;
        next.pending.seal(aad, &bytes)
    }

    /// Seals an identifier offered in a session whose patient is not yet
    /// confirmed (linked, and re-sealed under the patient's key, on confirmation).
    pub fn seal_pending(&self, aad: &[u8], value: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.pending.seal(aad, value)
    }

    pub fn open_pending(&self, aad: &[u8], sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        self.pending.open(aad, sealed)
    }

    /// HMAC tag for a resume token's payload.
    pub fn token_tag(&self, payload: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.token, payload).as_ref());
        out
    }

    /// Constant-time check of a resume token's tag.
    pub fn token_tag_is_valid(&self, payload: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.token, payload, tag).is_ok()
    }

    /// Ed25519 signature (audit checkpoints, receipts).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.signing.sign(message).as_ref());
        out
    }

    /// The Ed25519 public key that verifies [`TenantKeys::sign`].
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.signing.public_key().as_ref());
        out
    }
}

fn wrap_aad(customer_id: &str) -> Vec<u8> {
    [b"patient-data-key/".as_slice(), customer_id.as_bytes()].concat()
}

impl fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKeys").field("tenant_id", &self.tenant_id).field("keys", &"[REDACTED]").finish()
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ED25519, UnparsedPublicKey};

    use super::*;

    fn keys(id: &str, root: &Key256) -> TenantKeys {
        TenantKeys::derive(id, root)
    }

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let root = Key256::generate().unwrap();
        let a = keys("t1", &root);
        let b = keys("t1", &root);
        let other = keys("t2", &root);
        assert_eq!(a.store_key().expose_secret(), b.store_key().expose_secret());
        assert_ne!(a.store_key().expose_secret(), other.store_key().expose_secret());
        assert_eq!(a.blind_index("phone", "+14155550100"), b.blind_index("phone", "+14155550100"));
        assert_ne!(a.blind_index("phone", "+14155550100"), other.blind_index("phone", "+14155550100"));
        assert_ne!(a.blind_index("phone", "x"), a.blind_index("email", "x"));
        assert_eq!(a.public_key(), b.public_key());
    }

    #[test]
    fn data_keys_are_bound_to_their_patient() {
        let t = keys("t1", &Key256::generate().unwrap());
        let (dk, wrapped) = t.new_data_key("cus_1").unwrap();
        let sealed = dk.seal(b"name", b"Maria Lopez").unwrap();
        let again = t.open_data_key("cus_1", &wrapped).unwrap();
        assert_eq!(&again.open(b"name", &sealed).unwrap()[..], b"Maria Lopez");
        assert!(t.open_data_key("cus_2", &wrapped).is_err());
        let other_tenant = keys("t2", &Key256::generate().unwrap());
        assert!(other_tenant.open_data_key("cus_1", &wrapped).is_err());
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        let t = keys("t1", &Key256::generate().unwrap());
        let sig = t.sign(b"checkpoint");
        let pk = UnparsedPublicKey::new(&ED25519, t.public_key());
        assert!(pk.verify(b"checkpoint", &sig).is_ok());
        assert!(pk.verify(b"checkpoinT", &sig).is_err());
    }

    #[test]
    fn token_tags_verify_only_unchanged() {
        let t = keys("t1", &Key256::generate().unwrap());
        let tag = t.token_tag(b"payload");
        assert!(t.token_tag_is_valid(b"payload", &tag));
        assert!(!t.token_tag_is_valid(b"payloaD", &tag));
        assert!(!format!("{t:?}").contains(&hex::encode(t.store_key().expose_secret())));
    }
}
