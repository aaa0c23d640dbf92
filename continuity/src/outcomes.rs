//! The seed's outcomes, measured (docs/OUTCOMES.md): from the facts each
//! session, appointment and callback left behind, per tenant and period,
//! the interrupted rate, recovery within 1, 24 and 72 hours and by channel,
//! abandonment in the seed's sense, booking conversion (and after an
//! interruption), cross-channel first-contact resolution, time to recovery,
//! callback yield, and a holdout's lift with its confidence.
//!
//! Pure: facts in, figures out. No PHI goes in: ids, channels, instants
//! and flags only.

use std::collections::HashMap;

use policy::Channel;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The recovery windows reported (hours); the first of them decides
/// abandonment and the holdout.
pub const RECOVERY_HOURS: [i64; 3] = [24, 1, 72];
/// A booking counts for an intent when made within this long after it.
pub const CONVERSION_WINDOW_MS: i64 = 7 * DAY_MS;
/// A completed session is resolved at first contact when its conversation
/// has no new session within this long.
pub const FCR_WINDOW_MS: i64 = 7 * DAY_MS;
/// A state key naming a booking in progress (`pending_booking_date`): its
/// session had booking intent.
pub const BOOKING_INTENT_PREFIX: &str = "pending_booking";
/// Sessions shorter than this are excluded (a pocket dial, a test call).
pub const DEFAULT_SHORT_MS: i64 = 10_000;

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Completed,
    Dropped,
    Transferred,
}

impl Ending {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "completed" => Some(Ending::Completed),
            "dropped" => Some(Ending::Dropped),
            "transferred" => Some(Ending::Transferred),
            _ => None,
        }
    }
}

/// Which arm of a holdout an interrupted session was put in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The resume link was sent.
    Sent,
    /// Nothing was sent (the comparison group).
    Holdout,
}

/// One session, as the report needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFact {
    pub id: String,
    /// `None` while the identity stayed ambiguous: such a session can be
    /// neither recovered nor a recovery.
    pub conversation: Option<String>,
    pub channel: Channel,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub ending: Option<Ending>,
    /// It ended with a `pending_*` state key still set (a task left half-done).
    pub ended_pending: bool,
    /// A `pending_booking*` key was set in it, or it booked.
    pub booking_intent: bool,
    /// Opened by possession of a resume link.
    pub by_resume_link: bool,
    pub arm: Option<Arm>,
}

impl SessionFact {
    /// A voice session that ended dropped, or with a task pending.
    pub fn interrupted(&self) -> bool {
        self.channel == Channel::Voice
            && (self.ending == Some(Ending::Dropped) || (self.ended_at.is_some() && self.ended_pending))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppointmentFact {
    pub conversation: String,
    pub created_at: i64,
    pub booked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackFact {
    pub created_at: i64,
    pub done: bool,
}

/// The facts of a period and of the windows after it (recoveries and
/// bookings may follow an interruption by days).
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub sessions: Vec<SessionFact>,
    pub appointments: Vec<AppointmentFact>,
    pub callbacks: Vec<CallbackFact>,
}

/// The half-open period `[from, to)` reported on, in unix ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
}

impl Period {
    fn holds(&self, t: i64) -> bool {
        (self.from..self.to).contains(&t)
    }
}

/// A count out of a base, with the ratio when the base is not zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    pub count: u64,
    pub of: u64,
}

impl Ratio {
    pub fn value(&self) -> Option<f64> {
        (self.of > 0).then(|| self.count as f64 / self.of as f64)
    }
}

/// Recovery within one window.
#[derive(Clone, Debug, PartialEq)]
pub struct Recovery {
    pub hours: i64,
    pub recovered: Ratio,
    /// Recovered sessions by the channel of the session that recovered them.
    pub by_channel: Vec<(RecoveryChannel, u64)>,
}

/// The channel a recovery came through; a chat opened from a resume link
/// is told apart from one the patient started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecoveryChannel {
    ResumeLink,
    Voice,
    Chat,
    Email,
    Sms,
}

impl RecoveryChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryChannel::ResumeLink => "resume_link",
            RecoveryChannel::Voice => "voice",
            RecoveryChannel::Chat => "chat",
            RecoveryChannel::Email => "email",
            RecoveryChannel::Sms => "sms",
        }
    }

    fn of(s: &SessionFact) -> Self {
        if s.by_resume_link {
            return RecoveryChannel::ResumeLink;
        }
        match s.channel {
            Channel::Voice => RecoveryChannel::Voice,
            Channel::Chat => RecoveryChannel::Chat,
            Channel::Email => RecoveryChannel::Email,
            Channel::Sms => RecoveryChannel::Sms,
        }
    }
}

/// The holdout's comparison: recovery (first window) with the link sent
/// versus without, a two-proportion z-test and a 95% interval for the
/// difference.
#[derive(Clone, Debug, PartialEq)]
pub struct Holdout {
    pub sent: Ratio,
    pub held_out: Ratio,
    /// sent rate minus held-out rate.
    pub difference: f64,
    /// Pooled two-proportion z statistic.
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p_value: f64,
    /// 95% Wald interval for the difference (unpooled standard error).
    pub ci95: (f64, f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeReport {
    pub period: Period,
    pub voice_sessions: u64,
    /// Sessions left out as shorter than the threshold.
    pub short_excluded: u64,
    pub interrupted: Ratio,
    /// The first window first (24 h), then 1 h and 72 h.
    pub recovery: Vec<Recovery>,
    /// Interrupted and not recovered within the first window, of voice sessions.
    pub abandonment: Ratio,
    /// Median minutes from an interruption's end to the next session of its conversation.
    pub median_minutes_to_recovery: Option<f64>,
    pub booking_conversion: Ratio,
    pub conversion_after_interruption: Ratio,
    /// Completed sessions whose conversation had no new session within 7 days.
    pub first_contact_resolution: Ratio,
    pub callback_yield: Ratio,
    pub holdout: Option<Holdout>,
}

/// Computes the report. `facts` must hold the period's sessions and those
/// of the windows after it (up to 7 days past `period.to`).
pub fn report(period: Period, facts: &Facts, short_ms: i64) -> OutcomeReport {
    let long_enough = |s: &SessionFact| s.ended_at.is_none_or(|e| e - s.started_at >= short_ms);
    let in_period: Vec<&SessionFact> = facts.sessions.iter().filter(|s| period.holds(s.started_at)).collect();
    let short_excluded = in_period.iter().filter(|s| !long_enough(s)).count() as u64;
    let counted: Vec<&SessionFact> = in_period.into_iter().filter(|s| long_enough(s)).collect();
    let voice: Vec<&SessionFact> = counted.iter().copied().filter(|s| s.channel == Channel::Voice).collect();
    let interrupted: Vec<&SessionFact> = voice.iter().copied().filter(|s| s.interrupted()).collect();

    // Every session of a conversation, in time order (any channel, any length:
    // a short chat still brought the patient back).
    let mut by_conversation: HashMap<&str, Vec<&SessionFact>> = HashMap::new();
    for s in &facts.sessions {
        if let Some(c) = &s.conversation {
            by_conversation.entry(c.as_str()).or_default().push(s);
        }
    }
    for list in by_conversation.values_mut() {
        list.sort_by_key(|s| (s.started_at, s.id.as_str()));
    }
    // The first session of the same conversation after `s` ended.
    let next_after = |s: &SessionFact| -> Option<&SessionFact> {
        let end = s.ended_at?;
        let list = by_conversation.get(s.conversation.as_deref()?)?;
        list.iter().copied().find(|n| n.id != s.id && n.started_at >= end)
    };

    let recovery = RECOVERY_HOURS
        .iter()
        .map(|&hours| {
            let mut by: HashMap<RecoveryChannel, u64> = HashMap::new();
            let mut count = 0;
            for s in &interrupted {
                if let Some(n) = next_after(s).filter(|n| n.started_at - s.ended_at.unwrap_or(0) <= hours * HOUR_MS) {
                    count += 1;
                    *by.entry(RecoveryChannel::of(n)).or_default() += 1;
                }
            }
            let mut by_channel: Vec<(RecoveryChannel, u64)> = by.into_iter().collect();
            by_channel.sort();
            Recovery { hours, recovered: Ratio { count, of: interrupted.len() as u64 }, by_channel }
        })
        .collect::<Vec<_>>();
    let first = &recovery[0];
    let abandonment = Ratio { count: first.recovered.of - first.recovered.count, of: voice.len() as u64 };

    let mut minutes: Vec<f64> = interrupted
        .iter()
        .filter_map(|s| next_after(s).map(|n| (n.started_at - s.ended_at.unwrap_or(n.started_at)) as f64 / 60_000.0))
        .collect();
    minutes.sort_by(f64::total_cmp);
    let median_minutes_to_recovery = median(&minutes);

    // Conversion: per conversation, the first intent in the period, and a
    // booking within the window after it.
    let booked_within = |conversation: &str, from: i64| {
        facts.appointments.iter().any(|a| {
            a.booked
                && a.conversation == conversation
                && a.created_at >= from
                && a.created_at - from <= CONVERSION_WINDOW_MS
        })
    };
    let mut intents: HashMap<&str, i64> = HashMap::new();
    for s in counted.iter().filter(|s| s.booking_intent) {
        if let Some(c) = &s.conversation {
            let at = intents.entry(c.as_str()).or_insert(s.started_at);
            *at = (*at).min(s.started_at);
        }
    }
    let converted = intents.iter().filter(|(c, at)| booked_within(c, **at)).count() as u64;
    let booking_conversion = Ratio { count: converted, of: intents.len() as u64 };
    let interrupted_conversations: std::collections::HashSet<&str> =
        interrupted.iter().filter_map(|s| s.conversation.as_deref()).collect();
    let after: Vec<(&&str, &i64)> = intents.iter().filter(|(c, _)| interrupted_conversations.contains(**c)).collect();
    let conversion_after_interruption =
        Ratio { count: after.iter().filter(|(c, at)| booked_within(c, **at)).count() as u64, of: after.len() as u64 };

    let completed: Vec<&SessionFact> =
        counted.iter().copied().filter(|s| s.ending == Some(Ending::Completed) && s.conversation.is_some()).collect();
    let resolved = completed
        .iter()
        .filter(|s| next_after(s).is_none_or(|n| n.started_at - s.ended_at.unwrap_or(0) > FCR_WINDOW_MS))
        .count() as u64;
    let first_contact_resolution = Ratio { count: resolved, of: completed.len() as u64 };

    let callbacks: Vec<&CallbackFact> = facts.callbacks.iter().filter(|c| period.holds(c.created_at)).collect();
    let callback_yield =
        Ratio { count: callbacks.iter().filter(|c| c.done).count() as u64, of: callbacks.len() as u64 };

    let window = RECOVERY_HOURS[0] * HOUR_MS;
    let arm = |want: Arm| {
        let members: Vec<&&SessionFact> = interrupted.iter().filter(|s| s.arm == Some(want)).collect();
        let recovered = members
            .iter()
            .filter(|s| next_after(s).is_some_and(|n| n.started_at - s.ended_at.unwrap_or(0) <= window))
            .count() as u64;
        Ratio { count: recovered, of: members.len() as u64 }
    };
    let holdout = holdout(arm(Arm::Sent), arm(Arm::Holdout));

    OutcomeReport {
        period,
        voice_sessions: voice.len() as u64,
        short_excluded,
        interrupted: Ratio { count: interrupted.len() as u64, of: voice.len() as u64 },
        recovery,
        abandonment,
        median_minutes_to_recovery,
        booking_conversion,
        conversion_after_interruption,
        first_contact_resolution,
        callback_yield,
        holdout,
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The two-proportion comparison, when both arms have members.
pub fn holdout(sent: Ratio, held_out: Ratio) -> Option<Holdout> {
    let (p1, p2) = (sent.value()?, held_out.value()?);
    let (n1, n2) = (sent.of as f64, held_out.of as f64);
    let pooled = (sent.count + held_out.count) as f64 / (n1 + n2);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    let difference = p1 - p2;
    let z = if se_pooled > 0.0 { difference / se_pooled } else { 0.0 };
    let se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    const Z95: f64 = 1.959_963_984_540_054;
    Some(Holdout {
        sent,
        held_out,
        difference,
        z,
        p_value: erfc(z.abs() / std::f64::consts::SQRT_2),
        ci95: (difference - Z95 * se, difference + Z95 * se),
    })
}

/// The complementary error function (W. J. Cody's rational approximations
/// as in Numerical Recipes' `erfcc`, fractional error below 1.2e-7): enough
/// for a p-value printed to four places.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

impl Facts {
    /// The store's rows as facts; a row the store would not have written
    /// (an unknown channel) is left out.
    pub fn from_rows(rows: &store::OutcomeRows) -> Self {
        let sessions = rows
            .sessions
            .iter()
            .filter_map(|r| {
                let channel = r.channel.parse::<Channel>().ok()?;
                Some(SessionFact {
                    id: r.id.clone(),
                    conversation: r.conversation_id.clone(),
                    channel,
                    started_at: r.started_at,
                    ended_at: r.ended_at,
                    ending: r.end_reason.as_deref().and_then(Ending::parse),
                    ended_pending: r.ended_pending,
                    booking_intent: r.booking_intent,
                    // A chat whose identity is proven by possession was opened from a resume link.
                    by_resume_link: channel == Channel::Chat && r.identity_strength == "possession",
                    arm: match r.recovery_arm.as_deref() {
                        Some("sent") => Some(Arm::Sent),
                        Some("holdout") => Some(Arm::Holdout),
                        _ => None,
                    },
                })
            })
            .collect();
        let appointments = rows
            .appointments
            .iter()
            .map(|a| AppointmentFact {
                conversation: a.conversation_id.clone(),
                created_at: a.created_at,
                booked: a.booked,
            })
            .collect();
        let callbacks =
            rows.callbacks.iter().map(|c| CallbackFact { created_at: c.created_at, done: c.done }).collect();
        Facts { sessions, appointments, callbacks }
    }
}

/// How far past a period's end the facts must reach (the longest window).
pub const FACTS_AFTER_MS: i64 = CONVERSION_WINDOW_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in
            [(0.0, 1.0), (0.5, 0.479_500_122), (1.0, 0.157_299_207), (2.0, 0.004_677_735), (-1.0, 1.842_700_793)]
        {
            assert!((erfc(x) - want).abs() < 2e-7, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn ratios_without_a_base_have_no_value() {
        assert_eq!(Ratio { count: 0, of: 0 }.value(), None);
        assert_eq!(holdout(Ratio { count: 1, of: 2 }, Ratio { count: 0, of: 0 }), None);
    }
}
