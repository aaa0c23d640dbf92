//! Possession codes: `POST /v1/sessions/{id}/identity/challenge` sends a
//! six-digit one-time code to an identifier already on file (verified) for
//! the session's candidate patient, never to one offered in the session;
//! `identity/confirm {"code"}` then confirms with possession strength. This
//! is how a patient whose date of birth was recorded wrong, or is known to
//! others, still gets in.
//!
//! Only an integration that delivers codes itself (a voice line's bridge,
//! the SMS or email integration: server-side, never shown to the person)
//! gets the text or message to send, and so learns whether anyone is on
//! file. A chat integration may relay the core's answer to a browser, so
//! its answer has one shape whoever the number or address is (L2): `smtp`
//! when the tenant's relay sends email codes, `unavailable` otherwise,
//! never the code, the address or the number on file.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use policy::{Resolution, Strength};
use zeroize::Zeroizing;

use super::context::{self, ResumeContext, facts};
use super::open::{audit, audit_outcome};
use super::{Actor, ContinuityError, TenantSettings};
use crate::channels::Smtp;
use store::ids::{CustomerId, SessionId};
use store::{Challenge, IdentifierKind, TenantStore, TenantTx};

/// How long a code is good for.
pub const CODE_LIFETIME_MS: i64 = 10 * 60_000;
/// Wrong codes accepted per challenge (they also count toward the lockout).
pub const CODE_ATTEMPTS: u32 = 5;
/// Codes a session may ask for.
pub const CODES_PER_SESSION: u32 = 3;

#[derive(Clone, Debug)]
pub struct ChallengeRequest {
    /// `email` or `sms`.
    pub via: String,
}

/// What the integration gets back, and what it must deliver.
pub struct ChallengeSent {
    pub session_id: String,
    pub via: &'static str,
    pub expires_at: i64,
    /// `smtp`: sent through the tenant's relay (or nobody was on file: the
    /// answer is the same). `gateway`: the message is in `raw`, for the
    /// clinic's email gateway. `sms`: the text and number are in `sms`, for
    /// the clinic's SMS integration. Neither may be shown to the person in
    /// the session; `none`: nothing on file to send to. A chat integration
    /// gets only `smtp` or `unavailable`, the same for everyone (L2).
    pub delivery: &'static str,
    pub raw: Option<String>,
    pub sms: Option<SmsOut>,
}

pub struct SmsOut {
    pub to: String,
    pub text: String,
}

impl std::fmt::Debug for ChallengeSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChallengeSent({}, {}, [REDACTED])", self.via, self.delivery)
    }
}

/// A challenge composed in the store, for the API layer to send.
pub struct Outgoing {
    pub answer: ChallengeSent,
    /// (relay, from, to, message) when the tenant has an SMTP relay and a code went out.
    pub smtp: Option<(Smtp, String, Zeroizing<String>, Vec<u8>)>,
}

fn code() -> Result<Zeroizing<String>, ContinuityError> {
    // Uniform over 000000..=999999: reject the top of the u32 range.
    loop {
        let n = u32::from_be_bytes(crypto::random_bytes::<4>().map_err(store::StoreError::from)?);
        if n < 4_294_000_000 {
            return Ok(Zeroizing::new(format!("{:06}", n % 1_000_000)));
        }
    }
}

fn payload(session: &SessionId, code: &str) -> Vec<u8> {
    format!("identity_challenge\0{session}\0{code}").into_bytes()
}

/// `POST /v1/sessions/{id}/identity/challenge`.
pub fn challenge(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &ChallengeRequest,
    now: i64,
) -> Result<Outgoing, ContinuityError> {
    let (via, kind) = match req.via.as_str() {
        "email" => ("email", IdentifierKind::Email),
        "sms" => ("sms", IdentifierKind::Phone),
        _ => return Err(ContinuityError::bad("invalid_via", "via must be email or sms")),
    };
    let tx = store.transaction()?;
    let row = super::actions::open_row(&tx, actor, session, now)?;
    if let Some((_, _, sent)) = tx.challenge(session)?
        && sent >= CODES_PER_SESSION
    {
        return Err(ContinuityError::WrongState {
            code: "challenge_limit",
            message: format!("at most {CODES_PER_SESSION} codes per session"),
        });
    }
    // One candidate, not created here: a family's shared number picks no one.
    let candidate = row.customer_id.clone().filter(|_| row.status != Resolution::Ambiguous && !row.created_customer);
    let to = match &candidate {
        Some(c) => tx.identifier_on_file(c, kind)?,
        None => None,
    };
    let code = code()?;
    let expires_at = now.saturating_add(CODE_LIFETIME_MS);
    let tag = tx.keys().token_tag(&payload(session, &code)).to_vec();
    let customer = to.as_ref().and(candidate.clone());
    tx.put_challenge(&Challenge { session: session.clone(), customer, code_tag: tag, via, expires_at })?;
    let reason = format!("via:{via};{}", if to.is_some() { "sent" } else { "nobody_on_file" });
    audit(&tx, actor, audit::Action::IdentityChallenge, candidate.as_ref(), session, Some(&reason), now)?;
    let answer =
        |delivery| ChallengeSent { session_id: session.to_string(), via, expires_at, delivery, raw: None, sms: None };
    let relays = matches!(actor.channel, policy::Channel::Voice | policy::Channel::Sms | policy::Channel::Email);
    let out = match (to, via) {
        // Chat: one shape for a known and an unknown identifier (L2).
        (to, "email") if !relays && settings.email.smtp.is_some() => {
            let smtp = match (to, &settings.email.smtp) {
                (Some(to), Some(relay)) => {
                    let raw = message(settings, &to, &code, now)?;
                    Some((relay.clone(), settings.email.from_address.clone(), to, raw))
                }
                _ => None,
            };
            Outgoing { answer: answer("smtp"), smtp }
        }
        _ if !relays => Outgoing { answer: answer("unavailable"), smtp: None },
        (None, _) => {
            let delivery = if via == "email" && settings.email.smtp.is_some() { "smtp" } else { "none" };
            Outgoing { answer: answer(delivery), smtp: None }
        }
        (Some(to), "sms") => {
            let text = format!("{} code: {}. It expires in 10 minutes.", settings.email.from_name, code.as_str());
            let mut a = answer("sms");
            a.sms = Some(SmsOut { to: to.to_string(), text });
            Outgoing { answer: a, smtp: None }
        }
        (Some(to), _) => {
            let raw = message(settings, &to, &code, now)?;
            match &settings.email.smtp {
                Some(smtp) => Outgoing {
                    answer: answer("smtp"),
                    smtp: Some((smtp.clone(), settings.email.from_address.clone(), to, raw)),
                },
                None => {
                    let mut a = answer("gateway");
                    a.raw = Some(String::from_utf8_lossy(&raw).into_owned());
                    Outgoing { answer: a, smtp: None }
                }
            }
        }
    };
    tx.commit()?;
    Ok(out)
}

fn message(settings: &TenantSettings, to: &str, code: &str, now: i64) -> Result<Vec<u8>, ContinuityError> {
    let bad = || ContinuityError::bad("invalid_email", "the address on file cannot be written in a message");
    let from: Mailbox = format!("{} <{}>", settings.email.from_name, settings.email.from_address)
        .parse()
        .map_err(|_| ContinuityError::bad("invalid_from", "the tenant's From address is not valid"))?;
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(now).unwrap_or(0));
    let msg = Message::builder()
        .from(from)
        .to(to.parse().map_err(|_| bad())?)
        .subject(format!("Your {} code", settings.email.from_name))
        .message_id(Some(format!("<{}>", crate::channels::email::our_message_id(settings.email.domain()))))
        .date(date)
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "Your code is {code}. It expires in 10 minutes.\n\nIf you did not ask for it, ignore this message: \
             nobody can use it without you.\n"
        ))
        .map_err(|_| bad())?;
    Ok(msg.formatted())
}

/// `identity/confirm {"code"}`: the one-time code of this session's challenge.
pub fn confirm_code(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    code: &str,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ContinuityError::bad("invalid_code", "code must be the six digits sent"));
    }
    let tx = store.transaction()?;
    let row = super::actions::open_row(&tx, actor, session, now)?;
    if facts(&row, now).confirmed {
        let ctx = context::build(&tx, settings, actor, &row, now)?;
        tx.commit()?;
        return Ok(ctx);
    }
    let Some((c, attempts, _)) = tx.challenge(session)? else {
        return Err(ContinuityError::WrongState {
            code: "no_challenge",
            message: "ask for a code first (POST …/identity/challenge)".into(),
        });
    };
    let candidates: Vec<CustomerId> = c.customer.iter().cloned().collect();
    let lockout = settings.policy.confirmation.lockout;
    let subjects = tx.confirm_subjects(session, &candidates)?;
    let window = tx.confirm_failures_since(&subjects, now.saturating_sub(lockout.window_ms))?;
    let refused = |tx: TenantTx<'_>, reason: &str, e: ContinuityError| -> Result<ResumeContext, ContinuityError> {
        audit_outcome(
            &tx,
            actor,
            audit::Action::IdentityConfirm,
            row.customer_id.as_ref(),
            session,
            audit::Outcome::Refused,
            Some(reason),
            now,
        )?;
        tx.commit()?;
        Err(e)
    };
    if window.count >= lockout.max_attempts {
        let e = ContinuityError::forbidden("identity_locked", "too many failed attempts; try again later");
        return refused(tx, "locked_subject", e);
    }
    if c.expires_at <= now || attempts >= CODE_ATTEMPTS {
        tx.drop_challenge(session)?;
        let e = ContinuityError::NotProven {
            code: "code_expired",
            message: "the code has expired; ask for a new one".into(),
        };
        return refused(tx, "code_expired", e);
    }
    let matches = tx.keys().token_tag_is_valid(&payload(session, code), &c.code_tag);
    let Some(customer) = c.customer.clone().filter(|_| matches) else {
        tx.challenge_failed(session)?;
        tx.record_subject_failure(&subjects, now)?;
        let e =
            ContinuityError::NotProven { code: "identity_not_confirmed", message: "the code does not match".into() };
        return refused(tx, "code_mismatch", e);
    };
    let conversation = match (&row.conversation_id, row.customer_id.as_ref() == Some(&customer)) {
        (Some(v), true) => v.clone(),
        _ => match tx.open_conversation(&customer)? {
            Some(v) => v,
            None => tx.create_conversation(&customer, now)?,
        },
    };
    tx.confirm_session(session, &customer, &conversation, now)?;
    tx.set_session_possession(session)?;
    tx.drop_challenge(session)?;
    super::confirm::link_pending(&tx, actor, &row, &customer, now)?;
    audit(
        &tx,
        actor,
        audit::Action::IdentityConfirm,
        Some(&customer),
        session,
        Some(&format!("possession:{}", c.via)),
        now,
    )?;
    let row = tx.session(session)?.ok_or_else(ContinuityError::session_not_found)?;
    debug_assert_eq!(row.strength, Strength::Possession);
    let ctx = context::build(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(ctx)
}
