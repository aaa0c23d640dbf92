//! The server's tenant pool: tenants open on first use, close when idle and
//! reopen with everything they held; the hourly retention pass reaches the
//! tenants no request has opened; a request still holding a closed
//! tenant's handle finishes on it without breaking the audit chain.

mod util;

use std::sync::Arc;

use continuity::{self, Actor, Offered, OpenRequest};
use policy::Channel;
use server::tenants::{TenantHandle, TenantPool};
use store::ids::TenantId;
use util::Env;

fn open(pool: &TenantPool, tenant: &TenantId, phone: &str) -> String {
    open_on(&pool.get(tenant).expect("tenant"), Channel::Voice, phone)
}

/// A session open on this handle, as a channel's request would run it.
fn open_on(handle: &Arc<TenantHandle>, channel: Channel, phone: &str) -> String {
    let h = handle.clone();
    let actor = Actor { serial: "test".into(), channel, peer: None };
    let req = OpenRequest {
        identifiers: Offered { phone: Some(phone.into()), ..Offered::default() },
        external_ref: None,
        // A carrier-verified call: caller ID is asserted.
        evidence: (channel == Channel::Voice)
            .then(|| continuity::EvidenceRequest { caller_id_attestation: Some("A".into()) }),
    };
    let now = server::Clock::now_ms(&server::SystemClock);
    let ctx = handle
        .store
        .run(move |s| continuity::open_session(s, &h.settings, &actor, &req, now))
        .expect("group")
        .expect("open");
    ctx.conversation_id.expect("a conversation")
}

#[test]
fn idle_tenants_close_and_reopen_with_their_data() {
    let env = Env::initialised();
    env.tenant(&["north"]);
    env.tenant(&["south"]);
    let inst = env.installation();
    let north = inst.tenant("north").unwrap().id;
    let pool = inst.tenant_pool().unwrap();
    assert_eq!(pool.open_count().unwrap(), 0, "a cold pool opens nothing");

    let first = open(&pool, &north, "+1 415 555 0100");
    assert_eq!(pool.open_count().unwrap(), 1);
    assert_eq!(pool.close_idle(std::time::Duration::from_secs(3600)).unwrap(), 0, "a busy tenant was closed");

    // Idle (zero tolerance here): checkpointed and closed.
    let held = pool.get(&north).unwrap();
    assert_eq!(pool.close_idle(std::time::Duration::ZERO).unwrap(), 1);
    assert_eq!(pool.open_count().unwrap(), 0);
    assert!(pool.get_open(&north).unwrap().is_none());

    // Reopened on the next request, with the same conversation.
    assert_eq!(open(&pool, &north, "+1 415 555 0100"), first);
    assert_eq!(pool.open_count().unwrap(), 1);

    // A request that still held the closed handle finishes on it, beside
    // the new connection; the chain stays whole.
    assert_eq!(open_on(&held, Channel::Voice, "+1 415 555 0100"), first);
    drop(held);
    drop(pool);
    let store = inst.open_tenant("north").unwrap();
    let records = store.verify_audit().unwrap();
    assert!(records >= 7, "tenant.create + 3 × (session.open, context.read): {records}");
}

#[test]
fn the_hourly_retention_pass_reaches_tenants_no_request_opened() {
    let env = Env::initialised();
    env.tenant(&["north"]);
    env.tenant(&["south"]);
    let inst = env.installation();
    let pool = inst.tenant_pool().unwrap();
    let now = inst.now_ms();
    pool.purge(now, false).unwrap();
    assert_eq!(pool.open_count().unwrap(), 0, "the minute pass opened tenants");
    pool.purge(now, true).unwrap();
    assert_eq!(pool.open_count().unwrap(), 2, "the hourly pass skipped a closed tenant");
}

/// The counts a rehearsal must leave as they were.
fn counts(inst: &server::Installation, tenant: &str) -> Vec<u64> {
    use store::Countable::*;
    let store = inst.open_tenant(tenant).expect("open");
    store.verify_audit().expect("the chain verifies");
    [Customers, Identifiers, AuditRecords, Sessions, Turns, StateKeys, Conversations]
        .into_iter()
        .map(|c| store.count(c).expect("count"))
        .collect()
}

/// `serve --prewarm`: every tenant is opened and a call rehearsed on it
/// (two opens, a confirmation, a turn, a state put), and nothing of the
/// rehearsal is kept: no patient, identifier, session, turn, state or audit
/// record, the chain whole. The warmed tenant then serves as before.
#[test]
fn prewarm_opens_every_tenant_and_keeps_nothing_of_its_rehearsal() {
    let env = Env::initialised();
    env.tenant(&["north"]);
    env.tenant(&["south"]);
    let inst = env.installation();
    let north = inst.tenant("north").unwrap().id;
    let pool = inst.tenant_pool().unwrap();
    open(&pool, &north, "+1 415 555 0100");
    drop(pool);
    let (north_before, south_before) = (counts(&inst, "north"), counts(&inst, "south"));

    let pool = inst.tenant_pool().unwrap();
    assert_eq!(pool.prewarm(2, inst.now_ms()).unwrap(), 2, "both tenants warmed");
    assert_eq!(pool.open_count().unwrap(), 2, "prewarm leaves every tenant open");
    drop(pool);
    assert_eq!(counts(&inst, "north"), north_before, "the rehearsal left rows in north");
    assert_eq!(counts(&inst, "south"), south_before, "the rehearsal left rows in south");

    let pool = inst.tenant_pool().unwrap();
    pool.prewarm(1, inst.now_ms()).unwrap();
    open(&pool, &north, "+1 415 555 0100");
    drop(pool);
    let after = counts(&inst, "north");
    assert_eq!(after[2], north_before[2] + 2, "a real open after prewarm is audited (session.open, context.read)");
}

/// The same through `serve --prewarm`: the server answers at once, says
/// when every tenant is warm, and serves them.
#[tokio::test]
async fn serve_prewarm_warms_every_tenant_and_serves() {
    let env = Env::initialised();
    env.tenant(&["north"]);
    env.tenant(&["south"]);
    let voice = env.issue("south", "voice");
    let server = env.serve_with(&["--prewarm"]);
    let log = util::server::eventually(10, || async {
        let log = server.log_text();
        log.contains("prewarm done").then_some(log)
    })
    .await
    .expect("prewarm reported");
    let line = log.lines().find(|l| l.contains("prewarm done")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["tenants"], 2, "{line}");
    let open =
        serde_json::json!({"identifiers": {"phone": "+1 415 555 0100"}, "evidence": {"caller_id_attestation": "A"}});
    let res = util::server::client(&voice).post(server.url("/v1/sessions")).json(&open).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
