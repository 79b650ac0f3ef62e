// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a variable inserted between two existing ones (unsafe: b moves).
contract V1 {
    uint256 public a;
    uint256 public b;
}

contract V2 {
    uint256 public a;
    uint256 public inserted;
    uint256 public b;
}
