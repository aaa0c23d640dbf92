//! How long a console login lasts (HIPAA 164.312(a)(2)(iii), automatic
//! logoff): idle 15 minutes, absolute 12 hours, a warning two minutes before
//! the idle end (WCAG 2.2.1). Time is milliseconds since the epoch, from the
//! server's injected clock.

pub const IDLE_MS: i64 = 15 * 60_000;
pub const ABSOLUTE_MS: i64 = 12 * 3_600_000;
pub const WARN_BEFORE_MS: i64 = 2 * 60_000;

/// The times a session is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Times {
    pub created_at: i64,
    pub last_seen: i64,
}

/// Whether a session may still be used, and if not, why it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Live,
    /// No request for [`IDLE_MS`].
    Idle,
    /// [`ABSOLUTE_MS`] since login, however busy.
    Absolute,
}

impl Verdict {
    /// The reason code the logoff is audited with.
    pub fn reason(self) -> &'static str {
        match self {
            Verdict::Live => "live",
            Verdict::Idle => "idle",
            Verdict::Absolute => "absolute",
        }
    }
}

pub fn judge(t: Times, now: i64) -> Verdict {
    if now - t.created_at >= ABSOLUTE_MS {
        Verdict::Absolute
    } else if now - t.last_seen >= IDLE_MS {
        Verdict::Idle
    } else {
        Verdict::Live
    }
}

/// When the session ends if nothing more happens: the page's warning counts down to it.
pub fn ends_at(t: Times) -> i64 {
    (t.last_seen + IDLE_MS).min(t.created_at + ABSOLUTE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_limits() {
        let t = Times { created_at: 0, last_seen: 0 };
        assert_eq!(judge(t, IDLE_MS - 1), Verdict::Live);
        assert_eq!(judge(t, IDLE_MS), Verdict::Idle);
        let busy = Times { created_at: 0, last_seen: ABSOLUTE_MS - 1 };
        assert_eq!(judge(busy, ABSOLUTE_MS), Verdict::Absolute);
        assert_eq!(ends_at(busy), ABSOLUTE_MS);
        assert_eq!(ends_at(Times { created_at: 0, last_seen: 60_000 }), 60_000 + IDLE_MS);
    }
}
