//! The encrypted stores: SQLCipher files, their schema migrations, the
//! tenant and system stores, the audit append, the data directory and the
//! identifiers. Only this crate writes SQL; it never formats for people,
//! never reads the clock (callers pass `now`) and never imports tokio.
//!
//! Every store is a SQLCipher file opened with a raw 256-bit key (no PBKDF2
//! per connection) by [`open::open_encrypted`], which refuses plain SQLite and
//! wrong keys at open time.

mod audit_log;
mod bench_raw;
pub mod datadir;
pub mod datadir_schema;
mod erasure;
pub mod ids;
mod open;
mod patient_export;
mod patient_export_channels;
mod snapshot;
mod system;
mod system_ca;
mod system_email;
mod system_idp;
mod system_rotation;
mod system_server;
mod system_staff;
mod tenant;
mod tenant_audit_search;
mod tenant_audit_state;
mod tenant_channels;
mod tenant_console;
mod tenant_content;
mod tenant_conversations;
mod tenant_files;
mod tenant_held;
mod tenant_hook;
mod tenant_identity;
mod tenant_outcomes;
mod tenant_patients;
mod tenant_rekey;
mod tenant_requests;
mod tenant_sessions;
mod tenant_tx;

use std::path::PathBuf;

pub use audit_log::{AuditEntry, StaffFields, appended as audit_appended};
pub use bench_raw::RawOpen;
pub use erasure::Erased;
pub use open::{
    PageHmac, cipher_version, new_store_hmac, open_encrypted, open_encrypted_as, page_hmac, set_new_store_hmac,
};
pub use patient_export::{ConversationExport, IdentifierExport};
pub use patient_export_channels::{AppointmentExport, AttachmentExport, CallbackExport};
pub use system::{CertRow, NewCert, Revocation, SystemStore, TenantRow};
pub use system_ca::{NewCa, RetiredCa};
pub use system_email::{EmailSettingsRow, SmtpRow};
pub use system_idp::{AccessReview, IdpRow};
pub use system_server::ServerIdentityRow;
pub use system_staff::{BreakGlassRow, NewStaff, StaffRow, StaffSecrets, StaffSessionRow};
pub use tenant::{Countable, CustomerDisplay, IdentifierKind, LinkRow, TenantStore};
pub use tenant_audit_search::AuditFilter;
pub use tenant_audit_state::{Integrity, SignedCheckpoint};
pub use tenant_channels::{AppointmentRow, ClaimedCallback, NewAppointment, NewCallback};
pub use tenant_console::{ConsoleTurn, QueueItem, normalise_name};
pub use tenant_content::TurnView;
pub use tenant_held::HeldRow;
pub use tenant_hook::Wal;
pub use tenant_identity::{Challenge, FailureWindow, Subject};
pub use tenant_outcomes::{AppointmentOutcomeRow, CallbackOutcomeRow, OutcomeRows, SessionOutcomeRow};
pub use tenant_rekey::Rekeyed;
pub use tenant_requests::{RightsRequest, receipt_id, rights_due};
pub use tenant_tx::{SessionRow, TenantTx};

/// Why a store operation failed. Messages carry paths, codes and SQLite's own
/// message (which never holds PHI: PHI is bound as encrypted parameters).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{}: SQLCipher is not active (this build fell back to plain SQLite); refusing to store PHI", path.display())]
    NotSqlCipher { path: PathBuf },
    #[error("{} does not open with this key: wrong key, or the file belongs to another tenant or installation", path.display())]
    WrongKey { path: PathBuf },
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{} already exists", path.display())]
    Exists { path: PathBuf },
    #[error("{} belongs to tenant {found}, expected {expected}", path.display())]
    TenantMismatch { path: PathBuf, expected: String, found: String },
    #[error("schema migration of {}: {source}", path.display())]
    Migration { path: PathBuf, source: rusqlite_migration::Error },
    #[error(
        "{} has schema {found}, written by a newer Throughline; this build knows up to schema {known}: \
         run that build or a later one (docs/UPGRADING.md)",
        path.display()
    )]
    SchemaTooNew { path: PathBuf, found: i64, known: i64 },
    #[error("policy does not release {class} data here (a caller bug: check the decision first)")]
    PolicyDenied { class: policy::PhiClass },
    #[error("snapshot failed its integrity check: {reason}")]
    Snapshot { reason: String },
    #[error("stored {what} failed to decrypt")]
    Decrypt { what: &'static str },
    #[error("audit chain of {}: {source}", path.display())]
    AuditChain { path: PathBuf, source: audit::ChainError },
    #[error("the write-ahead log could not be truncated: another reader holds the store")]
    CheckpointBusy,
    #[error("audit trail: {reason}")]
    AuditInconsistent { reason: String },
    #[error("committed here but not made durable on the cluster's log ({0}); not acknowledged")]
    NotReplicated(String),
    #[error("data directory {} does not exist (run `throughline init --data-dir {}` first)", path.display(), path.display())]
    DataDirMissing { path: PathBuf },
    #[error("data directory {} is not initialised: {} is missing (run `throughline init`)", dir.display(), missing.display())]
    NotInitialised { dir: PathBuf, missing: PathBuf },
    #[error("data directory {} is already initialised ({} exists); nothing was changed", dir.display(), found.display())]
    AlreadyInitialised { dir: PathBuf, found: PathBuf },
    #[error("data directory {} is in use by another throughline process", path.display())]
    Locked { path: PathBuf },
    #[error("a server is running on {}: stop it first (`systemctl stop throughline`)", path.display())]
    Serving { path: PathBuf },
    #[error("tenant name \"{name}\" is invalid: use 1 to 63 lowercase letters, digits and inner hyphens")]
    InvalidTenantName { name: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Runs after every commit of a tenant store in cluster mode (and before
/// every checkpoint and at close): ships what was committed to the
/// cluster's log and returns only once it is durable there, or why not.
/// An error means the commit must not be acknowledged.
pub trait CommitHook: Send {
    /// `wal` is the store's write-ahead log, to read what was committed.
    fn committed(&mut self, wal: &Wal) -> Result<CommitShipped, String>;
}

/// What a [`CommitHook`] shipped, and whether the log asks for a checkpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommitShipped {
    /// The write-ahead log is past its bound: checkpoint it now (its
    /// frames are all shipped).
    pub checkpoint: bool,
}

impl StoreError {
    /// SQLite reported a full disk (`SQLITE_FULL`): the transaction was
    /// rolled back and nothing was applied.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull)
    }
}
