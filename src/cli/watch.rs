//! `breakglass watch`: follow the chain, check every block against the manifest's watch rules, alert, and
//! (with `--auto-fire LADDER`) fire the pre-signed pause. The watching itself is `crate::watch`.

use super::common::SignerArgs;
use super::ladder::LadderKeys;
use super::{CliError, Ctx, ExitCode};
use crate::watch::{Alert, AutoFire, Response, StartAt, WatchEvent};
use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `breakglass watch …`
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A cursor file: resume after the last block it records (neither missing nor repeating a block),
    /// and keep it up to date after every block.
    #[arg(long, value_name = "FILE")]
    pub cursor: Option<PathBuf>,
    /// The first block to check (default: the block after the node's head; ignored when the cursor file
    /// exists).
    #[arg(long, value_name = "N")]
    pub from_block: Option<u64>,
    /// Stop after checking this block.
    #[arg(long, value_name = "N")]
    pub until_block: Option<u64>,
    /// How often to ask the node for new blocks, in milliseconds (with --ws-url: the fallback when no
    /// notification comes).
    #[arg(long, value_name = "MS", default_value = "500")]
    pub poll_ms: u64,
    /// Also subscribe to new heads over this WebSocket (ws://, e.g. anvil's own port): each notification
    /// checks at once. Blocks are still read from the cursor over --rpc-url, so none is missed.
    #[arg(long, value_name = "URL")]
    pub ws_url: Option<String>,
    /// Run this shell command for every alert, with the alert as one JSON object on standard input
    /// (paging: your own script or webhook call). It runs beside the watcher, which does not wait for it.
    #[arg(long, value_name = "CMD")]
    pub on_alert: Option<String>,
    /// Fire this pre-signed ladder's live rung at once when a rule proposing its playbook matches. Needs an
    /// executor signer (--keystore, --speculos or --ledger). Nothing new is composed or signed.
    #[arg(long, value_name = "LADDER")]
    pub auto_fire: Option<PathBuf>,
    /// The executor for --auto-fire (any funded account).
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Keys of an encrypted ladder.
    #[command(flatten)]
    pub keys: LadderKeys,
    /// Seconds to wait for the fired rung's receipt.
    #[arg(long, value_name = "SECONDS", default_value = "60")]
    pub wait_timeout: u64,
}

fn emit_json(v: &serde_json::Value) {
    let text = serde_json::to_string(v).unwrap_or_default();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        crate::text::json_terminal_safe(&text)
    );
}

fn human(e: &WatchEvent) {
    match e {
        WatchEvent::Start {
            chain_id,
            rules,
            from_block,
        } => errln!(
            "watching chain {chain_id} from block {from_block}: {} rule(s): {}",
            rules.len(),
            rules.join(", ")
        ),
        WatchEvent::Block { .. } => {}
        WatchEvent::Alert(a) => alert_line(a),
        WatchEvent::Blind { from_block, reason } => {
            errln!("BLIND from block {from_block}: the node does not answer ({reason}); retrying")
        }
        WatchEvent::Resumed { from_block, head } => {
            errln!("the node answers again (head {head}): checking every block from {from_block}")
        }
        WatchEvent::Reorg { depth, from_block } => errln!(
            "REORG: {depth} checked block(s) were replaced; checking again from block {from_block}"
        ),
    }
}

fn alert_line(a: &Alert) {
    outln!(
        "ALERT [{}] {} at block {} ({}): {}{}",
        a.severity.as_str(),
        a.rule,
        a.block,
        a.tx.map_or("no transaction".to_string(), |t| format!("tx {t:#x}")),
        a.summary,
        a.playbook
            .as_ref()
            .map_or(String::new(), |p| format!(" — proposed playbook: {p}"))
    );
}

/// Runs the person's command with the alert on its standard input, beside the watcher.
fn hook(cmd: &str, a: &Alert) {
    let json = serde_json::to_string(a).unwrap_or_default();
    let cmd = cmd.to_string();
    let rule = a.rule.clone();
    std::thread::spawn(move || {
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::piped())
            .spawn();
        match child {
            Ok(mut c) => {
                if let Some(mut s) = c.stdin.take() {
                    let _ = s.write_all(json.as_bytes());
                    let _ = s.write_all(b"\n");
                }
                match c.wait() {
                    Ok(st) if st.success() => {}
                    Ok(st) => errln!("--on-alert for {rule} exited with {st}"),
                    Err(e) => errln!("--on-alert for {rule}: {e}"),
                }
            }
            Err(e) => errln!("--on-alert for {rule} could not start: {e}"),
        }
    });
}

/// Runs `watch`.
pub fn run_watch(ctx: &Ctx, a: WatchArgs) -> Result<(), CliError> {
    let session = ctx.session()?;
    let mut fire = match &a.auto_fire {
        Some(p) => {
            // Read it now: a ladder that cannot be read or is not this manifest's is a usage error at
            // start, not a surprise during an exploit.
            let keys = a.keys.protection()?;
            let l = crate::ladder::Ladder::read_with(p, &keys)
                .map_err(|e| CliError::new("ladder", e.to_string()).code(ExitCode::Refused))?;
            let st = session.ladder_status(&l)?;
            errln!(
                "auto-fire: ladder {} ({} rungs of {}) is {st:?}",
                p.display(),
                l.rungs.len(),
                l.playbook
            );
            if !crate::watch::rules(&session.manifest)
                .iter()
                .any(|r| r.playbook.as_deref() == Some(l.playbook.as_str()))
            {
                return Err(CliError::new(
                    "auto_fire",
                    format!(
                        "no watch rule proposes playbook {}, so --auto-fire would never fire it",
                        l.playbook
                    ),
                )
                .code(ExitCode::Usage)
                .hint(format!(
                    "add playbook = \"{}\" to the [[watch]] rule that should fire it",
                    l.playbook
                )));
            }
            Some(AutoFire {
                ladder: p.clone(),
                keys,
                executor: a.signer.open()?,
                wait: Duration::from_secs(a.wait_timeout),
            })
        }
        None => None,
    };
    let start = StartAt {
        cursor: a.cursor.clone(),
        from_block: a.from_block,
    };
    if let Some(u) = &a.ws_url {
        crate::watch::ws::check_url(u)
            .map_err(|e| CliError::new("ws_url", e).code(ExitCode::Usage))?;
    }
    let mut w = session.watcher(&start)?;
    let stop = Arc::new(AtomicBool::new(false));
    // New-head notifications wake the watcher; what the subscription says goes to standard error.
    let wake = a.ws_url.as_ref().map(|u| {
        let (notes_tx, notes_rx) = std::sync::mpsc::channel();
        let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
        let _ = crate::watch::ws::follow(u.clone(), stop.clone(), notes_tx);
        let url = u.clone();
        std::thread::spawn(move || {
            let mut lost = false;
            for n in notes_rx {
                match n {
                    crate::watch::ws::WsNote::Head(_) => {
                        if wake_tx.send(()).is_err() {
                            return;
                        }
                    }
                    crate::watch::ws::WsNote::Connected => {
                        errln!("subscribed to new heads at {url}");
                        lost = false;
                    }
                    crate::watch::ws::WsNote::Lost(e) if !lost => {
                        errln!(
                            "WebSocket {url}: {e}; polling every {} ms until it is back",
                            a.poll_ms
                        );
                        lost = true;
                    }
                    crate::watch::ws::WsNote::Lost(_) => {}
                }
            }
        });
        wake_rx
    });
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| CliError::new("signal", e.to_string()))?;
    }
    let json = ctx.json;
    let first = w.start_event();
    if json {
        emit_json(&serde_json::to_value(&first).unwrap_or_default());
    } else {
        human(&first);
    }
    let mut last_beat = Instant::now();
    let mut sink = |e: WatchEvent| {
        if json {
            emit_json(&serde_json::to_value(&e).unwrap_or_default());
        } else {
            human(&e);
            if let WatchEvent::Block { number, .. } = &e {
                if last_beat.elapsed() > Duration::from_secs(60) {
                    last_beat = Instant::now();
                    errln!("still watching: block {number} checked");
                }
            }
        }
        if let Err(err) = session.record_watch_event(&e) {
            errln!(
                "warning: the audit log did not take the {} entry: {err}",
                kind_of(&e)
            );
        }
        if let WatchEvent::Alert(alert) = &e {
            if let Some(f) = fire.as_mut() {
                if let Some(r) = session.respond(alert, f) {
                    if json {
                        emit_json(&serde_json::to_value(&r).unwrap_or_default());
                    } else {
                        match &r {
                            Response::Fired {
                                rung,
                                tx,
                                mined_block,
                                seconds,
                                ok,
                                ..
                            } => outln!(
                                "FIRED ladder rung {rung}: {tx:#x} {} in block {} ({seconds:.2} s after the alert){}",
                                if *ok { "mined" } else { "REVERTED" },
                                mined_block.unwrap_or_default(),
                                if *ok { "" } else { "; a post-condition FAILED" }
                            ),
                            Response::FireRefused { reason, .. } => {
                                outln!("ladder NOT fired: {reason}")
                            }
                        }
                    }
                }
            }
            if let Some(cmd) = &a.on_alert {
                hook(cmd, alert);
            }
        }
    };
    w.run(
        Duration::from_millis(a.poll_ms.max(10)),
        a.until_block,
        stop,
        wake.as_ref(),
        &mut sink,
    )
    .map_err(|e| CliError::new("watch", e.to_string()))?;
    Ok(())
}

fn kind_of(e: &WatchEvent) -> &'static str {
    match e {
        WatchEvent::Start { .. } => "start",
        WatchEvent::Block { .. } => "block",
        WatchEvent::Alert(_) => "alert",
        WatchEvent::Blind { .. } => "blind",
        WatchEvent::Resumed { .. } => "resumed",
        WatchEvent::Reorg { .. } => "reorg",
    }
}
