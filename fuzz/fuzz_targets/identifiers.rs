//! Identifier normalisation on arbitrary text: phone (several regions),
//! email, login subject, cookie. A normalised value normalises to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use continuity::identifiers::Identifier;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for region in ["US", "GB", "DE", "ZZ"] {
        if let Ok(p) = Identifier::phone(s, region) {
            assert_eq!(Identifier::phone(p.value(), region).ok().as_ref().map(|q| q.value()), Some(p.value()));
        }
    }
    if let Ok(e) = Identifier::email(s) {
        assert_eq!(Identifier::email(e.value()).ok().as_ref().map(|q| q.value()), Some(e.value()));
    }
    let _ = Identifier::auth(s);
    let _ = Identifier::cookie(s);
});
