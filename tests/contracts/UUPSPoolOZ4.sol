// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Initializable as InitializableV4} from "@openzeppelin/contracts-v4/proxy/utils/Initializable.sol";
import {UUPSUpgradeable as UUPSUpgradeableV4} from "@openzeppelin/contracts-v4/proxy/utils/UUPSUpgradeable.sol";

/// @notice A pausable UUPS implementation on OpenZeppelin 4.9 (the shape many deployed protocols still
/// run): upgrades by `upgradeTo(address)` as well as `upgradeToAndCall(address,bytes)`.
contract UUPSPoolOZ4 is InitializableV4, UUPSUpgradeableV4 {
    address public owner;
    bool private _paused;

    error NotOwner(address caller);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    function initialize(address owner_) external initializer {
        owner = owner_;
    }

    function pause() external onlyOwner {
        _paused = true;
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function version() external pure virtual returns (string memory) {
        return "1";
    }

    function _authorizeUpgrade(address) internal view override onlyOwner {}
}

/// @notice Its audited successor.
contract UUPSPoolOZ4V2 is UUPSPoolOZ4 {
    function version() external pure override returns (string memory) {
        return "2";
    }
}
