//! Identifier newtypes: ids are random and pseudonymous; names are checked
//! on construction.
//!
//! Tenant and customer ids are wholly random (UUIDv4): they are the
//! pseudonyms in audit exports and the erasure ledger, and say nothing about
//! when a patient first called. Conversation and session ids, created on
//! every call, are time-ordered (UUIDv7: a millisecond timestamp and 74
//! random bits), so a new row lands at the right edge of its primary-key
//! index instead of on a random page: one dirty page per group commit
//! instead of one per request, and no slowdown as a tenant's file grows.

use std::fmt;

use crate::StoreError as Error;

macro_rules! random_id {
    ($name:ident, $prefix:literal, $uuid:expr) => {
        #[doc = concat!("A random id, `", $prefix, "` followed by 32 hex digits.")]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                $name(format!(concat!($prefix, "{}"), $uuid.simple()))
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

random_id!(TenantId, "ten_", uuid::Uuid::new_v4());
random_id!(CustomerId, "cus_", uuid::Uuid::new_v4());
// Time-ordered to the millisecond, with all 74 other bits random: the
// shared v7 counter of `now_v7` would leave ids of the same millisecond
// differing in 32 random bits next to a known neighbour (L4).
random_id!(ConversationId, "cnv_", uuid::Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext)));
random_id!(SessionId, "ses_", uuid::Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext)));
// A person at the clinic: never reused, so an audit record names one person forever.
random_id!(StaffId, "stf_", uuid::Uuid::new_v4());
// An emergency-access grant.
random_id!(BreakGlassId, "brk_", uuid::Uuid::new_v4());
// A patient's request (access, erasure).
random_id!(RequestId, "req_", uuid::Uuid::new_v4());

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

    /// Sessions and conversations sort by creation (they land at the end of
    /// their index); patients' pseudonyms carry no time (version 4).
    #[test]
    fn session_ids_are_time_ordered_and_customer_ids_are_not() {
        let ids: Vec<SessionId> = (0..1000).map(|_| SessionId::generate()).collect();
        // Ordered to the millisecond (the first 48 bits); within one, the
        // other 74 bits are random, not a counter next to a neighbour (L4).
        let ms = |id: &SessionId| id.as_str()[4..16].to_owned();
        assert!(ids.windows(2).all(|w| ms(&w[0]) <= ms(&w[1])), "session ids out of creation order");
        let same_ms: Vec<_> = ids.windows(2).filter(|w| ms(&w[0]) == ms(&w[1])).collect();
        let ordered = same_ms.iter().filter(|w| w[0] < w[1]).count();
        assert!(same_ms.len() < 50 || ordered < same_ms.len(), "ids within a millisecond follow a counter");
        let version = |id: &str| id.as_bytes()[4 + 12];
        assert_eq!(version(SessionId::generate().as_str()), b'7');
        assert_eq!(version(CustomerId::generate().as_str()), b'4');
        assert_eq!(version(TenantId::generate().as_str()), b'4');
    }

    /// L4: after the 48-bit millisecond, every one of the 74 bits that are
    /// not the version (4 bits) or the variant (2) takes both values across
    /// 2,000 ids: none is a constant, and none a counter's high bits stuck
    /// at zero.
    #[test]
    fn session_ids_carry_74_random_bits() {
        let ids: Vec<u128> =
            (0..2000).map(|_| u128::from_str_radix(&SessionId::generate().as_str()[4..], 16).expect("hex")).collect();
        // Bit i counted from the most significant; 0..48 the time, 48..52 the
        // version, 64..66 the variant.
        let random: Vec<u32> = (48..128).filter(|i| !(48..52).contains(i) && !(64..66).contains(i)).collect();
        assert_eq!(random.len(), 74);
        for i in random {
            let ones = ids.iter().filter(|id| (*id >> (127 - i)) & 1 == 1).count();
            assert!(ones > 0 && ones < ids.len(), "bit {i} never varies");
        }
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
