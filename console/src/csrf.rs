//! Cross-site request forgery (OWASP cheat sheet): a state-changing request
//! must come from our own origin by Fetch Metadata (`Sec-Fetch-Site:
//! same-origin`, or `none` for a typed URL), or by `Origin` equality when a
//! browser sends no Fetch Metadata, AND carry the session's synchronizer
//! token. The session cookie is `SameSite=Strict` on top.

use subtle::ConstantTimeEq;

/// What a request said about where it came from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Provenance<'a> {
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the request came from another site")]
    CrossSite,
    #[error("the form's token is missing or does not match this session")]
    Token,
}

/// Checks where an unsafe request came from. `own_origin`: `https://host:port`
/// as the browser addressed us.
pub fn check_origin(p: Provenance<'_>, own_origin: &str) -> Result<(), CsrfError> {
    match p.sec_fetch_site {
        Some("same-origin") | Some("none") => Ok(()),
        Some(_) => Err(CsrfError::CrossSite),
        None => match p.origin {
            Some(o) if o.eq_ignore_ascii_case(own_origin) => Ok(()),
            // Neither header: not a browser we serve (every supported one sends one).
            _ => Err(CsrfError::CrossSite),
        },
    }
}

/// Compares the form's token with the session's, in constant time.
pub fn check_token(given: Option<&str>, session_token: &str) -> Result<(), CsrfError> {
    match given {
        Some(g) if !session_token.is_empty() && bool::from(g.as_bytes().ct_eq(session_token.as_bytes())) => Ok(()),
        _ => Err(CsrfError::Token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "https://console.test:8443";

    #[test]
    fn fetch_metadata_decides_and_origin_is_the_fallback() {
        let p = |s, o| Provenance { sec_fetch_site: s, origin: o };
        assert!(check_origin(p(Some("same-origin"), None), ME).is_ok());
        assert!(check_origin(p(Some("none"), None), ME).is_ok());
        assert_eq!(check_origin(p(Some("cross-site"), Some(ME)), ME), Err(CsrfError::CrossSite));
        assert_eq!(check_origin(p(Some("same-site"), None), ME), Err(CsrfError::CrossSite));
        assert!(check_origin(p(None, Some(ME)), ME).is_ok());
        assert_eq!(check_origin(p(None, Some("https://evil.test")), ME), Err(CsrfError::CrossSite));
        assert_eq!(check_origin(p(None, None), ME), Err(CsrfError::CrossSite));
    }

    #[test]
    fn the_token_must_match_exactly() {
        assert!(check_token(Some("abc"), "abc").is_ok());
        assert_eq!(check_token(Some("abd"), "abc"), Err(CsrfError::Token));
        assert_eq!(check_token(None, "abc"), Err(CsrfError::Token));
        assert_eq!(check_token(Some(""), ""), Err(CsrfError::Token));
    }
}
