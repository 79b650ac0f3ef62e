// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: an enum grows from 3 to 4 members, still one byte (safe).
contract V1 {
    enum Status { Active, Paused, Closed }
    Status public status;
    uint8 public next;
}

contract V2 {
    enum Status { Active, Paused, Closed, Frozen }
    Status public status;
    uint8 public next;
}
