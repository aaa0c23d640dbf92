//! The PostgreSQL side of `bench --http --postgres`: a PostgreSQL 15 of its
//! own (or the DSN given), seeded like the server's tenants, then the same
//! session open at the same concurrency, with audit rows inserted and with
//! them chained per tenant; and the ratios to the server's opens measured
//! earlier in the same run, per request and per core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::bench_calls::PeerOpens;
use super::bench_http::HttpOptions;
use super::bench_load::drive;
use super::bench_server::{cpu_seconds, cpu_seconds_with_children};

/// The peer's buffer cache: the server's SQLite budget (384 MiB).
const SHARED_BUFFERS_MIB: u64 = 384;

/// `opens`: (tenants, opens/s, server CPU ms per open) from the server's runs.
pub fn run(
    o: &HttpOptions,
    most: u32,
    pg: &str,
    runtime: &tokio::runtime::Runtime,
    opens: &[(u64, f64, f64)],
    rows: &mut Vec<String>,
    ratios: &mut Vec<String>,
) -> anyhow::Result<()> {
    let temp = if pg == "auto" { Some(peer::TempPostgres::start(SHARED_BUFFERS_MIB)?) } else { None };
    let dsn = temp.as_ref().map_or(pg, |t| t.dsn()).to_owned();
    let peer = Arc::new(peer::Peer::connect(&dsn, o.clients)?);
    let started = Instant::now();
    runtime.block_on(async {
        peer.create_schema().await?;
        peer.seed(most, o.patients, 2).await
    })?;
    let bytes = runtime.block_on(peer.database_bytes())?;
    println!(
        "   PostgreSQL peer seeded ({most} tenants × {} patients) in {:.1} s, {:.0} MiB",
        o.patients,
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1_048_576.0
    );
    let postmaster = temp.as_ref().and_then(|t| t.postmaster_pid());
    let me = std::process::id();
    for &count in &o.tenants {
        for audit in [peer::Audit::Plain, peer::Audit::Chained] {
            let created = Arc::new(AtomicU64::new(0));
            let work = Arc::new(PeerOpens {
                peer: peer.clone(),
                tenants: count as u32,
                patients: o.patients,
                audit,
                created: created.clone(),
            });
            let cpu = move || (postmaster.map_or(0.0, cpu_seconds_with_children), cpu_seconds(me));
            let out = drive(runtime, work, o.clients, o.warmup, o.duration, cpu)?;
            let name = match audit {
                peer::Audit::Plain => "PostgreSQL peer: session opens, audit rows inserted",
                peer::Audit::Chained => "PostgreSQL peer: session opens, audit chained per tenant",
            };
            let row = out.row(name, count, o.clients);
            println!("{row}");
            rows.push(row);
            if created.load(Ordering::Relaxed) > 0 {
                eprintln!("   {} peer opens found no seeded patient", created.load(Ordering::Relaxed));
            }
            if let Some((_, ours, our_cpu)) = opens.iter().find(|(t, _, _)| *t == count) {
                let per_core = if postmaster.is_some() {
                    format!("{:.2}x", out.cpu_ms_per_request() / our_cpu.max(1e-9))
                } else {
                    "n/a (an external PostgreSQL's CPU is not read)".into()
                };
                ratios.push(format!(
                    "ratio at {count} tenants, {} audit: Throughline {ours:.0} opens/s vs PostgreSQL {:.0}/s = {:.2}x per request; per core (server CPU per open, {:.3} vs {:.3} ms) {per_core}",
                    if audit == peer::Audit::Plain { "inserted" } else { "chained" },
                    out.per_second(),
                    ours / out.per_second().max(1e-9),
                    our_cpu,
                    out.cpu_ms_per_request(),
                ));
            }
        }
    }
    Ok(())
}
