//! Encrypted, authenticated, consistent backups, and restore.
//!
//! ```text
//! THROUGHLINE-BACKUP/1\n
//! u32 BE header length, header JSON (keyring text, files, ids)
//! repeated: u32 BE chunk length, chunk sealed (AES-256-GCM) under the master key
//! ```
//!
//! The payload is every store's snapshot (SQLite's backup API into a keyed
//! file, so nothing is ever written in the clear) concatenated and cut into
//! 1 MiB chunks. Each chunk's associated data binds the backup id, its index,
//! whether it is the last, and the SHA-256 of the header: a changed header, a
//! flipped byte, a reordered, dropped or truncated chunk all fail. Restore
//! verifies everything before writing a single file, into an empty directory
//! only, then re-applies every erasure it knows of (the restored ledger and an
//! optional ledger file exported from the live installation) before anything
//! can serve.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto::Keyring;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::{Error, Installation};
use store::datadir::DataDir;
use store::ids::{CustomerId, TenantId};

const MAGIC: &[u8] = b"THROUGHLINE-BACKUP/1\n";
const CHUNK: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    backup_id: String,
    installation_id: String,
    created_at: i64,
    keyring: String,
    files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    path: String,
    size: u64,
}

/// What a backup or restore did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
    pub erasures_reapplied: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

fn damaged(reason: impl Into<String>) -> Error {
    Error::BackupDamaged { reason: reason.into() }
}

fn aad(backup_id: &str, header_hash: &[u8], index: u64, last: bool) -> Vec<u8> {
    format!("backup/{backup_id}/{}/{index}/{}", hex::encode(header_hash), u8::from(last)).into_bytes()
}

/// A backup file as read, before anything is decrypted: the header, its
/// hash (bound into every chunk's associated data) and the sealed chunks.
/// Everything a damaged or hostile file can get wrong is refused here.
pub struct Container<'a> {
    header: Header,
    header_hash: [u8; 32],
    chunks: Vec<&'a [u8]>,
    total: u64,
}

impl Container<'_> {
    pub fn files(&self) -> usize {
        self.header.files.len()
    }
}

/// Reads the container framing: magic, header, length-prefixed chunks.
pub fn read_container(bytes: &[u8]) -> Result<Container<'_>, Error> {
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| damaged("not a Throughline backup"))?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| damaged("truncated header"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(damaged("truncated header"));
    }
    let (header_json, mut rest) = rest.split_at(len);
    let header: Header = serde_json::from_slice(header_json).map_err(|_| damaged("unreadable header"))?;
    let mut total = 0u64;
    for f in &header.files {
        let ok_path = f.path == "system.db"
            || (f.path.starts_with("tenants/ten_") && f.path.ends_with(".db") && !f.path.contains(".."));
        if !ok_path {
            return Err(damaged(format!("unexpected file {}", f.path.escape_debug())));
        }
        total = total.checked_add(f.size).ok_or_else(|| damaged("file sizes overflow"))?;
    }
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        let index = chunks.len();
        let (len, after) =
            rest.split_first_chunk::<4>().ok_or_else(|| damaged(format!("chunk {index} is truncated")))?;
        let len = u32::from_be_bytes(*len) as usize;
        if after.len() < len {
            return Err(damaged(format!("chunk {index} is truncated")));
        }
        let (sealed, after) = after.split_at(len);
        chunks.push(sealed);
        rest = after;
    }
    if chunks.is_empty() {
        return Err(damaged("truncated: the last chunk is missing"));
    }
    Ok(Container { header_hash: Sha256::digest(header_json).into(), header, chunks, total })
}

impl Installation {
    /// Writes a backup of the system store, the keyring and every tenant to
    /// `out` (a new file). Safe while the server runs. `progress(done, total)`
    /// is called after each store is snapshotted.
    pub fn backup(&self, out: &Path, progress: &dyn Fn(u64, u64)) -> Result<Summary, Error> {
        let tmp = tempfile::tempdir().map_err(io(out))?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        let system = tmp.path().join("system.db");
        self.system().snapshot_to(&system, &self.keyring_system_key()?)?;
        files.push(("system.db".into(), system));
        std::fs::create_dir(tmp.path().join("tenants")).map_err(io(out))?;
        let tenants = self.all_tenant_ids()?;
        let total = tenants.len() as u64 + 1;
        progress(1, total);
        for id in tenants {
            let name = format!("tenants/{id}.db");
            let dst = tmp.path().join(&name);
            self.open_tenant_by_id(&id)?.snapshot_to(&dst)?;
            files.push((name, dst));
            progress(files.len() as u64, total);
        }
        let keyring = std::fs::read_to_string(self.data_dir().keyring()).map_err(io(out))?;
        let mut entries = Vec::new();
        for (name, path) in &files {
            let size = std::fs::metadata(path).map_err(io(path))?.len();
            entries.push(FileEntry { path: name.clone(), size });
        }
        let header = Header {
            backup_id: uuid::Uuid::new_v4().simple().to_string(),
            installation_id: self.installation_id().to_owned(),
            created_at: self.now_ms(),
            keyring,
            files: entries,
        };
        let header_json = serde_json::to_vec(&header).map_err(|e| damaged(e.to_string()))?;
        let header_hash = Sha256::digest(&header_json);
        let mut w = std::io::BufWriter::new(std::fs::File::create_new(out).map_err(io(out))?);
        w.write_all(MAGIC).map_err(io(out))?;
        w.write_all(&(header_json.len() as u32).to_be_bytes()).map_err(io(out))?;
        w.write_all(&header_json).map_err(io(out))?;
        let mut payload = Vec::new();
        for (_, path) in &files {
            std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut payload)).map_err(io(path))?;
        }
        let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&[]] } else { payload.chunks(CHUNK).collect() };
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let sealed = self.seal_for_backup(&aad(&header.backup_id, &header_hash, i as u64, last), chunk)?;
            w.write_all(&(sealed.len() as u32).to_be_bytes()).map_err(io(out))?;
            w.write_all(&sealed).map_err(io(out))?;
        }
        w.into_inner()
            .map_err(|e| Error::Io { path: out.to_owned(), source: e.into_error() })?
            .sync_all()
            .map_err(io(out))?;
        self.record_system_action(audit::Action::BackupCreate, &header.backup_id)?;
        Ok(Summary { files: files.len(), bytes: payload.len() as u64, erasures_reapplied: 0 })
    }

    /// Restores `file` into the empty directory `root`, then re-applies every
    /// known erasure (the restored ledger, and `ledger` if given) before
    /// returning. Nothing is written unless the whole backup verifies.
    pub fn restore(
        file: &Path,
        root: &Path,
        passphrase: &SecretString,
        ledger: Option<&Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Installation, Summary), Error> {
        if root.exists() && std::fs::read_dir(root).map_err(io(root))?.next().is_some() {
            return Err(Error::RestoreTargetNotEmpty { path: root.to_owned() });
        }
        let bytes = std::fs::read(file).map_err(io(file))?;
        let container = read_container(&bytes)?;
        let header = &container.header;
        let keyring_path = root.join("keyring.json");
        let keyring = Keyring::from_bytes(&keyring_path, header.keyring.as_bytes())?.unlock(passphrase)?;
        let mut payload = Vec::new();
        let count = container.chunks.len();
        for (index, sealed) in container.chunks.iter().enumerate() {
            let last = index + 1 == count;
            let aad = aad(&header.backup_id, &container.header_hash, index as u64, last);
            let plain = keyring
                .open_with_master(&aad, sealed)
                .map_err(|_| damaged(format!("chunk {index} does not authenticate (altered, reordered or cut)")))?;
            payload.extend_from_slice(&plain);
        }
        let total = container.total;
        if payload.len() as u64 != total {
            return Err(damaged("the files do not add up to the payload"));
        }
        // Everything verified: write the installation.
        let dir = DataDir::fresh(root)?;
        dir.create_layout()?;
        let marker = root.join(crate::installation::RESTORE_MARKER);
        std::fs::write(&marker, b"a restore is in progress; do not serve this directory\n").map_err(io(&marker))?;
        let mut offset = 0usize;
        for f in &header.files {
            let end = offset + f.size as usize;
            let dst = root.join(&f.path);
            std::fs::write(&dst, &payload[offset..end]).map_err(io(&dst))?;
            offset = end;
        }
        std::fs::write(&keyring_path, header.keyring.as_bytes()).map_err(io(&keyring_path))?;
        let inst = Installation::open_restoring(root, passphrase, clock)?;
        let mut erasures = inst.all_ledger_entries()?;
        if let Some(path) = ledger {
            erasures.extend(read_ledger(path)?);
        }
        let mut reapplied = 0;
        for (tenant, customer) in erasures {
            if inst.reapply_erasure(&tenant, &customer)? {
                reapplied += 1;
            }
        }
        inst.record_system_action(audit::Action::BackupRestore, &header.backup_id)?;
        // The stores are this build's now (the backup file is the copy from before).
        inst.data_dir().write_schema_marker(env!("CARGO_PKG_VERSION"))?;
        std::fs::remove_file(&marker).map_err(io(&marker))?;
        Ok((inst, Summary { files: header.files.len(), bytes: total, erasures_reapplied: reapplied }))
    }

    /// The erasure ledger of every tenant, as JSON Lines (to keep with, and
    /// apart from, backups: `restore --ledger`).
    pub fn write_ledger(&self, out: &mut dyn Write) -> Result<usize, Error> {
        let entries = self.all_ledger_entries()?;
        for (tenant, customer) in &entries {
            let line = serde_json::json!({"tenant_id": tenant.as_str(), "customer_id": customer.as_str()});
            writeln!(out, "{line}").map_err(|source| Error::Io { path: "ledger".into(), source })?;
        }
        Ok(entries.len())
    }
}

fn read_ledger(path: &Path) -> Result<Vec<(TenantId, CustomerId)>, Error> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|_| Error::LedgerFile { line: i + 1 })?;
        let tenant = v["tenant_id"].as_str().and_then(TenantId::parse).ok_or(Error::LedgerFile { line: i + 1 })?;
        let customer =
            v["customer_id"].as_str().and_then(CustomerId::parse).ok_or(Error::LedgerFile { line: i + 1 })?;
        out.push((tenant, customer));
    }
    Ok(out)
}
