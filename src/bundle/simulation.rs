//! A simulation's record, as it travels in a bundle (written by `simulate`, `compose` and `sign`; see
//! `crate::simulate`). Data only: every reader that can re-runs the simulation instead of trusting this.

use super::PostCondition;
use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

/// The block a simulation ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBlock {
    /// Number.
    pub number: u64,
    /// Hash.
    pub hash: B256,
}

/// Why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRevert {
    /// The transaction's revert, in words (Safe's GS codes explained).
    pub reason: String,
    /// The call that failed first, with its decode (e.g. "call 2 of the batch: vault.pause() on 0x…
    /// reverted with …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_call: Option<String>,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    /// Emitter.
    pub address: Address,
    /// Who that is (manifest contract id, "Safe", …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Decoded, e.g. `Paused(account: 0x…)`, or the raw topics when no ABI knows it.
    pub text: String,
}

/// A storage slot that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStorageChange {
    /// The account.
    pub address: Address,
    /// Who that is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Slot.
    pub slot: B256,
    /// Its name, when we know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Before.
    pub before: B256,
    /// After.
    pub after: B256,
}

/// A balance that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBalanceChange {
    /// The account.
    pub address: Address,
    /// Who that is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// Wei before.
    pub before: U256,
    /// Wei after.
    pub after: U256,
}

/// An ERC-20 balance that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTokenChange {
    /// The token.
    pub token: Address,
    /// The holder.
    pub holder: Address,
    /// Net change, in the token's base units (`+` received, `-` sent).
    pub delta: String,
}

/// A view of a manifest contract whose answer changed (e.g. `paused()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimViewChange {
    /// Manifest contract id.
    pub contract: String,
    /// e.g. `paused()`.
    pub function: String,
    /// Before.
    pub before: String,
    /// After.
    pub after: String,
}

/// A simulation's result, as it travels in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// The state it ran on: after this block.
    pub block: SimBlock,
    /// `node` (JSON-RPC at the pinned block) or `snapshot` (offline, proven against the block header).
    pub source: String,
    /// How the transaction was run (e.g. the Safe's threshold overridden to 1).
    pub method: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<SimRevert>,
    /// Gas used.
    pub gas_used: u64,
    /// Events, in order.
    pub events: Vec<SimEvent>,
    /// Storage changes.
    pub storage: Vec<SimStorageChange>,
    /// ETH balance changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balances: Vec<SimBalanceChange>,
    /// ERC-20 balance changes (from the `Transfer` events), net per token and holder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<SimTokenChange>,
    /// Views of the manifest's contracts that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<SimViewChange>,
    /// The manifest's `expect` on the simulated post-state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postconditions: Vec<PostCondition>,
    /// State changed where it should not be (outside the manifest's contracts and the Safe's nonce).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical: Vec<String>,
}

impl Simulation {
    /// Whether the simulation allows signing: it succeeded, every post-condition held, nothing critical.
    pub fn allowed(&self) -> bool {
        self.success && self.postconditions.iter().all(|p| p.pass) && self.critical.is_empty()
    }

    /// One line: the verdict and why.
    pub fn verdict(&self) -> String {
        if !self.success {
            let r = self.revert.as_ref();
            let mut s = format!(
                "REVERTS: {}",
                r.map(|r| r.reason.as_str()).unwrap_or("it fails")
            );
            if let Some(c) = r.and_then(|r| r.failing_call.as_deref()) {
                s.push_str(&format!("; {c}"));
            }
            return s;
        }
        let failed: Vec<&PostCondition> = self.postconditions.iter().filter(|p| !p.pass).collect();
        if !failed.is_empty() {
            return format!(
                "POST-CONDITION FAILS: {}",
                failed
                    .iter()
                    .map(|p| format!("{} ({}): got {}", p.expect, p.action, p.actual))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if !self.critical.is_empty() {
            return format!("CRITICAL: {}", self.critical.join("; "));
        }
        format!(
            "succeeds: {} event(s), {} storage change(s), every post-condition holds",
            self.events.len(),
            self.storage.len()
        )
    }

    /// The report as lines for a person.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "Simulation at block {} ({:#x}, from the {}): {}",
            self.block.number,
            self.block.hash,
            self.source,
            self.verdict()
        )];
        out.push(format!("  how: {}", self.method));
        out.push(format!("  gas used: {}", self.gas_used));
        if !self.views.is_empty() {
            out.push("  views that change:".into());
            for v in &self.views {
                out.push(format!(
                    "    {}.{}: {} → {}",
                    v.contract, v.function, v.before, v.after
                ));
            }
        }
        out.push(format!("  events ({}):", self.events.len()));
        for e in &self.events {
            out.push(format!(
                "    {} {}",
                label(e.contract.as_deref(), e.address),
                e.text
            ));
        }
        out.push(format!("  storage changes ({}):", self.storage.len()));
        for c in &self.storage {
            out.push(format!(
                "    {} {}: {:#x} → {:#x}",
                label(c.contract.as_deref(), c.address),
                c.name
                    .clone()
                    .unwrap_or_else(|| format!("slot {:#x}", c.slot)),
                U256::from_be_bytes(c.before.0),
                U256::from_be_bytes(c.after.0)
            ));
        }
        for b in &self.balances {
            out.push(format!(
                "    {} balance: {} → {} wei",
                label(b.contract.as_deref(), b.address),
                b.before,
                b.after
            ));
        }
        for t in &self.tokens {
            out.push(format!(
                "    token {} held by {}: {}",
                t.token.to_checksum(None),
                t.holder.to_checksum(None),
                t.delta
            ));
        }
        for p in &self.postconditions {
            out.push(format!(
                "  expect {} ({}): {} — {}",
                p.expect,
                p.action,
                p.actual,
                if p.pass { "holds" } else { "FAILS" }
            ));
        }
        for c in &self.critical {
            out.push(format!("  CRITICAL: {c}"));
        }
        out
    }
}

/// "id (0xAddress)", or the address.
pub fn label(contract: Option<&str>, a: Address) -> String {
    match contract {
        Some(c) => format!("{c} ({})", a.to_checksum(None)),
        None => a.to_checksum(None),
    }
}
