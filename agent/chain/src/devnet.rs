//! A local Anvil node: the Foundry binary installed from npm under
//! `contracts/node_modules`, listening on 127.0.0.1 on a free port, stopped
//! when the [`Devnet`] is dropped.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use alloy::signers::local::PrivateKeySigner;

use crate::{Error, Result};

/// Anvil's chain id; the development keys are only ever accepted on it.
pub const ANVIL_CHAIN_ID: u64 = 31_337;

/// How many recent blocks' states Anvil keeps (its default in-memory count);
/// older ones are dropped, never written to disk.
const STATES_KEPT: u32 = 500;

/// How long Anvil may take to say where it listens.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the Foundry project lives: `$BALLAST_CONTRACTS`, else a `contracts/`
/// with a `foundry.toml` in the working directory or one of its parents, else
/// the source tree this binary was built from.
pub fn contracts_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BALLAST_CONTRACTS") {
        return PathBuf::from(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let candidate = dir.join("contracts");
            if candidate.join("foundry.toml").is_file() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// Options for [`Devnet::start`].
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The Foundry project holding `node_modules/.bin/anvil`.
    pub contracts_dir: PathBuf,
    /// Block gas limit.
    pub gas_limit: u64,
    /// Funded development accounts Anvil creates.
    pub dev_accounts: u32,
    /// Where Anvil's own log goes; discarded when `None`.
    pub log_file: Option<PathBuf>,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self { contracts_dir: contracts_dir(), gas_limit: 30_000_000, dev_accounts: 10, log_file: None }
    }
}

/// A running Anvil node.
#[derive(Debug)]
pub struct Devnet {
    child: Child,
    port: u16,
    keys: Vec<PrivateKeySigner>,
    gas_limit: u64,
}

impl Devnet {
    /// Starts Anvil on 127.0.0.1 with a port the OS picks, and waits until it listens.
    pub fn start(options: &DevnetOptions) -> Result<Self> {
        let anvil = options.contracts_dir.join("node_modules/.bin/anvil");
        if !anvil.is_file() {
            return Err(Error::ToolMissing {
                tool: "anvil",
                path: anvil,
                hint: "run scripts/setup.sh (npm ci in contracts/)",
            });
        }
        let mut child = Command::new(&anvil)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--chain-id", &ANVIL_CHAIN_ID.to_string()])
            .args(["--gas-limit", &options.gas_limit.to_string()])
            .args(["--accounts", &options.dev_accounts.to_string()])
            .args(["--balance", "1000000"])
            // Anvil keeps the states of its last blocks in memory and by
            // default writes every older one to ~/.foundry/anvil/tmp, a few
            // hundred kilobytes a block, removed only if Anvil exits cleanly.
            // A long run (the crash test mines thousands of blocks) left
            // gigabytes there and filled the disk. Nothing here reads a state
            // older than the block before the newest, so older states are
            // dropped instead of written.
            .args(["--prune-history", &STATES_KEPT.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| Error::Spawn { path: anvil.clone(), source })?;

        // Anvil prints its keys, then "Listening on 127.0.0.1:PORT", then a line
        // per request for as long as it runs: one thread reads it all, so that
        // the pipe never fills, and hands the start-up facts over a channel.
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut log = match &options.log_file {
            Some(path) => Some(
                std::fs::File::create(path).map_err(|source| Error::Io { path: path.clone(), source })?,
            ),
            None => None,
        };
        let (tx, rx) = mpsc::channel::<StartupLine>();
        std::thread::Builder::new()
            .name("anvil-stdout".into())
            .spawn(move || {
                let mut listening = false;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(log) = log.as_mut() {
                        let _ = writeln!(log, "{line}");
                    }
                    if listening {
                        continue;
                    }
                    if let Some(parsed) = StartupLine::parse(&line) {
                        listening = matches!(parsed, StartupLine::Listening(_));
                        if tx.send(parsed).is_err() {
                            listening = true;
                        }
                    }
                }
            })
            .map_err(|source| Error::Io { path: anvil.clone(), source })?;

        let mut keys = Vec::new();
        let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
        let port = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(StartupLine::Key(key)) => keys.push(key),
                Ok(StartupLine::Listening(port)) => break port,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::DevnetStart("anvil did not report a listening address".into()));
                }
            }
        };
        if keys.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::DevnetStart("anvil printed no development keys".into()));
        }
        tracing::info!(target: "ballast::devnet", port, pid = child.id(), "anvil listening");
        Ok(Self { child, port, keys, gas_limit: options.gas_limit })
    }

    /// The JSON-RPC endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The endpoint as a URL.
    pub fn endpoint_url(&self) -> alloy::transports::http::reqwest::Url {
        self.endpoint().parse().expect("a valid loopback URL")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn chain_id(&self) -> u64 {
        ANVIL_CHAIN_ID
    }

    pub fn gas_limit(&self) -> u64 {
        self.gas_limit
    }

    /// Anvil's funded development keys, in its order.
    pub fn dev_keys(&self) -> &[PrivateKeySigner] {
        &self.keys
    }

    /// Stops the node now (dropping does the same).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.kill();
    }
}

enum StartupLine {
    Key(PrivateKeySigner),
    Listening(u16),
}

impl StartupLine {
    fn parse(line: &str) -> Option<Self> {
        if let Some(addr) = line.trim().strip_prefix("Listening on ") {
            let port = addr.trim().rsplit(':').next()?.parse().ok()?;
            return Some(Self::Listening(port));
        }
        // "(0) 0xac0974be..." in the "Private Keys" section; addresses are 40 hex digits.
        let rest = line.trim().strip_prefix('(')?;
        let (_, key) = rest.split_once(") ")?;
        let key = key.trim();
        if key.len() == 66 && key.starts_with("0x") {
            return key.parse().ok().map(Self::Key);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line_and_keys_but_not_addresses() {
        assert!(matches!(StartupLine::parse("Listening on 127.0.0.1:40123"), Some(StartupLine::Listening(40123))));
        let key = "(0) 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let Some(StartupLine::Key(signer)) = StartupLine::parse(key) else { panic!("key not parsed") };
        assert_eq!(signer.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert!(StartupLine::parse("(0) 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 (10000 ETH)").is_none());
        assert!(StartupLine::parse("eth_blockNumber").is_none());
    }
}
