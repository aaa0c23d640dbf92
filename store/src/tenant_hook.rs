//! Cluster mode's one touch on the tenant store: a [`CommitHook`] run after
//! every commit, before every checkpoint and at close (docs/HA.md). The
//! store knows nothing else of clusters.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;

use super::tenant::TenantStore;
use super::{CommitHook, CommitShipped, StoreError};

/// A hook and the write-ahead log it reads.
pub(super) struct Hooked {
    hook: Box<dyn CommitHook>,
    wal: Wal,
}

/// A tenant store's write-ahead log, read for its hook: the one file
/// access to a store's files outside the store's own connection.
pub struct Wal {
    path: PathBuf,
}

impl Wal {
    /// Appends to `buf` what the log gained since `buf` was read; reads the
    /// whole log again when it was reset (shorter, or a new header), and
    /// empties `buf` when there is no log.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                buf.clear();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let len = usize::try_from(f.metadata()?.len()).unwrap_or(usize::MAX);
        let mut head = [0u8; 32];
        let same_log = len >= buf.len() && buf.len() >= 32 && f.read_exact(&mut head).is_ok() && head[..] == buf[..32];
        if same_log {
            f.seek(SeekFrom::Start(buf.len() as u64))?;
        } else {
            buf.clear();
            f.seek(SeekFrom::Start(0))?;
        }
        f.read_to_end(buf)?;
        Ok(())
    }
}

impl TenantStore {
    /// Cluster mode: every commit from now on is shipped by `hook` before
    /// it is answered; SQLite no longer checkpoints on its own (a frame must
    /// never be checkpointed away before it was shipped).
    pub fn set_commit_hook(&mut self, hook: Box<dyn CommitHook>) -> Result<(), StoreError> {
        self.conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        self.hook = Some(std::sync::Mutex::new(Hooked { hook, wal: Wal { path: wal.into() } }));
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
pub(super) fn run_hook(hook: Option<&std::sync::Mutex<Hooked>>) -> Result<Option<CommitShipped>, StoreError> {
    let Some(hook) = hook else { return Ok(None) };
    let mut h = hook.lock().map_err(|_| StoreError::NotReplicated("the shipper panicked earlier".into()))?;
    let Hooked { hook, wal } = &mut *h;
    hook.committed(wal).map(Some).map_err(StoreError::NotReplicated)
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
