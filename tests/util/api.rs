//! A channel integration as the tests play it: an mTLS client holding one
//! channel certificate, calling the in-process server.

use serde_json::Value;

use super::inproc::InProcess;
use super::server::{CertDir, client};

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(server: &InProcess, certs: &CertDir) -> Self {
        Api { http: client(certs), base: server.url("") }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.send(method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {v}");
        v
    }
}

impl Api {
    /// Posts a message as the test clinic's MTA delivers it (stamped with
    /// its `Authentication-Results`, [`super::mta_stamp`]).
    pub async fn delivered(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.raw(path, super::mta_stamp(&body)).await
    }

    /// Posts raw bytes (an RFC 5322 message) as they are.
    pub async fn raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "message/rfc822")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

impl Api {
    /// A patient on file as this integration takes them in: a session with
    /// `identifiers`, intake (Maria Lopez, 1985-03-14), the `turns` given
    /// (patient's), then the session ends. Returns that session's id.
    pub async fn patient_on_file(&self, identifiers: Value, turns: &[&str]) -> String {
        let ctx =
            self.ok(reqwest::Method::POST, "/v1/sessions", Some(serde_json::json!({"identifiers": identifiers}))).await;
        let s = ctx["session_id"].as_str().expect("session id").to_owned();
        let intake = serde_json::json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"});
        self.ok(reqwest::Method::PATCH, &format!("/v1/sessions/{s}/customer"), Some(intake)).await;
        for t in turns {
            let turn = serde_json::json!({"speaker": "patient", "text": t});
            self.ok(reqwest::Method::POST, &format!("/v1/sessions/{s}/turns"), Some(turn)).await;
        }
        self.ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{s}/end"),
            Some(serde_json::json!({"reason": "completed"})),
        )
        .await;
        s
    }
}
