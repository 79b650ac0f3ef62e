//! A bundle's simulation, explained: success or revert (and which call of a batch failed), events
//! decoded, storage changes named, balance changes, views of the manifest's contracts before and after,
//! the manifest's post-conditions on the simulated post-state, and state changed where it should not be.

use super::engine::{self, Frame, TxPlan};
use super::state::{StateSource, Touched};
use super::SimError;
pub use crate::bundle::simulation::*;
use crate::bundle::{Bundle, PostCondition};
use crate::chain::postcond;
use crate::manifest::{Manifest, ProxyKind};
use alloy::dyn_abi::{DynSolValue, EventExt, FunctionExt, JsonAbiExt};
use alloy::json_abi::{Event, Function, StateMutability};
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use std::collections::BTreeSet;

/// EIP-1967 implementation slot.
pub const EIP1967_IMPLEMENTATION: B256 =
    alloy::primitives::b256!("360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");
/// EIP-1967 admin slot.
pub const EIP1967_ADMIN: B256 =
    alloy::primitives::b256!("b53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103");
/// EIP-1967 beacon slot.
pub const EIP1967_BEACON: B256 =
    alloy::primitives::b256!("a3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50");
/// Safe's guard slot: keccak256("guard_manager.guard.address").
pub const SAFE_GUARD: B256 =
    alloy::primitives::b256!("4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8");
/// Safe's fallback handler slot: keccak256("fallback_manager.handler.address").
pub const SAFE_FALLBACK: B256 =
    alloy::primitives::b256!("6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5");
/// Safe's nonce slot.
pub const SAFE_NONCE_SLOT: u64 = 5;
/// Safe's threshold slot.
pub const SAFE_THRESHOLD_SLOT: u64 = 4;
const SENTINEL: Address = alloy::primitives::address!("0000000000000000000000000000000000000001");

/// What a simulation run gives besides its report: what it read (to record a snapshot).
#[derive(Debug)]
pub struct SimRun {
    /// The report.
    pub simulation: Simulation,
    /// Every account and slot read.
    pub touched: Touched,
}

fn mapping_slot(key: Address, slot: u64) -> B256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(key.as_slice());
    buf[32..].copy_from_slice(&U256::from(slot).to_be_bytes::<32>());
    keccak256(buf)
}

/// ERC-7201 namespace root: keccak256(abi.encode(uint256(keccak256(id)) - 1)) & ~0xff.
pub fn erc7201(id: &str) -> B256 {
    let h = U256::from_be_bytes(keccak256(id.as_bytes()).0) - U256::from(1);
    let mut r = keccak256(h.to_be_bytes::<32>());
    r.0[31] = 0;
    r
}

struct Names {
    m: Manifest,
    safe: Option<Address>,
    sender: Address,
}

impl Names {
    fn who(&self, a: Address) -> Option<String> {
        if Some(a) == self.safe {
            return Some("Safe".into());
        }
        if let Some(c) = self.m.contract_at(&a) {
            return Some(c.id.clone());
        }
        if self.m.timelock.as_ref().is_some_and(|t| t.address == a) {
            return Some("timelock".into());
        }
        for c in self.m.contracts.values() {
            match &c.proxy {
                ProxyKind::Transparent { proxy_admin } if *proxy_admin == a => {
                    return Some(format!("{} ProxyAdmin", c.id))
                }
                ProxyKind::Beacon { beacon } if *beacon == a => {
                    return Some(format!("{} beacon", c.id))
                }
                _ => {}
            }
        }
        if a == self.sender {
            return Some("sender".into());
        }
        None
    }

    fn slot(&self, a: Address, slot: B256) -> Option<String> {
        let fixed = [
            (EIP1967_IMPLEMENTATION, "EIP-1967 implementation"),
            (EIP1967_ADMIN, "EIP-1967 admin"),
            (EIP1967_BEACON, "EIP-1967 beacon"),
        ];
        if let Some((_, n)) = fixed.iter().find(|(s, _)| *s == slot) {
            return Some((*n).into());
        }
        for (id, n) in [
            (
                "openzeppelin.storage.Pausable",
                "Pausable._paused (ERC-7201)",
            ),
            ("openzeppelin.storage.Ownable", "Ownable._owner (ERC-7201)"),
            (
                "openzeppelin.storage.Initializable",
                "Initializable (ERC-7201)",
            ),
        ] {
            if erc7201(id) == slot {
                return Some(n.into());
            }
        }
        if Some(a) == self.safe {
            let v = U256::from_be_bytes(slot.0);
            let n = match v {
                x if x == U256::ZERO => Some("Safe singleton (slot 0)"),
                x if x == U256::from(3) => Some("Safe ownerCount"),
                x if x == U256::from(SAFE_THRESHOLD_SLOT) => Some("Safe threshold"),
                x if x == U256::from(SAFE_NONCE_SLOT) => Some("Safe nonce"),
                _ => None,
            };
            if let Some(n) = n {
                return Some(n.into());
            }
            if slot == SAFE_GUARD {
                return Some("Safe guard".into());
            }
            if slot == SAFE_FALLBACK {
                return Some("Safe fallback handler".into());
            }
            let mut keys: Vec<Address> = vec![SENTINEL];
            if let Some(s) = &self.m.safe {
                keys.extend(s.owners.iter().copied());
            }
            for k in keys {
                if mapping_slot(k, 2) == slot {
                    return Some(format!("Safe owners[{}]", k.to_checksum(None)));
                }
                if mapping_slot(k, 1) == slot {
                    return Some(format!("Safe modules[{}]", k.to_checksum(None)));
                }
            }
        }
        None
    }
}

/// Events every report can decode, besides the manifest's ABIs.
const KNOWN_EVENTS: &[&str] = &[
    "event ExecutionSuccess(bytes32 indexed txHash, uint256 payment)",
    "event ExecutionFailure(bytes32 indexed txHash, uint256 payment)",
    "event ExecutionSuccess(bytes32 txHash, uint256 payment)",
    "event ExecutionFailure(bytes32 txHash, uint256 payment)",
    "event ExecutionFromModuleSuccess(address indexed module)",
    "event ExecutionFromModuleFailure(address indexed module)",
    "event ApproveHash(bytes32 indexed approvedHash, address indexed owner)",
    "event AddedOwner(address indexed owner)",
    "event RemovedOwner(address indexed owner)",
    "event ChangedThreshold(uint256 threshold)",
    "event EnabledModule(address indexed module)",
    "event DisabledModule(address indexed module)",
    "event ChangedGuard(address indexed guard)",
    "event ChangedFallbackHandler(address indexed handler)",
    "event SafeReceived(address indexed sender, uint256 value)",
    "event Paused(address account)",
    "event Unpaused(address account)",
    "event Upgraded(address indexed implementation)",
    "event AdminChanged(address previousAdmin, address newAdmin)",
    "event BeaconUpgraded(address indexed beacon)",
    "event Initialized(uint64 version)",
    "event Transfer(address indexed from, address indexed to, uint256 value)",
    "event Approval(address indexed owner, address indexed spender, uint256 value)",
    "event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender)",
    "event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender)",
    "event OwnershipTransferred(address indexed previousOwner, address indexed newOwner)",
    "event CallScheduled(bytes32 indexed id, uint256 indexed index, address target, uint256 value, bytes data, bytes32 predecessor, uint256 delay)",
    "event CallExecuted(bytes32 indexed id, uint256 indexed index, address target, uint256 value, bytes data)",
    "event CallSalt(bytes32 indexed id, bytes32 salt)",
    "event Cancelled(bytes32 indexed id)",
];

fn show(v: &DynSolValue) -> String {
    crate::manifest::show_value(v)
}

fn decode_event(m: &Manifest, log: &alloy::primitives::Log) -> String {
    let topics = log.data.topics();
    let Some(t0) = topics.first() else {
        return format!(
            "anonymous log, data 0x{}",
            alloy::hex::encode(&log.data.data)
        );
    };
    let mut candidates: Vec<Event> = Vec::new();
    if let Some(c) = m.contract_at(&log.address) {
        candidates.extend(c.abi.events().cloned());
    }
    for c in m.contracts.values() {
        candidates.extend(c.abi.events().cloned());
    }
    candidates.extend(KNOWN_EVENTS.iter().filter_map(|s| Event::parse(s).ok()));
    for e in candidates {
        if e.selector() != *t0 {
            continue;
        }
        if let Ok(d) = e.decode_log_parts(topics.iter().copied(), &log.data.data) {
            let mut idx = d.indexed.iter();
            let mut body = d.body.iter();
            let args: Vec<String> = e
                .inputs
                .iter()
                .map(|p| {
                    let v = if p.indexed { idx.next() } else { body.next() };
                    let v = v.map(show).unwrap_or_default();
                    if p.name.is_empty() {
                        v
                    } else {
                        format!("{}: {v}", p.name)
                    }
                })
                .collect();
            return format!("{}({})", e.name, args.join(", "));
        }
    }
    format!(
        "unknown event {t0:#x} ({} topic(s), {} data bytes)",
        topics.len(),
        log.data.data.len()
    )
}

/// Functions every report can name, besides the manifest's ABIs.
const KNOWN_FUNCTIONS: &[&str] = &[
    "function upgradeToAndCall(address newImplementation, bytes data)",
    "function upgradeTo(address newImplementation)",
    "function upgradeAndCall(address proxy, address implementation, bytes data)",
    "function upgrade(address proxy, address implementation)",
    "function pause()",
    "function unpause()",
    "function multiSend(bytes transactions)",
    "function grantRole(bytes32 role, address account)",
    "function revokeRole(bytes32 role, address account)",
    "function schedule(address target, uint256 value, bytes data, bytes32 predecessor, bytes32 salt, uint256 delay)",
    "function execute(address target, uint256 value, bytes payload, bytes32 predecessor, bytes32 salt)",
];

/// Errors every report can name, besides the manifest's ABIs (OpenZeppelin 5's).
const KNOWN_ERRORS: &[&str] = &[
    "error FailedCall()",
    "error EnforcedPause()",
    "error ExpectedPause()",
    "error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)",
    "error OwnableUnauthorizedAccount(address account)",
    "error ERC1967InvalidImplementation(address implementation)",
    "error ERC1967NonPayable()",
    "error UUPSUnauthorizedCallContext()",
    "error UUPSUnsupportedProxiableUUID(bytes32 slot)",
    "error InvalidInitialization()",
    "error NotInitializing()",
    "error AddressEmptyCode(address target)",
    "error TimelockUnexpectedOperationState(bytes32 operationId, bytes32 expectedStates)",
    "error TimelockUnexecutedPredecessor(bytes32 predecessorId)",
    "error TimelockInsufficientDelay(uint256 delay, uint256 minDelay)",
    "error TimelockUnauthorizedCaller(address caller)",
];

/// Revert data in words: `Error(string)` (Safe's GS codes explained), `Panic`, or a custom error known
/// to the manifest's ABIs or OpenZeppelin 5.
pub fn explain_revert(m: &Manifest, data: &[u8]) -> String {
    if data.len() >= 4
        && !data.starts_with(&[0x08, 0xc3, 0x79, 0xa0])
        && !data.starts_with(&[0x4e, 0x48, 0x7b, 0x71])
    {
        let mut errors: Vec<alloy::json_abi::Error> = Vec::new();
        for c in m.contracts.values() {
            errors.extend(c.abi.errors().cloned());
        }
        errors.extend(
            KNOWN_ERRORS
                .iter()
                .filter_map(|e| alloy::json_abi::Error::parse(e).ok()),
        );
        for e in errors {
            if e.selector().as_slice() == &data[..4] {
                let args = e
                    .abi_decode_input(&data[4..])
                    .map(|v| v.iter().map(show).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|_| "undecodable arguments".into());
                return format!("reverted with {}({args})", e.name);
            }
        }
    }
    crate::chain::decode_revert(data)
}

fn describe_call(m: &Manifest, to: Address, input: &[u8]) -> String {
    let who = m
        .contract_at(&to)
        .map(|c| c.id.clone())
        .unwrap_or_else(|| to.to_checksum(None));
    if input.len() >= 4 {
        let mut fns: Vec<Function> = m
            .contract_at(&to)
            .map(|c| c.abi.functions().cloned().collect())
            .unwrap_or_default();
        fns.extend(
            KNOWN_FUNCTIONS
                .iter()
                .filter_map(|f| Function::parse(f).ok()),
        );
        {
            for f in &fns {
                if f.selector().as_slice() == &input[..4] {
                    let args = f
                        .abi_decode_input(&input[4..])
                        .map(|v| v.iter().map(show).collect::<Vec<_>>().join(", "))
                        .unwrap_or_else(|_| "undecodable arguments".into());
                    return format!("{who}.{}({args})", f.name);
                }
            }
        }
        return format!("{who} selector 0x{}", alloy::hex::encode(&input[..4]));
    }
    format!("{who} (no calldata)")
}

fn failing_call(m: &Manifest, frames: &[Frame], batch: &[(Address, Bytes)]) -> Option<String> {
    // The first call that failed and is not the Safe or a delegate-called library: the root cause.
    let f = frames
        .iter()
        .find(|f| !f.ok && f.depth >= 1 && !f.delegate && !f.is_static)
        .or_else(|| frames.iter().find(|f| !f.ok && f.depth >= 1))?;
    let what = describe_call(m, f.target, &f.input);
    let reason = explain_revert(m, &f.output);
    let pos = batch
        .iter()
        .position(|(to, data)| *to == f.target && *data == f.input);
    Some(match pos {
        Some(i) if batch.len() > 1 => {
            format!(
                "call {} of {} in the batch, {what}, {reason}",
                i + 1,
                batch.len()
            )
        }
        _ => format!("the call {what} {reason}"),
    })
}

/// Simulates a bundle's transaction on `src` (`source_name`: "node" or "snapshot").
pub fn simulate_bundle(
    src: &dyn StateSource,
    source_name: &str,
    m: &Manifest,
    b: &Bundle,
) -> Result<SimRun, SimError> {
    let block = src.block().clone();
    if block.chain_id != b.chain_id {
        return Err(SimError::Input(format!(
            "the state is of chain {}, the bundle is for chain {}",
            block.chain_id, b.chain_id
        )));
    }
    let gas_cap = block.gas_limit.clamp(1, 16_777_216);
    // Reads made here, outside the EVM: they belong in a snapshot too.
    let mut extra_reads: Vec<(Address, U256)> = Vec::new();
    let (plan, method, safe, batch) = if let Some(s) = &b.safe_tx {
        let first_owner_slot = U256::from_be_bytes(mapping_slot(SENTINEL, 2).0);
        extra_reads.push((s.safe, first_owner_slot));
        let owner_word = src.storage(s.safe, first_owner_slot)?;
        let owner = Address::from_slice(&owner_word.to_be_bytes::<32>()[12..]);
        if owner.is_zero() || owner == SENTINEL {
            return Err(SimError::Input(format!(
                "{} has no owners at block {}: is it a Safe on this chain?",
                s.safe.to_checksum(None),
                block.number
            )));
        }
        let mut sig = [0u8; 65];
        sig[12..32].copy_from_slice(owner.as_slice());
        sig[64] = 1;
        let data = s.tx.exec_calldata(Bytes::copy_from_slice(&sig));
        let batch: Vec<(Address, Bytes)> = crate::safe::multisend_entries(&s.tx.data)
            .map(|es| es.into_iter().map(|e| (e.to, e.data)).collect())
            .unwrap_or_else(|| vec![(s.tx.to, s.tx.data.clone())]);
        (
            TxPlan {
                from: owner,
                to: s.safe,
                value: U256::ZERO,
                data,
                gas_limit: gas_cap,
                overrides: vec![(s.safe, U256::from(SAFE_THRESHOLD_SLOT), U256::from(1))],
                timestamp: None,
            },
            format!(
                "execTransaction sent by owner {} with the Safe's threshold overridden to 1 and that owner's pre-validated signature (v = 1), as Safe's own tools simulate; gas price 0",
                owner.to_checksum(None)
            ),
            Some(s.safe),
            batch,
        )
    } else if let Some(e) = &b.eoa_tx {
        (
            TxPlan {
                from: e.from,
                to: e.to,
                value: e.value,
                data: e.data.clone(),
                gas_limit: e.gas_limit.min(gas_cap),
                overrides: Vec::new(),
                timestamp: None,
            },
            format!(
                "the guardian's transaction from {} as signed, gas price 0",
                e.from.to_checksum(None)
            ),
            None,
            vec![(e.to, e.data.clone())],
        )
    } else {
        return Err(SimError::Input("the bundle holds no transaction".into()));
    };

    // A timelock execute composed while the delay runs: simulate it as it will run, at the operation's
    // ready time (OpenZeppelin 5's TimelockController keeps `_timestamps[id]` in slot 1).
    let mut plan = plan;
    let mut method = method;
    if let Some(t) = b
        .timelock
        .as_ref()
        .filter(|t| t.step == crate::timelock::TimelockStep::Execute)
    {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(t.operation_id.as_slice());
        key[63] = 1;
        let ready_slot = U256::from_be_bytes(keccak256(key).0);
        extra_reads.push((t.address, ready_slot));
        let ready = src.storage(t.address, ready_slot)?;
        if let Ok(ready) = u64::try_from(ready) {
            if ready > block.timestamp + 12 {
                plan.timestamp = Some(ready);
                method.push_str(&format!(
                    "; at the timelock operation's ready time (timestamp {ready}), as it will run once the delay has passed"
                ));
            }
        }
    }

    // Views: every argument-less view of the manifest's contracts, before and after.
    let mut views: Vec<(String, Function, Address)> = Vec::new();
    for c in m.contracts.values() {
        for f in c.abi.functions() {
            if f.inputs.is_empty()
                && matches!(
                    f.state_mutability,
                    StateMutability::View | StateMutability::Pure
                )
            {
                views.push((c.id.clone(), f.clone(), c.address));
            }
        }
    }
    let view_calls: Vec<(Address, Bytes)> = views
        .iter()
        .map(|(_, f, a)| (*a, Bytes::copy_from_slice(f.selector().as_slice())))
        .collect();
    let mut post: Vec<PostCondition> = Vec::new();
    let raw = engine::run(src, &plan, &view_calls, &mut |call, storage| {
        post = postcond::evaluate_with(m, &b.actions_run_now(m), call, storage);
    })?;

    let names = Names {
        m: m.clone(),
        safe,
        sender: plan.from,
    };
    let decode_view = |f: &Function, r: &Result<Bytes, String>| -> String {
        match r {
            Ok(bytes) => f
                .abi_decode_output(bytes)
                .map(|v| v.iter().map(show).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|_| format!("0x{}", alloy::hex::encode(bytes))),
            Err(e) => format!("error: {e}"),
        }
    };
    let mut view_changes = Vec::new();
    for ((id, f, _), (before, after)) in views.iter().zip(&raw.views) {
        let (b0, a0) = (decode_view(f, before), decode_view(f, after));
        if b0 != a0 {
            view_changes.push(SimViewChange {
                contract: id.clone(),
                function: format!("{}()", f.name),
                before: b0,
                after: a0,
            });
        }
    }

    let mut allowed: BTreeSet<Address> = m.contracts.values().map(|c| c.address).collect();
    for c in m.contracts.values() {
        match &c.proxy {
            ProxyKind::Transparent { proxy_admin } => {
                allowed.insert(*proxy_admin);
            }
            ProxyKind::Beacon { beacon } => {
                allowed.insert(*beacon);
            }
            _ => {}
        }
    }
    if let Some(t) = &m.timelock {
        allowed.insert(t.address);
    }
    let mut storage = Vec::new();
    let mut balances = Vec::new();
    let mut critical = Vec::new();
    let mut addrs: Vec<&Address> = raw.state.keys().collect();
    addrs.sort();
    for a in addrs {
        let acc = &raw.state[a];
        let mut slots: Vec<(&U256, &revm::state::EvmStorageSlot)> = acc
            .storage
            .iter()
            .filter(|(_, s)| s.present_value != s.original_value)
            .collect();
        slots.sort_by_key(|(k, _)| **k);
        for (k, s) in slots {
            let slot = B256::from(k.to_be_bytes::<32>());
            let change = SimStorageChange {
                address: *a,
                contract: names.who(*a),
                slot,
                name: names.slot(*a, slot),
                before: B256::from(s.original_value.to_be_bytes::<32>()),
                after: B256::from(s.present_value.to_be_bytes::<32>()),
            };
            let ok = if Some(*a) == safe {
                *k == U256::from(SAFE_NONCE_SLOT)
            } else {
                allowed.contains(a)
            };
            if !ok {
                critical.push(format!(
                    "{} changes at {}, outside the manifest's contracts and the Safe's nonce",
                    change
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("slot {:#x}", change.slot)),
                    label(change.contract.as_deref(), *a)
                ));
            }
            storage.push(change);
        }
        if let Some(orig) = raw.before.get(a) {
            if orig.balance != acc.info.balance {
                balances.push(SimBalanceChange {
                    address: *a,
                    contract: names.who(*a),
                    before: orig.balance,
                    after: acc.info.balance,
                });
                if !allowed.contains(a) && Some(*a) != safe {
                    critical.push(format!(
                        "the ETH balance of {} changes",
                        label(names.who(*a).as_deref(), *a)
                    ));
                }
            }
            if orig.code_hash() != acc.info.code_hash
                && !(orig.code.is_empty() && acc.info.code_hash == revm::primitives::KECCAK_EMPTY)
            {
                critical.push(format!(
                    "the code of {} changes",
                    label(names.who(*a).as_deref(), *a)
                ));
            }
        }
    }
    // ERC-20 balance changes, from the Transfer events (3 topics: an ERC-721 Transfer has 4).
    let transfer = keccak256("Transfer(address,address,uint256)");
    let mut net: std::collections::BTreeMap<(Address, Address), (U256, U256)> = Default::default();
    for l in &raw.logs {
        let t = l.data.topics();
        if t.len() == 3 && t[0] == transfer && l.data.data.len() == 32 {
            let v = U256::from_be_slice(&l.data.data);
            let from = Address::from_word(t[1]);
            let to = Address::from_word(t[2]);
            let e = net.entry((l.address, from)).or_default();
            e.1 = e.1.saturating_add(v);
            let e = net.entry((l.address, to)).or_default();
            e.0 = e.0.saturating_add(v);
        }
    }
    let tokens = net
        .into_iter()
        .filter(|(_, (i, o))| i != o)
        .map(|((token, holder), (i, o))| SimTokenChange {
            token,
            holder,
            delta: if i > o {
                format!("+{}", i - o)
            } else {
                format!("-{}", o - i)
            },
        })
        .collect();
    let events = raw
        .logs
        .iter()
        .map(|l| SimEvent {
            address: l.address,
            contract: names.who(l.address),
            text: decode_event(m, l),
        })
        .collect();
    let revert = (!raw.success).then(|| SimRevert {
        reason: match &raw.halt {
            Some(h) => format!("halted: {h}"),
            None => explain_revert(m, &raw.output),
        },
        failing_call: failing_call(m, &raw.frames, &batch),
    });
    Ok(SimRun {
        simulation: Simulation {
            block: SimBlock {
                number: block.number,
                hash: block.hash,
            },
            source: source_name.to_string(),
            method,
            success: raw.success,
            revert,
            gas_used: raw.gas_used,
            events,
            storage,
            balances,
            tokens,
            views: view_changes,
            postconditions: if raw.success { post } else { Vec::new() },
            critical,
        },
        touched: {
            let mut t = raw.touched;
            for (a, slot) in extra_reads {
                t.entry(a).or_default().insert(slot);
            }
            t
        },
    })
}
