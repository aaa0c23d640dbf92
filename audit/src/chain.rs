//! The hash chain over records and its verification.

use crate::Record;

/// `prev_hash` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where and why a chain fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("record {seq}: expected sequence number {expected} (a record was dropped, duplicated or reordered)")]
    Sequence { seq: u64, expected: u64 },
    #[error("record {seq}: previous-hash link broken (this record or the one before it was altered)")]
    Link { seq: u64 },
    #[error("record {seq}: stored hash does not match its content (the record was altered)")]
    Hash { seq: u64 },
}

/// Verifies records in order, starting at sequence `first_seq` after a record
/// whose hash is `prev` (`GENESIS` and 1 for a whole chain). Each item is a
/// record and the hash stored with it. Returns the hash of the last record.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = (&'a Record, &'a str)>,
    first_seq: u64,
    prev: &str,
) -> Result<String, ChainError> {
    let mut prev = prev.to_owned();
    for (expected, (record, stored_hash)) in (first_seq..).zip(records) {
        if record.seq != expected {
            return Err(ChainError::Sequence { seq: record.seq, expected });
        }
        if record.prev_hash != prev {
            return Err(ChainError::Link { seq: record.seq });
        }
        let hash = record.hash_hex();
        if hash != stored_hash {
            return Err(ChainError::Hash { seq: record.seq });
        }
        prev = hash;
    }
    Ok(prev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorKind, Outcome};

    fn chain(n: u64) -> Vec<(Record, String)> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let r = Record {
                    seq,
                    at: 1_700_000_000_000 + seq as i64,
                    actor_kind: ActorKind::Channel,
                    actor: "serial-1".into(),
                    channel: Some("voice".into()),
                    action: "session.open".into(),
                    tenant_id: Some("t1".into()),
                    customer_id: Some(format!("cus_{seq}")),
                    session_id: None,
                    peer: Some("127.0.0.1".into()),
                    outcome: Outcome::Ok,
                    reason: None,
                    prev_hash: prev.clone(),
                    role: None,
                    purpose: None,
                    break_glass: None,
                    subjects: Vec::new(),
                    query_hmac: None,
                };
                prev = r.hash_hex();
                (r, prev.clone())
            })
            .collect()
    }

    fn verify(c: &[(Record, String)]) -> Result<String, ChainError> {
        verify_chain(c.iter().map(|(r, h)| (r, h.as_str())), 1, GENESIS)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify(&c), Ok(c[4].1.clone()));
        assert_eq!(verify(&[]), Ok(GENESIS.to_owned()));
    }

    #[test]
    fn each_corruption_names_the_first_bad_record() {
        let c = chain(5);

        let mut altered = c.clone();
        altered[2].0.customer_id = Some("cus_other".into());
        assert_eq!(verify(&altered), Err(ChainError::Hash { seq: 3 }));

        let mut dropped = c.clone();
        dropped.remove(1);
        assert_eq!(verify(&dropped), Err(ChainError::Sequence { seq: 3, expected: 2 }));

        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped), Err(ChainError::Sequence { seq: 3, expected: 2 }));

        let mut duplicated = c.clone();
        duplicated.insert(2, c[1].clone());
        assert_eq!(verify(&duplicated), Err(ChainError::Sequence { seq: 2, expected: 3 }));

        // Rewritten content with a recomputed hash still breaks the next link.
        let mut rehashed = c.clone();
        rehashed[1].0.outcome = Outcome::Refused;
        rehashed[1].1 = rehashed[1].0.hash_hex();
        assert_eq!(verify(&rehashed), Err(ChainError::Link { seq: 3 }));
    }

    #[test]
    fn optional_fields_cannot_be_shifted() {
        let c = chain(1);
        let mut a = c[0].0.clone();
        a.channel = None;
        a.session_id = Some("voice".into());
        assert_ne!(a.hash(), c[0].0.hash());
    }
}
