//! The account and session for a person the clinic's provider vouched for:
//! found by (issuer, subject); else an account of this clinic with the
//! same verified email, linked once; else a new account (no password, no
//! TOTP, no break-glass). The role is the provider's at every sign-in;
//! none mapped, or a disabled account: refused and audited.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Role;
use sha2::{Digest, Sha256};

use super::audit_event::{StaffEvent, record};
use super::{internal, page};
use crate::api::AppState;
use crate::ids::{StaffId, TenantId};

enum Outcome {
    Signed { staff: String, role: Role, cookie: String, changed: Option<String> },
    Refused(&'static str, Option<String>),
}

fn refused(message: &str) -> HttpResponse {
    let m = console::pages::Login { chrome: None, error: Some(message.into()), notice: None, providers: vec![] };
    page(StatusCode::FORBIDDEN, &console::pages::render(&m))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn sign_in(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    tenant: &TenantId,
    issuer: String,
    subject: String,
    email: Option<String>,
    role: Option<Role>,
    logout: Option<String>,
    now: i64,
) -> HttpResponse {
    let peer = req.peer_addr().map(|a| a.ip().to_string());
    let st = state.clone();
    let t = tenant.clone();
    let p2 = peer.clone();
    let outcome = web::block(move || -> Result<Outcome, crate::Error> {
        let mut system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let existing = match system.staff_by_oidc(&issuer, &subject)? {
            Some(id) => system.staff(&id)?,
            None => match &email {
                Some(e) => system.staff_by_email(e)?.filter(|s| s.tenant_id == t),
                None => None,
            },
        };
        if existing.as_ref().is_some_and(|s| s.tenant_id != t) {
            return Ok(Outcome::Refused("other_clinic", existing.map(|s| s.id)));
        }
        let Some(role) = role else { return Ok(Outcome::Refused("unmapped_role", existing.map(|s| s.id))) };
        let (staff, changed) = match existing {
            Some(s) if s.disabled_at.is_some() => return Ok(Outcome::Refused("disabled", Some(s.id))),
            Some(s) => {
                system.bind_oidc(&s.id, &issuer, &subject)?;
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
        system.insert_staff_session(&hash, &staff, &csrf, p2.as_deref(), now)?;
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
    match outcome {
        Outcome::Refused(reason, staff) => {
            let mut ev = match &staff {
                Some(id) => StaffEvent::new(id, "none", "HSYSADMIN", "staff.login"),
                None => {
                    let mut ev = StaffEvent::new("oidc", "none", "HSYSADMIN", "staff.login");
                    ev.kind = audit::ActorKind::System;
                    ev
                }
            };
            ev.outcome = audit::Outcome::Refused;
            ev.reason = Some(format!("oidc:{reason}"));
            ev.peer = peer;
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
                let mut ev = StaffEvent::new(&staff, role.as_str(), "HSYSADMIN", "staff.role");
                ev.reason = Some(format!("idp:{before}"));
                if let Err(e) = record(state, tenant, ev).await {
                    return internal(&e);
                }
            }
            let mut ev = StaffEvent::new(&staff, role.as_str(), "HSYSADMIN", "staff.login");
            ev.reason = Some("oidc".into());
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
