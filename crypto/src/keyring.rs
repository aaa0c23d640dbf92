//! The keyring file: argon2id parameters, a passphrase check, and every
//! wrapped key of the installation (the system key and one root key per
//! tenant), each sealed under the master key with its owner as associated data.
//!
//! ```json
//! { "body": { "format": "throughline-keyring", "version": 1,
//!             "installation_id": "…", "kdf": { … argon2id params, salt … },
//!             "check": "<b64 seal>", "system_key": "<b64 seal>",
//!             "tenants": [ { "id": "…", "wrapped_key": "<b64 seal>" } ] },
//!   "sha256": "<hex of the compact JSON of body>" }
//! ```
//!
//! The unkeyed checksum tells damage (a flipped byte, a partial copy) apart
//! from a wrong passphrase; the seals make any deliberate edit fail to unwrap.
//! Writes go to a temporary file, are fsynced, then renamed over the old one.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Aead, CryptoError, KdfParams, Key256, MasterKey, TenantKeys};

const FORMAT: &str = "throughline-keyring";
const VERSION: u32 = 1;
const CHECK_PLAINTEXT: &[u8] = b"throughline keyring check v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    body: Body,
    sha256: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    format: String,
    version: u32,
    installation_id: String,
    kdf: KdfParams,
    check: String,
    system_key: String,
    tenants: Vec<TenantEntry>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    id: String,
    wrapped_key: String,
    /// A new root key staged by a tenant key rotation that has not finished
    /// (the re-keyed store is written; the swap may not have happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_wrapped_key: Option<String>,
}

/// A keyring read from disk and checked for damage, not yet unlocked.
pub struct Keyring {
    path: PathBuf,
    body: Body,
}

/// A keyring with its master key: can unwrap, add and save keys.
pub struct UnlockedKeyring {
    path: PathBuf,
    body: Body,
    master: Aead,
    master_key: Key256,
}

impl Keyring {
    /// Reads and checks the file; no key is touched yet.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let bytes = fs::read(path).map_err(|source| CryptoError::Io { path: path.to_owned(), source })?;
        Self::from_bytes(path, &bytes)
    }

    /// A keyring carried elsewhere (inside a backup), to be written at `path`.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, CryptoError> {
        let body = parse(path, bytes)?;
        Ok(Keyring { path: path.to_owned(), body })
    }

    pub fn installation_id(&self) -> &str {
        &self.body.installation_id
    }

    pub fn kdf(&self) -> &KdfParams {
        &self.body.kdf
    }

    /// Derives the master key (argon2id: the slow step) and checks it.
    pub fn unlock(self, passphrase: &SecretString) -> Result<UnlockedKeyring, CryptoError> {
        let master_key = MasterKey::derive(passphrase, &self.body.kdf)?.0;
        let master = Aead::new(&master_key);
        let check = decode(&self.body.check, "check")?;
        match master.open(&check_aad(&self.body.installation_id), &check) {
            Ok(p) if p.as_slice() == CHECK_PLAINTEXT => {}
            _ => return Err(CryptoError::WrongPassphrase),
        }
        Ok(UnlockedKeyring { path: self.path, body: self.body, master, master_key })
    }
}

impl UnlockedKeyring {
    /// Creates a new keyring at `path` with a fresh installation id and system key.
    /// Refuses to overwrite an existing file.
    pub fn create(path: &Path, passphrase: &SecretString, kdf: KdfParams) -> Result<Self, CryptoError> {
        if path.exists() {
            return Err(CryptoError::KeyringExists { path: path.to_owned() });
        }
        let installation_id = uuid::Uuid::new_v4().to_string();
        let master_key = MasterKey::derive(passphrase, &kdf)?.0;
        let master = Aead::new(&master_key);
        let check = master.seal(&check_aad(&installation_id), CHECK_PLAINTEXT)?;
        let system = Key256::generate()?;
        let system_key = master.seal(b"system-key", system.expose_secret())?;
        let body = Body {
            format: FORMAT.into(),
            version: VERSION,
            installation_id,
            kdf,
            check: B64.encode(check),
            system_key: B64.encode(system_key),
            tenants: Vec::new(),
        };
        let keyring = UnlockedKeyring { path: path.to_owned(), body, master, master_key };
        keyring.save()?;
        Ok(keyring)
    }

    pub fn installation_id(&self) -> &str {
        &self.body.installation_id
    }

    /// A second handle on the same keyring and master key, for another
    /// thread (the server's tenant pool). No key derivation runs.
    pub fn duplicate(&self) -> UnlockedKeyring {
        let bytes = self.master_key.expose_secret();
        let master_key = Key256::init_with(|k| k.copy_from_slice(bytes));
        UnlockedKeyring { path: self.path.clone(), body: self.body.clone(), master: Aead::new(&master_key), master_key }
    }

    /// The SQLCipher key of the system store.
    pub fn system_key(&self) -> Result<Key256, CryptoError> {
        self.unwrap_key(b"system-key", &self.body.system_key, "system_key")
    }

    /// Ids of every tenant with a key here.
    pub fn tenant_ids(&self) -> impl Iterator<Item = &str> {
        self.body.tenants.iter().map(|t| t.id.as_str())
    }

    /// Unwraps a tenant's root key and derives its working keys.
    pub fn tenant_keys(&self, tenant_id: &str) -> Result<TenantKeys, CryptoError> {
        let entry = self
            .body
            .tenants
            .iter()
            .find(|t| t.id == tenant_id)
            .ok_or_else(|| CryptoError::UnknownTenant { tenant_id: tenant_id.to_owned() })?;
        let root = self.unwrap_key(&tenant_aad(tenant_id), &entry.wrapped_key, &entry.id)?;
        Ok(TenantKeys::derive(tenant_id, &root))
    }

    /// Adds a fresh random root key for `tenant_id` (in memory: call [`save`](Self::save)).
    pub fn add_tenant(&mut self, tenant_id: &str) -> Result<TenantKeys, CryptoError> {
        let root = Key256::generate()?;
        let wrapped = self.master.seal(&tenant_aad(tenant_id), root.expose_secret())?;
        self.body.tenants.retain(|t| t.id != tenant_id);
        self.body.tenants.push(TenantEntry {
            id: tenant_id.to_owned(),
            wrapped_key: B64.encode(wrapped),
            next_wrapped_key: None,
        });
        Ok(TenantKeys::derive(tenant_id, &root))
    }

    /// Stages a fresh root key for `tenant_id` beside its current one (in
    /// memory: call [`save`](Self::save)); [`promote_tenant_key`](Self::promote_tenant_key)
    /// makes it current, [`abandon_tenant_key`](Self::abandon_tenant_key) drops it.
    pub fn stage_tenant_key(&mut self, tenant_id: &str) -> Result<TenantKeys, CryptoError> {
        let root = Key256::generate()?;
        let wrapped = self.master.seal(&tenant_aad(tenant_id), root.expose_secret())?;
        let entry = self.entry_mut(tenant_id)?;
        entry.next_wrapped_key = Some(B64.encode(wrapped));
        Ok(TenantKeys::derive(tenant_id, &root))
    }

    /// The staged key's working keys, if a rotation of `tenant_id` is under way.
    pub fn staged_tenant_keys(&self, tenant_id: &str) -> Result<Option<TenantKeys>, CryptoError> {
        let Some(entry) = self.body.tenants.iter().find(|t| t.id == tenant_id) else { return Ok(None) };
        let Some(next) = &entry.next_wrapped_key else { return Ok(None) };
        let root = self.unwrap_key(&tenant_aad(tenant_id), next, &entry.id)?;
        Ok(Some(TenantKeys::derive(tenant_id, &root)))
    }

    /// Tenants with a staged key.
    pub fn staged_tenants(&self) -> Vec<String> {
        self.body.tenants.iter().filter(|t| t.next_wrapped_key.is_some()).map(|t| t.id.clone()).collect()
    }

    /// The staged key becomes the tenant's key; the old one is gone from the keyring.
    pub fn promote_tenant_key(&mut self, tenant_id: &str) -> Result<(), CryptoError> {
        let entry = self.entry_mut(tenant_id)?;
        if let Some(next) = entry.next_wrapped_key.take() {
            entry.wrapped_key = next;
        }
        Ok(())
    }

    /// Drops a staged key; the current one stays.
    pub fn abandon_tenant_key(&mut self, tenant_id: &str) -> Result<(), CryptoError> {
        self.entry_mut(tenant_id)?.next_wrapped_key = None;
        Ok(())
    }

    fn entry_mut(&mut self, tenant_id: &str) -> Result<&mut TenantEntry, CryptoError> {
        self.body
            .tenants
            .iter_mut()
            .find(|t| t.id == tenant_id)
            .ok_or_else(|| CryptoError::UnknownTenant { tenant_id: tenant_id.to_owned() })
    }

    /// Drops a tenant's key (in memory: call [`save`](Self::save)).
    pub fn remove_tenant(&mut self, tenant_id: &str) {
        self.body.tenants.retain(|t| t.id != tenant_id);
    }

    /// Seals operator secrets (the CA key) directly under the master key.
    pub fn seal_with_master(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.master.seal(aad, plaintext)
    }

    pub fn open_with_master(&self, aad: &[u8], sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        self.master.open(aad, sealed)
    }

    /// Re-reads the file (another process added a tenant) with the master key
    /// already held: no argon2 runs. Refuses a keyring of another installation.
    pub fn reload(&mut self) -> Result<(), CryptoError> {
        let fresh = Keyring::load(&self.path)?;
        let check = decode(&fresh.body.check, "check")?;
        match self.master.open(&check_aad(&fresh.body.installation_id), &check) {
            Ok(p) if p.as_slice() == CHECK_PLAINTEXT && fresh.body.installation_id == self.body.installation_id => {
                self.body = fresh.body;
                Ok(())
            }
            _ => Err(CryptoError::KeyringTampered { entry: "check".into() }),
        }
    }

    /// Writes the keyring atomically: temp file, fsync, rename, fsync the directory.
    pub fn save(&self) -> Result<(), CryptoError> {
        let io = |source| CryptoError::Io { path: self.path.clone(), source };
        let body_json = serde_json::to_vec(&self.body).map_err(|e| io(std::io::Error::other(e)))?;
        let file = KeyringFile { body: self.body.clone(), sha256: hex::encode(Sha256::digest(&body_json)) };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| io(std::io::Error::other(e)))?;
        text.push(b'\n');
        let tmp = self.path.with_extension("json.tmp");
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&text).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// The same keys wrapped under a new passphrase (a new master key with a
    /// fresh salt, the same argon2id costs), to be written to `path`. The
    /// system key and every tenant root key are unchanged: only how they are
    /// wrapped changes, so every store still opens.
    pub fn rewrapped(&self, passphrase: &SecretString, path: &Path) -> Result<UnlockedKeyring, CryptoError> {
        let kdf = KdfParams::new(self.body.kdf.memory_kib, self.body.kdf.iterations, self.body.kdf.parallelism)?;
        let master_key = MasterKey::derive(passphrase, &kdf)?.0;
        let master = Aead::new(&master_key);
        let system = self.system_key()?;
        let mut tenants = Vec::new();
        for t in &self.body.tenants {
            let root = self.unwrap_key(&tenant_aad(&t.id), &t.wrapped_key, &t.id)?;
            let wrapped = master.seal(&tenant_aad(&t.id), root.expose_secret())?;
            let next_wrapped_key = match &t.next_wrapped_key {
                Some(next) => {
                    let root = self.unwrap_key(&tenant_aad(&t.id), next, &t.id)?;
                    Some(B64.encode(master.seal(&tenant_aad(&t.id), root.expose_secret())?))
                }
                None => None,
            };
            tenants.push(TenantEntry { id: t.id.clone(), wrapped_key: B64.encode(wrapped), next_wrapped_key });
        }
        let body = Body {
            format: FORMAT.into(),
            version: VERSION,
            installation_id: self.body.installation_id.clone(),
            kdf,
            check: B64.encode(master.seal(&check_aad(&self.body.installation_id), CHECK_PLAINTEXT)?),
            system_key: B64.encode(master.seal(b"system-key", system.expose_secret())?),
            tenants,
        };
        Ok(UnlockedKeyring { path: path.to_owned(), body, master, master_key })
    }

    /// Opens a secret sealed under this master key and seals it under `next`'s.
    pub fn reseal_for(&self, next: &UnlockedKeyring, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let plain = self.master.open(aad, sealed)?;
        next.master.seal(aad, &plain)
    }

    /// The same keyring, saved from now on at `path` (after a rename).
    pub fn moved_to(mut self, path: &Path) -> UnlockedKeyring {
        self.path = path.to_owned();
        self
    }

    fn unwrap_key(&self, aad: &[u8], b64: &str, entry: &str) -> Result<Key256, CryptoError> {
        let sealed = decode(b64, entry)?;
        let bytes =
            self.master.open(aad, &sealed).map_err(|_| CryptoError::KeyringTampered { entry: entry.to_owned() })?;
        Key256::from_slice(&bytes).ok_or_else(|| CryptoError::KeyringTampered { entry: entry.to_owned() })
    }
}

impl std::fmt::Debug for UnlockedKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedKeyring").field("path", &self.path).field("master", &"[REDACTED]").finish()
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Body, CryptoError> {
    let unreadable = |reason: String| CryptoError::KeyringUnreadable { path: path.to_owned(), reason };
    let file: KeyringFile = serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()))?;
    if file.body.format != FORMAT {
        return Err(unreadable(format!("format is '{}'", file.body.format)));
    }
    if file.body.version != VERSION {
        return Err(CryptoError::KeyringVersion {
            path: path.to_owned(),
            found: file.body.version,
            supported: VERSION,
        });
    }
    let body_json = serde_json::to_vec(&file.body).map_err(|e| unreadable(e.to_string()))?;
    if hex::encode(Sha256::digest(&body_json)) != file.sha256 {
        return Err(CryptoError::KeyringDamaged { path: path.to_owned() });
    }
    Ok(file.body)
}

fn decode(b64: &str, entry: &str) -> Result<Vec<u8>, CryptoError> {
    B64.decode(b64).map_err(|_| CryptoError::KeyringTampered { entry: entry.to_owned() })
}

fn check_aad(installation_id: &str) -> Vec<u8> {
    [b"keyring-check/".as_slice(), installation_id.as_bytes()].concat()
}

fn tenant_aad(tenant_id: &str) -> Vec<u8> {
    [b"tenant-root-key/".as_slice(), tenant_id.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf::{MIN_ITERATIONS, MIN_MEMORY_KIB};

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn fast() -> KdfParams {
        KdfParams::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1).unwrap()
    }

    fn created(dir: &Path) -> (PathBuf, UnlockedKeyring) {
        let path = dir.join("keyring.json");
        let mut k = UnlockedKeyring::create(&path, &pass("a long passphrase"), fast()).unwrap();
        k.add_tenant("t1").unwrap();
        k.save().unwrap();
        (path, k)
    }

    #[test]
    fn round_trip_unwraps_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (path, k) = created(dir.path());
        let again = Keyring::load(&path).unwrap().unlock(&pass("a long passphrase")).unwrap();
        assert_eq!(k.system_key().unwrap().expose_secret(), again.system_key().unwrap().expose_secret());
        assert_eq!(
            k.tenant_keys("t1").unwrap().store_key().expose_secret(),
            again.tenant_keys("t1").unwrap().store_key().expose_secret()
        );
        assert!(matches!(again.tenant_keys("t2"), Err(CryptoError::UnknownTenant { .. })));
    }

    #[test]
    fn a_staged_tenant_key_survives_a_save_and_promotes_or_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut k) = created(dir.path());
        let before = std::fs::read(&path).unwrap();
        let old = k.tenant_keys("t1").unwrap().store_key().expose_secret().to_vec();
        let staged = k.stage_tenant_key("t1").unwrap().store_key().expose_secret().to_vec();
        assert_ne!(old, staged);
        k.save().unwrap();
        let mut again = Keyring::load(&path).unwrap().unlock(&pass("a long passphrase")).unwrap();
        assert_eq!(again.staged_tenants(), vec!["t1".to_owned()]);
        let reread = again.staged_tenant_keys("t1").unwrap().unwrap();
        assert_eq!(reread.store_key().expose_secret().to_vec(), staged);
        assert_eq!(
            again.tenant_keys("t1").unwrap().store_key().expose_secret().to_vec(),
            old,
            "still the old until promoted"
        );
        let mut abandoned = again.duplicate();
        abandoned.abandon_tenant_key("t1").unwrap();
        abandoned.save().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before, "abandoning writes back exactly the keyring before");
        again.promote_tenant_key("t1").unwrap();
        assert_eq!(again.tenant_keys("t1").unwrap().store_key().expose_secret().to_vec(), staged);
        assert!(again.staged_tenants().is_empty());
    }

    #[test]
    fn wrong_passphrase_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = created(dir.path());
        let err = Keyring::load(&path).unwrap().unlock(&pass("not the passphrase")).unwrap_err();
        assert!(matches!(err, CryptoError::WrongPassphrase), "{err}");
    }

    #[test]
    fn any_flipped_byte_is_damage_not_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = created(dir.path());
        let good = fs::read(&path).unwrap();
        for i in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            match Keyring::load(&path) {
                Err(CryptoError::KeyringDamaged { .. } | CryptoError::KeyringUnreadable { .. }) => {}
                // Whitespace outside the JSON values does not change the body.
                Ok(_) if good[i].is_ascii_whitespace() || bad[i].is_ascii_whitespace() => {}
                other => panic!("byte {i}: {:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn truncated_keyring_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = created(dir.path());
        let good = fs::read(&path).unwrap();
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(Keyring::load(&path), Err(CryptoError::KeyringUnreadable { .. })));
    }

    #[test]
    fn swapped_tenant_entries_do_not_unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut k) = created(dir.path());
        k.add_tenant("t2").unwrap();
        let (a, b) = (k.body.tenants[0].wrapped_key.clone(), k.body.tenants[1].wrapped_key.clone());
        k.body.tenants[0].wrapped_key = b;
        k.body.tenants[1].wrapped_key = a;
        k.save().unwrap();
        let again = Keyring::load(&path).unwrap().unlock(&pass("a long passphrase")).unwrap();
        assert!(matches!(again.tenant_keys("t1"), Err(CryptoError::KeyringTampered { .. })));
    }

    #[test]
    fn create_refuses_an_existing_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = created(dir.path());
        let before = fs::read(&path).unwrap();
        let err = UnlockedKeyring::create(&path, &pass("another passphrase"), fast()).unwrap_err();
        assert!(matches!(err, CryptoError::KeyringExists { .. }));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn reload_sees_new_tenants_without_argon2() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut server_side) = created(dir.path());
        let mut cli_side = Keyring::load(&path).unwrap().unlock(&pass("a long passphrase")).unwrap();
        cli_side.add_tenant("t9").unwrap();
        cli_side.save().unwrap();
        let before = crate::kdf::derivations();
        server_side.reload().unwrap();
        assert_eq!(crate::kdf::derivations(), before);
        assert!(server_side.tenant_keys("t9").is_ok());
    }
}

#[cfg(test)]
mod rewrap_tests {
    use super::*;
    use crate::kdf::{MIN_ITERATIONS, MIN_MEMORY_KIB};

    #[test]
    fn a_rewrapped_keyring_opens_the_same_keys_with_the_new_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let old = SecretString::from("the old passphrase".to_owned());
        let new = SecretString::from("a brand new passphrase".to_owned());
        let kdf = KdfParams::new(MIN_MEMORY_KIB, MIN_ITERATIONS, 1).unwrap();
        let mut k = UnlockedKeyring::create(&path, &old, kdf).unwrap();
        let tenant = k.add_tenant("ten_1").unwrap();
        let sealed = k.seal_with_master(b"ca", b"secret").unwrap();
        let next = k.rewrapped(&new, &dir.path().join("keyring.json.next")).unwrap();
        assert_eq!(next.system_key().unwrap().expose_secret(), k.system_key().unwrap().expose_secret());
        assert_eq!(next.tenant_keys("ten_1").unwrap().public_key(), tenant.public_key());
        let resealed = k.reseal_for(&next, b"ca", &sealed).unwrap();
        assert_eq!(next.open_with_master(b"ca", &resealed).unwrap().as_slice(), b"secret");
        assert!(k.open_with_master(b"ca", &resealed).is_err());
        next.save().unwrap();
        let loaded = Keyring::load(&dir.path().join("keyring.json.next")).unwrap();
        assert!(matches!(loaded.unlock(&old), Err(CryptoError::WrongPassphrase)));
        let loaded = Keyring::load(&dir.path().join("keyring.json.next")).unwrap();
        assert!(loaded.unlock(&new).is_ok());
    }
}
