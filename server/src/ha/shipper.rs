//! The owner's commit hook: after every commit of an owned tenant, the new
//! frames of its write-ahead log become one commit record per transaction
//! (`replication::Capture`), appended to the commit log under the node's
//! epoch for the tenant. The commit is answered only after PostgreSQL
//! committed the append (the output gate).
//!
//! The log is retried while PostgreSQL is away (a failover) until
//! `append_timeout` passes or the node gives the tenant up; then, or when
//! the log fences this epoch, the shipper breaks: nothing more is acknowledged for
//! the tenant here and the node gives it up (its local copy holds commits
//! the log does not, so it is rebuilt from the log, never patched).

use std::sync::Arc;
use std::time::{Duration, Instant};

use replication::{Capture, LogKey};

use super::{ClusterNode, ShipState};
use store::{CommitHook, CommitShipped, Wal};

/// The write-ahead log is checkpointed once it passes this (its frames all shipped).
const WAL_CHECKPOINT_BYTES: usize = 8 << 20;

pub struct Shipper {
    pub(super) tenant: String,
    pub(super) epoch: u64,
    pub(super) capture: Capture,
    pub(super) key: LogKey,
    /// The log's bytes read so far (the file only grows until a checkpoint resets it).
    pub(super) buf: Vec<u8>,
    pub(super) node: Arc<ClusterNode>,
    pub(super) state: Arc<ShipState>,
}

impl Shipper {
    fn ship(&mut self, wal: &Wal) -> Result<CommitShipped, String> {
        if let Some(why) = self.state.broken() {
            return Err(why);
        }
        wal.read_into(&mut self.buf).map_err(|e| format!("reading the write-ahead log: {e}"))?;
        let records = self.capture.poll(&self.buf).map_err(|e| e.to_string())?;
        let checkpoint = self.buf.len() > WAL_CHECKPOINT_BYTES;
        if records.is_empty() {
            return Ok(CommitShipped { checkpoint });
        }
        let encoded: Vec<(u64, Vec<u8>)> = records.iter().map(|r| (r.seq, r.encode(&self.key))).collect();
        let bytes: usize = encoded.iter().map(|(_, r)| r.len()).sum();
        let deadline = Instant::now() + self.node.config.append_timeout;
        let mut wait = Duration::from_millis(50);
        // Retrying is safe whatever the lease says: the log's fence refuses
        // the append once another node has claimed the tenant. The lease
        // decides only what this node may still answer (the request gate).
        loop {
            if let Some(why) = self.state.broken() {
                return Err(why);
            }
            match self.node.append(&self.tenant, self.epoch, encoded.clone()) {
                Ok(()) => break,
                Err(super::AppendError::Fenced(why)) => return Err(self.state.breaks(&why)),
                Err(super::AppendError::Unavailable(why)) => {
                    if Instant::now() + wait > deadline {
                        return Err(self.state.breaks(&format!("the log stayed unavailable: {why}")));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
            }
        }
        self.state.shipped(self.capture.seq(), self.capture.checksum());
        let m = crate::metrics::get();
        m.log_records.inc_by(records.len() as u64);
        m.log_bytes.inc_by(bytes as u64);
        Ok(CommitShipped { checkpoint })
    }
}

impl CommitHook for Shipper {
    fn committed(&mut self, wal: &Wal) -> Result<CommitShipped, String> {
        let out = self.ship(wal);
        if out.is_err() {
            // Give the tenant up now rather than at the next pass.
            self.node.lose(&self.tenant);
        }
        out
    }
}
