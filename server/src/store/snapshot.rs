//! Consistent snapshots of a live store with SQLite's online backup API, into
//! a new file keyed with the same raw key (encrypted to encrypted: no page is
//! ever written in the clear, and nothing reads the live file behind
//! SQLite's back).

use std::path::Path;
use std::time::Duration;

use crypto::Key256;
use rusqlite::Connection;
use rusqlite::backup::Backup;

use super::{StoreError, open_encrypted};

/// Copies `src` into a new encrypted file at `dst` and checks it opens.
pub(crate) fn snapshot(src: &Connection, dst: &Path, key: &Key256) -> Result<(), StoreError> {
    {
        let mut out = open_encrypted(dst, key, true)?;
        let backup = Backup::new(src, &mut out)?;
        backup.run_to_completion(512, Duration::ZERO, None)?;
    }
    let check = open_encrypted(dst, key, false)?;
    let ok: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(StoreError::Snapshot { reason: ok });
    }
    check.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")?;
    Ok(())
}
