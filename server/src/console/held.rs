//! Reviewing a held message: read it (audited), then release it into the
//! patient's conversation as their turn, or discard it (its sealed bytes
//! are dropped). Email text for the front desk and email reviewers; the
//! words of a held call or chat only for a role that may read transcripts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use console::pages::{self, Held};
use console::roles::sight;
use policy::PhiClass;
use serde::Deserialize;

use super::audit_event::in_tenant;
use super::session::{Signed, admitted};
use super::{internal, page, see_other};
use crate::app::AppState;
use store::{HeldRow, StoreError, TenantTx};

/// Whether the role reads this channel's words (the front desk: email only).
fn may_read(signed: &Signed, channel: &str) -> bool {
    sight(signed.role, Screen::Thread, false, false, false)
        .is_ok_and(|s| if channel == "email" { s.email_text } else { s.spoken_text })
}

/// The held message's words: an email's own text, or the text as held.
fn words(tx: &TenantTx<'_>, held: &HeldRow) -> Result<String, StoreError> {
    let raw = tx.held_content(held)?;
    if held.channel == "email" {
        Ok(continuity::channels::email::parse(raw.to_vec())
            .map(|p| p.text().to_owned())
            .unwrap_or_else(|_| "(the message could not be read)".into()))
    } else {
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }
}

fn why(reason: &str) -> &'static str {
    match reason {
        "sender_not_authenticated" => "no trusted mail server vouched for the sender",
        "identifier_shared" => "the address or number is shared by several patients",
        _ => "it was sent before the patient confirmed who they are",
    }
}

pub async fn held(req: HttpRequest, state: web::Data<AppState>, path: web::Path<i64>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Queue), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let id = path.into_inner();
    let now = state.clock.now_ms();
    let mut ev = signed.event(audit::Action::HeldView);
    let role = signed.role;
    let readable = |channel: &str| may_read(&signed, channel);
    let (email_ok, spoken_ok) = (readable("email"), readable("voice"));
    let read = in_tenant(&state, &signed.tenant, move |tx, settings| {
        let Some(held) = tx.held(id)? else { return Ok(None) };
        // A settled message is not shown again (a discarded one is gone).
        let text = if held.reviewed {
            None
        } else if (held.channel == "email" && email_ok) || (held.channel != "email" && spoken_ok) {
            Some(words(tx, &held)?)
        } else {
            None
        };
        let name = match &held.customer_id {
            Some(c) if role.classes().contains(PhiClass::Greeting) => {
                tx.staff_identity(c, &policy::staff_access(role.classes()))?.0.to_string()
            }
            _ => String::new(),
        };
        ev.customer = held.customer_id.as_ref().map(ToString::to_string);
        ev.session = Some(held.session_id.to_string());
        ev.reason = Some(held.reason.clone());
        ev.write(tx, now)?;
        Ok::<_, StoreError>(Some(Held {
            chrome: None,
            csrf: String::new(),
            id,
            received: settings.zone.format(held.received_at, "%Y-%m-%d %H:%M"),
            channel: held.channel.clone(),
            why: why(&held.reason).into(),
            customer: held.customer_id.as_ref().map(ToString::to_string).unwrap_or_else(|| "not known".into()),
            name,
            releasable: text.is_some() && held.customer_id.is_some() && held.conversation_id.is_some(),
            text,
            settled: held.reviewed,
        }))
    })
    .await;
    match read {
        Ok(Some(mut p)) => {
            p.chrome = Some(signed.chrome(&state, "/queue"));
            p.csrf = signed.csrf.clone();
            page(StatusCode::OK, &pages::render(&p))
        }
        Ok(None) => super::not_found_page(),
        Err(e) => internal(&e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn settle(req: HttpRequest, state: web::Data<AppState>, id: i64, form: CsrfForm, release: bool) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Queue), Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = state.clock.now_ms();
    let mut ev = signed.event(if release { audit::Action::HeldRelease } else { audit::Action::HeldDiscard });
    let (email_ok, spoken_ok) = (may_read(&signed, "email"), may_read(&signed, "voice"));
    let staff = signed.staff.id.clone();
    let done = in_tenant(&state, &signed.tenant, move |tx, _| {
        let Some(held) = tx.held(id)? else { return Ok(None) };
        ev.customer = held.customer_id.as_ref().map(ToString::to_string);
        ev.session = Some(held.session_id.to_string());
        let readable = if held.channel == "email" { email_ok } else { spoken_ok };
        let target = held.customer_id.clone().zip(held.conversation_id.clone());
        if held.reviewed || (release && (!readable || target.is_none())) {
            let reason = if held.reviewed { "already_reviewed" } else { "not_releasable" };
            ev.clone().refused(reason).write(tx, now)?;
            return Ok(Some(false));
        }
        if release && let Some((customer, conversation)) = target {
            let text = words(tx, &held)?;
            let turn =
                tx.append_turn(&customer, &conversation, &held.session_id, &held.channel, "patient", &text, now)?;
            tx.set_turn_author(turn, &format!("released:{staff}"))?;
            tx.touch_conversation(&conversation, now)?;
        }
        tx.settle_held(id, !release, now)?;
        ev.write(tx, now)?;
        Ok::<_, StoreError>(Some(true))
    })
    .await;
    match done {
        Ok(Some(_)) => see_other(&format!("/held/{id}")),
        Ok(None) => super::not_found_page(),
        Err(e) => internal(&e),
    }
}

pub async fn release(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    settle(req, state, path.into_inner(), form.into_inner(), true).await
}

pub async fn discard(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    settle(req, state, path.into_inner(), form.into_inner(), false).await
}
