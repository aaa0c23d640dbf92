//! Upgrades of a data directory: which schema its stores were last opened
//! with (`<data-dir>/schema`, plain text, no secrets), and a verbatim copy
//! of its files taken before a newer build migrates them.
//!
//! ```text
//! <data-dir>/schema                       system 11, tenant 6, build 0.1.0
//! <data-dir>/upgrades/<from>-to-<to>-<t>/  keyring.json, system.db, tenants/*.db as they were
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::StoreError as Error;
use crate::datadir::DataDir;

/// The schemas this build's migrations reach.
pub fn latest() -> Schema {
    Schema { system: migrations::system_latest(), tenant: migrations::tenant_latest() }
}

/// Schema versions of a data directory's system store and tenant stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schema {
    pub system: i64,
    pub tenant: i64,
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}.t{}", self.system, self.tenant)
    }
}

/// What a data directory's marker says about the build that last opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaMarker {
    pub schema: Schema,
    pub build: String,
}

impl DataDir {
    pub fn schema_marker_path(&self) -> PathBuf {
        self.root().join("schema")
    }

    pub fn upgrades_dir(&self) -> PathBuf {
        self.root().join("upgrades")
    }

    /// The marker, if the directory has one (directories made before this
    /// build have none) and it reads.
    pub fn schema_marker(&self) -> Option<SchemaMarker> {
        let text = fs::read_to_string(self.schema_marker_path()).ok()?;
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')).map(str::trim))
        };
        Some(SchemaMarker {
            schema: Schema { system: field("system")?.parse().ok()?, tenant: field("tenant")?.parse().ok()? },
            build: field("build")?.to_owned(),
        })
    }

    /// Records that this build's schemas are the directory's (atomically).
    pub fn write_schema_marker(&self, build: &str) -> Result<(), Error> {
        let l = latest();
        let text = format!(
            "# The schemas this data directory's stores were last opened with; a newer build\n\
             # copies the stores to upgrades/ before it migrates them (docs/UPGRADING.md).\n\
             system {}\ntenant {}\nbuild {build}\n",
            l.system, l.tenant
        );
        let path = self.schema_marker_path();
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|source| Error::Io { path: path.clone(), source })
    }

    /// Copies the keyring and every store file (with its write-ahead log)
    /// as they are into `upgrades/<label>/`; returns that directory. The
    /// files are the encrypted originals: the copy is as safe as the
    /// directory itself, and restoring it is copying it back.
    pub fn preserve(&self, label: &str) -> Result<PathBuf, Error> {
        let dest = self.upgrades_dir().join(label);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        fs::create_dir_all(dest.join("tenants")).map_err(io(&dest))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for d in [self.upgrades_dir(), dest.clone(), dest.join("tenants")] {
                fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).map_err(io(&d))?;
            }
        }
        let mut files = vec![(self.keyring(), dest.join("keyring.json"))];
        for suffix in ["", "-wal"] {
            files.push((with_suffix(&self.system_db(), suffix), with_suffix(&dest.join("system.db"), suffix)));
        }
        for entry in fs::read_dir(self.tenants_dir()).map_err(io(&self.tenants_dir()))? {
            let entry = entry.map_err(io(&self.tenants_dir()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".db") || name.ends_with(".db-wal") {
                files.push((entry.path(), dest.join("tenants").join(name.as_ref())));
            }
        }
        for (from, to) in files {
            if from.exists() {
                fs::copy(&from, &to).map_err(io(&from))?;
                fs::File::open(&to).and_then(|f| f.sync_all()).map_err(io(&to))?;
            }
        }
        Ok(dest)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// Refuses a store whose schema is newer than this build's migrations.
pub(crate) fn refuse_newer(conn: &rusqlite::Connection, path: &Path, known: i64) -> Result<(), Error> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(Error::SchemaTooNew { path: path.to_owned(), found, known });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_and_a_damaged_one_reads_as_none() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::fresh(tmp.path()).unwrap();
        dir.create_layout().unwrap();
        assert_eq!(dir.schema_marker(), None);
        dir.write_schema_marker("9.9.9").unwrap();
        assert_eq!(dir.schema_marker(), Some(SchemaMarker { schema: latest(), build: "9.9.9".into() }));
        fs::write(dir.schema_marker_path(), "system eleven\n").unwrap();
        assert_eq!(dir.schema_marker(), None);
    }

    /// A store a newer build migrated is refused whole, untouched.
    #[test]
    fn a_store_from_a_newer_build_is_refused_with_the_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("system.db");
        let key = crypto::Key256::generate().unwrap();
        drop(crate::SystemStore::create(&path, &key, "inst", "op", 0).unwrap());
        let newer = latest().system + 1;
        crate::open::open_encrypted(&path, &key, false)
            .unwrap()
            .execute_batch(&format!("PRAGMA user_version = {newer};"))
            .unwrap();
        let before = fs::read(&path).unwrap();
        let e = crate::SystemStore::open(&path, &key).err().unwrap();
        assert!(matches!(e, Error::SchemaTooNew { found, known, .. } if found == newer && known == newer - 1), "{e}");
        assert!(e.to_string().contains("written by a newer Throughline"), "{e}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }
}
