//! Checking a log against the checkpoints anchored on-chain.
//!
//! The chain is read through [`AnchorSource`], so the alloy reader of the
//! `AuditRegistry` contract (in `ballast-chain`) plugs in; an in-memory
//! map holds what the CLI read from the registry, and serves tests. Every anchored (size, root) must be
//! the root of the log's first `size` records: a log rewritten and
//! re-chained by someone holding it but not the chain fails here, and so
//! does a log cut shorter than an anchored size.

use std::collections::BTreeMap;

use crate::{
    error::{Error, Result},
    merkle::{Hash, MerkleStore},
};

/// Where anchored checkpoints are read from.
pub trait AnchorSource {
    /// Every anchored checkpoint, (tree size, root), by size.
    fn anchors(&self) -> Result<Vec<(u64, Hash)>>;
}

/// Anchors held in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryAnchors(pub BTreeMap<u64, Hash>);

impl AnchorSource for MemoryAnchors {
    fn anchors(&self) -> Result<Vec<(u64, Hash)>> {
        Ok(self.0.iter().map(|(s, r)| (*s, *r)).collect())
    }
}

/// What [`check_anchors`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorReport {
    /// Anchors checked (all of them, when the check passes).
    pub checked: usize,
    /// The largest anchored size, if any: records from there on are not yet anchored.
    pub latest: Option<u64>,
}

/// Checks every anchor of `source` against the log's Merkle tree: the first
/// failure (by size) is returned.
pub fn check_anchors(tree: &MerkleStore, source: &dyn AnchorSource) -> Result<AnchorReport> {
    let anchors = source.anchors()?;
    for (size, root) in &anchors {
        let found = tree.size().min(*size);
        let actual = tree.root_at(found).expect("a size within the tree");
        check_root(tree.size(), actual, *size, root)?;
    }
    Ok(AnchorReport { checked: anchors.len(), latest: anchors.iter().map(|(s, _)| *s).max() })
}

/// The one rule every checkpoint check applies: a log of `log_size`
/// records whose first `size` (or all, if fewer) have the root `actual`
/// matches the checkpoint (`size`, `root`) only if it holds at least `size`
/// records and the roots are equal.
pub(crate) fn check_root(log_size: u64, actual: Hash, size: u64, root: &Hash) -> Result<()> {
    if log_size < size {
        return Err(Error::Truncated { expected: size, found: log_size });
    }
    if actual != *root {
        return Err(Error::RootMismatch { size, expected: *root, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn tree(n: u32, salt: &[u8]) -> MerkleStore {
        let mut t = MerkleStore::new();
        for i in 0..n {
            t.push(leaf_hash(&[salt, &i.to_be_bytes()].concat()));
        }
        t
    }

    #[test]
    fn anchors_of_the_log_pass_and_a_rewrite_or_a_cut_fails() {
        let log = tree(100, b"a");
        let anchors = MemoryAnchors([10, 64, 99].iter().map(|s| (*s, log.root_at(*s).unwrap())).collect());
        assert_eq!(check_anchors(&log, &anchors).unwrap(), AnchorReport { checked: 3, latest: Some(99) });

        // Same length, different records from 50 on: the anchor at 64 catches it.
        let mut rewritten = MerkleStore::new();
        for i in 0..100u32 {
            rewritten.push(leaf_hash(&[if i < 50 { &b"a"[..] } else { b"b" }, &i.to_be_bytes()].concat()));
        }
        assert!(matches!(check_anchors(&rewritten, &anchors), Err(Error::RootMismatch { size: 64, .. })));

        // Cut below an anchored size.
        assert!(matches!(check_anchors(&tree(80, b"a"), &anchors), Err(Error::Truncated { expected: 99, found: 80 })));
        assert_eq!(check_anchors(&log, &MemoryAnchors::default()).unwrap(), AnchorReport { checked: 0, latest: None });
    }
}
