//! A real `throughline serve` on 127.0.0.1:0 and channel clients for it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::Env;

/// A certificate directory written by `throughline cert issue`.
#[derive(Clone, Debug)]
pub struct CertDir {
    pub dir: PathBuf,
    pub serial: String,
}

impl CertDir {
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("cert file")
    }
}

impl Env {
    /// Issues a channel certificate with the CLI.
    pub fn issue(&self, tenant: &str, channel: &str) -> CertDir {
        let dir = self.tmp.path().join(format!("certs-{tenant}-{channel}-{}", uuid::Uuid::new_v4().simple()));
        let out = self.ok(&[
            "cert",
            "issue",
            "--tenant",
            tenant,
            "--channel",
            channel,
            "--out",
            dir.to_str().expect("utf-8 path"),
        ]);
        let serial = out.lines().find_map(|l| l.strip_prefix("serial ")).expect("serial line").to_owned();
        CertDir { dir, serial }
    }

    /// Starts `throughline serve` on a free port with a 1 s client timeout.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// [`Self::serve`] with more flags; with `--metrics-listen` the
    /// metrics address is read from its banner line.
    pub fn serve_with(&self, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--client-timeout-secs", "1"];
        args.extend_from_slice(extra);
        spawn(self.cmd(&args), self.tmp.path())
    }
}

/// Starts a prepared `throughline serve` command, its log under `log_dir`,
/// and waits for its `listening on` line.
pub fn spawn(mut cmd: std::process::Command, log_dir: &Path) -> Server {
    let stderr = log_dir.join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
    let with_metrics = cmd.get_args().any(|a| a == "--metrics-listen");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("log file"))
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| {
            panic!("unexpected first line {line:?}; log: {}", std::fs::read_to_string(&stderr).unwrap_or_default())
        })
        .parse()
        .expect("address");
    let metrics = with_metrics.then(|| metrics_line(&mut reader));
    // Later banner lines are read (and dropped) so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Server { child, addr, log: stderr, metrics }
}

/// The address in a `metrics on http://ADDR/metrics` banner line (serve's and the bridge's).
pub fn metrics_line(reader: &mut impl BufRead) -> SocketAddr {
    let mut m = String::new();
    reader.read_line(&mut m).expect("read metrics line");
    m.trim()
        .strip_prefix("metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected metrics line {m:?}"))
        .parse()
        .expect("metrics address")
}

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// The metrics listener, when started with one.
    pub metrics: Option<SocketAddr>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A rustls client configuration presenting `cert` and trusting `ca_pem`.
pub fn tls_config(ca_pem: &str, cert_pem: &str, key_pem: &str) -> rustls::ClientConfig {
    install_crypto_provider();
    server::tls::client_config(ca_pem, cert_pem, key_pem).expect("client config")
}

/// An HTTPS client for a channel certificate directory.
pub fn client(certs: &CertDir) -> reqwest::Client {
    client_with(tls_config(&certs.read("ca.crt"), &certs.read("client.crt"), &certs.read("client.key")))
}

pub fn client_with(config: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// A client that trusts the CA but presents no certificate.
pub fn anonymous_client(ca: &Path) -> reqwest::Client {
    install_crypto_provider();
    let pem = std::fs::read_to_string(ca).expect("ca");
    client_with(server::tls::anonymous_client_config(&pem).expect("config"))
}

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
