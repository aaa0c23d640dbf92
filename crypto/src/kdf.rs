//! The master key: argon2id over the operator's passphrase.
//!
//! The parameters and salt are stored in the keyring beside the wrapped keys,
//! so an installation can raise them later (re-wrap under a new derivation)
//! without losing data. Derivation runs once per process, at unlock; nothing
//! on a request path derives keys. [`derivations`] counts them so tests can
//! prove it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{CryptoError, Key256, rand};

static DERIVATIONS: AtomicU64 = AtomicU64::new(0);

/// How many argon2id derivations this process has run.
pub fn derivations() -> u64 {
    DERIVATIONS.load(Ordering::Relaxed)
}

/// Lowest accepted memory cost (OWASP's argon2id floor, 19 MiB).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// Lowest accepted iteration count.
pub const MIN_ITERATIONS: u32 = 2;

/// argon2id parameters as stored in the keyring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    pub version: u32,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// 16 random bytes, base64.
    pub salt: String,
}

impl KdfParams {
    /// The default: argon2id v1.3, 64 MiB, 3 passes, 1 lane, a fresh salt.
    pub fn recommended() -> Result<Self, CryptoError> {
        Self::new(64 * 1024, 3, 1)
    }

    /// Parameters with a fresh random salt; rejects costs below the floor.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, CryptoError> {
        use base64::Engine as _;
        let salt: [u8; 16] = rand::random_bytes()?;
        let params = KdfParams {
            algorithm: "argon2id".into(),
            version: 0x13,
            memory_kib,
            iterations,
            parallelism,
            salt: base64::engine::general_purpose::STANDARD.encode(salt),
        };
        params.argon2()?;
        Ok(params)
    }

    fn argon2(&self) -> Result<(Argon2<'static>, Vec<u8>), CryptoError> {
        use base64::Engine as _;
        if self.algorithm != "argon2id" || self.version != 0x13 {
            return Err(CryptoError::KdfParams(format!(
                "unsupported algorithm {} version {}",
                self.algorithm, self.version
            )));
        }
        if self.memory_kib < MIN_MEMORY_KIB || self.iterations < MIN_ITERATIONS {
            return Err(CryptoError::KdfParams(format!(
                "memory {} KiB / {} iterations is below the floor of {} KiB / {}",
                self.memory_kib, self.iterations, MIN_MEMORY_KIB, MIN_ITERATIONS
            )));
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(&self.salt)
            .map_err(|_| CryptoError::KdfParams("salt is not base64".into()))?;
        if salt.len() < 16 {
            return Err(CryptoError::KdfParams("salt is shorter than 16 bytes".into()));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        Ok((Argon2::new(Algorithm::Argon2id, Version::V0x13, params), salt))
    }
}

/// The key every other key is wrapped under. Derived, never stored.
pub struct MasterKey(pub(crate) Key256);

impl MasterKey {
    /// Runs argon2id. Slow on purpose (about 0.1–0.5 s): call once per process.
    pub fn derive(passphrase: &SecretString, params: &KdfParams) -> Result<Self, CryptoError> {
        let (argon2, salt) = params.argon2()?;
        let mut failed = None;
        let key = Key256::init_with(|out| {
            if let Err(e) = argon2.hash_password_into(passphrase.expose_secret().as_bytes(), &salt, out) {
                failed = Some(e);
            }
        });
        DERIVATIONS.fetch_add(1, Ordering::Relaxed);
        match failed {
            None => Ok(MasterKey(key)),
            Some(e) => Err(CryptoError::KdfParams(e.to_string())),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn same_passphrase_and_salt_same_key_else_different() {
        let p = KdfParams::new(MIN_MEMORY_KIB, 2, 1).unwrap();
        let a = MasterKey::derive(&pass("correct horse"), &p).unwrap();
        let b = MasterKey::derive(&pass("correct horse"), &p).unwrap();
        let c = MasterKey::derive(&pass("correct horsf"), &p).unwrap();
        let other_salt = KdfParams::new(MIN_MEMORY_KIB, 2, 1).unwrap();
        let d = MasterKey::derive(&pass("correct horse"), &other_salt).unwrap();
        assert_eq!(a.0.expose_secret(), b.0.expose_secret());
        assert_ne!(a.0.expose_secret(), c.0.expose_secret());
        assert_ne!(a.0.expose_secret(), d.0.expose_secret());
        assert_eq!(format!("{a:?}"), "MasterKey([REDACTED])");
    }

    #[test]
    fn weak_or_unknown_parameters_are_refused() {
        assert!(KdfParams::new(1024, 3, 1).is_err());
        assert!(KdfParams::new(MIN_MEMORY_KIB, 1, 1).is_err());
        let mut p = KdfParams::new(MIN_MEMORY_KIB, 2, 1).unwrap();
        p.algorithm = "scrypt".into();
        assert!(MasterKey::derive(&pass("x"), &p).is_err());
    }

    #[test]
    fn derivations_are_counted() {
        let before = derivations();
        let p = KdfParams::new(MIN_MEMORY_KIB, 2, 1).unwrap();
        MasterKey::derive(&pass("x"), &p).unwrap();
        assert!(derivations() > before);
    }
}
