//! Deciding one account: value it, find its drift and triggers, size the
//! trades (cash flows first), check them, pick the lots, and explain it all.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use time::Date;

use crate::{
    decision::{
        Check, Decision, Drift, Halt, IpsRef, Reason, Status, TaxSummary, Term, Trade, Trigger, TriggerKind,
    },
    lots,
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
    pub assets: BTreeMap<&'a str, &'a Asset>,
    pub models: BTreeMap<&'a str, &'a Model>,
    pub ips: BTreeMap<&'a str, &'a Ips>,
    pub prices: BTreeMap<&'a str, Priced>,
    /// Market-wide pause of automatic trading, with the reason.
    pub pause: Option<String>,
}

impl<'a> Context<'a> {
    pub fn new(inputs: &'a Inputs) -> Result<Self> {
        let mut assets = BTreeMap::new();
        for a in &inputs.assets {
            if a.quantum <= Decimal::ZERO {
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
        let mut prices = BTreeMap::new();
        let mut pause = None;
        for (id, q) in &inputs.market.quotes {
            let p = &q.primary;
            if p.price <= Decimal::ZERO {
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
            if pause.is_none() {
                if let Some(prev) = q.previous_close.filter(|c| *c > Decimal::ZERO) {
                    let moved = (p.price - prev).abs() / prev;
                    if moved > limits.max_daily_move {
                        pause = Some(format!(
                            "{id} moved {:.2} % since the previous close (max {} %)",
                            moved * HUNDRED,
                            limits.max_daily_move * HUNDRED
                        ));
                    }
                }
            }
            prices.insert(id.as_str(), Priced { price: p.price, halt });
        }
        if let (Some(vix), Some(max)) = (inputs.market.volatility_index, limits.volatility_threshold) {
            if vix > max {
                pause = Some(format!("volatility index {vix} above {max}"));
            }
        }
        Ok(Self { inputs, today: inputs.now.date(), assets, models, ips, prices, pause })
    }
}

fn validate_model(m: &Model, assets: &BTreeMap<&str, &Asset>) -> Result<()> {
    let mut sum = m.cash_target;
    for (asset, w) in &m.targets {
        if !assets.contains_key(asset.as_str()) {
            return Err(Error::Unknown { kind: "asset", id: asset.clone(), referrer: format!("model {}", m.id) });
        }
        if *w < Decimal::ZERO {
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
    if let Some(rule) = &model.small_targets {
        if target < rule.below_weight {
            w = w.max(rule.min_pp / HUNDRED);
        }
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
    if quantity <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    ((quantity / quantum).floor() * quantum).normalize()
}

/// One asset's position in the account during the decision.
#[derive(Debug, Clone)]
struct Position {
    held: Decimal,
    price: Decimal,
    target: Decimal,
    band: Decimal,
    halt: Option<String>,
    /// Signed money to trade: positive buys.
    delta: Decimal,
    reason: Reason,
}

impl Position {
    fn value(&self) -> Decimal {
        self.held * self.price
    }
}

/// Decides one account.
pub(crate) fn decide(ctx: &Context<'_>, account: &Account) -> Result<Decision> {
    let ips = *ctx.ips.get(account.ips.as_str()).ok_or_else(|| Error::Unknown {
        kind: "IPS",
        id: account.ips.clone(),
        referrer: format!("account {}", account.id),
    })?;
    let model = ctx.models[ips.model.as_str()];
    let limits = &ctx.inputs.limits;
    let r = &ips.restrictions;
    let mut checks: Vec<Check> = Vec::new();
    let mut halts: Vec<Halt> = Vec::new();

    // Targets: the model's, with excluded assets' weight spread pro rata over the rest.
    let excluded: BTreeSet<&str> = r.excluded.iter().map(String::as_str).collect();
    let kept: Decimal = model.targets.iter().filter(|(a, _)| !excluded.contains(a.as_str())).map(|(_, w)| *w).sum();
    let invested: Decimal = model.targets.values().copied().sum();
    let scale = if kept > Decimal::ZERO { invested / kept } else { Decimal::ZERO };
    let mut held: BTreeMap<&str, Decimal> = BTreeMap::new();
    for lot in &account.lots {
        if !ctx.assets.contains_key(lot.asset.as_str()) {
            return Err(Error::Unknown { kind: "asset", id: lot.asset.clone(), referrer: format!("lot {} of account {}", lot.id, account.id) });
        }
        *held.entry(lot.asset.as_str()).or_default() += lot.quantity;
    }
    let universe: BTreeSet<&str> = model.targets.keys().map(String::as_str).chain(held.keys().copied()).collect();

    let mut positions: BTreeMap<&str, Position> = BTreeMap::new();
    for asset in &universe {
        let quantity = held.get(asset).copied().unwrap_or_default();
        let target = if excluded.contains(asset) { Decimal::ZERO } else { model.targets.get(*asset).copied().unwrap_or_default() * scale };
        let Some(priced) = ctx.prices.get(asset) else {
            if quantity > Decimal::ZERO {
                // Without a price the account cannot be valued: decide nothing.
                halts.push(Halt { asset: asset.to_string(), reason: "no price".into() });
                return Ok(halted(ctx, account, ips, model, halts));
            }
            halts.push(Halt { asset: asset.to_string(), reason: "no price".into() });
            positions.insert(asset, Position { held: quantity, price: Decimal::ZERO, target, band: Decimal::ZERO, halt: Some("no price".into()), delta: Decimal::ZERO, reason: Reason::Rebalance });
            continue;
        };
        if let Some(reason) = &priced.halt {
            halts.push(Halt { asset: asset.to_string(), reason: reason.clone() });
        }
        positions.insert(
            asset,
            Position {
                held: quantity,
                price: priced.price,
                target,
                band: band_width(model, ips, asset, target),
                halt: priced.halt.clone(),
                delta: Decimal::ZERO,
                reason: if excluded.contains(asset) { Reason::Excluded } else { Reason::Rebalance },
            },
        );
    }

    let invested_value: Decimal = positions.values().map(Position::value).sum();
    let value = account.cash + invested_value;
    let weight = |v: Decimal| if value > Decimal::ZERO { v / value } else { Decimal::ZERO };
    let withdrawals: Decimal = account.flows.iter().filter(|f| f.kind == FlowKind::Withdrawal).map(|f| f.amount).sum();
    let base = (value - withdrawals - ips.cash_buffer).max(Decimal::ZERO);

    // Triggers.
    let mut triggers = Vec::new();
    let mut out_of_band = Vec::new();
    for (asset, p) in &positions {
        let drift = weight(p.value()) - p.target;
        if drift.abs() > p.band {
            out_of_band.push(format!("{asset} {:+.2} pp (band ±{:.2})", drift * HUNDRED, p.band * HUNDRED));
        }
    }
    let threshold_on = matches!(ips.schedule.mode, TriggerMode::Threshold | TriggerMode::Hybrid);
    let calendar_on = matches!(ips.schedule.mode, TriggerMode::Calendar | TriggerMode::Hybrid);
    if account.manual_request {
        triggers.push(Trigger { kind: TriggerKind::Manual, detail: "rebalance requested".into() });
    }
    if account.ips_version_applied != Some(ips.version) {
        triggers.push(Trigger {
            kind: TriggerKind::NewIps,
            detail: format!("IPS {} version {} not yet applied", ips.id, ips.version),
        });
    }
    if withdrawals > Decimal::ZERO {
        triggers.push(Trigger { kind: TriggerKind::Withdrawal, detail: format!("withdrawal of {withdrawals} pending") });
    }
    if threshold_on && !out_of_band.is_empty() {
        triggers.push(Trigger { kind: TriggerKind::Threshold, detail: out_of_band.join(", ") });
    }
    if calendar_on {
        let frequency = ips.schedule.frequency.unwrap_or(Frequency::Quarterly);
        if calendar_due(frequency, account.last_rebalanced, ctx.today) {
            triggers.push(Trigger { kind: TriggerKind::Calendar, detail: format!("{frequency:?} rebalance due").to_lowercase() });
        }
    }
    for (kind, flow) in [(TriggerKind::Deposit, FlowKind::Deposit), (TriggerKind::Dividend, FlowKind::Dividend)] {
        let amount: Decimal = account.flows.iter().filter(|f| f.kind == flow).map(|f| f.amount).sum();
        if amount > Decimal::ZERO {
            triggers.push(Trigger { kind, detail: format!("{amount} to invest") });
        }
    }
    let acted_on = triggers.iter().map(|t| t.kind).min();

    // Sizing.
    let cash_target = model.cash_target * base + ips.cash_buffer + withdrawals;
    match acted_on {
        Some(TriggerKind::Manual | TriggerKind::NewIps | TriggerKind::Calendar) => {
            for p in positions.values_mut() {
                p.delta = p.target * base - p.value();
            }
        }
        Some(TriggerKind::Threshold) => {
            for p in positions.values_mut() {
                let w = weight(p.value());
                if (w - p.target).abs() <= p.band {
                    continue;
                }
                let desired = match ips.schedule.sizing {
                    Sizing::Target => p.target,
                    Sizing::BandEdge { inner_margin } => {
                        let inside = p.band * (Decimal::ONE - inner_margin.clamp(Decimal::ZERO, Decimal::ONE));
                        if w > p.target { p.target + inside } else { p.target - inside }
                    }
                };
                p.delta = desired * base - p.value();
            }
        }
        _ => {}
    }
    // Cash flows first: cash above its target buys the most underweight
    // assets; a shortfall sells the most overweight ones.
    if acted_on.is_some() {
        let traded: Decimal = positions.values().map(|p| p.delta).sum();
        let surplus = account.cash - traded - cash_target;
        if surplus > Decimal::ZERO {
            invest_surplus(&mut positions, surplus, base);
        } else if surplus < Decimal::ZERO {
            raise_cash(&mut positions, -surplus, base);
        }
    }

    // Trades from the sized deltas.
    let mut trades: Vec<Trade> = Vec::new();
    let mut queued: Vec<Trade> = Vec::new();
    for (asset, p) in &positions {
        if p.delta == Decimal::ZERO || p.price == Decimal::ZERO {
            continue;
        }
        let quantum = ctx.assets[asset].quantum;
        let (side, quantity) = if p.delta > Decimal::ZERO {
            (Side::Buy, round_down(p.delta / p.price, quantum))
        } else {
            let want = round_down(-p.delta / p.price, quantum);
            // Selling nearly everything sells everything, dust included.
            let q = if p.target == Decimal::ZERO || want >= p.held { p.held } else { want };
            (Side::Sell, q)
        };
        if quantity <= Decimal::ZERO {
            continue;
        }
        let value_traded = quantity * p.price;
        if value_traded < ips.min_trade_value {
            checks.push(Check {
                name: format!("min_trade_value:{asset}"),
                passed: false,
                detail: format!("{side:?} {quantity} {asset} worth {value_traded} is below the minimum {}", ips.min_trade_value).to_lowercase(),
            });
            continue;
        }
        let reason = match (p.reason, side, acted_on) {
            (Reason::Excluded, Side::Sell, _) => Reason::Excluded,
            (_, Side::Buy, Some(TriggerKind::Deposit | TriggerKind::Dividend)) => Reason::InvestInflow,
            (_, Side::Sell, Some(TriggerKind::Withdrawal)) => Reason::RaiseCash,
            _ => Reason::Rebalance,
        };
        trades.push(Trade {
            asset: asset.to_string(),
            side,
            quantity,
            price: p.price,
            value: value_traded,
            lots: Vec::new(),
            estimated_tax: Decimal::ZERO,
            reason,
            rationale: String::new(),
        });
    }

    // Circuit breakers and restrictions remove trades, saying why.
    trades.retain(|t| {
        let p = &positions[t.asset.as_str()];
        if let Some(reason) = &p.halt {
            checks.push(Check { name: format!("halted:{}", t.asset), passed: false, detail: reason.clone() });
            return false;
        }
        let refused = match t.side {
            Side::Buy if r.no_buy.contains(&t.asset) => Some("on the IPS no-buy list"),
            Side::Buy if excluded.contains(t.asset.as_str()) => Some("excluded by the IPS"),
            Side::Buy if r.allowed_only.as_ref().is_some_and(|a| !a.contains(&t.asset)) => Some("not on the IPS allowed list"),
            Side::Sell if r.no_sell.contains(&t.asset) => Some("on the IPS no-sell list"),
            _ => None,
        };
        let name = format!("restriction:{}:{}", format!("{:?}", t.side).to_lowercase(), t.asset);
        match refused {
            Some(why) => {
                checks.push(Check { name, passed: false, detail: why.into() });
                false
            }
            None => {
                checks.push(Check { name, passed: true, detail: "allowed".into() });
                true
            }
        }
    });

    // No overdraft: buys may spend only the cash there is after sales (keeping withdrawals aside).
    let sells: Decimal = trades.iter().filter(|t| t.side == Side::Sell).map(|t| t.value).sum();
    let buys: Decimal = trades.iter().filter(|t| t.side == Side::Buy).map(|t| t.value).sum();
    let spendable = (account.cash + sells - withdrawals - ips.cash_buffer).max(Decimal::ZERO);
    if buys > spendable {
        let factor = spendable / buys;
        scale_side(&mut trades, Side::Buy, factor, ctx);
        checks.push(Check {
            name: "no_overdraft".into(),
            passed: true,
            detail: format!("buys of {buys} scaled by {:.4} to the {spendable} available", factor),
        });
    } else {
        checks.push(Check { name: "no_overdraft".into(), passed: true, detail: format!("buys {buys} within {spendable} available") });
    }

    // Maximum position weight after the trades: buys are trimmed to fit.
    if let Some(max) = r.max_position_weight {
        for t in trades.iter_mut().filter(|t| t.side == Side::Buy) {
            let p = &positions[t.asset.as_str()];
            let after = weight(p.value() + t.value);
            if after > max {
                let room = (max * value - p.value()).max(Decimal::ZERO);
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
        trades.retain(|t| t.quantity > Decimal::ZERO);
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
    if cap < traded_value && traded_value > Decimal::ZERO {
        let factor = cap / traded_value;
        scale_side(&mut trades, Side::Buy, factor, ctx);
        scale_side(&mut trades, Side::Sell, factor, ctx);
        checks.push(Check {
            name: "turnover_cap".into(),
            passed: false,
            detail: format!("trades worth {traded_value} scaled by {:.4} to the cap of {cap}", factor),
        });
    }

    // Lots, gains and tax of the sales.
    let mut tax = TaxSummary::default();
    for t in trades.iter_mut().filter(|t| t.side == Side::Sell) {
        let asset_lots: Vec<&crate::types::Lot> = account.lots.iter().filter(|l| l.asset == t.asset).collect();
        let order = lots::sale_order(&asset_lots, ips.lot_method, t.price, ctx.today, &ips.tax, &account.sell_order);
        t.lots = lots::take(&order, t.quantity, t.price, ctx.today);
        if account.kind.realises_tax() {
            t.estimated_tax = lots::tax_of(&t.lots, &ips.tax);
            for u in &t.lots {
                match u.term {
                    Term::Short => tax.short_term_gain += u.gain,
                    Term::Long => tax.long_term_gain += u.gain,
                }
            }
            tax.estimated_tax += t.estimated_tax;
        }
    }

    // Trades that need a person: illiquid assets, trades above the approval limit, or a paused market.
    let mut kept = Vec::new();
    for t in trades {
        let asset = ctx.assets[t.asset.as_str()];
        let why = if let Some(pause) = &ctx.pause {
            Some(format!("automatic trading paused: {pause}"))
        } else if !asset.liquid {
            Some(format!("{} is illiquid: trades need approval", t.asset))
        } else if ips.approval_limit.is_some_and(|limit| t.value > limit) {
            Some(format!("worth {} above the approval limit of {}", t.value, ips.approval_limit.unwrap_or_default()))
        } else {
            None
        };
        match why {
            Some(detail) => {
                checks.push(Check { name: format!("approval:{}", t.asset), passed: false, detail });
                queued.push(t);
            }
            None => kept.push(t),
        }
    }
    let mut trades = kept;
    for t in trades.iter_mut().chain(queued.iter_mut()) {
        let p = &positions[t.asset.as_str()];
        t.rationale = rationale(t, weight(p.value()), p.target, p.band);
    }

    // Projected weights after the trades that settle now.
    let mut cash_after = account.cash;
    let mut after_value: BTreeMap<&str, Decimal> = positions.iter().map(|(a, p)| (*a, p.value())).collect();
    for t in &trades {
        let v = after_value.get_mut(t.asset.as_str()).expect("trades are in the universe");
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
    checks.push(Check {
        name: "cash_non_negative".into(),
        passed: cash_after >= Decimal::ZERO,
        detail: format!("cash after trades {cash_after}"),
    });
    if cash_after < Decimal::ZERO {
        return Err(Error::Internal(format!("account {}: cash would go negative ({cash_after})", account.id)));
    }
    let drift = positions
        .iter()
        .map(|(a, p)| Drift {
            asset: a.to_string(),
            target: p.target,
            before: weight(p.value()),
            after: weight(after_value[a]),
            band: p.band,
            out_of_band: (weight(p.value()) - p.target).abs() > p.band,
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
    trades.sort_by(|a, b| (a.side, &a.asset).cmp(&(b.side, &b.asset)));
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
        halts,
        tax,
        input_digest: digest(ctx, account, ips, model),
    })
}

/// Spreads `surplus` cash over the most underweight assets first, each up to its target.
fn invest_surplus(positions: &mut BTreeMap<&str, Position>, mut surplus: Decimal, base: Decimal) {
    let mut order: Vec<(&str, Decimal)> = positions
        .iter()
        .filter(|(_, p)| p.halt.is_none() && p.target > Decimal::ZERO)
        .map(|(a, p)| (*a, p.target - (p.value() + p.delta) / base.max(Decimal::ONE)))
        .filter(|(_, under)| *under > Decimal::ZERO)
        .collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for (asset, _) in order {
        if surplus <= Decimal::ZERO {
            break;
        }
        let p = positions.get_mut(asset).expect("from positions");
        let room = p.target * base - (p.value() + p.delta);
        let add = room.min(surplus);
        if add > Decimal::ZERO {
            p.delta += add;
            surplus -= add;
        }
    }
}

/// Raises `need` cash by selling the most overweight assets first, down to
/// their targets, then everything else pro rata.
fn raise_cash(positions: &mut BTreeMap<&str, Position>, mut need: Decimal, base: Decimal) {
    // First undo planned buys, largest first.
    let mut buys: Vec<(&str, Decimal)> = positions.iter().filter(|(_, p)| p.delta > Decimal::ZERO).map(|(a, p)| (*a, p.delta)).collect();
    buys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for (asset, _) in buys {
        if need <= Decimal::ZERO {
            return;
        }
        let p = positions.get_mut(asset).expect("from positions");
        let cut = p.delta.min(need);
        p.delta -= cut;
        need -= cut;
    }
    let mut over: Vec<(&str, Decimal)> = positions
        .iter()
        .filter(|(_, p)| p.halt.is_none())
        .map(|(a, p)| (*a, (p.value() + p.delta) - p.target * base))
        .filter(|(_, excess)| *excess > Decimal::ZERO)
        .collect();
    over.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for (asset, excess) in over {
        if need <= Decimal::ZERO {
            return;
        }
        let cut = excess.min(need);
        positions.get_mut(asset).expect("from positions").delta -= cut;
        need -= cut;
    }
    if need > Decimal::ZERO {
        let remaining: Decimal = positions.values().filter(|p| p.halt.is_none()).map(|p| p.value() + p.delta).sum();
        if remaining > Decimal::ZERO {
            let share = (need / remaining).min(Decimal::ONE);
            for p in positions.values_mut().filter(|p| p.halt.is_none()) {
                p.delta -= (p.value() + p.delta) * share;
            }
        }
    }
}

/// Scales every trade of `side` by `factor` (0 to 1), rounding down to quanta.
fn scale_side(trades: &mut Vec<Trade>, side: Side, factor: Decimal, ctx: &Context<'_>) {
    for t in trades.iter_mut().filter(|t| t.side == side) {
        t.quantity = round_down(t.quantity * factor, ctx.assets[t.asset.as_str()].quantum);
        t.value = t.quantity * t.price;
    }
    trades.retain(|t| t.quantity > Decimal::ZERO);
}

fn rationale(t: &Trade, weight: Decimal, target: Decimal, band: Decimal) -> String {
    let what = match t.reason {
        Reason::Rebalance => "rebalance",
        Reason::InvestInflow => "invest new cash",
        Reason::RaiseCash => "raise cash for a withdrawal",
        Reason::HarvestLoss => "harvest a tax loss",
        Reason::HarvestReplace => "replace a harvested asset",
        Reason::Excluded => "sell an excluded asset",
    };
    format!(
        "{} {} {} at {} to {what}: weight {:.2} % vs target {:.2} % (band ±{:.2} pp)",
        format!("{:?}", t.side).to_lowercase(),
        t.quantity,
        t.asset,
        t.price,
        weight * HUNDRED,
        target * HUNDRED,
        band * HUNDRED
    )
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
        input_digest: digest(ctx, account, ips, model),
    }
}

/// SHA-256 over the canonical JSON of everything the account's decision read.
fn digest(ctx: &Context<'_>, account: &Account, ips: &Ips, model: &Model) -> String {
    let quotes: BTreeMap<&String, &crate::types::Quote> = ctx
        .inputs
        .market
        .quotes
        .iter()
        .filter(|(a, _)| model.targets.contains_key(*a) || account.lots.iter().any(|l| &l.asset == *a))
        .collect();
    let read = serde_json::json!({
        "account": account,
        "ips": ips,
        "model": model,
        "quotes": quotes,
        "volatility_index": ctx.inputs.market.volatility_index,
        "limits": ctx.inputs.limits,
        "now": ctx.inputs.now.unix_timestamp(),
    });
    hex::encode(Sha256::digest(serde_json::to_vec(&read).expect("inputs serialize")))
}

impl AccountKind {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            AccountKind::Taxable => "taxable",
            AccountKind::TaxDeferred => "tax-deferred",
            AccountKind::TaxFree => "tax-free",
        }
    }
}
