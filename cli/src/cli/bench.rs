//! `throughline bench`: figures for docs/PERFORMANCE.md (never asserted);
//! `--soak` holds a load on the real server instead.

use crate::bench::{self, BenchOptions};
use clap::Args;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Tenant sizes to seed and measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 1_000_000])]
    pub patients: Vec<u64>,
    /// Session opens measured per path and size.
    #[arg(long, default_value_t = 2_000)]
    pub opens: usize,
    /// A run of under a minute for CI: 1,000 and 10,000 patients, 300 opens.
    #[arg(long)]
    pub quick: bool,
    /// Instead: how cost grows with the number of tenants, e.g. `1,10,100,1000`
    /// (each with 200 patients; pool start, first request to every tenant,
    /// warm opens spread over all of them, memory).
    #[arg(long, value_delimiter = ',')]
    pub tenants: Vec<u64>,
    /// Instead: hold a mixed load on the real server for this long (e.g.
    /// `10m`, `1h`) and report errors, latency and memory over time.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub soak: Option<std::time::Duration>,
    /// Concurrent clients of the soak.
    #[arg(long, default_value_t = 16)]
    pub soak_clients: usize,
    /// Instead: Vapi's assistant-request through the real bridge next to the
    /// direct mTLS open, this many calls each (concurrency: --bridge-concurrency).
    #[arg(long)]
    pub bridge: Option<usize>,
    #[arg(long, default_value_t = 50)]
    pub bridge_concurrency: usize,
    /// Instead: this many messages per size into the core through the
    /// bridge's LMTP listener, next to `POST /v1/email/inbound` direct.
    #[arg(long)]
    pub lmtp: Option<usize>,
    /// Instead: `keys rotate-tenant` on a tenant of this many patients, next
    /// to a backup of the same installation.
    #[arg(long)]
    pub rotate: Option<u64>,
    /// Instead: the staff console's patient page for a patient with this
    /// many turns, next to the API's context read of the same patient, and
    /// the audit volume of a day of front-desk work.
    #[arg(long)]
    pub console: Option<u32>,
    /// Instead: the real server under a realistic load over mTLS (a
    /// voice-call mix, then opens alone) at each count of `--tenants`
    /// (default 1,8,64), each tenant seeded with `--per-tenant` patients.
    #[arg(long)]
    pub http: bool,
    /// Patients seeded per tenant for `--http`.
    #[arg(long, default_value_t = 50_000)]
    pub per_tenant: u64,
    /// Concurrent clients of `--http`.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// How long each `--http` load is measured (after its warm-up).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: std::time::Duration,
    /// The warm-up of each `--http` load, not measured.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub warmup: std::time::Duration,
    /// With `--http`: the same session open on PostgreSQL, in the same run:
    /// `auto` starts a PostgreSQL 15 of its own (Debian's binaries), or a DSN.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Instead: SQLCipher's page HMAC, SHA-512 against SHA-256, on a tenant
    /// of this many patients (`--opens` opens per round).
    #[arg(long)]
    pub hmac: Option<u64>,
    /// How often the soak reports.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub soak_interval: std::time::Duration,
}

/// At least one open per thread of `--hmac`'s concurrent half.
const THREADS_MIN: usize = 16;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.http {
        let quick = args.quick;
        let tenants = match (&args.tenants, quick) {
            (t, _) if !t.is_empty() => t.clone(),
            (_, true) => vec![1, 4],
            (_, false) => vec![1, 8, 64],
        };
        return super::bench_http::run(&super::bench_http::HttpOptions {
            tenants,
            patients: if quick { 2_000 } else { args.per_tenant.max(1) },
            clients: if quick { 8 } else { args.clients.max(1) },
            warmup: if quick { std::time::Duration::from_secs(1) } else { args.warmup },
            duration: if quick { std::time::Duration::from_secs(3) } else { args.duration },
            postgres: args.postgres.clone(),
        });
    }
    if !args.tenants.is_empty() {
        println!(
            "session open across tenants: the server's tenant pool and group commit, in-process, synchronous=FULL"
        );
        let rows = bench::run_tenants(&args.tenants, args.opens, &mut std::io::stdout())?;
        println!("\n{}", bench::tenants_table(&rows));
        return Ok(());
    }
    if let Some(patients) = args.hmac {
        println!("session open with SQLCipher's page HMAC SHA-512 vs SHA-256, in-process, synchronous=FULL");
        let rows = bench::run_hmac(patients.max(1), args.opens.max(THREADS_MIN), &mut std::io::stdout())?;
        println!("\n{}", bench::hmac_table(&rows));
        return Ok(());
    }
    if let Some(turns) = args.console {
        return super::bench_console::run(turns.max(1), 200);
    }
    if let Some(n) = args.rotate {
        return super::bench_rotate::run(n.max(1));
    }
    if let Some(n) = args.lmtp {
        return super::bench_lmtp::run(n.max(1), 8);
    }
    if let Some(calls) = args.bridge {
        return super::bench_bridge::run(calls.max(1), args.bridge_concurrency.max(1));
    }
    if let Some(duration) = args.soak {
        let interval = args.soak_interval.max(std::time::Duration::from_secs(1));
        return super::soak::run(&super::soak::SoakOptions { duration, clients: args.soak_clients.max(1), interval });
    }
    let opts = if args.quick {
        BenchOptions { patient_counts: vec![1_000, 10_000], opens: 300 }
    } else {
        BenchOptions { patient_counts: args.patients.clone(), opens: args.opens }
    };
    println!("session open: raw SQLCipher statements vs the service layer, in-process, synchronous=FULL");
    let rows = bench::run(&opts, &mut std::io::stdout())?;
    println!("\n{}", bench::table(&rows));
    Ok(())
}
