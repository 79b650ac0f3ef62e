// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Issue 18 fixture: a field appended to an ERC-7201 namespace (safe).
contract V1 {
    /// @custom:storage-location erc7201:example.main
    struct MainStorage {
        uint256 x;
        address owner;
    }
    uint256 public a;

    // keccak256(abi.encode(uint256(keccak256("example.main")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant MAIN_STORAGE_LOCATION = 0x183a6125c38840424c4a85fa12bab2ab606c4b6d0e7cc73c0c06ba5300eab500;

    function _getMainStorage() private pure returns (MainStorage storage $) {
        assembly {
            $.slot := MAIN_STORAGE_LOCATION
        }
    }

    function x() external view returns (uint256) {
        return _getMainStorage().x;
    }
}

contract V2 {
    /// @custom:storage-location erc7201:example.main
    struct MainStorage {
        uint256 x;
        address owner;
        uint256 y;
    }
    uint256 public a;

    // keccak256(abi.encode(uint256(keccak256("example.main")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant MAIN_STORAGE_LOCATION = 0x183a6125c38840424c4a85fa12bab2ab606c4b6d0e7cc73c0c06ba5300eab500;

    function _getMainStorage() private pure returns (MainStorage storage $) {
        assembly {
            $.slot := MAIN_STORAGE_LOCATION
        }
    }

    function y() external view returns (uint256) {
        return _getMainStorage().y;
    }
}
