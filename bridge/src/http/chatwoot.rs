//! `POST /chatwoot/{route}`: Chatwoot's webhooks and agent-bot events onto
//! a chat session per Chatwoot conversation; the resume context goes back
//! into the conversation as a private note for the human agent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use serde_json::json;

use super::{Bridge, error, header, malformed, now_ms, route_and_body, unauthorized};
use crate::chatwoot::{self, Conversation, Event};
use crate::config::Platform;
use crate::context::Context;
use crate::core::CoreError;
use crate::load::LiveRoute;

pub async fn handle(bridge: web::Data<Arc<Bridge>>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let started = Instant::now();
    let (r, bytes) = match route_and_body(&bridge, &req, payload, Platform::Chatwoot).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let name = r.cfg.name.as_str();
    let (sig, ts) = (header(&req, "x-chatwoot-signature"), header(&req, "x-chatwoot-timestamp"));
    let verified = match chatwoot::verify(r.secret.expose_secret(), &bytes, sig.as_deref(), ts.as_deref(), now_ms()) {
        Ok(v) => v,
        Err(why) => return unauthorized(name, "chatwoot", why),
    };
    let delivery = header(&req, "x-chatwoot-delivery");
    if let Some(d) = &delivery
        && bridge.memo.delivered(name, d)
    {
        return HttpResponse::Ok().json(json!({"status": "already_delivered"}));
    }
    let event = match chatwoot::parse(verified) {
        Ok(e) => e,
        Err(why) => return malformed(name, "chatwoot", &why),
    };
    let (kind, outcome) = match event {
        Event::ConversationCreated(c) => ("conversation_created", created(&bridge, r, &c).await),
        Event::Message { conversation, id, speaker, text } => {
            ("message_created", message(r, &conversation, id, speaker, &text).await)
        }
        Event::StatusChanged(c) => ("conversation_status_changed", status(r, &c)),
        Event::Other(_) => ("other", Ok(())),
    };
    let resp = match outcome {
        Ok(()) => {
            if let Some(d) = &delivery {
                bridge.memo.remember_delivery(name, d);
            }
            HttpResponse::Ok().json(json!({"status": "ok"}))
        }
        Err(e) => {
            // Not 2xx: Chatwoot retries with the same delivery id.
            tracing::warn!(route = name, code = e.code(), "chatwoot event not recorded");
            error(StatusCode::SERVICE_UNAVAILABLE, "core_unavailable", "retry")
        }
    };
    tracing::info!(
        route = name,
        platform = "chatwoot",
        kind,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "webhook"
    );
    resp
}

/// The conversation's session (the same one for every event of it).
async fn session(r: &LiveRoute, c: &Conversation) -> Result<Option<Context>, CoreError> {
    let judge = chatwoot::Judge {
        route: &r.cfg.name,
        portal_key: r.portal_key.as_ref().map(|k| k.expose_secret()),
        now_ms: now_ms(),
    };
    let Some(ids) = c.identifiers(judge) else { return Ok(None) };
    r.core.open_with(ids, &c.external_ref()).await.map(Some)
}

async fn created(bridge: &Bridge, r: &LiveRoute, c: &Conversation) -> Result<(), CoreError> {
    let Some(ctx) = session(r, c).await? else { return Ok(()) };
    let (Some(api), Some(token)) = (&r.cfg.chatwoot_api, &r.api_key) else { return Ok(()) };
    let url = format!("{}/api/v1/accounts/{}/conversations/{}/messages", api.url, c.account, c.id);
    let token = std::str::from_utf8(token.expose_secret()).unwrap_or_default();
    let note = json!({"content": chatwoot::note(&ctx), "message_type": "outgoing", "private": true});
    let sent = bridge
        .platform
        .post(url)
        .header("api_access_token", token)
        .json(&note)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    if !sent.is_ok_and(|res| res.status().is_success()) {
        // The session stands; the agent goes without the note.
        tracing::warn!(route = r.cfg.name, "private note not posted");
    }
    Ok(())
}

async fn message(r: &LiveRoute, c: &Conversation, id: i64, speaker: &str, text: &str) -> Result<(), CoreError> {
    let Some(ctx) = session(r, c).await? else { return Ok(()) };
    let external_ref = format!("chatwoot:{}:message:{id}", c.account);
    let outcome = if speaker == "patient" {
        r.core.inbound_text(&ctx.session_id, text, &external_ref).await.map(|_| ())
    } else {
        r.core.turn(&ctx.session_id, speaker, text, &external_ref).await
    };
    match outcome {
        // A reply the core may not take yet (staff before confirmation) is
        // the agent's own text; Chatwoot keeps it.
        Err(CoreError::Refused { code, .. }) => {
            tracing::info!(route = r.cfg.name, code = code.as_str(), "turn not recorded");
            Ok(())
        }
        other => other,
    }
}

/// A resolved conversation is acknowledged, not ended: Chatwoot reopens a
/// resolved conversation on the contact's next message, and that message
/// belongs to the same session (its `external_ref` is the conversation);
/// an ended session would refuse it. Confirmation still lapses after 30
/// idle minutes in the core.
fn status(r: &LiveRoute, c: &Conversation) -> Result<(), CoreError> {
    tracing::info!(route = r.cfg.name, status = c.status.as_deref().unwrap_or("?"), "conversation status");
    Ok(())
}
