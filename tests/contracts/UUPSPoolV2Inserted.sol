// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";

/// @notice An UNSAFE upgrade target for UUPSPool (issue 18's test): a variable inserted between `owner`
/// and `_paused`, so `_paused` moves from slot 0 (offset 20) to slot 2 and reads the wrong data.
contract UUPSPoolV2Inserted is Initializable, UUPSUpgradeable {
    address public owner;
    uint256 public fee;
    bool private _paused;

    function pause() external {
        require(msg.sender == owner, "not owner");
        _paused = true;
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function version() external pure returns (string memory) {
        return "2";
    }

    function _authorizeUpgrade(address) internal view override {
        require(msg.sender == owner, "not owner");
    }
}
