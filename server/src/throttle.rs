//! The throttle on failed identity confirmations, in front of the store's
//! per-patient lockout (H1). It counts only answers that compared something
//! and did not match (a 401); a refusal because a patient is already locked
//! compared nothing and costs nothing, so one session cannot burn the budget
//! in a second (N3).
//!
//! A public chat certificate is shared by every visitor of the clinic's
//! site, so a hard block per certificate would be an off switch one
//! stranger holds (N3). Instead:
//! - **per visitor**, where the integration names one (`Throughline-Visitor`:
//!   the widget's device cookie, Chatwoot's contact inbox, hashed or
//!   opaque), [`VISITOR_FAILURES_PER_WINDOW`] mismatches and that visitor
//!   gets 429 with `Retry-After`; other visitors are untouched;
//! - **per certificate**, past [`CERT_FAILURES_PER_WINDOW`] mismatches in
//!   the window, every confirmation through it is slowed (one second per
//!   budget's worth of excess, at most [`MAX_SLOWDOWN_MS`]) and counted in
//!   `throughline_lockouts_total{reason="confirm_certificate_slowed"}`, the
//!   alert; nobody is refused for what somebody else did.
//!
//! Guessing at one patient stays bounded by the per-patient lockout in the
//! store; this bounds guessing at many. In memory: a restart forgets it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Compared mismatches through one certificate per window before its
/// confirmations are slowed.
pub const CERT_FAILURES_PER_WINDOW: usize = 60;
/// Compared mismatches one named visitor may cause per window.
pub const VISITOR_FAILURES_PER_WINDOW: usize = 10;
/// The window: ten minutes.
pub const CERT_WINDOW_MS: i64 = 10 * 60_000;
/// The longest a confirmation is held back while its certificate is over budget.
pub const MAX_SLOWDOWN_MS: u64 = 5_000;
/// Failures remembered per certificate (the excess sets the slowdown).
const CERT_MEMORY: usize = CERT_FAILURES_PER_WINDOW * 6;
/// Visitors remembered at once; past it, the quiet ones are forgotten first.
const MAX_VISITORS: usize = 100_000;

/// What to do with a confirmation before it reaches the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// The certificate is over budget: hold the request this long, then go.
    Slow {
        ms: u64,
    },
    /// This visitor is over budget: 429 with `Retry-After` seconds.
    Refuse {
        retry_after_secs: u64,
    },
}

#[derive(Default)]
pub struct ConfirmThrottle {
    inner: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    certs: HashMap<String, VecDeque<i64>>,
    visitors: HashMap<(String, String), VecDeque<i64>>,
}

fn slide(q: &mut VecDeque<i64>, now: i64) {
    while q.front().is_some_and(|t| *t <= now - CERT_WINDOW_MS) {
        q.pop_front();
    }
}

impl ConfirmThrottle {
    /// The verdict for a confirmation through certificate `serial` from
    /// `visitor` (when the integration names one), now.
    pub fn check(&self, serial: &str, visitor: Option<&str>, now: i64) -> Verdict {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = visitor {
            let key = (serial.to_owned(), v.to_owned());
            if let Some(q) = w.visitors.get_mut(&key) {
                slide(q, now);
                if q.len() >= VISITOR_FAILURES_PER_WINDOW {
                    let oldest = q.front().copied().unwrap_or(now);
                    let ms = (oldest + CERT_WINDOW_MS - now).max(1_000);
                    return Verdict::Refuse { retry_after_secs: u64::try_from((ms + 999) / 1_000).unwrap_or(1) };
                }
                if q.is_empty() {
                    w.visitors.remove(&key);
                }
            }
        }
        let Some(q) = w.certs.get_mut(serial) else { return Verdict::Go };
        slide(q, now);
        let n = q.len();
        if n == 0 {
            w.certs.remove(serial);
        }
        if n < CERT_FAILURES_PER_WINDOW {
            return Verdict::Go;
        }
        let excess = (n + 1 - CERT_FAILURES_PER_WINDOW) as u64;
        let ms = (1_000 * excess.div_ceil(CERT_FAILURES_PER_WINDOW as u64)).min(MAX_SLOWDOWN_MS);
        Verdict::Slow { ms }
    }

    /// One compared mismatch through this certificate, by this visitor.
    pub fn failed(&self, serial: &str, visitor: Option<&str>, now: i64) {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let q = w.certs.entry(serial.to_owned()).or_default();
        q.push_back(now);
        while q.len() > CERT_MEMORY {
            q.pop_front();
        }
        if let Some(v) = visitor {
            if w.visitors.len() >= MAX_VISITORS {
                w.visitors.retain(|_, q| {
                    slide(q, now);
                    !q.is_empty()
                });
            }
            if w.visitors.len() >= MAX_VISITORS {
                // A flood of fresh names: forget them all rather than grow.
                w.visitors.clear();
            }
            let q = w.visitors.entry((serial.to_owned(), v.to_owned())).or_default();
            q.push_back(now);
            while q.len() > VISITOR_FAILURES_PER_WINDOW {
                q.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visitor_over_budget_waits_and_others_go_on() {
        let t = ConfirmThrottle::default();
        for i in 0..VISITOR_FAILURES_PER_WINDOW {
            assert_eq!(t.check("a", Some("v1"), 1_000 + i as i64), Verdict::Go);
            t.failed("a", Some("v1"), 1_000 + i as i64);
        }
        assert_eq!(t.check("a", Some("v1"), 2_000), Verdict::Refuse { retry_after_secs: 599 });
        assert_eq!(t.check("a", Some("v2"), 2_000), Verdict::Go, "another visitor of the same certificate");
        assert_eq!(t.check("a", None, 2_000), Verdict::Go);
        assert_eq!(t.check("b", Some("v1"), 2_000), Verdict::Go, "another certificate");
        // The oldest failure leaves the window: one more attempt is allowed.
        assert_eq!(t.check("a", Some("v1"), 1_000 + CERT_WINDOW_MS), Verdict::Go);
    }

    #[test]
    fn a_certificate_over_budget_is_slowed_never_refused() {
        let t = ConfirmThrottle::default();
        for i in 0..CERT_FAILURES_PER_WINDOW {
            assert_eq!(t.check("a", None, 1_000 + i as i64), Verdict::Go);
            t.failed("a", Some(&format!("visitor-{i}")), 1_000 + i as i64);
        }
        assert_eq!(t.check("a", Some("fresh"), 2_000), Verdict::Slow { ms: 1_000 });
        for i in 0..(CERT_MEMORY as i64) {
            t.failed("a", None, 3_000 + i);
        }
        assert_eq!(t.check("a", None, 9_000), Verdict::Slow { ms: MAX_SLOWDOWN_MS });
        assert_eq!(t.check("b", None, 9_000), Verdict::Go);
        assert_eq!(t.check("a", None, 9_000 + CERT_WINDOW_MS), Verdict::Go, "the window slid past them all");
    }
}
