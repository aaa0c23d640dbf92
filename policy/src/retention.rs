//! Retention: how long session state, conversations and audit records live.

use crate::PolicyError;

/// Session state time-to-live, in whole days (tenant setting; 30 by default,
/// clinics commonly choose 7 or 90).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateTtl(u32);

impl StateTtl {
    pub const DEFAULT_DAYS: u32 = 30;
    /// Ten years: longer than any clinic keeps working state.
    pub const MAX_DAYS: u32 = 3650;

    pub fn from_days(days: u64) -> Result<Self, PolicyError> {
        match u32::try_from(days) {
            Ok(d) if (1..=Self::MAX_DAYS).contains(&d) => Ok(StateTtl(d)),
            _ => Err(PolicyError::StateTtlOutOfRange { days, max: Self::MAX_DAYS }),
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    /// The TTL in milliseconds, the unit of stored timestamps.
    pub fn as_millis(self) -> i64 {
        i64::from(self.0) * 86_400_000
    }

    /// When a state key written at `now_ms` expires.
    pub fn expires_at(self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.as_millis())
    }
}

impl Default for StateTtl {
    fn default() -> Self {
        StateTtl(Self::DEFAULT_DAYS)
    }
}

/// Retention periods of one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub state_ttl: StateTtl,
    /// How long a closed conversation's history is kept, in days.
    pub conversation_days: u32,
    /// HIPAA 45 CFR 164.316(b)(2): documentation is kept six years.
    pub audit_years: u32,
}

impl Retention {
    pub const AUDIT_YEARS: u32 = 6;
    /// Six years, like the audit trail, unless the clinic sets otherwise.
    pub const CONVERSATION_DAYS: u32 = 2190;
    pub const MAX_CONVERSATION_DAYS: u32 = 36_500;

    pub fn new(state_ttl: StateTtl) -> Self {
        Retention { state_ttl, conversation_days: Self::CONVERSATION_DAYS, audit_years: Self::AUDIT_YEARS }
    }

    /// Checks a conversation retention in days.
    pub fn conversation_days(days: u64) -> Result<u32, PolicyError> {
        match u32::try_from(days) {
            Ok(d) if (1..=Self::MAX_CONVERSATION_DAYS).contains(&d) => Ok(d),
            _ => Err(PolicyError::ConversationRetentionOutOfRange { days, max: Self::MAX_CONVERSATION_DAYS }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds() {
        assert_eq!(StateTtl::default().days(), 30);
        for ok in [1, 7, 30, 90, 3650] {
            assert_eq!(StateTtl::from_days(ok).map(StateTtl::days), Ok(ok as u32));
        }
        for bad in [0, 3651, u64::from(u32::MAX) + 1] {
            assert!(StateTtl::from_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_is_now_plus_ttl() {
        let ttl = StateTtl::from_days(7).unwrap();
        assert_eq!(ttl.expires_at(1_000), 1_000 + 7 * 86_400_000);
        assert_eq!(ttl.expires_at(i64::MAX), i64::MAX);
        assert_eq!(Retention::new(ttl).audit_years, 6);
    }
}
