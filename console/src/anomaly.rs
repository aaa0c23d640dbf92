//! Alerts a compliance officer should look at, from the audit trail: simple,
//! explainable rules (research §5.2 D), no model.
//! - a person opening far more distinct patients in a day than their own
//!   baseline (more than 20, and more than three times their daily average
//!   over the 30 days before);
//! - access to patients outside working hours (clinic time, 07:00–20:00);
//! - large exports (a console export of 100 records or more, any patient's
//!   full access export);
//! - an uploaded copy of the trail that did not verify.

use std::collections::{BTreeMap, BTreeSet};

/// One audit record, as the rules need it (the shell fills these).
#[derive(Clone, Debug)]
pub struct Event {
    pub actor: String,
    /// Days since the epoch, in the clinic's zone.
    pub day: i64,
    /// The hour of day, in the clinic's zone.
    pub hour: i8,
    pub action: String,
    pub customer: Option<String>,
    pub failed: bool,
    pub reason: Option<String>,
    pub at: i64,
}

/// What to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub kind: &'static str,
    pub actor: String,
    pub detail: String,
    pub at: i64,
}

const READS: [&str; 4] = ["patient.view", "conversation.view", "held.view", "email.outbound"];

/// Alerts for `today` (clinic days), from events covering it and the 30 days before.
pub fn detect(events: &[Event], today: i64) -> Vec<Alert> {
    let mut out = Vec::new();
    // Distinct patients per person per day.
    let mut per_day: BTreeMap<(&str, i64), BTreeSet<&str>> = BTreeMap::new();
    for e in events.iter().filter(|e| READS.contains(&e.action.as_str())) {
        if let Some(c) = &e.customer {
            per_day.entry((&e.actor, e.day)).or_default().insert(c);
        }
    }
    let actors: BTreeSet<&str> = per_day.keys().map(|(a, _)| *a).collect();
    for actor in actors {
        let now = per_day.get(&(actor, today)).map_or(0, BTreeSet::len);
        let before: usize = (today - 30..today).map(|d| per_day.get(&(actor, d)).map_or(0, BTreeSet::len)).sum();
        let average = before as f64 / 30.0;
        if now > 20 && now as f64 > 3.0 * average {
            let at = events.iter().filter(|e| e.actor == actor && e.day == today).map(|e| e.at).max().unwrap_or(0);
            out.push(Alert {
                kind: "many_patients",
                actor: actor.to_owned(),
                detail: format!("{now} distinct patients today, against {average:.1} a day over the 30 days before"),
                at,
            });
        }
    }
    for e in events.iter().filter(|e| e.day == today) {
        if READS.contains(&e.action.as_str()) && e.customer.is_some() && !(7..20).contains(&e.hour) {
            out.push(Alert {
                kind: "after_hours",
                actor: e.actor.clone(),
                detail: format!("{} at {:02}:00 clinic time", e.action, e.hour),
                at: e.at,
            });
        }
        let big_bundle = e.action == "audit.export"
            && e.reason
                .as_deref()
                .and_then(|r| r.strip_prefix("bundle:"))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 100);
        if big_bundle || e.action == "customer.export" {
            out.push(Alert { kind: "large_export", actor: e.actor.clone(), detail: e.action.clone(), at: e.at });
        }
        if e.action == "audit.verify" && e.failed {
            out.push(Alert {
                kind: "verification_failed",
                actor: e.actor.clone(),
                detail: "an uploaded copy of the trail did not verify".into(),
                at: e.at,
            });
        }
    }
    out.sort_by_key(|a| std::cmp::Reverse(a.at));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(actor: &str, day: i64, hour: i8, customer: usize) -> Event {
        Event {
            actor: actor.into(),
            day,
            hour,
            action: "patient.view".into(),
            customer: Some(format!("cus_{customer}")),
            failed: false,
            reason: None,
            at: day * 86_400_000 + i64::from(hour) * 3_600_000,
        }
    }

    #[test]
    fn each_rule_fires_and_an_ordinary_day_is_quiet() {
        let mut events: Vec<Event> = (0..30).flat_map(|d| (0..5).map(move |c| view("ana", 100 + d, 10, c))).collect();
        assert!(detect(&events, 129).is_empty(), "{:?}", detect(&events, 129));
        events.extend((0..25).map(|c| view("ana", 130, 11, 100 + c)));
        events.push(view("bob", 130, 23, 1));
        events.push(Event {
            action: "audit.export".into(),
            reason: Some("bundle:250".into()),
            customer: None,
            ..view("cora", 130, 9, 0)
        });
        events.push(Event { action: "audit.verify".into(), failed: true, customer: None, ..view("cora", 130, 9, 0) });
        let kinds: Vec<&str> = detect(&events, 130).iter().map(|a| a.kind).collect();
        for k in ["many_patients", "after_hours", "large_export", "verification_failed"] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        // The same 25 patients are ordinary for someone who sees 25 a day.
        let busy: Vec<Event> = (0..31).flat_map(|d| (0..25).map(move |c| view("dr", 100 + d, 10, c))).collect();
        assert!(detect(&busy, 130).is_empty());
    }
}
