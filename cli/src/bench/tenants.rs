//! `throughline bench --tenants 1,10,100,1000`: how cost grows with the
//! number of tenants. One installation grows tenant by tenant (each with its
//! own SQLCipher file, key and seeded patients); at each count it measures,
//! through the server's own tenant pool and group commit, in-process:
//! starting the pool (what a cold `serve` pays before its first request),
//! the first request to every tenant (lazy open), then warm session opens
//! spread over all tenants, and this process's resident memory.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crypto::KdfParams;
use policy::{Channel, StateTtl};
use secrecy::SecretString;

use super::{percentile as pct, rss_mib, seed};
use continuity::{self, Actor, Offered, OpenRequest};
use server::clock::{Clock, ManualClock, SystemClock};
use server::tenants::TenantPool;
use server::{Error, Installation};
use store::ids::{TenantId, TenantName};

/// Threads of the prewarm (as `serve --prewarm` with the default writers
/// on two cores: its fsyncs overlap).
const PREWARM_THREADS: usize = 8;

/// Patients seeded in each tenant.
const PATIENTS: u64 = 200;

/// One tenant count, measured.
#[derive(Clone, Debug)]
pub struct TenantRow {
    pub tenants: u64,
    pub pool_start_ms: f64,
    pub first_total_ms: f64,
    pub first_p99_ms: f64,
    pub opens_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rss_mib: f64,
    /// `prewarm` of a fresh pool: every tenant opened and rehearsed.
    pub prewarm_ms: f64,
    /// The first request to each tenant after the prewarm.
    pub warmed_first_p50_ms: f64,
    pub warmed_first_p99_ms: f64,
    /// Of a cold first request: the store's open alone (median).
    pub cold_open_p50_ms: f64,
    pub cold_first_p50_ms: f64,
}

pub(super) fn open(pool: &TenantPool, tenant: &TenantId, phone: String, now: i64) -> Result<f64, Error> {
    Ok(timed_open(pool, tenant, phone, now)?.1)
}

/// A session open through the pool: (ms to get the store, ms in all).
fn timed_open(pool: &TenantPool, tenant: &TenantId, phone: String, now: i64) -> Result<(f64, f64), Error> {
    let actor = Actor { serial: "bench".into(), channel: Channel::Voice, peer: None };
    let t = Instant::now();
    let handle = pool.get(tenant)?;
    let got = t.elapsed().as_secs_f64() * 1e3;
    let h = handle.clone();
    let req = OpenRequest {
        identifiers: Offered { phone: Some(phone), ..Offered::default() },
        external_ref: None,
        evidence: Some(continuity::EvidenceRequest { caller_id_attestation: Some("A".into()) }),
    };
    handle
        .store
        .run(move |s| continuity::open_session(s, &h.settings, &actor, &req, now).map(|_| ()))
        .map_err(|e| Error::Bench { message: e.to_string() })?
        .map_err(|e| Error::Bench { message: e.to_string() })?;
    Ok((got, t.elapsed().as_secs_f64() * 1e3))
}

pub fn run(counts: &[u64], opens: usize, out: &mut dyn Write) -> Result<Vec<TenantRow>, Error> {
    let tmp = tempfile::tempdir().map_err(|source| Error::Io { path: "tempdir".into(), source })?;
    let root = tmp.path().join("data");
    let pass = SecretString::from("bench passphrase, not a secret".to_owned());
    let clock = ManualClock::new(SystemClock.now_ms());
    let mut inst = Installation::init(&root, &pass, KdfParams::new(19 * 1024, 2, 1)?, Arc::new(clock.clone()))?;
    let mut ids: Vec<TenantId> = Vec::new();
    let mut rows = Vec::new();
    for &count in counts {
        let t = Instant::now();
        while (ids.len() as u64) < count {
            let name = TenantName::parse(&format!("clinic-{:04}", ids.len()))?;
            let row = inst.create_tenant(&name, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
            let mut store = inst.open_tenant(name.as_str())?;
            seed::seed(&mut store, PATIENTS, clock.now_ms(), &mut std::io::sink())?;
            ids.push(row.id);
        }
        let _ = writeln!(out, "  {count} tenants of {PATIENTS} patients ready ({:.1} s)", t.elapsed().as_secs_f64());

        // A cold server: the pool starts empty; each tenant opens on its first request.
        let t = Instant::now();
        let pool = inst.tenant_pool()?;
        let pool_start_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let (mut first, mut cold_open) = (Vec::with_capacity(ids.len()), Vec::with_capacity(ids.len()));
        for (i, id) in ids.iter().enumerate() {
            clock.advance_ms(1);
            let (got, all) = timed_open(&pool, id, seed::phone(i as u64 % PATIENTS), clock.now_ms())?;
            first.push(all);
            cold_open.push(got);
        }
        let first_total_ms = t.elapsed().as_secs_f64() * 1e3;
        first.sort_by(f64::total_cmp);
        cold_open.sort_by(f64::total_cmp);

        let mut rng = 0x2545_F491_4F6C_DD1D_u64;
        let mut warm = Vec::with_capacity(opens);
        for _ in 0..opens {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let tenant = &ids[(rng % ids.len() as u64) as usize];
            clock.advance_ms(1);
            warm.push(open(&pool, tenant, seed::phone((rng >> 20) % PATIENTS), clock.now_ms())?);
        }
        let total: f64 = warm.iter().sum();
        warm.sort_by(f64::total_cmp);
        rows.push(TenantRow {
            tenants: count,
            pool_start_ms,
            first_total_ms,
            first_p99_ms: pct(&first, 0.99),
            opens_per_s: warm.len() as f64 / (total / 1e3),
            p50_ms: pct(&warm, 0.5),
            p99_ms: pct(&warm, 0.99),
            rss_mib: rss_mib(None),
            prewarm_ms: 0.0,
            warmed_first_p50_ms: 0.0,
            warmed_first_p99_ms: 0.0,
            cold_open_p50_ms: pct(&cold_open, 0.5),
            cold_first_p50_ms: pct(&first, 0.5),
        });
        drop(pool);

        // `serve --prewarm`: a fresh pool warms every tenant, then each gets its first request.
        let pool = inst.tenant_pool()?;
        let t = Instant::now();
        pool.prewarm(PREWARM_THREADS, clock.now_ms())?;
        let prewarm_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut warmed = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            clock.advance_ms(1);
            warmed.push(open(&pool, id, seed::phone((i as u64 + 7) % PATIENTS), clock.now_ms())?);
        }
        warmed.sort_by(f64::total_cmp);
        if let Some(row) = rows.last_mut() {
            row.prewarm_ms = prewarm_ms;
            row.warmed_first_p50_ms = pct(&warmed, 0.5);
            row.warmed_first_p99_ms = pct(&warmed, 0.99);
        }
        drop(pool);
    }
    Ok(rows)
}

/// The table, with each count's mean open time against one tenant's.
pub fn table(rows: &[TenantRow]) -> String {
    let mut s = String::from(
        "| tenants | pool start ms | first request to every tenant ms (p99 each) | cold first request p50 ms (of it, the store's open) | warm opens/s | p50 ms | p99 ms | growth vs first row | RSS MiB | prewarm of all ms | first request after prewarm p50 / p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let base = rows.first().map(|r| r.opens_per_s).unwrap_or(1.0);
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.2} | {:.0} ({:.2}) | {:.3} ({:.3}) | {:.0} | {:.3} | {:.3} | {:.2}x | {:.0} | {:.0} | {:.3} / {:.3} |\n",
            r.tenants,
            r.pool_start_ms,
            r.first_total_ms,
            r.first_p99_ms,
            r.cold_first_p50_ms,
            r.cold_open_p50_ms,
            r.opens_per_s,
            r.p50_ms,
            r.p99_ms,
            base / r.opens_per_s,
            r.rss_mib,
            r.prewarm_ms,
            r.warmed_first_p50_ms,
            r.warmed_first_p99_ms
        ));
    }
    s
}
