//! The running state every request and every background task shares: the
//! certificate registry, the tenant pool, the clock, the confirmation
//! throttle. The cluster sees it only as a [`TenantHost`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use store::ids::TenantId;
use store::{SystemStore, TenantStore};

use crate::clock::Clock;
use crate::ha::TenantHost;
use crate::tenants::TenantPool;
use crate::throttle;
use crate::tls::{CertRegistry, TlsCounters};

/// Shared, thread-safe server state handed to every worker.
pub struct AppState {
    pub registry: Arc<CertRegistry>,
    pub counters: Arc<TlsCounters>,
    pub started: Instant,
    pub body_limit: usize,
    pub tenants: TenantPool,
    pub clock: Arc<dyn Clock>,
    pub confirm_throttle: throttle::ConfirmThrottle,
    /// The whole request, body included, must be done within this.
    pub request_deadline: std::time::Duration,
}

impl TenantHost for AppState {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn tenant_names(&self) -> Result<Vec<(TenantId, String)>, String> {
        self.tenants.tenant_names().map_err(|e| e.to_string())
    }

    fn tenant_keys(&self, id: &TenantId) -> Result<crypto::TenantKeys, String> {
        self.tenants.tenant_keys(id).map_err(|e| e.to_string())
    }

    fn tenant_path(&self, id: &TenantId) -> PathBuf {
        self.tenants.tenant_path(id)
    }

    fn close_tenant(&self, id: &TenantId, wait: std::time::Duration) {
        if let Some(h) = self.tenants.evict(id) {
            let started = Instant::now();
            while Arc::strong_count(&h.store) > 1 && started.elapsed() < wait {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    fn with_open_store(
        &self,
        id: &TenantId,
        f: &mut dyn FnMut(&TenantStore) -> Result<(), String>,
    ) -> Result<bool, String> {
        let Some(handle) = self.tenants.get_open(id).map_err(|e| e.to_string())? else { return Ok(false) };
        let store = handle.store.lock().map_err(|e| e.to_string())?;
        f(&store)?;
        Ok(true)
    }

    fn system(&self) -> &Mutex<SystemStore> {
        self.tenants.system()
    }
}
