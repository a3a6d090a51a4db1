// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";

/// @title A price feed per asset in the Chainlink AggregatorV3Interface shape.
/// @notice The updater role pushes rounds; every round is kept so that any
/// past price a decision relied on can be read back.
contract PriceFeed is IAggregatorV3, AccessControl {
    bytes32 public constant UPDATER_ROLE = keccak256("UPDATER_ROLE");

    /// @dev One slot per round: settlement reads the latest round of every asset it trades.
    struct Round {
        int192 answer;
        uint32 startedAt;
        uint32 updatedAt;
    }

    /// @notice A round id that was never written.
    error NoSuchRound(uint80 roundId);
    /// @notice Prices must be strictly positive and fit 192 bits.
    error AnswerOutOfRange(int256 answer);

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    uint8 public immutable override decimals;
    string public override description;
    uint256 public constant override version = 1;

    /// @dev rounds[0] is unused so that round ids start at 1, as Chainlink's do.
    Round[] private _rounds;

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer, address admin) {
        decimals = decimals_;
        description = description_;
        _rounds.push(Round(0, 0, 0));
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(UPDATER_ROLE, admin);
        _push(initialAnswer);
    }

    /// @notice Publishes a new round with `answer` at the current block time.
    function updateAnswer(int256 answer) external onlyRole(UPDATER_ROLE) {
        _push(answer);
    }

    /// @notice Number of the newest round.
    function latestRound() public view returns (uint80) {
        return uint80(_rounds.length - 1);
    }

    /// @inheritdoc IAggregatorV3
    function getRoundData(uint80 roundId) public view override returns (uint80, int256, uint256, uint256, uint80) {
        if (roundId == 0 || roundId >= _rounds.length) revert NoSuchRound(roundId);
        Round memory r = _rounds[roundId];
        return (roundId, r.answer, r.startedAt, r.updatedAt, roundId);
    }

    /// @inheritdoc IAggregatorV3
    function latestRoundData() external view override returns (uint80, int256, uint256, uint256, uint80) {
        return getRoundData(latestRound());
    }

    function _push(int256 answer) private {
        if (answer <= 0 || answer > type(int192).max) revert AnswerOutOfRange(answer);
        // Safe: answer is in (0, int192 max] and unix seconds fit uint32 until 2106.
        // forge-lint: disable-next-line(unsafe-typecast)
        _rounds.push(Round(int192(answer), uint32(block.timestamp), uint32(block.timestamp)));
        emit AnswerUpdated(answer, _rounds.length - 1, block.timestamp);
    }
}
