//! The email review queue, a thread, and a staff member's reply: sent
//! through the core's outbound path (our Message-ID recorded, so the
//! patient's answer threads back), written as an agent turn attributed to
//! that person, audited with their role.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, Queue, QueueRow, Thread};
use policy::PhiClass;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::audit_event::{StaffEvent, in_tenant, record};
use super::patients::{decide, turn_rows};
use super::session::{Signed, admitted, signed_in};
use super::{internal, page, see_other};
use crate::app::AppState;
use store::StoreError;
use store::ids::{CustomerId, SessionId};

pub async fn queue(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match signed_in(&req, &state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !signed.role.allows(Screen::Queue) {
        let m = pages::Message {
            chrome: Some(signed.chrome(&state, "")),
            title: "Not for your role".into(),
            message: "Your role does not open the email queue.".into(),
            back: "/",
        };
        return page(StatusCode::FORBIDDEN, &pages::render(&m));
    }
    let now = state.clock.now_ms();
    let mut ev = signed.event(audit::Action::ConversationQueueList);
    let rows = in_tenant(&state, &signed.tenant, move |tx, settings| {
        let greeting = policy::staff_access([PhiClass::Greeting].into_iter().collect());
        let mut rows = Vec::new();
        for item in tx.email_queue(100)? {
            let customer = item.customer_id.as_deref().and_then(CustomerId::parse);
            let name = match &customer {
                Some(c) => tx.staff_identity(c, &greeting)?.0.to_string(),
                None => "not yet known".into(),
            };
            if let Some(c) = &customer
                && !ev.subjects.contains(&c.to_string())
            {
                ev.subjects.push(c.to_string());
            }
            let why = match item.why.as_str() {
                "waiting" => "waiting for an answer".to_owned(),
                "sender_not_authenticated" => "held: the sender could not be proven".to_owned(),
                "identifier_shared" => "held: the address is shared by several patients".to_owned(),
                other => format!("held: {}", other.replace('_', " ")),
            };
            rows.push(QueueRow {
                since: settings.zone.format(item.since, "%Y-%m-%d %H:%M"),
                customer: item.customer_id.clone().unwrap_or_else(|| "—".into()),
                name,
                session: (item.why == "waiting").then_some(item.session_id),
                held: item.held_id,
                why,
            });
        }
        ev.write(tx, now)?;
        Ok::<_, StoreError>(rows)
    })
    .await;
    match rows {
        Ok(rows) => {
            page(StatusCode::OK, &pages::render(&Queue { chrome: Some(signed.chrome(&state, "/queue")), rows }))
        }
        Err(e) => internal(&e),
    }
}

/// The patient of an email session, read without PHI.
async fn thread_patient(
    state: &web::Data<AppState>,
    signed: &Signed,
    session: &SessionId,
) -> Result<CustomerId, HttpResponse> {
    let s = session.clone();
    match in_tenant(state, &signed.tenant, move |tx, _| tx.email_session(&s)).await {
        Ok(Some((c, _))) => Ok(c),
        Ok(None) => Err(super::not_found_page()),
        Err(e) => Err(internal(&e)),
    }
}

async fn render_thread(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    session_raw: &str,
    sent: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    let signed = match signed_in(req, state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(session) = SessionId::parse(session_raw) else { return super::not_found_page() };
    let customer = match thread_patient(state, &signed, &session).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (sight, grant) = match decide(state, &signed, Screen::Thread, &customer, audit::Action::ConversationView).await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = state.clock.now_ms();
    let mut ev = signed.event(audit::Action::ConversationView);
    ev.customer = Some(customer.to_string());
    ev.session = Some(session.to_string());
    if sight.break_glass {
        ev.purpose = "ETREAT";
        ev.break_glass = grant;
    }
    let s = session.to_string();
    let c = customer.clone();
    let read = in_tenant(state, &signed.tenant, move |tx, settings| {
        let access = policy::staff_access(sight.classes);
        let (name, _) = tx.staff_identity(&c, &access)?;
        let turns = tx.timeline(&c, 1_000, &access, |ch| ch == "email" && sight.email_text)?;
        let turns: Vec<_> = turns.into_iter().filter(|t| t.session_id == s).collect();
        ev.write(tx, now)?;
        Ok::<_, StoreError>((name.to_string(), turn_rows(turns, &settings.zone, false)))
    })
    .await;
    match read {
        Ok((name, turns)) => {
            let p = Thread {
                chrome: Some(signed.chrome(state, "/queue")),
                csrf: signed.csrf.clone(),
                session: session.to_string(),
                customer: customer.to_string(),
                name,
                turns,
                subject: "Re: your message to the clinic".into(),
                sent,
                error,
            };
            page(StatusCode::OK, &pages::render(&p))
        }
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct Sent {
    sent: Option<String>,
}

pub async fn thread(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<Sent>,
) -> HttpResponse {
    let sent = match q.sent.as_deref() {
        Some("smtp") => Some("Your reply was sent and recorded in the conversation.".to_owned()),
        Some("gateway") => Some(
            "Your reply was recorded; this clinic has no SMTP relay configured, so it waits for the email gateway."
                .to_owned(),
        ),
        _ => None,
    };
    render_thread(&req, &state, &path, sent, None).await
}

#[derive(Deserialize)]
pub struct ReplyForm {
    csrf: String,
    subject: String,
    text: Zeroizing<String>,
}

pub async fn reply(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReplyForm>,
) -> HttpResponse {
    let signed = match admitted(&req, &state, None, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(session) = SessionId::parse(&path) else { return super::not_found_page() };
    let customer = match thread_patient(&state, &signed, &session).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (sight, grant) = match decide(&state, &signed, Screen::Reply, &customer, audit::Action::EmailOutbound).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let handle = match super::audit_event::tenant(&state, &signed.tenant).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    let now = state.clock.now_ms();
    let settings = handle.settings.clone();
    if settings.email.smtp.is_none() {
        // Nobody would send it: the API's gateway mode hands the message to
        // the caller, and a browser is not an email gateway.
        let msg = "This clinic has no SMTP relay, so the console cannot send email. An administrator sets one with `throughline tenant email --smtp`.";
        return render_thread(&req, &state, session.as_str(), None, Some(msg.into())).await;
    }
    let (staff_id, role, peer) = (signed.staff.id.clone(), signed.role, signed.peer.clone());
    let purpose = if sight.break_glass { "ETREAT" } else { role.purpose() };
    let form = form.into_inner();
    let s = session.clone();
    let composed = handle
        .store
        .run_async(move |store| {
            let actor = continuity::channels::email::StaffActor {
                staff_id: &staff_id,
                role: role.as_str(),
                purpose,
                break_glass: grant.as_deref(),
                peer: peer.as_deref(),
            };
            continuity::channels::email::staff_reply(store, &settings, &actor, &s, &form.subject, &form.text, now)
        })
        .await;
    let composed = match composed {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let msg = e.to_string();
            return render_thread(&req, &state, session.as_str(), None, Some(msg)).await;
        }
        Err(e) => return internal(&e),
    };
    match &composed.smtp {
        Some(smtp) => {
            let sent = crate::smtp::send(smtp, &composed.from, &composed.to, &composed.raw).await;
            let mut ev: StaffEvent = signed.event(audit::Action::EmailSend);
            ev.customer = Some(customer.to_string());
            ev.session = Some(session.to_string());
            if let Err(e) = &sent {
                ev.outcome = audit::Outcome::Failed;
                ev.reason = Some(e.to_string());
            }
            if let Err(e) = record(&state, &signed.tenant, ev).await {
                return internal(&e);
            }
            if sent.is_err() {
                return render_thread(
                    &req,
                    &state,
                    session.as_str(),
                    None,
                    Some("The reply is recorded but the clinic's mail relay refused it; try again later.".into()),
                )
                .await;
            }
            see_other(&format!("/threads/{session}?sent=smtp"))
        }
        None => internal(&"no relay"),
    }
}
