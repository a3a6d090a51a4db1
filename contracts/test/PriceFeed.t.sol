// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {TestBase} from "./utils/Vm.sol";
import {PriceFeed} from "../src/PriceFeed.sol";

/// @title PriceFeed: rounds, history, range checks and the updater role.
contract PriceFeedTest is TestBase {
    bytes32 internal constant UPDATER_ROLE = keccak256("UPDATER_ROLE");
    uint256 internal constant T0 = 1_800_000_000;

    address internal updater = address(0x11);
    address internal stranger = address(0xBAD);
    PriceFeed internal feed;

    function setUp() public {
        vm.warp(T0);
        feed = new PriceFeed(8, "GEQ / USD", 100e8, address(this));
        feed.grantRole(UPDATER_ROLE, updater);
    }

    function _update(int256 answer) internal {
        vm.prank(updater);
        feed.updateAnswer(answer);
    }

    function _assertRound(uint80 id, int256 answer, uint256 at) internal view {
        (uint80 roundId, int256 a, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) = feed.getRoundData(id);
        vm.assertEq(uint256(roundId), uint256(id), "roundId");
        vm.assertEq(a, answer, "answer");
        vm.assertEq(startedAt, at, "startedAt");
        vm.assertEq(updatedAt, at, "updatedAt");
        vm.assertEq(uint256(answeredInRound), uint256(id), "answeredInRound");
    }

    function test_constructor_setsMetadataAndTheFirstRound() public view {
        vm.assertEq(uint256(feed.decimals()), 8, "decimals");
        vm.assertEq(feed.description(), "GEQ / USD", "description");
        vm.assertEq(feed.version(), 1, "version");
        vm.assertEq(uint256(feed.latestRound()), 1, "round ids start at 1");
        _assertRound(1, 100e8, T0);
    }

    function test_constructor_grantsBothRolesToTheAdmin() public {
        PriceFeed f = new PriceFeed(18, "x", 1, address(0xAD));
        vm.assertTrue(f.hasRole(f.DEFAULT_ADMIN_ROLE(), address(0xAD)), "admin role");
        vm.assertTrue(f.hasRole(UPDATER_ROLE, address(0xAD)), "updater role");
        vm.assertFalse(f.hasRole(UPDATER_ROLE, address(this)), "deployer gets nothing");
        vm.assertEq(uint256(f.decimals()), 18, "decimals");
    }

    function test_constructor_revertsOnAnOutOfRangeInitialAnswer() public {
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, int256(0)));
        new PriceFeed(8, "x", 0, address(this));
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, int256(-5)));
        new PriceFeed(8, "x", -5, address(this));
        int256 tooBig = int256(type(int192).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, tooBig));
        new PriceFeed(8, "x", tooBig, address(this));
    }

    function test_updateAnswer_appendsRoundsAndKeepsEveryPastRound() public {
        vm.warp(T0 + 60);
        _update(101e8);
        vm.warp(T0 + 3600);
        _update(99e8);
        vm.assertEq(uint256(feed.latestRound()), 3, "three rounds");
        _assertRound(1, 100e8, T0);
        _assertRound(2, 101e8, T0 + 60);
        _assertRound(3, 99e8, T0 + 3600);
        (uint80 id, int256 answer,, uint256 updatedAt, uint80 answeredIn) = feed.latestRoundData();
        vm.assertEq(uint256(id), 3, "latest round id");
        vm.assertEq(answer, 99e8, "latest answer");
        vm.assertEq(updatedAt, T0 + 3600, "latest updatedAt");
        vm.assertEq(uint256(answeredIn), 3, "latest answeredInRound");
    }

    function test_updateAnswer_twoRoundsInOneBlockShareTheTimestamp() public {
        _update(1);
        _update(2);
        _assertRound(2, 1, T0);
        _assertRound(3, 2, T0);
    }

    function test_updateAnswer_emitsAnswerUpdated() public {
        vm.warp(T0 + 5);
        vm.expectEmit(true, true, false, true, address(feed));
        emit PriceFeed.AnswerUpdated(123e8, 2, T0 + 5);
        _update(123e8);
    }

    function test_updateAnswer_revertsOnZeroAndNegativeAnswers() public {
        int256[4] memory bad = [int256(0), -1, -100e8, type(int256).min];
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, bad[i]));
            _update(bad[i]);
        }
        vm.assertEq(uint256(feed.latestRound()), 1, "no round added");
    }

    function test_updateAnswer_revertsAboveInt192Max() public {
        int256[2] memory bad = [int256(type(int192).max) + 1, type(int256).max];
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, bad[i]));
            _update(bad[i]);
        }
        vm.assertEq(uint256(feed.latestRound()), 1, "no round added");
    }

    function test_updateAnswer_acceptsTheRangeBounds() public {
        _update(1);
        _update(type(int192).max);
        _assertRound(2, 1, T0);
        _assertRound(3, type(int192).max, T0);
    }

    function test_updateAnswer_onlyUpdater() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, stranger, UPDATER_ROLE)
        );
        vm.prank(stranger);
        feed.updateAnswer(1e8);
        vm.assertEq(uint256(feed.latestRound()), 1, "no round added");
    }

    function test_updateAnswer_revokedUpdaterIsRejected() public {
        _update(2e8);
        feed.revokeRole(UPDATER_ROLE, updater);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, updater, UPDATER_ROLE)
        );
        _update(3e8);
        vm.assertEq(uint256(feed.latestRound()), 2, "only the first update landed");
    }

    function test_grantRole_onlyAdmin() public {
        bytes32 adminRole = feed.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, updater, adminRole)
        );
        vm.prank(updater);
        feed.grantRole(UPDATER_ROLE, stranger);
    }

    function test_getRoundData_revertsForRoundZero() public {
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.NoSuchRound.selector, uint80(0)));
        feed.getRoundData(0);
    }

    function test_getRoundData_revertsBeyondTheLatestRound() public {
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.NoSuchRound.selector, uint80(2)));
        feed.getRoundData(2);
        vm.expectRevert(abi.encodeWithSelector(PriceFeed.NoSuchRound.selector, type(uint80).max));
        feed.getRoundData(type(uint80).max);
        _update(5e8);
        _assertRound(2, 5e8, T0);
    }
}
