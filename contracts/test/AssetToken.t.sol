// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {TestBase} from "./utils/Vm.sol";
import {AssetToken} from "../src/AssetToken.sol";

/// @title AssetToken: metadata, the minter role and burning.
contract AssetTokenTest is TestBase {
    bytes32 internal constant MINTER_ROLE = keccak256("MINTER_ROLE");

    address internal admin = address(0xAD);
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    AssetToken internal token;

    function setUp() public {
        token = new AssetToken("Global Equity Fund", "GEQ", 18, admin);
    }

    function test_metadata() public view {
        vm.assertEq(token.name(), "Global Equity Fund", "name");
        vm.assertEq(token.symbol(), "GEQ", "symbol");
        vm.assertEq(uint256(token.decimals()), 18, "decimals");
        vm.assertEq(token.totalSupply(), 0, "no supply");
    }

    function test_decimals_areTheConstructorArgument() public {
        uint8[4] memory ds = [uint8(0), 6, 8, 255];
        for (uint256 i = 0; i < ds.length; ++i) {
            AssetToken t = new AssetToken("x", "x", ds[i], admin);
            vm.assertEq(uint256(t.decimals()), ds[i], "decimals");
        }
    }

    function test_constructor_grantsAdminAndMinterRoles() public view {
        vm.assertTrue(token.hasRole(token.DEFAULT_ADMIN_ROLE(), admin), "admin role");
        vm.assertTrue(token.hasRole(MINTER_ROLE, admin), "minter role");
        vm.assertFalse(token.hasRole(MINTER_ROLE, address(this)), "deployer is not a minter");
        vm.assertEq(token.MINTER_ROLE(), MINTER_ROLE, "role constant");
    }

    function test_mint_createsTokensForTheRecipient() public {
        vm.prank(admin);
        token.mint(alice, 5e18);
        vm.assertEq(token.balanceOf(alice), 5e18, "balance");
        vm.assertEq(token.totalSupply(), 5e18, "supply");
    }

    function test_mint_onlyMinter() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, alice, MINTER_ROLE)
        );
        vm.prank(alice);
        token.mint(alice, 1);
        vm.assertEq(token.totalSupply(), 0, "nothing minted");
    }

    function test_mint_grantedAndRevokedMinter() public {
        vm.prank(admin);
        token.grantRole(MINTER_ROLE, bob);
        vm.prank(bob);
        token.mint(bob, 7);
        vm.assertEq(token.balanceOf(bob), 7, "granted minter mints");
        vm.prank(admin);
        token.revokeRole(MINTER_ROLE, bob);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bob, MINTER_ROLE)
        );
        vm.prank(bob);
        token.mint(bob, 7);
        vm.assertEq(token.balanceOf(bob), 7, "revoked minter cannot mint");
    }

    function test_mint_revertsToTheZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InvalidReceiver.selector, address(0)));
        vm.prank(admin);
        token.mint(address(0), 1);
    }

    function test_burn_destroysTheCallersOwnTokens() public {
        vm.prank(admin);
        token.mint(alice, 10e18);
        vm.prank(admin);
        token.mint(bob, 1e18);
        vm.prank(alice);
        token.burn(4e18);
        vm.assertEq(token.balanceOf(alice), 6e18, "alice burned 4");
        vm.assertEq(token.balanceOf(bob), 1e18, "bob untouched");
        vm.assertEq(token.totalSupply(), 7e18, "supply shrank");
    }

    function test_burn_revertsAboveTheBalance() public {
        vm.prank(admin);
        token.mint(alice, 3);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, alice, 3, 4));
        vm.prank(alice);
        token.burn(4);
        vm.assertEq(token.balanceOf(alice), 3, "nothing burned");
    }

    function test_burn_cannotTouchOthersTokens() public {
        vm.prank(admin);
        token.mint(alice, 3);
        // bob holds nothing, so his burn fails even though alice holds tokens
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, bob, 0, 1));
        vm.prank(bob);
        token.burn(1);
        vm.assertEq(token.balanceOf(alice), 3, "alice untouched");
    }

    function test_burn_needsNoRole() public {
        vm.prank(admin);
        token.mint(alice, 3);
        vm.assertFalse(token.hasRole(MINTER_ROLE, alice), "alice has no role");
        vm.prank(alice);
        token.burn(3);
        vm.assertEq(token.totalSupply(), 0, "burned");
    }

    function test_transfer_andTransferFrom() public {
        vm.prank(admin);
        token.mint(alice, 10);
        vm.prank(alice);
        vm.assertTrue(token.transfer(bob, 4), "transfer returns true");
        vm.prank(alice);
        token.approve(address(this), 5);
        vm.assertTrue(token.transferFrom(alice, bob, 5), "transferFrom returns true");
        vm.assertEq(token.balanceOf(alice), 1, "alice");
        vm.assertEq(token.balanceOf(bob), 9, "bob");
        vm.assertEq(token.allowance(alice, address(this)), 0, "allowance spent");
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(this), 0, 1)
        );
        token.transferFrom(alice, bob, 1);
    }
}
