//! The crate's one error type.

use std::path::PathBuf;

/// Why the agent cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file has a bad key or value; `key` is its dotted path.
    #[error("{path}: `{key}`: {reason}")]
    Config { path: PathBuf, key: String, reason: String },
    /// A key file or variable that cannot be used.
    #[error("{source_name}: {reason}")]
    Key { source_name: String, reason: String },
    /// The chain answered with an error, or with something out of range.
    #[error("chain: {0}")]
    Chain(String),
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
