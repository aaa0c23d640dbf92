//! Consistent snapshots of a live store with SQLite's online backup API, into
//! a new file keyed with the same raw key (encrypted to encrypted: no page is
//! ever written in the clear, and nothing reads the live file behind
//! SQLite's back).

use std::path::Path;
use std::time::Duration;

use crypto::Key256;
use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use super::{StoreError, open_encrypted};

/// Copies `src` into a new encrypted file at `dst` and checks it opens.
///
/// In one step (`-1`: every page under one read transaction). Copying 512
/// pages at a time let a write from another connection between two steps
/// restart the copy from the first page, on a busy store for ever (the
/// review's L15); in WAL mode one long read blocks no writer.
pub(crate) fn snapshot(src: &Connection, dst: &Path, key: &Key256) -> Result<(), StoreError> {
    {
        // The copy keeps the source's page format: SQLite's backup copies
        // pages whole, and the formats reserve different room per page.
        let mut out = super::open::open_encrypted_as(dst, key, true, super::open::page_hmac(src)?)?;
        let backup = Backup::new(src, &mut out)?;
        // Busy or locked (a writer mid-commit on this connection's file):
        // try again shortly, a bounded number of times.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked if tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(25));
                }
                _ => return Err(StoreError::Snapshot { reason: "the store stayed busy for 5 s".into() }),
            }
        }
    }
    let check = open_encrypted(dst, key, false)?;
    let ok: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(StoreError::Snapshot { reason: ok });
    }
    check.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")?;
    Ok(())
}
