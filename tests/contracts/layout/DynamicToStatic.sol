// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a dynamic array becomes a static one (unsafe).
contract V1 {
    uint256[] public list;
    uint256 public b;
}

contract V2 {
    uint256[2] public list;
    uint256 public b;
}
