//! `POST /retell/{route}`: Retell's call events, its inbound-call webhook
//! and the agent's custom functions, told apart by their bodies.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use serde_json::json;

use super::{Bridge, header, malformed, now_ms, route_and_body, unauthorized};
use crate::config::Platform;
use crate::core::{CoreCode, CoreError};
use crate::load::LiveRoute;
use crate::retell::{self, Call, Event};
use crate::{act, ended, tools};

pub async fn handle(bridge: web::Data<Arc<Bridge>>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let (r, bytes) = match route_and_body(&bridge, &req, payload, Platform::Retell).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let name = r.cfg.name.as_str();
    let key = secrecy::ExposeSecret::expose_secret(&r.secret);
    let verified = match retell::verify(key, &bytes, header(&req, "x-retell-signature").as_deref(), now_ms()) {
        Ok(v) => v,
        Err(why) => return unauthorized(name, "retell", why),
    };
    let event = match retell::parse(verified) {
        Ok(e) => e,
        Err(why) => return malformed(name, "retell", &why),
    };
    let (kind, resp) = match event {
        Event::Inbound { from_number, .. } => {
            let ctx = match r.core.open(&from_number, None, None).await {
                Ok(ctx) => Some(ctx),
                Err(e) => {
                    tracing::warn!(route = name, code = e.code(), "no session for the call");
                    None
                }
            };
            ("call_inbound", HttpResponse::Ok().json(retell::inbound_response(ctx.as_ref(), r.secret.expose_secret())))
        }
        Event::Function { call, name: tool, args } => {
            let outcome = match session(&bridge, r, &call).await {
                Err(e) => Err(e.to_string()),
                Ok(s) => match tools::parse(&tool, &args) {
                    Ok(t) => {
                        let caller = if call.inbound { call.from_number.as_deref() } else { call.to_number.as_deref() };
                        act::perform(&r.core, &s, t, bridge.texts(r, caller)).await
                    }
                    Err(why) => Err(why),
                },
            };
            let line = crate::context::single_line(&outcome.unwrap_or_else(|e| e));
            ("function", HttpResponse::Ok().json(json!({"result": line})))
        }
        Event::Ended { call, disconnection_reason, turns } => {
            ("call_ended", ended_call(&bridge, r, &call, &disconnection_reason, &turns).await)
        }
        Event::Started(_) => ("call_started", HttpResponse::NoContent().finish()),
        Event::Other(_) => ("other", HttpResponse::NoContent().finish()),
    };
    tracing::info!(
        route = name,
        platform = "retell",
        kind,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "webhook"
    );
    resp
}

/// The session the bridge put in the call's metadata at `call_inbound`, or
/// (outbound calls, numbers without the inbound webhook) one opened with
/// the call id.
async fn session(bridge: &Bridge, r: &LiveRoute, call: &Call) -> Result<String, CoreError> {
    let tagged = call.session(r.secret.expose_secret());
    if let Some(s) = tagged.or_else(|| bridge.memo.session(&r.cfg.name, &call.call_id)) {
        return Ok(s);
    }
    let number = if call.inbound { &call.from_number } else { &call.to_number };
    let number = number.as_deref().ok_or(CoreError::Refused {
        status: 400,
        code: CoreCode::NoCallerNumber,
        message: "This call has no caller number, so it has no session.".into(),
    })?;
    let ctx = r.core.open(number, Some(&call.call_id), None).await?;
    bridge.memo.remember_session(&r.cfg.name, &call.call_id, &ctx.session_id);
    Ok(ctx.session_id)
}

async fn ended_call(bridge: &Bridge, r: &LiveRoute, call: &Call, reason: &str, turns: &[retell::Turn]) -> HttpResponse {
    let retry = |e: &CoreError| {
        tracing::warn!(route = r.cfg.name, code = e.code(), "call not recorded");
        // Not 2xx: Retell retries (up to 3 times); nothing is recorded twice.
        super::error(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, "core_unavailable", "retry")
    };
    let done = || HttpResponse::NoContent().finish();
    let session = match session(bridge, r, call).await {
        Ok(s) => s,
        Err(CoreError::Refused { code: CoreCode::SessionEnded | CoreCode::SessionNotFound, .. }) => {
            return done();
        }
        Err(e) => return retry(&e),
    };
    for t in turns {
        let external_ref = format!("retell:{}:{}", call.call_id, t.index);
        match r.core.turn(&session, t.speaker, &t.text, &external_ref).await {
            Ok(()) | Err(CoreError::Refused { .. }) => {}
            Err(e) => return retry(&e),
        }
    }
    match r.core.end(&session, ended::retell(reason).as_str()).await {
        Ok(link) => {
            let number = if call.inbound { call.from_number.as_deref() } else { call.to_number.as_deref() };
            bridge.text_recovery(r, number, link).await;
            done()
        }
        Err(CoreError::Refused { .. }) => done(),
        Err(e) => retry(&e),
    }
}
