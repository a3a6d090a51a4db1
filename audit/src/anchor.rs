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

/// The checkpoints a log records of itself: its `checkpoint_anchored`
/// records, which name what the agent put on-chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedCheckpoints {
    /// (size, root) of each, by size.
    pub anchors: MemoryAnchors,
    /// The signed notes, checked, by size, with the time of their record
    /// (at which their key was valid).
    pub notes: BTreeMap<u64, (String, crate::Timestamp)>,
}

/// Reads the `checkpoint_anchored` records of a verified log's `records`.
/// Each must cover only records before it; its signed note, when it has
/// one, must be signed under its origin by a key of `keyring` valid at the
/// record's time, and name the record's size and root. Give the result's
/// `anchors` to [`check_anchors`] to check them against the log's tree:
/// without a chain to ask, this is what shows that the log still holds
/// what the agent anchored (a rewrite that re-signed every record would
/// also need the key, and could not change the chain).
pub fn recorded_checkpoints(records: &[crate::Record], keyring: &crate::KeyRing) -> Result<RecordedCheckpoints> {
    use crate::{body::CheckpointAnchored, checkpoint, record::Kind};
    let mut found = RecordedCheckpoints::default();
    for r in records.iter().filter(|r| r.kind == Kind::CheckpointAnchored) {
        let bad = |reason: String| Error::MalformedCheckpoint { reason: format!("record {}: {reason}", r.seq) };
        let body: CheckpointAnchored = r.body_as()?;
        if body.size > r.seq {
            return Err(bad(format!("a checkpoint of {} records recorded as record {}", body.size, r.seq)));
        }
        if let Some(note) = body.note {
            let origin = checkpoint::note_origin(&note).ok_or_else(|| bad("a note without an origin".into()))?;
            let signed = crate::Checkpoint::verify(&note, origin, keyring, r.time)?;
            if (signed.size, signed.root) != (body.size, body.root) {
                return Err(bad(format!("its note is of size {} root {}", signed.size, hex::encode(signed.root))));
            }
            found.notes.insert(body.size, (note, r.time));
        }
        if found.anchors.0.insert(body.size, body.root).is_some_and(|root| root != body.root) {
            return Err(bad(format!("size {} recorded with two roots", body.size)));
        }
    }
    Ok(found)
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

    /// A log of `n` decisions (decision `i`'s body made by `body(i)`), with a
    /// `checkpoint_anchored` record after the tenth and after the last,
    /// whose note `note` makes from the checkpoint; every record signed by
    /// the key of seed 5, whose ring is returned with the records and tree.
    fn log_with_checkpoints(
        n: u64,
        body: impl Fn(u64) -> serde_json::Value,
        note: impl Fn(&crate::Signer, &crate::Checkpoint) -> Option<String>,
    ) -> (Vec<crate::Record>, MerkleStore, crate::KeyRing) {
        use crate::{Record, Signer, Timestamp, body::CheckpointAnchored, record::Kind};
        let signer = Signer::from_seed(&[5; 32]);
        let (mut records, mut tree): (Vec<Record>, MerkleStore) = (Vec::new(), MerkleStore::new());
        let t0 = Timestamp::parse("2026-12-01T09:00:00Z").unwrap().unix_nanos();
        let push = |records: &mut Vec<Record>, tree: &mut MerkleStore, kind: Kind, body: serde_json::Value| {
            let seq = records.len() as u64;
            let prev = records.last().map_or(crate::record::GENESIS_PREV, |r: &Record| r.hash);
            let time = Timestamp::from_unix_nanos(t0 + i128::from(seq) * 1_000_000_000).unwrap();
            let r = Record::sign(&signer, seq, prev, time, kind, &body).unwrap();
            tree.push(r.merkle_leaf());
            records.push(r);
        };
        for i in 0..n {
            push(&mut records, &mut tree, Kind::Decision, body(i));
            if i == 9 || i == n - 1 {
                let size = tree.size();
                let root = tree.root();
                let cp = crate::Checkpoint { origin: crate::checkpoint::origin(31337, "0xAbC0"), size, root };
                let anchored = CheckpointAnchored { size, root, tx_hash: [1; 32], block: size, note: note(&signer, &cp) };
                push(&mut records, &mut tree, Kind::CheckpointAnchored, serde_json::to_value(anchored).unwrap());
            }
        }
        (records, tree, crate::KeyRing::single(signer.verifying_key()).unwrap())
    }

    #[test]
    fn a_log_checks_against_the_checkpoints_it_recorded() {
        let body = |i: u64| serde_json::json!({"account": i});
        let signed = |s: &crate::Signer, cp: &crate::Checkpoint| Some(cp.sign(s).unwrap());
        let (records, tree, ring) = log_with_checkpoints(20, body, signed);
        let recorded = recorded_checkpoints(&records, &ring).unwrap();
        assert_eq!(recorded.notes.keys().copied().collect::<Vec<_>>(), vec![10, 21]);
        assert_eq!(recorded.anchors.0.keys().copied().collect::<Vec<_>>(), vec![10, 21]);
        assert_eq!(check_anchors(&tree, &recorded.anchors).unwrap(), AnchorReport { checked: 2, latest: Some(21) });
        assert_eq!(recorded.anchors.0[&10], tree.root_at(10).unwrap());

        // Records rewritten and re-signed with the agent's key, the recorded
        // checkpoints kept: their roots no longer match the log.
        let (rewritten, rewritten_tree, _) = log_with_checkpoints(20, |i| body(if i == 3 { 99 } else { i }), signed);
        let kept: Vec<crate::Record> = rewritten.iter().map(|r| if r.kind == crate::Kind::CheckpointAnchored { records[r.seq as usize].clone() } else { r.clone() }).collect();
        let anchors = recorded_checkpoints(&kept, &ring).unwrap().anchors;
        assert!(matches!(check_anchors(&rewritten_tree, &anchors), Err(Error::RootMismatch { size: 10, .. })));

        // Notes by another key, or naming another root, are refused; a log
        // without notes checks by its records alone.
        let other = crate::Signer::from_seed(&[6; 32]);
        let (records, _, ring) = log_with_checkpoints(20, body, |_, cp| Some(cp.sign(&other).unwrap()));
        assert!(matches!(recorded_checkpoints(&records, &ring), Err(Error::CheckpointSignature { size: 10, .. })));
        let wrong_root = |s: &crate::Signer, cp: &crate::Checkpoint| Some(crate::Checkpoint { root: [0; 32], ..cp.clone() }.sign(s).unwrap());
        let (records, _, ring) = log_with_checkpoints(20, body, wrong_root);
        assert!(matches!(recorded_checkpoints(&records, &ring), Err(Error::MalformedCheckpoint { .. })));
        let (records, tree, ring) = log_with_checkpoints(20, body, |_, _| None);
        let recorded = recorded_checkpoints(&records, &ring).unwrap();
        assert_eq!((recorded.notes.len(), check_anchors(&tree, &recorded.anchors).unwrap().checked), (0, 2));
    }
}
