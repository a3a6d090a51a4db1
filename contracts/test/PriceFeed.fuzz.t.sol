// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {TestBase} from "./utils/Vm.sol";
import {PriceFeed} from "../src/PriceFeed.sol";

/// @title PriceFeed under fuzzed answers, timestamps, round ids and callers.
contract PriceFeedFuzzTest is TestBase {
    bytes32 internal constant UPDATER_ROLE = keccak256("UPDATER_ROLE");
    uint256 internal constant T0 = 1_800_000_000;
    int256 internal constant MAX_ANSWER = int256(type(int192).max);

    address internal updater = address(0x11);
    PriceFeed internal feed;

    function setUp() public {
        vm.warp(T0);
        feed = new PriceFeed(8, "GEQ / USD", 100e8, address(this));
        feed.grantRole(UPDATER_ROLE, updater);
    }

    function testFuzz_updateAnswer_acceptsExactlyPositiveInt192(int256 answer) public {
        bool valid = answer > 0 && answer <= MAX_ANSWER;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, answer));
        vm.prank(updater);
        feed.updateAnswer(answer);
        vm.assertEq(uint256(feed.latestRound()), valid ? 2 : 1, "a round only for a valid answer");
        (, int256 latest,,,) = feed.latestRoundData();
        vm.assertEq(latest, valid ? answer : int256(100e8), "latest answer");
    }

    function testFuzz_constructor_acceptsExactlyPositiveInt192(int256 answer, uint8 decimals) public {
        bool valid = answer > 0 && answer <= MAX_ANSWER;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(PriceFeed.AnswerOutOfRange.selector, answer));
        PriceFeed f = new PriceFeed(decimals, "x", answer, address(this));
        if (valid) {
            vm.assertEq(uint256(f.decimals()), decimals, "decimals");
            (, int256 a,,,) = f.getRoundData(1);
            vm.assertEq(a, answer, "first round");
        }
    }

    /// @dev Timestamps up to 2^32 - 1 (year 2106): rounds store them as uint32.
    function testFuzz_updateAnswer_keepsEveryRoundWithItsTimestamp(int256[6] memory answers, uint32[6] memory gaps)
        public
    {
        uint256[6] memory times;
        uint256 t = T0;
        for (uint256 i = 0; i < answers.length; ++i) {
            answers[i] = boundInt(answers[i], 1, MAX_ANSWER);
            t += bound(gaps[i], 0, 365 days);
            times[i] = t;
            vm.warp(t);
            vm.expectEmit(true, true, false, true, address(feed));
            emit PriceFeed.AnswerUpdated(answers[i], i + 2, t);
            vm.prank(updater);
            feed.updateAnswer(answers[i]);
        }
        vm.assertEq(uint256(feed.latestRound()), 7, "six new rounds");
        for (uint256 i = 0; i < answers.length; ++i) {
            uint80 id = uint80(i + 2);
            (uint80 roundId, int256 a, uint256 startedAt, uint256 updatedAt, uint80 answeredIn) = feed.getRoundData(id);
            vm.assertEq(uint256(roundId), id, "round id");
            vm.assertEq(a, answers[i], "answer kept");
            vm.assertEq(startedAt, times[i], "startedAt");
            vm.assertEq(updatedAt, times[i], "updatedAt");
            vm.assertEq(uint256(answeredIn), id, "answeredInRound");
        }
        (uint80 lastId, int256 last,, uint256 lastAt,) = feed.latestRoundData();
        vm.assertEq(uint256(lastId), 7, "latest id");
        vm.assertEq(last, answers[5], "latest answer");
        vm.assertEq(lastAt, times[5], "latest time");
        (, int256 first,, uint256 firstAt,) = feed.getRoundData(1);
        vm.assertEq(first, 100e8, "initial round kept");
        vm.assertEq(firstAt, T0, "initial round time kept");
    }

    function testFuzz_updateAnswer_recordsTheBlockTime(uint256 ts) public {
        ts = bound(ts, T0, type(uint32).max);
        vm.warp(ts);
        vm.prank(updater);
        feed.updateAnswer(1);
        (,, uint256 startedAt, uint256 updatedAt,) = feed.latestRoundData();
        vm.assertEq(startedAt, ts, "startedAt");
        vm.assertEq(updatedAt, ts, "updatedAt");
    }

    function testFuzz_getRoundData_revertsExactlyForUnwrittenRounds(uint80 id, uint8 updates) public {
        updates = uint8(bound(updates, 0, 6));
        for (uint256 i = 0; i < updates; ++i) {
            vm.prank(updater);
            feed.updateAnswer(int256(i + 1));
        }
        uint256 latest = uint256(updates) + 1;
        vm.assertEq(uint256(feed.latestRound()), latest, "latest round");
        bool exists = id != 0 && id <= latest;
        if (!exists) {
            vm.expectRevert(abi.encodeWithSelector(PriceFeed.NoSuchRound.selector, id));
            feed.getRoundData(id);
            return;
        }
        (uint80 roundId, int256 a,,,) = feed.getRoundData(id);
        vm.assertEq(uint256(roundId), id, "round id");
        vm.assertEq(a, id == 1 ? int256(100e8) : int256(uint256(id) - 1), "answer of that round");
    }

    function testFuzz_updateAnswer_rejectsCallersWithoutTheRole(address caller, int256 answer) public {
        vm.assume(!feed.hasRole(UPDATER_ROLE, caller) && caller != address(vm));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, UPDATER_ROLE)
        );
        vm.prank(caller);
        feed.updateAnswer(answer);
        vm.assertEq(uint256(feed.latestRound()), 1, "no round added");
    }

    function testFuzz_grantRole_onlyByTheAdmin(address caller, address grantee) public {
        vm.assume(caller != address(this) && caller != address(vm));
        bytes32 adminRole = feed.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, adminRole)
        );
        vm.prank(caller);
        feed.grantRole(UPDATER_ROLE, grantee);
        feed.grantRole(UPDATER_ROLE, grantee);
        vm.assertTrue(feed.hasRole(UPDATER_ROLE, grantee), "the admin grants");
    }
}
