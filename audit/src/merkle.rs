//! The Merkle tree of RFC 6962 section 2.1 (RFC 9162 section 2.1.1): SHA-256,
//! leaves hashed with a 0x00 prefix and interior nodes with 0x01, the left
//! subtree of n leaves holding the largest power of two below n.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the tree over `leaves` (leaf hashes), by the recursive
/// definition; the empty tree's root is `SHA-256("")`.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// An append-only tree that keeps only the roots of its perfect subtrees
/// (one per set bit of the size), so appending and taking the root cost
/// O(log n) hashes and memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    peaks: Vec<Hash>,
}

impl MerkleTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut size = self.size;
        // Merge equal-sized subtrees, as binary addition carries.
        while size & 1 == 1 {
            let left = self.peaks.pop().expect("a peak per set bit");
            carry = node_hash(&left, &carry);
            size >>= 1;
        }
        self.peaks.push(carry);
        self.size += 1;
    }

    /// The root over all leaves so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&last) = peaks.next() else { return Sha256::digest([]).into() };
        peaks.fold(last, |acc, left| node_hash(left, &acc))
    }
}

/// Every node of the perfect subtrees over the leaves, level by level:
/// `levels[h][i]` is the root of the 2^h leaves starting at `i << h`. What
/// a log keeps to answer inclusion and consistency proofs in O(log n)
/// hashes (2n hashes of memory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleStore {
    levels: Vec<Vec<Hash>>,
}

impl MerkleStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one leaf hash: amortised O(1) hashes.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node_hash(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels.first().and_then(|l| l.get(usize::try_from(index).ok()?)).copied()
    }

    /// The root of the tree over the first `size` leaves (`size` at most
    /// [`size`](Self::size)).
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(Sha256::digest([]).into()),
            n if n <= self.size() => Some(self.subtree(0, n)),
            _ => None,
        }
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size()).expect("the whole tree")
    }

    /// Root of the leaves `[start, end)`, a subtree as RFC 6962 cuts them:
    /// `start` is a multiple of the largest power of two below `end - start`
    /// (or of `end - start` itself when that is a power of two).
    fn subtree(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        debug_assert!(n >= 1 && end <= self.size());
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            return self.levels[h][(start >> h) as usize];
        }
        let k = largest_power_of_two_below(n as usize) as u64;
        node_hash(&self.subtree(start, start + k), &self.subtree(start + k, end))
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves
    /// (RFC 9162 section 2.1.3.1), leaf side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        let mut path = Vec::new();
        self.path(index, 0, size, &mut path);
        Some(path)
    }

    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = largest_power_of_two_below(n as usize) as u64;
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.subtree(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.subtree(start, start + k));
        }
    }

    /// The consistency proof between the trees of `old` and `new` leaves
    /// (RFC 9162 section 2.1.4.1); empty when `old` is 0 or equals `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        if old > new || new > self.size() {
            return None;
        }
        let mut proof = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.subtree(start, end));
            }
            return;
        }
        let k = largest_power_of_two_below(n as usize) as u64;
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.subtree(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.subtree(start, start + k));
        }
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root`, by RFC 9162 section 2.1.3.2.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            climb_right_edge(&mut fnode, &mut snode);
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162's "right-shift fn and sn equally until either LSB(fn) is set
/// or fn is 0": up the right edge of a subtree, where no sibling is hashed.
fn climb_right_edge(fnode: &mut u64, snode: &mut u64) {
    while *fnode & 1 == 0 && *fnode != 0 {
        *fnode >>= 1;
        *snode >>= 1;
    }
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends
/// the tree of `old_size` leaves with root `old_root` (the log was only
/// appended to), by RFC 9162 section 2.1.4.2.
pub fn verify_consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Every tree extends the empty one.
        return proof.is_empty() && *old_root == <[u8; 32]>::from(Sha256::digest([]));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            climb_right_edge(&mut fnode, &mut snode);
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

/// The RFC's recursive definitions over a slice of leaves, kept as the
/// reference the O(log n) store is tested against.
#[cfg(test)]
mod reference {
    use super::*;

    pub fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = largest_power_of_two_below(n);
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(root_of(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(root_of(&leaves[..k]));
            p
        }
    }

    pub fn proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        if m == 0 || m == leaves.len() { Vec::new() } else { subproof(m, leaves, true) }
    }

    fn subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if whole { Vec::new() } else { vec![root_of(leaves)] };
        }
        let k = largest_power_of_two_below(n);
        if m <= k {
            let mut p = subproof(m, &leaves[..k], whole);
            p.push(root_of(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(root_of(&leaves[..k]));
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The leaves of the RFC 6962 reference implementation's tests.
    fn reference_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    /// Roots of the first 1..=8 reference leaves.
    const REFERENCE_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn matches_the_rfc6962_reference_roots() {
        let leaves: Vec<Hash> = reference_leaves().iter().map(|d| leaf_hash(d)).collect();
        let mut tree = MerkleTree::new();
        for (n, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            assert_eq!(hex::encode(root_of(&leaves[..=n])), REFERENCE_ROOTS[n], "recursive root of {} leaves", n + 1);
            assert_eq!(hex::encode(tree.root()), REFERENCE_ROOTS[n], "incremental root of {} leaves", n + 1);
        }
    }

    #[test]
    fn the_empty_tree_hashes_the_empty_string() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hex::encode(root_of(&[])), empty);
        assert_eq!(hex::encode(MerkleTree::new().root()), empty);
    }

    #[test]
    fn incremental_root_equals_the_recursive_definition_up_to_300_leaves() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tree = MerkleTree::new();
        for n in 0..leaves.len() {
            tree.push(leaves[n]);
            assert_eq!(tree.size(), n as u64 + 1);
            assert_eq!(tree.root(), root_of(&leaves[..=n]), "size {}", n + 1);
            assert!(tree.peaks.len() <= 9, "one peak per set bit");
        }
    }

    fn hexes(hashes: &[Hash]) -> Vec<String> {
        hashes.iter().map(hex::encode).collect()
    }

    fn store_of(leaves: &[Hash]) -> MerkleStore {
        let mut store = MerkleStore::new();
        for l in leaves {
            store.push(*l);
        }
        store
    }

    #[test]
    fn proofs_match_the_rfc6962_reference_vectors() {
        let leaves: Vec<Hash> = reference_leaves().iter().map(|d| leaf_hash(d)).collect();
        let store = store_of(&leaves);
        // From the RFC 6962 reference implementation's tests: leaf 0 of 8.
        assert_eq!(
            hexes(&store.inclusion_proof(0, 8).expect("in range")),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        // Consistency of the first leaf with all eight: the same three hashes.
        assert_eq!(hexes(&store.consistency_proof(1, 8).expect("in range")), hexes(&store.inclusion_proof(0, 8).expect("in range")));
        for n in 1..=8u64 {
            assert_eq!(hex::encode(store.root_at(n).expect("in range")), REFERENCE_ROOTS[n as usize - 1]);
        }
    }

    #[test]
    fn store_proofs_equal_the_recursive_definitions_and_verify() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let store = store_of(&leaves);
        for n in 1..=leaves.len() {
            let root = root_of(&leaves[..n]);
            assert_eq!(store.root_at(n as u64), Some(root));
            for m in 0..n {
                let proof = store.inclusion_proof(m as u64, n as u64).expect("in range");
                assert_eq!(proof, reference::path(m, &leaves[..n]), "inclusion {m} of {n}");
                assert!(verify_inclusion(&leaves[m], m as u64, n as u64, &proof, &root), "inclusion {m} of {n}");
                // Another leaf, or the sibling's index, fails. (Another size
                // can pass with the same root: sizes are bound to roots by
                // the signed checkpoint, not by the proof.)
                assert!(!verify_inclusion(&leaves[(m + 1) % n], m as u64, n as u64, &proof, &root) || n == 1);
                assert!(!verify_inclusion(&leaves[m], (m ^ 1) as u64, n as u64, &proof, &root));
            }
            for m in 0..=n {
                let old_root = root_of(&leaves[..m]);
                let proof = store.consistency_proof(m as u64, n as u64).expect("in range");
                assert_eq!(proof, reference::proof(m, &leaves[..n]), "consistency {m} to {n}");
                assert!(verify_consistency(m as u64, n as u64, &old_root, &root, &proof), "consistency {m} to {n}");
                if m > 0 && m < n {
                    // A rewritten first tree is caught, and so is a proof of the wrong size.
                    let forged = leaf_hash(b"forged");
                    assert!(!verify_consistency(m as u64, n as u64, &forged, &root, &proof));
                    assert!(!verify_consistency(m as u64 + 1, n as u64, &old_root, &root, &proof) || m + 1 == n);
                }
            }
        }
    }

    #[test]
    fn every_changed_byte_of_a_proof_fails_it() {
        let leaves: Vec<Hash> = (0u32..37).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let store = store_of(&leaves);
        let root = store.root();
        let proof = store.inclusion_proof(21, 37).expect("in range");
        let old_root = store.root_at(13).expect("in range");
        let consistency = store.consistency_proof(13, 37).expect("in range");
        for i in 0..proof.len() * 32 {
            let mut bad = proof.clone();
            bad[i / 32][i % 32] ^= 1 << (i % 8);
            assert!(!verify_inclusion(&leaves[21], 21, 37, &bad, &root), "inclusion byte {i}");
        }
        for i in 0..consistency.len() * 32 {
            let mut bad = consistency.clone();
            bad[i / 32][i % 32] ^= 1 << (i % 8);
            assert!(!verify_consistency(13, 37, &old_root, &root, &bad), "consistency byte {i}");
        }
        // A truncated or padded proof fails too.
        assert!(!verify_inclusion(&leaves[21], 21, 37, &proof[..proof.len() - 1], &root));
        let mut padded = proof.clone();
        padded.push(root);
        assert!(!verify_inclusion(&leaves[21], 21, 37, &padded, &root));
        assert!(!verify_consistency(13, 37, &old_root, &root, &consistency[1..]));
    }

    #[test]
    fn proofs_are_logarithmic_and_out_of_range_requests_are_refused() {
        let leaves: Vec<Hash> = (0u32..1000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let store = store_of(&leaves);
        assert_eq!(store.root(), root_of(&leaves));
        for (m, n) in [(0, 1000), (999, 1000), (511, 512), (500, 777)] {
            assert!(store.inclusion_proof(m, n).expect("in range").len() <= 10);
        }
        assert!(store.consistency_proof(300, 1000).expect("in range").len() <= 2 * 10);
        assert_eq!(store.inclusion_proof(1000, 1000), None);
        assert_eq!(store.inclusion_proof(0, 1001), None);
        assert_eq!(store.consistency_proof(5, 4), None);
        assert_eq!(store.root_at(1001), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Beyond the exhaustive small trees above: proofs from trees of
        /// random sizes equal the recursive definitions and verify, and the
        /// incremental roots agree.
        #[test]
        fn proofs_of_random_sized_trees_verify(
            leaf_count in 1usize..3000,
            salt in any::<u64>(),
            picks in any::<(usize, usize, usize)>(),
        ) {
            let leaves: Vec<Hash> =
                (0..leaf_count as u64).map(|i| leaf_hash(&[salt.to_be_bytes(), i.to_be_bytes()].concat())).collect();
            let store = store_of(&leaves);
            let mut tree = MerkleTree::new();
            leaves.iter().for_each(|l| tree.push(*l));
            prop_assert_eq!(store.root(), tree.root());
            prop_assert_eq!(store.root(), root_of(&leaves));

            let size = 1 + picks.0 % leaf_count;
            let index = picks.1 % size;
            let old = picks.2 % (size + 1);
            let root = store.root_at(size as u64).expect("in range");
            let proof = store.inclusion_proof(index as u64, size as u64).expect("in range");
            prop_assert_eq!(&proof, &reference::path(index, &leaves[..size]));
            prop_assert!(verify_inclusion(&leaves[index], index as u64, size as u64, &proof, &root));
            let old_root = store.root_at(old as u64).expect("in range");
            let consistency = store.consistency_proof(old as u64, size as u64).expect("in range");
            prop_assert_eq!(&consistency, &reference::proof(old, &leaves[..size]));
            prop_assert!(verify_consistency(old as u64, size as u64, &old_root, &root, &consistency));
        }
    }
}
