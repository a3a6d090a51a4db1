//! `ballast.toml`: every setting of the agent, with sensible defaults,
//! validated once at start. Unknown keys are refused so that a typo is an
//! error, not a silently ignored setting; every error names the key.
//!
//! ```toml
//! [chain]
//! manifest = "devnet-manifest.json"   # RPC URL, chain id and contract addresses
//! confirmations = 1
//!
//! [keys]
//! settler = "file:keys/settler.key"   # EVM key, hex; or "env:BALLAST_SETTLER_KEY"
//! audit = "env:BALLAST_AUDIT_KEY"     # Ed25519 seed, hex
//!
//! [agent]
//! data_dir = "ballast-data"
//! cycle_interval_s = 60
//! ```

use std::{net::SocketAddr, path::{Path, PathBuf}};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::{
    error::{Error, Result},
    keys::KeySource,
};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub chain: ChainConfig,
    pub keys: KeysConfig,
    #[serde(default)]
    pub agent: AgentConfig,
    #[serde(default)]
    pub market: MarketConfig,
    #[serde(default)]
    pub api: ApiConfig,
}

/// Where the contracts are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The deployment manifest (JSON) written by `ballast devnet up` or a deployment.
    pub manifest: PathBuf,
    /// Overrides the manifest's RPC URL.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// Blocks a settlement waits for before it is recorded as confirmed.
    #[serde(default = "one")]
    pub confirmations: u64,
}

/// Where the agent's keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The EVM key that settles batches and anchors checkpoints.
    pub settler: KeySource,
    /// The Ed25519 seed that signs audit records.
    pub audit: KeySource,
}

/// How the agent works.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Audit log, index and key ring live here.
    pub data_dir: PathBuf,
    /// The opening book (JSON or TOML): assets, models, IPS, and accounts
    /// with their tax lots as of onboarding.
    pub book: PathBuf,
    /// Seconds between the starts of two cycles.
    pub cycle_interval_s: u64,
    /// Anchor a checkpoint at least every this many records…
    pub anchor_every_records: u64,
    /// …or every this many seconds, whichever comes first.
    pub anchor_every_s: u64,
    /// Fsync policy of the audit log: `every_record`, `every_n:N` or `every_ms:T`.
    pub fsync: String,
    /// Largest price move the venue leg of a batch may take, in basis points.
    pub max_slippage_bps: u16,
    /// Seconds a settlement transaction stays valid (its deadline).
    pub batch_deadline_s: u64,
    /// Seconds the cycle waits for a settlement to be mined and confirmed;
    /// one still open then is resolved at the next cycle.
    pub settle_timeout_s: u64,
    /// A decision with nothing to do (no trade, halt or queue) is recorded
    /// only if the account has no decision recorded in this many seconds;
    /// 0 records every decision of every cycle.
    pub record_no_action_every_s: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("ballast-data"),
            book: PathBuf::from("book.json"),
            cycle_interval_s: 60,
            anchor_every_records: 10_000,
            anchor_every_s: 300,
            fsync: "every_n:256".into(),
            max_slippage_bps: 100,
            batch_deadline_s: 300,
            settle_timeout_s: 60,
            record_no_action_every_s: 86_400,
        }
    }
}

/// Market data and circuit breakers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// A price older than this halts its asset.
    pub max_price_age_s: i64,
    /// Feed and venue prices further apart than this fraction halt the asset.
    pub source_tolerance: Decimal,
    /// A move beyond this fraction since the previous close pauses automatic trading.
    pub max_daily_move: Decimal,
    /// A volatility index above this pauses automatic trading.
    pub volatility_threshold: Option<Decimal>,
}

impl Default for MarketConfig {
    fn default() -> Self {
        let limits = ballast_engine::types::Limits::default();
        Self {
            max_price_age_s: limits.max_price_age_s,
            source_tolerance: limits.source_tolerance,
            max_daily_move: limits.max_daily_move,
            volatility_threshold: None,
        }
    }
}

/// The query API and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the query API and metrics while `ballast run` runs.
    pub enabled: bool,
    /// Where the HTTP API listens (loopback unless you mean otherwise; port
    /// 0 lets the system pick one, written to `api.addr` in the data folder).
    pub listen: SocketAddr,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9464)) }
    }
}

fn one() -> u64 {
    1
}

/// The audit log's fsync policy, parsed from `agent.fsync`.
pub fn sync_policy(text: &str) -> Option<ballast_audit::SyncPolicy> {
    use ballast_audit::SyncPolicy;
    match text.split_once(':') {
        None if text == "every_record" => Some(SyncPolicy::EveryRecord),
        Some(("every_n", n)) => n.parse().ok().filter(|n| *n > 0).map(SyncPolicy::EveryN),
        Some(("every_ms", ms)) => ms.parse().ok().filter(|ms| *ms > 0).map(SyncPolicy::EveryMillis),
        _ => None,
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { op: "reading", path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` names it in errors. Relative
    /// paths in the file are taken relative to the file's folder.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let bad = |key: &str, reason: String| Error::Config { path: path.into(), key: key.into(), reason };
        let de = toml::Deserializer::parse(text).map_err(|e| bad("(file)", e.to_string()))?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let message = e.inner().message().to_string();
            let at = e.path().to_string();
            // A missing key is named by the message, not the path (its parent).
            let key = match message.strip_prefix("missing field `").and_then(|m| m.split_once('`')) {
                Some((field, _)) if at == "." => field.to_string(),
                Some((field, _)) => format!("{at}.{field}"),
                None => at,
            };
            bad(&key, message)
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut config.chain.manifest);
        rebase(&mut config.agent.data_dir);
        rebase(&mut config.agent.book);
        for source in [&mut config.keys.settler, &mut config.keys.audit] {
            if let KeySource::File(p) = source {
                rebase(p);
            }
        }
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |key: &str, reason: String| Err(Error::Config { path: path.into(), key: key.into(), reason });
        let a = &self.agent;
        if a.cycle_interval_s == 0 {
            return bad("agent.cycle_interval_s", "must be at least 1".into());
        }
        if a.anchor_every_records == 0 {
            return bad("agent.anchor_every_records", "must be at least 1".into());
        }
        if a.anchor_every_s == 0 {
            return bad("agent.anchor_every_s", "must be at least 1".into());
        }
        if sync_policy(&a.fsync).is_none() {
            return bad("agent.fsync", format!("{:?} is not every_record, every_n:N or every_ms:T (N, T > 0)", a.fsync));
        }
        if a.max_slippage_bps == 0 || a.max_slippage_bps > 10_000 {
            return bad("agent.max_slippage_bps", format!("{} is not within 1..=10000", a.max_slippage_bps));
        }
        if a.batch_deadline_s == 0 {
            return bad("agent.batch_deadline_s", "must be at least 1".into());
        }
        if a.settle_timeout_s == 0 {
            return bad("agent.settle_timeout_s", "must be at least 1".into());
        }
        let m = &self.market;
        if m.max_price_age_s <= 0 {
            return bad("market.max_price_age_s", format!("{} must be positive", m.max_price_age_s));
        }
        for (key, v) in [("market.source_tolerance", m.source_tolerance), ("market.max_daily_move", m.max_daily_move)] {
            if v <= Decimal::ZERO || v >= Decimal::ONE {
                return bad(key, format!("{v} is not a fraction between 0 and 1 (e.g. 0.02 for 2 %)"));
            }
        }
        if m.volatility_threshold.is_some_and(|v| v <= Decimal::ZERO) {
            return bad("market.volatility_threshold", "must be positive".into());
        }
        if self.chain.confirmations == 0 {
            return bad("chain.confirmations", "must be at least 1".into());
        }
        if self.keys.settler == self.keys.audit {
            return bad("keys.audit", "the audit key and the settler key must be separate".into());
        }
        Ok(())
    }

    /// The engine's circuit-breaker limits from `[market]`, and the price
    /// margin from `agent.max_slippage_bps`.
    pub fn limits(&self) -> ballast_engine::types::Limits {
        ballast_engine::types::Limits {
            max_price_age_s: self.market.max_price_age_s,
            source_tolerance: self.market.source_tolerance,
            max_daily_move: self.market.max_daily_move,
            volatility_threshold: self.market.volatility_threshold,
            // A venue fill may be this much worse than the feed price, and
            // the ledger rounds each leg's cash against the account: 10 bp more.
            price_margin: Some(Decimal::new(i64::from(self.agent.max_slippage_bps) + 10, 4)),
            ..ballast_engine::types::Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[chain]
manifest = "m.json"

[keys]
settler = "env:BALLAST_SETTLER_KEY"
audit = "file:keys/audit.key"
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/ballast/ballast.toml"))
    }

    fn key_error(text: &str) -> (String, String) {
        match parse(text) {
            Err(Error::Config { key, reason, .. }) => (key, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_file_takes_the_defaults_and_paths_are_relative_to_it() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.chain.manifest, PathBuf::from("/etc/ballast/m.json"));
        assert_eq!(c.agent.data_dir, PathBuf::from("/etc/ballast/ballast-data"));
        assert_eq!(c.keys.audit, KeySource::File(PathBuf::from("/etc/ballast/keys/audit.key")));
        assert_eq!(c.keys.settler, KeySource::Env("BALLAST_SETTLER_KEY".into()));
        assert_eq!(c.agent.book, PathBuf::from("/etc/ballast/book.json"));
        assert_eq!(c.agent, AgentConfig { data_dir: c.agent.data_dir.clone(), book: c.agent.book.clone(), ..AgentConfig::default() });
        assert_eq!(c.api.listen, "127.0.0.1:9464".parse().unwrap());
        assert_eq!(c.chain.confirmations, 1);
        assert_eq!(c.limits(), ballast_engine::types::Limits { price_margin: Some(Decimal::new(110, 4)), ..Default::default() });
        assert_eq!(sync_policy(&c.agent.fsync), Some(ballast_audit::SyncPolicy::EveryN(256)));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(key_error(&format!("{MINIMAL}\n[agent]\ncycle_interval_s = 0\n")).0, "agent.cycle_interval_s");
        let (key, reason) = key_error(&format!("{MINIMAL}\n[agent]\ncycle_intervall_s = 5\n"));
        assert_eq!(key, "agent.cycle_intervall_s");
        assert!(reason.contains("unknown field"), "{reason}");
        assert_eq!(key_error(&format!("{MINIMAL}\n[agent]\ncycle_interval_s = \"soon\"\n")).0, "agent.cycle_interval_s");
        let (key, reason) = key_error(&format!("{MINIMAL}\n[agent]\nfsync = \"sometimes\"\n"));
        assert_eq!(key, "agent.fsync");
        assert!(reason.contains("\"sometimes\""), "{reason}");
        assert_eq!(key_error(&format!("{MINIMAL}\n[agent]\nmax_slippage_bps = 20000\n")).0, "agent.max_slippage_bps");
        assert_eq!(key_error(&format!("{MINIMAL}\n[market]\nsource_tolerance = \"2\"\n")).0, "market.source_tolerance");
        assert_eq!(key_error(&format!("{MINIMAL}\n[api]\nlisten = \"localhost\"\n")).0, "api.listen");
        assert_eq!(key_error("[chain]\nmanifest = \"m.json\"\n").0, "keys");
        assert_eq!(key_error("[chain]\nmanifest = \"m.json\"\n[keys]\nsettler = \"env:A\"\n").0, "keys.audit");
        let (key, reason) = key_error("[chain]\nmanifest = \"m.json\"\n[keys]\nsettler = \"env:A\"\naudit = \"A\"\n");
        assert_eq!(key, "keys.audit");
        assert!(reason.contains("file:") && reason.contains("env:"), "{reason}");
        assert_eq!(key_error("[chain]\nmanifest = \"m.json\"\n[keys]\nsettler = \"env:A\"\naudit = \"env:A\"\n").0, "keys.audit");
    }

    #[test]
    fn fsync_policies_parse() {
        use ballast_audit::SyncPolicy;
        assert_eq!(sync_policy("every_record"), Some(SyncPolicy::EveryRecord));
        assert_eq!(sync_policy("every_n:64"), Some(SyncPolicy::EveryN(64)));
        assert_eq!(sync_policy("every_ms:20"), Some(SyncPolicy::EveryMillis(20)));
        for bad in ["every_n:0", "every_n:", "every_ms:-1", "every", "every_record:1"] {
            assert_eq!(sync_policy(bad), None, "{bad}");
        }
    }
}
