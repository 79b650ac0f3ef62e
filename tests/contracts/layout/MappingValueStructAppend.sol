// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a member appended to a struct held as a mapping value (safe: each value has room).
contract V1 {
    struct Account {
        uint256 balance;
    }
    mapping(address => Account) public accounts;
    uint256 public b;
}

contract V2 {
    struct Account {
        uint256 balance;
        uint64 nonce;
    }
    mapping(address => Account) public accounts;
    uint256 public b;
}
