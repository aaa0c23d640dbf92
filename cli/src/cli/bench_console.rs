//! `throughline bench --console N`: the staff console's patient page for a
//! patient with N turns (rendered for a clinician, who is shown every turn's
//! text), next to the API's context read of the same patient in the same
//! run, on the real server (`serve --console-listen`) of a temporary
//! installation; then the audit records and bytes a day of front-desk work
//! adds. Figures only.

use std::io::{BufRead as _, BufReader};
use std::sync::Arc;
use std::time::Instant;

use crate::bench;
use anyhow::{Context as _, bail};
use policy::{Channel, StateTtl};
use secrecy::SecretString;
use serde_json::json;
use server::{Clock as _, Installation, SystemClock, tls};
use store::ids::{CustomerId, TenantName};

const PASSPHRASE: &str = "bench passphrase, not a secret";
const PASSWORD: &str = "bench staff password";

/// `serve` with a console; returns it, the API port and the console port.
fn start(data: &std::path::Path) -> anyhow::Result<(super::bench_bridge::Child, u16, u16)> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--console-listen", "127.0.0.1:0"])
        .env("THROUGHLINE_PASSPHRASE", PASSPHRASE)
        .env("THROUGHLINE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().context("stdout")?);
    let child = super::bench_bridge::Child::from(child);
    let mut ports = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line)?;
        let Some(port) = line.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
            bail!("serve did not start: {line:?}");
        };
        ports.push(port);
    }
    Ok((child, ports[0], ports[1]))
}

/// A form body, as a browser encodes it.
fn form_body(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (bench::percentile(&ms, 0.50), bench::percentile(&ms, 0.99))
}

pub fn run(turns: u32, reads: usize) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("throughline-bench-console-").tempdir()?;
    let data = tmp.path().join("data");
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1)?;
    let mut inst = Installation::init(&data, &SecretString::from(PASSPHRASE.to_owned()), kdf, Arc::new(SystemClock))?;
    inst.create_tenant(&TenantName::parse("bench")?, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
    let chat = inst.issue_channel_cert("bench", Channel::Chat, 30)?;
    let ca_pem = inst.ca()?.cert_pem().to_owned();
    let cal = inst.add_staff("bench", "cal@bench.example", console::Role::Clinician, false, PASSWORD)?.staff_id;
    let ana = inst.add_staff("bench", "ana@bench.example", console::Role::FrontDesk, false, PASSWORD)?.staff_id;
    let (_serve, api_port, console_port) = start(&data)?;

    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = reqwest::Client::builder()
        .use_preconfigured_tls(tls::client_config(&ca_pem, &chat.cert_pem, &chat.key_pem)?)
        .build()?;
    let browser = || -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(tls::anonymous_client_config(&ca_pem)?)
            .redirect(reqwest::redirect::Policy::none())
            .build()?)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async move {
        let base = format!("https://localhost:{api_port}");
        let post = |path: String, body: serde_json::Value| {
            let api = api.clone();
            async move {
                let res = api.post(path).json(&body).send().await?;
                anyhow::ensure!(res.status().is_success(), "{}", res.status());
                anyhow::Ok(res.json::<serde_json::Value>().await?)
            }
        };
        // The patient: intake, then `turns` turns, alternating speakers.
        let open = post(format!("{base}/v1/sessions"), json!({"identifiers": {"phone": bench::phone(1)}})).await?;
        let sid = open["session_id"].as_str().context("session")?.to_owned();
        let intake = json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"});
        let res = api.patch(format!("{base}/v1/sessions/{sid}/customer")).json(&intake).send().await?;
        anyhow::ensure!(res.status().is_success(), "intake: {}", res.status());
        let seeding = Instant::now();
        for i in 0..turns {
            let speaker = if i % 2 == 0 { "patient" } else { "agent" };
            let text = format!("turn {i}: a sentence of about the length people say on a call, give or take.");
            post(format!("{base}/v1/sessions/{sid}/turns"), json!({"speaker": speaker, "text": text})).await?;
        }
        println!("seeded one patient with {turns} turns in {:.1} s", seeding.elapsed().as_secs_f64());
        let ctx = post(format!("{base}/v1/sessions"), json!({"identifiers": {"phone": bench::phone(1)}})).await?;
        let sid = ctx["session_id"].as_str().context("session")?.to_owned();
        let ctx = post(format!("{base}/v1/sessions/{sid}/identity/confirm"), json!({"date_of_birth": "1985-03-14"})).await?;
        let customer = ctx["customer_id"].as_str().context("customer")?.to_owned();
        inst.assign_patient("bench", &cal, &CustomerId::parse(&customer).context("id")?)?;

        let console = format!("https://localhost:{console_port}");
        let login = |who: String| {
            let console = console.clone();
            let code = inst.danger_staff_totp_at(&who, SystemClock.now_ms());
            let http = browser();
            let email = if who == cal { "cal@bench.example" } else { "ana@bench.example" };
            async move {
                let http = http?;
                let form = [("email", email), ("password", PASSWORD), ("code", &code?)];
                let res = http.post(format!("{console}/login")).header("origin", &console)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&form))
                    .send()
                    .await?;
                let cookie = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).context("no session cookie")?;
                anyhow::Ok((http, cookie.split(';').next().unwrap_or_default().to_owned()))
            }
        };
        let (http, cookie) = login(cal.clone()).await?;
        let page = format!("{console}/patients/{customer}");
        let mut page_ms = Vec::new();
        let mut ctx_ms = Vec::new();
        let mut bytes = 0;
        for round in 0..reads + 20 {
            let t = Instant::now();
            let res = http.get(&page).header("cookie", &cookie).send().await?;
            anyhow::ensure!(res.status().is_success(), "patient page: {}", res.status());
            bytes = res.bytes().await?.len();
            let page_t = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let res = api.get(format!("{base}/v1/sessions/{sid}/context")).send().await?;
            anyhow::ensure!(res.status().is_success(), "context: {}", res.status());
            res.bytes().await?;
            if round >= 20 {
                page_ms.push(page_t);
                ctx_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let (p50, p99) = stats(page_ms);
        let (c50, c99) = stats(ctx_ms);
        println!("{:<58} {:>8} {:>8}", "read, one at a time", "p50 ms", "p99 ms");
        println!("{:<58} {:>8.2} {:>8.2}", format!("console patient page, {turns} turns shown ({} KiB)", bytes / 1024), p50, p99);
        println!("{:<58} {:>8.2} {:>8.2}", "API context read of the same patient (10 recent turns)", c50, c99);
        println!("patient page / context read: p50 {:.2}x, p99 {:.2}x", p50 / c50, p99 / c99);

        // A front-desk day: 80 searches, 80 patient pages, 40 queue views.
        let before = inst.open_tenant("bench")?.audit_chain()?;
        let (desk, cookie) = login(ana.clone()).await?;
        let search_page = desk.get(format!("{console}/search")).header("cookie", &cookie).send().await?.text().await?;
        let csrf = search_page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).context("csrf")?.to_owned();
        let phone = bench::phone(1);
        for _ in 0..80 {
            let form = [("csrf", csrf.as_str()), ("kind", "phone"), ("q", phone.as_str())];
            let res = desk.post(format!("{console}/search")).header("cookie", &cookie).header("origin", &console)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(&form))
                    .send()
                    .await?;
            anyhow::ensure!(res.status().is_success(), "search: {}", res.status());
            let res = desk.get(&page).header("cookie", &cookie).send().await?;
            anyhow::ensure!(res.status().is_success(), "front-desk page: {}", res.status());
        }
        for _ in 0..40 {
            desk.get(format!("{console}/queue")).header("cookie", &cookie).send().await?.bytes().await?;
        }
        let after = inst.open_tenant("bench")?.audit_chain()?;
        let added = &after[before.len()..];
        let jsonl: usize = added.iter().map(|(r, h)| audit::export::to_jsonl_line(r, h).len() + 1).sum();
        println!(
            "a front-desk day (80 searches, 80 patient pages, 40 queue views): {} audit records, {:.1} KiB as JSON Lines ({} bytes a record)",
            added.len(),
            jsonl as f64 / 1024.0,
            jsonl / added.len().max(1)
        );
        anyhow::Ok(())
    })
}
