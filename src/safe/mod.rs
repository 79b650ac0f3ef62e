//! Safe (Gnosis Safe) 1.3.0 / 1.4.1: the SafeTx struct, its EIP-712 hashes, MultiSend batches, and the
//! `execTransaction` calldata. Hashes use alloy's EIP-712 support (`SolStruct`, `Eip712Domain`); see
//! PROTOCOLS.md §5.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolCall, SolStruct};
use serde::{Deserialize, Serialize};

sol! {
    /// The struct a Safe owner signs (EIP-712), exactly as in Safe.sol.
    #[derive(Debug, PartialEq, Eq)]
    struct SafeTx {
        address to;
        uint256 value;
        bytes data;
        uint8 operation;
        uint256 safeTxGas;
        uint256 baseGas;
        uint256 gasPrice;
        address gasToken;
        address refundReceiver;
        uint256 nonce;
    }

    /// Safe's entry point.
    function execTransaction(
        address to,
        uint256 value,
        bytes data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        bytes signatures
    ) external payable returns (bool success);

    /// MultiSend / MultiSendCallOnly.
    function multiSend(bytes transactions) external payable;

    /// Safe's nonce.
    function nonce() external view returns (uint256);
}

/// CALL or DELEGATECALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// 0: CALL.
    Call,
    /// 1: DELEGATECALL: the callee's code runs with the caller's storage.
    DelegateCall,
}

impl Operation {
    /// From the wire value; `None` for anything but 0 and 1.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Operation::Call),
            1 => Some(Operation::DelegateCall),
            _ => None,
        }
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Operation::Call => 0,
            Operation::DelegateCall => 1,
        }
    }
}

/// A Safe transaction's fields (everything the owners sign).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafeTxFields {
    /// Target.
    pub to: Address,
    /// Wei sent.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
    /// CALL or DELEGATECALL.
    pub operation: Operation,
    /// Gas for the inner call (0 = all).
    pub safe_tx_gas: U256,
    /// Gas paid for outside the inner call (refunds).
    pub base_gas: U256,
    /// Refund gas price: anything but 0 pays the refund receiver from the Safe.
    pub gas_price: U256,
    /// Refund token (0 = ETH).
    pub gas_token: Address,
    /// Refund receiver (0 = tx.origin).
    pub refund_receiver: Address,
    /// Safe nonce.
    pub nonce: U256,
}

/// The hashes a guardian compares with the Ledger screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafeHashes {
    /// `keccak256(abi.encode(DOMAIN_TYPEHASH, chainId, safe))`: the Ledger's "Domain hash".
    pub domain_separator: B256,
    /// `hashStruct(SafeTx)`: the Ledger's "Message hash".
    pub message_hash: B256,
    /// `keccak256(0x1901 ‖ domain ‖ message)`: what the owners' signatures are over.
    pub safe_tx_hash: B256,
}

impl SafeTxFields {
    /// A SafeTx with every gas and refund field zero, as breakglass composes them.
    pub fn new(to: Address, value: U256, data: Bytes, operation: Operation, nonce: U256) -> Self {
        Self {
            to,
            value,
            data,
            operation,
            safe_tx_gas: U256::ZERO,
            base_gas: U256::ZERO,
            gas_price: U256::ZERO,
            gas_token: Address::ZERO,
            refund_receiver: Address::ZERO,
            nonce,
        }
    }

    fn sol(&self) -> SafeTx {
        SafeTx {
            to: self.to,
            value: self.value,
            data: self.data.clone(),
            operation: self.operation.as_u8(),
            safeTxGas: self.safe_tx_gas,
            baseGas: self.base_gas,
            gasPrice: self.gas_price,
            gasToken: self.gas_token,
            refundReceiver: self.refund_receiver,
            nonce: self.nonce,
        }
    }

    /// The EIP-712 hashes for the Safe at `safe` on `chain_id` (Safe ≥ 1.3.0 domain).
    pub fn hashes(&self, chain_id: u64, safe: Address) -> SafeHashes {
        self.hashes_in(SafeDomain::ChainId, chain_id, safe)
    }

    /// The EIP-712 hashes under the typed-data shape of a Safe version ([`SafeDomain`]).
    pub fn hashes_in(&self, shape: SafeDomain, chain_id: u64, safe: Address) -> SafeHashes {
        let domain = match shape {
            SafeDomain::ChainId => domain(chain_id, safe),
            SafeDomain::NoChainId | SafeDomain::NoChainIdDataGas => Eip712Domain {
                verifying_contract: Some(safe),
                ..Default::default()
            },
        };
        if shape == SafeDomain::NoChainIdDataGas {
            let s = v100::SafeTx {
                to: self.to,
                value: self.value,
                data: self.data.clone(),
                operation: self.operation.as_u8(),
                safeTxGas: self.safe_tx_gas,
                dataGas: self.base_gas,
                gasPrice: self.gas_price,
                gasToken: self.gas_token,
                refundReceiver: self.refund_receiver,
                nonce: self.nonce,
            };
            return SafeHashes {
                domain_separator: domain.separator(),
                message_hash: s.eip712_hash_struct(),
                safe_tx_hash: s.eip712_signing_hash(&domain),
            };
        }
        let s = self.sol();
        SafeHashes {
            domain_separator: domain.separator(),
            message_hash: s.eip712_hash_struct(),
            safe_tx_hash: s.eip712_signing_hash(&domain),
        }
    }

    /// `execTransaction(...)` calldata with the given packed signatures.
    pub fn exec_calldata(&self, signatures: Bytes) -> Bytes {
        execTransactionCall {
            to: self.to,
            value: self.value,
            data: self.data.clone(),
            operation: self.operation.as_u8(),
            safeTxGas: self.safe_tx_gas,
            baseGas: self.base_gas,
            gasPrice: self.gas_price,
            gasToken: self.gas_token,
            refundReceiver: self.refund_receiver,
            signatures,
        }
        .abi_encode()
        .into()
    }
}

/// The Safe ≥ 1.3.0 EIP-712 domain: `EIP712Domain(uint256 chainId,address verifyingContract)`.
pub fn domain(chain_id: u64, safe: Address) -> Eip712Domain {
    Eip712Domain {
        chain_id: Some(U256::from(chain_id)),
        verifying_contract: Some(safe),
        ..Default::default()
    }
}

/// One entry of a MultiSend batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiSendEntry {
    /// CALL or DELEGATECALL (breakglass only composes CALL).
    pub operation: Operation,
    /// Target.
    pub to: Address,
    /// Wei.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
}

/// Packs entries as MultiSend expects: `op(1) ‖ to(20) ‖ value(32) ‖ len(32) ‖ data` each.
pub fn pack_multisend(entries: &[MultiSendEntry]) -> Bytes {
    let mut out = Vec::new();
    for e in entries {
        out.push(e.operation.as_u8());
        out.extend_from_slice(e.to.as_slice());
        out.extend_from_slice(&e.value.to_be_bytes::<32>());
        out.extend_from_slice(&U256::from(e.data.len()).to_be_bytes::<32>());
        out.extend_from_slice(&e.data);
    }
    out.into()
}

/// `multiSend(packed)` calldata.
pub fn multisend_calldata(entries: &[MultiSendEntry]) -> Bytes {
    multiSendCall {
        transactions: pack_multisend(entries),
    }
    .abi_encode()
    .into()
}

/// The entries of `multiSend(packed)` calldata, or `None` when it is not that call or its batch is
/// malformed.
pub fn multisend_entries(calldata: &[u8]) -> Option<Vec<MultiSendEntry>> {
    let call = multiSendCall::abi_decode(calldata).ok()?;
    unpack_multisend(&call.transactions).ok()
}

/// A malformed MultiSend batch, with the byte offset (within the packed bytes) where it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MultiSend entry {index} at byte {offset}: {reason}")]
pub struct MultiSendError {
    /// Entry index.
    pub index: usize,
    /// Byte offset within the packed bytes.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

/// Unpacks a MultiSend batch. Every byte must belong to an entry; an operation other than 0 or 1 is an
/// error (MultiSend itself would revert).
pub fn unpack_multisend(packed: &[u8]) -> Result<Vec<MultiSendEntry>, MultiSendError> {
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < packed.len() {
        let index = out.len();
        let err = |offset: usize, reason: String| MultiSendError {
            index,
            offset,
            reason,
        };
        let header = packed.get(i..i + 85).ok_or_else(|| {
            err(
                i,
                format!(
                    "truncated header: {} bytes left, an entry needs at least 85",
                    packed.len() - i
                ),
            )
        })?;
        let operation = Operation::from_u8(header[0]).ok_or_else(|| {
            err(
                i,
                format!(
                    "operation byte {:#04x} is neither 0 (CALL) nor 1 (DELEGATECALL)",
                    header[0]
                ),
            )
        })?;
        let to = Address::from_slice(&header[1..21]);
        let value = U256::from_be_slice(&header[21..53]);
        let len = U256::from_be_slice(&header[53..85]);
        let start = i + 85;
        let remaining = packed.len() - start;
        if len > U256::from(remaining) {
            return Err(err(
                i + 53,
                format!("data length {len} is longer than the {remaining} bytes left"),
            ));
        }
        let len = len.to::<usize>();
        out.push(MultiSendEntry {
            operation,
            to,
            value,
            data: Bytes::copy_from_slice(&packed[start..start + len]),
        });
        i = start + len;
    }
    Ok(out)
}

/// Safe 1.0.0's SafeTx: the same EIP-712 type name, with `dataGas` where later versions have `baseGas`.
mod v100 {
    alloy::sol! {
        #[derive(Debug, PartialEq, Eq)]
        struct SafeTx {
            address to;
            uint256 value;
            bytes data;
            uint8 operation;
            uint256 safeTxGas;
            uint256 dataGas;
            uint256 gasPrice;
            address gasToken;
            address refundReceiver;
            uint256 nonce;
        }
    }
}

/// The EIP-712 shape a Safe version signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafeDomain {
    /// Safe 1.3.0 and later: `EIP712Domain(uint256 chainId,address verifyingContract)`.
    #[default]
    ChainId,
    /// Safe 1.1.x and 1.2.0: `EIP712Domain(address verifyingContract)`: a signature is valid on every
    /// chain where a Safe lives at that address.
    NoChainId,
    /// Safe 1.0.0: no chain id, and the SafeTx type names `dataGas` where later versions have `baseGas`.
    NoChainIdDataGas,
}

impl SafeDomain {
    /// Whether this is the current (≥ 1.3.0) shape.
    pub fn is_chain_id(&self) -> bool {
        *self == SafeDomain::ChainId
    }
}

/// Safe signature kinds (PROTOCOLS.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// ECDSA over safeTxHash, v 27/28 (Ledger EIP-712 hashed mode, keystore).
    Eip712,
    /// personal_sign of safeTxHash, v 31/32.
    EthSign,
    /// `approveHash` on chain (or the executor is the owner), v 1.
    ApprovedHash,
    /// A guardian's signature of an EIP-1559 transaction (not a Safe signature).
    Transaction,
}

/// Packs owner signatures for `execTransaction`: sorted by owner address ascending, 65 bytes each.
pub fn pack_signatures(mut sigs: Vec<(Address, [u8; 65])>) -> Bytes {
    sigs.sort_by_key(|(owner, _)| *owner);
    let mut out = Vec::with_capacity(sigs.len() * 65);
    for (_, s) in sigs {
        out.extend_from_slice(&s);
    }
    out.into()
}

/// The selector of `execTransaction`.
pub const EXEC_TRANSACTION_SELECTOR: [u8; 4] = execTransactionCall::SELECTOR;
/// The selector of `multiSend(bytes)`.
pub const MULTISEND_SELECTOR: [u8; 4] = multiSendCall::SELECTOR;
