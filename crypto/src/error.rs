//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong with keys. Messages are for operators: they
/// name files and causes, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("keyring {path} is damaged (checksum mismatch): restore it from a backup")]
    KeyringDamaged { path: PathBuf },
    #[error("keyring {path} is truncated or not a Throughline keyring: {reason}")]
    KeyringUnreadable { path: PathBuf, reason: String },
    #[error("keyring {path} has format version {found}, this build reads version {supported}")]
    KeyringVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("keyring entry '{entry}' does not decrypt under this master key: the keyring was altered")]
    KeyringTampered { entry: String },
    #[error("keyring {path} already exists")]
    KeyringExists { path: PathBuf },
    #[error("keyring has no key for tenant {tenant_id}")]
    UnknownTenant { tenant_id: String },
    #[error("key derivation parameters rejected: {0}")]
    KdfParams(String),
    #[error("decryption failed: wrong key or altered ciphertext")]
    Decrypt,
    #[error("the system random number generator failed")]
    Rng,
    #[error("key file I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}
