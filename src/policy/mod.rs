//! Call tree × manifest → report. Every call either matches a manifest action (named, with each argument
//! constraint that held) or is refused with the reason. Some findings are critical whatever the manifest
//! says: DELEGATECALL to anything but the pinned MultiSendCallOnly (Bybit, Feb 2025), DELEGATECALL inside
//! a batch, changes to who controls the Safe, a wrong chain or Safe, ETH the manifest does not allow, and
//! refund fields that let the executor drain the Safe.

pub mod render;

pub use render::render_text;

use crate::decode::{self, CallNode, DecodeError, Decoded, Family, Origin};
use crate::manifest::{Action, ActionCall, ConstraintCheck, Manifest, ProxyKind, Via};
use crate::safe::{Operation, SafeHashes, SafeTxFields};
use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, U256};
use serde::Serialize;
use std::collections::BTreeMap;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Always refused, whatever the manifest says: the shapes of real heists.
    Critical,
    /// Not allowed by the manifest.
    Refused,
    /// Allowed, but worth a look.
    Warning,
    /// For the record.
    Info,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// A stable code, e.g. `delegatecall`, `safe_admin`, `not_in_manifest`.
    pub code: &'static str,
    /// The call it is about (tree path), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What it means.
    pub message: String,
}

/// The verdict on one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Matches a manifest action.
    Allowed {
        /// The action id.
        action: String,
        /// Each constraint that held.
        checks: Vec<String>,
    },
    /// A wrapper (batch, timelock operation, upgrade init) whose contents are judged on their own.
    Structural {
        /// What it is.
        what: String,
    },
    /// Not allowed.
    Refused {
        /// Why.
        reason: String,
    },
}

/// What kind of transaction was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TxContext {
    /// A Safe transaction, signed by owners.
    Safe {
        /// The Safe.
        safe: Address,
        /// Its fields.
        tx: Box<SafeTxFields>,
        /// The hashes the Ledger shows and the owners sign.
        hashes: SafeHashes,
    },
    /// A plain transaction from an account.
    Plain {
        /// Sender, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<Address>,
        /// What it may cost, for an EIP-1559 transaction whose gas fields are known.
        #[serde(skip_serializing_if = "Option::is_none")]
        fee: Option<FeeInfo>,
    },
}

/// The most an EIP-1559 transaction may cost its sender, and the manifest's limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeInfo {
    /// Gas limit.
    pub gas_limit: u64,
    /// maxFeePerGas (wei).
    pub max_fee_per_gas: u128,
    /// maxPriorityFeePerGas (wei).
    pub max_priority_fee_per_gas: u128,
    /// gas_limit × maxFeePerGas, in wei (as a decimal string: it can exceed 2^64).
    #[serde(serialize_with = "ser_u128_str")]
    pub max_total_wei: u128,
    /// The same, in ETH.
    pub max_total_eth: String,
    /// The manifest's `policy.max_tx_fee`, in wei.
    #[serde(serialize_with = "ser_u128_str")]
    pub limit_wei: u128,
}

fn ser_u128_str<S: serde::Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// Checks an EIP-1559 transaction's fee cap (`gas_limit × maxFeePerGas`) against the manifest's
/// `policy.max_tx_fee`: above it the report is refused (critical), and the fee is recorded in the report
/// so every screen says what the transaction may cost in ETH before anyone signs.
pub fn check_eoa_fee(
    m: &Manifest,
    report: &mut Report,
    gas_limit: u64,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
) {
    let total = u128::from(gas_limit).saturating_mul(max_fee_per_gas);
    let limit = m.policy.max_tx_fee_wei;
    if let TxContext::Plain { fee, .. } = &mut report.context {
        *fee = Some(FeeInfo {
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            max_total_wei: total,
            max_total_eth: crate::manifest::format_eth(total),
            limit_wei: limit,
        });
    }
    if total > limit {
        report.findings.push(Finding {
            severity: Severity::Critical,
            code: "fee_cap",
            path: None,
            message: format!(
                "this transaction may cost up to {} (gas limit {gas_limit} × max fee {max_fee_per_gas} wei per gas), above the manifest's limit of {} (policy.max_tx_fee): check the units (wei, not gwei or ether)",
                crate::manifest::format_eth(total),
                crate::manifest::format_eth(limit)
            ),
        });
        report.findings.sort_by_key(|f| f.severity);
        report.allowed = false;
    }
}

/// The verification report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Manifest name.
    pub manifest: String,
    /// Manifest hash.
    pub manifest_hash: String,
    /// Chain id of the transaction.
    pub chain_id: u64,
    /// Safe tx or plain tx.
    pub context: TxContext,
    /// The decoded calls.
    pub tree: CallNode,
    /// Verdict per tree path.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Manifest actions matched, in call order.
    pub actions: Vec<String>,
    /// Whether everything is allowed (no critical or refused finding).
    pub allowed: bool,
}

impl Report {
    /// The Safe hashes, for a Safe tx.
    pub fn safe_hashes(&self) -> Option<&SafeHashes> {
        match &self.context {
            TxContext::Safe { hashes, .. } => Some(hashes),
            TxContext::Plain { .. } => None,
        }
    }

    /// Critical findings.
    pub fn criticals(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Critical)
    }
}

/// Whether a rule decided a call's verdict, or the next rule should look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The next rule decides.
    Next,
    /// This rule decided.
    Done,
}

/// A rule on one call of the tree.
type CallRule = fn(&mut Checker<'_>, &CallNode, Via, Option<Address>) -> Flow;

/// The policy for each call, in order: the order is the policy. The always-critical rules come first, so
/// no manifest entry can reach a call they refuse.
const CALL_RULES: &[(&str, CallRule)] = &[
    ("safe_admin", |c, n, v, s| c.rule_safe_admin(n, v, s)),
    ("control_change", |c, n, v, s| {
        c.rule_control_change(n, v, s)
    }),
    ("account_to_safe", |c, n, v, s| {
        c.rule_account_to_safe(n, v, s)
    }),
    ("safe_self_call", |c, n, v, s| {
        c.rule_safe_self_call(n, v, s)
    }),
    ("timelock", |c, n, v, s| c.rule_timelock(n, v, s)),
    ("manifest_action", |c, n, v, s| {
        c.rule_manifest_action(n, v, s)
    }),
];

struct Checker<'m> {
    m: &'m Manifest,
    findings: Vec<Finding>,
    verdicts: BTreeMap<String, Verdict>,
    actions: Vec<String>,
}

fn short(a: &Address) -> String {
    a.to_checksum(None)
}

impl<'m> Checker<'m> {
    fn finding(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: Option<&str>,
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            code,
            path: path.map(str::to_string),
            message,
        });
    }

    fn refuse(&mut self, node: &CallNode, code: &'static str, reason: String) {
        self.finding(Severity::Refused, code, Some(&node.path), reason.clone());
        self.verdicts
            .insert(node.path.clone(), Verdict::Refused { reason });
    }

    fn critical(&mut self, node: &CallNode, code: &'static str, reason: String) {
        self.finding(Severity::Critical, code, Some(&node.path), reason.clone());
        self.verdicts
            .insert(node.path.clone(), Verdict::Refused { reason });
    }

    fn describe(&self, node: &CallNode) -> String {
        let target = self
            .m
            .contract_at(&node.to)
            .map(|c| format!("{} ({})", c.id, short(&node.to)))
            .unwrap_or_else(|| short(&node.to));
        match &node.decoded {
            Decoded::Empty => format!("a plain transfer to {target}"),
            Decoded::Function { signature, .. } => format!("{signature} on {target}"),
            Decoded::Unknown { selector, .. } => {
                format!(
                    "unknown function 0x{} on {target} (no ABI knows this selector)",
                    alloy::hex::encode(selector)
                )
            }
        }
    }

    /// A call with its decoded arguments, e.g. `initialize(address owner = 0x…) on pool (0x…)`.
    fn describe_with_args(&self, node: &CallNode) -> String {
        match &node.decoded {
            Decoded::Function { name, args, .. } => {
                let shown: Vec<String> = args
                    .iter()
                    .map(|a| {
                        let mut v = crate::manifest::show_value(&a.value);
                        if v.chars().count() > 80 {
                            let head: String = v.chars().take(66).collect();
                            v = format!("{head}… ({} chars)", v.chars().count());
                        }
                        format!("{} {} = {v}", a.ty, a.name)
                    })
                    .collect();
                let target = self
                    .m
                    .contract_at(&node.to)
                    .map(|c| format!("{} ({})", c.id, short(&node.to)))
                    .unwrap_or_else(|| short(&node.to));
                format!("{name}({}) on {target}", shown.join(", "))
            }
            _ => self.describe(node),
        }
    }

    /// The address an action's call goes to, and whether a node's call is that action's function.
    fn action_matches_call(&self, a: &Action, node: &CallNode) -> bool {
        let Some(c) = self.m.contract(&a.contract) else {
            return false;
        };
        let sig = node.signature();
        // Upgrades are recognised by their bytes, in every shape in use (OZ 4 and 5, Optimism), never by
        // the names an ABI gives their arguments.
        let upgrade = match a.call {
            ActionCall::Upgrade => decode::upgrade_call(&node.data),
            ActionCall::Function(_) => None,
        };
        match (&a.call, &c.proxy) {
            (ActionCall::Function(f), _) => {
                node.to == c.address && sig == Some(f.signature().as_str())
            }
            (ActionCall::Upgrade, ProxyKind::Uups) => {
                node.to == c.address
                    && upgrade.is_some_and(|u| {
                        matches!(
                            u.shape,
                            decode::UpgradeShape::UpgradeToAndCall
                                | decode::UpgradeShape::UpgradeTo
                        )
                    })
            }
            (ActionCall::Upgrade, ProxyKind::Transparent { proxy_admin }) => {
                node.to == *proxy_admin
                    && upgrade.is_some_and(|u| {
                        matches!(
                            u.shape,
                            decode::UpgradeShape::UpgradeAndCall | decode::UpgradeShape::Upgrade
                        ) && u.proxy == Some(c.address)
                    })
            }
            (ActionCall::Upgrade, ProxyKind::Beacon { beacon }) => {
                node.to == *beacon
                    && upgrade.is_some_and(|u| u.shape == decode::UpgradeShape::UpgradeTo)
            }
            (ActionCall::Upgrade, ProxyKind::None) => false,
        }
    }

    /// Checks an action's constraints on a node. Ok(checks) or Err((reasons, value_broken)).
    fn check_action(
        &self,
        a: &Action,
        node: &CallNode,
    ) -> Result<Vec<String>, (Vec<String>, bool)> {
        let mut held = Vec::new();
        let mut broken = Vec::new();
        let mut value_broken = false;
        match a.value.check(&DynSolValue::Uint(node.value, 256)) {
            ConstraintCheck::Held(t) => held.push(format!("value {t}")),
            ConstraintCheck::Broken(t) => {
                value_broken = true;
                broken.push(format!("ETH value {t}"));
            }
        }
        let upgrade = match a.call {
            ActionCall::Upgrade => decode::upgrade_call(&node.data),
            ActionCall::Function(_) => None,
        };
        for (name, c) in &a.args {
            let value = match (&upgrade, name.as_str()) {
                (Some(u), "implementation") => Some(DynSolValue::Address(u.implementation)),
                (Some(u), "data") => Some(DynSolValue::Bytes(u.data.to_vec())),
                _ => node.arg(name).cloned(),
            };
            match value.as_ref() {
                None => broken.push(format!("argument `{name}` is missing")),
                Some(v) => match c.check(v) {
                    ConstraintCheck::Held(t) => held.push(format!("{name} {t}")),
                    ConstraintCheck::Broken(t) => broken.push(format!("argument `{name}` {t}")),
                },
            }
        }
        if broken.is_empty() {
            if a.implementation_codehash.is_some() {
                held.push("implementation code hash is pinned (checked against the chain before execution)".into());
            }
            Ok(held)
        } else {
            Err((broken, value_broken))
        }
    }

    /// Judges one call: the rules of [`CALL_RULES`] in order, until one decides.
    fn check_call(&mut self, node: &CallNode, via: Via, safe: Option<Address>) {
        for (_, rule) in CALL_RULES {
            if rule(self, node, via, safe) == Flow::Done {
                return;
            }
        }
    }

    /// Who controls the Safe: never, whatever the manifest says, whichever ABI decoded the call.
    fn rule_safe_admin(&mut self, node: &CallNode, _via: Via, safe: Option<Address>) -> Flow {
        // Who controls the Safe: never, whatever the manifest says. Keyed on the selector, not on the ABI
        // that decoded the call (a manifest ABI listing `enableModule` must not relabel it).
        if node.data.len() >= 4 && decode::is_safe_admin_selector(&node.data[..4]) {
            let signature = match &node.decoded {
                Decoded::Function { signature, .. } => signature.clone(),
                _ => format!("0x{}", alloy::hex::encode(&node.data[..4])),
            };
            let whose = if Some(node.to) == safe {
                "the Safe's"
            } else {
                "a Safe's"
            };
            self.critical(
                node,
                "safe_admin",
                format!("{signature} changes {whose} owners, threshold, modules, guard or fallback handler: breakglass never signs this"),
            );
            return Flow::Done;
        }
        Flow::Next
    }

    /// Handing over control of a contract (ownership, proxy admin, default admin role): never, whatever
    /// the manifest says, whichever ABI decoded the call.
    fn rule_control_change(&mut self, node: &CallNode, _via: Via, _safe: Option<Address>) -> Flow {
        let Some(sig) = decode::control_change(&node.data) else {
            return Flow::Next;
        };
        let d = self.describe(node);
        self.critical(
            node,
            "control_change",
            format!("{d} hands over control of the contract ({sig}: ownership, proxy admin or the default admin role); breakglass never signs this"),
        );
        Flow::Done
    }

    /// A plain transaction from an account to the Safe is no action (approveHash approves blind).
    fn rule_account_to_safe(&mut self, node: &CallNode, via: Via, _safe: Option<Address>) -> Flow {
        if via == Via::Eoa && Some(node.to) == self.m.safe.as_ref().map(|c| c.address) {
            let d = self.describe(node);
            let extra = if node.signature() == Some("approveHash(bytes32)") {
                ": approveHash approves a Safe transaction by its hash alone, so breakglass cannot see what it approves; verify the Safe transaction itself, then sign it with `breakglass sign`"
            } else {
                ""
            };
            self.refuse(
                node,
                "not_in_manifest",
                format!("{d} is not an action in the manifest{extra}"),
            );
            return Flow::Done;
        }
        Flow::Next
    }

    /// A call from the Safe to itself is Safe administration.
    fn rule_safe_self_call(&mut self, node: &CallNode, _via: Via, safe: Option<Address>) -> Flow {
        if Some(node.to) == safe {
            let d = self.describe(node);
            self.critical(
                node,
                "safe_self_call",
                format!("{d}: a call from the Safe to itself is not an emergency action"),
            );
            return Flow::Done;
        }
        Flow::Next
    }

    /// A timelock operation: the wrapper is structural, its payloads are judged as actions via the timelock; only the Safe schedules.
    fn rule_timelock(&mut self, node: &CallNode, via: Via, safe: Option<Address>) -> Flow {
        // Timelock operations: the wrapper is structural, the payloads are the actions.
        if let (
            Some(tl),
            Decoded::Function {
                family: Family::Timelock,
                name,
                ..
            },
        ) = (&self.m.timelock, &node.decoded)
        {
            if node.to == tl.address
                && matches!(
                    name.as_str(),
                    "schedule" | "scheduleBatch" | "execute" | "executeBatch"
                )
            {
                if via == Via::Timelock {
                    self.refuse(
                        node,
                        "nested_timelock",
                        "a timelock operation inside a timelock operation".into(),
                    );
                    return Flow::Done;
                }
                if via != Via::Safe {
                    self.refuse(
                        node,
                        "wrong_via",
                        format!("timelock {name} sent by an account: timelock actions are scheduled and executed by the manifest's Safe, never by another route"),
                    );
                    return Flow::Done;
                }
                if !node.value.is_zero() {
                    self.critical(
                        node,
                        "value",
                        format!(
                            "sends {} wei to the timelock, which the manifest does not allow",
                            node.value
                        ),
                    );
                    return Flow::Done;
                }
                if name.starts_with("schedule") {
                    let delay = match node.arg("delay") {
                        Some(DynSolValue::Uint(d, _)) => *d,
                        _ => U256::ZERO,
                    };
                    if delay < U256::from(tl.min_delay) {
                        self.refuse(
                            node,
                            "timelock_delay",
                            format!(
                                "delay {delay} s is below the manifest's min_delay {} s",
                                tl.min_delay
                            ),
                        );
                        return Flow::Done;
                    }
                }
                let id = node
                    .timelock_operation_id
                    .map(|h| format!("{h:#x}"))
                    .unwrap_or_default();
                self.verdicts.insert(
                    node.path.clone(),
                    Verdict::Structural {
                        what: format!("timelock {name}, operation id {id}"),
                    },
                );
                for c in &node.children {
                    self.check_call(c, Via::Timelock, safe);
                }
                return Flow::Done;
            }
        }
        Flow::Next
    }

    /// Everything else must be a manifest action of the right via, with its constraints held.
    fn rule_manifest_action(&mut self, node: &CallNode, via: Via, _safe: Option<Address>) -> Flow {
        // Manifest actions for this call.
        let candidates: Vec<&Action> = self
            .m
            .actions
            .iter()
            .filter(|a| self.action_matches_call(a, node))
            .collect();
        let same_via: Vec<&&Action> = candidates.iter().filter(|a| a.via == via).collect();
        let mut first_failure: Option<(String, Vec<String>, bool)> = None;
        for a in &same_via {
            match self.check_action(a, node) {
                Ok(checks) => {
                    if matches!(a.call, ActionCall::Upgrade) && a.implementation_codehash.is_none()
                    {
                        self.finding(
                            Severity::Warning,
                            "codehash_not_pinned",
                            Some(&node.path),
                            format!("action {} pins no implementation_codehash: the new implementation's code is not checked, only its address", a.id),
                        );
                    }
                    let mut checks = checks;
                    if let Some(l) = &a.storage_layout {
                        let findings = l.findings();
                        if findings.is_empty() {
                            checks.push(format!(
                                "storage layout {} → {} keeps every variable in place",
                                l.current_file, l.new_file
                            ));
                        }
                        for f in findings {
                            self.finding(
                                Severity::Refused,
                                "storage_layout",
                                Some(&node.path),
                                format!(
                                    "action {}: the upgrade's storage layout is unsafe ({} → {}): {}",
                                    a.id, l.current_file, l.new_file, f.message
                                ),
                            );
                        }
                    }
                    self.actions.push(a.id.clone());
                    self.verdicts.insert(
                        node.path.clone(),
                        Verdict::Allowed {
                            action: a.id.clone(),
                            checks,
                        },
                    );
                    for c in &node.children {
                        if c.origin == Origin::UpgradeInit {
                            self.verdicts.insert(
                                c.path.clone(),
                                Verdict::Structural {
                                    what: format!(
                                        "upgrade init call, covered by action {}'s data constraint",
                                        a.id
                                    ),
                                },
                            );
                        }
                    }
                    return Flow::Done;
                }
                Err((reasons, value_broken)) => {
                    // The closest action: the fewest constraints broken (the first in file order on a tie).
                    if first_failure
                        .as_ref()
                        .is_none_or(|(_, r, _)| reasons.len() < r.len())
                    {
                        first_failure = Some((a.id.clone(), reasons, value_broken));
                    }
                }
            }
        }
        let d = self.describe(node);
        if let Some((id, reasons, value_broken)) = first_failure {
            let mut msg = format!("{d} looks like action {id}, but {}", reasons.join("; "));
            // An upgrade's init call, decoded, rather than its hex.
            if let Some(init) = node
                .children
                .iter()
                .find(|c| c.origin == Origin::UpgradeInit)
            {
                msg.push_str(&format!(
                    "; its init call is {}",
                    self.describe_with_args(init)
                ));
            }
            if value_broken {
                self.critical(node, "value", msg);
            } else {
                self.refuse(node, "constraint", msg);
            }
            return Flow::Done;
        }
        if let Some(a) = candidates.first() {
            self.refuse(
                node,
                "wrong_via",
                format!(
                    "{d} is action {} only via {}, but here it goes via {}",
                    a.id,
                    a.via.as_str(),
                    via.as_str()
                ),
            );
            return Flow::Done;
        }
        if !node.value.is_zero() {
            self.critical(
                node,
                "value",
                format!(
                    "{d} sends {} wei, which the manifest does not allow",
                    node.value
                ),
            );
            return Flow::Done;
        }
        let why = match &node.decoded {
            Decoded::Function {
                family: Family::Common,
                name,
                ..
            } if name.contains("Ownership") || name.contains("Role") => {
                " (it changes who controls the contract)"
            }
            _ => "",
        };
        // What the manifest does allow on this contract, so the person sees what was probably meant.
        let here: Vec<String> = self
            .m
            .actions
            .iter()
            .filter(|a| {
                self.m
                    .contract(&a.contract)
                    .is_some_and(|c| match (&a.call, &c.proxy) {
                        (ActionCall::Upgrade, ProxyKind::Transparent { proxy_admin }) => {
                            *proxy_admin == node.to
                        }
                        (ActionCall::Upgrade, ProxyKind::Beacon { beacon }) => *beacon == node.to,
                        _ => c.address == node.to,
                    })
            })
            .take(3)
            .map(|a| format!("{} ({})", a.id, a.call_signature()))
            .collect();
        let closest = if here.is_empty() {
            String::new()
        } else {
            format!("; the manifest allows here: {}", here.join(", "))
        };
        self.refuse(
            node,
            "not_in_manifest",
            format!("{d} is not an action in the manifest{why}{closest}"),
        );
        Flow::Done
    }

    /// A DELEGATECALL to the manifest's Multicall3 batcher: only its batch functions, no ETH, each call
    /// judged as a call from the Safe, and none allowed to fail silently.
    fn check_multicall_batch(&mut self, tree: &CallNode, safe: Address) {
        let is_batch = matches!(
            &tree.decoded,
            Decoded::Function {
                family: Family::Multicall,
                ..
            }
        );
        if !is_batch {
            let d = self.describe(tree);
            self.critical(tree, "delegatecall", format!("DELEGATECALL to the batcher with {d} instead of aggregate3/aggregate/tryAggregate"));
            return;
        }
        if !tree.value.is_zero() {
            self.critical(
                tree,
                "value",
                format!(
                    "a batch with value {} wei, which the manifest does not allow",
                    tree.value
                ),
            );
            return;
        }
        if tree.children.is_empty() {
            self.refuse(tree, "empty_batch", "the Multicall3 batch is empty".into());
            return;
        }
        for i in decode::multicall_allows_failure(tree) {
            if let Some(c) = tree.children.get(i) {
                self.critical(
                    c,
                    "allow_failure",
                    format!("batch call {} may fail without reverting the batch (allowFailure / tryAggregate(false)): a pause that fails would look done", c.path),
                );
            }
        }
        self.verdicts.insert(
            tree.path.clone(),
            Verdict::Structural {
                what: format!(
                    "Multicall3 batch of {} calls (the manifest's batcher)",
                    tree.children.len()
                ),
            },
        );
        for entry in &tree.children {
            if !self.verdicts.contains_key(&entry.path) {
                self.check_call(entry, Via::Safe, Some(safe));
            }
        }
    }

    fn check_safe_call_tree(&mut self, tree: &CallNode, safe: Address) {
        let Some(cfg) = self.m.safe.clone() else {
            self.finding(
                Severity::Critical,
                "no_safe",
                None,
                "the manifest has no [safe]: it allows no Safe transaction".into(),
            );
            return;
        };
        let batcher = cfg.batcher.filter(|b| *b == tree.to);
        match tree.operation {
            Operation::DelegateCall if batcher.is_some() => {
                self.check_multicall_batch(tree, safe);
            }
            Operation::DelegateCall if tree.to != cfg.multisend_call_only => {
                self.critical(
                    tree,
                    "delegatecall",
                    format!(
                        "DELEGATECALL to {}: that contract's code would run with the Safe's own storage and could replace its owners or singleton (the Bybit attack, Feb 2025); the only allowed DELEGATECALL target is the manifest's MultiSendCallOnly {}",
                        short(&tree.to),
                        short(&cfg.multisend_call_only)
                    ),
                );
            }
            Operation::DelegateCall => {
                if !tree.value.is_zero() {
                    self.critical(
                        tree,
                        "value",
                        format!(
                            "a batch with value {} wei, which the manifest does not allow",
                            tree.value
                        ),
                    );
                    return;
                }
                if tree.signature() != Some("multiSend(bytes)") {
                    let d = self.describe(tree);
                    self.critical(tree, "delegatecall", format!("DELEGATECALL to MultiSendCallOnly with {d} instead of multiSend(bytes)"));
                    return;
                }
                if tree.children.is_empty() {
                    self.refuse(tree, "empty_batch", "the MultiSend batch is empty".into());
                    return;
                }
                self.verdicts.insert(
                    tree.path.clone(),
                    Verdict::Structural {
                        what: format!("MultiSendCallOnly batch of {} calls", tree.children.len()),
                    },
                );
                for entry in &tree.children {
                    if entry.to == Address::ZERO {
                        // MultiSend 1.5.0 runs an entry to address 0 as a call to `address(this)`, the Safe
                        // itself (it is delegatecalled); 1.3.0/1.4.1 call address 0. Either way it is no
                        // emergency action, and which library runs depends on a deployment we cannot see.
                        let d = self.describe(entry);
                        self.critical(
                            entry,
                            "safe_self_call",
                            format!("batch entry {} goes to address 0, which MultiSend 1.5 runs as a call from the Safe to itself ({d}): Safe administration is never an emergency action", entry.path),
                        );
                        continue;
                    }
                    if entry.operation == Operation::DelegateCall {
                        let d = self.describe(entry);
                        self.critical(
                            entry,
                            "inner_delegatecall",
                            format!("batch entry {} is a DELEGATECALL ({d}): it would run with the Safe's storage", entry.path),
                        );
                    } else {
                        self.check_call(entry, Via::Safe, Some(safe));
                    }
                }
            }
            Operation::Call => self.check_call(tree, Via::Safe, Some(safe)),
        }
    }

    fn finish(mut self, chain_id: u64, context: TxContext, tree: CallNode) -> Report {
        // Every decoded call must have a verdict; anything left over (e.g. unvisited children) is refused.
        for n in tree.walk() {
            if !self.verdicts.contains_key(&n.path) {
                let d = self.describe(n);
                self.finding(
                    Severity::Refused,
                    "unchecked",
                    Some(&n.path),
                    format!("{d} was not judged: a call above it is already refused"),
                );
                self.verdicts.insert(
                    n.path.clone(),
                    Verdict::Refused {
                        reason: "not judged: a call above it is refused".into(),
                    },
                );
            }
        }
        self.findings.sort_by_key(|f| f.severity);
        let allowed = !self
            .findings
            .iter()
            .any(|f| matches!(f.severity, Severity::Critical | Severity::Refused));
        Report {
            manifest: self.m.name.clone(),
            manifest_hash: self.m.hash_hex(),
            chain_id,
            context,
            tree,
            verdicts: self.verdicts,
            findings: self.findings,
            actions: self.actions,
            allowed,
        }
    }
}

fn new_checker(m: &Manifest) -> Checker<'_> {
    Checker {
        m,
        findings: Vec::new(),
        verdicts: BTreeMap::new(),
        actions: Vec::new(),
    }
}

fn check_chain(c: &mut Checker<'_>, chain_id: u64) {
    if chain_id != c.m.chain_id {
        c.finding(
            Severity::Critical,
            "wrong_chain",
            None,
            format!("chain id {chain_id} is not the manifest's chain {}: a signature here could be replayed there", c.m.chain_id),
        );
    }
}

fn check_safe_fields(c: &mut Checker<'_>, safe: Address, tx: &SafeTxFields) {
    match &c.m.safe {
        Some(cfg) if cfg.address != safe => c.finding(
            Severity::Critical,
            "wrong_safe",
            None,
            format!(
                "Safe {} is not the manifest's Safe {}",
                short(&safe),
                short(&cfg.address)
            ),
        ),
        _ => {}
    }
    if !tx.gas_price.is_zero()
        || tx.gas_token != Address::ZERO
        || tx.refund_receiver != Address::ZERO
    {
        c.finding(
            Severity::Critical,
            "refund",
            None,
            format!(
                "refund fields are set (gasPrice {}, gasToken {}, refundReceiver {}): the executor would be paid from the Safe, which can drain it; breakglass requires all three to be zero",
                tx.gas_price,
                short(&tx.gas_token),
                short(&tx.refund_receiver)
            ),
        );
    }
}

/// `safeTxGas`/`baseGas` must be zero unless every action of the transaction allows them
/// (`allow_safe_tx_gas = true`). With `safeTxGas > 0` the Safe does not revert when the inner call fails:
/// anyone can execute with a gas limit just large enough for the outer call, the inner pause runs out of
/// gas, and the nonce and the signatures are spent with nothing paused.
fn check_safe_gas(c: &mut Checker<'_>, tx: &SafeTxFields) {
    if tx.safe_tx_gas.is_zero() && tx.base_gas.is_zero() {
        return;
    }
    let risk = format!(
        "safeTxGas {} / baseGas {} are not zero: anyone can execute this with just enough gas for the Safe, let the inner call run out of gas, and the Safe still marks the nonce used: the signatures are spent and nothing happens",
        tx.safe_tx_gas, tx.base_gas
    );
    let allowing: Vec<&str> = c
        .actions
        .iter()
        .filter_map(|id| c.m.action(id))
        .filter(|a| a.allow_safe_tx_gas)
        .map(|a| a.id.as_str())
        .collect();
    if !c.actions.is_empty() && allowing.len() == c.actions.len() {
        let ids = allowing.join(", ");
        c.finding(
            Severity::Warning,
            "gas_fields_allowed",
            None,
            format!("CRITICAL RISK allowed by the manifest (allow_safe_tx_gas on {ids}): {risk}"),
        );
    } else {
        c.finding(
            Severity::Critical,
            "gas_fields",
            None,
            format!("{risk}; breakglass requires both to be zero unless every action allows it (allow_safe_tx_gas)"),
        );
    }
}

/// Verifies a Safe transaction of `safe` on `chain_id`.
pub fn verify_safe_tx(
    m: &Manifest,
    chain_id: u64,
    safe: Address,
    tx: &SafeTxFields,
) -> Result<Report, DecodeError> {
    let view = m.is_multichain().then(|| m.on_chain_id(chain_id)).flatten();
    let m = view.as_ref().unwrap_or(m);
    let tree = decode::decode_safe_tx(Some(m), tx)?;
    let mut c = new_checker(m);
    check_chain(&mut c, chain_id);
    check_safe_fields(&mut c, safe, tx);
    c.check_safe_call_tree(&tree, safe);
    check_safe_gas(&mut c, tx);
    let shape = m
        .safe
        .as_ref()
        .map_or(crate::safe::SafeDomain::ChainId, |s| {
            s.version.eip712_domain()
        });
    let hashes = tx.hashes_in(shape, chain_id, safe);
    Ok(c.finish(
        chain_id,
        TxContext::Safe {
            safe,
            tx: Box::new(tx.clone()),
            hashes,
        },
        tree,
    ))
}

/// Verifies a plain transaction (`to`, `value`, `data`) on `chain_id`. A plain transaction to the Safe
/// carrying `execTransaction` is opened and its Safe tx is checked as one.
pub fn verify_plain(
    m: &Manifest,
    chain_id: u64,
    from: Option<Address>,
    to: Address,
    value: U256,
    data: &[u8],
) -> Result<Report, DecodeError> {
    let view = m.is_multichain().then(|| m.on_chain_id(chain_id)).flatten();
    let m = view.as_ref().unwrap_or(m);
    let tree = decode::decode_call(Some(m), to, value, data)?;
    let mut c = new_checker(m);
    check_chain(&mut c, chain_id);
    if let Some(fields) = decode::exec_transaction_fields(&tree) {
        if !value.is_zero() {
            c.critical(
                &tree,
                "value",
                format!("sends {value} wei along with execTransaction"),
            );
        } else {
            c.verdicts.insert(
                tree.path.clone(),
                Verdict::Structural {
                    what: format!(
                        "execTransaction on Safe {} (submits a signed Safe tx)",
                        short(&to)
                    ),
                },
            );
        }
        check_safe_fields(&mut c, to, &fields);
        if let Some(inner) = tree.children.first() {
            c.check_safe_call_tree(inner, to);
        }
        check_safe_gas(&mut c, &fields);
    } else {
        c.check_call(&tree, Via::Eoa, None);
    }
    Ok(c.finish(chain_id, TxContext::Plain { from, fee: None }, tree))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use alloy::primitives::address;

    const SAFE: Address = address!("5AFe00000000000000000000000000000000a11C");
    const OTHER_SAFE: Address = address!("5AFe0000000000000000000000000000000000b2");

    fn manifest(extra: &str) -> Manifest {
        let text = format!(
            r#"version = 1
name = "unit"
chain_id = 1

[safe]
address = "{SAFE}"
version = "1.4.1"
owners = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]
threshold = 1

[contracts.other]
address = "{OTHER_SAFE}"
abi = ["function enableModule(address module)", "function pause()"]

[[actions]]
id = "enable"
contract = "other"
function = "enableModule(address)"
args = {{ module = {{ any = true }} }}

[[actions]]
id = "pause-other"
contract = "other"
function = "pause()"
{extra}
"#
        );
        Manifest::from_bytes(std::path::Path::new("unit.toml"), text.as_bytes()).unwrap()
    }

    fn codes(r: &Report) -> Vec<(&'static str, Severity)> {
        r.findings.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn safe_admin_is_critical_whatever_abi_decodes_it() {
        let m = manifest("");
        let data = alloy::primitives::Bytes::from(
            [
                &alloy::primitives::keccak256("enableModule(address)")[..4],
                &[0u8; 32][..],
            ]
            .concat(),
        );
        let tx = SafeTxFields::new(OTHER_SAFE, U256::ZERO, data, Operation::Call, U256::ZERO);
        let r = verify_safe_tx(&m, 1, SAFE, &tx).unwrap();
        assert!(!r.allowed);
        assert_eq!(codes(&r), [("safe_admin", Severity::Critical)]);
        assert!(r.actions.is_empty(), "the manifest action never matched");
    }

    #[test]
    fn safe_tx_gas_is_critical_unless_every_action_allows_it() {
        let pause = alloy::primitives::Bytes::copy_from_slice(
            &alloy::primitives::keccak256("pause()")[..4],
        );
        let mut tx = SafeTxFields::new(OTHER_SAFE, U256::ZERO, pause, Operation::Call, U256::ZERO);
        tx.safe_tx_gas = U256::from(50_000);
        let r = verify_safe_tx(&manifest(""), 1, SAFE, &tx).unwrap();
        assert_eq!(codes(&r), [("gas_fields", Severity::Critical)]);
        let r = verify_safe_tx(&manifest("allow_safe_tx_gas = true"), 1, SAFE, &tx).unwrap();
        assert!(r.allowed);
        assert_eq!(codes(&r), [("gas_fields_allowed", Severity::Warning)]);
    }

    #[test]
    fn refusals_name_the_closest_action_and_decode_init_calls() {
        let vault = address!("1A1b000000000000000000000000000000000002");
        let v2 = address!("00000000000000000000000000000000000000f2");
        let text = format!(
            r#"version = 1
name = "unit"
chain_id = 1

[safe]
address = "{SAFE}"
version = "1.4.1"
owners = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]
threshold = 1

[contracts.vault]
address = "{vault}"
proxy = "uups"
abi = ["function set(uint256 a, uint256 b)", "function initialize(address owner)"]

[[actions]]
id = "far"
contract = "vault"
function = "set(uint256,uint256)"
args = {{ a = {{ eq = 1 }}, b = {{ eq = 1 }} }}

[[actions]]
id = "near"
contract = "vault"
function = "set(uint256,uint256)"
args = {{ a = {{ eq = 2 }}, b = {{ eq = 3 }} }}

[[actions]]
id = "patch"
contract = "vault"
function = "upgrade"
args = {{ implementation = {{ eq = "{v2}" }} }}
"#
        );
        let m = Manifest::from_bytes(std::path::Path::new("unit.toml"), text.as_bytes()).unwrap();
        let set = |a: u64, b: u64| {
            let mut d = alloy::primitives::keccak256("set(uint256,uint256)")[..4].to_vec();
            d.extend_from_slice(&U256::from(a).to_be_bytes::<32>());
            d.extend_from_slice(&U256::from(b).to_be_bytes::<32>());
            alloy::primitives::Bytes::from(d)
        };
        let tx = SafeTxFields::new(vault, U256::ZERO, set(2, 4), Operation::Call, U256::ZERO);
        let r = verify_safe_tx(&m, 1, SAFE, &tx).unwrap();
        assert!(
            r.findings[0].message.contains("looks like action near"),
            "{:?}",
            r.findings
        );
        // An upgrade whose init call is not allowed: the init call is shown decoded.
        let attacker = address!("bDd077f651EBe7f7b3cE16fe5F2b025BE2969516");
        let mut init = alloy::primitives::keccak256("initialize(address)")[..4].to_vec();
        init.extend_from_slice(&[0u8; 12]);
        init.extend_from_slice(attacker.as_slice());
        use alloy::sol_types::SolCall;
        alloy::sol! { function upgradeToAndCall(address newImplementation, bytes data); }
        let data = upgradeToAndCallCall {
            newImplementation: v2,
            data: init.into(),
        }
        .abi_encode();
        let tx = SafeTxFields::new(vault, U256::ZERO, data.into(), Operation::Call, U256::ZERO);
        let r = verify_safe_tx(&m, 1, SAFE, &tx).unwrap();
        let msg = &r.findings[0].message;
        assert!(msg.contains("looks like action patch"), "{msg}");
        assert!(
            msg.contains(&format!(
                "initialize(address owner = {})",
                attacker.to_checksum(None)
            )),
            "{msg}"
        );
        // A function the manifest does not allow: what it does allow on that contract.
        let other = alloy::primitives::Bytes::copy_from_slice(
            &alloy::primitives::keccak256("drain()")[..4],
        );
        let tx = SafeTxFields::new(vault, U256::ZERO, other, Operation::Call, U256::ZERO);
        let r = verify_safe_tx(&m, 1, SAFE, &tx).unwrap();
        assert!(
            r.findings[0]
                .message
                .contains("the manifest allows here: far"),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn the_always_critical_rules_come_first() {
        let names: Vec<&str> = CALL_RULES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "safe_admin",
                "control_change",
                "account_to_safe",
                "safe_self_call",
                "timelock",
                "manifest_action"
            ]
        );
    }
}
