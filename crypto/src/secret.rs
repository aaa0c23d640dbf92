//! `Key256`: 32 bytes of key material, zeroized on drop, redacted in `Debug`.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};

use crate::{CryptoError, rand};

/// A 256-bit secret key. It has no `Clone`, `Serialize` or derived `Debug`;
/// its bytes are reachable only through [`Key256::expose_secret`].
pub struct Key256(SecretBox<[u8; 32]>);

impl Key256 {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut result = Ok(());
        let key = SecretBox::init_with_mut(|bytes: &mut [u8; 32]| result = rand::fill(bytes));
        result.map(|()| Key256(key))
    }

    /// Builds a key by letting `fill` write the bytes in place, so no copy is
    /// left on the caller's stack.
    pub fn init_with(fill: impl FnOnce(&mut [u8; 32])) -> Self {
        Key256(SecretBox::init_with_mut(fill))
    }

    /// Copies key bytes out of a decrypted buffer (which the caller zeroizes).
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == 32).then(|| Self::init_with(|k| k.copy_from_slice(bytes)))
    }

    /// The raw key bytes. Callers: AEAD/HMAC key setup and the SQLCipher opener.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = Key256::init_with(|k| k.fill(0xAB));
        let shown = format!("{key:?}");
        assert_eq!(shown, "Key256([REDACTED])");
        assert!(!shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = Key256::generate().unwrap();
        let b = Key256::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
