//! Deciding one account: value it, find its drift and triggers, size the
//! trades (cash flows first), check them, pick the lots, and explain it all.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use time::Date;

use crate::{
    decision::{
        Check, Decision, Drift, Halt, IpsRef, LotUse, Reason, Status, TaxSummary, Term, Trade, Trigger, TriggerKind,
    },
    keyed::Keyed,
    lots,
    text::{text, Num, Piece::{Day, Fixed, Int, Signed, Uint, D, S}},
    types::{
        Account, AccountKind, Asset, Band, FlowKind, Frequency, Inputs, Ips, Model, Side, Sizing,
        TriggerMode,
    },
    Error, Result,
};

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// Per-asset market facts for this run, after the circuit breakers.
#[derive(Debug, Clone)]
pub(crate) struct Priced {
    pub price: Decimal,
    /// Why this asset may not trade, if it may not.
    pub halt: Option<String>,
}

/// What the whole run shares: prices checked once, assets by id.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub inputs: &'a Inputs,
    pub today: Date,
    pub assets: Keyed<'a, &'a Asset>,
    pub models: Keyed<'a, &'a Model>,
    pub ips: Keyed<'a, &'a Ips>,
    pub prices: Keyed<'a, Priced>,
    /// Market-wide pause of automatic trading, with the reason.
    pub pause: Option<String>,
    /// Per asset (by position), the assets that may fill its sleeve in
    /// order of preference: itself, then its substitutes in id order (as
    /// positions).
    pub substitutes: Vec<Vec<usize>>,
    /// Per asset (by position), the position of its quote in `prices`.
    pub quoted: Vec<Option<usize>>,
    /// Per asset (by position), its substitute group as a number (groups
    /// in id order).
    pub group_ids: Vec<Option<usize>>,
    /// Recent trades by household, read once (not once per household).
    pub recent: BTreeMap<&'a str, Vec<&'a crate::types::PastTrade>>,
    /// Per IPS id, what all its accounts share.
    pub plans: Keyed<'a, Plan<'a>>,
    /// The plans' targets and bands in percent as decisions print them
    /// (`{:.2}` of 100 times the weight), by the weight's representation.
    pub percents: Vec<([u8; 16], String)>,
}

/// What every account under one IPS shares, made once per run: the assets
/// the IPS excludes, the model's targets in id order with their bands (an
/// excluded asset's weight spread pro rata over the rest), and the digest
/// of what they all read alike.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub excluded: BTreeSet<&'a str>,
    /// Asset, its position, target weight, band.
    pub targets: Vec<(&'a str, usize, Decimal, Decimal)>,
    /// The targets' band edges (see [`edges`]), in the same order.
    pub edges: Vec<(Decimal, Decimal)>,
    /// Per asset (by position): whether the model targets it.
    pub in_model: Vec<bool>,
    /// Per asset (by position): why the IPS's restrictions forbid buying
    /// it, if they do (the no-buy list, then exclusion, then the allowed list).
    pub restricted: Vec<Option<Block<'static>>>,
    /// See [`shared_digest`].
    pub digest: [u8; 32],
}

impl<'a> Plan<'a> {
    fn of(inputs: &Inputs, assets: &Keyed<'a, &'a Asset>, ips: &'a Ips, model: &'a Model) -> Self {
        let excluded: BTreeSet<&str> = ips.restrictions.excluded.iter().map(String::as_str).collect();
        let kept: Decimal = model.targets.iter().filter(|(a, _)| !excluded.contains(a.as_str())).map(|(_, w)| *w).sum();
        let invested: Decimal = model.targets.values().copied().sum();
        let scale = if positive(kept) { invested / kept } else { Decimal::ZERO };
        let targets: Vec<_> = model
            .targets
            .iter()
            .map(|(asset, weight)| {
                let target = if excluded.contains(asset.as_str()) { Decimal::ZERO } else { *weight * scale };
                let at = assets.position(asset).expect("models name known assets");
                (asset.as_str(), at, target, band_width(model, ips, asset, target))
            })
            .collect();
        let in_model = (0..assets.len()).map(|at| model.targets.contains_key(assets.key(at))).collect();
        let r = &ips.restrictions;
        let restricted = (0..assets.len())
            .map(|at| {
                let asset = assets.key(at);
                if r.no_buy.iter().any(|a| a == asset) {
                    Some(Block::NoBuy)
                } else if excluded.contains(asset) {
                    Some(Block::Excluded)
                } else if r.allowed_only.as_ref().is_some_and(|a| !a.iter().any(|x| x == asset)) {
                    Some(Block::NotAllowed)
                } else {
                    None
                }
            })
            .collect();
        let edges = targets.iter().map(|&(_, _, target, band)| edges(target, band)).collect();
        Self { excluded, targets, edges, in_model, restricted, digest: shared_digest(inputs, ips, model) }
    }
}

/// A band's edges, `target - band` and `target + band`, at 28 places:
/// weights (quotients) mostly carry 28, and comparing decimals of one scale
/// needs no rescaling, so `low <= w <= high` costs some 150 instructions a
/// sleeve less than `|w - target| <= band` (the same test: both are exact
/// at weights' sizes; a property test below checks it).
fn edges(target: Decimal, band: Decimal) -> (Decimal, Decimal) {
    let at_28 = |mut d: Decimal| {
        d.rescale(Decimal::MAX_SCALE);
        d
    };
    (at_28(target - band), at_28(target + band))
}

/// A weight in percent as decisions print it: `{:.2}` of 100 times it.
fn percent(weight: Decimal) -> String {
    text(&[Fixed(weight * HUNDRED, 2)])
}

impl<'a> Context<'a> {
    /// [`percent`] of a weight, written once per run for the plans' targets and bands.
    fn percent(&self, weight: Decimal) -> std::borrow::Cow<'_, str> {
        let key = weight.serialize();
        match self.percents.iter().find(|(k, _)| *k == key) {
            Some((_, text)) => std::borrow::Cow::Borrowed(text),
            None => std::borrow::Cow::Owned(percent(weight)),
        }
    }

    /// The quote of the asset at position `at`, if it has one.
    pub fn price_at(&self, at: usize) -> Option<&Priced> {
        self.quoted[at].map(|q| self.prices.at(q))
    }

    /// How much worse than its estimate a fill may come
    /// (`limits.price_margin`; none given: 0).
    pub fn margin(&self) -> Decimal {
        self.inputs.limits.price_margin.unwrap_or_default()
    }

    /// Why the asset at position `at` may not trade, if it may not.
    pub fn halt_at(&self, at: usize) -> Option<&str> {
        match self.price_at(at) {
            None => Some("no price"),
            Some(p) => p.halt.as_deref(),
        }
    }

    pub fn new(inputs: &'a Inputs) -> Result<Self> {
        let mut assets = BTreeMap::new();
        for a in &inputs.assets {
            if !positive(a.quantum) {
                return Err(Error::Invalid { what: format!("asset {}", a.id), field: "quantum", value: a.quantum.to_string() });
            }
            if assets.insert(a.id.as_str(), a).is_some() {
                return Err(Error::Duplicate { kind: "asset", id: a.id.clone() });
            }
        }
        let mut models = BTreeMap::new();
        for m in &inputs.models {
            validate_model(m, &assets)?;
            if models.insert(m.id.as_str(), m).is_some() {
                return Err(Error::Duplicate { kind: "model", id: m.id.clone() });
            }
        }
        let mut ips = BTreeMap::new();
        for i in &inputs.ips {
            if !models.contains_key(i.model.as_str()) {
                return Err(Error::Unknown { kind: "model", id: i.model.clone(), referrer: format!("IPS {}", i.id) });
            }
            if ips.insert(i.id.as_str(), i).is_some() {
                return Err(Error::Duplicate { kind: "IPS", id: i.id.clone() });
            }
        }

        let limits = &inputs.limits;
        if let Some(m) = limits.price_margin.filter(|m| negative(*m) || *m >= Decimal::ONE) {
            return Err(Error::Invalid { what: "limits".into(), field: "price_margin", value: m.to_string() });
        }
        let mut prices = BTreeMap::new();
        let mut pause = None;
        for (id, q) in &inputs.market.quotes {
            let p = &q.primary;
            if !positive(p.price) {
                return Err(Error::Invalid { what: format!("quote {id}"), field: "price", value: p.price.to_string() });
            }
            let age = (inputs.now - p.time).whole_seconds();
            let mut halt = None;
            if age > limits.max_price_age_s {
                halt = Some(format!("price from {} is {age} s old (max {} s)", p.source, limits.max_price_age_s));
            } else if let Some(s) = &q.secondary {
                let gap = (s.price - p.price).abs() / p.price;
                let s_age = (inputs.now - s.time).whole_seconds();
                if s_age <= limits.max_price_age_s && gap > limits.source_tolerance {
                    halt = Some(format!(
                        "{} says {} and {} says {}: {:.2} % apart (max {} %)",
                        p.source,
                        p.price,
                        s.source,
                        s.price,
                        gap * HUNDRED,
                        limits.source_tolerance * HUNDRED
                    ));
                }
            }
            if pause.is_none()
                && let Some(prev) = q.previous_close.filter(|c| positive(*c)) {
                    let moved = (p.price - prev).abs() / prev;
                    if moved > limits.max_daily_move {
                        pause = Some(format!(
                            "{id} moved {:.2} % since the previous close (max {} %)",
                            moved * HUNDRED,
                            limits.max_daily_move * HUNDRED
                        ));
                    }
                }
            prices.insert(id.as_str(), Priced { price: p.price, halt });
        }
        if let (Some(vix), Some(max)) = (inputs.market.volatility_index, limits.volatility_threshold)
            && vix > max {
                pause = Some(format!("volatility index {vix} above {max}"));
            }
        let recent = crate::keyed::group(&inputs.recent_trades, |t| t.household.as_str()).into_iter().collect();
        let (assets, prices) = (Keyed::from_sorted(assets), Keyed::from_sorted(prices));
        let groups: Vec<Option<&str>> = assets.values().map(|a| a.substitute_group.as_deref()).collect();
        let substitutes = (0..assets.len())
            .map(|a| {
                let group = groups[a];
                std::iter::once(a).chain((0..assets.len()).filter(|&b| group.is_some() && groups[b] == group && b != a)).collect()
            })
            .collect();
        let quoted = (0..assets.len()).map(|a| prices.position(assets.key(a))).collect();
        let names: BTreeSet<&str> = groups.iter().flatten().copied().collect();
        let group_ids = groups.iter().map(|g| g.and_then(|g| names.iter().position(|n| *n == g))).collect();
        let plans = Keyed::from_sorted(ips.iter().map(|(id, i)| (*id, Plan::of(inputs, &assets, i, models[i.model.as_str()]))));
        let (models, ips) = (Keyed::from_sorted(models), Keyed::from_sorted(ips));
        let mut percents: Vec<([u8; 16], String)> = Vec::new();
        for &(_, _, target, band) in plans.values().flat_map(|p| &p.targets) {
            for w in [target, band] {
                if !percents.iter().any(|(key, _)| *key == w.serialize()) {
                    percents.push((w.serialize(), percent(w)));
                }
            }
        }
        Ok(Self { inputs, today: inputs.now.date(), assets, models, ips, prices, pause, substitutes, quoted, group_ids, recent, plans, percents })
    }
}

fn validate_model(m: &Model, assets: &BTreeMap<&str, &Asset>) -> Result<()> {
    let mut sum = m.cash_target;
    for (asset, w) in &m.targets {
        if !assets.contains_key(asset.as_str()) {
            return Err(Error::Unknown { kind: "asset", id: asset.clone(), referrer: format!("model {}", m.id) });
        }
        if negative(*w) {
            return Err(Error::Invalid { what: format!("model {}", m.id), field: "targets", value: w.to_string() });
        }
        sum += w;
    }
    if (sum - Decimal::ONE).abs() > Decimal::new(1, 6) {
        return Err(Error::Invalid {
            what: format!("model {}", m.id),
            field: "targets + cash_target",
            value: format!("{sum} (must sum to 1)"),
        });
    }
    Ok(())
}

/// Half-width of the band around `target`, as a weight.
pub fn band_width(model: &Model, ips: &Ips, asset: &str, target: Decimal) -> Decimal {
    let band: Band = model.overrides.get(asset).copied().or(ips.band).unwrap_or(model.band);
    let abs = band.absolute_pp.map(|pp| pp / HUNDRED);
    let rel = band.relative_pct.map(|pct| target * pct / HUNDRED);
    let mut w = match (abs, rel) {
        (Some(a), Some(r)) => a.min(r),
        (Some(a), None) => a,
        (None, Some(r)) => r,
        (None, None) => Decimal::ZERO,
    };
    if let Some(rule) = &model.small_targets
        && target < rule.below_weight {
            w = w.max(rule.min_pp / HUNDRED);
        }
    w
}

/// Whether a calendar rebalance is due: never rebalanced, or a new month,
/// quarter or year began since the last one.
pub fn calendar_due(frequency: Frequency, last: Option<Date>, today: Date) -> bool {
    let Some(last) = last else { return true };
    let quarter = |d: Date| (u8::from(d.month()) - 1) / 3;
    match frequency {
        Frequency::Monthly => (last.year(), last.month()) != (today.year(), today.month()),
        Frequency::Quarterly => (last.year(), quarter(last)) != (today.year(), quarter(today)),
        Frequency::Annual => last.year() != today.year(),
    }
}

/// Rounds a quantity down to a multiple of `quantum`.
pub fn round_down(quantity: Decimal, quantum: Decimal) -> Decimal {
    if !positive(quantity) {
        return Decimal::ZERO;
    }
    // A quantum of one unit of some decimal place (0.000001, 1) cuts the
    // quantity at that place: no division.
    if quantum.mantissa() == 1 {
        return quantity.trunc_with_scale(quantum.scale()).normalize();
    }
    ((quantity / quantum).floor() * quantum).normalize()
}

/// Days around a loss sale in which a purchase of the same asset makes a wash sale.
pub const WASH_SALE_DAYS: i64 = 30;

/// What a household has done recently that limits what its accounts may
/// do, per asset by position (the default state, with no positions, holds
/// nothing).
#[derive(Debug, Clone, Default)]
pub(crate) struct WashState {
    /// Sold at a loss within the window (or in this run): not to be bought, with why.
    loss_sold: Vec<Option<Why>>,
    /// Bought within the window before today: not to be harvested, with the
    /// latest date.
    bought: Vec<Option<Date>>,
}

/// Why an asset is blocked for purchase as a wash sale; written out only
/// where a check or the input digest prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// A recent trade of the household sold it at a loss.
    Recent { account: u64, on: Date },
    /// A sale of today's run did (or once did: see `lib.rs`).
    Today(&'static str),
}

impl Why {
    /// Its text, appended to `out` without a formatter.
    fn push(&self, out: &mut Vec<u8>) {
        match *self {
            Why::Recent { account, on } => crate::text::push(
                out,
                &[S("sold at a loss in account "), Uint(account), S(" on "), Day(on), S(" (wash-sale window "), Int(WASH_SALE_DAYS), S(" days)")],
            ),
            Why::Today(why) => out.extend_from_slice(why.as_bytes()),
        }
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = Vec::with_capacity(80);
        self.push(&mut text);
        f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?)
    }
}

impl WashState {
    /// The household's recent trades within the wash-sale window. A sale in
    /// one of `untaxed` (the household's tax-deferred and tax-free accounts)
    /// realises no loss for tax, so it starts no window; the first such
    /// sale of an asset is the one a block names. A trade of an asset the
    /// inputs do not define limits nothing: no decision can trade it.
    pub fn from_recent(ctx: &Context<'_>, household: &str, untaxed: &[u64]) -> Self {
        let mut state = Self { loss_sold: vec![None; ctx.assets.len()], bought: vec![None; ctx.assets.len()] };
        let since = ctx.today - time::Duration::days(WASH_SALE_DAYS);
        let trades = ctx.recent.get(household).map_or(&[][..], Vec::as_slice);
        // A household's trades of one asset often follow each other: the
        // last one's position is checked first.
        let mut last: Option<(&str, usize)> = None;
        for &t in trades.iter().filter(|t| t.date >= since && t.date <= ctx.today) {
            let at = match last {
                Some((asset, at)) if crate::keyed::same(asset, &t.asset) => at,
                _ => match ctx.assets.position(&t.asset) {
                    Some(at) => at,
                    None => continue,
                },
            };
            last = Some((&t.asset, at));
            match t.side {
                Side::Buy => {
                    let d = state.bought[at].get_or_insert(t.date);
                    *d = (*d).max(t.date);
                }
                Side::Sell if positive(t.realised_loss) && !untaxed.contains(&t.account) => {
                    state.loss_sold[at].get_or_insert(Why::Recent { account: t.account, on: t.date });
                }
                Side::Sell => {}
            }
        }
        state
    }

    /// Why the asset at position `at` is blocked for purchase, if it is.
    pub fn loss_sold(&self, at: usize) -> Option<Why> {
        self.loss_sold.get(at).copied().flatten()
    }

    /// When the household last bought the asset at position `at` within
    /// the window, if it did.
    pub fn bought(&self, at: usize) -> Option<Date> {
        self.bought.get(at).copied().flatten()
    }

    /// Blocks the asset at position `at` for purchase, for `why`, unless a
    /// block holds it already.
    pub fn block(&mut self, at: usize, why: Why) {
        self.loss_sold[at].get_or_insert(why);
    }
}

/// Why an asset may not be bought in an account.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Block<'x> {
    NoPrice,
    Halted(&'x str),
    NoBuy,
    Excluded,
    NotAllowed,
    WashSale(Why),
    /// This decision harvests it: sold at a loss in `account` on `on`.
    Harvested { account: u64, on: Date },
}

impl Block<'_> {
    /// Its text, appended to `out` without a formatter.
    fn push(&self, out: &mut Vec<u8>) {
        let words: &str = match *self {
            Block::NoPrice => "no price",
            Block::Halted(why) => return crate::text::push(out, &[S("halted: "), S(why)]),
            Block::NoBuy => "on the IPS no-buy list",
            Block::Excluded => "excluded by the IPS",
            Block::NotAllowed => "not on the IPS allowed list",
            Block::WashSale(why) => {
                out.extend_from_slice(b"wash sale: ");
                return why.push(out);
            }
            Block::Harvested { account, on } => {
                return crate::text::push(out, &[S("wash sale: harvested at a loss in account "), Uint(account), S(" on "), Day(on)]);
            }
        };
        out.extend_from_slice(words.as_bytes());
    }
}

/// `head`, then blocked candidates as a check lists them: `asset: why; asset: why`.
fn blocks(head: &[crate::text::Piece<'_>], blocked: &[(&str, Block<'_>)]) -> String {
    let mut out = Vec::with_capacity(96 * blocked.len() + 32);
    crate::text::push(&mut out, head);
    for (i, (asset, why)) in blocked.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"; ");
        }
        crate::text::push(&mut out, &[S(asset), S(": ")]);
        why.push(&mut out);
    }
    crate::text::line(out)
}

/// What decides whether an account may buy an asset.
struct Buyer<'x> {
    ctx: &'x Context<'x>,
    plan: &'x Plan<'x>,
    wash: &'x WashState,
    account: u64,
}

impl<'x> Buyer<'x> {
    /// Why the asset at position `at` may not be bought, given the assets
    /// (by position) this decision harvested.
    fn block(&self, at: usize, harvested: &[usize]) -> Option<Block<'x>> {
        let Some(priced) = self.ctx.price_at(at) else { return Some(Block::NoPrice) };
        if let Some(h) = &priced.halt {
            return Some(Block::Halted(h));
        }
        if let Some(why) = self.plan.restricted[at] {
            return Some(why);
        }
        if harvested.contains(&at) {
            return Some(Block::Harvested { account: self.account, on: self.ctx.today });
        }
        self.wash.loss_sold(at).map(Block::WashSale)
    }
}

/// One asset held (or buyable) inside a sleeve.
#[derive(Debug, Clone, Copy)]
struct Member<'a> {
    asset: &'a str,
    /// The asset's position in `Context::assets`.
    ix: usize,
    /// What the account holds before this decision (`held` changes with a harvest).
    start: Decimal,
    held: Decimal,
    price: Decimal,
    /// It may not trade (see `Context::halt_at` for why).
    halted: bool,
    /// Of `held`, what this decision's harvest buys: not sold again by it.
    harvest_bought: Decimal,
}

/// A target of the model and the assets that fill it: the model's asset and
/// any substitutes of its group the account holds (a harvest swaps one for
/// the other without changing exposure). Held assets outside the model form
/// sleeves of their own with a zero target.
#[derive(Debug, Clone)]
struct Sleeve<'a> {
    id: &'a str,
    /// The candidates that may fill it, as positions (see `Context::substitutes`).
    candidates: &'a [usize],
    members: Vec<Member<'a>>,
    target: Decimal,
    band: Decimal,
    excluded: bool,
    /// Something of it may be bought today.
    buyable: bool,
    /// Something of it may be sold today.
    sellable: bool,
    /// Signed money to trade: positive buys.
    delta: Decimal,
    /// Weight before any trade.
    before: Decimal,
    /// What the members hold is worth: kept by `revalue` when they change.
    worth: Decimal,
    /// A harvest changed what it holds since `before` was weighed.
    moved: bool,
    /// The band's edges (see [`edges`]), and whether `before` is outside them.
    low: Decimal,
    high: Decimal,
    out_of_band: bool,
}

impl Sleeve<'_> {
    fn value(&self) -> Decimal {
        self.worth
    }

    /// Values the members' holdings again, after a harvest changed them.
    fn revalue(&mut self) {
        self.worth = self.members.iter().map(|m| m.held * m.price).sum();
    }
}

/// An account valued and cut into sleeves, ready to decide.
pub(crate) struct Frame<'a> {
    account: &'a Account,
    ips: &'a Ips,
    model: &'a Model,
    plan: &'a Plan<'a>,
    /// What the account holds of each asset, by position.
    held: Vec<Decimal>,
    sleeves: Vec<Sleeve<'a>>,
    value: Decimal,
    withdrawals: Decimal,
    /// What the targets apply to: value less withdrawals and the cash buffer.
    base: Decimal,
    halts: Vec<Halt>,
    /// The lots' positions in `account.lots` by asset: those of the asset
    /// at position `i` are `by_asset[starts[i]..starts[i + 1]]`, in order.
    by_asset: Vec<u32>,
    starts: Vec<u32>,
    /// Each lot's asset, as its position, in the order of `account.lots`.
    lot_at: Vec<usize>,
    /// Each lot's loss, in the order of `account.lots`, if it is large
    /// enough to harvest (see [`harvestable`]); empty if the account does
    /// not harvest. Worked out once for every round of the household.
    losses: Vec<Option<Decimal>>,
}

impl Frame<'_> {
    /// The positions in `account.lots` of the lots of the asset at `ix`.
    fn lots_of(&self, ix: usize) -> impl Iterator<Item = usize> + '_ {
        let (from, to) = (self.starts[ix] as usize, self.starts[ix + 1] as usize);
        self.by_asset[from..to].iter().map(|&i| i as usize)
    }

    /// Each lot's asset, as its position, in the order of the account's lots.
    pub(crate) fn lot_assets(&self) -> &[usize] {
        &self.lot_at
    }
}

/// The loss of `lot` at `price`, if it is large enough to harvest: at
/// least `min_loss`, and at least `min_loss_pct` of its cost (tested per
/// unit, the loss's share of the cost being that of one unit).
fn harvestable(lot: &crate::types::Lot, price: Decimal, h: &crate::types::Harvesting) -> Option<Decimal> {
    if !positive(lot.quantity) || lot.cost <= price {
        return None;
    }
    let per_unit = lot.cost - price;
    if per_unit < h.min_loss_pct * lot.cost {
        return None;
    }
    let loss = per_unit * lot.quantity;
    (positive(loss) && loss >= h.min_loss).then_some(loss)
}

fn member<'a>(ctx: &Context<'a>, held: &[Decimal], ix: usize) -> Member<'a> {
    Member {
        asset: ctx.assets.key(ix),
        ix,
        held: held[ix],
        start: held[ix],
        price: ctx.price_at(ix).map_or(Decimal::ZERO, |p| p.price),
        halted: ctx.halt_at(ix).is_some(),
        harvest_bought: Decimal::ZERO,
    }
}

/// What an account is worth at today's prices (unpriced holdings count nothing).
fn worth(ctx: &Context<'_>, account: &Account) -> Decimal {
    account.cash
        + account.lots.iter().map(|l| l.quantity * ctx.prices.get(l.asset.as_str()).map_or(Decimal::ZERO, |p| p.price)).sum::<Decimal>()
}

/// Pending withdrawals of an account.
fn withdrawal_of(account: &Account) -> Decimal {
    account.flows.iter().filter(|f| f.kind == FlowKind::Withdrawal).map(|f| f.amount).sum()
}

fn group_of<'a>(ctx: &Context<'a>, asset: &str) -> Option<&'a str> {
    ctx.assets.get(asset).and_then(|a| a.substitute_group.as_deref())
}

/// What is left of each lot of an account as its sales use them, by the
/// lot's position; written out only once a sale uses a lot (most accounts
/// sell nothing).
pub(crate) struct Left<'a> {
    lots: &'a [crate::types::Lot],
    left: Vec<Decimal>,
}

impl<'a> Left<'a> {
    fn new(lots: &'a [crate::types::Lot]) -> Self {
        Self { lots, left: Vec::new() }
    }

    fn get(&self, i: usize) -> Decimal {
        self.left.get(i).copied().unwrap_or(self.lots[i].quantity)
    }

    /// A sale uses `quantity` of the lot.
    fn take(&mut self, i: usize, quantity: Decimal) {
        if self.left.is_empty() {
            self.left = self.lots.iter().map(|l| l.quantity).collect();
        }
        self.left[i] -= quantity;
    }
}

impl<'a> lots::Remaining<'a, usize> for Left<'a> {
    fn lot(&self, i: usize) -> (&'a crate::types::Lot, Decimal) {
        (&self.lots[i], self.get(i))
    }

    fn take(&mut self, i: usize, quantity: Decimal) {
        Left::take(self, i, quantity);
    }
}

/// The cash `trades` take and bring with fills worse than their estimates
/// by `margin`: (purchases × (1 + margin), sales × (1 − margin)).
fn at_margin(trades: &[Trade], margin: Decimal) -> (Decimal, Decimal) {
    let (buys, sells) = trades.iter().fold((Decimal::ZERO, Decimal::ZERO), |(b, s), t| match t.side {
        Side::Buy => (b + t.value, s),
        Side::Sell => (b, s + t.value),
    });
    (buys * (Decimal::ONE + margin), sells * (Decimal::ONE - margin))
}

/// `d > 0` by its sign and zero tests, without a comparison's call (some
/// forty instructions each, and a decision makes dozens).
#[inline]
pub(crate) fn positive(d: Decimal) -> bool {
    !d.is_sign_negative() && !d.is_zero()
}

/// `d < 0`, likewise.
#[inline]
pub(crate) fn negative(d: Decimal) -> bool {
    d.is_sign_negative() && !d.is_zero()
}

/// An account ready to decide, or the decision that it cannot be.
pub(crate) type Prepared<'a> = std::result::Result<Frame<'a>, Decision>;

/// Values the account and cuts it into sleeves; a held asset without a
/// price halts the account (the `Err` side carries that decision). What
/// comes out does not depend on the household's wash-sale state, so a
/// household prepares each account once for all its rounds.
pub(crate) fn prepare<'a>(ctx: &'a Context<'a>, account: &'a Account) -> Result<Prepared<'a>> {
    let ips = *ctx.ips.get(account.ips.as_str()).ok_or_else(|| Error::Unknown {
        kind: "IPS",
        id: account.ips.clone(),
        referrer: format!("account {}", account.id),
    })?;
    let model = ctx.models[ips.model.as_str()];
    let plan = &ctx.plans[account.ips.as_str()];
    let mut halts: Vec<Halt> = Vec::new();

    // Quantities by asset position: one look-up per lot.
    let mut held = vec![Decimal::ZERO; ctx.assets.len()];
    let mut lot_ix = Vec::with_capacity(account.lots.len());
    // Lots of one asset usually follow each other: the last one's position
    // is checked first.
    let mut last: Option<(&str, usize)> = None;
    for lot in &account.lots {
        let known = match last {
            Some((asset, ix)) if crate::keyed::same(asset, &lot.asset) => Some(ix),
            _ => ctx.assets.position(&lot.asset),
        };
        let Some(ix) = known else {
            return Err(Error::Unknown { kind: "asset", id: lot.asset.clone(), referrer: format!("lot {} of account {}", lot.id, account.id) });
        };
        last = Some((lot.asset.as_str(), ix));
        if negative(lot.quantity) {
            return Err(Error::Invalid { what: format!("lot {} of account {}", lot.id, account.id), field: "quantity", value: lot.quantity.to_string() });
        }
        held[ix] += lot.quantity;
        lot_ix.push(ix);
    }
    for (ix, q) in held.iter().enumerate() {
        if ctx.quoted[ix].is_none() && positive(*q) {
            // Without a price the account cannot be valued: decide nothing.
            halts.push(Halt { asset: ctx.assets.key(ix).to_string(), reason: "no price".into() });
            return Ok(Err(halted(ctx, account, ips, model, halts)));
        }
    }
    if negative(account.cash) {
        return Err(Error::Invalid { what: format!("account {}", account.id), field: "cash", value: account.cash.to_string() });
    }

    // Sleeves: the plan's targets, then held assets outside the model.
    let excluded = &plan.excluded;
    let mut sleeves: Vec<Sleeve> = Vec::with_capacity(plan.targets.len() + 2);
    let mut placed = vec![false; ctx.assets.len()];
    // Held assets outside the model: they join the sleeve of their group's
    // target, or form sleeves of their own.
    let outside: Vec<usize> = (0..held.len()).filter(|&h| !plan.in_model[h] && positive(held[h])).collect();
    for (&(asset, at, target, band), &(low, high)) in plan.targets.iter().zip(&plan.edges) {
        // Room for every asset of its group (held outside the model, or
        // bought by a harvest) without regrowing.
        let mut members = Vec::with_capacity(ctx.substitutes[at].len());
        members.push(member(ctx, &held, at));
        placed[at] = true;
        if let Some(group) = ctx.group_ids[at] {
            for &h in &outside {
                if ctx.group_ids[h] == Some(group) && !placed[h] {
                    placed[h] = true;
                    members.push(member(ctx, &held, h));
                }
            }
        }
        sleeves.push(Sleeve {
            id: asset,
            candidates: &ctx.substitutes[at],
            members,
            target,
            band,
            excluded: excluded.contains(asset),
            buyable: true,
            sellable: true,
            delta: Decimal::ZERO,
            before: Decimal::ZERO,
            worth: Decimal::ZERO,
            moved: false,
            low,
            high,
            out_of_band: false,
        });
    }
    for h in (0..held.len()).filter(|&h| positive(held[h]) && !placed[h]) {
        let id = ctx.assets.key(h);
        let band = band_width(model, ips, id, Decimal::ZERO);
        let (low, high) = edges(Decimal::ZERO, band);
        sleeves.push(Sleeve { id, candidates: &ctx.substitutes[h], members: vec![member(ctx, &held, h)], target: Decimal::ZERO, band, excluded: excluded.contains(id), buyable: true, sellable: true, delta: Decimal::ZERO, before: Decimal::ZERO, worth: Decimal::ZERO, moved: false, low, high, out_of_band: false });
    }
    for s in &mut sleeves {
        s.revalue();
    }
    for s in &sleeves {
        for m in &s.members {
            if let Some(reason) = ctx.halt_at(m.ix)
                && (positive(m.held) || m.asset == s.id) {
                    halts.push(Halt { asset: m.asset.to_string(), reason: reason.to_string() });
                }
        }
    }

    let value = account.cash + sleeves.iter().map(Sleeve::value).sum::<Decimal>();
    // A withdrawal can take at most what the account is worth.
    let withdrawals = withdrawal_of(account).min(value);
    // Weights are of what stays once pending withdrawals are paid out.
    let staying = value - withdrawals;
    let weight = |v: Decimal| if positive(staying) { v / staying } else { Decimal::ZERO };
    for s in &mut sleeves {
        s.before = weight(s.value());
        s.out_of_band = s.before < s.low || s.before > s.high;
    }
    let base = (value - withdrawals - ips.cash_buffer).max(Decimal::ZERO);
    // A counting sort of the lots by asset.
    let mut starts = vec![0u32; ctx.assets.len() + 1];
    for &ix in &lot_ix {
        starts[ix + 1] += 1;
    }
    for i in 0..ctx.assets.len() {
        starts[i + 1] += starts[i];
    }
    let mut next = starts.clone();
    let mut by_asset = vec![0u32; lot_ix.len()];
    for (i, &ix) in lot_ix.iter().enumerate() {
        by_asset[next[ix] as usize] = i as u32;
        next[ix] += 1;
    }
    let losses = if account.kind.realises_tax() && ips.harvesting.enabled {
        let price = |ix: usize| ctx.price_at(ix).map_or(Decimal::ZERO, |p| p.price);
        account.lots.iter().zip(&lot_ix).map(|(l, &ix)| harvestable(l, price(ix), &ips.harvesting)).collect()
    } else {
        Vec::new()
    };
    Ok(Ok(Frame { account, ips, model, plan, held, sleeves, value, withdrawals, base, halts, by_asset, starts, lot_at: lot_ix, losses }))
}

/// Decides one account on its own, noting in `consulted` every asset whose purchase it
/// considered, so that a household only re-decides the accounts a new
/// wash-sale block can change.
pub(crate) fn decide_traced<'a>(
    ctx: &Context<'a>,
    prepared: &Prepared<'a>,
    wash: &WashState,
    consulted: &std::cell::RefCell<Vec<bool>>,
) -> Result<Decision> {
    let frame = match prepared {
        Ok(frame) => frame,
        Err(halted) => return Ok(halted.clone()),
    };
    let account = frame.account;
    let (ips, model) = (frame.ips, frame.model);
    let limits = &ctx.inputs.limits;
    let r = &ips.restrictions;
    // Sized for a typical decision, so they seldom grow.
    let mut checks: Vec<Check> = Vec::with_capacity(8);
    let value = frame.value;
    let base = frame.base;
    let withdrawals = frame.withdrawals;
    let staying = value - withdrawals;
    let weight = |v: Decimal| if positive(staying) { v / staying } else { Decimal::ZERO };
    // The sleeves change as the decision harvests and sizes its trades; the
    // frame does not. Copied only once they change: most accounts of a
    // quiet day trade nothing.
    let mut sleeves = std::borrow::Cow::Borrowed(frame.sleeves.as_slice());
    let held = &frame.held;

    // The assets (by position) this decision harvests.
    let mut harvested: Vec<usize> = Vec::new();
    // Whether an asset may be bought is noted as consulted where the answer
    // shapes the decision (a purchase, a harvest's substitute, a band breach
    // counted as actionable, whether a sleeve to be bought or to take
    // invested cash may be bought at all); the household re-decides only
    // those accounts when a wash-sale block on the asset changes.
    let note = |at: usize| consulted.borrow_mut()[at] = true;
    let buyer = Buyer { ctx, plan: frame.plan, wash, account: account.id };

    // Triggers.
    // Most accounts on a quiet day fire no trigger: no room until one does.
    let mut triggers = Vec::new();
    // A sleeve out of band counts only if something can be done about it:
    // an underweight one needs something buyable, an overweight one
    // something sellable.
    let mut out_of_band: Vec<String> = Vec::new();
    let threshold_on = matches!(ips.schedule.mode, TriggerMode::Threshold | TriggerMode::Hybrid);
    for s in sleeves.iter() {
        if !s.out_of_band {
            continue;
        }
        let drift = s.before - s.target;
        let actionable = if negative(drift) {
            s.candidates.iter().any(|&c| {
                note(c);
                buyer.block(c, &[]).is_none()
            })
        } else {
            s.members.iter().any(|m| positive(m.held) && !m.halted && !r.no_sell.iter().any(|a| a == m.asset))
        };
        if actionable && !threshold_on {
            // Only the threshold trigger lists the breaches.
            continue;
        }
        let line = text(&[S(s.id), S(" "), Signed(drift * HUNDRED, 2), S(" pp (band ±"), S(&ctx.percent(s.band)), S(")")]);
        if actionable {
            out_of_band.push(line);
        } else {
            checks.push(Check {
                name: ["band:", s.id].concat(),
                passed: false,
                detail: format!("{line}, but nothing of it may be {}", if negative(drift) { "bought" } else { "sold" }),
            });
        }
    }
    let calendar_on = matches!(ips.schedule.mode, TriggerMode::Calendar | TriggerMode::Hybrid);
    if account.manual_request {
        triggers.push(Trigger { kind: TriggerKind::Manual, detail: "rebalance requested".into() });
    }
    if account.ips_version_applied != Some(ips.version) {
        let detail = text(&[S("IPS "), S(&ips.id), S(" version "), Int(i64::from(ips.version)), S(" not yet applied")]);
        triggers.push(Trigger { kind: TriggerKind::NewIps, detail });
    }
    if positive(withdrawals) {
        triggers.push(Trigger { kind: TriggerKind::Withdrawal, detail: text(&[S("withdrawal of "), D(withdrawals), S(" pending")]) });
    }
    if threshold_on && !out_of_band.is_empty() {
        triggers.push(Trigger { kind: TriggerKind::Threshold, detail: out_of_band.join(", ") });
    }
    if calendar_on {
        let frequency = ips.schedule.frequency.unwrap_or(Frequency::Quarterly);
        if calendar_due(frequency, account.last_rebalanced, ctx.today) {
            let detail = match frequency {
                Frequency::Monthly => "monthly rebalance due",
                Frequency::Quarterly => "quarterly rebalance due",
                Frequency::Annual => "annual rebalance due",
            };
            triggers.push(Trigger { kind: TriggerKind::Calendar, detail: detail.into() });
        }
    }
    for (kind, flow) in [(TriggerKind::Deposit, FlowKind::Deposit), (TriggerKind::Dividend, FlowKind::Dividend)] {
        let amount: Decimal = account.flows.iter().filter(|f| f.kind == flow).map(|f| f.amount).sum();
        if positive(amount) {
            triggers.push(Trigger { kind, detail: text(&[D(amount), S(" to invest")]) });
        }
    }

    // Most accounts on a quiet day trade nothing: room is made once the
    // trades are sized (a harvest's pair grows it first), not two per
    // sleeve (1.7 KB) for every decision.
    let mut trades: Vec<Trade> = Vec::new();
    let mut lot_left = Left::new(&account.lots);
    let mut tax = TaxSummary::default();

    // Tax-loss harvesting: sell lots with a large enough loss and buy a
    // substitute of the same group, keeping the exposure.
    if account.kind.realises_tax() && ips.harvesting.enabled {
        // The lots of one member at a large enough loss, with the loss (one
        // buffer for all).
        let mut losers: Vec<(usize, &crate::types::Lot, Decimal)> = Vec::new();
        // Indices, not iterators: a harvest adds a member to the sleeve it walks.
        #[allow(clippy::needless_range_loop)]
        for si in 0..sleeves.len() {
            for mi in 0..sleeves[si].members.len() {
                let m = sleeves[si].members[mi];
                if m.halted || !positive(m.held) || positive(m.harvest_bought) {
                    continue;
                }
                if let Some(date) = wash.bought(m.ix) {
                    // Skipped, however large the losses: whether there is
                    // one is all it takes (most accounts of a quiet day that
                    // have a loss to harvest bought the asset last month).
                    if frame.lots_of(m.ix).any(|i| frame.losses[i].is_some()) {
                        let detail = text(&[S("skipped: the household bought "), S(m.asset), S(" on "), Day(date), S(", within "), Int(WASH_SALE_DAYS), S(" days (wash sale)")]);
                        checks.push(Check { name: ["harvest:", m.asset].concat(), passed: false, detail });
                    }
                    continue;
                }
                losers.clear();
                losers.extend(frame.lots_of(m.ix).filter_map(|i| frame.losses[i].map(|loss| (i, &account.lots[i], loss))));
                if losers.is_empty() {
                    continue;
                }
                let loss: Decimal = losers.iter().map(|(_, _, loss)| *loss).sum();
                let name = ["harvest:", m.asset].concat();
                if r.no_sell.iter().any(|a| a == m.asset) {
                    checks.push(Check { name, passed: false, detail: ["skipped: ", m.asset, " is on the IPS no-sell list"].concat() });
                    continue;
                }
                let substitute = sleeves[si].candidates.iter().copied().filter(|&c| c != m.ix).find(|&c| {
                    note(c);
                    buyer.block(c, &harvested).is_none()
                });
                let Some(sub_at) = substitute else {
                    checks.push(Check { name, passed: false, detail: ["skipped: no substitute of ", m.asset, " may be bought"].concat() });
                    continue;
                };
                let quantity: Decimal = losers.iter().map(|(_, l, _)| l.quantity).sum();
                let proceeds = quantity * m.price;
                let substitute = ctx.assets.key(sub_at);
                let s_price = ctx.price_at(sub_at).map_or(Decimal::ZERO, |p| p.price);
                let s_quantity = round_down(proceeds / s_price, ctx.assets.at(sub_at).quantum);
                let used: Vec<LotUse> = losers
                    .iter()
                    .map(|(_, l, _)| LotUse { lot: l.id.clone(), quantity: l.quantity, gain: (m.price - l.cost) * l.quantity, term: lots::term(l.acquired, ctx.today) })
                    .collect();
                for (i, l, _) in &losers {
                    lot_left.take(*i, l.quantity);
                }
                let estimated_tax = lots::tax_of(&used, &ips.tax);
                triggers.push(Trigger { kind: TriggerKind::Harvest, detail: text(&[S(m.asset), S(" lots at a loss of "), D(loss)]) });
                let detail = text(&[S("sell "), D(quantity), S(" "), S(m.asset), S(" (loss "), D(loss), S("), buy "), D(s_quantity), S(" "), S(substitute)]);
                checks.push(Check { name, passed: true, detail });
                harvested.push(m.ix);
                trades.push(Trade {
                    asset: m.asset.to_string(), side: Side::Sell, quantity, price: m.price, value: proceeds, lots: used,
                    estimated_tax, reason: Reason::HarvestLoss, rationale: String::new(),
                });
                tax.harvested_losses += loss;
                let sleeve = &mut sleeves.to_mut()[si];
                sleeve.members[mi].held -= quantity;
                if positive(s_quantity) {
                    trades.push(Trade {
                        asset: substitute.to_string(), side: Side::Buy, quantity: s_quantity, price: s_price, value: s_quantity * s_price,
                        lots: Vec::new(), estimated_tax: Decimal::ZERO, reason: Reason::HarvestReplace, rationale: String::new(),
                    });
                    match sleeve.members.iter_mut().find(|x| x.ix == sub_at) {
                        Some(x) => {
                            x.held += s_quantity;
                            x.harvest_bought += s_quantity;
                        }
                        None => {
                            let mut x = member(ctx, held, sub_at);
                            x.held += s_quantity;
                            x.harvest_bought += s_quantity;
                            sleeve.members.push(x);
                        }
                    }
                }
                sleeve.revalue();
                sleeve.moved = true;
            }
        }
    }
    let harvest_cash: Decimal = trades.iter().map(|t| if t.side == Side::Sell { t.value } else { -t.value }).sum();
    let cash = account.cash + harvest_cash;
    let acted_on = triggers.iter().map(|t| t.kind).min();

    // Sizing.
    let cash_target = model.cash_target * base + ips.cash_buffer + withdrawals;
    // The broadest trigger that fired sets how far to trade: any full
    // rebalance (manual, new IPS, calendar) beats a threshold breach; cash
    // flows are handled either way.
    let fired = |k: TriggerKind| triggers.iter().any(|t| t.kind == k);
    let scope = if fired(TriggerKind::Manual) || fired(TriggerKind::NewIps) || fired(TriggerKind::Calendar) {
        Some(TriggerKind::Calendar)
    } else if fired(TriggerKind::Threshold) {
        Some(TriggerKind::Threshold)
    } else {
        None
    };
    match scope {
        Some(TriggerKind::Calendar) => {
            for s in sleeves.to_mut() {
                s.delta = s.target * base - s.value();
            }
        }
        Some(TriggerKind::Threshold) => {
            for s in sleeves.to_mut() {
                // The weight before trades, unless a harvest moved it.
                let w = if s.moved { weight(s.value()) } else { s.before };
                if w >= s.low && w <= s.high {
                    continue;
                }
                let desired = match ips.schedule.sizing {
                    Sizing::Target => s.target,
                    Sizing::BandEdge { inner_margin } => {
                        let inside = s.band * (Decimal::ONE - inner_margin.clamp(Decimal::ZERO, Decimal::ONE));
                        if w > s.target { s.target + inside } else { s.target - inside }
                    }
                };
                s.delta = desired * base - s.value();
            }
        }
        _ => {}
    }
    // A sleeve nothing of which may be bought (restrictions, halts, wash
    // sales) is left as it is, and no cash is planned for it. With nothing
    // to size (no trigger that trades, no delta), whether a sleeve may be
    // bought or sold changes nothing: most accounts of a quiet day.
    // Cash is planned (below) when a trigger other than a harvest acted.
    let plans_cash = matches!(acted_on, Some(k) if k != TriggerKind::Harvest);
    let sizing = plans_cash || sleeves.iter().any(|s| !s.delta.is_zero());
    // Candidates looked at to tell whether a sleeve may be bought, by sleeve.
    let mut looked: Vec<(usize, usize)> = Vec::new();
    let mut blocked = Vec::new();
    if sizing {
        looked.reserve(sleeves.iter().map(|s| s.candidates.len()).sum());
        for (si, s) in sleeves.to_mut().iter_mut().enumerate() {
            blocked.clear();
            let from = looked.len();
            s.buyable = s.candidates.iter().any(|&c| {
                looked.push((si, c));
                match buyer.block(c, &harvested) {
                    Some(why) => {
                        blocked.push((ctx.assets.key(c), why));
                        false
                    }
                    None => true,
                }
            });
            // What was looked at shapes a purchase here: noted, as for any purchase.
            if positive(s.delta) {
                looked[from..].iter().for_each(|&(_, c)| note(c));
            }
            if !s.buyable && positive(s.delta) {
                checks.push(Check { name: ["buy:", s.id].concat(), passed: false, detail: blocks(&[S("nothing may be bought: ")], &blocked) });
                s.delta = Decimal::ZERO;
            }
            // Likewise a sleeve nothing of which may be sold (halts, the no-sell list).
            let unsellable: Vec<String> = s
                .members
                .iter()
                .filter(|m| m.held > m.harvest_bought)
                .filter_map(|m| match (ctx.halt_at(m.ix), r.no_sell.iter().any(|a| a == m.asset)) {
                    (Some(h), _) => Some(format!("{}: halted: {h}", m.asset)),
                    (None, true) => Some(format!("{}: on the IPS no-sell list", m.asset)),
                    (None, false) => None,
                })
                .collect();
            // Buying less of a harvest's substitute counts as selling.
            let holders = s.members.iter().filter(|m| m.held > m.harvest_bought).count();
            s.sellable = unsellable.len() < holders || s.members.iter().any(|m| positive(m.harvest_bought));
            if !s.sellable && negative(s.delta) {
                checks.push(Check { name: ["sell:", s.id].concat(), passed: false, detail: format!("nothing may be sold: {}", unsellable.join("; ")) });
                s.delta = Decimal::ZERO;
            }
        }
    }
    // Cash flows first: cash above its target buys the most underweight
    // sleeves; a shortfall sells the most overweight ones.
    if plans_cash {
        let traded: Decimal = sleeves.iter().map(|s| s.delta).sum();
        let surplus = cash - traded - cash_target;
        if positive(surplus) {
            // Which of the sleeves below target may be bought decides where
            // the surplus goes (`invest_surplus` looks at no other).
            let below: Vec<Option<Decimal>> = sleeves.iter().map(|s| below_target(s, base)).collect();
            looked.iter().filter(|(si, _)| below[*si].is_some()).for_each(|&(_, c)| note(c));
            invest_surplus(sleeves.to_mut(), &below, surplus, base);
        } else if negative(surplus) {
            raise_cash(sleeves.to_mut(), -surplus, base);
        }
    }

    // Trades from the sized deltas: a purchase each, a sale per member at most.
    trades.reserve(sleeves.iter().map(|s| if positive(s.delta) { 1 } else if negative(s.delta) { s.members.len() } else { 0 }).sum());
    for s in sleeves.iter() {
        if positive(s.delta) {
            let mut blocked = Vec::new();
            let Some(at) = s.candidates.iter().copied().find(|&c| {
                note(c);
                match buyer.block(c, &harvested) {
                    Some(why) => {
                        blocked.push((ctx.assets.key(c), why));
                        false
                    }
                    None => true,
                }
            }) else {
                checks.push(Check { name: ["buy:", s.id].concat(), passed: false, detail: blocks(&[S("nothing may be bought: ")], &blocked) });
                continue;
            };
            let asset = ctx.assets.key(at);
            if !blocked.is_empty() {
                checks.push(Check { name: ["buy:", s.id].concat(), passed: true, detail: blocks(&[S("buying "), S(asset), S(" instead: ")], &blocked) });
            }
            let price = ctx.price_at(at).map_or(Decimal::ZERO, |p| p.price);
            let quantity = round_down(s.delta / price, ctx.assets.at(at).quantum);
            push_trade(&mut trades, &mut checks, ips, asset, Side::Buy, quantity, price, reason_for(s, Side::Buy, acted_on));
        } else if negative(s.delta) {
            let mut need = -s.delta;
            // First buy less of what a harvest was to buy: selling something
            // while buying it would be pointless (and a wash sale at a loss).
            for m in s.members.iter().filter(|m| positive(m.harvest_bought)) {
                if !positive(need) {
                    break;
                }
                let Some(t) = trades.iter_mut().find(|t| t.reason == Reason::HarvestReplace && t.asset == m.asset) else { continue };
                let want = round_down(need / t.price, ctx.assets[m.asset].quantum);
                let cut = if s.target == Decimal::ZERO { t.quantity } else { want.min(t.quantity) };
                t.quantity -= cut;
                t.value = t.quantity * t.price;
                need -= cut * t.price;
            }
            trades.retain(|t| positive(t.quantity));
            let still_bought = |asset: &str, trades: &[Trade]| trades.iter().any(|t| t.side == Side::Buy && t.asset == asset);
            // Then sell, substitutes first (they stand in for the model's asset).
            let mut order: Vec<&Member> = s.members.iter().filter(|m| m.held > m.harvest_bought).collect();
            order.sort_by_key(|m| m.asset == s.id);
            for m in order {
                if !positive(need) {
                    break;
                }
                if let Some(why) = ctx.halt_at(m.ix) {
                    checks.push(Check { name: ["halted:", m.asset].concat(), passed: false, detail: why.to_string() });
                    continue;
                }
                if r.no_sell.iter().any(|a| a == m.asset) {
                    checks.push(Check { name: ["restriction:sell:", m.asset].concat(), passed: false, detail: "on the IPS no-sell list".into() });
                    continue;
                }
                if still_bought(m.asset, &trades) {
                    continue;
                }
                let sellable = m.held - m.harvest_bought;
                let want = round_down(need / m.price, ctx.assets.at(m.ix).quantum);
                // Selling nearly everything sells everything, dust included.
                let quantity = if s.target == Decimal::ZERO || want >= sellable { sellable } else { want };
                need -= quantity * m.price;
                push_trade(&mut trades, &mut checks, ips, m.asset, Side::Sell, quantity, m.price, reason_for(s, Side::Sell, acted_on));
            }
            trades.retain(|t| positive(t.quantity));
        }
    }
    // No overdraft: buys may spend only the cash there is after sales (keeping
    // withdrawals aside). A harvest's replacement is paid by its own sale, so
    // the other buys give way first.
    // Fills may come out worse than the estimate by the price margin: buys are
    // counted dearer and sales cheaper by it.
    let margin = ctx.margin();
    let (buys, sells) = at_margin(&trades, margin);
    let harvest_buys: Decimal =
        trades.iter().filter(|t| t.reason == Reason::HarvestReplace).map(|t| t.value).sum::<Decimal>() * (Decimal::ONE + margin);
    let spendable = (account.cash + sells - withdrawals - ips.cash_buffer).max(Decimal::ZERO);
    if buys > spendable {
        let (factor, which): (Decimal, fn(&Trade) -> bool) = if spendable >= harvest_buys {
            ((spendable - harvest_buys) / (buys - harvest_buys), |t| t.side == Side::Buy && t.reason != Reason::HarvestReplace)
        } else {
            (spendable / buys, |t| t.side == Side::Buy)
        };
        scale(&mut trades, &mut checks, which, factor, ctx, ips);
        let detail = text(&[S("buys of "), D(buys), S(" scaled by "), Fixed(factor, 4), S(" to the "), D(spendable), S(" available")]);
        checks.push(Check { name: "no_overdraft".into(), passed: true, detail });
    } else {
        let detail = text(&[S("buys "), D(buys), S(" within "), D(spendable), S(" available")]);
        checks.push(Check { name: "no_overdraft".into(), passed: true, detail });
    }

    // Maximum position weight after the trades: buys are trimmed to fit.
    if let Some(max) = r.max_position_weight {
        let asset_value: BTreeMap<&str, Decimal> =
            sleeves.iter().flat_map(|s| s.members.iter().map(|m| (m.asset, m.held * m.price))).collect();
        for t in trades.iter_mut().filter(|t| t.side == Side::Buy) {
            let held_value = asset_value.get(t.asset.as_str()).copied().unwrap_or_default();
            let after = weight(held_value + t.value);
            if after > max {
                let room = (max * staying - held_value).max(Decimal::ZERO);
                let q = round_down(room / t.price, ctx.assets[t.asset.as_str()].quantum);
                checks.push(Check {
                    name: format!("max_position:{}", t.asset),
                    passed: false,
                    detail: format!("buy trimmed from {} to {q}: {} would reach {:.2} % (max {} %)", t.quantity, t.asset, after * HUNDRED, max * HUNDRED),
                });
                t.quantity = q;
                t.value = q * t.price;
            }
        }
        trades.retain(|t| positive(t.quantity));
    }

    // Caps on turnover and notional scale every trade down alike.
    let traded_value: Decimal = trades.iter().map(|t| t.value).sum();
    let mut cap = traded_value;
    if let Some(max) = limits.max_turnover {
        cap = cap.min(max * value);
    }
    if let Some(max) = limits.max_notional {
        cap = cap.min(max);
    }
    if cap < traded_value && positive(traded_value) {
        let factor = cap / traded_value;
        scale(&mut trades, &mut checks, |_| true, factor, ctx, ips);
        checks.push(Check { name: "turnover_cap".into(), passed: false, detail: format!("trades worth {traded_value} scaled by {factor:.4} to the cap of {cap}") });
    }

    finish(ctx, frame, &sleeves, trades, None, triggers, acted_on, checks, tax, lot_left)
}

/// The part every decision shares once its trades are known: lots and tax
/// of the sales, approvals, rationales, projected drift, status.
#[allow(clippy::too_many_arguments)]
fn finish<'a>(
    ctx: &Context<'a>,
    frame: &Frame<'a>,
    sleeves: &[Sleeve<'a>],
    mut trades: Vec<Trade>,
    queued_already: Option<Vec<Trade>>,
    triggers: Vec<Trigger>,
    acted_on: Option<TriggerKind>,
    mut checks: Vec<Check>,
    mut tax: TaxSummary,
    mut lot_left: Left<'_>,
) -> Result<Decision> {
    let Frame { account, ips, model, value, withdrawals, .. } = *frame;
    let staying = value - withdrawals;
    let weight = |v: Decimal| if positive(staying) { v / staying } else { Decimal::ZERO };

    // Lots, gains and tax of the sales: harvests use their own lots, other
    // sales pick from what is left by the IPS's method.
    for t in trades.iter_mut().filter(|t| t.side == Side::Sell) {
        if t.reason == Reason::HarvestLoss {
            // The harvest's lots, whole, unless a cap cut the sale since:
            // then as many as it takes, among the lots of its asset.
            let whole: Decimal = t.lots.iter().map(|u| u.quantity).sum();
            if whole != t.quantity {
                let ix = ctx.assets.position(&t.asset);
                let refs: Vec<&crate::types::Lot> = t
                    .lots
                    .iter()
                    .filter_map(|u| ix.and_then(|ix| frame.lots_of(ix).map(|i| &account.lots[i]).find(|l| l.id == u.lot)))
                    .collect();
                t.lots = lots::take(&refs, t.quantity, t.price, ctx.today);
            }
        } else {
            // The positions of the asset's lots in sale order (what an
            // earlier sale left of them does not change the order).
            let mut order: Vec<usize> = ctx.assets.position(&t.asset).map_or_else(Vec::new, |ix| frame.lots_of(ix).collect());
            lots::sort_for_sale(&mut order, |&i| &account.lots[i], ips.lot_method, t.price, ctx.today, &ips.tax, &account.sell_order);
            t.lots = lots::take_from(order, &mut lot_left, t.quantity, t.price, ctx.today);
        }
        t.estimated_tax = if account.kind.realises_tax() { lots::tax_of(&t.lots, &ips.tax) } else { Decimal::ZERO };
    }
    tax.harvested_losses = Decimal::ZERO;
    for t in trades.iter().filter(|t| t.side == Side::Sell) {
        for u in &t.lots {
            if account.kind.realises_tax() {
                match u.term {
                    Term::Short => tax.short_term_gain += u.gain,
                    Term::Long => tax.long_term_gain += u.gain,
                }
            }
            if t.reason == Reason::HarvestLoss {
                tax.harvested_losses -= u.gain;
            }
        }
        tax.estimated_tax += t.estimated_tax;
    }

    // Trades that need a person: illiquid assets, trades above the approval limit, or a paused market.
    let mut queued = queued_already.clone().unwrap_or_default();
    let mut kept = Vec::with_capacity(trades.len());
    for t in trades {
        if queued_already.is_some() {
            kept.push(t);
            continue;
        }
        let asset = ctx.assets[t.asset.as_str()];
        let why = if let Some(pause) = &ctx.pause {
            Some(format!("automatic trading paused: {pause}"))
        } else if !asset.liquid {
            Some([t.asset.as_str(), " is illiquid: trades need approval"].concat())
        } else if ips.approval_limit.is_some_and(|limit| t.value > limit) {
            Some(text(&[S("worth "), D(t.value), S(" above the approval limit of "), D(ips.approval_limit.unwrap_or_default())]))
        } else {
            None
        };
        match why {
            Some(detail) => {
                checks.push(Check { name: ["approval:", t.asset.as_str()].concat(), passed: false, detail });
                queued.push(t);
            }
            None => kept.push(t),
        }
    }
    // A purchase paid for by a sale that now waits for a person waits too:
    // the largest purchases go first until the rest are funded, with fills
    // worse than the estimate by the price margin (as for the overdraft
    // check): otherwise the ledger may refuse the account's legs at the
    // venue's fill, and its trades wait a cycle.
    let funded = |trades: &[Trade]| {
        let (buys, sells) = at_margin(trades, ctx.margin());
        !negative(account.cash + sells - buys)
    };
    while !funded(&kept) {
        let Some(largest) = kept
            .iter()
            .enumerate()
            .filter(|(_, t)| t.side == Side::Buy)
            .max_by(|a, b| a.1.value.cmp(&b.1.value))
            .map(|(i, _)| i)
        else {
            break;
        };
        let t = kept.remove(largest);
        // Without a sale waiting, what is short is the margin alone (after
        // scaling to a cap, or a sale dropped below the minimum trade).
        let detail = if queued.iter().any(|q| q.side == Side::Sell) {
            "paid for by a sale that waits for approval"
        } else {
            "not paid for by the cash and sales at the price margin"
        };
        checks.push(Check { name: ["approval:", t.asset.as_str()].concat(), passed: false, detail: detail.into() });
        queued.push(t);
    }
    let mut trades = kept;
    // A sleeve's first member is the asset it is named after.
    let sleeve_of = |asset: &str| {
        let ix = ctx.assets.position(asset)?;
        let group = ctx.group_ids[ix];
        sleeves.iter().position(|s| {
            s.members.iter().any(|m| m.ix == ix) || (group.is_some() && s.members.first().is_some_and(|m| ctx.group_ids[m.ix] == group))
        })
    };
    // Rationales are written once the household's decisions are final (see `explain`).

    // Projected weights after the trades that settle now.
    let mut cash_after = account.cash;
    // The value after the trades of each sleeve a trade touches, from what
    // its members held at the start (harvest adjustments are re-applied
    // from the trades themselves; a member a harvest added started with
    // nothing). A sleeve no trade touched weighs what it did before.
    let mut after_value: Vec<Option<Decimal>> = vec![None; sleeves.len()];
    for t in &trades {
        let s = sleeve_of(&t.asset).ok_or_else(|| Error::Internal(format!("trade in {} outside every sleeve", t.asset)))?;
        let v = after_value[s].get_or_insert_with(|| sleeves[s].members.iter().map(|m| m.start * m.price).sum());
        match t.side {
            Side::Buy => {
                *v += t.value;
                cash_after -= t.value;
            }
            Side::Sell => {
                *v -= t.value;
                cash_after += t.value;
            }
        }
    }
    let detail = text(&[S("cash after trades "), D(cash_after)]);
    checks.push(Check { name: "cash_non_negative".into(), passed: !negative(cash_after), detail });
    if negative(cash_after) {
        return Err(Error::Internal(format!("account {}: cash would go negative ({cash_after})", account.id)));
    }
    let drift = sleeves
        .iter()
        .enumerate()
        .map(|(i, s)| Drift {
            asset: s.id.to_string(),
            target: s.target,
            before: s.before,
            after: after_value[i].map_or(s.before, weight),
            band: s.band,
            out_of_band: s.out_of_band,
        })
        .collect();

    let status = if ctx.pause.is_some() && !queued.is_empty() {
        Status::Paused
    } else if !queued.is_empty() {
        Status::PartlyQueued
    } else if trades.is_empty() {
        Status::NoAction
    } else {
        Status::Trade
    };
    trades.sort_by(|a, b| (a.side, &a.asset, a.reason).cmp(&(b.side, &b.asset, b.reason)));
    Ok(Decision {
        account: account.id,
        household: account.household.clone(),
        ips: ips_ref(ips),
        model: model.id.clone(),
        status,
        triggers,
        acted_on,
        value,
        cash_before: account.cash,
        cash_after,
        drift,
        trades,
        queued,
        checks,
        halts: frame.halts.clone(),
        tax,
        // Made once the household's decisions are final (see `input_digest`):
        // a decision taken again in a later round would hash for nothing.
        input_digest: String::new(),
    })
}

/// Decides the accounts of one household whose IPS targets the household's
/// combined portfolio. The combined portfolio is decided as one account;
/// then each trade goes where it costs least tax: sales to tax-deferred
/// accounts first, then tax-free, then taxable; purchases of tax-inefficient
/// assets to tax-deferred accounts first, of other assets to taxable
/// accounts first, each account spending only its own cash.
pub(crate) fn decide_pooled<'a>(
    ctx: &Context<'a>,
    accounts: &[&'a Account],
    wash: &WashState,
    consulted: &std::cell::RefCell<Vec<bool>>,
) -> Result<Vec<Decision>> {
    let first = accounts.first().ok_or_else(|| Error::Internal("an empty household pool".into()))?;
    // Each account valued on its own first: pooled, a bad lot of any of
    // them would be reported as the first account's.
    let frames = accounts.iter().map(|a| prepare(ctx, a)).collect::<Result<Vec<_>>>()?;
    let all = |f: &dyn Fn(&Account) -> bool| accounts.iter().all(|a| f(a));
    let pooled = Account {
        id: first.id,
        household: first.household.clone(),
        kind: AccountKind::TaxDeferred, // taxes are worked out per account below
        ips: first.ips.clone(),
        cash: accounts.iter().map(|a| a.cash).sum(),
        lots: accounts
            .iter()
            .flat_map(|a| a.lots.iter().map(move |l| crate::types::Lot { id: format!("{}:{}", a.id, l.id), ..l.clone() }))
            .collect(),
        // Each account's withdrawal, at most what that account is worth.
        flows: accounts
            .iter()
            .flat_map(|a| {
                let out = withdrawal_of(a).min(worth(ctx, a));
                a.flows
                    .iter()
                    .filter(|f| f.kind != FlowKind::Withdrawal)
                    .cloned()
                    .chain(positive(out).then_some(crate::types::CashFlow { kind: FlowKind::Withdrawal, amount: out }))
                    .collect::<Vec<_>>()
            })
            .collect(),
        last_rebalanced: if all(&|a| a.last_rebalanced.is_some()) { accounts.iter().filter_map(|a| a.last_rebalanced).min() } else { None },
        ips_version_applied: if all(&|a| a.ips_version_applied == first.ips_version_applied) { first.ips_version_applied } else { None },
        manual_request: accounts.iter().any(|a| a.manual_request),
        sell_order: Vec::new(),
    };
    let combined = decide_traced(ctx, &prepare(ctx, &pooled)?, wash, consulted)?;
    if combined.status == Status::Halted {
        return accounts.iter().map(|a| Ok(halted(ctx, a, ctx.ips[a.ips.as_str()], ctx.models[ctx.ips[a.ips.as_str()].model.as_str()], combined.halts.clone()))).collect();
    }

    let rank = |kind: AccountKind, inefficient: bool| match (kind, inefficient) {
        (AccountKind::TaxDeferred, true) | (AccountKind::Taxable, false) => 0,
        (AccountKind::TaxFree, _) => 1,
        _ => 2,
    };
    let sell_rank = |kind: AccountKind| match kind {
        AccountKind::TaxDeferred => 0,
        AccountKind::TaxFree => 1,
        AccountKind::Taxable => 2,
    };
    let mut held: Vec<BTreeMap<&str, Decimal>> = accounts
        .iter()
        .map(|a| {
            let mut h = BTreeMap::new();
            for l in &a.lots {
                *h.entry(l.asset.as_str()).or_default() += l.quantity;
            }
            h
        })
        .collect();
    // What each account may spend: its cash after its withdrawal, less the
    // cash its IPS keeps aside (as far as there is any).
    let mut cash: Vec<Decimal> = accounts
        .iter()
        .map(|a| {
            let free = a.cash - withdrawal_of(a).min(worth(ctx, a));
            free - ctx.ips[a.ips.as_str()].cash_buffer.min(free.max(Decimal::ZERO))
        })
        .collect();
    let mut own: Vec<Vec<Trade>> = vec![Vec::new(); accounts.len()];
    let mut own_queued: Vec<Vec<Trade>> = vec![Vec::new(); accounts.len()];
    let mut notes: Vec<Check> = Vec::new();
    let split = |t: &Trade, quantity: Decimal| Trade { quantity, value: quantity * t.price, lots: Vec::new(), estimated_tax: Decimal::ZERO, ..t.clone() };

    let mut sales: Vec<&Trade> = combined.trades.iter().filter(|t| t.side == Side::Sell).collect();
    sales.sort_by(|a, b| a.asset.cmp(&b.asset));
    let margin = ctx.margin();
    for t in sales {
        let quantum = ctx.assets[t.asset.as_str()].quantum;
        // An account paying out a withdrawal sells first, as much as it needs;
        // then sales go where they cost least tax.
        let mut claims: Vec<(usize, Decimal)> = (0..accounts.len())
            .filter(|&i| negative(cash[i]))
            .map(|i| (i, ((-cash[i]) / t.price / quantum).ceil() * quantum))
            .collect();
        let mut order: Vec<usize> = (0..accounts.len()).collect();
        order.sort_by_key(|&i| (sell_rank(accounts[i].kind), accounts[i].id));
        claims.extend(order.into_iter().map(|i| (i, t.quantity)));
        let mut left = t.quantity;
        for (i, cap) in claims {
            let have = held[i].get(t.asset.as_str()).copied().unwrap_or_default();
            let q = have.min(left).min(cap);
            if positive(q) {
                own[i].push(split(t, q));
                *held[i].get_mut(t.asset.as_str()).expect("held") -= q;
                cash[i] += q * t.price * (Decimal::ONE - margin);
                left -= q;
            }
        }
        if positive(left) {
            return Err(Error::Internal(format!("household sale of {} {} exceeds the holdings", t.quantity, t.asset)));
        }
    }
    // A withdrawal is paid from its own account: sell more there if the plan fell short.
    let mut compensation: Vec<Trade> = Vec::new();
    for i in 0..accounts.len() {
        let mut positions: Vec<(&str, Decimal, Decimal)> = held[i]
            .iter()
            .filter(|(_, q)| positive(**q))
            .filter_map(|(a, q)| ctx.prices.get(a).filter(|p| p.halt.is_none()).map(|p| (*a, *q, p.price)))
            .collect();
        positions.sort_by(|a, b| (b.1 * b.2).cmp(&(a.1 * a.2)).then_with(|| a.0.cmp(b.0)));
        for (asset, have, price) in positions {
            if !negative(cash[i]) {
                break;
            }
            let quantum = ctx.assets[asset].quantum;
            let q = (((-cash[i]) / price / quantum).ceil() * quantum).min(have);
            own[i].push(Trade {
                asset: asset.to_string(),
                side: Side::Sell,
                quantity: q,
                price,
                value: q * price,
                lots: Vec::new(),
                estimated_tax: Decimal::ZERO,
                reason: Reason::RaiseCash,
                rationale: String::new(),
            });
            *held[i].get_mut(asset).expect("held") -= q;
            cash[i] += q * price;
            notes.push(Check {
                name: format!("household_allocation:{}", accounts[i].id),
                passed: true,
                detail: format!("extra sale of {q} {asset} in account {} to pay its withdrawal; bought back elsewhere", accounts[i].id),
            });
            // The household keeps its planned exposure: another account buys it
            // back, unless a wash sale or the IPS forbids buying it.
            // A substitute of the same group stands in when the asset may not be bought.
            let buyer = Buyer { ctx, plan: &ctx.plans[accounts[i].ips.as_str()], wash, account: accounts[i].id };
            let Some(at) = ctx.assets.position(asset) else { continue };
            let Some(b) = ctx.substitutes[at].iter().copied().find(|&c| {
                consulted.borrow_mut()[c] = true;
                buyer.block(c, &[]).is_none()
            }) else {
                continue;
            };
            let buy = ctx.assets.key(b);
            let buy_price = ctx.price_at(b).map_or(Decimal::ZERO, |p| p.price);
            let buy_q = round_down(q * price / buy_price, ctx.assets.at(b).quantum);
            compensation.push(Trade {
                asset: buy.to_string(),
                side: Side::Buy,
                quantity: buy_q,
                price: buy_price,
                value: buy_q * buy_price,
                lots: Vec::new(),
                estimated_tax: Decimal::ZERO,
                reason: Reason::Rebalance,
                rationale: String::new(),
            });
        }
    }
    let inefficient = |asset: &str| ctx.assets.get(asset).is_some_and(|a| a.tax_inefficient);
    let mut purchases: Vec<&Trade> = combined.trades.iter().filter(|t| t.side == Side::Buy).chain(&compensation).collect();
    purchases.sort_by_key(|t| (!inefficient(&t.asset), t.asset.clone()));
    for t in purchases {
        let mut order: Vec<usize> = (0..accounts.len()).collect();
        order.sort_by_key(|&i| (rank(accounts[i].kind, inefficient(&t.asset)), accounts[i].id));
        let quantum = ctx.assets[t.asset.as_str()].quantum;
        let mut left = t.quantity;
        // Each account pays for its share at the price margin (see `decide_traced`).
        let cost = t.price * (Decimal::ONE + margin);
        for i in order {
            let q = left.min(round_down(cash[i].max(Decimal::ZERO) / cost, quantum));
            // Each account's share is a trade of its own: the IPS minimum applies to it.
            if q * t.price < ctx.ips[accounts[i].ips.as_str()].min_trade_value {
                continue;
            }
            if positive(q) {
                own[i].push(split(t, q));
                cash[i] -= q * cost;
                left -= q;
            }
        }
        if positive(left) {
            notes.push(Check { name: format!("household_allocation:{}", t.asset), passed: false, detail: format!("{left} {} not bought: no account has the cash", t.asset) });
        }
    }
    for t in &combined.queued {
        let mut order: Vec<usize> = (0..accounts.len()).collect();
        order.sort_by_key(|&i| match t.side {
            Side::Sell => (sell_rank(accounts[i].kind), accounts[i].id),
            Side::Buy => (rank(accounts[i].kind, inefficient(&t.asset)), accounts[i].id),
        });
        let i = match t.side {
            Side::Sell => order.into_iter().find(|&i| held[i].get(t.asset.as_str()).is_some_and(|q| *q >= t.quantity)),
            Side::Buy => order.into_iter().next(),
        };
        if let Some(i) = i {
            own_queued[i].push(t.clone());
        }
    }

    let mut decisions = Vec::with_capacity(accounts.len());
    for ((i, account), frame) in accounts.iter().enumerate().zip(frames) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(halted) => {
                decisions.push(halted);
                continue;
            }
        };
        let mut checks = combined.checks.clone();
        checks.extend(notes.iter().cloned());
        checks.push(Check {
            name: "household_mode".into(),
            passed: true,
            detail: format!(
                "decided on household {}'s combined portfolio of {} accounts worth {}; this account takes {} of its trades",
                account.household,
                accounts.len(),
                combined.value,
                own[i].len()
            ),
        });
        let lot_left = Left::new(&account.lots);
        decisions.push(finish(
            ctx,
            &frame,
            &frame.sleeves,
            std::mem::take(&mut own[i]),
            Some(std::mem::take(&mut own_queued[i])),
            combined.triggers.clone(),
            combined.acted_on,
            checks,
            TaxSummary::default(),
            lot_left,
        )?);
    }
    Ok(decisions)
}

fn reason_for(s: &Sleeve<'_>, side: Side, acted_on: Option<TriggerKind>) -> Reason {
    match (side, acted_on) {
        (Side::Sell, _) if s.excluded => Reason::Excluded,
        (Side::Buy, Some(TriggerKind::Deposit | TriggerKind::Dividend)) => Reason::InvestInflow,
        (Side::Sell, Some(TriggerKind::Withdrawal)) => Reason::RaiseCash,
        _ => Reason::Rebalance,
    }
}

/// Adds a trade unless it is empty or below the IPS minimum (which is reported).
#[allow(clippy::too_many_arguments)]
fn push_trade(
    trades: &mut Vec<Trade>,
    checks: &mut Vec<Check>,
    ips: &Ips,
    asset: &str,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    reason: Reason,
) {
    if !positive(quantity) {
        return;
    }
    let value = quantity * price;
    if value < ips.min_trade_value {
        checks.push(Check {
            name: ["min_trade_value:", asset].concat(),
            passed: false,
            detail: text(&[S(side_word(side)), S(" "), D(quantity), S(" "), S(asset), S(" worth "), D(value), S(" is below the minimum "), D(ips.min_trade_value)]),
        });
        return;
    }
    trades.push(Trade { asset: asset.to_string(), side, quantity, price, value, lots: Vec::new(), estimated_tax: Decimal::ZERO, reason, rationale: String::new() });
}

fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// How far below its target weight a sleeve that may take invested cash
/// is (a target, not excluded), if it is below.
fn below_target(s: &Sleeve<'_>, base: Decimal) -> Option<Decimal> {
    let under = s.target - (s.value() + s.delta) / base.max(Decimal::ONE);
    (positive(s.target) && !s.excluded && positive(under)).then_some(under)
}

/// Spreads `surplus` cash over the most underweight sleeves first, each up
/// to its target; `below` is each sleeve's `below_target`.
fn invest_surplus(sleeves: &mut [Sleeve<'_>], below: &[Option<Decimal>], mut surplus: Decimal, base: Decimal) {
    let mut order: Vec<(usize, Decimal)> = sleeves
        .iter()
        .zip(below)
        .enumerate()
        .filter(|(_, (s, _))| s.buyable)
        .filter_map(|(i, (_, under))| under.map(|under| (i, under)))
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| sleeves[a.0].id.cmp(sleeves[b.0].id)));
    for (i, _) in order {
        if !positive(surplus) {
            break;
        }
        let s = &mut sleeves[i];
        let add = (s.target * base - (s.value() + s.delta)).min(surplus);
        if positive(add) {
            s.delta += add;
            surplus -= add;
        }
    }
}

/// Raises `need` cash: first by selling the most overweight sleeves down to
/// their targets (that only reduces drift), then by dropping planned buys,
/// then by selling everything pro rata.
fn raise_cash(sleeves: &mut [Sleeve<'_>], mut need: Decimal, base: Decimal) {
    let sellable = |s: &Sleeve<'_>| s.sellable && s.members.iter().any(|m| !m.halted && positive(m.held));
    let mut over: Vec<(usize, Decimal)> = sleeves
        .iter()
        .enumerate()
        .filter(|(_, s)| sellable(s))
        .map(|(i, s)| (i, (s.value() + s.delta) - s.target * base))
        .filter(|(_, excess)| positive(*excess))
        .collect();
    over.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| sleeves[a.0].id.cmp(sleeves[b.0].id)));
    for (i, excess) in over {
        if !positive(need) {
            return;
        }
        let cut = excess.min(need);
        sleeves[i].delta -= cut;
        need -= cut;
    }
    let mut buys: Vec<(usize, Decimal)> = sleeves.iter().enumerate().filter(|(_, s)| positive(s.delta)).map(|(i, s)| (i, s.delta)).collect();
    buys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| sleeves[a.0].id.cmp(sleeves[b.0].id)));
    for (i, _) in buys {
        if !positive(need) {
            return;
        }
        let cut = sleeves[i].delta.min(need);
        sleeves[i].delta -= cut;
        need -= cut;
    }
    if positive(need) {
        let remaining: Decimal = sleeves.iter().filter(|s| sellable(s)).map(|s| s.value() + s.delta).sum();
        if positive(remaining) {
            let share = (need / remaining).min(Decimal::ONE);
            for s in sleeves.iter_mut().filter(|s| sellable(s)) {
                s.delta -= (s.value() + s.delta) * share;
            }
        }
    }
}

/// Scales the trades `which` selects by `factor` (0 to 1), rounding down to
/// quanta; a trade that falls below the IPS minimum is dropped and reported.
fn scale(
    trades: &mut Vec<Trade>,
    checks: &mut Vec<Check>,
    which: impl Fn(&Trade) -> bool,
    factor: Decimal,
    ctx: &Context<'_>,
    ips: &Ips,
) {
    for t in trades.iter_mut().filter(|t| which(t)) {
        t.quantity = round_down(t.quantity * factor, ctx.assets[t.asset.as_str()].quantum);
        t.value = t.quantity * t.price;
        if positive(t.quantity) && t.value < ips.min_trade_value {
            checks.push(Check {
                name: format!("min_trade_value:{}", t.asset),
                passed: false,
                detail: format!(
                    "{} {} {} worth {} after scaling is below the minimum {}",
                    side_word(t.side),
                    Num(t.quantity),
                    t.asset,
                    Num(t.value),
                    Num(ips.min_trade_value)
                ),
            });
            t.quantity = Decimal::ZERO;
        }
    }
    trades.retain(|t| positive(t.quantity));
}

/// Writes each trade's one-line rationale from the decision's drift: done
/// once per final decision, not in every round a household takes. The
/// part that tells the sleeve's weight, target and band is written once per
/// sleeve, however many trades it has.
pub(crate) fn explain(ctx: &Context<'_>, d: &mut Decision) {
    let Decision { trades, queued, drift, .. } = d;
    if trades.is_empty() && queued.is_empty() {
        return;
    }
    let groups: Vec<Option<&str>> = drift.iter().map(|x| group_of(ctx, &x.asset)).collect();
    let mut tails: Vec<Option<String>> = vec![None; drift.len()];
    for t in trades.iter_mut().chain(queued.iter_mut()) {
        let group = group_of(ctx, &t.asset);
        let sleeve = drift.iter().zip(&groups).position(|(x, g)| x.asset == t.asset || (group.is_some() && group == *g));
        let tail = match sleeve {
            Some(i) => tails[i].get_or_insert_with(|| sleeve_text(ctx, drift[i].before, drift[i].target, drift[i].band)).as_str(),
            None => &sleeve_text(ctx, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO),
        };
        t.rationale = rationale(t, tail);
    }
}

/// A sleeve's weight, target and band, as a rationale ends.
fn sleeve_text(ctx: &Context<'_>, weight: Decimal, target: Decimal, band: Decimal) -> String {
    text(&[
        S(": weight "),
        Fixed(weight * HUNDRED, 2),
        S(" % vs target "),
        S(&ctx.percent(target)),
        S(" % (band ±"),
        S(&ctx.percent(band)),
        S(" pp)"),
    ])
}

/// What a trade does and why, then its sleeve's `tail` (see `sleeve_text`).
fn rationale(t: &Trade, tail: &str) -> String {
    let what = match t.reason {
        Reason::Rebalance => "rebalance",
        Reason::InvestInflow => "invest new cash",
        Reason::RaiseCash => "raise cash for a withdrawal",
        Reason::HarvestLoss => "harvest a tax loss",
        Reason::HarvestReplace => "replace a harvested asset",
        Reason::Excluded => "sell an excluded asset",
    };
    text(&[S(side_word(t.side)), S(" "), D(t.quantity), S(" "), S(&t.asset), S(" at "), D(t.price), S(" to "), S(what), S(tail)])
}

fn ips_ref(ips: &Ips) -> IpsRef {
    IpsRef { id: ips.id.clone(), version: ips.version, document_hash: ips.document_hash.clone() }
}

fn halted(ctx: &Context<'_>, account: &Account, ips: &Ips, model: &Model, halts: Vec<Halt>) -> Decision {
    Decision {
        account: account.id,
        household: account.household.clone(),
        ips: ips_ref(ips),
        model: model.id.clone(),
        status: Status::Halted,
        triggers: Vec::new(),
        acted_on: None,
        value: Decimal::ZERO,
        cash_before: account.cash,
        cash_after: account.cash,
        drift: Vec::new(),
        trades: Vec::new(),
        queued: Vec::new(),
        checks: Vec::new(),
        halts,
        tax: TaxSummary::default(),
        input_digest: digest(ctx, account, ips, None, &WashState::default()),
    }
}

/// Feeds serialized JSON straight into a hash, without building a buffer.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of the JSON of what every account under one IPS reads: the IPS,
/// its model, the assets, the whole market snapshot, the limits and the time.
fn shared_digest(inputs: &Inputs, ips: &Ips, model: &Model) -> [u8; 32] {
    let mut w = HashWriter(Sha256::new());
    let shared = (ips, model, &inputs.assets, &inputs.market, &inputs.limits, inputs.now.unix_timestamp());
    serde_json::to_writer(&mut w, &shared).expect("inputs serialize");
    w.0.finalize().into()
}

/// The input digest of a decision `account` took under `wash`; `lot_assets`
/// are its lots' assets as positions, if known (see [`Frame::lot_assets`]).
pub(crate) fn input_digest(ctx: &Context<'_>, account: &Account, lot_assets: Option<&[usize]>, wash: &WashState) -> String {
    digest(ctx, account, ctx.ips[account.ips.as_str()], lot_assets, wash)
}

/// SHA-256 over everything the account's decision read: the shared digest
/// of its IPS, then a canonical binary encoding of the account and of its
/// household's wash-sale state (see [`Encoder`]).
fn digest(ctx: &Context<'_>, account: &Account, ips: &Ips, lot_assets: Option<&[usize]>, wash: &WashState) -> String {
    let shared = ctx.plans[ips.id.as_str()].digest;
    // The encoding is written out first and hashed in one go: some three
    // hundred small updates of the hash cost more than the hashing.
    // Room enough that it seldom grows (a regrowth copies it): a lot takes
    // some 25 bytes, a block 10 (a recent sale) to 80 (today's reason).
    // The blocks and the recent purchases, assets as positions in order.
    let blocks = wash.loss_sold.iter().enumerate().filter_map(|(at, why)| why.map(|why| (at, why)));
    let bought = wash.bought.iter().enumerate().filter_map(|(at, d)| d.map(|d| (at, d)));
    let (n_blocks, n_bought) = (blocks.clone().count(), bought.clone().count());
    let room = 96 + 48 * account.lots.len() + 16 * account.flows.len() + 96 * n_blocks + 8 * n_bought;
    let mut e = Encoder(Vec::with_capacity(room));
    e.0.extend_from_slice(b"ballast decision inputs v3\n");
    e.0.extend_from_slice(&shared);
    e.uint(account.id);
    e.text(&account.household);
    e.0.push(account.kind as u8);
    e.text(&account.ips);
    e.decimal(account.cash);
    e.uint(account.lots.len() as u64);
    // A lot's asset as its position among the asset ids in order (the
    // assets are in the shared digest). Without the positions, they are
    // looked up; lots of one asset usually follow each other, so the last
    // one's position is checked first.
    let mut last: Option<(&str, usize)> = None;
    for (k, l) in account.lots.iter().enumerate() {
        let at = match (lot_assets, last) {
            (Some(at), _) => at[k],
            (None, Some((asset, at))) if crate::keyed::same(asset, &l.asset) => at,
            (None, _) => ctx.assets.position(&l.asset).expect("a lot's asset was checked when its account was valued"),
        };
        last = Some((&l.asset, at));
        e.text(&l.id);
        e.uint(at as u64);
        e.decimal(l.quantity);
        e.decimal(l.cost);
        e.day(l.acquired);
    }
    e.uint(account.flows.len() as u64);
    for f in &account.flows {
        e.0.push(f.kind as u8);
        e.decimal(f.amount);
    }
    e.date(account.last_rebalanced);
    e.uint(account.ips_version_applied.map_or(0, |v| u64::from(v) + 1));
    e.0.push(u8::from(account.manual_request));
    e.uint(account.sell_order.len() as u64);
    for id in &account.sell_order {
        e.text(id);
    }
    e.uint(n_blocks as u64);
    for (at, why) in blocks {
        e.uint(at as u64);
        // Why, by its parts: its text is made of them (and costs some 600
        // instructions to write).
        match why {
            Why::Recent { account, on } => {
                e.0.push(0);
                e.uint(account);
                e.day(on);
            }
            Why::Today(why) => {
                e.0.push(1);
                e.text(why);
            }
        }
    }
    e.uint(n_bought as u64);
    for (at, d) in bought {
        e.uint(at as u64);
        e.day(d);
    }
    let b = e.0;
    // `encode_to_slice` writes the digits straight into a buffer (`encode`
    // goes a character at a time).
    let mut digits = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(&b), &mut digits).expect("64 digits for 32 bytes");
    String::from_utf8(digits.to_vec()).expect("hex digits are ASCII")
}

/// The input digest's encoding (version 3), compact because hashing is a
/// large part of the digest's cost: some 1.1 KB for an account of 45 lots
/// (version 1, with fixed-width integers and lengths and 16-byte decimals,
/// wrote 2.5 KB). Every value has one encoding, and each field's length is
/// known from its first bytes, so two different inputs never encode alike:
/// - an unsigned integer: LEB128, seven bits a byte, low bits first;
/// - a string: its length in bytes, then its UTF-8;
/// - a decimal: one byte of scale (0 to 28), with 0x80 set when negative,
///   then its 96-bit integer part, little-endian, in the fewest of 4, 8 or
///   12 bytes that hold it, with 0x20 set in the first byte for 8 and 0x40
///   for 12 (`1.50` and `1.5` differ, as the inputs' text does). Version 2
///   wrote the integer part as LEB128: a few bytes fewer, but a loop and a
///   copy of a length known only at run time for each of some hundred
///   decimals cost more than hashing the bytes saved;
/// - a date: four bytes, big-endian, of its year times 512 plus its day of
///   the year (two's complement before year 0); one that may be absent (the
///   last rebalance) is 0 when absent, else 1 and those four bytes;
/// - an asset (a lot's, a wash-sale block's, a recent purchase's): its
///   position among the asset ids in order, as an unsigned integer (the
///   assets themselves are in the shared digest); blocks and purchases in
///   that order;
/// - why a block holds: 0, then the account and the date of the recent
///   loss sale, or 1 and the reason's text for a sale of today's run;
/// - enumerations and flags: one byte.
struct Encoder(Vec<u8>);

impl Encoder {
    #[inline]
    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    #[inline]
    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Bytes as a string's: their length, then them.
    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        self.uint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    // Inlined at its few calls, some seventy an account: the call was a
    // sixth of its cost.
    #[inline(always)]
    fn decimal(&mut self, d: Decimal) {
        // The parts as stored, each width written whole: no loop, and no
        // call to copy a length known only at run time.
        let parts = d.unpack();
        let tag = parts.scale as u8 | if parts.negative { 0x80 } else { 0 };
        let [l0, l1, l2, l3] = parts.lo.to_le_bytes();
        if parts.hi == 0 && parts.mid == 0 {
            self.0.extend_from_slice(&[tag, l0, l1, l2, l3]);
        } else {
            let [m0, m1, m2, m3] = parts.mid.to_le_bytes();
            if parts.hi == 0 {
                self.0.extend_from_slice(&[tag | 0x20, l0, l1, l2, l3, m0, m1, m2, m3]);
            } else {
                let [h0, h1, h2, h3] = parts.hi.to_le_bytes();
                self.0.extend_from_slice(&[tag | 0x40, l0, l1, l2, l3, m0, m1, m2, m3, h0, h1, h2, h3]);
            }
        }
    }

    #[inline]
    fn date(&mut self, d: Option<Date>) {
        match d {
            None => self.0.push(0),
            Some(d) => {
                self.0.push(1);
                self.day(d);
            }
        }
    }

    /// A date that is always there: its four bytes alone.
    #[inline]
    fn day(&mut self, d: Date) {
        // Year and day of the year as the date keeps them (a Julian day
        // number is worked out with divisions).
        let packed = (d.year() << 9) | i32::from(d.ordinal());
        self.0.extend_from_slice(&packed.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::Encoder;

    #[test]
    fn a_wash_sale_block_says_which_sale_made_it() {
        let recent = super::Why::Recent { account: 7, on: time::macros::date!(2026 - 11 - 02) };
        assert_eq!(recent.to_string(), "sold at a loss in account 7 on 2026-11-02 (wash-sale window 30 days)");
        assert_eq!(super::Why::Today("sold today").to_string(), "sold today");
        let mut pushed = b"x".to_vec();
        recent.push(&mut pushed);
        assert_eq!(pushed, [b"x".as_slice(), recent.to_string().as_bytes()].concat());
    }

    proptest::proptest! {
        #[test]
        fn band_edges_test_as_the_distance_does(w in 0i128..2 * 10i128.pow(28), t in 0i64..=100, b in 0i64..=5_000) {
            // A weight at 28 places, a target in percent, a band to 0.01 pp.
            let (w, t, b) = (rust_decimal::Decimal::from_i128_with_scale(w, 28), rust_decimal::Decimal::new(t, 2), rust_decimal::Decimal::new(b, 4));
            let (low, high) = super::edges(t, b);
            // Any weight, and on and just past each edge.
            let tiny = rust_decimal::Decimal::new(1, 28);
            for w in [w, t - b, t + b, t - b - tiny, t + b + tiny] {
                proptest::prop_assert_eq!(w < low || w > high, (w - t).abs() > b, "{} against {} ± {}", w, t, b);
            }
        }
    }

    fn encoded(f: impl FnOnce(&mut Encoder)) -> Vec<u8> {
        let mut e = Encoder(Vec::new());
        f(&mut e);
        e.0
    }

    #[test]
    fn integers_take_seven_bits_a_byte_low_bits_first() {
        assert_eq!(encoded(|e| e.uint(0)), [0]);
        assert_eq!(encoded(|e| e.uint(127)), [0x7f]);
        // 300 = 0b10_0101100: 0101100 with the continuation bit, then 10.
        assert_eq!(encoded(|e| e.uint(300)), [0xac, 0x02]);
        assert_eq!(encoded(|e| e.uint(u64::MAX)).len(), 10);
    }

    #[test]
    fn decimals_keep_scale_and_sign() {
        // 1.50: scale 2, integer part 150 = 0x96 in four bytes, low first.
        assert_eq!(encoded(|e| e.decimal(dec!(1.50))), [2, 0x96, 0, 0, 0]);
        assert_eq!(encoded(|e| e.decimal(dec!(1.5))), [1, 15, 0, 0, 0]);
        assert_eq!(encoded(|e| e.decimal(dec!(-1.5))), [0x81, 15, 0, 0, 0]);
        assert_eq!(encoded(|e| e.decimal(dec!(0))), [0, 0, 0, 0, 0]);
        // 2^32 at scale 3 takes eight bytes (0x20), and 2^64 twelve (0x40).
        let wide = rust_decimal::Decimal::from_i128_with_scale(1 << 32, 3);
        assert_eq!(encoded(|e| e.decimal(wide)), [0x23, 0, 0, 0, 0, 1, 0, 0, 0]);
        let wider = rust_decimal::Decimal::from_i128_with_scale(-(1 << 64), 28);
        assert_eq!(encoded(|e| e.decimal(wider)), [0x80 | 0x40 | 28, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(encoded(|e| e.decimal(rust_decimal::Decimal::MAX)), [0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn a_digest_is_the_same_with_its_lots_positions_given_or_looked_up() {
        let inputs = crate::synthetic::book(12, time::macros::datetime!(2026-11-21 15:00 UTC));
        let ctx = super::Context::new(&inputs).unwrap();
        let wash = super::WashState::default();
        for account in &inputs.accounts {
            let Ok(Ok(frame)) = super::prepare(&ctx, account) else { panic!("account {} values", account.id) };
            let given = super::input_digest(&ctx, account, Some(frame.lot_assets()), &wash);
            assert_eq!(given, super::input_digest(&ctx, account, None, &wash), "account {}", account.id);
        }
    }

    #[test]
    fn strings_and_dates_say_where_they_end() {
        assert_eq!(encoded(|e| e.text("ab")), [2, b'a', b'b']);
        assert_eq!(encoded(|e| e.date(None)), [0]);
        // 2026 × 512 + 335 = 1,037,647 = 0x0fd54f.
        let day = time::macros::date!(2026 - 12 - 01);
        assert_eq!(encoded(|e| e.date(Some(day))), [1, 0x00, 0x0f, 0xd5, 0x4f]);
        // -1 × 512 + 1 = -511 = 0xfffffe01.
        let before = time::macros::date!(-0001 - 01 - 01);
        assert_eq!(encoded(|e| e.date(Some(before))), [1, 0xff, 0xff, 0xfe, 0x01]);
        assert_eq!(encoded(|e| e.day(before)), [0xff, 0xff, 0xfe, 0x01]);
    }
}
