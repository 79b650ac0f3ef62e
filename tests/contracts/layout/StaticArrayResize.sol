// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a static array grows in place (unsafe: what follows it moves).
contract V1 {
    uint256[3] public prices;
    uint256 public last;
}

contract V2 {
    uint256[4] public prices;
    uint256 public last;
}
