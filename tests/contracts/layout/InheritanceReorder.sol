// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: the order of base contracts changes (unsafe: their variables swap slots).
contract A {
    uint256 public a;
}

contract B {
    address public b;
}

contract V1 is A, B {
    uint256 public own;
}

contract V2 is B, A {
    uint256 public own;
}
