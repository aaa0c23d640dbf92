//! The account and session for a person the clinic's provider vouched for:
//! found by (issuer, subject); else a new account (no password, no TOTP,
//! no break-glass) when nobody of this clinic has the verified email. An
//! account found by that email instead is never signed in on the
//! provider's word (N5 of the second review): bound to another (issuer,
//! subject), it is refused and an alert raised; unbound, it is linked only
//! after its holder signs in once with its own password and TOTP (the link
//! waits ten minutes in memory, named by a cookie). The role is the
//! provider's at every sign-in; none mapped, or a disabled account:
//! refused and audited. A session the provider vouched for starts no
//! emergency access unless the clinic allowed it (`staff idp
//! --allow-break-glass`). The login record names issuer and subject.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Role;
use sha2::{Digest, Sha256};

use super::audit_event::{StaffEvent, record};
use super::{internal, page};
use crate::app::AppState;
use store::ids::{StaffId, TenantId};

enum Outcome {
    Signed {
        staff: String,
        role: Role,
        cookie: String,
        changed: Option<String>,
    },
    Refused(&'static str, Option<String>),
    /// An existing account with this email: its holder must sign in here first.
    LinkNeeded {
        staff: String,
    },
}

/// A provider identity waiting to be linked to an existing account.
pub struct PendingLink {
    pub staff: String,
    pub issuer: String,
    pub subject: String,
    pub at: i64,
}

/// The browser's pointer to its pending link.
pub const LINK_COOKIE: &str = "__Host-tl_link";
/// How long a pending link waits for the account holder.
pub const LINK_MS: i64 = 10 * 60_000;
/// Pending links at most (the oldest go first).
const MAX_LINKS: usize = 10_000;

fn refused(message: &str) -> HttpResponse {
    let m = console::pages::Login { chrome: None, error: Some(message.into()), notice: None, providers: vec![] };
    page(StatusCode::FORBIDDEN, &console::pages::render(&m))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn sign_in(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    cstate: &web::Data<super::ConsoleState>,
    tenant: &TenantId,
    issuer: String,
    subject: String,
    email: Option<String>,
    role: Option<Role>,
    logout: Option<String>,
    now: i64,
) -> HttpResponse {
    let peer = super::source_ip(req).map(|ip| ip.to_string());
    let st = state.clone();
    let t = tenant.clone();
    let p2 = peer.clone();
    let (iss, sub) = (issuer.clone(), subject.clone());
    let outcome = web::block(move || -> Result<Outcome, crate::Error> {
        let mut system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let (existing, by_email) = match system.staff_by_oidc(&issuer, &subject)? {
            Some(id) => (system.staff(&id)?, false),
            None => match &email {
                Some(e) => (system.staff_by_email(&e.to_lowercase())?.filter(|s| s.tenant_id == t), true),
                None => (None, false),
            },
        };
        if existing.as_ref().is_some_and(|s| s.tenant_id != t) {
            return Ok(Outcome::Refused("other_clinic", existing.map(|s| s.id)));
        }
        let Some(role) = role else { return Ok(Outcome::Refused("unmapped_role", existing.map(|s| s.id))) };
        let (staff, changed) = match existing {
            Some(s) if s.disabled_at.is_some() => return Ok(Outcome::Refused("disabled", Some(s.id))),
            // Found by email, never by the binding: the provider's word alone
            // takes over no account (N5).
            Some(s) if by_email => {
                if system.staff_oidc_binding(&s.id)?.is_some() {
                    system.add_staff_alert(&t, "oidc_conflict", Some(&s.id), None, now)?;
                    return Ok(Outcome::Refused("bound_elsewhere", Some(s.id)));
                }
                return Ok(Outcome::LinkNeeded { staff: s.id });
            }
            Some(s) => {
                let changed = (s.role != role.as_str()).then(|| s.role.clone());
                if changed.is_some() {
                    system.set_staff_role_only(&s.id, role.as_str())?;
                }
                (s.id, changed)
            }
            None => {
                let Some(e) = &email else { return Ok(Outcome::Refused("no_verified_email", None)) };
                if system.staff_email_taken(e)? {
                    return Ok(Outcome::Refused("email_taken", None));
                }
                let id = StaffId::generate();
                system.insert_staff(&super::oidc::new_account(&id, &t, e, role), now)?;
                system.bind_oidc(id.as_str(), &issuer, &subject)?;
                (id.to_string(), Some("new".into()))
            }
        };
        let raw = crypto::random_bytes::<32>().map_err(|e| crate::Error::Staff { message: e.to_string() })?;
        let csrf =
            hex::encode(crypto::random_bytes::<32>().map_err(|e| crate::Error::Staff { message: e.to_string() })?);
        let hash: [u8; 32] = Sha256::digest(raw).into();
        system.insert_staff_session(&hash, &staff, &csrf, p2.as_deref(), true, now)?;
        if let Some(url) = &logout {
            system.set_session_logout_url(&hash, url)?;
        }
        Ok(Outcome::Signed { staff, role, cookie: hex::encode(raw), changed })
    })
    .await;
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    let who = format!("{iss} {sub}");
    match outcome {
        Outcome::LinkNeeded { staff } => {
            let token = match crypto::random_bytes::<32>() {
                Ok(b) => hex::encode(b),
                Err(e) => return internal(&e),
            };
            if let Ok(mut links) = cstate.oidc_links.lock() {
                links.retain(|_, l| now - l.at < LINK_MS);
                while links.len() >= MAX_LINKS {
                    let Some(oldest) = links.iter().min_by_key(|(_, l)| l.at).map(|(k, _)| k.clone()) else { break };
                    links.remove(&oldest);
                }
                links.insert(token.clone(), PendingLink { staff: staff.clone(), issuer: iss, subject: sub, at: now });
            }
            let mut ev = StaffEvent::new(&staff, "none", "HSYSADMIN", audit::Action::StaffLogin);
            ev.outcome = audit::Outcome::Refused;
            ev.reason = Some(format!("oidc:link_needs_step_up {who}"));
            ev.peer = peer;
            if let Err(e) = record(state, tenant, ev).await {
                return internal(&e);
            }
            let m = console::pages::Login {
                chrome: None,
                error: None,
                notice: Some(
                    "A Throughline account with your email already exists. Sign in once below with its password \
                     and authenticator code to link your clinic sign-in to it."
                        .into(),
                ),
                providers: vec![],
            };
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header(("cache-control", "no-store"))
                .append_header((
                    "set-cookie",
                    format!("{LINK_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=600"),
                ))
                .append_header(("set-cookie", "__Host-tl_oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"))
                .body(console::pages::render(&m))
        }
        Outcome::Refused(reason, staff) => {
            let mut ev = match &staff {
                Some(id) => StaffEvent::new(id, "none", "HSYSADMIN", audit::Action::StaffLogin),
                None => {
                    let mut ev = StaffEvent::new("oidc", "none", "HSYSADMIN", audit::Action::StaffLogin);
                    ev.kind = audit::ActorKind::System;
                    ev
                }
            };
            ev.outcome = audit::Outcome::Refused;
            ev.reason = Some(format!("oidc:{reason} {who}"));
            ev.peer = peer;
            if reason == "bound_elsewhere" {
                crate::metrics::get()
                    .lockouts
                    .get_or_create(&crate::metrics::ReasonLabels { reason: "oidc_conflict" })
                    .inc();
            }
            if let Err(e) = record(state, tenant, ev).await {
                return internal(&e);
            }
            refused(match reason {
                "unmapped_role" => "Your clinic account has no Throughline role. Ask the clinic's administrator.",
                "disabled" => "This account is disabled.",
                _ => "This account cannot sign in here. Ask the clinic's administrator.",
            })
        }
        Outcome::Signed { staff, role, cookie, changed } => {
            if let Some(before) = changed {
                let mut ev = StaffEvent::new(&staff, role.as_str(), "HSYSADMIN", audit::Action::StaffRole);
                ev.reason = Some(format!("idp:{before}"));
                if let Err(e) = record(state, tenant, ev).await {
                    return internal(&e);
                }
            }
            let mut ev = StaffEvent::new(&staff, role.as_str(), "HSYSADMIN", audit::Action::StaffLogin);
            ev.reason = Some(format!("oidc {who}"));
            ev.peer = peer;
            if let Err(e) = record(state, tenant, ev).await {
                return internal(&e);
            }
            // A same-origin page that moves on: a 302 here would carry the
            // provider's cross-site redirect chain, and the browser would
            // not send the Strict session cookie on it.
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .append_header(("set-cookie", console::headers::session_cookie(&cookie)))
                .append_header(("set-cookie", "__Host-tl_oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"))
                .body(console::pages::render(&console::pages::Continue {
                    chrome: None,
                    heading: "Signed in",
                    to: "/".into(),
                    link: "Continue to the console",
                }))
        }
    }
}
