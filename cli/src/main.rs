//! The `throughline` binary: parses the command line and runs one command.
//! Errors end here as one line on stderr and exit status 1 (clap's usage
//! errors exit 2).
#![forbid(unsafe_code)]

mod bench;
mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
