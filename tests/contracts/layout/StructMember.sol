// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a struct member changes type (unsafe).
contract V1 {
    struct Position {
        uint256 amount;
        uint256 debt;
    }
    Position public position;
    uint256 public after_;
}

contract V2 {
    struct Position {
        uint256 amount;
        address debt;
    }
    Position public position;
    uint256 public after_;
}
