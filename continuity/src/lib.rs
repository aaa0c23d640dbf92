//! The continuity algorithm (DESIGN.md): resolve who is calling, find their
//! open conversation, apply the tenant's policy, hand back the resume
//! context, and record what happens next. Every operation runs in one store
//! transaction with its audit record.
//!
//! This crate is the domain: it reads and writes through `store` and takes
//! `now` from its caller; it never opens a socket, a pool or a runtime, and
//! never sends what it composes (the server delivers it).

mod actions;
mod appointment_view;
pub mod calendar;
pub mod challenge;
pub mod channels;
mod confirm;
mod context;
pub mod identifiers;
mod open;
mod open_plan;
pub mod outcomes;
pub mod patient_export;
mod rehearse;
pub mod resume_token;

use std::net::SocketAddr;

use policy::{Channel, StateTtl, TenantPolicy};

pub use actions::{
    Ack, CustomerPatch, EndRequest, Recovery, StateValue, TurnRequest, append_turn, delete_state, end_session,
    erasure_target, export, issue_resume_token, put_state, start_fresh, update_customer,
};
pub(crate) use actions::{open_row, refuse, writable};
pub use confirm::{ConfirmRequest, confirm_identity};
pub use context::{ResumeContext, context};
pub(crate) use context::{access, build as build_context, facts, nothing_released};
pub use open::{EvidenceRequest, OpenRequest, open_session};
pub(crate) use open::{OpenInput, ThreadHint, audit, audit_outcome, open_in};
pub use rehearse::rehearse;

use store::StoreError;

/// A tenant's settings as the continuity layer needs them.
#[derive(Clone, Debug)]
pub struct TenantSettings {
    pub policy: TenantPolicy,
    /// Default region for phone numbers without a country code (CLDR id, e.g. `US`).
    pub region: String,
    /// The clinic's time zone: appointment times are checked and shown in it.
    pub zone: crate::calendar::ClinicZone,
    pub state_ttl: StateTtl,
    /// How many recent turns a resume context carries.
    pub recent_turns: u32,
    /// How this tenant sends email.
    pub email: crate::channels::EmailSettings,
}

/// Who is acting: the channel integration, from its certificate.
#[derive(Clone, Debug)]
pub struct Actor {
    pub serial: String,
    pub channel: Channel,
    pub peer: Option<SocketAddr>,
}

/// Why a continuity operation was refused, in the domain's terms; the API
/// maps each kind to its status in one place (`server::api::error`).
/// `code` is the stable error code integrations read.
#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    /// The input breaks a rule (a malformed identifier, a time in the past).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// No such session, appointment or state key for this tenant's patient.
    #[error("{message}")]
    Missing { code: &'static str, message: String },
    /// The policy does not allow it yet: confirm identity first, or locked.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// A proof offered did not hold: a wrong answer or code, a spent token.
    #[error("{message}")]
    NotProven { code: &'static str, message: String },
    /// The conversation's state does not allow it (ended, nothing on file).
    #[error("{message}")]
    WrongState { code: &'static str, message: String },
    /// More than a limit allows.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ContinuityError {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        ContinuityError::Invalid { code, message: message.into() }
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ContinuityError::Refused { code, message: message.into() }
    }

    /// The stable code (for the API and for audit refusal reasons).
    pub fn code(&self) -> &'static str {
        match self {
            ContinuityError::Invalid { code, .. }
            | ContinuityError::Missing { code, .. }
            | ContinuityError::Refused { code, .. }
            | ContinuityError::NotProven { code, .. }
            | ContinuityError::WrongState { code, .. }
            | ContinuityError::TooLarge { code, .. } => code,
            ContinuityError::Store(_) => "internal",
        }
    }

    pub(crate) fn session_not_found() -> Self {
        ContinuityError::Missing { code: "session_not_found", message: "no such session for this tenant".into() }
    }
}

/// Limits on what integrations may store.
pub mod limits {
    pub const TURN_TEXT_BYTES: usize = 16 * 1024;
    pub const STATE_KEY_BYTES: usize = 64;
    pub const STATE_VALUE_BYTES: usize = 4 * 1024;
    pub const STATE_KEYS_PER_CONVERSATION: u64 = 64;
    pub const EXTERNAL_REF_BYTES: usize = 256;
    pub const NAME_CHARS: usize = 200;
    pub const RESUME_TOKEN_DAYS: i64 = 7;
}

/// The identifiers an integration offers (each optional).
#[derive(Clone, Debug, Default)]
pub struct Offered {
    pub phone: Option<String>,
    pub email: Option<String>,
    pub auth: Option<String>,
    pub cookie: Option<String>,
    pub resume_token: Option<String>,
}

fn peer_string(actor: &Actor) -> Option<String> {
    actor.peer.map(|p| p.ip().to_string())
}
