// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {TestBase} from "./Vm.sol";
import {HostileToken} from "./Tokens.sol";
import {AssetToken} from "../../src/AssetToken.sol";
import {PriceFeed} from "../../src/PriceFeed.sol";
import {AuditRegistry} from "../../src/AuditRegistry.sol";
import {PortfolioLedger} from "../../src/PortfolioLedger.sol";
import {IUniswapV2Router, IUniswapV2Factory, IUniswapV2Pair} from "../../src/interfaces/IUniswapV2.sol";

/// @title A complete Ballast deployment on the forge test EVM: cash, three
/// assets with feeds, the real Uniswap V2 venue from the npm artifacts with
/// seeded pools, the registry and the ledger, and five funded accounts.
abstract contract Fixture is TestBase {
    uint256 internal constant START = 1_800_000_000;
    uint32 internal constant MAX_FEED_AGE = 1 hours;
    uint8 internal constant FEED_DECIMALS = 8;
    uint64 internal constant DUST = 999;
    uint256 internal constant ACCOUNTS = 5;
    uint256 internal constant ACCOUNT_CASH = 1_000_000e6;
    uint256 internal constant ACCOUNT_UNITS = 1_000e18;
    /// @dev 1e-6 of a share: legs count in these.
    uint128 internal constant QUANTUM = 1e12;

    address internal settler = address(0x5E7713);
    address internal guardian = address(0x6A4D);
    address internal accountAdmin = address(0xACC7);
    address internal stranger = address(0xBAD);

    AssetToken internal cash;
    AssetToken[] internal tokens;
    PriceFeed[] internal feeds;
    AuditRegistry internal registry;
    PortfolioLedger internal ledger;
    IUniswapV2Router internal router;
    IUniswapV2Factory internal factory;

    int256[3] internal prices = [int256(100e8), 50e8, 25e8];

    function setUp() public virtual {
        vm.warp(START);
        cash = new AssetToken("Ballast Dollar", "BUSD", 6, address(this));
        registry = new AuditRegistry(address(this), 0);

        address weth = _deploy(_uniswapCode("v2-periphery/build/WETH9.json"));
        factory = IUniswapV2Factory(
            _deploy(abi.encodePacked(_uniswapCode("v2-core/build/UniswapV2Factory.json"), abi.encode(address(this))))
        );
        router = IUniswapV2Router(
            _deploy(
                abi.encodePacked(
                    _uniswapCode("v2-periphery/build/UniswapV2Router02.json"),
                    abi.encode(address(factory), weth)
                )
            )
        );

        ledger = new PortfolioLedger(IERC20(address(cash)), registry, router, address(this), 0, DUST);
        registry.grantRole(registry.ANCHOR_ROLE(), address(ledger));
        ledger.grantRole(ledger.SETTLER_ROLE(), settler);
        ledger.grantRole(ledger.GUARDIAN_ROLE(), guardian);
        ledger.grantRole(ledger.ACCOUNT_ADMIN_ROLE(), accountAdmin);

        string[3] memory symbols = ["GEQ", "BND", "REIT"];
        for (uint256 i = 0; i < 3; ++i) {
            AssetToken t = new AssetToken(symbols[i], symbols[i], 18, address(this));
            PriceFeed f = new PriceFeed(FEED_DECIMALS, symbols[i], prices[i], address(this));
            tokens.push(t);
            feeds.push(f);
            ledger.registerAsset(IERC20(address(t)), f, MAX_FEED_AGE, QUANTUM);
            _seedPool(t, uint256(prices[i]), 1_000_000e18);
        }

        uint64[] memory ids = new uint64[](ACCOUNTS);
        address[] memory owners = new address[](ACCOUNTS);
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            ids[i] = uint64(i + 1);
            owners[i] = ownerOf(ids[i]);
        }
        vm.prank(accountAdmin);
        ledger.openAccounts(ids, owners);
        for (uint256 i = 0; i < ACCOUNTS; ++i) {
            _fund(ids[i], cash, ACCOUNT_CASH);
            for (uint256 a = 0; a < 3; ++a) {
                _fund(ids[i], tokens[a], ACCOUNT_UNITS);
            }
        }
    }

    /// @dev A hostile fourth asset (index 3) with a feed at 10.00 and a pool,
    /// held by every account, owning `account` (funded with cash and units);
    /// it holds `reentryCash` approved to the ledger and the settler role, so
    /// that its re-entrant deposits and settlements reach the guard.
    function _addHostileAsset(uint64 account, uint256 reentryCash)
        internal
        returns (HostileToken hostile, PriceFeed hostileFeed)
    {
        uint256 price = 10e8;
        hostile = new HostileToken("Hostile", "HST", address(this));
        hostileFeed = new PriceFeed(FEED_DECIMALS, "HST", int256(price), address(this));
        ledger.registerAsset(IERC20(address(hostile)), hostileFeed, MAX_FEED_AGE, QUANTUM);
        _seedPool(hostile, price, 1_000_000e18);

        uint64[] memory ids = new uint64[](1);
        address[] memory owners = new address[](1);
        ids[0] = account;
        owners[0] = address(hostile);
        vm.prank(accountAdmin);
        ledger.openAccounts(ids, owners);

        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            _fund(id, hostile, ACCOUNT_UNITS);
        }
        _fund(account, cash, 1_000e6);
        _fund(account, hostile, 10e18);
        cash.mint(address(hostile), reentryCash);
        hostile.approveOther(cash, address(ledger), type(uint256).max);
        ledger.grantRole(ledger.SETTLER_ROLE(), address(hostile));
    }

    function ownerOf(uint64 account) internal pure returns (address) {
        return address(uint160(0x0A000000 + uint256(account)));
    }

    /// @dev Creation code from a Uniswap npm artifact (its `bytecode` is hex without 0x).
    function _uniswapCode(string memory artifact) internal view returns (bytes memory) {
        string memory json = vm.readFile(string.concat("node_modules/@uniswap/", artifact));
        return vm.parseBytes(string.concat("0x", vm.parseJsonString(json, ".bytecode")));
    }

    function _deploy(bytes memory code) internal returns (address deployed) {
        assembly {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        require(deployed != address(0), "deploy failed");
    }

    /// @dev Pool of `units` asset base units against cash at `price` (feed decimals).
    function _seedPool(AssetToken t, uint256 price, uint256 units) internal {
        uint256 cashAmount = units * price * 1e6 / (1e18 * 10 ** FEED_DECIMALS);
        t.mint(address(this), units);
        cash.mint(address(this), cashAmount);
        t.approve(address(router), units);
        cash.approve(address(router), cashAmount);
        router.addLiquidity(address(t), address(cash), units, cashAmount, units, cashAmount, address(this), block.timestamp);
    }

    function _fund(uint64 account, AssetToken t, uint256 amount) internal {
        t.mint(address(this), amount);
        t.approve(address(ledger), amount);
        ledger.deposit(account, IERC20(address(t)), amount);
    }

    function _header(bytes32 batchId, uint64 size) internal view returns (PortfolioLedger.BatchHeader memory) {
        return PortfolioLedger.BatchHeader({
            batchId: batchId,
            deadline: uint64(block.timestamp + 60),
            checkpointSize: size,
            checkpointRoot: keccak256(abi.encode("root", size))
        });
    }

    /// @dev A leg as tests write it; `_orders` groups consecutive legs of an account.
    struct FlatLeg {
        uint64 account;
        uint16 asset;
        int64 quanta;
    }

    FlatLeg[] internal flatLegs;

    function _leg(uint64 account, uint16 asset, int64 quanta) internal {
        flatLegs.push(FlatLeg(account, asset, quanta));
    }

    function _recordHash(uint64 account) internal pure returns (bytes32) {
        return keccak256(abi.encode("decision", account));
    }

    function _orders() internal view returns (PortfolioLedger.Order[] memory orders) {
        uint256 n = flatLegs.length;
        uint256 count = 0;
        for (uint256 i = 0; i < n; ++i) {
            if (i == 0 || flatLegs[i].account != flatLegs[i - 1].account) count++;
        }
        orders = new PortfolioLedger.Order[](count);
        uint256 o = 0;
        for (uint256 i = 0; i < n;) {
            uint256 j = i;
            while (j < n && flatLegs[j].account == flatLegs[i].account) j++;
            PortfolioLedger.Leg[] memory legs = new PortfolioLedger.Leg[](j - i);
            for (uint256 k = i; k < j; ++k) {
                legs[k - i] = PortfolioLedger.Leg({asset: flatLegs[k].asset, quanta: flatLegs[k].quanta});
            }
            orders[o++] = PortfolioLedger.Order({
                account: flatLegs[i].account,
                recordHash: _recordHash(flatLegs[i].account),
                legs: legs
            });
            i = j;
        }
    }

    /// @dev Declared per-asset totals of `flatLegs` for the fixture's three
    /// assets, each with the slippage bound `bps`; legs of other assets are left
    /// undeclared.
    function _trades(uint16 bps) internal view returns (PortfolioLedger.AssetTrade[] memory) {
        return _tradesFor(bps, 3);
    }

    /// @dev Declared per-asset totals of `flatLegs` for assets below `assetLimit`
    /// (at most 16), each with the slippage bound `bps`.
    function _tradesFor(uint16 bps, uint256 assetLimit) internal view returns (PortfolioLedger.AssetTrade[] memory trades) {
        require(assetLimit <= 16, "assetLimit");
        uint128[16] memory bought;
        uint128[16] memory sold;
        bool[16] memory used;
        uint256 count = 0;
        for (uint256 i = 0; i < flatLegs.length; ++i) {
            FlatLeg memory l = flatLegs[i];
            if (l.asset >= assetLimit) continue;
            if (!used[l.asset]) count++;
            used[l.asset] = true;
            if (l.quanta > 0) bought[l.asset] += uint128(uint64(l.quanta));
            else sold[l.asset] += uint128(uint64(-l.quanta));
        }
        trades = new PortfolioLedger.AssetTrade[](count);
        uint256 t = 0;
        for (uint16 a = 0; a < assetLimit; ++a) {
            if (!used[a]) continue;
            trades[t++] = PortfolioLedger.AssetTrade({
                asset: a,
                maxSlippageBps: bps,
                boughtQuanta: bought[a],
                soldQuanta: sold[a]
            });
        }
    }

    function _pairReserves(uint16 asset) internal view returns (uint256 assetReserve, uint256 cashReserve) {
        IUniswapV2Pair pair = IUniswapV2Pair(factory.getPair(address(tokens[asset]), address(cash)));
        (uint112 r0, uint112 r1,) = pair.getReserves();
        (assetReserve, cashReserve) = pair.token0() == address(tokens[asset]) ? (uint256(r0), uint256(r1)) : (uint256(r1), uint256(r0));
    }

    /// @dev Sum of every book's balance of `token` (accounts 1..ACCOUNTS and the dust account).
    function _bookTotal(IERC20 token) internal view returns (uint256 total) {
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            total += _balance(id, token);
        }
        total += _balance(DUST, token);
    }

    function _balance(uint64 account, IERC20 token) internal view returns (uint256) {
        if (address(token) == address(cash)) return ledger.cashOf(account);
        return ledger.unitsOf(account, ledger.assetIndexOf(token));
    }
}
