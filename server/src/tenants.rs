//! The server's tenants: each store opened on first use (lazy, so a cold
//! start with many tenants costs nothing until they are called), with its
//! settings and policy read once at open. A tenant created by the CLI while
//! the server runs is found by re-reading the keyring with the master key
//! already held (no key derivation).
//!
//! One connection per tenant; requests reach it through group commit
//! ([`crate::group_commit`]) on the pool's writer threads: one fsync per
//! group of requests, not per request.
//!
//! Memory and files stay bounded however many tenants there are: SQLite's
//! page cache is one pool for all connections (built with
//! `SQLITE_ENABLE_MEMORY_MANAGEMENT`) under one budget
//! ([`DEFAULT_STORE_MEMORY_MIB`]: past it the least recently used pages of
//! any tenant are reused first), and a tenant idle for [`IDLE_CLOSE`] is
//! checkpointed and closed by the maintenance thread, to reopen on its next
//! request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crypto::{CryptoError, UnlockedKeyring};
use policy::{StateTtl, TenantPolicy};

use crate::Error;
use crate::group_commit::{Grouped, Writers};
use continuity::TenantSettings;
use store::datadir::DataDir;
use store::ids::TenantId;
use store::{SystemStore, TenantStore};

/// Recent turns handed back in a resume context.
pub const RECENT_TURNS: u32 = 20;

/// SQLite's memory for all tenants together (page cache, schemas, prepared
/// statements), by default: with 1,000 busy tenants the process stays under
/// 512 MiB (docs/PERFORMANCE.md).
pub const DEFAULT_STORE_MEMORY_MIB: u64 = 384;

/// The most of the shared budget one tenant's page cache may hold. With
/// SQLite's default (2 MiB) a tenant of 50,000 patients (85 MB) missed its
/// cache on most pages of a random patient's open, each miss a read and a
/// decryption: 64 MiB took such opens from 1,847 to 2,730/s
/// (docs/PERFORMANCE.md, issue 23).
pub const TENANT_CACHE_MIB: u32 = 64;

/// A tenant with no request for this long is closed (memory, three file
/// descriptors) until its next request.
pub const IDLE_CLOSE: Duration = Duration::from_secs(15 * 60);

/// A deleted tenant's store is crypto-shredded this long after deletion.
pub const TENANT_SHRED_GRACE_MS: i64 = 30 * 86_400_000;

pub struct TenantHandle {
    /// The store behind group commit (`run`), or taken whole (`lock`).
    pub store: Arc<Grouped>,
    pub settings: TenantSettings,
}

/// One tenant's place in the pool: opened once, by one thread, while the
/// others (all tenants' requests included) go on.
#[derive(Default)]
struct Slot {
    handle: OnceLock<Arc<TenantHandle>>,
    opening: Mutex<()>,
    /// Milliseconds since the pool started, at the last request.
    last_used: AtomicU64,
}

pub struct TenantPool {
    dir: DataDir,
    keyring: Mutex<UnlockedKeyring>,
    system: Mutex<SystemStore>,
    /// The map's lock is held only to find or add a slot, never while a
    /// store opens: a tenant's first request does not stall the others.
    open: RwLock<HashMap<TenantId, Arc<Slot>>>,
    group_commit: bool,
    writers: Writers,
    started: Instant,
    /// Cluster mode: which tenants this node serves, and their commit hooks.
    cluster: Option<Arc<crate::ha::ClusterNode>>,
}

impl TenantPool {
    pub fn new(dir: DataDir, keyring: UnlockedKeyring, system: SystemStore) -> Result<Self, Error> {
        TenantPool {
            dir,
            keyring: Mutex::new(keyring),
            system: Mutex::new(system),
            open: RwLock::new(HashMap::new()),
            group_commit: true,
            writers: Writers::start(crate::group_commit::default_writers())
                .map_err(|source| Error::Io { path: "writer threads".into(), source })?,
            started: Instant::now(),
            cluster: None,
        }
        .with_store_memory_mib(DEFAULT_STORE_MEMORY_MIB)
    }

    /// SQLite's memory budget for all tenants (process-wide).
    pub fn with_store_memory_mib(self, mib: u64) -> Result<Self, Error> {
        self.system.lock().map_err(|_| Error::Poisoned)?.set_memory_budget(mib.saturating_mul(1024 * 1024))?;
        Ok(self)
    }

    /// Runs group commits on `n` writer threads instead of the default.
    pub fn with_writers(mut self, n: usize) -> Result<Self, Error> {
        if n.max(1) != self.writers.count() {
            self.writers = Writers::start(n).map_err(|source| Error::Io { path: "writer threads".into(), source })?;
        }
        Ok(self)
    }

    /// The tenant's store if it is already open (no blocking work).
    pub fn get_open(&self, id: &TenantId) -> Result<Option<Arc<TenantHandle>>, Error> {
        let open = self.open.read().map_err(|_| Error::Poisoned)?;
        let Some(slot) = open.get(id) else { return Ok(None) };
        let handle = slot.handle.get().cloned();
        if handle.is_some() {
            slot.last_used.store(self.now_ms(), Ordering::Relaxed);
        }
        Ok(handle)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Open tenants now.
    pub fn open_count(&self) -> Result<usize, Error> {
        Ok(self.open.read().map_err(|_| Error::Poisoned)?.values().filter(|s| s.handle.get().is_some()).count())
    }

    /// Checkpoints and closes the tenants with no request for `idle`
    /// (maintenance), and forgets idle slots whose open failed (a deleted
    /// tenant). A request that comes meanwhile keeps the tenant open; one
    /// that still holds the old handle finishes on it. Returns how many
    /// stores were closed.
    pub fn close_idle(&self, idle: Duration) -> Result<usize, Error> {
        // Cluster mode: an owned store stays open (its capture lives in it).
        if self.cluster.is_some() {
            return Ok(0);
        }
        let limit = idle.as_millis() as u64;
        let is_idle = |s: &Slot| self.now_ms().saturating_sub(s.last_used.load(Ordering::Relaxed)) >= limit;
        let candidates: Vec<(TenantId, Arc<Slot>)> = self
            .open
            .read()
            .map_err(|_| Error::Poisoned)?
            .iter()
            // Not one being opened right now (its `opening` is held).
            .filter(|(_, s)| is_idle(s) && (s.handle.get().is_some() || s.opening.try_lock().is_ok()))
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        let mut closed = 0;
        for (id, slot) in candidates {
            if let Some(h) = slot.handle.get() {
                // Off the request path: the WAL folded in now, not at the
                // close (which may happen on whichever thread drops it last).
                let store = h.store.lock().map_err(|_| Error::Poisoned)?;
                if let Err(e) = store.checkpoint_truncate() {
                    tracing::warn!(tenant = %id, cause = %e, "checkpoint before closing an idle tenant failed");
                }
            }
            let mut open = self.open.write().map_err(|_| Error::Poisoned)?;
            if is_idle(&slot) && open.get(&id).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                open.remove(&id);
                closed += usize::from(slot.handle.get().is_some());
            }
        }
        Ok(closed)
    }

    /// Cluster mode: tenants are served only while `node` owns them, and
    /// each owned store ships its commits before they are answered.
    pub fn with_cluster(mut self, node: Arc<crate::ha::ClusterNode>) -> Self {
        self.cluster = Some(node);
        self
    }

    /// The cluster node, in cluster mode.
    pub fn cluster(&self) -> Option<&Arc<crate::ha::ClusterNode>> {
        self.cluster.as_ref()
    }

    /// Whether this process serves `id` now (always, outside cluster mode).
    pub fn serves(&self, id: &TenantId) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.serves(id))
    }

    /// A patient of `id` was erased. Cluster mode: the tenant is
    /// snapshotted at once, which prunes the commit log of the records
    /// before it (the erased patient's pages among them).
    pub fn erased(&self, id: &TenantId) {
        if let Some(c) = &self.cluster {
            c.snapshot_soon(id);
        }
    }

    /// The tenant's working keys (cluster mode: the standby's log key).
    pub fn tenant_keys(&self, id: &TenantId) -> Result<crypto::TenantKeys, Error> {
        let mut keyring = self.keyring.lock().map_err(|_| Error::Poisoned)?;
        match keyring.tenant_keys(id.as_str()) {
            Err(CryptoError::UnknownTenant { .. }) => {
                keyring.reload()?;
                Ok(keyring.tenant_keys(id.as_str())?)
            }
            other => Ok(other?),
        }
    }

    /// Where the tenant's store lives.
    pub fn tenant_path(&self, id: &TenantId) -> std::path::PathBuf {
        self.dir.tenant_db(id)
    }

    /// Every live tenant's id and name.
    pub fn tenant_names(&self) -> Result<Vec<(TenantId, String)>, Error> {
        let rows = self.system.lock().map_err(|_| Error::Poisoned)?.tenants()?;
        Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
    }

    /// Takes the tenant out of the pool (cluster mode: given up); the
    /// store closes once the last request holding it finishes.
    pub fn evict(&self, id: &TenantId) -> Option<Arc<TenantHandle>> {
        let slot = self.open.write().ok()?.remove(id)?;
        slot.handle.get().cloned()
    }

    /// Group commit on (the default) or off (to measure what it buys).
    pub fn with_group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// The tenant's open store, opening it on first use.
    pub fn get(&self, id: &TenantId) -> Result<Arc<TenantHandle>, Error> {
        if !self.serves(id) {
            return Err(Error::NotServedHere { id: id.to_string() });
        }
        if let Some(h) = self.get_open(id)? {
            return Ok(h);
        }
        let slot = self.open.write().map_err(|_| Error::Poisoned)?.entry(id.clone()).or_default().clone();
        slot.last_used.store(self.now_ms(), Ordering::Relaxed);
        let _opening = slot.opening.lock().map_err(|_| Error::Poisoned)?;
        if let Some(h) = slot.handle.get() {
            return Ok(h.clone());
        }
        let handle = Arc::new(self.open_tenant(id)?);
        let _ = slot.handle.set(handle.clone());
        Ok(handle)
    }

    /// Opens every tenant this node serves and rehearses a call on each
    /// (`serve --prewarm`), `threads` at a time, so no tenant's first request
    /// pays for opening its store or preparing its statements. A tenant that
    /// fails to open is logged and left to open on its first request.
    /// Returns how many were warmed.
    pub fn prewarm(&self, threads: usize, now: i64) -> Result<usize, Error> {
        let ids: Vec<TenantId> =
            self.tenant_names()?.into_iter().map(|(id, _)| id).filter(|id| self.serves(id)).collect();
        let next = AtomicU64::new(0);
        let warmed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed) as usize) {
                        match self.warm(id, now) {
                            Ok(()) => {
                                warmed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => tracing::warn!(tenant = %id, error = %e, "prewarm: the tenant opens on its first request"),
                        }
                    }
                });
            }
        });
        Ok(warmed.load(Ordering::Relaxed) as usize)
    }

    fn warm(&self, id: &TenantId, now: i64) -> Result<(), Error> {
        let handle = self.get(id)?;
        let mut store = handle.store.lock()?;
        continuity::rehearse(&mut store, &handle.settings, now)?;
        Ok(())
    }

    /// The system store connection (for the erasure ledger).
    pub fn system(&self) -> &Mutex<SystemStore> {
        &self.system
    }

    /// Crypto-shreds tenants deleted more than `grace_ms` ago, as `throughline
    /// purge` does, from the running server (its hourly pass): the keyring is
    /// re-read under the data directory's lock first, so a tenant another
    /// process just created is never dropped from it; the tenant is closed
    /// here, its key removed and saved, then its files go. A lock held by
    /// another command just means: next hour.
    pub fn shred_deleted(&self, grace_ms: i64, now: i64) -> Result<Vec<TenantId>, Error> {
        let _lock = self.dir.lock()?;
        let ids = self.system.lock().map_err(|_| Error::Poisoned)?.tenants_to_shred(now.saturating_sub(grace_ms))?;
        for id in &ids {
            self.open.write().map_err(|_| Error::Poisoned)?.remove(id);
            {
                let mut keyring = self.keyring.lock().map_err(|_| Error::Poisoned)?;
                keyring.reload()?;
                keyring.remove_tenant(id.as_str());
                keyring.save()?;
            }
            self.dir.remove_tenant_files(id)?;
            self.system.lock().map_err(|_| Error::Poisoned)?.mark_shredded(id, "throughline", now)?;
        }
        Ok(ids)
    }

    /// Signs a checkpoint for every tenant whose trail grew since its last
    /// one (the maintenance thread, on `serve --checkpoint-interval`). A
    /// tenant whose chain no longer verifies is logged loudly and skipped:
    /// the compliance console shows it red. Returns the checkpoints signed.
    pub fn checkpoint_all(&self, now: i64) -> Result<usize, Error> {
        let all = self.system.lock().map_err(|_| Error::Poisoned)?.tenants()?;
        let actor = store::AuditEntry {
            actor_kind: audit::ActorKind::System,
            peer: None,
            ..store::AuditEntry::operator("throughline", audit::Action::AuditCheckpoint)
        };
        let mut signed = 0;
        for row in all.into_iter().filter(|r| self.serves(&r.id)) {
            let handle = match self.get(&row.id) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(tenant = %row.id, error = %e, "could not open a tenant to sign its checkpoint");
                    continue;
                }
            };
            let mut store = handle.store.lock().map_err(|_| Error::Poisoned)?;
            match store.sign_checkpoint(&actor, now) {
                Ok(Some(_)) => signed += 1,
                Ok(None) => {}
                Err(e) => tracing::error!(tenant = %row.id, error = %e, "audit checkpoint refused"),
            }
        }
        Ok(signed)
    }

    /// Purges expired session state in every open tenant, and with
    /// `conversations`, in every tenant (opening the closed ones, so
    /// retention never waits for traffic) conversations past the tenant's
    /// retention (the server's maintenance thread: state every minute,
    /// conversations hourly). A tenant that fails is logged and skipped.
    pub fn purge(&self, now: i64, conversations: bool) -> Result<(u64, u64), Error> {
        if conversations {
            let all = self.system.lock().map_err(|_| Error::Poisoned)?.tenants()?;
            for row in all.into_iter().filter(|r| self.serves(&r.id)) {
                if let Err(e) = self.get(&row.id) {
                    tracing::error!(tenant = %row.id, error = %e, "could not open a tenant for the retention purge");
                }
            }
        }
        let handles: Vec<(TenantId, Arc<TenantHandle>)> = self
            .open
            .read()
            .map_err(|_| Error::Poisoned)?
            .iter()
            .filter_map(|(id, s)| s.handle.get().map(|h| (id.clone(), h.clone())))
            .collect();
        let (mut state, mut convs) = (0, 0);
        for (id, h) in handles {
            let mut store = h.store.lock().map_err(|_| Error::Poisoned)?;
            let purged = store.purge_expired_state(now).and_then(|n| {
                let c = if conversations {
                    store.purge_old_conversations(h.settings.policy.retention.conversation_days, now)?
                } else {
                    0
                };
                Ok((n, c))
            });
            match purged {
                Ok((n, c)) => {
                    state += n;
                    convs += c;
                }
                Err(e) => tracing::error!(tenant = %id, error = %e, "retention purge failed for a tenant"),
            }
        }
        Ok((state, convs))
    }

    fn open_tenant(&self, id: &TenantId) -> Result<TenantHandle, Error> {
        let (row, policy_toml, email_row) = {
            let system = self.system.lock().map_err(|_| Error::Poisoned)?;
            let row = system.tenant_by_id(id)?.ok_or_else(|| Error::TenantNotFound { name: id.to_string() })?;
            let toml = system.tenant_policy(id)?;
            let email = system.tenant_email(id)?;
            (row, toml, email)
        };
        let (keys, email) = {
            let mut keyring = self.keyring.lock().map_err(|_| Error::Poisoned)?;
            let keys = match keyring.tenant_keys(id.as_str()) {
                Err(CryptoError::UnknownTenant { .. }) => {
                    keyring.reload()?;
                    keyring.tenant_keys(id.as_str())?
                }
                other => other?,
            };
            (keys, continuity::channels::email_settings(id, &row.name, email_row, &keyring)?)
        };
        let path = self.dir.tenant_db(id);
        let log_key = self
            .cluster
            .as_ref()
            .map(|_| crypto::Key256::init_with(|k| k.copy_from_slice(keys.log_key().expose_secret())));
        let mut store = TenantStore::open(&path, keys)?;
        store.set_page_cache_mib(TENANT_CACHE_MIB)?;
        if let (Some(node), Some(log_key)) = (&self.cluster, log_key) {
            let image = store.file_image()?;
            let hook =
                node.attach(id, &log_key, &image).map_err(|e| Error::Store(store::StoreError::NotReplicated(e)))?;
            store.set_commit_hook(hook)?;
        }
        let mut policy = match policy_toml {
            Some(t) => TenantPolicy::from_toml(&t)?,
            None => TenantPolicy::hipaa_default(),
        };
        let state_ttl = StateTtl::from_days(u64::from(row.state_ttl_days))?;
        policy.retention.state_ttl = state_ttl;
        let zone = continuity::calendar::ClinicZone::parse(&row.time_zone).unwrap_or_else(|_| {
            tracing::warn!(tenant = %id, "stored time zone unknown to this time-zone database; using UTC");
            continuity::calendar::ClinicZone::utc()
        });
        let settings =
            TenantSettings { policy, region: row.default_region, zone, state_ttl, recent_turns: RECENT_TURNS, email };
        Ok(TenantHandle { store: self.writers.tenant(store, self.group_commit), settings })
    }
}
