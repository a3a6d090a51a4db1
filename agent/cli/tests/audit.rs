//! `ballast audit` end to end on a real Anvil node: a signed log whose
//! checkpoints are anchored in the deployed `AuditRegistry` verifies against
//! the chain with the keys registered there; the index rebuilds and answers;
//! a regulator's bundle exports with the agent's signed checkpoint note and
//! verifies against the chain or trusted keys (not against nothing); a log
//! rewritten and re-chained with the real key passes on its own but is
//! caught against the anchored checkpoint; a tampered bundle fails.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use alloy::primitives::B256;
use ballast_audit::{KeyRing, Kind, Log, MerkleStore, Signer, SyncPolicy, Timestamp};
use ballast_chain::{
    bindings::AuditRegistry,
    deploy::{self, DeployConfig},
    devnet::{Devnet, DevnetOptions},
};

const RECORDS: u64 = 40;

fn ballast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().expect("ballast runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn t0() -> i128 {
    Timestamp::parse("2026-12-01T09:00:00Z").unwrap().unix_nanos()
}

/// A decision-shaped body for account `seq % 4 + 1`; `variant` changes its trade.
fn body(seq: u64, variant: u64) -> serde_json::Value {
    serde_json::json!({
        "account": seq % 4 + 1,
        "ips": {"id": "ips-growth", "version": 1, "document_hash": "ab".repeat(32)},
        "status": "trade",
        "acted_on": "threshold",
        "drift": [{"asset": "GEQ", "target": "0.6", "before": "0.7", "after": "0.6", "band": "0.05", "out_of_band": true}],
        "trades": [{"asset": "GEQ", "side": "sell", "quantity": format!("{}", 10 + variant), "price": "100", "value": format!("{}", (10 + variant) * 100),
                    "reason": "rebalance", "rationale": "sell GEQ, 70.00 % vs target 60.00 %, to rebalance"}],
        "queued": [],
        "checks": [{"name": "no_overdraft", "passed": true, "detail": "ok"}, {"name": "min_trade_value:BND", "passed": false, "detail": "below, the minimum"}],
    })
}

/// Writes a log of [`RECORDS`] records into `dir/audit.log` (record 10's
/// trade changed when `tampered`), the last one the agent's record of a
/// checkpoint of the others with its signed note, and `dir/keys.json`;
/// returns the tree.
fn write_log(dir: &Path, signer_seed: u8, tampered: bool, origin: &str) -> MerkleStore {
    std::fs::create_dir_all(dir).unwrap();
    let signer = Signer::from_seed(&[signer_seed; 32]);
    let ring = KeyRing::single(signer.verifying_key()).unwrap();
    std::fs::write(dir.join("keys.json"), serde_json::to_string(&ring).unwrap()).unwrap();
    let (mut log, _) = Log::open(dir.join("audit.log"), signer, SyncPolicy::EveryN(16), ring).unwrap();
    let mut tree = MerkleStore::new();
    for seq in 0..RECORDS {
        let time = Timestamp::from_unix_nanos(t0() + i128::from(seq) * 60_000_000_000).unwrap();
        let variant = u64::from(tampered && seq == 10);
        let r = if seq == RECORDS - 1 {
            let (size, root) = (seq, tree.root());
            let note = log.sign_checkpoint(&ballast_audit::Checkpoint { origin: origin.into(), size, root }).unwrap();
            let anchored = ballast_audit::body::CheckpointAnchored { size, root, tx_hash: [1; 32], block: 1, note: Some(note) };
            log.append(Kind::CheckpointAnchored, &anchored, time).unwrap()
        } else {
            log.append(Kind::Decision, &body(seq, variant), time).unwrap()
        };
        tree.push(r.merkle_leaf());
    }
    log.barrier().unwrap();
    tree
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_export_and_reindex_against_the_anchored_registry() -> eyre::Result<()> {
    let devnet = Devnet::start(&DevnetOptions::default())?;
    let deployment = deploy::deploy(&devnet, &DeployConfig::default()).await?;
    let tmp = tempfile::tempdir()?;
    let manifest: PathBuf = tmp.path().join("manifest.json");
    deployment.manifest.write(&manifest)?;
    let manifest = manifest.to_str().unwrap();

    // The agent's log, its checkpoint notes named for this chain and registry.
    let origin = ballast_audit::checkpoint::origin(deployment.manifest.chain_id, &deployment.manifest.contracts.audit_registry.to_string());
    let data = tmp.path().join("data");
    let tree = write_log(&data, 7, false, &origin);
    let data_s = data.to_str().unwrap();

    // The agent's key registered on-chain with a window covering the log;
    // checkpoints of 30 and 39 records anchored (the log's last record
    // records the second).
    let key = Signer::from_seed(&[7; 32]).verifying_key();
    let registry = deployment.registry();
    let from_s = (t0() / 1_000_000_000) as u64 - 3_600;
    registry.registerAgentKey(B256::from(key.to_bytes()), from_s, from_s + 86_400).send().await?.get_receipt().await?;
    let anchorer = AuditRegistry::new(deployment.manifest.contracts.audit_registry, deployment.settler.clone());
    for size in [30u64, RECORDS - 1] {
        let root = tree.root_at(size).unwrap();
        let receipt = anchorer.anchor(size, B256::from(root)).send().await?.get_receipt().await?;
        assert!(receipt.status(), "anchoring {size}");
    }

    // The whole log, with the keys from the chain (no keys file given, so
    // the one in the data folder is used; then with the chain's only).
    let out = ballast(&["audit", "verify", "--data-dir", data_s, "--manifest", manifest]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("40 records verified"), "{}", text(&out));
    assert!(text(&out).contains("checkpoints recorded in the log: 1 match its records (1 with a signed note, verified)"), "{}", text(&out));
    assert!(text(&out).contains("2 anchored checkpoints match the log; 1 newest records not yet anchored"), "{}", text(&out));
    std::fs::rename(data.join("keys.json"), tmp.path().join("keys.json"))?;
    let out = ballast(&["audit", "verify", "--data-dir", data_s, "--manifest", manifest]);
    assert!(out.status.success(), "keys from the chain: {}", text(&out));
    std::fs::rename(tmp.path().join("keys.json"), data.join("keys.json"))?;

    // Reindex, then show and report from the index.
    let out = ballast(&["audit", "reindex", "--data-dir", data_s]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ballast(&["audit", "show", "--data-dir", data_s, "--account", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8(out.stdout)?;
    assert_eq!(shown.lines().count(), 10, "{shown}");
    assert!(shown.lines().all(|l| l.contains("account 2 under IPS ips-growth v1: trade (1 trades, 0 queued)")), "{shown}");
    let out = ballast(&["audit", "report", "--data-dir", data_s, "--account", "3", "--format", "csv"]);
    let csv = String::from_utf8(out.stdout)?;
    assert_eq!(csv.lines().count(), 11, "header and ten trades: {csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",3,ips-growth,1,"), "{csv}");
    assert!(csv.contains("\"min_trade_value:BND: below, the minimum\""), "failed checks quoted: {csv}");

    // A regulator's bundle of account 1, proved against the 39-record
    // anchor, with the agent's signed note of it: preferred to a later
    // anchor of 40 that the log holds no note of (as a settlement batch's).
    let root = tree.root_at(RECORDS).unwrap();
    assert!(anchorer.anchor(RECORDS, B256::from(root)).send().await?.get_receipt().await?.status());
    let bundle = tmp.path().join("bundle");
    let bundle_s = bundle.to_str().unwrap();
    let out = ballast(&["audit", "export", "--data-dir", data_s, "--account", "1", "--out", bundle_s, "--manifest", manifest]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("10 records, proofs against the 39-record checkpoint (anchored on-chain)"), "{}", text(&out));
    assert!(bundle.join("checkpoint.note").exists());
    let out = ballast(&["audit", "verify", "--bundle", bundle_s, "--manifest", manifest]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is anchored in"), "{}", text(&out));
    assert!(text(&out).contains(&format!("checkpoint note: 39 records of {origin}, signed by the agent: verified")), "{}", text(&out));
    assert!(text(&out).contains("keys: the keys registered on-chain"), "{}", text(&out));
    // With nothing to check it against, a bundle is not called verified;
    // trusted keys, or asking only whether it agrees with itself, will do.
    let out = ballast(&["audit", "verify", "--bundle", bundle_s]);
    assert!(!out.status.success() && text(&out).contains("nothing to check the bundle"), "{}", text(&out));
    let out = ballast(&["audit", "verify", "--bundle", bundle_s, "--self-consistent"]);
    assert!(out.status.success() && text(&out).contains("keys: the bundle's own (NOT checked"), "{}", text(&out));
    assert!(text(&out).contains("chain: not checked"), "{}", text(&out));
    // Trusted keys and no chain: the signed note authenticates the
    // checkpoint; a bundle without it is refused.
    let out = ballast(&["audit", "verify", "--bundle", bundle_s, "--keys", data.join("keys.json").to_str().unwrap()]);
    assert!(out.status.success() && text(&out).contains("keys: the trusted keys given"), "{}", text(&out));
    let stripped = tmp.path().join("stripped");
    std::fs::create_dir(&stripped)?;
    for name in ["records.jsonl", "proofs.jsonl", "keys.json"] {
        std::fs::copy(bundle.join(name), stripped.join(name))?;
    }
    let manifest_json = std::fs::read_to_string(bundle.join("manifest.json"))?;
    let mut without_note: serde_json::Value = serde_json::from_str(&manifest_json)?;
    without_note.as_object_mut().unwrap().remove("checkpoint_signed_at");
    std::fs::write(stripped.join("manifest.json"), without_note.to_string())?;
    let out = ballast(&["audit", "verify", "--bundle", stripped.to_str().unwrap(), "--keys", data.join("keys.json").to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("checkpoint is not authenticated"), "{}", text(&out));
    let stranger_keys = tmp.path().join("stranger-keys.json");
    std::fs::write(&stranger_keys, serde_json::to_string(&KeyRing::single(Signer::from_seed(&[9; 32]).verifying_key()).unwrap())?)?;
    let out = ballast(&["audit", "verify", "--bundle", bundle_s, "--keys", stranger_keys.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("unknown signing key"), "{}", text(&out));
    let records = std::fs::read_to_string(bundle.join("records.jsonl"))?;
    std::fs::write(bundle.join("records.jsonl"), records.replacen("\"quantity\":\"10\"", "\"quantity\":\"11\"", 1))?;
    let out = ballast(&["audit", "verify", "--bundle", bundle_s, "--manifest", manifest]);
    assert!(!out.status.success(), "a tampered bundle passed: {}", text(&out));
    assert!(text(&out).contains("hash"), "{}", text(&out));

    // Rewritten from record 10 and re-chained with the real key: the log
    // alone verifies, the chain does not agree.
    let forged = tmp.path().join("forged");
    write_log(&forged, 7, true, &origin);
    let forged_s = forged.to_str().unwrap();
    let out = ballast(&["audit", "verify", "--data-dir", forged_s]);
    assert!(out.status.success(), "the forged log is well formed on its own: {}", text(&out));
    let out = ballast(&["audit", "verify", "--data-dir", forged_s, "--manifest", manifest]);
    assert!(!out.status.success(), "a re-chained log passed against the chain: {}", text(&out));
    assert!(text(&out).contains("root over the first 30 records"), "{}", text(&out));

    // A log signed by a key the registry does not know fails against the chain's keys.
    let stranger = tmp.path().join("stranger");
    write_log(&stranger, 9, false, &origin);
    std::fs::remove_file(stranger.join("keys.json"))?;
    let out = ballast(&["audit", "verify", "--data-dir", stranger.to_str().unwrap(), "--manifest", manifest]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("record 0"), "{}", text(&out));
    Ok(())
}

#[test]
fn verify_without_keys_or_log_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ballast(&["audit", "verify", "--data-dir", tmp.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no keys: give --keys"), "{}", text(&out));
    let out = ballast(&["audit", "show", "--data-dir", tmp.path().to_str().unwrap(), "--seq", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("run `ballast audit reindex`"), "{}", text(&out));
}

#[test]
fn queries_say_when_the_index_is_behind_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_log(&data, 7, false, "ballast/31337/0x0");
    let data_s = data.to_str().unwrap();
    let out = ballast(&["audit", "reindex", "--data-dir", data_s]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ballast(&["audit", "show", "--data-dir", data_s, "--seq", "0"]);
    assert!(out.status.success() && !text(&out).contains("warning"), "{}", text(&out));
    // One more record in the log, none in the index.
    let signer = Signer::from_seed(&[7; 32]);
    let ring = KeyRing::single(signer.verifying_key()).unwrap();
    let (mut log, _) = Log::open(data.join("audit.log"), signer, SyncPolicy::EveryRecord, ring).unwrap();
    let time = Timestamp::from_unix_nanos(t0() + i128::from(RECORDS) * 60_000_000_000).unwrap();
    log.append(Kind::Decision, &body(RECORDS, 0), time).unwrap();
    drop(log);
    let out = ballast(&["audit", "show", "--data-dir", data_s, "--seq", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("warning: the index covers {RECORDS} records")), "{}", text(&out));
    assert!(text(&out).contains("ballast audit reindex"), "{}", text(&out));
}
