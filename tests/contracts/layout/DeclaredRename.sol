// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a variable renamed with the rename declared (safe; upgrades-core reads the annotation,
// breakglass a declared rename).
contract V1 {
    uint256 public a;
    address public admin;
}

contract V2 {
    uint256 public a;
    /// @custom:oz-renamed-from admin
    address public guardian;
}
