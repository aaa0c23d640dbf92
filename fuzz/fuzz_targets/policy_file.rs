//! A tenant policy file from arbitrary text: validated whole or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = policy::TenantPolicy::from_toml(text) {
        assert!(p.retention.audit_years >= 6, "a loaded policy keeps six years of audit");
    }
});
