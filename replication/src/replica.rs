//! A standby's copy of one tenant's store, kept by applying commit records
//! in sequence, without the key. A record is checked whole before a byte
//! is written: its sequence follows, its epoch is not older, it starts from
//! this copy's checksum and yields the checksum it promises. A copy that
//! diverged (a record missed, a crash mid-apply, a flipped byte) is refused
//! from then on, never patched: it is rebuilt from a snapshot.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use crate::{Checksum, CommitRecord, ReplicationError};

#[derive(Debug)]
pub struct Replica {
    file: File,
    page_size: u32,
    ck: Checksum,
    seq: u64,
    epoch: u64,
}

impl Replica {
    /// The copy at `path` (a snapshot's database file), known to be at `seq`
    /// and `epoch`. Its checksum is computed from what is on disk.
    pub fn open(path: &Path, page_size: u32, seq: u64, epoch: u64) -> Result<Self, ReplicationError> {
        if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(ReplicationError::PageSize(page_size));
        }
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut image = Vec::new();
        file.read_to_end(&mut image)?;
        Ok(Replica { file, page_size, ck: Checksum::of_image(&image, page_size as usize), seq, epoch })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn checksum(&self) -> u64 {
        self.ck.value()
    }

    /// Applies `rec` (see the module), durably (fsync) before returning.
    pub fn apply(&mut self, rec: &CommitRecord) -> Result<(), ReplicationError> {
        if rec.seq != self.seq + 1 {
            return Err(ReplicationError::OutOfSequence { want: self.seq + 1, got: rec.seq });
        }
        if rec.epoch < self.epoch {
            return Err(ReplicationError::StaleEpoch { have: self.epoch, got: rec.epoch });
        }
        if rec.page_size != self.page_size {
            return Err(ReplicationError::PageSize(rec.page_size));
        }
        if rec.prev_ck != self.ck.value() {
            return Err(ReplicationError::Diverged { have: self.ck.value(), want: rec.prev_ck });
        }
        let mut next = self.ck.clone();
        for (pgno, page) in &rec.pages {
            next.set(*pgno, page);
        }
        next.truncate(rec.db_pages);
        // A database that grows by pages this record does not carry would
        // leave holes: SQLite always writes a new page, so a record that
        // does not is refused.
        if next.pages() != rec.db_pages {
            return Err(ReplicationError::Malformed("the record grows the database by pages it does not carry"));
        }
        if next.value() != rec.post_ck {
            return Err(ReplicationError::BadResult { want: rec.post_ck, got: next.value() });
        }
        let size = u64::from(self.page_size);
        for (pgno, page) in &rec.pages {
            self.file.seek(SeekFrom::Start(u64::from(pgno - 1) * size))?;
            self.file.write_all(page)?;
        }
        self.file.set_len(u64::from(rec.db_pages) * size)?;
        self.file.sync_data()?;
        self.ck = next;
        self.seq = rec.seq;
        self.epoch = rec.epoch;
        Ok(())
    }
}
