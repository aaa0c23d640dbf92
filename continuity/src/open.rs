//! `POST /v1/sessions`: resolve, find or open the conversation, record the
//! session, hand back the resume context; one transaction, audited.
//!
//! Resolution weighs strength first and the kind's priority (phone, email,
//! auth, cookie) among equals; a resume token stands for the patient it was
//! issued to, as proof of possession. The strongest identifier that matches
//! decides; a shared one is ambiguous unless a proof-of-possession
//! identifier picks one of its patients. Identifiers seen with a resolved one are linked at once
//! only when the resolving identifier is proof of possession; otherwise they
//! wait, sealed, until identity is confirmed. Disagreeing identifiers are
//! recorded as conflicts, never merged.

use policy::{Attestation, Strength};

use super::identifiers::{Evidence, Identifier};
use super::open_plan::{self, Lead, OfferFacts, Patient, Step};
use super::resume_token::{self, TokenError};
use super::{Actor, ContinuityError, Offered, ResumeContext, TenantSettings, context, limits, peer_string};
use store::ids::{CustomerId, SessionId};
use store::{AuditEntry, SessionRow, TenantStore, TenantTx};

#[derive(Clone, Debug)]
pub struct OpenRequest {
    pub identifiers: Offered,
    /// The integration's own id for this call, chat or thread: opening twice
    /// with the same one returns the same session.
    pub external_ref: Option<String>,
    /// What the voice integration knows about caller ID (voice only).
    pub evidence: Option<EvidenceRequest>,
}

#[derive(Clone, Debug)]
pub struct EvidenceRequest {
    /// The STIR/SHAKEN attestation the carrier gave the call: A, B or C
    /// (Twilio's `StirVerstat`).
    pub caller_id_attestation: Option<String>,
}

/// What [`open_in`] resolves: normalised identifiers, an optional resume
/// token and the integration's own reference.
pub(crate) struct OpenInput<'a> {
    pub offered: Vec<Identifier>,
    /// Judged by the tenant's evidence policy.
    pub evidence: Evidence,
    pub resume_token: Option<&'a str>,
    pub external_ref: Option<&'a str>,
}

/// An email reply's thread: the conversation its Message-ID belongs to. The
/// caller passes it only when the sender resolves to the thread's patient.
pub(crate) struct ThreadHint {
    pub customer: CustomerId,
    pub conversation: store::ids::ConversationId,
}

pub fn open_session(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    req: &OpenRequest,
    now: i64,
) -> Result<ResumeContext, ContinuityError> {
    let offered = parse_offered(&req.identifiers, settings, actor)?;
    if let Some(r) = &req.external_ref
        && (r.is_empty() || r.len() > limits::EXTERNAL_REF_BYTES)
    {
        return Err(ContinuityError::bad("invalid_external_ref", "external_ref must be 1 to 256 bytes"));
    }
    let attestation = match req.evidence.as_ref().and_then(|e| e.caller_id_attestation.as_deref()) {
        None => None,
        Some(_) if !matches!(actor.channel, policy::Channel::Voice | policy::Channel::Sms) => {
            return Err(ContinuityError::bad(
                "evidence_not_allowed",
                "caller_id_attestation comes from a voice or SMS integration",
            ));
        }
        Some(a) => Some(
            a.parse::<Attestation>()
                .map_err(|()| ContinuityError::bad("invalid_attestation", "caller_id_attestation must be A, B or C"))?,
        ),
    };
    // A text's sender has its own trust (L5): a trusted PBX is not every SMS route.
    let caller_id = if actor.channel == policy::Channel::Sms {
        settings.policy.evidence.sms_sender_strength(attestation)
    } else {
        settings.policy.evidence.caller_id_strength(attestation)
    };
    let evidence = Evidence { caller_id, email_sender: Strength::Claim };
    let tx = store.transaction()?;
    let input = OpenInput {
        offered,
        evidence,
        resume_token: req.identifiers.resume_token.as_deref(),
        external_ref: req.external_ref.as_deref(),
    };
    let row = open_in(&tx, actor, input, None, now)?;
    let ctx = context::build(&tx, settings, actor, &row, now)?;
    tx.commit()?;
    Ok(ctx)
}

/// Resolves, finds or opens the conversation and records the session inside
/// `tx` (audited), or finds the session already opened with the same
/// external reference; the caller builds the context and commits.
pub(crate) fn open_in(
    tx: &TenantTx<'_>,
    actor: &Actor,
    input: OpenInput<'_>,
    thread: Option<&ThreadHint>,
    now: i64,
) -> Result<SessionRow, ContinuityError> {
    if let Some(r) = input.external_ref
        && let Some(existing) = tx.session_by_external_ref(actor.channel, r)?
    {
        // A retrying voice bridge gets the same session, not a second one;
        // nobody else does (H3).
        return same_integration(existing, actor);
    }

    // The facts: what each identifier is linked to, and where a token or
    // a thread leads. Then the plan decides, and the steps are carried out.
    let mut facts = Vec::with_capacity(input.offered.len());
    for id in &input.offered {
        let strength = id.strength(actor.channel, input.evidence);
        let (mut matches, mut unverified) = (Vec::new(), Vec::new());
        for (customer, verified) in tx.identifier_links(id.kind(), id.value())? {
            if verified || strength == Strength::Claim {
                matches.push(customer);
            } else {
                unverified.push(customer);
            }
        }
        facts.push(OfferFacts { kind: id.kind(), strength, matches, unverified });
    }
    let lead = match (input.resume_token, thread) {
        (Some(token), _) => resolve_token(tx, token, now)?,
        (None, Some(h)) => Lead::Thread {
            customer: h.customer.clone(),
            conversation: tx.conversation_is_open(&h.conversation)?.then(|| h.conversation.clone()),
        },
        (None, None) => Lead::Offers,
    };
    let plan = open_plan::plan(facts, lead);

    let session_id = SessionId::generate();
    let mut row = SessionRow::starting(session_id.clone(), actor.channel, now);
    row.status = plan.status;
    row.strength = plan.strength;
    row.shared_identifier = plan.shared;
    row.created_customer = plan.created_customer;
    let provenance = format!("session:{session_id}");
    let id = |offer: usize| &input.offered[offer];
    // The patient this open created is the row's once `CreatePatient` ran.
    let who = |p: &Patient, row: &SessionRow| match p {
        Patient::Known(c) => Ok(c.clone()),
        Patient::Created => row.customer_id.clone().ok_or_else(|| ContinuityError::WrongState {
            code: "internal",
            message: "the open's plan named a new patient before creating one".into(),
        }),
    };
    for step in &plan.steps {
        match step {
            Step::VerifyLink { offer, customer } => {
                tx.link_identifier(id(*offer).kind(), id(*offer).value(), customer, "thread_reply", true, now)?;
            }
            Step::CreatePatient => {
                let customer = tx.create_customer(now)?;
                row.conversation_id = Some(tx.create_conversation(&customer, now)?);
                row.customer_id = Some(customer);
            }
            Step::Link { offer, patient, verified } => {
                let customer = who(patient, &row)?;
                tx.link_identifier(id(*offer).kind(), id(*offer).value(), &customer, &provenance, *verified, now)?;
            }
            Step::JoinConversation { customer, known } => {
                let conversation = match known {
                    Some(c) => c.clone(),
                    None => match tx.open_conversation(customer)? {
                        Some(c) => c,
                        None => tx.create_conversation(customer, now)?,
                    },
                };
                row.customer_id = Some(customer.clone());
                row.conversation_id = Some(conversation);
            }
            Step::InsertSession => tx.insert_session(&row, input.external_ref, &actor.serial)?,
            Step::Subject { offer } => tx.add_session_subject(&session_id, id(*offer).kind(), id(*offer).value())?,
            Step::Pending { offer } => tx.add_pending_identifier(&session_id, id(*offer).kind(), id(*offer).value())?,
            Step::Conflict { winner: (wk, wp), other: (ok, oc) } => {
                tx.record_conflict(&session_id, (*wk, &who(wp, &row)?), (*ok, oc), now)?;
            }
            Step::Candidates(candidates) => tx.add_candidates(&session_id, candidates)?,
            Step::Audit { action, kind } => {
                let reason = match kind {
                    Some(k) => Some(k.as_str()),
                    None => Some(row.status.as_str()),
                };
                audit(tx, actor, *action, row.customer_id.as_ref(), &session_id, reason, now)?;
            }
            Step::Touch => {
                if let Some(c) = &row.conversation_id {
                    tx.touch_conversation(c, now)?;
                }
            }
        }
    }
    Ok(row)
}

/// An external reference hit is the same session only for the certificate
/// that opened it, and only while it is open: another integration (or
/// anyone replaying a call id) gets a conflict, never that session (H3, M3).
pub(crate) fn same_integration(
    (existing, serial): (SessionRow, String),
    actor: &Actor,
) -> Result<SessionRow, ContinuityError> {
    if serial != actor.serial {
        return Err(ContinuityError::WrongState {
            code: "external_ref_conflict",
            message: "this external_ref belongs to a session of another integration".into(),
        });
    }
    if existing.ended_at.is_some() {
        return Err(ContinuityError::WrongState {
            code: "session_ended",
            message: "the session opened with this external_ref has ended".into(),
        });
    }
    Ok(existing)
}

fn parse_offered(o: &Offered, settings: &TenantSettings, actor: &Actor) -> Result<Vec<Identifier>, ContinuityError> {
    let bad = |e: super::identifiers::IdentifierError| ContinuityError::bad(e.code(), e.to_string());
    let mut out = Vec::new();
    if let Some(p) = &o.phone {
        out.push(Identifier::phone(p, &settings.region).map_err(bad)?);
    }
    if let Some(e) = &o.email {
        out.push(Identifier::email(e).map_err(bad)?);
    }
    if let Some(a) = &o.auth {
        out.push(Identifier::auth(a).map_err(bad)?);
    }
    if let Some(c) = &o.cookie {
        out.push(Identifier::cookie(c).map_err(bad)?);
    }
    if out.is_empty() && o.resume_token.is_none() {
        return Err(ContinuityError::bad(
            "no_identifiers",
            format!("offer at least one of phone, email, auth, cookie, resume_token ({} channel)", actor.channel),
        ));
    }
    Ok(out)
}

fn resolve_token(tx: &TenantTx<'_>, token: &str, now: i64) -> Result<Lead, ContinuityError> {
    let claims = resume_token::verify(tx.keys(), token, now).map_err(|e| match e {
        TokenError::Invalid => ContinuityError::NotProven {
            code: "invalid_resume_token",
            message: "the resume token is not valid for this tenant".into(),
        },
        TokenError::Expired => {
            ContinuityError::NotProven { code: "resume_token_expired", message: "the resume token has expired".into() }
        }
    })?;
    let revoked = || ContinuityError::NotProven {
        code: "invalid_resume_token",
        message: "the resume token was used, revoked, or its patient is gone".into(),
    };
    let (customer, conversation) = tx.resume_token_target(&claims.i, now)?.ok_or_else(revoked)?;
    // Single use (M2): a leaked link is worth one session, not seven days.
    if !tx.spend_resume_token(&claims.i, now)? {
        return Err(revoked());
    }
    Ok(Lead::Token { customer, conversation })
}

pub(crate) fn audit(
    tx: &TenantTx<'_>,
    actor: &Actor,
    action: audit::Action,
    customer: Option<&CustomerId>,
    session: &SessionId,
    reason: Option<&str>,
    now: i64,
) -> Result<(), ContinuityError> {
    audit_outcome(tx, actor, action, customer, session, audit::Outcome::Ok, reason, now)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn audit_outcome(
    tx: &TenantTx<'_>,
    actor: &Actor,
    action: audit::Action,
    customer: Option<&CustomerId>,
    session: &SessionId,
    outcome: audit::Outcome,
    reason: Option<&str>,
    now: i64,
) -> Result<(), ContinuityError> {
    let peer = peer_string(actor);
    tx.audit(
        &AuditEntry {
            actor_kind: audit::ActorKind::Channel,
            actor: &actor.serial,
            channel: Some(actor.channel.as_str()),
            action,
            tenant_id: Some(tx.keys().tenant_id()),
            customer_id: customer.map(CustomerId::as_str),
            session_id: Some(session.as_str()),
            peer: peer.as_deref(),
            outcome,
            reason,
        },
        now,
    )?;
    Ok(())
}
