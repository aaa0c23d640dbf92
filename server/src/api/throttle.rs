//! The per-certificate throttle on failed identity confirmations (H1 of the
//! security review): a channel integration whose callers fail confirmation
//! too often, across any number of patients and sessions, gets 429 with
//! `Retry-After` until its window slides. The per-patient lockout stops a
//! guesser aiming at one patient; this stops one integration (a web chat
//! opened to the world) from guessing at many. In memory: a restart forgets
//! it, the per-patient counts are in the store and survive.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Failed confirmations one certificate may cause per window.
pub const CERT_FAILURES_PER_WINDOW: usize = 60;
/// The window: ten minutes.
pub const CERT_WINDOW_MS: i64 = 10 * 60_000;

#[derive(Default)]
pub struct ConfirmThrottle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl ConfirmThrottle {
    /// `Some(seconds)` to wait when the certificate is over its budget now.
    pub fn retry_after(&self, serial: &str, now: i64) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.get_mut(serial)?;
        while q.front().is_some_and(|t| *t <= now - CERT_WINDOW_MS) {
            q.pop_front();
        }
        if q.is_empty() {
            map.remove(serial);
            return None;
        }
        (q.len() >= CERT_FAILURES_PER_WINDOW).then(|| {
            let oldest = q.front().copied().unwrap_or(now);
            let ms = (oldest + CERT_WINDOW_MS - now).max(1_000);
            u64::try_from((ms + 999) / 1_000).unwrap_or(1)
        })
    }

    /// One failed confirmation by this certificate.
    pub fn failed(&self, serial: &str, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.entry(serial.to_owned()).or_default();
        q.push_back(now);
        while q.len() > CERT_FAILURES_PER_WINDOW {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_over_budget_waits_for_its_window_to_slide() {
        let t = ConfirmThrottle::default();
        for i in 0..CERT_FAILURES_PER_WINDOW {
            assert_eq!(t.retry_after("a", 1_000 + i as i64), None);
            t.failed("a", 1_000 + i as i64);
        }
        assert_eq!(t.retry_after("a", 2_000), Some(599));
        assert_eq!(t.retry_after("b", 2_000), None, "another certificate is not affected");
        // The oldest failure leaves the window: one more attempt is allowed.
        assert_eq!(t.retry_after("a", 1_000 + CERT_WINDOW_MS), None);
        t.failed("a", 1_000 + CERT_WINDOW_MS);
        assert!(t.retry_after("a", 1_000 + CERT_WINDOW_MS).is_some());
    }
}
