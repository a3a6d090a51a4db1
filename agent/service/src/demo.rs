//! `ballast demo`: the whole system on an embedded Anvil devnet. Deploys the
//! contracts and the Uniswap V2 venue, onboards client accounts across
//! households (IPS, models, tax lots, funded on the ledger), then runs the
//! real agent through a scripted market: calm days, a 20 % equity drop, a
//! recovery. Each day the chain's clock moves a day, the feeds publish the
//! day's prices and an arbitrageur trades the venue to them; then the agent
//! runs one cycle. At the end the whole log is verified against the chain.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use alloy::{
    primitives::{I256, U256},
    providers::{DynProvider, Provider},
};
use ballast_audit::Signer;
use ballast_chain::{
    bindings::{AssetToken, IUniswapV2Pair, IUniswapV2Router, PriceFeed},
    deploy::{self, DeployConfig, Deployment, Funding},
    devnet::{Devnet, DevnetOptions},
    manifest::Manifest,
};
use ballast_engine::{
    synthetic::mix,
    types::{
        AccountKind, Asset, Band, Frequency, Harvesting, Ips, Lot, LotMethod, Model, Restrictions, Schedule, Sizing, TaxRates,
        TriggerMode,
    },
};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{
    agent::{self, Agent, CycleReport},
    book::{AccountSetup, OpeningBook},
    config::Config,
    error::{Error, Result},
    invariants,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub accounts: usize,
    /// Where the demo writes its configuration, keys, book and data folder.
    pub dir: PathBuf,
    /// Largest venue slippage a batch accepts.
    pub max_slippage_bps: u16,
    /// The agent anchors a checkpoint at least every this many records.
    pub anchor_every_records: u64,
    /// Trades worth more than this wait for an advisor (every IPS).
    pub approval_limit: Decimal,
}

/// One scripted day: a name and each asset's move (fraction) that day.
#[derive(Debug, Clone)]
pub struct Day {
    pub name: &'static str,
    pub moves: [(&'static str, Decimal); 5],
}

fn pct(p: i64) -> Decimal {
    Decimal::new(p, 3)
}

/// Calm, calm, the drop, the day after, recovery, recovery.
pub fn script() -> Vec<Day> {
    // WEQ, GEQ's substitute, moves with it.
    let day = |name, geq, bnd, reit, emk| Day {
        name,
        moves: [("GEQ", pct(geq)), ("WEQ", pct(geq + 2)), ("BND", pct(bnd)), ("REIT", pct(reit)), ("EMK", pct(emk))],
    };
    vec![
        day("calm day", 3, -1, 2, -4),
        day("calm day", -2, 1, -1, 3),
        day("equities fall 20 %", -200, 10, -80, -220),
        day("the day after", 0, 0, 0, 0),
        day("recovery", 80, -5, 40, 90),
        day("recovery", 70, -2, 30, 60),
    ]
}

/// What the demo did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoReport {
    pub accounts: usize,
    pub households: usize,
    pub days: Vec<(String, CycleReport)>,
    /// Accounts that traded at least once.
    pub accounts_rebalanced: usize,
    pub trades: usize,
    pub batches: usize,
    pub failed_batches: usize,
    /// Accounts whose legs the ledger refused (see `CycleReport::refused`).
    pub refused: usize,
    pub gas_used: u64,
    pub crossed_value: Decimal,
    pub venue_value: Decimal,
    pub checkpoints_anchored: usize,
    pub losses_harvested: Decimal,
    pub paused_decisions: usize,
    pub queued_decisions: usize,
    pub records: u64,
    pub verification: Option<invariants::Checked>,
}

/// 32 bytes from the operating system's random source.
fn random_seed() -> Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|source| Error::Io { op: "reading", path: "/dev/urandom".into(), source })?;
    Ok(seed)
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let io = |source| Error::Io { op: "writing", path: path.into(), source };
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path).map_err(io)?;
    f.write_all(hex::encode(bytes).as_bytes()).map_err(io)
}


/// The demo's clients: `n` accounts in households of one to three, over the
/// deployment's assets (WEQ, GEQ's substitute, held by nobody yet), under four IPS (growth, balanced, income, and a
/// household-wide balanced one), drifted away from their targets, with tax
/// lots bought over the last three years at costs around today's prices.
pub fn opening_book(n: usize, manifest: &Manifest, today: time::Date, approval_limit: Decimal) -> OpeningBook {
    let class = |s: &str| match s {
        "BND" => "bond",
        "REIT" => "real_estate",
        _ => "equity",
    };
    let assets: Vec<Asset> = manifest
        .assets
        .iter()
        .map(|a| Asset {
            id: a.symbol.clone(),
            class: class(&a.symbol).into(),
            quantum: Decimal::new(1, 6),
            liquid: true,
            // WEQ is GEQ's close substitute: harvesting a GEQ loss buys WEQ.
            substitute_group: matches!(a.symbol.as_str(), "GEQ" | "WEQ").then(|| "global_equity".to_string()),
            tax_inefficient: a.symbol == "BND" || a.symbol == "REIT",
        })
        .collect();
    let model = |id: &str, w: [(&str, i64); 4], cash: i64| Model {
        id: id.into(),
        targets: w.iter().map(|(a, p)| ((*a).to_string(), Decimal::new(*p, 2))).collect(),
        cash_target: Decimal::new(cash, 2),
        band: Band { absolute_pp: Some(Decimal::from(5)), relative_pct: Some(Decimal::from(20)) },
        overrides: BTreeMap::new(),
        small_targets: None,
    };
    let models = vec![
        model("growth", [("GEQ", 55), ("EMK", 15), ("BND", 20), ("REIT", 5)], 5),
        model("balanced", [("GEQ", 35), ("EMK", 5), ("BND", 45), ("REIT", 10)], 5),
        model("income", [("GEQ", 15), ("EMK", 5), ("BND", 60), ("REIT", 15)], 5),
    ];
    let ips = |id: &str, model: &str, mode: TriggerMode, household_mode: bool, salt: u64| Ips {
        id: id.into(),
        version: 1,
        document_hash: format!("{:016x}{:016x}{:016x}{:016x}", mix(salt, 1), mix(salt, 2), mix(salt, 3), mix(salt, 4)),
        model: model.into(),
        band: None,
        schedule: Schedule { mode, frequency: Some(Frequency::Quarterly), sizing: Sizing::Target },
        restrictions: Restrictions::default(),
        tax: TaxRates { short_term: Decimal::new(37, 2), long_term: Decimal::new(20, 2) },
        lot_method: LotMethod::TaxMinimizing,
        harvesting: Harvesting { enabled: true, min_loss: Decimal::from(250), min_loss_pct: Decimal::new(8, 2) },
        approval_limit: Some(approval_limit),
        cash_buffer: Decimal::from(50),
        min_trade_value: Decimal::from(50),
        household_mode,
    };
    let all_ips = vec![
        ips("ips-growth", "growth", TriggerMode::Threshold, false, 1),
        ips("ips-balanced", "balanced", TriggerMode::Hybrid, false, 2),
        ips("ips-income", "income", TriggerMode::Threshold, false, 3),
        ips("ips-family", "balanced", TriggerMode::Threshold, true, 4),
    ];
    let prices: BTreeMap<&str, i64> = manifest.assets.iter().map(|a| (a.symbol.as_str(), a.initial_price / 1_000_000)).collect();
    let mut accounts = Vec::with_capacity(n);
    let mut household = 0u64;
    let mut left_in_household = 0u64;
    let mut household_ips = "";
    for i in 0..n as u64 {
        let r = mix(i, 11);
        if left_in_household == 0 {
            household += 1;
            left_in_household = 1 + mix(household, 5) % 3;
            household_ips = if household.is_multiple_of(7) { "ips-family" } else { "" };
        }
        left_in_household -= 1;
        let ips_id = if household_ips.is_empty() { ["ips-growth", "ips-balanced", "ips-income"][(r % 3) as usize] } else { household_ips };
        let kind = [AccountKind::Taxable, AccountKind::Taxable, AccountKind::TaxDeferred, AccountKind::TaxFree][((r >> 4) % 4) as usize];
        let size = 20_000 + (r >> 8) % 180_000; // account value, roughly
        let model_id = &all_ips.iter().find(|p| p.id == ips_id).expect("listed").model;
        let targets = &models.iter().find(|m| &m.id == model_id).expect("listed").targets;
        let mut lots = Vec::new();
        for (k, a) in manifest.assets.iter().enumerate() {
            // Drifted from the target: 60 % to 140 % of it.
            let target_bp = (targets.get(&a.symbol).copied().unwrap_or_default() * Decimal::from(10_000)).trunc().mantissa() as i64;
            let weight_bp = target_bp * (60 + (mix(i, 100 + k as u64) % 81) as i64) / 100;
            let price_cents = prices[a.symbol.as_str()];
            let value_cents = size as i64 * weight_bp / 100;
            let lot_count = 1 + mix(i, 200 + k as u64) % 3;
            for l in 0..lot_count {
                let h = mix(i * 16 + k as u64, l);
                // Bought 5 days to 3 years ago at 70 % to 130 % of today's price.
                let cost_cents = price_cents * (70 + (h % 61) as i64) / 100;
                let quantity = Decimal::new(value_cents / lot_count as i64 * 100 / price_cents, 2);
                if quantity <= Decimal::ZERO {
                    continue;
                }
                lots.push(Lot {
                    id: format!("{}-{l}", a.symbol),
                    asset: a.symbol.clone(),
                    quantity,
                    cost: Decimal::new(cost_cents, 2),
                    acquired: today - time::Duration::days(5 + ((h >> 16) % 1_090) as i64),
                });
            }
        }
        accounts.push(AccountSetup {
            id: i + 1,
            household: format!("hh{household}"),
            kind,
            ips: ips_id.into(),
            lots,
            last_rebalanced: Some(today - time::Duration::days(((r >> 40) % 80) as i64)),
            sell_order: Vec::new(),
        });
    }
    OpeningBook { assets, models, ips: all_ips, accounts }
}

/// Each account's cash (whole units) at onboarding.
fn opening_cash(id: u64) -> u64 {
    1_000 + mix(id, 77) % 15_000
}

fn base_units(quantity: Decimal, decimals: u8) -> Result<U256> {
    let scaled = quantity * Decimal::from_i128_with_scale(10i128.pow(u32::from(decimals.min(18)) - 6), 0) * Decimal::from(1_000_000);
    if scaled.fract() != Decimal::ZERO || scaled < Decimal::ZERO {
        return Err(Error::Log(format!("{quantity} is not a whole number of base units")));
    }
    Ok(U256::from(u128::try_from(scaled).map_err(|_| Error::Log(format!("{quantity} out of range")))?))
}

/// Starts a devnet, deploys, onboards `options.accounts` accounts, writes
/// the agent's files, and opens the agent. Returns the running pieces.
pub async fn set_up(options: &DemoOptions, progress: &mut dyn FnMut(&str)) -> Result<(Devnet, Deployment, Agent)> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir.join("keys")).map_err(|source| Error::Io { op: "creating", path: dir.clone(), source })?;
    progress("starting Anvil on 127.0.0.1 and deploying the contracts and the Uniswap V2 venue");
    let devnet = Devnet::start(&DevnetOptions { log_file: Some(dir.join("anvil.log")), ..DevnetOptions::default() })?;
    // Deep pools, as a real venue for these funds would have.
    let mut deploy_config = DeployConfig::default();
    let weq = deploy::AssetSpec { symbol: "WEQ".into(), name: "World Equity Fund".into(), price: 80 * 100_000_000, ..deploy_config.assets[0].clone() };
    deploy_config.assets.push(weq);
    for a in &mut deploy_config.assets {
        a.pool_units = 500_000_000;
    }
    let deployment = deploy::deploy(&devnet, &deploy_config).await?;
    let m = deployment.manifest.clone();
    let now = chain_time(&deployment.admin).await?;
    let book = opening_book(options.accounts, &m, now.date(), options.approval_limit);
    progress(&format!("onboarding {} accounts in {} households: opening and funding them on the ledger", book.accounts.len(), households(&book)));
    let mut fundings = BTreeMap::new();
    for a in &book.accounts {
        let mut units = vec![U256::ZERO; m.assets.len()];
        for lot in &a.lots {
            let asset = m.asset(&lot.asset).expect("the book uses the manifest's assets");
            units[usize::from(asset.index)] += base_units(lot.quantity, asset.decimals)?;
        }
        fundings.insert(a.id, Funding { cash: deploy::whole(opening_cash(a.id), m.cash.decimals), units });
    }
    let ids: Vec<u64> = book.accounts.iter().map(|a| a.id).collect();
    deploy::open_and_fund_accounts(&deployment, &ids, m.roles.admin, |id| fundings[&id].clone()).await?;

    progress("writing keys (mode 600), the book, the manifest and ballast.toml; registering the audit key on-chain");
    let audit_seed = random_seed()?;
    write_secret(&dir.join("keys/audit.key"), &audit_seed)?;
    let settler = devnet.dev_keys()[1].clone();
    write_secret(&dir.join("keys/settler.key"), settler.to_bytes().as_slice())?;
    agent::register_audit_key(&deployment.admin, m.contracts.audit_registry, &Signer::from_seed(&audit_seed)).await?;
    let io = |path: PathBuf| move |source| Error::Io { op: "writing", path, source };
    let book_path = dir.join("book.json");
    std::fs::write(&book_path, serde_json::to_string_pretty(&book).expect("a book serializes")).map_err(io(book_path.clone()))?;
    m.write(&dir.join("manifest.json"))?;
    let toml = format!(
        "# Written by `ballast demo`.\n[chain]\nmanifest = \"manifest.json\"\n\n[keys]\nsettler = \"file:keys/settler.key\"\naudit = \"file:keys/audit.key\"\n\n\
         [agent]\ndata_dir = \"data\"\nbook = \"book.json\"\ncycle_interval_s = 60\nanchor_every_records = {}\nanchor_every_s = 300\n\
         fsync = \"every_n:256\"\nmax_slippage_bps = {}\nbatch_deadline_s = 600\n\n\
         [api]\n# Port 0: the system picks a free one, written to data/api.addr.\nlisten = \"127.0.0.1:0\"\n",
        options.anchor_every_records, options.max_slippage_bps
    );
    let config_path = dir.join("ballast.toml");
    std::fs::write(&config_path, toml).map_err(io(config_path.clone()))?;
    let config = Config::load(&config_path)?;
    progress("opening the agent: verifying its (empty) log, recording each account's IPS");
    let agent = Agent::open(config).await?;
    Ok((devnet, deployment, agent))
}

fn households(book: &OpeningBook) -> usize {
    book.accounts.iter().map(|a| a.household.as_str()).collect::<std::collections::BTreeSet<_>>().len()
}

async fn chain_time(p: &DynProvider) -> Result<time::OffsetDateTime> {
    let block = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|e| Error::Chain(e.to_string()))?
        .ok_or_else(|| Error::Chain("no latest block".into()))?;
    time::OffsetDateTime::from_unix_timestamp(block.header.timestamp as i64).map_err(|e| Error::Chain(e.to_string()))
}

/// Moves the devnet's clock forward by `seconds` and mines a block.
pub async fn advance_time(p: &DynProvider, seconds: u64) -> Result<()> {
    let chain = |e: alloy::transports::TransportError| Error::Chain(format!("advancing time: {e}"));
    let _: serde_json::Value = p.raw_request("evm_increaseTime".into(), (seconds,)).await.map_err(chain)?;
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.map_err(chain)?;
    Ok(())
}

/// Publishes `asset`'s new price on its feed and trades its venue pool to
/// that price (as an arbitrageur would), minting what the trade needs.
pub async fn set_price(d: &Deployment, symbol: &str, price: Decimal) -> Result<()> {
    let m = &d.manifest;
    let asset = m.asset(symbol).ok_or_else(|| Error::Log(format!("no asset {symbol}")))?;
    let chain = |what: &'static str| move |e: alloy::contract::Error| Error::Chain(format!("{what}: {e}"));
    let answer = (price * Decimal::from(10i64.pow(u32::from(asset.feed_decimals)))).round();
    let answer = I256::try_from(i128::try_from(answer).map_err(|_| Error::Log(format!("price {price} out of range")))?)
        .map_err(|e| Error::Log(e.to_string()))?;
    let feed = PriceFeed::new(asset.feed, d.admin.clone());
    deploy::send(feed.updateAnswer(answer), "updateAnswer").await?;

    let pair = IUniswapV2Pair::new(asset.pair, d.admin.clone());
    let reserves = pair.getReserves().call().await.map_err(chain("getReserves"))?;
    let token0 = pair.token0().call().await.map_err(chain("token0"))?;
    let (ra, rc) = if token0 == asset.token { (reserves.reserve0, reserves.reserve1) } else { (reserves.reserve1, reserves.reserve0) };
    let x = ra.to::<u128>() as f64 / 10f64.powi(i32::from(asset.decimals));
    let y = rc.to::<u128>() as f64 / 10f64.powi(i32::from(m.cash.decimals));
    let target: f64 = price.try_into().map_err(|_| Error::Log(format!("price {price}")))?;
    if (target / (y / x) - 1.0).abs() < 0.000_5 {
        // Within 5 bp already: a trade that small would get nothing out.
        return Ok(());
    }
    let k = x * y;
    // Uniswap V2 keeps 0.3 % of what goes in.
    let (token_in, token_out, amount_in) = if target < y / x {
        let dx = ((k / target).sqrt() - x) / 0.997;
        (asset.token, m.contracts.cash_token, U256::from((dx * 10f64.powi(i32::from(asset.decimals))) as u128))
    } else {
        let dy = ((k * target).sqrt() - y) / 0.997;
        (m.contracts.cash_token, asset.token, U256::from((dy * 10f64.powi(i32::from(m.cash.decimals))) as u128))
    };
    if amount_in.is_zero() {
        return Ok(());
    }
    let admin = m.roles.admin;
    let token = AssetToken::new(token_in, d.admin.clone());
    deploy::send(token.mint(admin, amount_in), "mint").await?;
    deploy::send(token.approve(m.contracts.uniswap_router, amount_in), "approve").await?;
    let router = IUniswapV2Router::new(m.contracts.uniswap_router, d.admin.clone());
    let deadline = U256::from(chain_time(&d.admin).await?.unix_timestamp() as u64 + 600);
    let swap = router.swapExactTokensForTokens(amount_in, U256::ZERO, vec![token_in, token_out], admin, deadline);
    // Sent with the same gas headroom as settlements (a pair's first trade in
    // a new second writes its price accumulators, which the estimate may
    // miss); a refusal comes back from the estimate with the router's reason.
    let estimate = swap.estimate_gas().await.map_err(chain("swap estimate"))?;
    deploy::send(swap.gas(ballast_chain::settle::gas_limit(estimate, 1, 30_000_000)), "swap").await?;
    Ok(())
}

/// Runs the demo: set-up, one cycle a day through [`script`], then anchors
/// the rest of the log and verifies everything against the chain.
pub async fn run(options: &DemoOptions, progress: &mut dyn FnMut(&str)) -> Result<DemoReport> {
    let started = Instant::now();
    let (devnet, deployment, mut agent) = set_up(options, progress).await?;
    let mut report = DemoReport {
        accounts: agent.book().accounts().count(),
        households: agent.book().accounts().map(|a| a.setup.household.clone()).collect::<std::collections::BTreeSet<_>>().len(),
        ..DemoReport::default()
    };
    let mut prices: BTreeMap<String, Decimal> = deployment
        .manifest
        .assets
        .iter()
        .map(|a| (a.symbol.clone(), Decimal::new(a.initial_price, u32::from(a.feed_decimals))))
        .collect();
    let days = script();
    for (n, day) in days.iter().enumerate() {
        advance_time(&deployment.admin, 86_400).await?;
        for (symbol, change) in &day.moves {
            let p = prices.get_mut(*symbol).expect("script names deployed assets");
            *p = (*p * (Decimal::ONE + change)).round_dp(4);
            set_price(&deployment, symbol, *p).await?;
        }
        let cycle = agent.cycle().await?;
        progress(&format!(
            "day {}/{} {:<20} decided {:>5} (recorded {:>5}), trading {:>5}, paused {:>5}, queued {:>4}; {} batches, {} legs, {} gas; {:.1} s",
            n + 1,
            days.len(),
            day.name,
            cycle.decided,
            cycle.recorded,
            cycle.trading,
            cycle.paused,
            cycle.queued,
            cycle.batches,
            cycle.legs,
            cycle.gas_used,
            cycle.elapsed_ms as f64 / 1000.0
        ));
        report.days.push((day.name.to_string(), cycle));
    }
    agent.anchor_rest().await?;
    for (_, c) in &report.days {
        report.trades += c.trades;
        report.batches += c.batches;
        report.failed_batches += c.failed_batches;
        report.refused += c.refused;
        report.gas_used += c.gas_used;
        report.crossed_value += c.crossed_value;
        report.venue_value += c.venue_value;
        report.paused_decisions += c.paused;
        report.queued_decisions += c.queued;
    }
    report.losses_harvested = agent.book().tally().losses_harvested;
    report.accounts_rebalanced = agent.book().rebalanced_accounts();
    report.records = agent.records();
    let data_dir = agent.data_dir().to_path_buf();
    drop(agent);
    progress("verifying the whole log against the chain (signatures, hash chain, anchored roots, index, settlements)");
    let checked = invariants::check(&data_dir, &deployment.manifest).await?;
    report.checkpoints_anchored = checked.anchors;
    report.verification = Some(checked);
    progress(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    // The providers first, then the node: a provider's background poller
    // would otherwise log a failed request to a node that is gone.
    drop(deployment);
    tokio::task::yield_now().await;
    drop(devnet);
    Ok(report)
}
