//! `throughline demo`: the product's story on a fresh, temporary installation.
//!
//! Today it shows the foundation and the serving core: a clinic's store is
//! created, a patient is written, the files are shown to hold nothing
//! readable, then the real server starts with mutual TLS and the voice, chat
//! and email integrations each call it with their own certificate, an
//! anonymous client is refused at the handshake, and a revoked certificate is
//! refused within a second. It grows into the voice → chat → email story as
//! the continuity layers land.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use crypto::KdfParams;
use policy::Channel;
use policy::StateTtl;
use secrecy::SecretString;
use throughline::ids::TenantName;
use throughline::serve::{self, ServeOptions};
use throughline::store::{AuditEntry, IdentifierKind};
use throughline::tls;
use throughline::{Clock as _, Installation, SystemClock};

const NAME: &str = "Maria Lopez";
const DOB: &str = "1985-03-14";
const PHONE: &str = "+14155550100";
const EMAIL: &str = "maria.lopez@example.com";

pub fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let tmp = tempfile::Builder::new().prefix("throughline-demo-").tempdir().context("temporary directory")?;
    let root = tmp.path().join("data");
    let passphrase = SecretString::from(hex::encode(crypto::random_bytes::<16>()?));

    step("init", "a fresh installation: argon2id master key, keyring, encrypted system store");
    let t0 = Instant::now();
    let mut inst = Installation::init(&root, &passphrase, KdfParams::recommended()?, Arc::new(SystemClock))?;
    println!("    installation {} ({} ms to derive the master key)", inst.installation_id(), t0.elapsed().as_millis());

    step("tenant create sunrise-clinic", "its own random key, wrapped in the keyring; its own SQLCipher file");
    let tenant = inst.create_tenant(&TenantName::parse("sunrise-clinic")?, StateTtl::default())?;
    println!("    tenant {} , state TTL {} days", tenant.id, tenant.state_ttl_days);

    step("intake", &format!("patient {NAME}, born {DOB}, phone {PHONE}, email {EMAIL}"));
    let mut store = inst.open_tenant("sunrise-clinic")?;
    let who = AuditEntry::operator("demo", "customer.create");
    let customer = store.create_customer(NAME, DOB, &who, SystemClock.now_ms())?;
    store.link_identifier(IdentifierKind::Phone, PHONE, &customer, "intake", SystemClock.now_ms())?;
    store.link_identifier(IdentifierKind::Email, EMAIL, &customer, "intake", SystemClock.now_ms())?;
    println!(
        "    stored as {customer}: name and DOB sealed under the patient's own key, phone and email as blind indexes"
    );

    step("look at the files", "what a thief with the disk would see");
    // Close every store first: reading a live SQLite file from the process
    // that holds it would drop SQLite's POSIX locks on it.
    drop(store);
    drop(inst);
    let mut hits = 0;
    for entry in walk(&root)? {
        let bytes = std::fs::read(&entry)?;
        let header = &bytes[..bytes.len().min(16)];
        let plain = bytes.starts_with(b"SQLite format 3");
        let found: Vec<&str> = [NAME, PHONE, EMAIL, DOB]
            .into_iter()
            .filter(|needle| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .collect();
        hits += found.len();
        println!(
            "    {:<48} {:>7} bytes  header {}  {}",
            entry.strip_prefix(&root).unwrap_or(&entry).display(),
            bytes.len(),
            hex::encode(header),
            if plain {
                "PLAIN SQLITE"
            } else if found.is_empty() {
                "no PHI in the clear"
            } else {
                "PHI FOUND"
            }
        );
        ensure!(!plain && found.is_empty(), "{} is readable without keys", entry.display());
    }
    ensure!(hits == 0, "PHI found in the data directory");

    step("find by phone", "the blind index answers the look-up without the phone number stored anywhere");
    let inst = Installation::open(&root, &passphrase, Arc::new(SystemClock))?;
    let store = inst.open_tenant("sunrise-clinic")?;
    let found = store.customers_by_identifier(IdentifierKind::Phone, PHONE)?;
    ensure!(found == [customer.clone()], "look-up by phone did not find the patient");
    let display = store.customer_display(&customer)?.context("patient vanished")?;
    println!("    {PHONE} -> {customer} -> {} / {}", display.name.as_str(), display.dob.as_str());

    drop(store);
    let inst = serve_and_call(inst)?;

    step("audit", "every operator action is on a hash chain");
    println!("    system chain: {} records verified", inst.system().verify_audit()?);
    println!("    tenant chain: {} records verified", inst.open_tenant("sunrise-clinic")?.verify_audit()?);

    println!("\ndemo finished in {:.1} s; the temporary installation is removed", started.elapsed().as_secs_f64());
    Ok(())
}

/// Starts the real server on a free loopback port and plays the channels.
fn serve_and_call(mut inst: Installation) -> anyhow::Result<Installation> {
    step("cert issue", "one client certificate per channel, from the clinic's own CA");
    let mut certs = Vec::new();
    for channel in [Channel::Voice, Channel::Chat, Channel::Email] {
        let cert = inst.issue_channel_cert("sunrise-clinic", channel, 365)?;
        println!("    {:<5} serial {}", channel.as_str(), cert.serial);
        certs.push((channel, cert));
    }
    let ca_pem = inst.ca()?.cert_pem().to_owned();

    step("serve", "actix-web over rustls on 127.0.0.1:0; client certificates required");
    let (tx, rx) = std::sync::mpsc::channel();
    let server_thread = std::thread::spawn(move || -> anyhow::Result<()> {
        actix_web::rt::System::new().block_on(async move {
            let bound = match serve::bind(&mut inst, &ServeOptions::new(([127, 0, 0, 1], 0).into())) {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = tx.send(Ok((bound.addr, bound.server.handle(), inst)));
            bound.server.await?;
            bound.refresher.stop();
            Ok(())
        })
    });
    let (addr, handle, mut inst) = rx.recv().context("server thread ended")??;
    println!("    listening on https://{addr}");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let url = format!("https://localhost:{}/v1/health", addr.port());
    runtime.block_on(async {
        let mut clients = Vec::new();
        for (channel, cert) in &certs {
            let tls = tls::client_config(&ca_pem, &cert.cert_pem, &cert.key_pem)?;
            let client = reqwest::Client::builder().use_preconfigured_tls(tls).build()?;
            let body: serde_json::Value = client.get(&url).send().await?.error_for_status()?.json().await?;
            println!(
                "    {:<5} GET /v1/health -> 200, bound to tenant {} channel {} (from the certificate, not the request)",
                channel.as_str(),
                body["tenant"],
                body["channel"]
            );
            ensure!(body["channel"] == channel.as_str(), "wrong channel binding");
            clients.push(client);
        }

        step("refusals", "no certificate, then a revoked one");
        let anonymous = tls::anonymous_client_config(&ca_pem)?;
        let client = reqwest::Client::builder().use_preconfigured_tls(anonymous).build()?;
        let refused = client.get(&url).send().await.is_err();
        ensure!(refused, "a client without a certificate was served");
        println!("    no client certificate -> refused at the TLS handshake");

        let chat_serial = &certs[1].1.serial;
        inst.revoke_cert(chat_serial, "demo")?;
        let revoked_at = Instant::now();
        loop {
            let res = clients[1].get(&url).send().await?;
            if res.status() == 401 {
                let body: serde_json::Value = res.json().await?;
                println!(
                    "    chat certificate revoked -> {} on the same keep-alive connection after {} ms",
                    body["error"],
                    revoked_at.elapsed().as_millis()
                );
                break;
            }
            ensure!(revoked_at.elapsed().as_secs() < 10, "revocation did not take effect");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        handle.stop(true).await;
        anyhow::Ok(())
    })?;
    server_thread.join().map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    println!("    server stopped gracefully");
    Ok(inst)
}

fn step(title: &str, what: &str) {
    println!("\n==> {title}: {what}");
}

fn walk(root: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    Ok(out)
}
