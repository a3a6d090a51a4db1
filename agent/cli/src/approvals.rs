//! `ballast approvals list|approve|reject`: the advisor's side of trades
//! queued for review. Verdicts go to the agent's inbox; the agent records
//! them (each an audit record) and settles approved trades in its next cycle.

use clap::{Args, Subcommand};
use eyre::{Result, bail, eyre};

use ballast_agent::{
    Config,
    approvals::{self, Verdict},
};

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Decisions whose trades wait for an advisor: the account's latest
    /// decision, with its queued trades and why each waits.
    List(ListArgs),
    /// Approve decision ID's queued trades: they settle in the agent's next cycle.
    Approve(VerdictArgs),
    /// Reject decision ID's queued trades (--reason is required).
    Reject(VerdictArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The agent's configuration (its data folder and book).
    #[arg(long, default_value = "ballast.toml", env = "BALLAST_CONFIG")]
    config: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// The decision's ID (its record's sequence number, from `approvals list`).
    id: u64,
    #[command(flatten)]
    config: ConfigArg,
    /// Who decides (default: $USER).
    #[arg(long)]
    approver: Option<String>,
    /// Why (required to reject).
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(command: ApprovalsCommand) -> Result<()> {
    match command {
        ApprovalsCommand::List(args) => list(&args),
        ApprovalsCommand::Approve(args) => verdict(&args, true),
        ApprovalsCommand::Reject(args) => verdict(&args, false),
    }
}

fn list(args: &ListArgs) -> Result<()> {
    let config = Config::load(&args.config.config)?;
    let book = approvals::read_book(&config)?;
    let waiting: Vec<_> = book.awaiting().values().collect();
    if args.json {
        let out: Vec<_> = waiting
            .iter()
            .map(|w| serde_json::json!({"id": w.seq, "hash": hex::encode(w.hash), "account": w.decision.account, "decision": w.decision}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if waiting.is_empty() {
        println!("no trades wait for approval");
        return Ok(());
    }
    for w in waiting {
        let d = &w.decision;
        println!("decision {} — account {} ({}), IPS {} v{}, status {:?}", w.seq, d.account, d.household, d.ips.id, d.ips.version, d.status);
        for t in &d.queued {
            println!("    {:?} {} {} at {} = {}", t.side, t.quantity, t.asset, t.price, t.value.round_dp(2));
        }
        for c in d.checks.iter().filter(|c| !c.passed && c.name.starts_with("approval")) {
            println!("    waits: {}: {}", c.name, c.detail);
        }
    }
    Ok(())
}

fn verdict(args: &VerdictArgs, approve: bool) -> Result<()> {
    let reason = args.reason.clone().unwrap_or_default();
    if !approve && reason.trim().is_empty() {
        bail!("a rejection needs --reason");
    }
    let approver = match &args.approver {
        Some(a) => a.clone(),
        None => std::env::var("USER").map_err(|_| eyre!("give --approver (no $USER)"))?,
    };
    let config = Config::load(&args.config.config)?;
    let book = approvals::read_book(&config)?;
    let waiting = approvals::find(&book, args.id)
        .ok_or_else(|| eyre!("decision {} does not wait for approval (see `ballast approvals list`)", args.id))?;
    let v = Verdict {
        account: waiting.decision.account,
        decision_seq: waiting.seq,
        decision_hash: hex::encode(waiting.hash),
        approve,
        approver,
        reason,
    };
    let path = approvals::submit(&config.agent.data_dir, &v)?;
    println!(
        "{} decision {} of account {}: handed to the agent ({}); it is recorded and {} at the start of the next cycle",
        if approve { "approved" } else { "rejected" },
        v.decision_seq,
        v.account,
        path.display(),
        if approve { "its trades settled" } else { "its trades dropped" }
    );
    Ok(())
}
