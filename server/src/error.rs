//! The library's error type. Messages are one line for an operator and never
//! carry PHI or key material.

use std::path::PathBuf;

use store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("tenant '{name}' already exists; nothing was changed")]
    TenantExists { name: String },
    #[error("no tenant named '{name}'")]
    TenantNotFound { name: String },
    #[error("cluster: {message}")]
    Cluster { message: String },
    #[error("this node does not own tenant {id} now (cluster mode)")]
    NotServedHere { id: String },
    #[error("the system store belongs to installation {found}, the keyring to {expected}")]
    InstallationMismatch { expected: String, found: String },
    #[error(
        "{}: a restore did not finish (its erasures may not be re-applied); restore again into an empty directory",
        path.display()
    )]
    RestoreIncomplete { path: PathBuf },
    #[error(
        "{} was last opened by Throughline {build} (schema {schema}), newer than this build {} (schema {ours}): \
         run that build or a later one; an older build cannot read what a newer one wrote (docs/UPGRADING.md)",
        path.display(),
        env!("CARGO_PKG_VERSION")
    )]
    DataDirTooNew { path: PathBuf, build: String, schema: String, ours: String },
    #[error("benchmark seeding produced an invalid phone number at index {index}")]
    BenchSeed { index: u64 },
    #[error("benchmark: {message}")]
    Bench { message: String },
    #[error("audit trail: {reason}")]
    AuditInconsistent { reason: String },
    #[error("backup is damaged or was tampered with: {reason}; nothing was restored")]
    BackupDamaged { reason: String },
    #[error("restore target {} is not empty; restore only into an empty or new directory", path.display())]
    RestoreTargetNotEmpty { path: PathBuf },
    #[error("ledger file, line {line}: expected {{\"tenant_id\": \"ten_…\", \"customer_id\": \"cus_…\"}}")]
    LedgerFile { line: usize },
    #[error("no such patient (or already erased without a receipt)")]
    CustomerNotFound,
    #[error("staff: {message}")]
    Staff { message: String },
    #[error("a passphrase rotation did not finish: open with the NEW passphrase to complete it")]
    RotationUnfinished,
    #[error("a passphrase rotation stopped before it took effect: open with the OLD passphrase")]
    RotationAbandoned,
    #[error(transparent)]
    Group(#[from] crate::group_commit::GroupError),
    #[error("an internal lock was poisoned by an earlier panic")]
    Poisoned,
    #[error("this installation has no CA (initialised by an older version?)")]
    NoCa,
    #[error("certificate validity of {days} days is out of range: use 1 to {max}")]
    CertValidity { days: u32, max: u32 },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}
