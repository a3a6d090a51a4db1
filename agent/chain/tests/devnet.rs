//! The devnet drops old states rather than writing them to disk: Anvil's
//! default spills every state older than 500 blocks to ~/.foundry, where a
//! long test run left gigabytes behind.

use alloy::{
    eips::BlockId,
    primitives::U256,
    providers::{Provider, ProviderBuilder},
};
use ballast_chain::devnet::{Devnet, DevnetOptions};

#[tokio::test]
async fn old_states_are_dropped_and_recent_ones_kept() -> eyre::Result<()> {
    let devnet = Devnet::start(&DevnetOptions::default())?;
    let provider = ProviderBuilder::new().connect_http(devnet.endpoint_url());
    let funded = devnet.dev_keys()[0].address();

    let _: serde_json::Value = provider.raw_request("anvil_mine".into(), (U256::from(600),)).await?;
    let newest = provider.get_block_number().await?;
    assert_eq!(newest, 600);

    // The block before the newest is what a revert's reason is replayed on.
    let recent = provider.get_balance(funded).block_id(BlockId::number(newest - 1)).await?;
    assert!(recent > U256::ZERO, "a recent state answers");

    // Without pruning, Anvil would read this state back from its disk cache.
    let old = provider.get_balance(funded).block_id(BlockId::number(1)).await;
    let err = old.expect_err("a state 599 blocks old is gone, not kept on disk");
    assert!(err.to_string().contains("BlockOutOfRange"), "unexpected error: {err}");

    // The blocks themselves stay: only their states are dropped.
    assert!(provider.get_block_by_number(1.into()).await?.is_some());
    Ok(())
}
