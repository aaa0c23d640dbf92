//! The workloads of `bench --http`: calls to the real server over mutual
//! TLS keep-alive (one client certificate, and one connection pool, per
//! tenant), each to a random tenant and a random one of its seeded patients;
//! and the same session open on the PostgreSQL peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bench;
use serde_json::{Value, json};
use server::{Clock as _, SystemClock};

use super::bench_load::{Recorder, Rng, Workload};

/// What a call to the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// A voice call: open, confirm the date of birth, three turns, a state put.
    Call,
    /// Session opens only.
    Opens,
}

pub struct Calls {
    pub tenants: Vec<reqwest::Client>,
    pub base: String,
    pub patients: u64,
    pub mix: Mix,
}

const DAYS: [&str; 5] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"];

impl Workload for Calls {
    async fn step(&self, rng: &mut Rng, rec: &mut Recorder) {
        let Some(http) = self.tenants.get(rng.below(self.tenants.len() as u64) as usize) else { return };
        let patient = rng.below(self.patients);
        let day = DAYS[rng.below(DAYS.len() as u64) as usize];
        let open = json!({
            "identifiers": {"phone": bench::phone(patient)},
            "evidence": {"caller_id_attestation": "A"},
        });
        let base = &self.base;
        let Some(reply) = rec.timed(0, send(http.post(format!("{base}/v1/sessions")).json(&open))).await else {
            return;
        };
        if self.mix == Mix::Opens {
            return;
        }
        let Some(sid) = reply["session_id"].as_str() else { return };
        let confirm = json!({"date_of_birth": bench::dob(patient)});
        if rec
            .timed(1, send(http.post(format!("{base}/v1/sessions/{sid}/identity/confirm")).json(&confirm)))
            .await
            .is_none()
        {
            return;
        }
        let turns = [
            ("patient", format!("Hi, it's about my appointment. Could we move it to {day}?")),
            ("agent", format!("Let me look at {day} for you. Morning or afternoon?")),
            ("patient", format!("Afternoon, after {} please.", 1 + rng.below(5))),
        ];
        for (speaker, text) in &turns {
            let turn = json!({"speaker": speaker, "text": text});
            rec.timed(2, send(http.post(format!("{base}/v1/sessions/{sid}/turns")).json(&turn))).await;
        }
        let state = json!({"value": day});
        rec.timed(3, send(http.put(format!("{base}/v1/sessions/{sid}/state/pending_booking_date")).json(&state))).await;
    }
}

/// Sends a request; a success's JSON body, or the status and error code.
async fn send(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let reply = req.send().await.map_err(|e| format!("request failed: {e}"))?;
    let status = reply.status();
    let body: Value = reply.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{status} {}", body["error"].as_str().unwrap_or_default()));
    }
    Ok(body)
}

/// The peer's session open on random tenants and patients.
pub struct PeerOpens {
    pub peer: Arc<peer::Peer>,
    pub tenants: u32,
    pub patients: u64,
    pub audit: peer::Audit,
    /// Opens whose phone was not among the seeded ones (should stay 0).
    pub created: Arc<AtomicU64>,
}

impl Workload for PeerOpens {
    async fn step(&self, rng: &mut Rng, rec: &mut Recorder) {
        let tenant = 1 + rng.below(u64::from(self.tenants)) as u32;
        let phone = bench::phone(rng.below(self.patients));
        let now = SystemClock.now_ms();
        let open = async { self.peer.open_session(tenant, &phone, now, self.audit).await.map_err(|e| e.to_string()) };
        if let Some(opened) = rec.timed(0, open).await
            && !opened.found
        {
            self.created.fetch_add(1, Ordering::Relaxed);
        }
    }
}
