//! The engine's output: one [`Decision`] per account, holding everything an
//! auditor needs to see why each trade was (or was not) made.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::types::{AccountId, AssetId, Side};

/// What made the engine look at an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// Listed in the order in which they take precedence.
    Manual,
    NewIps,
    Withdrawal,
    Threshold,
    Calendar,
    Deposit,
    Dividend,
    Harvest,
}

/// A trigger that fired, with what made it fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub detail: String,
}

/// Why a trade is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Back toward the target weight.
    Rebalance,
    /// Investing a deposit or dividend.
    InvestInflow,
    /// Raising cash for a withdrawal.
    RaiseCash,
    /// Selling a lot at a loss for the tax benefit.
    HarvestLoss,
    /// Buying the substitute for a harvested asset.
    HarvestReplace,
    /// Selling an asset the IPS excludes.
    Excluded,
}

/// Short-term or long-term holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    Short,
    Long,
}

/// The part of a lot a sale uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotUse {
    pub lot: String,
    pub quantity: Decimal,
    /// Realised gain (negative: a loss) at the estimated price.
    pub gain: Decimal,
    pub term: Term,
}

/// One trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub asset: AssetId,
    pub side: Side,
    pub quantity: Decimal,
    pub price: Decimal,
    /// quantity × price.
    pub value: Decimal,
    /// For sales: the lots sold, with their gains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lots: Vec<LotUse>,
    /// Estimated tax of the sale at the IPS rates (negative: a saving).
    pub estimated_tax: Decimal,
    pub reason: Reason,
    /// One line a person can read.
    pub rationale: String,
}

/// Drift of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub asset: AssetId,
    pub target: Decimal,
    /// Weight before the trades.
    pub before: Decimal,
    /// Projected weight after the trades.
    pub after: Decimal,
    /// Half-width of the band, in weight.
    pub band: Decimal,
    pub out_of_band: bool,
}

/// One pre-trade check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A halt of one asset for this account (circuit breaker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub asset: AssetId,
    pub reason: String,
}

/// Realised gains and harvested losses of the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSummary {
    pub short_term_gain: Decimal,
    pub long_term_gain: Decimal,
    pub harvested_losses: Decimal,
    pub estimated_tax: Decimal,
}

/// The IPS a decision was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsRef {
    pub id: String,
    pub version: u32,
    pub document_hash: String,
}

/// What happens to the decision's trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to do.
    NoAction,
    /// Trades go to settlement.
    Trade,
    /// Some trades wait for an advisor's approval, the rest settle.
    PartlyQueued,
    /// Automatic trading is paused (market circuit breaker): everything waits for review.
    Paused,
    /// The account cannot be decided (e.g. no price for a held asset).
    Halted,
}

/// The engine's decision for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub account: AccountId,
    pub household: String,
    pub ips: IpsRef,
    pub model: String,
    pub status: Status,
    pub triggers: Vec<Trigger>,
    /// The trigger that acted, if any.
    pub acted_on: Option<TriggerKind>,
    pub value: Decimal,
    pub cash_before: Decimal,
    pub cash_after: Decimal,
    pub drift: Vec<Drift>,
    /// Trades to settle now.
    pub trades: Vec<Trade>,
    /// Trades waiting for approval or review, with the reason in their check.
    pub queued: Vec<Trade>,
    pub checks: Vec<Check>,
    pub halts: Vec<Halt>,
    pub tax: TaxSummary,
    /// SHA-256 of everything this decision read: the JSON of what all
    /// accounts under its IPS share (IPS, model, assets, market, limits,
    /// time), then a compact binary encoding of the account and its
    /// household's wash-sale state. Hex, 64 digits.
    pub input_digest: String,
}
