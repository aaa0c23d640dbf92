//! The database checksum: the XOR over every page of the first eight bytes
//! of SHA-256(page number, page bytes). Order-free, so replacing one page is
//! `ck ^ h(old) ^ h(new)` and a replica and its owner agree on the checksum
//! of a database they hold byte for byte, without the key. (LiteFS keeps the
//! same kind of rolling checksum with CRC-64; SHA-256 is here already.)

use std::collections::HashMap;

use ring::digest::{Context, SHA256};

/// One page's contribution.
pub fn page_hash(pgno: u32, page: &[u8]) -> u64 {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&pgno.to_be_bytes());
    ctx.update(page);
    let d = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// The checksum of a database image, with each page's hash kept so a
/// change is applied in O(pages changed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    value: u64,
    pages: HashMap<u32, u64>,
}

impl Checksum {
    /// The checksum of `image` (a whole database file) in pages of `page_size`.
    pub fn of_image(image: &[u8], page_size: usize) -> Self {
        let mut ck = Checksum::default();
        for (i, page) in image.chunks(page_size.max(1)).enumerate() {
            ck.set(i as u32 + 1, page);
        }
        ck
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// Pages in the image.
    pub fn pages(&self) -> u32 {
        self.pages.len() as u32
    }

    /// Page `pgno` now holds `page`.
    pub fn set(&mut self, pgno: u32, page: &[u8]) {
        let h = page_hash(pgno, page);
        if let Some(old) = self.pages.insert(pgno, h) {
            self.value ^= old;
        }
        self.value ^= h;
    }

    /// The image is cut to `pages` pages.
    pub fn truncate(&mut self, pages: u32) {
        let gone: Vec<u32> = self.pages.keys().copied().filter(|p| *p > pages).collect();
        for p in gone {
            if let Some(h) = self.pages.remove(&p) {
                self.value ^= h;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_equals_recomputed_and_order_does_not_matter() {
        let image: Vec<u8> = (0..4 * 512).map(|i| (i % 251) as u8).collect();
        let mut ck = Checksum::of_image(&image, 512);
        let mut changed = image.clone();
        changed[512..1024].fill(7);
        ck.set(2, &changed[512..1024]);
        assert_eq!(ck, Checksum::of_image(&changed, 512));
        ck.truncate(3);
        assert_eq!(ck, Checksum::of_image(&changed[..3 * 512], 512));
        assert_ne!(ck.value(), Checksum::of_image(&image[..3 * 512], 512).value());
        // The same page under another number counts differently.
        assert_ne!(page_hash(1, &[0; 16]), page_hash(2, &[0; 16]));
    }
}
