//! Scheduled backups in `serve` (`--backup-dir DIR --backup-every 24h
//! --backup-keep 14`): a thread of its own takes a backup when the newest in
//! the directory is older than the interval (so a restart neither skips one
//! nor takes an extra), writes the erasure ledger beside it, and keeps the
//! newest `keep` pairs. Each file is written under a `.partial` name, made
//! durable and renamed, so the directory never holds half a backup under a
//! real name. Copy the directory off the box (docs/OPERATIONS.md): a backup
//! on the same disk is no backup against losing the disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Error, Installation};

const SUFFIX: &str = ".tlbackup";
const LEDGER_SUFFIX: &str = ".ledger.jsonl";
const PREFIX: &str = "throughline-";

/// What `serve` was asked to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupPlan {
    pub dir: PathBuf,
    pub every: Duration,
    pub keep: usize,
}

/// One backup written: the backup file, its ledger, its size.
#[derive(Debug)]
pub struct Taken {
    pub file: PathBuf,
    pub ledger: PathBuf,
    pub bytes: u64,
}

/// The backups in `dir`, oldest first (by name: the names sort by time).
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    out.sort();
    Ok(out)
}

const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";

/// When a backup was taken, from its name (the server's clock, as the
/// audit trail has it; a file's mtime may come from another clock).
fn taken_at_ms(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S%.f", stamp.strip_suffix('Z')?).ok()?;
    Some(civil.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond())
}

/// How long before `now_ms` the newest backup in `dir` was taken, if there is one.
pub fn newest_age(dir: &Path, now_ms: i64) -> Option<Duration> {
    let newest = list(dir).ok()?.pop()?;
    let at = taken_at_ms(&newest)?;
    Some(Duration::from_millis(u64::try_from(now_ms - at).unwrap_or(0)))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// Takes one backup into `plan.dir` now, then prunes past `plan.keep`.
pub fn take(inst: &Installation, plan: &BackupPlan) -> Result<Taken, Error> {
    std::fs::create_dir_all(&plan.dir).map_err(io(&plan.dir))?;
    let stamp = jiff::Timestamp::from_millisecond(inst.now_ms())
        .map(|t| t.strftime(STAMP).to_string())
        .unwrap_or_else(|_| "unknown-time".into());
    let file = plan.dir.join(format!("{PREFIX}{stamp}{SUFFIX}"));
    let ledger = plan.dir.join(format!("{PREFIX}{stamp}{LEDGER_SUFFIX}"));
    let partial = plan.dir.join(format!("{PREFIX}{stamp}{SUFFIX}.partial"));
    let partial_ledger = plan.dir.join(format!("{PREFIX}{stamp}{LEDGER_SUFFIX}.partial"));
    // Left by a crash during an earlier attempt: never a backup anyone can use.
    for e in std::fs::read_dir(&plan.dir).map_err(io(&plan.dir))?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".partial") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let result = (|| {
        inst.backup(&partial, &|_, _| {})?;
        let mut f = std::fs::File::create_new(&partial_ledger).map_err(io(&partial_ledger))?;
        inst.write_ledger(&mut f)?;
        f.sync_all().map_err(io(&partial_ledger))?;
        // The ledger first: a backup under its real name always has its ledger beside it.
        std::fs::rename(&partial_ledger, &ledger).map_err(io(&ledger))?;
        std::fs::rename(&partial, &file).map_err(io(&file))?;
        std::fs::File::open(&plan.dir).and_then(|d| d.sync_all()).map_err(io(&plan.dir))?;
        std::fs::metadata(&file).map(|m| m.len()).map_err(io(&file))
    })();
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(&partial_ledger);
            return Err(e);
        }
    };
    prune(&plan.dir, plan.keep)?;
    Ok(Taken { file, ledger, bytes })
}

/// Deletes the oldest backups (and their ledgers) past the newest `keep`.
fn prune(dir: &Path, keep: usize) -> Result<(), Error> {
    let all = list(dir).map_err(io(dir))?;
    let excess = all.len().saturating_sub(keep.max(1));
    for old in &all[..excess] {
        std::fs::remove_file(old).map_err(io(old))?;
        let name = old.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ledger = dir.join(name.replace(SUFFIX, LEDGER_SUFFIX));
        if ledger.exists() {
            std::fs::remove_file(&ledger).map_err(io(&ledger))?;
        }
    }
    Ok(())
}

/// The backup thread.
pub struct Backups {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backups {
    /// Starts the schedule on its own thread, which owns `inst`.
    pub fn start(inst: Installation, plan: BackupPlan) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("backups".into())
            .spawn(move || {
                let metrics = crate::metrics::get();
                let mut failed_at: Option<std::time::Instant> = None;
                while !flag.load(Ordering::Relaxed) {
                    let due = newest_age(&plan.dir, inst.now_ms()).is_none_or(|age| age >= plan.every);
                    // After a failure, retry in a tenth of the interval (at least a minute), not at once.
                    let backing_off =
                        failed_at.is_some_and(|t| t.elapsed() < (plan.every / 10).max(Duration::from_secs(60)));
                    if due && !backing_off {
                        match take(&inst, &plan) {
                            Ok(t) => {
                                failed_at = None;
                                metrics.backup_last.set(inst.now_ms() / 1000);
                                metrics.backup_bytes.set(i64::try_from(t.bytes).unwrap_or(i64::MAX));
                                tracing::info!(bytes = t.bytes, file = %t.file.display(), "scheduled backup written");
                            }
                            Err(e) => {
                                failed_at = Some(std::time::Instant::now());
                                metrics.backup_failures.inc();
                                tracing::error!(error = %e, "scheduled backup failed; retrying later");
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
            .ok();
        Backups { stop, thread }
    }

    /// Stops the thread, letting a backup in progress finish.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_backup_files_are_listed_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["20260101T000000.000Z", "20260102T000000.000Z", "20260103T000000.000Z"] {
            std::fs::write(dir.path().join(format!("{PREFIX}{n}{SUFFIX}")), b"x").unwrap();
            std::fs::write(dir.path().join(format!("{PREFIX}{n}{LEDGER_SUFFIX}")), b"").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
        let newest = dir.path().join(format!("{PREFIX}20260103T000000.000Z{SUFFIX}"));
        assert_eq!(taken_at_ms(&newest), Some(1_767_398_400_000));
        assert_eq!(newest_age(dir.path(), 1_767_398_400_000 + 90_000), Some(Duration::from_secs(90)));
        prune(dir.path(), 2).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "notes.txt",
                "throughline-20260102T000000.000Z.ledger.jsonl",
                "throughline-20260102T000000.000Z.tlbackup",
                "throughline-20260103T000000.000Z.ledger.jsonl",
                "throughline-20260103T000000.000Z.tlbackup",
            ]
        );
    }
}
