// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {PausablePool} from "./PausablePool.sol";

/// @notice Upgrade target for PausablePool: same storage layout, only `version()` differs.
contract PausablePoolV2 is PausablePool {
    function version() external pure override returns (string memory) {
        return "2";
    }
}
