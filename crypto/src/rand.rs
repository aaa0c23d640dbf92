//! Randomness from the operating system (ring's `SystemRandom`).

use ring::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

/// Fills a fresh array with OS randomness.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

pub(crate) fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Rng)
}
