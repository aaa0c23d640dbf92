//! The server's tenant pool: tenants open on first use, close when idle and
//! reopen with everything they held; the hourly retention pass reaches the
//! tenants no request has opened; a request still holding a closed
//! tenant's handle finishes on it without breaking the audit chain.

mod util;

use std::sync::Arc;

use policy::Channel;
use throughline::continuity::{self, Actor, Offered, OpenRequest};
use throughline::ids::TenantId;
use throughline::tenants::{TenantHandle, TenantPool};
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
    let now = throughline::Clock::now_ms(&throughline::SystemClock);
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
