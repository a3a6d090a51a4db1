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
/// Decimals as text, fast.
mod text;
/// Look-ups by asset id.
mod keyed;
/// Deterministic synthetic books for benchmarks and demos.
pub mod synthetic;

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

/// The account as it will be once the decision's settled trades are done at
/// their estimated prices: lots sold (as the decision picked them) and
/// bought (a new lot per purchase), cash moved, withdrawals paid out, cash
/// flows consumed, and the decision recorded as applied.
pub fn project(account: &types::Account, decision: &Decision, today: time::Date) -> types::Account {
    use rust_decimal::Decimal;
    let mut next = account.clone();
    for t in &decision.trades {
        match t.side {
            types::Side::Sell => {
                next.cash += t.value;
                for used in &t.lots {
                    if let Some(lot) = next.lots.iter_mut().find(|l| l.id == used.lot) {
                        lot.quantity -= used.quantity;
                    }
                }
            }
            types::Side::Buy => {
                next.cash -= t.value;
                next.lots.push(types::Lot {
                    id: format!("{}-{}-{}", today, t.asset, next.lots.len()),
                    asset: t.asset.clone(),
                    quantity: t.quantity,
                    cost: t.price,
                    acquired: today,
                });
            }
        }
    }
    next.lots.retain(|l| l.quantity > Decimal::ZERO);
    let withdrawn: Decimal =
        account.flows.iter().filter(|f| f.kind == types::FlowKind::Withdrawal).map(|f| f.amount).sum();
    next.cash -= withdrawn.min(next.cash);
    next.flows.clear();
    next.manual_request = false;
    next.ips_version_applied = Some(decision.ips.version);
    if decision.acted_on.is_some() {
        next.last_rebalanced = Some(today);
    }
    next
}

/// Decides every account of `inputs`, in input order.
///
/// The accounts of a household are decided together so that no account
/// buys an asset another sells at a loss in a taxable account (a wash
/// sale; a sale in a tax-deferred or tax-free account realises no loss for
/// tax): when one does, the household is decided again with that asset
/// blocked for purchase (its buys go to a substitute of the same group, or
/// wait), until no such buy remains.
///
/// Households are independent, so they are decided in parallel on the
/// current rayon pool; the result does not depend on the number of threads.
pub fn decide(inputs: &Inputs) -> Result<Vec<Decision>> {
    use rayon::prelude::*;
    let ctx = engine::Context::new(inputs)?;
    // Households in the order of their first account, each with its
    // accounts in input order.
    let households = keyed::group(0..inputs.accounts.len(), |&i| inputs.accounts[i].household.as_str());
    // Rationales are written on the household's thread too (written after
    // the parallel part, they were some 8 % of the work, on one thread).
    let decided: Vec<Vec<(usize, Decision)>> = households
        .par_iter()
        .map(|(household, members)| {
            let mut decisions = decide_household(&ctx, household, members)?;
            for (_, d) in &mut decisions {
                engine::explain(&ctx, d);
            }
            decisions.sort_unstable_by_key(|(i, _)| *i);
            Ok(decisions)
        })
        .collect::<Result<_>>()?;
    // When each household's accounts follow each other, the decisions come
    // out in input order and are moved once; otherwise each goes to its place.
    if decided.iter().flatten().map(|(i, _)| *i).eq(0..inputs.accounts.len()) {
        // Room for all at once: collected from a flattening they would be
        // moved again each time the vector doubled (some 800 instructions
        // an account).
        let mut out = Vec::with_capacity(inputs.accounts.len());
        out.extend(decided.into_iter().flatten().map(|(_, d)| d));
        return Ok(out);
    }
    let mut out: Vec<Option<Decision>> = vec![None; inputs.accounts.len()];
    for (i, d) in decided.into_iter().flatten() {
        out[i] = Some(d);
    }
    Ok(out.into_iter().map(|d| d.expect("every account decided")).collect())
}

/// Why an asset may not be bought today: an account of its household sells
/// it at a loss in a taxable account today.
const SOLD_TODAY: &str = "sold at a loss in the household today";

/// Why a block no loss sale needs stays: it was lifted once, and while the
/// asset could be bought, an account of the household sold it at a loss.
const KEPT: &str = "kept: while it could be bought today, a household account sold it at a loss";

fn decide_household(ctx: &engine::Context<'_>, household: &str, members: &[usize]) -> Result<Vec<(usize, Decision)>> {
    use std::collections::BTreeMap;
    // Accounts whose IPS targets the household decide together, per IPS.
    let mut pools: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut alone = Vec::new();
    for &i in members {
        let account = &ctx.inputs.accounts[i];
        match ctx.ips.get(account.ips.as_str()) {
            Some(ips) if ips.household_mode => pools.entry(account.ips.as_str()).or_default().push(i),
            _ => alone.push(i),
        }
    }
    // Rounds. A purchase of an asset that an account of the household sells
    // at a loss blocks that asset, and every unit that looked at an asset
    // whose block (or its reason) changed since it decided decides again,
    // so the decisions that come out saw the final blocks on everything
    // they looked at (but see `stale` for a unit's own loss sales). A block
    // no loss sale needs any more is lifted, once: if the asset comes back,
    // its block stays and says so.
    //
    // In the first round the units decide one after another, and each loss
    // sale blocks its asset for the units after it at once; units with a
    // taxable account (the only ones whose sales realise losses) go first.
    // Later rounds then only revisit purchases made before a loss sale was
    // known, instead of nearly every account of a household deciding twice.
    //
    // Every later round adds a block or lifts one (at most three times per
    // asset), or only re-decides units after such a change; trades depend
    // only on which assets are blocked, so a reason follows its block
    // within a round. So this ends.
    let mut units: Vec<Vec<usize>> = alone.iter().map(|&i| vec![i]).chain(pools.into_values()).collect();
    units.sort_by_key(|unit| !unit.iter().any(|&i| ctx.inputs.accounts[i].kind.realises_tax()));
    let untaxed: Vec<u64> =
        members.iter().map(|&i| &ctx.inputs.accounts[i]).filter(|a| !a.kind.realises_tax()).map(|a| a.id).collect();
    // Sets of assets are flags by the asset's position (positions are in
    // id order, as a set of ids iterates).
    let n = ctx.assets.len();
    let at = |asset: &str| ctx.assets.position(asset).ok_or_else(|| Error::Internal(format!("a trade in the unknown asset {asset}")));
    // The assets a unit's decisions sell at a loss in a taxable account.
    let loss_sales = |decisions: &[Decision]| -> Result<Vec<bool>> {
        let mut sold = vec![false; n];
        for t in decisions
            .iter()
            .filter(|d| !untaxed.contains(&d.account))
            .flat_map(|d| d.trades.iter().chain(&d.queued))
            .filter(|t| t.side == types::Side::Sell && t.lots.iter().any(|u| u.gain < rust_decimal::Decimal::ZERO))
        {
            sold[at(&t.asset)?] = true;
        }
        Ok(sold)
    };
    let base = engine::WashState::from_recent(ctx, household, &untaxed);
    // Today's blocks, with why (see `SOLD_TODAY` and `KEPT`).
    let mut added: Vec<Option<&'static str>> = vec![None; n];
    let mut lifted = vec![false; n];
    // A unit's last decisions and what they rest on.
    #[derive(Clone)]
    struct Decided {
        decisions: Vec<Decision>,
        /// The assets (by position) whose blocks they looked at.
        consulted: Vec<bool>,
        /// The wash-sale state they read.
        seen: std::rc::Rc<engine::WashState>,
        /// The assets they sell at a loss in a taxable account.
        sold: Vec<bool>,
        /// An account deciding alone (not a pooled household).
        alone: bool,
    }
    let mut decided: Vec<Option<Decided>> = vec![None; units.len()];
    // Accounts deciding alone, valued once for every round.
    let prepared: Vec<Option<engine::Prepared<'_>>> = units
        .iter()
        .map(|unit| match unit.as_slice() {
            [i] => engine::prepare(ctx, &ctx.inputs.accounts[*i]).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    let blocked = |added: &[Option<&'static str>]| {
        let mut wash = base.clone();
        for (at, why) in added.iter().enumerate() {
            if let Some(why) = why {
                wash.block(at, engine::Why::Today(why));
            }
        }
        std::rc::Rc::new(wash)
    };
    // An account deciding alone does not decide again only for a block its
    // own loss sale made: no decision buys what it sells (a sale skips what
    // is being bought, and a harvest's replacement is cut before its sleeve
    // sells it), so that block cannot turn it into a wash sale; seeing it
    // could only change which of its own losses it takes. In the
    // benchmark's book this spares about a sixth of the decisions. A pooled
    // household's decision buys back in one account what it sells in
    // another, so it gets no such exemption.
    let stale = |slot: &Option<Decided>, wash: &engine::WashState| match slot {
        None => true,
        // An asset neither state blocks is the same in both.
        Some(d) => d.consulted.iter().enumerate().any(|(at, &looked)| {
            looked && d.seen.loss_sold(at) != wash.loss_sold(at) && !(d.alone && d.sold[at])
        }),
    };
    // The state a round reads: made at the end of the round before (the
    // blocks do not change in between).
    let mut wash = blocked(&added);
    for round in 0..=8 * ctx.assets.len() + 4 {
        for ((unit, slot), prepared) in units.iter().zip(decided.iter_mut()).zip(&prepared) {
            if !stale(slot, &wash) {
                continue;
            }
            let consulted = std::cell::RefCell::new(vec![false; ctx.assets.len()]);
            let decisions = if let Some(prepared) = prepared {
                vec![engine::decide_traced(ctx, prepared, &wash, &consulted)?]
            } else {
                let accounts: Vec<&types::Account> = unit.iter().map(|&i| &ctx.inputs.accounts[i]).collect();
                engine::decide_pooled(ctx, &accounts, &wash, &consulted)?
            };
            let seen = wash.clone();
            let sold = loss_sales(&decisions)?;
            if round == 0 {
                let mut more = false;
                for (why, _) in added.iter_mut().zip(&sold).filter(|(why, sold)| **sold && why.is_none()) {
                    *why = Some(SOLD_TODAY);
                    more = true;
                }
                if more {
                    wash = blocked(&added);
                }
            }
            *slot = Some(Decided { decisions, consulted: consulted.into_inner(), seen, sold, alone: prepared.is_some() });
        }
        let mut loss_sold = vec![false; n];
        for d in decided.iter().flatten() {
            loss_sold.iter_mut().zip(&d.sold).for_each(|(all, sold)| *all |= *sold);
        }
        // New blocks: purchases of assets sold at a loss (a purchase of one
        // blocked already comes from a decision that decides again anyway).
        let mut changed = false;
        for t in decided
            .iter()
            .flatten()
            .flat_map(|d| d.decisions.iter())
            .flat_map(|d| d.trades.iter().chain(&d.queued))
            .filter(|t| t.side == types::Side::Buy)
        {
            let at = at(&t.asset)?;
            if loss_sold[at] && added[at].is_none() {
                added[at] = Some(SOLD_TODAY);
                changed = true;
            }
        }
        if !changed {
            for at in 0..n {
                if added[at].is_some() && !loss_sold[at] && !lifted[at] {
                    added[at] = None;
                    lifted[at] = true;
                    changed = true;
                }
            }
        }
        let mut reworded = false;
        for (at, why) in added.iter_mut().enumerate() {
            if let Some(why) = why {
                let now = if loss_sold[at] || !lifted[at] { SOLD_TODAY } else { KEPT };
                reworded |= *why != now;
                *why = now;
            }
        }
        // The state is made again only if its blocks changed since it was
        // made (in the first round, as each loss sale came; else at the end
        // of the round before): most households' rounds change none.
        if changed || reworded {
            wash = blocked(&added);
        }
        let settled = !changed && !decided.iter().any(|slot| stale(slot, &wash));
        if settled {
            let mut out = Vec::with_capacity(members.len());
            for ((unit, slot), prepared) in units.iter().zip(decided).zip(&prepared) {
                let Decided { decisions, seen, .. } = slot.expect("every unit decided");
                let lot_assets = match prepared {
                    Some(Ok(frame)) => Some(frame.lot_assets()),
                    _ => None,
                };
                for (&i, mut d) in unit.iter().zip(decisions) {
                    // Halted decisions carry theirs already.
                    if d.input_digest.is_empty() {
                        d.input_digest = engine::input_digest(ctx, &ctx.inputs.accounts[i], lot_assets, &seen);
                    }
                    out.push((i, d));
                }
            }
            return Ok(out);
        }
    }
    Err(Error::Internal(format!("household {household}: wash-sale blocking did not settle")))
}
