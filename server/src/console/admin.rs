//! The home page, the compliance officer's review queue (emergency access
//! waiting for sign-off, alerts) and the administrator's staff list. None of
//! these shows clinical text; the review queue shows patients' pseudonyms.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, AlertRow, GrantRow, Home, Reviews, Staff, StaffRow};
use serde::Deserialize;

use super::audit_event::{StaffEvent, in_tenant, record};
use super::session::{admitted, nav, signed_in};
use super::{internal, page, see_other};
use crate::app::AppState;
use store::ids::TenantId;

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let p =
        Home { chrome: Some(signed.chrome(&state, "/")), role_label: signed.role.label(), links: nav(signed.role, "") };
    page(StatusCode::OK, &pages::render(&p))
}

async fn reviews_page(req: &HttpRequest, state: &web::Data<AppState>, notice: Option<String>) -> HttpResponse {
    let signed = match signed_in(req, state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.role.allows(Screen::Reviews) {
        return super::patients::refused_screen(&signed, state);
    }
    let st = state.clone();
    let tenant = signed.tenant.clone();
    let found = web::block(move || -> Result<_, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        Ok((system.unreviewed_break_glass(&tenant)?, system.staff_alerts(&tenant, 50)?))
    })
    .await;
    let Ok(Ok((grants, alerts))) = found else { return internal(&"review queue unreadable") };
    let zone = continuity::calendar::ClinicZone::utc();
    let mut ev = signed.event(audit::Action::BreakglassReviewList);
    ev.subjects = grants.iter().map(|g| g.customer_id.clone()).collect();
    ev.subjects.dedup();
    if let Err(e) = record(state, &signed.tenant, ev).await {
        return internal(&e);
    }
    let computed = match super::access_review::anomalies(state, &signed).await {
        Ok(a) => a,
        Err(e) => return internal(&e),
    };
    let p = Reviews {
        chrome: Some(signed.chrome(state, "/reviews")),
        csrf: signed.csrf.clone(),
        notice,
        grants: grants
            .iter()
            .map(|g| GrantRow {
                id: g.id.clone(),
                started: zone.format(g.started_at, "%Y-%m-%d %H:%M UTC"),
                staff: g.staff_id.clone(),
                customer: g.customer_id.clone(),
                reason: g.reason.to_string(),
            })
            .collect(),
        alerts: computed
            .into_iter()
            .map(|a| AlertRow {
                at: zone.format(a.at, "%Y-%m-%d %H:%M UTC"),
                kind: a.kind.replace('_', " "),
                staff: a.actor,
                reference: a.detail,
            })
            .chain(alerts.into_iter().map(|(at, kind, staff, reference)| AlertRow {
                at: zone.format(at, "%Y-%m-%d %H:%M UTC"),
                kind: kind.replace('_', " "),
                staff: staff.unwrap_or_default(),
                reference: reference.unwrap_or_default(),
            }))
            .collect(),
    };
    page(StatusCode::OK, &pages::render(&p))
}

pub async fn reviews(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    reviews_page(&req, &state, None).await
}

#[derive(Deserialize)]
pub struct ReviewForm {
    csrf: String,
    outcome: String,
}

pub async fn review(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReviewForm>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Reviews), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !matches!(form.outcome.as_str(), "justified" | "not_justified" | "escalated") {
        return reviews_page(&req, &state, Some("Choose justified, not justified or escalated.".into())).await;
    }
    let id = path.into_inner();
    let (st, reviewer, outcome, tenant) =
        (state.clone(), signed.staff.id.clone(), form.outcome.clone(), signed.tenant.clone());
    let now = state.clock.now_ms();
    let g = id.clone();
    let done = web::block(move || -> Result<_, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let Some(grant) = system.break_glass(&g)?.filter(|x| x.tenant_id == tenant.as_str()) else { return Ok(None) };
        Ok(Some((system.review_break_glass(&g, &reviewer, &outcome, now)?, grant.customer_id)))
    })
    .await;
    let (changed, customer) = match done {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return super::not_found_page(),
        _ => return internal(&"review not stored"),
    };
    let mut ev = signed.event(audit::Action::BreakglassReview);
    ev.customer = Some(customer);
    ev.break_glass = Some(id);
    ev.reason = Some(form.outcome.clone());
    if !changed {
        ev = ev.refused("already_reviewed");
    }
    if let Err(e) = record(&state, &signed.tenant, ev).await {
        return internal(&e);
    }
    see_other("/reviews")
}

pub async fn staff(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Staff), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let st = state.clone();
    let tenant = signed.tenant.clone();
    let Ok(Ok(rows)) = web::block(move || -> Result<_, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        Ok(system.staff_of_tenant(&tenant)?)
    })
    .await
    else {
        return internal(&"staff list unreadable");
    };
    let zone = continuity::calendar::ClinicZone::utc();
    let rows = rows
        .into_iter()
        .map(|s| StaffRow {
            status: if s.disabled_at.is_some() { "disabled".into() } else { "active".into() },
            last_login: s.last_login_at.map(|t| zone.format(t, "%Y-%m-%d %H:%M UTC")).unwrap_or_else(|| "never".into()),
            id: s.id,
            email: s.email,
            role: s.role,
            break_glass: s.break_glass,
        })
        .collect();
    page(StatusCode::OK, &pages::render(&Staff { chrome: Some(signed.chrome(&state, "/staff")), rows }))
}

/// Tells the clinic's compliance officers of an emergency access by email
/// when the clinic has an SMTP relay (the console's review queue has it in
/// any case). The message names ids only: no patient data.
pub async fn alert_officers(
    state: &web::Data<AppState>,
    tenant: &TenantId,
    officers: Vec<String>,
    grant: &str,
    staff: &str,
) {
    let Ok(handle) = super::audit_event::tenant(state, tenant).await else { return };
    let Some(smtp) = handle.settings.email.smtp.clone() else { return };
    let from = handle.settings.email.from_address.clone();
    for to in officers {
        let body = format!(
            "Emergency access was started in the Throughline console.\n\nGrant: {grant}\nStaff member: {staff}\n\nSign it off under Reviews in the console.\n"
        );
        let Ok(message) = lettre::Message::builder()
            .from(match from.parse() {
                Ok(f) => f,
                Err(_) => return,
            })
            .to(match to.parse() {
                Ok(t) => t,
                Err(_) => continue,
            })
            .subject("Throughline: emergency access to review")
            .body(body)
        else {
            continue;
        };
        let sent = crate::smtp::send(&smtp, &from, &to, &message.formatted()).await;
        let mut ev = StaffEvent::new("throughline", "system", "HOPERAT", audit::Action::BreakglassAlert);
        ev.kind = audit::ActorKind::System;
        ev.break_glass = Some(grant.to_owned());
        if let Err(e) = sent {
            ev.outcome = audit::Outcome::Failed;
            ev.reason = Some(e.to_string());
        }
        let now = state.clock.now_ms();
        if let Err(e) = in_tenant(state, tenant, move |tx, _| ev.write(tx, now)).await {
            tracing::error!(error = %e, "break-glass alert could not be audited");
        }
    }
}
