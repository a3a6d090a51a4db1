//! Ballast's evidence. For now: the RFC 6962 Merkle tree over audit records
//! whose checkpoints (tree size, root) the ledger anchors on-chain with every
//! settlement batch.

/// RFC 6962 / RFC 9162 Merkle tree hashing.
pub mod merkle;

pub use merkle::{leaf_hash, node_hash, root_of, Hash, MerkleTree};
