//! A tenant store's file as a file: consistent encrypted copies, the
//! integrity check, checkpoints of the write-ahead log, a held read
//! snapshot, and the file's image for the cluster's log. Only the store
//! reads its files.

use std::path::Path;

use audit::GENESIS;

use super::StoreError;
use super::audit_log::{self, AuditTable};
use super::tenant::TenantStore;

impl TenantStore {
    /// A consistent encrypted copy of this store at `dst` (a new file).
    pub fn snapshot_to(&self, dst: &Path) -> Result<(), StoreError> {
        super::snapshot::snapshot(&self.conn, dst, self.keys.store_key())
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// Every audit record of the tenant, in order.
    pub fn audit_records(&self) -> Result<Vec<audit::Record>, StoreError> {
        Ok(audit_log::read_all(&self.conn, AuditTable::Tenant)?.into_iter().map(|(r, _)| r).collect())
    }

    /// Verifies the tenant's audit chain; returns how many records it holds.
    pub fn verify_audit(&self) -> Result<u64, StoreError> {
        let records = audit_log::read_all(&self.conn, AuditTable::Tenant)?;
        audit::verify_chain(records.iter().map(|(r, h)| (r, h.as_str())), 1, GENESIS)
            .map_err(|source| StoreError::AuditChain { path: self.path.clone(), source })?;
        Ok(records.len() as u64)
    }

    /// Begins a read transaction and reads from it, holding a snapshot (and
    /// with it the write-ahead log's frames) until [`Self::end_read`]: what a
    /// long export or backup does to a concurrent erasure.
    pub fn begin_read(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let _: i64 = self.conn.query_row("SELECT count(*) FROM customers", [], |r| r.get(0))?;
        Ok(())
    }

    /// Ends the read transaction [`Self::begin_read`] began.
    pub fn end_read(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// The store file's bytes as they are on disk now (the main file, not
    /// its write-ahead log): what the cluster's log compares and snapshots.
    /// The store that holds the file open reads it; no other part does.
    pub fn file_image(&self) -> Result<Vec<u8>, StoreError> {
        use std::os::unix::fs::FileExt as _;
        let io = |source| StoreError::Io { path: self.path.clone(), source };
        if self.image.get().is_none() {
            // Set once, by the only holder (a store is not shared between threads).
            let _ = self.image.set(std::fs::File::open(&self.path).map_err(io)?);
        }
        let file = self.image.get().ok_or_else(|| io(std::io::Error::other("no descriptor")))?;
        let len = usize::try_from(file.metadata().map_err(io)?.len()).unwrap_or(usize::MAX);
        let mut image = vec![0u8; len];
        file.read_exact_at(&mut image, 0).map_err(io)?;
        Ok(image)
    }

    /// Checkpoints the write-ahead log into the file ([`Self::checkpoint_truncate`])
    /// and returns the file's bytes.
    pub fn checkpointed_image(&self) -> Result<Vec<u8>, StoreError> {
        self.checkpoint_truncate()?;
        self.file_image()
    }

    /// Checkpoints the WAL into the database and truncates it to zero
    /// bytes, so no old frame (an erased patient's wrapped key) survives
    /// there. SQLite answers busy, not an error, while another connection
    /// reads (a CLI backup, an export): retried for about 2.5 s, then
    /// [`StoreError::CheckpointBusy`] (M6). The connection's busy timeout
    /// (5 s) is lifted meanwhile: TRUNCATE waits on it for every reader, and
    /// twenty such waits made a request take 100 s before it could answer.
    pub fn checkpoint_truncate(&self) -> Result<(), StoreError> {
        // Cluster mode: no committed frame is checkpointed away unshipped.
        self.ship()?;
        self.conn.busy_timeout(std::time::Duration::ZERO)?;
        let mut outcome = Err(StoreError::CheckpointBusy);
        for attempt in 0..12 {
            let busy: Result<i64, _> = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
            match busy {
                Ok(0) => {
                    outcome = Ok(());
                    break;
                }
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(30 * (attempt + 1))),
                Err(e) => {
                    outcome = Err(e.into());
                    break;
                }
            }
        }
        self.conn.busy_timeout(std::time::Duration::from_millis(5000))?;
        outcome
    }
}
