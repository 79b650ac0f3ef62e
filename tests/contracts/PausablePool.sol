// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";

/// @notice Minimal pausable pool used as a proxy implementation in breakglass tests.
/// No constructor state: everything is set through `initialize` so it works behind a proxy.
/// Storage layout (must stay identical in later versions):
///   slot 0: owner (address) | paused (bool)
///   slot 1: deposits (uint256)
contract PausablePool is Initializable {
    address public owner;
    bool private _paused;
    uint256 public deposits;

    event Paused(address account);
    event Unpaused(address account);
    event Deposited(address indexed from, uint256 amount);

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

    /// @notice Accepts ETH while not paused (lets tests observe the effect of a pause).
    function deposit() external payable {
        if (_paused) revert EnforcedPause();
        deposits += msg.value;
        emit Deposited(msg.sender, msg.value);
    }

    function version() external pure virtual returns (string memory) {
        return "1";
    }
}
