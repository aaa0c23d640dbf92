//! The policy's decisions as a table: every confirmation mode × channel ×
//! resolution × identifier strength × shared identifier × confirmed state,
//! snapshotted (expect-test; `UPDATE_EXPECT=1 cargo test -p policy` to
//! refresh after a deliberate change) and checked against invariants that
//! must hold in every row.

use std::fmt::Write as _;

use expect_test::expect_file;
use policy::{
    Channel, Confirmation, ConfirmationMode, IdentityFacts, PhiClass, Resolution, Strength, TenantPolicy, decide,
    may_exercise_rights, may_start_fresh, may_write_inbound,
};

const RESOLUTIONS: [Resolution; 3] = [Resolution::Resolved, Resolution::Ambiguous, Resolution::New];
const STRENGTHS: [Strength; 3] = [Strength::Claim, Strength::Asserted, Strength::Possession];

fn policy_with(mode: ConfirmationMode) -> TenantPolicy {
    TenantPolicy::from_toml(&format!("[confirmation]\nmode = \"{}\"", mode.as_str())).expect("valid")
}

fn every_case() -> impl Iterator<Item = (ConfirmationMode, Channel, IdentityFacts)> {
    ConfirmationMode::ALL.into_iter().flat_map(|mode| {
        Channel::ALL.into_iter().flat_map(move |channel| {
            RESOLUTIONS.into_iter().flat_map(move |resolution| {
                STRENGTHS.into_iter().flat_map(move |strength| {
                    [false, true].into_iter().flat_map(move |shared_identifier| {
                        [false, true].into_iter().map(move |confirmed| {
                            let facts =
                                IdentityFacts { resolution, strength, shared_identifier, confirmed, locked: false };
                            (mode, channel, facts)
                        })
                    })
                })
            })
        })
    })
}

#[test]
fn decision_table() {
    let mut table = String::from("mode channel resolution strength shared confirmed | confirm allowed\n");
    for (mode, channel, f) in every_case() {
        let d = decide(&policy_with(mode), channel, &f);
        let confirm = match &d.confirmation {
            Confirmation::NotRequired => "-".to_owned(),
            Confirmation::Required { with } => with.iter().map(|w| w.as_str()).collect::<Vec<_>>().join("+"),
            Confirmation::Locked => "locked".to_owned(),
        };
        writeln!(
            table,
            "{} {} {} {} {} {} | {} {}",
            mode.as_str(),
            channel,
            f.resolution.as_str(),
            f.strength.as_str(),
            if f.shared_identifier { "shared" } else { "single" },
            if f.confirmed { "confirmed" } else { "unconfirmed" },
            confirm,
            d.access.allowed()
        )
        .unwrap();
    }
    expect_file!["decisions.snap"].assert_eq(&table);
}

#[test]
fn invariants_hold_in_every_row() {
    for (mode, channel, f) in every_case() {
        let policy = policy_with(mode);
        let rules = policy.channel(channel);
        let d = decide(&policy, channel, &f);
        let case = format!("{mode:?} {channel} {f:?}");
        // Nothing beyond what the channel may ever see.
        assert!(d.access.allowed().is_subset_of(rules.after), "{case}");
        // allowed and withheld partition the classes.
        assert_eq!(d.access.allowed().iter().count() + d.access.withheld().iter().count(), PhiClass::ALL.len());
        // A family phone releases nothing, not even a first name, until confirmed.
        if f.resolution == Resolution::Ambiguous && !f.confirmed {
            assert_eq!(d.access.allowed().iter().count(), 0, "{case}");
            assert!(matches!(d.confirmation, Confirmation::Required { .. }), "{case}");
        }
        // A claim never unlocks PHI beyond the greeting without confirmation.
        if f.resolution == Resolution::Resolved && f.strength == Strength::Claim && !f.confirmed {
            assert!(d.access.allowed().is_subset_of(rules.before), "{case}");
            assert!(matches!(d.confirmation, Confirmation::Required { .. }), "{case}");
        }
        // A shared identifier never yields the greeting before confirmation.
        if f.shared_identifier && !f.confirmed && matches!(d.confirmation, Confirmation::Required { .. }) {
            assert!(!d.access.allows(PhiClass::Greeting), "{case}");
        }
        // Confirmed means the channel's full view, and nothing more to ask.
        if f.confirmed {
            assert_eq!(d.confirmation, Confirmation::NotRequired, "{case}");
            assert_eq!(d.access.allowed(), rules.after, "{case}");
        }
        // Email and SMS never receive turn text or clinical notes by default.
        if matches!(channel, Channel::Email | Channel::Sms) {
            assert!(!d.access.allows(PhiClass::Conversation) && !d.access.allows(PhiClass::Clinical), "{case}");
        }
        // Patients' rights need confirmation in every mode.
        assert_eq!(may_exercise_rights(&f).is_ok(), f.confirmed && f.resolution != Resolution::Ambiguous, "{case}");
        // An inbound message is written only from an asserted (or proven)
        // identity with nothing to confirm, or a confirmed one: a claim, a
        // family identifier or a pending confirmation never writes (H4).
        let writes = may_write_inbound(&policy, &f);
        if !f.confirmed && (f.strength == Strength::Claim || f.resolution == Resolution::Ambiguous) {
            assert!(!writes, "{case}");
        }
        if writes && !f.confirmed {
            assert_eq!(d.confirmation, Confirmation::NotRequired, "{case}");
        }
        // Start fresh is allowed exactly when PHI would be (no confirmation pending).
        assert_eq!(may_start_fresh(&policy, &f).is_ok(), d.confirmation == Confirmation::NotRequired, "{case}");
    }
}

#[test]
fn lockout_is_reported_and_blocks_state_changes() {
    let policy = TenantPolicy::hipaa_default();
    let facts = IdentityFacts {
        resolution: Resolution::Ambiguous,
        strength: Strength::Asserted,
        shared_identifier: true,
        confirmed: false,
        locked: true,
    };
    let d = decide(&policy, Channel::Chat, &facts);
    assert_eq!(d.confirmation, Confirmation::Locked);
    assert_eq!(d.access.allowed().iter().count(), 0);
    assert_eq!(may_start_fresh(&policy, &facts).map_err(|r| r.code()), Err("identity_locked"));
    let mut failures = 0;
    let mut locked_until = None;
    for attempt in 1..=5 {
        (failures, locked_until) = policy::after_failed_confirmation(&policy, failures, 1_000 * attempt);
    }
    assert_eq!((failures, locked_until), (5, Some(5_000 + 15 * 60_000)));
    assert!(policy::confirmation_locked(locked_until, 5_001));
    assert!(!policy::confirmation_locked(locked_until, 5_000 + 15 * 60_000));
}
