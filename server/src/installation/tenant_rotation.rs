//! `throughline keys rotate-tenant NAME`: a new root key for one tenant,
//! its store re-keyed ([`store::TenantStore::rekey_into`]), crash-safe
//! in four steps, each durable before the next:
//! 1. the re-keyed copy is written beside the store (`ten_….db.next`);
//! 2. the new root key is staged in the keyring beside the old one (saved);
//! 3. the copy is renamed over the store;
//! 4. the staged key replaces the old one in the keyring (saved).
//!
//! A crash in 1 leaves the old state (the next open removes the stray copy);
//! after 2, the next open finishes 3 and 4 (the copy was durable before the
//! key that opens it). Only with the server stopped (the serving lock).
//! Backups taken before stay restorable: each carries its own keyring.

use crypto::UnlockedKeyring;

use crate::{Error, Installation};
use store::Rekeyed;
use store::datadir::DataDir;
use store::ids::TenantId;

/// Where a test may stop the rotation dead (`--danger-crash-at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantCrashAt {
    AfterCopy,
    AfterStage,
    AfterRename,
}

fn crash(at: Option<TenantCrashAt>, here: TenantCrashAt) {
    if at == Some(here) {
        std::process::abort();
    }
}

fn next_path(dir: &DataDir, id: &TenantId) -> std::path::PathBuf {
    dir.tenant_db(id).with_extension("db.next")
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// Step 3: the copy over the store. The old store's WAL and shared-memory
/// files go first: they belong to the old file and would be replayed into
/// the new one. (The old store was checkpointed and closed before step 2.)
fn swap_in(dir: &DataDir, id: &TenantId) -> Result<(), Error> {
    let db = dir.tenant_db(id);
    for suffix in ["-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&f)(e)),
            _ => {}
        }
    }
    let next = next_path(dir, id);
    std::fs::rename(&next, &db).map_err(io(&db))?;
    let tenants = dir.tenants_dir();
    std::fs::File::open(&tenants).and_then(|d| d.sync_all()).map_err(io(&tenants))
}

/// Finishes or abandons what a crashed rotation left (at open, before anything reads a tenant).
pub(crate) fn recover(dir: &DataDir, keyring: &mut UnlockedKeyring) -> Result<(), Error> {
    let staged = keyring.staged_tenants();
    for t in &staged {
        let Some(id) = TenantId::parse(t) else { continue };
        if next_path(dir, &id).exists() {
            swap_in(dir, &id)?;
        }
        keyring.promote_tenant_key(t)?;
        tracing::warn!(tenant = %id, "finished a tenant key rotation that was interrupted");
    }
    if !staged.is_empty() {
        keyring.save()?;
    }
    if let Ok(entries) = std::fs::read_dir(dir.tenants_dir()) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "next") {
                // A copy whose key never reached the keyring: the rotation did not happen.
                std::fs::remove_file(e.path()).map_err(io(&e.path()))?;
            }
        }
    }
    Ok(())
}

impl Installation {
    /// Rotates `name`'s root key (see the module). Refused while a server runs.
    pub fn rotate_tenant_key(&mut self, name: &str, crash_at: Option<TenantCrashAt>) -> Result<Rekeyed, Error> {
        let _serving = self.dir.serving_lock(true)?;
        let _lock = self.dir.lock()?;
        let row = self.tenant(name)?;
        let id = row.id.clone();
        let next = next_path(&self.dir, &id);
        if next.exists() {
            std::fs::remove_file(&next).map_err(io(&next))?;
        }
        let mut staged = self.keyring.duplicate();
        let new_keys = staged.stage_tenant_key(id.as_str())?;
        let now = self.now_ms();
        let operator = self.operator().to_owned();
        let done = {
            let store = self.open_tenant(name)?;
            let done = store.rekey_into(&next, new_keys, &operator, now)?;
            store.checkpoint_truncate()?;
            done
        };
        crash(crash_at, TenantCrashAt::AfterCopy);
        staged.save()?;
        crash(crash_at, TenantCrashAt::AfterStage);
        swap_in(&self.dir, &id)?;
        crash(crash_at, TenantCrashAt::AfterRename);
        staged.promote_tenant_key(id.as_str())?;
        staged.save()?;
        self.keyring = staged;
        self.record_system_action(audit::Action::TenantKeyRotate, id.as_str())?;
        Ok(done)
    }
}
