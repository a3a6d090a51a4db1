// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

/// @title The on-chain anchor of Ballast's audit trail.
/// @notice Holds what a regulator needs to check the platform's evidence
/// without trusting the platform: the agents' ed25519 public keys with their
/// validity windows, the hash of every client's Investment Policy Statement
/// (IPS) version, and checkpoints (tree size, Merkle root) of the audit log.
/// An anchored checkpoint never changes: re-anchoring the same (size, root) is
/// a no-op, a different root for an anchored size reverts, and new sizes must
/// grow, so the log can only have been appended to.
contract AuditRegistry is AccessControlDefaultAdminRules {
    bytes32 public constant KEY_ADMIN_ROLE = keccak256("KEY_ADMIN_ROLE");
    bytes32 public constant IPS_ROLE = keccak256("IPS_ROLE");
    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");

    struct KeyWindow {
        uint64 validFrom;
        uint64 validUntil;
    }

    struct IpsVersion {
        bytes32 ipsHash;
        uint32 version;
        uint64 effectiveAt;
    }

    error KeyAlreadyRegistered(bytes32 publicKey);
    error UnknownKey(bytes32 publicKey);
    error BadKeyWindow(uint64 validFrom, uint64 validUntil);
    error IpsVersionNotIncreasing(uint64 account, uint32 current, uint32 given);
    error ZeroIpsHash();
    error IpsEffectiveBeforePrevious(uint64 account, uint64 previous, uint64 given);
    error EmptyCheckpoint();
    error ZeroRoot();
    error CheckpointConflict(uint64 size, bytes32 anchoredRoot, bytes32 givenRoot);
    error CheckpointNotIncreasing(uint64 size, uint64 latestSize);

    event AgentKeyRegistered(bytes32 indexed publicKey, uint64 validFrom, uint64 validUntil);
    event AgentKeyWindowChanged(bytes32 indexed publicKey, uint64 validFrom, uint64 validUntil);
    event IpsRegistered(uint64 indexed account, bytes32 ipsHash, uint32 version, uint64 effectiveAt);
    event CheckpointAnchored(uint64 indexed size, bytes32 root, address indexed anchoredBy);

    mapping(bytes32 publicKey => KeyWindow) private _keys;
    bytes32[] private _keyList;
    mapping(uint64 account => IpsVersion[]) private _ips;
    // Anchoring is on the settlement path, so it costs one new slot for the
    // root and a quarter of one for the size (uint64s pack four per slot); the
    // anchoring time is the block's, in the event.
    mapping(uint64 size => bytes32 root) private _roots;
    uint64[] private _anchoredSizes;

    constructor(address admin, uint48 adminDelay) AccessControlDefaultAdminRules(adminDelay, admin) {}

    // ------------------------------------------------------------------ keys

    /// @notice Registers an agent's ed25519 public key, valid in [validFrom, validUntil).
    function registerAgentKey(bytes32 publicKey, uint64 validFrom, uint64 validUntil)
        external
        onlyRole(KEY_ADMIN_ROLE)
    {
        if (validFrom >= validUntil) revert BadKeyWindow(validFrom, validUntil);
        if (_keys[publicKey].validUntil != 0) revert KeyAlreadyRegistered(publicKey);
        _keys[publicKey] = KeyWindow(validFrom, validUntil);
        _keyList.push(publicKey);
        emit AgentKeyRegistered(publicKey, validFrom, validUntil);
    }

    /// @notice Ends a key's validity at `validUntil` (key rotation or compromise).
    /// A window can only be shortened (strictly), never extended or moved back.
    function retireAgentKey(bytes32 publicKey, uint64 validUntil) external onlyRole(KEY_ADMIN_ROLE) {
        KeyWindow storage w = _keys[publicKey];
        if (w.validUntil == 0) revert UnknownKey(publicKey);
        if (validUntil <= w.validFrom || validUntil >= w.validUntil) revert BadKeyWindow(w.validFrom, validUntil);
        w.validUntil = validUntil;
        emit AgentKeyWindowChanged(publicKey, w.validFrom, validUntil);
    }

    /// @notice The validity window of a key; (0, 0) when unknown.
    function agentKey(bytes32 publicKey) external view returns (KeyWindow memory) {
        return _keys[publicKey];
    }

    /// @notice Whether `publicKey` may sign records timestamped `at` (unix seconds).
    function isKeyValidAt(bytes32 publicKey, uint64 at) external view returns (bool) {
        KeyWindow memory w = _keys[publicKey];
        return w.validUntil != 0 && at >= w.validFrom && at < w.validUntil;
    }

    /// @notice Every key ever registered, in registration order.
    function agentKeys() external view returns (bytes32[] memory) {
        return _keyList;
    }

    // ------------------------------------------------------------------- IPS

    /// @notice Records the hash of a new version of an account's IPS. Versions
    /// strictly increase and take effect no earlier than the previous one.
    function registerIps(uint64 account, bytes32 ipsHash, uint32 version, uint64 effectiveAt)
        external
        onlyRole(IPS_ROLE)
    {
        if (ipsHash == bytes32(0)) revert ZeroIpsHash();
        IpsVersion[] storage history = _ips[account];
        if (history.length != 0) {
            IpsVersion storage last = history[history.length - 1];
            if (version <= last.version) revert IpsVersionNotIncreasing(account, last.version, version);
            if (effectiveAt < last.effectiveAt) revert IpsEffectiveBeforePrevious(account, last.effectiveAt, effectiveAt);
        } else if (version == 0) {
            revert IpsVersionNotIncreasing(account, 0, version);
        }
        history.push(IpsVersion(ipsHash, version, effectiveAt));
        emit IpsRegistered(account, ipsHash, version, effectiveAt);
    }

    /// @notice The newest IPS version of an account; all zero when none.
    function currentIps(uint64 account) external view returns (IpsVersion memory v) {
        IpsVersion[] storage history = _ips[account];
        if (history.length != 0) v = history[history.length - 1];
    }

    /// @notice Every IPS version of an account, oldest first.
    function ipsHistory(uint64 account) external view returns (IpsVersion[] memory) {
        return _ips[account];
    }

    // ------------------------------------------------------------ checkpoints

    /// @notice Anchors the audit-log checkpoint (size, root).
    /// @return anchored true when new, false when (size, root) was already anchored.
    function anchor(uint64 size, bytes32 root) external onlyRole(ANCHOR_ROLE) returns (bool anchored) {
        if (size == 0) revert EmptyCheckpoint();
        if (root == bytes32(0)) revert ZeroRoot();
        bytes32 anchoredRoot = _roots[size];
        if (anchoredRoot != bytes32(0)) {
            if (anchoredRoot != root) revert CheckpointConflict(size, anchoredRoot, root);
            return false;
        }
        uint64 latest = latestSize();
        if (size <= latest) revert CheckpointNotIncreasing(size, latest);
        _roots[size] = root;
        _anchoredSizes.push(size);
        emit CheckpointAnchored(size, root, msg.sender);
        return true;
    }

    /// @notice The anchored root for `size`; zero if that size was never anchored.
    function checkpointAt(uint64 size) external view returns (bytes32 root) {
        return _roots[size];
    }

    /// @notice The largest anchored tree size (0 before the first anchor).
    function latestSize() public view returns (uint64) {
        uint256 n = _anchoredSizes.length;
        return n == 0 ? 0 : _anchoredSizes[n - 1];
    }

    /// @notice How many checkpoints are anchored.
    function checkpointCount() external view returns (uint256) {
        return _anchoredSizes.length;
    }

    /// @notice Anchored sizes in [from, from + count), oldest first, for verifiers.
    function anchoredSizes(uint256 from, uint256 count) external view returns (uint64[] memory sizes) {
        uint256 n = _anchoredSizes.length;
        if (from >= n) return sizes;
        if (count > n - from) count = n - from;
        sizes = new uint64[](count);
        for (uint256 i = 0; i < count; ++i) {
            sizes[i] = _anchoredSizes[from + i];
        }
    }
}
