//! A commit record and its encoding:
//!
//! ```text
//! "TLCR\0\0\0\x01"                      magic and version (8 bytes)
//! u16 tenant length, tenant id (UTF-8)
//! u64 epoch, u64 seq, u32 page size, u32 database pages
//! u64 checksum before, u64 checksum after
//! u32 page count, then per page: u32 page number, the page image
//! 32-byte HMAC-SHA256 of everything before, under the tenant's log key
//! ```
//!
//! All integers big-endian. Pages are in increasing page-number order, each
//! within the database's size. The images are SQLCipher ciphertext: the
//! record holds no plaintext and no key; the tag stops a log store (or
//! anyone between) from altering, splicing or forging records.

use ring::hmac;

use crate::ReplicationError;

const MAGIC: &[u8; 8] = b"TLCR\0\0\0\x01";
const TAG: usize = 32;
const MAX_TENANT: usize = 128;

/// The per-tenant key commit records are authenticated with.
pub struct LogKey(hmac::Key);

impl LogKey {
    pub fn new(bytes: &[u8; 32]) -> Self {
        LogKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogKey([REDACTED])")
    }
}

/// One committed transaction of one tenant's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    pub tenant: String,
    /// The owner's fencing epoch when it committed.
    pub epoch: u64,
    /// 1 for the first record after the snapshot the log starts from.
    pub seq: u64,
    pub page_size: u32,
    /// The database's size in pages after this transaction.
    pub db_pages: u32,
    /// The database checksum this record applies to, and the one it yields.
    pub prev_ck: u64,
    pub post_ck: u64,
    pub pages: Vec<(u32, Vec<u8>)>,
}

impl CommitRecord {
    /// Bytes of page images (what the log stores, mostly).
    pub fn page_bytes(&self) -> usize {
        self.pages.iter().map(|(_, p)| p.len()).sum()
    }

    pub fn encode(&self, key: &LogKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.tenant.len() + self.pages.len() * (4 + self.page_size as usize));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.tenant.len() as u16).to_be_bytes());
        out.extend_from_slice(self.tenant.as_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.page_size.to_be_bytes());
        out.extend_from_slice(&self.db_pages.to_be_bytes());
        out.extend_from_slice(&self.prev_ck.to_be_bytes());
        out.extend_from_slice(&self.post_ck.to_be_bytes());
        out.extend_from_slice(&(self.pages.len() as u32).to_be_bytes());
        for (pgno, page) in &self.pages {
            out.extend_from_slice(&pgno.to_be_bytes());
            out.extend_from_slice(page);
        }
        let tag = hmac::sign(&key.0, &out);
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Verifies the tag first, then every field and bound.
    pub fn decode(bytes: &[u8], key: &LogKey) -> Result<Self, ReplicationError> {
        if bytes.len() < MAGIC.len() + TAG {
            return Err(ReplicationError::Malformed("shorter than a record"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG);
        hmac::verify(&key.0, body, tag).map_err(|_| ReplicationError::BadTag)?;
        let mut r = Reader { b: body, at: 0 };
        if r.take(8)? != MAGIC {
            return Err(ReplicationError::Malformed("not a commit record (magic)"));
        }
        let tenant_len = usize::from(r.u16()?);
        if tenant_len == 0 || tenant_len > MAX_TENANT {
            return Err(ReplicationError::Malformed("tenant id length"));
        }
        let tenant = std::str::from_utf8(r.take(tenant_len)?)
            .map_err(|_| ReplicationError::Malformed("tenant id is not UTF-8"))?
            .to_owned();
        let (epoch, seq, page_size, db_pages) = (r.u64()?, r.u64()?, r.u32()?, r.u32()?);
        if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
            return Err(ReplicationError::PageSize(page_size));
        }
        if seq == 0 || db_pages == 0 {
            return Err(ReplicationError::Malformed("sequence and database size start at 1"));
        }
        let (prev_ck, post_ck) = (r.u64()?, r.u64()?);
        let n = r.u32()? as usize;
        if n > db_pages as usize || n.saturating_mul(4 + page_size as usize) != r.left() {
            return Err(ReplicationError::Malformed("page count does not match the record's length"));
        }
        let mut pages = Vec::with_capacity(n);
        let mut last = 0u32;
        for _ in 0..n {
            let pgno = r.u32()?;
            if pgno <= last || pgno > db_pages {
                return Err(ReplicationError::Malformed("page numbers out of order or past the database's end"));
            }
            last = pgno;
            pages.push((pgno, r.take(page_size as usize)?.to_vec()));
        }
        Ok(CommitRecord { tenant, epoch, seq, page_size, db_pages, prev_ck, post_ck, pages })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReplicationError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or(ReplicationError::Malformed("truncated"))?;
        let out = &self.b[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn left(&self) -> usize {
        self.b.len() - self.at
    }
    fn u16(&mut self) -> Result<u16, ReplicationError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ReplicationError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ReplicationError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CommitRecord {
        CommitRecord {
            tenant: "ten_a".into(),
            epoch: 3,
            seq: 9,
            page_size: 512,
            db_pages: 4,
            prev_ck: 11,
            post_ck: 12,
            pages: vec![(1, vec![1; 512]), (4, vec![4; 512])],
        }
    }

    #[test]
    fn round_trip_and_every_alteration_is_refused() {
        let key = LogKey::new(&[7; 32]);
        let bytes = record().encode(&key);
        assert_eq!(CommitRecord::decode(&bytes, &key).unwrap(), record());
        for i in [0, 9, 20, 40, 60, 100, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(matches!(CommitRecord::decode(&b, &key), Err(ReplicationError::BadTag)), "byte {i}");
        }
        assert!(matches!(CommitRecord::decode(&bytes, &LogKey::new(&[8; 32])), Err(ReplicationError::BadTag)));
        assert!(CommitRecord::decode(&bytes[..bytes.len() - 1], &key).is_err());
        assert!(CommitRecord::decode(&[], &key).is_err());
        // Well-tagged but wrong inside: the bounds still hold.
        for bad in [
            CommitRecord { pages: vec![(4, vec![4; 512]), (1, vec![1; 512])], ..record() },
            CommitRecord { pages: vec![(5, vec![5; 512])], ..record() },
            CommitRecord { pages: vec![(1, vec![1; 100])], ..record() },
            CommitRecord { seq: 0, ..record() },
            CommitRecord { page_size: 1000, pages: vec![], ..record() },
            CommitRecord { tenant: String::new(), ..record() },
        ] {
            assert!(CommitRecord::decode(&bad.encode(&key), &key).is_err(), "{bad:?}");
        }
    }
}
