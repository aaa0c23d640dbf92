//! `throughline bench --bridge`: Vapi's assistant-request through the real
//! bridge, next to the direct mTLS session open it makes, in the same run
//! on the same core: both real processes of this binary (`serve`, `bridge`)
//! on a temporary installation, the same number of calls at the same
//! concurrency, each call a new number and a new call id. Figures only.

use std::io::{BufRead as _, BufReader};
use std::sync::Arc;
use std::time::Instant;

use crate::bench;
use anyhow::{Context as _, bail};
use policy::{Channel, StateTtl};
use secrecy::SecretString;
use serde_json::json;
use server::{Installation, SystemClock, tls};
use store::ids::TenantName;

const PASSPHRASE: &str = "bench passphrase, not a secret";
const SECRET: &str = "bench-vapi-secret";

pub(super) struct Child(std::process::Child);

impl From<std::process::Child> for Child {
    fn from(c: std::process::Child) -> Self {
        Child(c)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Starts this binary with `args`; returns it and the port it printed.
pub(super) fn start(data: &std::path::Path, args: &[&str]) -> anyhow::Result<(Child, u16)> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("THROUGHLINE_PASSPHRASE", PASSPHRASE)
        .env("THROUGHLINE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("start {args:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let child = Child(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(port) = line.trim().rsplit(':').next().and_then(|p| p.parse().ok()) else {
        bail!("{args:?} did not start: {line:?}");
    };
    Ok((child, port))
}

/// p50, p99 (ms) and calls/s of `n` requests made by `concurrency` clients.
async fn measure<F, Fut>(n: usize, concurrency: usize, call: F) -> anyhow::Result<(f64, f64, f64)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (c..n).step_by(concurrency) {
                let t = Instant::now();
                call(i).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok((bench::percentile(&all, 0.50), bench::percentile(&all, 0.99), n as f64 / secs))
}

pub fn run(calls: usize, concurrency: usize) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("throughline-bench-bridge-").tempdir()?;
    let data = tmp.path().join("data");
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1)?;
    let mut inst = Installation::init(&data, &SecretString::from(PASSPHRASE.to_owned()), kdf, Arc::new(SystemClock))?;
    inst.create_tenant(&TenantName::parse("bench")?, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
    let direct = inst.issue_channel_cert("bench", Channel::Voice, 30)?;
    let bridged = inst.issue_channel_cert("bench", Channel::Voice, 30)?;
    let ca_pem = inst.ca()?.cert_pem().to_owned();
    drop(inst);

    let certs = tmp.path().join("bridge-voice");
    std::fs::create_dir_all(&certs)?;
    std::fs::write(certs.join("ca.crt"), &ca_pem)?;
    std::fs::write(certs.join("client.crt"), &bridged.cert_pem)?;
    std::fs::write(certs.join("client.key"), bridged.key_pem.as_bytes())?;
    std::fs::write(tmp.path().join("vapi.secret"), SECRET)?;
    let listener = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    std::fs::write(tmp.path().join("bridge.crt"), listener.cert.pem())?;
    std::fs::write(tmp.path().join("bridge.key"), listener.signing_key.serialize_pem())?;

    let (_core, core_port) = start(&data, &["serve", "--listen", "127.0.0.1:0"])?;
    let config = tmp.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "core = \"https://localhost:{core_port}\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"bridge.crt\"\n\
             tls_key = \"bridge.key\"\npublic_url = \"https://bridge.example\"\n[[route]]\nname = \"bench\"\n\
             platform = \"vapi\"\ncerts = \"bridge-voice\"\nsecret_file = \"vapi.secret\"\nassistant_id = \"asst\"\n"
        ),
    )?;
    let config = config.to_str().context("utf-8 path")?.to_owned();
    let (_bridge, bridge_port) = start(&data, &["bridge", "--config", &config])?;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let core_http = reqwest::Client::builder()
        .use_preconfigured_tls(tls::client_config(&ca_pem, &direct.cert_pem, &direct.key_pem)?)
        .build()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(listener.cert.der().clone())?;
    let bridge_http = reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
        .build()?;
    println!(
        "assistant-request through the bridge vs the direct mTLS open it makes: {calls} calls each, {concurrency} at a time, each a new number and call id"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async move {
        let open = move |offset: usize| {
            let http = core_http.clone();
            move |i: usize| {
                let http = http.clone();
                async move {
                    let body = json!({"identifiers": {"phone": bench::phone((offset + i) as u64)}, "external_ref": format!("direct-{offset}-{i}")});
                    let res = http.post(format!("https://localhost:{core_port}/v1/sessions")).json(&body).send().await?;
                    anyhow::ensure!(res.status().is_success(), "direct open: {}", res.status());
                    Ok(())
                }
            }
        };
        let via_bridge = move |offset: usize| {
            let http = bridge_http.clone();
            move |i: usize| {
                let http = http.clone();
                async move {
                    let body = json!({"message": {"type": "assistant-request",
                        "call": {"id": format!("call-{offset}-{i}"), "customer": {"number": bench::phone((offset + i) as u64)}}}});
                    let res = http
                        .post(format!("https://localhost:{bridge_port}/vapi/bench"))
                        .header("x-vapi-secret", SECRET)
                        .json(&body)
                        .send()
                        .await?;
                    anyhow::ensure!(res.status().is_success(), "assistant-request: {}", res.status());
                    let v: serde_json::Value = res.json().await?;
                    anyhow::ensure!(v["assistantOverrides"]["variableValues"]["throughline_session"].is_string(), "no session: {v}");
                    Ok(())
                }
            }
        };
        // Warm both paths (connections, tenant open), then measure them in turn.
        measure(concurrency * 4, concurrency, open(10_000_000)).await?;
        measure(concurrency * 4, concurrency, via_bridge(20_000_000)).await?;
        println!("{:<34} {:>9} {:>9} {:>9}", "path", "p50 ms", "p99 ms", "calls/s");
        let mut rows = Vec::new();
        for round in 0..2 {
            let d = measure(calls, concurrency, open(round * 1_000_000)).await?;
            let b = measure(calls, concurrency, via_bridge(round * 1_000_000 + 500_000)).await?;
            println!("{:<34} {:>9.2} {:>9.2} {:>9.0}", format!("direct POST /v1/sessions (round {})", round + 1), d.0, d.1, d.2);
            println!("{:<34} {:>9.2} {:>9.2} {:>9.0}", format!("bridge assistant-request (round {})", round + 1), b.0, b.1, b.2);
            rows.push((d, b));
        }
        for (i, (d, b)) in rows.iter().enumerate() {
            println!("round {}: bridge / direct: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x", i + 1, b.0 / d.0, b.1 / d.1, b.2 / d.2);
        }
        anyhow::Ok(())
    })
}
