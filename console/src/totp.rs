//! The TOTP second factor (RFC 6238 through totp-rs): SHA-1, 6 digits, 30 s
//! steps as every authenticator app expects, ±1 step of skew, and a step
//! once accepted is never accepted again (RFC 6238 §5.2, replay).

use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

const ISSUER: &str = "Throughline";

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("the second-factor secret is not usable")]
    Secret,
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|_| TotpError::Secret)
}

/// A new 160-bit secret.
pub fn new_secret() -> Result<Zeroizing<Vec<u8>>, TotpError> {
    let mut s = Zeroizing::new(vec![0u8; 20]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), s.as_mut_slice())
        .map_err(|_| TotpError::Secret)?;
    Ok(s)
}

/// The `otpauth://` URI an authenticator app enrols from.
pub fn enrolment_uri(secret: &[u8], account: &str) -> Result<Zeroizing<String>, TotpError> {
    totp(secret, account)?.to_url().map(Zeroizing::new).map_err(|_| TotpError::Secret)
}

/// The base32 form of the secret, for apps that take it typed.
pub fn base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(Secret::from(secret.to_vec()).to_base32())
}

/// The step a code proves, if it is right at `now_ms` and newer than the
/// last step accepted for this account.
pub fn check(secret: &[u8], code: &str, now_ms: i64, last_step: u64) -> Option<u64> {
    let t = totp(secret, "staff").ok()?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = u64::try_from(now_ms / 1000).ok()?;
    t.check(&code, now).filter(|step| *step > last_step)
}

/// The code for `now_ms` (tests and the demo compute what an app would show).
pub fn code_at(secret: &[u8], now_ms: i64) -> Option<String> {
    let t = totp(secret, "staff").ok()?;
    Some(t.generate(u64::try_from(now_ms / 1000).ok()?).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vector_and_replay() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: 287082.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59_000).as_deref(), Some("287082"));
        let step = check(secret, "287 082", 59_000, 0).unwrap();
        assert_eq!(step, 1);
        assert_eq!(check(secret, "287082", 59_000, step), None, "a used step is refused");
        assert_eq!(check(secret, "287082", 59_000 + 30_000, 0), Some(1), "one step of skew");
        assert_eq!(check(secret, "287082", 59_000 + 90_000, 0), None);
        assert_eq!(check(secret, "28708", 59_000, 0), None);
        let uri = enrolment_uri(secret, "ana@clinic.example").unwrap();
        assert!(uri.starts_with("otpauth://totp/Throughline:ana%40clinic.example?"), "{}", uri.as_str());
    }
}
