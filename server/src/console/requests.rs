//! Patients' requests in the console: the queue with each request's GDPR
//! Art. 12(3) deadline, entering one made by phone or letter, answering an
//! access request, and an erasure that runs only when a second person (not
//! the one who entered it) approves. Every step is audited.
//!
//! An access request is answered to the patient, never to the browser that
//! clicks (N6 of the second review): the copy is emailed, as a JSON
//! attachment, to the address verified on file through the tenant's relay,
//! so the admin and compliance roles, who see no PHI, never hold it. It
//! carries identity, contact and scheduling; conversations, clinical notes
//! and attachments only when a second person approved the request. The
//! `customer.export` record names the sender's role and purpose and what
//! was released, never the address.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, RequestRow, Requests};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::audit_event::{StaffEvent, in_tenant, record};
use super::session::{Signed, admitted};
use super::{internal, page, see_other};
use crate::app::AppState;
use continuity::identifiers::Identifier;
use policy::PhiClass;
use store::ids::{CustomerId, RequestId};
use store::{AuditEntry, IdentifierKind, StoreError};

async fn list(
    state: &web::Data<AppState>,
    signed: &Signed,
    notice: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    let now = state.clock.now_ms();
    let mut ev = signed.event(audit::Action::RightsList);
    let me = signed.staff.id.clone();
    let read = in_tenant(state, &signed.tenant, move |tx, _| {
        let rows = tx.requests(200)?;
        ev.subjects = rows.iter().map(|r| r.customer_id.clone()).collect();
        ev.subjects.sort();
        ev.subjects.dedup();
        ev.write(tx, now)?;
        Ok::<_, StoreError>(rows)
    })
    .await;
    let rows = match read {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let zone = continuity::calendar::ClinicZone::utc();
    let day = |t: i64| zone.format(t, "%Y-%m-%d");
    let rows = rows
        .into_iter()
        .map(|r| RequestRow {
            can_approve: r.status == "open" && r.kind == "erasure" && r.requested_by != me,
            can_approve_clinical: r.status == "open"
                && r.kind == "access"
                && r.requested_by != me
                && r.approved_by.is_none(),
            can_export: r.status == "open" && r.kind == "access",
            overdue: r.status == "open" && now > r.due_at,
            id: r.id,
            customer: r.customer_id,
            kind: r.kind,
            source: r.source,
            received: day(r.received_at),
            due: day(r.due_at),
            status: r.status,
            requested_by: r.requested_by,
            approved_by: r.approved_by.unwrap_or_default(),
            receipt: r.receipt.map(|x| x.chars().take(16).collect()).unwrap_or_default(),
        })
        .collect();
    let p =
        Requests { chrome: Some(signed.chrome(state, "/requests")), csrf: signed.csrf.clone(), rows, notice, error };
    page(StatusCode::OK, &pages::render(&p))
}

pub async fn requests(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Requests), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    list(&state, &signed, None, None).await
}

#[derive(Deserialize)]
pub struct NewRequest {
    csrf: String,
    patient: Zeroizing<String>,
    kind: String,
    #[serde(default)]
    received: String,
    #[serde(default)]
    note: Zeroizing<String>,
}

pub async fn enter(req: HttpRequest, state: web::Data<AppState>, form: web::Form<NewRequest>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Requests), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let form = form.into_inner();
    if !matches!(form.kind.as_str(), "access" | "erasure") {
        return list(&state, &signed, None, Some("Choose access or erasure.".into())).await;
    }
    let now = state.clock.now_ms();
    let received = if form.received.trim().is_empty() {
        now
    } else {
        match jiff::civil::Date::strptime("%Y-%m-%d", form.received.trim())
            .ok()
            .and_then(|d| d.to_datetime(jiff::civil::Time::midnight()).to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp().as_millisecond())
        {
            Some(t) if t <= now => t,
            _ => {
                return list(
                    &state,
                    &signed,
                    None,
                    Some("The date received must be YYYY-MM-DD and not in the future.".into()),
                )
                .await;
            }
        }
    };
    let id = RequestId::generate().to_string();
    let mut ev = signed.event(audit::Action::RightsRequest);
    ev.reason = Some(form.kind.clone());
    let staff = signed.staff.id.clone();
    let done = in_tenant(&state, &signed.tenant, move |tx, settings| {
        let raw = form.patient.trim().to_owned();
        let customer = if raw.starts_with("cus_") {
            CustomerId::parse(&raw).filter(|c| tx.customer_live(c).unwrap_or(false))
        } else {
            let found = match Identifier::email(&raw) {
                Ok(e) => tx.customers_by_identifier(IdentifierKind::Email, e.value())?,
                Err(_) => match Identifier::phone(&raw, &settings.region) {
                    Ok(p) => tx.customers_by_identifier(IdentifierKind::Phone, p.value())?,
                    Err(_) => vec![],
                },
            };
            ev.query_hmac = Some(tx.search_hmac("request", &raw));
            // Several patients on one number: staff must pick by id.
            if found.len() == 1 { found.into_iter().next() } else { None }
        };
        let Some(customer) = customer else { return Ok(false) };
        tx.insert_request(
            &id,
            customer.as_str(),
            &form.kind,
            "staff",
            received,
            store::rights_due(received),
            Some(&form.note),
            &staff,
        )?;
        ev.customer = Some(customer.to_string());
        ev.session = None;
        ev.write(tx, now)?;
        Ok::<_, StoreError>(true)
    })
    .await;
    match done {
        Ok(true) => see_other("/requests"),
        Ok(false) => list(&state, &signed, None, Some("No single patient matches; give their cus_… id.".into())).await,
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// What an access copy may carry without a second person's approval.
fn without_approval() -> policy::PhiClasses {
    [PhiClass::Greeting, PhiClass::Identity, PhiClass::Contact, PhiClass::Scheduling].into_iter().collect()
}

/// A second person approves that the access copy carries everything.
pub async fn approve_clinical(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Requests), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let now = state.clock.now_ms();
    let me = signed.staff.id.clone();
    let mut ev = signed.event(audit::Action::RightsApprove);
    let done = in_tenant(&state, &signed.tenant, move |tx, _| {
        let Some(r) = tx.request(&id)?.filter(|r| r.status == "open" && r.kind == "access") else { return Ok(None) };
        ev.customer = Some(r.customer_id.clone());
        ev.reason = Some("access:full_copy".into());
        if r.requested_by == me {
            ev.refused("same_person").write(tx, now)?;
            return Ok(Some(false));
        }
        let approved = tx.approve_request(&id, &me)?;
        if approved {
            ev.write(tx, now)?;
        }
        Ok::<_, StoreError>(Some(approved))
    })
    .await;
    match done {
        Ok(Some(true)) => {
            list(&state, &signed, Some("Approved: the copy sent to the patient will be complete.".into()), None).await
        }
        Ok(Some(false)) => {
            list(&state, &signed, None, Some("A second person must approve a request you entered.".into())).await
        }
        Ok(None) => list(&state, &signed, None, Some("That request is not an open access request.".into())).await,
        Err(e) => internal(&e),
    }
}

/// Why an access copy was not sent.
enum Unsent {
    NotOpen,
    NoAddress,
    NoRelay,
}

/// Sends the patient's access copy to the address verified on file and
/// closes the request once the relay took it.
pub async fn export(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Requests), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let now = state.clock.now_ms();
    let mut ev = signed.event(audit::Action::CustomerExport);
    let rid = id.clone();
    let built = in_tenant(&state, &signed.tenant, move |tx, settings| {
        let Some(r) = tx.request(&rid)?.filter(|r| r.status == "open" && r.kind == "access") else {
            return Ok(Err(Unsent::NotOpen));
        };
        let Some(customer) = CustomerId::parse(&r.customer_id) else { return Ok(Err(Unsent::NotOpen)) };
        let Some(to) = tx.identifier_on_file(&customer, IdentifierKind::Email)? else {
            return Ok(Err(Unsent::NoAddress));
        };
        let Some(smtp) = settings.email.smtp.clone() else { return Ok(Err(Unsent::NoRelay)) };
        let full = r.approved_by.as_deref().is_some_and(|a| a != r.requested_by);
        let access = if full { policy::operator_access() } else { policy::staff_access(without_approval()) };
        let doc = continuity::patient_export::document(tx, &customer, &access, now)?;
        let Some(raw) = copy_message(settings, &to, &doc, now) else { return Ok(Err(Unsent::NoAddress)) };
        ev.customer = Some(customer.to_string());
        ev.reason = Some(format!("to:patient_email;released:{}", access.allowed()));
        ev.write(tx, now)?;
        Ok::<_, StoreError>(Ok((smtp, settings.email.from_address.clone(), to, raw, r.approved_by, customer)))
    })
    .await;
    let (smtp, from, to, raw, approved_by, customer) = match built {
        Ok(Ok(b)) => b,
        Ok(Err(Unsent::NotOpen)) => {
            return list(&state, &signed, None, Some("That request is not an open access request.".into())).await;
        }
        Ok(Err(Unsent::NoAddress)) => {
            let why = "The patient has no verified email address on file, so the copy cannot go to them from here. \
                       Confirm an address with the patient (a reply to the clinic's email verifies it), then send again.";
            return list(&state, &signed, None, Some(why.into())).await;
        }
        Ok(Err(Unsent::NoRelay)) => {
            let why = "The clinic has no mail relay (`throughline tenant email --smtp`), so the copy cannot be sent.";
            return list(&state, &signed, None, Some(why.into())).await;
        }
        Err(e) => return internal(&e),
    };
    if let Err(e) = crate::smtp::send(&smtp, &from, &to, &raw).await {
        tracing::warn!(failure = %e, "the mail relay did not take an access copy");
        let why = "The mail relay did not take the copy; the request stays open. Try again later.";
        return list(&state, &signed, None, Some(why.into())).await;
    }
    let mut ev = signed.event(audit::Action::RightsComplete);
    ev.customer = Some(customer.to_string());
    ev.reason = Some("access:sent_to_patient".into());
    let done = in_tenant(&state, &signed.tenant, move |tx, _| {
        tx.complete_request(&id, approved_by.as_deref(), None, now)?;
        ev.write(tx, now)
    })
    .await;
    match done {
        Ok(()) => {
            list(&state, &signed, Some("Sent to the patient's verified address; the request is done.".into()), None)
                .await
        }
        Err(e) => internal(&e),
    }
}

/// The message carrying the copy: a short note and the JSON attachment.
fn copy_message(settings: &continuity::TenantSettings, to: &str, doc: &serde_json::Value, now: i64) -> Option<Vec<u8>> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart};
    let from: Mailbox = format!("{} <{}>", settings.email.from_name, settings.email.from_address).parse().ok()?;
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(now).unwrap_or(0));
    let note = format!(
        "As you asked, here is a copy of the records {} holds about you, attached as a JSON file.\n\n\
         If you did not ask for it, tell the clinic.\n",
        settings.email.from_name
    );
    let json = ContentType::parse("application/json").ok()?;
    Message::builder()
        .from(from)
        .to(to.parse().ok()?)
        .subject(format!("Your records at {}", settings.email.from_name))
        .message_id(Some(format!("<{}>", continuity::channels::email::our_message_id(settings.email.domain()))))
        .date(date)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(note))
                .singlepart(Attachment::new("records.json".into()).body(doc.to_string(), json)),
        )
        .ok()
        .map(|m| m.formatted())
}

/// The second person's approval: the erasure runs, the receipt closes the request.
pub async fn approve(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Requests), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let lookup = id.clone();
    let found = in_tenant(&state, &signed.tenant, move |tx, _| tx.request(&lookup)).await;
    let r = match found {
        Ok(Some(r)) if r.status == "open" && r.kind == "erasure" => r,
        Ok(_) => return list(&state, &signed, None, Some("That request is not an open erasure request.".into())).await,
        Err(e) => return internal(&e),
    };
    let mut ev: StaffEvent = signed.event(audit::Action::RightsApprove);
    ev.customer = Some(r.customer_id.clone());
    if r.requested_by == signed.staff.id {
        if let Err(e) = record(&state, &signed.tenant, ev.refused("same_person")).await {
            return internal(&e);
        }
        return list(&state, &signed, None, Some("A second person must approve an erasure you entered.".into())).await;
    }
    let Some(customer) = CustomerId::parse(&r.customer_id) else { return internal(&"request patient id") };
    let now = state.clock.now_ms();
    let st = state.clone();
    let tenant = signed.tenant.clone();
    let (staff, peer) = (signed.staff.id.clone(), signed.peer.clone());
    let rid = id.clone();
    let erased = web::block(move || -> Result<String, crate::Error> {
        let handle = st.tenants.get(&tenant)?;
        let mut store = handle.store.lock().map_err(|_| crate::Error::Poisoned)?;
        let by = crate::erasure::Requester {
            audit: AuditEntry {
                actor_kind: audit::ActorKind::Staff,
                actor: &staff,
                peer: peer.as_deref(),
                reason: Some(&rid),
                ..AuditEntry::operator(&staff, audit::Action::CustomerErase)
            },
            label: format!("staff:{staff}"),
        };
        let receipt = crate::erasure::erase(&mut store, st.tenants.system(), &tenant, &customer, &by, now)?;
        st.tenants.erased(&tenant);
        let tx = store.transaction()?;
        tx.complete_request(&rid, Some(&staff), Some(&store::receipt_id(&receipt)), now)?;
        tx.commit()?;
        Ok(receipt)
    })
    .await;
    match erased {
        Ok(Ok(_)) => {
            if let Err(e) = record(&state, &signed.tenant, ev).await {
                return internal(&e);
            }
            list(&state, &signed, Some("Approved: the patient was erased and the receipt recorded.".into()), None).await
        }
        Ok(Err(e)) => internal(&e),
        Err(e) => internal(&e),
    }
}
