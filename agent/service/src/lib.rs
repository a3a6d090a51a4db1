//! The Ballast agent: the long-running service that, every cycle, ingests
//! prices and positions, runs the engine, records the decisions in the
//! audit log, settles netted batches, anchors checkpoints and indexes.
//! This crate holds what the service is made of, in reading order.

/// The agent's TOML configuration, validated once, errors naming the key.
pub mod config;
/// Signing keys from files (refused when group- or world-readable) or the environment.
pub mod keys;
/// Prices (feeds and venue) and positions (the ledger's books), read from the chain.
pub mod ingest;
mod error;

pub use config::Config;
pub use error::{Error, Result};
