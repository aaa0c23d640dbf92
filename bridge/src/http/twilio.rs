//! `POST /twilio/{route}/voice`, `/status` and `/sms`: Twilio's form-encoded
//! webhooks, verified against the public URL Twilio called, answered in
//! TwiML.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ring::digest;

use super::{Bridge, error, header, malformed, now_ms, route_and_body, unauthorized};
use crate::config::Platform;
use crate::core::{CoreCode, CoreError};
use crate::load::LiveRoute;
use crate::twilio::{self, param};
use crate::{ended, template};

struct Verified<'a> {
    route: &'a LiveRoute,
    params: Vec<(String, String)>,
}

async fn verified<'a>(
    bridge: &'a Bridge,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Verified<'a>, HttpResponse> {
    let (r, bytes) = route_and_body(bridge, req, payload, Platform::Twilio).await?;
    // The URL exactly as Twilio called it: the public URL, this path, the query.
    let mut url = format!("{}{}", bridge.public_url, req.path());
    if !req.query_string().is_empty() {
        url.push('?');
        url.push_str(req.query_string());
    }
    let params = twilio::form(&bytes);
    let token = secrecy::ExposeSecret::expose_secret(&r.secret);
    twilio::verify(token, &url, &params, &bytes, header(req, "x-twilio-signature").as_deref())
        .map_err(|why| unauthorized(&r.cfg.name, "twilio", why))?;
    Ok(Verified { route: r, params })
}

fn xml(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/xml; charset=utf-8").body(body)
}

fn log(r: &LiveRoute, kind: &str, resp: &HttpResponse, started: Instant) {
    tracing::info!(
        route = r.cfg.name,
        platform = "twilio",
        kind,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "webhook"
    );
}

pub async fn voice(bridge: web::Data<Arc<Bridge>>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let v = match verified(&bridge, &req, payload).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let r = v.route;
    let (Some(from), Some(call_sid)) = (param(&v.params, "From"), param(&v.params, "CallSid")) else {
        return malformed(&r.cfg.name, "twilio", "From and CallSid are required");
    };
    let attestation = twilio::attestation(param(&v.params, "StirVerstat"));
    let resp = match r.core.open(from, Some(call_sid), attestation).await {
        Ok(ctx) => {
            bridge.memo.remember_session(&r.cfg.name, call_sid, &ctx.session_id);
            let mut vars = std::collections::BTreeMap::new();
            vars.insert("session_id".to_owned(), ctx.session_id.clone());
            vars.insert("call_sid".to_owned(), call_sid.to_owned());
            vars.insert("identity_status".to_owned(), ctx.identity.status.clone());
            let source = r.cfg.twiml.as_deref().unwrap_or(twilio::EMPTY_TWIML);
            match template::render(source, &vars, true) {
                Ok(twiml) => xml(StatusCode::OK, twiml),
                Err(_) => xml(StatusCode::OK, twilio::UNAVAILABLE_TWIML.to_owned()),
            }
        }
        Err(e) => {
            tracing::warn!(route = r.cfg.name, code = e.code(), "no session for the call");
            xml(StatusCode::OK, twilio::UNAVAILABLE_TWIML.to_owned())
        }
    };
    log(r, "voice", &resp, started);
    resp
}

pub async fn status(bridge: web::Data<Arc<Bridge>>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let v = match verified(&bridge, &req, payload).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let r = v.route;
    let Some(call_sid) = param(&v.params, "CallSid") else {
        return malformed(&r.cfg.name, "twilio", "CallSid is required");
    };
    let Some(reason) = param(&v.params, "CallStatus").and_then(ended::twilio) else {
        let resp = HttpResponse::NoContent().finish();
        log(r, "status", &resp, started);
        return resp;
    };
    // The patient is the caller on inbound calls, the called party on outbound ones.
    let outbound = param(&v.params, "Direction").is_some_and(|d| d.starts_with("outbound"));
    let number = param(&v.params, if outbound { "To" } else { "From" });
    // A call the bridge placed names its session in the (signed) URL.
    let named = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "throughline_session")
        .map(|(_, v)| v.into_owned())
        .filter(|v| crate::core::safe_segment(v));
    let session = match (named.or_else(|| bridge.memo.session(&r.cfg.name, call_sid)), number) {
        (Some(s), _) => Ok(s),
        (None, Some(n)) => r.core.open(n, Some(call_sid), None).await.map(|c| c.session_id),
        (None, None) => return malformed(&r.cfg.name, "twilio", "From or To is required"),
    };
    let outcome = match session {
        Ok(s) => r.core.end(&s, reason.as_str()).await,
        Err(e) => Err(e),
    };
    let resp = match outcome {
        Ok(link) => {
            bridge.text_recovery(r, number, link).await;
            HttpResponse::NoContent().finish()
        }
        Err(CoreError::Refused { code: CoreCode::SessionEnded, .. }) => HttpResponse::NoContent().finish(),
        Err(e) => {
            tracing::warn!(route = r.cfg.name, code = e.code(), "call end not recorded");
            error(StatusCode::SERVICE_UNAVAILABLE, "core_unavailable", "retry")
        }
    };
    log(r, "status", &resp, started);
    resp
}

/// An incoming text: today's SMS session with this number (opened or
/// continued; the reference is a keyed hash, never the number), and the
/// message as a patient turn, once per `MessageSid`; held by the core for
/// staff review while the patient has not confirmed, never dropped.
pub async fn sms(bridge: web::Data<Arc<Bridge>>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let v = match verified(&bridge, &req, payload).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let r = v.route;
    let Some(core) = &r.sms_core else {
        return error(StatusCode::NOT_FOUND, "sms_not_configured", "this route has no sms_certs");
    };
    let (Some(from), Some(text), Some(sid)) =
        (param(&v.params, "From"), param(&v.params, "Body"), param(&v.params, "MessageSid"))
    else {
        return malformed(&r.cfg.name, "twilio", "From, Body and MessageSid are required");
    };
    let day = now_ms() / 86_400_000;
    let mut keyed = secrecy::ExposeSecret::expose_secret(&r.secret).to_vec();
    keyed.extend_from_slice(from.as_bytes());
    let thread = hex::encode(&digest::digest(&digest::SHA256, &keyed).as_ref()[..16]);
    let external_ref = format!("sms:{thread}:{day}");
    let outcome = match core.open(from, Some(&external_ref), None).await {
        Ok(ctx) => core.inbound_text(&ctx.session_id, text, &format!("twilio:{sid}")).await,
        Err(e) => Err(e),
    };
    let resp = match outcome {
        Ok(held) => {
            if held {
                tracing::info!(route = r.cfg.name, "text held for staff review (identity not confirmed)");
            }
            xml(StatusCode::OK, twilio::EMPTY_TWIML.to_owned())
        }
        Err(CoreError::Refused { code, .. }) => {
            tracing::info!(route = r.cfg.name, code = code.as_str(), "text not recorded");
            xml(StatusCode::OK, twilio::EMPTY_TWIML.to_owned())
        }
        Err(e) => {
            tracing::warn!(route = r.cfg.name, code = e.code(), "text not recorded");
            error(StatusCode::SERVICE_UNAVAILABLE, "core_unavailable", "retry")
        }
    };
    log(r, "sms", &resp, started);
    resp
}
