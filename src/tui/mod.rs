//! The incident console: a keyboard-driven TUI (ratatui + crossterm). State and pure update live in
//! [`app`], pure rendering in [`ui`]; this runtime only moves keys and background results into the state
//! machine and runs its effects on threads, so the screen never waits on a Ledger or a node.

pub mod app;
pub mod ui;

use crate::bundle::Bundle;
use crate::incident::{self, ComposeRequest, FrontEnd, Progress, Session};
use crate::manifest::trust::Trust;
use crate::manifest::{Manifest, Via};
use crate::signer::keystore::KeystoreSigner;
use crate::signer::ledger::apdu::ledger_live_path;
use crate::signer::ledger::{HidTransport, LedgerSigner, TcpTransport, Transport};
use crate::signer::Signer;
use alloy::primitives::U256;
use app::{Account, Action, App, DeviceStatus, Effect};
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

/// Which signer the console uses.
#[derive(Clone)]
pub enum SignerSpec {
    /// Speculos or the built-in simulator at HOST:PORT.
    Speculos(String),
    /// A Ledger on USB.
    Ledger,
    /// A keystore and its password.
    Keystore(PathBuf, SecretString),
}

/// Everything the console needs.
#[derive(Clone)]
pub struct Env {
    /// The manifest.
    pub manifest: Manifest,
    /// Its trust state.
    pub trust: Trust,
    /// Node.
    pub rpc: Option<String>,
    /// Signer.
    pub signer: Option<SignerSpec>,
    /// Drill mode.
    pub drill: bool,
    /// Where bundles are written.
    pub out_dir: PathBuf,
    /// How many Ledger accounts to offer.
    pub accounts: u32,
    /// The audit log (every compose, signature and execution of the session).
    pub audit: crate::audit::AuditLog,
    /// Node URLs by chain name (multi-chain manifests).
    pub rpc_urls: std::collections::BTreeMap<String, String>,
    /// Pre-signed pause ladders to watch on the dashboard and fire (`F`, then type `fire`).
    pub ladders: Vec<PathBuf>,
    /// Keys of encrypted ladders.
    pub ladder_keys: crate::ladder::Protection,
}

impl Env {
    /// The incident session the console drives: the same workflow, with the same checks, as the commands.
    pub fn session(&self) -> Session {
        Session {
            manifest: self.manifest.clone(),
            trust: self.trust.clone(),
            rpc_url: self.rpc.clone(),
            rpc_urls: self.rpc_urls.clone(),
            audit: self.audit.clone(),
            front_end: if self.drill {
                FrontEnd::Drill
            } else {
                FrontEnd::Console
            },
            simulate: Default::default(),
        }
    }
}

fn open_signer(spec: &SignerSpec, account: u32) -> Result<Box<dyn Signer>, String> {
    match spec {
        SignerSpec::Keystore(p, pw) => Ok(Box::new(
            KeystoreSigner::open(p, pw).map_err(|e| e.to_string())?,
        )),
        SignerSpec::Speculos(addr) => {
            let t: Box<dyn Transport> = Box::new(
                TcpTransport::connect(addr, Duration::from_secs(180)).map_err(|e| e.to_string())?,
            );
            Ok(Box::new(LedgerSigner::new(t, ledger_live_path(account))))
        }
        SignerSpec::Ledger => {
            let t: Box<dyn Transport> = Box::new(HidTransport::open().map_err(|e| e.to_string())?);
            Ok(Box::new(LedgerSigner::new(t, ledger_live_path(account))))
        }
    }
}

fn device_status(env: &Env) -> DeviceStatus {
    let Some(spec) = &env.signer else {
        return DeviceStatus {
            label: "none (start with --speculos, --ledger or --keystore to sign)".into(),
            ..Default::default()
        };
    };
    let run = || -> Result<DeviceStatus, String> {
        match spec {
            SignerSpec::Keystore(..) => {
                let mut s = open_signer(spec, 0)?;
                let a = s.address().map_err(|e| e.to_string())?;
                Ok(DeviceStatus {
                    label: s.label(),
                    accounts: vec![Account {
                        index: 0,
                        address: a,
                    }],
                    ..Default::default()
                })
            }
            _ => {
                let t: Box<dyn Transport> = match spec {
                    SignerSpec::Speculos(addr) => Box::new(
                        TcpTransport::connect(addr, Duration::from_secs(10))
                            .map_err(|e| e.to_string())?,
                    ),
                    _ => Box::new(HidTransport::open().map_err(|e| e.to_string())?),
                };
                let mut l = LedgerSigner::new(t, ledger_live_path(0));
                let (label, cfg) = l.check_app().map_err(|e| e.to_string())?;
                let full_eip712 = l.full_eip712();
                let mut accounts = Vec::new();
                for i in 0..env.accounts {
                    let mut li = open_signer(spec, i)?;
                    accounts.push(Account {
                        index: i,
                        address: li.address().map_err(|e| e.to_string())?,
                    });
                }
                Ok(DeviceStatus {
                    label,
                    blind_signing: Some(cfg.blind_signing()),
                    full_eip712,
                    accounts,
                    error: None,
                })
            }
        }
    };
    run().unwrap_or_else(|e| DeviceStatus {
        label: "unavailable".into(),
        error: Some(e),
        ..Default::default()
    })
}

/// The console's compose effect (run on a worker thread): the incident session composes, with every check
/// `breakglass compose` runs (the node's nonce, the implementation code on chain), and records it.
pub fn compose_job(
    env: &Env,
    playbook: &str,
    from: Option<alloy::primitives::Address>,
) -> Result<(Box<Bundle>, Box<crate::policy::Report>), String> {
    compose_job_on(env, env.manifest.chain_id, playbook, from)
}

/// [`compose_job`] on one chain of a multi-chain manifest (its Safe, its node).
pub fn compose_job_on(
    env: &Env,
    chain_id: u64,
    playbook: &str,
    from: Option<alloy::primitives::Address>,
) -> Result<(Box<Bundle>, Box<crate::policy::Report>), String> {
    let session = env.session().on_chain_id(chain_id);
    let m = &session.manifest;
    let via = m
        .playbook(playbook)
        .and_then(|p| p.actions.first())
        .and_then(|a| m.action(a))
        .map(|a| a.via)
        .unwrap_or(Via::Safe);
    if session.rpc_url.is_none() {
        return Err(match via {
            Via::Eoa => "an EOA playbook needs a node and a signer account; use `breakglass compose` with explicit fee flags offline".into(),
            _ => "offline: the Safe nonce is unknown; compose with `breakglass compose --nonce N` instead".into(),
        });
    }
    if via == Via::Eoa && from.is_none() {
        return Err("an EOA playbook needs a signer account".into());
    }
    let req = ComposeRequest {
        playbook: playbook.to_string(),
        from,
        ..Default::default()
    };
    let mut c = session.compose(&req).map_err(console_error)?;
    session
        .record_compose(&mut c, None)
        .map_err(console_error)?;
    Ok((Box::new(c.bundle), Box::new(c.report)))
}

/// An error for the console: the message and what to do.
fn console_error(e: incident::IncidentError) -> String {
    match &e.recommendation {
        Some(r) => format!("{}: {r}", e.message),
        None => e.message,
    }
}

/// The console's signing effect (run on a worker thread): every check of `breakglass sign` (trust,
/// verification, not executed, the implementation code on chain, the signer) runs before the device is
/// asked, through the same incident session.
pub fn sign_job(
    env: &Env,
    b: &Bundle,
    account: &Account,
) -> Result<(Box<Bundle>, alloy::primitives::Address), String> {
    let session = env.session().on_chain_id(b.chain_id);
    let spec = env.signer.as_ref().ok_or("no signer configured")?;
    // Every check of `breakglass sign` (trust, verification, not executed, implementation code on chain)
    // runs before the device is touched.
    let ready = session.prepare_signing(b).map_err(console_error)?;
    let mut s = open_signer(spec, account.index)?;
    let addr = s.address().map_err(|e| e.to_string())?;
    if addr != account.address {
        return Err(format!(
            "the device answers {} for account {}, expected {}",
            addr.to_checksum(None),
            account.index,
            account.address.to_checksum(None)
        ));
    }
    let (out, addr) = session.sign(&ready, s.as_mut()).map_err(console_error)?;
    Ok((Box::new(out), addr))
}

fn save(env: &Env, b: &Bundle) -> Result<PathBuf, String> {
    let nonce = b
        .safe_tx
        .as_ref()
        .map(|s| s.tx.nonce)
        .or(b.eoa_tx.as_ref().map(|e| U256::from(e.nonce)))
        .unwrap_or_default();
    let p = env.out_dir.join(format!(
        "{}-nonce{nonce}.json",
        b.playbook.clone().unwrap_or_else(|| "bundle".into())
    ));
    b.write(&p, true).map_err(|e| e.to_string())?;
    Ok(p)
}

fn execute_job(
    env: &Env,
    b: &Bundle,
    tx: &Sender<Action>,
) -> Result<
    (
        Box<Bundle>,
        Vec<crate::chain::postcond::PostCondition>,
        String,
    ),
    String,
> {
    let session = env.session().on_chain_id(b.chain_id);
    if session.rpc_url.is_none() {
        return Err("offline".into());
    }
    let spec = env.signer.as_ref().ok_or("no signer for the executor")?;
    let mut s = open_signer(spec, 0)?;
    let mut say = |st: Progress| {
        let Progress::Line(l) = st;
        let _ = tx.send(Action::ExecLine(l));
    };
    // The console has no typed owner approval: an executor who is an owner signs like any owner.
    let prepared = session
        .prepare_execution(b, s.as_mut(), &mut say, &mut |_, _| false)
        .map_err(console_error)?;
    let _ = save(env, &prepared);
    let hash = prepared
        .signed_tx
        .as_ref()
        .map(|s| format!("{:#x}", s.hash))
        .unwrap_or_default();
    let _ = tx.send(Action::ExecLine(format!(
        "sent {hash}; waiting for the receipt"
    )));
    let landed = session
        .land(prepared, Duration::from_secs(120), |_, _| {})
        .map_err(console_error)?;
    let _ = save(env, &landed.bundle);
    let receipt = format!(
        "{} in block {} (gas {}, {:.2} s)",
        if landed.ok { "mined" } else { "REVERTED" },
        landed.block.unwrap_or_default(),
        landed.gas_used,
        landed.seconds
    );
    Ok((Box::new(landed.bundle), landed.posts, receipt))
}

/// Imports the signatures of every bundle file in the working directory that carries the same request
/// (other requests, unreadable or tampered files are skipped and named), re-verified like `combine`.
fn import_job(env: &Env, b: &Bundle) -> Result<(Box<Bundle>, usize, Vec<String>), String> {
    use crate::transfer::combine;
    let mut sigs = Vec::new();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let entries =
        std::fs::read_dir(&env.out_dir).map_err(|e| format!("{}: {e}", env.out_dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match Bundle::read(&p) {
            Ok(other) if combine::same_request(b, "current", &other, &name).is_ok() => {
                if other
                    .signatures
                    .iter()
                    .any(|s| !b.signatures.iter().any(|x| x.signer == s.signer))
                {
                    files.push(name);
                    sigs.extend(other.signatures);
                }
            }
            Ok(_) => {}
            Err(_) => skipped.push(name),
        }
    }
    let merged = combine::add_signatures(b, sigs).map_err(|e| e.to_string())?;
    env.session()
        .on_chain_id(merged.bundle.chain_id)
        .accept_signatures(&merged.bundle)
        .map_err(|e| e.to_string())?;
    if !skipped.is_empty() {
        files.push(format!("skipped unreadable: {}", skipped.join(", ")));
    }
    Ok((Box::new(merged.bundle), merged.added, files))
}

/// Terminal renderings of the bundle's UR parts (our `breakglass-bundle` type), enough fountain parts
/// for a scanner that misses some.
fn qr_frames(b: &Bundle, signatures_only: bool) -> Result<(Vec<String>, String), String> {
    use crate::transfer::{payload, qr, ur::UrStream};
    let (cbor, what) = if signatures_only {
        (
            payload::signatures_payload(b).map_err(|e| e.to_string())?,
            format!("{} signature(s)", b.signatures.len()),
        )
    } else {
        (
            payload::bundle_payload(b).map_err(|e| e.to_string())?,
            "the whole bundle (request and signatures)".to_string(),
        )
    };
    let mut stream = UrStream::new(
        payload::UR_TYPE,
        &cbor,
        crate::transfer::ur::MAX_FRAGMENT_LEN,
    )
    .map_err(|e| e.to_string())?;
    let n = if stream.is_single() {
        1
    } else {
        stream.fragment_count() * 2
    };
    let parts = stream.take(n).map_err(|e| e.to_string())?;
    let version = qr::common_version(&parts).map_err(|e| e.to_string())?;
    let mut frames = Vec::with_capacity(parts.len());
    for p in &parts {
        let code = qr::encode(p, version).map_err(|e| e.to_string())?;
        frames.push(qr::to_terminal(&code, false));
    }
    Ok((frames, what))
}

fn spawn(env: &Env, app: &App, e: Effect, tx: &Sender<Action>) {
    let env = env.clone();
    let tx = tx.clone();
    let first = app.device.accounts.first().map(|a| a.address);
    let chain_id = app.manifest.chain_id;
    std::thread::spawn(move || {
        let a = match e {
            Effect::Compose(pb) => Action::Composed(compose_job_on(&env, chain_id, &pb, first)),
            Effect::RefreshChains => Action::ChainStatus(chain_status(&env)),
            Effect::RefreshLadder => Action::LadderStatus(
                (0..env.ladders.len())
                    .map(|i| ladder_status(&env, i))
                    .collect(),
            ),
            Effect::FireLadder(i) => Action::LadderFired(fire_ladder(&env, i)),
            Effect::Sign(b, acct) => Action::Signed(sign_job(&env, &b, &acct)),
            Effect::Execute(b) => Action::Executed(execute_job(&env, &b, &tx)),
            Effect::Export(b) => Action::Exported(save(&env, &b)),
            Effect::Save(b) => {
                // Saved only once the state machine accepted the signature (not after a cancel).
                let _ = save(&env, &b);
                return;
            }
            Effect::Qr(b, sigs) => Action::QrReady(qr_frames(&b, sigs)),
            Effect::ImportSignatures(b) => Action::Imported(import_job(&env, &b)),
            Effect::Quit => return,
        };
        let _ = tx.send(a);
    });
}

/// Every chain's state from its own node, concurrently: the Safe's nonce, whether its owners are the
/// manifest's, and `paused()` of each contract that has it.
pub fn chain_status(env: &Env) -> Vec<(u64, Result<app::ChainLive, String>)> {
    let base = env.session();
    let sessions: Vec<Session> = base
        .manifest
        .all_chains()
        .iter()
        .map(|v| base.on_chain_id(v.chain_id))
        .collect();
    std::thread::scope(|s| {
        let hs: Vec<_> = sessions
            .iter()
            .map(|ss| (ss.manifest.chain_id, s.spawn(move || live_of(ss))))
            .collect();
        hs.into_iter()
            .map(|(id, h)| {
                (
                    id,
                    h.join().unwrap_or_else(|_| Err("worker panicked".into())),
                )
            })
            .collect()
    })
}

fn live_of(s: &Session) -> Result<app::ChainLive, String> {
    let chain = s
        .node()
        .map_err(console_error)?
        .ok_or("no node for this chain")?;
    let mut live = app::ChainLive {
        block: chain.latest().map_err(|e| e.to_string())?.0,
        ..Default::default()
    };
    if let Some(safe) = &s.manifest.safe {
        live.safe_nonce = chain.safe_nonce(safe.address).ok();
        live.owners_match = chain.safe_owners(safe.address).ok().map(|(mut o, t)| {
            let mut want = safe.owners.clone();
            o.sort();
            want.sort();
            o == want && t == safe.threshold
        });
    }
    let selector = alloy::primitives::keccak256("paused()")[..4].to_vec();
    for c in s.manifest.contracts.values() {
        if c.abi
            .functions()
            .any(|f| f.name == "paused" && f.inputs.is_empty())
        {
            if let Ok(r) = chain.call(c.address, selector.clone().into()) {
                if r.len() == 32 {
                    live.paused.push((c.id.clone(), r[31] == 1));
                }
            }
        }
    }
    Ok(live)
}

/// The ladder's state from the node (the console's dashboard line).
pub fn ladder_status(
    env: &Env,
    i: usize,
) -> Result<(String, usize, crate::ladder::LadderState), String> {
    let path = env.ladders.get(i).ok_or("no ladder")?;
    let l = crate::ladder::Ladder::read_with(path, &env.ladder_keys).map_err(|e| e.to_string())?;
    let st = env
        .session()
        .on_chain_id(l.chain_id)
        .ladder_status(&l)
        .map_err(console_error)?;
    Ok((l.playbook.clone(), l.rungs.len(), st))
}

/// Fires the ladder's live rung with the console's signer (account 0) as the executor: the same core
/// step as `breakglass ladder fire`.
pub fn fire_ladder(env: &Env, i: usize) -> Result<String, String> {
    let path = env.ladders.get(i).ok_or("no ladder")?;
    let t0 = std::time::Instant::now();
    let mut l =
        crate::ladder::Ladder::read_with(path, &env.ladder_keys).map_err(|e| e.to_string())?;
    let session = env.session().on_chain_id(l.chain_id);
    let spec = env
        .signer
        .as_ref()
        .ok_or("no signer: start with --speculos, --ledger or --keystore")?;
    let mut executor = open_signer(spec, 0)?;
    let mut persist = |l: &crate::ladder::Ladder| {
        l.write_with(path, true, &env.ladder_keys)
            .map_err(|e| crate::incident::IncidentError::failed("ladder_write", e.to_string()))
    };
    let (rung, landed) = session
        .fire_ladder(
            &mut l,
            executor.as_mut(),
            Duration::from_secs(120),
            &mut |_| {},
            &mut persist,
        )
        .map_err(console_error)?;
    let all = landed.ok && landed.posts.iter().all(|p| p.pass);
    Ok(format!(
        "ladder rung {} {} in block {}: {:.2} s from the key to mined; {}",
        rung + 1,
        if landed.ok { "mined" } else { "REVERTED" },
        landed.block.unwrap_or_default(),
        t0.elapsed().as_secs_f64(),
        if all {
            "every post-condition holds"
        } else {
            "a post-condition FAILED"
        }
    ))
}

/// Runs the console until the person quits. The terminal is restored on exit and on panic.
pub fn run(env: Env) -> std::io::Result<App> {
    let mut app = App::new(
        env.manifest.clone(),
        env.trust.clone(),
        env.rpc.clone(),
        env.drill,
    );
    app.set_chain_nodes(&env.rpc_urls);
    app.has_ladder = !env.ladders.is_empty();
    let (tx, rx) = channel::<Action>();
    if app.has_ladder {
        spawn(&env, &app, Effect::RefreshLadder, &tx);
    }
    if !app.chains.is_empty() {
        spawn(&env, &app, Effect::RefreshChains, &tx);
    }
    {
        let env = env.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Action::Device(device_status(&env)));
        });
    }
    // The chain watcher (issue 20): the same watcher as `breakglass watch`, on the console's node.
    let watch_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if env.rpc.is_some() && app.chains.is_empty() {
        let env = env.clone();
        let tx = tx.clone();
        let stop = watch_stop.clone();
        std::thread::spawn(move || {
            let session = env.session();
            let mut w = match session.watcher(&crate::watch::StartAt::default()) {
                Ok(w) => w,
                Err(e) => {
                    let _ = tx.send(Action::WatchStopped(e.message));
                    return;
                }
            };
            let _ = tx.send(Action::Watch(Box::new(w.start_event())));
            let mut sink = |e: crate::watch::WatchEvent| {
                let _ = session.record_watch_event(&e);
                let _ = tx.send(Action::Watch(Box::new(e)));
            };
            if let Err(e) = w.run(Duration::from_millis(500), None, stop, None, &mut sink) {
                let _ = tx.send(Action::WatchStopped(e.to_string()));
            }
        });
    }
    let start = Instant::now();
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        let mut dirty = true;
        let mut last_frame = Instant::now();
        loop {
            if dirty {
                terminal.draw(|f| ui::draw(f, &app))?;
                dirty = false;
            }
            let mut actions = Vec::new();
            if event::poll(Duration::from_millis(100))? {
                match event::read()? {
                    Event::Key(k) if k.kind == KeyEventKind::Press => actions.push(Action::Key(k)),
                    Event::Resize(..) => dirty = true,
                    _ => {}
                }
            }
            while let Ok(a) = rx.try_recv() {
                actions.push(a);
            }
            // The QR animates at 5 frames a second, only while it is on screen: idle otherwise.
            if app.screen == app::Screen::Transfer
                && !app.qr.is_empty()
                && last_frame.elapsed() >= Duration::from_millis(200)
            {
                last_frame = Instant::now();
                actions.push(Action::Tick(start.elapsed().as_secs_f64()));
            }
            if actions.is_empty() {
                continue;
            }
            app.now_tick(start.elapsed().as_secs_f64());
            for a in actions {
                for e in app::update(&mut app, a) {
                    spawn(&env, &app, e, &tx);
                }
            }
            dirty = true;
            if app.quit {
                return Ok(());
            }
        }
    })();
    watch_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ratatui::restore();
    result.map(|_| app)
}
