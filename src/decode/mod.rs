//! Calldata → call tree. Any transaction, from anywhere, is opened as far as it goes: Safe
//! `execTransaction`, MultiSend batches, TimelockController payloads, proxy upgrades with their init calls,
//! Safe self-administration, and every function in the manifest's ABIs. ABI decoding is alloy's
//! (`dyn-abi`); only the MultiSend packing, which is not ABI, is read here by hand.
//!
//! Two rules make the tree trustworthy:
//! - nothing is hidden: a selector no ABI knows stays in the tree as raw selector + argument bytes;
//! - every ABI payload must be the canonical encoding of what it decodes to (re-encoded and compared),
//!   so trailing bytes, dirty padding or overlapping offsets, which a legitimate encoder never produces
//!   and which different decoders read differently, are refused with their byte offset.

use crate::manifest::Manifest;
use crate::safe::{unpack_multisend, Operation, SafeTxFields};
use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::json_abi::Function;
use alloy::primitives::{hex, keccak256, Address, Bytes, B256, U256};
use serde::Serialize;
use std::sync::OnceLock;

/// How deep calls may nest (Safe → MultiSend → timelock → upgrade init …) before the input is refused.
pub const MAX_DEPTH: usize = 8;

/// Which well-known family a function belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Safe's `execTransaction`, `approveHash`.
    Safe,
    /// Safe self-administration: owners, threshold, modules, guard, fallback handler.
    SafeAdmin,
    /// MultiSend / MultiSendCallOnly.
    MultiSend,
    /// Multicall3 (`aggregate3`, `aggregate`, `tryAggregate`): a batcher Safes DELEGATECALL.
    Multicall,
    /// OZ TimelockController.
    Timelock,
    /// Proxy upgrades (UUPS, ProxyAdmin, beacon).
    Proxy,
    /// Common ownership / role / token functions, named so they cannot hide.
    Common,
    /// A function from the manifest's ABI for this contract.
    Manifest,
}

/// The functions decoded by name whatever the manifest says, with their selectors: written out so that a
/// lookup hashes nothing and parses only the function it finds (`known_selectors_are_the_signatures_hashes`
/// checks every one against keccak256 of its parsed signature; they are the published ones too).
const KNOWN: &[(Family, [u8; 4], &str)] = &[
    (Family::Safe, hex!("6a761202"), "function execTransaction(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,bytes signatures)"),
    (Family::Safe, hex!("d4d9bdcd"), "function approveHash(bytes32 hashToApprove)"),
    (Family::MultiSend, hex!("8d80ff0a"), "function multiSend(bytes transactions)"),
    (Family::Multicall, hex!("82ad56cb"), "function aggregate3((address target,bool allowFailure,bytes callData)[] calls)"),
    (Family::Multicall, hex!("252dba42"), "function aggregate((address target,bytes callData)[] calls)"),
    (Family::Multicall, hex!("bce38bd7"), "function tryAggregate(bool requireSuccess,(address target,bytes callData)[] calls)"),
    (Family::Timelock, hex!("01d5062a"), "function schedule(address target,uint256 value,bytes data,bytes32 predecessor,bytes32 salt,uint256 delay)"),
    (Family::Timelock, hex!("8f2a0bb0"), "function scheduleBatch(address[] targets,uint256[] values,bytes[] payloads,bytes32 predecessor,bytes32 salt,uint256 delay)"),
    (Family::Timelock, hex!("134008d3"), "function execute(address target,uint256 value,bytes payload,bytes32 predecessor,bytes32 salt)"),
    (Family::Timelock, hex!("e38335e5"), "function executeBatch(address[] targets,uint256[] values,bytes[] payloads,bytes32 predecessor,bytes32 salt)"),
    (Family::Timelock, hex!("c4d252f5"), "function cancel(bytes32 id)"),
    (Family::Timelock, hex!("64d62353"), "function updateDelay(uint256 newDelay)"),
    (Family::Proxy, hex!("3659cfe6"), "function upgradeTo(address newImplementation)"),
    (Family::Proxy, hex!("4f1ef286"), "function upgradeToAndCall(address newImplementation,bytes data)"),
    (Family::Proxy, hex!("9623609d"), "function upgradeAndCall(address proxy,address implementation,bytes data)"),
    (Family::Proxy, hex!("99a88ec4"), "function upgrade(address proxy,address implementation)"),
    (Family::Proxy, hex!("7eff275e"), "function changeProxyAdmin(address proxy,address newAdmin)"),
    (Family::SafeAdmin, hex!("0d582f13"), "function addOwnerWithThreshold(address owner,uint256 _threshold)"),
    (Family::SafeAdmin, hex!("f8dc5dd9"), "function removeOwner(address prevOwner,address owner,uint256 _threshold)"),
    (Family::SafeAdmin, hex!("e318b52b"), "function swapOwner(address prevOwner,address oldOwner,address newOwner)"),
    (Family::SafeAdmin, hex!("694e80c3"), "function changeThreshold(uint256 _threshold)"),
    (Family::SafeAdmin, hex!("610b5925"), "function enableModule(address module)"),
    (Family::SafeAdmin, hex!("e009cfde"), "function disableModule(address prevModule,address module)"),
    (Family::SafeAdmin, hex!("e19a9dd9"), "function setGuard(address guard)"),
    (Family::SafeAdmin, hex!("e068df37"), "function setModuleGuard(address moduleGuard)"),
    (Family::SafeAdmin, hex!("f08a0323"), "function setFallbackHandler(address handler)"),
    (Family::Common, hex!("f2fde38b"), "function transferOwnership(address newOwner)"),
    (Family::Common, hex!("715018a6"), "function renounceOwnership()"),
    (Family::Common, hex!("79ba5097"), "function acceptOwnership()"),
    (Family::Common, hex!("2f2ff15d"), "function grantRole(bytes32 role,address account)"),
    (Family::Common, hex!("d547741f"), "function revokeRole(bytes32 role,address account)"),
    (Family::Common, hex!("36568abe"), "function renounceRole(bytes32 role,address callerConfirmation)"),
    (Family::Common, hex!("095ea7b3"), "function approve(address spender,uint256 amount)"),
    (Family::Common, hex!("a9059cbb"), "function transfer(address to,uint256 amount)"),
    (Family::Common, hex!("23b872dd"), "function transferFrom(address from,address to,uint256 amount)"),
    (Family::Common, hex!("a22cb465"), "function setApprovalForAll(address operator,bool approved)"),
];

/// [`KNOWN`]'s functions, each parsed the first time a call matches it.
static KNOWN_PARSED: [OnceLock<Option<Function>>; KNOWN.len()] =
    [const { OnceLock::new() }; KNOWN.len()];

/// Parses a [`KNOWN`] signature (alloy's parser, or ours for the tuple forms it leaves to a JSON ABI).
fn parse_known(sig: &str) -> Option<Function> {
    Function::parse(sig)
        .ok()
        .or_else(|| crate::manifest::human_abi::parse_function(sig).ok())
}

/// [`KNOWN`]'s entry `i`, parsed once per process. Every entry parses (`every_known_signature_parses`);
/// one that did not would decode as unknown, as before it was parsed lazily.
fn known_fn(i: usize) -> Option<&'static Function> {
    KNOWN_PARSED[i]
        .get_or_init(|| parse_known(KNOWN[i].2))
        .as_ref()
}

/// Each known function's index, family and selector.
fn known_fns() -> impl Iterator<Item = (usize, Family, &'static [u8])> {
    KNOWN
        .iter()
        .enumerate()
        .map(|(i, (fam, sel, _))| (i, *fam, sel.as_slice()))
}

/// Where a call in the tree came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// The transaction itself (a plain transaction's call, or a Safe tx's inner call).
    Root,
    /// The inner call of an `execTransaction`.
    SafeExec,
    /// Entry `index` of a MultiSend batch.
    MultiSendEntry {
        /// Index in the batch.
        index: usize,
    },
    /// Payload `index` of a timelock operation (0 for single operations).
    TimelockPayload {
        /// Index in the batch.
        index: usize,
    },
    /// The init call an upgrade runs on the proxy (delegatecall into the new implementation).
    UpgradeInit,
}

/// One decoded argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// Parameter name (or `argN`).
    pub name: String,
    /// Solidity type.
    pub ty: String,
    /// Value.
    pub value: DynSolValue,
}

impl Serialize for Arg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Arg", 3)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("type", &self.ty)?;
        st.serialize_field("value", &crate::manifest::show_value(&self.value))?;
        st.end()
    }
}

/// What a call's data is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decoded {
    /// No calldata: a plain value transfer (or a fallback call).
    Empty,
    /// A function found in an ABI.
    Function {
        /// Which ABI.
        family: Family,
        /// The manifest contract id, when the target is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        contract: Option<String>,
        /// `name(types)`.
        signature: String,
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<Arg>,
    },
    /// A selector no known ABI has: kept visible, raw.
    Unknown {
        /// The first 4 bytes (fewer if the data is shorter).
        selector: Bytes,
        /// The rest.
        args: Bytes,
    },
}

/// A node of the call tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallNode {
    /// Position in the tree, e.g. `0`, `0.2`, `0.2.0`.
    pub path: String,
    /// How this call arose.
    pub origin: Origin,
    /// Target.
    pub to: Address,
    /// Wei.
    pub value: U256,
    /// CALL or DELEGATECALL.
    pub operation: Operation,
    /// The raw calldata.
    pub data: Bytes,
    /// Byte offset of `data` within the outermost input (for error reports and review).
    pub offset: usize,
    /// The decoded call.
    pub decoded: Decoded,
    /// For timelock operations: the operation id (`hashOperation` / `hashOperationBatch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timelock_operation_id: Option<B256>,
    /// Calls this one makes (batch entries, timelock payloads, upgrade init calls).
    pub children: Vec<CallNode>,
}

impl CallNode {
    /// The function signature, if decoded.
    pub fn signature(&self) -> Option<&str> {
        match &self.decoded {
            Decoded::Function { signature, .. } => Some(signature),
            _ => None,
        }
    }

    /// The named argument, if decoded.
    pub fn arg(&self, name: &str) -> Option<&DynSolValue> {
        match &self.decoded {
            Decoded::Function { args, .. } => {
                args.iter().find(|a| a.name == name).map(|a| &a.value)
            }
            _ => None,
        }
    }

    /// This node and all below it, depth first.
    pub fn walk(&self) -> Vec<&CallNode> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }
}

/// Malformed input: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("malformed calldata at byte {offset} (call {path}): {message}")]
pub struct DecodeError {
    /// Byte offset within the outermost input.
    pub offset: usize,
    /// The tree path of the call being decoded.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

struct Ctx<'m> {
    manifest: Option<&'m Manifest>,
}

/// Whether `selector` is one of Safe's self-administration functions (owners, threshold, modules, guard,
/// fallback handler). Checks key on the selector, never on which ABI decoded a call: a manifest ABI that
/// lists `enableModule` (or any function whose selector collides with one) must not relabel it.
pub fn is_safe_admin_selector(selector: &[u8]) -> bool {
    known_fns().any(|(_, fam, sel)| fam == Family::SafeAdmin && sel == selector)
}

pub use crate::control::control_change;

pub use crate::upgrade::UpgradeShape;

/// An upgrade call read from its bytes alone (never from the names an ABI gives its arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeCall {
    /// Which function.
    pub shape: UpgradeShape,
    /// The proxy a ProxyAdmin call upgrades (none for calls on the proxy or beacon itself).
    pub proxy: Option<Address>,
    /// The new implementation.
    pub implementation: Address,
    /// The init call (empty when none).
    pub data: Bytes,
}

/// Reads an upgrade call of any known shape from calldata.
pub fn upgrade_call(data: &[u8]) -> Option<UpgradeCall> {
    use alloy::dyn_abi::DynSolType as T;
    let sel = data.get(..4)?;
    let shape = UpgradeShape::ALL
        .into_iter()
        .find(|s| s.selector() == sel)?;
    let types = match shape {
        UpgradeShape::UpgradeToAndCall => vec![T::Address, T::Bytes],
        UpgradeShape::UpgradeTo => vec![T::Address],
        UpgradeShape::UpgradeAndCall => vec![T::Address, T::Address, T::Bytes],
        UpgradeShape::Upgrade => vec![T::Address, T::Address],
    };
    let DynSolValue::Tuple(v) = T::Tuple(types).abi_decode_params(&data[4..]).ok()? else {
        return None;
    };
    let addr = |i: usize| as_address(v.get(i));
    let bytes = |i: usize| as_bytes(v.get(i)).unwrap_or_default();
    Some(match shape {
        UpgradeShape::UpgradeToAndCall => UpgradeCall {
            shape,
            proxy: None,
            implementation: addr(0)?,
            data: bytes(1),
        },
        UpgradeShape::UpgradeTo => UpgradeCall {
            shape,
            proxy: None,
            implementation: addr(0)?,
            data: Bytes::new(),
        },
        UpgradeShape::UpgradeAndCall => UpgradeCall {
            shape,
            proxy: Some(addr(0)?),
            implementation: addr(1)?,
            data: bytes(2),
        },
        UpgradeShape::Upgrade => UpgradeCall {
            shape,
            proxy: Some(addr(0)?),
            implementation: addr(1)?,
            data: Bytes::new(),
        },
    })
}

fn find_function(
    m: Option<&Manifest>,
    to: &Address,
    selector: &[u8],
) -> Option<(Family, Option<String>, Function)> {
    // Safe administration is always decoded as what the Safe will run, whatever a manifest ABI says.
    if let Some((i, fam, _)) =
        known_fns().find(|(_, fam, sel)| *fam == Family::SafeAdmin && *sel == selector)
    {
        let contract = m.and_then(|m| m.contract_at(to)).map(|c| c.id.clone());
        if let Some(f) = known_fn(i) {
            return Some((fam, contract, f.clone()));
        }
    }
    if let Some(c) = m.and_then(|m| m.contract_at(to)) {
        if let Some(f) = c
            .abi
            .functions()
            .find(|f| f.selector().as_slice() == selector)
        {
            return Some((Family::Manifest, Some(c.id.clone()), f.clone()));
        }
    }
    let contract = m.and_then(|m| m.contract_at(to)).map(|c| c.id.clone());
    known_fns()
        .find(|(_, _, sel)| *sel == selector)
        .and_then(|(i, fam, _)| Some((fam, contract, known_fn(i)?.clone())))
}

fn as_address(v: Option<&DynSolValue>) -> Option<Address> {
    match v {
        Some(DynSolValue::Address(a)) => Some(*a),
        _ => None,
    }
}
fn as_uint(v: Option<&DynSolValue>) -> Option<U256> {
    match v {
        Some(DynSolValue::Uint(u, _)) => Some(*u),
        _ => None,
    }
}
fn as_bytes(v: Option<&DynSolValue>) -> Option<Bytes> {
    match v {
        Some(DynSolValue::Bytes(b)) => Some(Bytes::copy_from_slice(b)),
        _ => None,
    }
}
fn as_array(v: Option<&DynSolValue>) -> Option<&[DynSolValue]> {
    match v {
        Some(DynSolValue::Array(a)) => Some(a),
        _ => None,
    }
}

/// A decoded call's arguments, with where each `bytes` argument starts in the outermost input.
struct ArgsView<'a> {
    args: &'a [Arg],
    function: &'a Function,
    body: &'a [u8],
    args_at: usize,
}

impl ArgsView<'_> {
    fn get(&self, n: &str) -> Option<&DynSolValue> {
        self.args.iter().find(|a| a.name == n).map(|a| &a.value)
    }

    fn param(&self, n: &str) -> Option<usize> {
        self.function.inputs.iter().position(|p| p.name == n)
    }

    /// Where a `bytes` argument's content starts (the encoding is canonical, checked before, so the head
    /// words can be followed; on any surprise fall back to the arguments' start).
    fn bytes_at(&self, n: &str) -> usize {
        self.param(n)
            .and_then(|i| bytes_param_at(self.body, i))
            .map_or(self.args_at, |o| self.args_at + o)
    }

    /// Where element `j` of a `bytes[]` argument starts.
    fn elem_at(&self, n: &str, j: usize) -> usize {
        self.param(n)
            .and_then(|i| bytes_array_elem_at(self.body, i, j))
            .map_or(self.args_at, |o| self.args_at + o)
    }
}

/// A call that a call makes, before it is decoded.
struct Child {
    origin: Origin,
    to: Address,
    value: U256,
    operation: Operation,
    data: Bytes,
    offset: usize,
}

/// What a family's extractor finds in a call: its children, and a timelock operation id.
#[derive(Default)]
struct Extracted {
    children: Vec<Child>,
    timelock_operation_id: Option<B256>,
}

/// A malformed argument: byte offset and message.
type ExtractError = (usize, String);

/// `execTransaction`: the Safe transaction inside.
fn exec_transaction_child(v: &ArgsView<'_>) -> Result<Extracted, ExtractError> {
    let op_raw = as_uint(v.get("operation")).unwrap_or_default();
    let op = u8::try_from(op_raw)
        .ok()
        .and_then(Operation::from_u8)
        .ok_or_else(|| {
            (
                v.args_at + 96,
                format!("operation {op_raw} is neither 0 (CALL) nor 1 (DELEGATECALL)"),
            )
        })?;
    Ok(Extracted {
        children: vec![Child {
            origin: Origin::SafeExec,
            to: as_address(v.get("to")).unwrap_or_default(),
            value: as_uint(v.get("value")).unwrap_or_default(),
            operation: op,
            data: as_bytes(v.get("data")).unwrap_or_default(),
            offset: v.bytes_at("data"),
        }],
        timelock_operation_id: None,
    })
}

/// `multiSend`: the packed entries (not ABI: read by hand in `safe::unpack_multisend`).
fn multisend_children(v: &ArgsView<'_>) -> Result<Extracted, ExtractError> {
    let packed = as_bytes(v.get("transactions")).unwrap_or_default();
    // Canonical encoding of (bytes): offset word, length word, then the bytes.
    let packed_at = v.args_at + 64;
    let entries = unpack_multisend(&packed).map_err(|e| (packed_at + e.offset, e.to_string()))?;
    let mut entry_at = packed_at;
    let mut children = Vec::with_capacity(entries.len());
    for (i, e) in entries.into_iter().enumerate() {
        let len = e.data.len();
        children.push(Child {
            origin: Origin::MultiSendEntry { index: i },
            to: e.to,
            value: e.value,
            operation: e.operation,
            data: e.data,
            offset: entry_at + 85,
        });
        entry_at += 85 + len;
    }
    Ok(Extracted {
        children,
        timelock_operation_id: None,
    })
}

/// Multicall3 `aggregate3` / `aggregate` / `tryAggregate`: each call, in order.
fn multicall_children(v: &ArgsView<'_>) -> Result<Extracted, ExtractError> {
    let calls = as_array(v.get("calls")).unwrap_or_default();
    let mut children = Vec::with_capacity(calls.len());
    for (i, c) in calls.iter().enumerate() {
        let DynSolValue::Tuple(fields) = c else {
            return Err((v.args_at, format!("Multicall3 call {i} is not a tuple")));
        };
        // (target, callData) or (target, allowFailure, callData): target first, callData last.
        children.push(Child {
            origin: Origin::MultiSendEntry { index: i },
            to: as_address(fields.first()).unwrap_or_default(),
            value: U256::ZERO,
            operation: Operation::Call,
            data: as_bytes(fields.last()).unwrap_or_default(),
            offset: v.args_at,
        });
    }
    Ok(Extracted {
        children,
        timelock_operation_id: None,
    })
}

/// Whether a Multicall3 batch lets calls fail without reverting (`aggregate3` with `allowFailure`,
/// `tryAggregate(false, …)`): a pause that fails would leave the batch "successful".
pub fn multicall_allows_failure(node: &CallNode) -> Vec<usize> {
    let Decoded::Function {
        family: Family::Multicall,
        name,
        args,
        ..
    } = &node.decoded
    else {
        return Vec::new();
    };
    let get = |n: &str| args.iter().find(|a| a.name == n).map(|a| &a.value);
    match name.as_str() {
        "tryAggregate" => match get("requireSuccess") {
            Some(DynSolValue::Bool(false)) => (0..node.children.len()).collect(),
            _ => Vec::new(),
        },
        "aggregate3" => as_array(get("calls"))
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                matches!(c, DynSolValue::Tuple(f) if matches!(f.get(1), Some(DynSolValue::Bool(true))))
            })
            .map(|(i, _)| i)
            .collect(),
        _ => Vec::new(),
    }
}

/// `schedule` / `execute`: one payload, and the operation id (`hashOperation`).
fn timelock_single_child(v: &ArgsView<'_>) -> Result<Extracted, ExtractError> {
    let payload = as_bytes(v.get("data").or_else(|| v.get("payload"))).unwrap_or_default();
    let target = as_address(v.get("target")).unwrap_or_default();
    let value = as_uint(v.get("value")).unwrap_or_default();
    let id_input = DynSolValue::Tuple(vec![
        DynSolValue::Address(target),
        DynSolValue::Uint(value, 256),
        DynSolValue::Bytes(payload.to_vec()),
        v.get("predecessor")
            .cloned()
            .unwrap_or(DynSolValue::FixedBytes(B256::ZERO, 32)),
        v.get("salt")
            .cloned()
            .unwrap_or(DynSolValue::FixedBytes(B256::ZERO, 32)),
    ]);
    let offset = v.bytes_at(if v.param("data").is_some() {
        "data"
    } else {
        "payload"
    });
    Ok(Extracted {
        children: vec![Child {
            origin: Origin::TimelockPayload { index: 0 },
            to: target,
            value,
            operation: Operation::Call,
            data: payload,
            offset,
        }],
        timelock_operation_id: Some(keccak256(id_input.abi_encode_params())),
    })
}

/// `scheduleBatch` / `executeBatch`: the payloads, and the operation id (`hashOperationBatch`).
fn timelock_batch_children(v: &ArgsView<'_>) -> Result<Extracted, ExtractError> {
    let targets = as_array(v.get("targets")).unwrap_or_default();
    let vals = as_array(v.get("values")).unwrap_or_default();
    let payloads = as_array(v.get("payloads")).unwrap_or_default();
    if targets.len() != vals.len() || targets.len() != payloads.len() {
        return Err((
            v.args_at,
            format!(
                "timelock batch has {} targets, {} values and {} payloads: the lengths must match",
                targets.len(),
                vals.len(),
                payloads.len()
            ),
        ));
    }
    let id_input = DynSolValue::Tuple(vec![
        DynSolValue::Array(targets.to_vec()),
        DynSolValue::Array(vals.to_vec()),
        DynSolValue::Array(payloads.to_vec()),
        v.get("predecessor")
            .cloned()
            .unwrap_or(DynSolValue::FixedBytes(B256::ZERO, 32)),
        v.get("salt")
            .cloned()
            .unwrap_or(DynSolValue::FixedBytes(B256::ZERO, 32)),
    ]);
    let children = (0..targets.len())
        .map(|i| Child {
            origin: Origin::TimelockPayload { index: i },
            to: as_address(targets.get(i)).unwrap_or_default(),
            value: as_uint(vals.get(i)).unwrap_or_default(),
            operation: Operation::Call,
            data: as_bytes(payloads.get(i)).unwrap_or_default(),
            offset: v.elem_at("payloads", i),
        })
        .collect();
    Ok(Extracted {
        children,
        timelock_operation_id: Some(keccak256(id_input.abi_encode_params())),
    })
}

/// `upgradeToAndCall` / `upgradeAndCall`: the init call the proxy delegatecalls into the new
/// implementation (none when `data` is empty, or for the shapes without data).
fn upgrade_init_child(data: &[u8], to: Address, base: usize) -> Extracted {
    let Some(u) = upgrade_call(data).filter(|u| u.shape.has_data() && !u.data.is_empty()) else {
        return Extracted::default();
    };
    // Canonical encoding: the bytes argument's offset word is at its head slot.
    let head = if u.shape == UpgradeShape::UpgradeAndCall {
        2
    } else {
        1
    };
    let offset = base + bytes_param_at(&data[4..], head).map_or(4, |o| 4 + o);
    Extracted {
        children: vec![Child {
            origin: Origin::UpgradeInit,
            to: u.proxy.unwrap_or(to),
            value: U256::ZERO,
            operation: Operation::DelegateCall,
            data: u.data,
            offset,
        }],
        timelock_operation_id: None,
    }
}

/// Decodes one call and everything it contains.
#[allow(clippy::too_many_arguments)]
fn decode_node(
    cx: &Ctx<'_>,
    path: String,
    origin: Origin,
    to: Address,
    value: U256,
    operation: Operation,
    data: Bytes,
    offset: usize,
    depth: usize,
) -> Result<CallNode, DecodeError> {
    let err = |off: usize, message: String| DecodeError {
        offset: off,
        path: path.clone(),
        message,
    };
    if depth > MAX_DEPTH {
        return Err(err(
            offset,
            format!("calls nest deeper than {MAX_DEPTH} levels; refusing absurd nesting"),
        ));
    }
    let mut node = CallNode {
        path: path.clone(),
        origin,
        to,
        value,
        operation,
        data: data.clone(),
        offset,
        decoded: Decoded::Empty,
        timelock_operation_id: None,
        children: Vec::new(),
    };
    if data.is_empty() {
        return Ok(node);
    }
    if data.len() < 4 {
        node.decoded = Decoded::Unknown {
            selector: data.clone(),
            args: Bytes::new(),
        };
        return Ok(node);
    }
    let selector = &data[..4];
    let Some((family, contract, function)) = find_function(cx.manifest, &to, selector) else {
        node.decoded = Decoded::Unknown {
            selector: Bytes::copy_from_slice(selector),
            args: Bytes::copy_from_slice(&data[4..]),
        };
        return Ok(node);
    };
    let body = &data[4..];
    let values = function.abi_decode_input(body).map_err(|e| {
        err(
            offset + 4,
            format!(
                "cannot decode the arguments of {}: {e}",
                function.signature()
            ),
        )
    })?;
    if DynSolValue::Tuple(values.clone()).abi_encode_params() != body {
        return Err(err(
            offset + 4,
            format!(
                "the arguments of {} are not canonically ABI-encoded (trailing bytes, dirty padding or unusual offsets); a legitimate encoder never produces this",
                function.signature()
            ),
        ));
    }
    let args: Vec<Arg> = function
        .inputs
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (p, v))| Arg {
            name: if p.name.is_empty() {
                format!("arg{i}")
            } else {
                p.name.clone()
            },
            ty: p.selector_type().into_owned(),
            value: v,
        })
        .collect();
    let view = ArgsView {
        args: &args,
        function: &function,
        body,
        args_at: offset + 4,
    };
    let extracted = match (family, function.name.as_str()) {
        (Family::Safe, "execTransaction") => exec_transaction_child(&view),
        (Family::MultiSend, "multiSend") => multisend_children(&view),
        (Family::Multicall, _) => multicall_children(&view),
        (Family::Timelock, "schedule" | "execute") => timelock_single_child(&view),
        (Family::Timelock, "scheduleBatch" | "executeBatch") => timelock_batch_children(&view),
        // Upgrades are read from their bytes, whichever ABI (and whatever argument names) decoded them.
        _ => Ok(upgrade_init_child(&data, to, offset)),
    }
    .map_err(|(at, message)| err(at, message))?;
    node.timelock_operation_id = extracted.timelock_operation_id;
    // One recursion for every family: each child is decoded like any call.
    for (i, c) in extracted.children.into_iter().enumerate() {
        node.children.push(decode_node(
            cx,
            format!("{path}.{i}"),
            c.origin,
            c.to,
            c.value,
            c.operation,
            c.data,
            c.offset,
            depth + 1,
        )?);
    }
    node.decoded = Decoded::Function {
        family,
        contract,
        signature: function.signature(),
        name: function.name.clone(),
        args,
    };
    Ok(node)
}

fn word_usize(body: &[u8], at: usize) -> Option<usize> {
    let w = body.get(at..at.checked_add(32)?)?;
    if w[..24].iter().any(|b| *b != 0) {
        return None;
    }
    usize::try_from(u64::from_be_bytes(w[24..].try_into().ok()?)).ok()
}

/// Offset (within the arguments) of the content of the `bytes` parameter at head slot `i`.
fn bytes_param_at(body: &[u8], i: usize) -> Option<usize> {
    word_usize(body, 32 * i)?.checked_add(32)
}

/// Offset (within the arguments) of element `j`'s content of the `bytes[]` parameter at head slot `i`.
fn bytes_array_elem_at(body: &[u8], i: usize, j: usize) -> Option<usize> {
    let elems = word_usize(body, 32 * i)?.checked_add(32)?;
    let e = word_usize(body, elems.checked_add(32 * j)?)?;
    elems.checked_add(e)?.checked_add(32)
}

/// Decodes a plain transaction's call (`to`, `value`, `data`) from an externally owned account.
pub fn decode_call(
    m: Option<&Manifest>,
    to: Address,
    value: U256,
    data: &[u8],
) -> Result<CallNode, DecodeError> {
    decode_node(
        &Ctx { manifest: m },
        "0".into(),
        Origin::Root,
        to,
        value,
        Operation::Call,
        Bytes::copy_from_slice(data),
        0,
        0,
    )
}

/// Decodes the call a Safe transaction makes (its `to`, `value`, `data`, `operation`).
pub fn decode_safe_tx(m: Option<&Manifest>, tx: &SafeTxFields) -> Result<CallNode, DecodeError> {
    decode_node(
        &Ctx { manifest: m },
        "0".into(),
        Origin::Root,
        tx.to,
        tx.value,
        tx.operation,
        tx.data.clone(),
        0,
        0,
    )
}

/// The `execTransaction` fields of a decoded node, when it is one.
pub fn exec_transaction_fields(node: &CallNode) -> Option<SafeTxFields> {
    if node.signature() != Some("execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)") {
        return None;
    }
    let op = u8::try_from(as_uint(node.arg("operation"))?)
        .ok()
        .and_then(Operation::from_u8)?;
    Some(SafeTxFields {
        to: as_address(node.arg("to"))?,
        value: as_uint(node.arg("value"))?,
        data: as_bytes(node.arg("data"))?,
        operation: op,
        safe_tx_gas: as_uint(node.arg("safeTxGas"))?,
        base_gas: as_uint(node.arg("baseGas"))?,
        gas_price: as_uint(node.arg("gasPrice"))?,
        gas_token: as_address(node.arg("gasToken"))?,
        refund_receiver: as_address(node.arg("refundReceiver"))?,
        nonce: U256::ZERO,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_known_signature_parses() {
        for (_, _, sig) in KNOWN {
            assert!(parse_known(sig).is_some(), "{sig} does not parse");
        }
    }

    /// The written-out selectors are keccak256 of the parsed signatures (alloy's), and a few are checked
    /// against the values published by Safe, OpenZeppelin and Multicall3.
    #[test]
    fn known_selectors_are_the_signatures_hashes() {
        for (i, (_, sel, sig)) in KNOWN.iter().enumerate() {
            assert_eq!(known_fn(i).unwrap().selector().0, *sel, "{sig}");
        }
        let published = |name: &str| {
            KNOWN
                .iter()
                .find(|k| k.2.starts_with(&format!("function {name}(")))
                .unwrap()
                .1
        };
        assert_eq!(published("execTransaction"), [0x6a, 0x76, 0x12, 0x02]);
        assert_eq!(published("multiSend"), [0x8d, 0x80, 0xff, 0x0a]);
        assert_eq!(published("aggregate3"), [0x82, 0xad, 0x56, 0xcb]);
        assert_eq!(published("upgradeToAndCall"), [0x4f, 0x1e, 0xf2, 0x86]);
        let mut seen = std::collections::HashSet::new();
        assert!(
            KNOWN.iter().all(|k| seen.insert(k.1)),
            "two KNOWN entries share a selector"
        );
    }
}
