//! The console's pages (askama templates in `console/templates/`, HTML
//! escaped by default). Each page is a plain struct the shell fills from the
//! store; none holds a store type, a key or anything it could fetch more with.

use askama::Template;

/// The frame around every signed-in page.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub staff: String,
    pub role: &'static str,
    pub csrf: String,
    /// When the session ends if idle (ms), and as shown.
    pub ends_at: i64,
    pub ends_at_text: String,
    pub now: i64,
    /// Set while an emergency-access grant is live: what it is for and until when.
    pub break_glass: Option<String>,
    pub nav: Vec<Nav>,
}

#[derive(Clone, Debug)]
pub struct Nav {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login {
    pub chrome: Option<Chrome>,
    pub error: Option<String>,
    pub notice: Option<String>,
    /// Clinics that sign in through their identity provider: (tenant name, label).
    pub providers: Vec<(String, String)>,
}

/// After a provider's sign-in: a same-origin page that moves on to the console.
#[derive(Template)]
#[template(path = "continue.html")]
pub struct Continue {
    pub chrome: Option<Chrome>,
    pub heading: &'static str,
    /// Where the page moves on to (ours, or the provider's logout).
    pub to: String,
    pub link: &'static str,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct Home {
    pub chrome: Option<Chrome>,
    pub role_label: &'static str,
    pub links: Vec<Nav>,
}

#[derive(Clone, Debug)]
pub struct SearchRow {
    pub id: String,
    pub name: String,
    pub in_scope: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
pub struct Search {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub searched: bool,
    pub rows: Vec<SearchRow>,
}

#[derive(Clone, Debug)]
pub struct AppointmentRow {
    pub when: String,
    pub minutes: i64,
    pub status: String,
    /// `None`: withheld for the role.
    pub reason: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TurnRow {
    pub at: String,
    pub channel: String,
    pub speaker: String,
    /// `None`: withheld for the role.
    pub text: Option<String>,
    /// The email session to open as a thread, when the role may.
    pub session: Option<String>,
}

#[derive(Template)]
#[template(path = "patient.html")]
pub struct Patient {
    pub chrome: Option<Chrome>,
    pub id: String,
    pub name: String,
    pub dob: String,
    pub contacts: Vec<String>,
    pub withheld: Vec<&'static str>,
    pub appointments: Vec<AppointmentRow>,
    pub turns: Vec<TurnRow>,
}

#[derive(Template)]
#[template(path = "out_of_scope.html")]
pub struct OutOfScope {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub id: String,
    pub may_break_glass: bool,
}

#[derive(Clone, Debug)]
pub struct QueueRow {
    pub since: String,
    pub customer: String,
    pub name: String,
    pub why: String,
    pub session: Option<String>,
    /// A held message to review.
    pub held: Option<i64>,
}

#[derive(Template)]
#[template(path = "held.html")]
pub struct Held {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub id: i64,
    pub received: String,
    pub channel: String,
    pub why: String,
    pub customer: String,
    pub name: String,
    /// `None`: withheld for the role.
    pub text: Option<String>,
    /// The message can be written into a patient's conversation.
    pub releasable: bool,
    pub settled: bool,
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct Queue {
    pub chrome: Option<Chrome>,
    pub rows: Vec<QueueRow>,
}

#[derive(Template)]
#[template(path = "thread.html")]
pub struct Thread {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub session: String,
    pub customer: String,
    pub name: String,
    pub turns: Vec<TurnRow>,
    pub subject: String,
    pub sent: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct GrantRow {
    pub id: String,
    pub started: String,
    pub staff: String,
    pub customer: String,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct AlertRow {
    pub at: String,
    pub kind: String,
    pub staff: String,
    pub reference: String,
}

/// The clinic manager's outcomes page (docs/OUTCOMES.md): aggregates only.
#[derive(Template)]
#[template(path = "outcomes.html")]
pub struct Outcomes {
    pub chrome: Option<Chrome>,
    pub from: String,
    pub to: String,
    pub time_zone: String,
    /// A problem with the dates asked for, shown instead of figures.
    pub problem: Option<String>,
    pub voice_calls: u64,
    pub short_excluded: u64,
    pub bars: Vec<Bar>,
    pub median_minutes: Option<String>,
    pub holdout: Option<String>,
    /// The chart's height in pixels (one row per bar).
    pub chart_height: u32,
}

/// One ratio as a labelled bar of the server-rendered chart.
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub count: u64,
    pub of: u64,
    /// "30.0%", or "-" without a base.
    pub percent: String,
    /// Width of the filled bar in the chart's units (0 to 400).
    pub width: u32,
    /// The bar's top in the chart.
    pub y: u32,
}

impl Bar {
    pub const ROW: u32 = 28;

    pub fn new(row: usize, label: &str, count: u64, of: u64) -> Self {
        let value = (of > 0).then(|| count as f64 / of as f64);
        Bar {
            label: label.to_owned(),
            count,
            of,
            percent: value.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into()),
            width: value.map(|v| (v.clamp(0.0, 1.0) * 400.0).round() as u32).unwrap_or(0),
            y: row as u32 * Self::ROW,
        }
    }
}

#[derive(Template)]
#[template(path = "reviews.html")]
pub struct Reviews {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub notice: Option<String>,
    pub grants: Vec<GrantRow>,
    pub alerts: Vec<AlertRow>,
}

#[derive(Clone, Debug)]
pub struct StaffRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub break_glass: bool,
    pub status: String,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "staff.html")]
pub struct Staff {
    pub chrome: Option<Chrome>,
    pub rows: Vec<StaffRow>,
}

/// One audit record as the compliance console lists it (no PHI: ids and codes).
#[derive(Clone, Debug)]
pub struct AuditRow {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    /// The staff member's email, or the channel, for people to read.
    pub actor_label: String,
    pub role: String,
    pub action: String,
    pub customer: String,
    pub purpose: String,
    pub break_glass: String,
    pub outcome: String,
    pub reason: String,
    pub shown: usize,
}

/// The search form's values, echoed back (pseudonyms and codes only; a
/// phone or email searched for is never echoed).
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub patient: String,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub channel: String,
    pub from: String,
    pub until: String,
    pub break_glass: bool,
    pub oldest_first: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct Audit {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub badge: crate::integrity::Badge,
    pub level: &'static str,
    pub verifier_key: String,
    pub title: String,
    pub note: Option<String>,
    pub query: AuditQuery,
    pub rows: Vec<AuditRow>,
    /// The cursor for the next page, when there is one.
    pub next: Option<u64>,
    /// A verification of an uploaded export: (ok, what it said).
    pub verified: Option<(bool, String)>,
}

#[derive(Clone, Debug)]
pub struct RequestRow {
    pub id: String,
    pub customer: String,
    pub kind: String,
    pub source: String,
    pub received: String,
    pub due: String,
    pub overdue: bool,
    pub status: String,
    pub requested_by: String,
    pub approved_by: String,
    pub receipt: String,
    /// An open erasure someone else entered: this person may approve it.
    pub can_approve: bool,
    /// An open access request someone else entered, not yet approved: this
    /// person may approve sending its clinical part to the patient.
    pub can_approve_clinical: bool,
    pub can_export: bool,
}

#[derive(Template)]
#[template(path = "requests.html")]
pub struct Requests {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub rows: Vec<RequestRow>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ReviewAccount {
    pub id: String,
    pub email: String,
    pub role: String,
    pub break_glass: bool,
    pub status: String,
    pub method: &'static str,
    pub last_login: String,
    /// No sign-in for 90 days (or never): a candidate for removal.
    pub inactive: bool,
    pub patients: i64,
}

#[derive(Clone, Debug)]
pub struct PastReview {
    pub period: String,
    pub reviewer: String,
    pub accounts: i64,
    pub note: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "access_review.html")]
pub struct AccessReview {
    pub chrome: Option<Chrome>,
    pub csrf: String,
    pub period: String,
    pub range: String,
    pub accounts: Vec<ReviewAccount>,
    pub past: Vec<PastReview>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub chrome: Option<Chrome>,
    pub title: String,
    pub message: String,
    pub back: &'static str,
}

/// Renders a page; a template error (a bug, never input) becomes a plain page.
pub fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|_| "<!doctype html><title>Error</title><p>The page could not be shown.</p>".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_no_inline_code_is_written() {
        let page = Thread {
            chrome: None,
            csrf: "tok".into(),
            session: "ses_1".into(),
            customer: "cus_1".into(),
            name: "<script>alert(1)</script>".into(),
            turns: vec![TurnRow {
                at: "now".into(),
                channel: "email".into(),
                speaker: "patient".into(),
                text: Some("\"><img src=x onerror=alert(1)>".into()),
                session: None,
            }],
            subject: "Re: hi".into(),
            sent: None,
            error: None,
        };
        let html = render(&page);
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("script&#62;alert") || html.contains("&lt;script&gt;") || html.contains("&#60;script"),
            "{html}"
        );
        assert!(!html.contains(" style=") && !html.contains(" onclick="));
    }
}
