//! Staff passwords: Argon2id at OWASP's floor (m = 19 MiB, t = 2, p = 1),
//! stored as a PHC string. Run on the blocking pool: one hash takes tens of
//! milliseconds by design.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

/// The shortest password accepted (NIST SP 800-63B: at least 8; a second factor is always required too).
pub const MIN_CHARS: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password could not be hashed")]
    Hash,
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|_| PasswordError::Hash)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string of a new password.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    let mut salt = Zeroizing::new([0u8; 16]);
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), salt.as_mut_slice())
        .map_err(|_| PasswordError::Hash)?;
    let salt = SaltString::encode_b64(salt.as_slice()).map_err(|_| PasswordError::Hash)?;
    Ok(hasher()?.hash_password(password.as_bytes(), &salt).map_err(|_| PasswordError::Hash)?.to_string())
}

/// Whether `password` matches the stored PHC string. A malformed string never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    hasher().is_ok_and(|h| h.verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash to verify against when the account does not exist, so a wrong
/// email takes as long as a wrong password.
pub fn decoy() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3h1hZ0bQ3sOeYj0m8w2W3nL8m8o5HfH9mFq0rOQkq0c"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterz", &phc));
        assert!(!verify("x", "not a phc string"));
        assert!(!verify("anything at all", decoy()));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
    }
}
