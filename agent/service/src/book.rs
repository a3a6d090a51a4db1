//! The agent's book: what the chain does not hold. The ledger on-chain is
//! the truth for cash and units; the tax lots behind those units, the IPS
//! and models, households and the recent trades that wash-sale rules look
//! back on are kept here.
//!
//! The book is never written anywhere of its own: it is the opening book
//! (a file the operator gives, as of onboarding) with the audit log applied
//! to it, record by record ([`Book::apply`]). The same function runs when the
//! agent starts (replaying the log) and as it appends, so the two cannot
//! disagree, and nothing is lost in a crash that the log kept.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use ballast_audit::{
    Kind, Record,
    body::{Fill, SettlementConfirmed, SettlementFailed, SettlementRefused, SettlementSubmitted},
};
use ballast_engine::{
    Decision,
    types::{Account, AccountId, AccountKind, Asset, Inputs, Ips, Limits, Lot, MarketSnapshot, Model, PastTrade, Side},
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::{
    error::{Error, Result},
    ingest::Position,
};

/// How far back trades are kept for the wash-sale rules (30 days either side).
const WASH_SALE_DAYS: i64 = 31;

/// What the operator gives the agent: assets (their ids are the ledger's
/// symbols), models, IPS and accounts with their opening tax lots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpeningBook {
    pub assets: Vec<Asset>,
    pub models: Vec<Model>,
    pub ips: Vec<Ips>,
    pub accounts: Vec<AccountSetup>,
}

/// One client account as onboarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSetup {
    pub id: AccountId,
    pub household: String,
    pub kind: AccountKind,
    pub ips: String,
    /// The lots behind the account's units on the ledger at onboarding.
    #[serde(default)]
    pub lots: Vec<Lot>,
    #[serde(default)]
    pub last_rebalanced: Option<Date>,
    #[serde(default)]
    pub sell_order: Vec<String>,
}

impl OpeningBook {
    /// Reads a book from JSON or TOML (by extension), naming the file and field on error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { op: "reading", path: path.into(), source })?;
        let bad = |key: String, reason: String| Error::Config { path: path.into(), key, reason };
        let book: OpeningBook = if path.extension().is_some_and(|e| e == "toml") {
            let de = toml::Deserializer::parse(&text).map_err(|e| bad("(file)".into(), e.to_string()))?;
            serde_path_to_error::deserialize(de).map_err(|e| bad(e.path().to_string(), e.inner().message().to_string()))?
        } else {
            let mut de = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| bad(e.path().to_string(), e.inner().to_string()))?
        };
        book.check().map_err(|reason| bad("(book)".into(), reason))?;
        Ok(book)
    }

    /// Ids unique, references resolved.
    fn check(&self) -> std::result::Result<(), String> {
        let assets: BTreeSet<&str> = self.assets.iter().map(|a| a.id.as_str()).collect();
        let ips: BTreeSet<&str> = self.ips.iter().map(|i| i.id.as_str()).collect();
        let mut ids = BTreeSet::new();
        for a in &self.accounts {
            if !ids.insert(a.id) {
                return Err(format!("account {} is listed twice", a.id));
            }
            if !ips.contains(a.ips.as_str()) {
                return Err(format!("account {} names the unknown IPS `{}`", a.id, a.ips));
            }
            if let Some(lot) = a.lots.iter().find(|l| !assets.contains(l.asset.as_str())) {
                return Err(format!("account {} lot `{}` is of the unknown asset `{}`", a.id, lot.id, lot.asset));
            }
        }
        Ok(())
    }
}

/// An account as the book holds it between cycles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub setup: AccountSetup,
    pub ips_version_applied: Option<u32>,
}

/// A settlement sent and not yet known to be settled or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSubmission {
    /// Every attempt, oldest first (a re-signed batch keeps its id).
    pub attempts: Vec<SettlementSubmitted>,
}

/// A decision whose queued trades wait for an advisor: the account's latest
/// decision, with no approval or rejection yet. A newer decision of the
/// account replaces it (its queue is decided afresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    pub seq: u64,
    pub hash: [u8; 32],
    pub decision: Decision,
}

/// Counts of what the book has seen, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub decisions: u64,
    pub settled_batches: u64,
    pub failed_batches: u64,
    pub trades_settled: u64,
    pub losses_harvested: Decimal,
}

/// Accounts a cycle does not decide, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Not on the ledger, or their lots and the ledger's units disagree.
    pub unreconciled: Vec<(AccountId, String)>,
    /// Frozen by the ledger's guardian.
    pub frozen: Vec<AccountId>,
}

/// The book: opening book plus the log.
#[derive(Debug, Clone)]
pub struct Book {
    assets: Vec<Asset>,
    models: Vec<Model>,
    ips: Vec<Ips>,
    accounts: BTreeMap<AccountId, AccountState>,
    /// Trades to settle, by the sequence number of the record that orders
    /// them: a decision (its trades) or an approval (the decision's queue).
    pending: BTreeMap<u64, Decision>,
    /// The keys of `pending` by account, so that a new decision drops its
    /// account's unsettled ones without a pass over all of them.
    pending_of: BTreeMap<AccountId, BTreeSet<u64>>,
    /// Decisions waiting for approval, by account.
    awaiting: BTreeMap<AccountId, Awaiting>,
    /// Open submissions by batch id.
    open: BTreeMap<[u8; 32], OpenSubmission>,
    /// Settled trades of the last [`WASH_SALE_DAYS`] days.
    recent: Vec<PastTrade>,
    /// (account, IPS id, version) with an `ips_registered` record.
    registered: BTreeSet<(AccountId, String, u32)>,
    /// Accounts with at least one settled trade.
    traded: BTreeSet<AccountId>,
    /// When each account's latest decision was recorded.
    last_recorded: BTreeMap<AccountId, ballast_audit::Timestamp>,
    /// Records applied so far.
    applied: u64,
    tally: Tally,
}

fn decimal(text: &str, what: &str) -> Result<Decimal> {
    text.parse().map_err(|e| Error::Log(format!("{what}: `{text}` is not a decimal: {e}")))
}

impl Book {
    pub fn new(opening: OpeningBook) -> Self {
        let accounts = opening
            .accounts
            .into_iter()
            .map(|setup| (setup.id, AccountState { setup, ips_version_applied: None }))
            .collect();
        Self {
            assets: opening.assets,
            models: opening.models,
            ips: opening.ips,
            accounts,
            pending: BTreeMap::new(),
            pending_of: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            open: BTreeMap::new(),
            recent: Vec::new(),
            registered: BTreeSet::new(),
            traded: BTreeSet::new(),
            last_recorded: BTreeMap::new(),
            applied: 0,
            tally: Tally::default(),
        }
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountState> {
        self.accounts.values()
    }

    pub fn account(&self, id: AccountId) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    pub fn ips(&self, id: &str) -> Option<&Ips> {
        self.ips.iter().find(|i| i.id == id)
    }

    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    pub fn open_submissions(&self) -> &BTreeMap<[u8; 32], OpenSubmission> {
        &self.open
    }

    /// Whether the account has trades ordered and not settled yet.
    pub fn has_pending(&self, account: AccountId) -> bool {
        self.pending_of.contains_key(&account)
    }

    /// Decisions whose queued trades wait for an advisor, by account.
    pub fn awaiting(&self) -> &BTreeMap<AccountId, Awaiting> {
        &self.awaiting
    }

    pub fn is_registered(&self, account: AccountId, ips: &Ips) -> bool {
        self.registered.contains(&(account, ips.id.clone(), ips.version))
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// When the account's latest decision was recorded.
    pub fn last_recorded(&self, account: AccountId) -> Option<ballast_audit::Timestamp> {
        self.last_recorded.get(&account).copied()
    }

    /// Accounts with at least one settled trade.
    pub fn rebalanced_accounts(&self) -> usize {
        self.traded.len()
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Applies the next record of the log. Records must come in order.
    pub fn apply(&mut self, record: &Record) -> Result<()> {
        if record.seq != self.applied {
            return Err(Error::Log(format!("book expected record {} and got {}", self.applied, record.seq)));
        }
        let body = |e: ballast_audit::Error| Error::Log(format!("record {}: {e}", record.seq));
        match record.kind {
            Kind::Decision => {
                let decision = Decision::deserialize(&record.body)
                    .map_err(|e| Error::Log(format!("record {}: not a decision: {e}", record.seq)))?;
                self.tally.decisions += 1;
                self.last_recorded.insert(decision.account, record.time);
                // A newer decision replaces an account's unsettled one, and its queue.
                for seq in self.pending_of.remove(&decision.account).unwrap_or_default() {
                    self.pending.remove(&seq);
                }
                if decision.queued.is_empty() {
                    self.awaiting.remove(&decision.account);
                } else {
                    let waiting = Awaiting { seq: record.seq, hash: record.hash, decision: decision.clone() };
                    self.awaiting.insert(decision.account, waiting);
                }
                if decision.trades.is_empty() {
                    if let Some(a) = self.accounts.get_mut(&decision.account) {
                        a.ips_version_applied = Some(decision.ips.version);
                    }
                } else {
                    self.add_pending(record.seq, decision);
                }
            }
            Kind::ApprovalGranted => {
                let a: ballast_audit::body::ApprovalGranted = record.body_as().map_err(body)?;
                let waiting = self.take_awaiting(a.account, a.decision_seq, &a.decision, record.seq)?;
                // The approval orders the queued trades now.
                let approved = Decision { trades: waiting.decision.queued.clone(), queued: Vec::new(), ..waiting.decision };
                self.add_pending(record.seq, approved);
            }
            Kind::ApprovalRejected => {
                let r: ballast_audit::body::ApprovalRejected = record.body_as().map_err(body)?;
                self.take_awaiting(r.account, r.decision_seq, &r.decision, record.seq)?;
            }
            Kind::IpsRegistered => {
                let r: ballast_audit::body::IpsRegistered = record.body_as().map_err(body)?;
                self.registered.insert((r.account, r.ips_id, r.version));
            }
            Kind::SettlementSubmitted => {
                let s: SettlementSubmitted = record.body_as().map_err(body)?;
                self.open.entry(s.batch_id).or_insert_with(|| OpenSubmission { attempts: Vec::new() }).attempts.push(s);
            }
            Kind::SettlementConfirmed => {
                let c: SettlementConfirmed = record.body_as().map_err(body)?;
                let open = self
                    .open
                    .remove(&c.batch_id)
                    .ok_or_else(|| Error::Log(format!("record {}: confirms a batch never submitted", record.seq)))?;
                let decisions = open.attempts.last().map(|a| a.decisions.clone()).unwrap_or_default();
                self.settle(&decisions, &c)?;
                self.tally.settled_batches += 1;
            }
            Kind::SettlementFailed => {
                let f: SettlementFailed = record.body_as().map_err(body)?;
                if let Some(open) = self.open.remove(&f.batch_id) {
                    for seq in open.attempts.last().map(|a| a.decisions.clone()).unwrap_or_default() {
                        self.take_pending(seq);
                    }
                }
                self.tally.failed_batches += 1;
            }
            Kind::SettlementRefused => {
                let r: SettlementRefused = record.body_as().map_err(body)?;
                for seq in r.decisions {
                    match self.take_pending(seq) {
                        Some(d) if d.account == r.account => {}
                        _ => {
                            return Err(Error::Log(format!(
                                "record {}: refuses the trades of record {seq} for account {}, which do not wait for settlement",
                                record.seq, r.account
                            )))
                        }
                    }
                }
            }
            _ => {}
        }
        self.applied += 1;
        Ok(())
    }

    fn add_pending(&mut self, seq: u64, decision: Decision) {
        self.pending_of.entry(decision.account).or_default().insert(seq);
        self.pending.insert(seq, decision);
    }

    fn take_pending(&mut self, seq: u64) -> Option<Decision> {
        let decision = self.pending.remove(&seq)?;
        if let Some(seqs) = self.pending_of.get_mut(&decision.account) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.pending_of.remove(&decision.account);
            }
        }
        Some(decision)
    }

    fn take_awaiting(&mut self, account: AccountId, seq: u64, hash: &[u8; 32], at: u64) -> Result<Awaiting> {
        match self.awaiting.get(&account) {
            Some(w) if w.seq == seq && &w.hash == hash => Ok(self.awaiting.remove(&account).expect("just seen")),
            _ => Err(Error::Log(format!("record {at}: a verdict on decision {seq} of account {account}, which does not wait for one"))),
        }
    }

    /// The trades of `decisions` done at the batch's fill prices.
    fn settle(&mut self, decisions: &[u64], confirmed: &SettlementConfirmed) -> Result<()> {
        let when = OffsetDateTime::from_unix_timestamp(confirmed.block_time as i64)
            .map_err(|e| Error::Log(format!("block time {}: {e}", confirmed.block_time)))?;
        let today = when.date();
        let fills: BTreeMap<&str, &Fill> = confirmed.fills.iter().map(|f| (f.asset.as_str(), f)).collect();
        for seq in decisions {
            let Some(decision) = self.take_pending(*seq) else {
                return Err(Error::Log(format!("batch settles decision {seq}, which is not pending")));
            };
            let Some(account) = self.accounts.get_mut(&decision.account) else { continue };
            self.traded.insert(decision.account);
            for (n, t) in decision.trades.iter().enumerate() {
                let fill = fills
                    .get(t.asset.as_str())
                    .ok_or_else(|| Error::Log(format!("batch settled {} without a fill for it", t.asset)))?;
                let mut realised_loss = Decimal::ZERO;
                match t.side {
                    Side::Sell => {
                        let price = decimal(&fill.sell_price, "sell price")?;
                        for used in &t.lots {
                            if let Some(lot) = account.setup.lots.iter_mut().find(|l| l.id == used.lot) {
                                let gain = (price - lot.cost) * used.quantity;
                                if gain < Decimal::ZERO {
                                    realised_loss -= gain;
                                }
                                lot.quantity -= used.quantity;
                            }
                        }
                        account.setup.lots.retain(|l| l.quantity > Decimal::ZERO);
                    }
                    Side::Buy => {
                        account.setup.lots.push(Lot {
                            id: format!("r{seq}-{n}"),
                            asset: t.asset.clone(),
                            quantity: t.quantity,
                            cost: decimal(&fill.buy_price, "buy price")?,
                            acquired: today,
                        });
                    }
                }
                self.tally.trades_settled += 1;
                if t.reason == ballast_engine::decision::Reason::HarvestLoss {
                    self.tally.losses_harvested += realised_loss;
                }
                self.recent.push(PastTrade {
                    account: decision.account,
                    household: decision.household.clone(),
                    asset: t.asset.clone(),
                    side: t.side,
                    quantity: t.quantity,
                    date: today,
                    realised_loss,
                });
            }
            account.ips_version_applied = Some(decision.ips.version);
            if decision.acted_on.is_some() {
                account.setup.last_rebalanced = Some(today);
            }
        }
        let horizon = today - time::Duration::days(WASH_SALE_DAYS);
        self.recent.retain(|t| t.date >= horizon);
        Ok(())
    }

    /// The engine's inputs for `now`: accounts with the ledger's cash and
    /// the book's lots. Left out, and named in [`LeftOut`]: an account the
    /// ledger's guardian froze (it can trade nothing, and a loss sale it
    /// decided would block its household's purchases for nothing), and one
    /// whose lots do not add up to its units on the ledger (its book needs
    /// reconciling before it can be traded).
    pub fn inputs(
        &self,
        positions: &BTreeMap<AccountId, Position>,
        market: MarketSnapshot,
        limits: Limits,
        now: OffsetDateTime,
    ) -> (Inputs, LeftOut) {
        let mut accounts = Vec::with_capacity(self.accounts.len());
        let mut left_out = LeftOut::default();
        for state in self.accounts.values() {
            let id = state.setup.id;
            let Some(position) = positions.get(&id) else {
                left_out.unreconciled.push((id, "not on the ledger".to_string()));
                continue;
            };
            if position.frozen {
                left_out.frozen.push(id);
                continue;
            }
            if let Some(why) = self.mismatch(state, position) {
                left_out.unreconciled.push((id, why));
                continue;
            }
            accounts.push(Account {
                id,
                household: state.setup.household.clone(),
                kind: state.setup.kind,
                ips: state.setup.ips.clone(),
                cash: position.cash,
                lots: state.setup.lots.clone(),
                flows: Vec::new(),
                last_rebalanced: state.setup.last_rebalanced,
                // Never decided: counts as decided under the current IPS, so
                // that onboarding does not look like an IPS change.
                ips_version_applied: state
                    .ips_version_applied
                    .or_else(|| self.ips(&state.setup.ips).map(|i| i.version)),
                manual_request: false,
                sell_order: state.setup.sell_order.clone(),
            });
        }
        let inputs = Inputs {
            assets: self.assets.clone(),
            models: self.models.clone(),
            ips: self.ips.clone(),
            accounts,
            market,
            recent_trades: self.recent.clone(),
            limits,
            now,
        };
        (inputs, left_out)
    }

    fn mismatch(&self, state: &AccountState, position: &Position) -> Option<String> {
        let mut held: BTreeMap<&str, Decimal> = BTreeMap::new();
        for lot in &state.setup.lots {
            *held.entry(lot.asset.as_str()).or_default() += lot.quantity;
        }
        for asset in &self.assets {
            let book = held.get(asset.id.as_str()).copied().unwrap_or_default();
            let ledger = position.units.get(&asset.id).copied().unwrap_or_default();
            if book != ledger {
                return Some(format!("{}: lots hold {book}, the ledger {ledger}", asset.id));
            }
        }
        None
    }
}
