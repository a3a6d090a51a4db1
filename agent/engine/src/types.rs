//! The engine's inputs: assets, models, Investment Policy Statements,
//! accounts with their tax lots and cash flows, and the market snapshot.
//! Every type reads from TOML or JSON; unknown fields are refused so that a
//! typo in a policy file is an error, not a silently ignored setting.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

/// An asset's identifier, e.g. "GEQ".
pub type AssetId = String;

/// A client account number (the ledger's account id).
pub type AccountId = u64;

/// One tradable asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub id: AssetId,
    /// Asset class, e.g. "equity", "bond", "real_estate".
    pub class: String,
    /// Smallest tradable quantity; quantities round down to a multiple of it.
    pub quantum: Decimal,
    /// Illiquid assets are never traded automatically: their trades are queued for approval.
    #[serde(default = "yes")]
    pub liquid: bool,
    /// Assets of one group are close substitutes (harvesting swaps within a group).
    #[serde(default)]
    pub substitute_group: Option<String>,
    /// Tax-inefficient assets (e.g. bond funds) belong in tax-deferred accounts.
    #[serde(default)]
    pub tax_inefficient: bool,
}

fn yes() -> bool {
    true
}

/// A tolerance band around a target weight. Absolute is in percentage points
/// of the portfolio, relative in percent of the target; with both, whichever
/// is narrower trips first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    #[serde(default)]
    pub absolute_pp: Option<Decimal>,
    #[serde(default)]
    pub relative_pct: Option<Decimal>,
}

/// Relative bands on small targets are too tight to be useful (20 % of a
/// 1 % target is 0.2 pp); below `below_weight` the band is at least `min_pp` wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmallTargetRule {
    pub below_weight: Decimal,
    pub min_pp: Decimal,
}

/// A target model: weights per asset and cash, and its bands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub id: String,
    /// Target weights of the assets (fractions of the portfolio).
    pub targets: BTreeMap<AssetId, Decimal>,
    /// Target weight of cash; targets plus cash sum to 1.
    #[serde(default)]
    pub cash_target: Decimal,
    pub band: Band,
    /// Per-asset bands replacing `band`.
    #[serde(default)]
    pub overrides: BTreeMap<AssetId, Band>,
    #[serde(default)]
    pub small_targets: Option<SmallTargetRule>,
}

/// How rebalancing is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerMode {
    /// Whenever an asset leaves its band.
    Threshold,
    /// On the calendar only.
    Calendar,
    /// Threshold every cycle, calendar as backstop.
    Hybrid,
}

/// Calendar frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Monthly,
    Quarterly,
    Annual,
}

/// When and how far to trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub mode: TriggerMode,
    /// Calendar frequency for `calendar` and `hybrid`.
    #[serde(default)]
    pub frequency: Option<Frequency>,
    /// Trade to the target, or only back to the band edge.
    #[serde(default)]
    pub sizing: Sizing,
}

/// How far a rebalancing trade goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to")]
pub enum Sizing {
    /// All the way to the target weight.
    #[default]
    Target,
    /// Back inside the band, `inner_margin` (a fraction of the band's width,
    /// 0 to 1) short of its edge.
    BandEdge { inner_margin: Decimal },
}

/// How lots are picked when selling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotMethod {
    Fifo,
    Lifo,
    /// Highest cost first.
    Hifo,
    /// The lots named in the account's `sell_order`, in that order, then FIFO.
    SpecificId,
    /// Losses first (short-term before long-term), then long-term gains,
    /// short-term gains last.
    #[default]
    TaxMinimizing,
}

/// Tax rates on realised gains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRates {
    pub short_term: Decimal,
    pub long_term: Decimal,
}

/// Tax-loss harvesting settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Harvesting {
    pub enabled: bool,
    /// A lot is harvested when its unrealised loss is at least this much money…
    #[serde(default)]
    pub min_loss: Decimal,
    /// …and at least this fraction of its cost.
    #[serde(default)]
    pub min_loss_pct: Decimal,
}

/// What the client allows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restrictions {
    #[serde(default)]
    pub no_buy: Vec<AssetId>,
    #[serde(default)]
    pub no_sell: Vec<AssetId>,
    /// Excluded assets (e.g. on ESG grounds): never bought, sold when held.
    #[serde(default)]
    pub excluded: Vec<AssetId>,
    /// When set, only these assets may be bought.
    #[serde(default)]
    pub allowed_only: Option<Vec<AssetId>>,
    /// No asset may exceed this weight after the trades.
    #[serde(default)]
    pub max_position_weight: Option<Decimal>,
}

/// An Investment Policy Statement: the client's rules, versioned, with the
/// hash of the signed document it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ips {
    pub id: String,
    pub version: u32,
    /// SHA-256 of the IPS document, hex.
    pub document_hash: String,
    /// Id of the target model.
    pub model: String,
    /// Per-client band replacing the model's.
    #[serde(default)]
    pub band: Option<Band>,
    pub schedule: Schedule,
    #[serde(default)]
    pub restrictions: Restrictions,
    #[serde(default)]
    pub tax: TaxRates,
    #[serde(default)]
    pub lot_method: LotMethod,
    #[serde(default)]
    pub harvesting: Harvesting,
    /// Trades worth more than this are queued for an advisor's approval.
    #[serde(default)]
    pub approval_limit: Option<Decimal>,
    /// Cash kept aside and never invested, in money.
    #[serde(default)]
    pub cash_buffer: Decimal,
    /// Trades worth less than this are not made.
    #[serde(default)]
    pub min_trade_value: Decimal,
    /// Target the household's combined portfolio instead of each account's.
    #[serde(default)]
    pub household_mode: bool,
}

/// How an account is taxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Taxable,
    TaxDeferred,
    TaxFree,
}

impl AccountKind {
    /// Whether sales realise taxable gains.
    pub fn realises_tax(self) -> bool {
        self == AccountKind::Taxable
    }
}

/// One tax lot: a quantity bought at one time and price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lot {
    pub id: String,
    pub asset: AssetId,
    pub quantity: Decimal,
    /// Cost per unit.
    pub cost: Decimal,
    pub acquired: Date,
}

/// A pending movement of cash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    Deposit,
    Dividend,
    Withdrawal,
}

/// A cash flow to take into account this cycle: deposits and dividends are
/// already in `cash` and want investing; a withdrawal must be raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashFlow {
    pub kind: FlowKind,
    pub amount: Decimal,
}

/// A client account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: AccountId,
    pub household: String,
    pub kind: AccountKind,
    /// Id of the account's IPS.
    pub ips: String,
    pub cash: Decimal,
    #[serde(default)]
    pub lots: Vec<Lot>,
    #[serde(default)]
    pub flows: Vec<CashFlow>,
    /// Date of the last rebalance, for calendar triggers.
    #[serde(default)]
    pub last_rebalanced: Option<Date>,
    /// IPS version the account was last decided under.
    #[serde(default)]
    pub ips_version_applied: Option<u32>,
    /// An advisor asked for a rebalance.
    #[serde(default)]
    pub manual_request: bool,
    /// Lot ids to sell first under the specific-ID method.
    #[serde(default)]
    pub sell_order: Vec<String>,
}

/// A price from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricePoint {
    pub price: Decimal,
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// What the market says of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    pub primary: PricePoint,
    /// An independent second source, checked against the primary.
    #[serde(default)]
    pub secondary: Option<PricePoint>,
    #[serde(default)]
    pub previous_close: Option<Decimal>,
}

/// The market as the engine sees it this cycle.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSnapshot {
    pub quotes: BTreeMap<AssetId, Quote>,
    /// A volatility index (VIX-like), when known.
    #[serde(default)]
    pub volatility_index: Option<Decimal>,
}

/// A past trade, for wash-sale rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastTrade {
    pub account: AccountId,
    pub household: String,
    pub asset: AssetId,
    pub side: Side,
    pub quantity: Decimal,
    pub date: Date,
    /// For sales: the loss realised (positive number), if any.
    #[serde(default)]
    pub realised_loss: Decimal,
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

/// Circuit-breaker and cap settings of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A price older than this halts its asset.
    pub max_price_age_s: i64,
    /// Two sources further apart than this fraction halt the asset.
    pub source_tolerance: Decimal,
    /// An asset moving more than this fraction since the previous close pauses automatic trading.
    pub max_daily_move: Decimal,
    /// A volatility index above this pauses automatic trading.
    #[serde(default)]
    pub volatility_threshold: Option<Decimal>,
    /// Per cycle, at most this fraction of an account's value may trade.
    #[serde(default)]
    pub max_turnover: Option<Decimal>,
    /// Per cycle, at most this much money may trade in one account.
    #[serde(default)]
    pub max_notional: Option<Decimal>,
    /// Fills may be worse than the estimated price by this fraction (the
    /// venue's slippage): purchases are funded as if they cost this much
    /// more, and sales as if they fetched this much less.
    #[serde(default)]
    pub price_margin: Option<Decimal>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_price_age_s: 900,
            source_tolerance: Decimal::new(2, 2),
            max_daily_move: Decimal::new(10, 2),
            volatility_threshold: None,
            max_turnover: None,
            max_notional: None,
            price_margin: None,
        }
    }
}

/// Everything one engine run reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    pub assets: Vec<Asset>,
    pub models: Vec<Model>,
    pub ips: Vec<Ips>,
    pub accounts: Vec<Account>,
    pub market: MarketSnapshot,
    #[serde(default)]
    pub recent_trades: Vec<PastTrade>,
    #[serde(default)]
    pub limits: Limits,
    /// The decision time.
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}
