//! Signing in and out, and the session every other page runs under:
//! password (Argon2id) and TOTP, both required; lockout per account and per
//! source; sessions on the server, keyed by the hash of a random id in a
//! `__Host-` cookie, ended after 15 idle minutes or 12 hours whatever, and
//! at once when the account is disabled or its role changes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::lifetime::{self, Times, Verdict};
use console::pages::{self, Chrome, Login, Nav};
use console::{Role, Screen};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::audit_event::{StaffEvent, record};
use super::{ConsoleState, internal, page, see_other};
use crate::app::AppState;
use store::StaffRow;
use store::ids::TenantId;

/// A signed-in request: who, in which role, and the session's CSRF token.
pub struct Signed {
    pub staff: StaffRow,
    pub role: Role,
    pub tenant: TenantId,
    pub csrf: String,
    pub times: Times,
    pub peer: Option<String>,
    /// A live emergency-access grant: (id, patient, until).
    pub grant: Option<(String, String, i64)>,
    /// The clinic's provider vouched for this session (no password and
    /// TOTP here); `staff.break_glass` is then off unless the clinic allows it.
    pub via_provider: bool,
}

impl Signed {
    pub fn event(&self, action: audit::Action) -> StaffEvent {
        let mut ev = StaffEvent::new(&self.staff.id, self.role.as_str(), self.role.purpose(), action);
        ev.peer = self.peer.clone();
        ev
    }

    /// The frame of every page: who, the logoff time, the banner, the menu.
    pub fn chrome(&self, state: &AppState, current: &str) -> Chrome {
        let now = state.clock.now_ms();
        let ends_at = lifetime::ends_at(self.times);
        let zone = continuity::calendar::ClinicZone::utc();
        Chrome {
            staff: self.staff.email.clone(),
            role: self.role.label(),
            csrf: self.csrf.clone(),
            ends_at,
            ends_at_text: zone.format(ends_at, "%H:%M UTC"),
            now,
            break_glass: self.grant.as_ref().map(|(id, patient, until)| {
                format!("patient {patient}, grant {id}, until {}", zone.format(*until, "%H:%M UTC"))
            }),
            nav: nav(self.role, current),
        }
    }

    /// The form's token must be this session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), HttpResponse> {
        console::csrf::check_token(Some(given), &self.csrf).map_err(|_| {
            page(
                StatusCode::FORBIDDEN,
                &super::forbidden_page("The form was out of date. Go back, reload the page and try again."),
            )
        })
    }
}

/// The signed-in member, allowed `screen`, and for a form carrying this
/// session's token: the prologue of every page handler. Each refusal is the
/// page to answer with.
pub async fn admitted(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    screen: Option<Screen>,
    csrf: Option<&str>,
) -> Result<Signed, HttpResponse> {
    let signed = signed_in(req, state).await?;
    if let Some(token) = csrf {
        signed.check_csrf(token)?;
    }
    if let Some(s) = screen
        && !signed.role.allows(s)
    {
        return Err(super::patients::refused_screen(&signed, state));
    }
    Ok(signed)
}

/// The menu for a role: only what it may open.
pub fn nav(role: Role, current: &str) -> Vec<Nav> {
    [
        ("/search", "Find a patient", Screen::Search),
        ("/queue", "Email review", Screen::Queue),
        ("/audit", "Audit trail", Screen::Audit),
        ("/reviews", "Reviews", Screen::Reviews),
        ("/requests", "Patients' requests", Screen::Requests),
        ("/staff", "Staff", Screen::Staff),
        ("/outcomes", "Outcomes", Screen::Outcomes),
    ]
    .into_iter()
    .filter(|(_, _, s)| role.allows(*s))
    .map(|(href, label, _)| Nav { href, label, current: href == current })
    .collect()
}

fn cookie_id(req: &HttpRequest) -> Option<[u8; 32]> {
    let value = req
        .headers()
        .get_all("cookie")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(console::headers::SESSION_COOKIE)?.strip_prefix('='))?;
    let raw = hex::decode(value).ok().filter(|b| b.len() == 32)?;
    Some(Sha256::digest(&raw).into())
}

fn peer(req: &HttpRequest) -> Option<String> {
    super::source_ip(req).map(|ip| ip.to_string())
}

/// The session of this request, or the response that sends the browser to
/// sign in (the logoff audited when the session just ended).
pub async fn signed_in(req: &HttpRequest, state: &web::Data<AppState>) -> Result<Signed, HttpResponse> {
    let Some(id_hash) = cookie_id(req) else { return Err(see_other("/login")) };
    let now = state.clock.now_ms();
    let st = state.clone();
    let found = web::block(move || -> Result<_, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let Some(session) = system.staff_session(&id_hash)? else { return Ok(Err(None)) };
        let Some(mut staff) = system.staff(&session.staff_id)? else { return Ok(Err(None)) };
        // Emergency access needs a sign-in here, unless the clinic lets its
        // provider's sessions start it (N5).
        if session.via_provider && !system.idp(&staff.tenant_id)?.is_some_and(|i| i.break_glass) {
            staff.break_glass = false;
        }
        let times = Times { created_at: session.created_at, last_seen: session.last_seen };
        let verdict = if staff.disabled_at.is_some() { Verdict::Absolute } else { lifetime::judge(times, now) };
        if verdict != Verdict::Live {
            system.delete_staff_session(&id_hash)?;
            return Ok(Err(Some((staff, verdict))));
        }
        system.touch_staff_session(&id_hash, now)?;
        let grant = system.any_live_break_glass(&staff.id, now)?.map(|g| (g.id, g.customer_id, g.expires_at));
        let times = Times { created_at: session.created_at, last_seen: now };
        Ok(Ok((staff, session.csrf, times, grant, session.via_provider)))
    })
    .await;
    match found {
        Ok(Ok(Ok((staff, csrf, times, grant, via_provider)))) => {
            let role = Role::parse(&staff.role).ok_or_else(|| see_other("/login"))?;
            let tenant = staff.tenant_id.clone();
            Ok(Signed { staff, role, tenant, csrf, times, peer: peer(req), grant, via_provider })
        }
        Ok(Ok(Err(Some((staff, verdict))))) => {
            let mut ev = StaffEvent::new(&staff.id, &staff.role, "HSYSADMIN", audit::Action::StaffLogout);
            ev.reason = Some(if staff.disabled_at.is_some() { "disabled".into() } else { verdict.reason().into() });
            ev.peer = peer(req);
            if let Err(e) = record(state, &staff.tenant_id, ev).await {
                return Err(internal(&e));
            }
            Err(see_other("/login?ended=1"))
        }
        Ok(Ok(Err(None))) => Err(see_other("/login")),
        Ok(Err(e)) => Err(internal(&e)),
        Err(e) => Err(internal(&e)),
    }
}

/// A new session id for the same sign-in (at a privilege change such as
/// emergency access, OWASP): the old id stops working; the new cookie is returned.
pub async fn renew(req: &HttpRequest, state: &web::Data<AppState>, signed: &Signed) -> Result<String, crate::Error> {
    let old = cookie_id(req).ok_or(crate::Error::Poisoned)?;
    let st = state.clone();
    let (staff, peer, created) = (signed.staff.id.clone(), signed.peer.clone(), signed.times.created_at);
    let via_provider = signed.via_provider;
    let now = state.clock.now_ms();
    web::block(move || -> Result<String, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let raw = crypto::random_bytes::<32>().map_err(|e| crate::Error::Staff { message: e.to_string() })?;
        let csrf =
            hex::encode(crypto::random_bytes::<32>().map_err(|e| crate::Error::Staff { message: e.to_string() })?);
        let hash: [u8; 32] = Sha256::digest(raw).into();
        system.delete_staff_session(&old)?;
        system.insert_staff_session(&hash, &staff, &csrf, peer.as_deref(), via_provider, now)?;
        // The absolute limit still counts from the sign-in.
        system.set_staff_session_created(&hash, created)?;
        Ok(console::headers::session_cookie(&hex::encode(raw)))
    })
    .await
    .map_err(|_| crate::Error::Poisoned)?
}

#[derive(Deserialize)]
pub struct Ended {
    ended: Option<String>,
}

/// The clinics that sign in through their provider, for the sign-in page.
async fn providers(state: &web::Data<AppState>) -> Vec<(String, String)> {
    let st = state.clone();
    web::block(move || -> Result<Vec<(String, String)>, crate::Error> {
        Ok(st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?.idp_labels()?)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default()
}

pub async fn login_page(state: web::Data<AppState>, q: web::Query<Ended>) -> HttpResponse {
    let notice = q.ended.as_ref().map(|_| "You were signed out. Sign in again to continue.".to_owned());
    let providers = providers(&state).await;
    page(StatusCode::OK, &pages::render(&Login { chrome: None, error: None, notice, providers }))
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: Zeroizing<String>,
    code: String,
}

/// What a login attempt came to.
enum Attempt {
    Ok { staff: StaffRow, cookie: String, linked: Option<String> },
    Failed { staff: Option<StaffRow>, reason: &'static str, locked_now: bool },
}

/// Source addresses whose sign-in failures are remembered, at most.
const MAX_SOURCES: usize = 50_000;

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    cstate: web::Data<ConsoleState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let now = state.clock.now_ms();
    let ip = super::source_ip(&req);
    let refused_source =
        ip.is_some_and(|ip| cstate.sources.lock().map(|m| m.get(&ip).is_some_and(|s| s.refused(now))).unwrap_or(true));
    let old = cookie_id(&req);
    let form = form.into_inner();
    let st = state.clone();
    let peer_s = peer(&req);
    // A provider identity waiting for this account holder's own sign-in (N5).
    let link = super::oidc::cookie(&req, super::oidc_session::LINK_COOKIE)
        .and_then(|t| cstate.oidc_links.lock().ok()?.remove(&t))
        .filter(|l| now - l.at < super::oidc_session::LINK_MS);
    let attempt = web::block(move || -> Result<Attempt, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        // Accounts are kept lowercased; so is what is typed (L9).
        let staff = system.staff_by_email(&form.email.trim().to_lowercase())?;
        let secrets = match &staff {
            Some(s) => system.staff_secrets(&s.id)?,
            None => None,
        };
        // The hash is checked even for an unknown account, so timing says nothing.
        let phc = secrets.as_ref().map(|s| s.password_hash.as_str()).unwrap_or(console::password::decoy());
        let password_ok = console::password::verify(&form.password, phc);
        let Some(staff) = staff else {
            return Ok(Attempt::Failed { staff: None, reason: "unknown_account", locked_now: false });
        };
        let account = console::lockout::Account { failures: staff.failed_logins, locked_until: staff.locked_until };
        if refused_source {
            return Ok(Attempt::Failed { staff: Some(staff), reason: "source_locked", locked_now: false });
        }
        if staff.disabled_at.is_some() {
            return Ok(Attempt::Failed { staff: Some(staff), reason: "disabled", locked_now: false });
        }
        if account.locked(now) {
            return Ok(Attempt::Failed { staff: Some(staff), reason: "locked", locked_now: false });
        }
        let step =
            secrets.as_ref().and_then(|s| console::totp::check(&s.totp_secret, &form.code, now, s.totp_last_step));
        match (password_ok, step) {
            (true, Some(step)) => {
                system.staff_logged_in(&staff.id, step, now)?;
                let linked = match link.filter(|l| l.staff == staff.id) {
                    Some(l) if system.staff_oidc_binding(&staff.id)?.is_none() => {
                        system.bind_oidc(&staff.id, &l.issuer, &l.subject)?;
                        Some(format!("{} {}", l.issuer, l.subject))
                    }
                    _ => None,
                };
                if let Some(old) = old {
                    system.delete_staff_session(&old)?;
                }
                let raw = crypto::random_bytes::<32>().map_err(|e| crate::Error::Staff { message: e.to_string() })?;
                let csrf = hex::encode(
                    crypto::random_bytes::<32>().map_err(|e| crate::Error::Staff { message: e.to_string() })?,
                );
                let hash: [u8; 32] = Sha256::digest(raw).into();
                system.insert_staff_session(&hash, &staff.id, &csrf, peer_s.as_deref(), false, now)?;
                Ok(Attempt::Ok { staff, cookie: hex::encode(raw), linked })
            }
            (password_ok, _) => {
                let (next, locked_now) = account.fail(now);
                system.staff_failed(&staff.id, next.failures, next.locked_until)?;
                if locked_now {
                    system.add_staff_alert(&staff.tenant_id, "login_lockout", Some(&staff.id), None, now)?;
                }
                let reason = if password_ok { "bad_code" } else { "bad_password" };
                Ok(Attempt::Failed { staff: Some(staff), reason, locked_now })
            }
        }
    })
    .await;
    let attempt = match attempt {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    match attempt {
        Attempt::Ok { staff, cookie, linked } => {
            let mut ev = StaffEvent::new(&staff.id, &staff.role, "HSYSADMIN", audit::Action::StaffLogin);
            ev.reason = Some("password+totp".into());
            ev.peer = peer(&req);
            if let Err(e) = record(&state, &staff.tenant_id, ev).await {
                return internal(&e);
            }
            if let Some(who) = linked {
                let mut ev = StaffEvent::new(&staff.id, &staff.role, "HSYSADMIN", audit::Action::StaffIdpLink);
                ev.reason = Some(format!("oidc {who}"));
                ev.peer = peer(&req);
                if let Err(e) = record(&state, &staff.tenant_id, ev).await {
                    return internal(&e);
                }
            }
            HttpResponse::SeeOther()
                .insert_header(("location", "/"))
                .append_header(("set-cookie", console::headers::session_cookie(&cookie)))
                .append_header((
                    "set-cookie",
                    format!("{}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0", super::oidc_session::LINK_COOKIE),
                ))
                .finish()
        }
        Attempt::Failed { staff, reason, locked_now } => {
            let metrics = crate::metrics::get();
            metrics.sign_in_failures.get_or_create(&crate::metrics::ReasonLabels { reason }).inc();
            if locked_now {
                metrics.lockouts.get_or_create(&crate::metrics::ReasonLabels { reason: "staff_account" }).inc();
            }
            if let Some(ip) = ip
                && let Ok(mut m) = cstate.sources.lock()
            {
                // Bounded (L9): past the cap, sources no longer locked are forgotten.
                if m.len() >= MAX_SOURCES {
                    m.retain(|_, s| s.refused(now) || now - s.window_start < console::lockout::WINDOW_MS);
                }
                if m.len() < MAX_SOURCES || m.contains_key(&ip) {
                    let s = m.entry(ip).or_default();
                    *s = s.fail(now);
                }
            }
            let audited = match &staff {
                Some(s) => {
                    let mut ev = StaffEvent::new(&s.id, &s.role, "HSYSADMIN", audit::Action::StaffLogin);
                    ev.outcome = if matches!(reason, "locked" | "disabled" | "source_locked") {
                        audit::Outcome::Refused
                    } else {
                        audit::Outcome::Failed
                    };
                    ev.reason = Some(if locked_now { format!("{reason}+locked") } else { reason.to_owned() });
                    ev.peer = peer(&req);
                    record(&state, &s.tenant_id, ev).await
                }
                None => {
                    // No tenant to file it under: the installation's chain, no email in it.
                    let st = state.clone();
                    web::block(move || -> Result<(), crate::Error> {
                        let mut system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
                        Ok(system.record_action("console", audit::Action::StaffLogin, "unknown_account", now)?)
                    })
                    .await
                    .map_err(|_| crate::Error::Poisoned)
                    .and_then(|r| r)
                }
            };
            if let Err(e) = audited {
                return internal(&e);
            }
            let error = "The email, password or code is not right, or the account is locked. After five failures an account is locked for 15 minutes.";
            page(
                StatusCode::UNAUTHORIZED,
                &pages::render(&Login {
                    chrome: None,
                    error: Some(error.into()),
                    notice: None,
                    providers: providers(&state).await,
                }),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(req: HttpRequest, state: web::Data<AppState>, form: web::Form<CsrfForm>) -> HttpResponse {
    let signed = match admitted(&req, &state, None, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(id_hash) = cookie_id(&req) else { return see_other("/login") };
    let st = state.clone();
    let deleted = web::block(move || -> Result<Option<String>, crate::Error> {
        let system = st.tenants.system().lock().map_err(|_| crate::Error::Poisoned)?;
        let provider_logout = system.session_logout_url(&id_hash)?;
        system.delete_staff_session(&id_hash)?;
        Ok(provider_logout)
    })
    .await;
    let Ok(Ok(provider_logout)) = deleted else { return internal(&"logout failed") };
    let mut ev = signed.event(audit::Action::StaffLogout);
    ev.purpose = "HSYSADMIN";
    ev.reason = Some("user".into());
    if let Err(e) = record(&state, &signed.tenant, ev).await {
        return internal(&e);
    }
    // A session from the clinic's provider signs out there too (RP-initiated
    // logout), by a page that moves on: CSP's form-action forbids a form's
    // redirect to another origin.
    if let Some(to) = provider_logout {
        let p = pages::Continue {
            chrome: None,
            heading: "Signing you out",
            to,
            link: "Sign out of the clinic's account too",
        };
        return HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("set-cookie", console::headers::expired_cookie()))
            .insert_header(console::headers::CLEAR_SITE_DATA)
            .body(pages::render(&p));
    }
    HttpResponse::SeeOther()
        .insert_header(("location", "/login"))
        .insert_header(("set-cookie", console::headers::expired_cookie()))
        .insert_header(console::headers::CLEAR_SITE_DATA)
        .finish()
}

/// "Stay signed in": a deliberate request, so the idle clock restarts.
pub async fn extend(req: HttpRequest, state: web::Data<AppState>, form: web::Form<CsrfForm>) -> HttpResponse {
    match signed_in(&req, &state).await {
        Ok(s) => match s.check_csrf(&form.csrf) {
            Ok(()) => see_other("/"),
            Err(r) => r,
        },
        Err(r) => r,
    }
}
