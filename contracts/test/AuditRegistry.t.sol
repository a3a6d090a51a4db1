// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/IAccessControlDefaultAdminRules.sol";

import {TestBase, Vm} from "./utils/Vm.sol";
import {AuditRegistry} from "../src/AuditRegistry.sol";

/// @title AuditRegistry: agent keys, IPS versions, checkpoints and roles.
contract AuditRegistryTest is TestBase {
    bytes32 internal constant KEY_ADMIN_ROLE = keccak256("KEY_ADMIN_ROLE");
    bytes32 internal constant IPS_ROLE = keccak256("IPS_ROLE");
    bytes32 internal constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    address internal keyAdmin = address(0xE1);
    address internal ipsAdmin = address(0xE2);
    address internal anchorer = address(0xE3);
    address internal stranger = address(0xBAD);

    AuditRegistry internal registry;

    bytes32 internal constant KEY_A = keccak256("key A");
    bytes32 internal constant KEY_B = keccak256("key B");
    bytes32 internal constant KEY_C = keccak256("key C");

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

    function _register(bytes32 key, uint64 from, uint64 until) internal {
        vm.prank(keyAdmin);
        registry.registerAgentKey(key, from, until);
    }

    function _anchor(uint64 size, bytes32 root) internal returns (bool) {
        vm.prank(anchorer);
        return registry.anchor(size, root);
    }

    // ------------------------------------------------------------ roles and admin

    function test_constructor_setsTheDefaultAdminOnly() public {
        AuditRegistry r = new AuditRegistry(address(0xAD), 3 days);
        vm.assertEq(r.defaultAdmin(), address(0xAD), "default admin");
        vm.assertEq(uint256(r.defaultAdminDelay()), 3 days, "admin delay");
        vm.assertTrue(r.hasRole(r.DEFAULT_ADMIN_ROLE(), address(0xAD)), "admin holds the default admin role");
        vm.assertFalse(r.hasRole(KEY_ADMIN_ROLE, address(0xAD)), "no key admin role by default");
        vm.assertFalse(r.hasRole(IPS_ROLE, address(0xAD)), "no IPS role by default");
        vm.assertFalse(r.hasRole(ANCHOR_ROLE, address(0xAD)), "no anchor role by default");
        vm.assertEq(r.latestSize(), 0, "nothing anchored");
        vm.assertEq(r.checkpointCount(), 0, "no checkpoints");
        vm.assertEq(r.agentKeys().length, 0, "no keys");
    }

    function test_roleConstants_areTheHashesOfTheirNames() public view {
        vm.assertEq(registry.KEY_ADMIN_ROLE(), KEY_ADMIN_ROLE, "key admin role");
        vm.assertEq(registry.IPS_ROLE(), IPS_ROLE, "IPS role");
        vm.assertEq(registry.ANCHOR_ROLE(), ANCHOR_ROLE, "anchor role");
    }

    function test_registerAgentKey_onlyKeyAdmin() public {
        address[4] memory callers = [stranger, address(this), ipsAdmin, anchorer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], KEY_ADMIN_ROLE));
            vm.prank(callers[i]);
            registry.registerAgentKey(KEY_A, 1, 2);
        }
        vm.assertEq(registry.agentKeys().length, 0, "nothing registered");
    }

    function test_retireAgentKey_onlyKeyAdmin() public {
        _register(KEY_A, 10, 20);
        address[4] memory callers = [stranger, address(this), ipsAdmin, anchorer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], KEY_ADMIN_ROLE));
            vm.prank(callers[i]);
            registry.retireAgentKey(KEY_A, 15);
        }
        vm.assertEq(uint256(registry.agentKey(KEY_A).validUntil), 20, "window unchanged");
    }

    function test_registerIps_onlyIpsRole() public {
        address[4] memory callers = [stranger, address(this), keyAdmin, anchorer];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], IPS_ROLE));
            vm.prank(callers[i]);
            registry.registerIps(1, keccak256("ips"), 1, 0);
        }
        vm.assertEq(registry.ipsHistory(1).length, 0, "nothing registered");
    }

    function test_anchor_onlyAnchorRole() public {
        address[4] memory callers = [stranger, address(this), keyAdmin, ipsAdmin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(_unauthorized(callers[i], ANCHOR_ROLE));
            vm.prank(callers[i]);
            registry.anchor(1, keccak256("root"));
        }
        vm.assertEq(registry.checkpointCount(), 0, "nothing anchored");
    }

    function test_grantRole_onlyDefaultAdmin() public {
        bytes32 adminRole = registry.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(_unauthorized(keyAdmin, adminRole));
        vm.prank(keyAdmin);
        registry.grantRole(ANCHOR_ROLE, stranger);
        vm.assertFalse(registry.hasRole(ANCHOR_ROLE, stranger), "not granted");
    }

    function test_grantRole_defaultAdminRoleCannotBeGrantedDirectly() public {
        bytes32 adminRole = registry.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(IAccessControlDefaultAdminRules.AccessControlEnforcedDefaultAdminRules.selector);
        registry.grantRole(adminRole, stranger);
    }

    function test_revokeRole_removesAccess() public {
        registry.revokeRole(ANCHOR_ROLE, anchorer);
        vm.expectRevert(_unauthorized(anchorer, ANCHOR_ROLE));
        vm.prank(anchorer);
        registry.anchor(1, keccak256("root"));
    }

    // ------------------------------------------------------------ keys

    function test_registerAgentKey_storesTheWindowAndEmits() public {
        vm.expectEmit(true, false, false, true, address(registry));
        emit AuditRegistry.AgentKeyRegistered(KEY_A, 100, 200);
        _register(KEY_A, 100, 200);
        AuditRegistry.KeyWindow memory w = registry.agentKey(KEY_A);
        vm.assertEq(uint256(w.validFrom), 100, "validFrom");
        vm.assertEq(uint256(w.validUntil), 200, "validUntil");
    }

    function test_registerAgentKey_revertsOnAnEmptyWindow() public {
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(100), uint64(100)));
        _register(KEY_A, 100, 100);
    }

    function test_registerAgentKey_revertsOnAnInvertedWindow() public {
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(200), uint64(100)));
        _register(KEY_A, 200, 100);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(1), uint64(0)));
        _register(KEY_A, 1, 0);
        vm.assertEq(registry.agentKeys().length, 0, "nothing registered");
    }

    function test_registerAgentKey_acceptsTheSmallestWindowFromZero() public {
        _register(KEY_A, 0, 1);
        vm.assertTrue(registry.isKeyValidAt(KEY_A, 0), "valid at 0");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 1), "invalid at 1");
    }

    function test_registerAgentKey_acceptsTheWidestWindow() public {
        _register(KEY_A, 0, type(uint64).max);
        vm.assertTrue(registry.isKeyValidAt(KEY_A, type(uint64).max - 1), "valid just before the end");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, type(uint64).max), "end is exclusive");
    }

    function test_registerAgentKey_revertsWhenAlreadyRegistered() public {
        _register(KEY_A, 100, 200);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.KeyAlreadyRegistered.selector, KEY_A));
        _register(KEY_A, 300, 400);
        AuditRegistry.KeyWindow memory w = registry.agentKey(KEY_A);
        vm.assertEq(uint256(w.validFrom), 100, "first window kept");
        vm.assertEq(registry.agentKeys().length, 1, "listed once");
    }

    function test_registerAgentKey_revertsForARetiredKey() public {
        _register(KEY_A, 100, 200);
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 101);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.KeyAlreadyRegistered.selector, KEY_A));
        _register(KEY_A, 100, 200);
    }

    function test_retireAgentKey_shortensTheWindowAndEmits() public {
        _register(KEY_A, 100, 200);
        vm.expectEmit(true, false, false, true, address(registry));
        emit AuditRegistry.AgentKeyWindowChanged(KEY_A, 100, 150);
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 150);
        AuditRegistry.KeyWindow memory w = registry.agentKey(KEY_A);
        vm.assertEq(uint256(w.validFrom), 100, "validFrom unchanged");
        vm.assertEq(uint256(w.validUntil), 150, "validUntil shortened");
        vm.assertTrue(registry.isKeyValidAt(KEY_A, 149), "valid before the new end");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 150), "invalid from the new end");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 199), "invalid in the cut-off part");
    }

    function test_retireAgentKey_revertsOnExtension() public {
        _register(KEY_A, 100, 200);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(100), uint64(201)));
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 201);
        vm.assertEq(uint256(registry.agentKey(KEY_A).validUntil), 200, "window unchanged");
    }

    function test_retireAgentKey_cannotRestoreAShortenedWindow() public {
        _register(KEY_A, 100, 200);
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 150);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(100), uint64(200)));
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 200);
        vm.assertEq(uint256(registry.agentKey(KEY_A).validUntil), 150, "stays shortened");
    }

    function test_retireAgentKey_revertsAtOrBeforeValidFrom() public {
        _register(KEY_A, 100, 200);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(100), uint64(100)));
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 100);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(100), uint64(0)));
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 0);
    }

    function test_retireAgentKey_acceptsTheSmallestRemainingWindow() public {
        _register(KEY_A, 100, 200);
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 101);
        vm.assertTrue(registry.isKeyValidAt(KEY_A, 100), "valid for one second");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 101), "then invalid");
    }

    function test_retireAgentKey_revertsWhenNothingWouldChange() public {
        _register(KEY_A, 100, 200);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.BadKeyWindow.selector, uint64(100), uint64(200)));
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_A, 200);
    }

    function test_registerIps_revertsOnAZeroHash() public {
        vm.expectRevert(AuditRegistry.ZeroIpsHash.selector);
        _ips(1, bytes32(0), 1, 0);
        vm.assertEq(registry.ipsHistory(1).length, 0, "nothing recorded");
    }

    function test_registerIps_revertsWhenEffectiveBeforeThePreviousVersion() public {
        _ips(1, keccak256("v1"), 1, 1_000);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.IpsEffectiveBeforePrevious.selector, uint64(1), uint64(1_000), uint64(999)));
        _ips(1, keccak256("v2"), 2, 999);
        _ips(1, keccak256("v2"), 2, 1_000);
        vm.assertEq(uint256(registry.currentIps(1).version), 2, "same effective time is fine");
    }

    function test_retireAgentKey_revertsOnAnUnknownKey() public {
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.UnknownKey.selector, KEY_B));
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_B, 10);
    }

    function test_isKeyValidAt_boundaries() public {
        _register(KEY_A, 100, 200);
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 0), "long before");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 99), "just before validFrom");
        vm.assertTrue(registry.isKeyValidAt(KEY_A, 100), "validFrom is inclusive");
        vm.assertTrue(registry.isKeyValidAt(KEY_A, 150), "inside");
        vm.assertTrue(registry.isKeyValidAt(KEY_A, 199), "last second");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, 200), "validUntil is exclusive");
        vm.assertFalse(registry.isKeyValidAt(KEY_A, type(uint64).max), "long after");
    }

    function test_isKeyValidAt_falseForAnUnknownKeyAtAnyTime() public view {
        vm.assertFalse(registry.isKeyValidAt(KEY_B, 0), "unknown at 0");
        vm.assertFalse(registry.isKeyValidAt(KEY_B, 1_800_000_000), "unknown now");
        AuditRegistry.KeyWindow memory w = registry.agentKey(KEY_B);
        vm.assertEq(uint256(w.validFrom) + uint256(w.validUntil), 0, "unknown key window is (0, 0)");
    }

    function test_agentKeys_listsEveryKeyInRegistrationOrder() public {
        _register(KEY_C, 1, 2);
        _register(KEY_A, 3, 4);
        _register(KEY_B, 5, 8);
        vm.prank(keyAdmin);
        registry.retireAgentKey(KEY_B, 7);
        bytes32[] memory expected = new bytes32[](3);
        expected[0] = KEY_C;
        expected[1] = KEY_A;
        expected[2] = KEY_B;
        vm.assertEq(registry.agentKeys(), expected, "registration order, retired keys kept");
    }

    // ------------------------------------------------------------ IPS

    function _ips(uint64 account, bytes32 h, uint32 version, uint64 effectiveAt) internal {
        vm.prank(ipsAdmin);
        registry.registerIps(account, h, version, effectiveAt);
    }

    function test_registerIps_storesAndEmits() public {
        vm.expectEmit(true, false, false, true, address(registry));
        emit AuditRegistry.IpsRegistered(7, keccak256("ips v1"), 1, 1_800_000_000);
        _ips(7, keccak256("ips v1"), 1, 1_800_000_000);
        AuditRegistry.IpsVersion memory v = registry.currentIps(7);
        vm.assertEq(v.ipsHash, keccak256("ips v1"), "hash");
        vm.assertEq(uint256(v.version), 1, "version");
        vm.assertEq(uint256(v.effectiveAt), 1_800_000_000, "effectiveAt");
    }

    function test_registerIps_revertsOnVersionZero() public {
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.IpsVersionNotIncreasing.selector, uint64(7), 0, 0));
        _ips(7, keccak256("ips"), 0, 0);
    }

    function test_registerIps_versionsStrictlyIncreasePerAccount() public {
        _ips(7, keccak256("v1"), 1, 10);
        _ips(7, keccak256("v3"), 3, 30); // versions may skip
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.IpsVersionNotIncreasing.selector, uint64(7), 3, 3));
        _ips(7, keccak256("v3 again"), 3, 31);
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.IpsVersionNotIncreasing.selector, uint64(7), 3, 2));
        _ips(7, keccak256("v2"), 2, 20);
        _ips(7, keccak256("v4"), 4, 40);
        vm.assertEq(uint256(registry.currentIps(7).version), 4, "current is the newest");
        vm.assertEq(registry.ipsHistory(7).length, 3, "three versions kept");
    }

    function test_registerIps_accountsAreIndependent() public {
        _ips(7, keccak256("a v5"), 5, 1);
        _ips(8, keccak256("b v1"), 1, 2);
        vm.assertEq(uint256(registry.currentIps(7).version), 5, "account 7");
        vm.assertEq(uint256(registry.currentIps(8).version), 1, "account 8 starts from its own history");
        vm.assertEq(registry.currentIps(8).ipsHash, keccak256("b v1"), "account 8 hash");
    }

    function test_registerIps_acceptsTheLargestVersionThenNothingMore() public {
        _ips(7, keccak256("max"), type(uint32).max, 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuditRegistry.IpsVersionNotIncreasing.selector, uint64(7), type(uint32).max, type(uint32).max
            )
        );
        _ips(7, keccak256("max again"), type(uint32).max, 2);
    }

    function test_currentIps_isZeroWithoutHistory() public view {
        AuditRegistry.IpsVersion memory v = registry.currentIps(42);
        vm.assertEq(v.ipsHash, bytes32(0), "hash");
        vm.assertEq(uint256(v.version), 0, "version");
        vm.assertEq(uint256(v.effectiveAt), 0, "effectiveAt");
        vm.assertEq(registry.ipsHistory(42).length, 0, "empty history");
    }

    function test_ipsHistory_isOldestFirst() public {
        _ips(7, keccak256("v1"), 1, 100);
        _ips(7, keccak256("v2"), 2, 200);
        _ips(7, keccak256("v7"), 7, 250);
        AuditRegistry.IpsVersion[] memory h = registry.ipsHistory(7);
        vm.assertEq(h.length, 3, "length");
        vm.assertEq(h[0].ipsHash, keccak256("v1"), "first hash");
        vm.assertEq(uint256(h[0].version), 1, "first version");
        vm.assertEq(uint256(h[0].effectiveAt), 100, "first effectiveAt");
        vm.assertEq(h[1].ipsHash, keccak256("v2"), "second hash");
        vm.assertEq(uint256(h[1].version), 2, "second version");
        vm.assertEq(h[2].ipsHash, keccak256("v7"), "third hash");
        vm.assertEq(uint256(h[2].version), 7, "third version");
        vm.assertEq(uint256(h[2].effectiveAt), 250, "third effectiveAt");
    }

    // ------------------------------------------------------------ checkpoints

    function test_anchor_revertsOnAnEmptyCheckpoint() public {
        vm.expectRevert(AuditRegistry.EmptyCheckpoint.selector);
        _anchor(0, keccak256("root"));
    }

    function test_anchor_revertsOnAZeroRoot() public {
        vm.expectRevert(AuditRegistry.ZeroRoot.selector);
        _anchor(5, bytes32(0));
    }

    function test_anchor_storesTheRootAndEmits() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit AuditRegistry.CheckpointAnchored(5, keccak256("r5"), anchorer);
        bool anchored = _anchor(5, keccak256("r5"));
        vm.assertTrue(anchored, "returns true when new");
        vm.assertEq(registry.checkpointAt(5), keccak256("r5"), "root stored");
        vm.assertEq(uint256(registry.latestSize()), 5, "latest size");
        vm.assertEq(registry.checkpointCount(), 1, "count");
    }

    function test_anchor_theSameCheckpointAgainReturnsFalseAndEmitsNothing() public {
        _anchor(5, keccak256("r5"));
        _anchor(9, keccak256("r9"));
        vm.recordLogs();
        vm.assertFalse(_anchor(9, keccak256("r9")), "latest again is a no-op");
        vm.assertFalse(_anchor(5, keccak256("r5")), "an older one again is a no-op");
        vm.assertEq(vm.getRecordedLogs().length, 0, "no event");
        vm.assertEq(registry.checkpointCount(), 2, "count unchanged");
        vm.assertEq(uint256(registry.latestSize()), 9, "latest unchanged");
    }

    function test_anchor_revertsOnAConflictingRoot() public {
        _anchor(5, keccak256("r5"));
        _anchor(9, keccak256("r9"));
        vm.expectRevert(
            abi.encodeWithSelector(AuditRegistry.CheckpointConflict.selector, uint64(9), keccak256("r9"), keccak256("x"))
        );
        _anchor(9, keccak256("x"));
        vm.expectRevert(
            abi.encodeWithSelector(AuditRegistry.CheckpointConflict.selector, uint64(5), keccak256("r5"), keccak256("x"))
        );
        _anchor(5, keccak256("x"));
        vm.assertEq(registry.checkpointAt(5), keccak256("r5"), "older root kept");
        vm.assertEq(registry.checkpointAt(9), keccak256("r9"), "latest root kept");
    }

    function test_anchor_revertsWhenTheSizeDoesNotGrow() public {
        _anchor(5, keccak256("r5"));
        _anchor(9, keccak256("r9"));
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.CheckpointNotIncreasing.selector, uint64(7), uint64(9)));
        _anchor(7, keccak256("r7"));
        vm.expectRevert(abi.encodeWithSelector(AuditRegistry.CheckpointNotIncreasing.selector, uint64(1), uint64(9)));
        _anchor(1, keccak256("r1"));
        vm.assertEq(registry.checkpointAt(7), bytes32(0), "gap size not anchored");
        vm.assertTrue(_anchor(10, keccak256("r10")), "the next size is accepted");
    }

    function test_anchor_acceptsTheLargestSize() public {
        vm.assertTrue(_anchor(type(uint64).max, keccak256("max")), "anchored");
        vm.expectRevert(
            abi.encodeWithSelector(
                AuditRegistry.CheckpointNotIncreasing.selector, type(uint64).max - 1, type(uint64).max
            )
        );
        _anchor(type(uint64).max - 1, keccak256("x"));
    }

    function test_checkpointAt_isZeroForUnanchoredSizes() public {
        vm.assertEq(registry.checkpointAt(1), bytes32(0), "before any anchor");
        _anchor(3, keccak256("r3"));
        vm.assertEq(registry.checkpointAt(2), bytes32(0), "below");
        vm.assertEq(registry.checkpointAt(4), bytes32(0), "above");
    }

    function test_latestSizeAndCount_trackEveryNewAnchor() public {
        vm.assertEq(uint256(registry.latestSize()), 0, "zero before the first anchor");
        uint64[4] memory sizes = [uint64(1), 2, 10, 1000];
        for (uint256 i = 0; i < sizes.length; ++i) {
            _anchor(sizes[i], keccak256(abi.encode(sizes[i])));
            vm.assertEq(uint256(registry.latestSize()), sizes[i], "latest");
            vm.assertEq(registry.checkpointCount(), i + 1, "count");
        }
    }

    function test_anchoredSizes_pagesOldestFirst() public {
        uint64[5] memory sizes = [uint64(3), 8, 13, 21, 34];
        for (uint256 i = 0; i < sizes.length; ++i) {
            _anchor(sizes[i], keccak256(abi.encode(sizes[i])));
        }
        uint64[] memory page = registry.anchoredSizes(0, 2);
        vm.assertEq(page.length, 2, "first page length");
        vm.assertEq(uint256(page[0]), 3, "first page [0]");
        vm.assertEq(uint256(page[1]), 8, "first page [1]");
        page = registry.anchoredSizes(2, 2);
        vm.assertEq(page.length, 2, "second page length");
        vm.assertEq(uint256(page[0]), 13, "second page [0]");
        vm.assertEq(uint256(page[1]), 21, "second page [1]");
        page = registry.anchoredSizes(4, 2);
        vm.assertEq(page.length, 1, "last page is cut to what exists");
        vm.assertEq(uint256(page[0]), 34, "last page [0]");
        vm.assertEq(registry.anchoredSizes(5, 1).length, 0, "from == count is empty");
        vm.assertEq(registry.anchoredSizes(100, 10).length, 0, "from beyond count is empty");
        vm.assertEq(registry.anchoredSizes(1, 0).length, 0, "count zero is empty");
        page = registry.anchoredSizes(0, type(uint256).max);
        vm.assertEq(page.length, 5, "everything with a huge count");
        for (uint256 i = 0; i < 5; ++i) {
            vm.assertEq(uint256(page[i]), sizes[i], "every size in order");
        }
    }

    function test_anchoredSizes_isEmptyBeforeTheFirstAnchor() public view {
        vm.assertEq(registry.anchoredSizes(0, 10).length, 0, "empty");
    }

    function test_anchor_recordsTheCallerInTheEvent() public {
        address second = address(0xE4);
        registry.grantRole(ANCHOR_ROLE, second);
        vm.recordLogs();
        vm.prank(second);
        registry.anchor(4, keccak256("r4"));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        vm.assertEq(logs.length, 1, "one event");
        vm.assertEq(logs[0].topics[0], AuditRegistry.CheckpointAnchored.selector, "topic");
        vm.assertEq(logs[0].topics[1], bytes32(uint256(4)), "size topic");
        vm.assertEq(logs[0].topics[2], bytes32(uint256(uint160(second))), "anchoredBy topic");
        vm.assertEq(abi.decode(logs[0].data, (bytes32)), keccak256("r4"), "root in data");
    }
}
