//! What users meet: the demo at small scale, the approval flow, a stale
//! feed halting trading, the guardian's pause and freezes, a tampered log.

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
    assert_eq!(num("refused"), 0.0, "every account funds its legs at the price margin: {report}");
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
    assert!(v["recorded"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["notes"], v["recorded"], "every recorded checkpoint with its signed note: {v}");
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
    let waiting = waiting(&s);
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
async fn accounts_the_guardian_froze_are_not_decided_until_unfrozen() {
    let s = Scenario::new(12).await;
    // The guardian freezes three accounts before the agent's first cycle.
    let guardian = PortfolioLedger::new(s.deployment.manifest.contracts.portfolio_ledger, s.deployment.guardian.clone());
    let frozen = [1u64, 2, 3];
    for account in frozen {
        guardian.setFrozen(account, true).send().await.unwrap().get_receipt().await.unwrap();
    }
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("left out: frozen on the ledger by its guardian"), "{}", text(&out));
    let records = s.records();
    let decided = |records: &[ballast_audit::Record]| -> Vec<u64> {
        records.iter().filter(|r| r.kind == Kind::Decision).map(|r| r.body["account"].as_u64().unwrap()).collect()
    };
    let first = decided(&records);
    assert_eq!(first.len(), 12 - frozen.len(), "{first:?}");
    assert!(first.iter().all(|a| !frozen.contains(a)), "{first:?}");
    // Nothing was sent for them, so the ledger refused nothing.
    assert!(records.iter().all(|r| r.kind != Kind::SettlementRefused));
    let submitted: Vec<u64> = records
        .iter()
        .filter(|r| r.kind == Kind::SettlementSubmitted)
        .flat_map(|r| r.body["accounts"].as_array().unwrap().iter().map(|a| a.as_u64().unwrap()))
        .collect();
    assert!(!submitted.is_empty() && submitted.iter().all(|a| !frozen.contains(a)), "{submitted:?}");
    s.check().await;

    // Unfrozen, an account is decided at the next cycle.
    guardian.setFrozen(1, false).send().await.unwrap().get_receipt().await.unwrap();
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let second = decided(&s.records()[records.len()..]);
    assert!(second.contains(&1), "{second:?}");
    assert!(!second.contains(&2) && !second.contains(&3), "{second:?}");
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_trade_the_ledger_refuses_is_recorded_and_the_rest_settle() {
    let s = Scenario::with_approval_limit(16, Decimal::from(3_000)).await;
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let waiting = waiting(&s);
    let account = |i: usize| waiting[i]["account"].as_u64().unwrap();
    // Between the approval and its settlement, the guardian freezes the
    // first account: the ledger refuses its legs, the second's settle.
    let guardian = PortfolioLedger::new(s.deployment.manifest.contracts.portfolio_ledger, s.deployment.guardian.clone());
    guardian.setFrozen(account(0), true).send().await.unwrap().get_receipt().await.unwrap();
    for w in &waiting[..2] {
        let out = s.ballast(&["approvals", "approve", &w["id"].as_u64().unwrap().to_string(), "--approver", "alice"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let before = s.records().len();
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let records = s.records();
    let new = &records[before..];
    let granted = |a: u64| new.iter().find(|r| r.kind == Kind::ApprovalGranted && r.body["account"].as_u64() == Some(a)).unwrap();
    let refused: Vec<_> = new.iter().filter(|r| r.kind == Kind::SettlementRefused).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].body["account"].as_u64(), Some(account(0)));
    assert_eq!(refused[0].body["reason"], "the ledger refuses: the account is frozen");
    assert_eq!(refused[0].body["decisions"], serde_json::json!([granted(account(0)).seq]), "names the approval");
    let ledger = PortfolioLedger::new(s.deployment.manifest.contracts.portfolio_ledger, s.deployment.admin.clone());
    let legs = |hash: [u8; 32]| {
        let ledger = ledger.clone();
        async move { ledger.LegSettled_filter().topic2(alloy::primitives::B256::from(hash)).from_block(0).query().await.unwrap() }
    };
    assert!(legs(granted(account(0)).hash).await.is_empty(), "nothing of the frozen account settled");
    assert!(!legs(granted(account(1)).hash).await.is_empty(), "the other approval settled");
    // The frozen account was not decided again; I2 holds with the refusal.
    assert!(new.iter().all(|r| r.kind != Kind::Decision || r.body["account"].as_u64() != Some(account(0))));
    s.check().await;
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

    let out = s.audit(&["verify", "--manifest", &s.manifest()]);
    assert!(!out.status.success(), "verify must fail: {}", text(&out));
    assert!(text(&out).contains("record 0") || text(&out).contains("seq 0"), "names the record: {}", text(&out));

    let out = s.run(1, &[]);
    assert!(!out.status.success(), "the agent must not start on a tampered log: {}", text(&out));
    assert!(text(&out).contains("audit log"), "{}", text(&out));
}

/// `ballast approvals list --json`: two or more, as a 3,000 approval limit
/// leaves after the first cycle.
fn waiting(s: &Scenario) -> Vec<serde_json::Value> {
    let out = s.ballast(&["approvals", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let waiting: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(waiting.len() >= 2, "trades above 3,000 wait: {waiting:?}");
    waiting
}

/// `GET path` on loopback with a plain HTTP/1.1 request: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get_json(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_agent_serves_its_api_and_stops_cleanly_on_sigterm() {
    let s = Scenario::new(12).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["run", "--config", s.config().to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr_file = s.data().join("api.addr");
    let started = std::time::Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            let health = get_json(&a, "/health");
            if health["cycles"].as_u64() >= Some(1) {
                break a;
            }
        }
        assert!(started.elapsed().as_secs() < 60, "no first cycle within a minute");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let health = get_json(&addr, "/health");
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health["records"].as_u64().unwrap() > 12, "{health}");
    let accounts = get_json(&addr, "/accounts");
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 12);
    let one = get_json(&addr, "/accounts/1");
    assert!(!one["lots"].as_array().unwrap().is_empty(), "{one}");
    let history = get_json(&addr, "/accounts/1/records");
    let kinds: Vec<&str> = history["records"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"ips_registered") && kinds.contains(&"decision"), "{kinds:?}");
    let decisions = get_json(&addr, "/records?kind=decision&limit=5");
    assert_eq!(decisions["total"].as_u64(), Some(12));
    assert_eq!(decisions["returned"].as_u64(), Some(5));
    let confirmed = get_json(&addr, "/records?kind=settlement_confirmed");
    let batch = confirmed["records"][0]["body"]["batch_id"].as_str().expect("a settled batch").to_string();
    let by_batch = get_json(&addr, &format!("/records?batch={batch}"));
    assert!(by_batch["total"].as_u64().unwrap() >= 2, "submitted and confirmed: {by_batch}");
    let tx = confirmed["records"][0]["body"]["tx_hash"].as_str().unwrap().to_string();
    assert!(get_json(&addr, &format!("/records?tx={tx}"))["total"].as_u64().unwrap() >= 2);
    assert!(get_json(&addr, "/records?ips=ips-growth")["total"].as_u64().unwrap() >= 1);
    assert_eq!(get_json(&addr, "/records/0")["seq"].as_u64(), Some(0));
    assert!(get_json(&addr, "/approvals")["approvals"].is_array());
    assert_eq!(get_json(&addr, "/verification")["index"]["behind"].as_u64(), Some(0));
    let openapi = get_json(&addr, "/openapi.json");
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/accounts/{id}/records"]["get"].is_object());
    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("ballast_cycles_total 1\n") || metrics.contains("ballast_cycles_total 2\n"), "{metrics}");
    assert!(metrics.contains("ballast_batches_settled_total"), "{metrics}");
    assert_eq!(get(&addr, "/accounts/999999").0, 404);
    assert_eq!(get(&addr, "/records/999999").0, 404);
    let (status, body) = get(&addr, "/records");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("give one of"), "{body}");
    assert_eq!(get(&addr, "/records?kind=nonsense").0, 400);
    assert_eq!(get(&addr, "/accounts/1/records?from=yesterday").0, 400);

    // SIGTERM: the agent anchors what is left and exits 0.
    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!addr_file.exists(), "api.addr removed on shutdown");
    let checked = s.check().await;
    assert!(checked.unanchored <= 1, "the shutdown anchored the log: {checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_is_recorded_only_with_its_confirmations() {
    let s = Scenario::new(8).await;
    let config = std::fs::read_to_string(s.config()).unwrap();
    let config = config
        .replace("[chain]\n", "[chain]\nconfirmations = 2\n")
        .replace("[agent]\n", "[agent]\nsettle_timeout_s = 2\n");
    std::fs::write(s.config(), config).unwrap();
    // Anvil mines a block per transaction: the batch's block has no second
    // confirmation while the cycle waits, so the submission stays open.
    let first = s.run(1, &[]);
    assert!(first.status.success(), "{}", text(&first));
    let kinds: Vec<Kind> = s.records().iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&Kind::SettlementSubmitted), "{kinds:?}");
    assert!(!kinds.contains(&Kind::SettlementConfirmed), "not confirmed after one block: {kinds:?}");
    // The shutdown's anchor mined another block: the next start confirms it.
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    // Failed twice (0 confirmed), the second time with the first run's
    // batch reverted: estimated in the second the pools were seeded and
    // mined in the next, it likely ran out of gas on the pairs' accumulators (the
    // gas limit now covers them; see tests/e2e/submit.rs). The kinds and
    // both runs' logs say which step missed if it happens again.
    let kinds: Vec<Kind> = s.records().iter().map(|r| r.kind).collect();
    let confirmed = kinds.iter().filter(|k| **k == Kind::SettlementConfirmed).count();
    assert_eq!(confirmed, 1, "records {kinds:?}\nfirst run:\n{}\nsecond run:\n{}", text(&first), text(&out));
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_do_is_recorded_once_a_window_not_every_cycle() {
    let s = Scenario::new(10).await;
    // Two cycles in a row: the second finds the book rebalanced.
    let out = s.run(2, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let decisions = |s: &Scenario| s.records().iter().filter(|r| r.kind == Kind::Decision).count();
    let quiet = decisions(&s);
    assert!((10..20).contains(&quiet), "the second cycle's 'nothing to do' went unrecorded: {quiet} decisions");

    let s = Scenario::new(10).await;
    let config = std::fs::read_to_string(s.config()).unwrap().replace("[agent]\n", "[agent]\nrecord_no_action_every_s = 0\n");
    std::fs::write(s.config(), config).unwrap();
    let out = s.run(2, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(decisions(&s), 20, "every decision of every cycle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_key_rotates_by_a_record_and_the_registry() {
    use std::os::unix::fs::OpenOptionsExt;
    let s = Scenario::new(8).await;
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let old_id = s.records()[0].key_id.clone();

    let seed = [42u8; 32];
    let path = s.dir.path().join("keys/audit-2.key");
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&path).unwrap();
    std::io::Write::write_all(&mut f, hex::encode(seed).as_bytes()).unwrap();
    let new_key = format!("file:{}", path.display());
    let new = ballast_audit::Signer::from_seed(&seed);

    // Not registered on-chain yet: refused, nothing recorded.
    let before = s.records().len();
    let out = s.ballast(&["keys", "rotate", "--new-key", &new_key]);
    assert!(!out.status.success() && text(&out).contains("is not registered in the AuditRegistry"), "{}", text(&out));
    assert_eq!(s.records().len(), before);

    // Registered by the key admin: the rotation is recorded, signed by the old key.
    let registry = s.deployment.manifest.contracts.audit_registry;
    ballast_agent::agent::register_audit_key(&s.deployment.admin, registry, &new).await.unwrap();
    let out = s.ballast(&["keys", "rotate", "--new-key", &new_key]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("key rotation recorded as record"), "{}", text(&out));
    assert!(text(&out).contains("retireAgentKey(0x"), "the old key's year-long window is pointed out: {}", text(&out));
    let records = s.records();
    let rotation = records.iter().rfind(|r| r.kind == Kind::KeyRotation).expect("a key_rotation record");
    assert_eq!(rotation.key_id, old_id);
    let body: ballast_audit::body::KeyRotation = rotation.body_as().unwrap();
    assert_eq!((body.old_key_id.as_str(), body.new_key_id.as_str()), (old_id.as_str(), new.key_id()));

    // The old key no longer starts the agent, at any time once the
    // rotation is recorded (before the hand-over it would go on signing
    // past it).
    let out = s.run(1, &[]);
    assert!(!out.status.success() && text(&out).contains(&format!("was rotated to {}", new.key_id())), "{}", text(&out));

    // With the new key configured, it runs from the hand-over; its records
    // verify against the chain's keys and the invariants hold.
    let config = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(s.config(), config.replace("audit = \"file:keys/audit.key\"", &format!("audit = \"{new_key}\""))).unwrap();
    let wait = body.valid_from.unix_nanos() - ballast_audit::Timestamp::now().unix_nanos();
    std::thread::sleep(std::time::Duration::from_nanos(u64::try_from(wait.max(0)).unwrap() + 100_000_000));
    let out = s.run(1, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let records = s.records();
    let after: Vec<_> = records.iter().filter(|r| r.seq > rotation.seq).collect();
    assert!(!after.is_empty() && after.iter().all(|r| r.key_id == new.key_id()), "records after the rotation are the new key's");
    s.check().await;
    let out = s.audit(&["verify", "--manifest", &s.manifest()]);
    assert!(out.status.success() && text(&out).contains("key rotations recorded: 1;"), "{}", text(&out));

    // The compliance report on the engine's real decisions: each trade with
    // the trigger and what fired it, its IPS and the checks it passed.
    let out = s.audit(&["report", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let traded = records.iter().filter(|r| r.kind == Kind::Decision).map(|r| r.body["trades"].as_array().unwrap().len() + r.body["queued"].as_array().unwrap().len()).sum::<usize>();
    assert!(traded > 0 && rows.len() == traded, "a row per trade: {} rows, {traded} trades", rows.len());
    for row in &rows {
        let field = |k: &str| row[k].as_str().unwrap_or_default().to_string();
        assert!(!field("trigger").is_empty() && !field("trigger_detail").is_empty(), "{row}");
        assert!(field("ips_id").starts_with("ips-") && field("ips_document_hash").len() == 64, "{row}");
        assert!(field("passed_checks").contains("cash_non_negative"), "{row}");
    }
}

/// Blocks of 1.8 million gas, where a batch of this book costs some 0.9
/// million besides its legs (its pairs' swaps) and the 120 accounts'
/// trades need several million: the cycle cuts them into five batches or
/// so (three at least), sends them one at a time, each once the one
/// before is mined, and all settle; and so after a crash between recording
/// them and sending them, when recovery sends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_several_batches_sends_them_in_turn_and_settles_them_all() {
    use alloy::providers::Provider;
    for crash in [false, true] {
        let s = Scenario::new(120).await;
        let admin = &s.deployment.admin;
        admin.raw_request::<_, serde_json::Value>("anvil_setBlockGasLimit".into(), [1_800_000u64]).await.unwrap();
        admin.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await.unwrap();
        if crash {
            let out = s.run(1, &[("BALLAST_CRASH_AT", "submission_recorded")]);
            assert!(text(&out).contains("crash point submission_recorded: dying"), "{}", text(&out));
        }
        let out = s.run(1, &[]);
        assert!(out.status.success(), "{}", text(&out));
        let records = s.records();
        let batches = |kind: Kind| -> std::collections::BTreeSet<String> {
            records.iter().filter(|r| r.kind == kind).map(|r| r.body["batch_id"].to_string()).collect()
        };
        let submitted = batches(Kind::SettlementSubmitted);
        let gas: Vec<u64> = records.iter().filter(|r| r.kind == Kind::SettlementConfirmed).map(|r| r.body["gas_used"].as_u64().unwrap()).collect();
        assert!(submitted.len() >= 3, "crash {crash}: {} batches, gas {gas:?}", submitted.len());
        assert_eq!(batches(Kind::SettlementConfirmed), submitted, "crash {crash}: every batch settled");
        assert_eq!(s.check().await.settled_batches, submitted.len());
    }
}
