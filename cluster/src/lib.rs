//! The cluster shell (issue 22, docs/HA.md): today the commit log in
//! PostgreSQL ([`commit_log`]); etcd ownership, the standby process and
//! HAProxy routing come next. The records it carries are the
//! `replication` crate's, already authenticated and holding only
//! ciphertext pages: PostgreSQL is trusted for durability and the
//! epoch check, never with a key.

pub mod commit_log;

pub use commit_log::{Appended, CommitLog, LogError, Snapshot};
