// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: uint256 -> uint128 (unsafe: different representation).
contract V1 {
    uint256 public a;
    uint256 public b;
}

contract V2 {
    uint128 public a;
    uint256 public b;
}
