// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: appending a variable after all existing ones (safe).
contract V1 {
    uint256 public a;
    address public b;
}

contract V2 {
    uint256 public a;
    address public b;
    uint256 public c;
}
