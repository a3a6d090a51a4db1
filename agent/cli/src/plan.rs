//! `ballast plan`: the advisor's what-if. Reads accounts, IPS, models and a
//! market snapshot from TOML or JSON files, runs the decision engine, and
//! prints the decisions as a table or as JSON.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use ballast_engine::{
    decision::Status,
    types::{Account, Asset, Inputs, Ips, Limits, MarketSnapshot, Model, PastTrade, Side},
    Decision,
};
use eyre::{bail, eyre, Result, WrapErr};
use serde::Deserialize;
use time::OffsetDateTime;

/// What one input file may hold; several files are merged.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    assets: Vec<Asset>,
    #[serde(default)]
    models: Vec<Model>,
    #[serde(default)]
    ips: Vec<Ips>,
    #[serde(default)]
    accounts: Vec<Account>,
    #[serde(default)]
    market: Option<MarketSnapshot>,
    #[serde(default)]
    recent_trades: Vec<PastTrade>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    now: Option<OffsetDateTime>,
}

/// Reads one file, naming it, the field and the value on error.
fn read(path: &Path) -> Result<PlanFile> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let de = &mut serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            eyre!("{}: field `{field}`: {}", path.display(), e.into_inner())
        })
    } else {
        toml::from_str(&text).map_err(|e| eyre!("{}: {e}", path.display()))
    }
}

/// The merged inputs, with the file each part came from.
pub struct Loaded {
    pub inputs: Inputs,
    sources: Sources,
}

/// Which files gave each account, IPS, model and asset (more than one when
/// it is defined twice), the market and the limits.
#[derive(Default)]
struct Sources {
    accounts: BTreeMap<u64, Vec<PathBuf>>,
    ips: BTreeMap<String, Vec<PathBuf>>,
    models: BTreeMap<String, Vec<PathBuf>>,
    assets: BTreeMap<String, Vec<PathBuf>>,
    market: Option<PathBuf>,
    limits: Option<PathBuf>,
}

impl Loaded {
    /// The engine's refusal of the inputs, with the file (or files) that
    /// gave the part it names first: the engine sees the files merged.
    pub fn explain(&self, err: ballast_engine::Error) -> eyre::Report {
        use ballast_engine::Error;
        let s = &self.sources;
        let files: Vec<&PathBuf> = match &err {
            Error::Invalid { what: subject, .. } | Error::Unknown { referrer: subject, .. } => s.of(subject),
            Error::Duplicate { kind, id } => s.by_kind(kind, id),
            Error::Internal(_) => Vec::new(),
        };
        if files.is_empty() {
            return eyre!("deciding: {err}");
        }
        let mut names: Vec<String> = Vec::new();
        for f in files {
            let name = f.display().to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        eyre!("{}: {err}", names.join(" and "))
    }
}

impl Sources {
    /// The files of what an engine error names: `account 7`, `lot L of
    /// account 7`, `IPS X`, `model X`, `asset X`, `quote X` or `limits`.
    fn of(&self, subject: &str) -> Vec<&PathBuf> {
        if subject == "limits" {
            return self.limits.iter().collect();
        }
        let account = match subject.split_once(' ') {
            Some(("quote", _)) => return self.market.iter().collect(),
            Some(("lot", rest)) => rest.rsplit_once(" of account ").map(|(_, n)| n),
            Some(("account", n)) => Some(n),
            Some((kind, id)) => return self.by_kind(kind, id),
            None => None,
        };
        let id = account.and_then(|n| n.parse::<u64>().ok());
        id.and_then(|id| self.accounts.get(&id)).map(|f| f.iter().collect()).unwrap_or_default()
    }

    fn by_kind(&self, kind: &str, id: &str) -> Vec<&PathBuf> {
        let map = match kind {
            "IPS" => &self.ips,
            "model" => &self.models,
            "asset" => &self.assets,
            _ => return Vec::new(),
        };
        map.get(id).map(|f| f.iter().collect()).unwrap_or_default()
    }
}

/// Merges the files into the engine's inputs; `now` wins over the files'.
pub fn load(paths: &[impl AsRef<Path>], now: Option<OffsetDateTime>) -> Result<Loaded> {
    let mut merged = PlanFile::default();
    let mut sources = Sources::default();
    for path in paths {
        let path = path.as_ref();
        let f = read(path)?;
        let from = |map: &mut BTreeMap<String, Vec<PathBuf>>, id: &str| map.entry(id.to_owned()).or_default().push(path.to_path_buf());
        f.assets.iter().for_each(|a| from(&mut sources.assets, &a.id));
        f.models.iter().for_each(|m| from(&mut sources.models, &m.id));
        f.ips.iter().for_each(|i| from(&mut sources.ips, &i.id));
        for a in &f.accounts {
            sources.accounts.entry(a.id).or_default().push(path.to_path_buf());
        }
        if f.market.is_some() {
            sources.market = Some(path.to_path_buf());
        }
        if f.limits.is_some() {
            sources.limits = Some(path.to_path_buf());
        }
        merged.assets.extend(f.assets);
        merged.models.extend(f.models);
        merged.ips.extend(f.ips);
        merged.accounts.extend(f.accounts);
        merged.recent_trades.extend(f.recent_trades);
        for (name, set) in [("market", f.market.is_some()), ("limits", f.limits.is_some()), ("now", f.now.is_some())] {
            let already = match name {
                "market" => merged.market.is_some(),
                "limits" => merged.limits.is_some(),
                _ => merged.now.is_some(),
            };
            if set && already {
                bail!("{}: `{name}` is already given by an earlier file", path.display());
            }
        }
        merged.market = merged.market.or(f.market);
        merged.limits = merged.limits.or(f.limits);
        merged.now = merged.now.or(f.now);
    }
    let market = merged.market.ok_or_else(|| eyre!("no file gives the `market` snapshot"))?;
    if merged.accounts.is_empty() {
        bail!("no file gives any `accounts`");
    }
    let inputs = Inputs {
        assets: merged.assets,
        models: merged.models,
        ips: merged.ips,
        accounts: merged.accounts,
        market,
        recent_trades: merged.recent_trades,
        limits: merged.limits.unwrap_or_default(),
        now: now.or(merged.now).unwrap_or_else(OffsetDateTime::now_utc),
    };
    Ok(Loaded { inputs, sources })
}

/// The decisions as a table a person reads.
pub fn table(decisions: &[Decision]) -> String {
    let mut s = String::new();
    for d in decisions {
        let status = match d.status {
            Status::NoAction => "no action",
            Status::Trade => "trade",
            Status::PartlyQueued => "partly queued for approval",
            Status::Paused => "paused for review",
            Status::Halted => "halted",
        };
        let _ = writeln!(
            s,
            "account {} (household {}, IPS {} v{}, model {}): {status}; value {}",
            d.account, d.household, d.ips.id, d.ips.version, d.model, d.value
        );
        for t in &d.triggers {
            let acted = if Some(t.kind) == d.acted_on { " (acted on)" } else { "" };
            let _ = writeln!(s, "  trigger {:?}{acted}: {}", t.kind, t.detail);
        }
        for h in &d.halts {
            let _ = writeln!(s, "  halt {}: {}", h.asset, h.reason);
        }
        let _ = writeln!(s, "  {:<8} {:>8} {:>8} {:>10} {:>12}", "asset", "target", "before", "after", "band");
        for x in &d.drift {
            let _ = writeln!(
                s,
                "  {:<8} {:>7.2}% {:>7.2}% {:>9.2}% {:>10.2}pp{}",
                x.asset,
                x.target * rust_decimal::Decimal::ONE_HUNDRED,
                x.before * rust_decimal::Decimal::ONE_HUNDRED,
                x.after * rust_decimal::Decimal::ONE_HUNDRED,
                x.band * rust_decimal::Decimal::ONE_HUNDRED,
                if x.out_of_band { "  out of band" } else { "" }
            );
        }
        for (label, list) in [("trade", &d.trades), ("queued", &d.queued)] {
            for t in list {
                let side = if t.side == Side::Buy { "buy" } else { "sell" };
                let _ = writeln!(s, "  {label} {side} {} {} at {} = {} ({:?})", t.quantity, t.asset, t.price, t.value, t.reason);
                let _ = writeln!(s, "    {}", t.rationale);
                for u in &t.lots {
                    let _ = writeln!(s, "    lot {} {} gain {} {:?}-term", u.lot, u.quantity, u.gain, u.term);
                }
            }
        }
        for c in d.checks.iter().filter(|c| !c.passed) {
            let _ = writeln!(s, "  check {} failed: {}", c.name, c.detail);
        }
        let t = &d.tax;
        let _ = writeln!(
            s,
            "  tax: short-term gain {}, long-term gain {}, harvested losses {}, estimated tax {}; cash {} -> {}\n",
            t.short_term_gain, t.long_term_gain, t.harvested_losses, t.estimated_tax, d.cash_before, d.cash_after
        );
    }
    s
}
