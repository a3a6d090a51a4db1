// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {TestBase} from "./utils/Vm.sol";
import {AssetToken} from "../src/AssetToken.sol";

/// @title AssetToken under fuzzed callers and amounts.
contract AssetTokenFuzzTest is TestBase {
    bytes32 internal constant MINTER_ROLE = keccak256("MINTER_ROLE");

    address internal admin = address(0xAD);
    AssetToken internal token;

    function setUp() public {
        token = new AssetToken("Global Equity Fund", "GEQ", 18, admin);
    }

    function testFuzz_decimals_areKept(uint8 decimals) public {
        AssetToken t = new AssetToken("x", "x", decimals, admin);
        vm.assertEq(uint256(t.decimals()), decimals, "decimals");
    }

    function testFuzz_mint_onlyMinter(address caller, address to, uint256 amount) public {
        vm.assume(to != address(0) && caller != address(vm));
        bool minter = token.hasRole(MINTER_ROLE, caller);
        if (!minter) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, MINTER_ROLE)
            );
        }
        vm.prank(caller);
        token.mint(to, amount);
        vm.assertEq(token.balanceOf(to), minter ? amount : 0, "balance");
        vm.assertEq(token.totalSupply(), minter ? amount : 0, "supply");
    }

    function testFuzz_mintThenBurn(address holder, uint256 minted, uint256 burned) public {
        vm.assume(holder != address(0) && holder != address(vm));
        vm.prank(admin);
        token.mint(holder, minted);
        if (burned > minted) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, holder, minted, burned)
            );
        }
        vm.prank(holder);
        token.burn(burned);
        uint256 left = burned > minted ? minted : minted - burned;
        vm.assertEq(token.balanceOf(holder), left, "balance");
        vm.assertEq(token.totalSupply(), left, "supply");
    }

    function testFuzz_transfer_movesExactly(address from, address to, uint256 minted, uint256 sent) public {
        vm.assume(from != address(0) && to != address(0) && from != to && from != address(vm));
        minted = bound(minted, 0, type(uint128).max);
        vm.prank(admin);
        token.mint(from, minted);
        if (sent > minted) {
            vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, from, minted, sent));
        }
        vm.prank(from);
        token.transfer(to, sent);
        uint256 moved = sent > minted ? 0 : sent;
        vm.assertEq(token.balanceOf(from), minted - moved, "sender");
        vm.assertEq(token.balanceOf(to), moved, "recipient");
        vm.assertEq(token.totalSupply(), minted, "supply unchanged");
    }

    function testFuzz_transferFrom_spendsTheAllowance(uint256 allowance, uint256 amount) public {
        address owner = address(0xA11CE);
        address spender = address(0xB0B);
        vm.prank(admin);
        token.mint(owner, type(uint128).max);
        allowance = bound(allowance, 0, type(uint128).max);
        amount = bound(amount, 0, type(uint128).max);
        vm.prank(owner);
        token.approve(spender, allowance);
        if (amount > allowance) {
            vm.expectRevert(
                abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, spender, allowance, amount)
            );
        }
        vm.prank(spender);
        token.transferFrom(owner, spender, amount);
        uint256 moved = amount > allowance ? 0 : amount;
        vm.assertEq(token.balanceOf(spender), moved, "moved");
        uint256 left = allowance == type(uint256).max ? allowance : allowance - moved;
        vm.assertEq(token.allowance(owner, spender), left, "allowance spent");
    }

    function testFuzz_minterRole_grantedOnlyByTheAdmin(address caller, address grantee) public {
        vm.assume(caller != admin && caller != address(vm) && grantee != address(0) && grantee != address(vm));
        bytes32 adminRole = token.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, adminRole)
        );
        vm.prank(caller);
        token.grantRole(MINTER_ROLE, grantee);
        vm.prank(admin);
        token.grantRole(MINTER_ROLE, grantee);
        vm.prank(grantee);
        token.mint(grantee, 1);
        vm.assertEq(token.balanceOf(grantee), 1, "granted minter mints");
    }
}
