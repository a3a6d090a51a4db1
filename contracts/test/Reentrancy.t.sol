// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {Fixture} from "./utils/Fixture.sol";
import {HostileToken} from "./utils/Tokens.sol";
import {PortfolioLedger} from "../src/PortfolioLedger.sol";
import {PriceFeed} from "../src/PriceFeed.sol";
import {AssetToken} from "../src/AssetToken.sol";

/// @title A token whose transfers call back into the ledger: every re-entrant
/// deposit, withdrawal or settlement is refused by the reentrancy guard, and
/// the books still equal the tokens held.
contract ReentrancyTest is Fixture {
    uint16 internal constant H = 3; // the hostile asset's index
    uint64 internal constant HACC = 77; // the account the hostile token owns

    HostileToken internal hostile;
    PriceFeed internal hostileFeed;
    address internal funder = address(0xF00D);

    function setUp() public override {
        super.setUp();
        (hostile, hostileFeed) = _addHostileAsset(HACC, 1_000e6);
    }

    // ------------------------------------------------------------ the re-entrant calls

    function _depositCall() internal view returns (bytes memory) {
        return abi.encodeCall(PortfolioLedger.deposit, (HACC, IERC20(address(cash)), 1e6));
    }

    function _withdrawCall() internal view returns (bytes memory) {
        return abi.encodeCall(PortfolioLedger.withdraw, (HACC, IERC20(address(cash)), 1e6, address(hostile)));
    }

    function _settleCall() internal view returns (bytes memory) {
        PortfolioLedger.Leg[] memory legs = new PortfolioLedger.Leg[](1);
        legs[0] = PortfolioLedger.Leg({asset: 0, quanta: 1e6});
        PortfolioLedger.Order[] memory orders = new PortfolioLedger.Order[](1);
        orders[0] = PortfolioLedger.Order({account: HACC, recordHash: keccak256("inner"), legs: legs});
        PortfolioLedger.AssetTrade[] memory trades = new PortfolioLedger.AssetTrade[](1);
        trades[0] = PortfolioLedger.AssetTrade({asset: 0, maxSlippageBps: 100, boughtQuanta: 1e6, soldQuanta: 0});
        return abi.encodeCall(PortfolioLedger.settleBatch, (_header("inner", 1000), orders, trades));
    }

    // ------------------------------------------------------------ the outer operations

    function _outerDeposit() internal {
        hostile.mint(funder, 5 * QUANTUM);
        vm.prank(funder);
        hostile.approve(address(ledger), 5 * QUANTUM);
        vm.prank(funder);
        ledger.deposit(1, IERC20(address(hostile)), 5 * QUANTUM);
        vm.assertEq(ledger.unitsOf(1, H), ACCOUNT_UNITS + 5 * QUANTUM, "outer deposit credited");
    }

    function _outerDepositBatch() internal {
        hostile.mint(funder, 5 * QUANTUM);
        vm.prank(funder);
        hostile.approve(address(ledger), 5 * QUANTUM);
        uint64[] memory ids = new uint64[](2);
        uint256[] memory amounts = new uint256[](2);
        (ids[0], ids[1]) = (1, 2);
        (amounts[0], amounts[1]) = (2 * QUANTUM, 3 * QUANTUM);
        vm.prank(funder);
        ledger.depositBatch(IERC20(address(hostile)), ids, amounts);
        vm.assertEq(ledger.unitsOf(2, H), ACCOUNT_UNITS + 3 * QUANTUM, "outer batch deposit credited");
    }

    function _outerWithdraw() internal {
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(hostile)), 5 * QUANTUM, ownerOf(1));
        vm.assertEq(hostile.balanceOf(ownerOf(1)), 5 * QUANTUM, "outer withdrawal paid");
        vm.assertEq(ledger.unitsOf(1, H), ACCOUNT_UNITS - 5 * QUANTUM, "outer withdrawal debited");
    }

    /// @dev Net buy of 6 units of the hostile asset: the pair transfers it to the ledger.
    function _outerSettleNetBuy() internal {
        _leg(1, H, 10e6);
        _leg(2, H, -4e6);
        (uint256 reserve,) = _hostileReserves();
        vm.prank(settler);
        ledger.settleBatch(_header("outer", 1), _orders(), _tradesFor(100, 4));
        (uint256 reserveAfter,) = _hostileReserves();
        vm.assertEq(reserve - reserveAfter, 6e18, "venue delivered the net quantity");
        vm.assertTrue(ledger.settled("outer"), "outer batch settled");
    }

    /// @dev Net sell of 7 units: the router pulls them from the ledger.
    function _outerSettleNetSell() internal {
        _leg(1, H, -10e6);
        _leg(2, H, 3e6);
        (uint256 reserve,) = _hostileReserves();
        vm.prank(settler);
        ledger.settleBatch(_header("outer", 1), _orders(), _tradesFor(100, 4));
        (uint256 reserveAfter,) = _hostileReserves();
        vm.assertEq(reserveAfter - reserve, 7e18, "venue took the net quantity");
        vm.assertTrue(ledger.settled("outer"), "outer batch settled");
    }

    function _hostileReserves() internal view returns (uint256 units, uint256 cashReserve) {
        address pair = factory.getPair(address(hostile), address(cash));
        units = hostile.balanceOf(pair);
        cashReserve = cash.balanceOf(pair);
    }

    // ------------------------------------------------------------ checks

    /// @dev Sum over every account with a book of its cash (`isCash`) or its units of `asset`.
    function _sumBooks(uint16 asset, bool isCash) internal view returns (uint256 total) {
        uint64[7] memory ids = [uint64(1), 2, 3, 4, 5, DUST, HACC];
        for (uint256 i = 0; i < ids.length; ++i) {
            total += isCash ? ledger.cashOf(ids[i]) : ledger.unitsOf(ids[i], asset);
        }
    }

    function _assertBooksEqualBalances() internal view {
        vm.assertEq(_sumBooks(0, true), cash.balanceOf(address(ledger)), "cash books = held");
        for (uint16 a = 0; a < 3; ++a) {
            vm.assertEq(_sumBooks(a, false), tokens[a].balanceOf(address(ledger)), "units = held");
        }
        vm.assertEq(_sumBooks(H, false), hostile.balanceOf(address(ledger)), "hostile = held");
    }

    /// @dev Arms the token with `inner`, runs `outer` and checks that the one
    /// re-entrant call was refused by the guard and changed nothing.
    function _run(function() internal outer, bytes memory inner) internal {
        uint256 haccCash = ledger.cashOf(HACC);
        uint256 hostileCash = cash.balanceOf(address(hostile));
        uint256 anchored = registry.checkpointCount();
        hostile.arm(address(ledger), inner);

        outer();

        vm.assertEq(hostile.attempts(), 1, "the transfer hook re-entered once");
        vm.assertEq(hostile.successes(), 0, "the re-entrant call did not succeed");
        vm.assertFalse(hostile.lastSucceeded(), "last re-entry failed");
        vm.assertEq(
            bytes32(hostile.lastSelector()),
            bytes32(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector),
            "refused by the reentrancy guard"
        );
        vm.assertEq(
            hostile.lastRevertData(),
            abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector),
            "exact revert data"
        );
        vm.assertEq(hostile.guardReverts(), 1, "counted as a guard revert");
        vm.assertEq(ledger.cashOf(HACC), haccCash, "re-entrant deposit/withdrawal moved no cash");
        vm.assertEq(cash.balanceOf(address(hostile)), hostileCash, "hostile token's cash unchanged");
        vm.assertFalse(ledger.settled("inner"), "re-entrant batch not settled");
        vm.assertLe(registry.checkpointCount(), anchored + 1, "only the outer batch may anchor");
        vm.assertEq(registry.checkpointAt(1000), bytes32(0), "re-entrant checkpoint not anchored");
        _assertBooksEqualBalances();
    }

    // ------------------------------------------------------------ controls

    function test_control_theReentrantCallsAreValidOutsideATransfer() public {
        uint256 haccCash = ledger.cashOf(HACC);
        bytes[3] memory calls = [_depositCall(), _withdrawCall(), _settleCall()];
        for (uint256 i = 0; i < calls.length; ++i) {
            uint256 snap = vm.snapshotState();
            hostile.arm(address(ledger), calls[i]);
            (bool ok,) = hostile.fire();
            vm.assertTrue(ok, "the call succeeds when it is not re-entrant");
            if (i == 0) vm.assertEq(ledger.cashOf(HACC), haccCash + 1e6, "the deposit lands");
            if (i == 1) vm.assertEq(ledger.cashOf(HACC), haccCash - 1e6, "the withdrawal lands");
            if (i == 2) vm.assertTrue(ledger.settled("inner"), "the batch settles");
            _assertBooksEqualBalances();
            vm.revertToState(snap);
        }
    }

    function test_control_booksEqualBalancesAfterSetUp() public view {
        _assertBooksEqualBalances();
        vm.assertEq(hostile.attempts(), 0, "unarmed during set-up");
    }

    function test_control_crossedTradesOfTheHostileAssetNeverTouchTheToken() public {
        hostile.arm(address(ledger), _withdrawCall());
        _leg(1, H, 5e6);
        _leg(2, H, -5e6);
        vm.prank(settler);
        ledger.settleBatch(_header("crossed", 1), _orders(), _tradesFor(100, 4));
        vm.assertEq(hostile.attempts(), 0, "no transfer, no hook");
        vm.assertEq(ledger.unitsOf(1, H), ACCOUNT_UNITS + 5e18, "crossed internally");
        _assertBooksEqualBalances();
    }

    // ------------------------------------------------------------ deposit

    function test_deposit_reentrantDepositIsRefused() public {
        _run(_outerDeposit, _depositCall());
    }

    function test_deposit_reentrantWithdrawIsRefused() public {
        _run(_outerDeposit, _withdrawCall());
    }

    function test_deposit_reentrantSettleIsRefused() public {
        _run(_outerDeposit, _settleCall());
    }

    function test_depositBatch_reentrantDepositIsRefused() public {
        _run(_outerDepositBatch, _depositCall());
    }

    function test_depositBatch_reentrantWithdrawIsRefused() public {
        _run(_outerDepositBatch, _withdrawCall());
    }

    function test_depositBatch_reentrantSettleIsRefused() public {
        _run(_outerDepositBatch, _settleCall());
    }

    // ------------------------------------------------------------ withdraw

    function test_withdraw_reentrantDepositIsRefused() public {
        _run(_outerWithdraw, _depositCall());
    }

    function test_withdraw_reentrantWithdrawIsRefused() public {
        _run(_outerWithdraw, _withdrawCall());
    }

    function test_withdraw_reentrantSettleIsRefused() public {
        _run(_outerWithdraw, _settleCall());
    }

    // ------------------------------------------------------------ settleBatch through the venue

    function test_settleNetBuy_reentrantDepositIsRefused() public {
        _run(_outerSettleNetBuy, _depositCall());
    }

    function test_settleNetBuy_reentrantWithdrawIsRefused() public {
        _run(_outerSettleNetBuy, _withdrawCall());
    }

    function test_settleNetBuy_reentrantSettleIsRefused() public {
        _run(_outerSettleNetBuy, _settleCall());
    }

    function test_settleNetSell_reentrantDepositIsRefused() public {
        _run(_outerSettleNetSell, _depositCall());
    }

    function test_settleNetSell_reentrantWithdrawIsRefused() public {
        _run(_outerSettleNetSell, _withdrawCall());
    }

    function test_settleNetSell_reentrantSettleIsRefused() public {
        _run(_outerSettleNetSell, _settleCall());
    }

    /// @dev Without the settler role the role check comes first: a re-entrant
    /// settlement by a token that is not a settler fails on the role, not the guard.
    function test_settleNetBuy_reentrantSettleWithoutTheRoleFailsOnTheRole() public {
        ledger.revokeRole(ledger.SETTLER_ROLE(), address(hostile));
        hostile.arm(address(ledger), _settleCall());
        _outerSettleNetBuy();
        vm.assertEq(hostile.attempts(), 1, "re-entered once");
        vm.assertEq(hostile.successes(), 0, "did not succeed");
        vm.assertEq(
            hostile.lastRevertData(),
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(hostile), keccak256("SETTLER_ROLE")
            ),
            "refused on the role"
        );
        _assertBooksEqualBalances();
    }
}
