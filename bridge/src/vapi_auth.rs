//! Is this request from Vapi? Its legacy secret header (`X-Vapi-Secret`),
//! a Bearer credential, or its HMAC credential (`x-signature` over
//! `{timestamp}.{body}`, ±5 minutes), all compared in constant time.

use base64::Engine as _;

use crate::config::VapiAuth;
use crate::sig::{self, Refusal, Verified};

/// `header(name)` returns a request header (names lowercase).
pub fn verify<'a>(
    auth: &VapiAuth,
    secret: &[u8],
    header: &dyn Fn(&str) -> Option<String>,
    body: &'a [u8],
    now_ms: i64,
) -> Result<Verified<'a>, Refusal> {
    check(auth, secret, header, body, now_ms)?;
    Ok(Verified::checked(body))
}

fn check(
    auth: &VapiAuth,
    secret: &[u8],
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now_ms: i64,
) -> Result<(), Refusal> {
    match auth {
        VapiAuth::Secret => {
            let given = header("x-vapi-secret")
                .or_else(|| header("authorization").and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned)));
            let given = given.ok_or(Refusal::Missing)?;
            if sig::same(given.trim().as_bytes(), secret) { Ok(()) } else { Err(Refusal::Mismatch) }
        }
        VapiAuth::Hmac(plan) => {
            let signature = header(&plan.signature_header.to_ascii_lowercase()).ok_or(Refusal::Missing)?;
            let ts = header(&plan.timestamp_header.to_ascii_lowercase()).ok_or(Refusal::Missing)?;
            let ts_n: i64 = ts.trim().parse().map_err(|_| Refusal::Mismatch)?;
            let mut msg = ts.trim().as_bytes().to_vec();
            msg.push(b'.');
            msg.extend_from_slice(body);
            let mac = sig::mac(plan.algorithm, secret, &msg);
            let expected =
                if plan.base64 { base64::engine::general_purpose::STANDARD.encode(&mac) } else { hex::encode(&mac) };
            let given = signature.trim();
            let given = given.strip_prefix(plan.prefix.as_str()).unwrap_or(given);
            if !sig::same(given.as_bytes(), expected.as_bytes()) {
                return Err(Refusal::Mismatch);
            }
            sig::fresh(sig::as_millis(ts_n), now_ms)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HmacPlan;
    use crate::sig::HmacAlgorithm;

    fn headers(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_secret_header_or_a_bearer_token() {
        let ok = headers(&[("x-vapi-secret", "s3cret".into())]);
        assert_eq!(verify(&VapiAuth::Secret, b"s3cret", &ok, b"{}", 0).map(|_| ()), Ok(()));
        let bearer = headers(&[("authorization", "Bearer s3cret".into())]);
        assert_eq!(verify(&VapiAuth::Secret, b"s3cret", &bearer, b"{}", 0).map(|_| ()), Ok(()));
        let wrong = headers(&[("x-vapi-secret", "s3cres".into())]);
        assert_eq!(verify(&VapiAuth::Secret, b"s3cret", &wrong, b"{}", 0).map(|_| ()), Err(Refusal::Mismatch));
        assert_eq!(verify(&VapiAuth::Secret, b"s3cret", &headers(&[]), b"{}", 0).map(|_| ()), Err(Refusal::Missing));
    }

    #[test]
    fn hmac_over_timestamp_dot_body_in_its_window() {
        let plan = HmacPlan {
            algorithm: HmacAlgorithm::Sha256,
            signature_header: "x-signature".into(),
            timestamp_header: "x-timestamp".into(),
            prefix: "sha256=".into(),
            base64: false,
        };
        let auth = VapiAuth::Hmac(plan);
        let now = 1_723_595_100_000_i64;
        let body = br#"{"message":{"type":"status-update"}}"#;
        let sign = |ts: i64, body: &[u8]| {
            let mut m = ts.to_string().into_bytes();
            m.push(b'.');
            m.extend_from_slice(body);
            format!("sha256={}", hex::encode(sig::mac(HmacAlgorithm::Sha256, b"k", &m)))
        };
        let ts = now / 1000;
        let h = headers(&[("x-signature", sign(ts, body)), ("x-timestamp", ts.to_string())]);
        assert_eq!(verify(&auth, b"k", &h, body, now).map(|_| ()), Ok(()));
        assert_eq!(verify(&auth, b"k", &h, b"{\"changed\":1}", now).map(|_| ()), Err(Refusal::Mismatch));
        let old = ts - 301;
        let h = headers(&[("x-signature", sign(old, body)), ("x-timestamp", old.to_string())]);
        assert_eq!(verify(&auth, b"k", &h, body, now).map(|_| ()), Err(Refusal::Stale));
    }
}
