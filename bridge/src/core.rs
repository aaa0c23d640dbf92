//! The core's API as the bridge calls it: over mTLS with a route's channel
//! certificate, JSON in and out. The core's error messages carry no PHI by
//! contract (docs/API.md), so they can be relayed to an agent.

use std::time::Duration;

use serde_json::{Value, json};

use crate::context::Context;

/// The core's error codes the bridge acts on, read once from its answer
/// (docs/API.md lists them all); any other code is kept as it came, to log
/// and to relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreCode {
    /// The session was ended (by the platform's earlier report, or staff).
    SessionEnded,
    /// No such session for this tenant.
    SessionNotFound,
    /// The details given did not match.
    IdentityNotConfirmed,
    /// Too many failed confirmations.
    IdentityLocked,
    /// The bridge's own: a call with no caller number has no session.
    NoCallerNumber,
    Other(String),
}

impl CoreCode {
    pub fn parse(code: &str) -> Self {
        match code {
            "session_ended" => CoreCode::SessionEnded,
            "session_not_found" => CoreCode::SessionNotFound,
            "identity_not_confirmed" => CoreCode::IdentityNotConfirmed,
            "identity_locked" => CoreCode::IdentityLocked,
            "no_caller_number" => CoreCode::NoCallerNumber,
            other => CoreCode::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CoreCode::SessionEnded => "session_ended",
            CoreCode::SessionNotFound => "session_not_found",
            CoreCode::IdentityNotConfirmed => "identity_not_confirmed",
            CoreCode::IdentityLocked => "identity_locked",
            CoreCode::NoCallerNumber => "no_caller_number",
            CoreCode::Other(c) => c,
        }
    }
}

impl std::fmt::Display for CoreCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The core could not be reached or did not answer in time.
    #[error("the core is unreachable")]
    Unreachable,
    /// The core answered with an error.
    #[error("{code}: {message}")]
    Refused { status: u16, code: CoreCode, message: String },
    #[error("the core's answer was not what its API documents")]
    Unexpected,
    /// The core speaks another wire contract (a different build): nothing
    /// it answered is used (docs/UPGRADING.md).
    #[error("the core speaks wire {core}; this bridge speaks wire {WIRE}: upgrade the older of the two")]
    WireMismatch { core: String },
}

impl CoreError {
    pub fn code(&self) -> &str {
        match self {
            CoreError::Unreachable => "core_unreachable",
            CoreError::Refused { code, .. } => code.as_str(),
            CoreError::Unexpected => "core_unexpected",
            CoreError::WireMismatch { .. } => "core_wire_mismatch",
        }
    }
}

/// The core's wire contract this bridge was built against (the core's
/// `api::WIRE`; tests/bridge_contract.rs holds the two equal).
pub const WIRE: &str = "1";
/// The header both sides name their wire in.
pub const WIRE_HEADER: &str = "throughline-wire";

/// The wire the core named in its answer, if not ours. A core from before
/// the handshake names none and speaks wire 1.
fn wire_mismatch(res: &reqwest::Response) -> Option<CoreError> {
    let theirs = res.headers().get(WIRE_HEADER)?;
    let theirs = theirs.to_str().unwrap_or("?").trim();
    (theirs != WIRE).then(|| CoreError::WireMismatch { core: theirs.chars().take(16).collect() })
}

/// A client holding one channel certificate.
#[derive(Clone, Debug)]
pub struct Core {
    http: reqwest::Client,
    base: String,
}

/// What the core's call budget allows: Vapi gives 7.5 s for a whole
/// assistant-request, so one core request may take at most 3 s.
const TIMEOUT: Duration = Duration::from_secs(3);

impl Core {
    pub fn new(base: &str, tls: rustls::ClientConfig) -> Result<Self, reqwest::Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(WIRE_HEADER, reqwest::header::HeaderValue::from_static(WIRE));
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .default_headers(headers)
            .user_agent(concat!("throughline-bridge/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Core { http, base: base.to_owned() })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Option<Value>, CoreError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|_| CoreError::Unreachable)?;
        if let Some(e) = wire_mismatch(&res) {
            return Err(e);
        }
        let status = res.status().as_u16();
        if status == 204 {
            return Ok(None);
        }
        let v: Value = res.json().await.map_err(|_| CoreError::Unexpected)?;
        if (200..300).contains(&status) {
            return Ok(Some(v));
        }
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        Err(CoreError::Refused { status, code: CoreCode::parse(&text("error")), message: text("message") })
    }

    async fn value(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, CoreError> {
        self.call(method, path, body).await.map(Option::unwrap_or_default)
    }

    async fn context(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Context, CoreError> {
        let v = self.value(method, path, body).await?;
        serde_json::from_value(v).map_err(|_| CoreError::Unexpected)
    }

    /// `POST /v1/email/inbound` with the raw message: the core's status, or
    /// None when it could not be reached.
    pub async fn inbound_email(&self, raw: &[u8]) -> Option<u16> {
        let res = self
            .http
            .post(format!("{}/v1/email/inbound", self.base))
            .header("content-type", "message/rfc822")
            .body(raw.to_vec())
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        if wire_mismatch(&res).is_some() {
            return None;
        }
        Some(res.status().as_u16())
    }

    pub async fn health(&self) -> Result<(), CoreError> {
        self.value(reqwest::Method::GET, "/v1/health", None).await.map(|_| ())
    }

    /// Opens (or, with the same `external_ref`, finds again) a session.
    pub async fn open(
        &self,
        phone: &str,
        external_ref: Option<&str>,
        attestation: Option<&str>,
    ) -> Result<Context, CoreError> {
        let mut body = json!({"identifiers": {"phone": phone}});
        if let Some(r) = external_ref {
            body["external_ref"] = json!(r);
        }
        if let Some(a) = attestation {
            body["evidence"] = json!({"caller_id_attestation": a});
        }
        self.context(reqwest::Method::POST, "/v1/sessions", Some(body)).await
    }

    /// Opens (or finds again) a session with any identifiers
    /// (`{"phone", "email", "auth", "cookie"}`).
    pub async fn open_with(&self, identifiers: Value, external_ref: &str) -> Result<Context, CoreError> {
        let body = json!({"identifiers": identifiers, "external_ref": external_ref});
        self.context(reqwest::Method::POST, "/v1/sessions", Some(body)).await
    }

    pub async fn confirm(&self, session: &str, body: Value) -> Result<Context, CoreError> {
        self.context(reqwest::Method::POST, &format!("/v1/sessions/{session}/identity/confirm"), Some(body)).await
    }

    pub async fn challenge(&self, session: &str, via: &str) -> Result<Value, CoreError> {
        let path = format!("/v1/sessions/{session}/identity/challenge");
        self.value(reqwest::Method::POST, &path, Some(json!({"via": via}))).await
    }

    pub async fn intake(&self, session: &str, name: &str, date_of_birth: &str) -> Result<Context, CoreError> {
        let body = json!({"name": name, "date_of_birth": date_of_birth});
        self.context(reqwest::Method::PATCH, &format!("/v1/sessions/{session}/customer"), Some(body)).await
    }

    pub async fn turn(&self, session: &str, speaker: &str, text: &str, external_ref: &str) -> Result<(), CoreError> {
        let body = json!({"speaker": speaker, "text": text, "external_ref": external_ref});
        self.value(reqwest::Method::POST, &format!("/v1/sessions/{session}/turns"), Some(body)).await.map(|_| ())
    }

    /// A patient's text that must not be lost: written, or (before the
    /// patient confirms) held by the core for staff review. True if held.
    pub async fn inbound_text(&self, session: &str, text: &str, external_ref: &str) -> Result<bool, CoreError> {
        let body = json!({"speaker": "patient", "text": text, "external_ref": external_ref, "hold": true});
        let v = self.value(reqwest::Method::POST, &format!("/v1/sessions/{session}/turns"), Some(body)).await?;
        Ok(v.get("held").and_then(Value::as_bool).unwrap_or(false))
    }

    pub async fn put_state(&self, session: &str, key: &str, value: &str) -> Result<(), CoreError> {
        let path = format!("/v1/sessions/{session}/state/{key}");
        self.value(reqwest::Method::PUT, &path, Some(json!({"value": value}))).await.map(|_| ())
    }

    pub async fn delete_state(&self, session: &str, key: &str) -> Result<(), CoreError> {
        let path = format!("/v1/sessions/{session}/state/{key}");
        self.value(reqwest::Method::DELETE, &path, None).await.map(|_| ())
    }

    /// Ends the session; returns the resume link the core asks to be texted
    /// to the number that called (an interrupted call under the tenant's
    /// recovery policy, docs/OUTCOMES.md).
    pub async fn end(&self, session: &str, reason: &str) -> Result<Option<String>, CoreError> {
        let path = format!("/v1/sessions/{session}/end");
        let v = self.value(reqwest::Method::POST, &path, Some(json!({"reason": reason}))).await?;
        Ok(v.pointer("/recovery/link").and_then(Value::as_str).map(str::to_owned))
    }

    pub async fn book(&self, session: &str, body: Value) -> Result<Value, CoreError> {
        self.value(reqwest::Method::POST, &format!("/v1/sessions/{session}/appointments"), Some(body)).await
    }

    pub async fn change_appointment(&self, appointment: &str, body: Value) -> Result<Value, CoreError> {
        self.value(reqwest::Method::PATCH, &format!("/v1/appointments/{appointment}"), Some(body)).await
    }

    pub async fn callback(&self, session: &str, body: Value) -> Result<Value, CoreError> {
        self.value(reqwest::Method::POST, &format!("/v1/sessions/{session}/callbacks"), Some(body)).await
    }

    /// Claims the next due callback: its number and a new voice session on
    /// the patient's conversation (None when nothing is due).
    pub async fn claim_callback(&self) -> Result<Option<(String, Context)>, CoreError> {
        let Some(v) = self.call(reqwest::Method::POST, "/v1/callbacks/claim", Some(json!({}))).await? else {
            return Ok(None);
        };
        let phone =
            v.get("callback").and_then(|c| c.get("phone")).and_then(Value::as_str).ok_or(CoreError::Unexpected)?;
        let ctx =
            serde_json::from_value(v.get("context").cloned().unwrap_or_default()).map_err(|_| CoreError::Unexpected)?;
        Ok(Some((phone.to_owned(), ctx)))
    }

    pub async fn start_fresh(&self, session: &str) -> Result<Context, CoreError> {
        self.context(reqwest::Method::POST, &format!("/v1/sessions/{session}/start-fresh"), None).await
    }
}

/// A path segment the bridge puts in a core URL: ids the core minted, or
/// state keys, checked so nothing a model says can change the path.
pub fn safe_segment(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core of another build: answers every request with the given wire
    /// header, and reports what the bridge sent.
    fn core_speaking(wire: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let _ = tx.send(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
            let body = r#"{"status":"ok"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{WIRE_HEADER}: {wire}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes()));
        });
        (format!("http://{addr}"), rx)
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn a_core_of_another_wire_is_refused_and_ours_is_named() {
        let tls = crate::tls::platform(None).unwrap();
        let (base, sent) = core_speaking("2");
        let core = Core::new(&base, tls.clone()).unwrap();
        let e = run(core.health()).unwrap_err();
        assert_eq!(e.code(), "core_wire_mismatch");
        assert_eq!(e.to_string(), "the core speaks wire 2; this bridge speaks wire 1: upgrade the older of the two");
        let request = sent.recv().unwrap();
        assert!(request.contains("throughline-wire: 1"), "{request}");
        assert!(request.contains("user-agent: throughline-bridge/"), "{request}");

        let (base, _) = core_speaking(WIRE);
        assert!(run(Core::new(&base, tls).unwrap().health()).is_ok());
    }
}
