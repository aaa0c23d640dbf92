//! Callbacks go out by themselves: for each route with outbound settings,
//! a task claims due callbacks from the core (`POST /v1/callbacks/claim`)
//! and places the call through the platform's API. A call the platform
//! refuses ends the claiming session `dropped`, which puts the callback back
//! in the queue; the call's own end (its report or status callback) settles
//! it or requeues it like any call.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::config::Platform;
use crate::context::Context;
use crate::http::Bridge;
use crate::load::LiveRoute;
use crate::{outbound, template, twilio};

/// Starts one task per route that calls back (on the current runtime).
pub fn spawn(bridge: &Arc<Bridge>, platform: &reqwest::Client) {
    for (name, r) in &bridge.routes {
        let Some(o) = &r.cfg.outbound else { continue };
        let (bridge, platform, name, every) = (bridge.clone(), platform.clone(), name.clone(), o.poll_secs);
        actix_web::rt::spawn(async move {
            loop {
                match due(&bridge, &platform, &name).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(code) => tracing::warn!(route = name, code, "callback round failed"),
                }
                tokio::time::sleep(Duration::from_secs(every)).await;
            }
        });
    }
}

/// Claims one due callback and places its call. True if there may be more.
async fn due(bridge: &Bridge, platform: &reqwest::Client, name: &str) -> Result<bool, &'static str> {
    let Some(r) = bridge.routes.get(name) else { return Ok(false) };
    let Some((phone, ctx)) = r.core.claim_callback().await.map_err(|_| "claim_failed")? else { return Ok(false) };
    match place(bridge, platform, r, &phone, &ctx).await {
        Ok(call_id) => {
            bridge.memo.remember_session(name, &call_id, &ctx.session_id);
            tracing::info!(route = name, platform = r.cfg.platform.as_str(), "callback call placed");
            Ok(true)
        }
        Err(code) => {
            tracing::warn!(route = name, platform = r.cfg.platform.as_str(), code, "callback call refused; requeued");
            let _ = r.core.end(&ctx.session_id, "dropped").await;
            Ok(false)
        }
    }
}

async fn place(
    bridge: &Bridge,
    platform: &reqwest::Client,
    r: &LiveRoute,
    phone: &str,
    ctx: &Context,
) -> Result<String, &'static str> {
    let o = r.cfg.outbound.as_ref().ok_or("no_outbound")?;
    let url = format!("{}{}", o.api_url, outbound::call_path(r.cfg.platform, o));
    let req = match r.cfg.platform {
        Platform::Chatwoot => return Err("chatwoot_places_no_calls"),
        Platform::Vapi => {
            let key = r.api_key.as_ref().ok_or("no_api_key")?;
            let key = std::str::from_utf8(key.expose_secret()).map_err(|_| "api_key_not_utf8")?;
            platform.post(url).bearer_auth(key).json(&outbound::vapi_call(
                &r.cfg,
                o,
                phone,
                ctx,
                r.secret.expose_secret(),
            ))
        }
        Platform::Retell => {
            let key = std::str::from_utf8(r.secret.expose_secret()).map_err(|_| "api_key_not_utf8")?;
            platform.post(url).bearer_auth(key).json(&outbound::retell_call(o, phone, ctx, r.secret.expose_secret()))
        }
        Platform::Twilio => {
            let token = std::str::from_utf8(r.secret.expose_secret()).map_err(|_| "auth_token_not_utf8")?;
            let vars = ctx.variables();
            let twiml = template::render(r.cfg.twiml.as_deref().unwrap_or(twilio::EMPTY_TWIML), &vars, true)
                .map_err(|_| "twiml_template")?;
            // The session rides in the status callback's URL, which Twilio
            // signs: the call's end finds its session even after a restart.
            let status =
                format!("{}/twilio/{}/status?throughline_session={}", bridge.public_url, r.cfg.name, ctx.session_id);
            let form = outbound::twilio_call(o, phone, &twiml, &status);
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
            platform
                .post(url)
                .basic_auth(o.account_sid.as_deref().unwrap_or_default(), Some(token))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        }
    };
    let res = req.timeout(Duration::from_secs(10)).send().await.map_err(|_| "platform_unreachable")?;
    if !res.status().is_success() {
        return Err("platform_refused");
    }
    let answer: Value = res.json().await.map_err(|_| "platform_answer_not_json")?;
    outbound::call_id(r.cfg.platform, &answer).ok_or("platform_answer_without_call_id")
}
