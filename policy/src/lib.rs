//! Policy decisions as pure functions.
//!
//! This crate does no I/O and reads no clock: callers pass facts and `now` in
//! and get decisions out, so every decision is testable as a table. `server`
//! enforces what it decides; PHI-reading code there requires the [`Access`]
//! value that only [`decide`] can make.
#![forbid(unsafe_code)]

mod channel;
mod classes;
mod config;
mod confirmation;
mod decision;
mod error;
pub mod evidence;
mod identity;
pub mod recovery;
pub mod retention;

pub use channel::Channel;
pub use classes::{PhiClass, PhiClasses};
pub use config::{ChannelRules, ConfirmationPolicy, TenantPolicy};
pub use confirmation::{Answer, ConfirmField, ConfirmationMode, Lockout, confirmation_required};
pub use decision::{
    Access, Confirmation, Decision, Refusal, after_failed_confirmation, confirmation_locked, decide,
    may_exercise_rights, may_start_fresh, may_write_inbound, operator_access, staff_access,
};
pub use error::PolicyError;
pub use evidence::{Attestation, CallerIdTrust, EmailVerdict, EvidencePolicy};
pub use identity::{IdentityFacts, Resolution, Strength};
pub use recovery::{RecoveryArm, RecoveryPolicy};
pub use retention::{Retention, StateTtl};
