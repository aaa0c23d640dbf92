//! `throughline bench --lmtp N`: messages per second into the core through
//! the bridge's LMTP listener, next to `POST /v1/email/inbound` direct, in
//! the same run on the same core (both real processes of this binary), for
//! 1 KiB and 100 KiB messages. Every message is new (its own Message-ID and
//! sender). Figures only.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use policy::{Channel, StateTtl};
use secrecy::SecretString;
use server::{Installation, SystemClock, tls};
use store::ids::TenantName;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::bench_bridge::{Child, start};

const PASSPHRASE: &str = "bench passphrase, not a secret";
const DOMAIN: &str = "intake.bench.example";

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Patient {i} <p{i}@example.com>\r\nTo: frontdesk@{DOMAIN}\r\nSubject: Appointment\r\n\
         Message-ID: <bench-{i}-{size}@example.com>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    let line = b"Could we move my appointment to another day next week, please?\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

async fn reply(r: &mut BufReader<tokio::io::ReadHalf<tokio::net::TcpStream>>) -> anyhow::Result<String> {
    loop {
        let mut line = String::new();
        ensure!(r.read_line(&mut line).await? > 0, "the LMTP server closed");
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line);
        }
    }
}

/// `n` messages over `conns` LMTP connections, one transaction at a time each.
async fn over_lmtp(port: u16, n: usize, conns: usize, size: usize, offset: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            let (r, mut w) = tokio::io::split(stream);
            let mut r = BufReader::new(r);
            reply(&mut r).await?;
            w.write_all(b"LHLO bench\r\n").await?;
            reply(&mut r).await?;
            for i in (c..n).step_by(conns) {
                let mut tx =
                    format!("MAIL FROM:<p{i}@example.com>\r\nRCPT TO:<frontdesk@{DOMAIN}>\r\nDATA\r\n").into_bytes();
                tx.extend_from_slice(&message(offset + i, size));
                tx.extend_from_slice(b".\r\n");
                w.write_all(&tx).await?;
                for _ in 0..3 {
                    reply(&mut r).await?;
                }
                let last = reply(&mut r).await?;
                ensure!(last.starts_with("250"), "delivery: {last}");
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn direct(
    http: reqwest::Client,
    base: String,
    n: usize,
    conns: usize,
    size: usize,
    offset: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(conns) {
                let res = http
                    .post(format!("{base}/v1/email/inbound"))
                    .header("content-type", "message/rfc822")
                    .body(message(offset + i, size))
                    .send()
                    .await?;
                ensure!(res.status().is_success(), "inbound: {}", res.status());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

pub fn run(n: usize, conns: usize) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("throughline-bench-lmtp-").tempdir()?;
    let data = tmp.path().join("data");
    let kdf = crypto::KdfParams::new(19 * 1024, 2, 1)?;
    let mut inst = Installation::init(&data, &SecretString::from(PASSPHRASE.to_owned()), kdf, Arc::new(SystemClock))?;
    inst.create_tenant(&TenantName::parse("bench")?, StateTtl::default(), &continuity::calendar::ClinicZone::utc())?;
    let direct_cert = inst.issue_channel_cert("bench", Channel::Email, 30)?;
    let bridged = inst.issue_channel_cert("bench", Channel::Email, 30)?;
    let ca_pem = inst.ca()?.cert_pem().to_owned();
    drop(inst);
    let certs = tmp.path().join("bridge-email");
    std::fs::create_dir_all(&certs)?;
    std::fs::write(certs.join("ca.crt"), &ca_pem)?;
    std::fs::write(certs.join("client.crt"), &bridged.cert_pem)?;
    std::fs::write(certs.join("client.key"), bridged.key_pem.as_bytes())?;

    let (_core, core_port): (Child, u16) = start(&data, &["serve", "--listen", "127.0.0.1:0"])?;
    let lmtp_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = tmp.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "core = \"https://localhost:{core_port}\"\n[lmtp]\nlisten = \"127.0.0.1:{lmtp_port}\"\n\
             [[mailbox]]\ndomain = \"{DOMAIN}\"\ncerts = \"bridge-email\"\n"
        ),
    )?;
    let (_bridge, printed) = start(&data, &["bridge", "--config", config.to_str().context("utf-8 path")?])?;
    if printed != lmtp_port {
        bail!("the bridge listens on {printed}, not {lmtp_port}");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls::client_config(&ca_pem, &direct_cert.cert_pem, &direct_cert.key_pem)?)
        .build()?;
    let base = format!("https://localhost:{core_port}");
    println!(
        "inbound email: {n} new messages per size and path, {conns} connections; the core's default evidence (senders are claims: each message is held for review)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async move {
        direct(http.clone(), base.clone(), conns * 4, conns, 1024, 90_000_000).await?;
        over_lmtp(lmtp_port, conns * 4, conns, 1024, 91_000_000).await?;
        println!("{:<10} {:>22} {:>18} {:>8}", "size", "direct inbound msg/s", "LMTP msg/s", "ratio");
        for (k, size) in [1024usize, 100 * 1024].into_iter().enumerate() {
            let d = direct(http.clone(), base.clone(), n, conns, size, k * 10_000_000).await?;
            let l = over_lmtp(lmtp_port, n, conns, size, k * 10_000_000 + 5_000_000).await?;
            println!("{:<10} {:>22.0} {:>18.0} {:>8.2}", format!("{} KiB", size / 1024), d, l, l / d);
        }
        anyhow::Ok(())
    })
}
