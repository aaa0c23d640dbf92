//! The part of cross-box durability Throughline itself adds (issue 22):
//! everything else (consensus, the durable log, routing) is etcd,
//! PostgreSQL and HAProxy. Small on purpose, and tested to destruction.
//!
//! - [`wal`]: SQLite's write-ahead log read as SQLite reads it (header and
//!   frame checksums, salts, commit frames), yielding each committed
//!   transaction's page images. Under SQLCipher the images are ciphertext:
//!   nothing here ever holds a key or sees plaintext.
//! - [`record`]: a commit record (tenant, epoch, sequence, the database's
//!   size, the page images, the database checksum before and after) with a
//!   binary encoding authenticated by HMAC-SHA256 under a per-tenant log key.
//! - [`checksum`]: the database checksum, the XOR of every page's SHA-256
//!   (truncated) with its page number, so one page change updates it in O(1).
//! - [`capture`] on the owner and [`replica`] on a standby: records in
//!   strict sequence, each checked against the checksum chain before a
//!   byte is written, the replica refused (never patched) when it diverges.

pub mod capture;
pub mod checksum;
pub mod record;
pub mod replica;
pub mod wal;

pub use capture::Capture;
pub use checksum::Checksum;
pub use record::{CommitRecord, LogKey};
pub use replica::Replica;

/// Why a WAL, a record or a replica was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    #[error("the write-ahead log header is not valid: {0}")]
    BadWalHeader(&'static str),
    #[error("the write-ahead log was restarted (new salts): capture again from its start")]
    WalRestarted,
    #[error("the commit record is malformed: {0}")]
    Malformed(&'static str),
    #[error("the commit record's authentication tag does not verify")]
    BadTag,
    #[error("record {got} arrived where {want} was expected")]
    OutOfSequence { want: u64, got: u64 },
    #[error("the record is for epoch {got}, older than {have} already applied")]
    StaleEpoch { have: u64, got: u64 },
    #[error("the replica's checksum {have:016x} is not the record's starting point {want:016x}: the replica diverged")]
    Diverged { have: u64, want: u64 },
    #[error("after applying, the checksum is {got:016x}, not the record's {want:016x}")]
    BadResult { want: u64, got: u64 },
    #[error("page size {0} is not one SQLite writes")]
    PageSize(u32),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
