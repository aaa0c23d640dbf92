//! The commit log in PostgreSQL: one row per commit record, and one epoch
//! per tenant that decides who may append.
//!
//! ```sql
//! tenant_epoch (tenant PRIMARY KEY, epoch)         -- the fence
//! commit_log   (tenant, seq, epoch, rec bytea, at) -- PRIMARY KEY (tenant, seq)
//! ```
//!
//! - [`CommitLog::claim`] raises a tenant's epoch, never lowers it: a new
//!   owner claims with the epoch etcd gave it (its owner key's revision).
//! - [`CommitLog::append`] writes a batch of records in one transaction that
//!   first takes the tenant's epoch row `FOR SHARE` and checks it is the
//!   writer's: a stale owner's append fails whole ([`LogError::Fenced`]),
//!   and a claim waits for an append in flight, so every append either
//!   committed before the claim (and the new owner reads it) or fails.
//!   A sequence already taken fails whole too ([`LogError::Conflict`]).
//!   It returns only once PostgreSQL has committed: with
//!   `synchronous_commit = on` under Patroni's synchronous mode, on the
//!   standby's disk as well. Only then may the owner acknowledge.
//! - [`CommitLog::since`] reads a tenant's records after a sequence, in
//!   order (catch-up); [`CommitLog::prune`] drops those a snapshot covers.

use tokio_postgres::{Client, NoTls};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenant_epoch (
    tenant TEXT PRIMARY KEY,
    epoch  BIGINT NOT NULL CHECK (epoch > 0)
);
CREATE TABLE IF NOT EXISTS commit_log (
    tenant TEXT NOT NULL,
    seq    BIGINT NOT NULL CHECK (seq > 0),
    epoch  BIGINT NOT NULL,
    rec    BYTEA NOT NULL,
    at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, seq)
);
ALTER TABLE commit_log ALTER COLUMN rec SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS snapshot_heads (
    tenant   TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL,
    epoch    BIGINT NOT NULL,
    chunks   INTEGER NOT NULL,
    checksum BIGINT NOT NULL,
    at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS snapshot_chunks (
    tenant TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    chunk  INTEGER NOT NULL,
    data   BYTEA NOT NULL,
    PRIMARY KEY (tenant, seq, chunk)
);
ALTER TABLE snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS system_revocations (
    kind    TEXT NOT NULL CHECK (kind IN ('certificate', 'staff')),
    subject TEXT NOT NULL,
    revoked BOOLEAN NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
";

/// A revocation every node must apply: a channel certificate (by serial),
/// or a staff account's state (by id: disabled, or enabled again), and when
/// (Unix milliseconds). Nodes' system stores are copies; these rows are how
/// a `cert revoke` or `staff disable` made on one node reaches the others
/// within seconds. A certificate's first revocation is kept for good; a
/// staff account's newest change wins.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Revocation {
    pub kind: RevocationKind,
    pub subject: String,
    /// Revoked (disabled); `false` only for a staff account enabled again.
    pub revoked: bool,
    pub at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    Certificate,
    Staff,
}

impl RevocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Certificate => "certificate",
            RevocationKind::Staff => "staff",
        }
    }
}

/// Snapshot chunks: 1 MiB rows (ciphertext does not compress; TOAST stores them out of line).
const CHUNK: usize = 1 << 20;

/// The newest snapshot of a tenant: the database file (ciphertext) at `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    pub epoch: u64,
    /// The `replication::Checksum` of the image.
    pub checksum: u64,
    pub image: Vec<u8>,
}

/// Why the log refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("tenant {tenant}: epoch {mine} is not the current one ({current:?}): this node no longer owns it")]
    Fenced { tenant: String, mine: u64, current: Option<u64> },
    #[error("tenant {tenant}: sequence {seq} is already in the log")]
    Conflict { tenant: String, seq: u64 },
    #[error("the commit log: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL did not answer in time")]
    Timeout,
    #[error("a sequence or epoch does not fit PostgreSQL's bigint")]
    Range,
    #[error("tenant {tenant}: the snapshot in the log is incomplete")]
    IncompleteSnapshot { tenant: String },
}

/// What an append made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub records: usize,
    pub bytes: usize,
}

/// tokio-postgres says only "db error" for a server's error: its message
/// and code are in the source (never a value: the log holds no PHI anyway).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn big(n: u64) -> Result<i64, LogError> {
    i64::try_from(n).map_err(|_| LogError::Range)
}

/// Takes the tenant's epoch row `FOR SHARE` in `tx` (a claim waits for
/// `tx`) and checks it is `epoch`: otherwise this writer is fenced.
async fn fence(tx: &tokio_postgres::Transaction<'_>, tenant: &str, epoch: u64) -> Result<(), LogError> {
    let current: Option<i64> =
        tx.query_opt("SELECT epoch FROM tenant_epoch WHERE tenant = $1 FOR SHARE", &[&tenant]).await?.map(|r| r.get(0));
    if current == Some(big(epoch)?) {
        Ok(())
    } else {
        Err(LogError::Fenced { tenant: tenant.to_owned(), mine: epoch, current: current.map(|c| c as u64) })
    }
}

/// A connection to the commit log.
pub struct CommitLog {
    client: Client,
    _task: tokio::task::JoinHandle<()>,
}

impl CommitLog {
    /// Connects (a libpq-style `dsn`) and creates the tables if missing.
    /// TLS to a remote PostgreSQL is not wired yet: use a local socket or
    /// a private network (docs/HA.md).
    pub async fn connect(dsn: &str) -> Result<Self, LogError> {
        let (client, connection) = tokio_postgres::connect(dsn, NoTls).await?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        // A writer paused mid-append (SIGSTOP, a VM freeze) must not hold
        // its epoch row's lock, and so the new owner's claim, for longer
        // than a second: PostgreSQL ends its session and the append fails.
        client.batch_execute("SET idle_in_transaction_session_timeout = '1s'; SET lock_timeout = '5s'").await?;
        // Nodes connect at once: the schema is made under an advisory lock,
        // and only when missing (its ALTERs would block every append).
        let exists: bool = client.query_one("SELECT to_regclass('system_revocations') IS NOT NULL", &[]).await?.get(0);
        if !exists {
            client.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock(7260512); {SCHEMA} COMMIT;")).await?;
        }
        Ok(CommitLog { client, _task: task })
    }

    /// The connection is gone (PostgreSQL restarted or failed over): connect again.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The newest sequence the log holds for `tenant` (records or snapshot).
    pub async fn head(&self, tenant: &str) -> Result<u64, LogError> {
        let row = self
            .client
            .query_one(
                "SELECT GREATEST((SELECT max(seq) FROM commit_log WHERE tenant = $1),
                                 (SELECT seq FROM snapshot_heads WHERE tenant = $1), 0)",
                &[&tenant],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// The sequence of the tenant's snapshot, if it has one.
    pub async fn snapshot_seq(&self, tenant: &str) -> Result<Option<u64>, LogError> {
        let row = self.client.query_opt("SELECT seq FROM snapshot_heads WHERE tenant = $1", &[&tenant]).await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Raises `tenant`'s epoch to `epoch`; false when it is already there or higher.
    pub async fn claim(&self, tenant: &str, epoch: u64) -> Result<bool, LogError> {
        let n = self
            .client
            .execute(
                "INSERT INTO tenant_epoch (tenant, epoch) VALUES ($1, $2)
                 ON CONFLICT (tenant) DO UPDATE SET epoch = EXCLUDED.epoch WHERE tenant_epoch.epoch < EXCLUDED.epoch",
                &[&tenant, &big(epoch)?],
            )
            .await?;
        Ok(n == 1)
    }

    /// The tenant's current epoch.
    pub async fn epoch(&self, tenant: &str) -> Result<Option<u64>, LogError> {
        let row = self.client.query_opt("SELECT epoch FROM tenant_epoch WHERE tenant = $1", &[&tenant]).await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Appends `records` ((seq, encoded record)) for `tenant` under `epoch`, whole or not at all.
    pub async fn append(&mut self, tenant: &str, epoch: u64, records: &[(u64, Vec<u8>)]) -> Result<Appended, LogError> {
        let tx = self.client.transaction().await?;
        fence(&tx, tenant, epoch).await?;
        let insert = tx
            .prepare("INSERT INTO commit_log (tenant, seq, epoch, rec) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .await?;
        let mut bytes = 0;
        for (seq, rec) in records {
            if tx.execute(&insert, &[&tenant, &big(*seq)?, &big(epoch)?, rec]).await? != 1 {
                // The same record already there is this writer's own append,
                // retried after its commit's answer was lost (a failover
                // mid-commit): accepted, once. Any other record is a conflict.
                let existing: Option<Vec<u8>> = tx
                    .query_opt(
                        "SELECT rec FROM commit_log WHERE tenant = $1 AND seq = $2 AND epoch = $3",
                        &[&tenant, &big(*seq)?, &big(epoch)?],
                    )
                    .await?
                    .map(|r| r.get(0));
                if existing.as_ref() != Some(rec) {
                    return Err(LogError::Conflict { tenant: tenant.to_owned(), seq: *seq });
                }
            }
            bytes += rec.len();
        }
        tx.commit().await?;
        Ok(Appended { records: records.len(), bytes })
    }

    /// `tenant`'s records after `seq`, in order, at most `limit`.
    pub async fn since(&self, tenant: &str, seq: u64, limit: i64) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let rows = self
            .client
            .query(
                "SELECT seq, rec FROM commit_log WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&tenant, &big(seq)?, &limit],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1))).collect())
    }

    /// Stores `image` (the owner's checkpointed database file, at `seq`) as
    /// the tenant's snapshot, under the same fence as an append, and in the
    /// same transaction drops the older snapshot and every record it
    /// covers: the log never keeps pages (an erased patient's among them)
    /// longer than one snapshot interval.
    pub async fn put_snapshot(&mut self, tenant: &str, epoch: u64, snap: &Snapshot) -> Result<u64, LogError> {
        let tx = self.client.transaction().await?;
        fence(&tx, tenant, epoch).await?;
        let seq = big(snap.seq)?;
        tx.execute("DELETE FROM snapshot_chunks WHERE tenant = $1", &[&tenant]).await?;
        let insert =
            tx.prepare("INSERT INTO snapshot_chunks (tenant, seq, chunk, data) VALUES ($1, $2, $3, $4)").await?;
        let chunks: Vec<&[u8]> = snap.image.chunks(CHUNK).collect();
        for (i, c) in chunks.iter().enumerate() {
            let i = i32::try_from(i).map_err(|_| LogError::Range)?;
            tx.execute(&insert, &[&tenant, &seq, &i, c]).await?;
        }
        let n = i32::try_from(chunks.len()).map_err(|_| LogError::Range)?;
        tx.execute(
            "INSERT INTO snapshot_heads (tenant, seq, epoch, chunks, checksum) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant) DO UPDATE SET seq = $2, epoch = $3, chunks = $4, checksum = $5, at = now()",
            &[&tenant, &seq, &big(epoch)?, &n, &(snap.checksum as i64)],
        )
        .await?;
        let pruned = tx.execute("DELETE FROM commit_log WHERE tenant = $1 AND seq <= $2", &[&tenant, &seq]).await?;
        tx.commit().await?;
        Ok(pruned)
    }

    /// The tenant's snapshot, if any (read in one transaction: whole or not at all).
    pub async fn snapshot(&mut self, tenant: &str) -> Result<Option<Snapshot>, LogError> {
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let Some(head) = tx
            .query_opt("SELECT seq, epoch, chunks, checksum FROM snapshot_heads WHERE tenant = $1", &[&tenant])
            .await?
        else {
            return Ok(None);
        };
        let (seq, epoch, chunks, checksum): (i64, i64, i32, i64) = (head.get(0), head.get(1), head.get(2), head.get(3));
        let rows = tx
            .query("SELECT data FROM snapshot_chunks WHERE tenant = $1 AND seq = $2 ORDER BY chunk", &[&tenant, &seq])
            .await?;
        tx.commit().await?;
        if rows.len() != usize::try_from(chunks).unwrap_or(usize::MAX) {
            return Err(LogError::IncompleteSnapshot { tenant: tenant.to_owned() });
        }
        let mut image = Vec::new();
        for r in rows {
            image.extend_from_slice(r.get::<_, &[u8]>(0));
        }
        Ok(Some(Snapshot { seq: seq as u64, epoch: epoch as u64, checksum: checksum as u64, image }))
    }

    /// Publishes revocations: a certificate's first revocation is kept, a
    /// staff account's newer state replaces an older one. Returns how many
    /// rows changed.
    pub async fn publish_revocations(&self, items: &[Revocation]) -> Result<u64, LogError> {
        let mut changed = 0;
        for r in items {
            changed += self
                .client
                .execute(
                    "INSERT INTO system_revocations (kind, subject, revoked, at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (kind, subject) DO UPDATE SET revoked = EXCLUDED.revoked, at = EXCLUDED.at
                     WHERE system_revocations.kind = 'staff' AND system_revocations.at < EXCLUDED.at",
                    &[&r.kind.as_str(), &r.subject, &r.revoked, &r.at],
                )
                .await?;
        }
        Ok(changed)
    }

    /// Every published revocation, oldest first.
    pub async fn revocations(&self) -> Result<Vec<Revocation>, LogError> {
        let rows =
            self.client.query("SELECT kind, subject, revoked, at FROM system_revocations ORDER BY at", &[]).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let kind = match r.get::<_, &str>(0) {
                    "certificate" => RevocationKind::Certificate,
                    "staff" => RevocationKind::Staff,
                    _ => return None,
                };
                Some(Revocation { kind, subject: r.get(1), revoked: r.get(2), at: r.get(3) })
            })
            .collect())
    }

    /// Drops `tenant`'s records up to `seq` (a snapshot covers them; erased
    /// patients' pages must not outlive it).
    pub async fn prune(&self, tenant: &str, seq: u64) -> Result<u64, LogError> {
        Ok(self
            .client
            .execute("DELETE FROM commit_log WHERE tenant = $1 AND seq <= $2", &[&tenant, &big(seq)?])
            .await?)
    }
}
