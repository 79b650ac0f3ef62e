//! A TimelockController operation: its calls, its id (`hashOperation` / `hashOperationBatch`) and the
//! `schedule`/`execute` calldata that carries it. Owned here, below both `bundle` (which recomputes and
//! checks them) and `compose` (which builds them), so neither imports the other for it.

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::sol;
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};

sol! {
    function schedule(address target, uint256 value, bytes data, bytes32 predecessor, bytes32 salt, uint256 delay) external;
    function scheduleBatch(address[] targets, uint256[] values, bytes[] payloads, bytes32 predecessor, bytes32 salt, uint256 delay) external;
    function execute(address target, uint256 value, bytes payload, bytes32 predecessor, bytes32 salt) external payable;
    function executeBatch(address[] targets, uint256[] values, bytes[] payloads, bytes32 predecessor, bytes32 salt) external payable;
}

/// One call of a timelock operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelockCall {
    /// Target.
    pub target: Address,
    /// Wei.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
}

/// A timelock operation that a Safe tx schedules or executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelockOp {
    /// `schedule` (the Safe tx schedules it) or `execute` (the Safe tx executes it).
    pub step: TimelockStep,
    /// The TimelockController.
    pub address: Address,
    /// The calls.
    pub calls: Vec<TimelockCall>,
    /// Predecessor operation id (zero for none).
    pub predecessor: B256,
    /// Salt.
    pub salt: B256,
    /// Delay in seconds.
    pub delay: u64,
    /// `hashOperation` / `hashOperationBatch` (recomputed by every reader).
    pub operation_id: B256,
}

/// Which timelock step a bundle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimelockStep {
    /// `schedule` / `scheduleBatch`.
    Schedule,
    /// `execute` / `executeBatch`.
    Execute,
}

/// The timelock operation id of a set of calls (`hashOperation` for one, `hashOperationBatch` for many
/// when `batch`).
pub fn timelock_operation_id(
    calls: &[TimelockCall],
    predecessor: B256,
    salt: B256,
    batch: bool,
) -> B256 {
    use alloy::dyn_abi::DynSolValue as V;
    let enc = if batch {
        V::Tuple(vec![
            V::Array(calls.iter().map(|c| V::Address(c.target)).collect()),
            V::Array(calls.iter().map(|c| V::Uint(c.value, 256)).collect()),
            V::Array(calls.iter().map(|c| V::Bytes(c.data.to_vec())).collect()),
            V::FixedBytes(predecessor, 32),
            V::FixedBytes(salt, 32),
        ])
    } else {
        let c = calls.first().cloned().unwrap_or(TimelockCall {
            target: Address::ZERO,
            value: U256::ZERO,
            data: Bytes::new(),
        });
        V::Tuple(vec![
            V::Address(c.target),
            V::Uint(c.value, 256),
            V::Bytes(c.data.to_vec()),
            V::FixedBytes(predecessor, 32),
            V::FixedBytes(salt, 32),
        ])
    };
    alloy::primitives::keccak256(enc.abi_encode_params())
}

/// The `schedule`/`scheduleBatch`/`execute`/`executeBatch` calldata of a timelock operation. Bundle
/// readers rebuild it and compare it with the Safe tx, so the `timelock` section cannot say one thing
/// while the Safe tx does another.
pub fn timelock_calldata(op: &TimelockOp) -> Bytes {
    let batch = op.calls.len() != 1;
    let data: Bytes = match (op.step, batch) {
        (TimelockStep::Schedule, false) => scheduleCall {
            target: op.calls[0].target,
            value: op.calls[0].value,
            data: op.calls[0].data.clone(),
            predecessor: op.predecessor,
            salt: op.salt,
            delay: U256::from(op.delay),
        }
        .abi_encode()
        .into(),
        (TimelockStep::Schedule, true) => scheduleBatchCall {
            targets: op.calls.iter().map(|c| c.target).collect(),
            values: op.calls.iter().map(|c| c.value).collect(),
            payloads: op.calls.iter().map(|c| c.data.clone()).collect(),
            predecessor: op.predecessor,
            salt: op.salt,
            delay: U256::from(op.delay),
        }
        .abi_encode()
        .into(),
        (TimelockStep::Execute, false) => executeCall {
            target: op.calls[0].target,
            value: op.calls[0].value,
            payload: op.calls[0].data.clone(),
            predecessor: op.predecessor,
            salt: op.salt,
        }
        .abi_encode()
        .into(),
        (TimelockStep::Execute, true) => executeBatchCall {
            targets: op.calls.iter().map(|c| c.target).collect(),
            values: op.calls.iter().map(|c| c.value).collect(),
            payloads: op.calls.iter().map(|c| c.data.clone()).collect(),
            predecessor: op.predecessor,
            salt: op.salt,
        }
        .abi_encode()
        .into(),
    };
    data
}
