//! `throughline demo`: the product's story on a fresh, temporary installation.
//!
//! Today it shows the foundation: a clinic's store is created, a patient is
//! written, and the demo proves from the files themselves that nothing is
//! readable without the keys, then finds the patient again by phone through
//! the blind index. It grows into the voice → chat → email story as the
//! serving layers land.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use crypto::KdfParams;
use policy::StateTtl;
use secrecy::SecretString;
use throughline::ids::TenantName;
use throughline::store::{AuditEntry, IdentifierKind};
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

    step("audit", "every operator action is on a hash chain");
    println!("    system chain: {} records verified", inst.system().verify_audit()?);
    println!("    tenant chain: {} records verified", store.verify_audit()?);

    println!("\ndemo finished in {:.1} s; the temporary installation is removed", started.elapsed().as_secs_f64());
    Ok(())
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
