//! The crate's one error type, sorted by what a caller does about it.

use std::path::PathBuf;

/// Errors of the chain layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool that `scripts/setup.sh` installs is not there.
    #[error("{tool} not found at {path}: {hint}")]
    ToolMissing { tool: &'static str, path: PathBuf, hint: &'static str },
    #[error("could not start {path}")]
    Spawn { path: PathBuf, source: std::io::Error },
    #[error("devnet did not start: {0}")]
    DevnetStart(String),
    #[error("{path}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A JSON file (manifest, artifact) that does not parse or lacks a field.
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    /// The node answered with an error or not at all; usually worth a retry.
    #[error("rpc request failed")]
    Rpc(#[source] Box<alloy::transports::TransportError>),
    /// A contract call reverted or could not be sent.
    #[error("contract call {call} failed{}", refusal(source))]
    Contract { call: &'static str, source: Box<alloy::contract::Error> },
    #[error("waiting for the receipt of {call}")]
    Receipt { call: &'static str, source: Box<alloy::providers::PendingTransactionError> },
    /// A transaction was mined but failed.
    #[error("{call} reverted in tx {tx}")]
    Reverted { call: &'static str, tx: alloy::primitives::TxHash },
    /// A deployment returned no contract address.
    #[error("deploying {0} returned no address")]
    NoContractAddress(&'static str),
    /// The caller asked for something that cannot be done as asked.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<alloy::transports::TransportError> for Error {
    fn from(e: alloy::transports::TransportError) -> Self {
        Error::Rpc(Box::new(e))
    }
}

/// The ledger's or registry's custom error behind a failed call, decoded:
/// `SlippageExceeded { asset: 2, .. }` says more than its selector.
fn refusal(source: &alloy::contract::Error) -> String {
    use crate::bindings::{AuditRegistry::AuditRegistryErrors, PortfolioLedger::PortfolioLedgerErrors};
    if let Some(e) = source.as_decoded_interface_error::<PortfolioLedgerErrors>() {
        return format!(": the ledger refuses: {e:?}");
    }
    if let Some(e) = source.as_decoded_interface_error::<AuditRegistryErrors>() {
        return format!(": the registry refuses: {e:?}");
    }
    String::new()
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the name of the contract call to alloy's errors.
pub(crate) trait CallContext<T> {
    fn call_ctx(self, call: &'static str) -> Result<T>;
}

impl<T> CallContext<T> for std::result::Result<T, alloy::contract::Error> {
    fn call_ctx(self, call: &'static str) -> Result<T> {
        self.map_err(|source| Error::Contract { call, source: Box::new(source) })
    }
}

impl<T> CallContext<T> for std::result::Result<T, alloy::providers::PendingTransactionError> {
    fn call_ctx(self, call: &'static str) -> Result<T> {
        self.map_err(|source| Error::Receipt { call, source: Box::new(source) })
    }
}
