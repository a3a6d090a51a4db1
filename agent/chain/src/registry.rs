//! Reading what the `AuditRegistry` holds, for verifiers: the anchored
//! checkpoints and the agents' Ed25519 keys with their validity windows.
//! Read-only calls; any RPC endpoint of the chain will do, so a compliance
//! officer or regulator checks a log against the chain without the agent.

use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider, ProviderBuilder},
};

use crate::{
    bindings::AuditRegistry,
    error::{CallContext, Error, Result},
};

/// Checkpoint sizes read per call.
const PAGE: u64 = 1_000;

/// An agent key as the registry holds it: valid in `[valid_from_s, valid_until_s)`, unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredKey {
    pub public_key: [u8; 32],
    pub valid_from_s: u64,
    pub valid_until_s: u64,
}

/// A read-only connection to one registry.
#[derive(Debug, Clone)]
pub struct RegistryReader {
    registry: AuditRegistry::AuditRegistryInstance<DynProvider>,
}

impl RegistryReader {
    /// Connects to `rpc_url` (no signer needed) and checks that the chain's
    /// id is `chain_id`, so a bundle is never checked against another chain.
    pub async fn connect(rpc_url: &str, chain_id: u64, registry: Address) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Invalid(format!("RPC URL {rpc_url:?}: {e}")))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let actual = provider.get_chain_id().await?;
        if actual != chain_id {
            return Err(Error::Invalid(format!("{rpc_url} serves chain {actual}, not chain {chain_id}")));
        }
        if provider.get_code_at(registry).await?.is_empty() {
            return Err(Error::Invalid(format!("no contract at {registry} on chain {chain_id}")));
        }
        Ok(Self { registry: AuditRegistry::new(registry, provider) })
    }

    /// Every anchored checkpoint (tree size, root), oldest first.
    pub async fn anchors(&self) -> Result<Vec<(u64, [u8; 32])>> {
        let count: u64 = self.registry.checkpointCount().call().await.call_ctx("checkpointCount")?.try_into().unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity(count.min(1 << 20) as usize);
        let mut from = 0u64;
        while from < count {
            let sizes = self.registry.anchoredSizes(alloy::primitives::U256::from(from), alloy::primitives::U256::from(PAGE)).call().await.call_ctx("anchoredSizes")?;
            if sizes.is_empty() {
                break;
            }
            for size in &sizes {
                let root = self.registry.checkpointAt(*size).call().await.call_ctx("checkpointAt")?;
                out.push((*size, root.0));
            }
            from += sizes.len() as u64;
        }
        Ok(out)
    }

    /// The anchored root for `size`, if that size was anchored.
    pub async fn root_at(&self, size: u64) -> Result<Option<[u8; 32]>> {
        let root = self.registry.checkpointAt(size).call().await.call_ctx("checkpointAt")?;
        Ok((root.0 != [0; 32]).then_some(root.0))
    }

    /// Every agent key ever registered, with its current window.
    pub async fn keys(&self) -> Result<Vec<RegisteredKey>> {
        let list = self.registry.agentKeys().call().await.call_ctx("agentKeys")?;
        let mut out = Vec::with_capacity(list.len());
        for key in list {
            let w = self.registry.agentKey(key).call().await.call_ctx("agentKey")?;
            out.push(RegisteredKey { public_key: key.0, valid_from_s: w.validFrom, valid_until_s: w.validUntil });
        }
        Ok(out)
    }

    /// The registry's address.
    pub fn address(&self) -> Address {
        *self.registry.address()
    }
}
