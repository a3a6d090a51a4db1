// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {Fixture} from "../utils/Fixture.sol";
import {HostileToken} from "../utils/Tokens.sol";
import {LedgerHandler} from "../utils/LedgerHandler.sol";
import {AssetToken} from "../../src/AssetToken.sol";
import {PriceFeed} from "../../src/PriceFeed.sol";

/// @title Invariants of the ledger under random deposits, withdrawals,
/// settlements, retries, pauses, unauthorised calls and a hostile token.
contract LedgerInvariantTest is Fixture {
    uint64 internal constant HACC = 77;

    LedgerHandler internal handler;
    HostileToken internal hostile;

    function setUp() public override {
        super.setUp();

        // The hostile token is a fourth asset with a feed and a pool, held by
        // every trader, and owns an account of its own with cash in it.
        (hostile,) = _addHostileAsset(HACC, 1_000_000e6);

        AssetToken spare = new AssetToken("Spare", "SPR", 18, address(this));
        PriceFeed spareFeed = new PriceFeed(FEED_DECIMALS, "SPR", 1e8, address(this));

        uint64[] memory books = new uint64[](ACCOUNTS + 2);
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            books[id - 1] = id;
        }
        books[ACCOUNTS] = DUST;
        books[ACCOUNTS + 1] = HACC;
        handler = new LedgerHandler(
            LedgerHandler.Config({
                ledger: ledger,
                registry: registry,
                hostile: hostile,
                hostileAccount: HACC,
                settler: settler,
                guardian: guardian,
                accountAdmin: accountAdmin,
                stranger: stranger,
                spare: spare,
                spareFeed: spareFeed
            }),
            books
        );
        bytes32 minter = cash.MINTER_ROLE();
        cash.grantRole(minter, address(handler));
        hostile.grantRole(minter, address(handler));
        for (uint256 i = 0; i < tokens.length; ++i) {
            tokens[i].grantRole(minter, address(handler));
        }

        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](9);
        selectors[0] = LedgerHandler.deposit.selector;
        selectors[1] = LedgerHandler.withdraw.selector;
        selectors[2] = LedgerHandler.settle.selector;
        selectors[3] = LedgerHandler.retrySettled.selector;
        selectors[4] = LedgerHandler.pause.selector;
        selectors[5] = LedgerHandler.unpause.selector;
        selectors[6] = LedgerHandler.callWhilePaused.selector;
        selectors[7] = LedgerHandler.unauthorised.selector;
        selectors[8] = LedgerHandler.rearmHostile.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice A batch id settles at most once, and a reverted batch leaves its id free.
    function invariant_batchIdSettlesAtMostOnce() public view {
        vm.assertEq(handler.retrySuccesses(), 0, "an already-settled batch id settled again");
        vm.assertEq(handler.retryWrongReason(), 0, "a retry failed for another reason than BatchAlreadySettled");
        vm.assertEq(handler.revertedButMarked(), 0, "a reverted batch left its id marked");
        bytes32[] memory ids = handler.settledIds();
        for (uint256 i = 0; i < ids.length; ++i) {
            vm.assertTrue(ledger.settled(ids[i]), "a settled batch id is marked");
        }
    }

    /// @notice For cash and every asset, the books add up to the ledger's real balance.
    function invariant_booksEqualTokenBalances() public view {
        uint256 n = handler.tokenCount();
        vm.assertEq(n, 5, "cash and four assets");
        for (uint256 t = 0; t < n; ++t) {
            IERC20 token = handler.tokenAt(t);
            vm.assertEq(handler.bookTotal(t), token.balanceOf(address(ledger)), "sum of books = token balance");
        }
    }

    /// @notice No call without the needed role ever succeeds, and each is refused on the role.
    function invariant_unauthorisedCallsNeverSucceed() public view {
        vm.assertEq(handler.unauthorisedSuccesses(), 0, "an unauthorised call succeeded");
        vm.assertEq(handler.unauthorisedWrongReason(), 0, "an unauthorised call failed for another reason");
    }

    /// @notice While paused, no deposit, withdrawal or settlement goes through and nothing changes.
    function invariant_nothingChangesWhilePaused() public view {
        vm.assertEq(handler.pausedSuccesses(), 0, "a state-changing call succeeded while paused");
        vm.assertEq(handler.pausedChanges(), 0, "a book, balance or checkpoint changed while paused");
    }

    /// @notice Every checkpoint anchored through a settlement still reads back its root,
    /// and nothing else was anchored.
    function invariant_anchoredCheckpointsReadBack() public view {
        vm.assertEq(handler.badAnchorsAccepted(), 0, "a conflicting or stale checkpoint settled");
        (uint64[] memory sizes, bytes32[] memory roots) = handler.anchored();
        vm.assertEq(registry.checkpointCount(), sizes.length, "checkpoint count");
        vm.assertEq(uint256(registry.latestSize()), uint256(handler.latestSize()), "latest size");
        uint64[] memory onChain = registry.anchoredSizes(0, sizes.length);
        for (uint256 i = 0; i < sizes.length; ++i) {
            vm.assertEq(registry.checkpointAt(sizes[i]), roots[i], "anchored root reads back");
            vm.assertEq(uint256(onChain[i]), uint256(sizes[i]), "anchored sizes in order");
        }
    }

    /// @notice The hostile token's re-entrant calls never succeed; each is refused by the guard.
    function invariant_hostileReentryNeverSucceeds() public view {
        vm.assertEq(hostile.successes(), 0, "a re-entrant call succeeded");
        vm.assertEq(hostile.guardReverts(), hostile.attempts(), "every re-entry refused by the guard");
    }

    /// @notice Valid deposits and withdrawals never fail while the ledger is not paused.
    function invariant_validDepositsAndWithdrawalsSucceedWhenNotPaused() public view {
        vm.assertEq(handler.unexpectedFailures(), 0, "a valid deposit or withdrawal failed");
    }
}
