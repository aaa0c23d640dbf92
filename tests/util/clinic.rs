//! A clinic for the identity tests: one tenant with the product's default
//! policy (or a given one), the real server in-process, and an mTLS client
//! per integration; Maria calls, chats and confirms as the reviews played her.
// Test helpers panic on unexpected results by design.
#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::{Value, json};

use super::Env;
use super::api::Api;
use super::inproc::InProcess;

pub const DOB: &str = "1985-03-14";
pub const PHONE: &str = "+1 415 555 0100";

pub struct Clinic {
    pub env: Env,
    pub server: InProcess,
    pub voice: Api,
    pub chat: Api,
    /// A second chat integration of the same clinic.
    pub other_chat: Api,
    pub email: Api,
    /// A second voice integration (another bridge).
    pub other_voice: Api,
    /// The clinic's SMS integration.
    pub sms: Api,
    pub chat_cert: super::server::CertDir,
}

/// The clinic with the product's default policy.
pub fn clinic() -> Clinic {
    clinic_with(None)
}

/// The clinic with a policy file set before the server starts.
pub fn clinic_with(policy: Option<&str>) -> Clinic {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic", "--time-zone", "America/Los_Angeles"]);
    if let Some(p) = policy {
        let file = env.tmp.path().join("policy.toml");
        std::fs::write(&file, p).unwrap();
        env.ok(&["tenant", "policy", "set", "sunrise-clinic", "--file", file.to_str().unwrap()]);
    }
    let voice = env.issue("sunrise-clinic", "voice");
    let chat = env.issue("sunrise-clinic", "chat");
    let other = env.issue("sunrise-clinic", "chat");
    let email = env.issue("sunrise-clinic", "email");
    let other_voice = env.issue("sunrise-clinic", "voice");
    let sms = env.issue("sunrise-clinic", "sms");
    let server = InProcess::start(&env);
    let api = |c| Api::new(&server, c);
    let (voice, chat_api, other_chat, email, other_voice) =
        (api(&voice), api(&chat), api(&other), api(&email), api(&other_voice));
    let sms = api(&sms);
    Clinic { env, server, voice, chat: chat_api, other_chat, email, other_voice, sms, chat_cert: chat }
}

pub fn sid(v: &Value) -> String {
    v["session_id"].as_str().unwrap().to_owned()
}

/// Maria calls (caller ID), gives her name and date of birth, hangs up.
pub async fn maria_calls(c: &Clinic) {
    let body = json!({"identifiers": {"phone": PHONE}, "evidence": {"caller_id_attestation": "A"}});
    let open = c.voice.ok(Method::POST, "/v1/sessions", Some(body)).await;
    assert_eq!(open["identity"]["strength"], "asserted");
    let body = json!({"name": "Maria Lopez", "date_of_birth": DOB});
    c.voice.ok(Method::PATCH, &format!("/v1/sessions/{}/customer", sid(&open)), Some(body)).await;
    c.voice.ok(Method::POST, &format!("/v1/sessions/{}/end", sid(&open)), Some(json!({"reason": "completed"}))).await;
}

pub async fn chat_claims(api: &Api, phone: &str) -> String {
    sid(&api.ok(Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": phone}}))).await)
}

pub async fn guess(api: &Api, session: &str, dob: &str) -> (u16, Value) {
    api.post(&format!("/v1/sessions/{session}/identity/confirm"), json!({"date_of_birth": dob})).await
}

/// A wrong date of birth for the n-th guess (all distinct, none Maria's).
pub fn wrong_dob(n: u32) -> String {
    format!("19{:02}-{:02}-{:02}", 40 + n / 12, 1 + n % 12, 1 + n % 28)
}

/// Maria's chat, confirmed with her date of birth.
pub async fn maria_confirmed_on_chat(c: &Clinic) -> (String, Value) {
    let session = chat_claims(&c.chat, PHONE).await;
    let (status, ctx) = guess(&c.chat, &session, DOB).await;
    assert_eq!(status, 200, "{ctx}");
    (session, ctx)
}

/// The clinic's own policy: its MTA is trusted, caller ID needs attestation A.
pub const CLINIC_MTA: &str =
    "[evidence]\nemail_authserv_ids = [\"mx.sunrise-clinic.example\"]\ncaller_id = \"attested\"\n";

/// A message from `from` with this Message-ID and text.
pub fn mail(from: &str, message_id: &str, text: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: appointments@sunrise-clinic.example\r\nSubject: Appointment\r\n\
         Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}\r\n"
    )
    .into_bytes()
}

/// `raw` as an MTA with `authserv_id` stamps it (a DMARC result for example.com).
pub fn stamped(authserv_id: &str, result: &str, raw: Vec<u8>) -> Vec<u8> {
    let mut out =
        format!("Authentication-Results: {authserv_id}; dmarc={result} header.from=example.com\r\n").into_bytes();
    out.extend(raw);
    out
}

/// The reasons of every `email.inbound` audit record, in order: the
/// sender's evidence and whether the message was held.
pub fn inbound_reasons(store: &store::TenantStore) -> Vec<String> {
    store
        .audit_records()
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "email.inbound")
        .filter_map(|r| r.reason)
        .collect()
}
