//! Finding a patient and opening their record: search through the blind
//! indexes (audited with the search's HMAC and every patient found), the
//! patient page as the role and scope allow (audited in the transaction
//! that reads), and emergency access for a clinician outside their scope.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, AppointmentRow, OutOfScope, Patient, Search, SearchRow, TurnRow};
use console::roles::{Denied, Sight, sight};
use policy::PhiClass;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::audit_event::{in_tenant, record};
use super::session::{Signed, admitted, signed_in};
use super::{internal, page};
use crate::app::AppState;
use continuity::identifiers::Identifier;
use store::ids::{BreakGlassId, CustomerId};
use store::{BreakGlassRow, IdentifierKind, StoreError, normalise_name};

/// Emergency access lasts this long, whatever the session does.
pub const BREAK_GLASS_MS: i64 = 60 * 60_000;
/// Turns a patient page shows (newest).
pub const TIMELINE_TURNS: u32 = 1_000;

pub fn refused_screen(signed: &Signed, state: &AppState) -> HttpResponse {
    let m = pages::Message {
        chrome: Some(signed.chrome(state, "")),
        title: "Not for your role".into(),
        message: "Your role does not open this page.".into(),
        back: "/",
    };
    page(StatusCode::FORBIDDEN, &pages::render(&m))
}

pub async fn search_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Search), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let p = Search {
        chrome: Some(signed.chrome(&state, "/search")),
        csrf: signed.csrf.clone(),
        searched: false,
        rows: vec![],
    };
    page(StatusCode::OK, &pages::render(&p))
}

#[derive(Deserialize)]
pub struct SearchForm {
    csrf: String,
    kind: String,
    q: Zeroizing<String>,
}

pub async fn search(req: HttpRequest, state: web::Data<AppState>, form: web::Form<SearchForm>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Search), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = form.into_inner();
    let kind = form.kind.clone();
    let now = state.clock.now_ms();
    let ev = signed.event(audit::Action::PatientSearch);
    let staff_id = signed.staff.id.clone();
    let clinician = signed.role == console::Role::Clinician;
    let found = in_tenant(&state, &signed.tenant, move |tx, settings| {
        let normalised = match kind.as_str() {
            "phone" => Identifier::phone(&form.q, &settings.region).map(|i| i.value().to_owned()).ok(),
            "email" => Identifier::email(&form.q).map(|i| i.value().to_owned()).ok(),
            "name" => Some(normalise_name(&form.q)).filter(|n| !n.is_empty()),
            _ => None,
        };
        let Some(normalised) = normalised.map(Zeroizing::new) else { return Ok(None) };
        let ids = match kind.as_str() {
            "phone" => tx.customers_by_identifier(IdentifierKind::Phone, &normalised)?,
            "email" => tx.customers_by_identifier(IdentifierKind::Email, &normalised)?,
            _ => {
                tx.backfill_name_index()?;
                tx.customers_by_name(&normalised)?
            }
        };
        let greeting = policy::staff_access([PhiClass::Greeting].into_iter().collect());
        let mut rows = Vec::new();
        for id in &ids {
            let (name, _) = tx.staff_identity(id, &greeting)?;
            rows.push((id.to_string(), name));
        }
        let mut ev = ev;
        ev.query_hmac = Some(tx.search_hmac(&kind, &normalised));
        ev.subjects = ids.iter().map(ToString::to_string).collect();
        ev.write(tx, now)?;
        Ok(Some(rows))
    })
    .await;
    let rows = match found {
        Ok(Some(rows)) => rows,
        Ok(None) => {
            let p = Search {
                chrome: Some(signed.chrome(&state, "/search")),
                csrf: signed.csrf.clone(),
                searched: true,
                rows: vec![],
            };
            return page(StatusCode::UNPROCESSABLE_ENTITY, &pages::render(&p));
        }
        Err(e) => return internal(&e),
    };
    let st = state.clone();
    let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    let scope = web::block(move || -> Result<Vec<bool>, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        ids.iter().map(|c| Ok(!clinician || system.is_assigned(&staff_id, c)?)).collect()
    })
    .await;
    let Ok(Ok(scope)) = scope else { return internal(&"scope lookup failed") };
    let rows = rows
        .into_iter()
        .zip(scope)
        .map(|((id, name), in_scope)| SearchRow { id, name: name.to_string(), in_scope })
        .collect();
    let p = Search { chrome: Some(signed.chrome(&state, "/search")), csrf: signed.csrf.clone(), searched: true, rows };
    page(StatusCode::OK, &pages::render(&p))
}

/// Assignment, live grant and eligibility of the member for a patient.
pub async fn scope(
    state: &web::Data<AppState>,
    signed: &Signed,
    customer: &str,
) -> Result<(bool, Option<String>), HttpResponse> {
    let st = state.clone();
    let staff = signed.staff.id.clone();
    let customer = customer.to_owned();
    let now = state.clock.now_ms();
    match web::block(move || -> Result<_, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        Ok((system.is_assigned(&staff, &customer)?, system.live_break_glass(&staff, &customer, now)?.map(|g| g.id)))
    })
    .await
    {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

/// What the role may see here, or the page (and audit record) that says no.
pub async fn decide(
    state: &web::Data<AppState>,
    signed: &Signed,
    screen: Screen,
    customer: &CustomerId,
    action: audit::Action,
) -> Result<(Sight, Option<String>), HttpResponse> {
    let (assigned, grant) = scope(state, signed, customer.as_str()).await?;
    match sight(signed.role, screen, assigned, grant.is_some(), signed.staff.break_glass) {
        Ok(s) => Ok((s, grant.filter(|_| s.break_glass))),
        Err(denied) => {
            let mut ev = signed.event(action);
            ev.customer = Some(customer.to_string());
            let reason = match denied {
                Denied::Screen => "role",
                Denied::OutOfScope { .. } => "out_of_scope",
            };
            if let Err(e) = record(state, &signed.tenant, ev.refused(reason)).await {
                return Err(internal(&e));
            }
            Err(match denied {
                Denied::OutOfScope { may_break_glass } => {
                    let p = OutOfScope {
                        chrome: Some(signed.chrome(state, "")),
                        csrf: signed.csrf.clone(),
                        id: customer.to_string(),
                        may_break_glass,
                    };
                    page(StatusCode::FORBIDDEN, &pages::render(&p))
                }
                Denied::Screen => refused_screen(signed, state),
            })
        }
    }
}

pub fn turn_rows(
    turns: Vec<store::ConsoleTurn>,
    zone: &continuity::calendar::ClinicZone,
    open_threads: bool,
) -> Vec<TurnRow> {
    turns
        .into_iter()
        .map(|t| TurnRow {
            at: zone.format(t.at, "%Y-%m-%d %H:%M"),
            session: (open_threads && t.channel == "email").then(|| t.session_id.clone()),
            channel: t.channel,
            speaker: t.speaker,
            text: t.text.map(|x| x.to_string()),
        })
        .collect()
}

pub async fn patient(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let signed = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(customer) = CustomerId::parse(&path) else { return super::not_found_page() };
    let (sight, grant) = match decide(&state, &signed, Screen::Patient, &customer, audit::Action::PatientView).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = state.clock.now_ms();
    let mut ev = signed.event(audit::Action::PatientView);
    ev.customer = Some(customer.to_string());
    if sight.break_glass {
        ev.purpose = "ETREAT";
        ev.break_glass = grant;
    }
    let open_threads = signed.role.allows(Screen::Thread);
    let c = customer.clone();
    let read =
        in_tenant(&state, &signed.tenant, move |tx, settings| {
            if !tx.customer_live(&c)? {
                return Ok(None);
            }
            let access = policy::staff_access(sight.classes);
            let (name, dob) = tx.staff_identity(&c, &access)?;
            let contacts = if access.allows(PhiClass::Contact) { tx.contacts(&c, &access)? } else { vec![] };
            let mut appointments = Vec::new();
            if access.allows(PhiClass::Scheduling) {
                for a in tx.upcoming_appointments(&c, 0, &access)? {
                    let reason = if access.allows(PhiClass::Clinical) {
                        Some(
                            tx.appointment_reason(&a, &access)?
                                .map(|r| r.to_string())
                                .unwrap_or_else(|| "none given".into()),
                        )
                    } else {
                        None
                    };
                    appointments.push(AppointmentRow {
                        when: settings.zone.render(a.starts_at),
                        minutes: i64::from(a.duration_min),
                        status: a.status.clone(),
                        reason,
                    });
                }
            }
            let turns = tx.timeline(&c, TIMELINE_TURNS, &access, |ch| {
                if ch == "email" { sight.email_text } else { sight.spoken_text }
            })?;
            ev.write(tx, now)?;
            let withheld: Vec<&'static str> = PhiClass::ALL
                .into_iter()
                .filter(|k| !sight.classes.contains(*k))
                .map(PhiClass::as_str)
                .chain((!sight.spoken_text).then_some("call and chat transcripts"))
                .collect();
            Ok::<_, StoreError>(Some(Patient {
                chrome: None,
                id: c.to_string(),
                name: name.to_string(),
                dob: dob.map(|d| d.to_string()).unwrap_or_else(|| "withheld".into()),
                contacts: contacts.iter().map(|x| x.to_string()).collect(),
                withheld,
                appointments,
                turns: turn_rows(turns, &settings.zone, open_threads),
            }))
        })
        .await;
    match read {
        Ok(Some(mut p)) => {
            p.chrome = Some(signed.chrome(&state, ""));
            page(StatusCode::OK, &pages::render(&p))
        }
        Ok(None) => super::not_found_page(),
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct BreakGlassForm {
    csrf: String,
    reason: Zeroizing<String>,
}

pub async fn break_glass(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<BreakGlassForm>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, None, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(customer) = CustomerId::parse(&path) else { return super::not_found_page() };
    let mut ev = signed.event(audit::Action::BreakglassStart);
    ev.customer = Some(customer.to_string());
    ev.purpose = "ETREAT";
    if !signed.role.allows(Screen::BreakGlass) || !signed.staff.break_glass {
        return match record(&state, &signed.tenant, ev.refused("not_eligible")).await {
            Ok(()) => refused_screen(&signed, &state),
            Err(e) => internal(&e),
        };
    }
    let reason = form.reason.trim();
    if reason.chars().count() < 10 || reason.chars().count() > 500 {
        let m = pages::Message {
            chrome: Some(signed.chrome(&state, "")),
            title: "A reason is needed".into(),
            message: "Say in 10 to 500 characters why you need emergency access.".into(),
            back: "/",
        };
        return page(StatusCode::UNPROCESSABLE_ENTITY, &pages::render(&m));
    }
    let now = state.clock.now_ms();
    let grant = BreakGlassRow {
        id: BreakGlassId::generate().to_string(),
        staff_id: signed.staff.id.clone(),
        tenant_id: signed.tenant.to_string(),
        customer_id: customer.to_string(),
        reason: Zeroizing::new(reason.to_owned()),
        started_at: now,
        expires_at: now + BREAK_GLASS_MS,
        review_outcome: None,
    };
    let id = grant.id.clone();
    let st = state.clone();
    let c = customer.clone();
    let tenant = signed.tenant.clone();
    let live = in_tenant(&state, &signed.tenant, move |tx, _| tx.customer_live(&c)).await;
    if !matches!(live, Ok(true)) {
        return super::not_found_page();
    }
    let stored = web::block(move || -> Result<Vec<String>, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        system.insert_break_glass(&grant)?;
        Ok(system
            .staff_of_tenant(&tenant)?
            .into_iter()
            .filter(|s| s.role == console::Role::Compliance.as_str() && s.disabled_at.is_none())
            .map(|s| s.email)
            .collect())
    })
    .await;
    let Ok(Ok(officers)) = stored else { return internal(&"break-glass grant not stored") };
    ev.break_glass = Some(id.clone());
    if let Err(e) = record(&state, &signed.tenant, ev).await {
        return internal(&e);
    }
    super::admin::alert_officers(&state, &signed.tenant, officers, &id, &signed.staff.id).await;
    match super::session::renew(&req, &state, &signed).await {
        Ok(cookie) => HttpResponse::SeeOther()
            .insert_header(("location", format!("/patients/{customer}")))
            .insert_header(("set-cookie", cookie))
            .finish(),
        Err(e) => internal(&e),
    }
}
