//! Classes of PHI a response may carry. Every PHI field the server returns
//! belongs to exactly one class, and the policy decides per channel and
//! identity state which classes a response may include.

use std::fmt;
use std::str::FromStr;

use crate::PolicyError;

/// A class of protected health information.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhiClass {
    /// The patient's first name, for a greeting ("Hi Maria").
    Greeting,
    /// Full name and date of birth.
    Identity,
    /// Phone numbers, email addresses.
    Contact,
    /// Appointment times, callback windows.
    Scheduling,
    /// What was said: turn text, session state values.
    Conversation,
    /// Clinical notes, reasons for visit.
    Clinical,
    /// Email attachments (insurance cards, documents).
    Attachments,
}

impl PhiClass {
    pub const ALL: [PhiClass; 7] = [
        PhiClass::Greeting,
        PhiClass::Identity,
        PhiClass::Contact,
        PhiClass::Scheduling,
        PhiClass::Conversation,
        PhiClass::Clinical,
        PhiClass::Attachments,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhiClass::Greeting => "greeting",
            PhiClass::Identity => "identity",
            PhiClass::Contact => "contact",
            PhiClass::Scheduling => "scheduling",
            PhiClass::Conversation => "conversation",
            PhiClass::Clinical => "clinical",
            PhiClass::Attachments => "attachments",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for PhiClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhiClass {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhiClass::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| PolicyError::UnknownClass(s.to_owned()))
    }
}

/// A set of PHI classes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PhiClasses(u8);

impl PhiClasses {
    pub const NONE: PhiClasses = PhiClasses(0);

    pub fn all() -> Self {
        PhiClass::ALL.into_iter().collect()
    }

    pub fn contains(self, class: PhiClass) -> bool {
        self.0 & class.bit() != 0
    }

    pub fn with(self, class: PhiClass) -> Self {
        PhiClasses(self.0 | class.bit())
    }

    pub fn is_subset_of(self, other: PhiClasses) -> bool {
        self.0 & !other.0 == 0
    }

    /// Classes in `self` and not in `other`.
    pub fn minus(self, other: PhiClasses) -> Self {
        PhiClasses(self.0 & !other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = PhiClass> {
        PhiClass::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl FromIterator<PhiClass> for PhiClasses {
    fn from_iter<I: IntoIterator<Item = PhiClass>>(iter: I) -> Self {
        iter.into_iter().fold(PhiClasses::NONE, PhiClasses::with)
    }
}

impl fmt::Debug for PhiClasses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(PhiClass::as_str)).finish()
    }
}

impl fmt::Display for PhiClasses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(PhiClass::as_str).collect();
        if names.is_empty() { f.write_str("-") } else { f.write_str(&names.join(",")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let a: PhiClasses = [PhiClass::Greeting, PhiClass::Scheduling].into_iter().collect();
        assert!(a.contains(PhiClass::Scheduling) && !a.contains(PhiClass::Clinical));
        assert!(a.is_subset_of(PhiClasses::all()));
        assert!(!PhiClasses::all().is_subset_of(a));
        assert_eq!(PhiClasses::all().minus(a).iter().count(), 5);
        assert_eq!(a.to_string(), "greeting,scheduling");
        assert_eq!(PhiClasses::NONE.to_string(), "-");
        for c in PhiClass::ALL {
            assert_eq!(c.as_str().parse::<PhiClass>(), Ok(c));
        }
        assert!("notes".parse::<PhiClass>().is_err());
    }
}
