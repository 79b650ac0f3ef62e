// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a member appended to a struct held directly in storage (unsafe: what follows moves).
contract V1 {
    struct Config {
        uint256 fee;
    }
    Config public config;
    uint256 public b;
}

contract V2 {
    struct Config {
        uint256 fee;
        uint256 cap;
    }
    Config public config;
    uint256 public b;
}
