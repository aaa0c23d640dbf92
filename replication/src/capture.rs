//! The owner's side: commit records from its store's write-ahead log.
//!
//! The owner polls after every commit and before every checkpoint (it runs
//! with `wal_autocheckpoint = 0` and checkpoints itself), so no committed
//! frame is ever checkpointed away unread. It keeps the checksum of the
//! database image its records describe; [`Capture::verify`] compares it with
//! the real file after a checkpoint, which would catch a commit that was
//! missed.

use crate::wal::{self, WalCursor};
use crate::{Checksum, CommitRecord, ReplicationError};

/// Capture state for one tenant's store.
#[derive(Debug)]
pub struct Capture {
    tenant: String,
    epoch: u64,
    seq: u64,
    page_size: u32,
    ck: Checksum,
    cursor: Option<WalCursor>,
}

impl Capture {
    /// Starts from `image`, the database file with its WAL checkpointed
    /// away (the snapshot standbys start from), at sequence `seq`.
    pub fn new(tenant: &str, epoch: u64, seq: u64, image: &[u8], page_size: u32) -> Self {
        Capture {
            tenant: tenant.to_owned(),
            epoch,
            seq,
            page_size,
            ck: Checksum::of_image(image, page_size as usize),
            cursor: None,
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn checksum(&self) -> u64 {
        self.ck.value()
    }

    /// The records for every transaction committed in `wal` since the last poll.
    pub fn poll(&mut self, wal: &[u8]) -> Result<Vec<CommitRecord>, ReplicationError> {
        let cursor = match self.cursor {
            Some(c) => c,
            None if wal.len() < 32 => return Ok(Vec::new()),
            None => wal::read_header(wal)?,
        };
        if cursor.page_size != self.page_size {
            return Err(ReplicationError::PageSize(cursor.page_size));
        }
        let (commits, next) = match wal::committed(wal, &cursor) {
            Ok(found) => found,
            // Reset by a checkpoint after the last poll (which read every
            // committed frame): the new log's frames are all new.
            Err(ReplicationError::WalRestarted) => {
                self.cursor = None;
                if wal.len() < 32 {
                    return Ok(Vec::new());
                }
                let fresh = wal::read_header(wal)?;
                wal::committed(wal, &fresh)?
            }
            Err(e) => return Err(e),
        };
        self.cursor = Some(next);
        let mut out = Vec::with_capacity(commits.len());
        for c in commits {
            let prev_ck = self.ck.value();
            for (pgno, page) in &c.pages {
                self.ck.set(*pgno, page);
            }
            self.ck.truncate(c.db_pages);
            self.seq += 1;
            out.push(CommitRecord {
                tenant: self.tenant.clone(),
                epoch: self.epoch,
                seq: self.seq,
                page_size: self.page_size,
                db_pages: c.db_pages,
                prev_ck,
                post_ck: self.ck.value(),
                pages: c.pages,
            });
        }
        Ok(out)
    }

    /// Checks the checksum against `image`, the database file after a checkpoint.
    pub fn verify(&self, image: &[u8]) -> Result<(), ReplicationError> {
        let real = Checksum::of_image(image, self.page_size as usize).value();
        if real == self.ck.value() {
            Ok(())
        } else {
            Err(ReplicationError::Diverged { have: real, want: self.ck.value() })
        }
    }
}
