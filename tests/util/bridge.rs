//! A real `throughline bridge` beside a real `throughline serve`: the
//! bridge's own HTTPS certificate (rcgen, for localhost), its config file,
//! and an HTTPS client that plays the platforms.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::Env;
use super::server::{CertDir, Server};

/// The URL the platforms are told to call (a proxy in front of the bridge
/// in production); Twilio signs it.
pub const PUBLIC_URL: &str = "https://bridge.sunrise.example";

pub struct Bridge {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    pub http: reqwest::Client,
    /// The metrics listener, when the top-level settings ask for one.
    pub metrics: Option<SocketAddr>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bridge {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, serde_json::Value) {
        let mut req = self.http.post(self.url(path)).header("content-type", "application/json").body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("bridge request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post_form(&self, path: &str, signature: &str, params: &[(&str, &str)]) -> (u16, String) {
        let res = self
            .http
            .post(self.url(path))
            .header("x-twilio-signature", signature)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish())
            .send()
            .await
            .expect("bridge request");
        (res.status().as_u16(), res.text().await.unwrap_or_default())
    }
}

/// A secret file under the test directory.
pub fn secret(env: &Env, name: &str, value: &str) -> PathBuf {
    let p = env.tmp.path().join(format!("secret-{name}"));
    std::fs::write(&p, format!("{value}\n")).expect("secret file");
    p
}

/// A `[[route]]` table.
pub fn route(name: &str, platform: &str, certs: &CertDir, secret: &Path, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nplatform = \"{platform}\"\ncerts = \"{}\"\nsecret_file = \"{}\"\n{extra}\n",
        certs.dir.display(),
        secret.display()
    )
}

impl Env {
    /// Starts `throughline bridge` for `core` with these `[[route]]` tables.
    pub fn bridge(&self, core: &Server, routes: &str) -> Bridge {
        self.bridge_with(core, "", routes)
    }

    /// As [`Env::bridge`], with top-level settings (`platform_ca_file = …`).
    pub fn bridge_with(&self, core: &Server, top: &str, routes: &str) -> Bridge {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("bridge certificate");
        let dir = self.tmp.path().join(format!("bridge-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("bridge dir");
        std::fs::write(dir.join("bridge.crt"), key.cert.pem()).expect("cert");
        std::fs::write(dir.join("bridge.key"), key.signing_key.serialize_pem()).expect("key");
        let config = format!(
            "core = \"{}\"\n{top}\n[webhooks]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"bridge.crt\"\ntls_key = \"bridge.key\"\npublic_url = \"{PUBLIC_URL}\"\nmax_body_bytes = 65536\n{routes}",
            core.url("")
        );
        let path = dir.join("bridge.toml");
        std::fs::write(&path, config).expect("bridge.toml");
        let log = dir.join("bridge.log");
        let mut child = self
            .cmd(&["bridge", "--config", path.to_str().expect("utf-8 path")])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn bridge");
        let mut line = String::new();
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        reader.read_line(&mut line).expect("listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on https://")
            .unwrap_or_else(|| {
                panic!("bridge said {line:?}; log: {}", std::fs::read_to_string(&log).unwrap_or_default())
            })
            .parse()
            .expect("address");
        let metrics = top.contains("metrics_listen").then(|| super::server::metrics_line(&mut reader));
        // Later lines are read (and dropped) so the bridge never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        super::server::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(key.cert.der().clone()).expect("root");
        let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Bridge { child, addr, log, http: super::server::client_with(tls), metrics }
    }
}

/// The venv python with the platforms' SDKs (scripts/platform-venv.sh).
pub fn platform_python() -> String {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let out = std::process::Command::new(scripts.join("platform-venv.sh")).output().expect("platform venv");
    assert!(out.status.success(), "platform venv: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `X-Twilio-Signature` for a form POST, computed by Twilio's own Python SDK.
pub fn twilio_signature(python: &str, token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let params: serde_json::Map<String, serde_json::Value> =
        params.iter().map(|(k, v)| ((*k).to_owned(), serde_json::json!(v))).collect();
    let script = "import json,sys\nfrom twilio.request_validator import RequestValidator\n\
                  token, url, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n\
                  v = RequestValidator(token)\nsig = v.compute_signature(url, params)\n\
                  assert v.validate(url, params, sig)\nprint(sig)";
    let out = std::process::Command::new(python)
        .args(["-c", script, token, url, &serde_json::Value::Object(params).to_string()])
        .output()
        .expect("python");
    assert!(out.status.success(), "twilio sdk: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `x-retell-signature` by Retell's documented algorithm, in a script of
/// its own (Python's hmac): `v=<ms>,d=hex(HMAC-SHA256(key, body + ms))`.
pub fn retell_signature(key: &str, body: &[u8], ms: i64) -> String {
    let script = "import hmac,hashlib,sys\nkey, body, ms = sys.argv[1], sys.stdin.buffer.read(), sys.argv[2]\n\
                  print('v=%s,d=%s' % (ms, hmac.new(key.encode(), body + ms.encode(), hashlib.sha256).hexdigest()))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, key, &ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), body).expect("write body");
    let out = child.wait_with_output().expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}
