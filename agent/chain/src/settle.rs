//! Settlement batches: legs grouped into one order per account, per-asset
//! totals declared, a batch id derived from the batch's contents, and batches
//! cut so that each fits the block gas limit.

use std::collections::BTreeMap;

use alloy::{
    primitives::{keccak256, Address, TxHash, B256},
    providers::{DynProvider, Provider},
    sol_types::SolValue,
};

use crate::{
    bindings::PortfolioLedger::{self, AssetTrade, BatchHeader, Leg, Order},
    deploy::send,
    error::CallContext,
    Error, Result,
};

/// Most legs the ledger takes in one batch (`PortfolioLedger.MAX_BATCH_LEGS`).
pub const MAX_BATCH_LEGS: usize = 4_096;

/// Share of the block gas limit one batch may use.
const BLOCK_GAS_SHARE_PERCENT: u64 = 90;

/// Gas limit = estimate × this / 100 + the pairs' accumulators: the
/// estimate is exact for the state and block time it ran on, and both move
/// before the block.
const GAS_HEADROOM_PERCENT: u64 = 125;

/// What one Uniswap pair may cost beyond its estimate: it writes its two
/// price accumulators only when the block's timestamp has moved since its
/// last trade, from zero the first time (two fresh slots, 2 × 22,100 gas).
/// An estimate made in the same second as that trade misses them; a batch
/// swaps on up to one pair per asset, so a fixed share of the estimate is
/// not enough (the likely cause of a settlement reverting in a CI run).
pub const PAIR_ACCUMULATORS_GAS: u64 = 45_000;

/// What the price accumulators of `pairs` pairs may cost beyond an estimate.
fn accumulators_gas(pairs: usize) -> u64 {
    PAIR_ACCUMULATORS_GAS.saturating_mul(pairs as u64)
}

/// The gas limit to send a transaction swapping on up to `pairs` Uniswap
/// pairs with: the estimate plus headroom, never over the block's own
/// limit, never under the estimate.
pub fn gas_limit(estimate: u64, pairs: usize, block_gas_limit: u64) -> u64 {
    let with_headroom = (estimate.saturating_mul(GAS_HEADROOM_PERCENT) / 100).saturating_add(accumulators_gas(pairs));
    with_headroom.min(block_gas_limit).max(estimate)
}

pub(crate) async fn block_gas_limit(provider: &DynProvider) -> Result<u64> {
    Ok(provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| Error::Invalid("the node has no latest block".into()))?
        .header
        .gas_limit)
}

/// One trade an account's decision record orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegIntent {
    pub account: u64,
    /// Ledger index of the asset.
    pub asset: u16,
    /// Quanta to buy (positive) or sell (negative).
    pub quanta: i64,
    /// Hash of the signed decision record that ordered the trade.
    pub record_hash: B256,
}

/// The audit-log checkpoint a batch anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub size: u64,
    pub root: B256,
}

/// One `settleBatch` call, ready to send.
#[derive(Debug, Clone)]
pub struct Batch {
    pub header: BatchHeader,
    pub orders: Vec<Order>,
    pub assets: Vec<AssetTrade>,
    /// The gas the planner's estimate found (see [`plan_batches`]):
    /// `submit::sign_settlement_on` uses it rather than asking the node again
    /// (a cycle signs all its batches before it sends any). `None`: not
    /// estimated, or made again from a recorded transaction.
    pub estimate: Option<u64>,
}

impl Batch {
    /// Groups `legs` into one order per account (in order of first
    /// appearance) and declares each asset's totals. The batch id is the hash
    /// of the orders' record hashes, so the same decisions always make the
    /// same batch and the ledger settles them at most once, whatever retries
    /// or restarts happen.
    pub fn build(legs: &[LegIntent], checkpoint: Checkpoint, deadline: u64, max_slippage_bps: u16) -> Result<Self> {
        if legs.is_empty() {
            return Err(Error::Invalid("a batch needs at least one leg".into()));
        }
        let mut order_index: BTreeMap<u64, usize> = BTreeMap::new();
        let mut orders: Vec<Order> = Vec::new();
        let mut totals: BTreeMap<u16, (u128, u128)> = BTreeMap::new();
        for leg in legs {
            if leg.quanta == 0 {
                return Err(Error::Invalid(format!("account {}: zero quantity for asset {}", leg.account, leg.asset)));
            }
            let i = *order_index.entry(leg.account).or_insert_with(|| {
                orders.push(Order { account: leg.account, recordHash: leg.record_hash, legs: Vec::new() });
                orders.len() - 1
            });
            if orders[i].recordHash != leg.record_hash {
                return Err(Error::Invalid(format!(
                    "account {} has legs from two decision records in one batch",
                    leg.account
                )));
            }
            orders[i].legs.push(Leg { asset: leg.asset, quanta: leg.quanta });
            let t = totals.entry(leg.asset).or_default();
            if leg.quanta > 0 {
                t.0 += leg.quanta.unsigned_abs() as u128;
            } else {
                t.1 += leg.quanta.unsigned_abs() as u128;
            }
        }
        let assets = totals
            .into_iter()
            .map(|(asset, (bought, sold))| AssetTrade {
                asset,
                maxSlippageBps: max_slippage_bps,
                boughtQuanta: bought,
                soldQuanta: sold,
            })
            .collect();
        let hashes: Vec<B256> = orders.iter().map(|o| o.recordHash).collect();
        let header = BatchHeader {
            batchId: keccak256(hashes.abi_encode()),
            deadline,
            checkpointSize: checkpoint.size,
            checkpointRoot: checkpoint.root,
        };
        Ok(Self { header, orders, assets, estimate: None })
    }

    pub fn batch_id(&self) -> B256 {
        self.header.batchId
    }

    pub fn leg_count(&self) -> usize {
        self.orders.iter().map(|o| o.legs.len()).sum()
    }

    pub fn account_count(&self) -> usize {
        self.orders.len()
    }

    /// The legs back, in batch order.
    pub fn legs(&self) -> Vec<LegIntent> {
        self.orders
            .iter()
            .flat_map(|o| {
                o.legs.iter().map(move |l| LegIntent {
                    account: o.account,
                    asset: l.asset,
                    quanta: l.quanta,
                    record_hash: o.recordHash,
                })
            })
            .collect()
    }

    fn split(&self) -> (Vec<LegIntent>, Vec<LegIntent>) {
        let half = self.orders.len() / 2;
        let legs = self.legs();
        let cut = self.orders[..half].iter().map(|o| o.legs.len()).sum();
        let (a, b) = legs.split_at(cut);
        (a.to_vec(), b.to_vec())
    }
}

/// A batch the ledger settled.
#[derive(Debug, Clone)]
pub struct Settled {
    pub batch_id: B256,
    pub tx_hash: TxHash,
    pub block: u64,
    pub gas_used: u64,
    pub accounts: usize,
    pub legs: usize,
}

/// An account whose legs the ledger refused while its batch was estimated:
/// left out of every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub account: u64,
    /// The record whose trades the legs carried.
    pub record_hash: B256,
    /// The ledger's refusal, in words.
    pub reason: String,
}

/// The batches to send, and the accounts left out of them.
#[derive(Debug, Clone)]
pub struct Planned {
    pub batches: Vec<Batch>,
    pub refused: Vec<Refused>,
    /// Gas estimates the planning asked the node for.
    pub estimates: usize,
    /// The block gas limit the batches were cut for.
    pub block_gas_limit: u64,
}

/// The account a ledger refusal is about, and the refusal in words, when it
/// is about one account's own state (its cash, its units, the account
/// itself): the rest of the batch can settle without it.
pub fn account_refusal(err: &Error) -> Option<(u64, String)> {
    use PortfolioLedger::PortfolioLedgerErrors as E;
    Some(match ledger_revert(err)? {
        E::InsufficientCash(e) => {
            (e.account, format!("the ledger refuses: cash of {} base units does not cover {}", e.available, e.needed))
        }
        E::InsufficientUnits(e) => (
            e.account,
            format!("the ledger refuses: {} quanta of asset {} do not cover the {} sold", e.availableQuanta, e.asset, e.neededQuanta),
        ),
        E::AccountFrozen(e) => (e.account, "the ledger refuses: the account is frozen".to_string()),
        E::UnknownAccount(e) => (e.account, "the ledger refuses: no such account".to_string()),
        _ => return None,
    })
}

/// Cuts `legs` into batches whose estimated gas stays within 90 % of the block
/// gas limit (halving by accounts until each fits), all anchoring `checkpoint`.
/// An account whose legs the ledger refuses (see [`account_refusal`]) is
/// left out, so that it does not hold back every other account's trades.
///
/// Estimating is most of planning's time (the node runs the batch several
/// times for one estimate), so a batch is halved without one when any
/// batch estimated so far with at least as many legs, its estimate scaled
/// down to this batch's legs, says it will not fit. Scaled down, an
/// estimate undercounts a smaller batch of the same kind (its pairs' swaps
/// cost the same whatever the size); but a batch whose legs cost less than
/// those of the one it is scaled from can be halved where it would have
/// fitted: one batch more, never a batch over the block. A batch the
/// scaling lets through is estimated as before.
pub async fn plan_batches(
    settler: &DynProvider,
    ledger: Address,
    legs: &[LegIntent],
    checkpoint: Checkpoint,
    deadline: u64,
    max_slippage_bps: u16,
) -> Result<Planned> {
    let block_limit = block_gas_limit(settler).await?;
    let budget = block_limit / 100 * BLOCK_GAS_SHARE_PERCENT;
    let contract = PortfolioLedger::new(ledger, settler.clone());
    let mut pending = vec![Batch::build(legs, checkpoint, deadline, max_slippage_bps)?];
    let mut ready = Vec::new();
    let mut refused = Vec::new();
    let mut estimates = 0;
    // The batches estimated: their legs and their estimates (the block's
    // limit for one over it, less than it needs).
    let mut measured: Vec<(u64, u64)> = Vec::new();
    while let Some(batch) = pending.pop() {
        let legs = batch.leg_count() as u64;
        let surely_over = measured.iter().any(|&(more, gas)| {
            let scaled = (u128::from(gas) * u128::from(legs) / u128::from(more)) as u64;
            legs <= more && scaled.saturating_add(accumulators_gas(batch.assets.len())) > budget
        });
        // Pushed in reverse so batches come out in account order.
        let halve = |pending: &mut Vec<Batch>, batch: &Batch| -> Result<()> {
            let (a, b) = batch.split();
            pending.push(Batch::build(&b, checkpoint, deadline, max_slippage_bps)?);
            pending.push(Batch::build(&a, checkpoint, deadline, max_slippage_bps)?);
            Ok(())
        };
        if (batch.leg_count() > MAX_BATCH_LEGS || surely_over) && batch.account_count() > 1 {
            // Over the ledger's bound, the ledger refuses it whatever the
            // gas, and its calldata alone could be more than a node takes
            // in one request.
            halve(&mut pending, &batch)?;
            continue;
        }
        estimates += 1;
        let estimate = match contract
            .settleBatch(batch.header.clone(), batch.orders.clone(), batch.assets.clone())
            .estimate_gas()
            .await
            .call_ctx("estimate settleBatch")
        {
            Ok(estimate) => estimate,
            // More than a block holds: the node's estimate gave up at the
            // block's limit, which is then less than the batch needs (and
            // over the budget, so it is halved below).
            Err(err) if batch.account_count() > 1 && over_block_limit(&err, block_limit) => block_limit,
            Err(err) => {
                let Some((account, reason)) = account_refusal(&err) else { return Err(err) };
                let Some(order) = batch.orders.iter().find(|o| o.account == account) else { return Err(err) };
                refused.push(Refused { account, record_hash: order.recordHash, reason });
                let rest: Vec<LegIntent> = batch.legs().into_iter().filter(|l| l.account != account).collect();
                if !rest.is_empty() {
                    pending.push(Batch::build(&rest, checkpoint, deadline, max_slippage_bps)?);
                }
                continue;
            }
        };
        measured.push((legs, estimate));
        // What it may need once mined: the estimate and the accumulators of
        // every pair it swaps on (see `PAIR_ACCUMULATORS_GAS`).
        let need = estimate.saturating_add(accumulators_gas(batch.assets.len()));
        if need <= budget {
            // Signed right after planning, before any batch is sent: the
            // state it was estimated on is the state it is signed on.
            ready.push(Batch { estimate: Some(estimate), ..batch });
        } else if batch.account_count() > 1 {
            halve(&mut pending, &batch)?;
        } else {
            return Err(Error::Invalid(format!(
                "one account's legs need up to {need} gas, over the block budget of {budget}"
            )));
        }
    }
    Ok(Planned { batches: ready, refused, estimates, block_gas_limit: block_limit })
}

/// Whether a node refused an estimate because the call needs more gas than
/// the block's limit: "gas required exceeds allowance" with an allowance of
/// at least `block_limit` (geth's words, "(N)", and Anvil's, ": N"; the
/// same words with a smaller allowance are about the sender's balance).
fn over_block_limit(err: &Error, block_limit: u64) -> bool {
    let Error::Contract { source, .. } = err else { return false };
    let alloy::contract::Error::TransportError(e) = source.as_ref() else { return false };
    let Some(message) = e.as_error_resp().map(|r| r.message.as_ref()) else { return false };
    let Some((_, allowance)) = message.split_once("gas required exceeds allowance") else { return false };
    let digits: String = allowance.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse::<u64>().is_ok_and(|allowance| allowance >= block_limit)
}

/// The ledger's typed revert behind an error, if there is one.
pub fn ledger_revert(err: &Error) -> Option<PortfolioLedger::PortfolioLedgerErrors> {
    match err {
        Error::Contract { source, .. } => source.as_decoded_interface_error::<PortfolioLedger::PortfolioLedgerErrors>(),
        _ => None,
    }
}

/// Whether `err` is the ledger refusing a batch id it already settled: for
/// the agent this means "already done", not a failure.
pub fn is_already_settled(err: &Error) -> bool {
    matches!(ledger_revert(err), Some(PortfolioLedger::PortfolioLedgerErrors::BatchAlreadySettled(_)))
}

/// Sends one batch from the settler and waits for its receipt.
pub async fn submit(settler: &DynProvider, ledger: Address, batch: &Batch) -> Result<Settled> {
    let contract = PortfolioLedger::new(ledger, settler.clone());
    let call = contract.settleBatch(batch.header.clone(), batch.orders.clone(), batch.assets.clone());
    let estimate = call.estimate_gas().await.call_ctx("estimate settleBatch")?;
    let receipt = send(call.gas(gas_limit(estimate, batch.assets.len(), block_gas_limit(settler).await?)), "settleBatch").await?;
    tracing::info!(
        target: "ballast::settle",
        batch_id = %batch.batch_id(),
        tx = %receipt.transaction_hash,
        gas = receipt.gas_used,
        legs = batch.leg_count(),
        "settled"
    );
    Ok(Settled {
        batch_id: batch.batch_id(),
        tx_hash: receipt.transaction_hash,
        block: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
        accounts: batch.account_count(),
        legs: batch.leg_count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(account: u64, asset: u16, quanta: i64) -> LegIntent {
        LegIntent { account, asset, quanta, record_hash: keccak256(account.to_be_bytes()) }
    }

    const CP: Checkpoint = Checkpoint { size: 7, root: B256::ZERO };

    #[test]
    fn gas_limit_adds_headroom_and_each_pairs_accumulators_up_to_the_block_limit() {
        assert_eq!(gas_limit(1_000_000, 0, 30_000_000), 1_250_000);
        assert_eq!(gas_limit(1_000_000, 8, 30_000_000), 1_610_000, "eight pairs' accumulators");
        assert_eq!(gas_limit(110_000, 1, 30_000_000), 182_500, "a swap on one pair");
        assert_eq!(gas_limit(27_000_000, 4, 30_000_000), 30_000_000, "capped at the block");
        assert_eq!(gas_limit(31_000_000, 4, 30_000_000), 31_000_000, "never under the estimate");
    }

    #[test]
    fn groups_legs_per_account_and_declares_totals() {
        let legs = [leg(5, 0, 10), leg(6, 0, -4), leg(5, 1, -3), leg(6, 1, 2), leg(7, 0, -1)];
        let batch = Batch::build(&legs, CP, 100, 50).unwrap();
        assert_eq!(batch.orders.iter().map(|o| o.account).collect::<Vec<_>>(), vec![5, 6, 7]);
        assert_eq!(batch.orders[0].legs.len(), 2);
        assert_eq!(batch.leg_count(), 5);
        let t0 = &batch.assets[0];
        assert_eq!((t0.asset, t0.boughtQuanta, t0.soldQuanta), (0, 10, 5));
        let t1 = &batch.assets[1];
        assert_eq!((t1.asset, t1.boughtQuanta, t1.soldQuanta), (1, 2, 3));
        assert!(batch.assets.iter().all(|a| a.maxSlippageBps == 50));
    }

    #[test]
    fn the_batch_id_depends_only_on_the_decision_records() {
        let a = Batch::build(&[leg(1, 0, 5), leg(2, 0, -5)], CP, 100, 50).unwrap();
        let b = Batch::build(&[leg(1, 0, 5), leg(2, 0, -5)], Checkpoint { size: 9, root: B256::ZERO }, 999, 10).unwrap();
        let c = Batch::build(&[leg(2, 0, -5), leg(1, 0, 5)], CP, 100, 50).unwrap();
        assert_eq!(a.batch_id(), b.batch_id());
        assert_ne!(a.batch_id(), c.batch_id(), "order of records is part of the batch");
    }

    #[test]
    fn refuses_zero_legs_and_two_records_for_one_account() {
        assert!(Batch::build(&[], CP, 1, 1).is_err());
        assert!(Batch::build(&[leg(1, 0, 0)], CP, 1, 1).is_err());
        let mut other = leg(1, 1, 3);
        other.record_hash = B256::repeat_byte(9);
        assert!(Batch::build(&[leg(1, 0, 3), other], CP, 1, 1).is_err());
    }

    #[test]
    fn split_keeps_each_account_whole() {
        let legs = [leg(1, 0, 1), leg(1, 1, -1), leg(2, 0, 1), leg(3, 0, -1), leg(3, 1, 1)];
        let batch = Batch::build(&legs, CP, 1, 1).unwrap();
        let (a, b) = batch.split();
        assert_eq!(a.iter().map(|l| l.account).collect::<Vec<_>>(), vec![1, 1]);
        assert_eq!(b.iter().map(|l| l.account).collect::<Vec<_>>(), vec![2, 3, 3]);
    }
}
