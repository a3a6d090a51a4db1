// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {CheatBase} from "./Vm.sol";
import {HostileToken} from "./Tokens.sol";
import {AssetToken} from "../../src/AssetToken.sol";
import {AuditRegistry} from "../../src/AuditRegistry.sol";
import {PortfolioLedger} from "../../src/PortfolioLedger.sol";
import {IAggregatorV3} from "../../src/interfaces/IAggregatorV3.sol";
import {IUniswapV2Router} from "../../src/interfaces/IUniswapV2.sol";

/// @title The actions an invariant campaign takes against a deployed ledger,
/// with ghost variables recording what must never happen.
/// @dev The handler holds no role itself: it pranks as the settler, the
/// guardian, account owners, the account admin, or as random callers. It
/// needs the minter role of every token to fund deposits.
contract LedgerHandler is CheatBase {
    struct Config {
        PortfolioLedger ledger;
        AuditRegistry registry;
        HostileToken hostile;
        uint64 hostileAccount;
        address settler;
        address guardian;
        address accountAdmin;
        address stranger;
        AssetToken spare; // an unregistered token, for unauthorised registerAsset
        IAggregatorV3 spareFeed;
    }

    uint256 internal constant TRADERS = 5;
    uint256 internal constant MAX_LEG_QUANTA = 200e6;
    uint16 internal constant SLIPPAGE_BPS = 300;

    PortfolioLedger public immutable ledger;
    AuditRegistry public immutable registry;
    HostileToken public immutable hostile;
    uint64 public immutable hostileAccount;
    address internal immutable settler;
    address internal immutable guardian;
    address internal immutable accountAdmin;
    address internal immutable stranger;
    AssetToken internal immutable spare;
    IAggregatorV3 internal immutable spareFeed;

    /// @dev Index 0 is cash; index i + 1 is ledger asset i.
    IERC20[] internal _tokens;
    uint256[] internal _quanta;
    uint64[] internal _bookAccounts;

    // ------------------------------------------------------------ ghosts

    uint256 public batchNonce;
    bytes32[] internal _settledIds;
    /// @notice Settlements of an already-settled batch id that went through.
    uint256 public retrySuccesses;
    /// @notice Retries (while not paused) refused for another reason than BatchAlreadySettled.
    uint256 public retryWrongReason;
    /// @notice Reverted settlements whose batch id is nevertheless marked settled.
    uint256 public revertedButMarked;
    /// @notice Calls without the needed role that went through.
    uint256 public unauthorisedSuccesses;
    /// @notice Calls without the needed role refused for another reason than the role.
    uint256 public unauthorisedWrongReason;
    /// @notice State-changing ledger calls that went through while paused.
    uint256 public pausedSuccesses;
    /// @notice Calls while paused after which a book, a ledger balance or the registry differed.
    uint256 public pausedChanges;
    /// @notice Deposits and withdrawals with valid arguments that failed while not paused.
    uint256 public unexpectedFailures;
    /// @notice Settlements with a conflicting or non-increasing checkpoint that went through.
    uint256 public badAnchorsAccepted;
    uint64 public latestSize;
    uint64[] internal _anchoredSizes;
    bytes32[] internal _anchoredRoots;

    // Counters, to see that the campaign does reach every path.
    uint256 public actions;
    uint256 public pauses;
    /// @dev Actions taken since the last pause; the guardian lifts a pause after a few.
    uint256 internal _actionsWhilePaused;
    uint256 public unpauses;
    uint256 public depositsOk;
    uint256 public withdrawalsOk;
    uint256 public settlementsOk;
    uint256 public settlementsFailed;
    /// @notice Settlements that failed while not paused, and the last such revert data.
    uint256 public settlementsFailedUnpaused;
    bytes public lastSettleFailure;
    uint256 public retries;
    uint256 public pausedAttempts;
    uint256 public unauthorisedAttempts;

    constructor(Config memory c, uint64[] memory bookAccounts) {
        ledger = c.ledger;
        registry = c.registry;
        hostile = c.hostile;
        hostileAccount = c.hostileAccount;
        settler = c.settler;
        guardian = c.guardian;
        accountAdmin = c.accountAdmin;
        stranger = c.stranger;
        spare = c.spare;
        spareFeed = c.spareFeed;
        _tokens.push(c.ledger.cashToken());
        _quanta.push(1);
        for (uint16 i = 0; i < c.ledger.assetCount(); ++i) {
            PortfolioLedger.Asset memory a = c.ledger.assetInfo(i);
            _tokens.push(a.token);
            _quanta.push(a.quantum);
        }
        _bookAccounts = bookAccounts;
        _armHostile(1);
    }

    // ------------------------------------------------------------ views for the invariants

    function tokenCount() external view returns (uint256) {
        return _tokens.length;
    }

    function tokenAt(uint256 i) external view returns (IERC20) {
        return _tokens[i];
    }

    function bookAccounts() external view returns (uint64[] memory) {
        return _bookAccounts;
    }

    function settledIds() external view returns (bytes32[] memory) {
        return _settledIds;
    }

    function anchored() external view returns (uint64[] memory sizes, bytes32[] memory roots) {
        return (_anchoredSizes, _anchoredRoots);
    }

    /// @notice Sum over every book of the token at index `t` (0 = cash), in base units.
    function bookTotal(uint256 t) public view returns (uint256 total) {
        for (uint256 i = 0; i < _bookAccounts.length; ++i) {
            total += t == 0 ? ledger.cashOf(_bookAccounts[i]) : ledger.unitsOf(_bookAccounts[i], uint16(t - 1));
        }
    }

    // ------------------------------------------------------------ actions

    function deposit(uint256 accountSeed, uint256 tokenSeed, uint256 amountSeed, bool batch) external {
        actions++;
        _expirePause();
        _deposit(accountSeed, tokenSeed, amountSeed, batch);
    }

    function withdraw(uint256 accountSeed, uint256 tokenSeed, uint256 amountSeed, bool byAdmin) external {
        actions++;
        _expirePause();
        _withdraw(accountSeed, tokenSeed, amountSeed, byAdmin);
    }

    /// @notice Settles two random batches in a row.
    function settle(uint256 seed) external {
        actions++;
        _expirePause();
        _settle(seed);
        _settle(uint256(keccak256(abi.encode(seed))));
    }

    /// @notice Settles an already-settled batch id again, with a fresh valid batch and checkpoint.
    function retrySettled(uint256 seed) external {
        actions++;
        _expirePause();
        if (_settledIds.length == 0) return;
        bytes32 id = _settledIds[seed % _settledIds.length];
        (PortfolioLedger.Order[] memory orders, PortfolioLedger.AssetTrade[] memory trades) = _randomBatch(seed);
        PortfolioLedger.BatchHeader memory h = PortfolioLedger.BatchHeader({
            batchId: id,
            deadline: uint64(block.timestamp + 60),
            checkpointSize: latestSize + 1,
            checkpointRoot: keccak256(abi.encode("retry", seed))
        });
        bool paused = ledger.paused();
        retries++;
        (bool ok, bytes memory ret) =
            _ledgerCall(settler, abi.encodeCall(PortfolioLedger.settleBatch, (h, orders, trades)));
        if (ok) {
            retrySuccesses++;
        } else if (
            !paused
                && keccak256(ret) != keccak256(abi.encodeWithSelector(PortfolioLedger.BatchAlreadySettled.selector, id))
        ) {
            retryWrongReason++;
        }
    }

    /// @notice The guardian pauses, one time in three, so that the ledger is
    /// not paused most of the campaign (`unpause` always goes through).
    function pause(uint256 seed) external {
        actions++;
        if (seed % 3 != 0) return;
        vm.prank(guardian);
        try ledger.pause() {
            pauses++;
            _actionsWhilePaused = 0;
        } catch {}
    }

    function unpause() external {
        actions++;
        vm.prank(guardian);
        try ledger.unpause() {
            unpauses++;
        } catch {}
    }

    /// @notice Pauses if needed, tries one valid state-changing call, then restores the pause state.
    function callWhilePaused(uint256 which, uint256 seedA, uint256 seedB, uint256 seedC) external {
        actions++;
        bool wasPaused = ledger.paused();
        if (!wasPaused) {
            vm.prank(guardian);
            ledger.pause();
        }
        uint256 w = which % 4;
        if (w == 0) _deposit(seedA, seedB, seedC, false);
        else if (w == 1) _deposit(seedA, seedB, seedC, true);
        else if (w == 2) _withdraw(seedA, seedB, seedC, (which & 4) != 0);
        else _settle(seedA);
        if (!wasPaused) {
            vm.prank(guardian);
            ledger.unpause();
        }
    }

    /// @notice A caller without the needed role tries one restricted function.
    function unauthorised(uint256 callerSeed, uint256 which) external {
        actions++;
        address caller = address(uint160(callerSeed));
        uint256 w = which % 13;
        (address target, bytes32 role) = _restrictedTarget(w);
        if (caller == address(vm) || IAccessControl(target).hasRole(role, caller)) caller = stranger;
        bytes memory data = _restrictedCall(w, caller);
        unauthorisedAttempts++;
        vm.prank(caller);
        (bool ok, bytes memory ret) = target.call(data);
        if (ok) {
            unauthorisedSuccesses++;
        } else if (
            keccak256(ret)
                != keccak256(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role))
        ) {
            unauthorisedWrongReason++;
        }
    }

    /// @notice Points the hostile token's transfer hook at another re-entrant call.
    function rearmHostile(uint256 mode) external {
        actions++;
        _armHostile(mode);
    }

    // ------------------------------------------------------------ internals

    /// @dev A pause lasts three deposit, withdrawal or settlement actions, then the guardian lifts it.
    function _expirePause() internal {
        if (!ledger.paused() || ++_actionsWhilePaused <= 3) return;
        vm.prank(guardian);
        ledger.unpause();
        unpauses++;
    }

    function _trader(uint256 seed) internal pure returns (uint64) {
        return uint64(1 + seed % TRADERS);
    }

    /// @dev Calls the ledger as `from`; while paused, records whether the call
    /// went through or changed anything.
    function _ledgerCall(address from, bytes memory data) internal returns (bool ok, bytes memory ret) {
        bool paused = ledger.paused();
        bytes32 before = paused ? _stateHash() : bytes32(0);
        vm.prank(from);
        (ok, ret) = address(ledger).call(data);
        if (paused) {
            pausedAttempts++;
            if (ok) pausedSuccesses++;
            if (_stateHash() != before) pausedChanges++;
        }
    }

    /// @dev Every book, the ledger's balance of every token, and the registry's checkpoints.
    function _stateHash() internal view returns (bytes32 h) {
        for (uint256 i = 0; i < _bookAccounts.length; ++i) {
            (uint256 c, uint256[] memory units, bool frozen) = ledger.positionsOf(_bookAccounts[i]);
            h = keccak256(abi.encode(h, c, units, frozen));
        }
        for (uint256 t = 0; t < _tokens.length; ++t) {
            h = keccak256(abi.encode(h, _tokens[t].balanceOf(address(ledger))));
        }
        h = keccak256(abi.encode(h, registry.checkpointCount(), registry.latestSize()));
    }

    function _deposit(uint256 accountSeed, uint256 tokenSeed, uint256 amountSeed, bool batch) internal {
        uint64 account = _trader(accountSeed);
        uint256 t = tokenSeed % _tokens.length;
        IERC20 token = _tokens[t];
        uint256 amount = t == 0 ? bound(amountSeed, 0, 100_000e6) : bound(amountSeed, 0, 1_000e6) * _quanta[t];
        address from = ledger.ownerOf(account);
        AssetToken(address(token)).mint(from, amount);
        vm.prank(from);
        token.approve(address(ledger), amount);
        bytes memory data;
        if (batch) {
            // Two entries for the same account, split unevenly in whole quanta.
            uint64[] memory ids = new uint64[](2);
            uint256[] memory amounts = new uint256[](2);
            ids[0] = account;
            ids[1] = _trader(accountSeed >> 8);
            // Rounds down to whole quanta on purpose.
            // forge-lint: disable-next-line(divide-before-multiply)
            amounts[0] = (amount / _quanta[t] / 3) * _quanta[t];
            amounts[1] = amount - amounts[0];
            data = abi.encodeCall(PortfolioLedger.depositBatch, (token, ids, amounts));
        } else {
            data = abi.encodeCall(PortfolioLedger.deposit, (account, token, amount));
        }
        bool paused = ledger.paused();
        (bool ok,) = _ledgerCall(from, data);
        if (ok) depositsOk++;
        else if (!paused) unexpectedFailures++;
    }

    function _withdraw(uint256 accountSeed, uint256 tokenSeed, uint256 amountSeed, bool byAdmin) internal {
        uint64 account = _trader(accountSeed);
        uint256 t = tokenSeed % _tokens.length;
        IERC20 token = _tokens[t];
        uint256 held = t == 0 ? ledger.cashOf(account) : ledger.unitsOf(account, uint16(t - 1));
        uint256 amount = bound(amountSeed, 0, held / _quanta[t]) * _quanta[t];
        address owner = ledger.ownerOf(account);
        bool paused = ledger.paused();
        (bool ok,) = _ledgerCall(
            byAdmin ? accountAdmin : owner, abi.encodeCall(PortfolioLedger.withdraw, (account, token, amount, owner))
        );
        if (ok) withdrawalsOk++;
        else if (!paused) unexpectedFailures++;
    }

    /// @dev A random batch of 1-3 orders for distinct traders, 1-2 legs each on
    /// distinct assets; sells never exceed what the account holds.
    function _randomBatch(uint256 seed)
        internal
        view
        returns (PortfolioLedger.Order[] memory orders, PortfolioLedger.AssetTrade[] memory trades)
    {
        uint256 nAssets = _tokens.length - 1;
        uint256 nOrders = 1 + seed % 3;
        uint256 start = (seed >> 8) % TRADERS;
        uint256[] memory bought = new uint256[](nAssets);
        uint256[] memory sold = new uint256[](nAssets);
        orders = new PortfolioLedger.Order[](nOrders);
        for (uint256 i = 0; i < nOrders; ++i) {
            uint64 account = uint64(1 + (start + i) % TRADERS);
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            PortfolioLedger.Leg[] memory legs = new PortfolioLedger.Leg[](1 + r % 2);
            for (uint256 j = 0; j < legs.length; ++j) {
                uint16 asset = uint16(((r >> 8) + j) % nAssets);
                uint256 rr = uint256(keccak256(abi.encode(r, j)));
                uint256 heldQuanta = ledger.unitsOf(account, asset) / _quanta[asset + 1];
                bool sell = (rr & 1) == 1 && heldQuanta > 0;
                uint256 q = bound(rr >> 1, 1, sell && heldQuanta < MAX_LEG_QUANTA ? heldQuanta : MAX_LEG_QUANTA);
                legs[j] = PortfolioLedger.Leg({asset: asset, quanta: sell ? -int64(uint64(q)) : int64(uint64(q))});
                if (sell) sold[asset] += q;
                else bought[asset] += q;
            }
            orders[i] = PortfolioLedger.Order({
                account: account,
                recordHash: keccak256(abi.encode("record", account, seed)),
                legs: legs
            });
        }
        uint256 used = 0;
        for (uint256 a = 0; a < nAssets; ++a) {
            if (bought[a] + sold[a] != 0) used++;
        }
        trades = new PortfolioLedger.AssetTrade[](used);
        uint256 k = 0;
        for (uint256 a = 0; a < nAssets; ++a) {
            if (bought[a] + sold[a] == 0) continue;
            trades[k++] = PortfolioLedger.AssetTrade({
                asset: uint16(a),
                maxSlippageBps: SLIPPAGE_BPS,
                boughtQuanta: uint128(bought[a]),
                soldQuanta: uint128(sold[a])
            });
        }
    }

    /// @dev Settles a random batch under a fresh id. The checkpoint is usually
    /// new and larger; sometimes the latest one again (a no-op anchor, the batch
    /// settles), an anchored size with another root, or an unanchored size
    /// below the latest (both must revert the whole batch).
    function _settle(uint256 seed) internal {
        (PortfolioLedger.Order[] memory orders, PortfolioLedger.AssetTrade[] memory trades) = _randomBatch(seed);
        uint256 mode = (seed >> 200) % 12;
        uint256 n = _anchoredSizes.length;
        uint64 size;
        bytes32 root;
        bool mustFail = false;
        if (mode == 0 && n != 0) {
            size = latestSize;
            root = _anchoredRoots[n - 1];
        } else if (mode == 1 && n != 0) {
            uint256 pick = (seed >> 120) % n;
            size = _anchoredSizes[pick];
            root = keccak256(abi.encode("conflict", size, batchNonce));
            mustFail = true;
        } else if (mode == 2 && latestSize > 1 && registry.checkpointAt(latestSize - 1) == bytes32(0)) {
            size = latestSize - 1;
            root = keccak256(abi.encode("stale", size, batchNonce));
            mustFail = true;
        } else {
            size = latestSize + 1 + uint64((seed >> 100) % 3);
            root = keccak256(abi.encode("root", size, batchNonce));
        }
        bytes32 id = keccak256(abi.encode("batch", batchNonce++));
        PortfolioLedger.BatchHeader memory h = PortfolioLedger.BatchHeader({
            batchId: id,
            deadline: uint64(block.timestamp + 60),
            checkpointSize: size,
            checkpointRoot: root
        });
        bool paused = ledger.paused();
        (bool ok, bytes memory ret) =
            _ledgerCall(settler, abi.encodeCall(PortfolioLedger.settleBatch, (h, orders, trades)));
        if (ok) {
            settlementsOk++;
            _settledIds.push(id);
            if (mustFail) badAnchorsAccepted++;
            if (size > latestSize) {
                _anchoredSizes.push(size);
                _anchoredRoots.push(root);
                latestSize = size;
            }
        } else {
            settlementsFailed++;
            if (!paused && !mustFail) {
                settlementsFailedUnpaused++;
                lastSettleFailure = ret;
            }
            if (ledger.settled(id)) revertedButMarked++;
        }
    }

    function _restrictedTarget(uint256 w) internal view returns (address target, bytes32 role) {
        if (w == 0) return (address(ledger), ledger.SETTLER_ROLE());
        if (w <= 3) return (address(ledger), ledger.GUARDIAN_ROLE());
        if (w == 4 || w >= 10 || w == 7) return (address(ledger), ledger.DEFAULT_ADMIN_ROLE());
        if (w == 5) return (address(registry), registry.ANCHOR_ROLE());
        if (w == 6) return (address(ledger), ledger.ACCOUNT_ADMIN_ROLE());
        if (w == 8) return (address(registry), registry.KEY_ADMIN_ROLE());
        return (address(registry), registry.IPS_ROLE());
    }

    function _restrictedCall(uint256 w, address caller) internal view returns (bytes memory) {
        if (w == 0) {
            (PortfolioLedger.Order[] memory orders, PortfolioLedger.AssetTrade[] memory trades) =
                _randomBatch(uint256(uint160(caller)));
            PortfolioLedger.BatchHeader memory h = PortfolioLedger.BatchHeader({
                batchId: keccak256(abi.encode("unauthorised", caller, batchNonce)),
                deadline: uint64(block.timestamp + 60),
                checkpointSize: latestSize + 1,
                checkpointRoot: keccak256(abi.encode("unauthorised root", caller))
            });
            return abi.encodeCall(PortfolioLedger.settleBatch, (h, orders, trades));
        }
        if (w == 1) return abi.encodeCall(PortfolioLedger.pause, ());
        if (w == 2) return abi.encodeCall(PortfolioLedger.unpause, ());
        if (w == 3) return abi.encodeCall(PortfolioLedger.setFrozen, (1, true));
        if (w == 4) {
            return abi.encodeCall(PortfolioLedger.registerAsset, (IERC20(address(spare)), spareFeed, 3600, 1e12));
        }
        if (w == 5) return abi.encodeCall(AuditRegistry.anchor, (latestSize + 1, keccak256(abi.encode(caller))));
        if (w == 6) {
            uint64[] memory ids = new uint64[](1);
            address[] memory owners = new address[](1);
            ids[0] = 1000 + uint64(batchNonce);
            owners[0] = caller == address(0) ? stranger : caller;
            return abi.encodeCall(PortfolioLedger.openAccounts, (ids, owners));
        }
        if (w == 7) return abi.encodeCall(PortfolioLedger.setRouter, (IUniswapV2Router(address(0xdead))));
        if (w == 8) return abi.encodeCall(AuditRegistry.registerAgentKey, (keccak256(abi.encode(caller)), 0, 1));
        if (w == 9) return abi.encodeCall(AuditRegistry.registerIps, (1, keccak256(abi.encode(caller)), 1, 0));
        if (w == 10) return abi.encodeCall(PortfolioLedger.setMaxSlippageCap, (10_000));
        if (w == 11) return abi.encodeCall(PortfolioLedger.setDustAccount, (1));
        return abi.encodeCall(PortfolioLedger.setFeed, (0, spareFeed, 1));
    }

    /// @dev 0: deposit cash into the hostile account; 1: withdraw from it;
    /// 2: settle a batch buying for it. Each would succeed if it were not re-entrant.
    function _armHostile(uint256 mode) internal {
        uint256 m = mode % 3;
        IERC20 cashToken = _tokens[0];
        bytes memory data;
        if (m == 0) {
            data = abi.encodeCall(PortfolioLedger.deposit, (hostileAccount, cashToken, 1e6));
        } else if (m == 1) {
            data = abi.encodeCall(PortfolioLedger.withdraw, (hostileAccount, cashToken, 1e6, address(hostile)));
        } else {
            PortfolioLedger.Leg[] memory legs = new PortfolioLedger.Leg[](1);
            legs[0] = PortfolioLedger.Leg({asset: 0, quanta: 1});
            PortfolioLedger.Order[] memory orders = new PortfolioLedger.Order[](1);
            orders[0] = PortfolioLedger.Order({account: hostileAccount, recordHash: keccak256("hostile"), legs: legs});
            PortfolioLedger.AssetTrade[] memory trades = new PortfolioLedger.AssetTrade[](1);
            trades[0] = PortfolioLedger.AssetTrade({asset: 0, maxSlippageBps: 100, boughtQuanta: 1, soldQuanta: 0});
            PortfolioLedger.BatchHeader memory h = PortfolioLedger.BatchHeader({
                batchId: keccak256(abi.encode("hostile batch", batchNonce)),
                deadline: uint64(block.timestamp + 60),
                checkpointSize: latestSize + 1000,
                checkpointRoot: keccak256("hostile root")
            });
            data = abi.encodeCall(PortfolioLedger.settleBatch, (h, orders, trades));
        }
        hostile.arm(address(ledger), data);
    }
}
