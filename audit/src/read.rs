//! Reading a log file for verifiers and tools that do not write to it:
//! verify the bytes, then decode the records they hold.

use std::path::Path;

use crate::{
    error::{Error, Result},
    frame::{self, Span},
    keys::KeyRing,
    merkle::MerkleStore,
    record::Record,
    verify::{self, Summary},
};

/// A log read from disk and verified.
#[derive(Debug, Clone)]
pub struct VerifiedLog {
    pub summary: Summary,
    pub records: Vec<Record>,
    /// Where each record's frame is in the file.
    pub spans: Vec<Span>,
    /// The Merkle tree over the records (leaf = `SHA-256(0x00 || record hash)`).
    pub tree: MerkleStore,
}

/// What a verified log records of itself, checked against it.
#[derive(Debug, Clone)]
pub struct OwnRecords {
    /// Its key rotations (`key_rotation` records).
    pub rotations: usize,
    /// The checkpoints it recorded anchoring, with their notes.
    pub checkpoints: crate::RecordedCheckpoints,
}

impl VerifiedLog {
    /// Checks the log against what it records of itself: every record is
    /// signed by the key its key rotations hand signing to
    /// ([`crate::keys::check_rotations`]), and every checkpoint it recorded
    /// holds (note signed by a key of `keyring` valid then, root the log's
    /// own: [`crate::recorded_checkpoints`], [`crate::check_anchors`]).
    pub fn check_own_records(&self, keyring: &KeyRing) -> Result<OwnRecords> {
        let rotations = crate::keys::check_rotations(&self.records)?;
        let checkpoints = crate::recorded_checkpoints(&self.records, keyring)?;
        crate::check_anchors(&self.tree, &checkpoints.anchors)?;
        Ok(OwnRecords { rotations, checkpoints })
    }
}

/// Reads and verifies the log at `path` (chain, hashes, signatures, key
/// windows) without changing it: a torn tail is reported in the summary,
/// not cut. Any other defect is the error, naming the first bad record.
pub fn read_log(path: &Path, keyring: &KeyRing) -> Result<VerifiedLog> {
    let bytes = std::fs::read(path).map_err(Error::io("reading", path))?;
    let summary = verify::verify_records(&bytes, keyring)?;
    decode(&bytes, summary)
}

/// The records of log bytes that `summary` says verified.
pub(crate) fn decode(bytes: &[u8], summary: Summary) -> Result<VerifiedLog> {
    let mut records = Vec::with_capacity(summary.hashes.len());
    let mut spans = Vec::with_capacity(summary.hashes.len());
    let mut tree = MerkleStore::new();
    let mut at = 0usize;
    while (at as u64) < summary.valid_len {
        let (payload, next) = frame::read_frame(bytes, at).map_err(|defect| Error::BadFrame { seq: records.len() as u64, offset: at as u64, defect })?;
        let record: Record = serde_json::from_slice(payload)
            .map_err(|e| Error::Decode { seq: records.len() as u64, offset: at as u64, reason: e.to_string() })?;
        tree.push(record.merkle_leaf());
        records.push(record);
        spans.push(Span { offset: at as u64, len: (next - at) as u32 });
        at = next;
    }
    debug_assert_eq!(records.len(), summary.hashes.len());
    Ok(VerifiedLog { summary, records, spans, tree })
}
