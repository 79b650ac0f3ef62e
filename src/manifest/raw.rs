//! The manifest's TOML exactly as written, with the byte span of every value, before validation.
//!
//! Unknown fields are errors (`deny_unknown_fields`): a typo such as `treshold` must never be silently
//! ignored in a file that decides what guardians may sign.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub version: S<i64>,
    pub name: S<String>,
    pub chain_id: S<i64>,
    pub safe: Option<S<RawSafe>>,
    pub timelock: Option<S<RawTimelock>>,
    pub policy: Option<S<RawPolicy>>,
    #[serde(default)]
    pub contracts: BTreeMap<String, S<RawContract>>,
    #[serde(default)]
    pub actions: Vec<S<RawAction>>,
    #[serde(default)]
    pub playbooks: Vec<S<RawPlaybook>>,
    /// Whether the built-in watch rules (every proxy's EIP-1967 slots, the Safe's configuration) are on.
    pub watch_builtins: Option<S<bool>>,
    /// `[[watch]]` rules for `breakglass watch`.
    #[serde(default)]
    pub watch: Vec<S<RawWatch>>,
}

/// One `[[watch]]` rule, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWatch {
    pub id: S<String>,
    pub severity: S<String>,
    pub kind: S<String>,
    pub playbook: Option<S<String>>,
    pub contract: Option<S<String>>,
    /// slot_changed: implementation | admin | beacon | 0x + 64 hex.
    pub slot: Option<S<String>>,
    /// safe_changed: owners, threshold, modules, guard, fallback_handler.
    pub what: Option<S<Vec<S<String>>>>,
    /// event: `event Name(type indexed name, …)`.
    pub event: Option<S<String>>,
    /// event: constraints on arguments by name.
    #[serde(default, rename = "where")]
    pub where_: BTreeMap<String, S<RawConstraint>>,
    /// balance_drop: "eth" or an ERC-20 (contract id or address).
    pub token: Option<S<String>>,
    pub percent: Option<S<i64>>,
    pub blocks: Option<S<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSafe {
    pub address: S<String>,
    pub version: S<String>,
    pub owners: S<Vec<S<String>>>,
    pub threshold: S<i64>,
    pub multisend_call_only: Option<S<String>>,
    /// A Multicall3 deployment the Safe may DELEGATECALL to batch calls (Optimism and Base do).
    pub batcher: Option<S<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimelock {
    pub address: S<String>,
    pub min_delay: S<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    /// The most a guardian-EOA (or executor) transaction may cost: `"0.5 ether"`, `"20000000 gwei"`.
    pub max_tx_fee: Option<S<String>>,
    /// Every upgrade action must carry `storage_layout`.
    pub require_storage_layout: Option<S<bool>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContract {
    pub address: S<String>,
    pub proxy: Option<S<String>>,
    pub proxy_admin: Option<S<String>>,
    /// Which upgrade function the proxy (or its admin) has: upgradeToAndCall | upgradeTo | upgradeAndCall | upgrade.
    pub upgrade_call: Option<S<String>>,
    pub beacon: Option<S<String>>,
    /// Human-readable signatures: `["function pause()", ...]`.
    pub abi: Option<S<Vec<S<String>>>>,
    /// A JSON ABI as one string (what `solc --abi` or a block explorer gives).
    pub abi_json: Option<S<String>>,
    /// A JSON ABI file (or a compiler artifact with an `abi` key) beside the manifest…
    pub abi_file: Option<S<String>>,
    /// …pinned by keccak256 of its bytes, so the manifest's hash covers it.
    pub abi_hash: Option<S<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAction {
    pub id: S<String>,
    pub title: Option<S<String>>,
    /// The contract the action calls…
    pub contract: Option<S<String>>,
    /// …or several contracts with the same call: one action `ID@CONTRACT` each; a playbook naming `ID`
    /// takes them all.
    pub contracts: Option<S<Vec<S<String>>>>,
    pub function: S<String>,
    pub via: Option<S<String>>,
    #[serde(default)]
    pub args: BTreeMap<String, S<RawConstraint>>,
    pub value: Option<S<RawConstraint>>,
    pub implementation_codehash: Option<S<String>>,
    pub allow_safe_tx_gas: Option<S<bool>>,
    /// An AccessControl role the sender (the Safe, the timelock) must hold on the contract:
    /// `"PAUSER_ROLE"`, `role("PAUSER_ROLE")` or a 0x-hash. Checked on chain before signing.
    pub requires_role: Option<S<String>>,
    #[serde(default)]
    pub expect: Vec<S<String>>,
    /// For upgrades: the storage layouts of the current and the new implementation.
    pub storage_layout: Option<S<RawStorageLayout>>,
}

/// `storage_layout = { current = "PATH", current_hash = "0x…", new = "PATH", new_hash = "0x…" }`: solc's
/// `storageLayout` output of each implementation, each file pinned by its keccak256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorageLayout {
    pub current: S<String>,
    pub current_hash: Option<S<String>>,
    pub new: S<String>,
    pub new_hash: Option<S<String>>,
    /// keccak256 of the runtime code of the implementation the proxy points at now (checked on chain).
    pub current_codehash: Option<S<String>>,
    /// Declared renames: `{ newName = "oldName" }` (as OpenZeppelin's `@custom:oz-renamed-from`).
    #[serde(default)]
    pub renamed: BTreeMap<String, S<String>>,
    /// Declared retypes: `{ variable = "old type" }` (as OpenZeppelin's `@custom:oz-retyped-from`).
    #[serde(default)]
    pub retyped: BTreeMap<String, S<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConstraint {
    pub eq: Option<S<RawLiteral>>,
    pub one_of: Option<S<Vec<S<RawLiteral>>>>,
    pub min: Option<S<RawLiteral>>,
    pub max: Option<S<RawLiteral>>,
    pub any: Option<S<bool>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawLiteral {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl RawLiteral {
    pub fn as_text(&self) -> String {
        match self {
            RawLiteral::Bool(b) => b.to_string(),
            RawLiteral::Int(i) => i.to_string(),
            RawLiteral::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlaybook {
    pub id: S<String>,
    pub title: Option<S<String>>,
    pub actions: S<Vec<S<String>>>,
    /// May be signed in advance for future Safe nonces (a pause ladder): every action fully determined.
    pub presign: Option<S<bool>>,
}

/// A version-2 (multi-chain) manifest: what is the same on every chain once (ABIs, proxy kinds, actions,
/// playbooks, policy), and per chain what differs (chain id, Safe, timelock, addresses, values).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifestV2 {
    pub version: S<i64>,
    pub name: S<String>,
    pub policy: Option<S<RawPolicy>>,
    #[serde(default)]
    pub contracts: BTreeMap<String, S<RawSharedContract>>,
    #[serde(default)]
    pub actions: Vec<S<RawAction>>,
    #[serde(default)]
    pub playbooks: Vec<S<RawPlaybook>>,
    /// Values the same on every chain unless a chain's own `vars` says otherwise (e.g. the code hash of
    /// an implementation deployed everywhere).
    #[serde(default)]
    pub vars: BTreeMap<String, S<RawLiteral>>,
    pub watch_builtins: Option<S<bool>>,
    #[serde(default)]
    pub watch: Vec<S<RawWatch>>,
    pub chains: S<BTreeMap<String, S<RawChain>>>,
}

/// `[contracts.<id>]` of a version-2 manifest: what every deployment of the contract shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSharedContract {
    pub proxy: Option<S<String>>,
    pub upgrade_call: Option<S<String>>,
    pub abi: Option<S<Vec<S<String>>>>,
    pub abi_json: Option<S<String>>,
    pub abi_file: Option<S<String>>,
    pub abi_hash: Option<S<String>>,
}

/// `[chains.<name>]`: one deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChain {
    pub chain_id: S<i64>,
    pub safe: Option<S<RawSafe>>,
    pub timelock: Option<S<RawTimelock>>,
    #[serde(default)]
    pub contracts: BTreeMap<String, S<RawChainContract>>,
    /// Values actions refer to as `"$name"` (an implementation address, a code hash, a recipient).
    #[serde(default)]
    pub vars: BTreeMap<String, S<RawLiteral>>,
}

/// `[chains.<name>.contracts.<id>]`: where the contract is on that chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChainContract {
    pub address: S<String>,
    pub proxy_admin: Option<S<String>>,
    pub beacon: Option<S<String>>,
}
