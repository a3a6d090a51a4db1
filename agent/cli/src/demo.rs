//! `ballast demo`: runs the agent on an embedded devnet and prints the report.

use eyre::{Context, Result};

use ballast_agent::demo::{self, DemoOptions, DemoReport};

pub async fn run(args: super::DemoArgs) -> Result<()> {
    let dir = match args.dir {
        Some(d) => d,
        None => tempfile::Builder::new().prefix("ballast-demo-").tempdir().wrap_err("creating the demo folder")?.keep(),
    };
    eprintln!("ballast demo: {} accounts, files in {}", args.accounts, dir.display());
    let options = DemoOptions { accounts: args.accounts, dir: dir.clone(), max_slippage_bps: args.max_slippage_bps, anchor_every_records: 5_000, approval_limit: rust_decimal::Decimal::from(40_000) };
    let started = std::time::Instant::now();
    let report = demo::run(&options, &mut |line| eprintln!("[{:>6.1} s] {line}", started.elapsed().as_secs_f64()))
        .await
        .wrap_err("the demo failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    eprintln!("files kept in {} (ballast.toml, book.json, manifest.json, data/)", dir.display());
    Ok(())
}

fn text(r: &DemoReport) -> String {
    let mut s = String::new();
    let gas_per_account = if r.accounts_rebalanced > 0 { r.gas_used / r.accounts_rebalanced as u64 } else { 0 };
    s.push_str("\nBallast demo report\n");
    s.push_str(&format!("  accounts                {} in {} households\n", r.accounts, r.households));
    s.push_str(&format!("  accounts rebalanced     {}\n", r.accounts_rebalanced));
    s.push_str(&format!(
        "  trades settled          {} in {} batches ({} failed, {} accounts refused by the ledger)\n",
        r.trades, r.batches, r.failed_batches, r.refused
    ));
    s.push_str(&format!("  volume crossed          {:.2} (between accounts, at the feed price)\n", r.crossed_value));
    s.push_str(&format!("  volume on the venue     {:.2} (net residual, Uniswap V2)\n", r.venue_value));
    s.push_str(&format!("  gas                     {} in total, {} per rebalanced account\n", r.gas_used, gas_per_account));
    s.push_str(&format!("  losses harvested        {:.2}\n", r.losses_harvested));
    s.push_str(&format!("  paused by the breaker   {} decisions\n", r.paused_decisions));
    s.push_str(&format!("  queued for approval     {} decisions\n", r.queued_decisions));
    s.push_str(&format!("  audit records           {}\n", r.records));
    s.push_str(&format!("  checkpoints anchored    {}\n", r.checkpoints_anchored));
    if let Some(v) = &r.verification {
        s.push_str(&format!(
            "  verification            passed: {} records (signatures, hash chain), {} anchored roots, index = rebuild, \
             {} batches and {} legs on-chain match the log, {} accounts' balances reconcile with their events\n",
            v.records, v.anchors, v.settled_batches, v.legs, v.accounts
        ));
    }
    s.push_str("\n  day                     decided  recorded  trading  paused  queued  batches      gas\n");
    for (name, c) in &r.days {
        s.push_str(&format!(
            "  {:<22} {:>8} {:>9} {:>8} {:>7} {:>7} {:>8} {:>8}\n",
            name, c.decided, c.recorded, c.trading, c.paused, c.queued, c.batches, c.gas_used
        ));
    }
    s.push_str("\n  (a decision with nothing to do is recorded once a day per account, not every cycle)\n");
    s
}
