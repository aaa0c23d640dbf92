//! Identifier newtypes: ids are random and pseudonymous; names are checked
//! on construction.

use std::fmt;

use crate::Error;

macro_rules! random_id {
    ($name:ident, $prefix:literal) => {
        #[doc = concat!("A random id, `", $prefix, "` followed by 32 hex digits.")]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                $name(format!(concat!($prefix, "{}"), uuid::Uuid::new_v4().simple()))
            }

            /// An id read back from a store or a request; shape-checked.
            pub fn parse(s: &str) -> Option<Self> {
                let hex = s.strip_prefix($prefix)?;
                (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
                    .then(|| $name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(TenantId, "ten_");
random_id!(CustomerId, "cus_");
random_id!(ConversationId, "cnv_");
random_id!(SessionId, "ses_");

/// A tenant's operator-facing name: 1 to 63 lowercase letters, digits and
/// inner hyphens (it appears in certificates and file listings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = (1..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(TenantName(s.to_owned()))
        } else {
            Err(Error::InvalidTenantName { name: s.escape_debug().to_string() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_shapes() {
        let id = CustomerId::generate();
        assert_eq!(CustomerId::parse(id.as_str()), Some(id.clone()));
        assert!(TenantId::parse(id.as_str()).is_none());
        assert!(CustomerId::parse("cus_").is_none());
        assert!(CustomerId::parse(&id.as_str().to_uppercase()).is_none());
        assert_ne!(CustomerId::generate(), CustomerId::generate());
    }

    #[test]
    fn tenant_names() {
        for ok in ["sunrise", "clinic-42", "a"] {
            assert!(TenantName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Sunrise", "a b", "a/b", "é", &"x".repeat(64)] {
            assert!(TenantName::parse(bad).is_err(), "{bad}");
        }
    }
}
