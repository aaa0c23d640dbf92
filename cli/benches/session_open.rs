//! Criterion benchmarks beside the code (`cargo bench -p throughline`):
//! one session open on a tenant of 10,000 seeded patients, through the raw
//! SQLCipher statements and through the service, each iteration committed
//! with `synchronous=FULL` (so each includes its fsync); then 256 opens by
//! 32 threads through the tenant pool's writer threads and group commit,
//! where the fsync is shared. `throughline bench` and the scripts in
//! `scripts/` measure the HTTP path; docs/PERFORMANCE.md has the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

// The seeding the `throughline bench` command uses, shared by path: the
// binary's modules are not a library.
#[path = "../src/bench/seed.rs"]
#[allow(dead_code)]
mod seed;

use continuity::calendar::ClinicZone;
use continuity::channels::EmailSettings;
use continuity::{self, Actor, Offered, OpenRequest, TenantSettings};
use criterion::{Criterion, criterion_group, criterion_main};
use policy::{Channel, StateTtl, TenantPolicy};
use secrecy::SecretString;
use server::{Clock, Installation, ManualClock, SystemClock};
use store::RawOpen;
use store::ids::{SessionId, TenantName};

const PATIENTS: u64 = 10_000;

struct Tenant {
    _tmp: tempfile::TempDir,
    inst: Installation,
    clock: ManualClock,
}

fn tenant() -> Tenant {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pass = SecretString::from("bench passphrase, not a secret".to_owned());
    let clock = ManualClock::new(SystemClock.now_ms());
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1).expect("kdf");
    let mut inst = Installation::init(&tmp.path().join("data"), &pass, kdf, Arc::new(clock.clone())).expect("init");
    inst.create_tenant(&TenantName::parse("bench").expect("name"), StateTtl::default(), &ClinicZone::utc())
        .expect("tenant");
    let mut store = inst.open_tenant("bench").expect("open");
    seed::seed(&mut store, PATIENTS, clock.now_ms(), &mut std::io::sink()).expect("seed");
    Tenant { _tmp: tmp, inst, clock }
}

fn draw(rng: &mut u64) -> String {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    seed::phone(*rng % PATIENTS)
}

fn request(phone: String) -> OpenRequest {
    OpenRequest {
        identifiers: Offered { phone: Some(phone), ..Offered::default() },
        external_ref: None,
        // A carrier-verified call: caller ID is asserted, as before evidence counted.
        evidence: Some(continuity::EvidenceRequest { caller_id_attestation: Some("A".into()) }),
    }
}

fn session_open(c: &mut Criterion) {
    let t = tenant();
    let mut store = t.inst.open_tenant("bench").expect("open");
    let settings = TenantSettings {
        policy: TenantPolicy::hipaa_default(),
        region: "US".into(),
        zone: ClinicZone::utc(),
        state_ttl: StateTtl::default(),
        recent_turns: 20,
        email: EmailSettings::placeholder("bench"),
    };
    let actor = Actor { serial: "bench".into(), channel: Channel::Voice, peer: None };
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut group = c.benchmark_group("session_open");
    group.sample_size(30).measurement_time(Duration::from_secs(5));
    group.bench_function("raw_sqlcipher", |b| {
        b.iter(|| {
            t.clock.advance_ms(1);
            let bi = store.bench_blind_index("phone", &draw(&mut rng));
            let sid = SessionId::generate();
            let input = RawOpen { phone_bi: &bi, session_id: sid.as_str(), now: t.clock.now_ms(), with_audit: true };
            store.bench_raw_open(&input).expect("raw open")
        })
    });
    group.bench_function("service", |b| {
        b.iter(|| {
            t.clock.advance_ms(1);
            let req = request(draw(&mut rng));
            continuity::open_session(&mut store, &settings, &actor, &req, t.clock.now_ms()).expect("open")
        })
    });
    group.finish();
}

/// 32 threads, 8 opens each, through the pool: the time for all 256.
fn group_commit(c: &mut Criterion) {
    let t = tenant();
    let pool = Arc::new(t.inst.tenant_pool().expect("pool"));
    let tenant = t.inst.tenant("bench").expect("tenant").id;
    let mut group = c.benchmark_group("group_commit");
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function("256_opens_32_threads", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let start = Instant::now();
                let threads: Vec<_> = (0..32u64)
                    .map(|th| {
                        let (pool, tenant, now) = (pool.clone(), tenant.clone(), t.clock.now_ms());
                        std::thread::spawn(move || {
                            let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ (i << 8 | th);
                            for _ in 0..8 {
                                let handle = pool.get(&tenant).expect("tenant");
                                let h = handle.clone();
                                let req = request(draw(&mut rng));
                                let actor = Actor { serial: "bench".into(), channel: Channel::Voice, peer: None };
                                handle
                                    .store
                                    .run(move |s| {
                                        continuity::open_session(s, &h.settings, &actor, &req, now).map(|_| ())
                                    })
                                    .expect("group")
                                    .expect("open");
                            }
                        })
                    })
                    .collect();
                for th in threads {
                    th.join().expect("thread");
                }
                total += start.elapsed();
                t.clock.advance_ms(1);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, session_open, group_commit);
criterion_main!(benches);
