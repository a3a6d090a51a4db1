// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Vm.sol";
import {PortfolioLedger} from "../src/PortfolioLedger.sol";
import {AuditRegistry} from "../src/AuditRegistry.sol";
import {PriceFeed} from "../src/PriceFeed.sol";
import {AssetToken} from "../src/AssetToken.sol";

/// @title settleBatch: one test per rule.
contract SettleBatchTest is Fixture {
    function _settle(bytes32 batchId, uint64 size) internal returns (uint256) {
        vm.prank(settler);
        return ledger.settleBatch(_header(batchId, size), _orders(), _trades(100));
    }

    function test_settleBatch_crossesMatchingBuysAndSellsAtFeedPriceWithoutVenue() public {
        _leg(1, 0, 10e6);
        _leg(2, 0, -10e6);
        (uint256 assetReserve, uint256 cashReserve) = _pairReserves(0);

        _settle("b1", 1);

        (uint256 assetAfter, uint256 cashAfter) = _pairReserves(0);
        vm.assertEq(assetAfter, assetReserve, "venue asset reserve untouched");
        vm.assertEq(cashAfter, cashReserve, "venue cash reserve untouched");
        // 10 units at 100.00 = 1,000.000000 cash
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH - 1_000e6, "buyer paid the feed price");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH + 1_000e6, "seller got the feed price");
        vm.assertEq(ledger.unitsOf(1, 0), ACCOUNT_UNITS + 10e18, "buyer units");
        vm.assertEq(ledger.unitsOf(2, 0), ACCOUNT_UNITS - 10e18, "seller units");
    }

    function test_settleBatch_sendsOnlyTheNetQuantityToTheVenue() public {
        _leg(1, 1, 30e6);
        _leg(2, 1, 20e6);
        _leg(3, 1, -15e6);
        (uint256 assetReserve,) = _pairReserves(1);

        vm.recordLogs();
        _settle("b1", 1);

        (uint256 assetAfter,) = _pairReserves(1);
        vm.assertEq(assetReserve - assetAfter, 35e18, "venue delivered exactly the net 35 units");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool seen;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] != PortfolioLedger.AssetSettled.selector) continue;
            (uint256 feedPrice, uint256 crossed, int256 venueQty,, uint256 buyAvg, uint256 sellAvg) =
                abi.decode(logs[i].data, (uint256, uint256, int256, uint256, uint256, uint256));
            vm.assertEq(feedPrice, 50e8, "feed price");
            vm.assertEq(crossed, 15e18, "crossed quantity");
            vm.assertEq(venueQty, 35e18, "venue quantity");
            vm.assertEq(sellAvg, 50e8, "sellers crossed at the feed price");
            vm.assertGt(buyAvg, 50e8, "buyers pay the venue's price impact on the net part");
            vm.assertLe(buyAvg, 50e8 * 10_100 / 10_000, "within the slippage limit");
            seen = true;
        }
        vm.assertTrue(seen, "AssetSettled emitted");
    }

    function test_settleBatch_givesEveryBuyerTheSameAveragePriceAndConservesCash() public {
        _leg(1, 0, 7e6);
        _leg(2, 0, 13e6);
        _leg(3, 0, 1e6 + 3);
        _leg(4, 0, -5e6);
        uint256 ledgerCash = cash.balanceOf(address(ledger));

        uint256 dust = _settle("b1", 1);

        uint256 paid1 = ACCOUNT_CASH - ledger.cashOf(1);
        uint256 paid2 = ACCOUNT_CASH - ledger.cashOf(2);
        uint256 paid3 = ACCOUNT_CASH - ledger.cashOf(3);
        // Same price per unit, up to one base unit of rounding per leg.
        vm.assertApproxEqAbs(paid1 * 13, paid2 * 7, 20, "buyers 1 and 2 pay the same price");
        vm.assertApproxEqAbs(paid1 * (1e6 + 3), paid3 * 7e6, 8e6 + 3, "buyers 1 and 3 pay the same price");
        // Books equal the tokens actually held: cash is conserved exactly.
        vm.assertEq(_bookTotal(IERC20(address(cash))), cash.balanceOf(address(ledger)), "cash books = cash held");
        vm.assertEq(_bookTotal(IERC20(address(tokens[0]))), tokens[0].balanceOf(address(ledger)), "units = held");
        vm.assertEq(ledger.cashOf(DUST), dust, "dust credited to the named account");
        vm.assertLe(dust, 4, "dust is at most a base unit per leg");
        vm.assertGt(ledgerCash, cash.balanceOf(address(ledger)), "net buy paid the venue");
    }

    function test_settleBatch_revertsForNonSettler() public {
        _leg(1, 0, 1e6);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, ledger.SETTLER_ROLE()
            )
        );
        vm.prank(stranger);
        ledger.settleBatch(_header("b1", 1), _orders(), _trades(100));
    }

    function test_settleBatch_revertsWhilePaused() public {
        _leg(1, 0, 1e6);
        vm.prank(guardian);
        ledger.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _settle("b1", 1);

        vm.prank(guardian);
        ledger.unpause();
        _settle("b1", 1);
        vm.assertTrue(ledger.settled("b1"), "settles once unpaused");
    }

    function test_pause_onlyGuardian() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, settler, ledger.GUARDIAN_ROLE()
            )
        );
        vm.prank(settler);
        ledger.pause();
    }

    function test_settleBatch_revertsAfterDeadline() public {
        _leg(1, 0, 1e6);
        PortfolioLedger.BatchHeader memory h = _header("b1", 1);
        vm.warp(h.deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(PortfolioLedger.DeadlineExpired.selector, h.deadline, h.deadline + 1)
        );
        vm.prank(settler);
        ledger.settleBatch(h, _orders(), _trades(100));
    }

    function test_settleBatch_settlesABatchIdOnce() public {
        _leg(1, 0, 1e6);
        _settle("b1", 1);
        uint256 cashAfterFirst = ledger.cashOf(1);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BatchAlreadySettled.selector, bytes32("b1")));
        _settle("b1", 2);
        vm.assertEq(ledger.cashOf(1), cashAfterFirst, "retry moved nothing");
    }

    function test_settleBatch_anchorsTheCheckpointInTheSameTransaction() public {
        _leg(1, 0, 1e6);
        _settle("b1", 42);
        vm.assertEq(registry.checkpointAt(42), keccak256(abi.encode("root", uint64(42))), "anchored root");
        vm.assertEq(uint256(registry.latestSize()), 42, "latest size");
    }

    function test_settleBatch_revertsOnAConflictingRootForAnAnchoredSize() public {
        _leg(1, 0, 1e6);
        _settle("b1", 42);
        PortfolioLedger.BatchHeader memory h = _header("b2", 42);
        h.checkpointRoot = bytes32(uint256(1));
        vm.expectRevert(
            abi.encodeWithSelector(
                AuditRegistry.CheckpointConflict.selector, 42, keccak256(abi.encode("root", uint64(42))), h.checkpointRoot
            )
        );
        vm.prank(settler);
        ledger.settleBatch(h, _orders(), _trades(100));
        vm.assertFalse(ledger.settled("b2"), "batch rolled back with its anchor");
    }

    function test_settleBatch_acceptsTheSameCheckpointAgain() public {
        _leg(1, 0, 1e6);
        _settle("b1", 42);
        _settle("b2", 42);
        vm.assertTrue(ledger.settled("b2"), "re-anchoring the same (size, root) is a no-op");
        vm.assertEq(registry.checkpointCount(), 1, "one checkpoint");
    }

    function test_settleBatch_revertsWhenTheVenueWouldExceedTheSlippageLimit() public {
        // Skew the pool: dump assets into it so its price is far below the feed.
        AssetToken t = tokens[0];
        t.mint(address(this), 200_000e18);
        t.approve(address(router), 200_000e18);
        address[] memory path = new address[](2);
        path[0] = address(t);
        path[1] = address(cash);
        router.swapExactTokensForTokens(200_000e18, 0, path, address(this), block.timestamp);

        _leg(1, 0, -100e6);
        uint256 fair = 100e18 * 100e8 * 1e6 / 1e26;
        uint256 minOut = fair * (10_000 - 100) / 10_000;
        uint256 quote = router.getAmountsOut(100e18, path)[1];
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.SlippageExceeded.selector, uint16(0), minOut, quote));
        _settle("b1", 1);
    }

    function test_settleBatch_revertsWhenSlippageAboveTheCap() public {
        _leg(1, 0, 1e6);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.SlippageAboveCap.selector, uint16(0), 600, 500));
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), _trades(600));
    }

    function test_settleBatch_revertsOnALegForAnUndeclaredAsset() public {
        _leg(1, 0, 1e6);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UndeclaredAsset.selector, uint16(0)));
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), new PortfolioLedger.AssetTrade[](0));
    }

    function test_settleBatch_revertsWhenLegsDoNotAddUpToTheDeclaredTotals() public {
        _leg(1, 0, 2e6);
        _leg(2, 0, -1e6);
        PortfolioLedger.AssetTrade[] memory trades = _trades(100);
        trades[0].boughtQuanta = 3e6; // declares more than the legs buy
        vm.expectRevert(
            abi.encodeWithSelector(PortfolioLedger.TotalsMismatch.selector, uint16(0), 3e6, 2e6, 1e6, 1e6)
        );
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), trades);

        trades[0].boughtQuanta = 1e6; // declares less than the legs buy
        vm.expectRevert(
            abi.encodeWithSelector(PortfolioLedger.TotalsMismatch.selector, uint16(0), 1e6, 2e6, 1e6, 0)
        );
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), trades);
    }

    function test_settleBatch_revertsOnADeclaredUnregisteredAsset() public {
        _leg(1, 0, 1e6);
        PortfolioLedger.AssetTrade[] memory trades = _trades(100);
        trades[0].asset = 7;
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnregisteredAsset.selector, 7));
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), trades);
    }

    function test_settleBatch_revertsOnAStaleFeed() public {
        _leg(1, 2, 1e6);
        vm.warp(block.timestamp + MAX_FEED_AGE + 1);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.StaleFeed.selector, uint16(2), START, MAX_FEED_AGE));
        _settle("b1", 1);
    }

    function test_settleBatch_revertsOnAnUnregisteredAsset() public {
        _leg(1, 3, 1e6);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnregisteredAsset.selector, 3));
        _settle("b1", 1);
    }

    function test_settleBatch_revertsWhenUnitsWouldGoNegative() public {
        _leg(1, 0, -int64(int256(ACCOUNT_UNITS / QUANTUM)) - 1);
        _leg(2, 0, int64(int256(ACCOUNT_UNITS / QUANTUM)) + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                PortfolioLedger.InsufficientUnits.selector, uint64(1), uint16(0), ACCOUNT_UNITS / QUANTUM, ACCOUNT_UNITS / QUANTUM + 1
            )
        );
        _settle("b1", 1);
    }

    function test_settleBatch_revertsWhenCashWouldGoNegative() public {
        // 10,001 units at 100.00 cost more than the account's 1,000,000 cash.
        _leg(1, 0, 10_001e6);
        _leg(2, 0, -1_000e6);
        _leg(3, 0, -1_000e6);
        _leg(4, 0, -1_000e6);
        _leg(5, 0, -1_000e6);
        vm.expectRevert(); // InsufficientCash with the venue-dependent amount
        _settle("b1", 1);
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "nothing moved");
    }

    function test_settleBatch_letsASaleFundAPurchaseInTheSameBatch() public {
        _withdrawAllCash(1);
        _leg(1, 1, 10e6); // buy first in the legs' order
        _leg(1, 0, -10e6);
        _leg(2, 0, 10e6);
        _leg(3, 1, -10e6);
        _settle("b1", 1);
        // sold 10 x 100 = 1000, bought 10 x 50 = 500
        vm.assertEq(ledger.cashOf(1), 500e6, "sale proceeds paid for the purchase");
    }

    function test_settleBatch_revertsForAFrozenAccount() public {
        _leg(2, 0, 1e6);
        vm.prank(guardian);
        ledger.setFrozen(2, true);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountFrozen.selector, uint64(2)));
        _settle("b1", 1);
    }

    function test_settleBatch_revertsOnAZeroQuantityLeg() public {
        _leg(1, 0, 1e6);
        _leg(2, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.ZeroQuantity.selector, 1, 0));
        _settle("b1", 1);
    }

    function test_settleBatch_revertsOnAnEmptyBatch() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BadLegCount.selector, 0));
        _settle("b1", 1);
    }

    function test_settleBatch_emitsOneEventPerLegWithTheDecisionRecordHash() public {
        _leg(1, 0, 3e6);
        _leg(2, 0, -1e6);
        _leg(3, 1, 2e6);
        vm.recordLogs();
        _settle("b1", 1);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 legEvents;
        uint256 assetEvents;
        uint256 batchEvents;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(ledger)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == PortfolioLedger.LegSettled.selector) {
                uint64 account = uint64(uint256(logs[i].topics[1]));
                vm.assertEq(logs[i].topics[2], _recordHash(account), "leg event carries its record hash");
                legEvents++;
            } else if (topic == PortfolioLedger.AssetSettled.selector) {
                vm.assertEq(logs[i].topics[1], bytes32("b1"), "asset event names the batch");
                assetEvents++;
            } else if (topic == PortfolioLedger.BatchSettled.selector) {
                batchEvents++;
            }
        }
        vm.assertEq(legEvents, 3, "one event per leg");
        vm.assertEq(assetEvents, 2, "one event per asset");
        vm.assertEq(batchEvents, 1, "one batch event");
    }

    function _withdrawAllCash(uint64 account) internal {
        uint256 all = ledger.cashOf(account);
        vm.prank(ownerOf(account));
        ledger.withdraw(account, IERC20(address(cash)), all, ownerOf(account));
    }
}
