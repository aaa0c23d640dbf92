//! Durability: the real server under a turn-append load is killed with
//! SIGKILL at several random points; after each restart every acknowledged
//! turn and its audit record are present, the store passes
//! `PRAGMA integrity_check`, and the audit chain verifies.
#![allow(clippy::unwrap_used)]

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use throughline::store::Countable;
use util::Env;
use util::server::client;

/// Kills taken per test run; each after a random 150–650 ms of load.
const KILLS: u32 = 5;

#[tokio::test]
async fn every_acknowledged_turn_survives_sigkill() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise"]);
    let voice = env.issue("sunrise", "voice");
    let http = client(&voice);
    let mut acked_total = 0u64;
    let mut seed = 0x2545_F491_4F6C_DD1D_u64;
    for round in 0..KILLS {
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
        let store = inst.open_tenant("sunrise").unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok", "round {round}");
        store.verify_audit().unwrap();
        let turns = store.count(Countable::Turns).unwrap();
        let turn_audits = store
            .audit_records()
            .unwrap()
            .iter()
            .filter(|r| r.action == "turn.append" && r.outcome == audit::Outcome::Ok)
            .count() as u64;
        assert!(turns >= acked_total, "round {round}: {turns} turns stored, {acked_total} acknowledged");
        assert_eq!(turn_audits, turns, "round {round}: every stored turn has its audit record");
        eprintln!("round {round}: {acked_total} acknowledged so far, {turns} stored, chain and integrity ok");
    }
    assert!(acked_total > 0, "the load never got going");
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let res = http.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
