//! `ballast`: the command-line entry point. Argument parsing and output only;
//! the work happens in the library crates.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use eyre::{Context, Result};

mod approvals;
mod audit;
mod demo;
mod keys;
mod plan;

/// mimalloc instead of glibc's allocator: the log's append with its sled
/// index and the engine allocate many small, short-lived objects; glibc's
/// `malloc`/`free` were about 30 % of the append's time and 20 % of the
/// engine's (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the agent: every cycle, ingest prices and positions from the
    /// chain, decide every account, record the decisions (signed, fsync'd),
    /// settle netted batches, anchor checkpoints and index. Ctrl-C or
    /// SIGTERM finishes the cycle in progress, anchors the rest of the log
    /// and stops.
    Run(RunArgs),
    /// The whole system on an embedded Anvil devnet: deploy, onboard client
    /// accounts across households, run the agent through a scripted market
    /// (calm days, a 20 % equity drop, a recovery), print a report, and
    /// verify the whole log against the chain.
    Demo(DemoArgs),
    /// Trades queued for an advisor's review: list them, approve or reject.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// A local Anvil devnet with every contract deployed.
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// The advisor's what-if: decide accounts from files and print the
    /// decisions (triggers, drift, trades with lots and tax, checks), without
    /// trading. Files are TOML or JSON (by extension) and may each hold any of
    /// `assets`, `models`, `ips`, `accounts`, `market`, `recent_trades`,
    /// `limits` and `now`; they are merged.
    Plan(Plan),
    /// The audit trail: verify a log or an export bundle against the chain,
    /// rebuild the index, show records, export a regulator's bundle, and
    /// write compliance reports.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The agent's audit key: record its rotation to a new key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The agent's configuration (TOML): chain, keys, data folder, book, cycle and anchoring.
    #[arg(long, default_value = "ballast.toml", env = "BALLAST_CONFIG")]
    config: PathBuf,
    /// Run this many cycles, then stop (default: until Ctrl-C or SIGTERM).
    #[arg(long)]
    cycles: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Client accounts to onboard.
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    /// Folder for the demo's configuration, keys, book and data (default: a new temporary folder, kept).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Largest venue slippage a batch accepts, in basis points.
    #[arg(long, default_value_t = 200)]
    max_slippage_bps: u16,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct Plan {
    /// Input files (TOML or JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Decision time (RFC 3339); default: the files' `now`, else the current time.
    #[arg(long, value_parser = parse_time)]
    now: Option<time::OffsetDateTime>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the decisions as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-11-21T15:00:00Z: {e}"))
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
    /// Decision-engine throughput on two synthetic books (8 assets, 5 lots
    /// per asset, households of three) on 1 thread and on every core: a hard
    /// day (nearly every account far out of its bands, many losses to
    /// harvest) and the day after (the same accounts a month after they were
    /// rebalanced, most within their bands).
    Engine(BenchEngine),
    /// Gas per account of batched settlement (3 legs per account) against one
    /// router swap per leg on the same Uniswap V2 pools.
    Gas(BenchGas),
    /// Audit-log throughput on decision-sized records: append (batches
    /// signed on every core, one write and one fsync each, the sled index
    /// following on its own thread) and full verification on 1 thread and
    /// on every core.
    Audit(BenchAudit),
    /// One full agent cycle on an Anvil devnet (ingest prices and positions,
    /// decide, record with fsync, settle every batch, anchor, index) for the
    /// demo's book of N accounts; onboarding is not timed.
    Cycle(BenchCycle),
}

#[derive(Debug, clap::Args)]
struct BenchCycle {
    /// Accounts in the book.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Also write the figures into this Markdown file, between
    /// `<!-- cycle-table:begin -->` and `<!-- cycle-table:end -->`.
    #[arg(long)]
    write: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct BenchAudit {
    /// Records to append, then verify.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// Repetitions of the append (each on a new log and index) and of each
    /// verification; the best of each is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Records per append batch: each batch is signed in parallel, written
    /// at once and fsync'd once (the agent appends a cycle's decisions as
    /// one batch).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Where the log and its index are written, in a new directory that is
    /// removed afterwards (default: the system's temporary directory). Put
    /// it on the disk whose fsync you mean to measure.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also time the one-record-at-a-time reference verifier (the JCS crate
    /// and `verify_strict` for every record), once.
    #[arg(long)]
    reference: bool,
    /// Also write the figures into this Markdown file, between
    /// `<!-- audit-table:begin -->` and `<!-- audit-table:end -->`.
    #[arg(long)]
    write: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct BenchEngine {
    /// Accounts to decide.
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Repetitions; the best is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also write the figures into this Markdown file, between
    /// `<!-- engine-table:begin -->` and `<!-- engine-table:end -->`.
    #[arg(long)]
    write: Option<PathBuf>,
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The cause chain on one line each, without a backtrace: users read these.
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Devnet(DevnetCommand::Up(args)) => devnet_up(args).await,
        Command::Run(args) => run_agent(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Approvals(command) => approvals::run(command),
        Command::Audit(command) => audit::run(command).await,
        Command::Keys(command) => keys::run(command).await,
        Command::Bench(BenchCommand::Gas(args)) => bench_gas(args).await,
        Command::Bench(BenchCommand::Engine(args)) => bench_engine(args),
        Command::Bench(BenchCommand::Audit(args)) => bench_audit(args),
        Command::Bench(BenchCommand::Cycle(args)) => bench_cycle(args).await,
        Command::Plan(args) => run_plan(args),
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
        let funding = Funding::uniform(m, 100_000, 1_000);
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

fn run_plan(args: Plan) -> Result<()> {
    let loaded = plan::load(&args.files, args.now)?;
    let decisions = ballast_engine::decide(&loaded.inputs).map_err(|e| loaded.explain(e))?;
    let json = serde_json::to_string_pretty(&decisions)?;
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{json}\n")).wrap_err_with(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", plan::table(&decisions));
    }
    Ok(())
}

fn bench_engine(args: BenchEngine) -> Result<()> {
    if args.accounts == 0 || args.runs == 0 {
        eyre::bail!("--accounts and --runs must be positive");
    }
    let now = time::macros::datetime!(2026-11-21 15:00 UTC);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut table = String::from(
        "| book | accounts | threads | best of runs | seconds | accounts / s | accounts trading | trades |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    type Book = fn(usize, time::OffsetDateTime) -> ballast_engine::Inputs;
    let books: [(&str, Book); 2] =
        [("hard day", ballast_engine::synthetic::book), ("day after", ballast_engine::synthetic::day_after)];
    for (name, make) in books {
        eprintln!("bench engine: building the {name} book of {} accounts", args.accounts);
        let inputs = make(args.accounts, now);
        for threads in if cores > 1 { vec![1, cores] } else { vec![1] } {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
            let mut best = f64::MAX;
            let (mut trading, mut trades) = (0, 0);
            for run in 1..=args.runs {
                let start = std::time::Instant::now();
                let decisions = pool.install(|| ballast_engine::decide(&inputs)).wrap_err("deciding")?;
                let secs = start.elapsed().as_secs_f64();
                trading = decisions.iter().filter(|d| !d.trades.is_empty()).count();
                trades = decisions.iter().map(|d| d.trades.len()).sum::<usize>();
                eprintln!("bench engine: {name}, {threads} thread(s), run {run}/{}: {secs:.3} s", args.runs);
                best = best.min(secs);
            }
            table.push_str(&format!(
                "| {name} | {} | {threads} | {} | {best:.3} | {:.0} | {trading} | {trades} |\n",
                args.accounts,
                args.runs,
                args.accounts as f64 / best
            ));
        }
    }
    print!("{table}");
    if let Some(path) = args.write {
        write_table(&path, "engine-table", &table)?;
    }
    Ok(())
}

fn bench_audit(args: BenchAudit) -> Result<()> {
    use ballast_audit::{Index, KeyRing, Kind, Log, Signer, SyncPolicy, Timestamp, body::synthetic, verify};
    let group = args.batch as usize;
    if args.records == 0 || args.runs == 0 {
        eyre::bail!("--records and --runs must be positive");
    }
    let parent = args.dir.unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("ballast-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let signer = || Signer::from_seed(&[0x5e; 32]);
    let ring = KeyRing::single(signer().verifying_key())?;
    let start = Timestamp::parse("2026-11-21T15:00:00Z")?.unix_nanos();
    let time_of = |seq: u64| Timestamp::from_unix_nanos(start + i128::from(seq) * 1_000_000);

    // Append, `--runs` times on a new log and index each, the best kept: the
    // bodies are made once, before any clock starts, and only borrowed. The index follows the log on
    // its own thread, a few batches behind at most, as a derived and
    // rebuildable index may; the clock stops when both are durable.
    let log_path = dir.join("audit.log");
    eprintln!("bench audit: making {} decision bodies", args.records);
    let bodies: Vec<serde_json::Value> = (0..args.records).map(synthetic::decision).collect();
    let body_bytes: usize = bodies.iter().map(|b| serde_json::to_vec(b).map_or(0, |b| b.len())).sum();
    let times = (0..args.records).map(time_of).collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<(Kind, &serde_json::Value, Timestamp)> = bodies.iter().zip(times).map(|(body, time)| (Kind::Decision, body, time)).collect();
    let mut best: Option<(AppendRun, f64)> = None;
    for run in 1..=args.runs {
        let _ = std::fs::remove_file(&log_path);
        let _ = std::fs::remove_dir_all(dir.join("index"));
        let (log, _) = Log::open(&log_path, signer(), SyncPolicy::EveryN(group as u32), ring.clone())?;
        let index = Index::open(dir.join("index"), &log_path)?;
        let signature_us = signature_micros();
        let result = append_run(log, index, entries.chunks(group))?;
        eprintln!(
            "bench audit: append run {run}/{}: {:.3} s, {:.0} records/s (a signature took {signature_us:.1} µs just before)",
            args.runs,
            result.secs,
            args.records as f64 / result.secs
        );
        if best.as_ref().is_none_or(|(b, _)| result.secs < b.secs) {
            best = Some((result, signature_us));
        }
    }
    let (AppendRun { secs: append_secs, cpu: append_cpu, fsyncs, log_bytes }, signature_us) = best.expect("at least one run");

    let bytes = std::fs::read(&log_path).wrap_err_with(|| format!("reading {}", log_path.display()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut verify_rows = Vec::new();
    for threads in if cores > 1 { vec![1, cores] } else { vec![1] } {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let mut best = f64::MAX;
        for run in 1..=args.runs {
            let started = std::time::Instant::now();
            let summary = pool.install(|| verify::verify_records(&bytes, &ring))?;
            let secs = started.elapsed().as_secs_f64();
            eyre::ensure!(summary.records() == args.records, "verified {} records", summary.records());
            eprintln!("bench audit: verification, {threads} thread(s), run {run}/{}: {secs:.3} s", args.runs);
            best = best.min(secs);
        }
        verify_rows.push(("full verification", threads, args.runs, best));
    }
    if args.reference {
        let started = std::time::Instant::now();
        verify::verify_records_sequential(&bytes, &ring)?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!("bench audit: reference verification: {secs:.3} s");
        verify_rows.push(("reference verification (one record at a time)", 1, 1, secs));
    }
    std::fs::remove_dir_all(&dir).wrap_err_with(|| format!("removing {}", dir.display()))?;

    let n = args.records;
    let mut table = String::from("| step | records | threads | best of runs | seconds | records / s |\n");
    table.push_str("|---|---:|---:|---:|---:|---:|\n");
    table.push_str(&format!(
        "| append (batches of {group}: signed on {cores} threads, one write and one fsync each) + sled index on its own thread | {n} | {cores} | {} | {append_secs:.3} | {:.0} |\n",
        args.runs,
        n as f64 / append_secs
    ));
    for (step, threads, runs, secs) in &verify_rows {
        table.push_str(&format!("| {step} | {n} | {threads} | {runs} | {secs:.3} | {:.0} |\n", n as f64 / secs));
    }
    table.push_str(&format!(
        "\nDecision bodies of {:.0} bytes on average, frames of {:.0} bytes; {fsyncs} fsyncs; log {:.1} MiB.\n",
        body_bytes as f64 / n as f64,
        log_bytes as f64 / n as f64,
        log_bytes as f64 / (1024.0 * 1024.0)
    ));
    if let Some(cpu) = append_cpu {
        table.push_str(&format!(
            "The best append run used {cpu:.2} s of processor time (user and system, all threads): {:.0} µs a record.\n",
            cpu * 1e6 / n as f64
        ));
    }
    table.push_str(&format!(
        "Just before it, one Ed25519 signature took {signature_us:.1} µs on one thread (the machine's speed changes from minute to minute).\n"
    ));
    print!("{table}");
    if let Some(path) = args.write {
        write_table(&path, "audit-table", &table)?;
    }
    Ok(())
}

/// One timed append of `ballast bench audit`.
struct AppendRun {
    secs: f64,
    /// Processor seconds, where the system tells.
    cpu: Option<f64>,
    fsyncs: u64,
    log_bytes: u64,
}

/// Microseconds one Ed25519 signature of a 32-byte hash takes on this
/// thread now (the mean of 2,000): a yardstick for the machine's speed,
/// which on a shared host changes from minute to minute.
fn signature_micros() -> f64 {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x5e; 32]);
    let started = std::time::Instant::now();
    for i in 0..2_000u32 {
        let mut hash = [0u8; 32];
        hash[..4].copy_from_slice(&i.to_be_bytes());
        std::hint::black_box(key.sign(std::hint::black_box(&hash)));
    }
    started.elapsed().as_secs_f64() * 1e6 / 2_000.0
}

/// Appends `batches` to `log` with `index` following on a thread of its
/// own; the time ends when both are durable.
fn append_run<'a>(
    mut log: ballast_audit::Log,
    index: ballast_audit::Index,
    batches: impl Iterator<Item = &'a [(ballast_audit::Kind, &'a serde_json::Value, ballast_audit::Timestamp)]>,
) -> Result<AppendRun> {
    let cpu_before = process_cpu_seconds();
    let started = std::time::Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let (to_index, groups) = std::sync::mpsc::sync_channel::<Vec<ballast_audit::Entry>>(4);
        let indexer = scope.spawn(move || -> Result<()> {
            for entries in groups {
                index.apply_entries(&entries)?;
            }
            index.flush()?;
            Ok(())
        });
        let indexer_failed = |indexer: std::thread::ScopedJoinHandle<'_, Result<()>>| match indexer.join() {
            Ok(Err(e)) => e,
            Ok(Ok(())) => eyre::eyre!("the index thread stopped early"),
            Err(_) => eyre::eyre!("the index thread panicked"),
        };
        for batch in batches {
            if to_index.send(log.append_entries(batch)?).is_err() {
                return Err(indexer_failed(indexer));
            }
        }
        log.barrier()?;
        drop(to_index);
        indexer.join().map_err(|_| eyre::eyre!("the index thread panicked"))?
    })?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    Ok(AppendRun { secs, cpu, fsyncs: log.fsyncs(), log_bytes: log.len_bytes() })
}

/// This process's processor time so far (user and system, all threads),
/// from `/proc/self/stat`; `None` where there is no such file.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold
    // spaces): state is the first, utime the 12th and stime the 13th, in
    // clock ticks of 1/100 s.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

async fn bench_cycle(args: BenchCycle) -> Result<()> {
    use ballast_agent::demo::{self, DemoOptions};
    if args.accounts == 0 {
        eyre::bail!("--accounts must be positive");
    }
    let dir = tempfile::Builder::new().prefix("ballast-bench-cycle-").tempdir()?;
    let options = DemoOptions {
        accounts: args.accounts,
        dir: dir.path().to_path_buf(),
        max_slippage_bps: 200,
        anchor_every_records: 1_000,
        approval_limit: rust_decimal::Decimal::from(40_000),
    };
    let started = std::time::Instant::now();
    let mut progress = |line: &str| eprintln!("bench cycle [{:>6.1} s] {line}", started.elapsed().as_secs_f64());
    let (_devnet, deployment, mut agent) = demo::set_up(&options, &mut progress).await.wrap_err("setting up")?;
    progress("one cycle");
    let c = agent.cycle().await.wrap_err("the cycle")?;
    let p = c.phases;
    let legs_per_s = c.legs as f64 / (c.elapsed_ms.max(1) as f64 / 1000.0);
    let mut table = String::from(
        "| accounts | decided | trading | trades | batches | legs | gas | cycle s | ingest | decide | record | settle | anchor | index |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let s = |ms: u64| format!("{:.2}", ms as f64 / 1000.0);
    table.push_str(&format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        args.accounts, c.decided, c.trading, c.trades, c.batches, c.legs, c.gas_used, s(c.elapsed_ms),
        s(p.ingest_ms), s(p.decide_ms), s(p.record_ms), s(p.settle_ms), s(p.anchor_ms), s(p.index_ms),
    ));
    table.push_str(&format!(
        "\nPhases in seconds. {legs_per_s:.0} legs settled per second of cycle; {} failed batches; {} accounts refused by the ledger; \
         anchored checkpoint {}; {} records in the log. Block gas limit {}; {} build.\n",
        c.failed_batches,
        c.refused,
        c.anchored.map_or("none".to_string(), |n| n.to_string()),
        c.records,
        devnet_options(None, 30_000_000).gas_limit,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    ));
    print!("{table}");
    drop(deployment);
    if let Some(path) = args.write {
        write_table(&path, "cycle-table", &table)?;
    }
    Ok(())
}

/// Replaces the section of the Markdown file `path` between
/// `<!-- {marker}:begin -->` and `<!-- {marker}:end -->` with `table`.
fn write_table(path: &std::path::Path, marker: &str, table: &str) -> Result<()> {
    let doc = std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
    let updated = gas::replace_section(&doc, marker, table)
        .ok_or_else(|| eyre::eyre!("{} has no <!-- {marker}:begin/end --> markers", path.display()))?;
    std::fs::write(path, updated).wrap_err_with(|| format!("writing {}", path.display()))?;
    eprintln!("table written to {}", path.display());
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, so that the node is stopped either way.
async fn run_agent(args: RunArgs) -> Result<()> {
    let config = ballast_agent::Config::load(&args.config)?;
    let mut agent = ballast_agent::Agent::open(config).await.wrap_err("starting the agent")?;
    match args.cycles {
        Some(n) => {
            for _ in 0..n {
                agent.cycle().await?;
            }
            agent.anchor_rest().await?;
        }
        None => {
            let shutdown = async {
                if let Err(e) = shutdown_signal().await {
                    tracing::error!(error = %e, "signal handler");
                }
            };
            agent.run(shutdown).await?;
        }
    }
    Ok(())
}

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
        write_table(&path, "gas-table", &table)?;
    }
    Ok(())
}
