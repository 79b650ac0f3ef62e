//! The pinned manifest: the protocol's reviewed description of what may be signed in an emergency.
//!
//! A manifest is one TOML file (see DESIGN.md). Its identity is `keccak256` of the file's bytes, so a
//! single changed byte (even whitespace) is a different manifest that must be pinned or approved again.
//! Loading validates everything that can be checked offline and reports every problem with its line and
//! column and what to write instead; nothing downstream ever sees an unvalidated manifest.

mod chains;
mod constraint;
mod error;
mod expect;
pub(crate) mod human_abi;
mod raw;
pub mod trust;
mod validate;

/// Parses an address, insisting on a valid EIP-55 checksum when mixed case. Errors are (message, hint).
pub fn parse_address_strict(s: &str) -> Result<Address, (String, String)> {
    validate::parse_address(s)
}

pub use constraint::{show_value, Constraint, ConstraintCheck};

/// A constraint as text, e.g. `== 0x…` or `one of [..]`.
pub fn constraint_text(c: &Constraint) -> String {
    c.describe()
}
pub use error::{Diagnostic, ManifestError};
pub use expect::{ExpectLhs, ExpectOp, Expectation, ProxySlot};

use alloy::json_abi::{Function, JsonAbi};
use alloy::primitives::{address, keccak256, Address, B256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Safe versions breakglass supports. Older Safes (< 1.3.0) use a different EIP-712 domain
/// (`EIP712Domain(address verifyingContract)`, no chain id) and are refused at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SafeVersion {
    /// Safe 1.0.0: EIP-712 domain without chain id, SafeTx with `dataGas`.
    #[serde(rename = "1.0.0")]
    V1_0_0,
    /// Safe 1.1.1 (Optimism's operations Safe, Bybit's): EIP-712 domain without chain id.
    #[serde(rename = "1.1.1")]
    V1_1_1,
    /// Safe 1.2.0: EIP-712 domain without chain id.
    #[serde(rename = "1.2.0")]
    V1_2_0,
    /// Safe 1.3.0.
    #[serde(rename = "1.3.0")]
    V1_3_0,
    /// Safe 1.4.1.
    #[serde(rename = "1.4.1")]
    V1_4_1,
}

impl SafeVersion {
    /// The version as written in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            SafeVersion::V1_0_0 => "1.0.0",
            SafeVersion::V1_1_1 => "1.1.1",
            SafeVersion::V1_2_0 => "1.2.0",
            SafeVersion::V1_3_0 => "1.3.0",
            SafeVersion::V1_4_1 => "1.4.1",
        }
    }

    /// The EIP-712 shape it signs.
    pub fn eip712_domain(self) -> crate::safe::SafeDomain {
        use crate::safe::SafeDomain;
        match self {
            SafeVersion::V1_0_0 => SafeDomain::NoChainIdDataGas,
            SafeVersion::V1_1_1 | SafeVersion::V1_2_0 => SafeDomain::NoChainId,
            SafeVersion::V1_3_0 | SafeVersion::V1_4_1 => SafeDomain::ChainId,
        }
    }

    /// The canonical MultiSendCallOnly deployment for this version (safe-deployments).
    pub fn canonical_multisend_call_only(self) -> Address {
        match self {
            // MultiSendCallOnly first shipped with 1.3.0; it is plain library code that any Safe can
            // DELEGATECALL, so older Safes batch through the 1.3.0 deployment.
            SafeVersion::V1_0_0 | SafeVersion::V1_1_1 | SafeVersion::V1_2_0 => {
                address!("40A2aCCbd92BCA938b02010E17A5b8929b49130D")
            }
            SafeVersion::V1_3_0 => address!("40A2aCCbd92BCA938b02010E17A5b8929b49130D"),
            SafeVersion::V1_4_1 => address!("9641d764fc13c8B624c04430C7356C1C7C8102e2"),
        }
    }
}

/// The `[safe]` table.
#[derive(Debug, Clone)]
pub struct SafeConfig {
    /// The Safe (proxy) address.
    pub address: Address,
    /// The Safe version.
    pub version: SafeVersion,
    /// Owners as written (order kept).
    pub owners: Vec<Address>,
    /// Signatures needed.
    pub threshold: usize,
    /// The only contract a Safe tx may DELEGATECALL.
    pub multisend_call_only: Address,
    /// Whether `multisend_call_only` was overridden in the manifest.
    pub multisend_overridden: bool,
    /// A Multicall3 the Safe may DELEGATECALL as its batcher (only when the manifest names it).
    pub batcher: Option<Address>,
}

impl SafeConfig {
    /// Whether `a` is one of the manifest's owners.
    pub fn is_owner(&self, a: &Address) -> bool {
        self.owners.contains(a)
    }
}

/// The `[timelock]` table.
#[derive(Debug, Clone)]
pub struct TimelockConfig {
    /// The TimelockController address.
    pub address: Address,
    /// The smallest delay breakglass will schedule with, in seconds.
    pub min_delay: u64,
}

/// How a contract is upgraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyKind {
    /// Not a proxy: no upgrade action is possible.
    None,
    /// OZ 5 TransparentUpgradeableProxy: upgrades go through `ProxyAdmin.upgradeAndCall`.
    Transparent {
        /// The ProxyAdmin contract.
        proxy_admin: Address,
    },
    /// UUPS: `upgradeToAndCall` on the proxy itself.
    Uups,
    /// Beacon proxy: `upgradeTo` on the UpgradeableBeacon.
    Beacon {
        /// The UpgradeableBeacon contract.
        beacon: Address,
    },
}

impl ProxyKind {
    /// The kind as written in the manifest.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProxyKind::None => "none",
            ProxyKind::Transparent { .. } => "transparent",
            ProxyKind::Uups => "uups",
            ProxyKind::Beacon { .. } => "beacon",
        }
    }
}

/// A `[contracts.<id>]` table.
#[derive(Debug, Clone)]
pub struct Contract {
    /// The table key.
    pub id: String,
    /// The address calls go to (the proxy, for proxies).
    pub address: Address,
    /// Proxy kind.
    pub proxy: ProxyKind,
    /// The ABI calls are decoded with (shared: contracts of one kind list the same ABI).
    pub abi: std::sync::Arc<JsonAbi>,
    /// The upgrade function `compose` calls (verification accepts every shape of the proxy kind).
    pub upgrade_call: Option<crate::upgrade::UpgradeShape>,
}

/// How an action reaches the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A Safe transaction signed by the owners.
    Safe,
    /// A plain EIP-1559 transaction from a guardian account.
    Eoa,
    /// A TimelockController operation (scheduled by the Safe, executed after the delay).
    Timelock,
}

impl Via {
    /// The value as written in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Safe => "safe",
            Via::Eoa => "eoa",
            Via::Timelock => "timelock",
        }
    }
}

/// What an action calls.
#[derive(Debug, Clone)]
pub enum ActionCall {
    /// A function of the contract's ABI.
    Function(Function),
    /// `function = "upgrade"`: the upgrade call that fits the contract's proxy kind, with the
    /// arguments `implementation` (address) and `data` (bytes, the init call; empty unless constrained).
    Upgrade,
}

/// A `[[actions]]` entry.
#[derive(Debug, Clone)]
pub struct Action {
    /// Unique id.
    pub id: String,
    /// Human title.
    pub title: String,
    /// The contract id (a key of `contracts`).
    pub contract: String,
    /// What it calls.
    pub call: ActionCall,
    /// How it reaches the chain.
    pub via: Via,
    /// One constraint per argument, in parameter order.
    pub args: Vec<(String, Constraint)>,
    /// Constraint on the ETH value sent (default: exactly 0).
    pub value: Constraint,
    /// For upgrades: keccak256 of the new implementation's runtime code.
    pub implementation_codehash: Option<B256>,
    /// Whether a Safe tx carrying this action may set `safeTxGas`/`baseGas` (default: no). With a non-zero
    /// `safeTxGas`, anyone can execute with just enough gas for the inner call to fail while the Safe
    /// marks the nonce used: the signatures are spent and nothing happened.
    pub allow_safe_tx_gas: bool,
    /// An AccessControl role the sender must hold on the contract (its name as written, and its value).
    pub requires_role: Option<(String, B256)>,
    /// Post-conditions.
    pub expect: Vec<Expectation>,
    /// For upgrades: the storage layouts to compare before signing.
    pub storage_layout: Option<LayoutCheck>,
}

/// An upgrade's storage layouts (`storage_layout = { … }`), read and pinned at load.
#[derive(Clone)]
pub struct LayoutCheck {
    /// The current implementation's layout file, as named.
    pub current_file: String,
    /// The new implementation's layout file, as named.
    pub new_file: String,
    /// The current layout.
    pub current: std::sync::Arc<crate::layout::StorageLayout>,
    /// The new layout.
    pub new: std::sync::Arc<crate::layout::StorageLayout>,
    /// keccak256 of the code the proxy must point at now (checked on chain), when pinned.
    pub current_codehash: Option<B256>,
    /// Declared renames and retypes.
    pub declared: std::sync::Arc<crate::layout::Declared>,
}

impl std::fmt::Debug for LayoutCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayoutCheck")
            .field("current_file", &self.current_file)
            .field("new_file", &self.new_file)
            .field("current_codehash", &self.current_codehash)
            .finish_non_exhaustive()
    }
}

impl LayoutCheck {
    /// The layout findings (empty: the upgrade keeps every variable in place).
    pub fn findings(&self) -> Vec<crate::layout::Finding> {
        crate::layout::compare(&self.current, &self.new, &self.declared)
    }
}

impl Action {
    /// A short description of the call, e.g. `pause()` or `upgrade(implementation, data)`.
    pub fn call_signature(&self) -> String {
        match &self.call {
            ActionCall::Function(f) => f.signature(),
            ActionCall::Upgrade if self.args.iter().any(|(n, _)| n == "data") => {
                "upgrade(address implementation,bytes data)".to_string()
            }
            ActionCall::Upgrade => "upgrade(address implementation)".to_string(),
        }
    }
}

/// A `[[playbooks]]` entry.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Unique id.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Action ids, in order.
    pub actions: Vec<String>,
    /// May be signed in advance for future Safe nonces (`presign = true`): a pause ladder.
    pub presign: bool,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// `keccak256` of the file bytes: the manifest's identity.
    pub hash: B256,
    /// Protocol name.
    pub name: String,
    /// The only chain it applies to.
    pub chain_id: u64,
    /// The Safe, when actions go through one.
    pub safe: Option<SafeConfig>,
    /// The timelock, when actions go through one.
    pub timelock: Option<TimelockConfig>,
    /// Contracts by id.
    pub contracts: BTreeMap<String, Contract>,
    /// Actions, in file order.
    pub actions: Vec<Action>,
    /// Playbooks, in file order.
    pub playbooks: Vec<Playbook>,
    /// `[[watch]]` rules, in file order (see `crate::watch::rules` for the built-in ones).
    pub watch: Vec<crate::watch::WatchRule>,
    /// Whether the built-in watch rules are on (`watch_builtins`, default true).
    pub watch_builtins: bool,
    /// The `[policy]` table.
    pub policy: Policy,
    /// The chain's name in a version-2 (multi-chain) manifest; `None` for a version-1 manifest.
    pub chain_name: Option<String>,
    /// Every deployment of a version-2 manifest, in file order (empty for version 1). This manifest is
    /// one of them; [`Manifest::on_chain`] gives another.
    pub deployments: Deployments,
}

/// The deployments of a multi-chain manifest, shared between its per-chain views.
#[derive(Debug, Clone, Default)]
pub struct Deployments(pub(crate) std::sync::Arc<Vec<Manifest>>);

impl Deployments {
    /// The per-chain views, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Manifest> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (a version-1 manifest).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The default fee cap of one transaction: 0.5 ETH.
pub const DEFAULT_MAX_TX_FEE_WEI: u128 = 500_000_000_000_000_000;

/// The `[policy]` table: limits that apply to every transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The most one EIP-1559 transaction may cost (`gas_limit × max_fee_per_gas`, wei). Default 0.5 ETH.
    pub max_tx_fee_wei: u128,
    /// Every upgrade action must carry `storage_layout`.
    pub require_storage_layout: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_tx_fee_wei: DEFAULT_MAX_TX_FEE_WEI,
            require_storage_layout: false,
        }
    }
}

/// Wei as ETH with up to 18 decimals, trailing zeros dropped: `5206.7 ETH`.
pub fn format_eth(wei: u128) -> String {
    let whole = wei / 1_000_000_000_000_000_000;
    let frac = wei % 1_000_000_000_000_000_000;
    if frac == 0 {
        return format!("{whole} ETH");
    }
    let f = format!("{frac:018}");
    format!("{whole}.{} ETH", f.trim_end_matches('0'))
}

/// Parses an amount with its unit: `"0.5 ether"`, `"0.5 eth"`, `"30 gwei"`, `"1000 wei"`.
pub fn parse_amount(s: &str) -> Result<u128, String> {
    let mut parts = s.split_whitespace();
    let (num, unit) = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(u), None) => (n, u.to_ascii_lowercase()),
        _ => return Err(format!("{s:?} is not an amount with a unit")),
    };
    let decimals: u32 = match unit.as_str() {
        "ether" | "eth" => 18,
        "gwei" => 9,
        "wei" => 0,
        other => return Err(format!("unknown unit {other:?}")),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits_ok = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits_ok(int) || !digits_ok(frac) {
        return Err(format!("{num:?} is not a decimal number"));
    }
    if frac.len() > decimals as usize {
        return Err(format!(
            "{num} {unit} has more decimals than the unit allows"
        ));
    }
    let scale = 10u128.pow(decimals);
    let i: u128 = int.parse().map_err(|_| format!("{num:?} is too large"))?;
    let f: u128 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<width$}", width = decimals as usize);
        padded
            .parse()
            .map_err(|_| format!("{num:?} is too large"))?
    };
    i.checked_mul(scale)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(|| format!("{num} {unit} is too large"))
}

/// An AccessControl role by name, as OpenZeppelin defines it: `keccak256(name)`, except
/// `DEFAULT_ADMIN_ROLE`, which is zero. Accepts `NAME`, `role("NAME")` or a 0x-prefixed 32-byte hash.
pub fn role_value(text: &str) -> Option<(String, B256)> {
    let t = text.trim();
    if let Some(h) = t.strip_prefix("0x") {
        return (h.len() == 64)
            .then(|| t.parse().ok())
            .flatten()
            .map(|v| (t.to_string(), v));
    }
    let name = t
        .strip_prefix("role(\"")
        .and_then(|r| r.strip_suffix("\")"))
        .unwrap_or(t);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let v = if name == "DEFAULT_ADMIN_ROLE" {
        B256::ZERO
    } else {
        keccak256(name.as_bytes())
    };
    Some((name.to_string(), v))
}

/// The manifest's identity: keccak256 of its bytes.
pub fn hash_bytes(bytes: &[u8]) -> B256 {
    keccak256(bytes)
}

impl Manifest {
    /// Read and validate a manifest file.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Validate manifest bytes; `path` is used in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ManifestError> {
        validate::validate(path, bytes)
    }

    /// Whether the file describes several chains (version 2).
    pub fn is_multichain(&self) -> bool {
        !self.deployments.is_empty()
    }

    /// A short label of the chain: its name in a multi-chain manifest, else `chain <id>`.
    pub fn chain_label(&self) -> String {
        match &self.chain_name {
            Some(n) => format!("{n} (chain {})", self.chain_id),
            None => format!("chain {}", self.chain_id),
        }
    }

    /// The view of the deployment on this chain id (`self` for a version-1 manifest of that chain).
    pub fn on_chain_id(&self, chain_id: u64) -> Option<Manifest> {
        if !self.is_multichain() {
            return (self.chain_id == chain_id).then(|| self.clone());
        }
        self.deployments
            .iter()
            .find(|m| m.chain_id == chain_id)
            .map(|m| self.view(m))
    }

    /// The view of the deployment named `name` (or with that chain id written in decimal).
    pub fn on_chain(&self, name: &str) -> Option<Manifest> {
        if !self.is_multichain() {
            let matches = self.chain_name.as_deref() == Some(name)
                || name.parse::<u64>().ok() == Some(self.chain_id);
            return matches.then(|| self.clone());
        }
        self.deployments
            .iter()
            .find(|m| {
                m.chain_name.as_deref() == Some(name)
                    || name.parse::<u64>().ok() == Some(m.chain_id)
            })
            .map(|m| self.view(m))
    }

    /// Every deployment's view (one for a version-1 manifest).
    pub fn all_chains(&self) -> Vec<Manifest> {
        if !self.is_multichain() {
            return vec![self.clone()];
        }
        self.deployments.iter().map(|m| self.view(m)).collect()
    }

    /// The names of the chains (version 2), or the chain id as text (version 1).
    pub fn chain_names(&self) -> Vec<String> {
        if !self.is_multichain() {
            return vec![self.chain_id.to_string()];
        }
        self.deployments
            .iter()
            .filter_map(|m| m.chain_name.clone())
            .collect()
    }

    fn view(&self, m: &Manifest) -> Manifest {
        let mut v = m.clone();
        v.deployments = self.deployments.clone();
        v
    }

    /// The action with this id.
    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.id == id)
    }

    /// The playbook with this id.
    pub fn playbook(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.id == id)
    }

    /// The contract with this id.
    pub fn contract(&self, id: &str) -> Option<&Contract> {
        self.contracts.get(id)
    }

    /// The contract at this address, if the manifest names one.
    pub fn contract_at(&self, a: &Address) -> Option<&Contract> {
        self.contracts.values().find(|c| &c.address == a)
    }

    /// What a reviewer must look at before pinning: actions that can never be signed because they hand
    /// over control, and `any` constraints on arguments that decide who controls something.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.actions {
            if let ActionCall::Function(f) = &a.call {
                let sig = f.signature();
                if crate::control::is_control_change(&sig) {
                    out.push(format!("action {:?} calls {sig}, which hands over control of the contract: breakglass always refuses it, so this action can never be signed", a.id));
                }
                if crate::control::is_role_change(&sig) {
                    if let Some((_, Constraint::Any)) = a.args.iter().find(|(n, _)| n == "role") {
                        out.push(format!("action {:?}: {sig} with role = ANY would allow the default admin role, which controls every role (breakglass refuses that one always): pin role with eq or one_of", a.id));
                    }
                }
            }
            for (name, c) in &a.args {
                if matches!(c, Constraint::Any) && crate::control::names_control(name) {
                    out.push(format!("action {:?} lets argument `{name}` be ANY value, and it decides who controls something: pin it with eq or one_of (the Radiant payload, Oct 2024, was allowed by newOwner = {{ any = true }})", a.id));
                }
            }
        }
        out
    }

    /// `0x`-prefixed lowercase hex of the hash.
    pub fn hash_hex(&self) -> String {
        format!("{:#x}", self.hash)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_are_keccak_of_their_names_as_openzeppelin_defines_them() {
        // OpenZeppelin's PAUSER_ROLE, as block explorers show it for any AccessControl pausable.
        let pauser: B256 = "0x65d7a28e3265b37a6474929f336521b332c1681b933f6cb9f3376673440d862a"
            .parse()
            .unwrap();
        assert_eq!(role_value("PAUSER_ROLE").unwrap().1, pauser);
        assert_eq!(
            role_value("role(\"PAUSER_ROLE\")").unwrap(),
            ("PAUSER_ROLE".into(), pauser)
        );
        assert_eq!(role_value("DEFAULT_ADMIN_ROLE").unwrap().1, B256::ZERO);
        assert_eq!(role_value(&format!("{pauser:#x}")).unwrap().1, pauser);
        assert!(role_value("PAUSER ROLE").is_none());
        assert!(role_value("role(\"\")").is_none());
        assert!(role_value("0x1234").is_none());
    }

    #[test]
    fn amounts_parse_with_units_and_print_in_eth() {
        assert_eq!(parse_amount("0.5 ether").unwrap(), 500_000_000_000_000_000);
        assert_eq!(parse_amount("0.5 ETH").unwrap(), 500_000_000_000_000_000);
        assert_eq!(parse_amount("30 gwei").unwrap(), 30_000_000_000);
        assert_eq!(parse_amount("1000 wei").unwrap(), 1000);
        assert!(parse_amount("0.5").is_err());
        assert!(parse_amount("1.5 wei").is_err());
        assert!(parse_amount("-1 ether").is_err());
        assert!(parse_amount("1e18 wei").is_err());
        assert!(parse_amount("999999999999999999999999 ether").is_err());
        assert_eq!(format_eth(5_206_700_000_000_000_000_000), "5206.7 ETH");
        assert_eq!(format_eth(0), "0 ETH");
        assert_eq!(format_eth(1), "0.000000000000000001 ETH");
    }
}
