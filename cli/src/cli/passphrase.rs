//! Where the operator's passphrase comes from: `--passphrase-file`, then a
//! systemd credential (`LoadCredentialEncrypted=throughline-passphrase:…`,
//! read from `$CREDENTIALS_DIRECTORY`: an unattended start with the secret
//! sealed by the machine's TPM or host key, never in the unit file), then
//! `THROUGHLINE_PASSPHRASE`, then an interactive prompt.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

pub const ENV: &str = "THROUGHLINE_PASSPHRASE";
/// The credential's name under `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL: &str = "throughline-passphrase";
/// Shortest passphrase `init` accepts.
pub const MIN_LEN: usize = 12;

#[derive(Debug, Clone)]
pub struct Source {
    pub file: Option<PathBuf>,
}

impl Source {
    /// The passphrase of an existing installation.
    pub fn get(&self) -> anyhow::Result<SecretString> {
        self.read(false)
    }

    /// A new passphrase (prompted twice when interactive), at least `MIN_LEN` characters.
    pub fn get_new(&self) -> anyhow::Result<SecretString> {
        let p = self.read(true)?;
        if p.expose_secret().chars().count() < MIN_LEN {
            bail!("the passphrase must be at least {MIN_LEN} characters");
        }
        Ok(p)
    }

    fn read(&self, confirm: bool) -> anyhow::Result<SecretString> {
        let credential =
            std::env::var_os("CREDENTIALS_DIRECTORY").map(|d| PathBuf::from(d).join(CREDENTIAL)).filter(|p| p.exists());
        let text = if let Some(path) = self.file.as_ref().or(credential.as_ref()) {
            let raw = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read passphrase file {}", path.display()))?,
            );
            Zeroizing::new(raw.lines().next().unwrap_or_default().to_owned())
        } else if let Ok(v) = std::env::var(ENV) {
            Zeroizing::new(v)
        } else if std::io::stdin().is_terminal() {
            let first = Zeroizing::new(rpassword::prompt_password("Passphrase: ")?);
            if confirm {
                let second = Zeroizing::new(rpassword::prompt_password("Passphrase again: ")?);
                if first != second {
                    bail!("the two passphrases differ");
                }
            }
            first
        } else {
            bail!(
                "no passphrase: pass --passphrase-file FILE, give systemd credential {CREDENTIAL}, set {ENV}, or run in a terminal"
            );
        };
        if text.is_empty() {
            bail!("the passphrase is empty");
        }
        Ok(SecretString::from(text.as_str().to_owned()))
    }
}
