//! The resume context: what a channel gets back when a session opens or asks
//! again. Built only through the policy's `Access`: PHI classes the channel
//! may not see are left out and named in `withheld`.

use std::collections::BTreeMap;

use policy::{Access, ConfirmField, Confirmation, IdentityFacts, PhiClass, PhiClasses, Resolution, decide};

use super::{Actor, ContinuityError, TenantSettings};
use store::ids::SessionId;
use store::{SessionRow, TenantStore, TenantTx};

/// The structured resume context (see docs/API.md for every field).
pub struct ResumeContext {
    pub session_id: String,
    pub customer_id: Option<String>,
    pub conversation_id: Option<String>,
    pub channel: &'static str,
    pub identity: IdentityView,
    pub greeting_name: Option<String>,
    pub patient: Option<PatientView>,
    pub state: BTreeMap<String, String>,
    pub recent_turns: Vec<TurnJson>,
    /// Upcoming booked appointments (scheduling data; the reason only with clinical).
    pub appointments: Vec<crate::appointment_view::AppointmentView>,
    pub brief: String,
    pub withheld: Vec<&'static str>,
}

impl std::fmt::Debug for ResumeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ResumeContext({}, [REDACTED])", self.session_id)
    }
}

pub struct IdentityView {
    pub status: &'static str,
    pub strength: &'static str,
    pub confirmed: bool,
    pub confirm_with: Vec<&'static str>,
    pub locked: bool,
    pub candidates: usize,
}

pub struct PatientView {
    pub name: Option<String>,
    pub date_of_birth: Option<String>,
}

pub struct TurnJson {
    pub channel: String,
    pub speaker: String,
    pub text: String,
    pub at: i64,
}

/// How long a confirmation holds within its (open) session: a working
/// day's chat left open on a shared computer does not stay confirmed.
pub const CONFIRMATION_LIFETIME_MS: i64 = 8 * 3_600_000;
/// A confirmed session left without a request this long must confirm again
/// (M3; HIPAA 164.312(a)(2)(iii) automatic logoff). Requests are noted to
/// the minute.
pub const CONFIRMATION_IDLE_MS: i64 = 30 * 60_000;

/// The policy facts of a session.
pub(crate) fn facts(s: &SessionRow, now: i64) -> IdentityFacts {
    IdentityFacts {
        // A patient created in this very session has only what they gave here.
        resolution: if s.created_customer { Resolution::New } else { s.status },
        strength: s.strength,
        shared_identifier: s.shared_identifier,
        // Confirmation lasts as long as the open session, and never longer
        // than CONFIRMATION_LIFETIME_MS (M3): then the patient confirms again.
        confirmed: s.confirmed_at.is_some_and(|at| {
            let idle_since = s.last_seen_at.unwrap_or(at).max(at);
            now.saturating_sub(at) < CONFIRMATION_LIFETIME_MS && now.saturating_sub(idle_since) < CONFIRMATION_IDLE_MS
        }),
        locked: policy::confirmation_locked(s.locked_until, now),
    }
}

pub(crate) fn access(settings: &TenantSettings, s: &SessionRow, now: i64) -> (policy::Decision, IdentityFacts) {
    let f = facts(s, now);
    (decide(&settings.policy, s.channel, &f), f)
}

/// `GET /v1/sessions/{id}/context`: the same context, fresh.
pub fn context(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    let tx = store.transaction()?;
    // An ended session releases nothing (M3): 409 session_ended.
    let row = super::actions::open_row(&tx, actor, session, now)?;
    let ctx = build(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(ctx)
}

/// A session that only claimed an identity and has not confirmed: whether
/// its claim found a patient, several, or nobody, it is answered alike
/// (M8), with no ids, no greeting and nothing else until confirmation or
/// intake (which makes a record of its own).
pub(crate) fn veiled(s: &SessionRow, now: i64) -> bool {
    s.strength == policy::Strength::Claim && !facts(s, now).confirmed && !s.created_customer
}

/// A context that releases nothing (an ended session's re-delivered email).
pub(crate) fn nothing_released(settings: &TenantSettings, s: &SessionRow) -> ResumeContext {
    veiled_context(settings, s, false)
}

/// What a veiled session is told: the same for a known and an unknown claim.
fn veiled_context(settings: &TenantSettings, s: &SessionRow, locked: bool) -> ResumeContext {
    ResumeContext {
        session_id: s.id.to_string(),
        customer_id: None,
        conversation_id: None,
        channel: s.channel.as_str(),
        identity: IdentityView {
            status: Resolution::New.as_str(),
            strength: s.strength.as_str(),
            confirmed: false,
            confirm_with: if locked {
                Vec::new()
            } else {
                settings.policy.confirmation.with.iter().map(|w| w.as_str()).collect()
            },
            locked,
            candidates: 0,
        },
        greeting_name: None,
        patient: None,
        state: BTreeMap::new(),
        recent_turns: Vec::new(),
        appointments: Vec::new(),
        brief: if locked {
            "identity confirmation locked after too many attempts".into()
        } else {
            "confirm identity to continue an earlier conversation, or take intake as a new patient".into()
        },
        withheld: PhiClasses::all().iter().map(|c| c.as_str()).collect(),
    }
}

/// Builds the context inside `tx` and audits the read (classes released).
pub(crate) fn build(
    tx: &TenantTx<'_>,
    settings: &TenantSettings,
    actor: &Actor,
    s: &SessionRow,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    let (decision, facts) = access(settings, s, now);
    if veiled(s, now) {
        let ctx = veiled_context(settings, s, facts.locked);
        super::open::audit(tx, actor, audit::Action::ContextRead, None, &s.id, Some("veiled"), now)?;
        return Ok(ctx);
    }
    let a: &Access = &decision.access;
    let candidates = if s.status == Resolution::Ambiguous { tx.candidates(&s.id)?.len() } else { 0 };
    let (confirm_with, locked) = match &decision.confirmation {
        Confirmation::NotRequired => (Vec::new(), false),
        Confirmation::Required { with } => (with.iter().map(|w| w.as_str()).collect(), false),
        Confirmation::Locked => (Vec::new(), true),
    };
    let mut ctx = ResumeContext {
        session_id: s.id.to_string(),
        customer_id: s.customer_id.as_ref().map(ToString::to_string),
        conversation_id: s.conversation_id.as_ref().map(ToString::to_string),
        channel: s.channel.as_str(),
        identity: IdentityView {
            status: s.status.as_str(),
            strength: s.strength.as_str(),
            confirmed: facts.confirmed,
            confirm_with,
            locked,
            candidates,
        },
        greeting_name: None,
        patient: None,
        state: BTreeMap::new(),
        recent_turns: Vec::new(),
        appointments: Vec::new(),
        brief: String::new(),
        withheld: a.withheld().iter().map(|c| c.as_str()).collect(),
    };
    if let (Some(customer), Some(conversation)) = (&s.customer_id, &s.conversation_id) {
        if a.allows(PhiClass::Greeting) || a.allows(PhiClass::Identity) {
            // The confirmation secret is never disclosed to a session that
            // has not confirmed (M8): an asserted caller ID or sender sees
            // identity data, but not the field a chat would confirm with.
            let proven = facts.confirmed || s.created_customer;
            let secret = |f: ConfirmField| !proven && settings.policy.confirmation.with.contains(&f);
            let fields = tx.customer_fields(customer, a)?;
            let name = (!fields.name.is_empty() && !secret(ConfirmField::Name)).then(|| fields.name.to_string());
            if a.allows(PhiClass::Greeting) {
                ctx.greeting_name = name.as_deref().and_then(|n| n.split_whitespace().next()).map(str::to_owned);
            }
            if a.allows(PhiClass::Identity) {
                let dob =
                    (!fields.dob.is_empty() && !secret(ConfirmField::DateOfBirth)).then(|| fields.dob.to_string());
                ctx.patient = Some(PatientView { name, date_of_birth: dob });
            }
        }
        if a.allows(PhiClass::Scheduling) {
            ctx.appointments = crate::appointment_view::upcoming(tx, &settings.zone, customer, a, now)?;
        }
        if a.allows(PhiClass::Conversation) {
            let state = tx.state(customer, conversation, now, a)?;
            let previous = tx.previous_session(conversation, &s.id)?;
            ctx.brief = brief(previous.as_ref(), &state, ctx.appointments.first(), now);
            ctx.state = state.into_iter().map(|(k, v)| (k, v.to_string())).collect();
            ctx.recent_turns = tx
                .recent_turns(customer, conversation, settings.recent_turns, a)?
                .into_iter()
                .map(|t| TurnJson { channel: t.channel, speaker: t.speaker, text: t.text.to_string(), at: t.at })
                .collect();
        }
    }
    if ctx.brief.is_empty() {
        ctx.brief = match (s.status, &decision.confirmation) {
            (Resolution::Ambiguous, _) => "identifier shared by several patients: confirm identity first".into(),
            (_, Confirmation::Locked) => "identity confirmation locked after too many attempts".into(),
            (_, Confirmation::Required { .. }) => "confirm identity before the conversation is shared".into(),
            _ if s.created_customer => "new patient".into(),
            _ => "conversation details withheld on this channel".into(),
        };
        // A channel that sees scheduling but not the conversation (email)
        // still learns when the patient is expected.
        if let Some(a) = ctx.appointments.first() {
            ctx.brief = format!("{}; next appointment {}", ctx.brief, a.local_time);
        }
    }
    let released = a.allowed().to_string();
    super::open::audit(tx, actor, audit::Action::ContextRead, s.customer_id.as_ref(), &s.id, Some(&released), now)?;
    Ok(ctx)
}

/// "voice call 10 min ago, dropped; pending: booking date Tuesday; next
/// appointment Tuesday, March 16, 2027 at 2:00 PM PDT" (the appointment only
/// where the channel sees scheduling data, in the clinic's zone).
pub(crate) fn brief(
    previous: Option<&SessionRow>,
    state: &BTreeMap<String, zeroize::Zeroizing<String>>,
    next: Option<&crate::appointment_view::AppointmentView>,
    now: i64,
) -> String {
    let mut parts = Vec::new();
    if let Some(p) = previous {
        let what = match p.channel {
            policy::Channel::Voice => "voice call",
            policy::Channel::Chat => "chat",
            policy::Channel::Email => "email",
            policy::Channel::Sms => "sms",
        };
        let how = match (&p.end_reason, p.ended_at) {
            (Some(r), _) => r.clone(),
            (None, _) => "still open".into(),
        };
        parts.push(format!("{what} {}, {how}", ago(now - p.started_at)));
    }
    let pending: Vec<String> = state
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("pending_").map(|rest| format!("{} {}", rest.replace('_', " "), v.as_str()))
        })
        .collect();
    if !pending.is_empty() {
        parts.push(format!("pending: {}", pending.join(", ")));
    }
    if let Some(a) = next {
        parts.push(format!("next appointment {}", a.local_time));
    }
    if parts.is_empty() { "new conversation".into() } else { parts.join("; ") }
}

/// How long ago, as a brief says it: "just now", "10 min ago".
fn ago(ms: i64) -> String {
    let mins = ms.max(0) / 60_000;
    match mins {
        0 => "just now".into(),
        1..=59 => format!("{mins} min ago"),
        60..=2879 => format!("{} h ago", mins / 60),
        _ => format!("{} days ago", mins / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(ago(30_000), "just now");
        assert_eq!(ago(10 * 60_000), "10 min ago");
        assert_eq!(ago(5 * 3_600_000), "5 h ago");
        assert_eq!(ago(3 * 86_400_000), "3 days ago");
    }
}
