//! The domain at the middle: continuity's operations against a real
//! temporary tenant store, with no HTTP server, no runtime and no
//! certificates. What an integration sees end to end is in the workspace's
//! `tests/`; these pin the domain's own answers.
#![allow(clippy::unwrap_used)]

use continuity::calendar::ClinicZone;
use continuity::channels::EmailSettings;
use continuity::{
    Actor, ConfirmRequest, ContinuityError, EvidenceRequest, Offered, OpenRequest, ResumeContext, TenantSettings,
};
use policy::{Channel, StateTtl, TenantPolicy};
use store::ids::SessionId;
use store::{AuditEntry, IdentifierKind, TenantStore};

const NOW: i64 = 1_800_000_000_000;

struct Clinic {
    _dir: tempfile::TempDir,
    store: TenantStore,
    settings: TenantSettings,
}

fn clinic() -> Clinic {
    let dir = tempfile::tempdir().unwrap();
    let root = crypto::Key256::generate().unwrap();
    let keys = crypto::TenantKeys::derive("ten_00000000000000000000000000000001", &root);
    let store = TenantStore::create(&dir.path().join("t.db"), keys, "test", NOW).unwrap();
    let settings = TenantSettings {
        policy: TenantPolicy::hipaa_default(),
        region: "US".into(),
        zone: ClinicZone::utc(),
        state_ttl: StateTtl::default(),
        recent_turns: 20,
        email: EmailSettings::placeholder("sunrise"),
    };
    Clinic { _dir: dir, store, settings }
}

fn actor(channel: Channel, serial: &str) -> Actor {
    Actor { serial: serial.into(), channel, peer: None }
}

fn call(phone: &str, attestation: Option<&str>, external_ref: Option<&str>) -> OpenRequest {
    OpenRequest {
        identifiers: Offered { phone: Some(phone.into()), ..Offered::default() },
        external_ref: external_ref.map(str::to_owned),
        evidence: attestation.map(|a| EvidenceRequest { caller_id_attestation: Some(a.into()) }),
    }
}

fn open(c: &mut Clinic, actor: &Actor, req: &OpenRequest) -> Result<ResumeContext, ContinuityError> {
    continuity::open_session(&mut c.store, &c.settings, actor, req, NOW)
}

/// An attested caller nobody knows is a new patient with one conversation;
/// calling again finds the same patient and the same conversation.
#[test]
fn an_attested_caller_is_one_patient_across_calls() {
    let mut c = clinic();
    let voice = actor(Channel::Voice, "01");
    let first = open(&mut c, &voice, &call("+1 415 555 0100", Some("A"), None)).unwrap();
    assert_eq!(first.identity.status, "new");
    let again = open(&mut c, &voice, &call("(415) 555-0100", Some("A"), None)).unwrap();
    assert_eq!(again.identity.status, "resolved");
    assert_eq!((&again.customer_id, &again.conversation_id), (&first.customer_id, &first.conversation_id));
    assert_ne!(again.session_id, first.session_id);
    assert_eq!(c.store.verify_audit().unwrap(), c.store.audit_records().unwrap().len() as u64);
}

/// A claim makes no record (H2): a number from a chat widget that nobody
/// holds yet opens a session with no patient and no conversation.
#[test]
fn a_claim_makes_no_record() {
    let mut c = clinic();
    let chat = actor(Channel::Chat, "02");
    let ctx = open(&mut c, &chat, &call("+1 415 555 0101", None, None)).unwrap();
    assert_eq!((ctx.identity.status, ctx.customer_id, ctx.conversation_id), ("new", None, None));
}

/// A known patient's caller must confirm; the date of birth it confirms
/// with is never shown before (M8); a wrong one is not proven (401 at the
/// API), the right one releases it.
#[test]
fn confirmation_decides_what_is_released() {
    let mut c = clinic();
    let maria = c
        .store
        .create_customer("Maria Lopez", "1985-03-14", &AuditEntry::operator("test", audit::Action::CustomerCreate), NOW)
        .unwrap();
    c.store.link_identifier(IdentifierKind::Phone, "+14155550102", &maria, "test", NOW).unwrap();
    let voice = actor(Channel::Voice, "01");
    let ctx = open(&mut c, &voice, &call("+14155550102", Some("A"), None)).unwrap();
    assert_eq!(ctx.customer_id.as_deref(), Some(maria.as_str()));
    assert!(!ctx.identity.confirmed);
    let dob = |ctx: &ResumeContext| ctx.patient.as_ref().and_then(|p| p.date_of_birth.clone());
    assert_eq!(dob(&ctx), None, "the confirmation secret before confirmation");
    let session = SessionId::parse(&ctx.session_id).unwrap();
    let wrong = ConfirmRequest { date_of_birth: Some("1990-01-01".into()), name: None, code: None };
    let refused = continuity::confirm_identity(&mut c.store, &c.settings, &voice, &session, &wrong, NOW).unwrap_err();
    assert!(matches!(refused, ContinuityError::NotProven { code: "identity_not_confirmed", .. }), "{refused:?}");
    let right = ConfirmRequest { date_of_birth: Some("1985-03-14".into()), name: None, code: None };
    let ctx = continuity::confirm_identity(&mut c.store, &c.settings, &voice, &session, &right, NOW).unwrap();
    assert!(ctx.identity.confirmed);
    assert_eq!(dob(&ctx).as_deref(), Some("1985-03-14"));
}

/// An external reference is the same session only for the integration that
/// opened it (H3): another certificate replaying it gets a conflict.
#[test]
fn an_external_ref_never_crosses_integrations() {
    let mut c = clinic();
    let (ours, theirs) = (actor(Channel::Voice, "01"), actor(Channel::Voice, "02"));
    let req = call("+14155550103", Some("A"), Some("call-1"));
    let first = open(&mut c, &ours, &req).unwrap();
    assert_eq!(open(&mut c, &ours, &req).unwrap().session_id, first.session_id);
    let e = open(&mut c, &theirs, &req).unwrap_err();
    assert!(matches!(e, ContinuityError::WrongState { code: "external_ref_conflict", .. }), "{e:?}");
}

/// Bad input is refused in the domain's terms, before anything is written.
#[test]
fn a_malformed_number_is_invalid_and_writes_nothing() {
    let mut c = clinic();
    let before = c.store.audit_records().unwrap().len();
    let e = open(&mut c, &actor(Channel::Voice, "01"), &call("not a number", None, None)).unwrap_err();
    assert!(matches!(e, ContinuityError::Invalid { .. }), "{e:?}");
    assert_eq!(c.store.audit_records().unwrap().len(), before);
}

/// An interrupted call is put in the recovery policy's arm by the roll: a
/// link (and a token) in the `sent` arm, nothing in the holdout, and both
/// recorded on the session for the outcomes report. A completed call with
/// nothing pending is not interrupted and gets no arm.
#[test]
fn an_interrupted_call_is_put_in_an_arm_by_the_roll() {
    let mut c = clinic();
    c.settings.policy = TenantPolicy::from_toml(
        "[recovery]\nresume_link = true\nlink_base = \"https://chat.example/r\"\nholdout_percent = 30\ncallback = true\n",
    )
    .unwrap();
    let voice = actor(Channel::Voice, "v1");
    let end = |c: &mut Clinic, phone: &str, reason: &str, roll: u8| {
        let s = open(c, &voice, &call(phone, Some("A"), None)).unwrap().session_id;
        let id = SessionId::parse(&s).unwrap();
        let req = continuity::EndRequest { reason: reason.into() };
        continuity::end_session(&mut c.store, &c.settings, &voice, &id, &req, roll, NOW + 60_000).unwrap()
    };
    let sent = end(&mut c, "+14155550101", "dropped", 30);
    let r = sent.recovery.unwrap();
    assert_eq!(r.arm, policy::RecoveryArm::Sent);
    assert!(r.link.unwrap().starts_with("https://chat.example/r#rt1."));
    assert!(r.callback.is_some_and(|id| id.starts_with("cb_")), "a callback to the attested number");
    let held = end(&mut c, "+14155550102", "dropped", 29);
    assert_eq!(held.recovery.map(|r| (r.arm, r.link, r.callback)), Some((policy::RecoveryArm::Holdout, None, None)));
    let fine = end(&mut c, "+14155550103", "completed", 0);
    assert_eq!((fine.interrupted, fine.recovery), (Some(false), None));
    let rows = c.store.outcome_rows(0, i64::MAX).unwrap();
    let arms: Vec<Option<&str>> = rows.sessions.iter().map(|s| s.recovery_arm.as_deref()).collect();
    assert_eq!(arms, [Some("sent"), Some("holdout"), None]);
    assert_eq!(rows.callbacks.len(), 1, "the held-out call got no callback");
}
