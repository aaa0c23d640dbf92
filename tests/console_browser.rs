//! The staff console in a real browser (issue 19, acceptance 1): Debian's
//! Chromium driven by playwright-core (`tests/e2e/console.mjs`) against the
//! real server's console on 127.0.0.1:0. The browser signs in with a TOTP
//! code it computes, finds Maria, reads her record, answers her email; this
//! harness then delivers Maria's answer through `/v1/email/inbound` and
//! checks it threads into the same conversation; the browser sees it in the
//! thread. axe-core runs on every page. `scripts/test-deps.sh` installs Chromium and the
//! npm packages; elsewhere the test says what is missing and passes only
//! when not under CI.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;
use server::Clock as _;
use util::console::{PASSWORD, add_staff_with_key, clinic};
use util::smtp::delivered;

fn e2e_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_desk_reply_in_chromium_threads_the_patients_answer_back() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).exists() && e2e_dir().join("node_modules/playwright-core").exists();
    // No skipping: without the browser the test fails and says how to get it.
    assert!(
        ready,
        "the browser test needs {chromium} and tests/e2e's packages: \
         apt-get install chromium nodejs npm && (cd tests/e2e && npm ci) (what scripts/test-deps.sh does)"
    );
    let c = clinic().await;
    let (_, key) = add_staff_with_key(&c.env, "ana@sunrise-clinic.example", "front_desk", false);
    let port = c.server.console.unwrap().port();
    let mut node = Command::new("node")
        .arg(e2e_dir().join("console.mjs"))
        .current_dir(e2e_dir())
        .env("CONSOLE_URL", format!("https://console.test:{port}"))
        .env("STAFF_EMAIL", "ana@sunrise-clinic.example")
        .env("STAFF_PASSWORD", PASSWORD)
        .env("TOTP_SECRET", &key)
        .env("SERVER_NOW_MS", c.server.clock.now_ms().to_string())
        .env("PATIENT_PHONE", "(415) 555-0100")
        .env("PATIENT_NAME", "Maria Lopez")
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", std::env::var("CONSOLE_SCREENSHOTS").unwrap_or_default())
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let mut out = BufReader::new(node.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "replied", "the browser run stopped before the reply");

    // The reply reached the real SMTP server under a Message-ID we recorded.
    let mail = delivered(&c.smtp);
    let reply = mail.iter().find(|m| m.contains("behind the building")).expect("reply delivered");
    let id = reply.lines().find_map(|l| l.strip_prefix("Message-ID: <")).unwrap().trim_end_matches('>').to_owned();
    let raw = format!(
        "From: maria@example.com\r\nTo: appointments@sunrise-clinic.example\r\nSubject: Re: Parking\r\nMessage-ID: <m3@example.com>\r\nIn-Reply-To: <{id}>\r\n\r\nThank you, see you Tuesday!\r\n"
    );
    let (status, v) = c.email.delivered("/v1/email/inbound", raw.into_bytes()).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!((&v["threaded_by"], &v["context"]["conversation_id"]), (&json!("in_reply_to"), &c.conversation), "{v}");

    let mut stdin = node.stdin.take().unwrap();
    writeln!(stdin, "answered").unwrap();
    drop(stdin);
    line.clear();
    out.read_line(&mut line).unwrap();
    let status = node.wait().unwrap();
    assert!(status.success() && line.trim() == "ok", "the browser run failed after the answer: {line}");
}
