// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: bool -> uint8 with the retype declared (safe: same slot, offset and size).
contract V1 {
    bool public flag;
    uint256 public b;
}

contract V2 {
    /// @custom:oz-retyped-from bool
    uint8 public flag;
    uint256 public b;
}
