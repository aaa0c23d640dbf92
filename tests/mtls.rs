//! Mutual TLS end to end: the real server on 127.0.0.1:0 with real
//! certificates from the clinic's CA, and every refusal of issue 4.

mod util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::Value;
use server::{Clock as _, Installation, ManualClock, SystemClock};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use util::server::{anonymous_client, client, client_with, eventually, tls_config};
use util::{Env, PASSPHRASE};

fn env_with_tenants(names: &[&str]) -> Env {
    let env = Env::initialised();
    for n in names {
        env.tenant(&[n]);
    }
    env
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let res = client.get(url).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

fn passphrase() -> SecretString {
    SecretString::from(PASSPHRASE.to_owned())
}

#[tokio::test]
async fn health_names_the_certificates_tenant_and_channel() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let res = client(&voice).get(server.url("/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["tenant"], "sunrise");
    assert_eq!(body["channel"], "voice");
    assert_eq!(body["certificate_serial"], voice.serial.as_str());

    // One structured log line per request, naming tenant, channel and serial.
    let log = eventually(3, || async {
        let log = server.log_text();
        log.contains("\"route\":\"/v1/health\"").then_some(log)
    })
    .await
    .expect("request logged");
    let line = log.lines().find(|l| l.contains("\"route\":\"/v1/health\"")).unwrap();
    let entry: Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["serial"], voice.serial.as_str());
    assert_eq!(entry["channel"], "voice");
    assert!(entry["tenant"].as_str().unwrap().starts_with("ten_"));
    assert_eq!(entry["status"], 200);
}

#[tokio::test]
async fn openapi_document_and_json_errors_for_unknown_routes() {
    let env = env_with_tenants(&["sunrise"]);
    let chat = env.issue("sunrise", "chat");
    let server = env.serve();
    let c = client(&chat);
    let (status, doc) = get(&c, &server.url("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/health"]["get"].is_object());

    let (status, body) = get(&c, &server.url("/v1/nothing-here")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let res = c.delete(server.url("/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "method_not_allowed");
    let res = c.get(server.url("/v1/sessions/ses_00000000000000000000000000000000/state/k")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["allow"].to_str().unwrap()), (405, "DELETE, PUT"));
}

#[tokio::test]
async fn no_client_certificate_is_refused_at_the_handshake() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let err = anonymous_client(&voice.dir.join("ca.crt")).get(server.url("/v1/health")).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    // The server keeps serving others.
    assert_eq!(get(&client(&voice), &server.url("/v1/health")).await.0, 200);
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused_and_counted() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let other = env_with_tenants(&["sunrise"]);
    let foreign = other.issue("sunrise", "voice");
    let server = env.serve();
    // Trust our server's CA, but present the other installation's certificate.
    let config = tls_config(&voice.read("ca.crt"), &foreign.read("client.crt"), &foreign.read("client.key"));
    assert!(client_with(config).get(server.url("/v1/health")).send().await.is_err());
    let (status, body) = get(&client(&voice), &server.url("/v1/health")).await;
    assert_eq!(status, 200);
    assert!(body["refused_certificates"].as_u64().unwrap() >= 1, "{body}");
    assert!(server.log_text().contains("client certificate refused at handshake"));
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    // Issue a one-day certificate ten days in the past.
    let ten_days_ago = SystemClock.now_ms() - 10 * 86_400_000;
    let mut inst = Installation::open(&env.data, &passphrase(), Arc::new(ManualClock::new(ten_days_ago))).unwrap();
    let old = inst.issue_channel_cert("sunrise", policy::Channel::Voice, 1).unwrap();
    drop(inst);
    let server = env.serve();
    let config = tls_config(&voice.read("ca.crt"), &old.cert_pem, &old.key_pem);
    assert!(client_with(config).get(server.url("/v1/health")).send().await.is_err());
    let (_, body) = get(&client(&voice), &server.url("/v1/health")).await;
    assert!(body["refused_certificates"].as_u64().unwrap() >= 1, "{body}");
}

#[tokio::test]
async fn certificate_without_client_auth_is_refused() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    // A certificate from the right CA, but for serverAuth only.
    let mut inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let server_only = inst.issue_server_cert(vec!["localhost".into()], 30).unwrap();
    drop(inst);
    let server = env.serve();
    let config = tls_config(&voice.read("ca.crt"), &server_only.cert_pem, &server_only.key_pem);
    assert!(client_with(config).get(server.url("/v1/health")).send().await.is_err());
    let (_, body) = get(&client(&voice), &server.url("/v1/health")).await;
    assert!(body["refused_certificates"].as_u64().unwrap() >= 1, "{body}");
}

#[tokio::test]
async fn revocation_takes_effect_within_seconds_on_a_live_connection() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let chat = env.issue("sunrise", "chat");
    let server = env.serve();
    let c = client(&voice);
    assert_eq!(get(&c, &server.url("/v1/health")).await.0, 200);

    let revoked_at = Instant::now();
    assert_eq!(env.ok(&["cert", "revoke", &voice.serial]).trim(), format!("revoked {}", voice.serial));
    // Same client, same pooled keep-alive connection: refused once the registry refreshes.
    let body = eventually(5, || async {
        let (status, body) = get(&c, &server.url("/v1/health")).await;
        (status == 401).then_some(body)
    })
    .await
    .expect("revocation never took effect");
    assert_eq!(body["error"], "certificate_revoked");
    eprintln!("revocation effective after {:?}", revoked_at.elapsed());
    // A new connection is refused too; other certificates still work.
    assert_eq!(get(&client(&voice), &server.url("/v1/health")).await.0, 401);
    assert_eq!(get(&client(&chat), &server.url("/v1/health")).await.0, 200);
    assert!(server.log_text().contains("\"code\":\"certificate_revoked\""));
    // Revoking again is idempotent; an unknown serial is an error.
    assert!(env.ok(&["cert", "revoke", &voice.serial]).contains("already revoked"));
    let line = env.fails(&mut env.cmd(&["cert", "revoke", "00ff"]));
    assert_eq!(line, "error: no certificate with serial 00ff");
}

#[tokio::test]
async fn certificate_of_a_deleted_tenant_is_refused() {
    let env = env_with_tenants(&["sunrise", "harbor"]);
    let sunrise = env.issue("sunrise", "chat");
    let harbor = env.issue("harbor", "chat");
    let server = env.serve();
    assert_eq!(get(&client(&sunrise), &server.url("/v1/health")).await.0, 200);
    env.ok(&["tenant", "delete", "sunrise"]);
    let body = eventually(5, || async {
        let (status, body) = get(&client(&sunrise), &server.url("/v1/health")).await;
        (status == 403).then_some(body)
    })
    .await
    .expect("deleted tenant still served");
    assert_eq!(body["error"], "tenant_deleted");
    assert_eq!(get(&client(&harbor), &server.url("/v1/health")).await.0, 200);
    // The name is not reused.
    let line = env.fails(&mut env.cmd(&["tenant", "create", "sunrise"]));
    assert!(line.contains("already exists"), "{line}");
}

#[tokio::test]
async fn garbage_client_hello_is_dropped_and_others_are_served() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let garbage: Vec<u8> = (0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    tcp.write_all(&garbage).await.unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await.expect("server closes");
    // Either a TLS alert then close, or a reset: never an HTTP response.
    if let Ok(n) = read {
        assert!(!buf[..n].starts_with(b"HTTP/"), "answered garbage with HTTP");
    }
    assert_eq!(get(&client(&voice), &server.url("/v1/health")).await.0, 200);
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();
    let c = client(&voice);
    let res = c.post(server.url("/v1/health")).body(vec![b'x'; 1024 * 1024]).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "body_too_large");
    assert_eq!(get(&c, &server.url("/v1/health")).await.0, 200);
}

#[tokio::test]
async fn slow_clients_time_out_and_others_are_served() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let server = env.serve();

    // 1. A TCP connection that never starts the handshake.
    let started = Instant::now();
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await.expect("closed by server");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    eprintln!("idle handshake closed after {:?}", started.elapsed());

    // 2. A TLS connection whose request head never finishes.
    let config = tls_config(&voice.read("ca.crt"), &voice.read("client.crt"), &voice.read("client.key"));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut response)).await;
    assert!(r.is_ok(), "slow request was never cut off");
    let text = String::from_utf8_lossy(&response);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    eprintln!("slow request head cut off after {:?}", started.elapsed());

    // 3. A body trickled byte by byte (L2): cut at the request deadline (six
    // head timeouts), never held open for the 10 MiB the route allows.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    tls.write_all(b"POST /v1/email/inbound HTTP/1.1\r\nHost: localhost\r\nContent-Type: message/rfc822\r\nContent-Length: 100000\r\n\r\nFrom:")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let trickle = async {
        for _ in 0..40 {
            if tls.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), tls.read(&mut buf)).await {
                answer.extend_from_slice(&buf[..n]);
                if n == 0 || answer.starts_with(b"HTTP/") {
                    break;
                }
            }
        }
    };
    trickle.await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408") || text.is_empty(), "{text}");
    assert!(started.elapsed() < Duration::from_secs(9), "the trickled body was held {:?}", started.elapsed());
    eprintln!("trickled body cut off after {:?}", started.elapsed());

    assert_eq!(get(&client(&voice), &server.url("/v1/health")).await.0, 200);
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let mut server = env.serve();
    assert_eq!(get(&client(&voice), &server.url("/v1/health")).await.0, 200);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(server.log_text().contains("\"message\":\"stopped\""));
}

/// L5: an SMS integration gets its certificate, and it is served as sms.
#[tokio::test]
async fn an_sms_certificate_is_issued_and_served() {
    let env = env_with_tenants(&["sunrise"]);
    let sms = env.issue("sunrise", "sms");
    assert!(env.ok(&["cert", "list"]).contains("\tsunrise\tsms\t"));
    let server = util::inproc::InProcess::start(&env);
    let res = client(&sms).get(server.url("/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["channel"], "sms");
    server.stop().await;
}

#[test]
fn cert_issue_refuses_to_overwrite_and_unknown_tenant() {
    let env = env_with_tenants(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let dir = voice.dir.to_str().unwrap();
    let before = std::fs::read(voice.dir.join("client.key")).unwrap();
    let line = env.fails(&mut env.cmd(&["cert", "issue", "--tenant", "sunrise", "--channel", "chat", "--out", dir]));
    assert!(line.contains("already exists; choose another --out"), "{line}");
    assert_eq!(std::fs::read(voice.dir.join("client.key")).unwrap(), before);
    let other = env.tmp.path().join("x");
    let line = env.fails(&mut env.cmd(&[
        "cert",
        "issue",
        "--tenant",
        "nobody",
        "--channel",
        "chat",
        "--out",
        other.to_str().unwrap(),
    ]));
    assert_eq!(line, "error: no tenant named 'nobody'");
    assert!(!other.exists());
    let list = env.ok(&["cert", "list"]);
    assert_eq!(list.lines().filter(|l| l.contains("\tsunrise\tvoice\t")).count(), 1, "{list}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(voice.dir.join("client.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "client.key readable by others: {mode:o}");
    }
}

#[tokio::test]
async fn tenant_and_channel_come_from_the_certificate_never_the_request() {
    let env = env_with_tenants(&["sunrise", "harbor"]);
    let chat = env.issue("sunrise", "chat");
    let server = env.serve();
    let res = client(&chat)
        .get(server.url("/v1/health?tenant=harbor&channel=voice"))
        .header("x-tenant", "harbor")
        .header("x-channel", "voice")
        .header("x-throughline-tenant", "harbor")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["tenant"].as_str(), body["channel"].as_str()), (Some("sunrise"), Some("chat")));
}
