// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Vm.sol";
import {PortfolioLedger} from "../src/PortfolioLedger.sol";
import {AuditRegistry} from "../src/AuditRegistry.sol";

/// @title settleBatch under fuzzed quantities, prices, deadlines, batch ids,
/// checkpoints, slippage limits and callers.
contract SettleBatchFuzzTest is Fixture {
    bytes32 internal constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    uint16 internal constant BPS = 200;
    int256 internal constant MAX_LEG = 1_000e6; // quanta: every account holds exactly this much of each asset

    /// @dev Everything a settlement is checked against, captured before it.
    struct Expect {
        uint256[3] bought;
        uint256[3] sold;
        uint256[3] price;
        uint256[3] quote; // venue cash for the net quantity, from the router before the batch
        uint256[3] buyCash;
        uint256[3] sellCash;
        uint256[3] assetReserve;
        uint256[3] cashReserve;
        uint256[3] ledgerUnits;
        uint256 ledgerCash;
        uint256 bookCash;
        uint256[6] cashBefore; // accounts 1..5, then DUST
        uint256[3][6] unitsBefore;
        int256[6] cashDelta; // from the legs' events
        int256[3][6] unitsDelta; // from the legs
    }

    function _idx(uint64 account) internal pure returns (uint256) {
        return account == DUST ? 5 : account - 1;
    }

    function _path(address from, address to) internal pure returns (address[] memory p) {
        p = new address[](2);
        p[0] = from;
        p[1] = to;
    }

    function _prepare() internal view returns (Expect memory e) {
        for (uint256 i = 0; i < flatLegs.length; ++i) {
            FlatLeg memory l = flatLegs[i];
            if (l.quanta > 0) e.bought[l.asset] += uint256(int256(l.quanta));
            else e.sold[l.asset] += uint256(-int256(l.quanta));
            e.unitsDelta[_idx(l.account)][l.asset] += int256(l.quanta) * int256(uint256(QUANTUM));
        }
        for (uint16 a = 0; a < 3; ++a) {
            (, int256 answer,,,) = feeds[a].latestRoundData();
            e.price[a] = uint256(answer);
            (e.assetReserve[a], e.cashReserve[a]) = _pairReserves(a);
            e.ledgerUnits[a] = tokens[a].balanceOf(address(ledger));
            uint256 crossed = e.bought[a] < e.sold[a] ? e.bought[a] : e.sold[a];
            // crossed value at the feed price, rounded down: quanta * 1e12 * price * 1e6 / 1e26
            uint256 crossedCash = crossed * e.price[a] / 1e8;
            e.buyCash[a] = crossedCash;
            e.sellCash[a] = crossedCash;
            if (e.bought[a] > e.sold[a]) {
                uint256 units = (e.bought[a] - e.sold[a]) * QUANTUM;
                e.quote[a] = router.getAmountsIn(units, _path(address(cash), address(tokens[a])))[0];
                e.buyCash[a] += e.quote[a];
            } else if (e.sold[a] > e.bought[a]) {
                uint256 units = (e.sold[a] - e.bought[a]) * QUANTUM;
                e.quote[a] = router.getAmountsOut(units, _path(address(tokens[a]), address(cash)))[1];
                e.sellCash[a] += e.quote[a];
            }
        }
        e.ledgerCash = cash.balanceOf(address(ledger));
        e.bookCash = _bookTotal(IERC20(address(cash)));
        for (uint64 id = 1; id <= ACCOUNTS + 1; ++id) {
            uint64 account = id <= ACCOUNTS ? id : DUST;
            e.cashBefore[_idx(account)] = ledger.cashOf(account);
            for (uint16 a = 0; a < 3; ++a) {
                e.unitsBefore[_idx(account)][a] = ledger.unitsOf(account, a);
            }
        }
    }

    /// @dev Settles `flatLegs` and checks conservation, the venue trade, the
    /// per-leg prices and every book against what `_prepare` expected.
    function _settleAndCheck(bytes32 batchId) internal returns (uint256 dust) {
        Expect memory e = _prepare();
        vm.recordLogs();
        vm.prank(settler);
        dust = ledger.settleBatch(_header(batchId, 1), _orders(), _trades(BPS));
        Vm.Log[] memory logs = vm.getRecordedLogs();

        uint256 legEvents = 0;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(ledger)) continue;
            if (logs[i].topics[0] == PortfolioLedger.AssetSettled.selector) {
                _checkAssetEvent(e, logs[i]);
            } else if (logs[i].topics[0] == PortfolioLedger.LegSettled.selector) {
                _checkLegEvent(e, logs[i]);
                legEvents++;
            }
        }
        vm.assertEq(legEvents, flatLegs.length, "one event per leg");

        // Cash: every book change adds up to the ledger's real cash change, dust included.
        vm.assertEq(_bookTotal(IERC20(address(cash))), cash.balanceOf(address(ledger)), "cash books = cash held");
        vm.assertEq(ledger.cashOf(DUST), e.cashBefore[5] + dust, "dust credited to the dust account");
        vm.assertLe(dust, flatLegs.length, "at most one base unit of dust per leg");
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            vm.assertEq(
                int256(ledger.cashOf(id)) - int256(e.cashBefore[_idx(id)]),
                e.cashDelta[_idx(id)],
                "account cash moved by its legs"
            );
        }
        for (uint16 a = 0; a < 3; ++a) {
            IERC20 t = IERC20(address(tokens[a]));
            vm.assertEq(_bookTotal(t), t.balanceOf(address(ledger)), "unit books = units held");
            (uint256 assetReserve, uint256 cashReserve) = _pairReserves(a);
            int256 net = (int256(e.bought[a]) - int256(e.sold[a])) * int256(uint256(QUANTUM));
            vm.assertEq(int256(e.assetReserve[a]) - int256(assetReserve), net, "venue traded exactly the net quantity");
            vm.assertEq(
                int256(e.ledgerUnits[a]) + net, int256(t.balanceOf(address(ledger))), "ledger units moved by the net"
            );
            if (net > 0) vm.assertEq(cashReserve - e.cashReserve[a], e.quote[a], "venue got the quoted cash");
            else if (net < 0) vm.assertEq(e.cashReserve[a] - cashReserve, e.quote[a], "venue paid the quoted cash");
            else vm.assertEq(cashReserve, e.cashReserve[a], "venue untouched");
            for (uint64 id = 1; id <= ACCOUNTS; ++id) {
                vm.assertEq(
                    int256(ledger.unitsOf(id, a)) - int256(e.unitsBefore[_idx(id)][a]),
                    e.unitsDelta[_idx(id)][a],
                    "account units moved by its legs"
                );
            }
        }
    }

    function _checkAssetEvent(Expect memory e, Vm.Log memory log) internal pure {
        uint16 a = uint16(uint256(log.topics[2]));
        (uint256 feedPrice, uint256 crossedQty, int256 venueQty, uint256 venueCash,,) =
            abi.decode(log.data, (uint256, uint256, int256, uint256, uint256, uint256));
        uint256 crossed = e.bought[a] < e.sold[a] ? e.bought[a] : e.sold[a];
        vm.assertEq(feedPrice, e.price[a], "event: feed price");
        vm.assertEq(crossedQty, crossed * QUANTUM, "event: crossed quantity");
        vm.assertEq(venueQty, (int256(e.bought[a]) - int256(e.sold[a])) * int256(uint256(QUANTUM)), "event: venue qty");
        vm.assertEq(venueCash, e.quote[a], "event: venue cash");
    }

    /// @dev A buyer pays its pro-rata share of the asset's buy cash rounded up,
    /// a seller gets its share of the sell cash rounded down: every buyer
    /// (seller) of an asset pays (gets) the same price per quantum to within one
    /// base unit.
    function _checkLegEvent(Expect memory e, Vm.Log memory log) internal pure {
        uint64 account = uint64(uint256(log.topics[1]));
        (uint16 a, int256 quanta, uint256 paid) = abi.decode(log.data, (uint16, int256, uint256));
        if (quanta > 0) {
            uint256 q = uint256(quanta);
            vm.assertGe(paid * e.bought[a], q * e.buyCash[a], "buyer pays at least its share");
            vm.assertLt(paid * e.bought[a], q * e.buyCash[a] + e.bought[a], "and less than one base unit more");
            e.cashDelta[_idx(account)] -= int256(paid);
        } else {
            uint256 q = uint256(-quanta);
            vm.assertLe(paid * e.sold[a], q * e.sellCash[a], "seller gets at most its share");
            vm.assertGt(paid * e.sold[a] + e.sold[a], q * e.sellCash[a], "and less than one base unit less");
            e.cashDelta[_idx(account)] += int256(paid);
        }
    }

    // ------------------------------------------------------------ conservation and prices

    /// @dev Every account trades every asset with a fuzzed signed quantity
    /// (zero means no leg): crosses, net buys and net sells all occur.
    function testFuzz_settleBatch_conservesCashAndUnitsAndPricesAlike(uint256[15] memory raw) public {
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            for (uint16 a = 0; a < 3; ++a) {
                int256 q = boundInt(int256(raw[(id - 1) * 3 + a]), -MAX_LEG, MAX_LEG);
                if (q != 0) _leg(id, a, int64(q));
            }
        }
        if (flatLegs.length == 0) _leg(1, 0, 1);
        _settleAndCheck("fuzz");
    }

    /// @dev Balanced buys and sells of one asset never touch the venue and
    /// settle at the feed price, whatever the price.
    function testFuzz_settleBatch_crossesAtAnyFeedPrice(uint256 price, uint256 b1, uint256 b2, uint256 s1, uint8 asset)
        public
    {
        uint16 a = uint16(asset % 3);
        price = bound(price, 1, 1_000e8);
        feeds[a].updateAnswer(int256(price));
        b1 = bound(b1, 1, 500e6);
        b2 = bound(b2, 1, 500e6);
        s1 = bound(s1, 0, b1 + b2);
        uint256 s2 = b1 + b2 - s1;
        _leg(1, a, int64(uint64(b1)));
        _leg(2, a, int64(uint64(b2)));
        if (s1 != 0) _leg(3, a, -int64(uint64(s1)));
        if (s2 != 0) _leg(4, a, -int64(uint64(s2)));
        uint256 dust = _settleAndCheck("crossed");
        uint256 crossedCash = (b1 + b2) * price / 1e8;
        uint256 buyersPaid = (ACCOUNT_CASH - ledger.cashOf(1)) + (ACCOUNT_CASH - ledger.cashOf(2));
        uint256 sellersGot = (ledger.cashOf(3) - ACCOUNT_CASH) + (ledger.cashOf(4) - ACCOUNT_CASH);
        vm.assertGe(buyersPaid, crossedCash, "buyers pay at least the crossed value");
        vm.assertLt(buyersPaid - crossedCash, 2, "buyers round up by less than a base unit each");
        vm.assertLe(sellersGot, crossedCash, "sellers get at most the crossed value");
        vm.assertLt(crossedCash - sellersGot, 2, "sellers round down by less than a base unit each");
        vm.assertEq(buyersPaid - sellersGot, dust, "the difference is the dust");
        vm.assertEq(cash.balanceOf(address(ledger)), 5 * ACCOUNT_CASH, "no cash left the ledger");
    }

    function testFuzz_settleBatch_netBuyTakesExactlyTheNetFromTheVenue(uint256[5] memory raw, uint8 asset) public {
        uint16 a = uint16(asset % 3);
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            _leg(id, a, int64(uint64(bound(raw[id - 1], 1, 2 * uint256(MAX_LEG)))));
        }
        _settleAndCheck("net buy");
    }

    function testFuzz_settleBatch_netSellGivesExactlyTheNetToTheVenue(uint256[5] memory raw, uint8 asset) public {
        uint16 a = uint16(asset % 3);
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            _leg(id, a, -int64(uint64(bound(raw[id - 1], 1, uint256(MAX_LEG)))));
        }
        _settleAndCheck("net sell");
    }

    /// @dev One account with several legs in one order: a sale funds a purchase.
    function testFuzz_settleBatch_oneOrderWithManyLegs(uint256 sell, uint256 buy, uint8 sellAsset) public {
        uint16 s = uint16(sellAsset % 3);
        uint16 b = uint16((s + 1) % 3);
        // Account 1 has no cash: its purchase must be paid by its sale.
        uint256 all = ledger.cashOf(1);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(cash)), all, ownerOf(1));
        sell = bound(sell, 1, uint256(MAX_LEG));
        uint256 proceeds = sell * uint256(prices[s]) / 1e8;
        // buy what the sale's proceeds pay for with room for venue price impact
        buy = bound(buy, 0, proceeds * 1e8 * 90 / 100 / uint256(prices[b]));
        _leg(1, s, -int64(uint64(sell)));
        if (buy != 0) _leg(1, b, int64(uint64(buy)));
        _leg(2, s, int64(uint64(sell)));
        _settleAndCheck("legs");
        vm.assertEq(ledger.unitsOf(1, b), ACCOUNT_UNITS + buy * QUANTUM, "bought with the sale's proceeds");
    }

    // ------------------------------------------------------------ rules

    function testFuzz_settleBatch_rejectsCallersWithoutTheRole(address caller) public {
        vm.assume(!ledger.hasRole(SETTLER_ROLE, caller) && caller != address(vm));
        _leg(1, 0, 1e6);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, SETTLER_ROLE)
        );
        vm.prank(caller);
        ledger.settleBatch(_header("b", 1), _orders(), _trades(BPS));
        vm.assertFalse(ledger.settled("b"), "not settled");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "nothing moved");
    }

    function testFuzz_settleBatch_honoursTheDeadline(uint64 deadline, uint256 nowTs) public {
        nowTs = bound(nowTs, START, START + MAX_FEED_AGE);
        deadline = uint64(bound(deadline, START - 1 days, START + 2 hours));
        vm.warp(nowTs);
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        PortfolioLedger.BatchHeader memory h = _header("d", 1);
        h.deadline = deadline;
        bool late = nowTs > deadline;
        if (late) vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.DeadlineExpired.selector, deadline, nowTs));
        vm.prank(settler);
        ledger.settleBatch(h, _orders(), _trades(BPS));
        vm.assertEq(ledger.settled("d"), !late, "settled iff not late");
        vm.assertEq(ledger.cashOf(1), late ? ACCOUNT_CASH : ACCOUNT_CASH - 100e6, "cash moved iff settled");
    }

    function testFuzz_settleBatch_settlesEachBatchIdOnce(bytes32 id, bytes32 other, uint64 size) public {
        size = uint64(bound(size, 1, type(uint64).max - 2));
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        vm.prank(settler);
        ledger.settleBatch(_header(id, size), _orders(), _trades(BPS));
        uint256 cash1 = ledger.cashOf(1);

        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BatchAlreadySettled.selector, id));
        vm.prank(settler);
        ledger.settleBatch(_header(id, size + 1), _orders(), _trades(BPS));
        vm.assertEq(ledger.cashOf(1), cash1, "the retry moved nothing");
        vm.assertEq(uint256(registry.latestSize()), size, "the retry anchored nothing");

        if (other == id) return;
        vm.prank(settler);
        ledger.settleBatch(_header(other, size + 2), _orders(), _trades(BPS));
        vm.assertEq(ledger.cashOf(1), cash1 - 100e6, "another id settles");
    }

    /// @dev A sequence of batches with fuzzed checkpoints: each settles iff
    /// its anchor is valid, and otherwise nothing of it remains.
    function testFuzz_settleBatch_anchorsOrRevertsAtomically(uint64[6] memory rawSizes, uint8[6] memory picks) public {
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        uint64[] memory sizes = new uint64[](6);
        bytes32[] memory roots = new bytes32[](6);
        uint256 n = 0;
        uint64 latest = 0;
        uint256 settledCount = 0;
        for (uint256 i = 0; i < rawSizes.length; ++i) {
            uint64 size = uint64(bound(rawSizes[i], 0, 8));
            uint8 pick = picks[i] % 5;
            bytes32 root = pick == 0 ? bytes32(0) : keccak256(abi.encode(pick % 2, size));
            bytes32 known = bytes32(0);
            for (uint256 j = 0; j < n; ++j) {
                if (sizes[j] == size) known = roots[j];
            }
            bytes memory err;
            if (size == 0) err = abi.encodeWithSelector(AuditRegistry.EmptyCheckpoint.selector);
            else if (root == bytes32(0)) err = abi.encodeWithSelector(AuditRegistry.ZeroRoot.selector);
            else if (known != bytes32(0) && known != root) {
                err = abi.encodeWithSelector(AuditRegistry.CheckpointConflict.selector, size, known, root);
            } else if (known == bytes32(0) && size <= latest) {
                err = abi.encodeWithSelector(AuditRegistry.CheckpointNotIncreasing.selector, size, latest);
            }

            bytes32 id = keccak256(abi.encode("batch", i));
            PortfolioLedger.BatchHeader memory h = _header(id, size);
            h.checkpointRoot = root;
            if (err.length != 0) vm.expectRevert(err);
            vm.prank(settler);
            ledger.settleBatch(h, _orders(), _trades(BPS));

            if (err.length == 0) {
                settledCount++;
                if (known == bytes32(0)) {
                    sizes[n] = size;
                    roots[n] = root;
                    n++;
                    latest = size;
                }
            }
            vm.assertEq(ledger.settled(id), err.length == 0, "settled iff the anchor is valid");
            vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH - settledCount * 100e6, "cash moved once per settled batch");
            vm.assertEq(registry.checkpointCount(), n, "checkpoints");
            vm.assertEq(uint256(registry.latestSize()), latest, "latest size");
        }
        for (uint256 j = 0; j < n; ++j) {
            vm.assertEq(registry.checkpointAt(sizes[j]), roots[j], "every anchored root reads back");
        }
    }

    function testFuzz_settleBatch_slippageLimitWithinTheCap(uint16 cap, uint16 bps) public {
        cap = uint16(bound(cap, 0, 10_000));
        ledger.setMaxSlippageCap(cap);
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        if (bps > cap) {
            vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.SlippageAboveCap.selector, uint16(0), bps, cap));
        }
        vm.prank(settler);
        ledger.settleBatch(_header("s", 1), _orders(), _trades(bps));
        vm.assertEq(ledger.settled("s"), bps <= cap, "settled iff within the cap");
    }

    function testFuzz_settleBatch_overdrawnSellerRevertsEverything(uint256 excess, uint8 asset) public {
        uint16 a = uint16(asset % 3);
        excess = bound(excess, 1, 1e9);
        uint256 held = ACCOUNT_UNITS / QUANTUM;
        _leg(3, a, 1e6); // a valid leg first: it must be rolled back too
        _leg(1, a, -int64(uint64(held + excess)));
        _leg(2, a, int64(uint64(held + excess)) - 1e6);
        vm.expectRevert(
            abi.encodeWithSelector(PortfolioLedger.InsufficientUnits.selector, uint64(1), a, held, held + excess)
        );
        vm.prank(settler);
        ledger.settleBatch(_header("o", 1), _orders(), _trades(BPS));
        vm.assertEq(ledger.cashOf(3), ACCOUNT_CASH, "the valid leg rolled back");
        vm.assertEq(ledger.unitsOf(1, a), ACCOUNT_UNITS, "seller untouched");
        vm.assertEq(registry.checkpointCount(), 0, "nothing anchored");
        vm.assertFalse(ledger.settled("o"), "not settled");
    }
}
