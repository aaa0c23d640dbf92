//! What every platform's verification shares: HMAC (ring), a comparison in
//! constant time (subtle), and the five-minute window for timestamps.

use ring::hmac;
use subtle::ConstantTimeEq as _;

/// The hash an HMAC is computed with (a route's `vapi_auth` names one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// A request body a platform's verifier accepted (its signature or its
/// secret). Only the verifiers make one, so a parser that takes it cannot
/// be handed a body nobody checked.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a>(&'a [u8]);

impl<'a> Verified<'a> {
    /// For the verifiers (and this crate's tests) only.
    pub(crate) fn checked(body: &'a [u8]) -> Self {
        Verified(body)
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Timestamps further than this from now are refused (Vapi, Retell).
pub const WINDOW_MS: i64 = 5 * 60 * 1000;

/// Why a request was refused before anything reached the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request carries no signature or secret")]
    Missing,
    #[error("the signature or secret does not match")]
    Mismatch,
    #[error("the request's timestamp is outside the five-minute window")]
    Stale,
}

pub fn mac(algorithm: HmacAlgorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let alg = match algorithm {
        HmacAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HmacAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HmacAlgorithm::Sha512 => hmac::HMAC_SHA512,
    };
    hmac::sign(&hmac::Key::new(alg, key), msg).as_ref().to_vec()
}

/// The session the bridge names in a call's platform metadata, with its
/// tag: an HMAC under the route's secret, which the platform echoes back.
/// Anyone who can start a call with metadata of their choosing (Vapi's web
/// SDK with the public key, Retell's create-web-call) cannot make one (L4).
pub fn session_metadata(secret: &[u8], session: &str) -> serde_json::Value {
    serde_json::json!({"throughline_session": session, "throughline_tag": session_tag(secret, session)})
}

fn session_tag(secret: &[u8], session: &str) -> String {
    hex::encode(mac(HmacAlgorithm::Sha256, secret, format!("throughline-session:v1\n{session}").as_bytes()))
}

/// The session named in metadata, only when its tag is the bridge's own.
pub fn tagged_session(secret: &[u8], session: Option<&str>, tag: Option<&str>) -> Option<String> {
    let (session, tag) = (session?, tag?);
    same(session_tag(secret, session).as_bytes(), tag.as_bytes()).then(|| session.to_owned())
}

/// Equal in constant time (for equal lengths).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A platform timestamp in seconds or milliseconds (told apart by size:
/// Vapi does not say which it sends) as milliseconds.
pub fn as_millis(ts: i64) -> i64 {
    if ts.abs() < 100_000_000_000 { ts.saturating_mul(1000) } else { ts }
}

pub fn fresh(ts_ms: i64, now_ms: i64) -> Result<(), Refusal> {
    if (now_ms - ts_ms).abs() <= WINDOW_MS { Ok(()) } else { Err(Refusal::Stale) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis_both_read() {
        assert_eq!(as_millis(1_723_595_100), 1_723_595_100_000);
        assert_eq!(as_millis(1_723_595_100_123), 1_723_595_100_123);
        assert!(fresh(1_000_000, 1_000_000 + WINDOW_MS).is_ok());
        assert_eq!(fresh(1_000_000, 1_000_001 + WINDOW_MS), Err(Refusal::Stale));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let got = mac(HmacAlgorithm::Sha256, b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(got), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
