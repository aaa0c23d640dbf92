//! `throughline bench --http`: the real server (a child process) under a
//! realistic load from one process: at 1, 8 and 64 tenants by default, each
//! seeded with 50,000 patients, every call to a random tenant and patient
//! over mutual TLS keep-alive; first a voice-call mix (open, confirm, turns,
//! state), then opens alone. With `--postgres`, the same session open on
//! the PostgreSQL peer (`peer`) at the same concurrency, in the same run,
//! and the ratios per request and per core. Figures only, never asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench;
use policy::{Channel, StateTtl};
use secrecy::SecretString;
use server::{Installation, SystemClock, tls};
use store::ids::TenantName;

use super::bench_calls::{Calls, Mix};
use super::bench_load::{KINDS, drive};
use super::bench_server::{Server, cpu_seconds};

pub(super) const PASSPHRASE: &str = "bench passphrase, not a secret";

/// Options of `bench --http`.
pub struct HttpOptions {
    pub tenants: Vec<u64>,
    pub patients: u64,
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// `auto` (a PostgreSQL 15 of its own), a DSN, or none.
    pub postgres: Option<String>,
}

struct Tenant {
    name: String,
    cert_pem: String,
    key_pem: zeroize::Zeroizing<String>,
}

pub fn run(o: &HttpOptions) -> anyhow::Result<()> {
    let most = o.tenants.iter().copied().max().unwrap_or(1).max(1);
    println!(
        "== bench --http: {} clients, {:?} per load after {:?} of warm-up, tenants {:?}, {} patients each; {} cores",
        o.clients,
        o.duration,
        o.warmup,
        o.tenants,
        o.patients,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let tmp = tempfile::Builder::new().prefix("throughline-bench-http-").tempdir()?;
    let data = tmp.path().join("data");
    let started = Instant::now();
    let (ca_pem, tenants) = install(&data, most, o.patients)?;
    println!("   seeded {most} tenants in {:.1} s", started.elapsed().as_secs_f64());

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let me = std::process::id();
    let mut rows = Vec::new();
    let mut opens = Vec::new();
    for &count in &o.tenants {
        let server = Server::start(&data, PASSPHRASE, &[])?;
        let mut clients = Vec::new();
        for t in tenants.iter().take(count as usize) {
            let tls = tls::client_config(&ca_pem, &t.cert_pem, &t.key_pem)?;
            clients.push(reqwest::Client::builder().use_preconfigured_tls(tls).build()?);
        }
        for mix in [Mix::Opens, Mix::Call] {
            let calls = Arc::new(Calls { tenants: clients.clone(), base: server.base(), patients: o.patients, mix });
            let pid = server.pid();
            let cpu = move || (cpu_seconds(pid), cpu_seconds(me));
            let out = drive(&runtime, calls, o.clients, o.warmup, o.duration, cpu)?;
            let name = if mix == Mix::Call { "voice-call mix" } else { "session opens" };
            let mut these = vec![out.row(name, count, o.clients)];
            if mix == Mix::Call {
                for (kind, h) in KINDS.iter().zip(&out.per_kind) {
                    these.push(format!(
                        "|   {kind} | | | {:.0} | {:.2} | {:.2} | {:.2} | | | | |",
                        h.len() as f64 / out.seconds,
                        h.value_at_quantile(0.5) as f64 / 1e3,
                        h.value_at_quantile(0.99) as f64 / 1e3,
                        h.value_at_quantile(0.999) as f64 / 1e3
                    ));
                }
            } else {
                opens.push((count, out.per_second(), out.cpu_ms_per_request()));
            }
            println!("{}", these.join("\n"));
            rows.extend(these);
        }
    }
    let mut ratios = Vec::new();
    if let Some(pg) = &o.postgres {
        super::bench_peer::run(o, most as u32, pg, &runtime, &opens, &mut rows, &mut ratios)?;
    }
    println!(
        "\n| load | tenants | clients | requests/s | p50 ms | p99 ms | p99.9 ms | CPU ms per request (server) | cores (server) | driver CPU ms per request | errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        println!("{r}");
    }
    for r in &ratios {
        println!("{r}");
    }
    Ok(())
}

/// A temporary installation of `count` tenants (`t1`…), each with a voice
/// certificate and `patients` seeded patients with a date of birth on file.
fn install(data: &std::path::Path, count: u64, patients: u64) -> anyhow::Result<(String, Vec<Tenant>)> {
    let passphrase = SecretString::from(PASSPHRASE.to_owned());
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1)?;
    let mut inst = Installation::init(data, &passphrase, kdf, Arc::new(SystemClock))?;
    let mut tenants = Vec::new();
    for t in 1..=count {
        let name = format!("t{t}");
        inst.create_tenant(&TenantName::parse(&name)?, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
        let cert = inst.issue_channel_cert(&name, Channel::Voice, 30)?;
        tenants.push(Tenant { name, cert_pem: cert.cert_pem, key_pem: cert.key_pem });
    }
    let now = server::Clock::now_ms(&SystemClock);
    // Stores are opened here (the installation is one thread's) and seeded on two.
    let stores = tenants.iter().map(|t| inst.open_tenant(&t.name)).collect::<Result<Vec<_>, _>>()?;
    let queue = std::sync::Mutex::new(stores);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let Some(mut store) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else {
                            return Ok(());
                        };
                        bench::seed_with_dob(&mut store, patients, now, &mut std::io::sink())?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a seeding thread panicked"))??;
        }
        Ok(())
    })?;
    Ok((inst.ca()?.cert_pem().to_owned(), tenants))
}
