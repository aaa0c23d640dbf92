//! The data directory's layout and its process lock.
//!
//! ```text
//! <data-dir>/keyring.json       wrapped keys + argon2id parameters (crypto::keyring)
//! <data-dir>/system.db          system store (SQLCipher)
//! <data-dir>/tenants/<id>.db    one SQLCipher store per tenant
//! <data-dir>/.lock              advisory lock held while the layout changes
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::StoreError as Error;
use crate::ids::TenantId;

const LOCK_TEXT: &str = "throughline data directory lock\n";

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// Holds the data directory's exclusive lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DataDir {
    /// A data directory that must already exist and be initialised.
    pub fn existing(root: &Path) -> Result<Self, Error> {
        if !root.is_dir() {
            return Err(Error::DataDirMissing { path: root.to_owned() });
        }
        let dir = DataDir { root: root.to_owned() };
        for needed in [dir.keyring(), dir.system_db()] {
            if !needed.exists() {
                return Err(Error::NotInitialised { dir: dir.root.clone(), missing: needed });
            }
        }
        Ok(dir)
    }

    /// A data directory about to be initialised: may not exist yet, must not
    /// hold a keyring or system store.
    pub fn fresh(root: &Path) -> Result<Self, Error> {
        let dir = DataDir { root: root.to_owned() };
        for found in [dir.keyring(), dir.system_db()] {
            if found.exists() {
                return Err(Error::AlreadyInitialised { dir: dir.root.clone(), found });
            }
        }
        Ok(dir)
    }

    /// Creates the directory tree with owner-only permissions.
    pub fn create_layout(&self) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        fs::create_dir_all(self.tenants_dir()).map_err(io(&self.tenants_dir()))?;
        // Not empty: SQLite would take an empty file for a valid empty database.
        fs::write(self.lock_file(), LOCK_TEXT).map_err(io(&self.lock_file()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for d in [&self.root, &self.tenants_dir()] {
                fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(io(d))?;
            }
        }
        Ok(())
    }

    /// Takes the exclusive lock, failing at once if another process holds it.
    pub fn lock(&self) -> Result<DirLock, Error> {
        let path = self.lock_file();
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked { path: self.root.clone() }),
            Err(fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }

    /// Held (shared) by every running `serve` on this directory, for its
    /// whole life; a tenant key rotation takes it exclusively, so the two
    /// never overlap (a server would keep writing to the store being replaced).
    pub fn serving_lock(&self, exclusive: bool) -> Result<DirLock, Error> {
        let path = self.root.join(".serving");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path: path.clone(), source })?;
        let got = if exclusive { file.try_lock() } else { file.try_lock_shared() };
        match got {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) if exclusive => Err(Error::Serving { path: self.root.clone() }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked { path: self.root.clone() }),
            Err(fs::TryLockError::Error(source)) => Err(Error::Io { path, source }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }

    pub fn keyring(&self) -> PathBuf {
        self.root.join("keyring.json")
    }

    pub fn system_db(&self) -> PathBuf {
        self.root.join("system.db")
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.root.join("tenants")
    }

    /// Removes a tenant's store, WAL and shared-memory files (those that exist).
    pub fn remove_tenant_files(&self, id: &TenantId) -> Result<(), Error> {
        let path = self.tenant_db(id);
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            match fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: file.into(), source }),
            }
        }
        Ok(())
    }

    pub fn tenant_db(&self, id: &TenantId) -> PathBuf {
        self.tenants_dir().join(format!("{id}.db"))
    }

    /// Written by `serve --cluster` (the node's id): this directory's tenant
    /// stores are cluster copies, written through their owner only.
    pub fn cluster_marker(&self) -> PathBuf {
        self.root.join("cluster-node")
    }

    /// The node id if this directory belongs to a cluster node.
    pub fn cluster_node(&self) -> Option<String> {
        fs::read_to_string(self.cluster_marker()).ok().map(|s| s.trim().to_owned())
    }
}
