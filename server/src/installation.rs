//! An installation: a data directory whose keyring is unlocked and whose
//! system store is open. Operator commands and the server start here.
//!
//! Argon2id runs once, in [`Installation::init`] or [`Installation::open`];
//! every later key (system, tenant, patient) is unwrapped with AES-GCM.

use std::path::Path;
use std::sync::Arc;

use crypto::{KdfParams, Keyring, UnlockedKeyring};
use policy::StateTtl;
use secrecy::SecretString;

use crate::Error;
use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::ids::{TenantId, TenantName};
use crate::store::{SystemStore, TenantRow, TenantStore};

pub type TenantInfo = TenantRow;

pub struct Installation {
    dir: DataDir,
    keyring: UnlockedKeyring,
    system: SystemStore,
    clock: Arc<dyn Clock>,
    operator: String,
}

impl Installation {
    /// Creates a new installation in `root`: the directory (owner-only), the
    /// keyring and the system store. Refuses an initialised directory without
    /// touching it; on failure removes what it created.
    pub fn init(root: &Path, passphrase: &SecretString, kdf: KdfParams, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let dir = DataDir::fresh(root)?;
        let root_existed = root.exists();
        let result = Self::init_inner(&dir, passphrase, kdf, clock);
        if result.is_err() {
            // Roll back only what this call created.
            let _ = std::fs::remove_file(dir.keyring());
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", dir.system_db().display()));
            }
            if !root_existed {
                let _ = std::fs::remove_dir_all(root);
            }
        }
        result
    }

    fn init_inner(
        dir: &DataDir,
        passphrase: &SecretString,
        kdf: KdfParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        dir.create_layout()?;
        let _lock = dir.lock()?;
        let keyring = UnlockedKeyring::create(&dir.keyring(), passphrase, kdf)?;
        let operator = operator_name();
        let system = SystemStore::create(
            &dir.system_db(),
            &keyring.system_key()?,
            keyring.installation_id(),
            &operator,
            clock.now_ms(),
        )?;
        Ok(Installation { dir: dir.clone(), keyring, system, clock, operator })
    }

    /// Opens an initialised installation: checks the keyring for damage,
    /// derives the master key (argon2id), opens the system store.
    pub fn open(root: &Path, passphrase: &SecretString, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let dir = DataDir::existing(root)?;
        let keyring = Keyring::load(&dir.keyring())?.unlock(passphrase)?;
        let system = SystemStore::open(&dir.system_db(), &keyring.system_key()?)?;
        let found = system.installation_id()?.unwrap_or_default();
        if found != keyring.installation_id() {
            return Err(Error::InstallationMismatch { expected: keyring.installation_id().to_owned(), found });
        }
        Ok(Installation { dir, keyring, system, clock, operator: operator_name() })
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    pub fn installation_id(&self) -> &str {
        self.keyring.installation_id()
    }

    pub fn system(&self) -> &SystemStore {
        &self.system
    }

    /// Creates a tenant: a fresh root key in the keyring, its own encrypted
    /// store, and its row in the system store. All three or none.
    pub fn create_tenant(&mut self, name: &TenantName, ttl: StateTtl) -> Result<TenantInfo, Error> {
        let _lock = self.dir.lock()?;
        if self.system.tenant_by_name(name.as_str())?.is_some() {
            return Err(Error::TenantExists { name: name.to_string() });
        }
        let id = TenantId::generate();
        let now = self.clock.now_ms();
        let keys = self.keyring.add_tenant(id.as_str())?;
        let path = self.dir.tenant_db(&id);
        let row = TenantRow {
            id: id.clone(),
            name: name.to_string(),
            state_ttl_days: ttl.days(),
            default_region: "US".into(),
            created_at: now,
        };
        let created = TenantStore::create(&path, keys, &self.operator, now)
            .map_err(Error::from)
            .and_then(|store| {
                store.checkpoint_truncate()?;
                drop(store);
                self.keyring.save()?;
                Ok(())
            })
            .and_then(|()| self.system.insert_tenant(&row, &self.operator).map_err(Error::from));
        if let Err(e) = created {
            self.keyring.remove_tenant(id.as_str());
            let _ = self.keyring.save();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            return Err(e);
        }
        Ok(row)
    }

    pub fn tenants(&self) -> Result<Vec<TenantInfo>, Error> {
        Ok(self.system.tenants()?)
    }

    pub fn tenant(&self, name: &str) -> Result<TenantInfo, Error> {
        self.system.tenant_by_name(name)?.ok_or_else(|| Error::TenantNotFound { name: name.to_owned() })
    }

    /// Opens a tenant's store with its keys (unwrapped from the keyring).
    pub fn open_tenant(&self, name: &str) -> Result<TenantStore, Error> {
        let row = self.tenant(name)?;
        let keys = self.keyring.tenant_keys(row.id.as_str())?;
        Ok(TenantStore::open(&self.dir.tenant_db(&row.id), keys)?)
    }
}

/// The operator recorded in audit entries for CLI actions: the OS account.
fn operator_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "operator".into())
}
