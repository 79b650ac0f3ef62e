//! The console's state and its pure update function: keys and background results in, effects out.
//! Nothing here touches a terminal, a device or a network, so every screen flow is testable by feeding
//! key sequences (STYLE.md point 6).

use crate::bundle::Bundle;
use crate::chain::postcond::PostCondition;
use crate::manifest::trust::Trust;
use crate::manifest::Manifest;
use crate::policy::Report;
use alloy::primitives::{Address, U256};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

/// The screens, each reached by one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// `d`
    Dashboard,
    /// `p`
    Playbooks,
    /// `r`
    Review,
    /// `s`
    Sign,
    /// `t`
    Transfer,
    /// `x`
    Execute,
    /// `l`
    Log,
}

impl Screen {
    /// Title.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Dashboard => "Dashboard",
            Screen::Playbooks => "Playbooks",
            Screen::Review => "Review",
            Screen::Sign => "Sign",
            Screen::Transfer => "Transfer",
            Screen::Execute => "Execute",
            Screen::Log => "Log",
        }
    }
}

/// One signing account the console can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Ledger account number (m/44'/60'/N'/0/0), or 0 for a keystore.
    pub index: u32,
    /// Its address.
    pub address: Address,
}

/// What the signer says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    /// e.g. "SIMULATED LEDGER (test/drill device) at 127.0.0.1:…, Ethereum app 1.22.0".
    pub label: String,
    /// Blind signing, for a Ledger.
    pub blind_signing: Option<bool>,
    /// Whether it signs Safe transactions in full EIP-712 mode (a Ledger app 1.9 or later: the device
    /// shows the Safe transaction's fields).
    pub full_eip712: bool,
    /// Accounts found.
    pub accounts: Vec<Account>,
    /// The last error, in words.
    pub error: Option<String>,
}

/// A dangerous step waiting for `y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// Sign the current bundle with this account.
    Sign(Account),
    /// Execute the current bundle.
    Execute,
    /// Quit while work is running.
    Quit,
}

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Good news.
    Ok,
    /// Neutral.
    Info,
    /// Something failed.
    Error,
}

/// One line of the session log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Seconds since the console started.
    pub at: f64,
    /// Level.
    pub level: Level,
    /// What happened.
    pub text: String,
}

/// Execution progress.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    /// Progress lines.
    pub lines: Vec<String>,
    /// Post-conditions, once known.
    pub posts: Vec<PostCondition>,
    /// Receipt summary.
    pub receipt: Option<String>,
    /// Finished (successfully or not).
    pub done: bool,
}

/// What a chain's node says now (multi-chain manifests; refreshed at start, after an execution, and on `u`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainLive {
    /// Latest block.
    pub block: u64,
    /// The Safe's nonce.
    pub safe_nonce: Option<U256>,
    /// Whether the Safe's owners and threshold on chain are the manifest's.
    pub owners_match: Option<bool>,
    /// `paused()` of each contract whose ABI has it, by contract id.
    pub paused: Vec<(String, bool)>,
}

/// One chain of a multi-chain manifest, as the console tracks it. The active chain's bundle, report and
/// execution live in [`App`]; the others wait here.
#[derive(Debug, Clone)]
pub struct ChainRow {
    /// The chain's view of the manifest.
    pub manifest: Manifest,
    /// Its node.
    pub rpc: Option<String>,
    /// What the node said last (or why it could not be asked).
    pub live: Option<Result<ChainLive, String>>,
    /// The incident's bundle on this chain.
    pub bundle: Option<Bundle>,
    /// Its report.
    pub report: Option<Report>,
    /// Its execution.
    pub exec: ExecState,
}

impl ChainRow {
    /// Where the incident stands on this chain, in a few words.
    pub fn stage(&self, bundle: Option<&Bundle>, exec: &ExecState) -> String {
        let Some(b) = bundle else {
            return "—".into();
        };
        let pb = b.playbook.clone().unwrap_or_else(|| "bundle".into());
        if let Some(r) = &b.receipt {
            let posts = b.postconditions.as_ref();
            return if r.status != 1 {
                format!("{pb}: REVERTED")
            } else if posts.is_some_and(|p| p.iter().all(|p| p.pass)) {
                format!("{pb}: executed, post-conditions ok")
            } else {
                format!("{pb}: executed, POST-CONDITION FAILED")
            };
        }
        if !exec.lines.is_empty() && !exec.done {
            return format!("{pb}: executing");
        }
        let t = crate::bundle::tally_manifest(&self.manifest, b, &[]);
        format!("{pb}: {} of {} signatures", t.counted.len(), t.threshold)
    }
}

/// Things the runtime does for the state machine, in the background.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Compose this playbook.
    Compose(String),
    /// Sign the bundle with this account.
    Sign(Box<Bundle>, Account),
    /// Execute the bundle.
    Execute(Box<Bundle>),
    /// Write the bundle to a file.
    Export(Box<Bundle>),
    /// Save the bundle file quietly (after a signature was accepted).
    Save(Box<Bundle>),
    /// Prepare the animated QR of the bundle (or of its signatures only).
    Qr(Box<Bundle>, bool),
    /// Import signatures for this request from the bundle files in the working directory.
    ImportSignatures(Box<Bundle>),
    /// Ask every chain's node for its state (multi-chain manifests).
    RefreshChains,
    /// Read every ladder and ask the node where each stands.
    RefreshLadder,
    /// Fire this ladder's live rung (its index; after the typed confirmation).
    FireLadder(usize),
    /// Leave.
    Quit,
}

/// Inputs to the state machine.
#[derive(Debug, Clone)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// The device answered (startup or after an error).
    Device(DeviceStatus),
    /// A composition finished.
    Composed(Result<(Box<Bundle>, Box<Report>), String>),
    /// A signature finished.
    Signed(Result<(Box<Bundle>, Address), String>),
    /// Execution progress.
    ExecLine(String),
    /// Execution finished.
    Executed(Result<(Box<Bundle>, Vec<PostCondition>, String), String>),
    /// Export finished.
    Exported(Result<PathBuf, String>),
    /// QR frames ready (terminal renderings of the UR parts), with what they carry.
    QrReady(Result<(Vec<String>, String), String>),
    /// Signatures imported from files: the merged bundle, how many were new, and from which files.
    Imported(Result<(Box<Bundle>, usize, Vec<String>), String>),
    /// Time passed (seconds since start).
    Tick(f64),
    /// Each chain's state, by chain id.
    ChainStatus(Vec<(u64, Result<ChainLive, String>)>),
    /// Each ladder's state (in the order given): its playbook, rung count and state, or why it could
    /// not be read.
    LadderStatus(Vec<Result<(String, usize, crate::ladder::LadderState), String>>),
    /// The ladder fired: what happened, in words.
    LadderFired(Result<String, String>),
    /// The chain watcher reported something (a block checked, an alert, the node lost or back).
    Watch(Box<crate::watch::WatchEvent>),
    /// The chain watcher could not start, or stopped: why.
    WatchStopped(String),
}

/// The whole console state.
pub struct App {
    /// Current screen.
    pub screen: Screen,
    /// Drill mode: everything labelled DRILL.
    pub drill: bool,
    /// The manifest.
    pub manifest: Manifest,
    /// Its trust state.
    pub trust: Trust,
    /// RPC URL, or None offline.
    pub rpc: Option<String>,
    /// Signer status.
    pub device: DeviceStatus,
    /// Selected playbook.
    pub playbook_idx: usize,
    /// The bundle being worked on.
    pub bundle: Option<Bundle>,
    /// Its report.
    pub report: Option<Report>,
    /// Review scroll.
    pub scroll: u16,
    /// Selected account on the Sign screen.
    pub account_idx: usize,
    /// Running background work.
    pub busy: Option<String>,
    /// Waiting for `y`.
    pub confirm: Option<Confirm>,
    /// `?` overlay.
    pub help: bool,
    /// Execution progress.
    pub exec: ExecState,
    /// The session's audit trail.
    pub log: Vec<LogEntry>,
    /// The last message for the status line.
    pub message: Option<(Level, String)>,
    /// The pre-signed pause ladders the console watches (`--ladder`, or the drill's), and their state
    /// (empty until the first answer).
    pub ladders: Vec<Result<(String, usize, crate::ladder::LadderState), String>>,
    /// Whether a ladder file was given.
    pub has_ladder: bool,
    /// The typed confirmation of firing a ladder (what has been typed so far).
    pub fire_input: Option<String>,
    /// Which ladder the typed confirmation fires (Tab moves to the next).
    pub fire_target: usize,
    /// The latest alert of the chain watcher, until acknowledged (`A`).
    pub alert: Option<Box<crate::watch::Alert>>,
    /// How many alerts the watcher raised this session.
    pub alerts: usize,
    /// The chain watcher's state for the dashboard (rules, last block checked, blind), when it runs.
    pub watch: Option<(Level, String)>,
    /// How many rules the watcher checks.
    pub watch_rules: usize,
    /// Last export.
    pub exported: Option<PathBuf>,
    /// Animated QR frames on the Transfer screen, what they carry, and the frame shown.
    pub qr: Vec<String>,
    /// What the QR carries.
    pub qr_what: String,
    /// Frame shown.
    pub qr_idx: usize,
    /// Colours on (off with NO_COLOR).
    pub color: bool,
    /// Set when the console should exit.
    pub quit: bool,
    /// The chains of a multi-chain manifest (empty for one chain).
    pub chains: Vec<ChainRow>,
    /// The active chain.
    pub chain_idx: usize,
    now: f64,
    cancelled: bool,
    /// Background jobs started whose result has not arrived (a cancelled one still counts: a new job
    /// waits for it, so a late result can never be taken for another job's).
    outstanding: u32,
    executing: bool,
}

impl App {
    /// A fresh console.
    pub fn new(manifest: Manifest, trust: Trust, rpc: Option<String>, drill: bool) -> Self {
        let chains: Vec<ChainRow> = if manifest.is_multichain() {
            manifest
                .all_chains()
                .into_iter()
                .map(|m| ChainRow {
                    manifest: m,
                    rpc: rpc.clone(),
                    live: None,
                    bundle: None,
                    report: None,
                    exec: ExecState::default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let manifest = chains.first().map_or(manifest, |c| c.manifest.clone());
        Self {
            chains,
            chain_idx: 0,
            screen: Screen::Dashboard,
            drill,
            manifest,
            trust,
            rpc,
            device: DeviceStatus {
                label: "checking the signer…".into(),
                ..Default::default()
            },
            playbook_idx: 0,
            bundle: None,
            report: None,
            scroll: 0,
            account_idx: 0,
            busy: None,
            confirm: None,
            help: false,
            exec: ExecState::default(),
            log: Vec::new(),
            message: None,
            ladders: Vec::new(),
            has_ladder: false,
            fire_target: 0,
            alert: None,
            alerts: 0,
            watch: None,
            watch_rules: 0,
            fire_input: None,
            exported: None,
            qr: Vec::new(),
            qr_what: String::new(),
            qr_idx: 0,
            color: std::env::var_os("NO_COLOR").is_none(),
            quit: false,
            now: 0.0,
            cancelled: false,
            outstanding: 0,
            executing: false,
        }
    }

    /// Each chain's own node (multi-chain manifests): by chain name; chains without one keep the default.
    pub fn set_chain_nodes(&mut self, urls: &std::collections::BTreeMap<String, String>) {
        for c in &mut self.chains {
            if let Some(u) = c.manifest.chain_name.as_ref().and_then(|n| urls.get(n)) {
                c.rpc = Some(u.clone());
            }
        }
        if let Some(c) = self.chains.get(self.chain_idx) {
            self.rpc = c.rpc.clone();
        }
    }

    /// Makes chain `idx` the active one: the current chain's bundle, report and execution are kept in its
    /// row, the new chain's are brought back.
    pub fn switch_chain(&mut self, idx: usize) {
        if idx >= self.chains.len() || idx == self.chain_idx {
            return;
        }
        let cur = &mut self.chains[self.chain_idx];
        cur.bundle = self.bundle.take();
        cur.report = self.report.take();
        cur.exec = std::mem::take(&mut self.exec);
        self.chain_idx = idx;
        let next = &mut self.chains[idx];
        self.bundle = next.bundle.take();
        self.report = next.report.take();
        self.exec = std::mem::take(&mut next.exec);
        self.manifest = next.manifest.clone();
        self.rpc = next.rpc.clone();
        self.playbook_idx = 0;
        self.scroll = 0;
        self.qr.clear();
        let label = self.manifest.chain_label();
        self.note(Level::Info, format!("now working on {label}"));
    }

    /// Records the time for log entries.
    pub fn now_tick(&mut self, t: f64) {
        self.now = t;
    }

    fn note(&mut self, level: Level, text: impl Into<String>) {
        let text = text.into();
        self.log.push(LogEntry {
            at: self.now,
            level,
            text: text.clone(),
        });
        self.message = Some((level, text));
    }

    /// Signatures collected and needed.
    /// (Approved-hash entries count only when proven, and each owner once: see [`crate::bundle::tally`].)
    pub fn signatures(&self) -> (usize, usize) {
        match &self.bundle {
            Some(b) => {
                let t = crate::bundle::tally_manifest(&self.manifest, b, &[]);
                (t.counted.len(), t.threshold)
            }
            None => (0, self.manifest.safe.as_ref().map_or(1, |s| s.threshold)),
        }
    }

    /// Owners who have not signed the current bundle (an unproven approved-hash entry is not a signature).
    pub fn missing_owners(&self) -> Vec<Address> {
        match &self.bundle {
            Some(b) if b.eoa_tx.is_none() => {
                crate::bundle::tally_manifest(&self.manifest, b, &[]).missing
            }
            Some(_) => Vec::new(),
            None => self
                .manifest
                .safe
                .as_ref()
                .map(|s| s.owners.clone())
                .unwrap_or_default(),
        }
    }

    /// The keys that work on the current screen, for the footer.
    pub fn footer_keys(&self) -> Vec<(&'static str, &'static str)> {
        if self.help {
            return vec![("Esc", "close help")];
        }
        if self.confirm.is_some() {
            return vec![("y", "confirm"), ("n/Esc", "cancel")];
        }
        let mut k = match self.screen {
            Screen::Playbooks => vec![("↑↓", "choose"), ("Enter", "compose")],
            Screen::Review => vec![("↑↓", "scroll"), ("s", "sign")],
            Screen::Sign if self.device.full_eip712 => vec![
                ("↑↓", "account"),
                ("Enter", "sign"),
                ("PgDn/PgUp", "device pages"),
            ],
            Screen::Sign => vec![("↑↓", "account"), ("Enter", "sign")],
            Screen::Execute if self.busy.is_none() && !self.exec.done => vec![("Enter", "execute")],
            Screen::Execute => vec![],
            Screen::Transfer => vec![
                ("e", "file"),
                ("i", "import"),
                ("a", "QR"),
                ("g", "QR sigs"),
            ],
            Screen::Log => vec![("↑↓", "scroll")],
            Screen::Dashboard if !self.chains.is_empty() => {
                vec![("p", "playbooks"), ("c", "next chain"), ("u", "refresh")]
            }
            Screen::Dashboard if self.has_ladder => vec![("p", "playbooks"), ("F", "fire ladder")],
            Screen::Dashboard => vec![("p", "playbooks")],
        };
        if let Some(al) = &self.alert {
            if al.playbook.is_some() {
                k.insert(0, ("P", "proposed playbook"));
            }
            k.insert(0, ("A", "acknowledge alert"));
        }
        if !self.chains.is_empty() && self.screen == Screen::Playbooks {
            k.push(("c", "next chain"));
        }
        if self.busy.is_some() && !self.executing {
            k.push(("Esc", "cancel"));
        }
        k.extend([("?", "help"), ("q", "quit"), ("d p r s t x l", "screens")]);
        k
    }

    fn start(&mut self, what: &str) {
        self.busy = Some(what.to_string());
        self.cancelled = false;
        self.outstanding += 1;
        self.note(Level::Info, what.to_string());
    }

    /// Whether a new background job may start (none running, none cancelled but still out).
    pub fn can_start(&self) -> bool {
        self.busy.is_none() && self.outstanding == 0
    }

    fn finish_busy(&mut self) -> bool {
        self.busy = None;
        self.outstanding = self.outstanding.saturating_sub(1);
        let c = self.cancelled;
        if self.outstanding == 0 {
            self.cancelled = false;
        }
        !c
    }
}

/// The state machine.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Tick(t) => {
            app.now = t;
            if app.screen == Screen::Transfer && !app.qr.is_empty() {
                app.qr_idx = (app.qr_idx + 1) % app.qr.len();
            }
            Vec::new()
        }
        Action::Imported(r) => {
            if !app.finish_busy() {
                app.note(Level::Info, "an import arrived after cancel: discarded");
                return Vec::new();
            }
            match r {
                Ok((b, added, files)) => {
                    let (before, _) = app.signatures();
                    app.bundle = Some(*b.clone());
                    let (have, need) = app.signatures();
                    app.note(
                        Level::Ok,
                        format!(
                            "imported {added} new signature(s) from {} file(s) ({}) — {have} of {need}",
                            files.len(),
                            files.join(", ")
                        ),
                    );
                    let _ = before;
                    if added > 0 {
                        return vec![Effect::Save(b)];
                    }
                }
                Err(e) => app.note(Level::Error, format!("import failed: {e}")),
            }
            Vec::new()
        }
        Action::QrReady(r) => {
            app.finish_busy();
            match r {
                Ok((frames, what)) => {
                    app.note(
                        Level::Ok,
                        format!("QR ready: {what}, {} frames", frames.len()),
                    );
                    app.qr = frames;
                    app.qr_what = what;
                    app.qr_idx = 0;
                }
                Err(e) => app.note(Level::Error, format!("QR failed: {e}")),
            }
            Vec::new()
        }
        Action::Key(k) => on_key(app, k),
        Action::Device(d) => {
            match &d.error {
                Some(e) => app.note(Level::Error, format!("signer: {e}")),
                None => app.note(Level::Info, format!("signer ready: {}", d.label)),
            }
            app.device = d;
            Vec::new()
        }
        Action::Composed(r) => {
            if !app.finish_busy() {
                app.note(Level::Info, "composition finished after cancel: discarded");
                return Vec::new();
            }
            match r {
                Ok((b, rep)) => {
                    let h = b
                        .safe_hashes()
                        .map(|h| format!(" safeTxHash {:#x}", h.safe_tx_hash))
                        .unwrap_or_default();
                    app.note(
                        Level::Ok,
                        format!(
                            "composed {} ({}){h}: verified, {}",
                            b.playbook.clone().unwrap_or_default(),
                            b.actions.join(", "),
                            if rep.allowed { "ALLOWED" } else { "REFUSED" }
                        ),
                    );
                    app.bundle = Some(*b);
                    app.report = Some(*rep);
                    app.exec = ExecState::default();
                    app.scroll = 0;
                    app.screen = Screen::Review;
                }
                Err(e) => app.note(Level::Error, format!("compose failed: {e}")),
            }
            Vec::new()
        }
        Action::Signed(r) => {
            if !app.finish_busy() {
                app.note(
                    Level::Info,
                    "a signature arrived after cancel: discarded (not added to the bundle, not saved)",
                );
                return Vec::new();
            }
            let mut save = Vec::new();
            match r {
                Ok((b, who)) => {
                    app.bundle = Some(*b.clone());
                    save = vec![Effect::Save(b)];
                    let (have, need) = app.signatures();
                    app.note(
                        Level::Ok,
                        format!(
                            "signed by {} — {have} of {need} signatures",
                            who.to_checksum(None)
                        ),
                    );
                    if have >= need {
                        app.screen = Screen::Execute;
                    } else if app.account_idx + 1 < app.device.accounts.len() {
                        app.account_idx += 1;
                    }
                }
                Err(e) => app.note(Level::Error, format!("signing failed: {e}")),
            }
            save
        }
        Action::ExecLine(l) => {
            app.exec.lines.push(l.clone());
            app.note(Level::Info, l);
            Vec::new()
        }
        Action::Executed(r) => {
            app.finish_busy();
            app.executing = false;
            app.exec.done = true;
            match r {
                Ok((b, posts, receipt)) => {
                    let all = posts.iter().all(|p| p.pass);
                    app.exec.posts = posts;
                    app.exec.receipt = Some(receipt.clone());
                    app.bundle = Some(*b);
                    if all {
                        app.note(Level::Ok, format!("{receipt}; all post-conditions passed"));
                    } else {
                        app.note(Level::Error, format!("{receipt}; a post-condition FAILED"));
                    }
                }
                Err(e) => app.note(Level::Error, format!("execution failed: {e}")),
            }
            if app.chains.is_empty() {
                Vec::new()
            } else {
                vec![Effect::RefreshChains]
            }
        }
        Action::Watch(e) => on_watch(app, *e),
        Action::WatchStopped(why) => {
            app.watch = Some((Level::Error, format!("not watching: {why}")));
            Vec::new()
        }
        Action::LadderStatus(r) => {
            app.ladders = r;
            Vec::new()
        }
        Action::LadderFired(r) => {
            app.finish_busy();
            match r {
                Ok(m) => app.note(Level::Ok, m),
                Err(e) => app.note(Level::Error, format!("ladder not fired: {e}")),
            }
            vec![Effect::RefreshLadder]
        }
        Action::ChainStatus(rows) => {
            for (id, live) in rows {
                if let Some(c) = app.chains.iter_mut().find(|c| c.manifest.chain_id == id) {
                    c.live = Some(live);
                }
            }
            Vec::new()
        }
        Action::Exported(r) => {
            app.finish_busy();
            match r {
                Ok(p) => {
                    app.note(Level::Ok, format!("bundle written to {}", p.display()));
                    app.exported = Some(p);
                }
                Err(e) => app.note(Level::Error, format!("export failed: {e}")),
            }
            Vec::new()
        }
    }
}

fn on_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    if let Some(typed) = app.fire_input.as_mut() {
        // The typed confirmation of firing the ladder: the word `fire`, then Enter.
        match k.code {
            KeyCode::Esc => {
                app.fire_input = None;
                app.note(Level::Info, "ladder not fired");
            }
            KeyCode::Backspace => {
                typed.pop();
            }
            KeyCode::Enter => {
                let ok = typed == "fire";
                app.fire_input = None;
                if ok && app.can_start() {
                    app.start("firing the ladder's live rung");
                    return vec![Effect::FireLadder(app.fire_target)];
                }
                app.note(
                    Level::Error,
                    "ladder not fired: type the word fire, then Enter",
                );
            }
            KeyCode::Tab if app.ladders.len() > 1 => {
                app.fire_target = (app.fire_target + 1) % app.ladders.len();
            }
            KeyCode::Char(c) if typed.len() < 16 => typed.push(c),
            _ => {}
        }
        return Vec::new();
    }
    if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
        app.quit = true;
        return vec![Effect::Quit];
    }
    if app.help {
        if matches!(
            k.code,
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter
        ) {
            app.help = false;
        }
        return Vec::new();
    }
    if let Some(c) = app.confirm.clone() {
        return match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                app.confirm = None;
                match c {
                    Confirm::Quit => {
                        app.quit = true;
                        vec![Effect::Quit]
                    }
                    Confirm::Sign(acct) => match app.bundle.clone() {
                        Some(b) => {
                            app.start(&format!(
                                "confirm on the device: signing with account {} ({})",
                                acct.index,
                                acct.address.to_checksum(None)
                            ));
                            vec![Effect::Sign(Box::new(b), acct)]
                        }
                        None => Vec::new(),
                    },
                    Confirm::Execute => match app.bundle.clone() {
                        Some(b) => {
                            app.exec = ExecState::default();
                            app.executing = true;
                            app.start("executing: simulate, sign the execution, send, wait, check post-conditions");
                            vec![Effect::Execute(Box::new(b))]
                        }
                        None => Vec::new(),
                    },
                }
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                app.confirm = None;
                app.note(Level::Info, "cancelled");
                Vec::new()
            }
            _ => Vec::new(),
        };
    }
    match k.code {
        KeyCode::Char('q') => {
            if app.busy.is_some() {
                app.confirm = Some(Confirm::Quit);
                Vec::new()
            } else {
                app.quit = true;
                vec![Effect::Quit]
            }
        }
        KeyCode::Char('?') => {
            app.help = true;
            Vec::new()
        }
        KeyCode::Esc => {
            if app.executing {
                app.note(Level::Info, "execution cannot be cancelled: the transaction may already be sent; its result will be shown");
            } else if let Some(b) = app.busy.take() {
                app.cancelled = true;
                app.note(
                    Level::Info,
                    format!("cancelled: {b}. If the device still asks, reject it there; a late result is discarded, not saved"),
                );
            }
            Vec::new()
        }
        KeyCode::Char('c') if !app.chains.is_empty() => {
            if app.can_start() {
                let next = (app.chain_idx + 1) % app.chains.len();
                app.switch_chain(next);
            } else {
                app.note(
                    Level::Info,
                    "busy: wait for the current step before changing chains",
                );
            }
            Vec::new()
        }
        KeyCode::Char('A') if app.alert.is_some() => {
            app.alert = None;
            app.note(Level::Info, "alert acknowledged (it stays in the log)");
            Vec::new()
        }
        KeyCode::Char('P') if app.alert.as_ref().is_some_and(|a| a.playbook.is_some()) => {
            let wanted = app.alert.as_ref().and_then(|a| a.playbook.clone());
            if let Some(i) = app
                .manifest
                .playbooks
                .iter()
                .position(|p| Some(&p.id) == wanted.as_ref())
            {
                app.playbook_idx = i;
            }
            goto(app, Screen::Playbooks)
        }
        KeyCode::Char('F') if app.screen == Screen::Dashboard && app.has_ladder => {
            // The first live ladder, if any (Tab in the dialog chooses another).
            app.fire_target = app
                .ladders
                .iter()
                .position(|l| matches!(l, Ok((_, _, crate::ladder::LadderState::Live { .. }))))
                .unwrap_or(0);
            app.fire_input = Some(String::new());
            Vec::new()
        }
        KeyCode::Char('u') if app.has_ladder && app.chains.is_empty() => {
            app.note(Level::Info, "asking the node where each ladder stands");
            vec![Effect::RefreshLadder]
        }
        KeyCode::Char('u') if !app.chains.is_empty() => {
            app.note(Level::Info, "asking every chain's node");
            vec![Effect::RefreshChains]
        }
        KeyCode::Char('d') => goto(app, Screen::Dashboard),
        KeyCode::Char('p') => goto(app, Screen::Playbooks),
        KeyCode::Char('r') => goto(app, Screen::Review),
        KeyCode::Char('s') => goto(app, Screen::Sign),
        KeyCode::Char('t') => goto(app, Screen::Transfer),
        KeyCode::Char('x') => goto(app, Screen::Execute),
        KeyCode::Char('l') => goto(app, Screen::Log),
        KeyCode::Up | KeyCode::Char('k') => {
            move_sel(app, -1);
            Vec::new()
        }
        KeyCode::Down | KeyCode::Char('j') => {
            move_sel(app, 1);
            Vec::new()
        }
        KeyCode::PageDown => {
            app.scroll = app.scroll.saturating_add(5);
            Vec::new()
        }
        KeyCode::PageUp => {
            app.scroll = app.scroll.saturating_sub(5);
            Vec::new()
        }
        KeyCode::Enter => enter(app),
        KeyCode::Char('i') if app.screen == Screen::Transfer => match app.bundle.clone() {
            Some(b) if app.can_start() => {
                app.start("importing signatures from bundle files");
                vec![Effect::ImportSignatures(Box::new(b))]
            }
            Some(_) => {
                app.note(Level::Info, "busy: wait for the current step to finish");
                Vec::new()
            }
            None => {
                app.note(
                    Level::Error,
                    "nothing to import into: compose a playbook first (p)",
                );
                Vec::new()
            }
        },
        KeyCode::Char(c @ ('a' | 'g')) if app.screen == Screen::Transfer => {
            match app.bundle.clone() {
                Some(b) if app.can_start() => {
                    app.start("preparing the QR code");
                    vec![Effect::Qr(Box::new(b), c == 'g')]
                }
                Some(_) => {
                    app.note(Level::Info, "busy: wait for the current step to finish");
                    Vec::new()
                }
                None => {
                    app.note(
                        Level::Error,
                        "nothing to show: compose a playbook first (p)",
                    );
                    Vec::new()
                }
            }
        }
        KeyCode::Char('e') if app.screen == Screen::Transfer => match app.bundle.clone() {
            Some(b) if app.can_start() => {
                app.start("writing the bundle file");
                vec![Effect::Export(Box::new(b))]
            }
            Some(_) => {
                app.note(Level::Info, "busy: wait for the current step to finish");
                Vec::new()
            }
            None => {
                app.note(
                    Level::Error,
                    "nothing to export: compose a playbook first (p)",
                );
                Vec::new()
            }
        },
        _ => Vec::new(),
    }
}

/// What the chain watcher reports: alerts take over the header until acknowledged; the dashboard shows the
/// last block checked, or that the watcher is blind.
fn on_watch(app: &mut App, e: crate::watch::WatchEvent) -> Vec<Effect> {
    use crate::watch::WatchEvent as W;
    match e {
        W::Start {
            rules, from_block, ..
        } => {
            app.watch_rules = rules.len();
            app.watch = Some((
                Level::Ok,
                format!("{} rule(s), from block {from_block}", rules.len()),
            ));
        }
        W::Block { number, .. } => {
            app.watch = Some((
                Level::Ok,
                format!(
                    "{} rule(s), block {number} checked, {} alert(s) this session",
                    app.watch_rules, app.alerts
                ),
            ));
        }
        W::Alert(a) => {
            app.alerts += 1;
            app.note(
                Level::Error,
                format!(
                    "ALERT [{}] {} at block {}: {}",
                    a.severity.as_str(),
                    a.rule,
                    a.block,
                    a.summary
                ),
            );
            app.alert = Some(a);
            // Where the ladder stands may have changed (the alert may be the pause itself).
            if app.has_ladder {
                return vec![Effect::RefreshLadder];
            }
        }
        W::Blind { from_block, reason } => {
            app.watch = Some((
                Level::Error,
                format!("BLIND from block {from_block}: {reason}"),
            ));
            app.note(
                Level::Error,
                format!("watcher blind from block {from_block}: {reason}"),
            );
        }
        W::Resumed { from_block, head } => {
            app.note(
                Level::Info,
                format!("watcher: node back at block {head}, checking from {from_block}"),
            );
        }
        W::Reorg { depth, from_block } => {
            app.note(
                Level::Info,
                format!("watcher: {depth} block(s) replaced, checking again from {from_block}"),
            );
        }
    }
    Vec::new()
}

fn goto(app: &mut App, s: Screen) -> Vec<Effect> {
    app.screen = s;
    app.scroll = 0;
    Vec::new()
}

fn move_sel(app: &mut App, d: i32) {
    let clamp = |v: usize, n: usize| -> usize {
        if n == 0 {
            0
        } else {
            (v as i64 + d as i64).clamp(0, n as i64 - 1) as usize
        }
    };
    match app.screen {
        Screen::Playbooks => {
            app.playbook_idx = clamp(app.playbook_idx, app.manifest.playbooks.len())
        }
        Screen::Sign => app.account_idx = clamp(app.account_idx, app.device.accounts.len()),
        _ => app.scroll = (i32::from(app.scroll) + d).clamp(0, i32::from(u16::MAX)) as u16,
    }
}

fn enter(app: &mut App) -> Vec<Effect> {
    if !app.can_start() {
        let msg = if app.busy.is_some() {
            "busy: wait for the current step, or Esc to cancel it"
        } else {
            "waiting for the cancelled step to end (if the device still asks, reject it there)"
        };
        app.note(Level::Info, msg);
        return Vec::new();
    }
    match app.screen {
        Screen::Playbooks => match app.manifest.playbooks.get(app.playbook_idx) {
            Some(p) => {
                let id = p.id.clone();
                app.start(&format!("composing playbook {id}"));
                vec![Effect::Compose(id)]
            }
            None => Vec::new(),
        },
        Screen::Review => goto(app, Screen::Sign),
        Screen::Sign => {
            let Some(b) = &app.bundle else {
                app.note(
                    Level::Error,
                    "nothing to sign: compose a playbook first (p)",
                );
                return Vec::new();
            };
            if !app.trust.is_trusted() {
                app.note(
                    Level::Error,
                    "the manifest is not trusted: breakglass will not sign",
                );
                return Vec::new();
            }
            if !app.report.as_ref().is_some_and(|r| r.allowed) {
                app.note(
                    Level::Error,
                    "verification refused this transaction: breakglass will not sign it",
                );
                return Vec::new();
            }
            let Some(acct) = app.device.accounts.get(app.account_idx).cloned() else {
                app.note(
                    Level::Error,
                    "no signer account available: check the device (Dashboard)",
                );
                return Vec::new();
            };
            if b.signatures.iter().any(|s| s.signer == acct.address) {
                app.note(
                    Level::Error,
                    format!("{} already signed", acct.address.to_checksum(None)),
                );
                return Vec::new();
            }
            let allowed = match (&b.safe_tx, &b.eoa_tx) {
                (Some(_), _) => app
                    .manifest
                    .safe
                    .as_ref()
                    .is_some_and(|s| s.is_owner(&acct.address)),
                (_, Some(e)) => e.from == acct.address,
                _ => false,
            };
            if !allowed {
                app.note(
                    Level::Error,
                    format!(
                        "{} is not a signer of this transaction",
                        acct.address.to_checksum(None)
                    ),
                );
                return Vec::new();
            }
            app.confirm = Some(Confirm::Sign(acct));
            Vec::new()
        }
        Screen::Execute => {
            let (have, need) = app.signatures();
            if app.bundle.is_none() {
                app.note(
                    Level::Error,
                    "nothing to execute: compose a playbook first (p)",
                );
            } else if app.rpc.is_none() {
                app.note(
                    Level::Error,
                    "offline: execution needs a node (--rpc-url); export the bundle instead (t)",
                );
            } else if have < need {
                app.note(
                    Level::Error,
                    format!("{have} of {need} signatures: sign first (s)"),
                );
            } else if app.exec.done && app.exec.receipt.is_some() {
                app.note(Level::Info, "already executed");
            } else {
                app.confirm = Some(Confirm::Execute);
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}
