//! What the bridge remembers between a platform's requests, in memory
//! only and bounded: which session a call opened, and the answer to each
//! tool call (a replayed tool call gets the same answer, not a second
//! booking). No PHI: session ids and the one-line results already sent.
//! After a restart a call's session is found again through the core
//! (`external_ref` = the call id), so the bridge stays stateless.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use serde_json::Value;

const CAPACITY: usize = 16_384;

pub struct Memo {
    sessions: Mutex<LruCache<String, String>>,
    tool_results: Mutex<LruCache<String, Value>>,
    deliveries: Mutex<LruCache<String, ()>>,
}

impl Default for Memo {
    fn default() -> Self {
        let cap = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Memo {
            sessions: Mutex::new(LruCache::new(cap)),
            tool_results: Mutex::new(LruCache::new(cap)),
            deliveries: Mutex::new(LruCache::new(cap)),
        }
    }
}

fn key(route: &str, id: &str) -> String {
    format!("{route}\u{0}{id}")
}

impl Memo {
    pub fn session(&self, route: &str, call: &str) -> Option<String> {
        self.sessions.lock().ok()?.get(&key(route, call)).cloned()
    }

    pub fn remember_session(&self, route: &str, call: &str, session: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.put(key(route, call), session.to_owned());
        }
    }

    /// Whether a webhook delivery id was already handled.
    pub fn delivered(&self, route: &str, delivery: &str) -> bool {
        self.deliveries.lock().map(|mut m| m.get(&key(route, delivery)).is_some()).unwrap_or(false)
    }

    pub fn remember_delivery(&self, route: &str, delivery: &str) {
        if let Ok(mut m) = self.deliveries.lock() {
            m.put(key(route, delivery), ());
        }
    }

    pub fn tool_result(&self, route: &str, tool_call: &str) -> Option<Value> {
        self.tool_results.lock().ok()?.get(&key(route, tool_call)).cloned()
    }

    pub fn remember_tool_result(&self, route: &str, tool_call: &str, result: &Value) {
        if let Ok(mut m) = self.tool_results.lock() {
            m.put(key(route, tool_call), result.clone());
        }
    }
}
