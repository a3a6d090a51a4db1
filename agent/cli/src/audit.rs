//! `ballast audit …`: verify a log or an export bundle (against the chain
//! when given one), rebuild the index, show records, export a regulator's
//! bundle and write compliance reports.

use std::path::{Path, PathBuf};

use ballast_audit::{
    Index, KeyRing, MemoryAnchors, Record, Timestamp,
    bundle::{self, BundleCheckpoint, Selection},
    read::{VerifiedLog, read_log},
};
use ballast_chain::registry::RegistryReader;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail, eyre};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a whole log (hash chain, signatures within their keys'
    /// windows, contiguous seqs, the checkpoints it recorded, and every
    /// checkpoint anchored on-chain when a chain is given), or an export
    /// bundle with --bundle (against the chain and its keys, or trusted
    /// keys). Exits non-zero on the first integrity failure, naming the
    /// record.
    Verify(Verify),
    /// Rebuild the sled index from the log (the log is the source of truth).
    Reindex(Reindex),
    /// Print one record, or one account's history, from the index.
    Show(Show),
    /// Write a regulator's bundle: the records of an account (and/or a time
    /// range) with inclusion proofs against the latest anchored checkpoint,
    /// the public keys and the chain to check against.
    Export(Export),
    /// Compliance report: why each trade of the selected decisions was made
    /// (trigger and what fired it, drift, IPS reference, the checks passed and
    /// failed), as CSV or JSON.
    Report(Report),
}

/// Where the agent keeps its files.
#[derive(Debug, Args)]
pub struct DataDir {
    /// The agent's data folder: `audit.log`, `index/` and `keys.json` (the
    /// public keys with their validity windows).
    #[arg(long, default_value = "ballast-data", env = "BALLAST_DATA_DIR")]
    data_dir: PathBuf,
}

impl DataDir {
    fn log(&self) -> PathBuf {
        self.data_dir.join("audit.log")
    }

    fn index(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    fn keys(&self) -> PathBuf {
        self.data_dir.join("keys.json")
    }
}

/// The chain to check against: a deployment manifest, or its parts.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Deployment manifest (JSON) naming the RPC URL, chain id and `AuditRegistry`.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// RPC URL (overrides the manifest's).
    #[arg(long)]
    rpc: Option<String>,
    /// Chain id (overrides the manifest's).
    #[arg(long)]
    chain_id: Option<u64>,
    /// `AuditRegistry` address (overrides the manifest's).
    #[arg(long)]
    registry: Option<alloy::primitives::Address>,
}

impl ChainArgs {
    /// (rpc, chain id, registry) when a chain was named at all.
    fn target(&self) -> Result<Option<(String, u64, alloy::primitives::Address)>> {
        let manifest = match &self.manifest {
            Some(p) => Some(ballast_chain::manifest::Manifest::read(p).wrap_err_with(|| format!("reading the manifest {}", p.display()))?),
            None => None,
        };
        let rpc = self.rpc.clone().or_else(|| manifest.as_ref().map(|m| m.rpc_url.clone()));
        let chain_id = self.chain_id.or(manifest.as_ref().map(|m| m.chain_id));
        let registry = self.registry.or(manifest.as_ref().map(|m| m.contracts.audit_registry));
        match (rpc, chain_id, registry) {
            (None, None, None) => Ok(None),
            (Some(r), Some(c), Some(a)) => Ok(Some((r, c, a))),
            _ => bail!("checking against the chain needs --manifest, or all of --rpc, --chain-id and --registry"),
        }
    }

    async fn connect(&self) -> Result<Option<RegistryReader>> {
        let Some((rpc, chain_id, registry)) = self.target()? else { return Ok(None) };
        let reader = RegistryReader::connect(&rpc, chain_id, registry)
            .await
            .wrap_err_with(|| format!("connecting to the AuditRegistry {registry} on chain {chain_id} at {rpc}"))?;
        Ok(Some(reader))
    }
}

/// Which records: one account's (default: every account's), within a time range.
#[derive(Debug, Args)]
pub struct Filter {
    /// Only this account's records, oldest first.
    #[arg(long)]
    account: Option<u64>,
    /// Only records at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_timestamp)]
    from: Option<Timestamp>,
    /// Only records before this time (RFC 3339).
    #[arg(long, value_parser = parse_timestamp)]
    until: Option<Timestamp>,
}

impl From<&Filter> for Selection {
    fn from(f: &Filter) -> Self {
        Selection { account: f.account, from: f.from, until: f.until }
    }
}

#[derive(Debug, Args)]
pub struct Verify {
    #[command(flatten)]
    data: DataDir,
    /// Verify this export bundle (a folder) instead of the agent's log:
    /// against the chain (its anchored root, and the keys registered there)
    /// or trusted keys given with --keys.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// With --bundle and neither a chain nor --keys: check only that the
    /// bundle agrees with itself (its own keys, its own checkpoint). That
    /// shows no tampering by anyone without a key, but not who made it.
    #[arg(long, requires = "bundle")]
    self_consistent: bool,
    /// Public keys (JSON list of {key_id, public_key, validity}); default:
    /// `keys.json` in the data folder, else the keys registered on-chain.
    #[arg(long)]
    keys: Option<PathBuf>,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub struct Reindex {
    #[command(flatten)]
    data: DataDir,
    /// Public keys (default: `keys.json` in the data folder).
    #[arg(long)]
    keys: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Show {
    #[command(flatten)]
    data: DataDir,
    /// The record with this sequence number.
    #[arg(long, conflicts_with = "account", required_unless_present = "account")]
    seq: Option<u64>,
    #[command(flatten)]
    filter: Filter,
    /// Print the records as JSON lines instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct Export {
    #[command(flatten)]
    data: DataDir,
    /// Public keys (default: `keys.json` in the data folder).
    #[arg(long)]
    keys: Option<PathBuf>,
    #[command(flatten)]
    filter: Filter,
    /// The folder to write the bundle into.
    #[arg(long)]
    out: PathBuf,
    /// The log's origin (name) written into the bundle when its checkpoint
    /// has no signed note (a note names its own), default
    /// `ballast-audit-log`.
    #[arg(long)]
    origin: Option<String>,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub struct Report {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    filter: Filter,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
    format: ReportFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

pub(crate) fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| format!("`{s}`: {e}"))
}

pub async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify(args) => verify(args).await,
        AuditCommand::Reindex(args) => reindex(&args),
        AuditCommand::Show(args) => show(&args),
        AuditCommand::Export(args) => export(args).await,
        AuditCommand::Report(args) => report(&args),
    }
}

fn read_keys(path: &Path) -> Result<KeyRing> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading the keys file {}", path.display()))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| eyre!("{}: field `{}`: {}", path.display(), e.path(), e.inner()))
}

/// The keys registered on-chain, with their windows, as a key ring.
async fn chain_keys(reader: &RegistryReader) -> Result<KeyRing> {
    ballast_agent::agent::registry_keyring(reader).await.wrap_err("reading the registered agent keys")
}

async fn verify(args: Verify) -> Result<()> {
    let reader = args.chain.connect().await?;
    let keys_path = args.keys.clone().or_else(|| Some(args.data.keys()).filter(|p| p.exists() && args.bundle.is_none()));
    let keyring = match (&keys_path, &reader) {
        (Some(p), _) => Some(read_keys(p)?),
        (None, Some(r)) => Some(chain_keys(r).await?),
        (None, None) => None,
    };
    if let Some(dir) = &args.bundle {
        if keyring.is_none() && !args.self_consistent {
            bail!(
                "nothing to check the bundle {} against: name the chain (--manifest, or --rpc, --chain-id and --registry) or give trusted keys (--keys); --self-consistent checks only that it agrees with itself",
                dir.display()
            );
        }
        let checked = bundle::check(dir, keyring.as_ref()).wrap_err_with(|| format!("bundle {} failed verification", dir.display()))?;
        let m = &checked.manifest;
        println!("bundle {}: {} records verified (hash, signature, key window, inclusion in the {}-record checkpoint)", dir.display(), m.records, m.checkpoint_size);
        match &checked.note {
            Some(note) => println!("checkpoint note: {} records of {}, signed by the agent: verified", note.size, note.origin),
            None => println!("checkpoint note: none in the bundle"),
        }
        match (&keyring, &reader) {
            (Some(_), Some(_)) if args.keys.is_none() => println!("keys: the keys registered on-chain, with their windows"),
            (Some(_), _) => println!("keys: the trusted keys given, with their windows"),
            (None, _) => println!("keys: the bundle's own (NOT checked against trusted keys)"),
        }
        if reader.is_none() && checked.note.is_none() && !args.self_consistent {
            bail!(
                "the bundle's {}-record checkpoint is not authenticated: the bundle has no signed checkpoint note and no chain was named (--manifest, or --rpc, --chain-id and --registry)",
                m.checkpoint_size
            );
        }
        match &reader {
            Some(r) => {
                if let (Some(chain_id), Some(registry)) = (m.chain_id, &m.registry)
                    && (args.chain.target()?.map(|t| (t.1, t.2.to_string().to_lowercase())) != Some((chain_id, registry.to_lowercase())))
                {
                    bail!("the bundle names chain {chain_id} registry {registry}, not the chain given");
                }
                match r.root_at(m.checkpoint_size).await.wrap_err("reading the anchored root")? {
                    Some(root) if root == m.checkpoint_root => {
                        println!("chain: checkpoint {} root {} is anchored in {}: verified", m.checkpoint_size, hex::encode(root), r.address())
                    }
                    Some(root) => bail!("checkpoint {} is anchored with root {}, the bundle says {}", m.checkpoint_size, hex::encode(root), hex::encode(m.checkpoint_root)),
                    None => bail!("checkpoint {} is not anchored on-chain", m.checkpoint_size),
                }
            }
            None => println!("chain: not checked (give --manifest, or --rpc, --chain-id and --registry)"),
        }
        return Ok(());
    }

    let keyring = keyring.ok_or_else(|| eyre!("no keys: give --keys, put keys.json in {}, or name the chain", args.data.data_dir.display()))?;
    let log = args.data.log();
    let started = std::time::Instant::now();
    let verified = read_log(&log, &keyring).wrap_err_with(|| format!("{} failed verification", log.display()))?;
    let n = verified.records.len();
    println!(
        "log {}: {n} records verified (hash chain, signatures, key windows, contiguous seqs) in {:.2} s",
        log.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(torn) = &verified.summary.torn_tail {
        println!("warning: a torn tail of {} bytes at offset {} (an append cut short; the agent drops it on start)", torn.dropped_bytes, torn.offset);
    }
    let own = verified.check_own_records(&keyring).wrap_err("the log goes against what it records of itself")?;
    println!("key rotations recorded: {}; every record is signed by the key the log hands signing to", own.rotations);
    let (recorded, notes) = (own.checkpoints.anchors.0.len(), own.checkpoints.notes.len());
    println!("checkpoints recorded in the log: {recorded} match its records ({notes} with a signed note, verified)");
    check_against_chain(&verified, reader.as_ref()).await
}

async fn check_against_chain(verified: &VerifiedLog, reader: Option<&RegistryReader>) -> Result<()> {
    let Some(r) = reader else {
        println!("chain: not checked (give --manifest, or --rpc, --chain-id and --registry)");
        return Ok(());
    };
    let anchors = MemoryAnchors(r.anchors().await.wrap_err("reading the anchored checkpoints")?.into_iter().collect());
    let report = ballast_audit::check_anchors(&verified.tree, &anchors).wrap_err("the log does not match the checkpoints anchored on-chain")?;
    let unanchored = verified.tree.size() - report.latest.unwrap_or(0);
    println!(
        "chain: {} anchored checkpoints match the log; {unanchored} newest records not yet anchored",
        report.checked
    );
    Ok(())
}

fn keys_for(data: &DataDir, keys: &Option<PathBuf>) -> Result<KeyRing> {
    read_keys(&keys.clone().unwrap_or_else(|| data.keys()))
}

fn reindex(args: &Reindex) -> Result<()> {
    let keyring = keys_for(&args.data, &args.keys)?;
    let verified = read_log(&args.data.log(), &keyring).wrap_err("the log failed verification; not indexing it")?;
    let (index, corrupt) = Index::open_or_replace(args.data.index(), args.data.log())?;
    if let Some(aside) = corrupt {
        eprintln!("reindex: the index was corrupt; moved aside to {}", aside.display());
    }
    index.clear()?;
    let started = std::time::Instant::now();
    for (i, (chunk, spans)) in verified.records.chunks(10_000).zip(verified.spans.chunks(10_000)).enumerate() {
        index.apply_all(chunk.iter().zip(spans.iter().copied()))?;
        eprintln!("reindex: {} of {} records", (i * 10_000 + chunk.len()), verified.records.len());
    }
    index.flush()?;
    println!("index {}: rebuilt from {} records in {:.2} s", args.data.index().display(), verified.records.len(), started.elapsed().as_secs_f64());
    Ok(())
}

fn open_index(data: &DataDir) -> Result<Index> {
    let path = data.index();
    if !path.exists() {
        bail!("no index at {} (run `ballast audit reindex`)", path.display());
    }
    let index = Index::open(&path, data.log())?;
    // An index behind its log answers without the newer records: say so.
    let log_bytes = std::fs::metadata(data.log()).map_or(0, |m| m.len());
    let covered = index.covered_bytes()?;
    if log_bytes > covered {
        eprintln!(
            "warning: the index covers {} records ({covered} bytes of the log), but {} is {log_bytes} bytes long: \
             answers leave out what came after (an index of an older format starts empty). \
             Run `ballast audit reindex`, or start the agent, which catches the index up.",
            index.indexed()?,
            data.log().display()
        );
    }
    Ok(index)
}

fn selected(index: &Index, filter: &Filter) -> Result<Vec<Record>> {
    let seqs = match filter.account {
        Some(a) => index.by_account(a, filter.from, filter.until)?,
        None => {
            let lo = filter.from.unwrap_or(Timestamp::from_unix_nanos(0)?);
            let hi = filter.until.unwrap_or(Timestamp::from_unix_nanos(i128::from(i64::MAX))?);
            index.by_time(lo, hi)?
        }
    };
    Ok(index.records(&seqs)?)
}

fn show(args: &Show) -> Result<()> {
    let index = open_index(&args.data)?;
    let records = match args.seq {
        Some(seq) => vec![index.get(seq)?.ok_or_else(|| eyre!("no record {seq} in the index ({} indexed)", index.indexed().unwrap_or(0)))?],
        None => selected(&index, &args.filter)?,
    };
    for r in &records {
        if args.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!("{}", summary_line(r));
        }
    }
    if records.is_empty() {
        eprintln!("no records");
    }
    Ok(())
}

/// One line a person can read about a record.
fn summary_line(r: &Record) -> String {
    let b = &r.body;
    let what = match r.kind {
        ballast_audit::Kind::Decision => format!(
            "account {} under IPS {} v{}: {} ({} trades, {} queued)",
            b["account"],
            b["ips"]["id"].as_str().unwrap_or("?"),
            b["ips"]["version"],
            b["status"].as_str().unwrap_or("?"),
            b["trades"].as_array().map_or(0, Vec::len),
            b["queued"].as_array().map_or(0, Vec::len)
        ),
        _ => serde_json::to_string(b).unwrap_or_default(),
    };
    format!("#{} {} {} {}", r.seq, r.time, r.kind, what)
}

async fn export(args: Export) -> Result<()> {
    let keyring = keys_for(&args.data, &args.keys)?;
    let verified = read_log(&args.data.log(), &keyring).wrap_err("the log failed verification; not exporting from it")?;
    let mut notes = verified.check_own_records(&keyring).wrap_err("the log goes against what it records of itself; not exporting from it")?.checkpoints.notes;
    let reader = args.chain.connect().await?;
    let selection = Selection::from(&args.filter);
    let picked: Vec<Record> = verified
        .records
        .iter()
        .filter(|r| selection.contains(r))
        .cloned()
        .collect();
    let last = picked.last().map_or(0, |r| r.seq + 1);
    // Proofs against the latest anchored checkpoint that covers the records
    // and that the log recorded with the agent's signed note; else the
    // latest that covers them (settlement batches anchor theirs without a
    // note); else against the whole log, marked as not anchored.
    let unanchored = || BundleCheckpoint { size: verified.tree.size(), anchored: false, note: None };
    let (checkpoint, chain) = match &reader {
        Some(r) => {
            let anchors = MemoryAnchors(r.anchors().await?.into_iter().collect());
            ballast_audit::check_anchors(&verified.tree, &anchors).wrap_err("the log does not match the chain")?;
            let covering = || anchors.0.keys().copied().filter(|&size| size >= last && size > 0);
            let target = args.chain.target()?.expect("connected, so named");
            let cp = match (covering().rfind(|size| notes.contains_key(size)), covering().next_back()) {
                (Some(size), _) => BundleCheckpoint { size, anchored: true, note: notes.remove(&size) },
                (None, Some(size)) => BundleCheckpoint { size, anchored: true, note: None },
                (None, None) => unanchored(),
            };
            (cp, Some((target.1, target.2.to_string())))
        }
        None => (unanchored(), None),
    };
    let origin = match (&checkpoint.note, &args.origin) {
        (Some((note, _)), given) => {
            let named = ballast_audit::checkpoint::note_origin(note).unwrap_or_default();
            if given.as_deref().is_some_and(|g| g != named) {
                bail!("the checkpoint's signed note is of origin {named}, not {}", given.as_deref().unwrap_or_default());
            }
            named.to_string()
        }
        (None, given) => given.clone().unwrap_or_else(|| "ballast-audit-log".into()),
    };
    let m = bundle::write(&args.out, &picked, &verified.tree, checkpoint, &keyring, &origin, chain, selection)?;
    println!(
        "bundle {}: {} records, proofs against the {}-record checkpoint ({})",
        args.out.display(),
        m.records,
        m.checkpoint_size,
        if m.checkpoint_anchored { "anchored on-chain" } else { "NOT anchored on-chain yet" }
    );
    Ok(())
}

/// One row of the compliance report: one trade of one decision.
#[derive(Debug, serde::Serialize)]
struct ReportRow {
    seq: u64,
    time: String,
    account: u64,
    ips_id: String,
    ips_version: u64,
    ips_document_hash: String,
    trigger: String,
    /// What made the acting trigger fire.
    trigger_detail: String,
    status: String,
    asset: String,
    side: String,
    quantity: String,
    price: String,
    value: String,
    reason: String,
    drift_before: String,
    drift_after: String,
    target: String,
    queued: bool,
    /// The decision's compliance checks that passed (names), and those
    /// that failed (name: detail).
    passed_checks: String,
    failed_checks: String,
    rationale: String,
    record_hash: String,
}

fn report(args: &Report) -> Result<()> {
    let index = open_index(&args.data)?;
    let rows: Vec<ReportRow> = selected(&index, &args.filter)?
        .iter()
        .filter(|r| r.kind == ballast_audit::Kind::Decision)
        .flat_map(report_rows)
        .collect();
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ReportFormat::Csv => {
            let mut out = String::from(
                "seq,time,account,ips_id,ips_version,ips_document_hash,trigger,trigger_detail,status,asset,side,quantity,price,value,reason,drift_before,drift_after,target,queued,passed_checks,failed_checks,rationale,record_hash\n",
            );
            for r in &rows {
                let fields = [
                    r.seq.to_string(),
                    r.time.clone(),
                    r.account.to_string(),
                    r.ips_id.clone(),
                    r.ips_version.to_string(),
                    r.ips_document_hash.clone(),
                    r.trigger.clone(),
                    r.trigger_detail.clone(),
                    r.status.clone(),
                    r.asset.clone(),
                    r.side.clone(),
                    r.quantity.clone(),
                    r.price.clone(),
                    r.value.clone(),
                    r.reason.clone(),
                    r.drift_before.clone(),
                    r.drift_after.clone(),
                    r.target.clone(),
                    r.queued.to_string(),
                    r.passed_checks.clone(),
                    r.failed_checks.clone(),
                    r.rationale.clone(),
                    r.record_hash.clone(),
                ];
                out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
            print!("{out}");
        }
    }
    Ok(())
}

fn report_rows(r: &Record) -> Vec<ReportRow> {
    let b = &r.body;
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let checks = || b["checks"].as_array().into_iter().flatten();
    let passed: Vec<String> = checks().filter(|c| c["passed"] == serde_json::Value::Bool(true)).map(|c| text(&c["name"])).collect();
    let failed: Vec<String> = checks()
        .filter(|c| c["passed"] == serde_json::Value::Bool(false))
        .map(|c| format!("{}: {}", text(&c["name"]), text(&c["detail"])))
        .collect();
    let trigger_detail = b["triggers"].as_array().into_iter().flatten().find(|t| t["kind"] == b["acted_on"]).map_or_else(String::new, |t| text(&t["detail"]));
    let drift_of = |asset: &str| b["drift"].as_array().into_iter().flatten().find(|d| d["asset"] == asset).cloned().unwrap_or_default();
    let trades = b["trades"].as_array().into_iter().flatten().map(|t| (t, false));
    let queued = b["queued"].as_array().into_iter().flatten().map(|t| (t, true));
    trades
        .chain(queued)
        .map(|(t, queued)| {
            let d = drift_of(t["asset"].as_str().unwrap_or_default());
            ReportRow {
                seq: r.seq,
                time: r.time.to_string(),
                account: b["account"].as_u64().unwrap_or_default(),
                ips_id: text(&b["ips"]["id"]),
                ips_version: b["ips"]["version"].as_u64().unwrap_or_default(),
                ips_document_hash: text(&b["ips"]["document_hash"]),
                trigger: text(&b["acted_on"]),
                trigger_detail: trigger_detail.clone(),
                status: text(&b["status"]),
                asset: text(&t["asset"]),
                side: text(&t["side"]),
                quantity: text(&t["quantity"]),
                price: text(&t["price"]),
                value: text(&t["value"]),
                reason: text(&t["reason"]),
                drift_before: text(&d["before"]),
                drift_after: text(&d["after"]),
                target: text(&d["target"]),
                queued,
                passed_checks: passed.join("; "),
                failed_checks: failed.join("; "),
                rationale: text(&t["rationale"]),
                record_hash: hex::encode(r.hash),
            }
        })
        .collect()
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}
