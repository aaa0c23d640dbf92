//! Tamper-evident audit records.
//!
//! Each record names who did what to which pseudonymous patient, when, from
//! where and with what outcome, and carries the hash of the record before it,
//! so a verifier names the first record that was changed, dropped or
//! reordered. Records never hold PHI: erasure never has to touch the chain.
//! This crate does no I/O; `store` stores the records in the same SQLite
//! transaction as the change or read they describe.
#![forbid(unsafe_code)]

mod action;
pub mod bundle;
mod chain;
pub mod checkpoint;
pub mod export;
pub mod fhir;
pub mod merkle;
mod record;

pub use action::Action;
pub use chain::{ChainError, GENESIS, verify_chain};
pub use checkpoint::{Checkpoint, CheckpointError, VerifierKey};
pub use record::{ActorKind, Outcome, Record};
