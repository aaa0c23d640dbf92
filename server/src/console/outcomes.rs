//! `/outcomes`: the clinic manager's page (compliance and admin roles): the
//! outcomes report for a period (docs/OUTCOMES.md) as a server-rendered
//! SVG chart and the same figures in a table. Aggregates only; the read is
//! on the audit trail (`report.outcomes`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::pages::{self, Bar};
use console::roles::Screen;
use continuity::outcomes::{FACTS_AFTER_MS, OutcomeReport, Period};

use super::audit_event::{in_tenant, tenant};
use super::session::admitted;
use super::{internal, page};
use crate::app::AppState;

/// The period shown when none is asked for: the last 30 days, today included.
const DEFAULT_DAYS: i64 = 30;

pub async fn outcomes(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Outcomes), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let zone = match tenant(&state, &signed.tenant).await {
        Ok(h) => h.settings.zone.clone(),
        Err(e) => return internal(&e),
    };
    let now = state.clock.now_ms();
    let to = query.get("to").cloned().unwrap_or_else(|| zone.format(now, "%Y-%m-%d"));
    let from =
        query.get("from").cloned().unwrap_or_else(|| zone.format(now - (DEFAULT_DAYS - 1) * 86_400_000, "%Y-%m-%d"));
    let mut view = pages::Outcomes {
        chrome: Some(signed.chrome(&state, "/outcomes")),
        from: from.clone(),
        to: to.clone(),
        time_zone: zone.name().to_owned(),
        problem: None,
        voice_calls: 0,
        short_excluded: 0,
        bars: Vec::new(),
        median_minutes: None,
        holdout: None,
        chart_height: 0,
    };
    let period = match (zone.start_of_day(&from), zone.end_of_day(&to)) {
        (Some(a), Some(b)) if a < b && b - a <= 400 * 86_400_000 => Period { from: a, to: b },
        _ => {
            view.problem = Some("Give two dates, the first not after the second, at most 400 days apart.".into());
            return page(StatusCode::BAD_REQUEST, &pages::render(&view));
        }
    };
    let mut ev = signed.event(audit::Action::ReportOutcomes);
    ev.reason = Some(format!("{from}..{to}"));
    let read = in_tenant(&state, &signed.tenant, move |tx, _| {
        let rows = tx.outcome_rows(period.from, period.to.saturating_add(FACTS_AFTER_MS))?;
        ev.write(tx, now)?;
        Ok(rows)
    })
    .await;
    let rows = match read {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let facts = continuity::outcomes::Facts::from_rows(&rows);
    let report = continuity::outcomes::report(period, &facts, continuity::outcomes::DEFAULT_SHORT_MS);
    fill(&mut view, &report);
    page(StatusCode::OK, &pages::render(&view))
}

fn fill(view: &mut pages::Outcomes, r: &OutcomeReport) {
    view.voice_calls = r.voice_sessions;
    view.short_excluded = r.short_excluded;
    let within = |h: i64| r.recovery.iter().find(|w| w.hours == h).map(|w| w.recovered);
    let mut figures = vec![("Interrupted calls", r.interrupted)];
    for (label, h) in
        [("Recovered within 1 hour", 1), ("Recovered within 24 hours", 24), ("Recovered within 72 hours", 72)]
    {
        if let Some(x) = within(h) {
            figures.push((label, x));
        }
    }
    figures.extend([
        ("Abandoned (not back within 24 hours)", r.abandonment),
        ("Booking conversion", r.booking_conversion),
        ("Conversion after an interruption", r.conversion_after_interruption),
        ("Resolved at first contact (7 days)", r.first_contact_resolution),
        ("Callbacks completed", r.callback_yield),
    ]);
    view.bars = figures.iter().enumerate().map(|(i, (label, x))| Bar::new(i, label, x.count, x.of)).collect();
    view.chart_height = view.bars.len() as u32 * Bar::ROW;
    view.median_minutes = r.median_minutes_to_recovery.map(|m| format!("{m:.0} minutes"));
    view.holdout = r.holdout.as_ref().map(|h| {
        format!(
            "Holdout: back within 24 hours {:.1}% with the link ({} of {}), {:.1}% without ({} of {}); difference {:+.1} points, 95% interval {:+.1} to {:+.1}, p = {:.3}.",
            h.sent.value().unwrap_or(0.0) * 100.0,
            h.sent.count,
            h.sent.of,
            h.held_out.value().unwrap_or(0.0) * 100.0,
            h.held_out.count,
            h.held_out.of,
            h.difference * 100.0,
            h.ci95.0 * 100.0,
            h.ci95.1 * 100.0,
            h.p_value
        )
    });
}
