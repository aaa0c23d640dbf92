//! The crate's one error type: a policy value or file that does not hold.

/// A policy setting that cannot be accepted, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("state TTL of {days} days is out of range: use 1 to {max} days")]
    StateTtlOutOfRange { days: u64, max: u32 },
    #[error("unknown channel '{0}': expected voice, chat, email or sms")]
    UnknownChannel(String),
}
