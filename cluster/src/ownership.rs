//! Who owns a tenant now, in etcd: one lease per node, one owner key per
//! tenant attached to it, and the key's creation revision as the epoch.
//!
//! - [`Ownership::start`] grants the node's lease and keeps it alive from a
//!   task of its own. The node's *local* deadline is half the TTL after the
//!   last keep-alive that etcd answered, measured from when it was sent: a
//!   node stops serving its tenants (`live` false) well before etcd can
//!   expire the lease and let another node take them. A paused node wakes
//!   past its deadline and serves nothing until it has a lease again.
//! - [`Ownership::acquire`] is one transaction: the owner key does not
//!   exist (`create_revision == 0`), then put it on this node's lease. The
//!   revision of that put is the epoch, cluster-wide monotonic and never
//!   reused; the commit log fences on it (`CommitLog::claim`), so safety
//!   never rests on etcd's timing, only liveness does.
//! - [`Ownership::release`] deletes the key only if it is still the one this
//!   node created (same create revision): a planned move or a shutdown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};

/// The owner keys' prefix; the tenant id follows.
pub const OWNER_PREFIX: &str = "/throughline/owner/";
/// Planned moves (`throughline cluster move`): tenant id → the node to take it.
pub const MOVE_PREFIX: &str = "/throughline/move/";
/// What each standby has applied: `<tenant>/<node>` → sequence, on the standby's lease.
pub const STANDBY_PREFIX: &str = "/throughline/standby/";

/// Why etcd refused or could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnershipError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd answered without a header or revision")]
    NoRevision,
    #[error("the lease TTL must be at least 2 s (etcd's minimum with its default timing)")]
    TtlTooShort,
}

/// One tenant's owner as etcd has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub tenant: String,
    /// The owner's value: `node-id address`.
    pub node: String,
    pub address: String,
    pub epoch: u64,
}

#[derive(Debug)]
struct LeaseState {
    id: i64,
    /// Local deadline: serving stops at this instant unless renewed.
    until: Instant,
    /// etcd said the lease is gone (TTL 0): a new one is needed.
    lost: bool,
}

/// Whether a node's lease is held now, by its local deadline.
#[derive(Clone, Debug)]
pub struct Liveness(Arc<Mutex<LeaseState>>);

impl Liveness {
    pub fn live(&self) -> bool {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        !s.lost && Instant::now() < s.until
    }
}

/// A node's hold on its tenants.
pub struct Ownership {
    client: etcd_client::Client,
    node: String,
    address: String,
    ttl: Duration,
    state: Arc<Mutex<LeaseState>>,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl Ownership {
    /// Connects to etcd and grants this node a lease of `ttl`.
    pub async fn start(endpoints: &[String], node: &str, address: &str, ttl: Duration) -> Result<Self, OwnershipError> {
        if ttl < Duration::from_secs(2) {
            return Err(OwnershipError::TtlTooShort);
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(500))
            .with_timeout(ttl / 2)
            .with_keep_alive(Duration::from_secs(1), Duration::from_millis(500));
        let client = etcd_client::Client::connect(endpoints, Some(options)).await?;
        let mut me = Ownership {
            client,
            node: node.to_owned(),
            address: address.to_owned(),
            ttl,
            state: Arc::new(Mutex::new(LeaseState { id: 0, until: Instant::now(), lost: true })),
            keeper: None,
        };
        me.renew().await?;
        Ok(me)
    }

    /// Grants a fresh lease (after the last one was lost) and keeps it alive.
    pub async fn renew(&mut self) -> Result<(), OwnershipError> {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
        let sent = Instant::now();
        let granted = self.client.lease_grant(self.ttl.as_secs() as i64, None).await?;
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) =
            LeaseState { id: granted.id(), until: sent + self.ttl / 2, lost: false };
        self.keeper = Some(tokio::spawn(keep_alive(self.client.clone(), self.state.clone(), self.ttl)));
        Ok(())
    }

    /// A cheap handle answering [`Liveness::live`] (per request, no etcd call).
    pub fn liveness(&self) -> Liveness {
        Liveness(self.state.clone())
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the lease is held now, by the local deadline.
    pub fn live(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        !s.lost && Instant::now() < s.until
    }

    /// The local deadline, while the lease is held.
    pub fn deadline(&self) -> Option<Instant> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (!s.lost && Instant::now() < s.until).then_some(s.until)
    }

    /// etcd said the lease is gone: every owner key of this node went with it.
    pub fn lost(&self) -> bool {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).lost
    }

    fn lease(&self) -> i64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).id
    }

    /// Takes `tenant` if no one owns it: its epoch, or `None` when another node does.
    pub async fn acquire(&mut self, tenant: &str) -> Result<Option<u64>, OwnershipError> {
        if !self.live() {
            return Ok(None);
        }
        let key = format!("{OWNER_PREFIX}{tenant}");
        let value = format!("{} {}", self.node, self.address);
        let txn = Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(self.lease())),
        )]);
        let resp = self.client.txn(txn).await?;
        if !resp.succeeded() {
            return Ok(None);
        }
        let rev = resp.header().map(|h| h.revision()).ok_or(OwnershipError::NoRevision)?;
        u64::try_from(rev).map(Some).map_err(|_| OwnershipError::NoRevision)
    }

    /// Gives `tenant` up if this node's key for it (created at `epoch`) is
    /// still there: true if it was deleted now.
    pub async fn release(&mut self, tenant: &str, epoch: u64) -> Result<bool, OwnershipError> {
        let key = format!("{OWNER_PREFIX}{tenant}");
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, epoch as i64)])
            .and_then([TxnOp::delete(key, None)]);
        let resp = self.client.txn(txn).await?;
        Ok(resp.succeeded()
            && resp.op_responses().iter().any(|r| matches!(r, TxnOpResponse::Delete(d) if d.deleted() > 0)))
    }

    /// Every owner key now.
    pub async fn owners(&mut self) -> Result<Vec<Owner>, OwnershipError> {
        let resp = self.client.get(OWNER_PREFIX, Some(GetOptions::new().with_prefix())).await?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| {
                let tenant = kv.key_str().ok()?.strip_prefix(OWNER_PREFIX)?.to_owned();
                let (node, address) = kv.value_str().ok()?.split_once(' ')?;
                Some(Owner {
                    tenant,
                    node: node.to_owned(),
                    address: address.to_owned(),
                    epoch: u64::try_from(kv.create_revision()).ok()?,
                })
            })
            .collect())
    }

    /// Asks for `tenant` to move to `node` (the owner hands it over, `node` takes it).
    pub async fn request_move(&mut self, tenant: &str, node: &str) -> Result<(), OwnershipError> {
        self.client.put(format!("{MOVE_PREFIX}{tenant}"), node, None).await?;
        Ok(())
    }

    /// The planned moves asked for: (tenant, node).
    pub async fn moves(&mut self) -> Result<Vec<(String, String)>, OwnershipError> {
        self.prefixed(MOVE_PREFIX).await
    }

    /// A move is done (or void): forget it.
    pub async fn clear_move(&mut self, tenant: &str) -> Result<(), OwnershipError> {
        self.client.delete(format!("{MOVE_PREFIX}{tenant}"), None).await?;
        Ok(())
    }

    /// This node, as a standby of `tenant`, has applied the log up to `seq`.
    pub async fn report_standby(&mut self, tenant: &str, seq: u64) -> Result<(), OwnershipError> {
        let key = format!("{STANDBY_PREFIX}{tenant}/{}", self.node);
        self.client.put(key, seq.to_string(), Some(PutOptions::new().with_lease(self.lease()))).await?;
        Ok(())
    }

    /// Every standby's report: (tenant/node, seq).
    pub async fn standbys(&mut self) -> Result<Vec<(String, String)>, OwnershipError> {
        self.prefixed(STANDBY_PREFIX).await
    }

    async fn prefixed(&mut self, prefix: &str) -> Result<Vec<(String, String)>, OwnershipError> {
        let resp = self.client.get(prefix, Some(GetOptions::new().with_prefix())).await?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| {
                let k = kv.key_str().ok()?.strip_prefix(prefix)?.to_owned();
                Some((k, kv.value_str().ok()?.to_owned()))
            })
            .collect())
    }

    /// Gives every tenant up at once (a clean shutdown): revokes the lease.
    pub async fn resign(&mut self) -> Result<(), OwnershipError> {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
        let id = self.lease();
        self.state.lock().unwrap_or_else(PoisonError::into_inner).lost = true;
        self.client.lease_revoke(id).await?;
        Ok(())
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
    }
}

/// Keeps the lease alive every quarter TTL; each answer with TTL > 0 moves
/// the local deadline to half a TTL after that keep-alive was sent.
async fn keep_alive(mut client: etcd_client::Client, state: Arc<Mutex<LeaseState>>, ttl: Duration) {
    let id = state.lock().unwrap_or_else(PoisonError::into_inner).id;
    let every = ttl / 4;
    let mut last_ok = Instant::now();
    loop {
        // No keep-alive answered for a whole TTL (a partition, a pause, etcd
        // away): etcd has expired the lease or is about to, with every
        // owner key on it. Treat it as lost: the node asks for a new one
        // and gives up what it owned, rather than wait for an answer that
        // may never say so.
        if last_ok.elapsed() >= ttl {
            state.lock().unwrap_or_else(PoisonError::into_inner).lost = true;
            return;
        }
        let Ok(Ok((mut keeper, mut stream))) = tokio::time::timeout(every, client.lease_keep_alive(id)).await else {
            tokio::time::sleep(every / 2).await;
            continue;
        };
        loop {
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(every, stream.message()).await {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    last_ok = sent;
                    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                    s.until = s.until.max(sent + ttl / 2);
                }
                Ok(Ok(Some(_))) => {
                    state.lock().unwrap_or_else(PoisonError::into_inner).lost = true;
                    return;
                }
                // Timed out, or the stream ended: a new stream (a new etcd member, maybe).
                _ => break,
            }
            if last_ok.elapsed() >= ttl {
                break;
            }
            let elapsed = sent.elapsed();
            if elapsed < every {
                tokio::time::sleep(every - elapsed).await;
            }
        }
        tokio::time::sleep(every / 4).await;
    }
}
