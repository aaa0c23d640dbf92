//! The outcomes report on a generated month whose drops, recoveries and
//! bookings are known, so every ratio has an exact expected value; the
//! holdout's statistics against an independent computation in Python.

use continuity::outcomes::{
    AppointmentFact, Arm, CallbackFact, Ending, Facts, Period, Ratio, RecoveryChannel, SessionFact, report,
};
use policy::Channel;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01T00:00:00Z.
const NOV_1: i64 = 1_793_491_200_000;

fn session(
    id: String,
    conversation: Option<String>,
    channel: Channel,
    start: i64,
    length: i64,
    ending: Ending,
) -> SessionFact {
    SessionFact {
        id,
        conversation,
        channel,
        started_at: start,
        ended_at: Some(start + length),
        ending: Some(ending),
        ended_pending: false,
        booking_intent: false,
        by_resume_link: false,
        arm: None,
    }
}

/// 100 calls over November, one conversation each:
/// - calls 0..20 dropped, 20..30 completed with a task pending: 30 interrupted;
/// - recoveries: 0..6 by a resume-link chat 30 min later, 6..12 by email 5 h
///   later, 12..15 by SMS 48 h later, 15..30 never;
/// - booking intent on calls 0..10 (4 of them booked after recovering) and
///   30..50 (15 booked within the week; call 45's booking comes on day 8,
///   call 46's was cancelled);
/// - calls 50..55 completed, then an email 3 days later (not resolved at first contact);
/// - the holdout: interrupted calls 20..30 got no link, 0..20 did;
/// - three 5-second pocket dials; ten callbacks in November (7 done), one in October.
fn month() -> (Period, Facts) {
    let mut f = Facts::default();
    let start = |i: i64| NOV_1 + (i % 30) * DAY + 9 * HOUR + i * MIN;
    for i in 0..100_i64 {
        let c = format!("cnv_{i}");
        let ending = if i < 20 { Ending::Dropped } else { Ending::Completed };
        let mut s = session(format!("call_{i}"), Some(c.clone()), Channel::Voice, start(i), 5 * MIN, ending);
        s.ended_pending = (20..30).contains(&i);
        s.booking_intent = i < 10 || (30..50).contains(&i);
        if i < 30 {
            s.arm = Some(if i < 20 { Arm::Sent } else { Arm::Holdout });
        }
        let end = start(i) + 5 * MIN;
        f.sessions.push(s);
        let recovery = match i {
            0..6 => Some((Channel::Chat, 30 * MIN, true)),
            6..12 => Some((Channel::Email, 5 * HOUR, false)),
            12..15 => Some((Channel::Sms, 48 * HOUR, false)),
            50..55 => Some((Channel::Email, 3 * DAY, false)),
            _ => None,
        };
        if let Some((channel, after, link)) = recovery {
            let mut r = session(format!("back_{i}"), Some(c.clone()), channel, end + after, 4 * MIN, Ending::Completed);
            r.by_resume_link = link;
            f.sessions.push(r);
            if i < 4 {
                f.appointments.push(AppointmentFact {
                    conversation: c.clone(),
                    created_at: end + after + MIN,
                    booked: true,
                });
            }
        }
        if (30..45).contains(&i) {
            f.appointments.push(AppointmentFact {
                conversation: c.clone(),
                created_at: start(i) + 2 * MIN,
                booked: true,
            });
        }
        if i == 45 {
            f.appointments.push(AppointmentFact {
                conversation: c.clone(),
                created_at: start(i) + 8 * DAY,
                booked: true,
            });
        }
        if i == 46 {
            f.appointments.push(AppointmentFact { conversation: c, created_at: start(i) + 2 * MIN, booked: false });
        }
    }
    for j in 0..3 {
        f.sessions.push(session(format!("pocket_{j}"), None, Channel::Voice, NOV_1 + j * HOUR, 5_000, Ending::Dropped));
    }
    for k in 0..10 {
        f.callbacks.push(CallbackFact { created_at: NOV_1 + k * DAY, done: k < 7 });
    }
    f.callbacks.push(CallbackFact { created_at: NOV_1 - DAY, done: true });
    (Period { from: NOV_1, to: NOV_1 + 30 * DAY }, f)
}

#[test]
fn a_known_month_gives_exactly_the_expected_ratios() {
    let (period, facts) = month();
    let r = report(period, &facts, continuity::outcomes::DEFAULT_SHORT_MS);
    assert_eq!(r.voice_sessions, 100);
    assert_eq!(r.short_excluded, 3);
    assert_eq!(r.interrupted, Ratio { count: 30, of: 100 });
    let within = |h: i64| r.recovery.iter().find(|x| x.hours == h).unwrap();
    assert_eq!(within(1).recovered, Ratio { count: 6, of: 30 });
    assert_eq!(within(24).recovered, Ratio { count: 12, of: 30 });
    assert_eq!(within(72).recovered, Ratio { count: 15, of: 30 });
    assert_eq!(within(24).by_channel, vec![(RecoveryChannel::ResumeLink, 6), (RecoveryChannel::Email, 6)]);
    assert_eq!(
        within(72).by_channel,
        vec![(RecoveryChannel::ResumeLink, 6), (RecoveryChannel::Email, 6), (RecoveryChannel::Sms, 3)]
    );
    assert_eq!(r.abandonment, Ratio { count: 18, of: 100 });
    // 6 x 30 min, 6 x 300 min, 3 x 2,880 min: the 8th of 15.
    assert_eq!(r.median_minutes_to_recovery, Some(300.0));
    assert_eq!(r.booking_conversion, Ratio { count: 19, of: 30 });
    assert_eq!(r.conversion_after_interruption, Ratio { count: 4, of: 10 });
    // 80 completed calls + 15 recoveries + 5 follow-up emails; the 5 calls followed within a week are not resolved.
    assert_eq!(r.first_contact_resolution, Ratio { count: 95, of: 100 });
    assert_eq!(r.callback_yield, Ratio { count: 7, of: 10 });
}

#[test]
fn the_holdout_matches_a_reference_computation() {
    let (period, facts) = month();
    let h = report(period, &facts, continuity::outcomes::DEFAULT_SHORT_MS).holdout.expect("both arms have members");
    assert_eq!((h.sent, h.held_out), (Ratio { count: 12, of: 20 }, Ratio { count: 0, of: 10 }));
    // The same test written independently, in Python's standard library.
    let script = r#"
import math
x1, n1, x2, n2 = 12, 20, 0, 10
p1, p2 = x1 / n1, x2 / n2
p = (x1 + x2) / (n1 + n2)
z = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
pv = math.erfc(abs(z) / math.sqrt(2))
se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
q = 1.959963984540054
print(p1 - p2, z, pv, p1 - p2 - q * se, p1 - p2 + q * se)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 (scripts/test-deps.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<f64> =
        String::from_utf8(out.stdout).unwrap().split_whitespace().map(|v| v.parse().unwrap()).collect();
    let got = [h.difference, h.z, h.p_value, h.ci95.0, h.ci95.1];
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "got {got:?}, reference {want:?}");
    }
}

#[test]
fn an_ambiguous_or_unended_session_is_neither_interrupted_nor_recovered() {
    let mut open = session("s".into(), Some("c".into()), Channel::Voice, NOV_1, 0, Ending::Completed);
    open.ended_at = None;
    open.ending = None;
    open.ended_pending = true;
    assert!(!open.interrupted(), "still going: not interrupted");
    let chat = session("t".into(), Some("c".into()), Channel::Chat, NOV_1, 60_000, Ending::Dropped);
    assert!(!chat.interrupted(), "only calls are interrupted");
    let f = Facts { sessions: vec![open, chat], ..Facts::default() };
    let r = report(Period { from: NOV_1, to: NOV_1 + DAY }, &f, 10_000);
    assert_eq!(r.interrupted, Ratio { count: 0, of: 1 });
    assert_eq!(r.holdout, None);
}
