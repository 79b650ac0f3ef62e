//! Post-conditions (`expect = [...]`) read from the chain after execution, and the pre-signing check of
//! an upgrade's implementation code hash against the manifest.

use super::{Chain, ChainError};
use crate::manifest::{show_value, ActionCall, ExpectLhs, ExpectOp, Manifest};
use crate::policy::{Report, Verdict};
use alloy::dyn_abi::{DynSolValue, FunctionExt, JsonAbiExt};
use alloy::primitives::{Address, Bytes, B256};
use serde::Serialize;

pub use crate::bundle::PostCondition;

/// Evaluates every `expect` of the given actions against the chain's current state.
pub fn evaluate(chain: &Chain, m: &Manifest, actions: &[String]) -> Vec<PostCondition> {
    evaluate_with(
        m,
        actions,
        &mut |to, data| chain.call(to, data).map_err(|x| x.to_string()),
        &mut |a, slot| chain.storage(a, slot).map_err(|x| x.to_string()),
    )
}

/// A read-only call: target, calldata → return data.
pub type CallFn<'a> = dyn FnMut(Address, Bytes) -> Result<Bytes, String> + 'a;
/// A storage read: contract, slot → word.
pub type StorageFn<'a> = dyn FnMut(Address, B256) -> Result<B256, String> + 'a;

/// Evaluates every `expect` of the given actions against any state: the chain's, or a simulation's
/// post-state.
pub fn evaluate_with(
    m: &Manifest,
    actions: &[String],
    call: &mut CallFn<'_>,
    storage: &mut StorageFn<'_>,
) -> Vec<PostCondition> {
    let mut out = Vec::new();
    for id in actions {
        let Some(a) = m.action(id) else { continue };
        let Some(c) = m.contract(&a.contract) else {
            continue;
        };
        for e in &a.expect {
            let actual: Result<DynSolValue, String> = match &e.lhs {
                ExpectLhs::Call { function, args } => function
                    .abi_encode_input(args)
                    .map_err(|x| x.to_string())
                    .and_then(|data| call(c.address, data.into()))
                    .and_then(|ret| {
                        function
                            .abi_decode_output(&ret)
                            .map_err(|x| format!("cannot decode the answer: {x}"))
                    })
                    .and_then(|mut v| {
                        if v.is_empty() {
                            Err("no return value".into())
                        } else {
                            Ok(v.remove(0))
                        }
                    }),
                ExpectLhs::Slot(slot) => storage(c.address, slot.slot())
                    .map(|w| DynSolValue::Address(Address::from_slice(&w[12..]))),
            };
            let (shown, pass) = match actual {
                Ok(v) => {
                    let eq = v == e.rhs;
                    (show_value(&v), if e.op == ExpectOp::Eq { eq } else { !eq })
                }
                Err(err) => (format!("error: {err}"), false),
            };
            out.push(PostCondition {
                action: id.clone(),
                expect: e.text.clone(),
                actual: shown,
                pass,
            });
        }
    }
    out
}

/// An implementation code hash check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CodeHashCheck {
    /// Action id.
    pub action: String,
    /// The implementation the call installs.
    pub implementation: Address,
    /// The manifest's pin.
    pub pinned: B256,
    /// What the chain has (`None`: no code there).
    pub actual: Option<B256>,
    /// Whether they match.
    pub pass: bool,
}

/// For each allowed upgrade in `report` whose action pins `implementation_codehash`, compares the
/// implementation's runtime code hash on chain with the pin.
pub fn check_codehashes(
    chain: &Chain,
    m: &Manifest,
    report: &Report,
) -> Result<Vec<CodeHashCheck>, ChainError> {
    let mut out = Vec::new();
    for n in report.tree.walk() {
        let Some(Verdict::Allowed { action, .. }) = report.verdicts.get(&n.path) else {
            continue;
        };
        let Some(a) = m.action(action) else { continue };
        let (ActionCall::Upgrade, Some(pinned)) = (&a.call, a.implementation_codehash) else {
            continue;
        };
        let Some(imp) = crate::decode::upgrade_call(&n.data).map(|u| u.implementation) else {
            continue;
        };
        let actual = chain.code_hash(imp)?;
        out.push(CodeHashCheck {
            action: action.clone(),
            implementation: imp,
            pinned,
            actual,
            pass: actual == Some(pinned),
        });
    }
    Ok(out)
}

/// A live check of an upgrade's storage layouts: the proxy points at the layout's current implementation,
/// and the slots the new layout appends hold nothing yet.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutLiveCheck {
    /// Action id.
    pub action: String,
    /// The proxy whose storage it is.
    pub proxy: Address,
    /// What is wrong, if anything (`None`: it holds).
    pub problem: Option<String>,
}

/// For every allowed upgrade whose action has `storage_layout`: when the manifest pins the current
/// implementation's code hash, the proxy must point at that code now; and every slot the new layout
/// appends must read zero at the proxy (a non-zero value is data the new variable would take over).
pub fn check_layouts(
    chain: &Chain,
    m: &Manifest,
    report: &Report,
) -> Result<Vec<LayoutLiveCheck>, ChainError> {
    let mut out = Vec::new();
    for n in report.tree.walk() {
        let Some(Verdict::Allowed { action, .. }) = report.verdicts.get(&n.path) else {
            continue;
        };
        let Some(a) = m.action(action) else { continue };
        let (ActionCall::Upgrade, Some(l)) = (&a.call, &a.storage_layout) else {
            continue;
        };
        let Some(c) = m.contract(&a.contract) else {
            continue;
        };
        let proxy = c.address;
        let mut problem = None;
        if let Some(pinned) = l.current_codehash {
            let imp = match &c.proxy {
                crate::manifest::ProxyKind::Beacon { beacon } => {
                    let ret = chain.call(
                        *beacon,
                        alloy::primitives::Bytes::from_static(&[0x5c, 0x60, 0xda, 0x1b]),
                    )?;
                    Address::from_slice(ret.get(12..32).unwrap_or(&[0u8; 20]))
                }
                _ => {
                    let w =
                        chain.storage(proxy, crate::manifest::ProxySlot::Implementation.slot())?;
                    Address::from_slice(&w[12..])
                }
            };
            let actual = chain.code_hash(imp)?;
            if actual != Some(pinned) {
                problem = Some(format!(
                    "the proxy {} points at {} whose code hash is {}, not the current implementation the layout {} describes ({pinned:#x})",
                    proxy.to_checksum(None),
                    imp.to_checksum(None),
                    actual.map(|h| format!("{h:#x}")).unwrap_or_else(|| "none (no code)".into()),
                    l.current_file
                ));
            }
        }
        if problem.is_none() {
            for slot in crate::layout::appended_slots(&l.current, &l.new) {
                let w = chain.storage(proxy, B256::from(slot.to_be_bytes::<32>()))?;
                if !w.is_zero() {
                    problem = Some(format!(
                        "slot {slot:#x} of the proxy {} holds {w:#x}, but the new layout {} appends a variable there: a storage collision with data already there",
                        proxy.to_checksum(None),
                        l.new_file
                    ));
                    break;
                }
            }
        }
        out.push(LayoutLiveCheck {
            action: action.clone(),
            proxy,
            problem,
        });
    }
    Ok(out)
}

/// One `requires_role` check: whether the sender holds the role on the contract now.
#[derive(Debug, Clone, Serialize)]
pub struct RoleCheck {
    /// Action id.
    pub action: String,
    /// The contract.
    pub contract: Address,
    /// The role's name as the manifest writes it.
    pub role_name: String,
    /// Its value.
    pub role: B256,
    /// Who sends the call (the Safe or the timelock).
    pub sender: Address,
    /// `hasRole(role, sender)` on chain.
    pub pass: bool,
}

/// For every allowed call whose action has `requires_role`: does the sender (the Safe for a Safe
/// transaction, the timelock for a timelock operation) hold the role on the target, per
/// `hasRole(bytes32,address)`? A contract that does not answer counts as not holding it.
pub fn check_roles(
    chain: &Chain,
    m: &Manifest,
    report: &Report,
) -> Result<Vec<RoleCheck>, ChainError> {
    use crate::manifest::Via;
    let mut out = Vec::new();
    for n in report.tree.walk() {
        let Some(Verdict::Allowed { action, .. }) = report.verdicts.get(&n.path) else {
            continue;
        };
        let Some(a) = m.action(action) else { continue };
        let Some((name, role)) = &a.requires_role else {
            continue;
        };
        let sender = match a.via {
            Via::Safe => m.safe.as_ref().map(|s| s.address),
            Via::Timelock => m.timelock.as_ref().map(|t| t.address),
            Via::Eoa => None,
        };
        let Some(sender) = sender else { continue };
        let mut data = alloy::primitives::keccak256("hasRole(bytes32,address)")[..4].to_vec();
        data.extend_from_slice(role.as_slice());
        data.extend_from_slice(&[0u8; 12]);
        data.extend_from_slice(sender.as_slice());
        let pass = match chain.call(n.to, data.into()) {
            Ok(ret) => ret.len() == 32 && ret[31] == 1 && ret[..31].iter().all(|b| *b == 0),
            Err(ChainError::Rpc { .. }) => false,
            Err(e) => return Err(e),
        };
        out.push(RoleCheck {
            action: action.clone(),
            contract: n.to,
            role_name: name.clone(),
            role: *role,
            sender,
            pass,
        });
    }
    Ok(out)
}
