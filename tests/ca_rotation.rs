//! `throughline cert rotate-ca` (issue 21): during the overlap the real
//! server accepts certificates from both CAs, and a client that trusts only
//! the old CA still verifies the server (the new CA cross-signed by the old
//! is presented after the server's certificate); `cert list` says which CA
//! issued each; when the overlap ends the old CA's certificates are refused,
//! at the API while the server runs and at the handshake after a restart.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use util::Env;
use util::inproc::InProcess;
use util::server::{CertDir, client_with, tls_config};

/// The first certificate of a PEM bundle (`ca.crt` after a rotation holds both CAs).
fn first_pem(bundle: &str) -> String {
    let end = "-----END CERTIFICATE-----\n";
    let i = bundle.find(end).unwrap() + end.len();
    bundle[..i].to_owned()
}

/// A client presenting `certs`' certificate and trusting only `ca_pem`.
fn trusting(certs: &CertDir, ca_pem: &str) -> reqwest::Client {
    client_with(tls_config(ca_pem, &certs.read("client.crt"), &certs.read("client.key")))
}

async fn health(http: &reqwest::Client, server: &InProcess) -> Result<(u16, serde_json::Value), String> {
    let res = http.get(server.url("/v1/health")).send().await.map_err(|e| format!("{e:?}"))?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or_default()))
}

#[tokio::test]
async fn both_cas_work_in_the_overlap_and_the_old_one_stops_after_it() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let old = env.issue("sunrise", "voice");
    let old_ca = old.read("ca.crt");
    assert_eq!(old_ca.matches("BEGIN CERTIFICATE").count(), 1);

    let said = env.ok(&["cert", "rotate-ca", "--overlap", "30d"]);
    assert!(said.contains("CA generation 2 is current"), "{said}");
    assert!(said.contains("reissue the 1 channel certificate(s)"), "{said}");
    let new = env.issue("sunrise", "chat");
    let bundle = new.read("ca.crt");
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "ca.crt holds both CAs in the overlap");
    let new_ca = first_pem(&bundle);
    assert_ne!(new_ca, old_ca);

    let list = env.ok(&["cert", "list"]);
    assert!(list.lines().any(|l| l.starts_with("ca 2\tcurrent\tuntil ")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("ca 1\tretired, still trusted\ttrusted until ")), "{list}");
    let line =
        |channel: &str| list.lines().find(|l| l.contains(&format!("\tsunrise\t{channel}\t"))).unwrap().to_owned();
    assert!(line("voice").contains("reissue") && line("voice").ends_with("\tca 1"), "{list}");
    assert!(line("chat").contains("\tactive\t") && line("chat").ends_with("\tca 2"), "{list}");

    let doctor = String::from_utf8(env.run(&["doctor"]).stdout).unwrap();
    assert!(doctor.contains("1 channel certificate(s) from it still to reissue"), "{doctor}");

    let server = InProcess::start(&env);
    // The old integration, unchanged: its certificate and its CA file from before the rotation.
    let (status, body) = health(&trusting(&old, &old_ca), &server).await.unwrap();
    assert_eq!(
        status, 200,
        "the old CA's certificate in the overlap, the server verified through the cross-signed CA: {body}"
    );
    // A new integration that trusts only the new CA.
    let (status, body) = health(&trusting(&new, &new_ca), &server).await.unwrap();
    assert_eq!((status, body["channel"].as_str()), (200, Some("chat")), "{body}");

    // The overlap ends while the server runs: the old CA's certificate is refused at the API.
    server.clock.advance_ms(31 * 86_400_000);
    let (status, body) = health(&trusting(&old, &old_ca), &server).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (401, Some("ca_retired")), "{body}");
    let (status, _) = health(&trusting(&new, &new_ca), &server).await.unwrap();
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn after_the_overlap_the_old_ca_is_not_even_trusted_at_the_handshake() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let old = env.issue("sunrise", "voice");
    env.ok(&["cert", "rotate-ca", "--overlap", "1s"]);
    let new = env.issue("sunrise", "voice");
    assert_eq!(new.read("ca.crt").matches("BEGIN CERTIFICATE").count(), 2, "still in the overlap");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let list = env.ok(&["cert", "list"]);
    assert!(list.lines().any(|l| l.starts_with("ca 1\tretired\t")), "{list}");
    let old_line = list.lines().find(|l| l.starts_with(&old.serial)).unwrap();
    assert!(old_line.contains("its CA was retired"), "{list}");

    let server = InProcess::start(&env);
    let refused = health(&trusting(&old, &old.read("ca.crt")), &server).await;
    assert!(refused.is_err(), "the old CA is out of the trust store (and the server's chain): {refused:?}");
    let (status, _) = health(&util::server::client(&new), &server).await.unwrap();
    assert_eq!(status, 200, "the new certificate with the bundle it was issued with");
    // A certificate issued after the overlap carries only the current CA.
    let later = env.issue("sunrise", "chat");
    assert_eq!(later.read("ca.crt").matches("BEGIN CERTIFICATE").count(), 1);
    server.stop().await;
}
