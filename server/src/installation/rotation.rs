//! `throughline keys rotate-passphrase`: the keyring re-wrapped under a new
//! passphrase, crash-safe. The steps, each durable before the next:
//! 1. the re-wrapped keyring is written beside the old one (`keyring.json.next`);
//! 2. one system-store transaction re-seals the secrets kept under the
//!    master key and marks the rotation pending (audited);
//! 3. the new keyring is renamed over the old one;
//! 4. the mark is cleared.
//!
//! A crash before 2 committed leaves the old state (the next open removes
//! the stray file); after it, the new one (the next open with the new
//! passphrase finishes 3 and 4; the old passphrase is told so). Backups
//! made before stay sealed under the old passphrase.

use std::path::{Path, PathBuf};

use crypto::{Keyring, UnlockedKeyring};
use secrecy::SecretString;

use crate::{Error, Installation};
use store::SystemStore;

/// Where a test may stop the rotation dead (`--danger-crash-at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashAt {
    AfterNext,
    AfterReseal,
    AfterRename,
}

pub(crate) fn next_path(keyring: &Path) -> PathBuf {
    keyring.with_extension("json.next")
}

fn crash(at: Option<CrashAt>, here: CrashAt) {
    if at == Some(here) {
        std::process::abort();
    }
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    }
    Ok(())
}

impl Installation {
    pub fn rotate_passphrase(&mut self, new: &SecretString, crash_at: Option<CrashAt>) -> Result<usize, Error> {
        let _lock = self.dir.lock()?;
        self.keyring.reload()?;
        let path = self.dir.keyring();
        let next_file = next_path(&path);
        let next = self.keyring.rewrapped(new, &next_file)?;
        next.save()?;
        crash(crash_at, CrashAt::AfterNext);
        let id = self.installation_id().to_owned();
        let now = self.now_ms();
        let operator = self.operator().to_owned();
        let keyring = &self.keyring;
        let n = self.system.reseal_for_rotation(
            &id,
            |aad, sealed| keyring.reseal_for(&next, aad, sealed),
            &operator,
            now,
        )?;
        crash(crash_at, CrashAt::AfterReseal);
        std::fs::rename(&next_file, &path).map_err(|source| Error::Io { path: path.clone(), source })?;
        sync_dir(&path)?;
        crash(crash_at, CrashAt::AfterRename);
        self.system.finish_rotation()?;
        self.keyring = next.moved_to(&path);
        Ok(n)
    }
}

/// At open: finishes a rotation that re-sealed the store, or abandons one
/// that did not get that far. Returns the keyring to use and the store.
pub(crate) fn recover(
    keyring_path: &Path,
    system_db: &Path,
    passphrase: &SecretString,
) -> Result<Option<(UnlockedKeyring, SystemStore)>, Error> {
    let next_file = next_path(keyring_path);
    if !next_file.exists() {
        return Ok(None);
    }
    match Keyring::load(keyring_path)?.unlock(passphrase) {
        Ok(old) => {
            let system = SystemStore::open(system_db, &old.system_key()?)?;
            if system.rotation_pending()? {
                return Err(Error::RotationUnfinished);
            }
            // Step 2 never committed: the old state stands.
            std::fs::remove_file(&next_file).map_err(|source| Error::Io { path: next_file.clone(), source })?;
            Ok(Some((old, system)))
        }
        Err(crypto::CryptoError::WrongPassphrase) => {
            let next = Keyring::load(&next_file)?.unlock(passphrase)?;
            let system = SystemStore::open(system_db, &next.system_key()?)?;
            if !system.rotation_pending()? {
                return Err(Error::RotationAbandoned);
            }
            std::fs::rename(&next_file, keyring_path)
                .map_err(|source| Error::Io { path: keyring_path.to_owned(), source })?;
            sync_dir(keyring_path)?;
            system.finish_rotation()?;
            Ok(Some((next.moved_to(keyring_path), system)))
        }
        Err(e) => Err(e.into()),
    }
}
