//! The crate's one error type: a policy value or file that does not hold.
//! Messages name the setting and the rule; they never echo PHI.

/// A policy setting that cannot be accepted, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("state TTL of {days} days is out of range: use 1 to {max} days")]
    StateTtlOutOfRange { days: u64, max: u32 },
    #[error("conversation retention of {days} days is out of range: use 1 to {max} days")]
    ConversationRetentionOutOfRange { days: u64, max: u32 },
    #[error("audit retention of {years} years is below HIPAA's six years (45 CFR 164.316(b)(2))")]
    AuditRetentionTooShort { years: u32 },
    #[error("recovery: {0}")]
    RecoveryLink(String),
    #[error("recovery.holdout_percent {0} is out of range (0 to 90)")]
    HoldoutOutOfRange(u32),
    #[error("unknown channel '{0}': expected voice, chat, email or sms")]
    UnknownChannel(String),
    #[error(
        "unknown PHI class '{0}': expected greeting, identity, contact, scheduling, conversation, clinical or attachments"
    )]
    UnknownClass(String),
    #[error("unknown confirmation mode '{0}': expected never, on_shared_identifier, on_new_session or always")]
    UnknownMode(String),
    #[error("unknown confirmation field '{0}': expected date_of_birth or name")]
    UnknownConfirmField(String),
    #[error("confirmation needs at least one field to confirm with")]
    NoConfirmField,
    #[error("max_attempts must be between 1 and 20, got {0}")]
    AttemptsOutOfRange(u32),
    #[error("lockout_minutes must be between 1 and 1440, got {0}")]
    LockoutOutOfRange(u32),
    #[error("channel {channel}: {classes} allowed before confirmation but not after (contradictory policy)")]
    Contradiction { channel: String, classes: String },
    #[error("policy file: {0}")]
    Syntax(String),
    #[error("unknown caller_id trust '{0}': expected attested, trusted or claim")]
    UnknownCallerIdTrust(String),
    #[error("email_authserv_ids: '{0}' is not an authserv-id (a host name such as mx.clinic.example)")]
    BadAuthservId(String),
    #[error("date of birth must be a real date written YYYY-MM-DD")]
    BadDateOfBirth,
    #[error("name must be 1 to 200 characters")]
    BadName,
}
