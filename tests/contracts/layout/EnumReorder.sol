// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: enum members reordered (unsafe per upgrades-core: stored values change meaning).
contract V1 {
    enum Status { Active, Paused, Closed }
    Status public status;
}

contract V2 {
    enum Status { Paused, Active, Closed }
    Status public status;
}
