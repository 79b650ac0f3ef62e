//! The watcher: follows the node block by block from a cursor, checks every rule against each block (state
//! read at that block's hash, logs of that block), handles reorganisations and outages, and reports what it
//! sees as [`WatchEvent`]s. It never signs, composes or sends anything; the response is the caller's
//! (see [`super::respond`]).

use super::rules::{SafeAspect, Severity, WatchKind, WatchRule};
use crate::chain::{Chain, ChainError};
use crate::manifest::{show_value, ConstraintCheck};
use alloy::dyn_abi::{DynSolValue, EventExt};
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

alloy::sol! {
    function paused() external view returns (bool);
    function balanceOf(address owner) external view returns (uint256);
    function getOwners() external view returns (address[] memory);
    function getThreshold() external view returns (uint256);
    function getModulesPaginated(address start, uint256 pageSize) external view returns (address[] memory array, address next);
}

/// How many recent block hashes the cursor keeps, to find where a reorganisation forked.
const RECENT: usize = 128;

/// A rule that matched in a block.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// The rule's id.
    pub rule: String,
    /// The rule's kind.
    pub kind: &'static str,
    /// How bad.
    pub severity: Severity,
    /// The block it matched in.
    pub block: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// The transaction that caused it, when one can be named (none for a state change with no transaction
    /// touching the contract, e.g. a node's `anvil_setStorageAt`).
    pub tx: Option<B256>,
    /// The manifest contract, when the rule is about one.
    pub contract: Option<String>,
    /// The address watched.
    pub address: Address,
    /// What happened, in words (may quote on-chain data: sanitise before printing to a terminal).
    pub summary: String,
    /// The value before.
    pub old: Value,
    /// The value after.
    pub new: Value,
    /// The playbook the rule proposes.
    pub playbook: Option<String>,
}

/// What the watcher reports, in order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchEvent {
    /// Watching starts: the first block to be checked.
    Start {
        /// The chain.
        chain_id: u64,
        /// The rules' ids.
        rules: Vec<String>,
        /// The first block to check.
        from_block: u64,
    },
    /// A block was checked (and the cursor saved).
    Block {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: B256,
        /// How many alerts it raised.
        alerts: usize,
    },
    /// A rule matched.
    Alert(Box<Alert>),
    /// The node stopped answering: nothing from this block on is checked until it is back.
    Blind {
        /// The first block not yet checked.
        from_block: u64,
        /// Why.
        reason: String,
    },
    /// The node answers again: checking resumes from `from_block` up to `head`.
    Resumed {
        /// The first block not yet checked.
        from_block: u64,
        /// The node's head.
        head: u64,
    },
    /// Blocks from `from_block` were replaced (a reorganisation): they are checked again.
    Reorg {
        /// How many checked blocks were replaced.
        depth: u64,
        /// The first replaced block.
        from_block: u64,
    },
}

/// Where the watcher is: the last block checked, and the hashes of the blocks before it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    /// Format tag.
    pub format: String,
    /// The chain.
    pub chain_id: u64,
    /// The last block checked.
    pub block: u64,
    /// Its hash.
    pub hash: B256,
    /// Recent checked blocks (number, hash), oldest first, the last one being `block`.
    pub recent: Vec<(u64, B256)>,
}

const CURSOR_FORMAT: &str = "breakglass/watch-cursor@1";

/// A watcher error: the node, or the cursor file.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The cursor file is unreadable or for another chain.
    #[error("cursor {path}: {reason}")]
    Cursor {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Something the node returned makes no sense.
    #[error("the node's answer makes no sense: {0}")]
    Node(String),
}

/// Where to start.
#[derive(Debug, Clone, Default)]
pub struct StartAt {
    /// A cursor file: resume after its block when it exists, and keep it up to date.
    pub cursor: Option<PathBuf>,
    /// Else the first block to check (default: the block after the current head).
    pub from_block: Option<u64>,
}

/// What each rule remembers between blocks.
#[derive(Debug, Clone)]
enum Memory {
    Word(B256),
    Paused(Option<bool>),
    Balance(VecDeque<(u64, U256)>),
    Safe(Vec<(SafeAspect, Value)>),
    Nothing,
}

/// One block, as read once for every rule.
struct BlockView {
    number: u64,
    hash: B256,
    logs: Vec<LogRow>,
    /// (tx hash, to) of the block's transactions, read only when a change has no log to name its cause.
    txs: Option<Vec<(B256, Option<Address>)>>,
}

#[derive(Debug, Clone)]
struct LogRow {
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
    tx: Option<B256>,
}

/// The watcher.
pub struct Watcher {
    chain: Chain,
    chain_id: u64,
    rules: Vec<WatchRule>,
    memory: Vec<Memory>,
    cursor: Cursor,
    cursor_path: Option<PathBuf>,
    blind: bool,
    /// Addresses whose logs matter (every rule's contract, and the Safe).
    addresses: Vec<Address>,
}

fn hex_u64(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

fn b256(v: &Value) -> Option<B256> {
    v.as_str()?.parse().ok()
}

/// A word shown as an address when it holds one (12 zero bytes, then 20), else as hex.
fn show_word(w: &B256) -> String {
    if w[..12].iter().all(|b| *b == 0) {
        Address::from_slice(&w[12..]).to_checksum(None)
    } else {
        w.to_string()
    }
}

fn safe_event_topics(what: &[SafeAspect]) -> Vec<(B256, &'static str)> {
    let mut out = Vec::new();
    for a in what {
        let sigs: &[&'static str] = match a {
            SafeAspect::Owners => &["AddedOwner(address)", "RemovedOwner(address)"],
            SafeAspect::Threshold => &["ChangedThreshold(uint256)"],
            SafeAspect::Modules => &["EnabledModule(address)", "DisabledModule(address)"],
            SafeAspect::Guard => &["ChangedGuard(address)"],
            SafeAspect::FallbackHandler => &["ChangedFallbackHandler(address)"],
        };
        for s in sigs {
            out.push((keccak256(s.as_bytes()), *s));
        }
    }
    out
}

impl Watcher {
    /// Connects the rules to a node and reads the baseline: the cursor's block, the block before
    /// `from_block`, or the current head.
    pub fn new(
        chain: Chain,
        chain_id: u64,
        rules: Vec<WatchRule>,
        start: &StartAt,
    ) -> Result<Self, WatchError> {
        let mut addresses: Vec<Address> = Vec::new();
        for r in &rules {
            let a = match &r.kind {
                WatchKind::SafeChanged { safe, .. } => *safe,
                k => k.contract().map(|(_, a)| a).unwrap_or_default(),
            };
            // A watched ERC-20's logs name who moved the balance.
            let token = match &r.kind {
                WatchKind::BalanceDrop {
                    token: Some((_, t)),
                    ..
                } => Some(*t),
                _ => None,
            };
            for a in std::iter::once(a).chain(token) {
                if !addresses.contains(&a) {
                    addresses.push(a);
                }
            }
        }
        let saved = match &start.cursor {
            Some(p) if p.exists() => Some(read_cursor(p, chain_id)?),
            _ => None,
        };
        let mut w = Watcher {
            chain,
            chain_id,
            memory: vec![Memory::Nothing; rules.len()],
            rules,
            cursor: Cursor {
                format: CURSOR_FORMAT.into(),
                chain_id,
                block: 0,
                hash: B256::ZERO,
                recent: Vec::new(),
            },
            cursor_path: start.cursor.clone(),
            blind: false,
            addresses,
        };
        let base = match (&saved, start.from_block) {
            (Some(c), _) => c.block,
            (None, Some(n)) => n.saturating_sub(1),
            (None, None) => w.head()?,
        };
        match saved {
            Some(c) => w.cursor = c,
            None => {
                let hash = w.hash_at(base)?.ok_or_else(|| {
                    WatchError::Node(format!(
                        "block {base} does not exist (the head is {})",
                        w.head().unwrap_or(0)
                    ))
                })?;
                w.cursor.block = base;
                w.cursor.hash = hash;
                w.cursor.recent = vec![(base, hash)];
            }
        }
        // The baseline: the state at the cursor's block (if that block was replaced while the watcher was
        // away, the first step finds the fork and reads the baseline again).
        let at = match w.hash_at(w.cursor.block)? {
            Some(h) => h,
            None => w.cursor.hash,
        };
        w.baseline(w.cursor.block, at)?;
        Ok(w)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[WatchRule] {
        &self.rules
    }

    /// The last block checked.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// The node.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The event that opens a run.
    pub fn start_event(&self) -> WatchEvent {
        WatchEvent::Start {
            chain_id: self.chain_id,
            rules: self.rules.iter().map(|r| r.id.clone()).collect(),
            from_block: self.cursor.block + 1,
        }
    }

    fn head(&self) -> Result<u64, WatchError> {
        let v: Value = self.chain.rpc("eth_blockNumber", json!([]))?;
        hex_u64(&v).ok_or_else(|| WatchError::Node(format!("eth_blockNumber gave {v}")))
    }

    fn block(&self, n: u64, full: bool) -> Result<Option<Value>, WatchError> {
        let v: Value = self
            .chain
            .rpc("eth_getBlockByNumber", json!([format!("0x{n:x}"), full]))?;
        Ok((!v.is_null()).then_some(v))
    }

    fn hash_at(&self, n: u64) -> Result<Option<B256>, WatchError> {
        Ok(self.block(n, false)?.and_then(|b| b256(&b["hash"])))
    }

    fn at(hash: B256) -> Value {
        json!({ "blockHash": hash })
    }

    fn storage(&self, a: Address, slot: B256, at: B256) -> Result<B256, WatchError> {
        let v: Value = self
            .chain
            .rpc("eth_getStorageAt", json!([a, slot, Self::at(at)]))?;
        b256(&v).ok_or_else(|| WatchError::Node(format!("eth_getStorageAt gave {v}")))
    }

    fn call(&self, to: Address, data: Vec<u8>, at: B256) -> Result<Option<Bytes>, WatchError> {
        let r: Result<Value, ChainError> = self.chain.rpc(
            "eth_call",
            json!([{ "to": to, "data": Bytes::from(data) }, Self::at(at)]),
        );
        match r {
            Ok(v) => Ok(v.as_str().and_then(|s| s.parse::<Bytes>().ok())),
            // A revert is an answer (the view does not exist or failed), not an outage.
            Err(ChainError::Rpc { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn eth_balance(&self, a: Address, at: B256) -> Result<U256, WatchError> {
        let v: Value = self.chain.rpc("eth_getBalance", json!([a, Self::at(at)]))?;
        v.as_str()
            .and_then(|s| s.parse::<U256>().ok())
            .ok_or_else(|| WatchError::Node(format!("eth_getBalance gave {v}")))
    }

    fn paused_at(&self, a: Address, at: B256) -> Result<Option<bool>, WatchError> {
        Ok(self
            .call(a, pausedCall {}.abi_encode(), at)?
            .and_then(|b| pausedCall::abi_decode_returns(&b).ok()))
    }

    fn balance_at(&self, a: Address, token: Option<Address>, at: B256) -> Result<U256, WatchError> {
        match token {
            None => self.eth_balance(a, at),
            Some(t) => Ok(self
                .call(t, balanceOfCall { owner: a }.abi_encode(), at)?
                .and_then(|b| balanceOfCall::abi_decode_returns(&b).ok())
                .unwrap_or_default()),
        }
    }

    fn safe_at(
        &self,
        safe: Address,
        what: &[SafeAspect],
        at: B256,
    ) -> Result<Vec<(SafeAspect, Value)>, WatchError> {
        let mut out = Vec::new();
        for a in what {
            let v = match a {
                SafeAspect::Owners => json!(self
                    .call(safe, getOwnersCall {}.abi_encode(), at)?
                    .and_then(|b| getOwnersCall::abi_decode_returns(&b).ok())
                    .unwrap_or_default()
                    .iter()
                    .map(|o| o.to_checksum(None))
                    .collect::<Vec<_>>()),
                SafeAspect::Threshold => json!(self
                    .call(safe, getThresholdCall {}.abi_encode(), at)?
                    .and_then(|b| getThresholdCall::abi_decode_returns(&b).ok())
                    .unwrap_or_default()
                    .to_string()),
                SafeAspect::Modules => {
                    let sentinel = Address::with_last_byte(1);
                    json!(self
                        .call(
                            safe,
                            getModulesPaginatedCall {
                                start: sentinel,
                                pageSize: U256::from(100)
                            }
                            .abi_encode(),
                            at
                        )?
                        .and_then(|b| getModulesPaginatedCall::abi_decode_returns(&b).ok())
                        .map(|r| r.array)
                        .unwrap_or_default()
                        .iter()
                        .map(|o| o.to_checksum(None))
                        .collect::<Vec<_>>())
                }
                SafeAspect::Guard => json!(show_word(&self.storage(
                    safe,
                    super::rules::slots::SAFE_GUARD,
                    at
                )?)),
                SafeAspect::FallbackHandler => json!(show_word(&self.storage(
                    safe,
                    super::rules::slots::SAFE_FALLBACK_HANDLER,
                    at
                )?)),
            };
            out.push((*a, v));
        }
        Ok(out)
    }

    /// Reads what every rule remembers at block `n` (hash `at`).
    fn baseline(&mut self, n: u64, at: B256) -> Result<(), WatchError> {
        for i in 0..self.rules.len() {
            self.memory[i] = match &self.rules[i].kind {
                WatchKind::SlotChanged { address, slot, .. } => {
                    Memory::Word(self.storage(*address, *slot, at)?)
                }
                WatchKind::PausedChanged { address, .. } => {
                    Memory::Paused(self.paused_at(*address, at)?)
                }
                WatchKind::BalanceDrop { address, token, .. } => {
                    let b = self.balance_at(*address, token.as_ref().map(|t| t.1), at)?;
                    Memory::Balance(VecDeque::from([(n, b)]))
                }
                WatchKind::SafeChanged { safe, what } => {
                    Memory::Safe(self.safe_at(*safe, what, at)?)
                }
                WatchKind::Event { .. } => Memory::Nothing,
            };
        }
        Ok(())
    }

    fn save_cursor(&self) -> Result<(), WatchError> {
        let Some(p) = &self.cursor_path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(&self.cursor).map_err(|e| WatchError::Cursor {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        crate::fsutil::atomic_write(p, &bytes, true).map_err(|e| WatchError::Cursor {
            path: p.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Checks every block from the cursor up to the node's head (or `until`), in order, reporting to `sink`
    /// as it goes. Returns whether `until` was reached. A node error stops the pass; the cursor stays at the
    /// last block checked, so the next pass resumes there.
    pub fn poll(
        &mut self,
        until: Option<u64>,
        stop: &AtomicBool,
        sink: &mut dyn FnMut(WatchEvent),
    ) -> Result<bool, WatchError> {
        let head = self.head()?;
        if self.blind {
            self.blind = false;
            sink(WatchEvent::Resumed {
                from_block: self.cursor.block + 1,
                head,
            });
        }
        if head < self.cursor.block {
            // The node lost blocks we checked (a reorganisation to a shorter chain, or a node restarted
            // without its state): find where it forked.
            self.fork(sink)?;
            return Ok(false);
        }
        let last = until.map_or(head, |u| u.min(head));
        while self.cursor.block < last {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            if !self.check_next(sink)? {
                return Ok(false);
            }
        }
        Ok(until.is_some_and(|u| self.cursor.block >= u))
    }

    /// Rewinds the cursor to the newest checked block still on the node's chain, re-reads the baseline
    /// there, and reports the reorganisation.
    fn fork(&mut self, sink: &mut dyn FnMut(WatchEvent)) -> Result<(), WatchError> {
        let mut ancestor = None;
        for (n, h) in self.cursor.recent.iter().rev() {
            if self.hash_at(*n)? == Some(*h) {
                ancestor = Some((*n, *h));
                break;
            }
        }
        let (n, h) = match ancestor {
            Some(a) => a,
            None => {
                // Deeper than we remember: start again from what the node has now.
                let oldest = self
                    .cursor
                    .recent
                    .first()
                    .map_or(self.cursor.block, |r| r.0);
                let n = oldest.saturating_sub(1).min(self.head()?);
                let h = self
                    .hash_at(n)?
                    .ok_or_else(|| WatchError::Node(format!("block {n} does not exist")))?;
                (n, h)
            }
        };
        let depth = self.cursor.block.saturating_sub(n);
        self.cursor.recent.retain(|(k, _)| *k <= n);
        if self.cursor.recent.last() != Some(&(n, h)) {
            self.cursor.recent.push((n, h));
        }
        self.cursor.block = n;
        self.cursor.hash = h;
        self.baseline(n, h)?;
        self.save_cursor()?;
        sink(WatchEvent::Reorg {
            depth,
            from_block: n + 1,
        });
        Ok(())
    }

    /// Checks the block after the cursor. Returns false when a reorganisation rewound the cursor instead.
    fn check_next(&mut self, sink: &mut dyn FnMut(WatchEvent)) -> Result<bool, WatchError> {
        let n = self.cursor.block + 1;
        let Some(b) = self.block(n, false)? else {
            self.fork(sink)?;
            return Ok(false);
        };
        let hash =
            b256(&b["hash"]).ok_or_else(|| WatchError::Node(format!("block {n} has no hash")))?;
        let parent = b256(&b["parentHash"])
            .ok_or_else(|| WatchError::Node(format!("block {n} has no parent hash")))?;
        if parent != self.cursor.hash {
            self.fork(sink)?;
            return Ok(false);
        }
        let logs: Value = self.chain.rpc(
            "eth_getLogs",
            json!([{ "blockHash": hash, "address": self.addresses }]),
        )?;
        let logs = logs
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| {
                        Some(LogRow {
                            address: l["address"].as_str()?.parse().ok()?,
                            topics: l["topics"].as_array()?.iter().filter_map(b256).collect(),
                            data: l["data"].as_str()?.parse().ok()?,
                            tx: b256(&l["transactionHash"]),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut view = BlockView {
            number: n,
            hash,
            logs,
            txs: None,
        };
        let mut alerts = Vec::new();
        for i in 0..self.rules.len() {
            self.check_rule(i, &mut view, &mut alerts)?;
        }
        let count = alerts.len();
        for a in alerts {
            sink(WatchEvent::Alert(Box::new(a)));
        }
        self.cursor.block = n;
        self.cursor.hash = hash;
        self.cursor.recent.push((n, hash));
        if self.cursor.recent.len() > RECENT {
            let extra = self.cursor.recent.len() - RECENT;
            self.cursor.recent.drain(..extra);
        }
        self.save_cursor()?;
        sink(WatchEvent::Block {
            number: n,
            hash,
            alerts: count,
        });
        Ok(true)
    }

    /// The transaction of this block that touched `a`: its first log from `a`, else the first transaction
    /// sent to `a`.
    fn cause(&self, view: &mut BlockView, a: Address) -> Result<Option<B256>, WatchError> {
        if let Some(t) = view.logs.iter().find(|l| l.address == a).and_then(|l| l.tx) {
            return Ok(Some(t));
        }
        if view.txs.is_none() {
            let b = self.block(view.number, true)?.unwrap_or(Value::Null);
            view.txs = Some(
                b["transactions"]
                    .as_array()
                    .map(|txs| {
                        txs.iter()
                            .filter_map(|t| {
                                Some((
                                    b256(&t["hash"])?,
                                    t["to"].as_str().and_then(|s| s.parse().ok()),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            );
        }
        Ok(view
            .txs
            .as_ref()
            .and_then(|txs| txs.iter().find(|(_, to)| *to == Some(a)).map(|(h, _)| *h)))
    }

    fn check_rule(
        &mut self,
        i: usize,
        view: &mut BlockView,
        out: &mut Vec<Alert>,
    ) -> Result<(), WatchError> {
        let rule = self.rules[i].clone();
        let (number, hash) = (view.number, view.hash);
        let mk = |tx, address, summary: String, old: Value, new: Value| Alert {
            rule: rule.id.clone(),
            kind: rule.kind.as_str(),
            severity: rule.severity,
            block: number,
            block_hash: hash,
            tx,
            contract: rule.kind.contract().map(|(c, _)| c.to_string()),
            address,
            summary,
            old,
            new,
            playbook: rule.playbook.clone(),
        };
        match &rule.kind {
            WatchKind::SlotChanged {
                contract,
                address,
                slot,
                slot_name,
            } => {
                let now = self.storage(*address, *slot, view.hash)?;
                let Memory::Word(before) = self.memory[i] else {
                    return Ok(());
                };
                if now != before {
                    self.memory[i] = Memory::Word(now);
                    let tx = self.cause(view, *address)?;
                    out.push(mk(
                        tx,
                        *address,
                        format!(
                            "the {slot_name} of {contract} changed: {} → {}",
                            show_word(&before),
                            show_word(&now)
                        ),
                        json!(show_word(&before)),
                        json!(show_word(&now)),
                    ));
                }
            }
            WatchKind::PausedChanged { contract, address } => {
                let now = self.paused_at(*address, view.hash)?;
                let Memory::Paused(before) = self.memory[i] else {
                    return Ok(());
                };
                if now != before {
                    self.memory[i] = Memory::Paused(now);
                    let tx = self.cause(view, *address)?;
                    let show =
                        |p: Option<bool>| p.map_or("unreadable".to_string(), |b| b.to_string());
                    out.push(mk(
                        tx,
                        *address,
                        format!(
                            "{contract}.paused() changed: {} → {}",
                            show(before),
                            show(now)
                        ),
                        json!(before),
                        json!(now),
                    ));
                }
            }
            WatchKind::BalanceDrop {
                contract,
                address,
                token,
                percent,
                blocks,
            } => {
                let now = self.balance_at(*address, token.as_ref().map(|t| t.1), view.hash)?;
                let Memory::Balance(window) = &mut self.memory[i] else {
                    return Ok(());
                };
                let first = view.number.saturating_sub(*blocks);
                while window.front().is_some_and(|(k, _)| *k < first) {
                    window.pop_front();
                }
                let high = window.iter().map(|(_, b)| *b).max().unwrap_or(now);
                window.push_back((view.number, now));
                // now < high × (100 − percent) / 100, without division.
                let fell = now.saturating_mul(U256::from(100))
                    < high.saturating_mul(U256::from(100 - u64::from(*percent)));
                if fell {
                    let (from_block, _) = window
                        .iter()
                        .find(|(_, b)| *b == high)
                        .copied()
                        .unwrap_or((view.number, high));
                    // One alert per drop: the window starts again from here.
                    *window = VecDeque::from([(view.number, now)]);
                    let unit = token
                        .as_ref()
                        .map_or("wei".to_string(), |t| format!("units of {}", t.0));
                    let pct = if high.is_zero() {
                        100.0
                    } else {
                        let h: f64 = high.to_string().parse().unwrap_or(0.0);
                        let n: f64 = now.to_string().parse().unwrap_or(0.0);
                        (1.0 - n / h) * 100.0
                    };
                    // An ERC-20's Transfer out of the holder names the transaction; else what touched the holder.
                    let transfer_out = token.as_ref().and_then(|(_, t)| {
                        let topic = keccak256("Transfer(address,address,uint256)");
                        let holder = B256::left_padding_from(address.as_slice());
                        view.logs
                            .iter()
                            .find(|l| {
                                l.address == *t
                                    && l.topics.first() == Some(&topic)
                                    && l.topics.get(1) == Some(&holder)
                            })
                            .and_then(|l| l.tx)
                    });
                    let tx = match transfer_out {
                        Some(t) => Some(t),
                        None => self.cause(view, *address)?,
                    };
                    out.push(mk(
                        tx,
                        *address,
                        format!(
                            "the {} balance of {contract} fell {pct:.1}% (more than {percent}%) since block {from_block}: {high} → {now} {unit}",
                            token.as_ref().map_or("ETH", |t| t.0.as_str()),
                        ),
                        json!(high.to_string()),
                        json!(now.to_string()),
                    ));
                }
            }
            WatchKind::SafeChanged { safe, what } => {
                let now = self.safe_at(*safe, what, view.hash)?;
                let Memory::Safe(before) = &self.memory[i] else {
                    return Ok(());
                };
                let before = before.clone();
                let topics = safe_event_topics(what);
                let events: Vec<(&'static str, Option<B256>, String)> = view
                    .logs
                    .iter()
                    .filter(|l| l.address == *safe)
                    .filter_map(|l| {
                        let t0 = l.topics.first()?;
                        let (_, sig) = topics.iter().find(|(t, _)| t == t0)?;
                        let arg = l
                            .topics
                            .get(1)
                            .map(show_word)
                            .or_else(|| {
                                (l.data.len() >= 32)
                                    .then(|| show_word(&B256::from_slice(&l.data[..32])))
                            })
                            .unwrap_or_default();
                        Some((*sig, l.tx, arg))
                    })
                    .collect();
                let changed: Vec<String> = now
                    .iter()
                    .zip(&before)
                    .filter(|(a, b)| a.1 != b.1)
                    .map(|(a, b)| format!("{}: {} → {}", a.0.as_str(), b.1, a.1))
                    .collect();
                if !changed.is_empty() || !events.is_empty() {
                    self.memory[i] = Memory::Safe(now.clone());
                    let tx = match events.iter().find_map(|e| e.1) {
                        Some(t) => Some(t),
                        None => self.cause(view, *safe)?,
                    };
                    let mut parts = changed;
                    parts.extend(events.iter().map(|(sig, _, arg)| {
                        let name = sig.split('(').next().unwrap_or(sig);
                        format!("event {name}({arg})")
                    }));
                    let obj = |v: &[(SafeAspect, Value)]| {
                        Value::Object(
                            v.iter()
                                .map(|(a, x)| (a.as_str().to_string(), x.clone()))
                                .collect(),
                        )
                    };
                    out.push(mk(
                        tx,
                        *safe,
                        format!("the Safe's configuration changed: {}", parts.join("; ")),
                        obj(&before),
                        obj(&now),
                    ));
                }
            }
            WatchKind::Event {
                contract,
                address,
                event,
                filters,
            } => {
                let selector = event.selector();
                let logs: Vec<LogRow> = view
                    .logs
                    .iter()
                    .filter(|l| {
                        l.address == *address
                            && (event.anonymous || l.topics.first() == Some(&selector))
                    })
                    .cloned()
                    .collect();
                for l in logs {
                    let topics = l.topics.clone();
                    let Ok(decoded) = event.decode_log_parts(topics, &l.data) else {
                        continue;
                    };
                    let (mut idx, mut body) =
                        (decoded.indexed.into_iter(), decoded.body.into_iter());
                    let values: Vec<(String, DynSolValue)> = event
                        .inputs
                        .iter()
                        .filter_map(|p| {
                            let v = if p.indexed { idx.next() } else { body.next() }?;
                            Some((p.name.clone(), v))
                        })
                        .collect();
                    let ok = filters.iter().all(|(_, at, c)| {
                        values
                            .get(*at)
                            .is_some_and(|(_, v)| matches!(c.check(v), ConstraintCheck::Held(_)))
                    });
                    if !ok {
                        continue;
                    }
                    let shown: Vec<String> = values
                        .iter()
                        .map(|(n, v)| format!("{n}={}", show_value(v)))
                        .collect();
                    let args = Value::Object(
                        values
                            .iter()
                            .map(|(n, v)| (n.clone(), json!(show_value(v))))
                            .collect(),
                    );
                    out.push(mk(
                        l.tx,
                        *address,
                        format!("{contract} emitted {}({})", event.name, shown.join(", ")),
                        Value::Null,
                        args,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Follows the node until `until` is checked or `stop` is set: polls every `every`, and when the node
    /// stops answering reports [`WatchEvent::Blind`] once and retries with backoff (up to 5 s) until it
    /// answers again.
    ///
    /// With `wake` (new-head notifications, e.g. from [`super::ws::follow`]), a notification ends the wait
    /// at once.
    pub fn run(
        &mut self,
        every: Duration,
        until: Option<u64>,
        stop: Arc<AtomicBool>,
        wake: Option<&std::sync::mpsc::Receiver<()>>,
        sink: &mut dyn FnMut(WatchEvent),
    ) -> Result<(), WatchError> {
        let mut backoff = every;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let wait = match self.poll(until, &stop, sink) {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    backoff = every;
                    every
                }
                Err(WatchError::Cursor { path, reason }) => {
                    return Err(WatchError::Cursor { path, reason })
                }
                Err(e) => {
                    if !self.blind {
                        self.blind = true;
                        sink(WatchEvent::Blind {
                            from_block: self.cursor.block + 1,
                            reason: e.to_string(),
                        });
                    }
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    w
                }
            };
            let t0 = Instant::now();
            while t0.elapsed() < wait {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let slice = Duration::from_millis(20).min(wait);
                match wake {
                    Some(rx) if !self.blind => {
                        if rx.recv_timeout(slice).is_ok() {
                            while rx.try_recv().is_ok() {}
                            break;
                        }
                    }
                    _ => std::thread::sleep(slice),
                }
            }
        }
    }
}

fn read_cursor(p: &Path, chain_id: u64) -> Result<Cursor, WatchError> {
    let bad = |reason: String| WatchError::Cursor {
        path: p.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(p).map_err(|e| bad(e.to_string()))?;
    if meta.len() > 1 << 20 {
        return Err(bad(format!(
            "{} bytes is too large for a cursor",
            meta.len()
        )));
    }
    let bytes = std::fs::read(p).map_err(|e| bad(e.to_string()))?;
    let c: Cursor =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a watch cursor: {e}")))?;
    if c.format != CURSOR_FORMAT {
        return Err(bad(format!("format {:?} is not {CURSOR_FORMAT}", c.format)));
    }
    if c.chain_id != chain_id {
        return Err(bad(format!(
            "it is for chain {}, the manifest is for chain {chain_id}: use another --cursor file",
            c.chain_id
        )));
    }
    if c.recent.last() != Some(&(c.block, c.hash)) {
        return Err(bad("its recent blocks do not end at its block".into()));
    }
    Ok(c)
}
