//! Sign-in through the clinic's identity provider (OpenID Connect, the
//! `openidconnect` crate over our reqwest client, redirects off): the
//! authorization code flow with PKCE (S256), state and nonce; the person is
//! bound by (issuer, subject), never by email alone (an existing account is
//! linked once, by a verified email of the same clinic); the role comes
//! from the configured claim at every sign-in (`console::oidc`: never
//! admin, never break-glass; no mapped role: refused). The state cookie is
//! `SameSite=Lax` (it must survive the provider's redirect back); the
//! callback answers with a same-origin page that continues on, so the
//! `Strict` session cookie is sent on the next request (the pitfall in
//! research §3.3). Signing out also signs out at the provider.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Role;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope,
};
use serde::Deserialize;

use super::audit_event::{StaffEvent, record};
use super::{ConsoleState, internal, page};
use crate::app::AppState;
use store::ids::{StaffId, TenantId};
use store::{IdpRow, NewStaff};

/// The state cookie: this browser started this sign-in.
const STATE_COOKIE: &str = "__Host-tl_oidc";
/// A sign-in must come back within this.
const PENDING_MS: i64 = 10 * 60_000;

/// A sign-in in flight, keyed by its state.
pub struct Pending {
    tenant: TenantId,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Http(String),
    #[error("the identity provider's answer was not acceptable: {0}")]
    Protocol(String),
}

fn http_client() -> Result<reqwest::Client, OidcError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| OidcError::Http(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| OidcError::Http(e.to_string()))
}

/// openidconnect's HTTP requests, made by reqwest.
async fn send(
    client: &reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, OidcError> {
    let (parts, body) = req.into_parts();
    let mut r = client.request(parts.method, parts.uri.to_string()).body(body);
    for (k, v) in &parts.headers {
        r = r.header(k, v);
    }
    let res = r.send().await.map_err(|e| OidcError::Http(e.without_url().to_string()))?;
    let mut b = http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        b = b.header(k, v);
    }
    let bytes = res.bytes().await.map_err(|e| OidcError::Http(e.without_url().to_string()))?;
    b.body(bytes.to_vec()).map_err(|e| OidcError::Http(e.to_string()))
}

async fn discover(idp: &IdpRow, client: &reqwest::Client) -> Result<(CoreProviderMetadata, Option<String>), OidcError> {
    if !console::oidc::acceptable_url(&idp.issuer) {
        return Err(OidcError::Protocol("the issuer must be https (or http on this machine)".into()));
    }
    let issuer = IssuerUrl::new(idp.issuer.clone()).map_err(|e| OidcError::Protocol(e.to_string()))?;
    let http = |r| send(client, r);
    let meta =
        CoreProviderMetadata::discover_async(issuer, &http).await.map_err(|e| OidcError::Protocol(e.to_string()))?;
    // RP-initiated logout's endpoint is not in the core metadata type.
    let url = format!("{}/.well-known/openid-configuration", idp.issuer.trim_end_matches('/'));
    let end = match client.get(url).send().await {
        Ok(r) => {
            r.json::<serde_json::Value>().await.ok().and_then(|v| v["end_session_endpoint"].as_str().map(str::to_owned))
        }
        Err(_) => None,
    };
    Ok((meta, end))
}

async fn idp_of_name(state: &web::Data<AppState>, name: &str) -> Result<Option<IdpRow>, crate::Error> {
    let st = state.clone();
    let name = name.to_owned();
    web::block(move || -> Result<Option<IdpRow>, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let Some(t) = system.tenant_by_name(&name)? else { return Ok(None) };
        Ok(system.idp(&t.id)?)
    })
    .await
    .map_err(|_| crate::Error::Poisoned)?
}

/// Sign-ins started and not yet back from the provider, at most.
const MAX_PENDING: usize = 10_000;

fn refusal(message: &str) -> HttpResponse {
    let m = console::pages::Login { chrome: None, error: Some(message.into()), notice: None, providers: vec![] };
    page(StatusCode::FORBIDDEN, &console::pages::render(&m))
}

/// `GET /oidc/start/{tenant}`: off to the clinic's provider.
pub async fn start(
    state: web::Data<AppState>,
    cstate: web::Data<ConsoleState>,
    path: web::Path<String>,
) -> HttpResponse {
    let idp = match idp_of_name(&state, &path).await {
        Ok(Some(i)) => i,
        Ok(None) => return super::not_found_page(),
        Err(e) => return internal(&e),
    };
    let client = match http_client() {
        Ok(c) => c,
        Err(e) => return internal(&e),
    };
    let (meta, _) = match discover(&idp, &client).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "identity provider discovery failed");
            return refusal(
                "The clinic's sign-in service cannot be reached. Try again, or sign in with a local account.",
            );
        }
    };
    let Ok(redirect) = RedirectUrl::new(idp.redirect_url.clone()) else { return internal(&"redirect url") };
    let oidc =
        CoreClient::from_provider_metadata(meta, ClientId::new(idp.client_id.clone()), None).set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = oidc.authorize_url(
        AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for s in &idp.scopes {
        req = req.add_scope(Scope::new(s.clone()));
    }
    let (url, csrf, nonce) = req.set_pkce_challenge(challenge).url();
    let now = state.clock.now_ms();
    if let Ok(mut p) = cstate.oidc_pending.lock() {
        p.retain(|_, v| now - v.at < PENDING_MS);
        // Bounded (L9): a flood of started sign-ins evicts the oldest.
        while p.len() >= MAX_PENDING {
            let Some(oldest) = p.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| k.clone()) else { break };
            p.remove(&oldest);
        }
        p.insert(csrf.secret().clone(), Pending { tenant: idp.tenant_id.clone(), nonce, verifier, at: now });
    }
    HttpResponse::SeeOther()
        .insert_header(("location", url.to_string()))
        .insert_header((
            "set-cookie",
            format!("{STATE_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600", csrf.secret()),
        ))
        .finish()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(super) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

/// The configured claim's values from a verified ID token (a string or a list).
fn claim_values(id_token: &str, claim: &str) -> Vec<String> {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1).unwrap_or_default();
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else { return vec![] };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return vec![] };
    match &v[claim] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => vec![],
    }
}

/// What the provider proved, after every check.
struct Proven {
    issuer: String,
    subject: String,
    email: Option<String>,
    role: Option<Role>,
    logout: Option<String>,
}

async fn prove(idp: &IdpRow, pending: Pending, code: String, console_origin: &str) -> Result<Proven, OidcError> {
    let client = http_client()?;
    let (meta, end) = discover(idp, &client).await?;
    let redirect = RedirectUrl::new(idp.redirect_url.clone()).map_err(|e| OidcError::Protocol(e.to_string()))?;
    let oidc = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(idp.client_id.clone()),
        Some(ClientSecret::new(idp.client_secret.to_string())),
    )
    .set_redirect_uri(redirect);
    let http = |r| send(&client, r);
    let tokens = oidc
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| OidcError::Protocol(e.to_string()))?
        .set_pkce_verifier(pending.verifier)
        .request_async(&http)
        .await
        .map_err(|e| OidcError::Protocol(e.to_string()))?;
    let id_token =
        openidconnect::TokenResponse::id_token(&tokens).ok_or_else(|| OidcError::Protocol("no ID token".into()))?;
    let claims =
        id_token.claims(&oidc.id_token_verifier(), &pending.nonce).map_err(|e| OidcError::Protocol(e.to_string()))?;
    let raw = id_token.to_string();
    let map: Vec<(String, Role)> =
        idp.role_map.iter().filter_map(|(v, r)| Role::parse(r).map(|r| (v.clone(), r))).collect();
    let role = console::oidc::role_for(&claim_values(&raw, &idp.role_claim), &map);
    let email = claims.email().filter(|_| claims.email_verified() == Some(true)).map(|e| e.as_str().to_lowercase());
    let logout = end.map(|e| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &raw)
            .append_pair("post_logout_redirect_uri", &format!("{console_origin}/login"))
            .append_pair("client_id", &idp.client_id)
            .finish();
        format!("{e}?{q}")
    });
    Ok(Proven { issuer: claims.issuer().to_string(), subject: claims.subject().to_string(), email, role, logout })
}

/// `GET /oidc/callback`: back from the provider.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    cstate: web::Data<ConsoleState>,
    q: web::Query<Callback>,
) -> HttpResponse {
    let q = q.into_inner();
    let now = state.clock.now_ms();
    let (Some(code), Some(st)) = (q.code, q.state) else {
        let why = if q.error.is_some() {
            "The clinic's sign-in service did not sign you in."
        } else {
            "This sign-in link is incomplete."
        };
        return refusal(why);
    };
    // The state must be this browser's (its Lax cookie) and still pending.
    if cookie(&req, STATE_COOKIE).as_deref() != Some(st.as_str()) {
        return refusal("This sign-in was not started in this browser. Start again.");
    }
    let pending = cstate.oidc_pending.lock().ok().and_then(|mut p| p.remove(&st));
    let Some(pending) = pending.filter(|p| now - p.at < PENDING_MS) else {
        return refusal("This sign-in took too long or was already used. Start again.");
    };
    let tenant = pending.tenant.clone();
    let st2 = state.clone();
    let t2 = tenant.clone();
    let idp = web::block(move || -> Result<Option<IdpRow>, crate::Error> {
        Ok(st2.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?.idp(&t2)?)
    })
    .await;
    let Ok(Ok(Some(idp))) = idp else { return internal(&"identity provider configuration") };
    let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    let proven = match prove(&idp, pending, code, &format!("https://{host}")).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "an identity provider sign-in was refused");
            let mut ev = StaffEvent::new("oidc", "none", "HSYSADMIN", audit::Action::StaffLogin);
            ev.kind = audit::ActorKind::System;
            ev.reason = Some("oidc_invalid".into());
            ev.outcome = audit::Outcome::Failed;
            let _ = record(&state, &tenant, ev).await;
            return refusal("The clinic's sign-in service gave an answer that could not be verified.");
        }
    };
    super::oidc_session::sign_in(
        &req,
        &state,
        &cstate,
        &tenant,
        proven.issuer,
        proven.subject,
        proven.email,
        proven.role,
        proven.logout,
        now,
    )
    .await
}

/// A new account for a person the provider vouches for (no password, no TOTP).
pub(super) fn new_account<'a>(id: &'a StaffId, tenant: &'a TenantId, email: &'a str, role: Role) -> NewStaff<'a> {
    NewStaff {
        id: id.as_str(),
        tenant_id: tenant,
        email,
        role: role.as_str(),
        break_glass: false,
        password_hash: "",
        totp_secret: &[],
    }
}
