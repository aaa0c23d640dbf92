//! The compliance console in a real browser (issue 20, acceptance 1):
//! Debian's Chromium (`tests/e2e/compliance.mjs`) against the real console.
//! The harness makes the evidence (a clinician reads the patient; an
//! exported copy of the trail with one record altered), the browser does
//! the officer's work, and the harness then checks the downloaded search
//! export offline with `throughline audit verify` and that the erasure ran.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use std::process::Command;

use server::Clock as _;
use util::console::{Browser, PASSWORD, TENANT, add_staff, add_staff_with_key, clinic};

fn e2e() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_officer_works_the_trail_and_the_requests_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    // No skipping: without the browser the test fails and says how to get it.
    assert!(
        Path::new(&chromium).exists() && e2e().join("node_modules/playwright-core").exists(),
        "the browser test needs {chromium} and tests/e2e's packages: \
         apt-get install chromium nodejs npm && (cd tests/e2e && npm ci) (what scripts/test-deps.sh does)"
    );
    let c = clinic().await;
    let cal = add_staff(&c.env, "cal@sunrise-clinic.example", "clinician", false);
    c.env.ok(&["staff", "assign", "--tenant", TENANT, &cal, "--customer", &c.maria]);
    let mut doc = Browser::new(c.server.console.unwrap(), &c.ca);
    let code = c.env.installation().danger_staff_totp_at(&cal, c.server.clock.now_ms()).unwrap();
    assert_eq!(doc.login("cal@sunrise-clinic.example", PASSWORD, &code).await.status, 303);
    assert_eq!(doc.get(&format!("/patients/{}", c.maria)).await.status, 200);
    let (_, cora_key) = add_staff_with_key(&c.env, "cora@sunrise-clinic.example", "compliance", false);
    let (_, amy_key) = add_staff_with_key(&c.env, "amy@sunrise-clinic.example", "admin", false);

    let whole = c.env.tmp.path().join("whole.jsonl");
    c.env.ok(&["audit", "export", "--tenant", TENANT, "--out", whole.to_str().unwrap()]);
    let altered = c.env.tmp.path().join("altered.jsonl");
    std::fs::write(
        &altered,
        std::fs::read_to_string(&whole).unwrap().replacen("\"patient.view\"", "\"patient.search\"", 1),
    )
    .unwrap();
    let download = c.env.tmp.path().join("search-export.jsonl");

    let out = Command::new("node")
        .arg(e2e().join("compliance.mjs"))
        .current_dir(e2e())
        .env("CONSOLE_URL", format!("https://console.test:{}", c.server.console.unwrap().port()))
        .env("STAFF_PASSWORD", PASSWORD)
        .env("SERVER_NOW_MS", c.server.clock.now_ms().to_string())
        .env("CORA_EMAIL", "cora@sunrise-clinic.example")
        .env("CORA_KEY", &cora_key)
        .env("AMY_EMAIL", "amy@sunrise-clinic.example")
        .env("AMY_KEY", &amy_key)
        .env("ALTERED_EXPORT", &altered)
        .env("DOWNLOAD_TO", &download)
        .env("CLINICIAN_EMAIL", "cal@sunrise-clinic.example")
        .env("PATIENT_ID", &c.maria)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", std::env::var("CONSOLE_SCREENSHOTS").unwrap_or_default())
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The search's export, downloaded by the browser, verifies on its own.
    let key = c.env.ok(&["audit", "key", "--tenant", TENANT]).trim().to_owned();
    let verified = c.env.ok(&["audit", "verify", download.to_str().unwrap(), "--key", &key]);
    assert!(verified.contains("each unchanged and included in the signed checkpoint"), "{verified}");
    let mut store = c.env.installation().open_tenant(TENANT).unwrap();
    let tx = store.transaction().unwrap();
    assert!(
        !tx.customer_live(&store::ids::CustomerId::parse(&c.maria).unwrap()).unwrap(),
        "the approved erasure did not run"
    );
}
