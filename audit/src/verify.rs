//! Verification of log bytes, with no I/O: every frame's checksum, every
//! record's canonical form, sequence number, previous-hash link, time order,
//! hash, key and signature, stopping at the first bad record.
//!
//! A bad frame with nothing valid after it is a *torn tail* (a write the
//! crash interrupted) and is reported, not an error; a bad frame followed by
//! a valid one is damage in the middle of the log, an integrity error.
//! A log that verifies can still be a truncated or rewritten copy: check it
//! against an anchored checkpoint with [`Summary::check_checkpoint`].

use crate::{
    error::{Error, Result},
    frame::{self, FrameDefect},
    keys::KeyRing,
    merkle::{self, Hash, MerkleTree},
    record::{GENESIS_PREV, RECORD_VERSION, Record},
    timestamp::Timestamp,
};

/// Where a verified log ends: what the next record must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    /// The next record's sequence number (= records so far).
    pub next_seq: u64,
    /// The last record's hash ([`GENESIS_PREV`] before the first).
    pub prev: Hash,
    /// The last record's time; the next may not be earlier.
    pub last_time: Option<Timestamp>,
}

impl ChainState {
    /// Before the first record.
    pub const GENESIS: ChainState = ChainState { next_seq: 0, prev: GENESIS_PREV, last_time: None };

    /// Checks that `record` comes next after this state and that its seal
    /// holds under `keyring`; returns the state after it. Errors name the
    /// record's position (`self.next_seq`), whatever seq it claims.
    pub fn check_next(&self, record: &Record, keyring: &KeyRing) -> Result<ChainState> {
        let seq = self.next_seq;
        if record.version != RECORD_VERSION {
            return Err(Error::UnsupportedVersion { seq, version: record.version });
        }
        if record.seq != seq {
            return Err(Error::SeqGap { expected: seq, found: record.seq });
        }
        if record.prev != self.prev {
            return Err(Error::BrokenChain { seq, expected: self.prev, found: record.prev });
        }
        if let Some(previous) = self.last_time
            && record.time < previous
        {
            return Err(Error::TimeRegressed { seq, previous, time: record.time });
        }
        let hash = record.check_seal(keyring)?;
        Ok(ChainState { next_seq: seq + 1, prev: hash, last_time: Some(record.time) })
    }
}

/// A final frame dropped as a torn write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where the torn frame starts (the log's valid length).
    pub offset: u64,
    /// Bytes from there to the end.
    pub dropped_bytes: u64,
    pub defect: FrameDefect,
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Hashes of the verified records, in order.
    pub hashes: Vec<Hash>,
    /// Offset just past the last valid frame.
    pub valid_len: u64,
    pub torn_tail: Option<TornTail>,
    /// Where the verified records end.
    pub end: ChainState,
}

impl Summary {
    /// Records verified (this call's; the whole log's from [`verify_records`]).
    pub fn records(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Checks that the verified records start with the checkpoint's: at
    /// least `size` of them, whose RFC 6962 root is `root`. Catches what the
    /// log alone cannot: an older prefix replayed, the tail cut at a frame
    /// boundary, or records rewritten and re-chained by a holder of the key.
    pub fn check_checkpoint(&self, size: u64, root: &Hash) -> Result<()> {
        check_checkpoint(&self.hashes, size, root)
    }
}

/// [`Summary::check_checkpoint`] over record hashes from the start of a log.
pub fn check_checkpoint(hashes: &[Hash], size: u64, root: &Hash) -> Result<()> {
    let found = hashes.len() as u64;
    if found < size {
        return Err(Error::Truncated { expected: size, found });
    }
    let mut tree = MerkleTree::new();
    for hash in &hashes[..size as usize] {
        tree.push(merkle::leaf_hash(hash));
    }
    let actual = tree.root();
    if &actual != root {
        return Err(Error::RootMismatch { size, expected: *root, actual });
    }
    Ok(())
}

/// Verifies a whole log file's bytes.
pub fn verify_records(bytes: &[u8], keyring: &KeyRing) -> Result<Summary> {
    verify_records_from(bytes, 0, ChainState::GENESIS, keyring)
}

/// Verifies log bytes that start at file offset `base_offset`, after records
/// that ended in `start`, up to the end of the file. Verification is a pure
/// left-to-right function of the bytes, so verifying a file's prefix and
/// then the rest from the prefix's end state gives what verifying the whole
/// file gives; this is how new records are checked without re-reading the log.
pub fn verify_records_from(bytes: &[u8], base_offset: u64, start: ChainState, keyring: &KeyRing) -> Result<Summary> {
    let mut state = start;
    let mut hashes = Vec::new();
    let mut torn_tail = None;
    let mut at = 0;
    while at < bytes.len() {
        let offset = base_offset + at as u64;
        let seq = state.next_seq;
        let (payload, end) = match frame::read_frame(bytes, at) {
            Ok(frame) => frame,
            Err(defect) => {
                if frame::valid_frame_after(bytes, at) {
                    return Err(match defect {
                        FrameDefect::Checksum { stored, computed } => {
                            Error::BadChecksum { seq, offset, stored, computed }
                        }
                        defect => Error::BadFrame { seq, offset, defect },
                    });
                }
                torn_tail = Some(TornTail { offset, dropped_bytes: (bytes.len() - at) as u64, defect });
                break;
            }
        };
        let record = decode(payload, seq, offset)?;
        state = state.check_next(&record, keyring).map_err(|e| match e {
            Error::Decode { seq, reason, .. } => Error::Decode { seq, offset, reason },
            e => e,
        })?;
        hashes.push(record.hash);
        at = end;
    }
    Ok(Summary { hashes, valid_len: base_offset + at as u64, torn_tail, end: state })
}

/// A frame payload as a record, which must be in canonical form: one record
/// has exactly one byte string, so no edit of the bytes goes unnoticed.
fn decode(payload: &[u8], seq: u64, offset: u64) -> Result<Record> {
    let bad = |reason: String| Error::Decode { seq, offset, reason };
    let record: Record = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let canonical = record.canonical_bytes().map_err(|e| bad(format!("cannot canonicalize: {e}")))?;
    if canonical != payload {
        return Err(bad("not in canonical (RFC 8785) form".into()));
    }
    Ok(record)
}
