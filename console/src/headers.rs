//! The headers every console response carries, whatever the route: a
//! strict CSP with no inline script or style, HSTS, no framing, no referrer,
//! no caching (PHI must not sit in the browser's cache or bfcache).

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'; object-src 'none'";

pub const ALL: [(&str, &str); 10] = [
    ("content-security-policy", CSP),
    ("strict-transport-security", "max-age=31536000"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    ("pragma", "no-cache"),
];

/// What a logout answers with on top: the browser forgets everything of ours.
pub const CLEAR_SITE_DATA: (&str, &str) = ("clear-site-data", "\"cache\", \"cookies\", \"storage\"");

/// The session cookie's name: `__Host-` pins it to this origin, Secure, Path=/.
pub const SESSION_COOKIE: &str = "__Host-tl_console";

/// The `Set-Cookie` value for a new session id.
pub fn session_cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes it.
pub fn expired_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_allows_no_inline_code_and_no_framing() {
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(session_cookie("x").contains("SameSite=Strict") && session_cookie("x").starts_with("__Host-"));
    }
}
