// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {UUPSPool} from "./UUPSPool.sol";

/// @notice A layout-safe upgrade target for UUPSPool (issue 18's test): one variable appended after the
/// existing ones (slot 1). Safe by layout, unless the live proxy already holds data in that slot.
contract UUPSPoolV3Appended is UUPSPool {
    uint256 public limit;

    function version() external pure override returns (string memory) {
        return "3";
    }
}
