// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a variable renamed without a declaration (unsafe: a rename must be declared).
contract V1 {
    uint256 public a;
    address public admin;
}

contract V2 {
    uint256 public a;
    address public guardian;
}
