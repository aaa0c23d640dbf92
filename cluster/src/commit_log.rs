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
";

/// Why the log refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("tenant {tenant}: epoch {mine} is not the current one ({current:?}): this node no longer owns it")]
    Fenced { tenant: String, mine: u64, current: Option<u64> },
    #[error("tenant {tenant}: sequence {seq} is already in the log")]
    Conflict { tenant: String, seq: u64 },
    #[error("the commit log: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("a sequence or epoch does not fit PostgreSQL's bigint")]
    Range,
}

/// What an append made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub records: usize,
    pub bytes: usize,
}

fn big(n: u64) -> Result<i64, LogError> {
    i64::try_from(n).map_err(|_| LogError::Range)
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
        client.batch_execute(SCHEMA).await?;
        Ok(CommitLog { client, _task: task })
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
        let current: Option<i64> = tx
            .query_opt("SELECT epoch FROM tenant_epoch WHERE tenant = $1 FOR SHARE", &[&tenant])
            .await?
            .map(|r| r.get(0));
        if current != Some(big(epoch)?) {
            return Err(LogError::Fenced {
                tenant: tenant.to_owned(),
                mine: epoch,
                current: current.map(|c| c as u64),
            });
        }
        let insert = tx
            .prepare("INSERT INTO commit_log (tenant, seq, epoch, rec) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .await?;
        let mut bytes = 0;
        for (seq, rec) in records {
            if tx.execute(&insert, &[&tenant, &big(*seq)?, &big(epoch)?, rec]).await? != 1 {
                return Err(LogError::Conflict { tenant: tenant.to_owned(), seq: *seq });
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

    /// Drops `tenant`'s records up to `seq` (a snapshot covers them; erased
    /// patients' pages must not outlive it).
    pub async fn prune(&self, tenant: &str, seq: u64) -> Result<u64, LogError> {
        Ok(self
            .client
            .execute("DELETE FROM commit_log WHERE tenant = $1 AND seq <= $2", &[&tenant, &big(seq)?])
            .await?)
    }
}
