//! Resume tokens: a chat link or callback SMS can carry one so the next
//! session resumes the conversation with proof of possession. Signed with the
//! tenant's token key (HMAC-SHA256), expiring, single-tenant, revocable
//! (each has a row in `resume_tokens`).
//!
//! Wire form: `rt1.<base64url(payload JSON)>.<base64url(tag)>`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use crypto::TenantKeys;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "rt1.";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Token id (row in `resume_tokens`).
    pub i: String,
    /// Tenant id.
    pub t: String,
    /// Customer id.
    pub c: String,
    /// Conversation id.
    pub v: String,
    /// Expiry, unix milliseconds.
    pub x: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Malformed, forged, or for another tenant.
    Invalid,
    Expired,
}

pub fn issue(keys: &TenantKeys, claims: &TokenClaims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let tag = keys.token_tag(&payload);
    format!("{PREFIX}{}.{}", B64.encode(&payload), B64.encode(tag))
}

/// Checks signature, tenant and expiry (revocation is the store's check).
pub fn verify(keys: &TenantKeys, token: &str, now_ms: i64) -> Result<TokenClaims, TokenError> {
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
    let (payload, tag) = rest.split_once('.').ok_or(TokenError::Invalid)?;
    let payload = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
    if !keys.token_tag_is_valid(&payload, &tag) {
        return Err(TokenError::Invalid);
    }
    let claims: TokenClaims = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
    if claims.t != keys.tenant_id() {
        return Err(TokenError::Invalid);
    }
    if now_ms >= claims.x {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(t: &str) -> TenantKeys {
        TenantKeys::derive(t, &crypto::Key256::generate().unwrap())
    }

    #[test]
    fn round_trip_expiry_forgery_and_other_tenant() {
        let k = keys("ten_a");
        let claims =
            TokenClaims { i: "rt_1".into(), t: "ten_a".into(), c: "cus_1".into(), v: "cnv_1".into(), x: 2_000 };
        let token = issue(&k, &claims);
        assert_eq!(verify(&k, &token, 1_999), Ok(claims.clone()));
        assert_eq!(verify(&k, &token, 2_000), Err(TokenError::Expired));
        assert_eq!(verify(&keys("ten_a"), &token, 0), Err(TokenError::Invalid));
        let mut forged = token.clone();
        forged.replace_range(10..11, if &token[10..11] == "A" { "B" } else { "A" });
        assert_eq!(verify(&k, &forged, 0), Err(TokenError::Invalid));
        for junk in ["", "rt1.", "rt1.a.b", "rt2.x.y", "rt1.!!.??"] {
            assert_eq!(verify(&k, junk, 0), Err(TokenError::Invalid), "{junk}");
        }
    }
}
