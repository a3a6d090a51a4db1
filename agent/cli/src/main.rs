//! `ballast`: the command-line entry point. Argument parsing and output only;
//! the work happens in the library crates.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use eyre::{Context, Result};

use ballast_chain::{
    deploy::{self, DeployConfig, Funding},
    devnet::{Devnet, DevnetOptions},
    gas,
};

/// Ballast keeps client portfolios on their target allocation: it decides
/// rebalancing trades, settles them in netted batches through smart contracts
/// on an EVM chain, and anchors a signed record of every decision on-chain.
#[derive(Debug, Parser)]
#[command(name = "ballast", version, propagate_version = true)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A local Anvil devnet with every contract deployed.
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// Benchmarks, each on its own fresh devnet.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum DevnetCommand {
    /// Start Anvil on 127.0.0.1 (free port), deploy the contracts and the
    /// Uniswap V2 venue, open funded client accounts, print the manifest, and
    /// keep the node running until Ctrl-C.
    Up(DevnetUp),
}

#[derive(Debug, clap::Args)]
struct DevnetUp {
    /// Client accounts to open, numbered from 1, each funded with cash and every asset.
    #[arg(long, default_value_t = 10)]
    accounts: u64,
    /// Where to write the deployment manifest (JSON).
    #[arg(long, default_value = "devnet-manifest.json")]
    manifest: PathBuf,
    /// Stop the node right after printing the manifest instead of waiting for Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// The Foundry project (default: $BALLAST_CONTRACTS, else ./contracts or a parent's).
    #[arg(long)]
    contracts: Option<PathBuf>,
    /// Block gas limit of the devnet.
    #[arg(long, default_value_t = 30_000_000)]
    gas_limit: u64,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Gas per account of batched settlement (3 legs per account) against one
    /// router swap per leg on the same Uniswap V2 pools.
    Gas(BenchGas),
}

#[derive(Debug, clap::Args)]
struct BenchGas {
    /// Accounts per batch to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100, 500])]
    sizes: Vec<usize>,
    /// Router swaps to average for the per-leg baseline.
    #[arg(long, default_value_t = 40)]
    baseline_swaps: usize,
    /// Also write the table into this Markdown file, between
    /// `<!-- gas-table:begin -->` and `<!-- gas-table:end -->`.
    #[arg(long)]
    write: Option<PathBuf>,
    /// The Foundry project (default: $BALLAST_CONTRACTS, else ./contracts or a parent's).
    #[arg(long)]
    contracts: Option<PathBuf>,
}

fn devnet_options(contracts: Option<PathBuf>, gas_limit: u64) -> DevnetOptions {
    let mut o = DevnetOptions { gas_limit, ..DevnetOptions::default() };
    if let Some(dir) = contracts {
        o.contracts_dir = dir;
    }
    o
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    match cli.command {
        Command::Devnet(DevnetCommand::Up(args)) => devnet_up(args).await,
        Command::Bench(BenchCommand::Gas(args)) => bench_gas(args).await,
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn devnet_up(args: DevnetUp) -> Result<()> {
    let options = devnet_options(args.contracts, args.gas_limit);
    let devnet = Devnet::start(&options).wrap_err("starting the devnet")?;
    eprintln!("anvil listening on {}", devnet.endpoint());
    let config = DeployConfig::default();
    let deployment = deploy::deploy_to(
        &devnet.endpoint(),
        &deploy::Signers::from_devnet(&devnet)?,
        &options.contracts_dir,
        &config,
    )
    .await
    .wrap_err("deploying the contracts")?;
    let m = &deployment.manifest;
    if args.accounts > 0 {
        eprintln!("opening and funding {} client accounts", args.accounts);
        let ids: Vec<u64> = (1..=args.accounts).collect();
        let unit = |d: u8| alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(d));
        let funding = Funding {
            cash: alloy::primitives::U256::from(100_000u64) * unit(m.cash.decimals),
            units: m.assets.iter().map(|a| alloy::primitives::U256::from(1_000u64) * unit(a.decimals)).collect(),
        };
        deploy::open_and_fund_accounts(&deployment, &ids, m.roles.admin, |_| funding.clone())
            .await
            .wrap_err("opening client accounts")?;
    }
    m.write(&args.manifest).wrap_err_with(|| format!("writing {}", args.manifest.display()))?;
    print!("{}", m.to_json());
    eprintln!("manifest written to {}", args.manifest.display());
    if args.exit {
        devnet.stop();
        return Ok(());
    }
    eprintln!("devnet running at {} — Ctrl-C to stop", devnet.endpoint());
    shutdown_signal().await?;
    devnet.stop();
    eprintln!("devnet stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, so that the node is stopped either way.
async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).wrap_err("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.wrap_err("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn bench_gas(args: BenchGas) -> Result<()> {
    if args.sizes.is_empty() || args.sizes.contains(&0) {
        eyre::bail!("--sizes needs one or more positive account counts");
    }
    let config = gas::GasBenchConfig { sizes: args.sizes, baseline_swaps: args.baseline_swaps, ..Default::default() };
    let report = gas::run(&config, &devnet_options(args.contracts, 30_000_000), |msg| eprintln!("bench gas: {msg}"))
        .await
        .wrap_err("running the gas benchmark")?;
    let table = report.to_markdown();
    print!("{table}");
    if let Some(path) = args.write {
        let doc = std::fs::read_to_string(&path).wrap_err_with(|| format!("reading {}", path.display()))?;
        let updated = gas::replace_section(&doc, "gas-table", &table)
            .ok_or_else(|| eyre::eyre!("{} has no <!-- gas-table:begin/end --> markers", path.display()))?;
        std::fs::write(&path, updated).wrap_err_with(|| format!("writing {}", path.display()))?;
        eprintln!("table written to {}", path.display());
    }
    Ok(())
}
