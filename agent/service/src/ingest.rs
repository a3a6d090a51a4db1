//! Ingest: the market as the engine sees it, read from the chain. The
//! primary price of each asset is its `PriceFeed` (the AggregatorV3 shape);
//! the independent second source is the venue's spot price (the Uniswap V2
//! pair's reserves). The engine halts an asset whose feed is stale or whose
//! two sources disagree. Positions come from the `PortfolioLedger`'s books.
//!
//! Chain integers become `Decimal` here and only here: feed answers by the
//! feed's decimals, token amounts by the token's decimals.

use std::collections::BTreeMap;

use alloy::{
    primitives::{U256, aliases::U80},
    providers::{DynProvider, Provider},
};
use ballast_chain::{
    bindings::{IUniswapV2Pair, PortfolioLedger, PriceFeed},
    manifest::{AssetInfo, Manifest},
};
use ballast_engine::types::{MarketSnapshot, PricePoint, Quote};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// `amount` base units of a token with `decimals` decimals, exactly.
pub fn to_decimal(amount: U256, decimals: u8) -> Result<Decimal> {
    let mantissa = i128::try_from(amount).map_err(|_| Error::Chain(format!("amount {amount} does not fit a decimal")))?;
    Decimal::try_from_i128_with_scale(mantissa, u32::from(decimals))
        .map(|d| d.normalize())
        .map_err(|e| Error::Chain(format!("amount {amount} with {decimals} decimals: {e}")))
}

fn signed_to_decimal(answer: alloy::primitives::I256, decimals: u8) -> Result<Decimal> {
    let mantissa = i128::try_from(answer).map_err(|_| Error::Chain(format!("feed answer {answer} does not fit a decimal")))?;
    Decimal::try_from_i128_with_scale(mantissa, u32::from(decimals))
        .map(|d| d.normalize())
        .map_err(|e| Error::Chain(format!("feed answer {answer}: {e}")))
}

fn unix_time(seconds: U256) -> Result<OffsetDateTime> {
    let s = i64::try_from(seconds).map_err(|_| Error::Chain(format!("time {seconds} out of range")))?;
    OffsetDateTime::from_unix_timestamp(s).map_err(|e| Error::Chain(format!("time {s}: {e}")))
}

fn rpc<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Chain(format!("{what}: {e}"))
}

/// The feed's latest answer, its time, and the answer of the round before
/// (the previous close) when there is one.
async fn feed_quote(provider: &DynProvider, asset: &AssetInfo) -> Result<(PricePoint, Option<Decimal>)> {
    let feed = PriceFeed::new(asset.feed, provider.clone());
    let latest = feed.latestRoundData().call().await.map_err(rpc(&format!("{} feed latestRoundData", asset.symbol)))?;
    let price = signed_to_decimal(latest._1, asset.feed_decimals)?;
    let point = PricePoint { price, source: format!("feed:{}", asset.symbol), time: unix_time(latest._3)? };
    let round: u128 = latest._0.to::<u128>();
    let previous = if round > 1 {
        let prev = feed.getRoundData(U80::from(round - 1)).call().await.map_err(rpc(&format!("{} feed getRoundData", asset.symbol)))?;
        Some(signed_to_decimal(prev._1, asset.feed_decimals)?)
    } else {
        None
    };
    Ok((point, previous))
}

/// The venue's spot price of `asset` in cash: cash reserve over asset reserve.
async fn venue_quote(provider: &DynProvider, manifest: &Manifest, asset: &AssetInfo, at: OffsetDateTime) -> Result<Option<PricePoint>> {
    let pair = IUniswapV2Pair::new(asset.pair, provider.clone());
    let reserves = pair.getReserves().call().await.map_err(rpc(&format!("{} pair getReserves", asset.symbol)))?;
    let token0 = pair.token0().call().await.map_err(rpc(&format!("{} pair token0", asset.symbol)))?;
    let (r0, r1) = (U256::from(reserves.reserve0), U256::from(reserves.reserve1));
    let (asset_reserve, cash_reserve) = if token0 == asset.token { (r0, r1) } else { (r1, r0) };
    if asset_reserve.is_zero() || cash_reserve.is_zero() {
        return Ok(None);
    }
    let units = to_decimal(asset_reserve, asset.decimals)?;
    let cash = to_decimal(cash_reserve, manifest.cash.decimals)?;
    let price = cash.checked_div(units).ok_or_else(|| Error::Chain(format!("{} venue price overflows", asset.symbol)))?;
    Ok(Some(PricePoint { price: price.round_dp(8), source: format!("venue:{}", asset.symbol), time: at }))
}

/// Every asset's quote: feed price as primary, venue spot as secondary.
pub async fn market(provider: &DynProvider, manifest: &Manifest) -> Result<MarketSnapshot> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(rpc("latest block"))?
        .ok_or_else(|| Error::Chain("no latest block".into()))?;
    let at = unix_time(U256::from(block.header.timestamp))?;
    let mut quotes = BTreeMap::new();
    for asset in &manifest.assets {
        let (primary, previous_close) = feed_quote(provider, asset).await?;
        let secondary = venue_quote(provider, manifest, asset, at).await?;
        quotes.insert(asset.symbol.clone(), Quote { primary, secondary, previous_close });
    }
    Ok(MarketSnapshot { quotes, volatility_index: None })
}

/// An account's book on the ledger: cash and units per asset symbol, and
/// whether the ledger's guardian froze it (it can then neither trade nor
/// move funds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub cash: Decimal,
    pub units: BTreeMap<String, Decimal>,
    pub frozen: bool,
}

/// The ledger's book of `account`.
pub async fn position(provider: &DynProvider, manifest: &Manifest, account: u64) -> Result<Position> {
    let ledger = PortfolioLedger::new(manifest.contracts.portfolio_ledger, provider.clone());
    let p = ledger.positionsOf(account).call().await.map_err(rpc(&format!("positionsOf({account})")))?;
    let cash = to_decimal(p.cash, manifest.cash.decimals)?;
    let mut units = BTreeMap::new();
    for (asset, amount) in manifest.assets.iter().zip(p.units) {
        units.insert(asset.symbol.clone(), to_decimal(amount, asset.decimals)?);
    }
    Ok(Position { cash, units, frozen: p.frozen })
}

/// Position reads in flight at once.
const POSITION_READS_IN_FLIGHT: usize = 32;

/// The ledger's books of `accounts`, read concurrently.
pub async fn positions(provider: &DynProvider, manifest: &Manifest, accounts: &[u64]) -> Result<BTreeMap<u64, Position>> {
    let mut out = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = accounts.iter().copied();
    let manifest = std::sync::Arc::new(manifest.clone());
    loop {
        while tasks.len() < POSITION_READS_IN_FLIGHT {
            let Some(id) = next.next() else { break };
            let (p, m) = (provider.clone(), std::sync::Arc::clone(&manifest));
            tasks.spawn(async move { (id, position(&p, &m, id).await) });
        }
        match tasks.join_next().await {
            None => break,
            Some(joined) => {
                let (id, position) = joined.map_err(|e| Error::Chain(format!("position read task: {e}")))?;
                out.insert(id, position?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn chain_amounts_convert_exactly() {
        assert_eq!(to_decimal(U256::from(123_456_789u64), 6).unwrap(), dec!(123.456789));
        assert_eq!(to_decimal(U256::from(10u64).pow(U256::from(18u64)) * U256::from(5u64), 18).unwrap(), dec!(5));
        assert_eq!(to_decimal(U256::from(1u64), 18).unwrap(), dec!(0.000000000000000001));
        assert!(to_decimal(U256::MAX, 18).is_err());
        assert_eq!(signed_to_decimal(alloy::primitives::I256::try_from(10_050_000_000i64).unwrap(), 8).unwrap(), dec!(100.5));
        assert!(unix_time(U256::MAX).is_err());
    }
}
