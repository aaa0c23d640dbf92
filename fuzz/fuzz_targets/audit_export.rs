//! The offline audit verifier reading an export it was handed: JSON Lines
//! parsing, then chain and Merkle verification.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = audit::export::parse_jsonl(data) {
        let _ = audit::export::verify(&records, None);
    }
});
