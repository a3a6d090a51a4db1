//! Ballast's EVM side: contract bindings from the committed artifacts, a local
//! Anvil devnet, the deployment of every contract with the Uniswap V2 venue,
//! client accounts, and batch settlement cut to fit the block gas limit.
//!
//! ```no_run
//! # async fn demo() -> ballast_chain::Result<()> {
//! use ballast_chain::{deploy::{deploy, DeployConfig}, devnet::{Devnet, DevnetOptions}};
//! let devnet = Devnet::start(&DevnetOptions::default())?;
//! let deployment = deploy(&devnet, &DeployConfig::default()).await?;
//! println!("{}", deployment.manifest.to_json());
//! # Ok(()) }
//! ```

/// Contract bindings generated from `contracts/artifacts/`.
pub mod bindings;
/// Starting and stopping a local Anvil node.
pub mod devnet;
/// Deploying the contracts, the venue and client accounts.
pub mod deploy;
/// The deployment manifest written for the agent and for verifiers.
pub mod manifest;
/// Building, cutting and submitting settlement batches.
pub mod settle;
/// Settlement signed before it is sent, broadcast, and resolved from the chain after a crash.
pub mod submit;
/// Read-only access to the audit registry's anchors and keys, for verifiers.
pub mod registry;
/// The gas benchmark: batched settlement against per-leg venue swaps.
pub mod gas;
mod error;

pub use error::{Error, Result};
