// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a variable deleted from the middle (unsafe: c moves onto b).
contract V1 {
    uint256 public a;
    uint256 public b;
    uint256 public c;
}

contract V2 {
    uint256 public a;
    uint256 public c;
}
