//! Properties of the engine over generated portfolios: determinism, no
//! negative holdings or cash, cash conservation at estimated prices,
//! convergence, no wash sale within a household, and a tax-minimising lot
//! order that never does worse than FIFO.

use std::collections::{BTreeMap, BTreeSet};

use ballast_engine::{
    decide, lots, project,
    types::{
        Account, AccountKind, Asset, Band, CashFlow, FlowKind, Frequency, Harvesting, Inputs, Ips, Limits, Lot,
        LotMethod, MarketSnapshot, Model, PricePoint, Quote, Schedule, Side, Sizing, TaxRates, TriggerMode,
    },
    Decision, Status,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use time::{macros::datetime, Date, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-21 15:00 UTC);

fn d(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

fn asset(id: &str, group: Option<&str>, inefficient: bool) -> Asset {
    Asset {
        id: id.into(),
        class: "fund".into(),
        quantum: Decimal::new(1, 3),
        liquid: true,
        substitute_group: group.map(Into::into),
        tax_inefficient: inefficient,
    }
}

const IDS: [&str; 5] = ["EQ", "EQ2", "BD", "RE", "EM"];

#[derive(Debug, Clone)]
struct Scenario {
    prices: Vec<i64>,
    weights: Vec<u32>,
    cash_weight: u32,
    band_pp: u32,
    mode: u8,
    sizing: bool,
    method: u8,
    harvest: bool,
    household_mode: bool,
    accounts: Vec<AccountSeed>,
}

#[derive(Debug, Clone)]
struct AccountSeed {
    household: u8,
    kind: u8,
    cash: i64,
    lots: Vec<(usize, i64, i64, i64)>, // asset, quantity (milli), cost (cents), days ago
    flow: Option<(u8, i64)>,
    last_rebalanced_days: Option<i64>,
}

/// Accounts of realistic size: at least one unit per lot, cash and cash flows
/// of at least 100 (the minimum trade is 1).
fn account_seed() -> impl Strategy<Value = AccountSeed> {
    (
        0u8..3,
        0u8..3,
        prop_oneof![Just(0i64), 10_000i64..5_000_000],
        prop::collection::vec((0usize..5, 1_000i64..400_000, 500i64..30_000, 0i64..900), 0..8),
        prop::option::of((0u8..3, 10_000i64..2_000_000)),
        prop::option::of(0i64..200),
    )
        .prop_map(|(household, kind, cash, lots, flow, last_rebalanced_days)| AccountSeed {
            household,
            kind,
            cash,
            lots,
            flow,
            last_rebalanced_days,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(1_000i64..30_000, 5),
        prop::collection::vec(0u32..100, 5),
        0u32..20,
        2u32..10,
        0u8..3,
        any::<bool>(),
        0u8..5,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(account_seed(), 1..7),
    )
        .prop_map(|(prices, weights, cash_weight, band_pp, mode, sizing, method, harvest, household_mode, accounts)| Scenario {
            prices,
            weights,
            cash_weight,
            band_pp,
            mode,
            sizing,
            method,
            harvest,
            household_mode,
            accounts,
        })
}

fn build(s: &Scenario) -> Inputs {
    let assets = vec![
        asset("EQ", Some("equity"), false),
        asset("EQ2", Some("equity"), false),
        asset("BD", None, true),
        asset("RE", None, false),
        asset("EM", None, false),
    ];
    // Model targets on EQ, BD, RE, EM (EQ2 is EQ's substitute), summing to 1 with cash.
    let raw: Vec<u32> = [s.weights[0], s.weights[2], s.weights[3], s.weights[4]].into();
    let total: u32 = raw.iter().sum::<u32>() + s.cash_weight;
    let total = Decimal::from(total.max(1));
    let mut targets = BTreeMap::new();
    let mut assigned = Decimal::ZERO;
    for (id, w) in ["EQ", "BD", "RE", "EM"].iter().zip(&raw) {
        let t = (Decimal::from(*w) / total).round_dp(4);
        assigned += t;
        targets.insert((*id).to_string(), t);
    }
    let model = Model {
        id: "m".into(),
        targets,
        cash_target: Decimal::ONE - assigned,
        band: Band { absolute_pp: Some(Decimal::from(s.band_pp)), relative_pct: Some(Decimal::from(30)) },
        overrides: BTreeMap::new(),
        small_targets: Some(ballast_engine::types::SmallTargetRule { below_weight: d(10), min_pp: Decimal::ONE }),
    };
    let ips = Ips {
        id: "ips".into(),
        version: 3,
        document_hash: "00".repeat(32),
        model: "m".into(),
        band: None,
        schedule: Schedule {
            mode: [TriggerMode::Threshold, TriggerMode::Calendar, TriggerMode::Hybrid][s.mode as usize],
            frequency: Some(Frequency::Monthly),
            sizing: if s.sizing { Sizing::Target } else { Sizing::BandEdge { inner_margin: d(50) } },
        },
        restrictions: Default::default(),
        tax: TaxRates { short_term: d(40), long_term: d(20) },
        lot_method: [LotMethod::Fifo, LotMethod::Lifo, LotMethod::Hifo, LotMethod::SpecificId, LotMethod::TaxMinimizing]
            [s.method as usize],
        harvesting: Harvesting { enabled: s.harvest, min_loss: d(10_000), min_loss_pct: d(5) },
        approval_limit: None,
        cash_buffer: Decimal::ZERO,
        min_trade_value: d(1_00),
        household_mode: s.household_mode,
    };
    let today = NOW.date();
    let accounts = s
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| Account {
            id: i as u64 + 1,
            household: format!("h{}", a.household),
            kind: [AccountKind::Taxable, AccountKind::TaxDeferred, AccountKind::TaxFree][a.kind as usize],
            ips: "ips".into(),
            cash: d(a.cash),
            lots: a
                .lots
                .iter()
                .enumerate()
                .map(|(n, (asset, q, cost, days))| Lot {
                    id: format!("l{n}"),
                    asset: IDS[*asset].into(),
                    quantity: Decimal::new(*q, 3),
                    cost: d(*cost),
                    acquired: today - time::Duration::days(*days),
                })
                .collect(),
            flows: a
                .flow
                .map(|(k, amount)| {
                    let kind = [FlowKind::Deposit, FlowKind::Dividend, FlowKind::Withdrawal][k as usize];
                    vec![CashFlow { kind, amount: d(amount) }]
                })
                .unwrap_or_default(),
            last_rebalanced: a.last_rebalanced_days.map(|n| today - time::Duration::days(n)),
            ips_version_applied: Some(3),
            manual_request: false,
            sell_order: vec!["l2".into(), "l0".into()],
        })
        .collect();
    let quotes = IDS
        .iter()
        .zip(&s.prices)
        .map(|(id, p)| {
            let point = PricePoint { price: d(*p), source: "feed".into(), time: NOW };
            ((*id).to_string(), Quote { primary: point, secondary: None, previous_close: Some(d(*p)) })
        })
        .collect();
    Inputs {
        assets,
        models: vec![model],
        ips: vec![ips],
        accounts,
        market: MarketSnapshot { quotes, volatility_index: None },
        recent_trades: Vec::new(),
        limits: Limits::default(),
        now: NOW,
    }
}

fn held(account: &Account) -> BTreeMap<String, Decimal> {
    let mut h = BTreeMap::new();
    for l in &account.lots {
        *h.entry(l.asset.clone()).or_insert(Decimal::ZERO) += l.quantity;
    }
    h
}

fn sold(d: &Decision) -> BTreeMap<String, Decimal> {
    let mut s = BTreeMap::new();
    for t in d.trades.iter().filter(|t| t.side == Side::Sell) {
        *s.entry(t.asset.clone()).or_insert(Decimal::ZERO) += t.quantity;
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_same_inputs_give_byte_identical_decisions_which_read_back_unchanged(s in scenario()) {
        let inputs = build(&s);
        let decisions = decide(&inputs).unwrap();
        let a = serde_json::to_vec(&decisions).unwrap();
        let b = serde_json::to_vec(&decide(&inputs.clone()).unwrap()).unwrap();
        prop_assert_eq!(&a, &b);
        // What the audit log keeps of a decision is the decision.
        let back: Vec<Decision> = serde_json::from_slice(&a).unwrap();
        prop_assert_eq!(back, decisions);
    }

    #[test]
    fn nothing_goes_negative_and_cash_is_conserved(
        s in scenario(),
        margin_bps in prop::option::of(0i64..300),
        approval_limit in prop::option::of(1_000i64..50_000),
    ) {
        let mut inputs = build(&s);
        // Fills up to the margin worse than the estimate, and trades above
        // the approval limit waiting (with the purchases they would fund).
        inputs.limits.price_margin = margin_bps.map(|bps| Decimal::new(bps, 4));
        inputs.ips[0].approval_limit = approval_limit.map(Decimal::from);
        let margin = inputs.limits.price_margin.unwrap_or_default();
        for (account, decision) in inputs.accounts.iter().zip(decide(&inputs).unwrap()) {
            prop_assert!(decision.cash_after >= Decimal::ZERO, "cash after {}", decision.cash_after);
            let (buys, sells) = decision.trades.iter().fold((Decimal::ZERO, Decimal::ZERO), |(b, s), t| match t.side {
                Side::Buy => (b + t.value, s),
                Side::Sell => (b, s + t.value),
            });
            prop_assert!(
                account.cash + sells * (Decimal::ONE - margin) - buys * (Decimal::ONE + margin) >= Decimal::ZERO,
                "account {}: cash {} does not pay buys of {} with sales of {} at a margin of {}", account.id, account.cash, buys, sells, margin
            );
            let h = held(account);
            for (asset, q) in sold(&decision) {
                prop_assert!(q <= h.get(&asset).copied().unwrap_or_default(), "account {} sells {} {} of {:?}", account.id, q, asset, h.get(&asset));
            }
            let flow: Decimal = decision.trades.iter().map(|t| if t.side == Side::Sell { t.value } else { -t.value }).sum();
            prop_assert_eq!(decision.cash_after, account.cash + flow);
            for t in &decision.trades {
                prop_assert_eq!(t.value, t.quantity * t.price);
                if t.side == Side::Sell {
                    let from_lots: Decimal = t.lots.iter().map(|u| u.quantity).sum();
                    prop_assert_eq!(from_lots, t.quantity, "every unit sold comes from a lot");
                }
            }
            let projected = project(account, &decision, NOW.date());
            prop_assert!(projected.lots.iter().all(|l| l.quantity > Decimal::ZERO));
        }
    }

    #[test]
    fn deciding_again_on_the_projected_state_trades_nothing(s in scenario()) {
        let inputs = build(&s);
        let decisions = decide(&inputs).unwrap();
        let mut next = inputs.clone();
        next.accounts = inputs.accounts.iter().zip(&decisions).map(|(a, d)| project(a, d, NOW.date())).collect();
        // The agent remembers today's trades for the wash-sale rules.
        for d in &decisions {
            for t in &d.trades {
                let loss: Decimal = t.lots.iter().map(|u| u.gain).filter(|g| *g < Decimal::ZERO).sum();
                next.recent_trades.push(ballast_engine::types::PastTrade {
                    account: d.account,
                    household: d.household.clone(),
                    asset: t.asset.clone(),
                    side: t.side,
                    quantity: t.quantity,
                    date: NOW.date(),
                    realised_loss: -loss,
                });
            }
        }
        for d in decide(&next).unwrap() {
            prop_assert!(
                d.trades.is_empty() || d.status == Status::Halted,
                "account {} trades again: {:?} (triggers {:?})", d.account, d.trades, d.triggers
            );
        }
    }

    #[test]
    fn no_trade_increases_drift(s in scenario()) {
        let inputs = build(&s);
        for d in decide(&inputs).unwrap() {
            // Raising cash for a withdrawal may have to sell underweight sleeves
            // too; in household mode the household's drift is what counts.
            let withdrawal = d.triggers.iter().any(|t| t.kind == ballast_engine::TriggerKind::Withdrawal);
            if withdrawal || d.checks.iter().any(|c| c.name == "household_mode") {
                continue;
            }
            // Rounding to quanta may leave up to one quantum of each trade undone.
            let rounding: Decimal = d.trades.iter().map(|t| Decimal::new(1, 3) * t.price).sum::<Decimal>()
                / d.value.max(Decimal::ONE);
            for x in &d.drift {
                let before = (x.before - x.target).abs();
                let after = (x.after - x.target).abs();
                prop_assert!(
                    after <= before + rounding + Decimal::new(1, 9),
                    "account {} sleeve {}: drift {} -> {} (target {}), trades {:?}", d.account, x.asset, x.before, x.after, x.target, d.trades
                );
            }
        }
    }

    #[test]
    fn no_household_both_sells_at_a_loss_and_buys_the_same_asset(s in scenario()) {
        let inputs = build(&s);
        let decisions = decide(&inputs).unwrap();
        let mut households: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
        for (account, d) in inputs.accounts.iter().zip(&decisions) {
            let entry = households.entry(d.household.as_str()).or_default();
            // Only a sale in a taxable account realises a loss for tax.
            let taxable = account.kind.realises_tax();
            for t in d.trades.iter().chain(&d.queued) {
                match t.side {
                    Side::Buy => { entry.0.insert(t.asset.as_str()); }
                    Side::Sell if taxable && t.lots.iter().any(|u| u.gain < Decimal::ZERO) => { entry.1.insert(t.asset.as_str()); }
                    Side::Sell => {}
                }
            }
        }
        for (household, (bought, loss_sold)) in &households {
            let both: Vec<_> = bought.intersection(loss_sold).collect();
            prop_assert!(both.is_empty(), "household {} buys and sells at a loss {:?}", household, both);
        }
        // A purchase blocked for a sale at a loss today names an asset the
        // household does sell at a loss in its final decisions.
        for d in &decisions {
            for c in &d.checks {
                for part in c.detail.split("; ") {
                    let Some((asset, _)) = part.rsplit_once(": wash sale: sold at a loss in the household today") else { continue };
                    let asset = asset.rsplit(": ").next().unwrap_or(asset);
                    prop_assert!(
                        households[d.household.as_str()].1.contains(asset),
                        "account {} cites a loss sale of {} its household does not make: {}", d.account, asset, c.detail
                    );
                }
            }
        }
    }

    #[test]
    fn rounding_down_to_a_decimal_place_cuts_there(mantissa in 0i128..1_000_000_000_000_000, scale in 0u32..=28, places in 0u32..=12) {
        let quantity = Decimal::from_i128_with_scale(mantissa, scale);
        let quantum = Decimal::new(1, places);
        // What dividing by the quantum, flooring and multiplying back gives
        // (below 10^15, so that the division cannot overflow).
        let by_division = if quantity <= Decimal::ZERO { Decimal::ZERO } else { ((quantity / quantum).floor() * quantum).normalize() };
        let rounded = ballast_engine::round_down(quantity, quantum);
        prop_assert_eq!(rounded, by_division);
        prop_assert_eq!(rounded.to_string(), by_division.to_string());
    }

    #[test]
    fn the_tax_minimising_order_never_realises_more_tax_than_fifo(
        lots_seed in prop::collection::vec((1i64..1_000, 1i64..20_000, 0i64..1_500), 1..12),
        price in 1i64..20_000,
        fraction in 1u32..=100,
        equal_rates in any::<bool>(),
    ) {
        let today: Date = NOW.date();
        let lots: Vec<Lot> = lots_seed.iter().enumerate().map(|(i, (q, c, days))| Lot {
            id: format!("l{i}"), asset: "EQ".into(), quantity: Decimal::from(*q), cost: d(*c),
            acquired: today - time::Duration::days(*days),
        }).collect();
        let refs: Vec<&Lot> = lots.iter().collect();
        let total: Decimal = lots.iter().map(|l| l.quantity).sum();
        let quantity = (total * Decimal::from(fraction) / Decimal::ONE_HUNDRED).floor().max(Decimal::ONE);
        let rates = if equal_rates { TaxRates { short_term: d(30), long_term: d(30) } } else { TaxRates { short_term: d(40), long_term: d(20) } };
        let price = d(price);
        let take = |m| lots::take(&lots::sale_order(&refs, m, price, today, &rates, &[]), quantity, price, today);
        let minimal = take(LotMethod::TaxMinimizing);
        let fifo = take(LotMethod::Fifo);
        prop_assert!(lots::tax_of(&minimal, &rates) <= lots::tax_of(&fifo, &rates));
        if equal_rates {
            let gain = |u: &[ballast_engine::decision::LotUse]| u.iter().map(|x| x.gain).sum::<Decimal>();
            prop_assert!(gain(&minimal) <= gain(&fifo));
        }
    }
}


