//! The durable settlement protocol's chain side on a real Anvil node: a
//! settlement signed before it is sent resolves as pending, then settled
//! once its recorded bytes are broadcast (again and again, harmlessly); a
//! submission whose nonce another transaction took resolves as such, and
//! the same batch re-signed with a new nonce settles once; a settlement
//! sent after others is signed with room for the base fee they raise.

use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use ballast_chain::{
    bindings::{IUniswapV2Pair, PortfolioLedger},
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

/// A devnet with the contracts deployed and accounts 1 to 4 funded.
struct Funded {
    _devnet: Devnet,
    deployment: deploy::Deployment,
    settler: alloy::signers::local::PrivateKeySigner,
    /// Ten minutes after the latest block.
    deadline: u64,
}

async fn funded() -> eyre::Result<Funded> {
    let devnet = Devnet::start(&DevnetOptions::default())?;
    let deployment = deploy::deploy(&devnet, &DeployConfig::default()).await?;
    let m = &deployment.manifest;
    deploy::open_and_fund_accounts(&deployment, &[1, 2, 3, 4], m.roles.admin, |_| Funding::uniform(m, 10_000, 100)).await?;
    let settler = Signers::from_devnet(&devnet)?.settler;
    let deadline = deployment.settler.get_block(alloy::eips::BlockId::latest()).await?.expect("a block").header.timestamp + 600;
    Ok(Funded { _devnet: devnet, deployment, settler, deadline })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_first_then_broadcast_resolves_from_the_chain() -> eyre::Result<()> {
    let Funded { _devnet, deployment, settler, deadline } = funded().await?;
    let ledger = deployment.manifest.contracts.portfolio_ledger;
    let p = &deployment.settler;

    // Signed, recorded (not here), not yet sent.
    let first = batch(1, 1, deadline);
    let nonce = submit::next_nonce(p, settler.address()).await?;
    let signed = submit::sign_settlement(p, &settler, ledger, &first, nonce, 0).await?;
    assert_eq!(signed.batch_id, first.batch_id());
    assert_eq!(submit::resolve(p, ledger, &signed).await?, Outcome::Pending);
    // A batch that carries the planner's estimate is signed from it: the node
    // is not asked again.
    let planned = Batch { estimate: Some(123_456), ..first.clone() };
    let terms = submit::Terms::read(p).await?;
    let carried = submit::sign_settlement_on(p, &terms, &settler, ledger, &planned, nonce, 0, Some(|estimate| estimate)).await?;
    let envelope = <alloy::consensus::TxEnvelope as alloy::eips::Decodable2718>::decode_2718(&mut &carried.raw[..])?;
    assert_eq!(alloy::consensus::Transaction::gas_limit(&envelope), 123_456);

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
    let stale = submit::sign_settlement(p, &settler, ledger, &second, nonce, 0).await?;
    let other = TransactionRequest::default().with_to(settler.address()).with_value(U256::ZERO).with_nonce(nonce);
    p.send_transaction(other).await?.get_receipt().await?;
    assert_eq!(submit::resolve(p, ledger, &stale).await?, Outcome::NonceTaken);
    // Its bytes can no longer land; the same batch re-signed settles once.
    assert!(submit::broadcast(p, &stale).await.is_ok(), "nonce too low is not an error");
    let again = submit::sign_settlement(p, &settler, ledger, &second, submit::next_nonce(p, settler.address()).await?, 0).await?;
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

/// A settlement whose gas was estimated in the second of the pairs' last
/// trade, mined a second later: every pair it swaps on then writes its
/// price accumulators, from zero, which the estimate did not count. Sent
/// with the bare estimate it runs out of gas (and says so); with the gas
/// limit the agent gives it, it settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_estimated_in_the_pairs_second_still_settles_a_second_later() -> eyre::Result<()> {
    let devnet = Devnet::start(&DevnetOptions::default())?;
    let admin = deploy::provider(&devnet.endpoint(), Signers::from_devnet(&devnet)?.admin)?;
    // Anvil's clock stopped: every block, and every estimate, gets the
    // genesis timestamp until a block's is set.
    admin.raw_request::<_, serde_json::Value>("anvil_setBlockTimestampInterval".into(), [0]).await?;
    let frozen = admin.get_block(alloy::eips::BlockId::latest()).await?.expect("a block").header.timestamp;
    let deployment = deploy::deploy(&devnet, &DeployConfig::default()).await?;
    let m = &deployment.manifest;
    let ledger = m.contracts.portfolio_ledger;
    let settler = Signers::from_devnet(&devnet)?.settler;
    deploy::open_and_fund_accounts(&deployment, &[1], m.roles.admin, |_| Funding::uniform(m, 10_000, 100)).await?;
    let pair_times = || async {
        let mut times = Vec::new();
        for asset in &m.assets {
            times.push(u64::from(IUniswapV2Pair::new(asset.pair, admin.clone()).getReserves().call().await?.blockTimestampLast));
        }
        eyre::Ok(times)
    };
    assert_eq!(pair_times().await?, vec![frozen; m.assets.len()], "seeded in the frozen second");

    // Account 1 buys one share of every asset, each on its pair: the same
    // legs twice under two records, so two batches.
    let batch = |record: &[u8]| {
        let record_hash = B256::from(ballast_audit::leaf_hash(record));
        let legs: Vec<LegIntent> = (0..m.assets.len()).map(|a| LegIntent { account: 1, asset: a as u16, quanta: UNIT, record_hash }).collect();
        Batch::build(&legs, Checkpoint { size: 1, root: record_hash }, frozen + 600, 200).expect("a batch")
    };
    let (bare, headroom) = (batch(b"first"), batch(b"second"));
    let p = &deployment.settler;
    let nonce = submit::next_nonce(p, settler.address()).await?;
    let bare = submit::sign_settlement_on(p, &submit::Terms::read(p).await?, &settler, ledger, &bare, nonce, 0, Some(|estimate| estimate)).await?;
    let signed = submit::sign_settlement(p, &settler, ledger, &headroom, nonce + 1, 1).await?;

    admin.raw_request::<_, serde_json::Value>("evm_setNextBlockTimestamp".into(), [frozen + 1]).await?;
    submit::broadcast(p, &bare).await?;
    let Outcome::Reverted { block } = submit::await_outcome(p, ledger, &bare, WAIT).await? else { panic!("the bare estimate settled") };
    let why = submit::revert_reason(p, &bare, block).await;
    assert!(why.starts_with("out of gas"), "{why}");
    assert_eq!(pair_times().await?, vec![frozen; m.assets.len()], "the reverted batch traded on no pair");

    submit::broadcast(p, &signed).await?;
    let outcome = submit::await_outcome(p, ledger, &signed, WAIT).await?;
    assert!(matches!(outcome, Outcome::Settled { .. }), "{outcome:?}");
    assert_eq!(pair_times().await?, vec![frozen + 1; m.assets.len()], "every pair traded a second later");
    Ok(())
}

/// A cycle signs all its settlements, then sends them one after another,
/// each once the one before is mined. The blocks of those before may raise
/// the base fee (by an eighth each, or by a wei on a devnet whose base fee
/// has decayed to a few wei): each is signed with room for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_sent_after_others_allows_for_the_base_fee_they_raise() -> eyre::Result<()> {
    let Funded { _devnet, deployment, settler, deadline } = funded().await?;
    let ledger = deployment.manifest.contracts.portfolio_ledger;
    let p = &deployment.settler;
    let cap = |s: &submit::SignedSettlement| {
        let envelope = <alloy::consensus::TxEnvelope as alloy::eips::Decodable2718>::decode_2718(&mut &s.raw[..]).expect("a transaction");
        alloy::consensus::Transaction::max_fee_per_gas(&envelope)
    };
    let admin = &deployment.admin;
    let rpc = |method: &'static str, params: serde_json::Value| async move {
        admin.raw_request::<_, serde_json::Value>(method.into(), params).await
    };
    let next_base_fee = |fee: u128| rpc("anvil_setNextBlockBaseFeePerGas", serde_json::json!([U256::from(fee)]));
    // Blocks mined when the test says, so that a settlement can be sent
    // while its cap covers the base fee and mined once it no longer does.
    rpc("evm_setAutomine", serde_json::json!([false])).await?;

    // The same batch signed as the first and as the fourth of a cycle.
    let nonce = submit::next_nonce(p, settler.address()).await?;
    let first = submit::sign_settlement(p, &settler, ledger, &batch(1, 1, deadline), nonce, 0).await?;
    let fourth = submit::sign_settlement(p, &settler, ledger, &batch(1, 1, deadline), nonce, 3).await?;
    assert_eq!(cap(&fourth), submit::fee_cap(cap(&first), 3));
    assert!(cap(&fourth) >= cap(&first) * 729 / 512 + 3, "three blocks of an eighth and a wei more");
    // Mined where the base fee is over the first's cap, the fourth settles.
    submit::broadcast(p, &fourth).await?;
    next_base_fee(cap(&first) + 1).await?;
    rpc("evm_mine", serde_json::json!([])).await?;
    assert!(matches!(submit::resolve(p, ledger, &fourth).await?, Outcome::Settled { .. }));

    // Signed as the first, a settlement mined there waits.
    let nonce = submit::next_nonce(p, settler.address()).await?;
    let first = submit::sign_settlement(p, &settler, ledger, &batch(3, 2, deadline), nonce, 0).await?;
    submit::broadcast(p, &first).await?;
    next_base_fee(cap(&first) + 1).await?;
    rpc("evm_mine", serde_json::json!([])).await?;
    assert_eq!(submit::resolve(p, ledger, &first).await?, Outcome::Pending, "a cap under the base fee is not mined");

    // A cycle reads the node's terms once and signs all its settlements on
    // them: a fee rise after the read does not reach them (the later ones
    // have room for it), and terms read again follow it.
    let terms = submit::Terms::read(p).await?;
    next_base_fee(terms.max_fee_per_gas * 4).await?;
    rpc("evm_mine", serde_json::json!([])).await?;
    let on_terms = submit::sign_settlement_on(p, &terms, &settler, ledger, &batch(2, 2, deadline), nonce + 1, 2, None).await?;
    assert_eq!(cap(&on_terms), submit::fee_cap(terms.max_fee_per_gas, 2));
    let read_again = submit::sign_settlement(p, &settler, ledger, &batch(2, 2, deadline), nonce + 1, 2).await?;
    assert!(cap(&read_again) > cap(&on_terms) * 2, "{} against {}", cap(&read_again), cap(&on_terms));
    Ok(())
}
