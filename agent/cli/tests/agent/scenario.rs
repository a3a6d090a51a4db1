//! A demo deployment on its own Anvil node, with the agent's files, for one
//! test; the agent itself runs as a child process.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use ballast_agent::{
    demo::{self, DemoOptions},
    invariants::{self, Checked},
};
use ballast_chain::{deploy::Deployment, devnet::Devnet};
use rust_decimal::Decimal;

pub struct Scenario {
    _devnet: Devnet,
    pub deployment: Deployment,
    pub dir: tempfile::TempDir,
}

impl Scenario {
    pub async fn new(accounts: usize) -> Scenario {
        Self::with_approval_limit(accounts, Decimal::from(40_000)).await
    }

    pub async fn with_approval_limit(accounts: usize, approval_limit: Decimal) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let options = DemoOptions {
            accounts,
            dir: dir.path().to_path_buf(),
            max_slippage_bps: 200,
            anchor_every_records: 20,
            approval_limit,
        };
        let (devnet, deployment, agent) = demo::set_up(&options, &mut |_| {}).await.expect("demo set-up");
        drop(agent);
        Scenario { _devnet: devnet, deployment, dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ballast.toml")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `ballast <args>` with `--config` added after them.
    pub fn ballast(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ballast"));
        cmd.args(args).args(["--config", self.config().to_str().unwrap()]).env("RUST_LOG", "warn");
        cmd.output().expect("ballast runs")
    }

    /// The deployment manifest the agent's configuration names.
    pub fn manifest(&self) -> String {
        self.dir.path().join("manifest.json").to_str().unwrap().to_string()
    }

    /// `ballast audit <args> --data-dir <the agent's data>`: the audit
    /// commands read no configuration.
    pub fn audit(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ballast"));
        cmd.arg("audit").args(args).args(["--data-dir", self.data().to_str().unwrap()]);
        cmd.output().expect("ballast runs")
    }

    /// `ballast run --cycles N`, with `env` added.
    pub fn run(&self, cycles: u64, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ballast"));
        cmd.args(["run", "--config", self.config().to_str().unwrap(), "--cycles", &cycles.to_string()]);
        cmd.env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("ballast runs")
    }

    pub async fn check(&self) -> Checked {
        match invariants::check(&self.data(), &self.deployment.manifest).await {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    /// The log, verified with the agent's keys file.
    pub fn records(&self) -> Vec<ballast_audit::Record> {
        let keys: ballast_audit::KeyRing =
            serde_json::from_str(&std::fs::read_to_string(self.data().join("keys.json")).unwrap()).unwrap();
        ballast_audit::read::read_log(&self.data().join("audit.log"), &keys).expect("the log verifies").records
    }
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
