// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AssetToken} from "../../src/AssetToken.sol";

/// @title An asset token that calls back into a target (the ledger) from its
/// own `transfer` and `transferFrom`, before moving any balance, to test the
/// ledger's reentrancy guard.
/// @notice Armed with the calldata of one call, every transfer while armed
/// makes that call once (never recursively) and records whether it
/// succeeded and, when it reverted, the revert data.
/// `fire()` makes the same call outside any transfer, as a control that the
/// call itself is a valid one.
contract HostileToken is AssetToken {
    /// @dev ReentrancyGuardTransient.ReentrancyGuardReentrantCall()
    bytes4 public constant GUARD_SELECTOR = bytes4(keccak256("ReentrancyGuardReentrantCall()"));

    address public target;
    bytes public reentryCall;
    bool public armed;
    bool private _inHook;

    /// @notice Re-entrant calls attempted from a transfer hook.
    uint256 public attempts;
    /// @notice Those that succeeded.
    uint256 public successes;
    /// @notice Those that reverted with the reentrancy guard's error.
    uint256 public guardReverts;
    bool public lastSucceeded;
    bytes4 public lastSelector;
    bytes public lastRevertData;

    constructor(string memory name_, string memory symbol_, address admin) AssetToken(name_, symbol_, 18, admin) {}

    /// @notice Makes every following transfer call `target` with `data`. Test-only: no access control.
    function arm(address target_, bytes calldata data) external {
        target = target_;
        reentryCall = data;
        armed = true;
    }

    function disarm() external {
        armed = false;
    }

    /// @notice Approves `spender` for this token's own holdings of `token` (for re-entrant deposits).
    function approveOther(AssetToken token, address spender, uint256 amount) external {
        token.approve(spender, amount);
    }

    /// @notice Makes the armed call directly (not from a transfer); returns its success and revert data.
    function fire() external returns (bool ok, bytes memory ret) {
        (ok, ret) = target.call(reentryCall);
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        _hook();
        return super.transfer(to, value);
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        _hook();
        return super.transferFrom(from, to, value);
    }

    function _hook() private {
        if (!armed || _inHook) return;
        _inHook = true;
        attempts++;
        (bool ok, bytes memory ret) = target.call(reentryCall);
        lastSucceeded = ok;
        lastRevertData = ret;
        lastSelector = ret.length >= 4 ? bytes4(ret) : bytes4(0);
        if (ok) successes++;
        else if (lastSelector == GUARD_SELECTOR && ret.length == 4) guardReverts++;
        _inHook = false;
    }
}

/// @title An asset token that burns 1% of every transfer between two
/// non-zero holders, so the recipient receives less than was sent.
contract FeeOnTransferToken is AssetToken {
    constructor(string memory name_, string memory symbol_, address admin) AssetToken(name_, symbol_, 18, admin) {}

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}
