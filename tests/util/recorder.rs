//! A recording HTTPS server standing in for a platform's API (Vapi,
//! Retell, Twilio cannot be reached from here): it keeps every request and
//! answers as each platform documents, or fails the first N on purpose.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    fail_first: AtomicUsize,
}

pub struct Recorder {
    state: Arc<State>,
    pub url: String,
    /// The recorder's certificate (the bridge's `platform_ca_file`).
    pub ca_pem: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let h = self.handle.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(h.stop(false)));
    }
}

async fn record(state: web::Data<Arc<State>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let n = {
        let mut all = state.requests.lock().expect("lock");
        all.push(Recorded {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body: body.to_vec(),
        });
        all.len()
    };
    let failing = state.fail_first.load(Ordering::SeqCst);
    if failing > 0 {
        state.fail_first.store(failing - 1, Ordering::SeqCst);
        return HttpResponse::InternalServerError().json(json!({"message": "recorder told to fail"}));
    }
    let path = req.path();
    let answer = if path == "/call" {
        json!({"id": format!("vapi-out-{n}"), "status": "queued", "type": "outboundPhoneCall"})
    } else if path == "/v2/create-phone-call" {
        json!({"call_id": format!("retell-out-{n}"), "call_status": "registered"})
    } else if path.ends_with("/Calls.json") {
        json!({"sid": format!("CA{n:032}"), "status": "queued"})
    } else if path.ends_with("/Messages.json") {
        json!({"sid": format!("SM{n:032}"), "status": "queued"})
    } else {
        return HttpResponse::NotFound().json(json!({"message": "not a documented path"}));
    };
    HttpResponse::Created().json(answer)
}

impl Recorder {
    pub fn start() -> Self {
        super::server::install_crypto_provider();
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let ca_pem = key.cert.pem();
        let chain = vec![key.cert.der().clone()];
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).expect("key");
        let tls = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, der).expect("tls");
        let state = Arc::new(State::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(shared);
                let server =
                    HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(record)))
                        .workers(1)
                        .bind_rustls_0_23(("127.0.0.1", 0), tls)
                        .expect("bind");
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((port, server.handle())).expect("send");
                let _ = server.await;
            });
        });
        let (port, handle) = rx.recv().expect("recorder started");
        Recorder { state, url: format!("https://localhost:{port}"), ca_pem, handle }
    }

    pub fn fail_first(&self, n: usize) {
        self.state.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }
}
