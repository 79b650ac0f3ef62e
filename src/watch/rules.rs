//! Watch rules: what `breakglass watch` checks in every block. Written in the manifest (`[[watch]]`) and
//! built in for every proxy's EIP-1967 slots and the Safe's configuration.

use crate::manifest::Constraint;
use crate::manifest::{Manifest, ProxyKind};
use alloy::json_abi::Event;
use alloy::primitives::{Address, B256};
use serde::Serialize;

/// How bad a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Look now.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Parses the manifest's word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }

    /// The manifest's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Which part of the Safe's configuration a `safe_changed` rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SafeAspect {
    /// `getOwners()`.
    Owners,
    /// `getThreshold()`.
    Threshold,
    /// `getModulesPaginated`.
    Modules,
    /// The guard's storage slot.
    Guard,
    /// The fallback handler's storage slot.
    FallbackHandler,
}

impl SafeAspect {
    /// Every aspect.
    pub const ALL: [SafeAspect; 5] = [
        SafeAspect::Owners,
        SafeAspect::Threshold,
        SafeAspect::Modules,
        SafeAspect::Guard,
        SafeAspect::FallbackHandler,
    ];

    /// Parses the manifest's word.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The manifest's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owners => "owners",
            Self::Threshold => "threshold",
            Self::Modules => "modules",
            Self::Guard => "guard",
            Self::FallbackHandler => "fallback_handler",
        }
    }
}

/// What a rule checks.
#[derive(Debug, Clone)]
pub enum WatchKind {
    /// A storage slot of a contract changed value.
    SlotChanged {
        /// The manifest's contract id.
        contract: String,
        /// Its address.
        address: Address,
        /// The slot.
        slot: B256,
        /// What the slot is, in words (`EIP-1967 implementation`, or the hex).
        slot_name: String,
    },
    /// The Safe's owners, threshold, modules, guard or fallback handler changed (by state or by event).
    SafeChanged {
        /// The Safe.
        safe: Address,
        /// Which parts.
        what: Vec<SafeAspect>,
    },
    /// A contract emitted an event whose arguments match.
    Event {
        /// The manifest's contract id.
        contract: String,
        /// Its address.
        address: Address,
        /// The event.
        event: Event,
        /// Constraints on arguments: name, index among the event's inputs, constraint.
        filters: Vec<(String, usize, Constraint)>,
    },
    /// A contract's ETH or ERC-20 balance fell more than `percent` below its highest within `blocks`.
    BalanceDrop {
        /// The manifest's contract id.
        contract: String,
        /// Its address.
        address: Address,
        /// The ERC-20 (its name and address), or ETH.
        token: Option<(String, Address)>,
        /// The drop that alerts, in percent.
        percent: u8,
        /// The window, in blocks.
        blocks: u64,
    },
    /// A contract's `paused()` changed.
    PausedChanged {
        /// The manifest's contract id.
        contract: String,
        /// Its address.
        address: Address,
    },
}

impl WatchKind {
    /// The manifest's word for the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SlotChanged { .. } => "slot_changed",
            Self::SafeChanged { .. } => "safe_changed",
            Self::Event { .. } => "event",
            Self::BalanceDrop { .. } => "balance_drop",
            Self::PausedChanged { .. } => "paused_changed",
        }
    }

    /// The manifest contract the rule is about (none for the Safe).
    pub fn contract(&self) -> Option<(&str, Address)> {
        match self {
            Self::SlotChanged {
                contract, address, ..
            }
            | Self::Event {
                contract, address, ..
            }
            | Self::BalanceDrop {
                contract, address, ..
            }
            | Self::PausedChanged { contract, address } => Some((contract, *address)),
            Self::SafeChanged { .. } => None,
        }
    }
}

/// One rule.
#[derive(Debug, Clone)]
pub struct WatchRule {
    /// Its id (`builtin:…` for the built-in ones).
    pub id: String,
    /// How bad a match is.
    pub severity: Severity,
    /// The playbook to propose (and the ladder `--auto-fire` fires when it is that ladder's).
    pub playbook: Option<String>,
    /// What it checks.
    pub kind: WatchKind,
}

/// The EIP-1967 slots.
pub mod slots {
    use alloy::primitives::{b256, B256};
    /// `bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)`.
    pub const IMPLEMENTATION: B256 =
        b256!("360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");
    /// `bytes32(uint256(keccak256("eip1967.proxy.admin")) - 1)`.
    pub const ADMIN: B256 =
        b256!("b53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103");
    /// `bytes32(uint256(keccak256("eip1967.proxy.beacon")) - 1)`.
    pub const BEACON: B256 =
        b256!("a3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50");
    /// Safe 1.3+/1.4.1: `keccak256("guard_manager.guard.address")`.
    pub const SAFE_GUARD: B256 =
        b256!("4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8");
    /// Safe: `keccak256("fallback_manager.handler.address")`.
    pub const SAFE_FALLBACK_HANDLER: B256 =
        b256!("6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5");
}

/// The slot a `slot = "…"` word names: `implementation`, `admin`, `beacon`, or 32 bytes of hex.
pub fn parse_slot(s: &str) -> Option<(B256, String)> {
    match s {
        "implementation" => Some((slots::IMPLEMENTATION, "EIP-1967 implementation slot".into())),
        "admin" => Some((slots::ADMIN, "EIP-1967 admin slot".into())),
        "beacon" => Some((slots::BEACON, "EIP-1967 beacon slot".into())),
        _ => {
            let h = s.strip_prefix("0x")?;
            if h.len() != 64 {
                return None;
            }
            let b: B256 = s.parse().ok()?;
            Some((b, format!("slot {s}")))
        }
    }
}

/// Every rule that applies to this manifest: the built-in ones (unless `watch_builtins = false`), then
/// the manifest's own, in file order.
pub fn rules(m: &Manifest) -> Vec<WatchRule> {
    let mut out = Vec::new();
    if m.watch_builtins {
        for (id, c) in &m.contracts {
            let mut slot = |which: &str, slot: B256, name: &str| {
                out.push(WatchRule {
                    id: format!("builtin:{id}:{which}"),
                    severity: Severity::Critical,
                    playbook: None,
                    kind: WatchKind::SlotChanged {
                        contract: id.clone(),
                        address: c.address,
                        slot,
                        slot_name: name.to_string(),
                    },
                });
            };
            match c.proxy {
                ProxyKind::None => {}
                ProxyKind::Uups => slot(
                    "implementation",
                    slots::IMPLEMENTATION,
                    "EIP-1967 implementation slot",
                ),
                ProxyKind::Transparent { .. } => {
                    slot(
                        "implementation",
                        slots::IMPLEMENTATION,
                        "EIP-1967 implementation slot",
                    );
                    slot("admin", slots::ADMIN, "EIP-1967 admin slot");
                }
                ProxyKind::Beacon { .. } => slot("beacon", slots::BEACON, "EIP-1967 beacon slot"),
            }
        }
        if let Some(s) = &m.safe {
            out.push(WatchRule {
                id: "builtin:safe".into(),
                severity: Severity::Critical,
                playbook: None,
                kind: WatchKind::SafeChanged {
                    safe: s.address,
                    what: SafeAspect::ALL.to_vec(),
                },
            });
        }
    }
    out.extend(m.watch.iter().cloned());
    out
}
