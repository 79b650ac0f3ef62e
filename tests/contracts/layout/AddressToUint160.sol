// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: address -> uint160 (unsafe per upgrades-core: a different type, though the same size).
contract V1 {
    address public owner;
}

contract V2 {
    uint160 public owner;
}
