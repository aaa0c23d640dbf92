//! What the continuity layer knows about who is on the other end, as facts
//! for the policy decision.

/// How an identifier reached us, which decides how far it can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// Typed by whoever is on the other end (a phone number in a chat box):
    /// may find the conversation, never unlocks PHI without confirmation.
    Claim,
    /// Asserted by a carrier or mail system (caller ID, an envelope sender):
    /// usually right, spoofable.
    Asserted,
    /// Proven: a login identity from the clinic's portal, a resume token we signed.
    Possession,
}

impl Strength {
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Claim => "claim",
            Strength::Asserted => "asserted",
            Strength::Possession => "possession",
        }
    }
}

/// Outcome of resolving the identifiers offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one patient.
    Resolved,
    /// Several patients share the identifier (a family phone): never a guess.
    Ambiguous,
    /// Nobody known: a new patient.
    New,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Resolved => "resolved",
            Resolution::Ambiguous => "ambiguous",
            Resolution::New => "new",
        }
    }
}

/// The facts of one session the policy decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityFacts {
    pub resolution: Resolution,
    /// Strength of the identifier that resolved the patient.
    pub strength: Strength,
    /// The resolving identifier also points at other patients.
    pub shared_identifier: bool,
    /// The patient confirmed their identity in this session.
    pub confirmed: bool,
    /// Confirmation is locked after too many failures.
    pub locked: bool,
}
