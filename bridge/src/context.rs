//! The core's resume context as the bridge reads it (the fields of
//! docs/API.md it uses), and what a platform gets from it: string variables
//! for prompts, a first message, one line for a tool result. Everything here
//! is already filtered by the tenant's policy in the core; the bridge adds
//! nothing and keeps nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Context {
    pub session_id: String,
    #[serde(default)]
    pub identity: Identity,
    pub greeting_name: Option<String>,
    #[serde(default)]
    pub state: BTreeMap<String, String>,
    #[serde(default)]
    pub recent_turns: Vec<Turn>,
    pub brief: Option<String>,
    #[serde(default)]
    pub appointments: Vec<Appointment>,
    #[serde(default)]
    pub withheld: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub confirmed: bool,
    #[serde(default)]
    pub confirm_with: Vec<String>,
    #[serde(default)]
    pub locked: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Turn {
    pub channel: String,
    pub speaker: String,
    pub text: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Appointment {
    pub id: String,
    pub local_time: Option<String>,
}

/// Turns given to the agent in `recent_turns` (the core hands back 20).
const TURNS_FOR_AGENT: usize = 8;

impl Context {
    /// The variables a platform's prompt can use (`{{ brief }}` …), every
    /// value a string (Retell requires it; Vapi accepts it).
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        v.insert("throughline_session".into(), self.session_id.clone());
        v.insert("session_id".into(), self.session_id.clone());
        v.insert("identity_status".into(), self.identity.status.clone());
        v.insert("identity_confirmed".into(), yes_no(self.identity.confirmed));
        v.insert("confirm_with".into(), self.identity.confirm_with.join(", "));
        v.insert("identity_locked".into(), yes_no(self.identity.locked));
        v.insert("patient_first_name".into(), self.greeting_name.clone().unwrap_or_default());
        v.insert("brief".into(), self.brief.clone().unwrap_or_default());
        v.insert("pending".into(), self.pending());
        v.insert(
            "state".into(),
            self.state.iter().map(|(k, val)| format!("{k}: {val}")).collect::<Vec<_>>().join("; "),
        );
        v.insert("recent_turns".into(), self.turns_line());
        v.insert(
            "next_appointment".into(),
            self.appointments.first().and_then(|a| a.local_time.clone()).unwrap_or_default(),
        );
        v.insert("withheld".into(), self.withheld.join(", "));
        v
    }

    /// "booking date: Tuesday; …" from the `pending_*` state keys.
    pub fn pending(&self) -> String {
        self.state
            .iter()
            .filter_map(|(k, val)| k.strip_prefix("pending_").map(|k| format!("{}: {val}", k.replace('_', " "))))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn turns_line(&self) -> String {
        let skip = self.recent_turns.len().saturating_sub(TURNS_FOR_AGENT);
        self.recent_turns[skip..]
            .iter()
            .map(|t| format!("{} ({}): {}", t.speaker, t.channel, single_line(&t.text)))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// What the agent says first: the route's template, or a greeting by
    /// name when the policy released it, else a neutral one.
    pub fn first_message(&self, template: Option<&str>) -> String {
        if let Some(t) = template
            && let Ok(s) = crate::template::render(t, &self.variables(), false)
        {
            return single_line(&s);
        }
        match &self.greeting_name {
            Some(name) if !self.pending().is_empty() => {
                format!("Hi {name}, welcome back. Shall we pick up where we left off?")
            }
            Some(name) => format!("Hi {name}, thanks for calling. How can I help you today?"),
            None => "Thanks for calling. How can I help you today?".to_owned(),
        }
    }

    /// One line for a tool result: what the agent may now use.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.greeting_name {
            parts.push(format!("Patient: {n}."));
        }
        if !self.identity.confirm_with.is_empty() && !self.identity.confirmed {
            parts.push(format!("Ask for {} to confirm identity.", self.identity.confirm_with.join(" and ")));
        }
        let pending = self.pending();
        if !pending.is_empty() {
            parts.push(format!("Pending: {pending}."));
        }
        if let Some(a) = self.appointments.first().and_then(|a| a.local_time.as_ref()) {
            parts.push(format!("Next appointment: {a}."));
        }
        let turns = self.turns_line();
        if !turns.is_empty() {
            parts.push(format!("Recent: {turns}"));
        }
        if parts.is_empty() {
            parts.push("Nothing on file yet for this conversation.".to_owned());
        }
        single_line(&parts.join(" "))
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Platforms break on line breaks inside tool results.
pub fn single_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        serde_json::from_value(serde_json::json!({
            "session_id": "ses_1", "channel": "voice",
            "identity": {"status": "resolved", "strength": "claim", "confirmed": true, "confirm_with": [], "locked": false, "candidates": 0},
            "greeting_name": "Maria",
            "state": {"pending_booking_date": "Tuesday", "language": "es"},
            "recent_turns": [{"channel": "voice", "speaker": "patient", "text": "Tuesday\nif possible", "at": 1}],
            "brief": "voice call 10 min ago, dropped; pending: booking date Tuesday",
            "appointments": [{"id": "apt_1", "local_time": "Tuesday, March 16, 2027 at 2:00 PM PDT"}],
            "withheld": []
        }))
        .unwrap()
    }

    #[test]
    fn variables_are_strings_and_single_lines() {
        let v = ctx().variables();
        assert_eq!(v["pending"], "booking date: Tuesday");
        assert_eq!(v["recent_turns"], "patient (voice): Tuesday if possible");
        assert_eq!(v["identity_confirmed"], "yes");
        assert_eq!(v["next_appointment"], "Tuesday, March 16, 2027 at 2:00 PM PDT");
        assert!(ctx().summary().starts_with("Patient: Maria. Pending: booking date: Tuesday."));
    }

    #[test]
    fn a_withheld_context_greets_nobody() {
        let c: Context = serde_json::from_value(serde_json::json!({
            "session_id": "ses_2", "identity": {"status": "new", "confirm_with": ["date_of_birth"]},
            "greeting_name": null, "withheld": ["identity", "conversation"]
        }))
        .unwrap();
        assert_eq!(c.first_message(None), "Thanks for calling. How can I help you today?");
        assert_eq!(c.variables()["confirm_with"], "date_of_birth");
        assert_eq!(ctx().first_message(Some("Hola {{ patient_first_name }}")), "Hola Maria");
    }
}
