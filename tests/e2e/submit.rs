//! The durable settlement protocol's chain side on a real Anvil node: a
//! settlement signed before it is sent resolves as pending, then settled
//! once its recorded bytes are broadcast (again and again, harmlessly); a
//! submission whose nonce another transaction took resolves as such, and
//! the same batch re-signed with a new nonce settles once.

use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use ballast_chain::{
    bindings::PortfolioLedger,
    deploy::{self, DeployConfig, Funding, Signers},
    devnet::{Devnet, DevnetOptions},
    settle::{Batch, Checkpoint, LegIntent},
    submit::{self, Outcome},
};

const UNIT: i64 = 1_000_000;
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn batch(first_account: u64, size: u64, deadline: u64) -> Batch {
    let record = |a: u64| B256::from(ballast_audit::leaf_hash(&a.to_be_bytes()));
    let legs = [
        LegIntent { account: first_account, asset: 0, quanta: 2 * UNIT, record_hash: record(first_account) },
        LegIntent { account: first_account + 1, asset: 0, quanta: -2 * UNIT, record_hash: record(first_account + 1) },
    ];
    Batch::build(&legs, Checkpoint { size, root: B256::repeat_byte(size as u8) }, deadline, 100).expect("a batch")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_first_then_broadcast_resolves_from_the_chain() -> eyre::Result<()> {
    let devnet = Devnet::start(&DevnetOptions::default())?;
    let deployment = deploy::deploy(&devnet, &DeployConfig::default()).await?;
    let m = &deployment.manifest;
    let ledger = m.contracts.portfolio_ledger;
    let settler = Signers::from_devnet(&devnet)?.settler;
    deploy::open_and_fund_accounts(&deployment, &[1, 2, 3, 4], m.roles.admin, |_| Funding::uniform(m, 10_000, 100)).await?;
    let p = &deployment.settler;
    let deadline = p.get_block(alloy::eips::BlockId::latest()).await?.expect("a block").header.timestamp + 600;

    // Signed, recorded (not here), not yet sent.
    let first = batch(1, 1, deadline);
    let nonce = submit::next_nonce(p, settler.address()).await?;
    let signed = submit::sign_settlement(p, &settler, ledger, &first, nonce).await?;
    assert_eq!(signed.batch_id, first.batch_id());
    assert_eq!(submit::resolve(p, ledger, &signed).await?, Outcome::Pending);

    // Broadcast: Anvil mines it; a rebroadcast of the same bytes is harmless.
    submit::broadcast(p, &signed).await?;
    let settled = submit::await_outcome(p, ledger, &signed, WAIT).await?;
    assert!(matches!(settled, Outcome::Settled { gas_used, .. } if gas_used > 0), "{settled:?}");
    submit::broadcast(p, &signed).await?;
    assert_eq!(submit::resolve(p, ledger, &signed).await?, settled);
    assert!(PortfolioLedger::new(ledger, p.clone()).settled(first.batch_id()).call().await?);

    // A second batch signed with a nonce that another transaction then takes.
    let second = batch(3, 2, deadline);
    let nonce = submit::next_nonce(p, settler.address()).await?;
    let stale = submit::sign_settlement(p, &settler, ledger, &second, nonce).await?;
    let other = TransactionRequest::default().with_to(settler.address()).with_value(U256::ZERO).with_nonce(nonce);
    p.send_transaction(other).await?.get_receipt().await?;
    assert_eq!(submit::resolve(p, ledger, &stale).await?, Outcome::NonceTaken);
    // Its bytes can no longer land; the same batch re-signed settles once.
    assert!(submit::broadcast(p, &stale).await.is_ok(), "nonce too low is not an error");
    let again = submit::sign_settlement(p, &settler, ledger, &second, submit::next_nonce(p, settler.address()).await?).await?;
    assert_eq!(again.batch_id, stale.batch_id);
    assert_ne!(again.tx_hash, stale.tx_hash);
    submit::broadcast(p, &again).await?;
    assert!(matches!(submit::await_outcome(p, ledger, &again, WAIT).await?, Outcome::Settled { .. }));
    // The stale submission now reads as settled by another transaction.
    assert_eq!(submit::resolve(p, ledger, &stale).await?, Outcome::SettledElsewhere);
    let units = |a: u64| async move { PortfolioLedger::new(ledger, p.clone()).positionsOf(a).call().await.map(|x| x.units[0]) };
    let whole = U256::from(10u64).pow(U256::from(18u64));
    assert_eq!(units(3).await?, U256::from(102u64) * whole, "bought 2 exactly once");
    assert_eq!(units(4).await?, U256::from(98u64) * whole, "sold 2 exactly once");
    Ok(())
}
