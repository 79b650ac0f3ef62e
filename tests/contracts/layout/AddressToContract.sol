// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: address -> a contract type (safe: a contract type is stored as its address).
interface IToken {
    function balanceOf(address) external view returns (uint256);
}

contract V1 {
    address public token;
    uint256 public b;
}

contract V2 {
    IToken public token;
    uint256 public b;
}
