//! The backup reader's framing (magic, header, chunks) and the keyring it
//! carries, from arbitrary bytes: refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = server::backup::read_container(data).map(|c| c.files());
    let _ = crypto::Keyring::from_bytes(std::path::Path::new("keyring.json"), data);
});
