//! The integrity badge: what verifying the trail found, said so a
//! compliance officer can act on it. Red: a record does not verify, or the
//! trail no longer matches its signed checkpoint. Amber: no checkpoint yet,
//! or the last one is older than the interval allows. Green otherwise.

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Verified,
    Stale,
    Broken,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Verified => "verified",
            Level::Stale => "stale",
            Level::Broken => "broken",
        }
    }
}

/// The badge as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Badge {
    pub level: Level,
    pub headline: String,
    pub detail: String,
}

/// What the store found, as plain values.
#[derive(Clone, Debug)]
pub struct Found {
    pub records: u64,
    /// The first record that does not verify, and why.
    pub broken: Option<(u64, String)>,
    /// The latest checkpoint: (size, signed at ms, still matches the trail).
    pub checkpoint: Option<(u64, i64, bool)>,
}

/// `max_age_ms`: a checkpoint older than this is stale.
pub fn badge(f: &Found, now: i64, max_age_ms: i64, when: impl Fn(i64) -> String) -> Badge {
    if let Some((seq, why)) = &f.broken {
        return Badge {
            level: Level::Broken,
            headline: format!("Broken at record {seq}"),
            detail: format!(
                "{why}. Nothing after it can be trusted until this is explained; export the trail and keep it."
            ),
        };
    }
    match f.checkpoint {
        Some((size, _, false)) => Badge {
            level: Level::Broken,
            headline: format!("The trail no longer matches the checkpoint at record {size}"),
            detail: "History covered by a signed checkpoint was changed after it was signed.".into(),
        },
        None => Badge {
            level: Level::Stale,
            headline: format!("{} records verified; no signed checkpoint yet", f.records),
            detail: "Without a checkpoint kept elsewhere, a rewritten trail cannot be told from the original. `serve` signs one every hour."
                .into(),
        },
        Some((size, at, true)) if now - at > max_age_ms => Badge {
            level: Level::Stale,
            headline: format!("{} records verified; the last checkpoint is old", f.records),
            detail: format!("Checkpoint at record {size}, signed {}: newer than that is verified but not yet signed.", when(at)),
        },
        Some((size, at, true)) => Badge {
            level: Level::Verified,
            headline: format!("{} records verified", f.records),
            detail: format!(
                "The chain verifies from the first record; checkpoint at record {size}, signed {}; {} record(s) since.",
                when(at),
                f.records.saturating_sub(size)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> String {
        format!("t{ms}")
    }

    #[test]
    fn each_state_has_its_level() {
        let ok = Found { records: 10, broken: None, checkpoint: Some((8, 1_000, true)) };
        assert_eq!(badge(&ok, 2_000, 10_000, at).level, Level::Verified);
        assert!(badge(&ok, 2_000, 10_000, at).detail.contains("2 record(s) since"));
        assert_eq!(badge(&ok, 20_000, 10_000, at).level, Level::Stale);
        let none = Found { checkpoint: None, ..ok.clone() };
        assert_eq!(badge(&none, 0, 1, at).level, Level::Stale);
        let rewritten = Found { checkpoint: Some((8, 1_000, false)), ..ok.clone() };
        assert_eq!(badge(&rewritten, 0, 1, at).level, Level::Broken);
        let broken = Found { broken: Some((4, "hash mismatch".into())), ..ok };
        let b = badge(&broken, 0, 1, at);
        assert_eq!((b.level, b.headline.as_str()), (Level::Broken, "Broken at record 4"));
    }
}
