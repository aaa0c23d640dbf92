//! Cluster mode (`serve --cluster cluster.toml`, issue 22, docs/HA.md).
//! Off by default: without the file a server is exactly the one-box product.
//!
//! A node serves a tenant only while it owns it in etcd (its owner key, on
//! the node's lease, within the lease's local deadline) and only under the
//! tenant's hostname (SNI): [`ClusterNode::serves`] is checked on every
//! request. Every commit of an owned tenant is shipped to the commit log in
//! PostgreSQL before it is answered ([`shipper`]). The tenants it does not
//! own it follows as a standby, applying the log's records to its copy
//! without opening it ([`follow`]); when an owner's key goes, the first
//! node in rendezvous order takes the tenant, claims the epoch in the log,
//! catches up, points HAProxy at itself ([`haproxy`]) and serves.

pub mod config;
mod follow;
pub mod haproxy;
mod shipper;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use cluster::{CommitLog, LogError, Ownership};
pub use config::ClusterConfig;

use store::ids::TenantId;
use store::{CommitHook, SystemStore, TenantStore};

/// What the shipper last made durable, shared with the node (snapshots).
#[derive(Debug, Default)]
pub struct ShipState {
    inner: Mutex<ShipInner>,
}

#[derive(Debug, Default)]
struct ShipInner {
    seq: u64,
    checksum: u64,
    broken: Option<String>,
}

impl ShipState {
    fn new(seq: u64, checksum: u64) -> Self {
        ShipState { inner: Mutex::new(ShipInner { seq, checksum, broken: None }) }
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, ShipInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn shipped(&self, seq: u64, checksum: u64) {
        let mut s = self.lock();
        s.seq = seq;
        s.checksum = checksum;
    }
    /// (seq, checksum) of the last commit the log has.
    fn point(&self) -> (u64, u64) {
        let s = self.lock();
        (s.seq, s.checksum)
    }
    fn broken(&self) -> Option<String> {
        self.lock().broken.clone()
    }
    /// From now on nothing is acknowledged for the tenant here.
    fn breaks(&self, why: &str) -> String {
        let mut s = self.lock();
        s.broken.get_or_insert_with(|| why.to_owned());
        why.to_owned()
    }
}

/// A tenant this node owns now.
struct Owned {
    epoch: u64,
    state: Arc<ShipState>,
}

pub(crate) enum AppendError {
    /// A newer owner holds the tenant, or the sequence is taken: give it up.
    Fenced(String),
    /// PostgreSQL is unreachable or failing over: retry.
    Unavailable(String),
}

/// What the cluster needs of the tenants this process serves, and nothing
/// more: it never sees the pool, the API or the console (the running state,
/// `app::AppState`, implements this).
pub trait TenantHost: Send + Sync {
    fn now_ms(&self) -> i64;
    fn tenant_names(&self) -> Result<Vec<(TenantId, String)>, String>;
    fn tenant_keys(&self, id: &TenantId) -> Result<crypto::TenantKeys, String>;
    fn tenant_path(&self, id: &TenantId) -> PathBuf;
    /// Takes the tenant's store out of the pool and waits (up to `wait`)
    /// for the requests still holding it to finish.
    fn close_tenant(&self, id: &TenantId, wait: Duration);
    /// Runs `f` on the tenant's open store, locked; `false` when it is not open.
    fn with_open_store(
        &self,
        id: &TenantId,
        f: &mut dyn FnMut(&TenantStore) -> Result<(), String>,
    ) -> Result<bool, String>;
    fn system(&self) -> &Mutex<SystemStore>;
}

/// This node in the cluster.
pub struct ClusterNode {
    pub config: ClusterConfig,
    rt: tokio::runtime::Handle,
    pub(crate) liveness: cluster::Liveness,
    own: tokio::sync::Mutex<Ownership>,
    logs: Vec<tokio::sync::Mutex<Option<CommitLog>>>,
    owned: RwLock<HashMap<String, Owned>>,
    lost: Mutex<Vec<String>>,
    /// Tenants with an erasure since their last snapshot: snapshotted at
    /// once, so the erased patient's pages leave the log now, not at the
    /// next interval.
    snapshot_due: Mutex<Vec<String>>,
    app: OnceLock<Weak<dyn TenantHost>>,
}

/// The node's runtime and control loop; dropping it stops both.
pub struct ClusterHandle {
    pub node: Arc<ClusterNode>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ClusterHandle {
    /// Gives every tenant up (revokes the lease), so the others take them
    /// at once. Runs on a thread of its own (callable from async code).
    pub fn resign(self) {
        let _ = std::thread::spawn(move || self.resign_here()).join();
    }

    fn resign_here(mut self) {
        if let Some(rt) = self.runtime.take() {
            let node = self.node.clone();
            let _ = rt.block_on(async move {
                tokio::time::timeout(Duration::from_secs(2), async { node.own.lock().await.resign().await }).await
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster runtime: {0}")]
    Runtime(std::io::Error),
    #[error("etcd: {0}")]
    Etcd(#[from] cluster::OwnershipError),
    #[error("the commit log: {0}")]
    Log(#[from] LogError),
}

fn dsn_error(e: &LogError) -> String {
    // tokio-postgres errors name the host and the cause, never the password.
    e.to_string()
}

impl ClusterNode {
    /// Connects to etcd (the node's lease) and to the commit log. Runs on a
    /// thread of its own: callable from inside another async runtime.
    pub fn start(config: ClusterConfig, writers: usize) -> Result<ClusterHandle, ClusterError> {
        std::thread::scope(|s| s.spawn(|| Self::start_here(config, writers)).join())
            .unwrap_or_else(|_| Err(ClusterError::Runtime(std::io::Error::other("the cluster start panicked"))))
    }

    fn start_here(config: ClusterConfig, writers: usize) -> Result<ClusterHandle, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tl-cluster")
            .enable_all()
            .build()
            .map_err(ClusterError::Runtime)?;
        let (own, first_log) = runtime.block_on(async {
            let own = Ownership::start(&config.etcd, &config.node, &config.advertise, config.lease_ttl).await?;
            // PostgreSQL may be failing over right now: the node starts and
            // connects when it first needs the log (it serves nothing until then).
            let log = match CommitLog::connect(&config.postgres).await {
                Ok(log) => Some(log),
                Err(e) => {
                    tracing::warn!(cause = %e, "the commit log is not reachable yet; retrying as needed");
                    None
                }
            };
            Ok::<_, ClusterError>((own, log))
        })?;
        let mut logs = vec![tokio::sync::Mutex::new(first_log)];
        logs.extend((1..writers.max(1)).map(|_| tokio::sync::Mutex::new(None)));
        let node = Arc::new(ClusterNode {
            liveness: own.liveness(),
            config,
            rt: runtime.handle().clone(),
            own: tokio::sync::Mutex::new(own),
            logs,
            owned: RwLock::new(HashMap::new()),
            lost: Mutex::new(Vec::new()),
            snapshot_due: Mutex::new(Vec::new()),
            app: OnceLock::new(),
        });
        Ok(ClusterHandle { node, runtime: Some(runtime) })
    }

    /// Starts the control loop (ownership, standby, snapshots, routing) for `app`'s tenants.
    pub fn run(self: &Arc<Self>, app: Arc<dyn TenantHost>) {
        let _ = self.app.set(Arc::downgrade(&app));
        let me = self.clone();
        self.rt.spawn(async move { follow::control_loop(me).await });
    }

    fn app(&self) -> Option<Arc<dyn TenantHost>> {
        self.app.get().and_then(Weak::upgrade)
    }

    /// Whether this node serves `tenant` now: it owns it and its lease holds.
    pub fn serves(&self, tenant: &TenantId) -> bool {
        self.liveness.live() && self.owned.read().unwrap_or_else(PoisonError::into_inner).contains_key(tenant.as_str())
    }

    /// The tenants this node owns now, with their epochs.
    pub fn owned(&self) -> Vec<(String, u64)> {
        self.owned.read().unwrap_or_else(PoisonError::into_inner).iter().map(|(t, o)| (t.clone(), o.epoch)).collect()
    }

    /// A patient of `tenant` was erased: snapshot it now (which prunes the
    /// log of every record before, the erased patient's pages among them).
    pub fn snapshot_soon(&self, tenant: &TenantId) {
        self.snapshot_due.lock().unwrap_or_else(PoisonError::into_inner).push(tenant.as_str().to_owned());
    }

    /// A shipper asks for its tenant to be given up.
    fn lose(&self, tenant: &str) {
        self.lost.lock().unwrap_or_else(PoisonError::into_inner).push(tenant.to_owned());
    }

    /// The commit hook for an owned tenant's store, opened at `path`.
    pub fn attach(
        self: &Arc<Self>,
        tenant: &TenantId,
        log_key: &crypto::Key256,
        image: &[u8],
    ) -> Result<Box<dyn CommitHook>, String> {
        let (epoch, state) = {
            let owned = self.owned.read().unwrap_or_else(PoisonError::into_inner);
            let o = owned.get(tenant.as_str()).ok_or("this node does not own the tenant")?;
            (o.epoch, o.state.clone())
        };
        let (seq, checksum) = state.point();
        let capture = replication::Capture::new(tenant.as_str(), epoch, seq, image, follow::PAGE_SIZE);
        if capture.checksum() != checksum {
            state.breaks("the store on disk is not the log's");
            self.lose(tenant.as_str());
            return Err("the tenant's store on disk is not the one the log describes".into());
        }
        Ok(Box::new(shipper::Shipper {
            tenant: tenant.as_str().to_owned(),
            epoch,
            capture,
            key: replication::LogKey::new(log_key.expose_secret()),
            buf: Vec::new(),
            node: self.clone(),
            state,
        }))
    }

    /// Appends on the node's runtime; blocks this (non-async) thread until done.
    fn append(self: &Arc<Self>, tenant: &str, epoch: u64, records: Vec<(u64, Vec<u8>)>) -> Result<(), AppendError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let me = self.clone();
        let tenant = tenant.to_owned();
        self.rt.spawn(async move {
            let r = me.append_async(&tenant, epoch, &records).await;
            let _ = tx.send(r);
        });
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| Err(AppendError::Unavailable("the append did not finish in 10 s".into())))
    }

    async fn append_async(&self, tenant: &str, epoch: u64, records: &[(u64, Vec<u8>)]) -> Result<(), AppendError> {
        let mut slot = self.log_slot(tenant).await;
        let log = self.connected(&mut slot).await.map_err(|e| AppendError::Unavailable(dsn_error(&e)))?;
        match tokio::time::timeout(Duration::from_secs(5), log.append(tenant, epoch, records)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e @ (LogError::Fenced { .. } | LogError::Conflict { .. }))) => {
                crate::metrics::get().fenced.inc();
                Err(AppendError::Fenced(e.to_string()))
            }
            Ok(Err(e)) => {
                *slot = None;
                Err(AppendError::Unavailable(dsn_error(&e)))
            }
            Err(_) => {
                *slot = None;
                Err(AppendError::Unavailable("PostgreSQL did not answer in 5 s".into()))
            }
        }
    }

    /// A free log connection, else the tenant's own slot.
    async fn log_slot(&self, tenant: &str) -> tokio::sync::MutexGuard<'_, Option<CommitLog>> {
        for l in &self.logs {
            if let Ok(g) = l.try_lock() {
                return g;
            }
        }
        let i = tenant.bytes().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize)) % self.logs.len();
        self.logs[i].lock().await
    }

    async fn connected<'a>(&self, slot: &'a mut Option<CommitLog>) -> Result<&'a mut CommitLog, LogError> {
        if slot.as_ref().is_some_and(|l| l.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            let log =
                match tokio::time::timeout(Duration::from_secs(3), CommitLog::connect(&self.config.postgres)).await {
                    Ok(r) => r?,
                    Err(_) => return Err(LogError::Timeout),
                };
            *slot = Some(log);
        }
        slot.as_mut().ok_or(LogError::Timeout)
    }
}
