//! The `throughline` binary: parses the command line and runs one command.
//! Errors end here as one line on stderr and exit status 1 (clap's usage
//! errors exit 2).
#![forbid(unsafe_code)]

mod bench;
mod cli;

use std::process::ExitCode;

use clap::Parser as _;

/// New stores in the page format of the builds before 0.1 (HMAC-SHA512):
/// only to make the upgrade fixture (scripts/upgrade-fixture.sh), which
/// must hold stores of both formats.
const OLD_PAGE_FORMAT: &str = "THROUGHLINE_NEW_STORES_SHA512";

fn main() -> ExitCode {
    if std::env::var_os(OLD_PAGE_FORMAT).is_some_and(|v| v == "1") {
        store::set_new_store_hmac(store::PageHmac::Sha512);
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
