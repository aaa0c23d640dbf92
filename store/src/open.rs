//! Opening a SQLCipher file safely.
//!
//! The order matters (DESIGN.md, Crypto): the key is the first statement;
//! `PRAGMA cipher_version` must answer, or the build silently fell back to
//! plain SQLite (which ignores unknown pragmas and would write PHI in the
//! clear); then one read, because a wrong key still answers `PRAGMA key` with
//! ok and only fails ("file is not a database") on first read. Only then the
//! durability and hygiene pragmas.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crypto::Key256;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use zeroize::Zeroizing;

use super::StoreError;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 96;

/// SQLCipher's page authentication, the one cipher setting stores differ in.
/// Stores made before issue 23 use HMAC-SHA512 (SQLCipher 4's default); new
/// ones HMAC-SHA256, which this machine's SHA extensions compute 2.6 times
/// faster (docs/PERFORMANCE.md). The file itself is the marker: page 1
/// verifies under exactly one of them, and under none with a wrong key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageHmac {
    Sha256,
    Sha512,
}

impl PageHmac {
    pub fn as_str(self) -> &'static str {
        match self {
            PageHmac::Sha256 => "HMAC_SHA256",
            PageHmac::Sha512 => "HMAC_SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [PageHmac::Sha256, PageHmac::Sha512].into_iter().find(|h| h.as_str() == s)
    }

    fn other(self) -> Self {
        match self {
            PageHmac::Sha256 => PageHmac::Sha512,
            PageHmac::Sha512 => PageHmac::Sha256,
        }
    }
}

/// The format new stores are made in: SHA-256, unless `bench --hmac` asks
/// for the old one to measure it.
static NEW_STORES_SHA512: AtomicBool = AtomicBool::new(false);

/// Sets the format of the stores this process creates from now on.
pub fn set_new_store_hmac(hmac: PageHmac) {
    NEW_STORES_SHA512.store(hmac == PageHmac::Sha512, Ordering::Relaxed);
}

/// The format of the stores this process creates.
pub fn new_store_hmac() -> PageHmac {
    if NEW_STORES_SHA512.load(Ordering::Relaxed) { PageHmac::Sha512 } else { PageHmac::Sha256 }
}

/// Opens (or with `create`, creates) the SQLCipher file at `path` with a raw
/// key and the store's pragmas: WAL, `synchronous=FULL`, `secure_delete=ON`,
/// foreign keys, temp data in memory. A new file gets the new format's page
/// HMAC; an existing one opens in whichever format it was made.
pub fn open_encrypted(path: &Path, key: &Key256, create: bool) -> Result<Connection, StoreError> {
    open_encrypted_as(path, key, create, new_store_hmac())
}

/// [`open_encrypted`], creating in (or trying first) the format `hmac`.
pub fn open_encrypted_as(path: &Path, key: &Key256, create: bool, hmac: PageHmac) -> Result<Connection, StoreError> {
    let exists = path.exists();
    match (create, exists) {
        (false, false) => {
            return Err(StoreError::Missing { path: path.to_owned() });
        }
        (true, true) => {
            return Err(StoreError::Exists { path: path.to_owned() });
        }
        _ => {}
    }
    match connect(path, key, create, hmac) {
        // The other format, or truly a wrong key (then it fails again, the same way).
        Err(StoreError::WrongKey { .. }) if !create => connect(path, key, false, hmac.other()),
        other => other,
    }
}

fn connect(path: &Path, key: &Key256, create: bool, hmac: PageHmac) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;

    // x'…' is SQLCipher's raw-key form: the 256-bit key is used as is, so no
    // PBKDF2 runs when a connection opens.
    // SQLCipher logs decryption failures to stderr by default; our errors say
    // what happened, in one line, through the caller.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    let key_hex = Zeroizing::new(hex::encode(key.expose_secret()));
    let pragma = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", key_hex.as_str()));
    conn.execute_batch(&pragma)?;

    if cipher_version(&conn)?.is_none() {
        return Err(StoreError::NotSqlCipher { path: path.to_owned() });
    }
    // After the key, before the first read (SQLCipher's order).
    conn.execute_batch(&format!("PRAGMA cipher_hmac_algorithm = {};", hmac.as_str()))?;
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => {}
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(StoreError::WrongKey { path: path.to_owned() });
        }
        Err(e) => return Err(e.into()),
    }

    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    debug_assert_eq!(mode.to_ascii_lowercase(), "wal");
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA busy_timeout = 5000;",
    )?;
    // A session open alone runs more distinct statements than rusqlite's
    // default cache of 16 holds: with it, statements were parsed again on
    // every request (SQLite's parser showed in the profile).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The page HMAC an open connection's main database uses.
pub fn page_hmac(conn: &Connection) -> Result<PageHmac, StoreError> {
    let name: String = conn.query_row("PRAGMA cipher_hmac_algorithm", [], |r| r.get(0))?;
    PageHmac::parse(&name).ok_or(StoreError::Decrypt { what: "the page HMAC setting" })
}

/// SQLCipher's version, or `None` when the linked library is plain SQLite.
pub fn cipher_version(conn: &Connection) -> Result<Option<String>, StoreError> {
    let v: Option<String> = conn.query_row("PRAGMA cipher_version", [], |r| r.get(0)).optional()?;
    Ok(v.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key256 {
        Key256::generate().unwrap()
    }

    #[test]
    fn creates_an_encrypted_file_with_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let k = key();
        let conn = open_encrypted(&path, &k, true).unwrap();
        assert!(cipher_version(&conn).unwrap().is_some());
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES ('plaintext-marker');").unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0)).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!((sync, secure, mode.as_str()), (2, 1, "wal"));
        drop(conn);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3"));
        assert!(!bytes.windows(16).any(|w| w == b"plaintext-marker"));
    }

    #[test]
    fn wrong_key_fails_at_open_and_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open_encrypted(&path, &key(), true).unwrap();
        conn.execute_batch("CREATE TABLE t(x);").unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        let err = open_encrypted(&path, &key(), false).unwrap_err();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// A store of the old format (HMAC-SHA512) opens as before, keeps its
    /// format, and a wrong key still fails whichever format the file has.
    #[test]
    fn both_page_formats_open_and_new_stores_are_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new, k) = (dir.path().join("old.db"), dir.path().join("new.db"), key());
        let conn = open_encrypted_as(&old, &k, true, PageHmac::Sha512).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
        drop(conn);
        drop(open_encrypted(&new, &k, true).unwrap().execute_batch("CREATE TABLE t(x);"));
        let conn = open_encrypted(&old, &k, false).unwrap();
        assert_eq!(page_hmac(&conn).unwrap(), PageHmac::Sha512);
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        drop(conn);
        assert_eq!(page_hmac(&open_encrypted(&new, &k, false).unwrap()).unwrap(), PageHmac::Sha256);
        for path in [&old, &new] {
            let before = std::fs::read(path).unwrap();
            assert!(matches!(open_encrypted(path, &key(), false), Err(StoreError::WrongKey { .. })));
            assert_eq!(std::fs::read(path).unwrap(), before, "a failed open changed {path:?}");
        }
    }

    #[test]
    fn missing_and_existing_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        assert!(matches!(open_encrypted(&path, &key(), false), Err(StoreError::Missing { .. })));
        drop(open_encrypted(&path, &key(), true).unwrap());
        assert!(matches!(open_encrypted(&path, &key(), true), Err(StoreError::Exists { .. })));
    }
}
