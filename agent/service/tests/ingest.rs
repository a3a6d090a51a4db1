//! Ingest on a real Anvil node: feed prices as deployed, the venue's spot
//! price next to them, a feed update seen with its previous close, and the
//! ledger's books converted exactly.

use ballast_agent::ingest;
use ballast_chain::{
    bindings::PriceFeed,
    deploy::{self, DeployConfig, Funding},
    devnet::{Devnet, DevnetOptions},
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_feed_and_venue_prices_and_positions() -> eyre::Result<()> {
    let devnet = Devnet::start(&DevnetOptions::default())?;
    let deployment = deploy::deploy(&devnet, &DeployConfig::default()).await?;
    let m = &deployment.manifest;

    let market = ingest::market(&deployment.admin, m).await?;
    assert_eq!(market.quotes.len(), m.assets.len());
    for asset in &m.assets {
        let q = &market.quotes[&asset.symbol];
        let deployed = Decimal::from(asset.initial_price) / Decimal::from(10i64.pow(u32::from(asset.feed_decimals)));
        assert_eq!(q.primary.price, deployed, "{}", asset.symbol);
        let venue = q.secondary.as_ref().expect("a seeded pool").price;
        assert!((venue - deployed).abs() / deployed < dec!(0.0001), "{}: venue {venue} vs feed {deployed}", asset.symbol);
        assert_eq!(q.previous_close, None, "one round only");
    }

    // A new feed round: the old answer becomes the previous close.
    let first = &m.assets[0];
    let feed = PriceFeed::new(first.feed, deployment.admin.clone());
    let new_answer = alloy::primitives::I256::try_from(first.initial_price * 9 / 10)?;
    feed.updateAnswer(new_answer).send().await?.get_receipt().await?;
    let market = ingest::market(&deployment.admin, m).await?;
    let q = &market.quotes[&first.symbol];
    assert_eq!(q.primary.price * dec!(10) / dec!(9), q.previous_close.expect("two rounds"));

    deploy::open_and_fund_accounts(&deployment, &[1], m.roles.admin, |_| Funding::uniform(m, 2_500, 7)).await?;
    let p = ingest::position(&deployment.admin, m, 1).await?;
    assert_eq!(p.cash, dec!(2500));
    assert!(p.units.values().all(|u| *u == dec!(7)), "{p:?}");
    let empty = ingest::position(&deployment.admin, m, 2).await?;
    assert_eq!(empty.cash, Decimal::ZERO);
    Ok(())
}
