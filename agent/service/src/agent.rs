//! The agent: opens its log, index and book, recovers what a crash left
//! open, and runs cycles. One cycle, in order (RELIABILITY.md):
//!
//! 1. **ingest** prices (feed + venue) and every account's position;
//! 2. **decide** with the engine;
//! 3. **record** every decision, then fsync (the barrier): nothing goes
//!    on-chain that is not first a signed, durable record;
//! 4. **settle**: batches that fit the block gas limit, each carrying the
//!    checkpoint that covers its decisions; each transaction is signed with
//!    an explicit nonce and recorded (fsync) *before* it is broadcast; its
//!    outcome is read from the chain and recorded;
//! 5. **anchor** a checkpoint every N records or T seconds;
//! 6. **index** the new records.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, I256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use ballast_audit::{
    Index, KeyRing, Kind, Log, MerkleStore, Record, Signer, Timestamp, Validity,
    body::{
        ApprovalGranted, ApprovalRejected, CheckpointAnchored, Fill, Halt, HaltCause, IpsRegistered, KeyRotation, SettlementConfirmed,
        SettlementFailed, SettlementRefused, SettlementSubmitted,
    },
};
use ballast_chain::{
    bindings::{AuditRegistry, PortfolioLedger},
    deploy,
    manifest::Manifest,
    registry::RegistryReader,
    settle::{self, Batch, Checkpoint, LegIntent},
    submit::{self, Outcome, SignedSettlement},
};
use ballast_engine::{Decision, Status, types::Side};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::{
    api, approvals,
    book::{Book, OpeningBook},
    config::{self, Config},
    crash,
    error::{Error, Result},
    ingest,
};


/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CycleReport {
    pub cycle: u64,
    /// Accounts in the book.
    pub accounts: usize,
    /// Accounts left out because their lots do not match the ledger.
    pub unreconciled: usize,
    /// Accounts left out because the ledger's guardian froze them.
    pub frozen: usize,
    pub decided: usize,
    /// Decisions written to the log (quiet ones are not; see `record_no_action_every_s`).
    pub recorded: usize,
    /// Decisions with trades to settle now.
    pub trading: usize,
    /// Decisions with trades waiting for approval or review.
    pub queued: usize,
    /// Decisions paused by a market circuit breaker.
    pub paused: usize,
    /// Decisions with at least one halted asset.
    pub halted: usize,
    pub trades: usize,
    pub batches: usize,
    pub failed_batches: usize,
    /// Accounts whose legs the ledger refused while their batch was
    /// planned (cash or units short, a frozen account): left out, recorded
    /// as `settlement_refused`.
    pub refused: usize,
    pub legs: usize,
    pub gas_used: u64,
    /// Cash value crossed between accounts at the feed price.
    pub crossed_value: Decimal,
    /// Cash value traded on the venue.
    pub venue_value: Decimal,
    /// Size of the checkpoint anchored this cycle (by a batch or on its own).
    pub anchored: Option<u64>,
    /// Records in the log after the cycle.
    pub records: u64,
    /// Advisors' verdicts recorded this cycle.
    pub approved: usize,
    pub rejected: usize,
    pub skipped: Option<String>,
    pub elapsed_ms: u64,
    /// Where the time went, in milliseconds, by phase.
    pub phases: Phases,
}

/// Milliseconds per phase of a cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    pub ingest_ms: u64,
    pub decide_ms: u64,
    pub record_ms: u64,
    pub settle_ms: u64,
    pub anchor_ms: u64,
    pub index_ms: u64,
}

/// Files in the data folder.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.log")
}

pub fn index_path(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

pub fn keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys.json")
}

/// A running agent.
pub struct Agent {
    config: Config,
    manifest: Manifest,
    settler: PrivateKeySigner,
    provider: DynProvider,
    log: Log,
    tree: MerkleStore,
    index: Index,
    book: Book,
    /// Size of the newest checkpoint known to be on-chain.
    anchored_size: u64,
    last_anchor: Instant,
    cycles: u64,
    /// What the API serves: metrics and a snapshot of the book.
    shared: api::Shared,
    /// Records appended since the last [`Agent::commit`], in order: the
    /// index's next entries (it holds every record before them).
    unindexed: Vec<Record>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("records", &self.log.len()).field("cycles", &self.cycles).finish_non_exhaustive()
    }
}

/// Where an appended record is: what the cycle needs of it after the book.
#[derive(Debug, Clone, Copy)]
struct Appended {
    seq: u64,
    hash: ballast_audit::Hash,
}

fn unix_seconds(t: Timestamp) -> u64 {
    (t.unix_nanos() / 1_000_000_000) as u64
}

fn secs_to_timestamp(s: u64) -> Result<Timestamp> {
    Timestamp::from_unix_nanos(i128::from(s) * 1_000_000_000).map_err(|e| Error::Chain(format!("time {s}: {e}")))
}

impl Agent {
    /// Opens everything and recovers: reads the keys, checks the audit key
    /// is registered on-chain, verifies and replays the log into the book,
    /// catches the index up, resolves open submissions from the chain.
    pub async fn open(config: Config) -> Result<Self> {
        crash::check_env().map_err(Error::NotReady)?;
        let manifest = Manifest::read(&config.chain.manifest)?;
        let rpc_url = config.chain.rpc_url.clone().unwrap_or_else(|| manifest.rpc_url.clone());
        let settler = config.keys.settler.evm_signer(manifest.chain_id)?;
        let audit = config.keys.audit.audit_signer()?;
        let provider = deploy::provider(&rpc_url, settler.clone())?;
        let chain_id = provider.get_chain_id().await.map_err(|e| Error::Chain(format!("{rpc_url}: {e}")))?;
        if chain_id != manifest.chain_id {
            return Err(Error::NotReady(format!("{rpc_url} is chain {chain_id}, the manifest says {}", manifest.chain_id)));
        }
        let keyring = registered_keys(&rpc_url, &manifest, &audit).await?;
        let data_dir = config.agent.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| Error::Io { op: "creating", path: data_dir.clone(), source })?;
        write_keys(&keys_path(&data_dir), &keyring)?;

        let policy = config::sync_policy(&config.agent.fsync).expect("validated");
        let key_id = audit.key_id().to_owned();
        let (log, report, verified) = Log::open_reading(log_path(&data_dir), audit, policy, keyring)?;
        check_rotation(&verified.records, &key_id, Timestamp::now())?;
        if let Some(copy) = &report.torn_copy {
            tracing::warn!(target: "ballast::recover", saved = %copy.display(), "cut a torn record off the log's tail");
        }
        let opening = OpeningBook::load(&config.agent.book)?;
        let mut book = Book::new(opening);
        for record in &verified.records {
            book.apply(record)?;
        }
        let (index, corrupt) = Index::open_or_replace(index_path(&data_dir), log_path(&data_dir))?;
        if let Some(aside) = corrupt {
            tracing::warn!(target: "ballast::recover", saved = %aside.display(), "the index was corrupt: moved aside, rebuilding it from the log");
        }
        let indexed = index.indexed()?;
        if indexed > verified.records.len() as u64 {
            return Err(Error::NotReady(format!(
                "the index holds {indexed} records, the log {}: rebuild it with `ballast audit reindex`",
                verified.records.len()
            )));
        }
        index.apply_all(verified.records.iter().zip(verified.spans.iter().copied()).skip(indexed as usize))?;
        index.flush()?;
        let reader = RegistryReader::connect(&rpc_url, manifest.chain_id, manifest.contracts.audit_registry).await?;
        let anchored_size = reader.anchors().await?.last().map(|(size, _)| *size).unwrap_or(0);
        tracing::info!(
            target: "ballast::recover",
            records = verified.records.len(),
            accounts = book.accounts().count(),
            open_submissions = book.open_submissions().len(),
            anchored = anchored_size,
            "opened"
        );
        let snapshot = std::sync::Arc::new(book.clone());
        let mut agent = Agent {
            config,
            manifest,
            settler,
            provider,
            log,
            tree: verified.tree,
            index,
            book,
            anchored_size,
            last_anchor: Instant::now(),
            cycles: 0,
            unindexed: Vec::new(),
            shared: std::sync::Arc::new(std::sync::RwLock::new(api::Status {
                metrics: api::Metrics::default(),
                // Replaced by `publish` below, once recovery has run.
                book: snapshot,
            })),
        };
        agent.register_ips()?;
        agent.recover().await?;
        agent.commit()?;
        agent.publish(None);
        Ok(agent)
    }

    /// Replaces what the API serves: the book's snapshot and the gauges;
    /// adds a cycle's counts when there is one.
    fn publish(&self, cycle: Option<&CycleReport>) {
        let mut status = self.shared.write().expect("status lock");
        let m = &mut status.metrics;
        if let Some(c) = cycle {
            m.cycles_total += 1;
            m.last_cycle_seconds = c.elapsed_ms as f64 / 1000.0;
            m.accounts_decided_total += c.decided as u64;
            m.trades_total += c.trades as u64;
            m.batches_settled_total += c.batches as u64;
            m.batches_failed_total += c.failed_batches as u64;
            m.settlements_refused_total += c.refused as u64;
            m.gas_used_total += c.gas_used;
            m.halts_total += c.paused as u64 + u64::from(c.skipped.is_some());
            if c.skipped.is_none() {
                m.accounts_unreconciled = c.unreconciled as u64;
                m.accounts_frozen = c.frozen as u64;
            }
            m.last_error = None;
        }
        m.records = self.log.len();
        m.anchored_size = self.anchored_size;
        m.approvals_waiting = self.book.awaiting().len() as u64;
        m.open_submissions = self.book.open_submissions().len() as u64;
        status.book = std::sync::Arc::new(self.book.clone());
    }

    /// The API's view of the agent.
    pub fn shared(&self) -> api::Shared {
        self.shared.clone()
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn book(&self) -> &Book {
        &self.book
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.agent.data_dir
    }

    pub fn records(&self) -> u64 {
        self.log.len()
    }

    /// Appends one record, and applies it to the book and the Merkle tree.
    fn append<B: Serialize + Sync + ?Sized>(&mut self, kind: Kind, body: &B) -> Result<Appended> {
        Ok(self.append_all(kind, &[body])?.pop().expect("one record per body"))
    }

    /// Appends records of one `kind`, in one write with their signatures
    /// made in parallel ([`Log::append_batch`]), and applies each to the
    /// book and the Merkle tree. The records wait in `unindexed` for
    /// [`Agent::commit`].
    fn append_all<B: Serialize + Sync + ?Sized>(&mut self, kind: Kind, bodies: &[&B]) -> Result<Vec<Appended>> {
        let time = Timestamp::now();
        let entries: Vec<(Kind, &B, Timestamp)> = bodies.iter().map(|body| (kind, *body, time)).collect();
        let records = self.log.append_batch(&entries)?;
        let mut appended = Vec::with_capacity(records.len());
        for record in records {
            self.tree.push(record.merkle_leaf());
            self.book.apply(&record)?;
            appended.push(Appended { seq: record.seq, hash: record.hash });
            self.unindexed.push(record);
        }
        Ok(appended)
    }

    /// Makes what was appended durable and indexes it.
    fn commit(&mut self) -> Result<()> {
        self.log.barrier()?;
        if !self.unindexed.is_empty() {
            let spans = self.log.spans();
            self.index.apply_all(self.unindexed.iter().map(|r| (r, spans[r.seq as usize])))?;
            self.unindexed.clear();
            crash::point("index_applied");
            self.index.flush()?;
            crash::point("index_flushed");
        }
        Ok(())
    }

    /// An `ips_registered` record for every account's IPS version not yet in the log.
    fn register_ips(&mut self) -> Result<()> {
        let mut missing = Vec::new();
        for a in self.book.accounts() {
            let ips = self.book.ips(&a.setup.ips).expect("the book checks its references");
            if !self.book.is_registered(a.setup.id, ips) {
                let hash = hex::decode(&ips.document_hash)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| Error::Log(format!("IPS {} document_hash is not 32 bytes of hex", ips.id)))?;
                missing.push(IpsRegistered {
                    account: a.setup.id,
                    ips_id: ips.id.clone(),
                    version: ips.version,
                    document_hash: hash,
                    effective: Timestamp::now(),
                });
            }
        }
        for body in &missing {
            self.append(Kind::IpsRegistered, body)?;
        }
        Ok(())
    }

    /// Resolves every open submission from the chain: settled → confirmed;
    /// still pending with its nonce free → the same bytes again; nonce taken
    /// by another transaction → the same batch signed again; reverted → failed.
    pub async fn recover(&mut self) -> Result<()> {
        let mut open: Vec<SignedSettlement> =
            self.book.open_submissions().values().filter_map(|o| o.attempts.last()).map(|a| self.signed_of(a)).collect();
        if open.is_empty() {
            return Ok(());
        }
        // In nonce order: a node holds a later nonce until the earlier one
        // arrives.
        open.sort_by_key(|s| s.nonce);
        for signed in &open {
            tracing::info!(target: "ballast::recover", batch_id = %signed.batch_id, nonce = signed.nonce, "resolving an open submission");
        }
        self.send_in_turn(&mut open).await?;
        crash::point("recovery");
        for signed in &open {
            self.finish(signed, self.settle_timeout()).await?;
        }
        self.log.barrier()?;
        Ok(())
    }

    /// How long a broadcast settlement may take to be mined and confirmed
    /// before the cycle moves on (it is resolved at the next cycle or start).
    fn settle_timeout(&self) -> Duration {
        Duration::from_secs(self.config.agent.settle_timeout_s)
    }

    fn signed_of(&self, s: &SettlementSubmitted) -> SignedSettlement {
        SignedSettlement {
            batch_id: B256::from(s.batch_id),
            tx_hash: B256::from(s.tx_hash),
            nonce: s.nonce,
            raw: s.raw_tx.clone().into(),
            from: self.settler.address(),
        }
    }

    /// Signs the batch of `signed` again with `nonce` at the node's fees of
    /// now (same batch id, so the ledger still settles it at most once) and
    /// records the new attempt, with an fsync, before it can be sent.
    async fn sign_again(&mut self, signed: &SignedSettlement, nonce: u64) -> Result<SignedSettlement> {
        let ledger = self.manifest.contracts.portfolio_ledger;
        let last = self
            .book
            .open_submissions()
            .get(&signed.batch_id.0)
            .and_then(|o| o.attempts.last().cloned())
            .ok_or_else(|| Error::Log(format!("no submission of batch {}", signed.batch_id)))?;
        let batch = batch_from_raw(&last.raw_tx)?;
        let again = submit::sign_settlement(&self.provider, &self.settler, ledger, &batch, nonce, 0).await?;
        self.append(Kind::SettlementSubmitted, &SettlementSubmitted { nonce, tx_hash: again.tx_hash.0, raw_tx: again.raw.to_vec(), ..last })?;
        self.log.barrier()?;
        Ok(again)
    }

    /// Broadcasts `signed` (recorded, in nonce order) one at a time: each
    /// once the one before is mined (after one still pending at the settle
    /// timeout, the rest at once). Sent all at once, the last of a cycle's
    /// sixteen settlements now and then stayed in Anvil's pool, its nonce
    /// next and its fee cap over the base fee, until its timeout (4 of 24
    /// runs of `ballast bench cycle`): Anvil's automine mines a block of
    /// what its pool holds when a transaction comes in, and one left out of
    /// that block waits for the next to come in. On a chain with blocks of
    /// its own, two batches under half a block each could have shared one;
    /// in turn each waits for a block of its own.
    ///
    /// One the node refuses as under the block's base fee (fees rose since
    /// it was signed, say while the agent was down) is signed again with
    /// the same nonce at today's fees, recorded and sent (a few times at
    /// most); `signed` then holds the new attempt.
    async fn send_in_turn(&mut self, signed: &mut [SignedSettlement]) -> Result<()> {
        const REPRICES: usize = 3;
        let ledger = self.manifest.contracts.portfolio_ledger;
        // Once one is still pending at its timeout, the rest go at once:
        // none of them can be mined before it anyway.
        let mut paced = true;
        for i in 0..signed.len() {
            let mut repriced = 0;
            loop {
                match submit::broadcast(&self.provider, &signed[i]).await {
                    Ok(()) => break,
                    Err(e) if submit::is_under_base_fee(&e) && repriced < REPRICES => {
                        repriced += 1;
                        tracing::warn!(target: "ballast::settle", tx = %signed[i].tx_hash, error = %e, "under the base fee; signed again at today's fees");
                        signed[i] = self.sign_again(&signed[i], signed[i].nonce).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if paced && i + 1 < signed.len() {
                paced = submit::await_outcome(&self.provider, ledger, &signed[i], self.settle_timeout()).await? != Outcome::Pending;
            }
        }
        Ok(())
    }

    /// Waits for a broadcast settlement and records what became of it.
    /// Returns the execution of a settled batch.
    async fn finish(&mut self, signed: &SignedSettlement, timeout: Duration) -> Result<Option<(SettlementConfirmed, submit::Execution)>> {
        let ledger = self.manifest.contracts.portfolio_ledger;
        match submit::await_outcome(&self.provider, ledger, signed, timeout).await? {
            Outcome::Settled { block, block_hash, gas_used } => {
                crash::point("receipt_seen");
                if !self.confirmed(block, timeout).await? {
                    tracing::info!(target: "ballast::settle", tx = %signed.tx_hash, block, "mined, waiting for confirmations; resolved at the next cycle");
                    return Ok(None);
                }
                let execution = submit::execution(&self.provider, ledger, signed.tx_hash).await?;
                let body = SettlementConfirmed {
                    batch_id: signed.batch_id.0,
                    tx_hash: signed.tx_hash.0,
                    block,
                    block_hash: block_hash.0,
                    block_time: execution.block_time,
                    gas_used,
                    fills: self.fills(&execution)?,
                };
                self.append(Kind::SettlementConfirmed, &body)?;
                crash::point("confirmation_recorded");
                Ok(Some((body, execution)))
            }
            Outcome::SettledElsewhere => {
                // An earlier attempt of the same batch settled it: record that one.
                let attempts = self.book.open_submissions().get(&signed.batch_id.0).map(|o| o.attempts.clone()).unwrap_or_default();
                for attempt in attempts.iter().rev().filter(|a| a.tx_hash != signed.tx_hash.0) {
                    let earlier = self.signed_of(attempt);
                    if let Outcome::Settled { .. } = submit::resolve(&self.provider, ledger, &earlier).await? {
                        return Box::pin(self.finish(&earlier, timeout)).await;
                    }
                }
                Err(Error::Log(format!("batch {} is settled on-chain by a transaction this log does not hold", signed.batch_id)))
            }
            Outcome::Reverted { block } => {
                let why = submit::revert_reason(&self.provider, signed, block).await;
                tracing::warn!(target: "ballast::settle", batch_id = %signed.batch_id, block, why, "settlement reverted");
                let reason = format!("reverted in block {block}: {why}");
                self.append(Kind::SettlementFailed, &SettlementFailed { batch_id: signed.batch_id.0, tx_hash: signed.tx_hash.0, reason })?;
                Ok(None)
            }
            Outcome::NonceTaken => {
                let nonce = submit::next_nonce(&self.provider, self.settler.address()).await?;
                let mut again = [self.sign_again(signed, nonce).await?];
                self.send_in_turn(&mut again).await?;
                Box::pin(self.finish(&again[0], timeout)).await
            }
            Outcome::Pending => {
                tracing::warn!(target: "ballast::settle", tx = %signed.tx_hash, "not mined in time; resolved at the next cycle");
                Ok(None)
            }
        }
    }

    /// Whether `block` has `chain.confirmations` blocks (itself included)
    /// within `timeout`.
    async fn confirmed(&self, block: u64, timeout: Duration) -> Result<bool> {
        let needed = block + self.config.chain.confirmations.saturating_sub(1);
        let started = Instant::now();
        loop {
            let latest = self.provider.get_block_number().await.map_err(|e| Error::Chain(format!("block number: {e}")))?;
            if latest >= needed {
                return Ok(true);
            }
            if started.elapsed() >= timeout {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn fills(&self, execution: &submit::Execution) -> Result<Vec<Fill>> {
        let m = &self.manifest;
        execution
            .assets
            .iter()
            .map(|e| {
                let asset = m
                    .assets
                    .get(usize::from(e.asset))
                    .ok_or_else(|| Error::Chain(format!("fill of unknown asset {}", e.asset)))?;
                let venue_abs = ingest::to_decimal(e.venueQuantity.unsigned_abs(), asset.decimals)?;
                let venue = if e.venueQuantity < I256::ZERO { -venue_abs } else { venue_abs };
                Ok(Fill {
                    asset: asset.symbol.clone(),
                    crossed: ingest::to_decimal(e.crossedQuantity, asset.decimals)?.to_string(),
                    venue: venue.to_string(),
                    buy_price: ingest::to_decimal(e.buyAveragePrice, asset.feed_decimals)?.to_string(),
                    sell_price: ingest::to_decimal(e.sellAveragePrice, asset.feed_decimals)?.to_string(),
                })
            })
            .collect()
    }

    /// One cycle: ingest, decide, record, settle, anchor, index.
    pub async fn cycle(&mut self) -> Result<CycleReport> {
        let started = Instant::now();
        self.cycles += 1;
        let mut report = CycleReport { cycle: self.cycles, accounts: self.book.accounts().count(), ..CycleReport::default() };
        // Anything a previous cycle left unresolved first.
        self.recover().await?;
        let ledger = PortfolioLedger::new(self.manifest.contracts.portfolio_ledger, self.provider.clone());
        if ledger.paused().call().await.map_err(|e| Error::Chain(format!("ledger paused(): {e}")))? {
            let detail = "the ledger is paused by its guardian: no decisions, no settlement".to_string();
            tracing::warn!(target: "ballast::cycle", "{detail}");
            self.append(Kind::Halt, &Halt { cause: HaltCause::CircuitBreaker, detail: detail.clone() })?;
            self.commit()?;
            report.skipped = Some(detail);
            report.records = self.log.len();
            report.elapsed_ms = started.elapsed().as_millis() as u64;
            self.publish(Some(&report));
            return Ok(report);
        }

        // Advisors' verdicts, then the approved trades, before deciding again.
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| Error::Chain(format!("latest block: {e}")))?
            .ok_or_else(|| Error::Chain("no latest block".into()))?;
        self.take_verdicts(block.header.timestamp, &mut report).await?;

        // Ingest.
        let mut phase = Instant::now();
        let lap = |phase: &mut Instant| {
            let ms = phase.elapsed().as_millis() as u64;
            *phase = Instant::now();
            ms
        };
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| Error::Chain(format!("latest block: {e}")))?
            .ok_or_else(|| Error::Chain("no latest block".into()))?;
        let now = time::OffsetDateTime::from_unix_timestamp(block.header.timestamp as i64)
            .map_err(|e| Error::Chain(format!("block time: {e}")))?;
        let market = ingest::market(&self.provider, &self.manifest).await?;
        let ids: Vec<u64> = self.book.accounts().map(|a| a.setup.id).collect();
        let positions = ingest::positions(&self.provider, &self.manifest, &ids).await?;
        let (inputs, left_out) = self.book.inputs(&positions, market, self.config.limits(), now);
        for (account, why) in &left_out.unreconciled {
            tracing::warn!(target: "ballast::cycle", account, why, "left out: lots and ledger disagree");
        }
        if !left_out.frozen.is_empty() {
            tracing::warn!(target: "ballast::cycle", accounts = ?left_out.frozen, "left out: frozen on the ledger by its guardian");
        }
        report.unreconciled = left_out.unreconciled.len();
        report.frozen = left_out.frozen.len();

        report.phases.ingest_ms = lap(&mut phase);

        // Decide (CPU work, off the async threads).
        let (inputs, decided) = tokio::task::spawn_blocking(move || {
            let decided = ballast_engine::decide(&inputs);
            (inputs, decided)
        })
        .await
        .map_err(|e| Error::Log(format!("the engine task failed: {e}")))?;
        let decisions = match decided {
            Ok(d) => d,
            Err(e) => {
                // Keep what the engine was given, so the failure can be replayed with `ballast plan`.
                let path = self.config.agent.data_dir.join(format!("engine-inputs-cycle-{}.json", self.cycles));
                let saved = serde_json::to_vec_pretty(&inputs).ok().and_then(|b| std::fs::write(&path, b).ok());
                tracing::error!(target: "ballast::cycle", error = %e, inputs = %path.display(), saved = saved.is_some(), "the engine refused the inputs");
                return Err(e.into());
            }
        };

        report.phases.decide_ms = lap(&mut phase);

        // Record, then the barrier.
        let mut legs = Vec::new();
        let mut decision_of: BTreeMap<u64, u64> = BTreeMap::new();
        let mut pause_detail = None;
        let now_wall = Timestamp::now();
        let quiet_window_ns = i128::from(self.config.agent.record_no_action_every_s) * 1_000_000_000;
        report.decided += decisions.len();
        let recorded: Vec<&Decision> = decisions.iter().filter(|d| !self.quiet(d, now_wall, quiet_window_ns)).collect();
        let records = self.append_all(Kind::Decision, &recorded)?;
        for (d, record) in recorded.into_iter().zip(records) {
            report.recorded += 1;
            if d.status == Status::Paused {
                report.paused += 1;
                pause_detail.get_or_insert_with(|| pause_reason(d));
            }
            report.trading += usize::from(!d.trades.is_empty());
            report.queued += usize::from(!d.queued.is_empty());
            report.halted += usize::from(!d.halts.is_empty());
            if !d.trades.is_empty() {
                decision_of.insert(d.account, record.seq);
                legs.extend(self.legs_of(d, B256::from(record.hash))?);
                report.trades += d.trades.len();
            }
        }
        if let Some(detail) = pause_detail {
            self.append(Kind::Halt, &Halt { cause: HaltCause::CircuitBreaker, detail })?;
        }
        crash::point("decisions_appended");
        self.log.barrier()?;
        crash::point("decisions_synced");

        report.phases.record_ms = lap(&mut phase);

        // Settle.
        if !legs.is_empty() {
            self.settle(&legs, &decision_of, block.header.timestamp, &mut report).await?;
        }

        report.phases.settle_ms = lap(&mut phase);

        // Anchor.
        let due = self.log.len() - self.anchored_size >= self.config.agent.anchor_every_records
            || self.last_anchor.elapsed() >= Duration::from_secs(self.config.agent.anchor_every_s);
        if due && self.log.len() > self.anchored_size {
            report.anchored = Some(self.anchor().await?);
        }

        report.phases.anchor_ms = lap(&mut phase);

        // Index.
        self.commit()?;
        report.phases.index_ms = lap(&mut phase);
        report.records = self.log.len();
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        self.publish(Some(&report));
        tracing::info!(
            target: "ballast::cycle",
            cycle = report.cycle,
            decided = report.decided,
            trading = report.trading,
            paused = report.paused,
            frozen = report.frozen,
            batches = report.batches,
            gas = report.gas_used,
            records = report.records,
            ms = report.elapsed_ms,
            "cycle done"
        );
        Ok(report)
    }

    /// Records the advisors' verdicts waiting in the inbox and settles the
    /// approved trades, in batches of their own (a stale approval that the
    /// ledger refuses fails only its own batch).
    async fn take_verdicts(&mut self, chain_now: u64, report: &mut CycleReport) -> Result<()> {
        let data_dir = self.config.agent.data_dir.clone();
        let mut taken = Vec::new();
        let mut legs = Vec::new();
        let mut order_of = BTreeMap::new();
        for (path, verdict) in approvals::waiting(&data_dir)? {
            if let Err(reason) = approvals::check(&self.book, &verdict) {
                approvals::refuse(&path, &reason)?;
                continue;
            }
            let decision = self.book.awaiting()[&verdict.account].clone();
            let record = if verdict.approve {
                report.approved += 1;
                self.append(
                    Kind::ApprovalGranted,
                    &ApprovalGranted { account: verdict.account, decision_seq: decision.seq, decision: decision.hash, approver: verdict.approver.clone() },
                )?
            } else {
                report.rejected += 1;
                self.append(
                    Kind::ApprovalRejected,
                    &ApprovalRejected {
                        account: verdict.account,
                        decision_seq: decision.seq,
                        decision: decision.hash,
                        approver: verdict.approver.clone(),
                        reason: verdict.reason.clone(),
                    },
                )?
            };
            tracing::info!(target: "ballast::approvals", account = verdict.account, decision = decision.seq, approve = verdict.approve, approver = %verdict.approver, "verdict recorded");
            if verdict.approve && !decision.decision.queued.is_empty() {
                let approved = Decision { trades: decision.decision.queued.clone(), ..decision.decision.clone() };
                legs.extend(self.legs_of(&approved, B256::from(record.hash))?);
                order_of.insert(verdict.account, record.seq);
                report.trades += approved.trades.len();
            }
            taken.push(path);
        }
        if taken.is_empty() {
            return Ok(());
        }
        self.log.barrier()?;
        for path in taken {
            std::fs::remove_file(&path).map_err(|source| Error::Io { op: "removing", path, source })?;
        }
        if !legs.is_empty() {
            self.settle(&legs, &order_of, chain_now, report).await?;
        }
        Ok(())
    }

    /// Whether `d` may go unrecorded: nothing to do, nothing halted or
    /// queued, nothing of the account's waiting on an older decision, and a
    /// decision of the account recorded within the window. The log then
    /// holds every action and, per account, at least one "nothing to do"
    /// a window, instead of one per cycle.
    fn quiet(&self, d: &Decision, now: Timestamp, window_ns: i128) -> bool {
        d.status == Status::NoAction
            && d.halts.is_empty()
            && d.queued.is_empty()
            && window_ns > 0
            && !self.book.awaiting().contains_key(&d.account)
            && !self.book.has_pending(d.account)
            && self.book.last_recorded(d.account).is_some_and(|t| now.unix_nanos() - t.unix_nanos() < window_ns)
    }

    /// The legs of a decision's trades, in ledger quanta.
    fn legs_of(&self, d: &Decision, record_hash: B256) -> Result<Vec<LegIntent>> {
        d.trades
            .iter()
            .map(|t| {
                let asset = self
                    .manifest
                    .asset(&t.asset)
                    .ok_or_else(|| Error::Log(format!("account {} trades {}, which the ledger does not list", d.account, t.asset)))?;
                let per_unit = Decimal::from_i128_with_scale(10i128.pow(u32::from(asset.decimals)), 0)
                    / Decimal::from_i128_with_scale(asset.quantum as i128, 0);
                let quanta = t.quantity * per_unit;
                if quanta.fract() != Decimal::ZERO {
                    return Err(Error::Log(format!("{} {} is not a whole number of ledger quanta", t.quantity, t.asset)));
                }
                let quanta = i64::try_from(quanta).map_err(|_| Error::Log(format!("{} {} is out of range", t.quantity, t.asset)))?;
                let quanta = if t.side == Side::Sell { -quanta } else { quanta };
                Ok(LegIntent { account: d.account, asset: asset.index, quanta, record_hash })
            })
            .collect()
    }

    async fn settle(&mut self, legs: &[LegIntent], decision_of: &BTreeMap<u64, u64>, chain_now: u64, report: &mut CycleReport) -> Result<()> {
        let ledger = self.manifest.contracts.portfolio_ledger;
        let checkpoint = Checkpoint { size: self.tree.size(), root: B256::from(self.tree.root()) };
        let deadline = chain_now + self.config.agent.batch_deadline_s;
        let settle::Planned { batches, refused, estimates, block_gas_limit } =
            settle::plan_batches(&self.provider, ledger, legs, checkpoint, deadline, self.config.agent.max_slippage_bps).await?;
        tracing::debug!(target: "ballast::cycle", legs = legs.len(), batches = batches.len(), estimates, "settlement planned");
        // The ledger refused these accounts' legs: the rest settle without
        // them, and their decisions' trades end here (the next cycle decides
        // them again from the ledger's positions).
        for r in &refused {
            let decisions: Vec<u64> = decision_of.get(&r.account).copied().into_iter().collect();
            tracing::warn!(target: "ballast::cycle", account = r.account, ?decisions, reason = %r.reason, "legs left out of settlement");
            self.append(Kind::SettlementRefused, &SettlementRefused { account: r.account, decisions, reason: r.reason.clone() })?;
            report.refused += 1;
            // Counted as sent when they were decided: one leg per trade.
            report.trades = report.trades.saturating_sub(legs.iter().filter(|l| l.account == r.account).count());
        }
        // Sign every batch with consecutive nonces, record them all (one
        // fsync), then broadcast them one after another.
        let mut nonce = submit::next_nonce(&self.provider, self.settler.address()).await?;
        let terms = submit::Terms::with_fees(&self.provider, self.manifest.chain_id, block_gas_limit).await?;
        let mut signed = Vec::with_capacity(batches.len());
        for (ahead, batch) in (0..).zip(&batches) {
            let s = submit::sign_settlement_on(&self.provider, &terms, &self.settler, ledger, batch, nonce, ahead, None).await?;
            crash::point("transaction_signed");
            nonce += 1;
            // One order per account (Batch::build).
            let accounts: Vec<u64> = batch.orders.iter().map(|o| o.account).collect();
            let decisions = accounts.iter().filter_map(|a| decision_of.get(a).copied()).collect();
            self.append(
                Kind::SettlementSubmitted,
                &SettlementSubmitted { batch_id: s.batch_id.0, tx_hash: s.tx_hash.0, nonce: s.nonce, raw_tx: s.raw.to_vec(), accounts, decisions },
            )?;
            report.legs += batch.leg_count();
            signed.push(s);
        }
        self.log.barrier()?;
        crash::point("submission_recorded");
        self.send_in_turn(&mut signed).await?;
        crash::point("broadcast_sent");
        for s in &signed {
            match self.finish(s, self.settle_timeout()).await? {
                Some((confirmed, execution)) => {
                    report.batches += 1;
                    report.gas_used += confirmed.gas_used;
                    self.anchored_size = self.anchored_size.max(checkpoint.size);
                    report.anchored = Some(checkpoint.size);
                    for e in &execution.assets {
                        let asset = &self.manifest.assets[usize::from(e.asset)];
                        let crossed = ingest::to_decimal(e.crossedQuantity, asset.decimals)?;
                        let price = ingest::to_decimal(e.feedPrice, asset.feed_decimals)?;
                        report.crossed_value += (crossed * price).round_dp(2);
                        report.venue_value += ingest::to_decimal(e.venueCash, self.manifest.cash.decimals)?;
                    }
                }
                None => report.failed_batches += 1,
            }
        }
        Ok(())
    }

    /// Anchors the checkpoint over the whole log and records it.
    async fn anchor(&mut self) -> Result<u64> {
        // Only durable records are anchored: a checkpoint on-chain over
        // records a power cut could take back would make the log disagree
        // with the chain forever.
        self.log.barrier()?;
        let size = self.log.len();
        let root = self.tree.root_at(size).expect("the tree holds every record");
        crash::point("checkpoint_computed");
        let origin = ballast_audit::checkpoint::origin(self.manifest.chain_id, &self.manifest.contracts.audit_registry.to_string());
        let note = self.log.sign_checkpoint(&ballast_audit::Checkpoint { origin, size, root })?;
        let registry = AuditRegistry::new(self.manifest.contracts.audit_registry, self.provider.clone());
        let receipt = deploy::send(registry.anchor(size, B256::from(root)), "anchor").await?;
        crash::point("anchor_sent");
        let tx_hash = receipt.transaction_hash.0;
        let block = receipt.block_number.unwrap_or_default();
        self.append(Kind::CheckpointAnchored, &CheckpointAnchored { size, root, tx_hash, block, note: Some(note) })?;
        crash::point("anchor_recorded");
        self.anchored_size = size;
        self.last_anchor = Instant::now();
        self.shared.write().expect("status lock").metrics.last_anchor_unix = unix_seconds(Timestamp::now());
        tracing::info!(target: "ballast::anchor", size, tx = %receipt.transaction_hash, "anchored");
        Ok(size)
    }

    /// Hands the signing of audit records over to `new` from `valid_from`
    /// (rounded up to a whole second, at least two seconds ahead; default:
    /// the first such second, or when the new key's registered window
    /// opens if that is later): records a `key_rotation` signed by the key
    /// in use, and makes it durable. The new key must already be registered in the
    /// `AuditRegistry` for that time (a key admin's `registerAgentKey`).
    /// From then on the old key never starts the agent, and the new key
    /// does from `valid_from` (see `check_rotation`).
    pub async fn rotate_audit_key(&mut self, new: &Signer, valid_from: Option<Timestamp>) -> Result<Rotation> {
        let old_id = self.log.key_id().to_owned();
        if new.key_id() == old_id {
            return Err(Error::NotReady(format!("the new audit key {old_id} is the one in use")));
        }
        let rpc_url = self.config.chain.rpc_url.clone().unwrap_or_else(|| self.manifest.rpc_url.clone());
        let registry = self.manifest.contracts.audit_registry;
        let reader = RegistryReader::connect(&rpc_url, self.manifest.chain_id, registry).await?;
        let ring = registry_keyring(&reader).await?;
        let key = new.verifying_key();
        let Some(trusted) = ring.get(new.key_id()).filter(|t| t.key == key) else {
            return Err(Error::NotReady(format!(
                "the new audit key {} ({}) is not registered in the AuditRegistry at {registry}: a key admin registers it first with registerAgentKey",
                new.key_id(),
                hex::encode(key.to_bytes())
            )));
        };
        // Whole seconds, as the registry's windows are: the old key's window
        // then ends exactly at the hand-over. Two seconds ahead at least, so
        // the rotation record (stamped when appended) comes before it.
        let up = |t: Timestamp| unix_seconds(t) + u64::from(t.unix_nanos() % 1_000_000_000 != 0);
        let soon = unix_seconds(Timestamp::now()) + 3;
        let valid_from = secs_to_timestamp(match valid_from {
            Some(t) if up(t) < soon => return Err(Error::NotReady(format!("the hand-over time {t} is not two seconds ahead"))),
            Some(t) => up(t),
            None => trusted.validity.from.map_or(soon, |from| up(from).max(soon)),
        })?;
        if !trusted.validity.contains(valid_from) {
            return Err(Error::NotReady(format!("the new key's registered window does not cover {valid_from}")));
        }
        let body = KeyRotation { old_key_id: old_id.clone(), new_key_id: new.key_id().to_owned(), new_public_key: key.to_bytes(), valid_from };
        let appended = self.append(Kind::KeyRotation, &body)?;
        self.commit()?;
        let old = ring.get(&old_id).expect("the key in use is registered (checked at open)");
        tracing::info!(target: "ballast::keys", seq = appended.seq, old = %old_id, new = %new.key_id(), %valid_from, "audit key rotation recorded");
        Ok(Rotation { seq: appended.seq, body, old_key: old.key.to_bytes(), old_until: old.validity.until })
    }

    /// Anchors whatever is not yet anchored (at shutdown).
    pub async fn anchor_rest(&mut self) -> Result<Option<u64>> {
        if self.log.len() > self.anchored_size {
            let size = self.anchor().await?;
            self.commit()?;
            return Ok(Some(size));
        }
        Ok(None)
    }

    /// Serves the query API and metrics when `[api]` enables it; the bound
    /// address is logged and written to `api.addr` in the data folder.
    pub async fn start_api(&self) -> Result<Option<tokio::task::JoinHandle<()>>> {
        if !self.config.api.enabled {
            return Ok(None);
        }
        let listen = self.config.api.listen;
        let (addr, task) = api::serve(listen, self.shared(), self.index.clone())
            .await
            .map_err(|source| Error::Io { op: "binding the API to", path: listen.to_string().into(), source })?;
        let path = self.config.agent.data_dir.join("api.addr");
        std::fs::write(&path, addr.to_string()).map_err(|source| Error::Io { op: "writing", path, source })?;
        tracing::info!(target: "ballast::api", %addr, "API listening (GET /openapi.json lists the routes)");
        Ok(Some(task))
    }

    /// Runs cycles every `agent.cycle_interval_s` until `shutdown` resolves;
    /// a cycle in progress finishes first. Failures that a retry may cure
    /// (RPC, a reverted transaction) are logged and the next cycle tries
    /// again; integrity failures stop the agent.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let _api = self.start_api().await?;
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.agent.cycle_interval_s));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            match self.cycle().await {
                Ok(_) => {}
                Err(e) if !e.is_fatal() => {
                    tracing::error!(target: "ballast::cycle", error = %e, "cycle failed; retrying next cycle");
                    let mut status = self.shared.write().expect("status lock");
                    status.metrics.cycle_failures_total += 1;
                    status.metrics.last_error = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(target: "ballast::cycle", "shutting down");
        self.anchor_rest().await?;
        let _ = std::fs::remove_file(self.config.agent.data_dir.join("api.addr"));
        Ok(())
    }
}

fn pause_reason(d: &Decision) -> String {
    d.checks
        .iter()
        .find(|c| !c.passed && c.name.contains("breaker"))
        .or_else(|| d.checks.iter().find(|c| !c.passed))
        .map(|c| format!("{}: {}", c.name, c.detail))
        .unwrap_or_else(|| "automatic trading paused".into())
}

/// The batch a recorded settlement transaction carries.
fn batch_from_raw(raw: &[u8]) -> Result<Batch> {
    use alloy::{consensus::TxEnvelope, eips::Decodable2718, sol_types::SolCall};
    let envelope = TxEnvelope::decode_2718(&mut &raw[..]).map_err(|e| Error::Log(format!("recorded transaction: {e}")))?;
    let input = alloy::consensus::Transaction::input(&envelope);
    let call = PortfolioLedger::settleBatchCall::abi_decode(input).map_err(|e| Error::Log(format!("recorded settleBatch: {e}")))?;
    Ok(Batch { header: call.header, orders: call.orders, assets: call.assets, estimate: None })
}

/// The agent keys the registry holds, with their validity windows, as a key ring.
pub async fn registry_keyring(reader: &RegistryReader) -> Result<KeyRing> {
    let mut ring = KeyRing::new();
    for k in reader.keys().await? {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&k.public_key)
            .map_err(|e| Error::NotReady(format!("registered key {} is not Ed25519: {e}", hex::encode(k.public_key))))?;
        ring.add(key, Validity::new(Some(secs_to_timestamp(k.valid_from_s)?), Some(secs_to_timestamp(k.valid_until_s)?)))?;
    }
    Ok(ring)
}

/// The keys the registry trusts, as a key ring; the agent's own key must be
/// among them and valid now.
async fn registered_keys(rpc_url: &str, manifest: &Manifest, audit: &Signer) -> Result<KeyRing> {
    let reader = RegistryReader::connect(rpc_url, manifest.chain_id, manifest.contracts.audit_registry).await?;
    let ring = registry_keyring(&reader).await?;
    let now = Timestamp::now();
    let mine = audit.verifying_key();
    if ring.key_at(audit.key_id(), now).ok() != Some(&mine) {
        return Err(Error::NotReady(format!(
            "the audit key {} ({}) is not registered in the AuditRegistry at {} with a window covering now ({}s): \
             a key admin registers it with registerAgentKey",
            audit.key_id(),
            hex::encode(mine.to_bytes()),
            manifest.contracts.audit_registry,
            unix_seconds(now)
        )));
    }
    Ok(ring)
}

fn write_keys(path: &Path, ring: &KeyRing) -> Result<()> {
    let text = serde_json::to_string_pretty(ring).map_err(|e| Error::Log(format!("keys: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|source| Error::Io { op: "writing", path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Io { op: "renaming", path: path.into(), source })
}

/// Refuses to sign with `key_id` at `now` against the log's latest key
/// rotation: the old key at any time once the rotation is recorded (an
/// agent started with it before the hand-over would go on signing after
/// it, against the log's own record), the new key before the hand-over,
/// and any other key.
fn check_rotation(records: &[ballast_audit::Record], key_id: &str, now: Timestamp) -> Result<()> {
    let Some(r) = records.iter().rev().find(|r| r.kind == Kind::KeyRotation) else {
        return Ok(());
    };
    let rotation: KeyRotation = r.body_as().map_err(|e| Error::Log(format!("record {}: {e}", r.seq)))?;
    let (old, new, from) = (&rotation.old_key_id, &rotation.new_key_id, rotation.valid_from);
    let refusal = if key_id == old {
        format!("the audit key {old} was rotated to {new} from {from} (record {}): point [keys] audit at the new key", r.seq)
    } else if key_id == new && now < from {
        format!("the audit key {new} takes over from {old} at {from} (record {}): start the agent then", r.seq)
    } else if key_id != old && key_id != new {
        format!("the log hands signing to {new} (record {}), not to {key_id}: record a rotation first (`ballast keys rotate`)", r.seq)
    } else {
        return Ok(());
    };
    Err(Error::NotReady(refusal))
}

/// A key rotation the agent recorded.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The `key_rotation` record's seq.
    pub seq: u64,
    pub body: KeyRotation,
    /// The old key's public key and the end of its registered window
    /// (`None`: open): a key admin ends it at `valid_from`.
    pub old_key: [u8; 32],
    pub old_until: Option<Timestamp>,
}

/// Registers `signer`'s key in the registry, valid from an hour ago for a
/// year: what a key admin does before an agent first starts (the demo and
/// tests do it with the devnet's admin).
pub async fn register_audit_key(admin: &DynProvider, registry: Address, signer: &Signer) -> Result<()> {
    let now = unix_seconds(Timestamp::now());
    let r = AuditRegistry::new(registry, admin.clone());
    deploy::send(r.registerAgentKey(B256::from(signer.verifying_key().to_bytes()), now - 3_600, now + 366 * 86_400), "registerAgentKey")
        .await?;
    Ok(())
}
