//! Throughline's key hierarchy and the primitives built on it.
//!
//! ```text
//! passphrase --argon2id--> MasterKey (never stored)
//!   MasterKey --AES-256-GCM wraps--> system key, tenant root keys (keyring.json)
//!   tenant root --HKDF-SHA256--> store key (SQLCipher raw key), blind-index key,
//!                                 token key, patient-key wrapping key, Ed25519 seed
//!   patient-key wrapping key --wraps--> one DataKey per patient (crypto-shredding)
//! ```
//!
//! This crate does no I/O except reading and writing the keyring file, never
//! logs, and never hands out key bytes except through `expose_secret`-style
//! accessors whose callers are the store opener and tests.
#![forbid(unsafe_code)]

mod aead;
mod error;
pub mod kdf;
pub mod keyring;
mod rand;
mod secret;
mod tenant;

pub use aead::{Aead, DataKey};
pub use error::CryptoError;
pub use kdf::{KdfParams, MasterKey};
pub use keyring::{Keyring, UnlockedKeyring};
pub use rand::random_bytes;
pub use secret::Key256;
pub use tenant::{BlindIndex, TenantKeys};
