// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a variable inserted into the unused half of a packed slot (safe per upgrades-core:
// it overlaps nothing that existed).
contract V1 {
    uint128 public a;
    uint256 public b;
}

contract V2 {
    uint128 public a;
    uint128 public packed;
    uint256 public b;
}
