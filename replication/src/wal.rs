//! SQLite's write-ahead log, read as SQLite reads it
//! (<https://www.sqlite.org/fileformat2.html#walformat>): a 32-byte header
//! (magic, version, page size, checkpoint sequence, two salts, a checksum of
//! the first 24 bytes) and frames of a 24-byte header (page number, the
//! database size in pages for a commit frame, the salts, a cumulative
//! checksum) followed by one page image. A frame counts only if its salts
//! are the header's and its checksum continues the chain; a transaction
//! counts only up to its commit frame. Everything after the first frame
//! that fails is not (yet) part of the log: a torn write, or a transaction
//! still being written.

use std::collections::BTreeMap;

use crate::ReplicationError;

const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;
const MAGIC_LE: u32 = 0x377f_0682;
const MAGIC_BE: u32 = 0x377f_0683;
const VERSION: u32 = 3_007_000;

/// Where reading resumes: just after the last commit frame read, with the
/// checksum chain at that point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalCursor {
    pub offset: usize,
    pub page_size: u32,
    sum: (u32, u32),
    salts: (u32, u32),
    big_endian: bool,
}

/// One committed transaction: the database's size after it, and the last
/// image of each page it wrote, by page number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub db_pages: u32,
    pub pages: Vec<(u32, Vec<u8>)>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// SQLite's WAL checksum over `data` (a multiple of 8 bytes), continuing `s`.
fn checksum(big_endian: bool, mut s: (u32, u32), data: &[u8]) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |i: usize| {
            let w = [pair[i], pair[i + 1], pair[i + 2], pair[i + 3]];
            if big_endian { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) }
        };
        s.0 = s.0.wrapping_add(word(0)).wrapping_add(s.1);
        s.1 = s.1.wrapping_add(word(4)).wrapping_add(s.0);
    }
    s
}

/// The header of `wal`, as a cursor at its first frame.
pub fn read_header(wal: &[u8]) -> Result<WalCursor, ReplicationError> {
    if wal.len() < HEADER {
        return Err(ReplicationError::BadWalHeader("shorter than its 32-byte header"));
    }
    let magic = be32(wal, 0);
    let big_endian = match magic {
        MAGIC_BE => true,
        MAGIC_LE => false,
        _ => return Err(ReplicationError::BadWalHeader("not a write-ahead log (magic)")),
    };
    if be32(wal, 4) != VERSION {
        return Err(ReplicationError::BadWalHeader("unknown format version"));
    }
    let page_size = be32(wal, 8);
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(ReplicationError::PageSize(page_size));
    }
    let sum = checksum(big_endian, (0, 0), &wal[..24]);
    if sum != (be32(wal, 24), be32(wal, 28)) {
        return Err(ReplicationError::BadWalHeader("header checksum"));
    }
    Ok(WalCursor { offset: HEADER, page_size, sum, salts: (be32(wal, 16), be32(wal, 20)), big_endian })
}

/// The transactions committed in `wal` after `cursor`, and the cursor after
/// the last of them. `WalRestarted` when the log now has other salts (or is
/// shorter than the cursor): a checkpoint reset it.
pub fn committed(wal: &[u8], cursor: &WalCursor) -> Result<(Vec<Committed>, WalCursor), ReplicationError> {
    if wal.len() < cursor.offset {
        return Err(ReplicationError::WalRestarted);
    }
    let now = read_header(wal)?;
    if now.salts != cursor.salts || now.page_size != cursor.page_size {
        return Err(ReplicationError::WalRestarted);
    }
    let page = cursor.page_size as usize;
    let mut out = Vec::new();
    let mut done = *cursor;
    let mut at = cursor.offset;
    let mut sum = cursor.sum;
    let mut pending: BTreeMap<u32, &[u8]> = BTreeMap::new();
    while at + FRAME_HEADER + page <= wal.len() {
        let head = &wal[at..at + FRAME_HEADER];
        let body = &wal[at + FRAME_HEADER..at + FRAME_HEADER + page];
        if (be32(head, 8), be32(head, 12)) != cursor.salts {
            break;
        }
        let s = checksum(cursor.big_endian, checksum(cursor.big_endian, sum, &head[..8]), body);
        if s != (be32(head, 16), be32(head, 20)) {
            break;
        }
        sum = s;
        let pgno = be32(head, 0);
        if pgno == 0 {
            break;
        }
        pending.insert(pgno, body);
        at += FRAME_HEADER + page;
        let db_pages = be32(head, 4);
        if db_pages != 0 {
            // Pages past the new end (a shrinking transaction) are not part of the database.
            let pages = std::mem::take(&mut pending)
                .into_iter()
                .filter(|(p, _)| *p <= db_pages)
                .map(|(p, b)| (p, b.to_vec()))
                .collect();
            out.push(Committed { db_pages, pages });
            done = WalCursor { offset: at, sum, ..*cursor };
        }
    }
    Ok((out, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian WAL of `frames` (pgno, db_pages) with 512-byte pages, checksums as SQLite writes them.
    pub(crate) fn wal(frames: &[(u32, u32)], salts: (u32, u32)) -> Vec<u8> {
        let mut w = Vec::new();
        for v in [MAGIC_LE, VERSION, 512, 0, salts.0, salts.1] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        let mut s = checksum(false, (0, 0), &w);
        w.extend_from_slice(&s.0.to_be_bytes());
        w.extend_from_slice(&s.1.to_be_bytes());
        for (i, (pgno, db)) in frames.iter().enumerate() {
            let mut head = Vec::new();
            for v in [*pgno, *db, salts.0, salts.1] {
                head.extend_from_slice(&v.to_be_bytes());
            }
            let body = vec![i as u8 + 1; 512];
            s = checksum(false, checksum(false, s, &head[..8]), &body);
            head.extend_from_slice(&s.0.to_be_bytes());
            head.extend_from_slice(&s.1.to_be_bytes());
            w.extend_from_slice(&head);
            w.extend_from_slice(&body);
        }
        w
    }

    #[test]
    fn commits_are_read_to_their_commit_frame_and_no_further() {
        let w = wal(&[(1, 0), (2, 0), (1, 3), (3, 0)], (7, 9));
        let start = read_header(&w).unwrap();
        let (got, after) = committed(&w, &start).unwrap();
        assert_eq!(got.len(), 1, "the last frame has no commit yet");
        assert_eq!(got[0].db_pages, 3);
        let pages: Vec<(u32, u8)> = got[0].pages.iter().map(|(p, b)| (*p, b[0])).collect();
        assert_eq!(pages, vec![(1, 3), (2, 2)], "the last image of page 1 wins");
        assert_eq!(after.offset, HEADER + 3 * (FRAME_HEADER + 512));
        // Nothing new after the cursor; then the pending frame's commit arrives.
        assert!(committed(&w, &after).unwrap().0.is_empty());
        let w2 = wal(&[(1, 0), (2, 0), (1, 3), (3, 0), (4, 4)], (7, 9));
        let (more, _) = committed(&w2, &after).unwrap();
        assert_eq!(more.iter().map(|c| c.pages.len()).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn torn_frames_other_salts_and_bad_headers_end_the_log() {
        let w = wal(&[(1, 1), (2, 2), (3, 3)], (1, 2));
        let start = read_header(&w).unwrap();
        // A flipped byte in the second frame's page: only the first commit counts.
        let mut flipped = w.clone();
        flipped[HEADER + (FRAME_HEADER + 512) + FRAME_HEADER + 100] ^= 1;
        assert_eq!(committed(&flipped, &start).unwrap().0.len(), 1);
        // Cut mid-frame: the same.
        assert_eq!(committed(&w[..w.len() - 10], &start).unwrap().0.len(), 2);
        // The log reset by a checkpoint: new salts.
        let reset = wal(&[(1, 1)], (5, 6));
        assert!(matches!(committed(&reset, &start), Err(ReplicationError::WalRestarted)));
        assert!(matches!(
            committed(&w[..40], &WalCursor { offset: 9000, ..start }),
            Err(ReplicationError::WalRestarted)
        ));
        let mut bad = w.clone();
        bad[3] ^= 0xff;
        assert!(read_header(&bad).is_err());
        let mut sum = w.clone();
        sum[27] ^= 1;
        assert!(matches!(read_header(&sum), Err(ReplicationError::BadWalHeader("header checksum"))));
        assert!(read_header(&w[..20]).is_err());
    }
}
