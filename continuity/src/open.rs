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

use policy::{Attestation, Resolution, Strength};
use serde::Deserialize;

use super::identifiers::{Evidence, Identifier};
use super::resume_token::{self, TokenError};
use super::{Actor, ContinuityError, Offered, ResumeContext, TenantSettings, context, limits, peer_string};
use store::ids::{CustomerId, SessionId};
use store::{AuditEntry, SessionRow, TenantStore, TenantTx};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    pub identifiers: Offered,
    /// The integration's own id for this call, chat or thread: opening twice
    /// with the same one returns the same session.
    pub external_ref: Option<String>,
    /// What the voice integration knows about caller ID (voice only).
    pub evidence: Option<EvidenceRequest>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequest {
    /// The STIR/SHAKEN attestation the carrier gave the call: A, B or C
    /// (Twilio's `StirVerstat`).
    pub caller_id_attestation: Option<String>,
}

struct Offer {
    id: Identifier,
    strength: Strength,
    matches: Vec<CustomerId>,
    /// Patients linked to it only by a claim, which an asserted or proven
    /// identifier does not resolve through (H2): recorded as a clash.
    unverified: Vec<CustomerId>,
}

enum Resolved {
    New,
    One { customer: CustomerId, strength: Strength, shared: bool, conversation: Option<store::ids::ConversationId> },
    Ambiguous { candidates: Vec<CustomerId>, strength: Strength },
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

    let mut offers = Vec::with_capacity(input.offered.len());
    for id in input.offered {
        let strength = id.strength(actor.channel, input.evidence);
        let (mut matches, mut unverified) = (Vec::new(), Vec::new());
        for (customer, verified) in tx.identifier_links(id.kind(), id.value())? {
            if verified || strength == Strength::Claim {
                matches.push(customer);
            } else {
                unverified.push(customer);
            }
        }
        offers.push(Offer { id, strength, matches, unverified });
    }
    let resolved = match (input.resume_token, thread) {
        (Some(token), _) => resolve_token(tx, token, now)?,
        (None, Some(h)) => {
            // An authenticated reply into a thread of ours holds the mailbox
            // our message went to: a link a claim made is now verified.
            for o in offers.iter_mut().filter(|o| o.strength >= Strength::Asserted) {
                if let Some(i) = o.unverified.iter().position(|c| *c == h.customer) {
                    tx.link_identifier(o.id.kind(), o.id.value(), &h.customer, "thread_reply", true, now)?;
                    o.matches.push(o.unverified.remove(i));
                }
            }
            let by = offers.iter().find(|o| o.matches.contains(&h.customer));
            Resolved::One {
                customer: h.customer.clone(),
                strength: by.map(|o| o.strength).unwrap_or(Strength::Claim),
                shared: by.is_some_and(|o| o.matches.len() > 1),
                conversation: tx.conversation_is_open(&h.conversation)?.then(|| h.conversation.clone()),
            }
        }
        (None, None) => {
            // One person, one record: an authenticated sender or an attested
            // caller whose identifier only a claim linked leads to that
            // patient (or those patients), behind confirmation, never to a
            // new empty record. As a claim it can neither read nor own what
            // the link points at (H2); confirming or intake settles it.
            for o in offers.iter_mut() {
                if o.strength == Strength::Asserted && o.matches.is_empty() && !o.unverified.is_empty() {
                    o.matches = std::mem::take(&mut o.unverified);
                    o.strength = Strength::Claim;
                }
            }
            resolve(&offers)
        }
    };

    let session_id = SessionId::generate();
    let mut row = SessionRow::starting(session_id.clone(), actor.channel, now);
    let provenance = format!("session:{session_id}");
    let strongest = offers.iter().map(|o| o.strength).max().unwrap_or(Strength::Claim);
    match &resolved {
        // A claim never creates ownership (H2): no record until intake, and
        // the claimed identifiers wait, sealed, in the session.
        Resolved::New if strongest == Strength::Claim => {}
        Resolved::New => {
            let customer = tx.create_customer(now)?;
            let conversation = tx.create_conversation(&customer, now)?;
            for o in &offers {
                let verified = o.strength >= Strength::Asserted;
                tx.link_identifier(o.id.kind(), o.id.value(), &customer, &provenance, verified, now)?;
            }
            row.strength = strongest;
            row.created_customer = true;
            row.customer_id = Some(customer);
            row.conversation_id = Some(conversation);
        }
        Resolved::One { customer, strength, shared, conversation } => {
            let conversation = match conversation {
                Some(c) => c.clone(),
                None => match tx.open_conversation(customer)? {
                    Some(c) => c,
                    None => tx.create_conversation(customer, now)?,
                },
            };
            row.status = Resolution::Resolved;
            row.strength = *strength;
            row.shared_identifier = *shared;
            row.customer_id = Some(customer.clone());
            row.conversation_id = Some(conversation);
        }
        Resolved::Ambiguous { strength, .. } => {
            row.status = Resolution::Ambiguous;
            row.strength = *strength;
            row.shared_identifier = true;
        }
    }
    tx.insert_session(&row, input.external_ref, &actor.serial)?;
    // What a failed confirmation in this session counts against, besides
    // the patient: every identifier it was opened with (H1).
    for o in &offers {
        tx.add_session_subject(&session_id, o.id.kind(), o.id.value())?;
    }

    match &resolved {
        Resolved::New if row.customer_id.is_none() => {
            for o in &offers {
                tx.add_pending_identifier(&session_id, o.id.kind(), o.id.value())?;
            }
        }
        Resolved::New => {}
        Resolved::One { customer, strength, .. } => {
            let winner_kind =
                offers.iter().filter(|o| o.matches.contains(customer)).max_by_key(|o| o.strength).map(|o| o.id.kind());
            for o in &offers {
                if o.matches.contains(customer) {
                    if *strength == Strength::Claim {
                        // Kept for the record intake may make of its own.
                        tx.add_pending_identifier(&session_id, o.id.kind(), o.id.value())?;
                    }
                    continue;
                }
                if let (Some(w), [other]) = (winner_kind, o.matches.as_slice()) {
                    tx.record_conflict(&session_id, (w, customer), (o.id.kind(), other), now)?;
                    audit(
                        tx,
                        actor,
                        "identity.conflict",
                        Some(customer),
                        &session_id,
                        Some(o.id.kind().as_str()),
                        now,
                    )?;
                }
                // A login proves who is there and binds what came with it; a
                // resume token only opens the door, and what came with it
                // waits for confirmation like any claim (M2).
                if *strength == Strength::Possession && input.resume_token.is_none() && o.matches.is_empty() {
                    let verified = o.strength >= Strength::Asserted;
                    tx.link_identifier(o.id.kind(), o.id.value(), customer, &provenance, verified, now)?;
                } else {
                    tx.add_pending_identifier(&session_id, o.id.kind(), o.id.value())?;
                }
            }
        }
        Resolved::Ambiguous { candidates, strength } => {
            tx.add_candidates(&session_id, candidates)?;
            for o in offers.iter().filter(|o| o.matches != *candidates || *strength == Strength::Claim) {
                tx.add_pending_identifier(&session_id, o.id.kind(), o.id.value())?;
            }
        }
    }
    // An asserted or proven identifier that a claim had linked elsewhere:
    // the clash is for staff to settle, never a merge (H2).
    for o in offers.iter().filter(|o| !o.unverified.is_empty()) {
        if let Some(winner) = &row.customer_id {
            for other in &o.unverified {
                tx.record_conflict(&session_id, (o.id.kind(), winner), (o.id.kind(), other), now)?;
            }
        }
        audit(tx, actor, "identity.clash", row.customer_id.as_ref(), &session_id, Some(o.id.kind().as_str()), now)?;
    }
    if let Some(c) = &row.conversation_id {
        tx.touch_conversation(c, now)?;
    }
    audit(tx, actor, "session.open", row.customer_id.as_ref(), &session_id, Some(row.status.as_str()), now)?;
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

/// The strongest identifier that matches decides, the kind's priority
/// (phone, email, auth, cookie) only among equals: a portal login outranks
/// the phone and email that came with it as claims. A shared identifier is
/// ambiguous unless proof of possession picks one of its patients.
fn resolve(offers: &[Offer]) -> Resolved {
    let mut matching: Vec<&Offer> = offers.iter().filter(|o| !o.matches.is_empty()).collect();
    // Stable: offers arrive in priority order.
    matching.sort_by_key(|o| std::cmp::Reverse(o.strength));
    let Some(primary) = matching.first() else { return Resolved::New };
    let shared_with = |c: &CustomerId| offers.iter().any(|o| o.matches.contains(c) && o.matches.len() > 1);
    if let [only] = primary.matches.as_slice() {
        return Resolved::One {
            customer: only.clone(),
            strength: primary.strength,
            shared: shared_with(only),
            conversation: None,
        };
    }
    // A shared identifier: a proof-of-possession identifier may pick one of its patients.
    let picked =
        offers.iter().filter(|o| o.strength == Strength::Possession).find_map(|o| match o.matches.as_slice() {
            [one] if primary.matches.contains(one) => Some(one.clone()),
            _ => None,
        });
    match picked {
        Some(customer) => Resolved::One { customer, strength: Strength::Possession, shared: true, conversation: None },
        None => Resolved::Ambiguous { candidates: primary.matches.clone(), strength: primary.strength },
    }
}

fn resolve_token(tx: &TenantTx<'_>, token: &str, now: i64) -> Result<Resolved, ContinuityError> {
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
    Ok(Resolved::One { customer, strength: Strength::Possession, shared: false, conversation })
}

pub(crate) fn audit(
    tx: &TenantTx<'_>,
    actor: &Actor,
    action: &str,
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
    action: &str,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use store::IdentifierKind;

    fn offer(kind: IdentifierKind, strength: Strength, matches: &[&CustomerId]) -> Offer {
        let id = match kind {
            IdentifierKind::Phone => Identifier::phone("+14155550100", "US"),
            IdentifierKind::Email => Identifier::email("a@example.com"),
            IdentifierKind::Auth => Identifier::auth("portal|1"),
            IdentifierKind::Cookie => Identifier::cookie("c_0123456789abcdef"),
        };
        Offer {
            id: id.unwrap_or_else(|_| unreachable!()),
            strength,
            matches: matches.iter().map(|c| (*c).clone()).collect(),
            unverified: Vec::new(),
        }
    }

    fn winner(r: &Resolved) -> Option<CustomerId> {
        match r {
            Resolved::One { customer, .. } => Some(customer.clone()),
            _ => None,
        }
    }

    proptest! {
        /// Whatever subset of identifiers matches whichever patients, the
        /// strongest identifier with a single match decides (priority among
        /// equals); a shared one never yields a guess unless proof of
        /// possession picks.
        #[test]
        fn resolution_follows_strength_then_priority(assign in proptest::collection::vec(0usize..4, 4)) {
            let people: Vec<CustomerId> = (0..3).map(|_| CustomerId::generate()).collect();
            // assign[i]: 0 = no match, 1..=2 = one patient, 3 = shared by patients 0 and 1.
            let offers: Vec<Offer> = IdentifierKind::ALL
                .iter()
                .zip(&assign)
                .map(|(kind, a)| {
                    let strength = if *kind == IdentifierKind::Auth { Strength::Possession } else { Strength::Asserted };
                    let m: Vec<&CustomerId> = match a {
                        0 => vec![],
                        1 => vec![&people[1]],
                        2 => vec![&people[2]],
                        _ => vec![&people[0], &people[1]],
                    };
                    offer(*kind, strength, &m)
                })
                .collect();
            let r = resolve(&offers);
            // The auth offer (index 2) is the only possession one: it decides when it matches.
            let decider = if assign[2] != 0 { Some(2) } else { assign.iter().position(|a| *a != 0) };
            match decider {
                None => prop_assert!(matches!(r, Resolved::New)),
                Some(i) if assign[i] == 3 => {
                    // Shared (and auth, if it is the decider, is shared too): nobody is picked.
                    prop_assert!(matches!(r, Resolved::Ambiguous { .. }), "{:?}", assign);
                }
                Some(i) => prop_assert_eq!(winner(&r), Some(people[assign[i]].clone())),
            }
            // Stable: resolving again gives the same answer.
            prop_assert_eq!(winner(&resolve(&offers)), winner(&r));
        }
    }

    /// A login outranks the claims that came with it: a portal user whose
    /// contact also carries a phone typed elsewhere is recognised by the login.
    #[test]
    fn a_login_outranks_claims_of_higher_priority_kinds() {
        let (maria, other) = (CustomerId::generate(), CustomerId::generate());
        let offers = vec![
            offer(IdentifierKind::Phone, Strength::Claim, &[&other]),
            offer(IdentifierKind::Email, Strength::Claim, &[&maria]),
            offer(IdentifierKind::Auth, Strength::Possession, &[&maria]),
        ];
        match resolve(&offers) {
            Resolved::One { customer, strength, .. } => {
                assert_eq!((customer, strength), (maria, Strength::Possession));
            }
            _ => panic!("the login decides"),
        }
    }
}
