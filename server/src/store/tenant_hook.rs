//! Cluster mode's one touch on the tenant store: a [`CommitHook`] run after
//! every commit, before every checkpoint and at close (docs/HA.md). The
//! store knows nothing else of clusters.

use super::tenant::TenantStore;
use super::{CommitHook, CommitShipped, StoreError};

impl TenantStore {
    /// Cluster mode: every commit from now on is shipped by `hook` before
    /// it is answered; SQLite no longer checkpoints on its own (a frame must
    /// never be checkpointed away before it was shipped).
    pub fn set_commit_hook(&mut self, hook: Box<dyn CommitHook>) -> Result<(), StoreError> {
        self.conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        self.hook = Some(std::sync::Mutex::new(hook));
        Ok(())
    }

    /// Ships what was committed (cluster mode; nothing otherwise).
    pub(super) fn ship(&self) -> Result<(), StoreError> {
        let Some(shipped) = run_hook(self.hook.as_ref())? else { return Ok(()) };
        if shipped.checkpoint {
            let _ = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        }
        Ok(())
    }
}

/// Runs a store's commit hook, if it has one.
pub(super) fn run_hook(
    hook: Option<&std::sync::Mutex<Box<dyn CommitHook>>>,
) -> Result<Option<CommitShipped>, StoreError> {
    let Some(hook) = hook else { return Ok(None) };
    let mut h = hook.lock().map_err(|_| StoreError::NotReplicated("the shipper panicked earlier".into()))?;
    h.committed().map(Some).map_err(StoreError::NotReplicated)
}

impl Drop for TenantStore {
    /// Cluster mode: what was committed since the last ship goes before the
    /// connection closes (closing checkpoints the log).
    fn drop(&mut self) {
        if let Err(e) = run_hook(self.hook.as_ref()) {
            tracing::warn!(cause = %e, "a closing tenant store's last commits were not shipped");
        }
    }
}
