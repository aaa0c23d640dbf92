//! Login throttling (HIPAA 164.308(a)(5)(ii)(C), log-in monitoring): after
//! [`ACCOUNT_FAILURES`] wrong attempts an account is locked for
//! [`LOCK_MS`], doubling with each further lock up to a day; a source
//! address that fails [`SOURCE_FAILURES`] times in [`WINDOW_MS`] is refused
//! for [`LOCK_MS`] whatever account it tries.

pub const ACCOUNT_FAILURES: u32 = 5;
pub const SOURCE_FAILURES: u32 = 20;
pub const WINDOW_MS: i64 = 10 * 60_000;
pub const LOCK_MS: i64 = 15 * 60_000;
const MAX_LOCK_MS: i64 = 24 * 3_600_000;

/// An account's failures since its last good login, and its lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub failures: u32,
    pub locked_until: Option<i64>,
}

impl Account {
    pub fn locked(&self, now: i64) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }

    /// The account after one more failure; `true` when this failure locked it.
    pub fn fail(self, now: i64) -> (Account, bool) {
        let failures = self.failures.saturating_add(1);
        if failures >= ACCOUNT_FAILURES && failures.is_multiple_of(ACCOUNT_FAILURES) {
            let locks = failures / ACCOUNT_FAILURES;
            let lock = LOCK_MS.saturating_mul(1 << (locks - 1).min(10)).min(MAX_LOCK_MS);
            (Account { failures, locked_until: Some(now + lock) }, true)
        } else {
            (Account { failures, locked_until: self.locked_until }, false)
        }
    }
}

/// A source address's failures in the current window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub window_start: i64,
    pub failures: u32,
}

impl Source {
    pub fn refused(&self, now: i64) -> bool {
        self.failures >= SOURCE_FAILURES && now - self.window_start < WINDOW_MS + LOCK_MS
    }

    pub fn fail(self, now: i64) -> Source {
        if now - self.window_start >= WINDOW_MS && !self.refused(now) {
            Source { window_start: now, failures: 1 }
        } else {
            Source { window_start: self.window_start, failures: self.failures.saturating_add(1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_and_the_lock_doubles() {
        let mut a = Account::default();
        for i in 1..ACCOUNT_FAILURES {
            let (next, locked) = a.fail(0);
            assert!(!locked && !next.locked(0), "failure {i}");
            a = next;
        }
        let (a, locked) = a.fail(0);
        assert!(locked && a.locked(LOCK_MS - 1) && !a.locked(LOCK_MS));
        let mut b = a;
        for _ in 0..ACCOUNT_FAILURES {
            b = b.fail(LOCK_MS).0;
        }
        assert_eq!(b.locked_until, Some(LOCK_MS + 2 * LOCK_MS));
    }

    #[test]
    fn a_source_is_refused_after_twenty_failures_in_the_window() {
        let mut s = Source::default();
        for i in 0..SOURCE_FAILURES {
            assert!(!s.refused(i64::from(i)));
            s = s.fail(i64::from(i));
        }
        assert!(s.refused(100));
        assert!(!s.refused(WINDOW_MS + LOCK_MS));
        assert_eq!(Source::default().fail(WINDOW_MS).failures, 1);
    }
}
