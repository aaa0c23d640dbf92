//! The node's control loop: keeps its lease, gives up what it no longer
//! owns, follows the rest as a standby, takes tenants whose owner is gone,
//! snapshots what it owns, and keeps HAProxy pointed at it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{CommitLog, Owner, Revocation, RevocationKind, Snapshot};
use replication::{Checksum, CommitRecord, LogKey, Replica};

use super::{ClusterNode, Owned, ShipState};
use store::ids::TenantId;

/// SQLCipher's page size (4 KiB, the store's default).
pub const PAGE_SIZE: u32 = 4096;
const TICK: Duration = Duration::from_millis(100);
/// A node of rank r waits r × this after an owner's key went before it tries.
const RANK_STEP: Duration = Duration::from_millis(250);
/// During a planned move the other nodes leave the tenant to its target this long.
const MOVE_WAIT: Duration = Duration::from_secs(3);

/// A tenant this node follows.
struct Follower {
    replica: Option<Replica>,
    key: LogKey,
    path: PathBuf,
    /// Since when no one owns it, as this node saw.
    free_since: Option<Instant>,
}

fn sidecars(path: &Path) -> [PathBuf; 2] {
    let with = |s: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(s);
        PathBuf::from(p)
    };
    [with("-wal"), with("-shm")]
}

fn remove_store_files(path: &Path) {
    for p in sidecars(path) {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_file(path);
}

/// Writes a snapshot as the tenant's store file (durably) and opens it as a replica.
fn restore(path: &Path, snap: &Snapshot) -> Result<Replica, String> {
    let tmp = path.with_extension("db.restore");
    std::fs::write(&tmp, &snap.image).map_err(|e| e.to_string())?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
    for p in sidecars(path) {
        let _ = std::fs::remove_file(p);
    }
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    let replica = Replica::open(path, PAGE_SIZE, snap.seq, snap.epoch).map_err(|e| e.to_string())?;
    if replica.checksum() != snap.checksum {
        return Err("the snapshot does not match its checksum".into());
    }
    Ok(replica)
}

impl ClusterNode {
    async fn log_once<T, F>(&self, f: F) -> Result<T, String>
    where
        F: for<'a> FnOnce(
            &'a mut CommitLog,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<T, cluster::LogError>> + Send + 'a>>,
    {
        let mut slot = self.logs[0].lock().await;
        let log = self.connected(&mut slot).await.map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(10), f(log)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if !matches!(e, cluster::LogError::Fenced { .. } | cluster::LogError::Conflict { .. }) {
                    *slot = None;
                }
                Err(e.to_string())
            }
            Err(_) => {
                *slot = None;
                Err("PostgreSQL did not answer in 10 s".into())
            }
        }
    }

    /// Applies the log's new records to the follower's copy; restores from
    /// the snapshot first when there is no copy or it diverged.
    async fn follow(&self, tenant: &str, f: &mut Follower) -> Result<(), String> {
        if f.replica.is_none() {
            let t = tenant.to_owned();
            let Some(snap) = self.log_once(move |l| Box::pin(async move { l.snapshot(&t).await })).await? else {
                return Ok(());
            };
            f.replica = Some(restore(&f.path, &snap)?);
        }
        loop {
            let Some(r) = f.replica.as_mut() else { return Ok(()) };
            let (t, seq) = (tenant.to_owned(), r.seq());
            let batch = self.log_once(move |l| Box::pin(async move { l.since(&t, seq, 256).await })).await?;
            if batch.is_empty() {
                return Ok(());
            }
            for (_, bytes) in &batch {
                let applied = CommitRecord::decode(bytes, &f.key).and_then(|rec| r.apply(&rec));
                if let Err(e) = applied {
                    // Diverged, or the log moved past this copy (a newer
                    // snapshot pruned what it needs): rebuilt, never patched.
                    tracing::warn!(tenant, cause = %e, "standby copy rebuilt from the snapshot");
                    f.replica = None;
                    remove_store_files(&f.path);
                    return Ok(());
                }
            }
        }
    }

    /// Takes `tenant` at `epoch`: the log's epoch raised, caught up, served.
    async fn promote(&self, tenant: &str, epoch: u64, f: &mut Follower) -> Result<(), String> {
        let t = tenant.to_owned();
        if !self.log_once(move |l| Box::pin(async move { l.claim(&t, epoch).await })).await? {
            return Err("the log already has a newer epoch".into());
        }
        self.follow(tenant, f).await?;
        if f.replica.is_none() {
            self.bootstrap(tenant, epoch, f).await?;
        }
        // Everything acknowledged before the claim is in the log: read to its end.
        self.follow(tenant, f).await?;
        let Some(r) = f.replica.take() else { return Err("no copy to serve from".into()) };
        let (seq, checksum) = (r.seq(), r.checksum());
        drop(r);
        for p in sidecars(&f.path) {
            let _ = std::fs::remove_file(p);
        }
        let state = Arc::new(ShipState::new(seq, checksum));
        self.owned
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.to_owned(), Owned { epoch, state });
        crate::metrics::get().takeovers.inc();
        Ok(())
    }

    /// The first owner of a tenant the log has never seen: its own store,
    /// checkpointed, becomes the first snapshot.
    async fn bootstrap(&self, tenant: &str, epoch: u64, f: &mut Follower) -> Result<(), String> {
        let app = self.app().ok_or("the server is stopping")?;
        let id = TenantId::parse(tenant).ok_or("not a tenant id")?;
        let keys = app.tenant_keys(&id)?;
        let path = f.path.clone();
        let image = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let store = store::TenantStore::open(&path, keys).map_err(|e| e.to_string())?;
            store.checkpointed_image().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        let checksum = Checksum::of_image(&image, PAGE_SIZE as usize).value();
        let snap = Snapshot { seq: 0, epoch, checksum, image };
        let t = tenant.to_owned();
        let s2 = snap.clone();
        self.log_once(move |l| Box::pin(async move { l.put_snapshot(&t, epoch, &s2).await })).await?;
        f.replica = Some(Replica::open(&f.path, PAGE_SIZE, 0, epoch).map_err(|e| e.to_string())?);
        tracing::info!(tenant, "first snapshot of the tenant put in the commit log");
        Ok(())
    }

    /// Gives `tenant` up: nothing more is acknowledged for it here, its store
    /// closes, and its copy is rebuilt from the log as a standby's.
    async fn demote(&self, tenant: &str, why: &str) {
        let removed = self.owned.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(tenant);
        let Some(o) = removed else { return };
        o.state.breaks(why);
        crate::metrics::get().fenced.inc();
        tracing::warn!(tenant, epoch = o.epoch, reason = why, "gave the tenant up");
        if let (Some(app), Some(id)) = (self.app(), TenantId::parse(tenant)) {
            let path = app.tenant_path(&id);
            let _ = tokio::task::spawn_blocking(move || {
                app.close_tenant(&id, Duration::from_secs(10));
                remove_store_files(&path);
            })
            .await;
        }
        let _ = self.own.lock().await.release(tenant, o.epoch).await;
    }

    /// Puts a fresh snapshot of an owned tenant in the log (pruning what it covers).
    async fn snapshot(&self, tenant: &str, epoch: u64, state: Arc<ShipState>) -> Result<(), String> {
        let app = self.app().ok_or("the server is stopping")?;
        let id = TenantId::parse(tenant).ok_or("not a tenant id")?;
        let taken = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let mut taken = None;
            let open = app.with_open_store(&id, &mut |store| {
                let image = store.checkpointed_image().map_err(|e| e.to_string())?;
                let (seq, checksum) = state.point();
                taken = Some((seq, checksum, image));
                Ok(())
            })?;
            Ok(taken.filter(|_| open))
        })
        .await
        .map_err(|e| e.to_string())??;
        let Some((seq, checksum, image)) = taken else { return Ok(()) };
        if Checksum::of_image(&image, PAGE_SIZE as usize).value() != checksum {
            self.lose(tenant);
            return Err("the store diverged from what was shipped".into());
        }
        let t = tenant.to_owned();
        let snap = Snapshot { seq, epoch, checksum, image };
        let pruned = self.log_once(move |l| Box::pin(async move { l.put_snapshot(&t, epoch, &snap).await })).await?;
        tracing::info!(tenant, seq, pruned, "snapshot put in the commit log");
        Ok(())
    }
}

/// The loop; runs until the runtime stops.
/// How often a node publishes its revocations and applies the others'.
const REVOCATIONS_EVERY: Duration = Duration::from_secs(1);

impl ClusterNode {
    /// Certificate revocations and staff disables (or enables) made on any
    /// node reach every node within about a second (L8 of the second
    /// review): each node publishes what its copy of the system store has
    /// that the log has not seen from it, and applies what the others
    /// published. Only PostgreSQL is needed, not etcd.
    async fn sync_revocations(
        &self,
        app: &dyn super::TenantHost,
        published: &mut std::collections::HashSet<Revocation>,
    ) -> Result<usize, String> {
        let system = || app.system().lock().map_err(|_| "the system store's lock is poisoned".to_owned());
        let local: Vec<Revocation> = {
            let sys = system()?;
            let certs = sys.certificate_revocations().map_err(|e| e.to_string())?;
            let staff = sys.staff_status_changes().map_err(|e| e.to_string())?;
            certs
                .into_iter()
                .map(|(serial, at)| Revocation {
                    kind: RevocationKind::Certificate,
                    subject: serial,
                    revoked: true,
                    at,
                })
                .chain(staff.into_iter().map(|(id, disabled, at)| Revocation {
                    kind: RevocationKind::Staff,
                    subject: id,
                    revoked: disabled,
                    at,
                }))
                .collect()
        };
        let fresh: Vec<Revocation> = local.iter().filter(|r| !published.contains(*r)).cloned().collect();
        if !fresh.is_empty() {
            let items = fresh.clone();
            self.log_once(move |log| Box::pin(async move { log.publish_revocations(&items).await })).await?;
            published.extend(fresh);
        }
        let remote = self.log_once(|log| Box::pin(log.revocations())).await?;
        let now = app.now_ms();
        let mut sys = system()?;
        let mut applied = 0;
        for r in remote.into_iter().filter(|r| !local.contains(r)) {
            let changed = match r.kind {
                RevocationKind::Certificate => matches!(
                    sys.revoke_certificate(&r.subject, "revoked on another node", "cluster", now),
                    Ok(store::Revocation::Revoked)
                ),
                RevocationKind::Staff => sys.apply_staff_status(&r.subject, r.revoked, r.at, now).unwrap_or(false),
            };
            if changed {
                tracing::info!(kind = r.kind.as_str(), "applied a revocation made on another node");
                applied += 1;
            }
        }
        Ok(applied)
    }
}

pub(super) async fn control_loop(node: Arc<ClusterNode>) {
    let mut followers: HashMap<String, Follower> = HashMap::new();
    let mut tenants: Vec<(String, String)> = Vec::new();
    let mut last_list = Instant::now() - Duration::from_secs(60);
    let mut last_follow = Instant::now() - Duration::from_secs(60);
    let mut last_route = Instant::now() - Duration::from_secs(60);
    let mut last_snapshot = Instant::now();
    let mut last_revocations = Instant::now() - Duration::from_secs(60);
    let mut published = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(TICK).await;
        let Some(app) = node.app() else { return };
        if last_revocations.elapsed() >= REVOCATIONS_EVERY {
            last_revocations = Instant::now();
            if let Err(e) = node.sync_revocations(&*app, &mut published).await {
                tracing::warn!(cause = %e, "revocations not exchanged this second");
            }
        }
        // A lease etcd dropped took every owner key with it.
        if node.own.lock().await.lost() {
            for (t, _) in node.owned() {
                node.demote(&t, "this node's lease expired").await;
            }
            if let Err(e) = node.own.lock().await.renew().await {
                tracing::warn!(cause = %e, "etcd: no new lease yet");
                continue;
            }
            tracing::info!("a new lease from etcd");
        }
        let lost: Vec<String> =
            std::mem::take(&mut *node.lost.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for t in lost {
            node.demote(&t, "the commit log refused this node's commits").await;
        }
        let owners: HashMap<String, Owner> = match node.own.lock().await.owners().await {
            Ok(o) => o.into_iter().map(|o| (o.tenant.clone(), o)).collect(),
            Err(e) => {
                tracing::debug!(cause = %e, "etcd unreachable this tick");
                continue;
            }
        };
        for (t, epoch) in node.owned() {
            if owners.get(&t).map(|o| o.epoch) != Some(epoch) {
                node.demote(&t, "another node owns the tenant now").await;
            }
        }
        // A key of this node's that it does not serve from (a release that
        // failed while etcd was electing): given back, or no one would take it.
        let owned_now: HashMap<String, u64> = node.owned().into_iter().collect();
        for o in owners.values().filter(|o| o.node == node.config.node && !owned_now.contains_key(&o.tenant)) {
            let _ = node.own.lock().await.release(&o.tenant, o.epoch).await;
        }
        // Planned moves: the owner hands over (everything it acknowledged is
        // in the log), the named node takes the tenant first.
        let moves: HashMap<String, String> =
            node.own.lock().await.moves().await.unwrap_or_default().into_iter().collect();
        for (t, _) in node.owned() {
            if let Some(to) = moves.get(&t).filter(|to| **to != node.config.node) {
                node.demote(&t, &format!("moving to {to}")).await;
            }
        }
        if last_list.elapsed() >= Duration::from_secs(2) {
            last_list = Instant::now();
            if let Ok(list) = app.tenant_names() {
                tenants = list.into_iter().map(|(id, name)| (id.to_string(), name)).collect();
            }
        }
        let follow_now = last_follow.elapsed() >= Duration::from_millis(250);
        if follow_now {
            last_follow = Instant::now();
        }
        let owned: HashMap<String, u64> = node.owned().into_iter().collect();
        for (t, name) in &tenants {
            if owned.contains_key(t) {
                followers.remove(t);
                continue;
            }
            let Some(id) = TenantId::parse(t) else { continue };
            if !followers.contains_key(t) {
                let Ok(keys) = app.tenant_keys(&id) else { continue };
                let path = app.tenant_path(&id);
                let key = LogKey::new(keys.log_key().expose_secret());
                followers.insert(t.clone(), Follower { replica: None, key, path, free_since: None });
            }
            let Some(f) = followers.get_mut(t) else { continue };
            if owners.contains_key(t) {
                f.free_since = None;
                if follow_now && let Err(e) = node.follow(t, f).await {
                    tracing::debug!(tenant = %t, cause = %e, "standby could not follow this pass");
                }
                continue;
            }
            let free = *f.free_since.get_or_insert_with(Instant::now);
            let wait = match moves.get(t) {
                Some(to) if *to == node.config.node => Duration::ZERO,
                Some(_) => MOVE_WAIT + RANK_STEP * node.config.rank(t) as u32,
                None => RANK_STEP * node.config.rank(t) as u32,
            };
            if free.elapsed() < wait || !node.liveness.live() {
                continue;
            }
            let acquired = node.own.lock().await.acquire(t).await;
            match acquired {
                Ok(Some(epoch)) => {
                    let started = Instant::now();
                    match node.promote(t, epoch, f).await {
                        Ok(()) => {
                            tracing::info!(tenant = %t, epoch, caught_up_ms = started.elapsed().as_millis() as u64, "serving the tenant");
                            if moves.contains_key(t) {
                                let _ = node.own.lock().await.clear_move(t).await;
                            }
                            super::haproxy::route(&node.config, &node.config.hostname(name)).await;
                        }
                        Err(e) => {
                            tracing::warn!(tenant = %t, cause = %e, "could not take the tenant; released");
                            let _ = node.own.lock().await.release(t, epoch).await;
                        }
                    }
                }
                Ok(None) => f.free_since = None,
                Err(e) => tracing::debug!(tenant = %t, cause = %e, "etcd refused the acquire"),
            }
        }
        crate::metrics::get().owned_tenants.set(node.owned().len() as i64);
        // HAProxy forgets runtime changes when it restarts: say it again, often.
        if last_route.elapsed() >= Duration::from_secs(2) {
            last_route = Instant::now();
            // What each standby has applied, for `cluster status`.
            for (t, f) in &followers {
                if let Some(r) = &f.replica {
                    let _ = node.own.lock().await.report_standby(t, r.seq()).await;
                }
            }
            for (t, name) in &tenants {
                if owned.contains_key(t) {
                    super::haproxy::route(&node.config, &node.config.hostname(name)).await;
                }
            }
        }
        let due: Vec<String> =
            std::mem::take(&mut *node.snapshot_due.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let every = last_snapshot.elapsed() >= node.config.snapshot_every;
        if every || !due.is_empty() {
            if every {
                last_snapshot = Instant::now();
            }
            let states: Vec<(String, u64, Arc<ShipState>)> = node
                .owned
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .filter(|(t, _)| every || due.contains(t))
                .map(|(t, o)| (t.clone(), o.epoch, o.state.clone()))
                .collect();
            for (t, epoch, state) in states {
                if let Err(e) = node.snapshot(&t, epoch, state).await {
                    tracing::warn!(tenant = %t, cause = %e, "snapshot failed; the log keeps growing until the next");
                }
            }
        }
    }
}
