// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: two variables added but the __gap shrunk by one only (unsafe: it ends one slot later than before).
contract V1 {
    uint256 public a;
    uint256[49] private __gap;
}

contract V2 {
    uint256 public a;
    uint256 public b;
    uint256 public c;
    uint256[48] private __gap;
}
