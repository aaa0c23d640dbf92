//! Identity confirmation: when it is needed, with what, how answers compare,
//! and the lockout after repeated failures.

use std::fmt;
use std::str::FromStr;

use crate::PolicyError;
use crate::identity::{IdentityFacts, Resolution, Strength};

/// When a tenant asks callers to confirm who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmationMode {
    /// Only where the law of the product requires it: a shared (ambiguous)
    /// identifier or a mere claim.
    Never,
    /// Also when the resolving identifier is shared by several patients.
    OnSharedIdentifier,
    /// In every session unless the identifier is proof of possession.
    OnNewSession,
    /// In every session, whatever the identifier.
    Always,
}

impl ConfirmationMode {
    pub const ALL: [ConfirmationMode; 4] = [
        ConfirmationMode::Never,
        ConfirmationMode::OnSharedIdentifier,
        ConfirmationMode::OnNewSession,
        ConfirmationMode::Always,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationMode::Never => "never",
            ConfirmationMode::OnSharedIdentifier => "on_shared_identifier",
            ConfirmationMode::OnNewSession => "on_new_session",
            ConfirmationMode::Always => "always",
        }
    }
}

impl FromStr for ConfirmationMode {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| PolicyError::UnknownMode(s.to_owned()))
    }
}

/// What a caller confirms with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfirmField {
    DateOfBirth,
    Name,
}

impl ConfirmField {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmField::DateOfBirth => "date_of_birth",
            ConfirmField::Name => "name",
        }
    }
}

impl FromStr for ConfirmField {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ConfirmField::DateOfBirth, ConfirmField::Name]
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| PolicyError::UnknownConfirmField(s.to_owned()))
    }
}

/// Whether this session must confirm identity before PHI is released.
pub fn confirmation_required(mode: ConfirmationMode, facts: &IdentityFacts) -> bool {
    if facts.confirmed {
        return false;
    }
    match facts.resolution {
        Resolution::New => false,
        Resolution::Ambiguous => true,
        Resolution::Resolved if facts.strength == Strength::Claim => true,
        Resolution::Resolved => match mode {
            ConfirmationMode::Never => false,
            ConfirmationMode::OnSharedIdentifier => facts.shared_identifier,
            ConfirmationMode::OnNewSession => facts.strength != Strength::Possession,
            ConfirmationMode::Always => true,
        },
    }
}

/// Attempts allowed before confirmation locks, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    pub max_attempts: u32,
    pub window_ms: i64,
}

impl Lockout {
    /// After `failures` failed attempts in the window (counted per patient
    /// and per identifier by the server, whatever the session), when confirmation
    /// unlocks again (`None`: not locked).
    pub fn locked_until(&self, failures: u32, last_failure_ms: i64) -> Option<i64> {
        (failures >= self.max_attempts).then(|| last_failure_ms.saturating_add(self.window_ms))
    }

    pub fn is_locked(locked_until: Option<i64>, now_ms: i64) -> bool {
        locked_until.is_some_and(|until| now_ms < until)
    }
}

/// A confirmation answer, normalised. PHI: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub enum Answer {
    /// (year, month, day), a real calendar date.
    DateOfBirth(u16, u8, u8),
    /// Case-folded, whitespace collapsed.
    Name(String),
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Answer([REDACTED])")
    }
}

impl Answer {
    /// Parses what a caller (or intake) gave for `field`. Errors name the
    /// expected shape, never echo the value.
    pub fn parse(field: ConfirmField, raw: &str) -> Result<Answer, PolicyError> {
        match field {
            ConfirmField::DateOfBirth => parse_date(raw.trim()).ok_or(PolicyError::BadDateOfBirth),
            ConfirmField::Name => {
                let name = raw.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                if name.is_empty() || name.chars().count() > 200 {
                    Err(PolicyError::BadName)
                } else {
                    Ok(Answer::Name(name))
                }
            }
        }
    }

    /// Compares two answers without an early exit on the first differing byte.
    pub fn matches(&self, other: &Answer) -> bool {
        let (a, b) = (self.canonical(), other.canonical());
        a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn canonical(&self) -> String {
        match self {
            Answer::DateOfBirth(y, m, d) => format!("dob:{y:04}-{m:02}-{d:02}"),
            Answer::Name(n) => format!("name:{n}"),
        }
    }
}

/// `YYYY-MM-DD`, a real date between 1900 and 2100.
fn parse_date(s: &str) -> Option<Answer> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u16> {
        s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit())).and_then(|p| p.parse().ok())
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    ((1900..=2100).contains(&y) && (1..=days).contains(&d)).then_some(Answer::DateOfBirth(y, m as u8, d as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_birth() {
        let ok = Answer::parse(ConfirmField::DateOfBirth, " 1985-03-14 ").unwrap();
        assert!(ok.matches(&Answer::parse(ConfirmField::DateOfBirth, "1985-03-14").unwrap()));
        assert!(!ok.matches(&Answer::parse(ConfirmField::DateOfBirth, "1985-03-15").unwrap()));
        assert!(Answer::parse(ConfirmField::DateOfBirth, "2000-02-29").is_ok());
        for bad in ["1985-3-14", "14/03/1985", "1985-02-30", "1900-02-29", "1985-13-01", "1985-00-10", "", "1985-03-1x"]
        {
            assert_eq!(Answer::parse(ConfirmField::DateOfBirth, bad), Err(PolicyError::BadDateOfBirth), "{bad}");
        }
        assert_eq!(format!("{ok:?}"), "Answer([REDACTED])");
    }

    #[test]
    fn names_ignore_case_and_spacing_only() {
        let a = Answer::parse(ConfirmField::Name, "Maria  Lopez").unwrap();
        assert!(a.matches(&Answer::parse(ConfirmField::Name, " maria lopez ").unwrap()));
        assert!(!a.matches(&Answer::parse(ConfirmField::Name, "Maria Lopes").unwrap()));
        assert!(!a.matches(&Answer::parse(ConfirmField::DateOfBirth, "1985-03-14").unwrap()));
        assert_eq!(Answer::parse(ConfirmField::Name, "   "), Err(PolicyError::BadName));
    }

    #[test]
    fn lockout_window() {
        let l = Lockout { max_attempts: 5, window_ms: 900_000 };
        assert_eq!(l.locked_until(4, 1_000), None);
        assert_eq!(l.locked_until(5, 1_000), Some(901_000));
        assert!(Lockout::is_locked(Some(901_000), 900_999));
        assert!(!Lockout::is_locked(Some(901_000), 901_000));
        assert!(!Lockout::is_locked(None, 0));
    }
}
