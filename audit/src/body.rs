//! Typed bodies for the record kinds whose fields this crate knows.
//!
//! Decision bodies are the engine's `Decision`, written through
//! [`crate::Record::sign`] with [`crate::Kind::Decision`]; the audit crate does
//! not depend on the engine. Money and quantities, where a body has them, are
//! decimal strings. Record hashes are bare hex, EVM values `0x` hex.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{merkle::Hash, record::Kind, timestamp::Timestamp, wire};

/// A body type and the record kind it belongs to.
pub trait RecordBody: Serialize + DeserializeOwned {
    const KIND: Kind;
}

macro_rules! record_body {
    ($ty:ty, $kind:ident) => {
        impl RecordBody for $ty {
            const KIND: Kind = Kind::$kind;
        }
    };
}

/// `ips_registered`: a version of an account's Investment Policy Statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpsRegistered {
    pub account: u64,
    pub ips_id: String,
    pub version: u32,
    /// SHA-256 of the IPS document.
    #[serde(with = "wire::hex32")]
    pub document_hash: Hash,
    /// When the version takes effect.
    pub effective: Timestamp,
}
record_body!(IpsRegistered, IpsRegistered);

/// `approval_granted`: an advisor approved a decision's queued trades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalGranted {
    /// The decision's account.
    pub account: u64,
    /// Sequence number and hash of the decision record.
    pub decision_seq: u64,
    #[serde(with = "wire::hex32")]
    pub decision: Hash,
    pub approver: String,
}
record_body!(ApprovalGranted, ApprovalGranted);

/// `approval_rejected`: an advisor rejected a decision's queued trades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRejected {
    /// The decision's account.
    pub account: u64,
    /// Sequence number and hash of the decision record.
    pub decision_seq: u64,
    #[serde(with = "wire::hex32")]
    pub decision: Hash,
    pub approver: String,
    pub reason: String,
}
record_body!(ApprovalRejected, ApprovalRejected);

/// `settlement_submitted`: a signed settlement transaction, recorded (and
/// fsync'd) before it is broadcast, so recovery can rebroadcast the very
/// same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementSubmitted {
    #[serde(with = "wire::evm32")]
    pub batch_id: [u8; 32],
    #[serde(with = "wire::evm32")]
    pub tx_hash: [u8; 32],
    pub nonce: u64,
    /// The signed transaction, as broadcast.
    #[serde(with = "wire::evm_bytes")]
    pub raw_tx: Vec<u8>,
    /// Ledger ids of the accounts the batch settles.
    pub accounts: Vec<u64>,
    /// Sequence numbers of the decision records whose trades the batch
    /// settles (each leg on-chain carries its record's hash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<u64>,
}
record_body!(SettlementSubmitted, SettlementSubmitted);

/// `settlement_confirmed`: the batch's transaction was mined and has the
/// required confirmations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfirmed {
    #[serde(with = "wire::evm32")]
    pub batch_id: [u8; 32],
    #[serde(with = "wire::evm32")]
    pub tx_hash: [u8; 32],
    pub block: u64,
    #[serde(with = "wire::evm32")]
    pub block_hash: [u8; 32],
    /// The block's time, unix seconds: the trades' date.
    pub block_time: u64,
    pub gas_used: u64,
    /// What each asset of the batch filled at, from the ledger's events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fills: Vec<Fill>,
}
record_body!(SettlementConfirmed, SettlementConfirmed);

/// One asset's fill in a settled batch: every buyer paid `buy_price` and
/// every seller got `sell_price` (the ledger's fair allocation). Quantities
/// in whole units, prices per whole unit in cash, as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    pub asset: String,
    /// Crossed between the batch's own buyers and sellers at the feed price.
    pub crossed: String,
    /// Net bought (positive) or sold (negative) on the venue.
    pub venue: String,
    pub buy_price: String,
    pub sell_price: String,
}

/// `settlement_failed`: the batch's transaction reverted or was abandoned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementFailed {
    #[serde(with = "wire::evm32")]
    pub batch_id: [u8; 32],
    #[serde(with = "wire::evm32")]
    pub tx_hash: [u8; 32],
    /// The decoded revert or why the agent gave up.
    pub reason: String,
}
record_body!(SettlementFailed, SettlementFailed);

/// `settlement_refused`: while a batch was planned, the ledger refused one
/// account's legs (its cash or units do not cover them), so they were left
/// out and the rest settled without them; the decisions' trades end here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementRefused {
    pub account: u64,
    /// The seqs of the records (decisions, approvals) whose trades were left out.
    pub decisions: Vec<u64>,
    /// The ledger's decoded refusal.
    pub reason: String,
}
record_body!(SettlementRefused, SettlementRefused);

/// `checkpoint_anchored`: the checkpoint over records `[0, size)` is on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointAnchored {
    pub size: u64,
    /// RFC 6962 root over the first `size` records.
    #[serde(with = "wire::hex32")]
    pub root: Hash,
    #[serde(with = "wire::evm32")]
    pub tx_hash: [u8; 32],
    pub block: u64,
    /// The checkpoint as a C2SP signed note (origin, size, root), signed by
    /// the agent's record key: what an export bundle carries. Records
    /// written before notes have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
record_body!(CheckpointAnchored, CheckpointAnchored);

/// Why trading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltCause {
    /// Market breaker: a price move or volatility beyond the limits.
    CircuitBreaker,
    /// The log, a checkpoint or the chain disagreed with the evidence.
    Integrity,
    /// An operator asked.
    Operator,
}

/// `halt`: the agent stopped trading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halt {
    pub cause: HaltCause,
    pub detail: String,
}
record_body!(Halt, Halt);

/// `key_rotation`: signed by the old key; records from `valid_from` on are
/// signed by the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    pub old_key_id: String,
    pub new_key_id: String,
    /// The new Ed25519 public key.
    #[serde(with = "wire::hex32")]
    pub new_public_key: [u8; 32],
    pub valid_from: Timestamp,
}
record_body!(KeyRotation, KeyRotation);

/// Decision-sized bodies for benchmarks: what the engine writes for one
/// account, with made-up but deterministic numbers.
pub mod synthetic {
    use serde_json::{Value, json};

    /// The assets of the synthetic book, one drift entry each.
    const ASSETS: [&str; 8] = ["VTI", "VXUS", "BND", "BNDX", "VNQ", "VTIP", "SCHD", "IEMG"];

    /// The pre-trade checks every decision carries.
    const CHECKS: [(&str, &str); 10] = [
        ("cash_floor", "cash above 2 % of value"),
        ("max_trade", "no trade above 10 %"),
        ("min_trade", "every trade over 250.00"),
        ("wash_sale", "no loss sale rebought in 30 days"),
        ("restricted", "no excluded asset"),
        ("drift_band", "weights end in their bands"),
        ("tax_budget", "short-term gains in budget"),
        ("concentration", "no asset above 40 %"),
        ("price_age", "prices under 15 min old"),
        ("breaker", "no market move beyond 7 %"),
    ];

    /// SplitMix64: a fixed, well-mixed function of `x`.
    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `units` millionths as a decimal string with six places.
    fn micros(units: i64) -> String {
        let sign = if units < 0 { "-" } else { "" };
        let abs = units.unsigned_abs();
        format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }

    /// `units` ten-thousandths as a decimal string with four places (weights).
    fn weight(units: i64) -> String {
        format!("{}.{:04}", units / 10_000, units % 10_000)
    }

    /// `units` hundredths as a decimal string with two places.
    fn cents(units: i64) -> String {
        let sign = if units < 0 { "-" } else { "" };
        let abs = units.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// The decision body of record `seq`: an account, its IPS, drift of
    /// eight assets, three trades (the sales with their lots), ten checks,
    /// the tax summary and the input digest; 2 to 3 KB of canonical JSON.
    /// The same `seq` gives the same body.
    pub fn decision(seq: u64) -> Value {
        let r = |salt: u64| mix(seq.wrapping_mul(64).wrapping_add(salt));
        let hex = |salt: u64| (0..4).map(|i| format!("{:016x}", r(salt + i))).collect::<String>();
        let account = 100_000 + r(0) % 900_000;
        // In cents: 50,000.00 to 5,050,000.00.
        let value = 5_000_000 + (r(1) % 500_000_000) as i64;
        let drift: Vec<Value> = ASSETS
            .iter()
            .enumerate()
            .map(|(i, asset)| {
                let target = 1_250 + (i as i64 % 3 - 1) * 250;
                let before = target + (r(10 + i as u64) % 600) as i64 - 300;
                json!({
                    "asset": asset,
                    "target": weight(target),
                    "before": weight(before),
                    "after": weight(target + (before - target) / 8),
                    "band": weight(200),
                    "out_of_band": (before - target).abs() > 200,
                })
            })
            .collect();
        let trades: Vec<Value> = (0..3u64)
            .map(|t| {
                let asset = ASSETS[((r(20 + t) >> 8) % 8) as usize];
                let sell = t != 2;
                let quantity = 1_000_000 + (r(30 + t) % 80_000_000) as i64;
                // In cents: 20.00 to 420.00.
                let price = 2_000 + (r(40 + t) % 40_000) as i64;
                let mut trade = json!({
                    "asset": asset,
                    "side": if sell { "sell" } else { "buy" },
                    "quantity": micros(quantity),
                    "price": cents(price),
                    "value": cents(quantity * price / 1_000_000),
                    "estimated_tax": cents(if sell { (r(50 + t) % 40_000) as i64 - 20_000 } else { 0 }),
                    "reason": if sell { "rebalance" } else { "invest_inflow" },
                    "rationale": format!("{asset} {} toward target", if sell { "sold" } else { "bought" }),
                });
                if sell {
                    let lots: Vec<Value> = (0..2 - t)
                        .map(|l| {
                            let (year, month, day) = (18 + r(60 + t) % 7, 1 + r(61 + t) % 12, 1 + r(62 + t) % 28);
                            json!({
                                "lot": format!("{asset}-20{year:02}-{month:02}-{day:02}-{l}"),
                                "quantity": micros(quantity / 2),
                                "gain": cents((r(70 + 2 * t + l) % 200_000) as i64 - 100_000),
                                "term": if l == 0 { "long" } else { "short" },
                            })
                        })
                        .collect();
                    trade["lots"] = Value::Array(lots);
                }
                trade
            })
            .collect();
        let checks: Vec<Value> = CHECKS
            .iter()
            .enumerate()
            .map(|(i, (name, detail))| json!({"name": name, "passed": r(80 + i as u64) % 50 != 0, "detail": detail}))
            .collect();
        json!({
            "account": account,
            "household": format!("hh-{:06}", account / 3),
            "ips": {"id": format!("ips-{:06}", account), "version": 1 + r(2) % 9, "document_hash": hex(3)},
            "model": "hybrid-60-40",
            "status": "trade",
            "triggers": [{"kind": "threshold", "detail": "VTI 0.8 points outside its band"}],
            "acted_on": "threshold",
            "value": cents(value),
            "cash_before": cents(value / 40),
            "cash_after": cents(value / 50),
            "drift": drift,
            "trades": trades,
            "queued": [],
            "checks": checks,
            "halts": [],
            "tax": {
                "short_term_gain": cents((r(90) % 100_000) as i64),
                "long_term_gain": cents((r(91) % 100_000) as i64),
                "harvested_losses": cents(0),
                "estimated_tax": cents((r(92) % 30_000) as i64),
            },
            "input_digest": hex(100),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        keys::{KeyRing, Signer},
        record::{GENESIS_PREV, Record},
    };
    use proptest::prelude::*;

    fn arb_time() -> impl Strategy<Value = Timestamp> {
        (0i128..253_402_300_799_999_999_999i128).prop_map(|n| Timestamp::from_unix_nanos(n).unwrap())
    }

    fn safe_u64() -> impl Strategy<Value = u64> {
        0..=crate::record::MAX_SAFE_INTEGER
    }

    /// Serde round trip on its own, then through a signed record.
    fn round_trip<B: RecordBody + PartialEq + std::fmt::Debug>(body: &B) -> Result<(), TestCaseError> {
        let json = serde_json::to_string(body).unwrap();
        let back: B = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, body);
        let signer = Signer::from_seed(&[9; 32]);
        let time = Timestamp::parse("2025-01-01T00:00:00Z").unwrap();
        let record = Record::sign_body(&signer, 0, GENESIS_PREV, time, body).unwrap();
        prop_assert_eq!(record.kind, B::KIND);
        let read: Record = serde_json::from_slice(&record.canonical_bytes().unwrap()).unwrap();
        read.check_seal(&KeyRing::single(signer.verifying_key()).unwrap()).unwrap();
        prop_assert_eq!(&read.body_as::<B>().unwrap(), body);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn ips_registered(
            account in safe_u64(),
            ips_id in ".*",
            version in any::<u32>(),
            document_hash in any::<[u8; 32]>(),
            effective in arb_time(),
        ) {
            round_trip(&IpsRegistered { account, ips_id, version, document_hash, effective })?;
        }

        #[test]
        fn approvals(decision in any::<[u8; 32]>(), approver in ".*", reason in ".*") {
            round_trip(&ApprovalGranted { account: 7, decision_seq: 9, decision, approver: approver.clone() })?;
            round_trip(&ApprovalRejected { account: 7, decision_seq: 9, decision, approver, reason })?;
        }

        #[test]
        fn settlement_submitted(
            batch_id in any::<[u8; 32]>(),
            tx_hash in any::<[u8; 32]>(),
            nonce in safe_u64(),
            raw_tx in proptest::collection::vec(any::<u8>(), 0..300),
            accounts in proptest::collection::vec(safe_u64(), 0..20),
        ) {
            round_trip(&SettlementSubmitted { batch_id, tx_hash, nonce, raw_tx, accounts: accounts.clone(), decisions: accounts })?;
        }

        #[test]
        fn settlement_outcomes(
            batch_id in any::<[u8; 32]>(),
            tx_hash in any::<[u8; 32]>(),
            block in safe_u64(),
            block_hash in any::<[u8; 32]>(),
            gas_used in safe_u64(),
            reason in ".*",
        ) {
            round_trip(&SettlementConfirmed { batch_id, tx_hash, block, block_hash, block_time: block, gas_used, fills: vec![] })?;
            let fill = Fill { asset: "GEQ".into(), crossed: "3.5".into(), venue: "-2".into(), buy_price: "100.25".into(), sell_price: "99.75".into() };
            round_trip(&SettlementConfirmed { batch_id, tx_hash, block, block_hash, block_time: block, gas_used, fills: vec![fill] })?;
            round_trip(&SettlementFailed { batch_id, tx_hash, reason: reason.clone() })?;
            round_trip(&SettlementRefused { account: block, decisions: vec![gas_used, block], reason })?;
        }

        #[test]
        fn checkpoint_anchored(
            size in safe_u64(),
            root in any::<[u8; 32]>(),
            tx_hash in any::<[u8; 32]>(),
            block in safe_u64(),
            note in proptest::option::of(".*"),
        ) {
            round_trip(&CheckpointAnchored { size, root, tx_hash, block, note })?;
        }

        #[test]
        fn halt(
            cause in proptest::sample::select(vec![HaltCause::CircuitBreaker, HaltCause::Integrity, HaltCause::Operator]),
            detail in ".*",
        ) {
            round_trip(&Halt { cause, detail })?;
        }

        #[test]
        fn key_rotation(
            old_key_id in "[0-9a-f]{16}",
            new_key_id in "[0-9a-f]{16}",
            new_public_key in any::<[u8; 32]>(),
            valid_from in arb_time(),
        ) {
            round_trip(&KeyRotation { old_key_id, new_key_id, new_public_key, valid_from })?;
        }
    }

    #[test]
    fn synthetic_decisions_are_decision_sized_and_repeatable() {
        let signer = Signer::from_seed(&[9; 32]);
        let time = Timestamp::parse("2025-01-01T00:00:00Z").unwrap();
        for seq in (0..64).chain([99_999, 1 << 40]) {
            let body = synthetic::decision(seq);
            assert_eq!(body, synthetic::decision(seq));
            let len = crate::record::canonical_json(&body).unwrap().len();
            assert!((2000..3000).contains(&len), "body of {seq} is {len} bytes");
            assert_eq!(body["drift"].as_array().map(Vec::len), Some(8));
            assert_eq!(body["trades"].as_array().map(Vec::len), Some(3));
            assert_eq!(body["checks"].as_array().map(Vec::len), Some(10));
            let record = Record::sign(&signer, seq, GENESIS_PREV, time, Kind::Decision, &body).unwrap();
            assert_eq!(record.body, body, "reads back unchanged from its canonical bytes");
        }
        assert_ne!(synthetic::decision(1), synthetic::decision(2));
    }

    #[test]
    fn evm_values_carry_0x_and_record_hashes_do_not() {
        let json =
            serde_json::to_value(CheckpointAnchored { size: 3, root: [0xab; 32], tx_hash: [0xcd; 32], block: 9, note: None })
                .unwrap();
        assert_eq!(json["root"], "ab".repeat(32));
        assert_eq!(json["tx_hash"], format!("0x{}", "cd".repeat(32)));
        let halt = serde_json::to_value(Halt { cause: HaltCause::CircuitBreaker, detail: "vix".into() }).unwrap();
        assert_eq!(halt["cause"], "circuit_breaker");
    }
}
