// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title A tokenized asset: a fund share, a bond fund or the cash stablecoin.
/// @notice Plain ERC-20 with a minter role and the asset's own number of decimals.
contract AssetToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    uint8 private immutable _decimals;

    /// @param name_ token name, e.g. "Global Equity Fund"
    /// @param symbol_ token symbol, e.g. "GEQ"
    /// @param decimals_ decimals of one whole unit (6 for a dollar stablecoin, 18 for fund shares)
    /// @param admin holder of the admin and minter roles
    constructor(string memory name_, string memory symbol_, uint8 decimals_, address admin) ERC20(name_, symbol_) {
        _decimals = decimals_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Creates `amount` base units for `to`. Minter role only.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Destroys `amount` of the caller's own base units.
    function burn(uint256 amount) external {
        _burn(msg.sender, amount);
    }
}
