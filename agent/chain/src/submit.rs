//! The durable settlement protocol's chain side (RELIABILITY.md, "Settle"):
//! a settlement transaction is signed with an explicit nonce *before* it
//! is sent, so that its raw bytes and hash can be recorded (and fsync'd) in
//! the audit log first; then those same bytes are broadcast. Recovery reads
//! the chain to tell what became of a recorded submission.

use alloy::{
    eips::{BlockNumberOrTag, Encodable2718},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, TxHash},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};

use crate::{
    Error, Result,
    bindings::PortfolioLedger,
    error::CallContext,
    settle::{self, Batch},
};

/// A signed `settleBatch` transaction: what the "submitted" record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSettlement {
    pub batch_id: B256,
    pub tx_hash: TxHash,
    pub nonce: u64,
    pub raw: Bytes,
    /// The settler's address (the transaction's sender).
    pub from: Address,
}

/// What became of a submission, read from the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Our transaction settled the batch in `block`.
    Settled { block: u64, block_hash: B256, gas_used: u64 },
    /// The batch is settled, by another transaction (an earlier attempt).
    SettledElsewhere,
    /// Our transaction was mined and reverted; the batch is not settled.
    Reverted { block: u64 },
    /// Not mined, and the nonce is still ours: broadcast the same bytes again.
    Pending,
    /// Not mined, and the nonce was used by another transaction: sign the
    /// same batch again with a new nonce (the batch id stays, so the ledger
    /// still settles it at most once).
    NonceTaken,
}

/// The fee cap for a transaction sent after `ahead` transactions of ours,
/// each once the one before is mined, from the node's cap for the next block:
/// each of their blocks that is over its gas target may raise the base fee
/// by an eighth, and by at least one wei (which is what counts on a devnet
/// whose base fee has decayed to a few wei). Without it a cycle's later
/// settlements could be refused as under the base fee. The cap only bounds
/// the fee (a transaction pays its block's base fee and its tip), but a
/// node wants the sender to hold gas limit × cap, so it grows for
/// [`FEE_CAP_BLOCKS_AHEAD`] blocks at most (some 2.6 times the node's cap):
/// one sent later and refused is signed again at the fees of then.
pub fn fee_cap(next_block_cap: u128, ahead: u64) -> u128 {
    (0..ahead.min(FEE_CAP_BLOCKS_AHEAD)).fold(next_block_cap, |cap, _| cap.saturating_mul(9).div_ceil(8).saturating_add(1))
}

/// Blocks ahead that [`fee_cap`] allows for.
pub const FEE_CAP_BLOCKS_AHEAD: u64 = 8;

/// What signing settlements needs from the node: read once for all the
/// batches a cycle signs together (not three calls to the node a batch: on
/// a remote node each is a round trip, and the cycle waits for them in
/// turn), so they are all signed on the same fees, each with room for the
/// blocks of those before it (see [`fee_cap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub chain_id: u64,
    pub block_gas_limit: u64,
    /// The node's fee cap and tip for the next block.
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

impl Terms {
    /// The node's terms of now.
    pub async fn read(provider: &DynProvider) -> Result<Self> {
        let chain_id = provider.get_chain_id().await?;
        let block_gas_limit = settle::block_gas_limit(provider).await?;
        Self::with_fees(provider, chain_id, block_gas_limit).await
    }

    /// The node's fees of now, for a chain and block gas limit known
    /// already (the agent checked the chain at start; the planner read the
    /// limit it cut the batches for): one call to the node.
    pub async fn with_fees(provider: &DynProvider, chain_id: u64, block_gas_limit: u64) -> Result<Self> {
        let fees = provider.estimate_eip1559_fees().await?;
        Ok(Self {
            chain_id,
            block_gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        })
    }
}

/// Signs `batch` for `ledger` with `nonce`, without sending it, on the
/// node's terms of now (see [`sign_settlement_on`]).
pub async fn sign_settlement(
    provider: &DynProvider,
    signer: &PrivateKeySigner,
    ledger: Address,
    batch: &Batch,
    nonce: u64,
    ahead: u64,
) -> Result<SignedSettlement> {
    let terms = Terms::read(provider).await?;
    sign_settlement_on(provider, &terms, signer, ledger, batch, nonce, ahead, None).await
}

/// Signs `batch` on `terms`, as the `ahead`-th of transactions sent one
/// after another (see [`fee_cap`]), with the gas limit `limit` makes of the
/// estimate (none given: [`settle::gas_limit`]'s). The estimate is the
/// planner's when the batch carries one (no call to the node), else the
/// node's now.
#[allow(clippy::too_many_arguments)]
pub async fn sign_settlement_on(
    provider: &DynProvider,
    terms: &Terms,
    signer: &PrivateKeySigner,
    ledger: Address,
    batch: &Batch,
    nonce: u64,
    ahead: u64,
    limit: Option<fn(u64) -> u64>,
) -> Result<SignedSettlement> {
    let call = PortfolioLedger::settleBatchCall { header: batch.header.clone(), orders: batch.orders.clone(), assets: batch.assets.clone() };
    let from = signer.address();
    let mut tx = TransactionRequest::default()
        .with_from(from)
        .with_to(ledger)
        .with_input(call.abi_encode())
        .with_nonce(nonce)
        .with_chain_id(terms.chain_id);
    let estimate = match batch.estimate {
        Some(estimate) => estimate,
        None => provider.estimate_gas(tx.clone()).await?,
    };
    let limit = limit.map_or_else(|| settle::gas_limit(estimate, batch.assets.len(), terms.block_gas_limit), |limit| limit(estimate));
    tx = tx
        .with_gas_limit(limit)
        .with_max_fee_per_gas(fee_cap(terms.max_fee_per_gas, ahead))
        .with_max_priority_fee_per_gas(terms.max_priority_fee_per_gas);
    let wallet = EthereumWallet::from(signer.clone());
    let envelope = tx.build(&wallet).await.map_err(|e| Error::Invalid(format!("signing settleBatch: {e}")))?;
    Ok(SignedSettlement { batch_id: batch.batch_id(), tx_hash: *envelope.tx_hash(), nonce, raw: envelope.encoded_2718().into(), from })
}

/// Broadcasts the recorded bytes. A node that already has them, or has
/// mined them, is not an error: what happened is read by [`resolve`].
pub async fn broadcast(provider: &DynProvider, signed: &SignedSettlement) -> Result<()> {
    match provider.send_raw_transaction(&signed.raw).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string().to_lowercase();
            if text.contains("already known") || text.contains("nonce too low") || text.contains("already imported") {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

/// Whether the node refused a transaction because its fee cap is under the
/// block's base fee ("max fee per gas less than block base fee", in geth's
/// words and Anvil's): signed again at today's fees, it can go.
pub fn is_under_base_fee(err: &Error) -> bool {
    matches!(err, Error::Rpc(e) if e.to_string().contains("less than block base fee"))
}

/// How long [`resolve`] waits for the receipt of a transaction whose batch
/// the ledger already shows settled (a node may index receipts a moment
/// after the state changes).
const RECEIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads what became of a submission. The sender's mined nonce is read
/// first, so that the receipt and the ledger, read after it, are at least
/// as new: a nonce used by our own transaction always shows its receipt.
pub async fn resolve(provider: &DynProvider, ledger: Address, signed: &SignedSettlement) -> Result<Outcome> {
    let contract = PortfolioLedger::new(ledger, provider.clone());
    let mined_nonce = provider.get_transaction_count(signed.from).block_id(BlockNumberOrTag::Latest.into()).await?;
    if let Some(receipt) = receipt_within(provider, signed.tx_hash, std::time::Duration::ZERO).await? {
        return match outcome_of(receipt) {
            Outcome::Reverted { block } => {
                let settled = contract.settled(signed.batch_id).call().await.call_ctx("settled")?;
                Ok(if settled { Outcome::SettledElsewhere } else { Outcome::Reverted { block } })
            }
            settled => Ok(settled),
        };
    }
    let settled = contract.settled(signed.batch_id).call().await.call_ctx("settled")?;
    if settled || mined_nonce > signed.nonce {
        // Mined by us (a node may index the receipt a moment after the
        // state changes), or by someone else.
        if let Some(receipt) = receipt_within(provider, signed.tx_hash, RECEIPT_WAIT).await? {
            return Ok(outcome_of(receipt));
        }
        return Ok(if settled { Outcome::SettledElsewhere } else { Outcome::NonceTaken });
    }
    Ok(Outcome::Pending)
}

fn outcome_of(receipt: alloy::rpc::types::TransactionReceipt) -> Outcome {
    let block = receipt.block_number.unwrap_or_default();
    if receipt.status() {
        Outcome::Settled { block, block_hash: receipt.block_hash.unwrap_or_default(), gas_used: receipt.gas_used }
    } else {
        Outcome::Reverted { block }
    }
}

/// The receipt of `tx`, polling for up to `wait`.
async fn receipt_within(provider: &DynProvider, tx: TxHash, wait: std::time::Duration) -> Result<Option<alloy::rpc::types::TransactionReceipt>> {
    let started = std::time::Instant::now();
    loop {
        if let Some(r) = provider.get_transaction_receipt(tx).await? {
            return Ok(Some(r));
        }
        if started.elapsed() >= wait {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The settler's next nonce, counting transactions still pending.
pub async fn next_nonce(provider: &DynProvider, from: Address) -> Result<u64> {
    Ok(provider.get_transaction_count(from).block_id(BlockNumberOrTag::Pending.into()).await?)
}

/// Resolves a broadcast submission, waiting up to `timeout` while it is
/// still pending.
pub async fn await_outcome(provider: &DynProvider, ledger: Address, signed: &SignedSettlement, timeout: std::time::Duration) -> Result<Outcome> {
    let started = std::time::Instant::now();
    loop {
        let outcome = resolve(provider, ledger, signed).await?;
        if outcome != Outcome::Pending || started.elapsed() >= timeout {
            return Ok(outcome);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What a mined settlement did: its block's time and the ledger's
/// `AssetSettled` event of every asset it traded.
#[derive(Debug, Clone)]
pub struct Execution {
    pub block_time: u64,
    pub assets: Vec<PortfolioLedger::AssetSettled>,
}

/// Reads the [`Execution`] of the settlement transaction `tx` on `ledger`.
pub async fn execution(provider: &DynProvider, ledger: Address, tx: TxHash) -> Result<Execution> {
    let receipt = provider
        .get_transaction_receipt(tx)
        .await?
        .ok_or_else(|| Error::Invalid(format!("no receipt for settlement {tx}")))?;
    let block = receipt.block_number.ok_or_else(|| Error::Invalid(format!("settlement {tx} has no block")))?;
    let block_time = provider
        .get_block_by_number(block.into())
        .await?
        .ok_or_else(|| Error::Invalid(format!("no block {block}")))?
        .header
        .timestamp;
    let assets = receipt
        .inner
        .logs()
        .iter()
        .filter(|log| log.address() == ledger)
        .filter_map(|log| log.log_decode::<PortfolioLedger::AssetSettled>().ok().map(|l| l.inner.data))
        .collect();
    Ok(Execution { block_time, assets })
}

/// Why a mined settlement reverted: the same transaction run again on the
/// state before its block at the block's time, the ledger's custom error
/// decoded; out of gas when it used its whole limit, or when it fails
/// without a reason within its limit and succeeds with more (a call it made
/// ran out: the 1/64 of the gas kept back is left over).
pub async fn revert_reason(provider: &DynProvider, signed: &SignedSettlement, block: u64) -> String {
    use alloy::{
        consensus::{Transaction, TxEnvelope},
        eips::Decodable2718,
        rpc::types::BlockOverrides,
    };
    let Ok(envelope) = TxEnvelope::decode_2718(&mut &signed.raw[..]) else { return "undecodable transaction".into() };
    let limit = envelope.gas_limit();
    if let Ok(Some(receipt)) = provider.get_transaction_receipt(signed.tx_hash).await
        && receipt.gas_used >= limit
    {
        return format!("out of gas: used all {limit} of its gas limit");
    }
    let time = match provider.get_block_by_number(block.into()).await {
        Ok(Some(b)) => Some(b.header.timestamp),
        _ => None,
    };
    let request = TransactionRequest::default().with_from(signed.from).with_to(envelope.to().unwrap_or_default()).with_input(envelope.input().clone());
    let replay = |request: TransactionRequest| {
        provider.call(request).block(block.saturating_sub(1).into()).with_block_overrides(BlockOverrides { time, ..Default::default() })
    };
    match replay(request.clone().with_gas_limit(limit)).await {
        Ok(_) => "state that changed within the block".into(),
        Err(e) => match e.as_error_resp().and_then(|p| p.as_decoded_interface_error::<PortfolioLedger::PortfolioLedgerErrors>()) {
            Some(ledger) => format!("{ledger:?}"),
            // A failure of the node itself says nothing of the gas.
            None if e.as_error_resp().is_some() && replay(request).await.is_ok() => format!("out of gas: a call it made ran out within its gas limit of {limit}"),
            None => e.to_string(),
        },
    }
}
