//! `throughline bridge` end to end: the real core and the real bridge, the
//! platforms played by this test with their documented payloads, Twilio's
//! requests signed by Twilio's own Python SDK and Retell's by its
//! documented algorithm in a script of its own.
#![allow(clippy::unwrap_used)]

mod util;

use serde_json::{Value, json};
use util::api::Api;
use util::bridge::{self, PUBLIC_URL, now_ms, retell_signature, route, secret, twilio_signature};
use util::server::client;
use util::{Env, contains};

const SECRET: &[(&str, &str)] = &[("x-vapi-secret", "vapi-shared-secret")];
const NUMBER: &str = "+14155550100";

fn vapi(kind: &str, call_id: &str, extra: Value) -> Vec<u8> {
    let mut m = json!({"type": kind, "timestamp": now_ms(),
        "call": {"id": call_id, "type": "inboundPhoneCall", "phoneCallProvider": "twilio", "customer": {"number": NUMBER}},
        "phoneNumber": {"id": "pn_1", "number": "+14155559999"}, "customer": {"number": NUMBER}});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({"message": m}).to_string().into_bytes()
}

fn tool(id: &str, name: &str, args: Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
}

fn audit_actions(env: &Env) -> String {
    let out = env.tmp.path().join(format!("audit-{}.jsonl", uuid::Uuid::new_v4().simple()));
    env.ok(&["audit", "export", "--tenant", "sunrise", "--format", "jsonl", "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(out).unwrap()
}

/// The seed's dropped call, through Vapi: the call takes intake and a
/// pending date, drops, and the chat picks it up with every turn once,
/// though Vapi sent its end-of-call report twice.
#[tokio::test]
async fn a_dropped_vapi_call_resumes_in_chat() {
    let env = Env::initialised();
    env.tenant(&["sunrise", "--time-zone", "America/Los_Angeles"]);
    let voice = env.issue("sunrise", "voice");
    let chat = env.issue("sunrise", "chat");
    let server = env.serve();
    let s = secret(&env, "vapi", "vapi-shared-secret");
    let b = env.bridge(&server, &route("sunrise-vapi", "vapi", &voice, &s, "assistant_id = \"asst_sunrise\""));

    let (status, answer) =
        b.post_json("/vapi/sunrise-vapi", SECRET, &vapi("assistant-request", "call-1", json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["assistantId"], "asst_sunrise");
    let vars = &answer["assistantOverrides"]["variableValues"];
    let session = vars["throughline_session"].as_str().unwrap().to_owned();
    assert!(session.starts_with("ses_"), "{answer}");
    assert_eq!(vars["identity_status"], "new");
    assert!(vars.as_object().unwrap().values().all(Value::is_string), "variables are strings: {vars}");

    // The tools: arguments as an object and as a JSON string; a made-up
    // session id among them changes nothing.
    let calls = json!([
        tool("t1", "save_intake", json!({"name": "Maria Lopez", "date_of_birth": "1985-03-14"})),
        tool(
            "t2",
            "remember",
            json!("{\"key\":\"pending_booking_date\",\"value\":\"Tuesday\",\"session_id\":\"ses_other\"}")
        ),
    ]);
    let body = vapi("tool-calls", "call-1", json!({"toolCallList": calls}));
    let (status, answer) = b.post_json("/vapi/sunrise-vapi", SECRET, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"results": [
        {"toolCallId": "t1", "name": "save_intake", "result": "Saved."},
        {"toolCallId": "t2", "name": "remember", "result": "Noted."}]})
    );
    // A replayed tool call gets the same answer and does nothing again.
    assert_eq!(b.post_json("/vapi/sunrise-vapi", SECRET, &body).await.1, answer);
    let bad = vapi("tool-calls", "call-1", json!({"toolCallList": [tool("t3", "book_appointment", json!({}))]}));
    let (status, answer) = b.post_json("/vapi/sunrise-vapi", SECRET, &bad).await;
    assert_eq!((status, answer["results"][0]["error"].as_str()), (200, Some("starts_at is required")));

    // The call drops; Vapi reports it twice.
    let t0 = now_ms() - 60_000;
    let messages = json!([
        {"role": "system", "message": "You are the clinic's receptionist.", "time": t0, "secondsFromStart": 0},
        {"role": "bot", "message": "Sunrise Clinic, how can I help?", "time": t0 + 1000, "endTime": t0 + 2000, "secondsFromStart": 1},
        {"role": "user", "message": "I'd like to book a check-up, Tuesday if possible.", "time": t0 + 3000, "endTime": t0 + 5000, "secondsFromStart": 3},
        {"role": "assistant", "message": "Let me look at Tuesday.", "time": t0 + 6000, "secondsFromStart": 6}
    ]);
    let report = vapi(
        "end-of-call-report",
        "call-1",
        json!({"endedReason": "phone-call-provider-closed-websocket",
        "artifact": {"messages": messages, "transcript": "AI: … User: …"}, "analysis": {"summary": "Booking"}}),
    );
    for _ in 0..2 {
        let (status, answer) = b.post_json("/vapi/sunrise-vapi", SECRET, &report).await;
        assert_eq!(status, 200, "{answer}");
    }

    // The chat, over mTLS: a claim, confirmed with the date of birth the call took.
    let chat = Api { http: client(&chat), base: server.url("") };
    let ctx = chat
        .ok(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(json!({"identifiers": {"phone": "(415) 555-0100", "cookie": "c_chat_cookie_0123456789"}})),
        )
        .await;
    let chat_session = ctx["session_id"].as_str().unwrap();
    let ctx = chat
        .ok(
            reqwest::Method::POST,
            &format!("/v1/sessions/{chat_session}/identity/confirm"),
            Some(json!({"date_of_birth": "1985-03-14"})),
        )
        .await;
    assert_eq!(ctx["state"]["pending_booking_date"], "Tuesday", "{ctx}");
    let voice_turns: Vec<&str> = ctx["recent_turns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["channel"] == "voice")
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        voice_turns,
        [
            "Sunrise Clinic, how can I help?",
            "I'd like to book a check-up, Tuesday if possible.",
            "Let me look at Tuesday."
        ]
    );
    assert!(ctx["brief"].as_str().unwrap().contains("dropped"), "{ctx}");

    // The next call from the same number (the clinic's PBX is trusted) is greeted by name.
    let (_, answer) = b.post_json("/vapi/sunrise-vapi", SECRET, &vapi("assistant-request", "call-2", json!({}))).await;
    let overrides = &answer["assistantOverrides"];
    assert_eq!(overrides["variableValues"]["patient_first_name"], "Maria", "{answer}");
    assert_eq!(overrides["variableValues"]["pending"], "booking date: Tuesday");
    assert!(overrides["firstMessage"].as_str().unwrap().starts_with("Hi Maria"));

    // The bridge's log names routes and outcomes, never the patient.
    let log = b.log_text();
    assert!(log.contains("\"kind\":\"end-of-call-report\""), "{log}");
    for phi in ["5550100", "Maria", "1985-03-14", "Tuesday", "check-up"] {
        assert!(!log.contains(phi), "{phi} in the bridge log");
    }
    drop(b);
    drop(server);
    let audit = audit_actions(&env);
    assert_eq!(audit.matches("\"action\":\"session.end\"").count(), 1, "the report's second delivery ended nothing");
}

/// Every refusal is a clear 4xx and nothing reaches the core.
#[tokio::test]
async fn refused_webhooks_store_nothing() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let s = secret(&env, "vapi", "vapi-shared-secret");
    let h = secret(&env, "hmac", "hmac-key");
    let routes = format!(
        "{}{}",
        route("sunrise-vapi", "vapi", &voice, &s, "assistant_id = \"a\""),
        route("sunrise-hmac", "vapi", &voice, &h, "assistant_id = \"a\"\nauth = \"hmac\"\nhmac_prefix = \"sha256=\"")
    );
    let b = env.bridge_with(&server, "metrics_listen = \"127.0.0.1:0\"", &routes);
    let request = vapi("assistant-request", "call-x", json!({}));
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("/vapi/sunrise-vapi", vec![("x-vapi-secret", "wrong".into())], request.clone(), 401, "bad_signature"),
        ("/vapi/sunrise-vapi", vec![], request.clone(), 401, "bad_signature"),
        (
            "/vapi/sunrise-vapi",
            vec![("authorization", "Bearer vapi-shared-secre".into())],
            request.clone(),
            401,
            "bad_signature",
        ),
        ("/vapi/nobody", vec![("x-vapi-secret", "vapi-shared-secret".into())], request.clone(), 404, "unknown_route"),
        ("/retell/sunrise-vapi", vec![], request.clone(), 404, "unknown_route"),
        (
            "/vapi/sunrise-vapi",
            vec![("x-vapi-secret", "vapi-shared-secret".into())],
            vec![b'{'; 70_000],
            413,
            "body_too_large",
        ),
        (
            "/vapi/sunrise-vapi",
            vec![("x-vapi-secret", "vapi-shared-secret".into())],
            b"{\"message\": ".to_vec(),
            400,
            "malformed_body",
        ),
        (
            "/vapi/sunrise-vapi",
            vec![("x-vapi-secret", "vapi-shared-secret".into())],
            b"{\"message\":{\"type\":\"tool-calls\"}}".to_vec(),
            400,
            "malformed_body",
        ),
    ];
    for (path, headers, body, want, code) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = b.post_json(path, &headers, &body).await;
        assert_eq!((status, answer["error"].as_str()), (want, Some(code)), "{path} {headers:?}: {answer}");
    }
    // HMAC: a changed body, and a signature five minutes and a second old.
    let sign = |ts: i64, body: &[u8]| {
        let mut m = ts.to_string().into_bytes();
        m.push(b'.');
        m.extend_from_slice(body);
        format!(
            "sha256={}",
            hex::encode(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"hmac-key"), &m).as_ref())
        )
    };
    let now = now_ms() / 1000;
    let good = sign(now, &request);
    let changed = vapi("assistant-request", "call-y", json!({}));
    let stale_ts = now - 301;
    let stale = sign(stale_ts, &request);
    for (sig, ts, body) in [(&good, now, &changed), (&stale, stale_ts, &request)] {
        let ts = ts.to_string();
        let (status, answer) =
            b.post_json("/vapi/sunrise-hmac", &[("x-signature", sig), ("x-timestamp", &ts)], body).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some("bad_signature")), "{answer}");
    }
    let ts = now.to_string();
    let (status, answer) =
        b.post_json("/vapi/sunrise-hmac", &[("x-signature", &good), ("x-timestamp", &ts)], &request).await;
    assert_eq!(status, 200, "a good HMAC passes: {answer}");
    // The bridge's metrics count each refusal by platform and reason, and name no caller.
    let metrics = reqwest::get(format!("http://{}/metrics", b.metrics.unwrap())).await.unwrap().text().await.unwrap();
    for (reason, n) in [("mismatch", 3), ("missing", 1), ("stale", 1)] {
        let line =
            format!("throughline_bridge_verifications_failed_total{{platform=\"vapi\",reason=\"{reason}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("throughline_bridge_webhooks_total{platform=\"vapi\",status=\"401\"} 5"), "{metrics}");
    assert!(!metrics.contains("4155550100") && !metrics.contains("sunrise"), "{metrics}");
    drop(b);
    drop(server);
    assert_eq!(
        audit_actions(&env).matches("\"action\":\"session.open\"").count(),
        1,
        "only the good request opened a session"
    );
}

/// Twilio's voice, status and SMS webhooks, signed by Twilio's own SDK.
#[tokio::test]
async fn twilio_webhooks_signed_by_twilios_sdk() {
    let python = bridge::platform_python();
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let sms = env.issue("sunrise", "sms");
    let server = env.serve();
    let token = "0123456789abcdef0123456789abcdef";
    let s = secret(&env, "twilio", token);
    let extra = format!(
        "twiml = \"<Response><Connect><Stream url='wss://agent.sunrise.example/s'><Parameter name='session' value='{{{{ session_id }}}}'/></Stream></Connect></Response>\"\nsms_certs = \"{}\"",
        sms.dir.display()
    );
    let b = env.bridge(&server, &route("sunrise-twilio", "twilio", &voice, &s, &extra));
    let call = [
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC1"),
        ("From", NUMBER),
        ("To", "+14155559999"),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("StirVerstat", "TN-Validation-Passed-A"),
    ];
    let url = format!("{PUBLIC_URL}/twilio/sunrise-twilio/voice");
    let sig = twilio_signature(&python, token, &url, &call);
    let (status, twiml) = b.post_form("/twilio/sunrise-twilio/voice", &sig, &call).await;
    assert_eq!(status, 200, "{twiml}");
    assert!(twiml.contains("<Parameter name='session' value='ses_"), "{twiml}");
    // The same request with one parameter changed is refused.
    let mut forged = call;
    forged[2].1 = "+14155550199";
    let (status, _) = b.post_form("/twilio/sunrise-twilio/voice", &sig, &forged).await;
    assert_eq!(status, 401);
    // A signature for another path is refused.
    let (status, _) = b.post_form("/twilio/sunrise-twilio/status", &sig, &call).await;
    assert_eq!(status, 401);

    let done = [
        ("CallSid", call[0].1),
        ("From", NUMBER),
        ("To", "+14155559999"),
        ("CallStatus", "completed"),
        ("Direction", "inbound"),
        ("CallDuration", "42"),
        ("SequenceNumber", "0"),
    ];
    let sig = twilio_signature(&python, token, &format!("{PUBLIC_URL}/twilio/sunrise-twilio/status"), &done);
    for _ in 0..2 {
        let (status, body) = b.post_form("/twilio/sunrise-twilio/status", &sig, &done).await;
        assert_eq!(status, 204, "{body}");
    }

    let text = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", "AC1"),
        ("From", NUMBER),
        ("To", "+14155559999"),
        ("Body", "Can I move my visit to Friday?"),
        ("NumMedia", "0"),
    ];
    let sig = twilio_signature(&python, token, &format!("{PUBLIC_URL}/twilio/sunrise-twilio/sms"), &text);
    for _ in 0..2 {
        let (status, body) = b.post_form("/twilio/sunrise-twilio/sms", &sig, &text).await;
        assert_eq!((status, body.contains("<Response/>")), (200, true), "{body}");
    }
    let log = b.log_text();
    assert!(!log.contains("5550100") && !log.contains("Friday"), "PHI in the bridge log: {log}");
    drop(b);
    drop(server);
    let audit = audit_actions(&env);
    assert_eq!(audit.matches("\"action\":\"session.end\"").count(), 1, "{audit}");
    // A known patient's number texting before confirming: the text is held
    // for staff review (not written, not lost), once though delivered twice.
    let held: Vec<&str> = audit.lines().filter(|l| l.contains("\"action\":\"turn.hold\"")).collect();
    assert_eq!(held.len(), 1, "the text is held once though delivered twice: {held:?}");
    assert!(!audit.contains("\"action\":\"turn.append\""), "nothing written before confirmation");
    assert!(audit.contains(&format!("sms:{}", sms.serial)), "the text came in on the SMS certificate");
    assert!(!contains(audit.as_bytes(), "5550100"));
}

/// Retell: the inbound webhook's variables, a custom function, and the
/// call's end with its transcript recorded once though delivered twice.
#[tokio::test]
async fn retell_events_and_functions() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let key = "key_retell_webhook_badge_0123";
    let s = secret(&env, "retell", key);
    let b = env.bridge(&server, &route("sunrise-retell", "retell", &voice, &s, ""));
    let post = |body: Value, signed_by: &'static str, age_ms: i64| {
        let body = body.to_string().into_bytes();
        let sig = retell_signature(signed_by, &body, now_ms() - age_ms);
        let b = &b;
        async move { b.post_json("/retell/sunrise-retell", &[("x-retell-signature", &sig)], &body).await }
    };
    let inbound = json!({"event": "call_inbound", "call_inbound": {"agent_id": "agent_1", "agent_version": 1, "from_number": NUMBER, "to_number": "+14155559999"}});
    let (status, answer) = post(inbound.clone(), key, 0).await;
    assert_eq!(status, 200, "{answer}");
    let vars = &answer["call_inbound"]["dynamic_variables"];
    assert!(vars.as_object().unwrap().values().all(Value::is_string), "{answer}");
    let session = answer["call_inbound"]["metadata"]["throughline_session"].as_str().unwrap().to_owned();
    assert_eq!(vars["throughline_session"], session.as_str());
    assert_eq!(post(inbound.clone(), "wrong-key", 0).await.0, 401);
    assert_eq!(post(inbound, key, 301_000).await.0, 401, "stale");

    // Retell keeps the metadata the bridge answered with (session and tag)
    // and sends it back on every later event of the call.
    let metadata = answer["call_inbound"]["metadata"].clone();
    let call = json!({"call_id": "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6", "agent_id": "agent_1", "call_type": "phone_call", "direction": "inbound",
        "from_number": NUMBER, "to_number": "+14155559999", "metadata": metadata});
    let (status, answer) = post(
        json!({"name": "save_intake", "call": call, "args": {"name": "Ana Ruiz", "date_of_birth": "1990-07-01"}}),
        key,
        0,
    )
    .await;
    assert_eq!((status, answer["result"].as_str()), (200, Some("Saved.")), "{answer}");
    let mut ended = call.clone();
    ended["disconnection_reason"] = json!("user_hangup");
    ended["transcript_object"] = json!([{"role": "agent", "content": "Hi, Sunrise Clinic.", "words": []}, {"role": "user", "content": "I need a new appointment", "words": []}]);
    for _ in 0..2 {
        let (status, _) = post(json!({"event": "call_ended", "call": ended}), key, 0).await;
        assert_eq!(status, 204);
    }
    drop(b);
    drop(server);
    let audit = audit_actions(&env);
    assert_eq!(audit.matches("\"action\":\"turn.append\"").count(), 2, "each turn once");
    assert_eq!(audit.matches("\"action\":\"session.end\"").count(), 1);
}

/// `GET /healthz` says whether every route's mTLS link to the core works,
/// in one word: no route names on the public listener, and at most one
/// round of checks to the core every five seconds (L6).
#[tokio::test]
async fn healthz_reports_the_link_to_the_core() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let mut server = env.serve();
    let s = secret(&env, "vapi", "x");
    let b = env.bridge(&server, &route("sunrise-vapi", "vapi", &voice, &s, "assistant_id = \"a\""));
    let res = b.http.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    server.terminate();
    // Cached for up to five seconds, then checked again.
    let started = std::time::Instant::now();
    let answer = loop {
        let res = b.http.get(b.url("/healthz")).send().await.unwrap();
        if res.status().as_u16() == 503 {
            break res.json::<Value>().await.unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the core's absence never showed");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(answer, json!({"status": "degraded"}));
    // A call still gets its assistant when the core is down (no context).
    let (status, answer) =
        b.post_json("/vapi/sunrise-vapi", &[("x-vapi-secret", "x")], &vapi("assistant-request", "c", json!({}))).await;
    assert_eq!((status, answer), (200, json!({"assistantId": "a"})));
}

/// A signed Vapi webhook whose body arrives a byte a second for `secs` seconds.
async fn trickled(b: &util::bridge::Bridge, secs: u32) -> reqwest::Result<reqwest::Response> {
    let body = futures_util::stream::unfold(0u32, move |n| async move {
        if n >= secs {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        Some((Ok::<_, std::io::Error>(vec![b' ']), n + 1))
    });
    b.http
        .post(b.url("/vapi/sunrise-vapi"))
        .header("content-type", "application/json")
        .header("x-vapi-secret", "x")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
}

/// L4: a call started by someone else (Vapi's web SDK with the public key)
/// with `assistantOverrides.metadata` naming a patient's session never acts
/// in that session: the bridge trusts only metadata carrying its own tag.
#[tokio::test]
async fn call_metadata_without_the_bridges_tag_names_no_session() {
    let env = Env::initialised();
    env.tenant(&["sunrise", "--time-zone", "America/Los_Angeles"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let s = secret(&env, "vapi", "vapi-shared-secret");
    let b = env.bridge(&server, &route("sunrise-vapi", "vapi", &voice, &s, "assistant_id = \"asst_sunrise\""));
    let (_, answer) = b.post_json("/vapi/sunrise-vapi", SECRET, &vapi("assistant-request", "call-1", json!({}))).await;
    let metadata = &answer["assistantOverrides"]["metadata"];
    let maria = metadata["throughline_session"].as_str().unwrap().to_owned();
    assert_eq!(metadata["throughline_tag"].as_str().map(str::len), Some(64), "{answer}");

    // Another call, from another number, claiming Maria's session.
    let mut evil = serde_json::from_slice::<Value>(&vapi(
        "tool-calls",
        "call-evil",
        json!({"toolCallList": [tool("e1", "remember", json!({"key": "pending_booking_date", "value": "Never"}))]}),
    ))
    .unwrap();
    evil["message"]["call"]["customer"]["number"] = json!("+14155550199");
    evil["message"]["customer"]["number"] = json!("+14155550199");
    evil["message"]["call"]["assistantOverrides"] = json!({"metadata": {"throughline_session": maria}});
    let (status, _) = b.post_json("/vapi/sunrise-vapi", SECRET, evil.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    // A forged tag is no better.
    evil["message"]["call"]["assistantOverrides"]["metadata"]["throughline_tag"] = json!("00".repeat(32));
    evil["message"]["call"]["id"] = json!("call-evil-2");
    evil["message"]["toolCallList"][0]["id"] = json!("e2");
    let (status, _) = b.post_json("/vapi/sunrise-vapi", SECRET, evil.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    let core = Api { http: client(&voice), base: server.url("") };
    let ctx = core.ok(reqwest::Method::GET, &format!("/v1/sessions/{maria}/context"), None).await;
    assert_eq!(ctx["state"].get("pending_booking_date"), None, "another call wrote into Maria's session: {ctx}");
}

/// L6: a webhook body trickled in byte by byte holds its connection no
/// longer than the bridge's body deadline: 408, and the connection closes.
#[tokio::test]
async fn a_trickled_body_is_cut_off_at_the_deadline() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let s = secret(&env, "vapi", "x");
    let b = env.bridge(&server, &route("sunrise-vapi", "vapi", &voice, &s, "assistant_id = \"a\""));
    // One byte a second, for far longer than any deadline the bridge should allow.
    let started = std::time::Instant::now();
    let res = trickled(&b, 60).await;
    let waited = started.elapsed();
    match res {
        Ok(res) => {
            assert_eq!(res.status().as_u16(), 408, "after {waited:?}");
            assert_eq!(res.json::<Value>().await.unwrap()["error"], "body_timeout");
        }
        // The bridge answered and closed while the body was still coming.
        Err(e) => assert!(waited < std::time::Duration::from_secs(30), "{e} after {waited:?}"),
    }
    assert!(waited < std::time::Duration::from_secs(30), "held for {waited:?}");
}

/// L6: one address holding slow requests holds at most its cap of them;
/// the next from it is refused at once, and the slots come back.
#[tokio::test]
async fn one_address_holds_no_more_than_its_requests_in_flight() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let s = secret(&env, "vapi", "x");
    let routes =
        format!("max_in_flight_per_source = 2\n{}", route("sunrise-vapi", "vapi", &voice, &s, "assistant_id = \"a\""));
    let b = std::sync::Arc::new(env.bridge(&server, &routes));
    let trickle = |b: std::sync::Arc<util::bridge::Bridge>| {
        tokio::spawn(async move {
            let _ = trickled(&b, 30).await;
        })
    };
    let held = [trickle(b.clone()), trickle(b.clone())];
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let third = b.http.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(third.status().as_u16(), 503);
    assert_eq!(third.json::<Value>().await.unwrap()["error"], "too_many_requests_in_flight");
    for h in held {
        h.await.unwrap();
    }
    let after = b.http.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 200, "the slots came back");
}

/// A bad configuration is refused whole, one line per problem.
#[test]
fn a_bad_config_is_refused_with_every_problem() {
    let env = Env::initialised();
    let path = env.tmp.path().join("bridge.toml");
    std::fs::write(&path, "core = \"http://x\"\n[webhooks]\nlisten = \"0.0.0.0:1\"\npublic_url = \"https://b\"\n[[route]]\nname = \"v\"\nplatform = \"vapi\"\n").unwrap();
    let out = env.run(&["bridge", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in
        ["core: must be", "webhooks.tls_cert", "route[0].certs", "route[0].secret_file", "route[0].assistant_id"]
    {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(!err.contains("panicked"));
}
