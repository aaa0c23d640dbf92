//! `throughline demo`: the product's story on a fresh, temporary installation.
//!
//! The real server starts with mutual TLS on a free loopback port; voice and
//! chat integrations call it with their own certificates and play the seed:
//! a new patient calls at 4 PM, intake starts, the call drops; at 9 PM the
//! website chat resumes the same conversation once the patient confirms
//! their date of birth. Then the refusals (no certificate, a revoked one),
//! the files on disk (nothing readable), and the audit chains. The clock is
//! a manual one so "five hours later" takes no time; it starts at the latest
//! 4 PM at the clinic (America/Los_Angeles) and every date of the story is
//! derived from it, so the demo plays the same on any day of any year. The
//! chat books the next Tuesday at 2 PM and the confirmation email goes out
//! with a recorded Message-ID; the patient's reply at 8 AM the next day (3 PM
//! instead? insurance card attached) threads back into the same
//! conversation and the email agent reschedules.

mod email_story;
mod story;
mod vapi_story;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use continuity::calendar::ClinicZone;
use crypto::KdfParams;
use policy::Channel;
use policy::StateTtl;
use secrecy::{ExposeSecret as _, SecretString};
use server::serve::{self, ServeOptions};
use server::tls;
use server::{Clock as _, Installation, ManualClock, SystemClock};
use store::IdentifierKind;
use store::ids::TenantName;

const NAME: &str = "Maria Lopez";
const DOB: &str = "1985-03-14";
const PHONE: &str = "+14155550100";
const CLINIC_ZONE: &str = "America/Los_Angeles";
/// The demo clinic's evidence rules (the rest of its policy is the default).
const DEMO_POLICY: &str =
    "[evidence]\nemail_authserv_ids = [\"mx.sunrise-clinic.example\"]\ncaller_id = \"attested\"\n";

pub fn run(keep: Option<&std::path::Path>) -> anyhow::Result<()> {
    if let Some(k) = keep {
        ensure!(!k.exists(), "{} already exists; --keep takes a new directory", k.display());
    }
    let started = Instant::now();
    let tmp = tempfile::Builder::new().prefix("throughline-demo-").tempdir().context("temporary directory")?;
    let root = tmp.path().join("data");
    let passphrase = SecretString::from(hex::encode(crypto::random_bytes::<16>()?));

    step("init", "a fresh installation: argon2id master key, keyring, encrypted system store");
    let t0 = Instant::now();
    let zone = ClinicZone::parse(CLINIC_ZONE)?;
    let clock = ManualClock::new(zone.last_at(SystemClock.now_ms(), 16, 0)?);
    let mut inst = Installation::init(&root, &passphrase, KdfParams::recommended()?, Arc::new(clock.clone()))?;
    println!("    installation {} ({} ms to derive the master key)", inst.installation_id(), t0.elapsed().as_millis());

    step("tenant create sunrise-clinic", "its own random key, wrapped in the keyring; its own SQLCipher file");
    let tenant = inst.create_tenant(&TenantName::parse("sunrise-clinic")?, StateTtl::default(), &zone)?;
    println!("    tenant {} , state TTL {} days, time zone {}", tenant.id, tenant.state_ttl_days, tenant.time_zone);
    println!("    the clinic's clock starts at {}", zone.render(clock.now_ms()));

    step(
        "tenant email sunrise-clinic",
        "the From address our Message-IDs use; no SMTP relay: messages go to the gateway",
    );
    let e = inst.set_tenant_email(
        "sunrise-clinic",
        "Sunrise Clinic",
        "appointments@sunrise-clinic.example",
        server::installation::SmtpChange::Remove,
    )?;
    println!("    from {} <{}>", e.from_name, e.from_address);

    step(
        "tenant policy set sunrise-clinic",
        "evidence: the clinic's MTA is trusted; caller ID needs the carrier's attestation A",
    );
    let p = inst.set_tenant_policy("sunrise-clinic", DEMO_POLICY)?;
    println!("    email_authserv_ids {:?}, caller_id {}", p.evidence.email_authserv_ids, p.evidence.caller_id.as_str());

    let inst = serve_and_call(inst, &clock, &zone, tmp.path())?;

    step("look at the files", "what a thief with the disk would see");
    // Close every store first: reading a live SQLite file from the process
    // that holds it would drop SQLite's POSIX locks on it.
    drop(inst);
    let needles = [NAME, DOB, PHONE, "Tuesday", "check-up", "knee", "maria.lopez@example.com", "insurance card"];
    for entry in walk(&root)? {
        let bytes = std::fs::read(&entry)?;
        let header = &bytes[..bytes.len().min(16)];
        let plain = bytes.starts_with(b"SQLite format 3");
        let found = needles.iter().any(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()));
        println!(
            "    {:<48} {:>7} bytes  header {}  {}",
            entry.strip_prefix(&root).unwrap_or(&entry).display(),
            bytes.len(),
            hex::encode(header),
            if plain {
                "PLAIN SQLITE"
            } else if found {
                "PHI FOUND"
            } else {
                "no PHI in the clear"
            }
        );
        ensure!(!plain && !found, "{} is readable without keys", entry.display());
    }

    step("find by phone", "the blind index answers the look-up; the number is stored nowhere in the clear");
    let inst = Installation::open(&root, &passphrase, Arc::new(SystemClock))?;
    let mut store = inst.open_tenant("sunrise-clinic")?;
    let found = store.customers_by_identifier(IdentifierKind::Phone, PHONE)?;
    let [customer] = found.as_slice() else { anyhow::bail!("look-up by phone did not find exactly one patient") };
    let display =
        store.operator_customer_display(customer, "demo", SystemClock.now_ms())?.context("patient vanished")?;
    println!("    {PHONE} -> {customer} -> {} / {}", display.name.as_str(), display.dob.as_str());

    step("audit", "every PHI read and write, identity decision and operator action is on a hash chain");
    println!("    system chain: {} records verified", inst.system().verify_audit()?);
    println!("    tenant chain: {} records verified", store.verify_audit()?);

    drop(store);
    drop(inst);
    match keep {
        Some(k) => {
            copy_tree(&root, k)?;
            let secret = std::path::PathBuf::from(format!("{}.passphrase", k.display()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::io::Write::write_all(
                &mut options.open(&secret).with_context(|| format!("cannot create {}", secret.display()))?,
                format!("{}\n", passphrase.expose_secret()).as_bytes(),
            )?;
            println!(
                "\ndemo finished in {:.1} s; the installation is kept in {} (passphrase in {}: synthetic data only)",
                started.elapsed().as_secs_f64(),
                k.display(),
                secret.display()
            );
        }
        None => println!(
            "\ndemo finished in {:.1} s; the temporary installation is removed",
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(())
}

/// Copies a closed installation's files (`--keep`).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest).with_context(|| format!("cannot write {}", dest.display()))?;
        }
    }
    Ok(())
}

/// Starts the real server on a free loopback port and plays the channels.
fn serve_and_call(
    mut inst: Installation,
    clock: &ManualClock,
    zone: &ClinicZone,
    dir: &std::path::Path,
) -> anyhow::Result<Installation> {
    step("cert issue", "one client certificate per channel, from the clinic's own CA");
    let mut certs = Vec::new();
    for channel in [Channel::Voice, Channel::Chat, Channel::Email] {
        let cert = inst.issue_channel_cert("sunrise-clinic", channel, 365)?;
        println!("    {:<5} serial {}", channel.as_str(), cert.serial);
        certs.push((channel, cert));
    }
    let bridge_voice = inst.issue_channel_cert("sunrise-clinic", Channel::Voice, 365)?;
    println!("    voice serial {} (the bridge's own, for Vapi)", bridge_voice.serial);
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
            bound.maintenance.stop();
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
        let mut channels = Vec::new();
        for (channel, cert) in &certs {
            let tls = tls::client_config(&ca_pem, &cert.cert_pem, &cert.key_pem)?;
            let client = reqwest::Client::builder().use_preconfigured_tls(tls).build()?;
            channels.push(story::Channel {
                name: channel.as_str(),
                http: client.clone(),
                base: format!("https://localhost:{}", addr.port()),
            });
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

        let (chat_session, conversation) = story::voice_then_chat(&channels[0], &channels[1], clock).await?;
        let story = email_story::Story { chat_session: &chat_session, conversation: &conversation, clock, zone };
        email_story::chat_books_then_email_reschedules(&channels[1], &channels[2], &story).await?;
        clock.advance_ms(3_600_000);
        let core = format!("https://localhost:{}", addr.port());
        let bridge = vapi_story::start(&bridge_voice, dir, &core, &ca_pem)?;
        vapi_story::call_through_vapi(&bridge).await?;
        bridge.stop().await?;

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

pub(super) fn step(title: &str, what: &str) {
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
