// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Fixture} from "./utils/Fixture.sol";
import {Vm} from "./utils/Vm.sol";
import {FeeOnTransferToken} from "./utils/Tokens.sol";
import {PortfolioLedger} from "../src/PortfolioLedger.sol";
import {AuditRegistry} from "../src/AuditRegistry.sol";
import {PriceFeed} from "../src/PriceFeed.sol";
import {AssetToken} from "../src/AssetToken.sol";
import {IAggregatorV3} from "../src/interfaces/IAggregatorV3.sol";
import {IUniswapV2Router} from "../src/interfaces/IUniswapV2.sol";

/// @title PortfolioLedger outside settleBatch: accounts, deposits,
/// withdrawals, freezing, the circuit breaker and administration.
contract PortfolioLedgerTest is Fixture {
    bytes32 internal constant ADMIN_ROLE = 0x00;
    bytes32 internal constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 internal constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    bytes32 internal constant ACCOUNT_ADMIN_ROLE = keccak256("ACCOUNT_ADMIN_ROLE");

    address internal funder = address(0xF00D);
    address internal alice = address(0xA11CE);

    IERC20 internal cashT;

    function setUp() public override {
        super.setUp();
        cashT = IERC20(address(cash));
    }

    // ------------------------------------------------------------ helpers

    function _unauthorized(address caller, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
    }

    function _mintApprove(AssetToken t, address from, uint256 amount) internal {
        t.mint(from, amount);
        vm.prank(from);
        t.approve(address(ledger), amount);
    }

    function _one(uint64 a) internal pure returns (uint64[] memory ids) {
        ids = new uint64[](1);
        ids[0] = a;
    }

    function _oneOwner(address a) internal pure returns (address[] memory owners) {
        owners = new address[](1);
        owners[0] = a;
    }

    function _settle(bytes32 batchId, uint64 size) internal returns (uint256) {
        vm.prank(settler);
        return ledger.settleBatch(_header(batchId, size), _orders(), _trades(100));
    }

    function _assertBooksEqualBalances() internal view {
        vm.assertEq(_bookTotal(cashT), cash.balanceOf(address(ledger)), "cash books = cash held");
        for (uint256 a = 0; a < 3; ++a) {
            IERC20 t = IERC20(address(tokens[a]));
            vm.assertEq(_bookTotal(t), t.balanceOf(address(ledger)), "unit books = units held");
        }
    }

    function _newToken(uint8 decimals) internal returns (AssetToken) {
        return new AssetToken("New", "NEW", decimals, address(this));
    }

    // ------------------------------------------------------------ constructor

    function test_constructor_wiresTokensRegistryRouterAndDustAccount() public view {
        vm.assertEq(address(ledger.cashToken()), address(cash), "cash token");
        vm.assertEq(uint256(ledger.cashDecimals()), 6, "cash decimals");
        vm.assertEq(address(ledger.registry()), address(registry), "registry");
        vm.assertEq(address(ledger.router()), address(router), "router");
        vm.assertEq(uint256(ledger.dustAccount()), DUST, "dust account");
        vm.assertTrue(ledger.isOpen(DUST), "dust account open");
        vm.assertEq(ledger.ownerOf(DUST), address(this), "dust account owned by the admin");
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 500, "default slippage cap");
        vm.assertEq(ledger.MAX_ASSETS(), 15, "max assets");
        vm.assertEq(ledger.MAX_BATCH_LEGS(), 4096, "max legs");
        vm.assertEq(ledger.defaultAdmin(), address(this), "default admin");
        vm.assertEq(cash.allowance(address(ledger), address(router)), type(uint256).max, "router may pull cash");
        vm.assertEq(ledger.assetCount(), 3, "three assets");
    }

    function test_constructor_revertsOnZeroCashOrRegistry() public {
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        new PortfolioLedger(IERC20(address(0)), registry, router, address(this), 0, 1);
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        new PortfolioLedger(cashT, AuditRegistry(address(0)), router, address(this), 0, 1);
    }

    function test_constructor_revertsOnZeroAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControlDefaultAdminRules.AccessControlInvalidDefaultAdmin.selector, address(0))
        );
        new PortfolioLedger(cashT, registry, router, address(0), 0, 1);
    }

    function test_roleConstants_areTheHashesOfTheirNames() public view {
        vm.assertEq(ledger.SETTLER_ROLE(), SETTLER_ROLE, "settler");
        vm.assertEq(ledger.GUARDIAN_ROLE(), GUARDIAN_ROLE, "guardian");
        vm.assertEq(ledger.ACCOUNT_ADMIN_ROLE(), ACCOUNT_ADMIN_ROLE, "account admin");
    }

    // ------------------------------------------------------------ openAccounts

    function test_openAccounts_opensEachAccountForItsOwnerAndEmits() public {
        uint64[] memory ids = new uint64[](3);
        address[] memory owners = new address[](3);
        (ids[0], ids[1], ids[2]) = (10, 11, 300);
        (owners[0], owners[1], owners[2]) = (alice, funder, alice);
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectEmit(true, true, false, true, address(ledger));
            emit PortfolioLedger.AccountOpened(ids[i], owners[i]);
        }
        vm.prank(accountAdmin);
        ledger.openAccounts(ids, owners);
        for (uint256 i = 0; i < 3; ++i) {
            vm.assertTrue(ledger.isOpen(ids[i]), "open");
            vm.assertFalse(ledger.isFrozen(ids[i]), "not frozen");
            vm.assertEq(ledger.ownerOf(ids[i]), owners[i], "owner");
            vm.assertEq(ledger.cashOf(ids[i]), 0, "empty book");
        }
        vm.assertFalse(ledger.isOpen(12), "other ids stay closed");
    }

    function test_openAccounts_onlyAccountAdmin() public {
        address[4] memory callers = [stranger, address(this), settler, guardian];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ACCOUNT_ADMIN_ROLE));
            vm.prank(callers[i]);
            ledger.openAccounts(_one(10), _oneOwner(alice));
        }
        vm.assertFalse(ledger.isOpen(10), "not opened");
    }

    function test_openAccounts_revertsOnAnAlreadyOpenAccount() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountAlreadyOpen.selector, uint64(1)));
        vm.prank(accountAdmin);
        ledger.openAccounts(_one(1), _oneOwner(alice));
        vm.assertEq(ledger.ownerOf(1), ownerOf(1), "owner unchanged");

        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountAlreadyOpen.selector, DUST));
        vm.prank(accountAdmin);
        ledger.openAccounts(_one(DUST), _oneOwner(alice));
    }

    function test_openAccounts_revertsOnADuplicateInOneCall() public {
        uint64[] memory ids = new uint64[](2);
        address[] memory owners = new address[](2);
        (ids[0], ids[1]) = (20, 20);
        (owners[0], owners[1]) = (alice, funder);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountAlreadyOpen.selector, uint64(20)));
        vm.prank(accountAdmin);
        ledger.openAccounts(ids, owners);
        vm.assertFalse(ledger.isOpen(20), "rolled back");
        vm.assertEq(ledger.ownerOf(20), address(0), "no owner");
    }

    function test_openAccounts_revertsOnLengthMismatch() public {
        uint64[] memory ids = new uint64[](2);
        (ids[0], ids[1]) = (20, 21);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.LengthMismatch.selector, 2, 1));
        vm.prank(accountAdmin);
        ledger.openAccounts(ids, _oneOwner(alice));
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.LengthMismatch.selector, 1, 0));
        vm.prank(accountAdmin);
        ledger.openAccounts(_one(20), new address[](0));
        vm.assertFalse(ledger.isOpen(20), "nothing opened");
    }

    function test_openAccounts_revertsOnAZeroOwner() public {
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        vm.prank(accountAdmin);
        ledger.openAccounts(_one(20), _oneOwner(address(0)));
        vm.assertFalse(ledger.isOpen(20), "not opened");
    }

    function test_accountStatus_bitmapNeighboursAreIndependent() public {
        uint64[] memory ids = new uint64[](4);
        address[] memory owners = new address[](4);
        (ids[0], ids[1], ids[2], ids[3]) = (127, 128, 255, type(uint64).max);
        for (uint256 i = 0; i < 4; ++i) owners[i] = alice;
        vm.prank(accountAdmin);
        ledger.openAccounts(ids, owners);
        vm.prank(guardian);
        ledger.setFrozen(127, true);
        vm.assertTrue(ledger.isFrozen(127), "127 frozen");
        vm.assertFalse(ledger.isFrozen(128), "128 (next word) not frozen");
        vm.assertTrue(ledger.isOpen(128), "128 open");
        vm.assertFalse(ledger.isOpen(126), "126 closed");
        vm.assertFalse(ledger.isOpen(129), "129 closed");
        vm.assertTrue(ledger.isOpen(255), "255 open");
        vm.assertFalse(ledger.isOpen(254), "254 closed");
        vm.assertFalse(ledger.isOpen(256), "256 closed");
        vm.assertTrue(ledger.isOpen(type(uint64).max), "largest id open");
        vm.assertFalse(ledger.isOpen(type(uint64).max - 1), "its neighbour closed");
        vm.prank(guardian);
        ledger.setFrozen(127, false);
        vm.assertFalse(ledger.isFrozen(127), "unfrozen");
        vm.assertTrue(ledger.isOpen(127), "still open after unfreezing");
    }

    // ------------------------------------------------------------ deposit

    function test_deposit_movesCashIntoTheBookAndEmits() public {
        _mintApprove(cash, funder, 123e6);
        uint256 held = cash.balanceOf(address(ledger));
        vm.expectEmit(true, true, false, true, address(ledger));
        emit PortfolioLedger.Deposited(1, address(cash), 123e6, funder);
        vm.prank(funder);
        ledger.deposit(1, cashT, 123e6);
        vm.assertEq(cash.balanceOf(funder), 0, "funder paid");
        vm.assertEq(cash.balanceOf(address(ledger)), held + 123e6, "ledger received");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH + 123e6, "book credited");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH, "other books untouched");
        _assertBooksEqualBalances();
    }

    function test_deposit_movesAssetUnitsIntoTheBook() public {
        AssetToken t = tokens[1];
        _mintApprove(t, funder, 5 * QUANTUM);
        vm.prank(funder);
        ledger.deposit(2, IERC20(address(t)), 5 * QUANTUM);
        vm.assertEq(ledger.unitsOf(2, 1), ACCOUNT_UNITS + 5 * QUANTUM, "units credited");
        vm.assertEq(ledger.unitsOf(2, 0), ACCOUNT_UNITS, "other asset untouched");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH, "cash untouched");
        vm.assertEq(t.balanceOf(funder), 0, "funder paid");
        _assertBooksEqualBalances();
    }

    function test_deposit_revertsOnAPartialQuantum() public {
        AssetToken t = tokens[0];
        _mintApprove(t, funder, 2 * QUANTUM);
        uint256[3] memory bad = [uint256(QUANTUM + 1), QUANTUM - 1, 1];
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(PortfolioLedger.NotWholeQuanta.selector, address(t), bad[i], uint256(QUANTUM))
            );
            vm.prank(funder);
            ledger.deposit(1, IERC20(address(t)), bad[i]);
        }
        vm.assertEq(t.balanceOf(funder), 2 * QUANTUM, "nothing moved");
    }

    function test_deposit_revertsOnAnUnsupportedToken() public {
        AssetToken t = _newToken(18);
        _mintApprove(t, funder, 1e18);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnsupportedToken.selector, address(t)));
        vm.prank(funder);
        ledger.deposit(1, IERC20(address(t)), 1e18);
        vm.assertEq(t.balanceOf(funder), 1e18, "nothing moved");
    }

    function test_deposit_revertsForAnUnknownAccount() public {
        _mintApprove(cash, funder, 1e6);
        uint256 held = cash.balanceOf(address(ledger));
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, uint64(77)));
        vm.prank(funder);
        ledger.deposit(77, cashT, 1e6);
        vm.assertEq(cash.balanceOf(address(ledger)), held, "nothing moved");
        vm.assertEq(ledger.cashOf(77), 0, "no book");
    }

    function test_deposit_revertsOnAFeeOnTransferToken() public {
        FeeOnTransferToken t = new FeeOnTransferToken("Fee", "FEE", address(this));
        ledger.registerAsset(IERC20(address(t)), feeds[0], MAX_FEED_AGE, QUANTUM);
        _mintApprove(t, funder, 100 * QUANTUM);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnsupportedToken.selector, address(t)));
        vm.prank(funder);
        ledger.deposit(1, IERC20(address(t)), 100 * QUANTUM);
        vm.assertEq(t.balanceOf(address(ledger)), 0, "nothing kept");
        vm.assertEq(ledger.unitsOf(1, 3), 0, "nothing credited");
    }

    function test_deposit_revertsWithoutAllowance() public {
        cash.mint(funder, 1e6);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(ledger), 0, 1e6)
        );
        vm.prank(funder);
        ledger.deposit(1, cashT, 1e6);
    }

    function test_deposit_anyoneMayFundAnyAccount() public {
        _mintApprove(cash, stranger, 9e6);
        vm.prank(stranger);
        ledger.deposit(3, cashT, 9e6);
        vm.assertEq(ledger.cashOf(3), ACCOUNT_CASH + 9e6, "credited");
        vm.assertEq(ledger.ownerOf(3), ownerOf(3), "ownership unchanged");
    }

    function test_deposit_revertsWhenTheBookWouldExceedUint64() public {
        uint256 amount = uint256(type(uint64).max) - ACCOUNT_CASH + 1;
        _mintApprove(cash, funder, amount);
        vm.expectRevert(
            abi.encodeWithSelector(SafeCast.SafeCastOverflowedUintDowncast.selector, 64, uint256(type(uint64).max) + 1)
        );
        vm.prank(funder);
        ledger.deposit(1, cashT, amount);
        // one base unit less fills the book exactly
        vm.prank(funder);
        ledger.deposit(1, cashT, amount - 1);
        vm.assertEq(ledger.cashOf(1), type(uint64).max, "full book");
    }

    // ------------------------------------------------------------ depositBatch

    function test_depositBatch_creditsEachAccountFromOneTransfer() public {
        uint64[] memory ids = new uint64[](3);
        uint256[] memory amounts = new uint256[](3);
        (ids[0], ids[1], ids[2]) = (1, 2, 1);
        (amounts[0], amounts[1], amounts[2]) = (10e6, 20e6, 30e6);
        _mintApprove(cash, funder, 60e6);
        uint256 held = cash.balanceOf(address(ledger));
        vm.recordLogs();
        vm.prank(funder);
        ledger.depositBatch(cashT, ids, amounts);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 transfers;
        uint256 deposits;
        bytes32 transferTopic = keccak256("Transfer(address,address,uint256)");
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter == address(cash) && logs[i].topics[0] == transferTopic) transfers++;
            if (logs[i].emitter == address(ledger) && logs[i].topics[0] == PortfolioLedger.Deposited.selector) {
                deposits++;
            }
        }
        vm.assertEq(transfers, 1, "one token transfer");
        vm.assertEq(deposits, 3, "one event per credited entry");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH + 40e6, "account 1 credited twice");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH + 20e6, "account 2 credited");
        vm.assertEq(cash.balanceOf(address(ledger)), held + 60e6, "ledger received the total");
        _assertBooksEqualBalances();
    }

    function test_depositBatch_revertsOnLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.LengthMismatch.selector, 1, 2));
        vm.prank(funder);
        ledger.depositBatch(cashT, _one(1), new uint256[](2));
    }

    function test_depositBatch_revertsWhenAnyAmountIsNotWholeQuanta() public {
        AssetToken t = tokens[2];
        uint64[] memory ids = new uint64[](2);
        uint256[] memory amounts = new uint256[](2);
        (ids[0], ids[1]) = (1, 2);
        (amounts[0], amounts[1]) = (QUANTUM, QUANTUM + 7);
        _mintApprove(t, funder, 3 * QUANTUM);
        vm.expectRevert(
            abi.encodeWithSelector(PortfolioLedger.NotWholeQuanta.selector, address(t), QUANTUM + 7, uint256(QUANTUM))
        );
        vm.prank(funder);
        ledger.depositBatch(IERC20(address(t)), ids, amounts);
        vm.assertEq(ledger.unitsOf(1, 2), ACCOUNT_UNITS, "first entry not credited either");
    }

    function test_depositBatch_isAllOrNothingWhenAnAccountIsFrozen() public {
        uint64[] memory ids = new uint64[](2);
        uint256[] memory amounts = new uint256[](2);
        (ids[0], ids[1]) = (1, 2);
        (amounts[0], amounts[1]) = (5e6, 5e6);
        _mintApprove(cash, funder, 10e6);
        vm.prank(guardian);
        ledger.setFrozen(2, true);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountFrozen.selector, uint64(2)));
        vm.prank(funder);
        ledger.depositBatch(cashT, ids, amounts);
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "account 1 not credited");
        vm.assertEq(cash.balanceOf(funder), 10e6, "funder kept the tokens");
    }

    function test_depositBatch_revertsWhenAnyAccountIsUnknown() public {
        uint64[] memory ids = new uint64[](2);
        uint256[] memory amounts = new uint256[](2);
        (ids[0], ids[1]) = (1, 66);
        (amounts[0], amounts[1]) = (5e6, 5e6);
        _mintApprove(cash, funder, 10e6);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, uint64(66)));
        vm.prank(funder);
        ledger.depositBatch(cashT, ids, amounts);
        vm.assertEq(cash.balanceOf(funder), 10e6, "nothing moved");
    }

    // ------------------------------------------------------------ withdraw

    function test_withdraw_byTheOwnerSendsTokensAndEmits() public {
        uint256 held = cash.balanceOf(address(ledger));
        vm.expectEmit(true, true, false, true, address(ledger));
        emit PortfolioLedger.Withdrawn(1, address(cash), 100e6, alice);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, cashT, 100e6, alice);
        vm.assertEq(cash.balanceOf(alice), 100e6, "recipient received");
        vm.assertEq(cash.balanceOf(address(ledger)), held - 100e6, "ledger paid");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH - 100e6, "book debited");
        _assertBooksEqualBalances();
    }

    function test_withdraw_byTheAccountAdmin() public {
        IERC20 t = IERC20(address(tokens[2]));
        vm.prank(accountAdmin);
        ledger.withdraw(4, t, 3 * QUANTUM, ownerOf(4));
        vm.assertEq(t.balanceOf(ownerOf(4)), 3 * QUANTUM, "owner received");
        vm.assertEq(ledger.unitsOf(4, 2), ACCOUNT_UNITS - 3 * QUANTUM, "book debited");
        _assertBooksEqualBalances();
    }

    function test_withdraw_revertsForAnyoneButTheOwnerOrAccountAdmin() public {
        address[5] memory callers = [stranger, ownerOf(2), address(this), settler, guardian];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.NotAccountOwner.selector, uint64(1), callers[i]));
            vm.prank(callers[i]);
            ledger.withdraw(1, cashT, 1, callers[i]);
        }
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "nothing moved");
    }

    function test_withdraw_revertsOnInsufficientCash() public {
        vm.expectRevert(
            abi.encodeWithSelector(PortfolioLedger.InsufficientCash.selector, uint64(1), ACCOUNT_CASH, ACCOUNT_CASH + 1)
        );
        vm.prank(ownerOf(1));
        ledger.withdraw(1, cashT, ACCOUNT_CASH + 1, alice);
    }

    function test_withdraw_revertsOnInsufficientUnits() public {
        uint256 heldQuanta = ACCOUNT_UNITS / QUANTUM;
        vm.expectRevert(
            abi.encodeWithSelector(
                PortfolioLedger.InsufficientUnits.selector, uint64(1), uint16(1), heldQuanta, heldQuanta + 1
            )
        );
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(tokens[1])), ACCOUNT_UNITS + QUANTUM, alice);
    }

    function test_withdraw_everythingEmptiesTheBook() public {
        IERC20 t = IERC20(address(tokens[0]));
        vm.startPrank(ownerOf(5));
        ledger.withdraw(5, t, ACCOUNT_UNITS, alice);
        ledger.withdraw(5, cashT, ACCOUNT_CASH, alice);
        vm.stopPrank();
        vm.assertEq(ledger.unitsOf(5, 0), 0, "no units left");
        vm.assertEq(ledger.cashOf(5), 0, "no cash left");
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.InsufficientCash.selector, uint64(5), 0, 1));
        vm.prank(ownerOf(5));
        ledger.withdraw(5, cashT, 1, alice);
        _assertBooksEqualBalances();
    }

    function test_withdraw_revertsOnAPartialQuantum() public {
        address t = address(tokens[0]);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.NotWholeQuanta.selector, t, QUANTUM / 2, uint256(QUANTUM)));
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(t), QUANTUM / 2, alice);
    }

    function test_withdraw_revertsOnAZeroRecipient() public {
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, cashT, 1, address(0));
    }

    function test_withdraw_revertsOnAnUnsupportedToken() public {
        AssetToken t = _newToken(18);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnsupportedToken.selector, address(t)));
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(t)), 0, alice);
    }

    function test_withdraw_revertsForAnUnknownAccount() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, uint64(77)));
        vm.prank(accountAdmin);
        ledger.withdraw(77, cashT, 0, alice);
        // without the account admin role nobody owns it
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.NotAccountOwner.selector, uint64(77), stranger));
        vm.prank(stranger);
        ledger.withdraw(77, cashT, 0, alice);
    }

    // ------------------------------------------------------------ freezing

    function test_setFrozen_freezesAndUnfreezesWithEvents() public {
        vm.expectEmit(true, false, false, true, address(ledger));
        emit PortfolioLedger.AccountFrozenSet(3, true);
        vm.prank(guardian);
        ledger.setFrozen(3, true);
        vm.assertTrue(ledger.isFrozen(3), "frozen");
        vm.assertTrue(ledger.isOpen(3), "still open");
        vm.expectEmit(true, false, false, true, address(ledger));
        emit PortfolioLedger.AccountFrozenSet(3, false);
        vm.prank(guardian);
        ledger.setFrozen(3, false);
        vm.assertFalse(ledger.isFrozen(3), "unfrozen");
    }

    function test_setFrozen_onlyGuardian() public {
        address[4] memory callers = [stranger, address(this), settler, accountAdmin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], GUARDIAN_ROLE));
            vm.prank(callers[i]);
            ledger.setFrozen(1, true);
        }
        vm.assertFalse(ledger.isFrozen(1), "not frozen");
    }

    function test_setFrozen_revertsForAnUnknownAccount() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, uint64(77)));
        vm.prank(guardian);
        ledger.setFrozen(77, true);
        vm.assertFalse(ledger.isOpen(77), "freezing did not open it");
    }

    function test_frozenAccount_blocksDepositWithdrawAndSettlement() public {
        vm.prank(guardian);
        ledger.setFrozen(1, true);
        bytes memory frozen = abi.encodeWithSelector(PortfolioLedger.AccountFrozen.selector, uint64(1));

        _mintApprove(cash, funder, 1e6);
        vm.expectRevert(frozen);
        vm.prank(funder);
        ledger.deposit(1, cashT, 1e6);

        vm.expectRevert(frozen);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, cashT, 1e6, alice);

        vm.expectRevert(frozen);
        vm.prank(accountAdmin);
        ledger.withdraw(1, cashT, 1e6, alice);

        _leg(1, 0, -1e6);
        _leg(2, 0, 1e6);
        vm.expectRevert(frozen);
        _settle("b1", 1);

        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "cash untouched");
        vm.assertEq(ledger.unitsOf(1, 0), ACCOUNT_UNITS, "units untouched");

        vm.prank(guardian);
        ledger.setFrozen(1, false);
        vm.prank(funder);
        ledger.deposit(1, cashT, 1e6);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, cashT, 1e6, alice);
        _settle("b1", 1);
        vm.assertEq(ledger.unitsOf(1, 0), ACCOUNT_UNITS - QUANTUM * 1e6, "settled once unfrozen");
    }

    function test_frozenAccount_doesNotBlockOtherAccounts() public {
        vm.prank(guardian);
        ledger.setFrozen(1, true);
        _mintApprove(cash, funder, 1e6);
        vm.prank(funder);
        ledger.deposit(2, cashT, 1e6);
        _leg(2, 0, 1e6);
        _leg(3, 0, -1e6);
        _settle("b1", 1);
        vm.assertTrue(ledger.settled("b1"), "others settle");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH + 1e6 - 100e6, "account 2 deposited and bought");
    }

    // ------------------------------------------------------------ pause

    function test_pause_blocksDepositsWithdrawalsAndSettlement() public {
        vm.expectEmit(false, false, false, true, address(ledger));
        emit Pausable.Paused(guardian);
        vm.prank(guardian);
        ledger.pause();
        vm.assertTrue(ledger.paused(), "paused");

        _mintApprove(cash, funder, 2e6);
        uint256 held = cash.balanceOf(address(ledger));

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(funder);
        ledger.deposit(1, cashT, 1e6);

        uint256[] memory amounts = new uint256[](1);
        amounts[0] = 1e6;
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(funder);
        ledger.depositBatch(cashT, _one(1), amounts);

        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(ownerOf(1));
        ledger.withdraw(1, cashT, 1e6, alice);

        _leg(1, 0, 1e6);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _settle("b1", 1);

        vm.assertEq(cash.balanceOf(address(ledger)), held, "no token moved");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "no book changed");
        vm.assertEq(registry.checkpointCount(), 0, "nothing anchored");

        vm.expectEmit(false, false, false, true, address(ledger));
        emit Pausable.Unpaused(guardian);
        vm.prank(guardian);
        ledger.unpause();
        vm.prank(funder);
        ledger.deposit(1, cashT, 1e6);
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH + 1e6, "deposits resume");
    }

    function test_pause_doesNotBlockAccountAdministration() public {
        vm.prank(guardian);
        ledger.pause();
        vm.prank(accountAdmin);
        ledger.openAccounts(_one(40), _oneOwner(alice));
        vm.prank(guardian);
        ledger.setFrozen(40, true);
        vm.assertTrue(ledger.isFrozen(40), "administration continues while paused");
    }

    function test_pauseAndUnpause_onlyGuardian() public {
        address[4] memory callers = [stranger, address(this), settler, accountAdmin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], GUARDIAN_ROLE));
            vm.prank(callers[i]);
            ledger.pause();
        }
        vm.prank(guardian);
        ledger.pause();
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], GUARDIAN_ROLE));
            vm.prank(callers[i]);
            ledger.unpause();
        }
        vm.assertTrue(ledger.paused(), "still paused");
    }

    function test_pause_revertsWhenAlreadyPausedAndUnpauseWhenNot() public {
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(guardian);
        ledger.unpause();
        vm.prank(guardian);
        ledger.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(guardian);
        ledger.pause();
    }

    // ------------------------------------------------------------ registerAsset

    function test_registerAsset_storesItApprovesTheRouterAndEmits() public {
        AssetToken t = _newToken(8);
        PriceFeed f = new PriceFeed(18, "NEW", 3e18, address(this));
        vm.expectEmit(true, true, false, true, address(ledger));
        emit PortfolioLedger.AssetRegistered(3, address(t), address(f), 600, 100);
        uint16 index = ledger.registerAsset(IERC20(address(t)), f, 600, 100);
        vm.assertEq(uint256(index), 3, "next index");
        vm.assertEq(ledger.assetCount(), 4, "count");
        vm.assertEq(uint256(ledger.assetIndexOf(IERC20(address(t)))), 3, "index lookup");
        PortfolioLedger.Asset memory a = ledger.assetInfo(3);
        vm.assertEq(address(a.token), address(t), "token");
        vm.assertEq(address(a.feed), address(f), "feed");
        vm.assertEq(uint256(a.maxFeedAge), 600, "max feed age");
        vm.assertEq(uint256(a.tokenDecimals), 8, "token decimals");
        vm.assertEq(uint256(a.feedDecimals), 18, "feed decimals");
        vm.assertEq(uint256(a.quantum), 100, "quantum");
        vm.assertEq(t.allowance(address(ledger), address(router)), type(uint256).max, "router approved");
        vm.assertEq(ledger.unitsOf(1, 3), 0, "empty lane");
    }

    function test_registerAsset_onlyDefaultAdmin() public {
        AssetToken t = _newToken(18);
        address[4] memory callers = [stranger, settler, guardian, accountAdmin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ADMIN_ROLE));
            vm.prank(callers[i]);
            ledger.registerAsset(IERC20(address(t)), feeds[0], MAX_FEED_AGE, QUANTUM);
        }
        vm.assertEq(ledger.assetCount(), 3, "nothing registered");
    }

    function test_registerAsset_revertsOnADuplicateOrTheCashToken() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AssetAlreadyRegistered.selector, address(tokens[1])));
        ledger.registerAsset(IERC20(address(tokens[1])), feeds[0], MAX_FEED_AGE, QUANTUM);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AssetAlreadyRegistered.selector, address(cash)));
        ledger.registerAsset(cashT, feeds[0], MAX_FEED_AGE, 1);
        vm.assertEq(ledger.assetCount(), 3, "nothing registered");
    }

    function test_registerAsset_revertsOnZeroAddresses() public {
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        ledger.registerAsset(IERC20(address(0)), feeds[0], MAX_FEED_AGE, QUANTUM);
        AssetToken t = _newToken(18);
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        ledger.registerAsset(IERC20(address(t)), IAggregatorV3(address(0)), MAX_FEED_AGE, QUANTUM);
    }

    function test_registerAsset_revertsOnABadQuantum() public {
        AssetToken t18 = _newToken(18);
        AssetToken t6 = _newToken(6);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BadQuantum.selector, 0));
        ledger.registerAsset(IERC20(address(t18)), feeds[0], MAX_FEED_AGE, 0);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BadQuantum.selector, 1e18 + 1));
        ledger.registerAsset(IERC20(address(t18)), feeds[0], MAX_FEED_AGE, 1e18 + 1);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BadQuantum.selector, 1e6 + 1));
        ledger.registerAsset(IERC20(address(t6)), feeds[0], MAX_FEED_AGE, 1e6 + 1);
        // the bounds themselves are fine: one base unit, one whole unit
        ledger.registerAsset(IERC20(address(t18)), feeds[0], MAX_FEED_AGE, 1e18);
        ledger.registerAsset(IERC20(address(t6)), feeds[0], MAX_FEED_AGE, 1);
        vm.assertEq(uint256(ledger.assetInfo(3).quantum), 1e18, "whole-unit quantum");
        vm.assertEq(uint256(ledger.assetInfo(4).quantum), 1, "base-unit quantum");
    }

    function test_registerAsset_revertsBeyondMaxAssets() public {
        for (uint256 i = 3; i < 15; ++i) {
            ledger.registerAsset(IERC20(address(_newToken(18))), feeds[0], MAX_FEED_AGE, QUANTUM);
        }
        vm.assertEq(ledger.assetCount(), 15, "full");
        AssetToken extra = _newToken(18);
        vm.expectRevert(PortfolioLedger.TooManyAssets.selector);
        ledger.registerAsset(IERC20(address(extra)), feeds[0], MAX_FEED_AGE, QUANTUM);

        // The last lane is a real, separate lane.
        AssetToken last = AssetToken(address(ledger.assetInfo(14).token));
        _mintApprove(last, funder, 3 * QUANTUM);
        vm.prank(funder);
        ledger.deposit(1, IERC20(address(last)), 3 * QUANTUM);
        vm.assertEq(ledger.unitsOf(1, 14), 3 * QUANTUM, "last lane credited");
        vm.assertEq(ledger.unitsOf(1, 13), 0, "its neighbour untouched");
        vm.assertEq(ledger.unitsOf(1, 0), ACCOUNT_UNITS, "first asset untouched");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "cash untouched");
        (uint256 c, uint256[] memory units,) = ledger.positionsOf(1);
        vm.assertEq(c, ACCOUNT_CASH, "positions cash");
        vm.assertEq(units.length, 15, "positions cover every asset");
        vm.assertEq(units[14], 3 * QUANTUM, "positions last asset");
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(last)), QUANTUM, alice);
        vm.assertEq(ledger.unitsOf(1, 14), 2 * QUANTUM, "last lane debited");
    }

    function test_views_revertForUnregisteredAssets() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnregisteredAsset.selector, 3));
        ledger.unitsOf(1, 3);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnregisteredAsset.selector, 3));
        ledger.assetInfo(3);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnsupportedToken.selector, address(cash)));
        ledger.assetIndexOf(cashT);
    }

    function test_positionsOf_listsCashAndEveryAsset() public view {
        (uint256 c, uint256[] memory units, bool frozen) = ledger.positionsOf(2);
        vm.assertEq(c, ACCOUNT_CASH, "cash");
        vm.assertEq(units.length, 3, "three assets");
        for (uint256 i = 0; i < 3; ++i) {
            vm.assertEq(units[i], ACCOUNT_UNITS, "units");
        }
        vm.assertFalse(frozen, "not frozen");
        (c, units, frozen) = ledger.positionsOf(77);
        vm.assertEq(c, 0, "unknown account has no cash");
        vm.assertEq(units[0], 0, "and no units");
        vm.assertFalse(frozen, "an unknown account is not frozen");
    }

    function test_positionsOf_saysWhetherTheAccountIsFrozen() public {
        vm.prank(guardian);
        ledger.setFrozen(2, true);
        (uint256 c, uint256[] memory units, bool frozen) = ledger.positionsOf(2);
        vm.assertTrue(frozen, "frozen");
        vm.assertEq(c, ACCOUNT_CASH, "the book is still there");
        vm.assertEq(units[1], ACCOUNT_UNITS, "units too");
        (,, frozen) = ledger.positionsOf(1);
        vm.assertFalse(frozen, "only that account");
        vm.prank(guardian);
        ledger.setFrozen(2, false);
        (,, frozen) = ledger.positionsOf(2);
        vm.assertFalse(frozen, "unfrozen");
    }

    // ------------------------------------------------------------ setFeed

    function test_setFeed_replacesTheFeedItsDecimalsAndMaxAgeAndEmits() public {
        PriceFeed f = new PriceFeed(18, "GEQ v2", 200e18, address(this));
        vm.expectEmit(true, false, false, true, address(ledger));
        emit PortfolioLedger.FeedChanged(0, address(f), 120);
        ledger.setFeed(0, f, 120);
        PortfolioLedger.Asset memory a = ledger.assetInfo(0);
        vm.assertEq(address(a.feed), address(f), "feed");
        vm.assertEq(uint256(a.feedDecimals), 18, "feed decimals");
        vm.assertEq(uint256(a.maxFeedAge), 120, "max age");
        // a crossed trade now settles at the new feed's price
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        _settle("b1", 1);
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH - 200e6, "buyer paid the new price");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH + 200e6, "seller got the new price");
    }

    function test_setFeed_maxAgeGovernsStaleness() public {
        ledger.setFeed(0, feeds[0], 10);
        _leg(1, 0, 1e6);
        _leg(2, 0, -1e6);
        vm.warp(START + 11);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.StaleFeed.selector, uint16(0), START, 10));
        _settle("b1", 1);
        vm.warp(START + 10);
        _settle("b1", 1);
        vm.assertTrue(ledger.settled("b1"), "fresh enough at exactly the max age");
    }

    function test_setFeed_onlyDefaultAdmin() public {
        address[3] memory callers = [stranger, settler, guardian];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ADMIN_ROLE));
            vm.prank(callers[i]);
            ledger.setFeed(0, feeds[1], 1);
        }
        vm.assertEq(address(ledger.assetInfo(0).feed), address(feeds[0]), "feed unchanged");
    }

    function test_setFeed_revertsForAnUnregisteredAssetOrAZeroFeed() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnregisteredAsset.selector, 3));
        ledger.setFeed(3, feeds[0], 1);
        vm.expectRevert(PortfolioLedger.ZeroAddress.selector);
        ledger.setFeed(0, IAggregatorV3(address(0)), 1);
    }

    // ------------------------------------------------------------ setRouter

    function _secondRouter() internal returns (IUniswapV2Router) {
        return IUniswapV2Router(
            _deploy(
                abi.encodePacked(
                    _uniswapCode("v2-periphery/build/UniswapV2Router02.json"),
                    abi.encode(address(factory), router.WETH())
                )
            )
        );
    }

    function _assertAllowances(address spender, uint256 expected) internal view {
        vm.assertEq(cash.allowance(address(ledger), spender), expected, "cash allowance");
        for (uint256 i = 0; i < ledger.assetCount(); ++i) {
            IERC20 t = ledger.assetInfo(uint16(i)).token;
            vm.assertEq(t.allowance(address(ledger), spender), expected, "asset allowance");
        }
    }

    function test_setRouter_movesEveryApprovalToTheNewRouter() public {
        IUniswapV2Router r2 = _secondRouter();
        _assertAllowances(address(router), type(uint256).max);
        ledger.setRouter(r2);
        vm.assertEq(address(ledger.router()), address(r2), "router");
        _assertAllowances(address(router), 0);
        _assertAllowances(address(r2), type(uint256).max);
    }

    function test_setRouter_settlementTradesThroughTheNewRouter() public {
        IUniswapV2Router r2 = _secondRouter();
        ledger.setRouter(r2);
        _leg(1, 1, 10e6);
        (uint256 assetReserve,) = _pairReserves(1);
        _settle("b1", 1);
        (uint256 assetAfter,) = _pairReserves(1);
        vm.assertEq(assetReserve - assetAfter, 10e18, "bought through the new router");
        _assertBooksEqualBalances();
    }

    function test_setRouter_toZeroRevokesAndLaterRestoresEveryApproval() public {
        ledger.setRouter(IUniswapV2Router(address(0)));
        _assertAllowances(address(router), 0);
        // an asset registered without a router gets no approval...
        AssetToken t = _newToken(18);
        ledger.registerAsset(IERC20(address(t)), feeds[0], MAX_FEED_AGE, QUANTUM);
        vm.assertEq(t.allowance(address(ledger), address(0)), 0, "no approval to nobody");
        _assertAllowances(address(router), 0);
        // ...until a router is set again, which approves every asset
        ledger.setRouter(router);
        _assertAllowances(address(router), type(uint256).max);
    }

    function test_setRouter_onlyDefaultAdmin() public {
        address[3] memory callers = [stranger, settler, guardian];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ADMIN_ROLE));
            vm.prank(callers[i]);
            ledger.setRouter(IUniswapV2Router(address(0xdead)));
        }
        vm.assertEq(address(ledger.router()), address(router), "router unchanged");
    }

    // ------------------------------------------------------------ setMaxSlippageCap

    function test_setMaxSlippageCap_boundsTheSettlersSlippage() public {
        ledger.setMaxSlippageCap(50);
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 50, "cap");
        _leg(1, 0, 1e6);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.SlippageAboveCap.selector, uint16(0), 51, 50));
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), _trades(51));
        vm.prank(settler);
        ledger.settleBatch(_header("b1", 1), _orders(), _trades(50));
        vm.assertTrue(ledger.settled("b1"), "settles at exactly the cap");
    }

    function test_setMaxSlippageCap_acceptsUpToTheWholeAndRejectsAbove() public {
        ledger.setMaxSlippageCap(10_000);
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 10_000, "full range");
        ledger.setMaxSlippageCap(0);
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 0, "zero");
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.SlippageAboveCap.selector, 0, 10_001, 10_000));
        ledger.setMaxSlippageCap(10_001);
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 0, "unchanged");
    }

    function test_setMaxSlippageCap_onlyDefaultAdmin() public {
        address[3] memory callers = [stranger, settler, guardian];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ADMIN_ROLE));
            vm.prank(callers[i]);
            ledger.setMaxSlippageCap(10_000);
        }
        vm.assertEq(uint256(ledger.maxSlippageCapBps()), 500, "unchanged");
    }

    // ------------------------------------------------------------ setDustAccount

    /// @dev At 100.50 a quantum is worth 100.5 base units: two buyers of one
    /// quantum each pay ceil(201 / 2) = 101, the seller of two gets 201.
    function _dustyBatch() internal {
        feeds[0].updateAnswer(100.5e8);
        _leg(1, 0, 1);
        _leg(2, 0, 1);
        _leg(3, 0, -2);
    }

    function test_setDustAccount_redirectsSettlementDust() public {
        ledger.setDustAccount(5);
        vm.assertEq(uint256(ledger.dustAccount()), 5, "dust account");
        _dustyBatch();
        uint256 dust = _settle("b1", 1);
        vm.assertEq(dust, 1, "one base unit of dust");
        vm.assertEq(ledger.cashOf(5), ACCOUNT_CASH + 1, "new dust account credited");
        vm.assertEq(ledger.cashOf(DUST), 0, "old dust account not credited");
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH - 101, "buyer 1 rounds up");
        vm.assertEq(ledger.cashOf(2), ACCOUNT_CASH - 101, "buyer 2 rounds up");
        vm.assertEq(ledger.cashOf(3), ACCOUNT_CASH + 201, "seller");
        _assertBooksEqualBalances();
    }

    function test_setDustAccount_emitsAndRefusesAFrozenAccount() public {
        vm.expectEmit(true, false, false, true, address(ledger));
        emit PortfolioLedger.DustAccountChanged(5);
        ledger.setDustAccount(5);
        vm.prank(guardian);
        ledger.setFrozen(4, true);
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.AccountFrozen.selector, uint64(4)));
        ledger.setDustAccount(4);
        vm.assertEq(uint256(ledger.dustAccount()), 5, "unchanged");
    }

    function test_withdraw_revertsWhenSentToTheLedgerItself() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.BadRecipient.selector, address(ledger)));
        vm.prank(ownerOf(1));
        ledger.withdraw(1, IERC20(address(cash)), 100e6, address(ledger));
        vm.assertEq(ledger.cashOf(1), ACCOUNT_CASH, "book unchanged");
        _assertBooksEqualBalances();
    }

    function test_constructor_refusesACashTokenWithTooManyDecimals() public {
        AssetToken wide = new AssetToken("Wide Dollar", "WUSD", 18, address(this));
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnsupportedCashDecimals.selector, uint8(18)));
        new PortfolioLedger(IERC20(address(wide)), registry, router, address(this), 0, 1);
    }

    function test_setDustAccount_revertsForAnUnknownAccount() public {
        vm.expectRevert(abi.encodeWithSelector(PortfolioLedger.UnknownAccount.selector, uint64(77)));
        ledger.setDustAccount(77);
        vm.assertEq(uint256(ledger.dustAccount()), DUST, "unchanged");
    }

    function test_setDustAccount_onlyDefaultAdmin() public {
        address[4] memory callers = [stranger, settler, guardian, accountAdmin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ADMIN_ROLE));
            vm.prank(callers[i]);
            ledger.setDustAccount(1);
        }
        vm.assertEq(uint256(ledger.dustAccount()), DUST, "unchanged");
    }

    // ------------------------------------------------------------ default admin

    function test_grantRole_defaultAdminRoleCannotBeGrantedDirectly() public {
        vm.expectRevert(IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminRules.selector);
        ledger.grantRole(ADMIN_ROLE, stranger);
    }

    function test_grantRole_onlyDefaultAdmin() public {
        vm.expectRevert(_unauthorized(guardian, ADMIN_ROLE));
        vm.prank(guardian);
        ledger.grantRole(SETTLER_ROLE, stranger);
        vm.assertFalse(ledger.hasRole(SETTLER_ROLE, stranger), "not granted");
    }
}
