//! The decision of a session open, without SQL: from the facts read for it
//! (each offered identifier's strength and the patients it is linked to,
//! verified or only by a claim, and what a resume token or an email thread
//! leads to), the resolution and every write, in order. `open::open_in`
//! reads the facts, asks [`plan`], and carries the steps out in its
//! transaction; the rules live here and are table-tested below.
//!
//! Resolution weighs strength first and the kind's priority (phone, email,
//! auth, cookie) among equals. A shared identifier is ambiguous unless a
//! proof-of-possession identifier picks one of its patients. A claim never
//! creates a record (H2). Identifiers seen with a resolved one are linked
//! at once only when the resolving identifier is proof of possession (and
//! not a resume token, M2); otherwise they wait, sealed, until identity is
//! confirmed. Disagreeing identifiers are recorded as conflicts, never merged.

use policy::{Resolution, Strength};
use store::IdentifierKind;
use store::ids::{ConversationId, CustomerId};

/// What the store knows of one offered identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OfferFacts {
    pub kind: IdentifierKind,
    /// How far this channel's evidence lets it be trusted.
    pub strength: Strength,
    /// Patients it resolves to.
    pub matches: Vec<CustomerId>,
    /// Patients linked to it only by a claim, which an asserted or proven
    /// identifier does not resolve through (H2): recorded as a clash.
    pub unverified: Vec<CustomerId>,
}

/// What leads to the patient besides the identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lead {
    /// The identifiers alone.
    Offers,
    /// A valid, unspent resume token (proof of possession) for this patient,
    /// and the conversation it was issued in if still open.
    Token { customer: CustomerId, conversation: Option<ConversationId> },
    /// An email reply into a thread of ours, to this patient; the thread's
    /// conversation if still open.
    Thread { customer: CustomerId, conversation: Option<ConversationId> },
}

/// The patient a step is about: the one this open creates, or a known one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Patient {
    Created,
    Known(CustomerId),
}

/// One write, in the order the executor makes them. `offer` indexes the
/// offered identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A reply into our thread holds the mailbox our message went to: the
    /// link a claim made is now verified (provenance `thread_reply`).
    VerifyLink { offer: usize, customer: CustomerId },
    /// A new patient and their first conversation.
    CreatePatient,
    /// Link the identifier to the patient (provenance: this session).
    Link { offer: usize, patient: Patient, verified: bool },
    /// The conversation the session joins: `known` if given, else the
    /// patient's open one, else a new one.
    JoinConversation { customer: CustomerId, known: Option<ConversationId> },
    /// The session row itself.
    InsertSession,
    /// A failed confirmation in this session counts against the identifier too (H1).
    Subject { offer: usize },
    /// Kept, sealed, in the session until identity is confirmed.
    Pending { offer: usize },
    /// Two identifiers point at different patients.
    Conflict { winner: (IdentifierKind, Patient), other: (IdentifierKind, CustomerId) },
    /// The patients an ambiguous session may turn out to be.
    Candidates(Vec<CustomerId>),
    /// An audit record about the session's patient.
    Audit { action: audit::Action, kind: Option<IdentifierKind> },
    /// The conversation's last activity is now.
    Touch,
}

/// The whole decision: what the session row says, and the writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub status: Resolution,
    pub strength: Strength,
    pub shared: bool,
    pub created_customer: bool,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    New,
    One { customer: CustomerId, strength: Strength, shared: bool, conversation: Option<ConversationId> },
    Ambiguous { candidates: Vec<CustomerId>, strength: Strength },
}

/// Decides the open. `resume_token` says the lead is a token (what came
/// with it waits for confirmation).
pub(crate) fn plan(mut offers: Vec<OfferFacts>, lead: Lead) -> Plan {
    let mut steps = Vec::new();
    let from_token = matches!(lead, Lead::Token { .. });
    let resolved = match lead {
        Lead::Token { customer, conversation } => {
            Resolved::One { customer, strength: Strength::Possession, shared: false, conversation }
        }
        Lead::Thread { customer, conversation } => {
            for (i, o) in offers.iter_mut().enumerate().filter(|(_, o)| o.strength >= Strength::Asserted) {
                if let Some(at) = o.unverified.iter().position(|c| *c == customer) {
                    steps.push(Step::VerifyLink { offer: i, customer: customer.clone() });
                    o.matches.push(o.unverified.remove(at));
                }
            }
            let by = offers.iter().find(|o| o.matches.contains(&customer));
            Resolved::One {
                strength: by.map(|o| o.strength).unwrap_or(Strength::Claim),
                shared: by.is_some_and(|o| o.matches.len() > 1),
                customer,
                conversation,
            }
        }
        Lead::Offers => {
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

    let strongest = offers.iter().map(|o| o.strength).max().unwrap_or(Strength::Claim);
    let mut out = Plan { status: Resolution::New, strength: strongest, shared: false, created_customer: false, steps };
    // Who the session is about once the row is written.
    let mut patient: Option<Patient> = None;
    match &resolved {
        // A claim never creates ownership (H2): no record until intake, and
        // the claimed identifiers wait, sealed, in the session.
        Resolved::New if strongest == Strength::Claim => {}
        Resolved::New => {
            out.steps.push(Step::CreatePatient);
            for (i, o) in offers.iter().enumerate() {
                out.steps.push(Step::Link {
                    offer: i,
                    patient: Patient::Created,
                    verified: o.strength >= Strength::Asserted,
                });
            }
            out.created_customer = true;
            patient = Some(Patient::Created);
        }
        Resolved::One { customer, strength, shared, conversation } => {
            out.steps.push(Step::JoinConversation { customer: customer.clone(), known: conversation.clone() });
            out.status = Resolution::Resolved;
            out.strength = *strength;
            out.shared = *shared;
            patient = Some(Patient::Known(customer.clone()));
        }
        Resolved::Ambiguous { strength, .. } => {
            out.status = Resolution::Ambiguous;
            out.strength = *strength;
            out.shared = true;
        }
    }
    out.steps.push(Step::InsertSession);
    out.steps.extend((0..offers.len()).map(|offer| Step::Subject { offer }));

    match &resolved {
        Resolved::New if patient.is_none() => out.steps.extend((0..offers.len()).map(|offer| Step::Pending { offer })),
        Resolved::New => {}
        Resolved::One { customer, strength, .. } => {
            let winner_kind =
                offers.iter().filter(|o| o.matches.contains(customer)).max_by_key(|o| o.strength).map(|o| o.kind);
            for (i, o) in offers.iter().enumerate() {
                if o.matches.contains(customer) {
                    if *strength == Strength::Claim {
                        // Kept for the record intake may make of its own.
                        out.steps.push(Step::Pending { offer: i });
                    }
                    continue;
                }
                if let (Some(w), [other]) = (winner_kind, o.matches.as_slice()) {
                    out.steps.push(Step::Conflict {
                        winner: (w, Patient::Known(customer.clone())),
                        other: (o.kind, other.clone()),
                    });
                    out.steps.push(Step::Audit { action: audit::Action::IdentityConflict, kind: Some(o.kind) });
                }
                // A login proves who is there and binds what came with it; a
                // resume token only opens the door, and what came with it
                // waits for confirmation like any claim (M2).
                if *strength == Strength::Possession && !from_token && o.matches.is_empty() {
                    out.steps.push(Step::Link {
                        offer: i,
                        patient: Patient::Known(customer.clone()),
                        verified: o.strength >= Strength::Asserted,
                    });
                } else {
                    out.steps.push(Step::Pending { offer: i });
                }
            }
        }
        Resolved::Ambiguous { candidates, strength } => {
            out.steps.push(Step::Candidates(candidates.clone()));
            for (i, o) in offers.iter().enumerate() {
                if o.matches != *candidates || *strength == Strength::Claim {
                    out.steps.push(Step::Pending { offer: i });
                }
            }
        }
    }
    // An asserted or proven identifier that a claim had linked elsewhere:
    // the clash is for staff to settle, never a merge (H2).
    for o in offers.iter().filter(|o| !o.unverified.is_empty()) {
        if let Some(winner) = &patient {
            for other in &o.unverified {
                out.steps.push(Step::Conflict { winner: (o.kind, winner.clone()), other: (o.kind, other.clone()) });
            }
        }
        out.steps.push(Step::Audit { action: audit::Action::IdentityClash, kind: Some(o.kind) });
    }
    if patient.is_some() {
        out.steps.push(Step::Touch);
    }
    out.steps.push(Step::Audit { action: audit::Action::SessionOpen, kind: None });
    out
}

/// The strongest identifier that matches decides, the kind's priority
/// (phone, email, auth, cookie) only among equals: a portal login outranks
/// the phone and email that came with it as claims. A shared identifier is
/// ambiguous unless proof of possession picks one of its patients.
pub(crate) fn resolve(offers: &[OfferFacts]) -> Resolved {
    let mut matching: Vec<&OfferFacts> = offers.iter().filter(|o| !o.matches.is_empty()).collect();
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn offer(kind: IdentifierKind, strength: Strength, matches: &[&CustomerId]) -> OfferFacts {
        OfferFacts { kind, strength, matches: matches.iter().map(|c| (*c).clone()).collect(), unverified: Vec::new() }
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
            let offers: Vec<OfferFacts> = IdentifierKind::ALL
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

    /// The decision table: each case's facts and the plan, one line per
    /// write, in a snapshot (`continuity/src/open_plans.snap`; refresh with
    /// `UPDATE_EXPECT=1` after a deliberate change and review the diff).
    #[test]
    fn the_open_decision_table() {
        use IdentifierKind::{Auth, Cookie, Email, Phone};
        use Strength::{Asserted, Claim, Possession};
        // Stable names for the patients, so the snapshot reads.
        let ids: Vec<CustomerId> =
            (1..=3).map(|n| CustomerId::parse(&format!("cus_{n:032x}")).expect("a patient id")).collect();
        let (maria, jose, ana) = (&ids[0], &ids[1], &ids[2]);
        let unverified = |mut o: OfferFacts, c: &[&CustomerId]| {
            o.unverified = c.iter().map(|c| (*c).clone()).collect();
            o
        };
        let conv = ConversationId::generate();
        let cases: Vec<(&str, Vec<OfferFacts>, Lead)> = vec![
            ("an unknown caller's claim makes no record", vec![offer(Phone, Claim, &[])], Lead::Offers),
            ("an unknown attested caller is a new patient", vec![offer(Phone, Asserted, &[])], Lead::Offers),
            (
                "a known attested caller, email claimed alongside",
                vec![offer(Phone, Asserted, &[maria]), offer(Email, Claim, &[])],
                Lead::Offers,
            ),
            ("a claimed number known to one patient", vec![offer(Phone, Claim, &[maria])], Lead::Offers),
            ("a family phone is ambiguous", vec![offer(Phone, Asserted, &[maria, jose])], Lead::Offers),
            (
                "a login picks one patient of a family phone",
                vec![offer(Phone, Asserted, &[maria, jose]), offer(Auth, Possession, &[jose])],
                Lead::Offers,
            ),
            (
                "a login binds a new email that came with it",
                vec![offer(Email, Claim, &[]), offer(Auth, Possession, &[maria])],
                Lead::Offers,
            ),
            (
                "two identifiers, two patients: a conflict, never a merge",
                vec![offer(Phone, Asserted, &[maria]), offer(Email, Claim, &[jose])],
                Lead::Offers,
            ),
            (
                "an attested number only a claim linked leads there, as a claim",
                vec![unverified(offer(Phone, Asserted, &[]), &[ana])],
                Lead::Offers,
            ),
            (
                "an attested number a claim linked elsewhere: a clash",
                vec![unverified(offer(Phone, Asserted, &[maria]), &[ana])],
                Lead::Offers,
            ),
            (
                "a resume token: what came with it waits",
                vec![offer(Cookie, Claim, &[]), offer(Email, Claim, &[])],
                Lead::Token { customer: maria.clone(), conversation: Some(conv.clone()) },
            ),
            (
                "an authenticated reply into our thread verifies the claimed link",
                vec![unverified(offer(Email, Asserted, &[]), &[maria])],
                Lead::Thread { customer: maria.clone(), conversation: None },
            ),
        ];
        let name = |c: &CustomerId| match ids.iter().position(|i| i == c) {
            Some(0) => "maria",
            Some(1) => "jose",
            Some(2) => "ana",
            _ => "?",
        };
        let patient = |p: &Patient| match p {
            Patient::Created => "the new patient".to_owned(),
            Patient::Known(c) => name(c).to_owned(),
        };
        let mut table = String::new();
        for (title, offers, lead) in cases {
            let kinds: Vec<IdentifierKind> = offers.iter().map(|o| o.kind).collect();
            let p = plan(offers, lead);
            table.push_str(&format!(
                "## {title}\n{:?} {:?} shared={} created={}\n",
                p.status, p.strength, p.shared, p.created_customer
            ));
            for step in &p.steps {
                let line = match step {
                    Step::VerifyLink { offer, customer } => {
                        format!("verify link {} -> {}", kinds[*offer].as_str(), name(customer))
                    }
                    Step::CreatePatient => "create patient and conversation".to_owned(),
                    Step::Link { offer, patient: who, verified } => {
                        format!(
                            "link {} -> {} ({})",
                            kinds[*offer].as_str(),
                            patient(who),
                            if *verified { "verified" } else { "claim" }
                        )
                    }
                    Step::JoinConversation { customer, known } => format!(
                        "join {}'s {} conversation",
                        name(customer),
                        if known.is_some() { "given" } else { "open or new" }
                    ),
                    Step::InsertSession => "insert session".to_owned(),
                    Step::Subject { offer } => format!("subject {}", kinds[*offer].as_str()),
                    Step::Pending { offer } => format!("pending {}", kinds[*offer].as_str()),
                    Step::Conflict { winner, other } => format!(
                        "conflict {} of {} vs {} of {}",
                        winner.0.as_str(),
                        patient(&winner.1),
                        other.0.as_str(),
                        name(&other.1)
                    ),
                    Step::Candidates(c) => {
                        format!("candidates {}", c.iter().map(&name).collect::<Vec<_>>().join(", "))
                    }
                    Step::Audit { action, kind } => {
                        format!("audit {action}{}", kind.map(|k| format!(" ({})", k.as_str())).unwrap_or_default())
                    }
                    Step::Touch => "touch conversation".to_owned(),
                };
                table.push_str(&format!("- {line}\n"));
            }
            table.push('\n');
        }
        expect_test::expect_file!["open_plans.snap"].assert_eq(&table);
    }
}
