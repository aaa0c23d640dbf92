//! The demo's Vapi act: the real `bridge` (its own HTTPS listener, its own
//! voice certificate) between a Vapi assistant and the core. The patient
//! calls the morning after the email; Vapi asks the bridge who is calling,
//! the agent confirms the patient with a tool, the call ends, and Vapi's
//! report (sent twice, as Vapi may) records each turn once.

use std::path::Path;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use server::tls::IssuedCert;

const SECRET: &str = "demo-vapi-shared-secret";

/// The bridge started for the act; stopped with [`Bridge::stop`].
pub struct Bridge {
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
    base: String,
}

/// Writes the bridge's files (its HTTPS certificate, a voice certificate
/// of its own, Vapi's secret, bridge.toml) and starts it on 127.0.0.1:0.
pub fn start(voice: &IssuedCert, dir: &Path, core: &str, ca_pem: &str) -> anyhow::Result<Bridge> {
    super::step("bridge", "Vapi cannot present a client certificate: `throughline bridge` holds one and speaks Vapi");
    let certs = dir.join("certs-bridge-voice");
    std::fs::create_dir_all(&certs)?;
    std::fs::write(certs.join("ca.crt"), ca_pem)?;
    std::fs::write(certs.join("client.crt"), &voice.cert_pem)?;
    std::fs::write(certs.join("client.key"), voice.key_pem.as_bytes())?;
    let listener = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    std::fs::write(dir.join("bridge.crt"), listener.cert.pem())?;
    std::fs::write(dir.join("bridge.key"), listener.signing_key.serialize_pem())?;
    std::fs::write(dir.join("vapi.secret"), SECRET)?;
    let toml = format!(
        "core = \"{core}\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"bridge.crt\"\ntls_key = \"bridge.key\"\n\
         public_url = \"https://bridge.sunrise-clinic.example\"\n\n[[route]]\nname = \"sunrise-vapi\"\nplatform = \"vapi\"\n\
         certs = \"certs-bridge-voice\"\nsecret_file = \"vapi.secret\"\nassistant_id = \"asst_sunrise_receptionist\"\n"
    );
    let path = dir.join("bridge.toml");
    std::fs::write(&path, &toml)?;
    println!("    bridge.toml (the whole integration; no code):");
    for line in toml.lines() {
        println!("      {line}");
    }
    let config = bridge::read_config(&path)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || -> anyhow::Result<()> {
        actix_web::rt::System::new().block_on(async move {
            match bridge::bind(&config) {
                Ok(bound) => match (bound.addr, &bound.server) {
                    (Some(addr), Some(server)) => {
                        let _ = tx.send(Ok((addr, server.handle())));
                        bound.run().await?;
                    }
                    _ => anyhow::bail!("the demo's bridge has no webhook listener"),
                },
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
            Ok(())
        })
    });
    let (addr, handle) = rx.recv().context("bridge thread ended")??;
    println!(
        "    bridge listening on https://{addr}; Vapi's server URL: https://bridge.sunrise-clinic.example/vapi/sunrise-vapi"
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(listener.cert.der().clone())?;
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let http = reqwest::Client::builder().use_preconfigured_tls(tls).build()?;
    Ok(Bridge { handle, thread, http, base: format!("https://localhost:{}/vapi/sunrise-vapi", addr.port()) })
}

impl Bridge {
    async fn vapi(&self, secret: &str, message: Value) -> anyhow::Result<(u16, Value)> {
        let res = self
            .http
            .post(&self.base)
            .header("x-vapi-secret", secret)
            .json(&json!({"message": message}))
            .send()
            .await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(Value::Null)))
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.thread.join().map_err(|_| anyhow::anyhow!("bridge thread panicked"))?
    }
}

fn call(kind: &str) -> Value {
    json!({"type": kind, "call": {"id": "vapi-call-7c1e", "type": "inboundPhoneCall", "phoneCallProvider": "twilio",
        "customer": {"number": super::PHONE}}, "phoneNumber": {"number": "+14155559999"}})
}

/// The next morning, by phone through Vapi.
pub async fn call_through_vapi(bridge: &Bridge) -> anyhow::Result<()> {
    super::step("next morning, voice through Vapi", "Vapi asks the bridge who is calling; the bridge asks the core");
    println!("    vapi  -> POST /vapi/sunrise-vapi assistant-request, caller {}", super::PHONE);
    let (status, answer) = bridge.vapi(SECRET, call("assistant-request")).await?;
    ensure!(status == 200, "assistant-request answered {status}: {answer}");
    let vars = &answer["assistantOverrides"]["variableValues"];
    println!(
        "          <- assistantId {}, identity {} (Vapi forwards no carrier attestation: caller ID is a claim), confirm_with {:?}",
        answer["assistantId"],
        vars["identity_status"],
        vars["confirm_with"].as_str().unwrap_or("")
    );
    println!("             firstMessage {}", answer["assistantOverrides"]["firstMessage"]);
    ensure!(vars["patient_first_name"] == "", "a claim learned the patient's name");

    let mut tools = call("tool-calls");
    tools["toolCallList"] = json!([{"id": "tc-1", "type": "function",
        "function": {"name": "confirm_identity", "arguments": "{\"date_of_birth\":\"1985-03-14\"}"}}]);
    println!("    vapi  -> tool-calls confirm_identity {{\"date_of_birth\": \"1985-03-14\"}}");
    let (_, answer) = bridge.vapi(SECRET, tools).await?;
    let result = answer["results"][0]["result"].as_str().context("no tool result")?;
    println!("          <- {result}");
    ensure!(result.starts_with("Identity confirmed. Patient: Maria."), "confirmation: {answer}");
    ensure!(result.contains("Next appointment:"), "the rescheduled visit is not in the result: {result}");

    let mut report = call("end-of-call-report");
    report["endedReason"] = json!("customer-ended-call");
    report["artifact"] = json!({"messages": [
        {"role": "bot", "message": "Good morning, Sunrise Clinic.", "time": 1_000, "secondsFromStart": 0.5},
        {"role": "user", "message": "Just checking my appointment time.", "time": 4_000, "secondsFromStart": 3.5}]});
    let first = bridge.vapi(SECRET, report.clone()).await?.0;
    let again = bridge.vapi(SECRET, report).await?.0;
    println!(
        "    vapi  -> end-of-call-report (customer-ended-call), sent twice -> {first}, {again}: each turn recorded once, session ended completed"
    );
    let (status, answer) = bridge.vapi("a-guessed-secret", call("assistant-request")).await?;
    println!("    a forged request (wrong X-Vapi-Secret) -> {status} {}: nothing reached the core", answer["error"]);
    ensure!(status == 401, "a forged request was served");
    Ok(())
}
