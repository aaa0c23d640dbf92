//! Opening a SQLCipher file safely.
//!
//! The order matters (DESIGN.md, Crypto): the key is the first statement;
//! `PRAGMA cipher_version` must answer, or the build silently fell back to
//! plain SQLite (which ignores unknown pragmas and would write PHI in the
//! clear); then one read, because a wrong key still answers `PRAGMA key` with
//! ok and only fails ("file is not a database") on first read. Only then the
//! durability and hygiene pragmas.

use std::path::Path;

use crypto::Key256;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use zeroize::Zeroizing;

use super::StoreError;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 96;

/// Opens (or with `create`, creates) the SQLCipher file at `path` with a raw
/// key and the store's pragmas: WAL, `synchronous=FULL`, `secure_delete=ON`,
/// foreign keys, temp data in memory.
pub fn open_encrypted(path: &Path, key: &Key256, create: bool) -> Result<Connection, StoreError> {
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

    #[test]
    fn missing_and_existing_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        assert!(matches!(open_encrypted(&path, &key(), false), Err(StoreError::Missing { .. })));
        drop(open_encrypted(&path, &key(), true).unwrap());
        assert!(matches!(open_encrypted(&path, &key(), true), Err(StoreError::Exists { .. })));
    }
}
