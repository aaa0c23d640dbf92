//! `throughline bench`: session open measured side by side, in one run,
//! (a) as the raw SQLCipher statements it performs and (b) through the
//! service layer in-process, at several tenant sizes. Sequential, one
//! thread, every open committed with `synchronous=FULL`. Figures are
//! printed, never asserted. `tenants` measures the growth with the number
//! of tenants; the HTTP path is `scripts/bench-http.sh`.

mod hmac;
mod seed;
mod tenants;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crypto::KdfParams;
use policy::{Channel, StateTtl, TenantPolicy};
use secrecy::SecretString;

use continuity::{self, Actor, Offered, OpenRequest, TenantSettings};
use server::clock::{Clock, ManualClock, SystemClock};
use server::{Error, Installation};
use store::RawOpen;
use store::ids::{SessionId, TenantName};

pub use hmac::{run as run_hmac, table as hmac_table};
pub use seed::{dob, phone, seed as seed_patients, seed_with_dob};
pub use tenants::{run as run_tenants, table as tenants_table};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub patient_counts: Vec<u64>,
    pub opens: usize,
}

/// One measured path at one size.
#[derive(Clone, Debug)]
pub struct Row {
    pub patients: u64,
    pub path: &'static str,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn run(opts: &BenchOptions, out: &mut dyn Write) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for &patients in &opts.patient_counts {
        let tmp = tempfile::tempdir().map_err(|source| Error::Io { path: "tempdir".into(), source })?;
        let root = tmp.path().join("data");
        let pass = SecretString::from("bench passphrase, not a secret".to_owned());
        let clock = ManualClock::new(SystemClock.now_ms());
        let mut inst = Installation::init(&root, &pass, KdfParams::new(19 * 1024, 2, 1)?, Arc::new(clock.clone()))?;
        inst.create_tenant(
            &TenantName::parse("bench")?,
            StateTtl::default(),
            &continuity::calendar::ClinicZone::utc(),
        )?;
        let mut store = inst.open_tenant("bench")?;
        let _ = writeln!(out, "  seeding {patients} patients");
        let t = Instant::now();
        seed::seed(&mut store, patients, clock.now_ms(), out)?;
        let _ = writeln!(out, "    {:.1} s", t.elapsed().as_secs_f64());

        let settings = TenantSettings {
            policy: TenantPolicy::hipaa_default(),
            region: "US".into(),
            zone: continuity::calendar::ClinicZone::utc(),
            state_ttl: StateTtl::default(),
            recent_turns: 20,
            email: continuity::channels::EmailSettings::placeholder("bench"),
        };
        let actor = Actor { serial: "bench".into(), channel: Channel::Voice, peer: None };
        let mut raw = Vec::with_capacity(opts.opens);
        let mut bare = Vec::with_capacity(opts.opens);
        let mut service = Vec::with_capacity(opts.opens);
        // Each path opens its own randomly drawn patient (so neither warms the
        // page cache for the other), and which goes first alternates.
        let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
        let mut draw = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            phone(rng % patients)
        };
        for i in 0..opts.opens {
            let numbers = [draw(), draw(), draw()];
            let order = match i % 3 {
                0 => [0, 1, 2],
                1 => [1, 2, 0],
                _ => [2, 0, 1],
            };
            for path in order {
                clock.advance_ms(1);
                if path < 2 {
                    let with_audit = path == 0;
                    let bi = store.bench_blind_index("phone", &numbers[path]);
                    let sid = SessionId::generate();
                    let input = RawOpen { phone_bi: &bi, session_id: sid.as_str(), now: clock.now_ms(), with_audit };
                    let t = Instant::now();
                    store.bench_raw_open(&input)?;
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    if with_audit { raw.push(ms) } else { bare.push(ms) }
                } else {
                    let identifiers = Offered { phone: Some(numbers[2].clone()), ..Offered::default() };
                    let req = OpenRequest { identifiers, external_ref: None, evidence: Some(attested()) };
                    let t = Instant::now();
                    let ctx = continuity::open_session(&mut store, &settings, &actor, &req, clock.now_ms())
                        .map_err(|e| Error::Bench { message: e.to_string() })?;
                    service.push(t.elapsed().as_secs_f64() * 1e3);
                    if ctx.state.is_empty() {
                        return Err(Error::Bench { message: "service open returned no state".into() });
                    }
                }
            }
        }
        rows.push(summarise(patients, "raw SQLCipher", raw));
        rows.push(summarise(patients, "raw, no audit rows", bare));
        rows.push(summarise(patients, "service", service));
    }
    Ok(rows)
}

fn summarise(patients: u64, path: &'static str, mut ms: Vec<f64>) -> Row {
    ms.sort_by(f64::total_cmp);
    let total: f64 = ms.iter().sum();
    Row {
        patients,
        path,
        ops_per_s: ms.len() as f64 / (total / 1e3),
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
    }
}

/// The `p` quantile (0 to 1) of sorted values; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
}

/// CPU seconds (user + system) a process (`None`: this one) has used, from
/// `/proc/PID/stat` (in USER_HZ ticks, 100 a second on Linux).
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    // The fields after the command name, which may hold spaces: split at its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of a process (`None`: this one), in MiB, from /proc.
pub fn rss_mib(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The table: each path's throughput and latency, the service/raw ratio per
/// size, and each path's growth from the smallest to the largest size.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| patients | path | opens/s | p50 ms | p99 ms | vs raw (mean time) |\n|---|---|---|---|---|---|\n",
    );
    for group in rows.chunks(3) {
        if let [raw, ..] = group {
            for r in group {
                let ratio =
                    if std::ptr::eq(r, raw) { String::new() } else { format!("{:.2}x", raw.ops_per_s / r.ops_per_s) };
                s.push_str(&format!(
                    "| {} | {} | {:.0} | {:.3} | {:.3} | {ratio} |\n",
                    r.patients, r.path, r.ops_per_s, r.p50_ms, r.p99_ms
                ));
            }
        }
    }
    if let (Some(first), Some(last)) = (rows.chunks(3).next(), rows.chunks(3).last())
        && rows.len() > 3
    {
        for (a, b) in first.iter().zip(last) {
            s.push_str(&format!(
                "\ngrowth of mean time per open, {} -> {} patients, {}: {:.2}x",
                a.patients,
                b.patients,
                a.path,
                a.ops_per_s / b.ops_per_s
            ));
        }
        s.push('\n');
    }
    s
}

/// The bench's voice calls carry STIR/SHAKEN attestation A, as a
/// carrier-verified call would: caller ID is asserted.
fn attested() -> continuity::EvidenceRequest {
    continuity::EvidenceRequest { caller_id_attestation: Some("A".into()) }
}
