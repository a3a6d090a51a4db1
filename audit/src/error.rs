//! The crate's one error type.
//!
//! Variants fall in three groups, by what the caller should do:
//!
//! - **integrity** ([`Error::is_integrity`]): the log or a record is not what
//!   was written and signed. The agent halts; it never skips the record. Each
//!   names the first bad sequence number ([`Error::first_bad_seq`]).
//! - **I/O** ([`Error::Io`], [`Error::Locked`], [`Error::Poisoned`]): the
//!   disk or another process is in the way; retry or stop cleanly.
//! - **refused input** (everything else): a caller asked for something that
//!   would write a record no verifier accepts; fix the caller.

use std::{io, path::PathBuf};

use crate::{frame::FrameDefect, timestamp::Timestamp};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- integrity --------------------------------------------------------
    /// A frame's payload does not match its CRC-32C, and valid frames follow
    /// it (so it is not a torn tail).
    #[error(
        "record {seq}: frame checksum mismatch at byte {offset} (stored {stored:#010x}, computed {computed:#010x})"
    )]
    BadChecksum { seq: u64, offset: u64, stored: u32, computed: u32 },

    /// A frame header that cannot be right (zero or oversized length, or a
    /// length running past the end of the file), followed by valid frames.
    #[error("record {seq}: bad frame at byte {offset}: {defect}")]
    BadFrame { seq: u64, offset: u64, defect: FrameDefect },

    /// A frame whose checksum holds but whose payload is not a record in
    /// canonical form.
    #[error("record {seq}: cannot decode the frame at byte {offset}: {reason}")]
    Decode { seq: u64, offset: u64, reason: String },

    /// A record format this build does not know.
    #[error("record {seq}: unsupported record version {version}")]
    UnsupportedVersion { seq: u64, version: u32 },

    /// The record at position `expected` carries another sequence number
    /// (a record deleted, duplicated, reordered or spliced in).
    #[error("sequence gap: expected record {expected}, found record {found}")]
    SeqGap { expected: u64, found: u64 },

    /// The record's `prev` is not the hash of the record before it.
    #[error(
        "record {seq}: previous-hash link broken (expected {}, found {})",
        hex::encode(expected),
        hex::encode(found)
    )]
    BrokenChain { seq: u64, expected: [u8; 32], found: [u8; 32] },

    /// The record's time is earlier than its predecessor's.
    #[error("record {seq}: time {time} is before the previous record's {previous}")]
    TimeRegressed { seq: u64, previous: Timestamp, time: Timestamp },

    /// The record's stored hash is not the hash of its contents: `expected`
    /// is recomputed from the contents, `actual` is what the record says.
    #[error("record {seq}: hash mismatch (recomputed {}, stored {})", hex::encode(expected), hex::encode(actual))]
    HashMismatch { seq: u64, expected: [u8; 32], actual: [u8; 32] },

    /// The record names a key the key ring does not hold.
    #[error("record {seq}: unknown signing key {key_id:?}")]
    UnknownKey { seq: u64, key_id: String },

    /// The record's key exists but was not valid at the record's time.
    #[error("record {seq}: key {key_id:?} is not valid at {time}")]
    KeyNotValid { seq: u64, key_id: String, time: Timestamp },

    /// The Ed25519 signature does not verify (strictly) under the named key.
    #[error("record {seq}: bad signature")]
    BadSignature { seq: u64 },

    /// The log holds fewer records than a checkpoint it must cover (an older
    /// prefix replayed, or the tail deleted).
    #[error("log holds {found} records, fewer than the checkpoint's {expected}")]
    Truncated { expected: u64, found: u64 },

    /// The Merkle root over the first `size` records is not the checkpoint's
    /// (records rewritten and re-chained, or a different log).
    #[error(
        "root over the first {size} records is {}, the checkpoint says {}",
        hex::encode(actual),
        hex::encode(expected)
    )]
    RootMismatch { size: u64, expected: [u8; 32], actual: [u8; 32] },

    /// A checkpoint note that is not in the C2SP checkpoint format.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint { reason: String },

    /// A checkpoint note whose signature is missing, unknown or bad.
    #[error("checkpoint of size {size}: {reason}")]
    CheckpointSignature { size: u64, reason: String },

    /// A record of an export bundle is not in the tree its proof names.
    #[error("record {seq}: its inclusion proof does not lead to the root of the {size}-record checkpoint")]
    NotIncluded { seq: u64, size: u64 },

    /// An export bundle file that does not parse or does not add up.
    #[error("bundle {file}, line {line}: {reason}")]
    Bundle { file: String, line: usize, reason: String },

    // ---- I/O --------------------------------------------------------------
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Another handle (in this or another process) holds the log's lock.
    #[error("{} is locked by another writer", path.display())]
    Locked { path: PathBuf },

    /// An earlier write or fsync failed; what reached the disk is unknown
    /// until the log is opened (and verified) again.
    #[error("the log is unusable after an earlier I/O failure; reopen it")]
    Poisoned,

    /// The sled index failed.
    #[error("index: {what}: {reason}")]
    Index { what: String, reason: String },

    /// A record handed to the index is not the next one it expects.
    #[error("index holds records up to {indexed} (exclusive); record {seq} would leave a gap")]
    IndexGap { indexed: u64, seq: u64 },

    // ---- refused input ----------------------------------------------------
    /// A record body that would not survive canonicalization unchanged.
    #[error("{kind} body rejected: {reason}")]
    Body { kind: &'static str, reason: String },

    /// A record body read back as the wrong kind or shape.
    #[error("record {seq} is not a {wanted} record ({reason})")]
    WrongBody { seq: u64, wanted: &'static str, reason: String },

    /// A record larger than a frame may carry.
    #[error("record of {len} bytes exceeds the {max}-byte frame limit")]
    RecordTooLarge { len: usize, max: u32 },

    /// An append whose time is earlier than the last record's.
    #[error("append at {requested} is earlier than the last record's {previous}")]
    ClockBehind { previous: Timestamp, requested: Timestamp },

    /// The log's signing key is not in its key ring, or not valid at the
    /// append's time: the record would fail verification.
    #[error("signing key {key_id:?} is not valid at {time} in the log's key ring")]
    SignerNotValid { key_id: String, time: Timestamp },

    /// A timestamp that is not a canonical RFC 3339 UTC time.
    #[error("invalid timestamp {value:?}: {reason}")]
    Timestamp { value: String, reason: String },

    /// A record signed by another key than the one the log's own latest
    /// key rotation (record `rotation`) hands signing to at its time.
    #[error("record {seq} is signed by key {key_id}, but key rotation record {rotation} hands signing to {expected} at that time")]
    KeyRotated { seq: u64, key_id: String, expected: String, rotation: u64 },

    /// A public key that cannot verify anything (not a curve point, or of
    /// small order), or whose id collides with another key's.
    #[error("invalid public key {key_id:?}: {reason}")]
    Key { key_id: String, reason: String },
}

impl Error {
    /// True for the errors that mean the evidence itself is wrong: the
    /// agent halts on these.
    pub fn is_integrity(&self) -> bool {
        self.first_bad_seq().is_some()
            || matches!(
                self,
                Error::Truncated { .. }
                    | Error::RootMismatch { .. }
                    | Error::MalformedCheckpoint { .. }
                    | Error::CheckpointSignature { .. }
                    | Error::Bundle { .. }
            )
    }

    /// The sequence number of the first record that failed verification
    /// (for [`Error::SeqGap`] the position where another record was found,
    /// for [`Error::Truncated`] the first record missing). `None` for
    /// [`Error::RootMismatch`], which cannot tell which record changed.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            Error::BadChecksum { seq, .. }
            | Error::BadFrame { seq, .. }
            | Error::Decode { seq, .. }
            | Error::UnsupportedVersion { seq, .. }
            | Error::BrokenChain { seq, .. }
            | Error::TimeRegressed { seq, .. }
            | Error::HashMismatch { seq, .. }
            | Error::UnknownKey { seq, .. }
            | Error::KeyNotValid { seq, .. }
            | Error::KeyRotated { seq, .. }
            | Error::BadSignature { seq }
            | Error::NotIncluded { seq, .. } => Some(*seq),
            Error::SeqGap { expected, .. } => Some(*expected),
            Error::Truncated { found, .. } => Some(*found),
            Error::RootMismatch { .. }
            | Error::MalformedCheckpoint { .. }
            | Error::CheckpointSignature { .. }
            | Error::Bundle { .. } => None,
            Error::Io { .. }
            | Error::Locked { .. }
            | Error::Poisoned
            | Error::Body { .. }
            | Error::WrongBody { .. }
            | Error::RecordTooLarge { .. }
            | Error::ClockBehind { .. }
            | Error::SignerNotValid { .. }
            | Error::Timestamp { .. }
            | Error::Key { .. }
            | Error::Index { .. }
            | Error::IndexGap { .. } => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
