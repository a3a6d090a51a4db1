// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {AuditRegistry} from "./AuditRegistry.sol";
import {IAggregatorV3} from "./interfaces/IAggregatorV3.sol";
import {IUniswapV2Router} from "./interfaces/IUniswapV2.sol";

/// @title Omnibus custody of tokenized assets with per-account books, and
/// batch settlement of rebalancing trades.
/// @notice The ledger holds the real ERC-20 tokens; each client account has an
/// internal book of cash and of every registered asset. `settleBatch` settles
/// the trades of many accounts in one transaction: per asset, buys and sells
/// cross internally at the feed price, only the net quantity trades on the
/// Uniswap V2 venue within a slippage limit, every buyer (seller) of an asset
/// gets the same average price, cash is conserved exactly, and the audit-log
/// checkpoint covering the batch's decision records is anchored in the same
/// transaction.
/// @dev Gas is what makes batching worth it, so storage is laid out for it.
/// Books count each asset in quanta: a quantum is the asset's smallest
/// tradable amount in token base units, fixed at registration (cash's quantum
/// is one base unit). Counting in uint64 quanta packs four balances per slot:
/// an account's cash and first three assets share one slot, the next four the
/// second. Account status (open, frozen) lives in a bitmap shared by 128
/// consecutive account ids, so it is warm for most of a batch. External
/// amounts (deposits, withdrawals, views, events) are token base units,
/// except a leg's `quanta` and the declared totals of `AssetTrade`.
contract PortfolioLedger is AccessControlDefaultAdminRules, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    bytes32 public constant ACCOUNT_ADMIN_ROLE = keccak256("ACCOUNT_ADMIN_ROLE");

    /// @notice Registered assets at most (cash excluded); bounds every per-asset loop.
    uint256 public constant MAX_ASSETS = 15;
    /// @notice Legs in one batch at most; the agent also cuts batches to the block gas limit.
    uint256 public constant MAX_BATCH_LEGS = 4096;
    uint256 private constant BPS = 10_000;
    /// @notice Cash tokens with more decimals would leave books too small (see the constructor).
    uint8 public constant MAX_CASH_DECIMALS = 8;

    // A book is uint64 lanes: cash, then one per asset.
    uint256 private constant LANES = MAX_ASSETS + 1;
    uint256 private constant CASH_LANE = 0;
    uint256 private constant FIRST_ASSET_LANE = 1;
    // Two status bits per account in `_status`.
    uint256 private constant OPEN = 1;
    uint256 private constant FROZEN = 2;

    /// @notice A settlement batch: its idempotency key, deadline and the audit
    /// checkpoint (tree size, Merkle root) that covers its decision records.
    struct BatchHeader {
        bytes32 batchId;
        uint64 deadline;
        uint64 checkpointSize;
        bytes32 checkpointRoot;
    }

    /// @notice What one decision record orders for one account: its legs, and
    /// the hash of the signed record. One order per account and batch: the
    /// account's cash is settled once, after all its legs, so a sale funds a
    /// purchase, and the record hash travels once in calldata.
    struct Order {
        uint64 account;
        bytes32 recordHash;
        Leg[] legs;
    }

    /// @notice One trade: positive `quanta` buy, negative sell.
    struct Leg {
        uint16 asset;
        int64 quanta;
    }

    /// @notice One per asset the batch trades: the quanta its legs buy and
    /// sell in total (declared up front so that the venue trade can happen
    /// before the legs are applied; checked against the legs), and the
    /// settler's slippage bound for the venue trade of the net quantity.
    struct AssetTrade {
        uint16 asset;
        uint16 maxSlippageBps;
        uint128 boughtQuanta;
        uint128 soldQuanta;
    }

    struct Asset {
        IERC20 token;
        uint32 maxFeedAge;
        uint8 tokenDecimals;
        uint8 feedDecimals;
        IAggregatorV3 feed;
        uint128 quantum;
    }

    /// @dev Per-asset working state of one settlement; quantities in quanta, cash in base units.
    struct Fill {
        bool declared;
        uint256 bought;
        uint256 sold;
        uint256 boughtSeen;
        uint256 soldSeen;
        uint256 price;
        uint256 buyCash;
        uint256 sellCash;
    }

    error UnknownAccount(uint64 account);
    error AccountAlreadyOpen(uint64 account);
    error AccountFrozen(uint64 account);
    error NotAccountOwner(uint64 account, address caller);
    error UnregisteredAsset(uint256 asset);
    error UnsupportedToken(address token);
    error AssetAlreadyRegistered(address token);
    error TooManyAssets();
    error BadQuantum(uint256 quantum);
    error NotWholeQuanta(address token, uint256 amount, uint256 quantum);
    error LengthMismatch(uint256 a, uint256 b);
    error InsufficientCash(uint64 account, uint256 available, uint256 needed);
    error InsufficientUnits(uint64 account, uint16 asset, uint256 availableQuanta, uint256 neededQuanta);
    error DeadlineExpired(uint64 deadline, uint256 nowTs);
    error BatchAlreadySettled(bytes32 batchId);
    error BadLegCount(uint256 count);
    error ZeroQuantity(uint256 orderIndex, uint256 legIndex);
    error StaleFeed(uint16 asset, uint256 updatedAt, uint256 maxAge);
    error BadPrice(uint16 asset, int256 answer);
    error UndeclaredAsset(uint16 asset);
    error DuplicateAsset(uint16 asset);
    error EmptyAssetTrade(uint16 asset);
    error TotalsMismatch(uint16 asset, uint256 declaredBought, uint256 bought, uint256 declaredSold, uint256 sold);
    error SlippageAboveCap(uint16 asset, uint256 maxSlippageBps, uint256 capBps);
    error SlippageExceeded(uint16 asset, uint256 limitCash, uint256 quoteCash);
    error VenueShortfall(uint16 asset, uint256 expected, uint256 received);
    error ZeroAddress();
    error BadRecipient(address to);
    error UnsupportedCashDecimals(uint8 decimals);
    error CashOutOfRange(uint16 asset);

    event AccountOpened(uint64 indexed account, address indexed owner);
    event AccountFrozenSet(uint64 indexed account, bool frozen);
    event AssetRegistered(uint16 indexed asset, address indexed token, address feed, uint32 maxFeedAge, uint256 quantum);
    event FeedChanged(uint16 indexed asset, address feed, uint32 maxFeedAge);
    event DustAccountChanged(uint64 indexed account);
    event Deposited(uint64 indexed account, address indexed token, uint256 amount, address from);
    event Withdrawn(uint64 indexed account, address indexed token, uint256 amount, address to);
    /// @notice One per leg: what the account traded (in quanta), for which
    /// decision record, and the cash it paid or received (base units).
    event LegSettled(
        uint64 indexed account, bytes32 indexed recordHash, uint16 asset, int256 quanta, uint256 cashAmount
    );
    /// @notice One per asset in a batch; quantities in token base units,
    /// prices with the feed's decimals.
    event AssetSettled(
        bytes32 indexed batchId,
        uint16 indexed asset,
        uint256 feedPrice,
        uint256 crossedQuantity,
        int256 venueQuantity,
        uint256 venueCash,
        uint256 buyAveragePrice,
        uint256 sellAveragePrice
    );
    event BatchSettled(
        bytes32 indexed batchId, uint64 checkpointSize, bytes32 checkpointRoot, uint256 legCount, uint256 dust
    );

    IERC20 public immutable cashToken;
    uint8 public immutable cashDecimals;
    AuditRegistry public immutable registry;
    IUniswapV2Router public router;
    /// @notice The account credited with rounding dust from settlements.
    uint64 public dustAccount;
    /// @notice Upper bound on any slippage limit a settler may ask for.
    uint16 public maxSlippageCapBps = 500;

    Asset[] private _assets;
    mapping(address token => uint256) private _assetSlot; // index + 1; 0 = not registered
    mapping(uint64 account => uint64[LANES]) private _books;
    mapping(uint256 word => uint256) private _status;
    mapping(uint64 account => address) public ownerOf;
    mapping(bytes32 batchId => bool) public settled;

    /// @param cash_ the cash stablecoin every trade is priced in
    /// @param registry_ the audit registry; this ledger needs its ANCHOR_ROLE
    /// @param router_ the Uniswap V2 router of the venue
    /// @param admin default admin (two-step transfer with `adminDelay`)
    /// @param dustAccount_ account opened for `admin` that collects rounding dust
    constructor(
        IERC20 cash_,
        AuditRegistry registry_,
        IUniswapV2Router router_,
        address admin,
        uint48 adminDelay,
        uint64 dustAccount_
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (address(cash_) == address(0) || address(registry_) == address(0)) revert ZeroAddress();
        cashToken = cash_;
        cashDecimals = IERC20Metadata(address(cash_)).decimals();
        // Books hold cash in uint64 base units: 2^64 base units is 1.8e13 whole
        // units at 6 decimals but only 18 at 18 decimals.
        if (cashDecimals > MAX_CASH_DECIMALS) revert UnsupportedCashDecimals(cashDecimals);
        registry = registry_;
        _setRouter(router_);
        _open(dustAccount_, admin);
        dustAccount = dustAccount_;
    }

    // ------------------------------------------------------------ admin

    /// @notice Registers a tokenized asset with its price feed; returns its index.
    /// @param quantum the smallest tradable amount in base units (e.g. 1e12 for
    /// 1e-6 of an 18-decimal share); books hold at most 2^64-1 quanta.
    function registerAsset(IERC20 token, IAggregatorV3 feed, uint32 maxFeedAge, uint128 quantum)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (uint16 index)
    {
        if (address(token) == address(0) || address(feed) == address(0)) revert ZeroAddress();
        if (address(token) == address(cashToken) || _assetSlot[address(token)] != 0) {
            revert AssetAlreadyRegistered(address(token));
        }
        if (_assets.length == MAX_ASSETS) revert TooManyAssets();
        uint8 tokenDecimals = IERC20Metadata(address(token)).decimals();
        if (quantum == 0 || quantum > 10 ** uint256(tokenDecimals)) revert BadQuantum(quantum);
        index = uint16(_assets.length);
        _assets.push(Asset(token, maxFeedAge, tokenDecimals, feed.decimals(), feed, quantum));
        _assetSlot[address(token)] = uint256(index) + 1;
        if (address(router) != address(0)) token.forceApprove(address(router), type(uint256).max);
        emit AssetRegistered(index, address(token), address(feed), maxFeedAge, quantum);
    }

    /// @notice Replaces an asset's feed or its maximum age.
    function setFeed(uint16 asset, IAggregatorV3 feed, uint32 maxFeedAge) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (asset >= _assets.length) revert UnregisteredAsset(asset);
        if (address(feed) == address(0)) revert ZeroAddress();
        Asset storage a = _assets[asset];
        a.feed = feed;
        a.feedDecimals = feed.decimals();
        a.maxFeedAge = maxFeedAge;
        emit FeedChanged(asset, address(feed), maxFeedAge);
    }

    /// @notice Points the ledger at another venue router.
    function setRouter(IUniswapV2Router router_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRouter(router_);
    }

    /// @notice Caps the slippage a settler may accept on venue trades.
    function setMaxSlippageCap(uint16 capBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (capBps > BPS) revert SlippageAboveCap(0, capBps, BPS);
        maxSlippageCapBps = capBps;
    }

    /// @notice Names the (open) account that collects rounding dust.
    function setDustAccount(uint64 account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint256 status = _statusOf(account);
        if (status & OPEN == 0) revert UnknownAccount(account);
        if (status & FROZEN != 0) revert AccountFrozen(account);
        dustAccount = account;
        emit DustAccountChanged(account);
    }

    /// @notice Stops settlement, deposits and withdrawals (the circuit breaker).
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(GUARDIAN_ROLE) {
        _unpause();
    }

    /// @notice Freezes or unfreezes an account: a frozen account neither trades nor moves funds.
    function setFrozen(uint64 account, bool frozen) external onlyRole(GUARDIAN_ROLE) {
        if (_statusOf(account) & OPEN == 0) revert UnknownAccount(account);
        _setStatus(account, frozen ? OPEN | FROZEN : OPEN);
        emit AccountFrozenSet(account, frozen);
    }

    // ------------------------------------------------------------ accounts

    /// @notice Opens client accounts; `owners[i]` may withdraw from `accounts[i]`.
    function openAccounts(uint64[] calldata accounts, address[] calldata owners)
        external
        onlyRole(ACCOUNT_ADMIN_ROLE)
    {
        if (accounts.length != owners.length) revert LengthMismatch(accounts.length, owners.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            _open(accounts[i], owners[i]);
        }
    }

    /// @notice Moves `amount` base units of `token` from the caller into `account`'s book.
    function deposit(uint64 account, IERC20 token, uint256 amount) external nonReentrant whenNotPaused {
        uint64[] memory accounts = new uint64[](1);
        uint256[] memory amounts = new uint256[](1);
        accounts[0] = account;
        amounts[0] = amount;
        _deposit(token, accounts, amounts);
    }

    /// @notice Funds many accounts from the caller in one token transfer.
    function depositBatch(IERC20 token, uint64[] calldata accounts, uint256[] calldata amounts)
        external
        nonReentrant
        whenNotPaused
    {
        if (accounts.length != amounts.length) revert LengthMismatch(accounts.length, amounts.length);
        _deposit(token, accounts, amounts);
    }

    /// @notice Sends `amount` base units of `token` from `account`'s book to `to`.
    /// Callable by the account's owner or the account admin.
    function withdraw(uint64 account, IERC20 token, uint256 amount, address to) external nonReentrant whenNotPaused {
        if (msg.sender != ownerOf[account] && !hasRole(ACCOUNT_ADMIN_ROLE, msg.sender)) {
            revert NotAccountOwner(account, msg.sender);
        }
        if (to == address(0)) revert ZeroAddress();
        // Tokens sent to the ledger itself would belong to no book.
        if (to == address(this)) revert BadRecipient(to);
        uint64[LANES] storage book = _liveBook(account);
        (uint256 lane, uint256 quantum) = _laneOf(token);
        if (amount % quantum != 0) revert NotWholeQuanta(address(token), amount, quantum);
        uint256 quanta = amount / quantum;
        uint256 held = book[lane];
        if (held < quanta) {
            if (lane == CASH_LANE) revert InsufficientCash(account, held, quanta);
            // Safe: lane is below LANES (16), so lane - FIRST_ASSET_LANE fits uint16.
            // forge-lint: disable-next-line(unsafe-typecast)
            revert InsufficientUnits(account, uint16(lane - FIRST_ASSET_LANE), held, quanta);
        }
        // Safe: held >= quanta and held came from a uint64 lane.
        // forge-lint: disable-next-line(unsafe-typecast)
        book[lane] = uint64(held - quanta);
        token.safeTransfer(to, amount);
        emit Withdrawn(account, address(token), amount, to);
    }

    // ------------------------------------------------------------ settlement

    /// @notice Settles one batch of orders; see the contract notice for the rules.
    /// @return dust cash rounding credited to `dustAccount`
    function settleBatch(BatchHeader calldata header, Order[] calldata orders, AssetTrade[] calldata assets)
        external
        onlyRole(SETTLER_ROLE)
        whenNotPaused
        nonReentrant
        returns (uint256 dust)
    {
        if (block.timestamp > header.deadline) revert DeadlineExpired(header.deadline, block.timestamp);
        if (settled[header.batchId]) revert BatchAlreadySettled(header.batchId);
        settled[header.batchId] = true;
        registry.anchor(header.checkpointSize, header.checkpointRoot);

        Fill[] memory fills = _declare(assets);
        uint256 cashDue = 0; // what buyers owe in total
        uint256 cashOwed = 0; // what sellers are owed in total
        for (uint256 i = 0; i < assets.length; ++i) {
            uint16 index = assets[i].asset;
            Fill memory f = fills[index];
            _fill(header.batchId, index, f, assets[i].maxSlippageBps);
            if (f.bought != 0) cashDue += f.buyCash;
            if (f.sold != 0) cashOwed += f.sellCash;
        }

        (uint256 paid, uint256 received, uint256 legCount) = _applyOrders(orders, fills);
        if (legCount == 0 || legCount > MAX_BATCH_LEGS) revert BadLegCount(legCount);
        _checkTotals(fills);
        // Buyers round up and sellers round down, so the ledger never pays out
        // more than it took in: what is left over is the dust.
        dust = paid - cashDue + cashOwed - received;
        if (dust != 0) {
            uint64[LANES] storage book = _books[dustAccount];
            book[CASH_LANE] = (book[CASH_LANE] + dust).toUint64();
        }
        emit BatchSettled(header.batchId, header.checkpointSize, header.checkpointRoot, legCount, dust);
    }

    // ------------------------------------------------------------ views

    function assetCount() external view returns (uint256) {
        return _assets.length;
    }

    function assetInfo(uint16 index) external view returns (Asset memory) {
        if (index >= _assets.length) revert UnregisteredAsset(index);
        return _assets[index];
    }

    /// @notice Index of a registered asset token.
    function assetIndexOf(IERC20 token) external view returns (uint16) {
        uint256 slot = _assetSlot[address(token)];
        if (slot == 0) revert UnsupportedToken(address(token));
        // Safe: slot <= MAX_ASSETS.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint16(slot - 1);
    }

    /// @notice Cash of an account in base units.
    function cashOf(uint64 account) external view returns (uint256) {
        return _books[account][CASH_LANE];
    }

    /// @notice Units of an asset held by an account, in token base units.
    function unitsOf(uint64 account, uint16 asset) external view returns (uint256) {
        if (asset >= _assets.length) revert UnregisteredAsset(asset);
        return uint256(_books[account][FIRST_ASSET_LANE + asset]) * _assets[asset].quantum;
    }

    /// @notice Cash and the units of every registered asset (index order), in base units, and
    /// whether the account is frozen: what an agent reads of an account before deciding it.
    function positionsOf(uint64 account) external view returns (uint256 cash, uint256[] memory units, bool frozen) {
        uint64[LANES] storage book = _books[account];
        cash = book[CASH_LANE];
        units = new uint256[](_assets.length);
        for (uint256 i = 0; i < units.length; ++i) {
            units[i] = uint256(book[FIRST_ASSET_LANE + i]) * _assets[i].quantum;
        }
        frozen = _statusOf(account) & FROZEN != 0;
    }

    function isOpen(uint64 account) external view returns (bool) {
        return _statusOf(account) & OPEN != 0;
    }

    function isFrozen(uint64 account) external view returns (bool) {
        return _statusOf(account) & FROZEN != 0;
    }

    // ------------------------------------------------------------ internals

    function _setRouter(IUniswapV2Router router_) private {
        IUniswapV2Router old = router;
        if (address(old) != address(0)) {
            cashToken.forceApprove(address(old), 0);
            for (uint256 i = 0; i < _assets.length; ++i) {
                _assets[i].token.forceApprove(address(old), 0);
            }
        }
        router = router_;
        if (address(router_) != address(0)) {
            cashToken.forceApprove(address(router_), type(uint256).max);
            for (uint256 i = 0; i < _assets.length; ++i) {
                _assets[i].token.forceApprove(address(router_), type(uint256).max);
            }
        }
    }

    function _open(uint64 account, address owner) private {
        if (owner == address(0)) revert ZeroAddress();
        if (_statusOf(account) & OPEN != 0) revert AccountAlreadyOpen(account);
        _setStatus(account, OPEN);
        ownerOf[account] = owner;
        emit AccountOpened(account, owner);
    }

    function _statusOf(uint64 account) private view returns (uint256) {
        return (_status[account >> 7] >> ((account & 127) << 1)) & 3;
    }

    function _setStatus(uint64 account, uint256 status) private {
        uint256 shift = (account & 127) << 1;
        uint256 word = _status[account >> 7];
        // The 2-bit mask moves to the account's position: 3 << shift is meant.
        // forge-lint: disable-next-line(incorrect-shift)
        _status[account >> 7] = (word & ~(3 << shift)) | (status << shift);
    }

    function _liveBook(uint64 account) private view returns (uint64[LANES] storage book) {
        uint256 status = _statusOf(account);
        if (status & OPEN == 0) revert UnknownAccount(account);
        if (status & FROZEN != 0) revert AccountFrozen(account);
        book = _books[account];
    }

    /// @dev The book lane and quantum of a token the ledger holds.
    function _laneOf(IERC20 token) private view returns (uint256 lane, uint256 quantum) {
        if (address(token) == address(cashToken)) return (CASH_LANE, 1);
        uint256 slot = _assetSlot[address(token)];
        if (slot == 0) revert UnsupportedToken(address(token));
        return (FIRST_ASSET_LANE + slot - 1, _assets[slot - 1].quantum);
    }

    /// @dev Credits what actually arrived, so the books always equal the tokens held.
    function _deposit(IERC20 token, uint64[] memory accounts, uint256[] memory amounts) private {
        (uint256 lane, uint256 quantum) = _laneOf(token);
        uint256 total = 0;
        for (uint256 i = 0; i < amounts.length; ++i) {
            if (amounts[i] % quantum != 0) revert NotWholeQuanta(address(token), amounts[i], quantum);
            total += amounts[i];
        }
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), total);
        uint256 arrived = token.balanceOf(address(this)) - before;
        if (arrived != total) revert UnsupportedToken(address(token));
        for (uint256 i = 0; i < accounts.length; ++i) {
            uint64[LANES] storage book = _liveBook(accounts[i]);
            book[lane] = (book[lane] + amounts[i] / quantum).toUint64();
            emit Deposited(accounts[i], address(token), amounts[i], msg.sender);
        }
    }

    /// @dev Working state per registered asset from the settler's declarations.
    function _declare(AssetTrade[] calldata assets) private view returns (Fill[] memory fills) {
        uint256 assetTotal = _assets.length;
        fills = new Fill[](assetTotal);
        for (uint256 i = 0; i < assets.length; ++i) {
            uint16 index = assets[i].asset;
            if (index >= assetTotal) revert UnregisteredAsset(index);
            Fill memory f = fills[index];
            if (f.declared) revert DuplicateAsset(index);
            f.declared = true;
            f.bought = assets[i].boughtQuanta;
            f.sold = assets[i].soldQuanta;
            if (f.bought == 0 && f.sold == 0) revert EmptyAssetTrade(index);
            if (assets[i].maxSlippageBps > maxSlippageCapBps) {
                revert SlippageAboveCap(index, assets[i].maxSlippageBps, maxSlippageCapBps);
            }
        }
    }

    /// @dev The legs must add up to exactly what was declared and traded
    /// (`_applyOrders` already refused any excess).
    function _checkTotals(Fill[] memory fills) private pure {
        for (uint256 a = 0; a < fills.length; ++a) {
            Fill memory f = fills[a];
            if (f.bought != f.boughtSeen || f.sold != f.soldSeen) {
                // Safe: a < MAX_ASSETS.
                // forge-lint: disable-next-line(unsafe-typecast)
                revert TotalsMismatch(uint16(a), f.bought, f.boughtSeen, f.sold, f.soldSeen);
            }
        }
    }

    /// @dev Prices one asset, crosses its buys and sells at the feed price and
    /// trades the net quantity on the venue within the settler's slippage limit.
    function _fill(bytes32 batchId, uint16 index, Fill memory f, uint256 slippageBps) private {
        Asset memory a = _assets[index];
        f.price = _feedPrice(index, a);
        uint256 crossed = Math.min(f.bought, f.sold);
        uint256 crossedCash = _value(a, crossed, f.price, Math.Rounding.Floor);
        f.buyCash = crossedCash;
        f.sellCash = crossedCash;
        int256 venueQuantity = 0;
        uint256 venueCash = 0;
        if (f.bought != f.sold) {
            if (f.bought > f.sold) {
                uint256 net = f.bought - f.sold;
                uint256 fair = _value(a, net, f.price, Math.Rounding.Ceil);
                uint256 maxIn = Math.mulDiv(fair, BPS + slippageBps, BPS, Math.Rounding.Ceil);
                venueCash = _buyOnVenue(index, a.token, net * a.quantum, maxIn);
                // Safe: the venue just delivered net * quantum units, and Uniswap V2 reserves are uint112.
                // forge-lint: disable-next-line(unsafe-typecast)
                venueQuantity = int256(net * a.quantum);
                f.buyCash += venueCash;
            } else {
                uint256 net = f.sold - f.bought;
                uint256 fair = _value(a, net, f.price, Math.Rounding.Floor);
                uint256 minOut = Math.mulDiv(fair, BPS - slippageBps, BPS);
                venueCash = _sellOnVenue(index, a.token, net * a.quantum, minOut);
                // Safe: the venue just took net * quantum units, and Uniswap V2 reserves are uint112.
                // forge-lint: disable-next-line(unsafe-typecast)
                venueQuantity = -int256(net * a.quantum);
                f.sellCash += venueCash;
            }
        }
        if (f.buyCash > type(uint128).max || f.sellCash > type(uint128).max) revert CashOutOfRange(index);
        emit AssetSettled(
            batchId,
            index,
            f.price,
            crossed * a.quantum,
            venueQuantity,
            venueCash,
            _averagePrice(a, f.buyCash, f.bought),
            _averagePrice(a, f.sellCash, f.sold)
        );
    }

    function _buyOnVenue(uint16 index, IERC20 token, uint256 units, uint256 maxCashIn)
        private
        returns (uint256 cashSpent)
    {
        address[] memory path = new address[](2);
        path[0] = address(cashToken);
        path[1] = address(token);
        uint256 quote = router.getAmountsIn(units, path)[0];
        if (quote > maxCashIn) revert SlippageExceeded(index, maxCashIn, quote);
        uint256 cashBefore = cashToken.balanceOf(address(this));
        uint256 unitsBefore = token.balanceOf(address(this));
        router.swapTokensForExactTokens(units, maxCashIn, path, address(this), block.timestamp);
        uint256 unitsReceived = token.balanceOf(address(this)) - unitsBefore;
        if (unitsReceived != units) revert VenueShortfall(index, units, unitsReceived);
        cashSpent = cashBefore - cashToken.balanceOf(address(this));
    }

    function _sellOnVenue(uint16 index, IERC20 token, uint256 units, uint256 minCashOut)
        private
        returns (uint256 cashReceived)
    {
        address[] memory path = new address[](2);
        path[0] = address(token);
        path[1] = address(cashToken);
        uint256 quote = router.getAmountsOut(units, path)[1];
        if (quote < minCashOut) revert SlippageExceeded(index, minCashOut, quote);
        uint256 cashBefore = cashToken.balanceOf(address(this));
        router.swapExactTokensForTokens(units, minCashOut, path, address(this), block.timestamp);
        cashReceived = cashToken.balanceOf(address(this)) - cashBefore;
        if (cashReceived < minCashOut) revert VenueShortfall(index, minCashOut, cashReceived);
    }

    /// @dev Moves units and cash for every leg. A leg's cash is its pro-rata
    /// share of its asset's total, so all buyers (sellers) of an asset pay
    /// (get) the same price; an order's cash is netted and checked once.
    function _applyOrders(Order[] calldata orders, Fill[] memory fills)
        private
        returns (uint256 paid, uint256 received, uint256 legCount)
    {
        for (uint256 o = 0; o < orders.length; ++o) {
            uint64 account = orders[o].account;
            bytes32 recordHash = orders[o].recordHash;
            Leg[] calldata legs = orders[o].legs;
            uint64[LANES] storage book = _liveBook(account);
            int256 cashDelta = 0;
            legCount += legs.length;
            for (uint256 i = 0; i < legs.length; ++i) {
                Leg calldata leg = legs[i];
                uint16 asset = leg.asset;
                int256 quanta = leg.quanta;
                if (asset >= fills.length) revert UnregisteredAsset(asset);
                Fill memory f = fills[asset];
                if (!f.declared) revert UndeclaredAsset(asset);
                uint256 lane = FIRST_ASSET_LANE + asset;
                uint256 held = book[lane];
                uint256 cash;
                // Unchecked: |quanta| < 2^63 and at most MAX_BATCH_LEGS legs keep
                // every sum far below 2^256; `f.buyCash` and `f.sellCash` are
                // below 2^128 (see `_fill`), so products stay below 2^192.
                unchecked {
                    if (quanta > 0) {
                        // Safe: quanta > 0 and came from an int64.
                        // forge-lint: disable-next-line(unsafe-typecast)
                        uint256 q = uint256(quanta);
                        uint256 seen = f.boughtSeen + q;
                        f.boughtSeen = seen;
                        if (seen > f.bought) revert TotalsMismatch(asset, f.bought, seen, f.sold, f.soldSeen);
                        cash = (q * f.buyCash + f.bought - 1) / f.bought; // the buyer's share rounds up
                        held += q;
                        if (held > type(uint64).max) revert SafeCast.SafeCastOverflowedUintDowncast(64, held);
                        // Safe: cash < 2^192 (see above).
                        // forge-lint: disable-next-line(unsafe-typecast)
                        cashDelta -= int256(cash);
                        paid += cash;
                    } else {
                        if (quanta == 0) revert ZeroQuantity(o, i);
                        // Safe: quanta < 0 and came from an int64.
                        // forge-lint: disable-next-line(unsafe-typecast)
                        uint256 q = uint256(-quanta);
                        uint256 seen = f.soldSeen + q;
                        f.soldSeen = seen;
                        if (seen > f.sold) revert TotalsMismatch(asset, f.bought, f.boughtSeen, f.sold, seen);
                        if (held < q) revert InsufficientUnits(account, asset, held, q);
                        cash = q * f.sellCash / f.sold; // the seller's share rounds down
                        held -= q;
                        // Safe: cash < 2^192 (see above).
                        // forge-lint: disable-next-line(unsafe-typecast)
                        cashDelta += int256(cash);
                        received += cash;
                    }
                }
                // Safe: held <= type(uint64).max: checked on the buy side, decreased on the sell side.
                // forge-lint: disable-next-line(unsafe-typecast)
                book[lane] = uint64(held);
                emit LegSettled(account, recordHash, asset, quanta, cash);
            }
            _applyCash(account, book, cashDelta);
        }
    }

    function _applyCash(uint64 account, uint64[LANES] storage book, int256 delta) private {
        if (delta == 0) return;
        uint256 cash = book[CASH_LANE];
        if (delta < 0) {
            // Safe: delta < 0 and is a sum of values below 2^192.
            // forge-lint: disable-next-line(unsafe-typecast)
            uint256 debit = uint256(-delta);
            if (cash < debit) revert InsufficientCash(account, cash, debit);
            // Safe: cash >= debit and cash came from a uint64 lane.
            // forge-lint: disable-next-line(unsafe-typecast)
            book[CASH_LANE] = uint64(cash - debit);
        } else {
            // Safe: delta > 0 here.
            // forge-lint: disable-next-line(unsafe-typecast)
            book[CASH_LANE] = (cash + uint256(delta)).toUint64();
        }
    }

    function _feedPrice(uint16 index, Asset memory a) private view returns (uint256) {
        (, int256 answer,, uint256 updatedAt,) = a.feed.latestRoundData();
        if (answer <= 0) revert BadPrice(index, answer);
        if (updatedAt + a.maxFeedAge < block.timestamp) revert StaleFeed(index, updatedAt, a.maxFeedAge);
        // Safe: answer > 0.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint256(answer);
    }

    /// @dev Cash base units worth `quanta` of an asset at a feed price.
    function _value(Asset memory a, uint256 quanta, uint256 price, Math.Rounding rounding)
        private
        view
        returns (uint256)
    {
        return Math.mulDiv(
            quanta * a.quantum, price * 10 ** cashDecimals, 10 ** (uint256(a.tokenDecimals) + a.feedDecimals), rounding
        );
    }

    /// @dev Average price, in feed decimals, of `cash` paid for `quanta`; 0 when nothing traded.
    function _averagePrice(Asset memory a, uint256 cash, uint256 quanta) private view returns (uint256) {
        if (quanta == 0) return 0;
        return Math.mulDiv(
            cash, 10 ** (uint256(a.tokenDecimals) + a.feedDecimals), quanta * a.quantum * 10 ** cashDecimals
        );
    }
}
