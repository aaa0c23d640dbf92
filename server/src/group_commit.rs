//! Group commit for one tenant store: requests that arrive while a commit is
//! in progress are run together in the next one, each in its own savepoint,
//! and made durable by one COMMIT (one fsync under `synchronous=FULL`)
//! before any of them is answered.
//!
//! Groups run on a small pool of writer threads ([`Writers`]) shared by all
//! tenants: a request queues its job on its tenant and, if the tenant is not
//! already scheduled, puts the tenant on the pool's ready queue; a writer
//! takes the tenant, drains its queue, runs every job, commits, answers each
//! job, and puts the tenant back if more work came meanwhile. A request
//! crosses two threads (its async worker and one writer) and nothing waits
//! for a lock held across an fsync; the writers work on different tenants
//! (and their fsyncs) at once, and one tenant is never on two writers.
//!
//! A job that fails rolls back only its savepoint; a COMMIT that fails loses
//! the whole group and every job in it is answered with the failure, so an
//! answer never claims more than the disk holds.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use store::{StoreError, TenantStore};

/// Most jobs in one group (a bound on how long one commit waits).
const MAX_GROUP: usize = 256;

/// Writer threads by default: twice the cores. A tenant runs on one writer
/// at a time; a writer waiting on its fsync leaves the core to another, but
/// more writers than that spread the load thinner (smaller groups, more
/// fsyncs and context switches). Measured with 8 tenants on 2 cores: 2
/// writers 5,200-5,600 opens/s, 4 writers 6,100-6,500, 8 writers 4,500-5,400,
/// 16 writers 5,600 (docs/PERFORMANCE.md).
pub fn default_writers() -> usize {
    2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Why a job's group did not commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the disk is full; the group was not committed")]
    DiskFull,
    #[error("the group commit failed; nothing of it was kept")]
    CommitFailed,
    #[error("committed here but the cluster's log did not take it; not acknowledged")]
    NotReplicated,
    #[error("the job panicked; its savepoint was rolled back")]
    Panicked,
    #[error("the tenant store is unusable after an earlier panic, or the server is stopping")]
    Poisoned,
    #[error("the tenant already has {MAX_QUEUED_JOBS} requests waiting for their group")]
    Busy,
}

/// Requests one tenant may have waiting for a writer (L1): past it, a
/// request is refused at once (503) rather than held in memory with its
/// body while an integration floods one clinic.
pub const MAX_QUEUED_JOBS: usize = 2048;

impl GroupError {
    fn from_store(e: &StoreError) -> Self {
        if e.is_disk_full() {
            GroupError::DiskFull
        } else if matches!(e, StoreError::NotReplicated(_)) {
            GroupError::NotReplicated
        } else {
            GroupError::CommitFailed
        }
    }
}

type Deliver = Box<dyn FnOnce(Result<(), GroupError>) + Send>;
/// Runs the op; returns how to answer it and whether it finished (no panic).
/// Dropped unrun, it answers nothing and its caller sees `Poisoned`.
type Job = Box<dyn FnOnce(&mut TenantStore) -> (Deliver, bool) + Send>;

/// The writer threads and the queue of tenants with work for them.
pub struct Writers {
    shared: Arc<Ready>,
    count: usize,
}

struct Ready {
    queue: Mutex<ReadyQueue>,
    wake: Condvar,
}

#[derive(Default)]
struct ReadyQueue {
    tenants: VecDeque<Arc<Grouped>>,
    closing: bool,
}

impl Ready {
    fn queue(&self) -> MutexGuard<'_, ReadyQueue> {
        // Nothing panics while holding it: a plain queue, safe to keep using.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a tenant on the ready queue; false once the writers are gone.
    fn schedule(&self, g: Arc<Grouped>) -> Result<(), Arc<Grouped>> {
        let mut q = self.queue();
        if q.closing {
            return Err(g);
        }
        q.tenants.push_back(g);
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    fn next(&self) -> Option<Arc<Grouped>> {
        let mut q = self.queue();
        loop {
            if let Some(g) = q.tenants.pop_front() {
                return Some(g);
            }
            if q.closing {
                return None;
            }
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Writers {
    /// Starts `n` writer threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Ready { queue: Mutex::new(ReadyQueue::default()), wake: Condvar::new() });
        for i in 0..n.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new().name(format!("tl-writer-{i}")).spawn(move || {
                while let Some(g) = shared.next() {
                    g.work();
                }
            })?;
        }
        Ok(Writers { shared, count: n.max(1) })
    }

    /// How many writer threads.
    pub fn count(&self) -> usize {
        self.count
    }

    /// A tenant store behind group commit on these writers; `enabled`
    /// false commits each job on its own (`serve --no-group-commit`, to
    /// measure what grouping buys).
    pub fn tenant(&self, store: TenantStore, enabled: bool) -> Arc<Grouped> {
        Arc::new_cyclic(|me| Grouped {
            store: Mutex::new(store),
            queue: Mutex::new(JobQueue::default()),
            groups: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            enabled,
            writers: self.shared.clone(),
            me: me.clone(),
        })
    }
}

impl Drop for Writers {
    /// The threads finish the tenants already queued, then stop.
    fn drop(&mut self) {
        self.shared.queue().closing = true;
        self.shared.wake.notify_all();
    }
}

#[derive(Default)]
struct JobQueue {
    jobs: Vec<Job>,
    /// On the ready queue or on a writer now.
    scheduled: bool,
}

/// A tenant store behind group commit.
pub struct Grouped {
    store: Mutex<TenantStore>,
    queue: Mutex<JobQueue>,
    groups: AtomicU64,
    jobs: AtomicU64,
    enabled: bool,
    writers: Arc<Ready>,
    me: Weak<Grouped>,
}

impl Grouped {
    /// The store itself, outside any group (maintenance, erasure): waits for
    /// the group in progress to finish.
    pub fn lock(&self) -> Result<MutexGuard<'_, TenantStore>, GroupError> {
        self.store.lock().map_err(|_| GroupError::Poisoned)
    }

    /// Groups committed and jobs run so far (jobs per group is the batching).
    pub fn stats(&self) -> (u64, u64) {
        (self.groups.load(Ordering::Relaxed), self.jobs.load(Ordering::Relaxed))
    }

    /// Runs `op` in the next group and blocks until that group is durable
    /// (or the reason it is not). Not for async workers: see [`Self::run_async`].
    pub fn run<T, F>(&self, op: F) -> Result<T, GroupError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantStore) -> T + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, GroupError>>(1);
        self.submit(op, move |result| {
            // The caller may have gone: nothing to do.
            let _ = tx.try_send(result);
        });
        rx.recv().map_err(|_| GroupError::Poisoned)?
    }

    /// [`Self::run`] for async callers: the worker is free while the job
    /// waits for its group.
    pub async fn run_async<T, F>(&self, op: F) -> Result<T, GroupError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantStore) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, GroupError>>();
        self.submit(op, move |result| {
            let _ = tx.send(result);
        });
        rx.await.map_err(|_| GroupError::Poisoned)?
    }

    fn submit<T, F, A>(&self, op: F, answer: A)
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantStore) -> T + Send + 'static,
        A: FnOnce(Result<T, GroupError>) + Send + 'static,
    {
        if self.queue.lock().unwrap_or_else(PoisonError::into_inner).jobs.len() >= MAX_QUEUED_JOBS {
            answer(Err(GroupError::Busy));
            return;
        }
        let job: Job = Box::new(move |store: &mut TenantStore| {
            let out = catch_unwind(AssertUnwindSafe(|| op(store)));
            let finished = out.is_ok();
            let deliver: Deliver = Box::new(move |committed: Result<(), GroupError>| {
                answer(match out {
                    Ok(value) => committed.map(|()| value),
                    Err(_) => Err(GroupError::Panicked),
                })
            });
            (deliver, finished)
        });
        let schedule = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.jobs.push(job);
            crate::metrics::get().queued_jobs.inc();
            !std::mem::replace(&mut q.scheduled, true)
        };
        if schedule
            && let Some(me) = self.me.upgrade()
            && let Err(me) = self.writers.schedule(me)
        {
            // The writers are stopping: run it here rather than never.
            me.work();
        }
    }

    /// On a writer: runs one group, then puts the tenant back at the end of
    /// the ready queue if more work came meanwhile (fair between tenants).
    fn work(self: Arc<Self>) {
        if catch_unwind(AssertUnwindSafe(|| self.run_group())).is_err() {
            // Outside any job (jobs catch their own): the store is poisoned
            // and later jobs are answered `Poisoned`, never left waiting.
            tracing::error!("a group commit panicked; this tenant's store is out of service");
        }
        let more = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.scheduled = !q.jobs.is_empty();
            q.scheduled
        };
        let writers = self.writers.clone();
        if more && let Err(me) = writers.schedule(self) {
            me.work();
        }
    }

    /// Takes the store and runs one group of what is queued.
    fn run_group(&self) {
        let jobs: Vec<Job> = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let n = q.jobs.len().min(MAX_GROUP);
            crate::metrics::get().queued_jobs.dec_by(n as i64);
            q.jobs.drain(..n).collect()
        };
        if jobs.is_empty() {
            return;
        }
        // Poisoned (a panic in maintenance while it held the store): the
        // jobs are dropped unrun and each caller hears `Poisoned`.
        let Ok(mut store) = self.store.lock() else { return };
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        if !self.enabled {
            for job in jobs {
                job(&mut store).0(Ok(()));
            }
            return;
        }
        if let Err(e) = store.begin_group() {
            // No group: each job commits on its own, as without group commit.
            tracing::warn!(cause = %e, "could not start a group; committing one by one");
            for job in jobs {
                job(&mut store).0(Ok(()));
            }
            return;
        }
        let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
        for job in jobs {
            // Each job in a savepoint of its own: one that panicked after
            // committing its transactions is undone whole.
            let mark = store.mark_job();
            let (d, finished) = job(&mut store);
            if mark.is_ok() {
                let _ = store.settle_job(finished);
            }
            delivers.push(d);
        }
        let metrics = crate::metrics::get();
        metrics.group_jobs.observe(delivers.len() as f64);
        let commit_started = std::time::Instant::now();
        let committed = store.commit_group();
        metrics.commit_seconds.observe(commit_started.elapsed().as_secs_f64());
        let committed = committed.map_err(|e| {
            let g = GroupError::from_store(&e);
            if g == GroupError::DiskFull {
                tracing::error!(jobs = delivers.len(), "disk full: group commit refused, nothing of it kept");
            } else {
                tracing::error!(cause = %e, jobs = delivers.len(), "group commit failed");
            }
            g
        });
        drop(store);
        for d in delivers {
            d(committed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::AuditEntry;

    fn grouped(writers: &Writers, dir: &std::path::Path) -> Arc<Grouped> {
        let keys = crypto::TenantKeys::derive("ten_test", &crypto::Key256::generate().unwrap());
        writers.tenant(TenantStore::create(&dir.join("t.db"), keys, "test", 1).unwrap(), true)
    }

    // Three kinds of job, told apart by the action they record.
    const OK: audit::Action = audit::Action::TurnAppend;
    const DROPPED: audit::Action = audit::Action::TurnHold;
    const PANICKED: audit::Action = audit::Action::StateDelete;

    fn audited(store: &mut TenantStore, action: audit::Action, commit: bool) -> Result<(), StoreError> {
        let tx = store.transaction()?;
        tx.audit(&AuditEntry::operator("test", action), 2)?;
        if commit { tx.commit() } else { Ok(()) }
    }

    /// A tenant whose writer is held up refuses requests past its queue's
    /// bound at once, and serves again once the queue drains (L1).
    #[test]
    fn a_flooded_tenant_refuses_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let writers = Writers::start(1).unwrap();
        let g = grouped(&writers, dir.path());
        let (hold, release) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let g = g.clone();
            std::thread::spawn(move || {
                g.run(move |_| {
                    started.send(()).unwrap();
                    release.recv().unwrap();
                })
            })
        };
        running.recv().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for _ in 0..MAX_QUEUED_JOBS {
            let done = done_tx.clone();
            g.submit(|_| (), move |r: Result<(), GroupError>| done.send(r.is_ok()).unwrap());
        }
        assert_eq!(g.run(|_| ()).err(), Some(GroupError::Busy));
        hold.send(()).unwrap();
        blocker.join().unwrap().unwrap();
        assert_eq!(done_rx.iter().take(MAX_QUEUED_JOBS).filter(|ok| *ok).count(), MAX_QUEUED_JOBS);
        assert!(g.run(|_| ()).is_ok(), "the tenant did not recover");
    }

    /// Concurrent jobs share commits; a job that drops its transaction or
    /// panics loses only its own work; the chain stays whole.
    #[test]
    fn jobs_share_commits_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let writers = Writers::start(2).unwrap();
        let g = grouped(&writers, dir.path());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        match (t, i % 10) {
                            (0, 3) => assert!(g.run(|s| audited(s, DROPPED, false)).unwrap().is_ok()),
                            (1, 5) => {
                                let r = g.run(|s| {
                                    audited(s, PANICKED, true).unwrap();
                                    panic!("job panics after writing");
                                });
                                assert_eq!(r.err(), Some(GroupError::Panicked));
                            }
                            _ => g.run(|s| audited(s, OK, true)).unwrap().unwrap(),
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
        let count = |a: audit::Action| records.iter().filter(|r| r.action == a.as_str()).count();
        assert_eq!(count(OK), 400 - 5 - 5);
        assert_eq!(count(DROPPED), 0, "an uncommitted job's work was kept");
        assert_eq!(count(PANICKED), 0, "a panicked job's work was kept");
        store.verify_audit().unwrap();
        eprintln!("400 jobs in {groups} groups");
    }
}
