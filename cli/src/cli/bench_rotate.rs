//! `throughline bench --rotate N`: `keys rotate-tenant` on a tenant seeded
//! with N patients (a phone, a conversation, a call with two turns, a state
//! key each), next to a backup of the same installation taken just before:
//! both read every page of the store and write a keyed copy, so the ratio
//! says what the re-keying itself (every patient key unwrapped and
//! re-wrapped, every identifier decrypted and re-indexed) adds.

use std::sync::Arc;
use std::time::Instant;

use crate::bench;
use anyhow::Context as _;
use policy::StateTtl;
use secrecy::SecretString;
use server::{Installation, SystemClock};
use store::ids::TenantName;

pub fn run(patients: u64) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("throughline-bench-rotate-").tempdir()?;
    let data = tmp.path().join("data");
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1)?;
    let passphrase = SecretString::from("bench passphrase, not a secret".to_owned());
    let mut inst = Installation::init(&data, &passphrase, kdf, Arc::new(SystemClock))?;
    inst.create_tenant(&TenantName::parse("bench")?, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
    {
        let mut store = inst.open_tenant("bench")?;
        bench::seed_patients(&mut store, patients, inst.now_ms(), &mut std::io::sink())?;
        store.checkpoint_truncate()?;
    }
    let db = std::fs::read_dir(data.join("tenants"))?
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "db"))
        .context("the tenant's store")?
        .path();
    let bytes = std::fs::metadata(&db)?.len();

    let started = Instant::now();
    inst.backup(&tmp.path().join("before.tlbackup"), &|_, _| {})?;
    let backup_ms = started.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let done = inst.rotate_tenant_key("bench", None)?;
    let rotate_ms = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(done.patients as u64 == patients, "re-wrapped {} of {patients} patient keys", done.patients);
    anyhow::ensure!(inst.open_tenant("bench")?.integrity_check()? == "ok", "the rotated store is damaged");

    println!(
        "bench --rotate {patients}: store {:.1} MiB; keys rotate-tenant {rotate_ms:.0} ms ({:.1} µs a patient); \
         backup of the same installation {backup_ms:.0} ms; ratio {:.2}x",
        bytes as f64 / (1024.0 * 1024.0),
        rotate_ms * 1e3 / patients.max(1) as f64,
        rotate_ms / backup_ms.max(0.001)
    );
    Ok(())
}
