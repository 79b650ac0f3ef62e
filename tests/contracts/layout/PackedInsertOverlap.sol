// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a variable inserted into a packed slot, pushing a neighbour (unsafe).
contract V1 {
    uint8 public a;
    uint8 public b;
}

contract V2 {
    uint8 public a;
    uint8 public inserted;
    uint8 public b;
}
