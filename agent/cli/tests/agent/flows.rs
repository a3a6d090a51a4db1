//! What users meet: the demo at small scale, the approval flow, a stale
//! feed halting trading, the guardian's pause, a tampered log.

use ballast_audit::Kind;
use ballast_chain::bindings::PortfolioLedger;
use rust_decimal::Decimal;

use crate::scenario::{Scenario, text};

#[test]
fn the_demo_runs_and_ends_verified() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["demo", "--accounts", "40", "--json", "--dir", dir.path().to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |k: &str| report[k].as_f64().unwrap_or_else(|| report[k].as_str().unwrap().parse().unwrap());
    assert_eq!(num("accounts"), 40.0);
    assert!(num("accounts_rebalanced") >= 20.0, "{report}");
    assert!(num("trades") > 0.0 && num("batches") > 0.0, "{report}");
    assert_eq!(num("failed_batches"), 0.0, "{report}");
    assert!(num("crossed_value") > 0.0, "buys and sells crossed inside batches: {report}");
    assert!(num("losses_harvested") > 0.0, "the drop was harvested: {report}");
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 6);
    let drop = &days[2][1];
    assert!(drop["paused"].as_u64().unwrap() > 0, "the 20 % drop trips the daily-move breaker: {drop}");
    assert_eq!(drop["batches"].as_u64().unwrap(), 0, "nothing settles while paused: {drop}");
    let v = &report["verification"];
    assert!(v["records"].as_u64().unwrap() > 40 && v["anchors"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["unanchored"].as_u64().unwrap(), 1, "only the last anchor's own record");
    assert!(text(&out).contains("verifying the whole log against the chain"), "progress is shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_recorded_and_approved_trades_settle_next_cycle() {
    let s = Scenario::with_approval_limit(16, Decimal::from(3_000)).await;
    let out = s.ballast(&["approvals", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no trades wait for approval");

    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.ballast(&["approvals", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let waiting: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(waiting.len() >= 2, "trades above 3,000 wait: {waiting:?}");
    let id = |i: usize| waiting[i]["id"].as_u64().unwrap().to_string();
    let account = |i: usize| waiting[i]["account"].as_u64().unwrap();

    let out = s.ballast(&["approvals", "approve", &id(0), "--approver", "alice"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.ballast(&["approvals", "reject", &id(1), "--approver", "bob"]);
    assert!(!out.status.success(), "a rejection needs a reason");
    let out = s.ballast(&["approvals", "reject", &id(1), "--approver", "bob", "--reason", "client on holiday"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.ballast(&["approvals", "approve", "999999", "--approver", "alice"]);
    assert!(!out.status.success() && text(&out).contains("does not wait"), "{}", text(&out));

    let before = s.records().len();
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let records = s.records();
    let new = &records[before..];
    let granted: Vec<_> = new.iter().filter(|r| r.kind == Kind::ApprovalGranted).collect();
    let rejected: Vec<_> = new.iter().filter(|r| r.kind == Kind::ApprovalRejected).collect();
    assert_eq!(granted.len(), 1);
    assert_eq!(rejected.len(), 1);
    assert_eq!(granted[0].body["approver"], "alice");
    assert_eq!(granted[0].body["account"].as_u64(), Some(account(0)));
    assert_eq!(rejected[0].body["reason"], "client on holiday");
    // The approved queue settled, its legs carrying the approval record's hash.
    let ledger = PortfolioLedger::new(s.deployment.manifest.contracts.portfolio_ledger, s.deployment.admin.clone());
    let legs = ledger
        .LegSettled_filter()
        .topic2(alloy::primitives::B256::from(granted[0].hash))
        .from_block(0)
        .query()
        .await
        .unwrap();
    assert!(!legs.is_empty(), "the approved trades settled under the approval record");
    assert!(legs.iter().all(|(leg, _)| leg.account == account(0)));
    assert!(std::fs::read_dir(s.data().join("approvals")).unwrap().filter_map(|e| e.ok()).all(|e| e.path().is_dir()), "inbox emptied");
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_feed_halts_its_asset() {
    let s = Scenario::new(12).await;
    // Two hours pass and no feed publishes: every price is older than 15 minutes.
    ballast_agent::demo::advance_time(&s.deployment.admin, 7_200).await.unwrap();
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let records = s.records();
    let decisions: Vec<_> = records.iter().filter(|r| r.kind == Kind::Decision).collect();
    assert_eq!(decisions.len(), 12);
    for d in &decisions {
        let halts = d.body["halts"].as_array().unwrap();
        assert!(!halts.is_empty(), "account {} halted: {}", d.body["account"], d.body);
        assert!(halts.iter().any(|h| h["reason"].as_str().unwrap().contains("old")), "{halts:?}");
        assert!(d.body["trades"].as_array().unwrap().is_empty());
    }
    assert!(!records.iter().any(|r| r.kind == Kind::SettlementSubmitted), "nothing was sent");
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guardians_pause_stops_trading_until_lifted() {
    let s = Scenario::new(12).await;
    let guardian = PortfolioLedger::new(s.deployment.manifest.contracts.portfolio_ledger, s.deployment.guardian.clone());
    guardian.pause().send().await.unwrap().get_receipt().await.unwrap();
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let records = s.records();
    assert!(!records.iter().any(|r| r.kind == Kind::Decision), "no decisions while the ledger is paused");
    let halt = records.iter().find(|r| r.kind == Kind::Halt).expect("a halt record");
    assert_eq!(halt.body["cause"], "circuit_breaker");
    assert!(halt.body["detail"].as_str().unwrap().contains("paused by its guardian"));

    guardian.unpause().send().await.unwrap().get_receipt().await.unwrap();
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.check().await.settled_batches >= 1, "trading resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_log_is_caught_and_the_agent_refuses_it() {
    let s = Scenario::new(8).await;
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let log = s.data().join("audit.log");
    let mut bytes = std::fs::read(&log).unwrap();
    // Change one digit inside the first decision's body.
    let at = bytes.windows(9).position(|w| w == b"\"account\"").expect("a record with an account") + 11;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&log, &bytes).unwrap();

    let manifest = s.dir.path().join("manifest.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["audit", "verify", "--data-dir", s.data().to_str().unwrap(), "--manifest", manifest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "verify must fail: {}", text(&out));
    assert!(text(&out).contains("record 0") || text(&out).contains("seq 0"), "names the record: {}", text(&out));

    let out = s.run(1, &[]);
    assert!(!out.status.success(), "the agent must not start on a tampered log: {}", text(&out));
    assert!(text(&out).contains("audit log"), "{}", text(&out));
}
