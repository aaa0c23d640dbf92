//! The peer baseline of `throughline bench --http --postgres`: the session
//! open a team would otherwise build, on PostgreSQL 15 with pgcrypto, driven
//! from Rust through a pool (deadpool-postgres over tokio-postgres). One
//! database for all tenants (a `tenant_id` column); the phone looked up by a
//! keyed hash computed in SQL (`hmac`), the sealed fields (name, date of
//! birth, turn text, state values) encrypted and decrypted with
//! `pgp_sym_encrypt`/`pgp_sym_decrypt`; `synchronous_commit = on`.
//!
//! It never touches Throughline's store or keys: its keys are per-tenant
//! bench strings, not secrets, and its data is generated.

mod open;
mod postgres;
mod seed;

pub use open::{Audit, Opened};
pub use postgres::TempPostgres;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("connection pool setup: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    #[error("the DSN: {0}")]
    Dsn(String),
    #[error("{what}: {message}")]
    Server { what: &'static str, message: String },
}

/// The peer's database and its pool.
pub struct Peer {
    pool: Pool,
}

impl Peer {
    /// A pool of `size` connections to `dsn` (libpq key=value form).
    pub fn connect(dsn: &str, size: usize) -> Result<Self, PeerError> {
        let config: tokio_postgres::Config =
            dsn.parse().map_err(|e: tokio_postgres::Error| PeerError::Dsn(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        Ok(Peer { pool: Pool::builder(manager).max_size(size).build()? })
    }

    /// The tenant's pgcrypto key (a bench string, not a secret).
    pub fn tenant_key(tenant: u32) -> String {
        format!("peer bench key of tenant {tenant}, not a secret")
    }

    /// Bytes of the database on disk, as PostgreSQL counts them.
    pub async fn database_bytes(&self) -> Result<i64, PeerError> {
        let client = self.pool.get().await?;
        Ok(client.query_one("SELECT pg_database_size(current_database())", &[]).await?.get(0))
    }
}
