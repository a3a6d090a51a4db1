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
    /// The audit log or index refused (integrity failures halt the agent).
    #[error("audit log: {0}")]
    Audit(#[from] ballast_audit::Error),
    /// A contract call or transaction failed.
    #[error(transparent)]
    Contract(#[from] ballast_chain::Error),
    #[error("engine: {0}")]
    Engine(#[from] ballast_engine::Error),
    /// The log holds something the book cannot apply: a bug or a foreign log.
    #[error("book: {0}")]
    Log(String),
    /// Start-up found the deployment or the keys not ready for this agent.
    #[error("{0}")]
    NotReady(String),
}

impl Error {
    /// Whether the agent must stop rather than retry the cycle later: the
    /// log or the book cannot be trusted, or the setup is wrong. RPC and
    /// transaction failures are retried next cycle.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Audit(_) | Error::Log(_) | Error::Engine(_) | Error::Config { .. } | Error::Key { .. } | Error::NotReady(_) | Error::Io { .. } => true,
            Error::Chain(_) | Error::Contract(_) => false,
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
