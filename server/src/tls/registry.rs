//! Which certificate serial speaks for which tenant and channel, and which are
//! revoked: an in-memory snapshot of the system store's `certificates` table,
//! replaced whole by a refresher every second. Every request looks its serial
//! up here (a read lock and a hash look-up), so a revocation or a deleted
//! tenant takes effect within about a second, on live keep-alive connections
//! and resumed TLS sessions alike.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use store::CertRow as Binding;

/// After this long without a successful refresh the registry is stale and
/// requests are refused (fail closed: a revocation must never be missed).
pub const STALE_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct CertRegistry {
    bindings: RwLock<Arc<HashMap<String, Binding>>>,
    epoch: Instant,
    refreshed_ms: AtomicU64,
}

impl CertRegistry {
    pub fn new(rows: Vec<Binding>) -> Self {
        let registry = CertRegistry {
            bindings: RwLock::new(Arc::new(HashMap::new())),
            epoch: Instant::now(),
            refreshed_ms: AtomicU64::new(0),
        };
        registry.replace(rows);
        registry
    }

    /// Swaps in a fresh snapshot.
    pub fn replace(&self, rows: Vec<Binding>) {
        let map: HashMap<String, Binding> = rows.into_iter().map(|r| (r.serial.clone(), r)).collect();
        let fresh = Arc::new(map);
        match self.bindings.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        self.refreshed_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// True when no refresh succeeded for [`STALE_AFTER`].
    pub fn is_stale(&self) -> bool {
        let last = Duration::from_millis(self.refreshed_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last) > STALE_AFTER
    }

    pub fn get(&self, serial: &str) -> Option<Binding> {
        let snapshot = match self.bindings.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        snapshot.get(serial).cloned()
    }
}
