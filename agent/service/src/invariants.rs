//! The invariants of RELIABILITY.md, checked from the outside: the data
//! folder on one side, the chain's state and events on the other. The demo
//! ends with them; the end-to-end and crash tests run them after every
//! scenario. The agent must not be running (the index is opened).
//!
//! | id | checked here as |
//! |---|---|
//! | I1 | no batch id in two `BatchSettled` events |
//! | I3 | every account's cash and units on the ledger equal its deposits and withdrawals plus its settled legs; the ledger holds exactly the tokens its books add up to |
//! | I4 | the log verifies (hash chain, signatures, key windows from the registry, contiguous seqs) |
//! | I5 | the index equals a rebuild from the log |
//! | I6 | every anchored checkpoint equals the log's root at its size |
//! | I7 | confirmed settlements in the log and `BatchSettled` events on-chain are the same set; every leg's record hash is a decision (or approval) record of the log |
//! | I2 | no submission left open; every decision's (or approval's) trades settled, failed, refused by the ledger, or replaced by a later decision of the account |

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use alloy::{
    primitives::{Address, B256, I256, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::Filter,
};
use ballast_audit::{Index, Kind, MemoryAnchors, body::SettlementConfirmed};
use ballast_chain::{
    bindings::{AssetToken, PortfolioLedger},
    manifest::Manifest,
    registry::RegistryReader,
};
use serde::Serialize;

use crate::{
    agent::{index_path, log_path},
    error::{Error, Result},
};

/// What [`check`] looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub records: u64,
    /// Checkpoints anchored on-chain, all matching the log.
    pub anchors: usize,
    /// Newest records not covered by an anchored checkpoint.
    pub unanchored: u64,
    /// Checkpoints the log records anchoring (settlement batches anchor
    /// theirs without a record of their own), each matching the log and
    /// the chain.
    pub recorded: usize,
    /// Of those, the ones with a signed note, checked.
    pub notes: usize,
    pub settled_batches: usize,
    pub legs: usize,
    /// Accounts whose ledger balances were reconciled against their events.
    pub accounts: usize,
}

fn violated(id: &str, what: String) -> Error {
    Error::NotReady(format!("invariant {id} violated: {what}"))
}

/// Checks I1 and I3–I7 (and the no-open-submission part of I2).
pub async fn check(data_dir: &Path, manifest: &Manifest) -> Result<Checked> {
    let reader = RegistryReader::connect(&manifest.rpc_url, manifest.chain_id, manifest.contracts.audit_registry).await?;
    let ring = crate::agent::registry_keyring(&reader).await?;
    // I4.
    let verified = ballast_audit::read::read_log(&log_path(data_dir), &ring).map_err(|e| violated("I4", e.to_string()))?;
    let mut checked = Checked { records: verified.records.len() as u64, ..Checked::default() };
    // Against what it records of itself: key rotations, and the
    // checkpoints it recorded anchoring (notes signed, roots its own).
    let own = verified.check_own_records(&ring).map_err(|e| violated("I4", e.to_string()))?;

    // I6.
    let anchors = MemoryAnchors(reader.anchors().await?.into_iter().collect());
    let report = ballast_audit::check_anchors(&verified.tree, &anchors).map_err(|e| violated("I6", e.to_string()))?;
    checked.anchors = report.checked;
    checked.unanchored = verified.tree.size() - report.latest.unwrap_or(0);
    // Each checkpoint the log recorded anchoring is on-chain.
    let recorded = &own.checkpoints;
    if let Some((size, _)) = recorded.anchors.0.iter().find(|(size, root)| anchors.0.get(size) != Some(root)) {
        return Err(violated("I6", format!("the log records a checkpoint of {size} records that is not anchored on-chain")));
    }
    (checked.recorded, checked.notes) = (recorded.anchors.0.len(), recorded.notes.len());

    // I5.
    let index = Index::open(index_path(data_dir), log_path(data_dir))?;
    let rebuilt = Index::temporary(log_path(data_dir))?;
    rebuilt.apply_all(verified.records.iter().zip(verified.spans.iter().copied()))?;
    if index.dump()? != rebuilt.dump()? {
        return Err(violated("I5", "the index differs from a rebuild of the log".into()));
    }

    // The log's side of settlement, and where every ordered trade ended.
    let mut confirmed = BTreeSet::new();
    let mut decisions = BTreeSet::new();
    // Batch id → the seqs of the records whose trades it carries (last attempt).
    let mut open: BTreeMap<B256, Vec<u64>> = BTreeMap::new();
    // Records that ordered trades (decisions with trades, approvals), by seq → account.
    let mut ordering: BTreeMap<u64, u64> = BTreeMap::new();
    let mut finished: BTreeSet<u64> = BTreeSet::new();
    let mut latest_decision: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &verified.records {
        let account = r.body.get("account").and_then(serde_json::Value::as_u64);
        match r.kind {
            // The records that order trades: decisions, and approvals of their queues.
            Kind::Decision | Kind::ApprovalGranted => {
                decisions.insert(B256::from(r.hash));
                let trades = r.body.get("trades").and_then(serde_json::Value::as_array).is_some_and(|t| !t.is_empty());
                if let (Some(account), true) = (account, trades || r.kind == Kind::ApprovalGranted) {
                    ordering.insert(r.seq, account);
                }
                if let (Kind::Decision, Some(account)) = (r.kind, account) {
                    latest_decision.insert(account, r.seq);
                }
            }
            Kind::SettlementSubmitted => {
                let b: ballast_audit::body::SettlementSubmitted = r.body_as()?;
                open.insert(B256::from(b.batch_id), b.decisions);
            }
            Kind::SettlementConfirmed | Kind::SettlementFailed => {
                let id = if r.kind == Kind::SettlementConfirmed {
                    let b: SettlementConfirmed = r.body_as()?;
                    let id = B256::from(b.batch_id);
                    if !confirmed.insert(id) {
                        return Err(violated("I1", format!("batch {id} confirmed twice in the log")));
                    }
                    id
                } else {
                    B256::from(r.body_as::<ballast_audit::body::SettlementFailed>()?.batch_id)
                };
                finished.extend(open.remove(&id).unwrap_or_default());
            }
            // Left out of settlement: the ledger refused the account's legs.
            Kind::SettlementRefused => {
                let refused: ballast_audit::body::SettlementRefused = r.body_as()?;
                for seq in refused.decisions {
                    if ordering.get(&seq) != Some(&refused.account) {
                        return Err(violated("I2", format!("record {} refuses record {seq}, which ordered no trades of account {}", r.seq, refused.account)));
                    }
                    finished.insert(seq);
                }
            }
            _ => {}
        }
    }
    if let Some(batch) = open.keys().next() {
        return Err(violated("I2", format!("batch {batch} was submitted and never resolved")));
    }
    // I2: every record that ordered trades ended settled, failed or refused by the ledger, or was
    // replaced by a later decision of its account (expired).
    for (seq, account) in &ordering {
        let replaced = latest_decision.get(account).is_some_and(|latest| latest > seq);
        if !finished.contains(seq) && !replaced {
            return Err(violated("I2", format!("the trades of record {seq} (account {account}) never reached a final state")));
        }
    }

    // The chain's side: every event of the ledger.
    let provider = ProviderBuilder::new()
        .connect_http(manifest.rpc_url.parse().map_err(|e| Error::Chain(format!("{}: {e}", manifest.rpc_url)))?)
        .erased();
    let ledger = manifest.contracts.portfolio_ledger;
    let logs = provider
        .get_logs(&Filter::new().address(ledger).from_block(0))
        .await
        .map_err(|e| Error::Chain(format!("ledger events: {e}")))?;
    let mut on_chain = BTreeSet::new();
    let token_index: BTreeMap<Address, Option<usize>> = std::iter::once((manifest.contracts.cash_token, None))
        .chain(manifest.assets.iter().map(|a| (a.token, Some(usize::from(a.index)))))
        .collect();
    // Expected (cash, units per asset) of every account, in base units.
    let mut expected: BTreeMap<u64, (I256, Vec<I256>)> = BTreeMap::new();
    let n = manifest.assets.len();
    fn entry(expected: &mut BTreeMap<u64, (I256, Vec<I256>)>, account: u64, n: usize) -> &mut (I256, Vec<I256>) {
        expected.entry(account).or_insert_with(|| (I256::ZERO, vec![I256::ZERO; n]))
    }
    let signed = |v: U256| I256::try_from(v).map_err(|_| violated("I3", format!("amount {v} out of range")));
    for log in &logs {
        if let Ok(e) = log.log_decode::<PortfolioLedger::BatchSettled>() {
            let id = e.inner.data.batchId;
            if !on_chain.insert(id) {
                return Err(violated("I1", format!("batch {id} settled twice on-chain")));
            }
            let dust = signed(e.inner.data.dust)?;
            entry(&mut expected, manifest.dust_account, n).0 += dust;
            checked.settled_batches += 1;
        } else if let Ok(e) = log.log_decode::<PortfolioLedger::LegSettled>() {
            let leg = e.inner.data;
            if !decisions.contains(&leg.recordHash) {
                return Err(violated("I7", format!("a leg of account {} carries {}, not a decision or approval record of the log", leg.account, leg.recordHash)));
            }
            let asset = &manifest.assets[usize::from(leg.asset)];
            let quantum = I256::try_from(asset.quantum).map_err(|_| violated("I3", "quantum out of range".into()))?;
            let cash = signed(leg.cashAmount)?;
            let account = entry(&mut expected, leg.account, n);
            account.1[usize::from(leg.asset)] += leg.quanta * quantum;
            account.0 += if leg.quanta < I256::ZERO { cash } else { -cash };
            checked.legs += 1;
        } else if let Ok(e) = log.log_decode::<PortfolioLedger::Deposited>() {
            let d = e.inner.data;
            let amount = signed(d.amount)?;
            match token_index.get(&d.token) {
                Some(None) => entry(&mut expected, d.account, n).0 += amount,
                Some(Some(i)) => entry(&mut expected, d.account, n).1[*i] += amount,
                None => {}
            }
        } else if let Ok(e) = log.log_decode::<PortfolioLedger::Withdrawn>() {
            let w = e.inner.data;
            let amount = signed(w.amount)?;
            match token_index.get(&w.token) {
                Some(None) => entry(&mut expected, w.account, n).0 -= amount,
                Some(Some(i)) => entry(&mut expected, w.account, n).1[*i] -= amount,
                None => {}
            }
        }
    }
    if on_chain != confirmed {
        let missing: Vec<_> = on_chain.symmetric_difference(&confirmed).take(3).collect();
        return Err(violated("I7", format!("settled on-chain and confirmed in the log differ, e.g. {missing:?}")));
    }

    // I3: each account's books, and the ledger's tokens.
    let contract = PortfolioLedger::new(ledger, provider.clone());
    let mut totals = (U256::ZERO, vec![U256::ZERO; n]);
    for (account, (cash, units)) in &expected {
        let p = contract.positionsOf(*account).call().await.map_err(|e| Error::Chain(format!("positionsOf({account}): {e}")))?;
        if signed(p.cash)? != *cash {
            return Err(violated("I3", format!("account {account} holds {} cash, its events add up to {cash}", p.cash)));
        }
        for (i, want) in units.iter().enumerate() {
            if signed(p.units[i])? != *want {
                return Err(violated("I3", format!("account {account} holds {} of asset {i}, its events add up to {want}", p.units[i])));
            }
            totals.1[i] += p.units[i];
        }
        totals.0 += p.cash;
        checked.accounts += 1;
    }
    let balance = |token: Address| {
        let t = AssetToken::new(token, provider.clone());
        async move { t.balanceOf(ledger).call().await.map_err(|e| Error::Chain(format!("balanceOf: {e}"))) }
    };
    if balance(manifest.contracts.cash_token).await? != totals.0 {
        return Err(violated("I3", "the ledger's cash tokens differ from the sum of its books".into()));
    }
    for a in &manifest.assets {
        if balance(a.token).await? != totals.1[usize::from(a.index)] {
            return Err(violated("I3", format!("the ledger's {} tokens differ from the sum of its books", a.symbol)));
        }
    }
    Ok(checked)
}
