// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {AssetToken} from "../src/AssetToken.sol";
import {Fixture} from "./utils/Fixture.sol";
import {PortfolioLedger} from "../src/PortfolioLedger.sol";
contract GasProbe is Fixture {
    function test_probe() public {
        uint256 n = 300;
        uint64[] memory ids = new uint64[](n);
        address[] memory owners = new address[](n);
        for (uint256 i = 0; i < n; ++i) { ids[i] = uint64(1000 + i); owners[i] = address(1); }
        vm.prank(accountAdmin); ledger.openAccounts(ids, owners);
        for (uint256 a = 0; a < 3; ++a) { _fundMany(tokens[a], ids, 1000e18); }
        _fundMany(cash, ids, 100_000e6);
        for (uint256 i = 0; i < n; ++i) {
            _leg(ids[i], 0, i % 2 == 0 ? int64(3e6) : int64(-2e6));
            _leg(ids[i], 1, i % 2 == 0 ? int64(-4e6) : int64(5e6));
            _leg(ids[i], 2, i % 3 == 0 ? int64(1e6) : int64(-1e6));
        }
        PortfolioLedger.BatchHeader memory h = _header("g", 1);
        PortfolioLedger.AssetTrade[] memory l = _trades(100);
        PortfolioLedger.Order[] memory m = _orders();
        vm.prank(settler);
        uint256 g = gasleft();
        ledger.settleBatch(h, m, l);
        g = g - gasleft();
        bytes memory cd = abi.encodeCall(ledger.settleBatch, (h, m, l));
        uint256 cdGas; for (uint256 i = 0; i < cd.length; ++i) cdGas += cd[i] == 0 ? 4 : 16;
        vm.assertEq(cdGas / n * 1e9 + g / n, 0, "calldata per account | exec");
    }
    function _fundMany(AssetToken t, uint64[] memory ids, uint256 amt) internal {
        uint256[] memory amts = new uint256[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) amts[i] = amt;
        t.mint(address(this), amt * ids.length); t.approve(address(ledger), amt * ids.length);
        ledger.depositBatch(IERC20(address(t)), ids, amts);
    }
}
