//! The compliance officer's view of the audit trail: the integrity badge
//! (the whole chain verified and the latest checkpoint checked, on every
//! visit), search, the reports (who accessed a patient, what one person
//! did, sign-in failures), an export that verifies offline, and checking an
//! uploaded export against the signed checkpoint. Reading the trail is
//! itself audited (`audit.view`, `audit.search`, `audit.report`,
//! `audit.export`, `audit.verify`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, Audit, AuditQuery, AuditRow};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::audit_event::in_tenant;
use super::session::{Signed, admitted};
use super::{internal, page};
use crate::app::AppState;
use continuity::identifiers::Identifier;
use store::{AuditFilter, IdentifierKind, Integrity, StoreError};

/// A checkpoint older than this shows amber (twice `serve`'s default hour).
const CHECKPOINT_MAX_AGE_MS: i64 = 2 * 3_600_000;
const PAGE: u32 = 50;

pub(super) async fn integrity(state: &web::Data<AppState>, signed: &Signed) -> Result<Integrity, crate::Error> {
    let handle = super::audit_event::tenant(state, &signed.tenant).await?;
    Ok(handle.store.run_async(|store| store.integrity()).await??)
}

/// Staff ids to the emails people read.
async fn staff_names(state: &web::Data<AppState>, signed: &Signed) -> HashMap<String, String> {
    let st = state.clone();
    let tenant = signed.tenant.clone();
    web::block(move || -> Result<HashMap<String, String>, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        Ok(system.staff_of_tenant(&tenant)?.into_iter().map(|s| (s.id, s.email)).collect())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default()
}

fn rows(records: &[(audit::Record, String)], names: &HashMap<String, String>) -> Vec<AuditRow> {
    let zone = continuity::calendar::ClinicZone::utc();
    records
        .iter()
        .map(|(r, _)| AuditRow {
            seq: r.seq,
            at: zone.format(r.at, "%Y-%m-%d %H:%M:%S"),
            actor_label: names.get(&r.actor).cloned().unwrap_or_else(|| match (&r.channel, r.actor_kind) {
                (Some(c), audit::ActorKind::Channel) => format!("{c} integration {}", r.actor),
                _ => format!("{} {}", r.actor_kind.as_str(), r.actor),
            }),
            actor: r.actor.clone(),
            role: r.role.clone().unwrap_or_default(),
            action: r.action.clone(),
            customer: r.customer_id.clone().unwrap_or_default(),
            purpose: r.purpose.clone().unwrap_or_default(),
            break_glass: r.break_glass.clone().unwrap_or_default(),
            outcome: r.outcome.as_str().to_owned(),
            reason: r.reason.clone().unwrap_or_default(),
            shown: r.subjects.len(),
        })
        .collect()
}

/// The form of a search (every field optional).
#[derive(Deserialize, Default)]
pub struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    patient: Zeroizing<String>,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    break_glass: Option<String>,
    #[serde(default)]
    oldest_first: Option<String>,
    #[serde(default)]
    cursor: Option<u64>,
    #[serde(default)]
    r#do: Option<String>,
}

fn day(s: &str) -> Result<Option<i64>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let d =
        jiff::civil::Date::strptime("%Y-%m-%d", s.trim()).map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD)"))?;
    let ts = d
        .to_datetime(jiff::civil::Time::midnight())
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_err(|_| "date out of range".to_owned())?
        .timestamp();
    Ok(Some(ts.as_millisecond()))
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// What the page renders, before the frame.
pub(super) struct View {
    pub title: String,
    pub note: Option<String>,
    pub query: AuditQuery,
    pub filter: AuditFilter,
    pub verified: Option<(bool, String)>,
}

/// Reads the records the filter matches and writes the reading's own record
/// (same transaction), then renders the page with the integrity badge.
pub(super) async fn render(
    state: &web::Data<AppState>,
    signed: &Signed,
    view: View,
    ev: super::audit_event::StaffEvent,
) -> HttpResponse {
    let found = match integrity(state, signed).await {
        Ok(i) => i,
        Err(e) => return internal(&e),
    };
    let now = state.clock.now_ms();
    let filter = view.filter.clone();
    let read = in_tenant(state, &signed.tenant, move |tx, _| {
        let records = tx.audit_search(&filter)?;
        ev.write(tx, now)?;
        Ok::<_, StoreError>(records)
    })
    .await;
    let records = match read {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let names = staff_names(state, signed).await;
    let next = (records.len() as u32 == view.filter.limit).then(|| records.last().map(|(r, _)| r.seq)).flatten();
    let zone = continuity::calendar::ClinicZone::utc();
    let badge = console::integrity::badge(
        &console::integrity::Found { records: found.records, broken: found.broken, checkpoint: found.checkpoint },
        now,
        CHECKPOINT_MAX_AGE_MS,
        |t| zone.format(t, "%Y-%m-%d %H:%M UTC"),
    );
    let p = Audit {
        chrome: Some(signed.chrome(state, "/audit")),
        csrf: signed.csrf.clone(),
        level: badge.level.as_str(),
        badge,
        verifier_key: found.verifier_key,
        title: view.title,
        note: view.note,
        query: view.query,
        rows: rows(&records, &names),
        next,
        verified: view.verified,
    };
    page(StatusCode::OK, &pages::render(&p))
}

pub async fn audit_home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let view = View {
        title: "Audit trail".into(),
        note: None,
        query: AuditQuery::default(),
        filter: AuditFilter { limit: PAGE, ..Default::default() },
        verified: None,
    };
    let ev = signed.event(audit::Action::AuditView);
    render(&state, &signed, view, ev).await
}

pub async fn search(req: HttpRequest, state: web::Data<AppState>, form: web::Form<SearchForm>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = form.into_inner();
    let (from, until) = match (day(&form.from), day(&form.until)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            let view = View {
                title: "Audit trail".into(),
                note: Some(e),
                query: AuditQuery::default(),
                filter: AuditFilter { limit: PAGE, ..Default::default() },
                verified: None,
            };
            return render(&state, &signed, view, signed.event(audit::Action::AuditView)).await;
        }
    };
    // A phone or an email is looked up through the blind index (audited as
    // an HMAC); only the patient's pseudonym goes any further.
    let raw = form.patient.trim().to_owned();
    let lookup = if raw.is_empty() || raw.starts_with("cus_") {
        Ok((opt(&raw), None))
    } else {
        let r = raw.clone();
        in_tenant(&state, &signed.tenant, move |tx, settings| {
            let (kind, value) = match Identifier::email(&r) {
                Ok(e) => (IdentifierKind::Email, e.value().to_owned()),
                Err(_) => match Identifier::phone(&r, &settings.region) {
                    Ok(p) => (IdentifierKind::Phone, p.value().to_owned()),
                    Err(_) => return Ok((Some("cus_none".to_owned()), Some(tx.search_hmac("audit", &r)))),
                },
            };
            let found = tx.customers_by_identifier(kind, &value)?;
            let hmac = tx.search_hmac("audit", &value);
            Ok::<_, StoreError>((Some(found.first().map_or("cus_none".to_owned(), ToString::to_string)), Some(hmac)))
        })
        .await
    };
    let (customer, lookup_hmac) = match lookup {
        Ok(v) => v,
        Err(e) => return internal(&e),
    };
    let filter = AuditFilter {
        // `cus_none` (nobody has that phone or email) matches no record.
        customer: customer.clone(),
        actor: opt(&form.actor),
        action_prefix: opt(&form.action),
        outcome: opt(&form.outcome),
        channel: opt(&form.channel),
        from,
        until,
        break_glass_only: form.break_glass.is_some(),
        cursor: form.cursor,
        oldest_first: form.oldest_first.is_some(),
        limit: PAGE,
    };
    let query = AuditQuery {
        // The searched phone or email is never echoed into the page.
        patient: customer.clone().filter(|c| c != "cus_none").unwrap_or_default(),
        actor: form.actor.clone(),
        action: form.action.clone(),
        outcome: form.outcome.clone(),
        channel: form.channel.clone(),
        from: form.from.clone(),
        until: form.until.clone(),
        break_glass: filter.break_glass_only,
        oldest_first: filter.oldest_first,
    };
    let filter_text = format!(
        "patient={} actor={} action={} outcome={} channel={} from={} until={} break_glass={}",
        query.patient,
        query.actor,
        query.action,
        query.outcome,
        query.channel,
        query.from,
        query.until,
        query.break_glass
    );
    if form.r#do.as_deref() == Some("export") {
        return super::audit_export::export(&state, &signed, filter, filter_text, lookup_hmac).await;
    }
    let mut ev = signed.event(audit::Action::AuditSearch);
    ev.subjects = customer.iter().filter(|c| c.as_str() != "cus_none").cloned().collect();
    ev.query_hmac = lookup_hmac;
    let note = (customer.as_deref() == Some("cus_none"))
        .then(|| "No patient has that phone number or email address.".to_owned());
    let view = View { title: "Audit trail".into(), note, query, filter, verified: None };
    render(&state, &signed, view, ev).await
}

pub async fn patient_report(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(customer) = store::ids::CustomerId::parse(&path) else { return super::not_found_page() };
    let mut ev = signed.event(audit::Action::AuditReport);
    ev.reason = Some("patient_access".into());
    ev.subjects = vec![customer.to_string()];
    let view = View {
        title: format!("Who accessed patient {customer}"),
        note: Some("Every record naming this patient, or a page that showed them: channels, staff (with purpose and emergency access) and operators.".into()),
        query: AuditQuery { patient: customer.to_string(), oldest_first: true, ..Default::default() },
        filter: AuditFilter { customer: Some(customer.to_string()), oldest_first: true, limit: 1_000, ..Default::default() },
        verified: None,
    };
    render(&state, &signed, view, ev).await
}

pub async fn staff_report(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(staff) = store::ids::StaffId::parse(&path) else { return super::not_found_page() };
    let mut ev = signed.event(audit::Action::AuditReport);
    ev.reason = Some(format!("staff_activity:{staff}"));
    let view = View {
        title: format!("Everything {staff} did"),
        note: None,
        query: AuditQuery { actor: staff.to_string(), oldest_first: true, ..Default::default() },
        filter: AuditFilter { actor: Some(staff.to_string()), oldest_first: true, limit: 1_000, ..Default::default() },
        verified: None,
    };
    render(&state, &signed, view, ev).await
}

pub async fn logins_report(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut ev = signed.event(audit::Action::AuditReport);
    ev.reason = Some("logins".into());
    let view = View {
        title: "Sign-ins that failed or were refused".into(),
        note: Some("Failures (wrong password or code) and refusals (locked, disabled, too many from one address). Five failures lock an account for 15 minutes.".into()),
        query: AuditQuery { action: audit::Action::StaffLogin.as_str().into(), ..Default::default() },
        filter: AuditFilter {
            action_prefix: Some(audit::Action::StaffLogin.as_str().into()),
            outcome: Some("not_ok".into()),
            limit: 200,
            ..Default::default()
        },
        verified: None,
    };
    render(&state, &signed, view, ev).await
}
