//! Tax lots: which lots a sale uses, the gain each realises, and whether it
//! is short- or long-term.

use rust_decimal::Decimal;
use time::Date;

use crate::{
    decision::{LotUse, Term},
    engine::positive,
    types::{Lot, LotMethod, TaxRates},
};

/// Long-term when held more than one year: sold after the anniversary of the purchase.
pub fn term(acquired: Date, sold: Date) -> Term {
    let anniversary = acquired
        .replace_year(acquired.year() + 1)
        // 29 February: the anniversary is 1 March.
        .unwrap_or_else(|_| Date::from_calendar_date(acquired.year() + 1, time::Month::March, 1).expect("1 March exists"));
    if sold > anniversary { Term::Long } else { Term::Short }
}

/// The rate a gain of this term is taxed at.
pub fn rate(rates: &TaxRates, term: Term) -> Decimal {
    match term {
        Term::Short => rates.short_term,
        Term::Long => rates.long_term,
    }
}

/// The lots of one asset in the order a sale uses them.
///
/// `TaxMinimizing` orders by the tax one unit of each lot realises at the IPS
/// rates, lowest first: losses before gains, a short-term loss before an
/// equal long-term one (it offsets income taxed higher), long-term gains
/// before short-term ones. Taking units greedily in that order realises the
/// least tax any order can for the same quantity — never more than FIFO —
/// and with equal rates the least gain. Ties fall back to acquisition order.
pub fn sale_order<'a>(
    lots: &[&'a Lot],
    method: LotMethod,
    price: Decimal,
    today: Date,
    rates: &TaxRates,
    specific: &[String],
) -> Vec<&'a Lot> {
    let mut ordered: Vec<&Lot> = lots.to_vec();
    sort_for_sale(&mut ordered, |l| l, method, price, today, rates, specific);
    ordered
}

/// Puts `items` in the order a sale uses their lots (see [`sale_order`]):
/// the engine sorts the positions of an account's lots, not copies of them.
pub(crate) fn sort_for_sale<'a, T>(
    items: &mut [T],
    lot: impl Fn(&T) -> &'a Lot,
    method: LotMethod,
    price: Decimal,
    today: Date,
    rates: &TaxRates,
    specific: &[String],
) {
    // Acquisition order (then id) first, so that every sort below is stable and total.
    items.sort_by(|a, b| {
        let (a, b) = (lot(a), lot(b));
        a.acquired.cmp(&b.acquired).then_with(|| a.id.cmp(&b.id))
    });
    match method {
        LotMethod::Fifo => {}
        LotMethod::Lifo => items.reverse(),
        LotMethod::Hifo => items.sort_by_key(|l| std::cmp::Reverse(lot(l).cost)),
        LotMethod::SpecificId => {
            let rank = |l: &Lot| specific.iter().position(|id| *id == l.id).unwrap_or(usize::MAX);
            items.sort_by_key(|l| rank(lot(l)));
        }
        LotMethod::TaxMinimizing => {
            let key = |l: &Lot| {
                let gain = price - l.cost;
                (gain * rate(rates, term(l.acquired, today)), gain)
            };
            // A key costs a multiplication and a date computation: once per lot.
            items.sort_by_cached_key(|a| key(lot(a)));
        }
    }
}

/// Takes `quantity` from `lots` in sale order.
pub fn take(ordered: &[&Lot], quantity: Decimal, price: Decimal, today: Date) -> Vec<LotUse> {
    take_from(ordered.iter().copied(), &mut Whole, quantity, price, today)
}

/// What is left of lots as sales use them: the engine keeps it by each
/// lot's position in its account.
pub(crate) trait Remaining<'l, K> {
    /// The lot and what is left of it.
    fn lot(&self, key: K) -> (&'l Lot, Decimal);
    /// A sale uses `quantity` of it.
    fn take(&mut self, key: K, quantity: Decimal);
}

/// Lots used by no sale before: all of each is left.
struct Whole;

impl<'a> Remaining<'a, &'a Lot> for Whole {
    fn lot(&self, lot: &'a Lot) -> (&'a Lot, Decimal) {
        (lot, lot.quantity)
    }

    fn take(&mut self, _: &'a Lot, _: Decimal) {}
}

/// Takes `quantity` from what is `left` of the lots `ordered` (keys of
/// `left`), in that order.
pub(crate) fn take_from<'l, K: Copy>(
    ordered: impl IntoIterator<Item = K>,
    left: &mut impl Remaining<'l, K>,
    mut quantity: Decimal,
    price: Decimal,
    today: Date,
) -> Vec<LotUse> {
    let mut used = Vec::with_capacity(4);
    for key in ordered {
        if !positive(quantity) {
            break;
        }
        let (lot, there) = left.lot(key);
        let q = there.min(quantity);
        if !positive(q) {
            continue;
        }
        quantity -= q;
        used.push(LotUse { lot: lot.id.clone(), quantity: q, gain: q * (price - lot.cost), term: term(lot.acquired, today) });
        left.take(key, q);
    }
    used
}

/// Realised tax of the lots a sale uses (negative: a saving).
pub fn tax_of(used: &[LotUse], rates: &TaxRates) -> Decimal {
    used.iter().map(|u| u.gain * rate(rates, u.term)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use time::macros::date;

    fn lot(id: &str, quantity: Decimal, cost: Decimal, acquired: Date) -> Lot {
        Lot { id: id.into(), asset: "GEQ".into(), quantity, cost, acquired }
    }

    const RATES: TaxRates = TaxRates { short_term: dec!(0.40), long_term: dec!(0.20) };
    const TODAY: Date = date!(2026 - 11 - 21);

    fn lots() -> Vec<Lot> {
        vec![
            lot("a", dec!(10), dec!(80), date!(2023 - 01 - 10)),  // long-term gain 20/unit
            lot("b", dec!(10), dec!(120), date!(2024 - 06 - 01)), // long-term loss -20/unit
            lot("c", dec!(10), dec!(95), date!(2026 - 03 - 01)),  // short-term gain 5/unit
            lot("d", dec!(10), dec!(110), date!(2026 - 09 - 01)), // short-term loss -10/unit
        ]
    }

    fn ids(order: &[&Lot]) -> String {
        order.iter().map(|l| l.id.as_str()).collect()
    }

    #[test]
    fn holding_more_than_a_year_is_long_term() {
        assert_eq!(term(date!(2025 - 11 - 21), date!(2026 - 11 - 21)), Term::Short, "exactly one year is not more");
        assert_eq!(term(date!(2025 - 11 - 21), date!(2026 - 11 - 22)), Term::Long);
        assert_eq!(term(date!(2024 - 02 - 29), date!(2025 - 03 - 01)), Term::Short);
        assert_eq!(term(date!(2024 - 02 - 29), date!(2025 - 03 - 02)), Term::Long);
    }

    #[test]
    fn each_method_orders_lots_as_named() {
        let lots = lots();
        let refs: Vec<&Lot> = lots.iter().collect();
        let order = |m| ids(&sale_order(&refs, m, dec!(100), TODAY, &RATES, &["c".into(), "a".into()]));
        assert_eq!(order(LotMethod::Fifo), "abcd");
        assert_eq!(order(LotMethod::Lifo), "dcba");
        assert_eq!(order(LotMethod::Hifo), "bdca");
        assert_eq!(order(LotMethod::SpecificId), "cabd");
        // tax per unit: a +4 (20 x 0.2), b -4 (-20 x 0.2), c +2 (5 x 0.4), d -4 (-10 x 0.4);
        // b and d tie at -4 and the larger loss (b, -20) goes first.
        assert_eq!(order(LotMethod::TaxMinimizing), "bdca");
    }

    #[test]
    fn a_sale_takes_lots_in_order_with_gains_and_terms() {
        let lots = lots();
        let refs: Vec<&Lot> = lots.iter().collect();
        let order = sale_order(&refs, LotMethod::Fifo, dec!(100), TODAY, &RATES, &[]);
        let used = take(&order, dec!(15), dec!(100), TODAY);
        assert_eq!(used.len(), 2);
        assert_eq!((used[0].lot.as_str(), used[0].quantity, used[0].gain, used[0].term), ("a", dec!(10), dec!(200), Term::Long));
        assert_eq!((used[1].lot.as_str(), used[1].quantity, used[1].gain, used[1].term), ("b", dec!(5), dec!(-100), Term::Long));
        // 200 x 0.2 - 100 x 0.2
        assert_eq!(tax_of(&used, &RATES), dec!(20));
    }
}
