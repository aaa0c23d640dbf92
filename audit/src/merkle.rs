//! RFC 6962 Merkle tree over record hashes: tree heads, inclusion proofs and
//! consistency proofs (construction per RFC 6962 §2.1, verification per
//! RFC 9162 §2.1.3.2 and §2.1.4.2). Leaves are `SHA-256(0x00 || data)`,
//! interior nodes `SHA-256(0x01 || left || right)`, and a tree of `n` leaves
//! splits at the largest power of two smaller than `n`.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Why a proof does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("index {index} is outside a tree of {size} leaves")]
    OutOfRange { index: u64, size: u64 },
    #[error("proof has the wrong number of hashes")]
    WrongLength,
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    #[error("the second tree is smaller than the first")]
    Shrunk,
}

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Largest power of two strictly smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The tree head over leaf hashes (SHA-256 of nothing for an empty tree).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Audit path of leaf `index` (RFC 6962 PATH).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n);
    let mut path = if index < k {
        let mut p = inclusion_proof(&leaves[..k], index);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = inclusion_proof(&leaves[k..], index - k);
        p.push(root(&leaves[..k]));
        p
    };
    path.shrink_to_fit();
    path
}

/// Consistency proof from the first `m` leaves to all of them (RFC 6962 PROOF).
pub fn consistency_proof(leaves: &[Hash], m: usize) -> Vec<Hash> {
    if m == 0 || m > leaves.len() {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { Vec::new() } else { vec![root(leaves)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], complete);
        p.push(root(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(root(&leaves[..k]));
        p
    }
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r == *root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// Verifies that the tree of `size1` leaves with `root1` is a prefix of the
/// tree of `size2` leaves with `root2`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::Shrunk);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if size1 == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr == *root1 && sr == *root2 { Ok(()) } else { Err(ProofError::RootMismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 reference leaves and tree heads (as published with the
    /// Certificate Transparency and transparency-dev test suites).
    const LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        out.copy_from_slice(&hex::decode(s).unwrap());
        out
    }

    fn leaves() -> Vec<Hash> {
        LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())).collect()
    }

    #[test]
    fn tree_heads_match_rfc6962_vectors() {
        let l = leaves();
        for n in 0..=8 {
            assert_eq!(hex::encode(root(&l[..n])), ROOTS[n], "size {n}");
        }
    }

    #[test]
    fn proofs_match_published_vectors() {
        let l = leaves();
        let incl0 = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(inclusion_proof(&l, 0), incl0.map(h));
        let incl5 = [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ];
        assert_eq!(inclusion_proof(&l, 5), incl5.map(h));
        let cons_2_5 = [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ];
        assert_eq!(consistency_proof(&l[..5], 2), cons_2_5.map(h));
    }

    fn many(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("record-{i}").as_bytes())).collect()
    }

    /// Every valid proof verifies, and every corruption of it fails
    /// (transparency-dev's proof tests are the model).
    #[test]
    fn inclusion_round_trip_and_every_corruption_fails() {
        let l = many(33);
        for n in 1..=l.len() {
            let r = root(&l[..n]);
            for i in 0..n {
                let p = inclusion_proof(&l[..n], i);
                let (i64_, n64) = (i as u64, n as u64);
                assert_eq!(verify_inclusion(&l[i], i64_, n64, &p, &r), Ok(()), "n={n} i={i}");
                assert!(verify_inclusion(&l[i], i64_ + 1, n64, &p, &r).is_err());
                assert!(i == 0 || verify_inclusion(&l[i], i64_ - 1, n64, &p, &r).is_err());
                // (A size change alone is not a corruption this check can see: the
                // size is bound to the root by the signed checkpoint.)
                assert!(verify_inclusion(&leaf_hash(b"other"), i64_, n64, &p, &r).is_err());
                for j in 0..p.len() {
                    let mut bad = p.clone();
                    bad[j][0] ^= 1;
                    assert!(verify_inclusion(&l[i], i64_, n64, &bad, &r).is_err());
                    let mut dropped = p.clone();
                    dropped.remove(j);
                    assert!(verify_inclusion(&l[i], i64_, n64, &dropped, &r).is_err());
                }
                let mut extra = p.clone();
                extra.push(r);
                assert!(verify_inclusion(&l[i], i64_, n64, &extra, &r).is_err());
                let mut swapped_root = r;
                swapped_root[31] ^= 1;
                assert!(verify_inclusion(&l[i], i64_, n64, &p, &swapped_root).is_err());
            }
        }
    }

    #[test]
    fn consistency_round_trip_and_every_corruption_fails() {
        let l = many(33);
        for n in 1..=l.len() {
            let r2 = root(&l[..n]);
            for m in 1..=n {
                let r1 = root(&l[..m]);
                let p = consistency_proof(&l[..n], m);
                let (m64, n64) = (m as u64, n as u64);
                assert_eq!(verify_consistency(m64, n64, &r1, &r2, &p), Ok(()), "m={m} n={n}");
                if m == n {
                    continue;
                }
                assert!(verify_consistency(m64, n64, &r2, &r2, &p).is_err(), "wrong old root m={m} n={n}");
                assert!(verify_consistency(m64, n64, &r1, &r1, &p).is_err());
                assert!(verify_consistency(n64, m64, &r2, &r1, &p).is_err());
                for j in 0..p.len() {
                    let mut bad = p.clone();
                    bad[j][0] ^= 1;
                    assert!(verify_consistency(m64, n64, &r1, &r2, &bad).is_err(), "flip m={m} n={n} j={j}");
                    let mut dropped = p.clone();
                    dropped.remove(j);
                    assert!(verify_consistency(m64, n64, &r1, &r2, &dropped).is_err());
                }
                let mut extra = p.clone();
                extra.push(r2);
                assert!(verify_consistency(m64, n64, &r1, &r2, &extra).is_err());
            }
        }
        assert_eq!(verify_consistency(0, 5, &root(&[]), &root(&l[..5]), &[]), Ok(()));
    }

    /// A history rewritten after a checkpoint fails against that checkpoint,
    /// whatever proof the rewriter offers.
    #[test]
    fn a_rewritten_prefix_is_inconsistent() {
        let honest = many(10);
        let mut rewritten = honest.clone();
        rewritten[3] = leaf_hash(b"forged");
        let old_root = root(&honest[..6]);
        let p = consistency_proof(&rewritten, 6);
        assert!(verify_consistency(6, 10, &old_root, &root(&rewritten), &p).is_err());
    }
}
