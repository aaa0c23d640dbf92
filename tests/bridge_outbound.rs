//! What the bridge sends out by itself: calls for due callbacks (claimed
//! from the real core) and texts (one-time codes, confirmations) through
//! the platforms' APIs, here a recording HTTPS server that checks each
//! request against the platform's documented API (Vapi, Retell and Twilio
//! cannot be reached from here).
#![allow(clippy::unwrap_used)]

mod util;

use base64::Engine as _;
use serde_json::{Value, json};
use util::Env;
use util::api::Api;
use util::bridge::{PUBLIC_URL, platform_python, route, secret, twilio_signature};
use util::recorder::{Recorded, Recorder};
use util::server::{CertDir, Server, client, eventually};

const NUMBER: &str = "+14155550100";

fn rfc3339(offset_min: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::minutes(offset_min);
    t.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// A patient whose call asked for a call back, due now.
async fn patient_with_a_due_callback(server: &Server, voice: &CertDir) {
    let voice = Api { http: client(voice), base: server.url("") };
    let ctx = voice.ok(reqwest::Method::POST, "/v1/sessions", Some(json!({"identifiers": {"phone": NUMBER}}))).await;
    let s = ctx["session_id"].as_str().unwrap().to_owned();
    voice
        .ok(
            reqwest::Method::PATCH,
            &format!("/v1/sessions/{s}/customer"),
            Some(json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"})),
        )
        .await;
    let window = json!({"window_start": rfc3339(-1), "window_end": rfc3339(60)});
    voice.ok(reqwest::Method::POST, &format!("/v1/sessions/{s}/callbacks"), Some(window)).await;
    voice.ok(reqwest::Method::POST, &format!("/v1/sessions/{s}/end"), Some(json!({"reason": "completed"}))).await;
}

async fn placed(recorder: &Recorder, n: usize) -> Vec<Recorded> {
    eventually(20, || async {
        let r = recorder.requests();
        (r.len() >= n).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("{n} platform requests expected, got {:?}", recorder.requests()))
}

fn audit_count(env: &Env, action: &str) -> usize {
    let out = env.tmp.path().join(format!("audit-{}.jsonl", uuid::Uuid::new_v4().simple()));
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "jsonl", "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(out).unwrap().matches(&format!("\"action\":\"{action}\"")).count()
}

fn ca_file(env: &Env, recorder: &Recorder) -> String {
    let p = env.tmp.path().join("platform-ca.pem");
    std::fs::write(&p, &recorder.ca_pem).unwrap();
    format!("platform_ca_file = \"{}\"", p.display())
}

/// Vapi `POST /call`: refused once (the callback goes back in the queue),
/// then placed; the call's report settles the callback.
#[tokio::test]
async fn vapi_places_due_callbacks_and_requeues_a_refused_one() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let (voice, bridge_voice) = (env.issue("sunrise", "voice"), env.issue("sunrise", "voice"));
    let server = env.serve();
    let recorder = Recorder::start();
    recorder.fail_first(1);
    let s = secret(&env, "vapi", "vapi-shared-secret");
    let key = secret(&env, "vapi-api", "vapi-private-api-key");
    let extra = format!(
        "assistant_id = \"asst_1\"\napi_key_file = \"{}\"\nphone_number_id = \"pn_clinic\"\napi_url = \"{}\"\ncallback_poll_secs = 1",
        key.display(),
        recorder.url
    );
    let b =
        env.bridge_with(&server, &ca_file(&env, &recorder), &route("sunrise-vapi", "vapi", &bridge_voice, &s, &extra));
    patient_with_a_due_callback(&server, &voice).await;

    let requests = placed(&recorder, 2).await;
    for r in &requests[..2] {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/call"));
        assert_eq!(r.header("authorization"), Some("Bearer vapi-private-api-key"));
    }
    let call = requests[1].json();
    assert_eq!(call["assistantId"], "asst_1");
    assert_eq!(call["phoneNumberId"], "pn_clinic");
    assert_eq!(call["customer"]["number"], NUMBER);
    let overrides = &call["assistantOverrides"];
    let session = overrides["metadata"]["throughline_session"].as_str().unwrap().to_owned();
    assert!(session.starts_with("ses_"));
    assert!(overrides["variableValues"].as_object().unwrap().values().all(Value::is_string));
    assert!(!overrides["firstMessage"].as_str().unwrap().contains("Maria"), "whoever answers is not yet the patient");

    // Vapi reports the call it placed (its id, our metadata echoed back).
    let report = json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call",
        "call": {"id": "vapi-out-2", "type": "outboundPhoneCall", "customer": {"number": NUMBER},
                 "assistantOverrides": {"metadata": {"throughline_session": session}}},
        "artifact": {"messages": [{"role": "bot", "message": "Hello, this is your clinic returning your call.", "time": 1}]}}});
    let (status, _) = b
        .post_json("/vapi/sunrise-vapi", &[("x-vapi-secret", "vapi-shared-secret")], report.to_string().as_bytes())
        .await;
    assert_eq!(status, 200);
    drop(b);
    drop(server);
    assert_eq!(audit_count(&env, "callback.requeue"), 1, "the refused placement put it back");
    assert_eq!(audit_count(&env, "callback.done"), 1, "the answered call settled it");
}

/// Twilio's Calls resource with the route's TwiML; the status callback of
/// the placed call (signed by Twilio's SDK) settles the callback.
#[tokio::test]
async fn twilio_places_due_callbacks() {
    let python = platform_python();
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let (voice, bridge_voice) = (env.issue("sunrise", "voice"), env.issue("sunrise", "voice"));
    let server = env.serve();
    let recorder = Recorder::start();
    let token = "0123456789abcdef0123456789abcdef";
    let s = secret(&env, "twilio", token);
    let extra = format!(
        "stream_url = \"wss://agent.sunrise.example/s\"\naccount_sid = \"AC0123\"\nfrom = \"+14155559999\"\napi_url = \"{}\"\ncallback_poll_secs = 1",
        recorder.url
    );
    let b = env.bridge_with(
        &server,
        &ca_file(&env, &recorder),
        &route("sunrise-twilio", "twilio", &bridge_voice, &s, &extra),
    );
    patient_with_a_due_callback(&server, &voice).await;

    let r = placed(&recorder, 1).await.remove(0);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/2010-04-01/Accounts/AC0123/Calls.json"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("AC0123:{token}"));
    assert_eq!(r.header("authorization"), Some(format!("Basic {basic}").as_str()));
    let form = r.form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!((get("To"), get("From")), (Some(NUMBER), Some("+14155559999")));
    assert!(get("Twiml").unwrap().contains("<Parameter name=\"throughline_session\" value=\"ses_"), "{form:?}");
    let status_url = get("StatusCallback").unwrap().to_owned();
    let path = status_url.strip_prefix(PUBLIC_URL).unwrap().to_owned();
    assert!(path.starts_with("/twilio/sunrise-twilio/status?throughline_session=ses_"), "{status_url}");

    let sid = format!("CA{:032}", 1);
    let done = [
        ("CallSid", sid.as_str()),
        ("From", "+14155559999"),
        ("To", NUMBER),
        ("CallStatus", "completed"),
        ("Direction", "outbound-api"),
    ];
    let sig = twilio_signature(&python, token, &status_url, &done);
    let (status, body) = b.post_form(&path, &sig, &done).await;
    assert_eq!(status, 204, "{body}");
    drop(b);
    drop(server);
    assert_eq!(audit_count(&env, "callback.done"), 1);
}

/// Retell's create-phone-call with string dynamic variables and the
/// session in metadata.
#[tokio::test]
async fn retell_places_due_callbacks() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let (voice, bridge_voice) = (env.issue("sunrise", "voice"), env.issue("sunrise", "voice"));
    let server = env.serve();
    let recorder = Recorder::start();
    let s = secret(&env, "retell", "key_retell_0123");
    let extra = format!("from_number = \"+14155559999\"\napi_url = \"{}\"\ncallback_poll_secs = 1", recorder.url);
    let _b = env.bridge_with(
        &server,
        &ca_file(&env, &recorder),
        &route("sunrise-retell", "retell", &bridge_voice, &s, &extra),
    );
    patient_with_a_due_callback(&server, &voice).await;
    let r = placed(&recorder, 1).await.remove(0);
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v2/create-phone-call"));
    assert_eq!(r.header("authorization"), Some("Bearer key_retell_0123"));
    let body = r.json();
    assert_eq!((body["from_number"].as_str(), body["to_number"].as_str()), (Some("+14155559999"), Some(NUMBER)));
    assert!(body["retell_llm_dynamic_variables"].as_object().unwrap().values().all(Value::is_string));
    assert!(body["metadata"]["throughline_session"].as_str().unwrap().starts_with("ses_"));
}

/// A bridge with a Vapi route that texts through a Twilio route's account,
/// whose API is the recorder.
fn texting_bridge(env: &Env, server: &Server, recorder: &Recorder, bridge_voice: &CertDir) -> util::bridge::Bridge {
    let (vs, ts) = (secret(env, "vapi", "vapi-shared-secret"), secret(env, "twilio", "twilio-auth-token"));
    let twilio = format!(
        "stream_url = \"wss://agent.sunrise.example/s\"\naccount_sid = \"AC0123\"\nfrom = \"+14155559999\"\napi_url = \"{}\"",
        recorder.url
    );
    let routes = format!(
        "{}{}",
        route("sunrise-vapi", "vapi", bridge_voice, &vs, "assistant_id = \"a\"\nsms_via = \"sunrise-twilio\""),
        route("sunrise-twilio", "twilio", bridge_voice, &ts, &twilio)
    );
    env.bridge_with(server, &ca_file(env, recorder), &routes)
}

/// A Vapi server message of `kind` for a call from [`NUMBER`], with `extra` fields.
fn vapi_message(call_id: &str, kind: &str, extra: Value) -> String {
    let mut m = json!({"type": kind, "call": {"id": call_id, "customer": {"number": NUMBER}}});
    for (k, v) in extra.as_object().expect("an object") {
        m[k] = v.clone();
    }
    json!({"message": m}).to_string()
}

/// A Vapi call asks for a code by text: the core picks the number on file,
/// Twilio's Messages resource sends it, the caller reads it back and is
/// confirmed with possession; the booking that follows is confirmed by text
/// with its time and not its reason.
#[tokio::test]
async fn codes_and_confirmations_go_out_by_text() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let (voice, bridge_voice) = (env.issue("sunrise", "voice"), env.issue("sunrise", "voice"));
    let server = env.serve();
    let recorder = Recorder::start();
    let b = texting_bridge(&env, &server, &recorder, &bridge_voice);
    // A patient on file with this number (the clinic's PBX asserted it).
    let api = Api { http: client(&voice), base: server.url("") };
    api.patient_on_file(json!({"phone": NUMBER}), &[]).await;

    let vapi = |kind: &str, extra: Value| vapi_message("call-texts", kind, extra);
    let secret = [("x-vapi-secret", "vapi-shared-secret")];
    let (status, _) = b.post_json("/vapi/sunrise-vapi", &secret, vapi("assistant-request", json!({})).as_bytes()).await;
    assert_eq!(status, 200);
    let tool = |id: &str, name: &str, args: Value| {
        vapi(
            "tool-calls",
            json!({"toolCallList": [{"id": id, "type": "function", "function": {"name": name, "arguments": args}}]}),
        )
    };
    let (_, answer) =
        b.post_json("/vapi/sunrise-vapi", &secret, tool("t1", "send_code", json!({"via": "sms"})).as_bytes()).await;
    assert!(
        answer["results"][0]["result"].as_str().is_some_and(|r| r.contains("on its way")),
        "{answer} {}",
        b.log_text()
    );
    let sent = placed(&recorder, 1).await.remove(0);
    assert_eq!(sent.path, "/2010-04-01/Accounts/AC0123/Messages.json");
    let form = sent.form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!((get("To").as_str(), get("From").as_str()), (NUMBER, "+14155559999"));
    let code: String = get("Body").chars().filter(char::is_ascii_digit).take(6).collect();
    assert_eq!(code.len(), 6, "{form:?}");

    let (_, answer) =
        b.post_json("/vapi/sunrise-vapi", &secret, tool("t2", "confirm_code", json!({"code": code})).as_bytes()).await;
    assert!(
        answer["results"][0]["result"].as_str().unwrap().starts_with("Identity confirmed. Patient: Maria."),
        "{answer}"
    );
    let starts = rfc3339(3 * 24 * 60);
    let book = json!({"starts_at": starts, "duration_min": 30, "reason": "knee pain"});
    let (_, answer) = b.post_json("/vapi/sunrise-vapi", &secret, tool("t3", "book_appointment", book).as_bytes()).await;
    assert!(answer["results"][0]["result"].as_str().unwrap().starts_with("Booked for "), "{answer}");
    let confirmation = placed(&recorder, 2).await.remove(1);
    let body: String = confirmation.form().into_iter().find(|(k, _)| k == "Body").map(|(_, v)| v).unwrap();
    assert!(body.starts_with("Your appointment is booked for "), "{body}");
    assert!(!body.contains("knee"), "a text carries the time, never the reason");
}

/// Dropped-call recovery (docs/OUTCOMES.md): Sarah's call ends "completed"
/// at Vapi (she hung up) with a booking date pending, so it is interrupted;
/// the clinic's recovery policy has the core mint a resume link and the
/// bridge text it, naming nobody, to the number that called. The link
/// opens her conversation once (possession); a second time it is refused.
#[tokio::test]
async fn an_interrupted_call_gets_its_resume_link_by_text() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let policy = env.tmp.path().join("recovery.toml");
    std::fs::write(
        &policy,
        format!(
            "{}[recovery]\nresume_link = true\nlink_base = \"https://chat.sunrise.example/resume\"\n",
            util::TEST_EVIDENCE
        ),
    )
    .unwrap();
    env.ok(&["tenant", "policy", "set", "sunrise", "--file", policy.to_str().unwrap()]);
    let (chat, bridge_voice) = (env.issue("sunrise", "chat"), env.issue("sunrise", "voice"));
    let server = env.serve();
    let recorder = Recorder::start();
    let b = texting_bridge(&env, &server, &recorder, &bridge_voice);
    let vapi = |kind: &str, extra: Value| vapi_message("call-sarah", kind, extra);
    let secret = [("x-vapi-secret", "vapi-shared-secret")];
    let (status, _) = b.post_json("/vapi/sunrise-vapi", &secret, vapi("assistant-request", json!({})).as_bytes()).await;
    assert_eq!(status, 200);
    let remember = json!({"toolCallList": [{"id": "t1", "type": "function",
        "function": {"name": "remember", "arguments": {"key": "pending_booking_date", "value": "Tuesday"}}}]});
    let (_, answer) = b.post_json("/vapi/sunrise-vapi", &secret, vapi("tool-calls", remember).as_bytes()).await;
    assert!(answer["results"][0]["result"].is_string(), "{answer}");
    let report =
        vapi("end-of-call-report", json!({"endedReason": "customer-ended-call", "artifact": {"messages": []}}));
    for _ in 0..2 {
        let (status, answer) = b.post_json("/vapi/sunrise-vapi", &secret, report.as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
    }

    let sent = placed(&recorder, 1).await;
    assert_eq!(sent.len(), 1, "one text, though Vapi reported the end twice");
    let form = sent[0].form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!((get("To").as_str(), get("From").as_str()), (NUMBER, "+14155559999"));
    let body = get("Body");
    assert!(
        body.starts_with(
            "We got cut off. You can pick up where you left off here: https://chat.sunrise.example/resume#rt1."
        ),
        "{body}"
    );
    assert!(
        !body.contains("Tuesday") && !body.to_lowercase().contains("booking"),
        "the text says nothing of why: {body}"
    );
    let token = body.split('#').nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(!b.log_text().contains(&token), "the link reached the bridge's log");

    let chat = Api { http: client(&chat), base: server.url("") };
    let (status, ctx) = chat.post("/v1/sessions", json!({"identifiers": {"resume_token": token}})).await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["identity"]["strength"], "possession", "{ctx}");
    assert_eq!(ctx["state"]["pending_booking_date"], "Tuesday", "{ctx}");
    let (status, again) = chat.post("/v1/sessions", json!({"identifiers": {"resume_token": token}})).await;
    assert_eq!((status, again["error"].as_str()), (401, Some("invalid_resume_token")), "{again}");
}
