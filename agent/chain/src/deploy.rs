//! Deploys Ballast's contracts and the Uniswap V2 venue, grants the roles,
//! registers the assets with their feeds and seeds the pools; opens and funds
//! client accounts.

use std::path::Path;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};

use crate::{
    bindings::{AssetToken, AuditRegistry, IUniswapV2Factory, IUniswapV2Router, PortfolioLedger, PriceFeed},
    devnet::{self, Devnet},
    error::CallContext,
    manifest::{AssetInfo, CashInfo, Contracts, Manifest, Roles},
    Error, Result,
};

/// Accounts opened or funded per transaction, so that each stays far below the block gas limit.
pub const ACCOUNTS_PER_TX: usize = 400;

/// One asset to deploy.
#[derive(Debug, Clone)]
pub struct AssetSpec {
    pub symbol: String,
    pub name: String,
    pub decimals: u8,
    /// Base units per ledger quantum.
    pub quantum: u128,
    /// Initial feed answer with [`DeployConfig::feed_decimals`] decimals.
    pub price: i64,
    /// Whole units of the asset seeded into its venue pool.
    pub pool_units: u64,
}

/// What to deploy, with defaults for the devnet.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub cash_symbol: String,
    pub cash_name: String,
    pub cash_decimals: u8,
    pub assets: Vec<AssetSpec>,
    pub feed_decimals: u8,
    pub max_feed_age_s: u32,
    pub max_slippage_cap_bps: u16,
    pub dust_account: u64,
    /// Delay of a default-admin transfer (OpenZeppelin `AccessControlDefaultAdminRules`).
    pub admin_delay_s: u64,
}

impl Default for DeployConfig {
    fn default() -> Self {
        let asset = |symbol: &str, name: &str, price_whole: i64| AssetSpec {
            symbol: symbol.into(),
            name: name.into(),
            decimals: 18,
            quantum: 1_000_000_000_000, // 1e-6 of a share
            price: price_whole * 100_000_000,
            pool_units: 1_000_000,
        };
        Self {
            cash_symbol: "BUSD".into(),
            cash_name: "Ballast Dollar".into(),
            cash_decimals: 6,
            assets: vec![
                asset("GEQ", "Global Equity Fund", 100),
                asset("BND", "Aggregate Bond Fund", 50),
                asset("REIT", "Real Estate Fund", 25),
                asset("EMK", "Emerging Markets Fund", 40),
            ],
            feed_decimals: 8,
            max_feed_age_s: 3_600,
            max_slippage_cap_bps: 500,
            dust_account: 0,
            admin_delay_s: 86_400,
        }
    }
}

/// The keys that act on a deployment.
#[derive(Debug, Clone)]
pub struct Signers {
    pub admin: PrivateKeySigner,
    pub settler: PrivateKeySigner,
    pub guardian: PrivateKeySigner,
}

impl Signers {
    /// Anvil's development keys 0, 1 and 2.
    pub fn from_devnet(devnet: &Devnet) -> Result<Self> {
        let keys = devnet.dev_keys();
        if keys.len() < 3 {
            return Err(Error::Invalid("the devnet needs at least 3 development keys".into()));
        }
        Ok(Self { admin: keys[0].clone(), settler: keys[1].clone(), guardian: keys[2].clone() })
    }
}

/// How often a receipt is polled for on a node of this machine.
pub const LOCAL_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// A provider that signs with `signer` and fills nonce, gas and chain id.
pub fn provider(rpc_url: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url = rpc_url.parse().map_err(|e| Error::Invalid(format!("rpc url {rpc_url}: {e}")))?;
    let p = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased();
    if p.client().is_local() {
        // A node on this machine answers in a millisecond; alloy's default
        // 250 ms between receipt polls would dominate every transaction.
        p.client().set_poll_interval(LOCAL_POLL_INTERVAL);
    }
    Ok(p)
}

/// A deployment and providers for its roles.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub manifest: Manifest,
    pub admin: DynProvider,
    pub settler: DynProvider,
    pub guardian: DynProvider,
}

impl Deployment {
    pub fn ledger(&self) -> PortfolioLedger::PortfolioLedgerInstance<DynProvider> {
        PortfolioLedger::new(self.manifest.contracts.portfolio_ledger, self.admin.clone())
    }

    pub fn registry(&self) -> AuditRegistry::AuditRegistryInstance<DynProvider> {
        AuditRegistry::new(self.manifest.contracts.audit_registry, self.admin.clone())
    }

    /// Connects to an existing deployment described by `manifest`.
    pub fn connect(manifest: Manifest, signers: &Signers) -> Result<Self> {
        Ok(Self {
            admin: provider(&manifest.rpc_url, signers.admin.clone())?,
            settler: provider(&manifest.rpc_url, signers.settler.clone())?,
            guardian: provider(&manifest.rpc_url, signers.guardian.clone())?,
            manifest,
        })
    }
}

/// Deploys everything on a devnet with its development keys.
pub async fn deploy(devnet: &Devnet, config: &DeployConfig) -> Result<Deployment> {
    deploy_to(&devnet.endpoint(), &Signers::from_devnet(devnet)?, &devnet::contracts_dir(), config).await
}

/// Deploys everything through `rpc_url`; `contracts_dir` holds the Uniswap npm artifacts.
pub async fn deploy_to(
    rpc_url: &str,
    signers: &Signers,
    contracts_dir: &Path,
    config: &DeployConfig,
) -> Result<Deployment> {
    let admin_addr = signers.admin.address();
    let settler_addr = signers.settler.address();
    let guardian_addr = signers.guardian.address();
    let p = provider(rpc_url, signers.admin.clone())?;
    let chain_id = p.get_chain_id().await?;
    let delay = alloy::primitives::aliases::U48::from(config.admin_delay_s);

    let cash = AssetToken::deploy(
        p.clone(),
        config.cash_name.clone(),
        config.cash_symbol.clone(),
        config.cash_decimals,
        admin_addr,
    )
    .await
    .call_ctx("deploy cash AssetToken")?;
    let registry = AuditRegistry::deploy(p.clone(), admin_addr, delay).await.call_ctx("deploy AuditRegistry")?;

    let weth = deploy_bytecode(&p, uniswap_bytecode(contracts_dir, "v2-periphery", "WETH9")?, "WETH9").await?;
    let mut factory_code = uniswap_bytecode(contracts_dir, "v2-core", "UniswapV2Factory")?;
    factory_code.extend_from_slice(&admin_addr.abi_encode());
    let factory = deploy_bytecode(&p, factory_code, "UniswapV2Factory").await?;
    let mut router_code = uniswap_bytecode(contracts_dir, "v2-periphery", "UniswapV2Router02")?;
    router_code.extend_from_slice(&(factory, weth).abi_encode_params());
    let router_addr = deploy_bytecode(&p, router_code, "UniswapV2Router02").await?;

    let ledger = PortfolioLedger::deploy(
        p.clone(),
        *cash.address(),
        *registry.address(),
        router_addr,
        admin_addr,
        delay,
        config.dust_account,
    )
    .await
    .call_ctx("deploy PortfolioLedger")?;

    let anchor_role = registry.ANCHOR_ROLE().call().await.call_ctx("ANCHOR_ROLE")?;
    send(registry.grantRole(anchor_role, *ledger.address()), "grant ANCHOR_ROLE to ledger").await?;
    send(registry.grantRole(anchor_role, settler_addr), "grant ANCHOR_ROLE to settler").await?;
    let key_admin = registry.KEY_ADMIN_ROLE().call().await.call_ctx("KEY_ADMIN_ROLE")?;
    send(registry.grantRole(key_admin, admin_addr), "grant KEY_ADMIN_ROLE").await?;
    let ips_role = registry.IPS_ROLE().call().await.call_ctx("IPS_ROLE")?;
    send(registry.grantRole(ips_role, admin_addr), "grant IPS_ROLE").await?;
    let settler_role = ledger.SETTLER_ROLE().call().await.call_ctx("SETTLER_ROLE")?;
    send(ledger.grantRole(settler_role, settler_addr), "grant SETTLER_ROLE").await?;
    let guardian_role = ledger.GUARDIAN_ROLE().call().await.call_ctx("GUARDIAN_ROLE")?;
    send(ledger.grantRole(guardian_role, guardian_addr), "grant GUARDIAN_ROLE").await?;
    let account_admin = ledger.ACCOUNT_ADMIN_ROLE().call().await.call_ctx("ACCOUNT_ADMIN_ROLE")?;
    send(ledger.grantRole(account_admin, admin_addr), "grant ACCOUNT_ADMIN_ROLE").await?;
    send(ledger.setMaxSlippageCap(config.max_slippage_cap_bps), "setMaxSlippageCap").await?;

    let router = IUniswapV2Router::new(router_addr, p.clone());
    let factory_i = IUniswapV2Factory::new(factory, p.clone());
    let mut assets = Vec::with_capacity(config.assets.len());
    for (index, spec) in config.assets.iter().enumerate() {
        let token = AssetToken::deploy(p.clone(), spec.name.clone(), spec.symbol.clone(), spec.decimals, admin_addr)
            .await
            .call_ctx("deploy AssetToken")?;
        let feed = PriceFeed::deploy(
            p.clone(),
            config.feed_decimals,
            format!("{} / {}", spec.symbol, config.cash_symbol),
            alloy::primitives::I256::try_from(spec.price).expect("i64 fits"),
            admin_addr,
        )
        .await
        .call_ctx("deploy PriceFeed")?;
        send(
            ledger.registerAsset(*token.address(), *feed.address(), config.max_feed_age_s, spec.quantum),
            "registerAsset",
        )
        .await?;

        // Seed the pool at the feed price.
        let units = whole(spec.pool_units, spec.decimals);
        let cash_amount = whole(spec.pool_units, config.cash_decimals) * U256::from(spec.price as u64)
            / whole(1, config.feed_decimals);
        send(token.mint(admin_addr, units), "mint pool units").await?;
        send(cash.mint(admin_addr, cash_amount), "mint pool cash").await?;
        send(token.approve(router_addr, units), "approve router").await?;
        send(cash.approve(router_addr, cash_amount), "approve router").await?;
        send(
            router.addLiquidity(
                *token.address(),
                *cash.address(),
                units,
                cash_amount,
                units,
                cash_amount,
                admin_addr,
                U256::from(u64::MAX),
            ),
            "addLiquidity",
        )
        .await?;
        let pair = factory_i.getPair(*token.address(), *cash.address()).call().await.call_ctx("getPair")?;

        assets.push(AssetInfo {
            index: index as u16,
            symbol: spec.symbol.clone(),
            name: spec.name.clone(),
            token: *token.address(),
            feed: *feed.address(),
            pair,
            decimals: spec.decimals,
            quantum: spec.quantum,
            feed_decimals: config.feed_decimals,
            initial_price: spec.price,
        });
    }

    let manifest = Manifest {
        chain_id,
        rpc_url: rpc_url.to_string(),
        deployed_at_block: p.get_block_number().await?,
        roles: Roles { admin: admin_addr, settler: settler_addr, guardian: guardian_addr },
        contracts: Contracts {
            cash_token: *cash.address(),
            audit_registry: *registry.address(),
            portfolio_ledger: *ledger.address(),
            uniswap_factory: factory,
            uniswap_router: router_addr,
            weth,
        },
        cash: CashInfo { symbol: config.cash_symbol.clone(), decimals: config.cash_decimals },
        assets,
        dust_account: config.dust_account,
        max_feed_age_s: config.max_feed_age_s,
        max_slippage_cap_bps: config.max_slippage_cap_bps,
    };
    tracing::info!(target: "ballast::deploy", ledger = %manifest.contracts.portfolio_ledger, assets = manifest.assets.len(), "deployed");
    Ok(Deployment {
        admin: p,
        settler: provider(rpc_url, signers.settler.clone())?,
        guardian: provider(rpc_url, signers.guardian.clone())?,
        manifest,
    })
}

/// What one client account starts with, in token base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funding {
    pub cash: U256,
    /// Per asset, in manifest order.
    pub units: Vec<U256>,
}

impl Funding {
    /// `cash` whole units of cash and `units` whole units of every asset.
    pub fn uniform(manifest: &Manifest, cash: u64, units: u64) -> Self {
        Self {
            cash: whole(cash, manifest.cash.decimals),
            units: manifest.assets.iter().map(|a| whole(units, a.decimals)).collect(),
        }
    }
}

/// `n` whole units of a token with `decimals` decimals, in base units.
pub fn whole(n: u64, decimals: u8) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(decimals))
}

/// Opens `ids` (owned by `owner`) and funds each with `funding(id)`, minting
/// the tokens to the admin first: a devnet convenience, batched per
/// [`ACCOUNTS_PER_TX`].
pub async fn open_and_fund_accounts(
    deployment: &Deployment,
    ids: &[u64],
    owner: Address,
    funding: impl Fn(u64) -> Funding,
) -> Result<()> {
    let m = &deployment.manifest;
    let p = &deployment.admin;
    let ledger = deployment.ledger();
    let fundings: Vec<Funding> = ids.iter().map(|&id| funding(id)).collect();
    if fundings.iter().any(|f| f.units.len() != m.assets.len()) {
        return Err(Error::Invalid(format!("funding must name {} assets", m.assets.len())));
    }
    for chunk in ids.chunks(ACCOUNTS_PER_TX) {
        send(ledger.openAccounts(chunk.to_vec(), vec![owner; chunk.len()]), "openAccounts").await?;
    }
    let mut tokens = vec![(m.contracts.cash_token, fundings.iter().map(|f| f.cash).collect::<Vec<_>>())];
    for (i, asset) in m.assets.iter().enumerate() {
        tokens.push((asset.token, fundings.iter().map(|f| f.units[i]).collect()));
    }
    for (token_addr, amounts) in tokens {
        let token = AssetToken::new(token_addr, p.clone());
        for (id_chunk, amount_chunk) in ids.chunks(ACCOUNTS_PER_TX).zip(amounts.chunks(ACCOUNTS_PER_TX)) {
            let total: U256 = amount_chunk.iter().copied().sum();
            if total.is_zero() {
                continue;
            }
            send(token.mint(m.roles.admin, total), "mint for deposits").await?;
            send(token.approve(m.contracts.portfolio_ledger, total), "approve ledger").await?;
            send(ledger.depositBatch(token_addr, id_chunk.to_vec(), amount_chunk.to_vec()), "depositBatch").await?;
        }
    }
    Ok(())
}

/// Sends a contract call and waits for a successful receipt; a refusal or a
/// revert is an error naming the call (and the contract's decoded error).
pub async fn send<P, D>(
    call: alloy::contract::CallBuilder<P, D>,
    name: &'static str,
) -> Result<TransactionReceipt>
where
    P: Provider,
    D: alloy::contract::CallDecoder,
{
    let receipt = call.send().await.call_ctx(name)?.get_receipt().await.call_ctx(name)?;
    if !receipt.status() {
        return Err(Error::Reverted { call: name, tx: receipt.transaction_hash });
    }
    Ok(receipt)
}

async fn deploy_bytecode(p: &DynProvider, code: Vec<u8>, name: &'static str) -> Result<Address> {
    let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
    let receipt = p.send_transaction(tx).await?.get_receipt().await.call_ctx(name)?;
    if !receipt.status() {
        return Err(Error::Reverted { call: name, tx: receipt.transaction_hash });
    }
    receipt.contract_address.ok_or(Error::NoContractAddress(name))
}

/// Creation code from a compiled artifact shipped by the `@uniswap/<package>` npm package.
fn uniswap_bytecode(contracts_dir: &Path, package: &str, name: &str) -> Result<Vec<u8>> {
    let path = contracts_dir.join("node_modules/@uniswap").join(package).join("build").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::BadFile { path: path.clone(), message: e.to_string() })?;
    let hex_code = json["bytecode"]
        .as_str()
        .ok_or_else(|| Error::BadFile { path: path.clone(), message: "no string field `bytecode`".into() })?;
    hex::decode(hex_code.trim_start_matches("0x"))
        .map_err(|e| Error::BadFile { path, message: format!("`bytecode` is not hex: {e}") })
}
