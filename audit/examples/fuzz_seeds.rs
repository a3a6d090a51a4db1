//! Writes seed inputs for the cargo-fuzz targets in `audit/fuzz/`: a real
//! framed log of three records, the same log with a torn tail, single
//! records, and a signed checkpoint note over the log. All of it is signed
//! with the fuzz targets' fixed key, so a fuzzer starts from inputs that
//! pass every check and mutates from there.
//!
//! ```sh
//! cargo run -p ballast-audit --example fuzz_seeds -- audit/fuzz/corpus
//! ```
//!
//! writes `<dir>/<target>/<name>` for the targets `frame_decode`,
//! `record_decode`, `checkpoint_parse` and `proof_verify`. Ed25519
//! signatures are deterministic, so the files are the same on every run.

use std::{error::Error, fs, path::Path};

use ballast_audit::{
    Checkpoint, KeyRing, Kind, MerkleTree, Record, Signer, Timestamp,
    body::{Halt, HaltCause, SettlementSubmitted},
    frame, leaf_hash,
    record::GENESIS_PREV,
    verify_records,
};
use serde_json::json;

/// The fuzz targets' signing key seed (`audit/fuzz/src/lib.rs`, `KEY_SEED`).
const KEY_SEED: [u8; 32] = [0x5e; 32];

/// The fuzz targets' checkpoint origin (`audit/fuzz/src/lib.rs`, `ORIGIN`).
const ORIGIN: &str = "ballast.fuzz/audit-log";

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds <corpus directory>")?;
    let dir = Path::new(&dir);
    let signer = Signer::from_seed(&KEY_SEED);
    let base = Timestamp::parse("2025-03-01T00:00:00Z")?;
    let time = |i: i128| Timestamp::from_unix_nanos(base.unix_nanos() + i * 1_500_000_000);

    let decision = json!({
        "account": 17,
        "trades": [{"asset": "VTI", "side": "buy", "quantity": "12.5", "price": "250.10"}],
        "drift_bps": 37,
        "reason": "VTI sleeve 5.2 % over; Zürich desk",
    });
    let submitted = SettlementSubmitted {
        batch_id: [0xba; 32],
        tx_hash: [0x7e; 32],
        nonce: 7,
        raw_tx: vec![0x02, 0xf8, 0x6c, 0x01],
        accounts: vec![17, 18],
        decisions: vec![],
    };
    let halt = Halt { cause: HaltCause::Operator, detail: "maintenance".into() };

    let r0 = Record::sign(&signer, 0, GENESIS_PREV, time(0)?, Kind::Decision, &decision)?;
    let r1 = Record::sign_body(&signer, 1, r0.hash, time(1)?, &submitted)?;
    let r2 = Record::sign_body(&signer, 2, r1.hash, time(2)?, &halt)?;
    let records = [r0, r1, r2];

    let mut log = Vec::new();
    let mut tree = MerkleTree::new();
    for record in &records {
        log.extend(frame::encode(&record.canonical_bytes()?)?);
        tree.push(leaf_hash(&record.hash));
    }
    let torn = &log[..log.len() - 40];
    let checkpoint = Checkpoint { origin: ORIGIN.into(), size: tree.size(), root: tree.root() };
    let note = checkpoint.sign(&signer)?;

    // The seeds are only worth having if they pass every check.
    let ring = KeyRing::single(signer.verifying_key())?;
    let whole = verify_records(&log, &ring)?;
    assert_eq!((whole.records(), whole.torn_tail), (3, None));
    whole.check_checkpoint(3, &checkpoint.root)?;
    let cut = verify_records(torn, &ring)?;
    assert_eq!(cut.records(), 2);
    assert!(cut.torn_tail.is_some());
    assert_eq!(Checkpoint::verify(&note, ORIGIN, &ring, time(3)?)?, checkpoint);

    write(dir, "frame_decode", "log-3-records", &log)?;
    write(dir, "frame_decode", "log-torn-tail", torn)?;
    write(dir, "record_decode", "decision", &records[0].canonical_bytes()?)?;
    write(dir, "record_decode", "settlement-submitted", &records[1].canonical_bytes()?)?;
    write(dir, "checkpoint_parse", "checkpoint-3", note.as_bytes())?;
    // proof_verify reads its sizes, indices and hashes from raw bytes, so
    // any bytes make an input; this one is long enough for both its parts.
    let proof_seed: Vec<u8> = (0u8..=255).step_by(3).collect();
    write(dir, "proof_verify", "bytes-86", &proof_seed)?;
    Ok(())
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    let target_dir = dir.join(target);
    fs::create_dir_all(&target_dir)?;
    fs::write(target_dir.join(name), bytes)?;
    Ok(())
}
