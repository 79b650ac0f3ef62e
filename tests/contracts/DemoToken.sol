// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A plain OpenZeppelin 5 ERC-20 for breakglass's `watch` tests (issue 20): the deployer gets the
/// whole supply; a vault's token balance is what `balance_drop` with `token = …` watches.
contract DemoToken is ERC20 {
    constructor(uint256 supply) ERC20("Demo", "DEMO") {
        _mint(msg.sender, supply);
    }
}
