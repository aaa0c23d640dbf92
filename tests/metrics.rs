//! `serve --metrics-listen` (issue 21): the real server's `/metrics` after
//! the seed story (a voice call on file, a chat from the same phone that is
//! refused a fresh start before confirming, a wrong date of birth), read by
//! Prometheus's own OpenMetrics parser (Python's prometheus_client); the
//! expected families carry the expected values, and nothing in the text
//! names the patient, the clinic, a certificate or a word anyone said.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};
use util::Env;
use util::api::Api;
use util::server::client;

/// The exposition parsed by `prometheus_client.openmetrics.parser`:
/// `[{name, type, samples: [[name, labels, value]]}]`. A malformed line fails here.
fn parse(text: &str) -> Vec<Value> {
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let out = Command::new(scripts.join("ops-venv.sh")).output().unwrap();
    assert!(out.status.success(), "ops venv: {}", String::from_utf8_lossy(&out.stderr));
    let python = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let program = "import sys, json\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        print(json.dumps([{'name': f.name, 'type': f.type, 'samples': [[s.name, s.labels, s.value] for s in f.samples]} for f in parse(sys.stdin.read())]))";
    let mut child = Command::new(python)
        .args(["-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(families: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.iter().flat_map(|f| f["samples"].as_array().unwrap().iter()).find_map(|s| {
        let matches = s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v);
        matches.then(|| s[2].as_f64().unwrap())
    })
}

#[tokio::test]
async fn metrics_after_the_seed_story_parse_and_name_no_one() {
    let env = Env::initialised();
    env.tenant(&["sunrise-clinic"]);
    let tenant = env.installation().tenant("sunrise-clinic").unwrap().id.to_string();
    let (voice_certs, chat_certs) = (env.issue("sunrise-clinic", "voice"), env.issue("sunrise-clinic", "chat"));
    let server = env.serve_with(&["--metrics-listen", "127.0.0.1:0"]);
    let base = server.url("");
    let voice = Api { http: client(&voice_certs), base: base.clone() };
    let chat = Api { http: client(&chat_certs), base };

    voice.patient_on_file(json!({"phone": "+1 415 555 0100"}), &["my knee hurts since the fall"]).await;
    let open = chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let (status, body) = chat.post(&format!("/v1/sessions/{sid}/start-fresh"), json!({})).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("identity_confirmation_required")));
    let (status, _) =
        chat.post(&format!("/v1/sessions/{sid}/identity/confirm"), json!({"date_of_birth": "1990-01-01"})).await;
    assert!((400..500).contains(&status), "a wrong date of birth is refused: {status}");

    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", server.metrics.unwrap());
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = res.text().await.unwrap();
    let families = parse(&text);

    let opened = [("server", "api"), ("route", "/v1/sessions"), ("channel", "voice"), ("status", "201")];
    let opened_ok = [("server", "api"), ("route", "/v1/sessions"), ("channel", "voice"), ("status", "200")];
    let opens = sample(&families, "throughline_http_requests_total", &opened)
        .or_else(|| sample(&families, "throughline_http_requests_total", &opened_ok));
    assert_eq!(opens, Some(1.0), "one voice session opened:\n{text}");
    let turns = [("route", "/v1/sessions/{id}/turns"), ("channel", "voice")];
    assert_eq!(sample(&families, "throughline_http_request_duration_seconds_count", &turns), Some(1.0));
    let refused = [("code", "identity_confirmation_required")];
    assert_eq!(sample(&families, "throughline_api_refusals_total", &refused), Some(1.0));
    let jobs = sample(&families, "throughline_group_commit_jobs_count", &[]).unwrap();
    assert!(jobs >= 5.0, "every write went through a group commit: {jobs}");
    assert!(sample(&families, "throughline_group_commit_duration_seconds_sum", &[]).unwrap() > 0.0);
    assert!(sample(&families, "throughline_audit_records_total", &[("trail", "tenant")]).unwrap() >= 5.0);
    assert_eq!(sample(&families, "throughline_open_tenants", &[]), Some(1.0));
    assert_eq!(sample(&families, "throughline_channel_certificates_in_force", &[]), Some(2.0));
    let ca_expiry = sample(&families, "throughline_certificate_expiry_timestamp_seconds", &[("certificate", "ca")]);
    assert!(ca_expiry.unwrap() > 1.7e9);
    assert!(sample(&families, "throughline_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert_eq!(sample(&families, "throughline_backup_last_success_timestamp_seconds", &[]), Some(0.0));

    for phi in ["4155550100", "Maria", "Lopez", "1985-03-14", "1990-01-01", "knee", "sunrise", &tenant, &sid] {
        assert!(!text.contains(phi), "{phi:?} is in the metrics:\n{text}");
    }
    assert!(!text.contains(&voice_certs.serial) && !text.contains(&chat_certs.serial));
    // Every label value is one of the bounded sets the code names: no digits of a phone number in any.
    for f in &families {
        for s in f["samples"].as_array().unwrap() {
            for (k, v) in s[1].as_object().unwrap() {
                let v = v.as_str().unwrap();
                assert!(!["415", "555", "0100"].iter().any(|d| v.contains(d)), "label {k}={v}");
            }
        }
    }
    assert_eq!(http.get(format!("http://{}/", server.metrics.unwrap())).send().await.unwrap().status(), 404);

    // A real Prometheus scrapes it (OpenMetrics negotiated) and answers a query over what it stored.
    let stored = prometheus_scrape(&env, server.metrics.unwrap()).await;
    assert_eq!(stored, 1.0, "Prometheus stored throughline_open_tenants");

    // Every server metric the dashboard and the alert rules use is one the server exports.
    let mut exported: Vec<String> = Vec::new();
    for f in &families {
        let name = f["name"].as_str().unwrap();
        exported.extend([name.to_owned(), format!("{name}_total")]);
        exported.extend(f["samples"].as_array().unwrap().iter().map(|s| s[0].as_str().unwrap().to_owned()));
    }
    let packaging = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
    for file in ["grafana/throughline.json", "prometheus/throughline-alerts.yml"] {
        let body = std::fs::read_to_string(packaging.join(file)).unwrap();
        for name in metric_names(&body).into_iter().filter(|n| !n.starts_with("throughline_bridge_")) {
            let base = name.trim_end_matches("_bucket");
            assert!(
                exported.iter().any(|e| e == &name || e == base),
                "{file} uses {name}, which the server does not export"
            );
        }
    }
}

/// Starts Debian's Prometheus scraping `target` every second and returns the
/// value it stored for `throughline_open_tenants`.
async fn prometheus_scrape(env: &Env, target: std::net::SocketAddr) -> f64 {
    let dir = env.tmp.path().join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: throughline\n    static_configs: [{{targets: ['{target}']}}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian's package; scripts/test-deps.sh installs it)");
    let query = format!("http://127.0.0.1:{port}/api/v1/query?query=throughline_open_tenants");
    let value = util::server::eventually(30, || async {
        let v: Value = reqwest::get(&query).await.ok()?.json().await.ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok()
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    value.unwrap_or_else(|| {
        panic!("Prometheus stored nothing: {}", std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default())
    })
}

/// The `throughline_…` metric names in a file.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("throughline_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        // `throughline_…` inside a longer word (a file name) is not a metric.
        let word_start = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'-';
        if word_start && tail[..end].matches('_').count() >= 2 {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_alert_rules_pass_prometheus_own_checks_and_unit_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus");
    for args in [["check", "rules", "throughline-alerts.yml"], ["test", "rules", "throughline-alerts.test.yml"]] {
        let out = Command::new("promtool").args(args).current_dir(&dir).output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
