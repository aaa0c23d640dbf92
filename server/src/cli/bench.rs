//! `throughline bench`: figures for docs/PERFORMANCE.md (never asserted).

use clap::Args;
use throughline::bench::{self, BenchOptions};

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
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
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
