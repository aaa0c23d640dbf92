//! Durability: the real server under a turn-append and session-open load is
//! killed with SIGKILL at random points, many times; after each restart every
//! acknowledged session and turn and its audit record are present, the store
//! passes `PRAGMA integrity_check`, and the audit chain verifies. And a full
//! disk: clear 507 errors, nothing half-stored, recovery when space returns.
#![allow(clippy::unwrap_used)]

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use store::Countable;
use util::Env;
use util::server::client;

/// Kills per run, each after a random 150–650 ms of load: 5 in `cargo
/// test`; `THROUGHLINE_CRASH_KILLS=100` for the run docs/RELIABILITY.md reports.
fn kills() -> u32 {
    std::env::var("THROUGHLINE_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}

#[tokio::test]
async fn every_acknowledged_turn_survives_sigkill() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let http = client(&voice);
    let mut acked_total = 0u64;
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    let opened = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for round in 0..kills() {
        let mut server = env.serve();
        let (_, open) =
            post(&http, &server.url("/v1/sessions"), json!({"identifiers": {"phone": "+1 415 555 0100"}})).await;
        let sid = open["session_id"].as_str().unwrap().to_owned();
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (http, url, acked, stop) =
                (http.clone(), server.url(&format!("/v1/sessions/{sid}/turns")), acked.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"speaker": "agent", "text": format!("round {round} writer {w} turn {n}")});
                    match http.post(&url).json(&body).send().await {
                        Ok(res) if res.status() == 201 => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => break,
                    }
                }
            }));
        }
        for w in 0..2 {
            let (http, url, opened, stop) = (http.clone(), server.url("/v1/sessions"), opened.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"identifiers": {"email": format!("p{round}.{w}.{n}@example.com")}});
                    match http.post(&url).json(&body).send().await {
                        Ok(res) if res.status() == 200 => {
                            let v: Value = res.json().await.unwrap_or(Value::Null);
                            if let Some(id) = v["session_id"].as_str() {
                                opened.lock().unwrap().push(id.to_owned());
                            }
                        }
                        _ => break,
                    }
                }
            }));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 500)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = w.await;
        }
        acked_total += acked.load(Ordering::SeqCst);

        let inst = env.installation();
        let mut store = inst.open_tenant("sunrise").unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        store.verify_audit().unwrap();
        let turns = store.count(Countable::Turns).unwrap();
        let records = store.audit_records().unwrap();
        let turn_audits =
            records.iter().filter(|r| r.action == "turn.append" && r.outcome == audit::Outcome::Ok).count() as u64;
        let open_audits: std::collections::HashSet<&str> =
            records.iter().filter(|r| r.action == "session.open").filter_map(|r| r.session_id.as_deref()).collect();
        let sessions = opened.lock().unwrap().clone();
        let tx = store.transaction().unwrap();
        for id in &sessions {
            let sid = store::ids::SessionId::parse(id).unwrap();
            assert!(tx.session(&sid).unwrap().is_some(), "round {round}: acknowledged session {id} lost");
            assert!(open_audits.contains(id.as_str()), "round {round}: session {id} has no audit record");
        }
        drop(tx);
        assert!(turns >= acked_total, "round {round}: {turns} turns stored, {acked_total} acknowledged");
        assert_eq!(turn_audits, turns, "round {round}: every stored turn has its audit record");
        eprintln!(
            "round {round}: {acked_total} turns and {} sessions acknowledged so far, {turns} turns stored, chain and integrity ok",
            sessions.len()
        );
    }
    assert!(acked_total > 0, "the load never got going");
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let res = http.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
