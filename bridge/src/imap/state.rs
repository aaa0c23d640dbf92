//! All the bridge keeps of a mailbox: its UIDVALIDITY and the last UID it
//! stored, in a small JSON file written atomically. Nothing of a message.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

impl State {
    /// After SELECT: a changed UIDVALIDITY means every UID is new (the
    /// server renumbered the folder), so start from the beginning; what
    /// was stored before is not stored twice, the core is idempotent.
    pub fn after_select(saved: Option<State>, uidvalidity: u32) -> State {
        match saved {
            Some(s) if s.uidvalidity == uidvalidity => s,
            _ => State { uidvalidity, last_uid: 0 },
        }
    }

    /// The UIDs to process, oldest first: those after the last one stored
    /// (`UID n:*` also answers the last message when nothing is newer).
    pub fn to_process(&self, found: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > self.last_uid).collect();
        uids.sort_unstable();
        uids.dedup();
        uids
    }
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("imap-{name}.json"))
}

pub fn load(path: &Path) -> Option<State> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Written to a temporary file, synced, renamed over the old one.
pub fn save(path: &Path, state: State) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut f, &serde_json::to_vec(&state).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_after_the_last_one_and_a_new_uidvalidity_starts_over() {
        let s = State::after_select(Some(State { uidvalidity: 7, last_uid: 4 }), 7);
        assert_eq!(s.to_process([6, 5, 4, 5]), [5, 6]);
        assert_eq!(s.to_process([4]), Vec::<u32>::new(), "UID 5:* answering the last message");
        let renumbered = State::after_select(Some(s), 8);
        assert_eq!(renumbered, State { uidvalidity: 8, last_uid: 0 });
        let dir = tempfile_dir();
        let p = path(&dir, "inbox");
        assert_eq!(load(&p), None);
        save(&p, s).unwrap();
        assert_eq!(load(&p), Some(s));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("bridge-imap-state-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
