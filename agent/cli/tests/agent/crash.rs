//! Crash safety on a real Anvil node (RELIABILITY.md). The agent runs as a
//! child process (`ballast run`) over a demo deployment; it is made to die
//! at every crash point — by SIGKILL and by a panic — and at random
//! moments, then restarted; after each scenario the invariants I1–I7 are
//! checked against the chain.

use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, Output},
    time::{Duration, Instant},
};

use ballast_agent::demo;
use rust_decimal::Decimal;

use crate::scenario::{Scenario, text};

fn assert_died(out: &Output, mode: &str, point: &str) {
    match mode {
        "kill" => assert_eq!(out.status.signal(), Some(9), "SIGKILL at {point}: {}", text(out)),
        _ => assert_eq!(out.status.code(), Some(101), "panic at {point}: {}", text(out)),
    }
    assert!(text(out).contains(&format!("crash point {point}: dying")), "{}", text(out));
}

/// Dies at `point` in the first cycle (or at the shutdown anchor that
/// follows it), restarts, and checks every invariant.
async fn crash_and_recover(point: &str) {
    for mode in ["kill", "panic"] {
        let s = Scenario::new(24).await;
        let out = s.run(1, &[("BALLAST_CRASH_AT", point), ("BALLAST_CRASH_MODE", mode)]);
        assert_died(&out, mode, point);
        let out = s.run(1, &[]);
        assert!(out.status.success(), "restart after {mode} at {point}: {}", text(&out));
        let checked = s.check().await;
        assert!(checked.settled_batches >= 1, "{mode} at {point}: the first cycle's trades settled once: {checked:?}");
        // Only the record of the last anchor itself is not under an anchor.
        assert!(checked.anchors >= 1 && checked.unanchored <= 1, "{mode} at {point}: {checked:?}");
    }
}

macro_rules! crash_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            crash_and_recover(stringify!($name)).await;
        }
    )*};
}

crash_tests!(
    decisions_appended,
    decisions_synced,
    transaction_signed,
    submission_recorded,
    broadcast_sent,
    receipt_seen,
    confirmation_recorded,
    checkpoint_computed,
    anchor_sent,
    anchor_recorded,
    index_applied,
    index_flushed,
);

#[test]
fn every_crash_point_has_a_test() {
    let tested = include_str!("crash.rs");
    for point in ballast_agent::crash::POINTS {
        assert!(tested.contains(&format!("    {point},\n")) || *point == "recovery", "no test for crash point {point}");
    }
    assert!(tested.contains("\"recovery\""));
}

/// A crash while recovering from a crash: the open submission is resolved
/// once, whatever happens to the recovery itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_recovery() {
    for mode in ["kill", "panic"] {
        let s = Scenario::new(24).await;
        let out = s.run(1, &[("BALLAST_CRASH_AT", "broadcast_sent"), ("BALLAST_CRASH_MODE", mode)]);
        assert_died(&out, mode, "broadcast_sent");
        let out = s.run(1, &[("BALLAST_CRASH_AT", "recovery"), ("BALLAST_CRASH_MODE", mode)]);
        assert_died(&out, mode, "recovery");
        let out = s.run(1, &[]);
        assert!(out.status.success(), "{}", text(&out));
        let checked = s.check().await;
        assert!(checked.settled_batches >= 1, "{checked:?}");
    }
}

/// Fees rose while the agent was down between recording its settlements
/// and sending them: the node refuses the recorded bytes as under the base
/// fee, and each batch is signed again with its nonce, recorded and sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_under_the_base_fee_is_signed_again_at_todays_fees() {
    use alloy::providers::Provider;
    use ballast_audit::{Kind, body::SettlementSubmitted};
    let s = Scenario::new(24).await;
    let out = s.run(1, &[("BALLAST_CRASH_AT", "submission_recorded")]);
    assert_died(&out, "kill", "submission_recorded");
    let submitted = || -> Vec<SettlementSubmitted> {
        s.records().iter().filter(|r| r.kind == Kind::SettlementSubmitted).map(|r| r.body_as().unwrap()).collect()
    };
    let recorded = submitted();
    assert!(!recorded.is_empty());
    let cap = |raw: &[u8]| {
        let envelope = <alloy::consensus::TxEnvelope as alloy::eips::Decodable2718>::decode_2718(&mut &raw[..]).unwrap();
        alloy::consensus::Transaction::max_fee_per_gas(&envelope)
    };
    let highest = recorded.iter().map(|b| cap(&b.raw_tx)).max().unwrap();
    // A block whose base fee is four times the highest cap; the next one's
    // is still over it.
    let admin = &s.deployment.admin;
    admin.raw_request::<_, serde_json::Value>("anvil_setNextBlockBaseFeePerGas".into(), [alloy::primitives::U256::from(4 * highest)]).await.unwrap();
    admin.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await.unwrap();

    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("under the base fee; signed again"), "{}", text(&out));
    let all = submitted();
    for first in &recorded {
        let again = all.iter().find(|b| b.batch_id == first.batch_id && b.tx_hash != first.tx_hash).expect("signed again");
        assert_eq!(again.nonce, first.nonce, "with its nonce");
        assert!(cap(&again.raw_tx) > 3 * highest, "at today's fees");
    }
    let checked = s.check().await;
    assert!(checked.settled_batches >= recorded.len(), "{checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_crash_point_is_refused() {
    let s = Scenario::new(4).await;
    let out = s.run(1, &[("BALLAST_CRASH_AT", "decision_apended")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a crash point"), "{}", text(&out));
}

/// SplitMix64: the harness's only source of "randomness", seeded by the clock
/// and printed, so a failing run can be replayed with `BALLAST_KILL_SEED`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const KILLS: u32 = 100;

/// The random-kill harness: the agent runs cycles while the market moves
/// and is SIGKILLed at random moments, at least [`KILLS`] times; then it
/// runs once more to the end and every invariant holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills() {
    let seed = std::env::var("BALLAST_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("random_kills: seed {seed} (replay with BALLAST_KILL_SEED={seed})");
    let s = Scenario::new(40).await;
    let symbols: Vec<String> = s.deployment.manifest.assets.iter().map(|a| a.symbol.clone()).collect();
    let mut prices: Vec<Decimal> = s
        .deployment
        .manifest
        .assets
        .iter()
        .map(|a| Decimal::new(a.initial_price, u32::from(a.feed_decimals)))
        .collect();
    let (mut kills, mut finished, mut round) = (0u32, 0u32, 0u64);
    let started = Instant::now();
    while kills < KILLS {
        round += 1;
        assert!(round < 10 * u64::from(KILLS), "too few kills landed: {kills} in {round} rounds");
        let r = mix(seed ^ round);
        // The market moves up to ±3 % in two assets, so that cycles trade.
        for k in 0..2 {
            let i = (mix(r + k) % symbols.len() as u64) as usize;
            let change = Decimal::new((mix(r + 10 + k) % 61) as i64 - 30, 3);
            prices[i] = (prices[i] * (Decimal::ONE + change)).round_dp(4);
            if let Err(e) = demo::set_price(&s.deployment, &symbols[i], prices[i]).await {
                panic!("round {round}: moving {} to {}: {e}", symbols[i], prices[i]);
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_ballast"))
            .args(["run", "--config", s.config().to_str().unwrap(), "--cycles", "3"])
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ballast starts");
        let wait = Duration::from_millis(20 + mix(r + 99) % 900);
        let deadline = Instant::now() + wait;
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match exited {
            None => {
                child.kill().expect("SIGKILL");
                let status = child.wait().unwrap();
                if status.signal() == Some(9) {
                    kills += 1;
                } else {
                    // It finished between the last look and the kill.
                    assert!(status.success(), "round {round}: {status}");
                    finished += 1;
                }
            }
            Some(status) => {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(status.success(), "round {round}: the agent failed on its own: {err}");
                finished += 1;
            }
        }
    }
    let out = s.run(1, &[]);
    assert!(out.status.success(), "the last run: {}", text(&out));
    let checked = s.check().await;
    eprintln!(
        "random_kills: {kills} kills, {finished} runs finished, {:.1} s; {checked:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(checked.settled_batches >= 2, "{checked:?}");
}
