//! The decision made for every response that may carry PHI, and the proof
//! value ([`Access`]) that PHI-reading code must hold. `Access` has private
//! fields and no public constructor: the only way to get one is [`decide`],
//! so code that reads PHI without asking the policy does not compile.

use crate::classes::{PhiClass, PhiClasses};
use crate::confirmation::{ConfirmField, Lockout, confirmation_required};
use crate::identity::{IdentityFacts, Resolution, Strength};
use crate::{Channel, TenantPolicy};

/// What this session must do about identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmation {
    NotRequired,
    /// Ask for these fields before PHI beyond `Access::allowed` is released.
    Required {
        with: Vec<ConfirmField>,
    },
    /// Too many failures: no attempt is accepted until the lockout ends.
    Locked,
}

/// Permission to include these PHI classes in a response to this channel.
///
/// Only [`decide`] makes one; code outside this crate cannot forge it:
///
/// ```compile_fail
/// let forged = policy::Access { channel: policy::Channel::Chat, allowed: policy::PhiClasses::all() };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    channel: Channel,
    allowed: PhiClasses,
}

impl Access {
    pub fn channel(&self) -> Channel {
        self.channel
    }

    pub fn allows(&self, class: PhiClass) -> bool {
        self.allowed.contains(class)
    }

    pub fn allowed(&self) -> PhiClasses {
        self.allowed
    }

    /// Classes held back: what a response lists under `withheld`.
    pub fn withheld(&self) -> PhiClasses {
        PhiClasses::all().minus(self.allowed)
    }
}

/// The policy's answer for one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub confirmation: Confirmation,
    pub access: Access,
}

/// Decides confirmation and PHI access for `channel` given the session's facts.
///
/// - an ambiguous identifier releases nothing until confirmation picks the patient;
/// - a new patient sees the channel's post-confirmation classes (only what
///   they gave in this session exists);
/// - before confirmation only the channel's `before` classes, minus the
///   greeting when the identifier is shared (a first name would tell one
///   family member about another);
/// - after confirmation, or when none is required, the channel's `after` classes.
pub fn decide(policy: &TenantPolicy, channel: Channel, facts: &IdentityFacts) -> Decision {
    let rules = policy.channel(channel);
    let required = confirmation_required(policy.confirmation.mode, facts);
    let allowed = match facts.resolution {
        Resolution::Ambiguous if !facts.confirmed => PhiClasses::NONE,
        Resolution::New => rules.after,
        _ if !required => rules.after,
        _ if facts.shared_identifier => rules.before.minus([PhiClass::Greeting].into_iter().collect()),
        _ => rules.before,
    };
    let confirmation = match (required, facts.locked) {
        (false, _) => Confirmation::NotRequired,
        (true, true) => Confirmation::Locked,
        (true, false) => Confirmation::Required { with: policy.confirmation.with.clone() },
    };
    Decision { confirmation, access: Access { channel, allowed } }
}

/// The staff console's view: every class, for an operator acting on a
/// patient's request (right of access on paper, a support case). The caller
/// audits the read; no channel ever gets this.
pub fn operator_access() -> Access {
    Access { channel: Channel::Chat, allowed: PhiClasses::all() }
}

/// A staff member's view in the console: exactly the classes their role
/// and scope allow (`console::roles::sight`). The console audits the read,
/// naming the person, their role and the purpose; no channel gets this.
pub fn staff_access(classes: PhiClasses) -> Access {
    Access { channel: Channel::Chat, allowed: classes }
}

/// Why a patient-rights or state-changing action is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Identity must be confirmed first.
    ConfirmationRequired,
    /// Confirmation is locked out.
    Locked,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::ConfirmationRequired => "identity_confirmation_required",
            Refusal::Locked => "identity_locked",
        }
    }
}

/// Start fresh closes a conversation and clears its state: allowed only when
/// the caller may see that conversation (confirmed, or no confirmation needed).
pub fn may_start_fresh(policy: &TenantPolicy, facts: &IdentityFacts) -> Result<(), Refusal> {
    gate(!confirmation_required(policy.confirmation.mode, facts), facts)
}

/// Erasure (GDPR Art. 17) and export (Art. 15/20) need a confirmed patient,
/// whatever the tenant's confirmation mode.
pub fn may_exercise_rights(facts: &IdentityFacts) -> Result<(), Refusal> {
    gate(facts.confirmed && facts.resolution != Resolution::Ambiguous, facts)
}

fn gate(ok: bool, facts: &IdentityFacts) -> Result<(), Refusal> {
    match (ok, facts.locked) {
        (true, _) => Ok(()),
        (false, true) => Err(Refusal::Locked),
        (false, false) => Err(Refusal::ConfirmationRequired),
    }
}

/// Whether an inbound message (an email) may be written into the patient's
/// conversation (H4 of the security review): only for a sender asserted by
/// evidence, or better, that needs no confirmation, or a confirmed session.
/// Otherwise the message is held for staff review, never written where the
/// patient's agents read it.
pub fn may_write_inbound(policy: &TenantPolicy, facts: &IdentityFacts) -> bool {
    match facts.resolution {
        _ if facts.confirmed => true,
        Resolution::Ambiguous => false,
        _ => facts.strength >= Strength::Asserted && !confirmation_required(policy.confirmation.mode, facts),
    }
}

/// Records a failed confirmation: the new failure count and lock.
pub fn after_failed_confirmation(policy: &TenantPolicy, failures_before: u32, now_ms: i64) -> (u32, Option<i64>) {
    let failures = failures_before.saturating_add(1);
    (failures, policy.confirmation.lockout.locked_until(failures, now_ms))
}

/// Whether confirmation attempts are refused right now.
pub fn confirmation_locked(locked_until: Option<i64>, now_ms: i64) -> bool {
    Lockout::is_locked(locked_until, now_ms)
}
