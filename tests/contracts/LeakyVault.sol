// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice A deliberately exploitable ETH vault for breakglass's `watch` tests (issue 20): anyone may
/// withdraw anything (the bug), and only the owner (the Safe) may pause and unpause it. Deposits and
/// withdrawals revert while paused (OpenZeppelin's Pausable: `EnforcedPause()`).
/// Not a proxy implementation: the owner is set in the constructor.
contract LeakyVault is Pausable {
    address public owner;

    event Deposited(address indexed from, uint256 amount);
    event Withdrawn(address indexed to, uint256 amount);

    error NotOwner(address caller);
    error TransferFailed();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor(address owner_) {
        owner = owner_;
    }

    function deposit() external payable whenNotPaused {
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice The exploitable bug: no access control, no accounting.
    function withdraw(uint256 amount) external whenNotPaused {
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, amount);
    }

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    function version() external pure returns (string memory) {
        return "1";
    }
}
