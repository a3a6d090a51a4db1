//! Ballast's decision engine. Pure and deterministic: no IO, no clock, no
//! randomness, no async. Given accounts, their Investment Policy Statements,
//! models, a market snapshot and the time, it returns one [`Decision`] per
//! account with everything an auditor needs to see why.
//!
//! ```
//! # fn main() -> Result<(), ballast_engine::Error> {
//! let inputs: ballast_engine::Inputs = serde_json::from_str(include_str!("../tests/data/two_accounts.json")).unwrap();
//! let decisions = ballast_engine::decide(&inputs)?;
//! assert_eq!(decisions.len(), inputs.accounts.len());
//! # Ok(()) }
//! ```

/// Input types: assets, models, IPS, accounts, lots, cash flows, market.
pub mod types;
/// Output types: the decision and its parts.
pub mod decision;
/// Tax lots: sale order per method, gains, terms.
pub mod lots;
/// Deciding one account.
mod engine;

pub use decision::{Decision, Status, Trade, TriggerKind};
pub use engine::{band_width, calendar_due, round_down};
pub use types::Inputs;

/// Why the engine could not decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A field holds a value the engine cannot use.
    #[error("{what}: field `{field}` has the invalid value {value}")]
    Invalid { what: String, field: &'static str, value: String },
    /// Something refers to an id that is not there.
    #[error("{referrer} refers to the unknown {kind} `{id}`")]
    Unknown { kind: &'static str, id: String, referrer: String },
    #[error("{kind} `{id}` is defined twice")]
    Duplicate { kind: &'static str, id: String },
    /// A postcondition failed: a bug, never a user error.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Decides every account of `inputs`, in input order.
pub fn decide(inputs: &Inputs) -> Result<Vec<Decision>> {
    let ctx = engine::Context::new(inputs)?;
    inputs.accounts.iter().map(|a| engine::decide(&ctx, a)).collect()
}
