//! The deployment manifest: where everything is, written as JSON by
//! `ballast devnet up` and read by the agent, the tests and verifiers.

use std::path::Path;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Every address and parameter a client of the deployment needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub chain_id: u64,
    /// JSON-RPC endpoint the deployment was made through.
    pub rpc_url: String,
    /// Block of the last deployment transaction.
    pub deployed_at_block: u64,
    pub roles: Roles,
    pub contracts: Contracts,
    pub cash: CashInfo,
    /// Registered assets in ledger index order.
    pub assets: Vec<AssetInfo>,
    /// Ledger account that collects settlement rounding dust.
    pub dust_account: u64,
    /// A feed older than this halts settlement of its asset.
    pub max_feed_age_s: u32,
    /// Largest slippage the ledger lets a settler accept on the venue.
    pub max_slippage_cap_bps: u16,
}

/// Who holds which role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    /// Default admin of every contract, minter, feed updater, account admin, key admin.
    pub admin: Address,
    /// May call `settleBatch` and anchor checkpoints.
    pub settler: Address,
    /// May pause the ledger and freeze accounts.
    pub guardian: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    pub cash_token: Address,
    pub audit_registry: Address,
    pub portfolio_ledger: Address,
    pub uniswap_factory: Address,
    pub uniswap_router: Address,
    pub weth: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashInfo {
    pub symbol: String,
    pub decimals: u8,
}

/// One registered asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetInfo {
    /// Index in the ledger (the `asset` of a leg).
    pub index: u16,
    pub symbol: String,
    pub name: String,
    pub token: Address,
    pub feed: Address,
    /// The asset/cash Uniswap V2 pair.
    pub pair: Address,
    pub decimals: u8,
    /// Base units per ledger quantum: legs count in quanta.
    pub quantum: u128,
    pub feed_decimals: u8,
    /// Feed answer at deployment, with `feed_decimals` decimals.
    pub initial_price: i64,
}

impl Manifest {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        s.push('\n');
        s
    }

    /// Writes the manifest atomically (temporary file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(self.to_json().as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a manifest, naming the file and the problem on error.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        serde_json::from_str(&text).map_err(|e| Error::BadFile { path: path.to_path_buf(), message: e.to_string() })
    }

    /// The asset with this symbol.
    pub fn asset(&self, symbol: &str) -> Option<&AssetInfo> {
        self.assets.iter().find(|a| a.symbol == symbol)
    }
}
