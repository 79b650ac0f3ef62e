// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {UUPSPool} from "./UUPSPool.sol";

/// @notice Upgrade target for UUPSPool: same storage layout, only `version()` differs.
contract UUPSPoolV2 is UUPSPool {
    function version() external pure override returns (string memory) {
        return "2";
    }
}
