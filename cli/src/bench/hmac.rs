//! `throughline bench --hmac`: SQLCipher's page authentication, HMAC-SHA512
//! (its default, and every store's today) against HMAC-SHA256, in one run:
//! each a fresh installation seeded alike, then session opens through the
//! server's tenant pool and group commit, one after another and from 16
//! threads at once, with this process's CPU time per open. Rounds alternate
//! (512, 256, 512, 256) so drift shows. SQLite's budget is held to 16 MiB,
//! so most page reads miss and decrypt. The round's installation is made in
//! its format (`set_new_store_hmac`), read back from the tenant's store.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use crypto::KdfParams;
use policy::StateTtl;
use secrecy::SecretString;

use super::{cpu_seconds, seed, tenants::open};
use server::clock::{Clock, SystemClock};
use server::{Error, Installation};
use store::ids::TenantName;

/// Threads of the concurrent half (their requests share group commits).
const THREADS: usize = 16;

/// SQLite's memory for the round, far under a 50,000-patient tenant (85 MB).
const MISS_BUDGET_MIB: u64 = 16;

#[derive(Clone, Debug)]
pub struct HmacRow {
    pub algorithm: String,
    pub sequential_per_s: f64,
    pub sequential_cpu_ms: f64,
    pub concurrent_per_s: f64,
    pub concurrent_cpu_ms: f64,
}

pub fn run(patients: u64, opens: usize, out: &mut dyn Write) -> Result<Vec<HmacRow>, Error> {
    let mut rows = Vec::new();
    use store::{PageHmac, new_store_hmac, set_new_store_hmac};
    let usual = new_store_hmac();
    for algorithm in [PageHmac::Sha512, PageHmac::Sha256, PageHmac::Sha512, PageHmac::Sha256] {
        set_new_store_hmac(algorithm);
        let round = round(algorithm, patients, opens, out);
        set_new_store_hmac(usual);
        rows.push(round?);
    }
    Ok(rows)
}

fn round(algorithm: store::PageHmac, patients: u64, opens: usize, out: &mut dyn Write) -> Result<HmacRow, Error> {
    let tmp = tempfile::tempdir().map_err(|source| Error::Io { path: "tempdir".into(), source })?;
    let root = tmp.path().join("data");
    let pass = SecretString::from("bench passphrase, not a secret".to_owned());
    let mut inst = Installation::init(&root, &pass, KdfParams::new(19 * 1024, 2, 1)?, Arc::new(SystemClock))?;
    let row = inst.create_tenant(
        &TenantName::parse("bench")?,
        StateTtl::default(),
        &continuity::calendar::ClinicZone::utc(),
    )?;
    {
        let mut store = inst.open_tenant("bench")?;
        let used = store.page_hmac()?;
        if used != algorithm {
            return Err(Error::Bench { message: format!("asked for {algorithm:?}, the store uses {used:?}") });
        }
        seed::seed(&mut store, patients, SystemClock.now_ms(), &mut std::io::sink())?;
    }
    // A budget far under the tenant's size: most page reads miss the cache
    // and decrypt, the case where the page HMAC's cost shows.
    let pool = inst.tenant_pool()?.with_store_memory_mib(MISS_BUDGET_MIB)?;
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    let mut draw = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        seed::phone(rng % patients)
    };
    // Warm: the pool's first open, and the pages of a few hundred opens.
    for _ in 0..200 {
        open(&pool, &row.id, draw(), SystemClock.now_ms())?;
    }
    let (t, cpu) = (Instant::now(), cpu_seconds(None));
    for _ in 0..opens {
        open(&pool, &row.id, draw(), SystemClock.now_ms())?;
    }
    let (seq_s, seq_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds(None) - cpu);
    let phones: Vec<Vec<String>> = (0..THREADS).map(|_| (0..opens / THREADS).map(|_| draw()).collect()).collect();
    let (t, cpu) = (Instant::now(), cpu_seconds(None));
    std::thread::scope(|s| -> Result<(), Error> {
        let workers: Vec<_> = phones
            .into_iter()
            .map(|mine| {
                let (pool, id) = (&pool, &row.id);
                s.spawn(move || mine.into_iter().try_for_each(|p| open(pool, id, p, SystemClock.now_ms()).map(|_| ())))
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| Error::Bench { message: "an open thread panicked".into() })??;
        }
        Ok(())
    })?;
    let (conc_s, conc_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds(None) - cpu);
    let done = (opens / THREADS * THREADS) as f64;
    let r = HmacRow {
        algorithm: algorithm.as_str().to_owned(),
        sequential_per_s: opens as f64 / seq_s,
        sequential_cpu_ms: seq_cpu * 1e3 / opens as f64,
        concurrent_per_s: done / conc_s,
        concurrent_cpu_ms: conc_cpu * 1e3 / done,
    };
    let _ = writeln!(
        out,
        "  {}: {:.0} opens/s one after another, {:.0}/s from {THREADS} threads",
        r.algorithm, r.sequential_per_s, r.concurrent_per_s
    );
    Ok(r)
}

/// The table, each row against the first SHA-512 round.
pub fn table(rows: &[HmacRow]) -> String {
    let mut s = String::from(
        "| round | page HMAC | opens/s, one after another | CPU ms per open | opens/s, 16 threads (group commit) | CPU ms per open | CPU per open vs first SHA-512 round (16 threads) |\n|---|---|---|---|---|---|---|\n",
    );
    let base = rows.first().map(|r| r.concurrent_cpu_ms).unwrap_or(1.0);
    for (i, r) in rows.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.3} | {:.0} | {:.3} | {:.2}x |\n",
            i + 1,
            r.algorithm,
            r.sequential_per_s,
            r.sequential_cpu_ms,
            r.concurrent_per_s,
            r.concurrent_cpu_ms,
            r.concurrent_cpu_ms / base
        ));
    }
    s
}
