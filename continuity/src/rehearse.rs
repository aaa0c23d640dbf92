//! A rehearsal of a call's hot path on a made-up patient, undone whole
//! (`serve --prewarm`): a first open that creates the patient, a second that
//! finds them, a confirmation, a turn and a state put, all inside one
//! transaction rolled back at the end. Nothing is kept, in the file or in
//! the audit trail; what stays is the connection's prepared statements and
//! the pages those statements touched, so the tenant's first real request
//! costs what every later one does.

use policy::Channel;

use super::{Actor, ConfirmRequest, Offered, OpenRequest, StateValue, TenantSettings, TurnRequest};
use store::ids::SessionId;
use store::{StoreError, TenantStore};

/// A number no patient has (the 555-01xx range is reserved for fiction).
const REHEARSAL_PHONE: &str = "+12025550199";

/// Rehearses on `store`; errors of the rehearsed calls are ignored (it is
/// warming, not checking), a store error of the rollback is not.
pub fn rehearse(store: &mut TenantStore, settings: &TenantSettings, now: i64) -> Result<(), StoreError> {
    store.rehearse(|s| {
        let actor = Actor { serial: "prewarm".into(), channel: Channel::Voice, peer: None };
        let open = OpenRequest {
            identifiers: Offered { phone: Some(REHEARSAL_PHONE.into()), ..Offered::default() },
            external_ref: None,
            evidence: Some(super::EvidenceRequest { caller_id_attestation: Some("A".into()) }),
        };
        let _ = super::open_session(s, settings, &actor, &open, now);
        let Ok(ctx) = super::open_session(s, settings, &actor, &open, now) else { return };
        let Some(session) = SessionId::parse(&ctx.session_id) else { return };
        let confirm = ConfirmRequest { date_of_birth: Some("1970-01-01".into()), name: None, code: None };
        let _ = super::confirm_identity(s, settings, &actor, &session, &confirm, now);
        let turn = TurnRequest { speaker: "agent".into(), text: "rehearsal".into(), external_ref: None, hold: false };
        let _ = super::append_turn(s, settings, &actor, &session, &turn, now);
        let _ = super::put_state(s, settings, &actor, &session, "rehearsal", &StateValue { value: "x".into() }, now);
    })
}
