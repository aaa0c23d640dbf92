//! The real server started in-process (still real mTLS on 127.0.0.1:0 with
//! real certificates) so tests can inject the clock: "ten minutes later" and
//! a 30-day TTL are tested without sleeping.

use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;
use server::serve::{self, ServeOptions};
use server::{Clock as _, Installation, ManualClock, SystemClock};

use super::{Env, PASSPHRASE};

pub struct InProcess {
    pub addr: SocketAddr,
    /// The staff console's address, when started with one.
    pub console: Option<SocketAddr>,
    pub clock: ManualClock,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    pub fn start(env: &Env) -> Self {
        Self::start_with(env, false)
    }

    /// The server and its staff console (`serve --console-listen 127.0.0.1:0`).
    pub fn start_with_console(env: &Env) -> Self {
        Self::start_with(env, true)
    }

    fn start_with(env: &Env, console: bool) -> Self {
        let clock = ManualClock::new(SystemClock.now_ms());
        let passphrase = SecretString::from(PASSPHRASE.to_owned());
        let mut inst = Installation::open(&env.data, &passphrase, Arc::new(clock.clone())).expect("open installation");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let mut opts = ServeOptions::new(([127, 0, 0, 1], 0).into());
                if console {
                    // Checkpoints every second, so the compliance console has a fresh one.
                    opts.checkpoint_every = Some(std::time::Duration::from_secs(1));
                    // The tests' browser stands behind a trusted proxy: loopback.
                    opts.console = Some(server::console::ConsoleOptions {
                        listen: ([127, 0, 0, 1], 0).into(),
                        cert: None,
                        trusted_proxies: vec![std::net::IpAddr::from([127, 0, 0, 1])],
                    });
                }
                let bound = serve::bind(&mut inst, &opts).expect("bind");
                let console = bound.console.map(|c| {
                    let addr = c.addr;
                    actix_web::rt::spawn(c.server);
                    addr
                });
                tx.send((bound.addr, console, bound.server.handle())).expect("send");
                let _ = bound.server.await;
                bound.refresher.stop();
                bound.maintenance.stop();
            });
        });
        let (addr, console, handle) = rx.recv().expect("server started");
        InProcess { addr, console, clock, handle, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.clock.advance_ms(minutes * 60_000);
    }

    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One JSON request to the in-process server: (status, body or null).
pub async fn call(
    http: &reqwest::Client,
    server: &InProcess,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = http.request(method, server.url(path)).json(&body).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}
