// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a __gap shrinks by exactly the slots the new variables take (safe).
contract V1 {
    uint256 public a;
    uint256[49] private __gap;
}

contract V2 {
    uint256 public a;
    uint256 public b;
    address public c;
    uint256[47] private __gap;
}
