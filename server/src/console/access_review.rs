//! The quarterly access review: every account, its role, how it signs in,
//! when it last did, and how many patients it accessed in the quarter; the
//! officer records the review (`staff.access_review.attest`). And the
//! anomaly alerts (`console::anomaly`) computed from the last 31 days.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, AccessReview, PastReview, ReviewAccount};
use serde::Deserialize;

use super::audit_event::{in_tenant, record};
use super::session::{Signed, admitted};
use super::{internal, page, see_other};
use crate::app::AppState;
use continuity::calendar::ClinicZone;
use store::StoreError;

const DAY_MS: i64 = 86_400_000;

/// The calendar quarter `now` is in (UTC): its name and [start, end).
fn quarter(now: i64) -> (String, i64, i64) {
    let z = jiff::Timestamp::from_millisecond(now)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let q = (z.month() - 1) / 3;
    let start = jiff::civil::date(z.year(), q * 3 + 1, 1);
    let end = start.checked_add(jiff::Span::new().months(3)).unwrap_or(start);
    let ms = |d: jiff::civil::Date| {
        d.to_datetime(jiff::civil::Time::midnight())
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map_or(now, |z| z.timestamp().as_millisecond())
    };
    (format!("{}-Q{}", z.year(), q + 1), ms(start), ms(end))
}

async fn render(state: &web::Data<AppState>, signed: &Signed, notice: Option<String>) -> HttpResponse {
    let now = state.clock.now_ms();
    let (period, from, until) = quarter(now);
    let counts = in_tenant(state, &signed.tenant, move |tx, _| tx.distinct_patients_by_staff(from, until)).await;
    let counts: HashMap<String, i64> = match counts {
        Ok(c) => c.into_iter().collect(),
        Err(e) => return internal(&e),
    };
    let st = state.clone();
    let tenant = signed.tenant.clone();
    let found = web::block(move || -> Result<_, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let staff = system.staff_of_tenant(&tenant)?;
        let provider: Vec<bool> = staff.iter().map(|s| system.staff_uses_provider(&s.id)).collect::<Result<_, _>>()?;
        Ok((staff, provider, system.access_reviews(&tenant)?))
    })
    .await;
    let Ok(Ok((staff, provider, past))) = found else { return internal(&"access review") };
    let zone = ClinicZone::utc();
    let names: HashMap<String, String> = staff.iter().map(|s| (s.id.clone(), s.email.clone())).collect();
    let accounts = staff
        .iter()
        .zip(provider)
        .map(|(s, p)| ReviewAccount {
            id: s.id.clone(),
            email: s.email.clone(),
            role: s.role.clone(),
            break_glass: s.break_glass,
            status: if s.disabled_at.is_some() { "disabled".into() } else { "active".into() },
            method: if p { "the clinic's identity provider" } else { "password and authenticator code" },
            last_login: s.last_login_at.map_or_else(|| "never".into(), |t| zone.format(t, "%Y-%m-%d")),
            inactive: s.disabled_at.is_none() && s.last_login_at.is_none_or(|t| now - t > 90 * DAY_MS),
            patients: counts.get(&s.id).copied().unwrap_or(0),
        })
        .collect();
    let past = past
        .into_iter()
        .map(|(period, reviewer, accounts, note, at)| PastReview {
            period,
            reviewer: names.get(&reviewer).cloned().unwrap_or(reviewer),
            accounts,
            note,
            at: zone.format(at, "%Y-%m-%d %H:%M UTC"),
        })
        .collect();
    let mut ev = signed.event(audit::Action::AuditReport);
    ev.reason = Some(format!("access_review:{period}"));
    if let Err(e) = record(state, &signed.tenant, ev).await {
        return internal(&e);
    }
    let range = format!("{} to {}", zone.format(from, "%Y-%m-%d"), zone.format(until - 1, "%Y-%m-%d"));
    let p = AccessReview {
        chrome: Some(signed.chrome(state, "/audit")),
        csrf: signed.csrf.clone(),
        period,
        range,
        accounts,
        past,
        notice,
    };
    page(StatusCode::OK, &pages::render(&p))
}

pub async fn review_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    render(&state, &signed, None).await
}

#[derive(Deserialize)]
pub struct Attest {
    csrf: String,
    note: String,
}

pub async fn attest(req: HttpRequest, state: web::Data<AppState>, form: web::Form<Attest>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let note = form.note.trim().to_owned();
    if note.chars().count() < 5 {
        return render(&state, &signed, Some("Say in a few words what you found and did.".into())).await;
    }
    let now = state.clock.now_ms();
    let (period, _, _) = quarter(now);
    let (st, tenant, reviewer, p) = (state.clone(), signed.tenant.clone(), signed.staff.id.clone(), period.clone());
    let stored = web::block(move || -> Result<i64, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let n = system.staff_of_tenant(&tenant)?.len() as i64;
        system.record_access_review(&tenant, &p, &reviewer, n, &note, now)?;
        Ok(n)
    })
    .await;
    let Ok(Ok(n)) = stored else { return internal(&"access review not stored") };
    let mut ev = signed.event(audit::Action::StaffAccessReviewAttest);
    ev.reason = Some(format!("{period}:{n}"));
    if let Err(e) = record(&state, &signed.tenant, ev).await {
        return internal(&e);
    }
    see_other("/audit/access-review")
}

/// The anomaly alerts of the clinic's day, for the Reviews page.
pub async fn anomalies(
    state: &web::Data<AppState>,
    signed: &Signed,
) -> Result<Vec<console::anomaly::Alert>, crate::Error> {
    let now = state.clock.now_ms();
    in_tenant(state, &signed.tenant, move |tx, settings| {
        let rows = tx.staff_events_since(now - 31 * DAY_MS)?;
        let local = |ms: i64| {
            let shifted = ms + i64::from(settings.zone.offset_min(ms).unwrap_or(0)) * 60_000;
            (shifted.div_euclid(DAY_MS), i8::try_from(shifted.rem_euclid(DAY_MS) / 3_600_000).unwrap_or(0))
        };
        let events: Vec<console::anomaly::Event> = rows
            .into_iter()
            .map(|(actor, at, action, customer, outcome, reason)| {
                let (day, hour) = local(at);
                console::anomaly::Event { actor, day, hour, action, customer, failed: outcome == "failed", reason, at }
            })
            .collect();
        Ok::<_, StoreError>(console::anomaly::detect(&events, local(now).0))
    })
    .await
}
