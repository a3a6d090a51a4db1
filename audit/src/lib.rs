//! Ballast's evidence: every decision, approval, settlement and checkpoint
//! becomes a signed, hash-chained record in an append-only log, fsync'd
//! before anything goes on-chain; Merkle checkpoints over the log are
//! anchored on-chain so anyone can check the log was only appended to.
//!
//! ```no_run
//! use ballast_audit::{KeyRing, Log, Signer, SyncPolicy, Timestamp, body::Halt, body::HaltCause};
//!
//! let signer = Signer::from_seed(&[7; 32]);
//! let keyring = KeyRing::single(signer.verifying_key())?;
//! let (mut log, report) = Log::open("audit.log", signer, SyncPolicy::EveryN(64), keyring)?;
//! if let Some(torn) = report.torn_tail {
//!     eprintln!("dropped a torn tail of {} bytes", torn.dropped_bytes);
//! }
//! log.append_body(&Halt { cause: HaltCause::Operator, detail: "maintenance".into() }, Timestamp::now())?;
//! log.barrier()?; // durable before anything goes on-chain
//! # Ok::<(), ballast_audit::Error>(())
//! ```

/// The crate's error type and what each kind of failure asks of the caller.
pub mod error;
/// UTC instants with one canonical RFC 3339 spelling.
pub mod timestamp;
/// Hex encodings of hashes, keys, signatures and EVM values on the wire.
mod wire;
/// The Ed25519 signer and the key ring (key id → public key and validity window).
pub mod keys;
/// The record envelope, its kinds, canonical (RFC 8785) bytes, hash and signature.
pub mod record;
/// Typed record bodies for the kinds this crate knows.
pub mod body;
/// Log frames: length, CRC-32C, payload.
pub mod frame;
/// Pure verification of log bytes: chain, hashes, signatures, torn tails, checkpoints.
pub mod verify;
/// The append-only log file: open and recover, append, fsync policy and barrier.
pub mod log;
/// Reading and verifying a log file without writing to it.
pub mod read;
/// RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs.
pub mod merkle;
/// Checkpoints as C2SP signed notes.
pub mod checkpoint;
/// Checking a log against the checkpoints anchored on-chain.
pub mod anchor;
/// The sled index over the log: derived and rebuildable.
pub mod index;
/// The regulator's export bundle: records, inclusion proofs, keys, checkpoint.
pub mod bundle;

pub use error::{Error, Result};
pub use keys::{KeyRing, Signer, Validity};
pub use log::{Entry, Log, OpenReport, SyncPolicy};
pub use anchor::{AnchorSource, MemoryAnchors, RecordedCheckpoints, check_anchors, recorded_checkpoints};
pub use checkpoint::Checkpoint;
pub use index::Index;
pub use merkle::{Hash, MerkleStore, MerkleTree, leaf_hash, node_hash, root_of, verify_consistency, verify_inclusion};
pub use record::{Kind, Record};
pub use timestamp::Timestamp;
pub use verify::{ChainState, Summary, TornTail, verify_records};
