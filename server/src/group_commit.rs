//! Group commit for one tenant store: requests that arrive while a commit is
//! in progress are run together in the next one, each in its own savepoint,
//! and made durable by one COMMIT (one fsync under `synchronous=FULL`)
//! before any of them is answered.
//!
//! No thread of its own: the first request thread to find work queued and
//! the store free becomes the leader, drains the queue, runs every job,
//! commits, and hands each job its result; the others wait for theirs. A job
//! that fails rolls back only its savepoint; a COMMIT that fails loses the
//! whole group and every job in it is answered with the failure, so an
//! answer never claims more than the disk holds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};

use crate::store::{StoreError, TenantStore};

/// Most jobs in one group (a bound on how long one commit waits).
const MAX_GROUP: usize = 256;

/// Why a job's group did not commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the disk is full; the group was not committed")]
    DiskFull,
    #[error("the group commit failed; nothing of it was kept")]
    CommitFailed,
    #[error("the job panicked; its savepoint was rolled back")]
    Panicked,
    #[error("the tenant store is unusable after an earlier panic")]
    Poisoned,
}

impl GroupError {
    fn from_store(e: &StoreError) -> Self {
        if e.is_disk_full() { GroupError::DiskFull } else { GroupError::CommitFailed }
    }
}

type Deliver = Box<dyn FnOnce(Result<(), GroupError>) + Send>;
/// Runs the op; returns how to answer it and whether it finished (no panic).
type Job = Box<dyn FnOnce(&mut TenantStore) -> (Deliver, bool) + Send>;

/// A tenant store behind group commit.
pub struct Grouped {
    store: Mutex<TenantStore>,
    queue: Mutex<Vec<Job>>,
    groups: AtomicU64,
    jobs: AtomicU64,
    /// Off: each job takes the store and commits on its own (for measuring
    /// what group commit buys: `serve --no-group-commit`).
    enabled: bool,
}

impl Grouped {
    pub fn new(store: TenantStore, enabled: bool) -> Self {
        Grouped {
            store: Mutex::new(store),
            queue: Mutex::new(Vec::new()),
            groups: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            enabled,
        }
    }

    /// The store itself, outside any group (maintenance, erasure): waits for
    /// the group in progress to finish.
    pub fn lock(&self) -> Result<std::sync::MutexGuard<'_, TenantStore>, GroupError> {
        self.store.lock().map_err(|_| GroupError::Poisoned)
    }

    /// Groups committed and jobs run so far (jobs per group is the batching).
    pub fn stats(&self) -> (u64, u64) {
        (self.groups.load(Ordering::Relaxed), self.jobs.load(Ordering::Relaxed))
    }

    /// Runs `op` in the next group and returns its result once that group
    /// is durable (or the reason it is not).
    pub fn run<T, F>(&self, op: F) -> Result<T, GroupError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantStore) -> T + Send + 'static,
    {
        if !self.enabled {
            let mut store = self.lock()?;
            return catch_unwind(AssertUnwindSafe(|| op(&mut store))).map_err(|_| GroupError::Panicked);
        }
        let (tx, rx) = sync_channel::<Result<T, GroupError>>(1);
        let job: Job = Box::new(move |store: &mut TenantStore| {
            let out = catch_unwind(AssertUnwindSafe(|| op(store)));
            let finished = out.is_ok();
            let deliver: Deliver = Box::new(move |committed: Result<(), GroupError>| {
                let result = match out {
                    Ok(value) => committed.map(|()| value),
                    Err(_) => Err(GroupError::Panicked),
                };
                deliver(&tx, result);
            });
            (deliver, finished)
        });
        self.queue.lock().map_err(|_| GroupError::Poisoned)?.push(job);
        self.lead()?;
        rx.recv().map_err(|_| GroupError::Poisoned)?
    }

    /// Takes the store and runs one group of what is queued (this thread's
    /// job included, unless an earlier leader already ran it). Every job's
    /// own thread calls this after queueing, so nothing is left behind.
    fn lead(&self) -> Result<(), GroupError> {
        let mut store = self.store.lock().map_err(|_| GroupError::Poisoned)?;
        let jobs: Vec<Job> = {
            let mut q = self.queue.lock().map_err(|_| GroupError::Poisoned)?;
            let n = q.len().min(MAX_GROUP);
            q.drain(..n).collect()
        };
        if jobs.is_empty() {
            return Ok(());
        }
        match store.begin_group() {
            Ok(()) => {
                self.groups.fetch_add(1, Ordering::Relaxed);
                self.jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
                for job in jobs {
                    // Each job in a savepoint of its own: one that panicked
                    // after committing its transactions is undone whole.
                    let mark = store.mark_job();
                    let (d, finished) = job(&mut store);
                    if mark.is_ok() {
                        let _ = store.settle_job(finished);
                    }
                    delivers.push(d);
                }
                let committed = store.commit_group().map_err(|e| {
                    let g = GroupError::from_store(&e);
                    if g == GroupError::DiskFull {
                        tracing::error!(jobs = delivers.len(), "disk full: group commit refused, nothing of it kept");
                    } else {
                        tracing::error!(cause = %e, jobs = delivers.len(), "group commit failed");
                    }
                    g
                });
                for d in delivers {
                    d(committed);
                }
            }
            Err(e) => {
                // No group: each job commits on its own, as without group commit.
                tracing::warn!(cause = %e, "could not start a group; committing one by one");
                for job in jobs {
                    job(&mut store).0(Ok(()));
                }
            }
        }
        Ok(())
    }
}

fn deliver<T>(tx: &SyncSender<Result<T, GroupError>>, result: Result<T, GroupError>) {
    // The waiting request may have gone (its client hung up): nothing to do.
    let _ = tx.try_send(result);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::AuditEntry;

    fn grouped(dir: &std::path::Path) -> Arc<Grouped> {
        let keys = crypto::TenantKeys::derive("ten_test", &crypto::Key256::generate().unwrap());
        Arc::new(Grouped::new(TenantStore::create(&dir.join("t.db"), keys, "test", 1).unwrap(), true))
    }

    fn audited(store: &mut TenantStore, action: &'static str, commit: bool) -> Result<(), StoreError> {
        let tx = store.transaction()?;
        tx.audit(&AuditEntry::operator("test", action), 2)?;
        if commit { tx.commit() } else { Ok(()) }
    }

    /// Concurrent jobs share commits; a job that drops its transaction or
    /// panics loses only its own work; the chain stays whole.
    #[test]
    fn jobs_share_commits_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let g = grouped(dir.path());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        match (t, i % 10) {
                            (0, 3) => assert!(g.run(|s| audited(s, "test.dropped", false)).unwrap().is_ok()),
                            (1, 5) => {
                                let r = g.run(|s| {
                                    audited(s, "test.panicked", true).unwrap();
                                    panic!("job panics after writing");
                                });
                                assert_eq!(r.err(), Some(GroupError::Panicked));
                            }
                            _ => g.run(|s| audited(s, "test.ok", true)).unwrap().unwrap(),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (groups, jobs) = g.stats();
        assert_eq!(jobs, 400);
        assert!(groups <= jobs);
        let store = g.lock().unwrap();
        let records = store.audit_records().unwrap();
        let count = |a: &str| records.iter().filter(|r| r.action == a).count();
        assert_eq!(count("test.ok"), 400 - 5 - 5);
        assert_eq!(count("test.dropped"), 0, "an uncommitted job's work was kept");
        assert_eq!(count("test.panicked"), 0, "a panicked job's work was kept");
        store.verify_audit().unwrap();
        eprintln!("400 jobs in {groups} groups");
    }
}
