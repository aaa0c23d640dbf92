//! `throughline bench --soak DURATION`: the real server (this binary's
//! `serve`, a child process) on a temporary installation, held under a
//! steady mixed load over mutual TLS (session open, turn append, state put)
//! for the duration. Every interval it prints throughput, errors, latency
//! percentiles and the server's resident memory, so a leak or a slowdown
//! shows as a trend. Figures only; nothing is asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bench;
use policy::{Channel, StateTtl};
use secrecy::SecretString;
use serde_json::json;
use server::{Installation, SystemClock, tls};
use store::ids::TenantName;

const PASSPHRASE: &str = "soak passphrase, not a secret";

pub struct SoakOptions {
    pub duration: Duration,
    pub clients: usize,
    pub interval: Duration,
}

/// Sends one request; records its latency and whether it succeeded.
async fn timed(
    req: reqwest::RequestBuilder,
    lat: &std::sync::Mutex<Vec<f64>>,
    ok: &AtomicU64,
    errors: &AtomicU64,
) -> Option<serde_json::Value> {
    let t = Instant::now();
    let reply = match req.send().await {
        Ok(r) if r.status().is_success() => Some(r.json::<serde_json::Value>().await.unwrap_or_default()),
        _ => None,
    };
    if let Ok(mut l) = lat.lock() {
        l.push(t.elapsed().as_secs_f64() * 1e3);
    }
    match reply {
        Some(v) => {
            ok.fetch_add(1, Ordering::Relaxed);
            Some(v)
        }
        None => {
            errors.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

pub fn run(opts: &SoakOptions) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("throughline-soak-").tempdir()?;
    let data = tmp.path().join("data");
    let passphrase = SecretString::from(PASSPHRASE.to_owned());
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1)?;
    let mut inst = Installation::init(&data, &passphrase, kdf, Arc::new(SystemClock))?;
    inst.create_tenant(&TenantName::parse("soak")?, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
    let cert = inst.issue_channel_cert("soak", Channel::Voice, 30)?;
    let ca_pem = inst.ca()?.cert_pem().to_owned();
    drop(inst);

    let server = super::bench_server::Server::start(&data, PASSPHRASE, &[])?;
    let pid = server.pid();
    let base = server.base();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let tls = tls::client_config(&ca_pem, &cert.cert_pem, &cert.key_pem)?;
    let http = reqwest::Client::builder().use_preconfigured_tls(tls).build()?;
    println!(
        "soak: {} clients, mixed load (open, turn, state put) over mTLS keep-alive, {:?}, report every {:?}",
        opts.clients, opts.duration, opts.interval
    );
    println!(
        "{:>7} {:>9} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "t (s)", "ops/s", "errors", "p50 ms", "p99 ms", "RSS MiB", "store MiB"
    );
    let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<f64>::new()));
    let mut rss = Vec::new();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..opts.clients {
            let (http, base, ok, errors, stop, lat) =
                (http.clone(), base.clone(), ok.clone(), errors.clone(), stop.clone(), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = c as u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 7919;
                    let phone = crate::bench::phone(n % 50_000);
                    let open = http
                        .post(format!("{base}/v1/sessions"))
                        .json(&json!({"identifiers": {"phone": phone}, "evidence": {"caller_id_attestation": "A"}}));
                    let Some(reply) = timed(open, &lat, &ok, &errors).await else { continue };
                    let Some(sid) = reply["session_id"].as_str().map(str::to_owned) else { continue };
                    let turn = json!({"speaker": "agent", "text": "How can I help you today?"});
                    timed(http.post(format!("{base}/v1/sessions/{sid}/turns")).json(&turn), &lat, &ok, &errors).await;
                    let state = http
                        .put(format!("{base}/v1/sessions/{sid}/state/pending_booking_date"))
                        .json(&json!({"value": "Tuesday"}));
                    timed(state, &lat, &ok, &errors).await;
                }
            }));
        }
        let started = Instant::now();
        let mut last_ok = 0;
        while started.elapsed() < opts.duration {
            tokio::time::sleep(opts.interval.min(opts.duration.saturating_sub(started.elapsed()))).await;
            let now_ok = ok.load(Ordering::Relaxed);
            let mut l = latencies.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
            l.sort_by(f64::total_cmp);
            let r = bench::rss_mib(Some(pid));
            rss.push(r);
            let store: u64 = std::fs::read_dir(data.join("tenants"))
                .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
                .unwrap_or(0);
            println!(
                "{:>7.0} {:>9.0} {:>8} {:>8.2} {:>8.2} {:>9.1} {:>10.1}",
                started.elapsed().as_secs_f64(),
                (now_ok - last_ok) as f64 / opts.interval.as_secs_f64(),
                errors.load(Ordering::Relaxed),
                bench::percentile(&l, 0.50),
                bench::percentile(&l, 0.99),
                r,
                store as f64 / 1_048_576.0
            );
            last_ok = now_ok;
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
    });
    let (first, last) = (rss.get(1).or(rss.first()).copied().unwrap_or(0.0), rss.last().copied().unwrap_or(0.0));
    let max = rss.iter().copied().fold(0.0, f64::max);
    println!(
        "soak done: {} requests ok, {} errors; server RSS {first:.1} MiB after the first interval, {last:.1} MiB at the end, {max:.1} MiB at most",
        ok.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed)
    );
    drop(server);
    Ok(())
}
