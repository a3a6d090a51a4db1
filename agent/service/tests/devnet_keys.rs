//! The list of Anvil's development keys the agent refuses off Anvil is the
//! list a real Anvil node prints.

use ballast_agent::keys::{ANVIL_CHAIN_ID, ANVIL_DEV_ADDRESSES, refuse_dev_key};
use ballast_chain::devnet::{Devnet, DevnetOptions};

#[test]
fn every_key_anvil_prints_is_refused_off_anvil() {
    let devnet = Devnet::start(&DevnetOptions::default()).expect("anvil starts");
    let printed: Vec<String> = devnet.dev_keys().iter().map(|k| k.address().to_string()).collect();
    assert_eq!(printed.len(), ANVIL_DEV_ADDRESSES.len());
    assert_eq!(printed, ANVIL_DEV_ADDRESSES.map(String::from));
    for key in devnet.dev_keys() {
        assert!(refuse_dev_key(key.address(), 1).is_err());
        assert!(refuse_dev_key(key.address(), ANVIL_CHAIN_ID).is_ok());
    }
}
