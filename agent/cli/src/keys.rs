//! `ballast keys rotate`: hand the signing of audit records over to a new
//! Ed25519 key (RELIABILITY.md, "Keys": a record in the log and a registry
//! update, with validity windows the verifier checks).

use clap::{Args, Subcommand};
use eyre::{Context, Result};

use ballast_agent::{Agent, Config, keys::KeySource};
use ballast_audit::Timestamp;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Record a rotation of the audit key, with the agent stopped: a
    /// `key_rotation` record, signed by the key in use, names the new key
    /// and when it takes over. The new key must first be registered in the
    /// AuditRegistry by a key admin (registerAgentKey); the old key's
    /// window should then end at the hand-over (retireAgentKey). The old
    /// key no longer starts the agent; the new key in [keys] audit does,
    /// from the hand-over on.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The agent's configuration (the key in use, the data folder, the chain).
    #[arg(long, default_value = "ballast.toml", env = "BALLAST_CONFIG")]
    config: std::path::PathBuf,
    /// The new Ed25519 seed (hex): `file:PATH` (mode 600) or `env:VARIABLE`.
    #[arg(long)]
    new_key: String,
    /// When the new key takes over (RFC 3339, rounded up to a whole second,
    /// at least two seconds ahead); default: the first whole second two
    /// seconds from now, or when its registered window opens if that is
    /// later. The agent is down from the rotation until then: the old key
    /// no longer starts it.
    #[arg(long, value_parser = crate::audit::parse_timestamp)]
    valid_from: Option<Timestamp>,
}

pub async fn run(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Rotate(args) => rotate(args).await,
    }
}

async fn rotate(args: RotateArgs) -> Result<()> {
    let source = KeySource::try_from(args.new_key.clone()).map_err(|e| eyre::eyre!("--new-key {}: {e}", args.new_key))?;
    let new = source.audit_signer().wrap_err_with(|| format!("reading the new key {source}"))?;
    let config = Config::load(&args.config)?;
    let mut agent = Agent::open(config).await.wrap_err("opening the agent (it must be stopped)")?;
    let r = agent.rotate_audit_key(&new, args.valid_from).await.wrap_err("rotating the audit key")?;
    let b = &r.body;
    println!("key rotation recorded as record {}: records from {} are signed by {}, not {}", r.seq, b.valid_from, b.new_key_id, b.old_key_id);
    println!("next: point [keys] audit in {} at {source}, then start the agent", args.config.display());
    if r.old_until.is_none_or(|until| until > b.valid_from) {
        let ends = r.old_until.map_or("has no end".to_string(), |u| format!("ends at {u}"));
        let secs = b.valid_from.unix_nanos().div_euclid(1_000_000_000);
        println!(
            "the old key's registered window {ends}: a key admin should end it at the hand-over, retireAgentKey(0x{}, {secs})",
            hex::encode(r.old_key)
        );
    }
    Ok(())
}
