//! Deterministic synthetic books for benchmarks and demos: any number of
//! accounts over eight assets with five lots each, drifted away from one of
//! three models, with some cash flows ([`book`]), and the same accounts a
//! month after they were rebalanced ([`day_after`]). The same arguments
//! always give the same inputs (a hash, not a random generator, picks every
//! number).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::types::{
    Account, AccountKind, Asset, Band, CashFlow, FlowKind, Frequency, Harvesting, Inputs, Ips, Limits, Lot, LotMethod,
    MarketSnapshot, Model, PastTrade, PricePoint, Quote, Schedule, Side, Sizing, TaxRates, TriggerMode,
};

/// The eight assets: id, class, price in cents, substitute group, tax-inefficient.
const ASSETS: [(&str, &str, i64, Option<&str>, bool); 8] = [
    ("USEQ", "equity", 10_000, Some("us_equity"), false),
    ("USEQ2", "equity", 5_000, Some("us_equity"), false),
    ("INTL", "equity", 4_000, None, false),
    ("EMKT", "equity", 2_500, None, false),
    ("BOND", "bond", 5_000, Some("bonds"), true),
    ("BOND2", "bond", 2_000, Some("bonds"), true),
    ("REIT", "real_estate", 2_500, None, true),
    ("GOLD", "commodity", 18_000, None, false),
];

/// A fixed, well-spread function of the pair: the "randomness" of every
/// synthetic book (this one and the demo's).
pub fn mix(a: u64, b: u64) -> u64 {
    // SplitMix64 finaliser over the pair: fast, deterministic, well spread.
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `accounts` accounts in households of up to three, decided at `now`:
/// every account holds all eight assets in amounts unrelated to its model
/// (nearly all are far out of their bands) and lots bought up to 30 %
/// dearer or cheaper than today's price (many losses to harvest). A hard
/// day: nearly every account trades, some six trades each.
pub fn book(accounts: usize, now: OffsetDateTime) -> Inputs {
    let assets = ASSETS
        .iter()
        .map(|(id, class, _, group, inefficient)| Asset {
            id: (*id).into(),
            class: (*class).into(),
            quantum: Decimal::new(1, 6),
            liquid: true,
            substitute_group: group.map(Into::into),
            tax_inefficient: *inefficient,
        })
        .collect();
    let model = |id: &str, weights: [(&str, i64); 6], cash: i64| Model {
        id: id.into(),
        targets: weights.iter().map(|(a, w)| ((*a).to_string(), Decimal::new(*w, 2))).collect(),
        cash_target: Decimal::new(cash, 2),
        band: Band { absolute_pp: Some(Decimal::from(5)), relative_pct: Some(Decimal::from(25)) },
        overrides: BTreeMap::new(),
        small_targets: None,
    };
    let models = vec![
        model("growth", [("USEQ", 45), ("INTL", 20), ("EMKT", 10), ("BOND", 10), ("REIT", 5), ("GOLD", 5)], 5),
        model("balanced", [("USEQ", 30), ("INTL", 15), ("EMKT", 5), ("BOND", 35), ("REIT", 5), ("GOLD", 5)], 5),
        model("income", [("USEQ", 15), ("INTL", 10), ("EMKT", 5), ("BOND", 55), ("REIT", 10), ("GOLD", 3)], 2),
    ];
    let ips = models
        .iter()
        .enumerate()
        .map(|(i, m)| Ips {
            id: format!("ips-{}", m.id),
            version: 1,
            document_hash: format!("{:064x}", mix(i as u64, 7)),
            model: m.id.clone(),
            band: None,
            schedule: Schedule {
                mode: [TriggerMode::Threshold, TriggerMode::Hybrid, TriggerMode::Calendar][i],
                frequency: Some(Frequency::Quarterly),
                sizing: if i == 1 { Sizing::BandEdge { inner_margin: Decimal::new(5, 1) } } else { Sizing::Target },
            },
            restrictions: Default::default(),
            tax: TaxRates { short_term: Decimal::new(37, 2), long_term: Decimal::new(20, 2) },
            lot_method: LotMethod::TaxMinimizing,
            harvesting: Harvesting { enabled: true, min_loss: Decimal::from(500), min_loss_pct: Decimal::new(10, 2) },
            approval_limit: Some(Decimal::from(250_000)),
            cash_buffer: Decimal::from(100),
            min_trade_value: Decimal::from(25),
            household_mode: false,
        })
        .collect();
    let today = now.date();
    let accounts = (0..accounts as u64)
        .map(|n| {
            let r = mix(n, 1);
            let kind = [AccountKind::Taxable, AccountKind::Taxable, AccountKind::TaxDeferred, AccountKind::TaxFree][(r % 4) as usize];
            let lots = ASSETS
                .iter()
                .enumerate()
                .flat_map(|(a, (id, _, price, _, _))| {
                    (0..5u64).map(move |k| {
                        let h = mix(n * 64 + a as u64, k);
                        // Cost within ±30 % of today's price; 1 to 200 units; up to 4 years old.
                        let cost = price * (70 + (h % 61) as i64) / 100;
                        Lot {
                            id: format!("{a}-{k}"),
                            asset: (*id).into(),
                            quantity: Decimal::from(1 + (h >> 8) % 200),
                            cost: Decimal::new(cost, 2),
                            acquired: today - time::Duration::days(1 + ((h >> 16) % 1_460) as i64),
                        }
                    })
                })
                .collect();
            let flows = match (r >> 8) % 10 {
                0 => vec![CashFlow { kind: FlowKind::Deposit, amount: Decimal::from(1_000 + (r >> 12) % 20_000) }],
                1 => vec![CashFlow { kind: FlowKind::Withdrawal, amount: Decimal::from(500 + (r >> 12) % 5_000) }],
                2 => vec![CashFlow { kind: FlowKind::Dividend, amount: Decimal::from(50 + (r >> 12) % 500) }],
                _ => Vec::new(),
            };
            Account {
                id: n + 1,
                household: format!("hh{}", n / 3),
                kind,
                ips: format!("ips-{}", ["growth", "balanced", "income"][((r >> 4) % 3) as usize]),
                cash: Decimal::from((r >> 20) % 20_000),
                lots,
                flows,
                last_rebalanced: Some(today - time::Duration::days(((r >> 24) % 120) as i64)),
                ips_version_applied: Some(1),
                manual_request: false,
                sell_order: Vec::new(),
            }
        })
        .collect();
    let quotes = ASSETS
        .iter()
        .map(|(id, _, price, _, _)| {
            let p = Decimal::new(*price, 2);
            ((*id).to_string(), Quote { primary: PricePoint { price: p, source: "feed".into(), time: now }, secondary: None, previous_close: Some(p) })
        })
        .collect();
    Inputs {
        assets,
        models,
        ips,
        accounts,
        market: MarketSnapshot { quotes, volatility_index: None },
        recent_trades: Vec::new(),
        limits: Limits::default(),
        now,
    }
}

/// How each asset's price moved in the month before [`day_after`], in
/// per cent, in the order of the assets.
const MONTH_MOVES: [i64; 8] = [3, -3, 1, -5, 2, -1, 4, -2];

/// An ordinary day: [`book`]'s accounts (made 30 days before `now`) as they
/// are once the trades then decided settled at their estimated prices
/// (lots sold and bought, cash moved, withdrawals paid), with prices moved
/// by -5 % to +4 % since, each account's cash flow of then due again, and
/// the month's trades on record for the wash-sale rules. Most accounts
/// stay within their bands; the ones that trade have a cash flow, a loss to
/// harvest, a band the month's moves crossed, or a calendar rebalance due.
pub fn day_after(accounts: usize, now: OffsetDateTime) -> Inputs {
    let then = now - time::Duration::days(30);
    let mut inputs = book(accounts, then);
    let decisions = crate::decide(&inputs).expect("the synthetic book decides");
    let day = then.date();
    inputs.recent_trades = inputs
        .accounts
        .iter()
        .zip(&decisions)
        .flat_map(|(a, d)| {
            d.trades.iter().map(move |t| {
                let gain: Decimal = t.lots.iter().map(|u| u.gain).sum();
                PastTrade {
                    account: a.id,
                    household: a.household.clone(),
                    asset: t.asset.clone(),
                    side: t.side,
                    quantity: t.quantity,
                    date: day,
                    realised_loss: if t.side == Side::Sell && a.kind.realises_tax() { (-gain).max(Decimal::ZERO) } else { Decimal::ZERO },
                }
            })
        })
        .collect();
    inputs.accounts = inputs
        .accounts
        .iter()
        .zip(&decisions)
        .map(|(a, d)| Account { flows: a.flows.clone(), ..crate::project(a, d, day) })
        .collect();
    for ((id, ..), moved) in ASSETS.iter().zip(MONTH_MOVES) {
        let Some(quote) = inputs.market.quotes.get_mut(*id) else { continue };
        let price = (quote.primary.price * Decimal::new(100 + moved, 2)).round_dp(2);
        quote.primary = PricePoint { price, source: quote.primary.source.clone(), time: now };
        quote.previous_close = Some(price);
    }
    inputs.now = now;
    inputs
}
