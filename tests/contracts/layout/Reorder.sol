// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: two variables swapped (unsafe).
contract V1 {
    uint256 public a;
    address public b;
}

contract V2 {
    address public b;
    uint256 public a;
}
