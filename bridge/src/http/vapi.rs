//! `POST /vapi/{route}` (Vapi's server URL) and `GET /vapi/{route}/tools`.
//! Every verified message is answered 200 in Vapi's shape, whatever the
//! core said: Vapi ignores any other status.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::{Bridge, header, malformed, now_ms, route, route_and_body, unauthorized};
use crate::config::Platform;
use crate::core::{CoreCode, CoreError};
use crate::load::LiveRoute;
use crate::vapi::{self, Call, Message};
use crate::{act, ended, tools};

pub async fn tools(bridge: web::Data<Arc<Bridge>>, req: HttpRequest) -> HttpResponse {
    match route(&bridge, &req, Platform::Vapi) {
        Ok(r) => {
            HttpResponse::Ok().json(tools::vapi_definitions(&format!("{}/vapi/{}", bridge.public_url, r.cfg.name)))
        }
        Err(resp) => resp,
    }
}

pub async fn handle(bridge: web::Data<Arc<Bridge>>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let (r, bytes) = match route_and_body(&bridge, &req, payload, Platform::Vapi).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let name = r.cfg.name.as_str();
    let lookup = |h: &str| header(&req, h);
    let verified = match crate::vapi_auth::verify(
        &r.cfg.vapi_auth,
        secrecy::ExposeSecret::expose_secret(&r.secret),
        &lookup,
        &bytes,
        now_ms(),
    ) {
        Ok(v) => v,
        Err(why) => return unauthorized(name, "vapi", why),
    };
    let message = match vapi::parse(verified) {
        Ok(m) => m,
        Err(why) => return malformed(name, "vapi", &why),
    };
    let kind = message.kind().to_owned();
    let (status, answer) = match message {
        Message::AssistantRequest(call) => (StatusCode::OK, assistant_request(&bridge, r, &call).await),
        Message::ToolCalls { call, calls } => (StatusCode::OK, tool_calls(&bridge, r, &call, calls).await),
        Message::EndOfCallReport { call, ended_reason, turns } => {
            report(&bridge, r, &call, &ended_reason, &turns).await
        }
        Message::FunctionCall { call, name, parameters } => {
            let outcome = match (session(&bridge, r, &call).await, tools::parse(&name, &parameters)) {
                (Ok(s), Ok(tool)) => {
                    act::perform(&r.core, &s, tool, bridge.texts(r, call.customer_number.as_deref())).await
                }
                (Err(e), _) => Err(e.to_string()),
                (_, Err(why)) => Err(why),
            };
            let line = crate::context::single_line(&outcome.unwrap_or_else(|e| e));
            (StatusCode::OK, json!({"result": line}))
        }
        Message::StatusUpdate { .. } | Message::Other(_) => (StatusCode::OK, json!({})),
    };
    tracing::info!(
        route = name,
        platform = "vapi",
        kind,
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "webhook"
    );
    HttpResponse::build(status).json(answer)
}

async fn assistant_request(bridge: &Bridge, r: &LiveRoute, call: &Call) -> Value {
    let assistant = r.cfg.assistant_id.as_deref().unwrap_or_default();
    let Some(number) = &call.customer_number else {
        return vapi::assistant_response(assistant, None, None, &[]);
    };
    match r.core.open(number, Some(&call.id), None).await {
        Ok(ctx) => {
            bridge.memo.remember_session(&r.cfg.name, &call.id, &ctx.session_id);
            vapi::assistant_response(assistant, Some(&ctx), r.cfg.first_message.as_deref(), r.secret.expose_secret())
        }
        Err(e) => {
            // The call still goes ahead, with the assistant and no context.
            tracing::warn!(route = r.cfg.name, code = e.code(), "no session for the call");
            vapi::assistant_response(assistant, None, None, &[])
        }
    }
}

/// The call's session: remembered, named in the call's metadata (a call
/// the bridge placed), or found again through the core by the call id (the
/// same session while it is open).
pub(super) async fn session(bridge: &Bridge, r: &LiveRoute, call: &Call) -> Result<String, CoreError> {
    if let Some(s) = bridge.memo.session(&r.cfg.name, &call.id).or_else(|| call.session(r.secret.expose_secret())) {
        return Ok(s);
    }
    let number = call.customer_number.as_deref().ok_or(CoreError::Refused {
        status: 400,
        code: CoreCode::NoCallerNumber,
        message: "This call has no caller number, so it has no session.".into(),
    })?;
    let ctx = r.core.open(number, Some(&call.id), None).await?;
    bridge.memo.remember_session(&r.cfg.name, &call.id, &ctx.session_id);
    Ok(ctx.session_id)
}

async fn tool_calls(bridge: &Bridge, r: &LiveRoute, call: &Call, calls: Vec<vapi::ToolCall>) -> Value {
    let session = session(bridge, r, call).await;
    let mut results = Vec::with_capacity(calls.len());
    for c in calls {
        if let Some(done) = bridge.memo.tool_result(&r.cfg.name, &c.id) {
            results.push(done);
            continue;
        }
        let outcome = match (&session, tools::parse(&c.name, &c.arguments)) {
            (Err(e), _) => Err(match e {
                CoreError::Refused { message, .. } if !message.is_empty() => message.clone(),
                _ => "The clinic's records cannot be reached right now; offer a call back.".into(),
            }),
            (Ok(_), Err(why)) => Err(why),
            (Ok(s), Ok(tool)) => act::perform(&r.core, s, tool, bridge.texts(r, call.customer_number.as_deref())).await,
        };
        let result = vapi::tool_result(&c.id, &c.name, &outcome);
        if session.is_ok() {
            bridge.memo.remember_tool_result(&r.cfg.name, &c.id, &result);
        }
        results.push(result);
    }
    json!({"results": results})
}

/// Records the call's turns (each once: the core keys them by call id, role
/// and time) and ends the session with the mapped reason. A report for a
/// session already ended is the re-delivery of one already recorded.
async fn report(
    bridge: &Bridge,
    r: &LiveRoute,
    call: &Call,
    reason: &str,
    turns: &[vapi::Turn],
) -> (StatusCode, Value) {
    let session = match session(bridge, r, call).await {
        Ok(s) => s,
        Err(CoreError::Refused { code: CoreCode::SessionEnded, .. }) => return (StatusCode::OK, json!({})),
        Err(e) => return unavailable(r, &e),
    };
    let mut skipped = 0u32;
    for t in turns {
        let external_ref = format!("vapi:{}:{}:{}", call.id, t.time, t.role);
        match r.core.turn(&session, t.speaker, &t.text, &external_ref).await {
            Ok(()) => {}
            Err(CoreError::Refused { code: CoreCode::SessionEnded, .. }) => return (StatusCode::OK, json!({})),
            Err(CoreError::Refused { .. }) => skipped += 1,
            Err(e) => return unavailable(r, &e),
        }
    }
    if skipped > 0 {
        tracing::info!(route = r.cfg.name, skipped, "turns the core did not take (identity not confirmed)");
    }
    match r.core.end(&session, ended::vapi(reason).as_str()).await {
        Ok(link) => {
            bridge.text_recovery(r, call.customer_number.as_deref(), link).await;
            (StatusCode::OK, json!({}))
        }
        Err(CoreError::Refused { code: CoreCode::SessionEnded, .. }) => (StatusCode::OK, json!({})),
        Err(e) => unavailable(r, &e),
    }
}

/// The core did not take the report: 503, so Vapi's retry (`backoffPlan`)
/// brings it again; what was recorded is not recorded twice.
fn unavailable(r: &LiveRoute, e: &CoreError) -> (StatusCode, Value) {
    tracing::warn!(route = r.cfg.name, code = e.code(), "report not recorded");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "core_unavailable", "message": "the report could not be recorded; retry"}),
    )
}
