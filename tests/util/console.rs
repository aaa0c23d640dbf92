//! A browser-like client for the staff console: no client certificate,
//! its own cookie, Origin sent as a browser's form post sends it, redirects
//! not followed (so tests see each 303 and Set-Cookie); and the clinic the
//! console tests share.
// Test helpers panic on unexpected results by design.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use reqwest::Method;
use serde_json::{Value, json};
use server::Clock as _;

use super::Env;
use super::api::Api;
use super::inproc::InProcess;
use super::smtp::{SmtpServer, smtp_server};

pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a csrf token");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').expect("token end")].to_owned()
    }
}

impl Browser {
    pub fn new(console: SocketAddr, ca_pem: &str) -> Self {
        super::server::install_crypto_provider();
        let tls = server::tls::anonymous_client_config(ca_pem).expect("tls");
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser { http, base: format!("https://localhost:{}", console.port()), cookie: None }
    }

    async fn page(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        if let Some(set) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
        }
        let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Page { status, location, headers, body: res.text().await.unwrap_or_default() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.page(req).await
    }

    /// A form post from our own page (the browser sends Origin).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, form, &origin).await
    }

    pub async fn post_from(&mut self, path: &str, form: &[(&str, &str)], origin: &str) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.page(req).await
    }

    /// A file upload, as a browser's multipart form sends it.
    pub async fn upload(&mut self, path: &str, csrf: &str, file: &[u8]) -> Page {
        let b = "----throughline-test-boundary";
        let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", self.base.clone())
            .header("content-type", format!("multipart/form-data; boundary={b}"))
            .body(body);
        self.page(req).await
    }

    pub async fn login(&mut self, email: &str, password: &str, code: &str) -> Page {
        self.post("/login", &[("email", email), ("password", password), ("code", code)]).await
    }
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const TENANT: &str = "sunrise-clinic";

pub fn add_staff(env: &Env, email: &str, role: &str, break_glass: bool) -> String {
    add_staff_with_key(env, email, role, break_glass).0
}

/// A staff account: its id and the TOTP key an authenticator app would enrol.
pub fn add_staff_with_key(env: &Env, email: &str, role: &str, break_glass: bool) -> (String, String) {
    let file = env.tmp.path().join("pw");
    std::fs::write(&file, PASSWORD).unwrap();
    let mut args = vec!["staff", "add", "--tenant", TENANT, "--email", email, "--role", role];
    if break_glass {
        args.push("--break-glass");
    }
    args.extend(["--password-file", file.to_str().unwrap()]);
    let out = env.ok(&args);
    assert!(out.contains("otpauth://totp/Throughline:"), "{out}");
    let id = out.lines().find_map(|l| l.strip_prefix("staff id: ")).unwrap().trim().to_owned();
    let key = out.lines().find_map(|l| l.trim().strip_prefix("or type the key: ")).unwrap().trim().to_owned();
    (id, key)
}

pub struct Clinic {
    pub env: Env,
    pub server: InProcess,
    pub ca: String,
    pub email: Api,
    pub maria: String,
    pub thread: String,
    pub conversation: Value,
    /// The Message-ID of the clinic's email to Maria.
    pub ours: String,
    pub smtp: SmtpServer,
}

/// Maria: on file from a call (a voice turn), an appointment for knee pain
/// booked in a confirmed chat, and an email to the clinic waiting for a human.
pub async fn clinic() -> Clinic {
    let smtp = smtp_server();
    let env = Env::initialised();
    env.tenant(&[TENANT, "--time-zone", "America/New_York"]);
    env.ok(&["tenant", "email", TENANT, "--from", "appointments@sunrise-clinic.example"]);
    env.ok(&["tenant", "email", TENANT, "--smtp", &format!("127.0.0.1:{}", smtp.port), "--smtp-tls", "none"]);
    let certs: Vec<_> = ["voice", "chat", "email"].iter().map(|c| env.issue(TENANT, c)).collect();
    let ca = certs[0].read("ca.crt");
    let server = InProcess::start_with_console(&env);
    let (voice, chat, email) =
        (Api::new(&server, &certs[0]), Api::new(&server, &certs[1]), Api::new(&server, &certs[2]));
    voice
        .patient_on_file(
            json!({"phone": "+1 415 555 0100", "email": "maria@example.com"}),
            &["my knee hurts since the fall"],
        )
        .await;
    let open = chat.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": "(415) 555-0100"}}))).await;
    let sid = open["session_id"].as_str().unwrap().to_owned();
    let confirmed = chat
        .ok(Method::POST, &format!("/v1/sessions/{sid}/identity/confirm"), Some(json!({"date_of_birth": "1985-03-14"})))
        .await;
    let maria = confirmed["customer_id"].as_str().unwrap().to_owned();
    let zone = continuity::calendar::ClinicZone::parse("America/New_York").unwrap();
    let at = zone.next_weekday_at(server.clock.now_ms(), jiff::civil::Weekday::Tuesday, 14, 0).unwrap();
    let body = json!({"starts_at": zone.rfc3339(at), "reason": "knee pain"});
    chat.ok(Method::POST, &format!("/v1/sessions/{sid}/appointments"), Some(body)).await;
    let body = json!({"to": "maria@example.com", "subject": "Your appointment", "text": "See you on Tuesday."});
    let sent = chat.ok(Method::POST, &format!("/v1/sessions/{sid}/email/outbound"), Some(body)).await;
    let ours = sent["message_id"].as_str().unwrap().to_owned();
    let raw = format!(
        "From: Maria Lopez <maria@example.com>\r\nTo: appointments@sunrise-clinic.example\r\nSubject: Parking\r\nMessage-ID: <m1@example.com>\r\nIn-Reply-To: <{ours}>\r\n\r\nIs there parking near the clinic?\r\n"
    );
    let (status, v) = email.delivered("/v1/email/inbound", raw.into_bytes()).await;
    assert_eq!(status, 201, "{v}");
    let thread = v["context"]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(v["context"]["customer_id"], json!(maria), "{v}");
    let conversation = v["context"]["conversation_id"].clone();
    Clinic { env, server, ca, email, maria, thread, conversation, ours, smtp }
}
