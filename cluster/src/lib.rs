//! The cluster shell (issue 22, docs/HA.md): the commit log in PostgreSQL
//! ([`commit_log`]) and tenant ownership in etcd ([`ownership`]). The
//! records it carries are the `replication` crate's, already authenticated
//! and holding only ciphertext pages: PostgreSQL is trusted for durability
//! and the epoch check, etcd for liveness and who owns what, neither with a
//! key.

pub mod commit_log;
pub mod ownership;

pub use commit_log::{Appended, CommitLog, LogError, Revocation, RevocationKind, Snapshot};
pub use ownership::{Liveness, Owner, Ownership, OwnershipError};
