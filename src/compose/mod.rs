//! Playbook → the exact transaction guardians sign: a Safe tx (one call, or a MultiSendCallOnly batch),
//! an EIP-1559 transaction for a guardian account, or a timelock operation wrapped in a Safe tx.
//! Composition is deterministic: two commanders composing the same playbook with the same nonce get the
//! same bytes and the same hashes. Every composed transaction is verified by the policy before it is
//! returned: compose can never produce what verify refuses.

use crate::bundle::{self, Bundle, EoaRequest, ManifestRef, SafeRequest};
use crate::decode::DecodeError;
use crate::manifest::{Action, ActionCall, Constraint, ConstraintCheck, Manifest, ProxyKind, Via};
use crate::policy::Report;
use crate::safe::{multisend_calldata, MultiSendEntry, Operation, SafeTxFields};
pub use crate::timelock::timelock_calldata;
use crate::timelock::{TimelockCall, TimelockOp, TimelockStep};
use alloy::consensus::SignableTransaction;
use alloy::dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier};
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::sol;
use alloy::sol_types::SolCall;
use std::collections::BTreeMap;

sol! {
    function upgradeToAndCall(address newImplementation, bytes data) external payable;
    function upgradeAndCall(address proxy, address implementation, bytes data) external payable;
    function upgradeTo(address newImplementation) external;
    function upgrade(address proxy, address implementation) external;
}

/// Why composition failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// No such playbook.
    #[error("no playbook {0:?} in the manifest (playbooks: {1})")]
    NoPlaybook(String, String),
    /// An argument has no single allowed value and none was given.
    #[error("action {action:?} argument `{arg}` needs a value ({constraint}): pass --arg {action}.{arg}=VALUE")]
    NeedsArg {
        /// Action.
        action: String,
        /// Argument.
        arg: String,
        /// Its constraint.
        constraint: String,
    },
    /// A given argument does not fit or breaks the constraint.
    #[error("--arg {action}.{arg}: {reason}")]
    BadArg {
        /// Action.
        action: String,
        /// Argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// Missing parameters for this kind of transaction.
    #[error("{0}")]
    Missing(String),
    /// A timelock delay below the manifest's minimum: the manifest refuses it.
    #[error("a timelock delay of {delay} s is below the manifest's min_delay {min_delay} s")]
    DelayTooShort {
        /// Asked.
        delay: u64,
        /// The manifest's minimum.
        min_delay: u64,
    },
    /// Composition produced something the policy refuses (a manifest inconsistency).
    #[error("the composed transaction is refused by verification: {0}")]
    Refused(String, Box<Report>),
    /// Decoding the composed calldata failed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Bundle consistency.
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
}

/// Parameters of a guardian-EOA transaction.
#[derive(Debug, Clone)]
pub struct EoaParams {
    /// Sender.
    pub from: Address,
    /// Account nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// maxFeePerGas (wei).
    pub max_fee_per_gas: u128,
    /// maxPriorityFeePerGas (wei).
    pub max_priority_fee_per_gas: u128,
}

/// Options for [`compose`].
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    /// Safe nonce (Safe and timelock playbooks).
    pub safe_nonce: Option<U256>,
    /// EOA parameters (EOA playbooks).
    pub eoa: Option<EoaParams>,
    /// Argument values by `action.arg` (or just `arg`).
    pub args: BTreeMap<String, String>,
    /// Timelock predecessor (default zero).
    pub predecessor: B256,
    /// Timelock salt (default: derived from manifest hash, playbook and nonce).
    pub salt: Option<B256>,
    /// Timelock delay (default: the manifest's `min_delay`).
    pub delay: Option<u64>,
    /// Unix seconds recorded in the bundle.
    pub created_at: u64,
}

/// A composed, verified bundle.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The bundle to write.
    pub bundle: Bundle,
    /// Its verification report (allowed).
    pub report: Report,
}

/// One resolved call.
#[derive(Debug, Clone)]
pub struct PlannedCall {
    /// Action id.
    pub action: String,
    /// Target.
    pub to: Address,
    /// Wei.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
}

fn single_value(c: &Constraint) -> Option<DynSolValue> {
    match c {
        Constraint::Eq(v) => Some(v.clone()),
        Constraint::OneOf(l) if l.len() == 1 => l.first().cloned(),
        _ => None,
    }
}

fn arg_value(
    a: &Action,
    name: &str,
    ty: &DynSolType,
    c: &Constraint,
    opts: &ComposeOptions,
) -> Result<DynSolValue, ComposeError> {
    let given = opts
        .args
        .get(&format!("{}.{name}", a.id))
        .or_else(|| opts.args.get(name));
    match given {
        Some(text) => {
            let v = ty.coerce_str(text).map_err(|e| ComposeError::BadArg {
                action: a.id.clone(),
                arg: name.into(),
                reason: format!("{text:?} does not fit {}: {e}", ty.sol_type_name()),
            })?;
            if let ConstraintCheck::Broken(why) = c.check(&v) {
                return Err(ComposeError::BadArg {
                    action: a.id.clone(),
                    arg: name.into(),
                    reason: why,
                });
            }
            Ok(v)
        }
        None => single_value(c).ok_or_else(|| ComposeError::NeedsArg {
            action: a.id.clone(),
            arg: name.into(),
            constraint: c.describe(),
        }),
    }
}

/// Resolves an action into its call.
pub fn plan_action(
    m: &Manifest,
    a: &Action,
    opts: &ComposeOptions,
) -> Result<PlannedCall, ComposeError> {
    let c = m
        .contract(&a.contract)
        .ok_or_else(|| ComposeError::Missing(format!("contract {:?} missing", a.contract)))?;
    let constraint = |n: &str| {
        a.args
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, c)| c.clone())
            .unwrap_or(Constraint::Any)
    };
    let value = single_value(&a.value)
        .and_then(|v| match v {
            DynSolValue::Uint(u, _) => Some(u),
            _ => None,
        })
        .unwrap_or(U256::ZERO);
    let (to, data): (Address, Bytes) = match &a.call {
        ActionCall::Function(f) => {
            let mut values = Vec::new();
            for (i, p) in f.inputs.iter().enumerate() {
                let name = if p.name.is_empty() {
                    format!("arg{i}")
                } else {
                    p.name.clone()
                };
                let ty = p
                    .resolve()
                    .map_err(|e| ComposeError::Missing(e.to_string()))?;
                values.push(arg_value(a, &name, &ty, &constraint(&name), opts)?);
            }
            let data = f
                .abi_encode_input(&values)
                .map_err(|e| ComposeError::Missing(e.to_string()))?;
            (c.address, data.into())
        }
        ActionCall::Upgrade => {
            let imp = match arg_value(
                a,
                "implementation",
                &DynSolType::Address,
                &constraint("implementation"),
                opts,
            )? {
                DynSolValue::Address(x) => x,
                _ => Address::ZERO,
            };
            use crate::decode::UpgradeShape as U;
            let shape = c.upgrade_call.unwrap_or(U::UpgradeToAndCall);
            let init: Bytes = if shape.has_data() {
                match arg_value(a, "data", &DynSolType::Bytes, &constraint("data"), opts)? {
                    DynSolValue::Bytes(b) => b.into(),
                    _ => Bytes::new(),
                }
            } else {
                Bytes::new()
            };
            let encoded: Bytes = match shape {
                U::UpgradeToAndCall => upgradeToAndCallCall {
                    newImplementation: imp,
                    data: init,
                }
                .abi_encode()
                .into(),
                U::UpgradeTo => upgradeToCall {
                    newImplementation: imp,
                }
                .abi_encode()
                .into(),
                U::UpgradeAndCall => upgradeAndCallCall {
                    proxy: c.address,
                    implementation: imp,
                    data: init,
                }
                .abi_encode()
                .into(),
                U::Upgrade => upgradeCall {
                    proxy: c.address,
                    implementation: imp,
                }
                .abi_encode()
                .into(),
            };
            match &c.proxy {
                ProxyKind::Uups => (c.address, encoded),
                ProxyKind::Transparent { proxy_admin } => (*proxy_admin, encoded),
                ProxyKind::Beacon { beacon } => (*beacon, encoded),
                ProxyKind::None => {
                    return Err(ComposeError::Missing(format!(
                        "contract {} is not a proxy",
                        c.id
                    )))
                }
            }
        }
    };
    Ok(PlannedCall {
        action: a.id.clone(),
        to,
        value,
        data,
    })
}

fn default_salt(m: &Manifest, playbook: &str, nonce: U256) -> B256 {
    keccak256(format!("breakglass {:#x} {playbook} {nonce}", m.hash))
}

fn timelock_safe_tx(tl_address: Address, op: &TimelockOp, nonce: U256) -> SafeTxFields {
    // The timelock pays any call value from its own balance: the Safe sends nothing.
    SafeTxFields::new(
        tl_address,
        U256::ZERO,
        timelock_calldata(op),
        Operation::Call,
        nonce,
    )
}

fn finish(m: &Manifest, bundle: Bundle) -> Result<Composed, ComposeError> {
    bundle.recompute()?;
    let v = bundle::verify_bundle(m, &bundle)?;
    if !v.report().allowed {
        let reasons: Vec<String> = v
            .report()
            .findings
            .iter()
            .map(|f| f.message.clone())
            .collect();
        return Err(ComposeError::Refused(
            reasons.join("; "),
            Box::new(v.report().clone()),
        ));
    }
    Ok(Composed {
        bundle,
        report: v.into_report(),
    })
}

fn safe_bundle(
    m: &Manifest,
    playbook: Option<&str>,
    actions: Vec<String>,
    tx: SafeTxFields,
    timelock: Option<TimelockOp>,
    created_at: u64,
) -> Result<Bundle, ComposeError> {
    let cfg = m
        .safe
        .as_ref()
        .ok_or_else(|| ComposeError::Missing("the manifest has no [safe]".into()))?;
    let eip712_domain = cfg.version.eip712_domain();
    let hashes = tx.hashes_in(eip712_domain, m.chain_id, cfg.address);
    Ok(Bundle {
        format: bundle::FORMAT.into(),
        manifest: ManifestRef {
            name: m.name.clone(),
            hash: m.hash,
        },
        chain_id: m.chain_id,
        playbook: playbook.map(str::to_string),
        actions,
        created_at,
        safe_tx: Some(SafeRequest {
            safe: cfg.address,
            tx,
            hashes,
            eip712_domain,
        }),
        eoa_tx: None,
        timelock,
        signatures: Vec::new(),
        signed_tx: None,
        receipt: None,
        postconditions: None,
        audit: Vec::new(),
        simulation: None,
    })
}

/// Composes a playbook into a verified bundle.
pub fn compose(
    m: &Manifest,
    playbook_id: &str,
    opts: &ComposeOptions,
) -> Result<Composed, ComposeError> {
    let pb = m.playbook(playbook_id).ok_or_else(|| {
        ComposeError::NoPlaybook(
            playbook_id.into(),
            m.playbooks
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let actions: Vec<&Action> = pb.actions.iter().filter_map(|id| m.action(id)).collect();
    let via = actions.first().map(|a| a.via).unwrap_or(Via::Safe);
    if actions.iter().any(|a| a.via != via) {
        return compose_mixed(m, &pb.id, &actions, opts);
    }
    let calls: Vec<PlannedCall> = actions
        .iter()
        .map(|a| plan_action(m, a, opts))
        .collect::<Result<_, _>>()?;
    let ids: Vec<String> = calls.iter().map(|c| c.action.clone()).collect();
    match via {
        Via::Safe => {
            let cfg = m
                .safe
                .as_ref()
                .ok_or_else(|| ComposeError::Missing("the manifest has no [safe]".into()))?;
            let nonce = opts.safe_nonce.ok_or_else(|| ComposeError::Missing("the Safe nonce is needed: pass --nonce N, or --rpc-url URL to read it from the Safe".into()))?;
            let tx = if let [one] = calls.as_slice() {
                SafeTxFields::new(one.to, one.value, one.data.clone(), Operation::Call, nonce)
            } else {
                let entries: Vec<MultiSendEntry> = calls
                    .iter()
                    .map(|c| MultiSendEntry {
                        operation: Operation::Call,
                        to: c.to,
                        value: c.value,
                        data: c.data.clone(),
                    })
                    .collect();
                SafeTxFields::new(
                    cfg.multisend_call_only,
                    U256::ZERO,
                    multisend_calldata(&entries),
                    Operation::DelegateCall,
                    nonce,
                )
            };
            finish(
                m,
                safe_bundle(m, Some(&pb.id), ids, tx, None, opts.created_at)?,
            )
        }
        Via::Timelock => {
            let tl = m
                .timelock
                .as_ref()
                .ok_or_else(|| ComposeError::Missing("the manifest has no [timelock]".into()))?;
            let nonce = opts.safe_nonce.ok_or_else(|| ComposeError::Missing("the Safe nonce is needed: pass --nonce N, or --rpc-url URL to read it from the Safe".into()))?;
            let delay = opts.delay.unwrap_or(tl.min_delay);
            if delay < tl.min_delay {
                return Err(ComposeError::DelayTooShort {
                    delay,
                    min_delay: tl.min_delay,
                });
            }
            let tcalls: Vec<TimelockCall> = calls
                .iter()
                .map(|c| TimelockCall {
                    target: c.to,
                    value: c.value,
                    data: c.data.clone(),
                })
                .collect();
            let salt = opts.salt.unwrap_or_else(|| default_salt(m, &pb.id, nonce));
            let operation_id =
                bundle::timelock_operation_id(&tcalls, opts.predecessor, salt, tcalls.len() != 1);
            let op = TimelockOp {
                step: TimelockStep::Schedule,
                address: tl.address,
                calls: tcalls,
                predecessor: opts.predecessor,
                salt,
                delay,
                operation_id,
            };
            let tx = timelock_safe_tx(tl.address, &op, nonce);
            finish(
                m,
                safe_bundle(m, Some(&pb.id), ids, tx, Some(op), opts.created_at)?,
            )
        }
        Via::Eoa => {
            let [one] = calls.as_slice() else {
                return Err(ComposeError::Missing(format!(
                    "playbook {:?} has {} guardian-EOA actions; an EOA playbook composes one transaction, so give it one action",
                    pb.id,
                    calls.len()
                )));
            };
            let p = opts.eoa.clone().ok_or_else(|| {
                ComposeError::Missing("an EOA transaction needs --from, --nonce, --gas-limit, --max-fee and --priority-fee (or --rpc-url to fill them from the chain)".into())
            })?;
            if p.max_fee_per_gas > u128::from(u64::MAX) || p.gas_limit > 100_000_000 {
                return Err(ComposeError::Missing(format!(
                    "--max-fee {} wei per gas / --gas-limit {} is absurd: check the units (wei, not gwei or ether)",
                    p.max_fee_per_gas, p.gas_limit
                )));
            }
            if p.max_priority_fee_per_gas > p.max_fee_per_gas {
                return Err(ComposeError::Missing(format!(
                    "--priority-fee {} is above --max-fee {}",
                    p.max_priority_fee_per_gas, p.max_fee_per_gas
                )));
            }
            let mut req = EoaRequest {
                from: p.from,
                to: one.to,
                value: one.value,
                data: one.data.clone(),
                nonce: p.nonce,
                gas_limit: p.gas_limit,
                max_fee_per_gas: p.max_fee_per_gas,
                max_priority_fee_per_gas: p.max_priority_fee_per_gas,
                signing_hash: B256::ZERO,
            };
            req.signing_hash = req.unsigned(m.chain_id).signature_hash();
            let b = Bundle {
                format: bundle::FORMAT.into(),
                manifest: ManifestRef {
                    name: m.name.clone(),
                    hash: m.hash,
                },
                chain_id: m.chain_id,
                playbook: Some(pb.id.clone()),
                actions: ids,
                created_at: opts.created_at,
                safe_tx: None,
                eoa_tx: Some(req),
                timelock: None,
                signatures: Vec::new(),
                signed_tx: None,
                receipt: None,
                postconditions: None,
                audit: Vec::new(),
                simulation: None,
            };
            finish(m, b)
        }
    }
}

/// A playbook whose direct (Safe) actions come first and whose timelock actions follow: one Safe batch
/// through MultiSendCallOnly that makes the direct calls and then schedules the timelock's operation.
fn compose_mixed(
    m: &Manifest,
    playbook: &str,
    actions: &[&Action],
    opts: &ComposeOptions,
) -> Result<Composed, ComposeError> {
    let cfg = m
        .safe
        .as_ref()
        .ok_or_else(|| ComposeError::Missing("the manifest has no [safe]".into()))?;
    let tl = m
        .timelock
        .as_ref()
        .ok_or_else(|| ComposeError::Missing("the manifest has no [timelock]".into()))?;
    let nonce = opts.safe_nonce.ok_or_else(|| {
        ComposeError::Missing(
            "the Safe nonce is needed: pass --nonce N, or --rpc-url URL to read it from the Safe"
                .into(),
        )
    })?;
    let delay = opts.delay.unwrap_or(tl.min_delay);
    if delay < tl.min_delay {
        return Err(ComposeError::DelayTooShort {
            delay,
            min_delay: tl.min_delay,
        });
    }
    let mut entries = Vec::new();
    let mut tcalls = Vec::new();
    let mut ids = Vec::new();
    for a in actions {
        let c = plan_action(m, a, opts)?;
        ids.push(c.action.clone());
        match a.via {
            Via::Safe => entries.push(MultiSendEntry {
                operation: Operation::Call,
                to: c.to,
                value: c.value,
                data: c.data,
            }),
            Via::Timelock => tcalls.push(TimelockCall {
                target: c.to,
                value: c.value,
                data: c.data,
            }),
            Via::Eoa => {
                return Err(ComposeError::Missing(format!(
                    "playbook {playbook:?} mixes a guardian-EOA action into a Safe batch"
                )))
            }
        }
    }
    let salt = opts
        .salt
        .unwrap_or_else(|| default_salt(m, playbook, nonce));
    let operation_id =
        bundle::timelock_operation_id(&tcalls, opts.predecessor, salt, tcalls.len() != 1);
    let op = TimelockOp {
        step: TimelockStep::Schedule,
        address: tl.address,
        calls: tcalls,
        predecessor: opts.predecessor,
        salt,
        delay,
        operation_id,
    };
    entries.push(MultiSendEntry {
        operation: Operation::Call,
        to: tl.address,
        value: U256::ZERO,
        data: timelock_calldata(&op),
    });
    let tx = SafeTxFields::new(
        cfg.multisend_call_only,
        U256::ZERO,
        multisend_calldata(&entries),
        Operation::DelegateCall,
        nonce,
    );
    finish(
        m,
        safe_bundle(m, Some(playbook), ids, tx, Some(op), opts.created_at)?,
    )
}

/// Builds the `execute`/`executeBatch` Safe tx for a bundle that scheduled a timelock operation.
pub fn compose_execute_scheduled(
    m: &Manifest,
    scheduled: &Bundle,
    nonce: U256,
    created_at: u64,
) -> Result<Composed, ComposeError> {
    let v = bundle::verify_bundle(m, scheduled)?;
    if !v.report().allowed {
        return Err(ComposeError::Missing(
            "the scheduled bundle is refused by verification: it cannot be executed".into(),
        ));
    }
    let op = scheduled
        .timelock
        .as_ref()
        .filter(|t| t.step == TimelockStep::Schedule)
        .ok_or_else(|| {
            ComposeError::Missing("the bundle does not schedule a timelock operation".into())
        })?;
    let mut exec = op.clone();
    exec.step = TimelockStep::Execute;
    let tx = timelock_safe_tx(op.address, &exec, nonce);
    // A mixed playbook's direct calls were made when it was scheduled: the execution carries the
    // timelock's actions only.
    let actions: Vec<String> = scheduled
        .actions
        .iter()
        .filter(|id| m.action(id).is_some_and(|a| a.via == Via::Timelock))
        .cloned()
        .collect();
    finish(
        m,
        safe_bundle(
            m,
            scheduled.playbook.as_deref(),
            actions,
            tx,
            Some(exec),
            created_at,
        )?,
    )
}
