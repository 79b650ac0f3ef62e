// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a mapping key type changes (unsafe: every entry moves).
contract V1 {
    mapping(address => uint256) public balances;
}

contract V2 {
    mapping(uint256 => uint256) public balances;
}
