// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {Fixture} from "./utils/Fixture.sol";
import {PortfolioLedger} from "../src/PortfolioLedger.sol";
import {PriceFeed} from "../src/PriceFeed.sol";
import {AssetToken} from "../src/AssetToken.sol";
import {IUniswapV2Router} from "../src/interfaces/IUniswapV2.sol";

/// @title PortfolioLedger outside settleBatch, under fuzzed amounts,
/// accounts, parameters and callers.
contract PortfolioLedgerFuzzTest is Fixture {
    bytes32 internal constant ADMIN_ROLE = 0x00;
    bytes32 internal constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    bytes32 internal constant ACCOUNT_ADMIN_ROLE = keccak256("ACCOUNT_ADMIN_ROLE");

    address internal funder = address(0xF00D);
    address internal recipient = address(0x5EC1);

    function _unauthorized(address caller, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
    }

    /// @dev Token 0 is cash, 1..3 the fixture's assets.
    function _token(uint256 seed) internal view returns (AssetToken t, uint256 quantum) {
        uint256 i = seed % 4;
        return i == 0 ? (cash, 1) : (tokens[i - 1], uint256(QUANTUM));
    }

    function _book(uint64 account, AssetToken t) internal view returns (uint256) {
        return _balance(account, IERC20(address(t)));
    }

    function _assertBooksEqualBalances() internal view {
        vm.assertEq(_bookTotal(IERC20(address(cash))), cash.balanceOf(address(ledger)), "cash books = held");
        for (uint256 a = 0; a < 3; ++a) {
            IERC20 t = IERC20(address(tokens[a]));
            vm.assertEq(_bookTotal(t), t.balanceOf(address(ledger)), "unit books = held");
        }
    }

    // ------------------------------------------------------------ deposit and withdraw

    function testFuzz_depositThenWithdraw_keepsBooksEqualBalances(
        uint256 accountSeed,
        uint256 tokenSeed,
        uint256 depositQuanta,
        uint256 withdrawQuanta,
        bool byAdmin
    ) public {
        uint64 account = uint64(1 + accountSeed % ACCOUNTS);
        (AssetToken t, uint256 quantum) = _token(tokenSeed);
        uint256 bookQuanta = _book(account, t) / quantum;
        depositQuanta = bound(depositQuanta, 0, type(uint64).max - bookQuanta);
        uint256 amount = depositQuanta * quantum;

        t.mint(funder, amount);
        vm.prank(funder);
        t.approve(address(ledger), amount);
        uint256 held = t.balanceOf(address(ledger));
        vm.prank(funder);
        ledger.deposit(account, IERC20(address(t)), amount);
        vm.assertEq(t.balanceOf(address(ledger)), held + amount, "ledger received the deposit");
        vm.assertEq(_book(account, t), (bookQuanta + depositQuanta) * quantum, "book credited");
        vm.assertEq(t.balanceOf(funder), 0, "funder paid");
        _assertBooksEqualBalances();

        bookQuanta += depositQuanta;
        withdrawQuanta = bound(withdrawQuanta, 0, bookQuanta + 3);
        uint256 out = withdrawQuanta * quantum;
        if (withdrawQuanta > bookQuanta) {
            if (address(t) == address(cash)) {
                vm.expectRevert(
                    abi.encodeWithSelector(PortfolioLedger.InsufficientCash.selector, account, bookQuanta, withdrawQuanta)
                );
            } else {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        PortfolioLedger.InsufficientUnits.selector,
                        account,
                        ledger.assetIndexOf(IERC20(address(t))),
                        bookQuanta,
                        withdrawQuanta
                    )
                );
            }
        }
        vm.prank(byAdmin ? accountAdmin : ownerOf(account));
        ledger.withdraw(account, IERC20(address(t)), out, recipient);
        uint256 moved = withdrawQuanta > bookQuanta ? 0 : out;
        vm.assertEq(t.balanceOf(recipient), moved, "recipient received");
        vm.assertEq(_book(account, t), bookQuanta * quantum - moved, "book debited");
        _assertBooksEqualBalances();
    }

    function testFuzz_depositAndWithdraw_rejectPartialQuanta(uint256 amount, uint256 assetSeed) public {
        AssetToken t = tokens[assetSeed % 3];
        amount = bound(amount, 1, 1e30);
        if (amount % QUANTUM == 0) amount += 1;
        bytes memory err = abi.encodeWithSelector(
            PortfolioLedger.NotWholeQuanta.selector, address(t), amount, uint256(QUANTUM)
        );
        t.mint(funder, amount);
        vm.prank(funder);
        t.approve(address(ledger), amount);
        vm.expectRevert(err);
        vm.prank(funder);
        ledger.deposit(1, IERC20(address(t)), amount);
        vm.expectRevert(err);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(t)), amount, recipient);
        vm.assertEq(t.balanceOf(funder), amount, "nothing deposited");
        vm.assertEq(t.balanceOf(recipient), 0, "nothing withdrawn");
    }

    function testFuzz_depositBatch_creditsEveryEntry(uint256[4] memory amounts, uint256[4] memory accountSeeds, uint256 tokenSeed)
        public
    {
        (AssetToken t, uint256 quantum) = _token(tokenSeed);
        uint64[] memory ids = new uint64[](4);
        uint256[] memory amts = new uint256[](4);
        uint256[6] memory before;
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            before[id] = _book(id, t);
        }
        uint256[6] memory expected = before;
        uint256 total = 0;
        for (uint256 i = 0; i < 4; ++i) {
            ids[i] = uint64(1 + accountSeeds[i] % ACCOUNTS);
            amts[i] = bound(amounts[i], 0, 1e9) * quantum;
            expected[ids[i]] += amts[i];
            total += amts[i];
        }
        t.mint(funder, total);
        vm.prank(funder);
        t.approve(address(ledger), total);
        uint256 held = t.balanceOf(address(ledger));
        vm.prank(funder);
        ledger.depositBatch(IERC20(address(t)), ids, amts);
        for (uint64 id = 1; id <= ACCOUNTS; ++id) {
            vm.assertEq(_book(id, t), expected[id], "each account credited its entries");
        }
        vm.assertEq(t.balanceOf(address(ledger)), held + total, "ledger received the total");
        _assertBooksEqualBalances();
    }

    function testFuzz_depositBatch_rejectsLengthMismatch(uint8 nIds, uint8 nAmounts) public {
        nIds = uint8(bound(nIds, 0, 8));
        nAmounts = uint8(bound(nAmounts, 0, 8));
        vm.assume(nIds != nAmounts);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.LengthMismatch.selector, nIds, nAmounts));
        vm.prank(funder);
        ledger.depositBatch(IERC20(address(cash)), new uint64[](nIds), new uint256[](nAmounts));
    }

    function testFuzz_withdraw_onlyOwnerOrAccountAdmin(address caller, uint256 accountSeed) public {
        uint64 account = uint64(1 + accountSeed % ACCOUNTS);
        vm.assume(caller != ownerOf(account) && !ledger.hasRole(ACCOUNT_ADMIN_ROLE, caller) && caller != address(vm));
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.NotAccountOwner.selector, account, caller));
        vm.prank(caller);
        ledger.withdraw(account, IERC20(address(cash)), 1, caller == address(0) ? recipient : caller);
        vm.assertEq(ledger.cashOf(account), ACCOUNT_CASH, "nothing moved");
    }

    function testFuzz_depositAndWithdraw_revertWhilePaused(uint256 amount, bool withdrawal) public {
        amount = bound(amount, 0, ACCOUNT_CASH);
        vm.prank(guardian);
        ledger.pause();
        cash.mint(funder, amount);
        vm.prank(funder);
        cash.approve(address(ledger), amount);
        uint256 held = cash.balanceOf(address(ledger));
        vm.expectRevert(Pausable.EnforcedPause.selector);
        if (withdrawal) {
            vm.prank(ownerOf(1));
            ledger.withdraw(1, IERC20(address(cash)), amount, recipient);
        } else {
            vm.prank(funder);
            ledger.deposit(1, IERC20(address(cash)), amount);
        }
        vm.assertEq(cash.balanceOf(address(ledger)), held, "no token moved");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "no book changed");
    }

    // ------------------------------------------------------------ accounts

    function testFuzz_openAccounts_opensFreshIdsForNonZeroOwners(uint64[3] memory ids, address[3] memory owners) public {
        for (uint256 i = 0; i < 3; ++i) {
            vm.assume(!ledger.isOpen(ids[i]));
            for (uint256 j = 0; j < i; ++j) {
                vm.assume(ids[i] != ids[j]);
            }
        }
        bool anyZero = owners[0] == address(0) || owners[1] == address(0) || owners[2] == address(0);
        uint64[] memory idList = new uint64[](3);
        address[] memory ownerList = new address[](3);
        for (uint256 i = 0; i < 3; ++i) {
            idList[i] = ids[i];
            ownerList[i] = owners[i];
        }
        if (anyZero) vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        vm.prank(accountAdmin);
        ledger.openAccounts(idList, ownerList);
        for (uint256 i = 0; i < 3; ++i) {
            vm.assertEq(ledger.isOpen(ids[i]), !anyZero, "opened iff every owner is set");
            vm.assertEq(ledger.ownerOf(ids[i]), anyZero ? address(0) : owners[i], "owner");
            vm.assertFalse(ledger.isFrozen(ids[i]), "not frozen");
        }
        if (!anyZero) {
            vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountAlreadyOpen.selector, ids[1]));
            vm.prank(accountAdmin);
            ledger.openAccounts(_single(ids[1]), _singleOwner(owners[0]));
        }
    }

    function _single(uint64 id) internal pure returns (uint64[] memory a) {
        a = new uint64[](1);
        a[0] = id;
    }

    function _singleOwner(address o) internal pure returns (address[] memory a) {
        a = new address[](1);
        a[0] = o;
    }

    function testFuzz_openAccounts_rejectsCallersWithoutTheRole(address caller, uint64 id) public {
        vm.assume(!ledger.hasRole(ACCOUNT_ADMIN_ROLE, caller) && caller != address(vm));
        vm.expectRevert(_unauthorized(caller, ACCOUNT_ADMIN_ROLE));
        vm.prank(caller);
        ledger.openAccounts(_single(id), _singleOwner(recipient));
    }

    function testFuzz_setFrozen_roundTripsForOpenAccountsOnly(uint64 account, bool frozen) public {
        bool open = ledger.isOpen(account);
        if (!open) vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, account));
        vm.prank(guardian);
        ledger.setFrozen(account, frozen);
        vm.assertEq(ledger.isFrozen(account), open && frozen, "frozen flag");
        vm.assertEq(ledger.isOpen(account), open, "openness unchanged");
        // the neighbours in the status bitmap are untouched
        if (account > 0) vm.assertFalse(ledger.isFrozen(account - 1), "lower neighbour");
        if (account < type(uint64).max) vm.assertFalse(ledger.isFrozen(account + 1), "upper neighbour");
    }

    function testFuzz_guardianFunctions_rejectCallersWithoutTheRole(address caller, uint8 which) public {
        vm.assume(!ledger.hasRole(GUARDIAN_ROLE, caller) && caller != address(vm));
        which = which % 3;
        if (which == 1) {
            vm.prank(guardian);
            ledger.pause();
        }
        vm.expectRevert(_unauthorized(caller, GUARDIAN_ROLE));
        vm.prank(caller);
        if (which == 0) ledger.pause();
        else if (which == 1) ledger.unpause();
        else ledger.setFrozen(1, true);
        vm.assertEq(ledger.paused(), which == 1, "pause state unchanged");
        vm.assertFalse(ledger.isFrozen(1), "not frozen");
    }

    // ------------------------------------------------------------ admin

    /// @dev Decimals up to 38 keep 10^decimals within uint128, the quantum's type.
    function testFuzz_registerAsset_acceptsQuantaUpToOneWholeUnit(uint8 decimals, uint128 quantum) public {
        decimals = uint8(bound(decimals, 0, 38));
        AssetToken t = new AssetToken("New", "NEW", decimals, address(this));
        bool valid = quantum != 0 && quantum <= 10 ** uint256(decimals);
        if (!valid) vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BadQuantum.selector, quantum));
        ledger.registerAsset(IERC20(address(t)), feeds[0], MAX_FEED_AGE, quantum);
        if (!valid) {
            vm.assertEq(ledger.assetCount(), 3, "not registered");
            return;
        }
        vm.assertEq(uint256(ledger.assetInfo(3).quantum), quantum, "quantum stored");
        vm.assertEq(uint256(ledger.assetInfo(3).tokenDecimals), decimals, "decimals read from the token");
        // Books count whole quanta of it: 3 in, 1 out.
        uint256 q = quantum;
        t.mint(funder, 3 * q);
        vm.prank(funder);
        t.approve(address(ledger), 3 * q);
        vm.prank(funder);
        ledger.deposit(1, IERC20(address(t)), 3 * q);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(t)), q, recipient);
        vm.assertEq(ledger.unitsOf(1, 3), 2 * q, "two quanta left");
        vm.assertEq(t.balanceOf(address(ledger)), 2 * q, "ledger holds them");
    }

    function testFuzz_adminFunctions_rejectCallersWithoutTheRole(address caller, uint8 which) public {
        vm.assume(!ledger.hasRole(ADMIN_ROLE, caller) && caller != address(vm));
        which = which % 5;
        AssetToken t = new AssetToken("New", "NEW", 18, address(this));
        vm.expectRevert(_unauthorized(caller, ADMIN_ROLE));
        vm.prank(caller);
        if (which == 0) ledger.registerAsset(IERC20(address(t)), feeds[0], MAX_FEED_AGE, QUANTUM);
        else if (which == 1) ledger.setFeed(0, feeds[1], 1);
        else if (which == 2) ledger.setRouter(IUniswapV2Router(address(0xdead)));
        else if (which == 3) ledger.setMaxSlippageCap(10_000);
        else ledger.setDustAccount(1);
        vm.assertEq(ledger.assetCount(), 3, "no asset added");
        vm.assertEq(address(ledger.assetInfo(0).feed), address(feeds[0]), "feed unchanged");
        vm.assertEq(address(ledger.router()), address(router), "router unchanged");
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 500, "cap unchanged");
        vm.assertEq(uint256(ledger.dustAccount()), DUST, "dust account unchanged");
    }

    /// @dev Any feed decimals and maximum age: the price is read in the feed's
    /// own decimals, and a round older than the maximum age is refused.
    function testFuzz_setFeed_anyDecimalsAndMaxAge(uint8 feedDecimals, uint32 maxAge, uint256 elapsed) public {
        feedDecimals = uint8(bound(feedDecimals, 0, 36));
        maxAge = uint32(bound(maxAge, 0, 30 days));
        elapsed = bound(elapsed, 0, uint256(maxAge) * 2 + 10);
        PriceFeed f = new PriceFeed(feedDecimals, "GEQ", int256(100 * 10 ** uint256(feedDecimals)), address(this));
        vm.expectEmit(true, false, false, true, address(ledger));
        emit PortfolioLedger.FeedChanged(0, address(f), maxAge);
        ledger.setFeed(0, f, maxAge);
        vm.assertEq(uint256(ledger.assetInfo(0).feedDecimals), feedDecimals, "feed decimals");

        vm.warp(START + elapsed);
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        if (elapsed > maxAge) {
            vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.StaleFeed.selector, uint16(0), START, maxAge));
        }
        vm.prank(settler);
        ledger.settleBatch(_header("b", 1), _orders(), _trades(100));
        if (elapsed <= maxAge) {
            vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH - 100e6, "one unit at 100 whatever the decimals");
            vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH + 100e6, "seller");
        } else {
            vm.assertFalse(ledger.settled("b"), "stale feed, nothing settled");
        }
    }

    function testFuzz_setRouter_movesEveryApproval(address newRouter) public {
        vm.assume(newRouter != address(router));
        ledger.setRouter(IUniswapV2Router(newRouter));
        vm.assertEq(address(ledger.router()), newRouter, "router set");
        vm.assertEq(cash.allowance(address(ledger), address(router)), 0, "old router: no cash");
        uint256 expected = newRouter == address(0) ? 0 : type(uint256).max;
        vm.assertEq(cash.allowance(address(ledger), newRouter), expected, "new router: cash");
        for (uint256 i = 0; i < 3; ++i) {
            vm.assertEq(tokens[i].allowance(address(ledger), address(router)), 0, "old router: no units");
            vm.assertEq(tokens[i].allowance(address(ledger), newRouter), expected, "new router: units");
        }
    }

    function testFuzz_setMaxSlippageCap_acceptsUpToTenThousand(uint16 cap) public {
        bool valid = cap <= 10_000;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.SlippageAboveCap.selector, 0, cap, 10_000));
        ledger.setMaxSlippageCap(cap);
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), valid ? cap : 500, "cap");
    }

    function testFuzz_setDustAccount_onlyOpenAccounts(uint64 account) public {
        bool open = ledger.isOpen(account);
        if (!open) vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, account));
        ledger.setDustAccount(account);
        vm.assertEq(uint256(ledger.dustAccount()), open ? account : DUST, "dust account");
    }

    function testFuzz_defaultAdminTransfer_waitsForTheDelay(address newAdmin, uint48 wait) public {
        vm.assume(newAdmin != address(0) && newAdmin != address(this) && newAdmin != address(vm));
        wait = uint48(bound(wait, 0, 10));
        // The fixture's ledger has no delay: the transfer is due one second after it is begun.
        ledger.beginDefaultAdminTransfer(newAdmin);
        uint48 schedule = uint48(block.timestamp);
        vm.warp(block.timestamp + wait);
        bool due = wait > 0;
        if (!due) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminDelay.selector, schedule
                )
            );
        }
        vm.prank(newAdmin);
        ledger.acceptDefaultAdminTransfer();
        vm.assertEq(ledger.defaultAdmin(), due ? newAdmin : address(this), "default admin");
        if (due) {
            vm.expectRevert(_unauthorized(address(this), ADMIN_ROLE));
            ledger.setMaxSlippageCap(1);
        }
    }
}
