//! The gas benchmark behind `ballast bench gas`: what settling rebalancing
//! trades costs per account when Ballast batches them, against what a DeFi
//! user pays doing the same trades one router swap at a time on the same
//! Uniswap V2 pools. Everything runs on a fresh Anvil devnet; every figure is
//! a `gasUsed` from a real receipt.

use std::fmt::Write as _;

use alloy::{
    primitives::{keccak256, Address, U256},
    providers::DynProvider,
};

use crate::{
    bindings::{AssetToken, IUniswapV2Router},
    deploy::{self, open_and_fund_accounts, send, DeployConfig, Funding},
    devnet::{Devnet, DevnetOptions},
    error::CallContext,
    settle::{self, Checkpoint, LegIntent},
    Result,
};

/// Legs each account trades in the benchmark.
pub const LEGS_PER_ACCOUNT: usize = 3;

/// What to measure.
#[derive(Debug, Clone)]
pub struct GasBenchConfig {
    /// Accounts per batch, one measurement each.
    pub sizes: Vec<usize>,
    /// Router swaps measured for the per-leg baseline.
    pub baseline_swaps: usize,
    /// Slippage bound for the venue trades.
    pub max_slippage_bps: u16,
}

impl Default for GasBenchConfig {
    fn default() -> Self {
        Self { sizes: vec![1, 10, 100, 500], baseline_swaps: 40, max_slippage_bps: 100 }
    }
}

/// One measured batch size.
#[derive(Debug, Clone)]
pub struct GasRow {
    pub accounts: usize,
    pub legs: usize,
    /// Transactions the legs were cut into to fit the block gas limit.
    pub batches: usize,
    pub gas_total: u64,
}

impl GasRow {
    pub fn gas_per_account(&self) -> f64 {
        self.gas_total as f64 / self.accounts as f64
    }
}

/// The benchmark's result.
#[derive(Debug, Clone)]
pub struct GasReport {
    pub rows: Vec<GasRow>,
    /// Mean gas of one router swap transaction (a DeFi user's leg).
    pub swap_gas_mean: f64,
    pub swaps_measured: usize,
    pub block_gas_limit: u64,
    pub assets: usize,
}

impl GasReport {
    /// What a DeFi user pays for one account's legs, one swap each.
    pub fn per_account_baseline(&self) -> f64 {
        self.swap_gas_mean * LEGS_PER_ACCOUNT as f64
    }

    /// The table as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| accounts | legs | batches | gas total | gas / account | gas / leg | cheaper than per-leg swaps |");
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.1}x |",
                r.accounts,
                r.legs,
                r.batches,
                r.gas_total,
                r.gas_per_account(),
                r.gas_total as f64 / r.legs as f64,
                self.per_account_baseline() / r.gas_per_account()
            );
        }
        let _ = writeln!(
            s,
            "\nPer-leg baseline: one `UniswapV2Router02` swap transaction per leg on the same pools, \
             mean of {} swaps = {:.0} gas, so {:.0} gas per account of {} legs (token approvals not counted). \
             {} assets; block gas limit {}.",
            self.swaps_measured,
            self.swap_gas_mean,
            self.per_account_baseline(),
            LEGS_PER_ACCOUNT,
            self.assets,
            self.block_gas_limit
        );
        s
    }
}

/// A deterministic stream of pseudo-random numbers (the benchmark must be repeatable).
fn mix(a: u64, b: u64) -> u64 {
    let h = keccak256([a.to_be_bytes(), b.to_be_bytes()].concat());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// Three legs for `account` in `round`: three distinct assets out of the
/// registered ones, mixed buys and sells of 1 to 50 units.
pub fn bench_legs(account: u64, round: u64, assets: usize, quanta_per_unit: i64) -> Vec<LegIntent> {
    let record_hash = keccak256([b"bench".as_slice(), &account.to_be_bytes(), &round.to_be_bytes()].concat());
    let r = mix(account, round);
    let skip = (r % assets as u64) as usize;
    let mut legs = Vec::with_capacity(LEGS_PER_ACCOUNT);
    for (n, asset) in (0..assets).filter(|&a| a != skip).take(LEGS_PER_ACCOUNT).enumerate() {
        let units = 1 + (mix(r, n as u64) % 50) as i64;
        let buy = (r >> (8 + n)) & 1 == 1;
        let quanta = units * quanta_per_unit;
        legs.push(LegIntent { account, asset: asset as u16, quanta: if buy { quanta } else { -quanta }, record_hash });
    }
    legs
}

/// Runs the benchmark on a fresh devnet; `progress` hears what is going on.
pub async fn run(config: &GasBenchConfig, devnet_options: &DevnetOptions, progress: impl Fn(&str)) -> Result<GasReport> {
    let devnet = Devnet::start(devnet_options)?;
    progress("deploying contracts and the Uniswap V2 venue");
    let deploy_config = DeployConfig::default();
    let deployment = deploy::deploy(&devnet, &deploy_config).await?;
    let m = &deployment.manifest;
    let assets = m.assets.len();
    if assets < LEGS_PER_ACCOUNT {
        return Err(crate::Error::Invalid(format!("the benchmark needs at least {LEGS_PER_ACCOUNT} assets")));
    }
    let quanta_per_unit = i64::try_from(
        10u128.pow(u32::from(m.assets[0].decimals)) / m.assets[0].quantum,
    )
    .map_err(|_| crate::Error::Invalid("quantum too small for the benchmark".into()))?;

    let most = config.sizes.iter().copied().max().unwrap_or(0);
    progress(&format!("opening and funding {most} accounts"));
    let ids: Vec<u64> = (1..=most as u64).collect();
    let funding = Funding::uniform(m, 1_000_000, 10_000);
    open_and_fund_accounts(&deployment, &ids, m.roles.admin, |_| funding.clone()).await?;

    let mut rows = Vec::new();
    for (round, &size) in config.sizes.iter().enumerate() {
        let round = round as u64;
        let legs: Vec<LegIntent> =
            ids[..size].iter().flat_map(|&id| bench_legs(id, round, assets, quanta_per_unit)).collect();
        let checkpoint = Checkpoint { size: round + 1, root: keccak256(format!("bench checkpoint {round}")) };
        let deadline = u64::MAX;
        let planned = settle::plan_batches(
            &deployment.settler,
            m.contracts.portfolio_ledger,
            &legs,
            checkpoint,
            deadline,
            config.max_slippage_bps,
        )
        .await?;
        // Every account is funded for its legs: a refusal is a bug here.
        if let Some(r) = planned.refused.first() {
            return Err(crate::Error::Invalid(format!("account {}: {}", r.account, r.reason)));
        }
        let batches = planned.batches;
        let mut gas_total = 0;
        for batch in &batches {
            gas_total += settle::submit(&deployment.settler, m.contracts.portfolio_ledger, batch).await?.gas_used;
        }
        let row = GasRow { accounts: size, legs: legs.len(), batches: batches.len(), gas_total };
        progress(&format!("{size} accounts: {:.0} gas per account in {} batch(es)", row.gas_per_account(), row.batches));
        rows.push(row);
    }

    progress(&format!("measuring {} per-leg router swaps", config.baseline_swaps));
    let trader = devnet.dev_keys().get(3).cloned().ok_or_else(|| crate::Error::Invalid("need 4 dev keys".into()))?;
    let trader_p = deploy::provider(&devnet.endpoint(), trader.clone())?;
    let swap_gas = per_leg_swaps(&deployment, &trader_p, trader.address(), config.baseline_swaps, quanta_per_unit).await?;
    let swap_gas_mean = swap_gas.iter().sum::<u64>() as f64 / swap_gas.len().max(1) as f64;

    Ok(GasReport {
        rows,
        swap_gas_mean,
        swaps_measured: swap_gas.len(),
        block_gas_limit: devnet.gas_limit(),
        assets,
    })
}

/// Gas of `count` single-leg swaps by `trader` through the router, buying and
/// selling the benchmark's assets in the benchmark's sizes.
async fn per_leg_swaps(
    deployment: &deploy::Deployment,
    trader_p: &DynProvider,
    trader: Address,
    count: usize,
    quanta_per_unit: i64,
) -> Result<Vec<u64>> {
    let m = &deployment.manifest;
    let router_addr = m.contracts.uniswap_router;
    // Fund the trader and approve the router once; neither is counted.
    let admin = &deployment.admin;
    let big = U256::from(10u64).pow(U256::from(30u64));
    for token in std::iter::once(m.contracts.cash_token).chain(m.assets.iter().map(|a| a.token)) {
        send(AssetToken::new(token, admin.clone()).mint(trader, big), "mint trader").await?;
        send(AssetToken::new(token, trader_p.clone()).approve(router_addr, U256::MAX), "trader approve").await?;
    }
    let router = IUniswapV2Router::new(router_addr, trader_p.clone());
    let mut gas = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let leg = bench_legs(1_000_000 + i, 0, m.assets.len(), quanta_per_unit)[0];
        let asset = &m.assets[leg.asset as usize];
        let units = U256::from(leg.quanta.unsigned_abs()) * U256::from(asset.quantum);
        let receipt = if leg.quanta > 0 {
            let path = vec![m.contracts.cash_token, asset.token];
            let quote = router.getAmountsIn(units, path.clone()).call().await.call_ctx("getAmountsIn")?[0];
            send(
                router.swapTokensForExactTokens(units, quote * U256::from(101) / U256::from(100), path, trader, U256::MAX),
                "swapTokensForExactTokens",
            )
            .await?
        } else {
            let path = vec![asset.token, m.contracts.cash_token];
            let quote = router.getAmountsOut(units, path.clone()).call().await.call_ctx("getAmountsOut")?[1];
            send(
                router.swapExactTokensForTokens(units, quote * U256::from(99) / U256::from(100), path, trader, U256::MAX),
                "swapExactTokensForTokens",
            )
            .await?
        };
        gas.push(receipt.gas_used);
    }
    Ok(gas)
}

/// Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->` in `doc`.
pub fn replace_section(doc: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = doc.find(&begin)? + begin.len();
    let stop = doc[start..].find(&end)? + start;
    Some(format!("{}\n{}{}", &doc[..start], body, &doc[stop..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_legs_are_three_distinct_assets_and_repeatable() {
        for account in 1..200 {
            let legs = bench_legs(account, 0, 4, 1_000_000);
            assert_eq!(legs.len(), 3);
            let mut assets: Vec<u16> = legs.iter().map(|l| l.asset).collect();
            assets.dedup();
            assert_eq!(assets.len(), 3);
            assert!(legs.iter().all(|l| l.quanta != 0 && l.quanta.abs() <= 50_000_000));
            assert_eq!(legs, bench_legs(account, 0, 4, 1_000_000));
        }
        let buys = (1..200).flat_map(|a| bench_legs(a, 0, 4, 1)).filter(|l| l.quanta > 0).count();
        assert!((200..400).contains(&buys), "buys and sells are mixed: {buys} buys of 597");
    }

    #[test]
    fn replace_section_swaps_only_the_marked_text() {
        let doc = "a\n<!-- t:begin -->\nold\n<!-- t:end -->\nb\n";
        assert_eq!(replace_section(doc, "t", "new\n").unwrap(), "a\n<!-- t:begin -->\nnew\n<!-- t:end -->\nb\n");
        assert!(replace_section(doc, "missing", "x").is_none());
    }
}
