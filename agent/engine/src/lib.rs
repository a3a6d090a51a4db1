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
///
/// The accounts of a household are decided together so that no account
/// buys an asset another sells at a loss (a wash sale): when one does, the
/// household is decided again with that asset blocked for purchase (its
/// buys go to a substitute of the same group, or wait), until no such buy
/// remains.
pub fn decide(inputs: &Inputs) -> Result<Vec<Decision>> {
    let ctx = engine::Context::new(inputs)?;
    let mut households: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, a) in inputs.accounts.iter().enumerate() {
        households.entry(a.household.as_str()).or_default().push(i);
    }
    let mut out: Vec<Option<Decision>> = vec![None; inputs.accounts.len()];
    for (household, members) in households {
        for (i, d) in decide_household(&ctx, household, &members)? {
            out[i] = Some(d);
        }
    }
    Ok(out.into_iter().map(|d| d.expect("every account decided")).collect())
}

fn decide_household(ctx: &engine::Context<'_>, household: &str, members: &[usize]) -> Result<Vec<(usize, Decision)>> {
    let mut wash = engine::WashState::from_recent(ctx, household);
    // Accounts whose IPS targets the household decide together, per IPS.
    let mut pools: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    let mut alone = Vec::new();
    for &i in members {
        let account = &ctx.inputs.accounts[i];
        match ctx.ips.get(account.ips.as_str()) {
            Some(ips) if ips.household_mode => pools.entry(account.ips.as_str()).or_default().push(i),
            _ => alone.push(i),
        }
    }
    // Each round blocks at least one more asset, so this ends.
    for _ in 0..=ctx.assets.len() {
        let mut decisions: Vec<(usize, Decision)> = alone
            .iter()
            .map(|&i| engine::decide(ctx, &ctx.inputs.accounts[i], &wash).map(|d| (i, d)))
            .collect::<Result<_>>()?;
        for pool in pools.values() {
            let accounts: Vec<&types::Account> = pool.iter().map(|&i| &ctx.inputs.accounts[i]).collect();
            let pooled = engine::decide_pooled(ctx, &accounts, &wash)?;
            decisions.extend(pool.iter().copied().zip(pooled));
        }
        let mut loss_sold = std::collections::BTreeMap::new();
        for (_, d) in &decisions {
            for t in d.trades.iter().chain(&d.queued).filter(|t| t.side == types::Side::Sell) {
                if t.lots.iter().any(|u| u.gain < rust_decimal::Decimal::ZERO) && !wash.loss_sold.contains_key(&t.asset) {
                    loss_sold.insert(t.asset.clone(), format!("sold at a loss in account {} today", d.account));
                }
            }
        }
        let clash = decisions.iter().any(|(_, d)| {
            d.trades.iter().chain(&d.queued).any(|t| t.side == types::Side::Buy && loss_sold.contains_key(&t.asset))
        });
        if !clash {
            return Ok(decisions);
        }
        wash.loss_sold.extend(loss_sold);
    }
    Err(Error::Internal(format!("household {household}: wash-sale blocking did not settle")))
}
