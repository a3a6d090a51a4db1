// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The forge cheatcodes these tests use, declared by hand: forge-std is
/// not published on npm in a usable version and nothing may be fetched from git.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function warp(uint256 timestamp) external;
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert() external;
    function expectRevert(bytes4 selector) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(bool t1, bool t2, bool t3, bool data, address emitter) external;
    function expectEmit(address emitter) external;
    function expectPartialRevert(bytes4 revertData) external;
    function assume(bool condition) external pure;
    function label(address account, string calldata name) external;
    function readFile(string calldata path) external view returns (string memory);
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    function parseBytes(string calldata hexString) external pure returns (bytes memory);
    function addr(uint256 privateKey) external pure returns (address);
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function snapshotState() external returns (uint256);
    function revertToState(uint256 id) external returns (bool);

    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(int256 left, int256 right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bool left, bool right, string calldata message) external pure;
    function assertEq(string calldata left, string calldata right, string calldata message) external pure;
    function assertEq(bytes calldata left, bytes calldata right, string calldata message) external pure;
    function assertEq(bytes32[] calldata left, bytes32[] calldata right, string calldata message) external pure;
    function assertEq(uint256[] calldata left, uint256[] calldata right, string calldata message) external pure;
    function assertNotEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertNotEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertLt(uint256 left, uint256 right, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
    function assertGe(uint256 left, uint256 right, string calldata message) external pure;
    function assertGt(uint256 left, uint256 right, string calldata message) external pure;
    function assertApproxEqAbs(uint256 left, uint256 right, uint256 maxDelta, string calldata message)
        external
        pure;
}

/// @title The cheatcode handle and bounded fuzz inputs, for tests and for the
/// handler contracts that invariant campaigns drive.
abstract contract CheatBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev Maps any `x` into [lo, hi] uniformly enough for fuzzing.
    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        require(lo <= hi, "bound: lo > hi");
        if (x >= lo && x <= hi) return x;
        uint256 span = hi - lo;
        if (span == type(uint256).max) return x;
        return lo + (x % (span + 1));
    }

    /// @dev Maps any `x` into the signed range [lo, hi].
    function boundInt(int256 x, int256 lo, int256 hi) internal pure returns (int256) {
        require(lo <= hi, "boundInt: lo > hi");
        if (x >= lo && x <= hi) return x;
        // Shift to unsigned (flip the sign bit keeps the order), bound, shift back.
        uint256 ux = uint256(x) ^ (1 << 255);
        uint256 ulo = uint256(lo) ^ (1 << 255);
        uint256 uhi = uint256(hi) ^ (1 << 255);
        return int256(bound(ux, ulo, uhi) ^ (1 << 255));
    }
}

/// @title Minimal base for tests: the cheatcode handle, bounded fuzz inputs,
/// and the selectors forge reads to target invariant campaigns.
abstract contract TestBase is CheatBase {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetContracts;
    FuzzSelector[] private _targetSelectors;

    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    function targetSelector(FuzzSelector memory s) internal {
        _targetSelectors.push(s);
    }

    /// @dev Read by forge's invariant runner.
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    /// @dev Read by forge's invariant runner.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }
}
