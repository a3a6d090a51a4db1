// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";

import {TestBase} from "./utils/Vm.sol";
import {AuditRegistry} from "../src/AuditRegistry.sol";

/// @title AuditRegistry under fuzzed keys, windows, IPS versions, checkpoint
/// sequences and callers.
contract AuditRegistryFuzzTest is TestBase {
    bytes32 internal constant KEY_ADMIN_ROLE = keccak256("KEY_ADMIN_ROLE");
    bytes32 internal constant IPS_ROLE = keccak256("IPS_ROLE");
    bytes32 internal constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    address internal keyAdmin = address(0xE1);
    address internal ipsAdmin = address(0xE2);
    address internal anchorer = address(0xE3);

    AuditRegistry internal registry;

    function setUp() public {
        vm.warp(1_800_000_000);
        registry = new AuditRegistry(address(this), 0);
        registry.grantRole(KEY_ADMIN_ROLE, keyAdmin);
        registry.grantRole(IPS_ROLE, ipsAdmin);
        registry.grantRole(ANCHOR_ROLE, anchorer);
    }

    function _unauthorized(address caller, bytes32 role) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, caller, role);
    }

    // ------------------------------------------------------------ keys

    function testFuzz_registerAgentKey_acceptsExactlyNonEmptyWindows(bytes32 key, uint64 from, uint64 until, uint64 at)
        public
    {
        bool valid = from < until;
        if (!valid) vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, from, until));
        vm.prank(keyAdmin);
        registry.registerAgentKey(key, from, until);

        AuditRegistry.KeyWindow memory w = registry.agentKey(key);
        vm.assertEq(uint256(w.validFrom), valid ? from : 0, "validFrom");
        vm.assertEq(uint256(w.validUntil), valid ? until : 0, "validUntil");
        vm.assertEq(registry.agentKeys().length, valid ? 1 : 0, "listed iff registered");
        vm.assertEq(registry.isKeyValidAt(key, at), valid && at >= from && at < until, "validity is [from, until)");
        if (valid) {
            // the same key can never be registered again, whatever the window
            vm.expectRevert(abi.encodeWithSelector(AuditRegistry.KeyAlreadyRegistered.selector, key));
            vm.prank(keyAdmin);
            registry.registerAgentKey(key, 0, type(uint64).max);
        }
    }

    function testFuzz_retireAgentKey_onlyShortens(uint64 from, uint64 until, uint64 newUntil, uint64 at) public {
        until = uint64(bound(until, 1, type(uint64).max));
        from = uint64(bound(from, 0, until - 1));
        bytes32 key = keccak256(abi.encode(from, until));
        vm.prank(keyAdmin);
        registry.registerAgentKey(key, from, until);

        bool ok = newUntil > from && newUntil < until;
        if (ok) {
            vm.expectEmit(true, false, false, true, address(registry));
            emit AuditRegistry.AgentKeyWindowChanged(key, from, newUntil);
        } else {
            vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, from, newUntil));
        }
        vm.prank(keyAdmin);
        registry.retireAgentKey(key, newUntil);

        uint64 end = ok ? newUntil : until;
        AuditRegistry.KeyWindow memory w = registry.agentKey(key);
        vm.assertEq(uint256(w.validFrom), from, "validFrom never moves");
        vm.assertEq(uint256(w.validUntil), end, "validUntil");
        vm.assertEq(registry.isKeyValidAt(key, at), at >= from && at < end, "validity");
        if (end < type(uint64).max) {
            vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, from, end + 1));
            vm.prank(keyAdmin);
            registry.retireAgentKey(key, end + 1);
        }
    }

    function testFuzz_retireAgentKey_revertsForUnknownKeys(bytes32 key, uint64 until) public {
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.UnknownKey.selector, key));
        vm.prank(keyAdmin);
        registry.retireAgentKey(key, until);
    }

    function testFuzz_agentKeys_keepRegistrationOrder(bytes32 seed, uint8 n) public {
        n = uint8(bound(n, 1, 12));
        bytes32[] memory expected = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            expected[i] = keccak256(abi.encode(seed, i));
            vm.prank(keyAdmin);
            registry.registerAgentKey(expected[i], uint64(i), uint64(i + 1));
        }
        vm.assertEq(registry.agentKeys(), expected, "registration order");
    }

    // ------------------------------------------------------------ IPS

    function testFuzz_registerIps_versionsStrictlyIncreasePerAccount(
        uint64 account,
        uint32[8] memory rawVersions,
        bytes32 seed
    ) public {
        uint32 current = 0;
        uint256 count = 0;
        for (uint256 i = 0; i < rawVersions.length; ++i) {
            // Mostly small versions so that both outcomes occur; every third step any value.
            uint32 v = i % 3 == 2 ? rawVersions[i] : uint32(bound(rawVersions[i], 0, 24));
            bytes32 h = keccak256(abi.encode(seed, i));
            if (v <= current) {
                vm.expectRevert(
                    abi.encodeWithSelector(AuditRegistry.IpsVersionNotIncreasing.selector, account, current, v)
                );
            }
            vm.prank(ipsAdmin);
            registry.registerIps(account, h, v, uint64(i));
            if (v > current) {
                current = v;
                count++;
            }
            AuditRegistry.IpsVersion memory now_ = registry.currentIps(account);
            vm.assertEq(uint256(now_.version), current, "current version");
        }
        AuditRegistry.IpsVersion[] memory history = registry.ipsHistory(account);
        vm.assertEq(history.length, count, "one entry per accepted version");
        for (uint256 i = 1; i < history.length; ++i) {
            vm.assertGt(history[i].version, history[i - 1].version, "strictly increasing");
        }
        uint64 other = account ^ 1;
        vm.assertEq(registry.ipsHistory(other).length, 0, "other accounts untouched");
    }

    function testFuzz_registerIps_storesWhatItIsGiven(uint64 account, bytes32 h, uint32 version, uint64 effectiveAt)
        public
    {
        version = uint32(bound(version, 1, type(uint32).max));
        vm.assume(h != bytes32(0));
        vm.expectEmit(true, false, false, true, address(registry));
        emit AuditRegistry.IpsRegistered(account, h, version, effectiveAt);
        vm.prank(ipsAdmin);
        registry.registerIps(account, h, version, effectiveAt);
        AuditRegistry.IpsVersion memory v = registry.currentIps(account);
        vm.assertEq(v.ipsHash, h, "hash");
        vm.assertEq(uint256(v.version), version, "version");
        vm.assertEq(uint256(v.effectiveAt), effectiveAt, "effectiveAt");
    }

    // ------------------------------------------------------------ checkpoints

    /// @dev Anchors a fuzzed sequence over a small size domain (so that sizes
    /// repeat) with roots drawn from {zero, "a", "b"} (so that they conflict),
    /// checking every outcome against a model.
    function testFuzz_anchor_sequenceFollowsTheModel(uint64[10] memory rawSizes, uint8[10] memory rootPicks) public {
        uint64[] memory sizes = new uint64[](10);
        bytes32[] memory roots = new bytes32[](10);
        uint256 n = 0;
        uint64 latest = 0;
        for (uint256 i = 0; i < rawSizes.length; ++i) {
            uint64 size = uint64(bound(rawSizes[i], 0, 16));
            uint8 pick = rootPicks[i] % 5;
            bytes32 root = pick == 0 ? bytes32(0) : keccak256(abi.encode(pick % 2 == 0 ? "a" : "b", size));
            bytes32 known = bytes32(0);
            for (uint256 j = 0; j < n; ++j) {
                if (sizes[j] == size) known = roots[j];
            }

            bool expectNew = false;
            bytes memory revertData;
            if (size == 0) {
                revertData = abi.encodeWithSelector(AuditRegistry.EmptyCheckpoint.selector);
            } else if (root == bytes32(0)) {
                revertData = abi.encodeWithSelector(AuditRegistry.ZeroRoot.selector);
            } else if (known != bytes32(0) && known != root) {
                revertData = abi.encodeWithSelector(AuditRegistry.CheckpointConflict.selector, size, known, root);
            } else if (known == bytes32(0) && size <= latest) {
                revertData = abi.encodeWithSelector(AuditRegistry.CheckpointNotIncreasing.selector, size, latest);
            } else if (known == bytes32(0)) {
                expectNew = true;
            }

            vm.recordLogs();
            if (revertData.length != 0) {
                vm.expectRevert(revertData);
                vm.prank(anchorer);
                registry.anchor(size, root);
            } else {
                vm.prank(anchorer);
                bool anchored = registry.anchor(size, root);
                vm.assertEq(anchored, expectNew, "true only when new");
                vm.assertEq(vm.getRecordedLogs().length, expectNew ? 1 : 0, "an event only when new");
            }
            if (expectNew) {
                sizes[n] = size;
                roots[n] = root;
                n++;
                latest = size;
            }
            vm.assertEq(uint256(registry.latestSize()), latest, "latest size");
            vm.assertEq(registry.checkpointCount(), n, "count");
        }
        uint64[] memory listed = registry.anchoredSizes(0, 100);
        vm.assertEq(listed.length, n, "listed count");
        for (uint256 j = 0; j < n; ++j) {
            vm.assertEq(uint256(listed[j]), sizes[j], "listed in anchoring order");
            vm.assertEq(registry.checkpointAt(sizes[j]), roots[j], "root reads back");
            if (j > 0) vm.assertGt(listed[j], listed[j - 1], "sizes strictly increase");
        }
    }

    function testFuzz_anchoredSizes_pagesWithinBounds(uint8 n, uint256 from, uint256 count, uint64 step) public {
        n = uint8(bound(n, 0, 12));
        step = uint64(bound(step, 1, 1e12));
        for (uint256 i = 1; i <= n; ++i) {
            vm.prank(anchorer);
            registry.anchor(uint64(i) * step, keccak256(abi.encode(i)));
        }
        from = bound(from, 0, 20);
        uint64[] memory page = registry.anchoredSizes(from, count);
        uint256 expected = from >= n ? 0 : (count < n - from ? count : n - from);
        vm.assertEq(page.length, expected, "page length");
        for (uint256 i = 0; i < page.length; ++i) {
            vm.assertEq(uint256(page[i]), (from + i + 1) * step, "page entry");
        }
    }

    // ------------------------------------------------------------ roles

    function testFuzz_restrictedFunctions_rejectCallersWithoutTheRole(address caller, uint8 which) public {
        which = which % 4;
        bytes32 role = which < 2 ? KEY_ADMIN_ROLE : which == 2 ? IPS_ROLE : ANCHOR_ROLE;
        vm.assume(!registry.hasRole(role, caller) && caller != address(vm));
        bytes32 key = keccak256("key");
        vm.prank(keyAdmin);
        registry.registerAgentKey(key, 10, 20);

        vm.expectRevert(_unauthorized(caller, role));
        vm.prank(caller);
        if (which == 0) registry.registerAgentKey(keccak256("other"), 1, 2);
        else if (which == 1) registry.retireAgentKey(key, 15);
        else if (which == 2) registry.registerIps(1, keccak256("ips"), 1, 0);
        else registry.anchor(1, keccak256("root"));

        vm.assertEq(registry.agentKeys().length, 1, "no key added");
        vm.assertEq(uint256(registry.agentKey(key).validUntil), 20, "window unchanged");
        vm.assertEq(registry.ipsHistory(1).length, 0, "no IPS added");
        vm.assertEq(registry.checkpointCount(), 0, "nothing anchored");
    }

    function testFuzz_grantRole_onlyByTheDefaultAdmin(address caller, address grantee) public {
        vm.assume(caller != address(this) && caller != address(vm));
        bytes32 adminRole = registry.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(_unauthorized(caller, adminRole));
        vm.prank(caller);
        registry.grantRole(ANCHOR_ROLE, grantee);
        vm.expectRevert(_unauthorized(caller, adminRole));
        vm.prank(caller);
        registry.revokeRole(ANCHOR_ROLE, anchorer);
        vm.assertTrue(registry.hasRole(ANCHOR_ROLE, anchorer), "role kept");
    }

    function testFuzz_defaultAdminTransfer_waitsForTheDelay(address newAdmin, uint48 delay, uint48 wait) public {
        vm.assume(newAdmin != address(0) && newAdmin != address(this) && newAdmin != address(vm));
        delay = uint48(bound(delay, 1, 30 days));
        wait = uint48(bound(wait, 0, 60 days));
        AuditRegistry r = new AuditRegistry(address(this), delay);
        r.beginDefaultAdminTransfer(newAdmin);
        uint48 schedule = uint48(block.timestamp) + delay;
        vm.warp(block.timestamp + wait);
        bool due = wait > delay;
        if (!due) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminDelay.selector, schedule
                )
            );
        }
        vm.prank(newAdmin);
        r.acceptDefaultAdminTransfer();
        vm.assertEq(r.defaultAdmin(), due ? newAdmin : address(this), "admin after the wait");
        vm.assertEq(r.hasRole(r.DEFAULT_ADMIN_ROLE(), address(this)), !due, "old admin keeps the role until due");
    }
}
