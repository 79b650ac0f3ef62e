// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";

/// @notice Minimal pausable UUPS implementation for breakglass tests: the owner (set in
/// `initialize`) may pause, unpause and upgrade via `upgradeToAndCall(address,bytes)`.
contract UUPSPool is Initializable, UUPSUpgradeable {
    address public owner;
    bool private _paused;

    event Paused(address account);
    event Unpaused(address account);

    error NotOwner(address caller);
    error EnforcedPause();
    error ExpectedPause();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    function initialize(address owner_) external initializer {
        owner = owner_;
    }

    function pause() external onlyOwner {
        if (_paused) revert EnforcedPause();
        _paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyOwner {
        if (!_paused) revert ExpectedPause();
        _paused = false;
        emit Unpaused(msg.sender);
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function version() external pure virtual returns (string memory) {
        return "1";
    }

    function _authorizeUpgrade(address) internal view override onlyOwner {}
}
