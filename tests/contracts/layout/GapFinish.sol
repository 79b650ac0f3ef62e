// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a __gap entirely replaced by variables ending on the same slot (safe).
contract V1 {
    uint256 public a;
    uint256[2] private __gap;
}

contract V2 {
    uint256 public a;
    uint256 public b;
    uint256 public c;
}
