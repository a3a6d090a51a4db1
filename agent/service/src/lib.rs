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
/// The book the chain does not hold (tax lots, IPS, households, recent trades): the opening book plus the log.
pub mod book;
/// Named crash points where tests make the agent die (`BALLAST_CRASH_AT`).
pub mod crash;
/// The agent: start-up recovery and the cycle (ingest, decide, record, settle, anchor, index).
pub mod agent;
/// The HTTP query API (axum, loopback) and Prometheus metrics.
pub mod api;
/// Advisors' verdicts on queued trades, handed to the agent through an inbox folder.
pub mod approvals;
/// RELIABILITY.md's invariants I1–I7, checked from the data folder and the chain.
pub mod invariants;
/// `ballast demo`: the agent on an embedded devnet through a scripted market.
pub mod demo;
mod error;

pub use agent::{Agent, CycleReport};
pub use config::Config;
pub use error::{Error, Result};
