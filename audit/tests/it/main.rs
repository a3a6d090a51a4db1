//! Integration tests of `ballast-audit`: one binary, one module per area.

mod crash;
mod differential;
mod jcs;
mod log;
mod regressions;
mod tamper;

use std::sync::OnceLock;

use ballast_audit::{
    ChainState, Hash, KeyRing, Kind, Log, MerkleTree, Signer, SyncPolicy, Timestamp,
    body::{CheckpointAnchored, Halt, HaltCause, SettlementConfirmed, SettlementSubmitted},
    frame,
    record::Record,
};
use serde_json::json;

/// Records in the shared fixture log.
pub const RECORDS: usize = 1000;

pub fn signer_a() -> Signer {
    Signer::from_seed(&[0xa1; 32])
}

pub fn signer_b() -> Signer {
    Signer::from_seed(&[0xb2; 32])
}

pub fn ring_a() -> KeyRing {
    KeyRing::single(signer_a().verifying_key()).unwrap()
}

pub fn base_time() -> Timestamp {
    Timestamp::parse("2025-03-01T00:00:00Z").unwrap()
}

/// The fixture's time for record `i`: a second apart, with a fraction.
pub fn time_of(i: u64) -> Timestamp {
    Timestamp::from_unix_nanos(base_time().unix_nanos() + i as i128 * 1_000_000_007).unwrap()
}

/// A body of some kind for record `i`, cycling through the kinds.
pub fn body_of(i: u64) -> (Kind, serde_json::Value) {
    let n = i as u8;
    match i % 5 {
        0 => (
            Kind::Decision,
            json!({
                "account": i,
                "ips": {"id": "ips-growth", "version": 3},
                "trades": [
                    {"asset": "VTI", "side": "buy", "quantity": "12.500000", "price": "250.10"},
                    {"asset": "BND", "side": "sell", "quantity": "4.25", "price": "72.015"}
                ],
                "drift_bps": 37,
                "reason": "threshold: VTI sleeve 5.2 % above target; Zürich desk",
            }),
        ),
        1 => (
            Kind::SettlementSubmitted,
            serde_json::to_value(SettlementSubmitted {
                batch_id: [n; 32],
                tx_hash: [n ^ 0xff; 32],
                nonce: i,
                raw_tx: vec![0x02, 0xf8, n, 0x01, 0x80],
                accounts: vec![i, i + 1],
                decisions: vec![],
            })
            .unwrap(),
        ),
        2 => (
            Kind::SettlementConfirmed,
            serde_json::to_value(SettlementConfirmed {
                batch_id: [n; 32],
                tx_hash: [n ^ 0xff; 32],
                block: 1000 + i,
                block_hash: [n.wrapping_mul(3); 32],
                block_time: 1_700_000_000 + i,
                gas_used: 21_000 + i,
                fills: vec![],
            })
            .unwrap(),
        ),
        3 => (
            Kind::CheckpointAnchored,
            serde_json::to_value(CheckpointAnchored { size: i, root: [n; 32], tx_hash: [n; 32], block: 2000 + i, note: None })
                .unwrap(),
        ),
        _ => (
            Kind::Halt,
            serde_json::to_value(Halt { cause: HaltCause::CircuitBreaker, detail: format!("move {i} bps") }).unwrap(),
        ),
    }
}

/// Appends the fixture's records `from..to` to `log`.
pub fn append_fixture_records(log: &mut Log, from: u64, to: u64) {
    for i in from..to {
        let (kind, body) = body_of(i);
        log.append(kind, &body, time_of(i)).unwrap();
    }
}

/// A 1,000-record log, written by [`Log`], and what a clean verification of
/// it knows at every frame boundary.
#[derive(Debug)]
pub struct Fixture {
    pub bytes: Vec<u8>,
    /// `starts[k]` = offset of frame k; `starts[RECORDS]` = file length.
    pub starts: Vec<usize>,
    /// `states[k]` = chain state before record k (after records 0..k).
    pub states: Vec<ChainState>,
    pub hashes: Vec<Hash>,
    /// RFC 6962 root over all records.
    pub root: Hash,
    /// The signer's key ring, valid at every time.
    pub ring: KeyRing,
}

impl Fixture {
    /// The frame holding byte `offset`.
    pub fn frame_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }

    pub fn frame(&self, k: usize) -> &[u8] {
        &self.bytes[self.starts[k]..self.starts[k + 1]]
    }

    pub fn record(&self, k: usize) -> Record {
        serde_json::from_slice(&self.frame(k)[frame::FRAME_HEADER_LEN..]).unwrap()
    }

    /// The file with frames replaced by `frames`.
    pub fn with_frames(frames: &[&[u8]]) -> Vec<u8> {
        frames.concat()
    }

    pub fn frames(&self) -> Vec<&[u8]> {
        (0..RECORDS).map(|k| self.frame(k)).collect()
    }
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let (mut log, _) = Log::open(&path, signer_a(), SyncPolicy::EveryN(256), ring_a()).unwrap();
        append_fixture_records(&mut log, 0, RECORDS as u64);
        log.barrier().unwrap();
        let hashes = log.record_hashes().to_vec();
        drop(log);
        let bytes = std::fs::read(&path).unwrap();

        let mut starts = vec![0];
        let mut states = vec![ChainState::GENESIS];
        let mut at = 0;
        while at < bytes.len() {
            let (payload, end) = frame::read_frame(&bytes, at).unwrap();
            let record: Record = serde_json::from_slice(payload).unwrap();
            states.push(ChainState { next_seq: record.seq + 1, prev: record.hash, last_time: Some(record.time) });
            starts.push(end);
            at = end;
        }
        assert_eq!(starts.len(), RECORDS + 1);
        let mut tree = MerkleTree::new();
        for h in &hashes {
            tree.push(ballast_audit::leaf_hash(h));
        }
        Fixture { bytes, starts, states, hashes, root: tree.root(), ring: ring_a() }
    })
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a fixed, well-mixed function of
/// `x`, so "random" choices in the tests are the same on every run.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
