//! The server's tenants: each store opened on first use (lazy, so a cold
//! start with many tenants costs nothing until they are called), with its
//! settings and policy read once at open. A tenant created by the CLI while
//! the server runs is found by re-reading the keyring with the master key
//! already held (no key derivation).
//!
//! One connection per tenant; requests reach it through group commit
//! ([`crate::group_commit`]) on the pool's writer threads: one fsync per
//! group of requests, not per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crypto::{CryptoError, UnlockedKeyring};
use policy::{StateTtl, TenantPolicy};

use crate::Error;
use crate::continuity::TenantSettings;
use crate::datadir::DataDir;
use crate::group_commit::{Grouped, Writers};
use crate::ids::TenantId;
use crate::store::{SystemStore, TenantStore};

/// Recent turns handed back in a resume context.
pub const RECENT_TURNS: u32 = 20;

pub struct TenantHandle {
    /// The store behind group commit (`run`), or taken whole (`lock`).
    pub store: Arc<Grouped>,
    pub settings: TenantSettings,
}

pub struct TenantPool {
    dir: DataDir,
    keyring: Mutex<UnlockedKeyring>,
    system: Mutex<SystemStore>,
    open: RwLock<HashMap<TenantId, Arc<TenantHandle>>>,
    group_commit: bool,
    writers: Writers,
}

impl TenantPool {
    pub fn new(dir: DataDir, keyring: UnlockedKeyring, system: SystemStore) -> Result<Self, Error> {
        Ok(TenantPool {
            dir,
            keyring: Mutex::new(keyring),
            system: Mutex::new(system),
            open: RwLock::new(HashMap::new()),
            group_commit: true,
            writers: Writers::start(crate::group_commit::default_writers())
                .map_err(|source| Error::Io { path: "writer threads".into(), source })?,
        })
    }

    /// Runs group commits on `n` writer threads instead of the default.
    pub fn with_writers(mut self, n: usize) -> Result<Self, Error> {
        self.writers = Writers::start(n).map_err(|source| Error::Io { path: "writer threads".into(), source })?;
        Ok(self)
    }

    /// The tenant's store if it is already open (no blocking work).
    pub fn get_open(&self, id: &TenantId) -> Result<Option<Arc<TenantHandle>>, Error> {
        Ok(self.open.read().map_err(|_| Error::Poisoned)?.get(id).cloned())
    }

    /// Group commit on (the default) or off (to measure what it buys).
    pub fn with_group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// The tenant's open store, opening it on first use.
    pub fn get(&self, id: &TenantId) -> Result<Arc<TenantHandle>, Error> {
        if let Some(h) = self.get_open(id)? {
            return Ok(h);
        }
        let mut open = self.open.write().map_err(|_| Error::Poisoned)?;
        if let Some(h) = open.get(id) {
            return Ok(h.clone());
        }
        let handle = Arc::new(self.open_tenant(id)?);
        open.insert(id.clone(), handle.clone());
        Ok(handle)
    }

    /// The system store connection (for the erasure ledger).
    pub fn system(&self) -> &Mutex<SystemStore> {
        &self.system
    }

    /// Purges expired session state in every open tenant, and with
    /// `conversations`, conversations past the tenant's retention (the
    /// server's maintenance thread: state every minute, conversations hourly).
    pub fn purge(&self, now: i64, conversations: bool) -> Result<(u64, u64), Error> {
        let handles: Vec<Arc<TenantHandle>> =
            self.open.read().map_err(|_| Error::Poisoned)?.values().cloned().collect();
        let (mut state, mut convs) = (0, 0);
        for h in handles {
            let mut store = h.store.lock().map_err(|_| Error::Poisoned)?;
            state += store.purge_expired_state(now)?;
            if conversations {
                convs += store.purge_old_conversations(h.settings.policy.retention.conversation_days, now)?;
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
            (keys, crate::channels::email_settings(id, &row.name, email_row, &keyring)?)
        };
        let store = TenantStore::open(&self.dir.tenant_db(id), keys)?;
        let mut policy = match policy_toml {
            Some(t) => TenantPolicy::from_toml(&t)?,
            None => TenantPolicy::hipaa_default(),
        };
        let state_ttl = StateTtl::from_days(u64::from(row.state_ttl_days))?;
        policy.retention.state_ttl = state_ttl;
        let settings =
            TenantSettings { policy, region: row.default_region, state_ttl, recent_turns: RECENT_TURNS, email };
        Ok(TenantHandle { store: self.writers.tenant(store, self.group_commit), settings })
    }
}
