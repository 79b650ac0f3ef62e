//! `breakglass execute B1 B2 …`: one incident on several chains. Each bundle is prepared (checked on its
//! chain and signed by the executor) in turn, then every chain's transaction is sent and awaited
//! concurrently, each with its own receipt and post-conditions. A chain that fails does not stop the
//! others (unless `--phased`); each bundle file records how far it got, so running the same command again
//! finishes only what is not done and never signs or sends a second execution.

use super::common::bundle_error;
use super::execute::{confirm_executor_approval, ExecuteArgs};
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::Bundle;
use crate::incident::{IncidentError, Landed, Progress, Session};
use alloy::primitives::Address;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How one chain ended.
#[derive(Debug)]
enum Outcome {
    /// Executed now (or earlier), mined, every post-condition held.
    Done { landed: Option<Box<Landed>> },
    /// Mined but reverted, or a post-condition failed.
    Failed {
        why: String,
        landed: Option<Box<Landed>>,
    },
    /// Could not be prepared or sent.
    Error(CliError),
}

struct Chain {
    path: PathBuf,
    out: PathBuf,
    session: Session,
    bundle: Bundle,
    outcome: Option<Outcome>,
}

impl Chain {
    fn label(&self) -> String {
        self.session.manifest.chain_label()
    }
}

fn out_path(a: &ExecuteArgs, path: &std::path::Path, session: &Session) -> PathBuf {
    match &a.out {
        None => path.to_path_buf(),
        Some(o) if o.display().to_string().contains("{chain}") || a.bundles.len() > 1 => {
            super::compose::chain_path(
                o,
                &session
                    .manifest
                    .chain_name
                    .clone()
                    .unwrap_or_else(|| session.manifest.chain_id.to_string()),
            )
        }
        Some(o) => o.clone(),
    }
}

/// A bundle that already holds a receipt: done, or failed for good (its nonce is not spent, but the
/// signed execution was; compose again).
fn finished(b: &Bundle) -> Option<Outcome> {
    let r = b.receipt.as_ref()?;
    let posts_ok = b
        .postconditions
        .as_ref()
        .is_some_and(|p| p.iter().all(|p| p.pass));
    Some(if r.status == 1 && posts_ok {
        Outcome::Done { landed: None }
    } else if r.status == 1 {
        Outcome::Failed {
            why: "mined earlier, but a post-condition did not hold".into(),
            landed: None,
        }
    } else {
        Outcome::Failed {
            why: format!("transaction {:#x} reverted earlier", r.tx_hash),
            landed: None,
        }
    })
}

fn land_one(c: &Chain, wait: u64) -> Outcome {
    match c
        .session
        .land(c.bundle.clone(), Duration::from_secs(wait), |_, _| {})
    {
        Ok(l) => {
            if let Err(e) = c.bundle_write(&l.bundle) {
                return Outcome::Error(e);
            }
            let all = l.ok && l.posts.iter().all(|p| p.pass);
            if all {
                Outcome::Done {
                    landed: Some(Box::new(l)),
                }
            } else {
                Outcome::Failed {
                    why: if l.ok {
                        "a post-condition did not hold".into()
                    } else {
                        format!("transaction {:#x} reverted on chain", l.hash)
                    },
                    landed: Some(Box::new(l)),
                }
            }
        }
        Err(e) => Outcome::Error(e.into()),
    }
}

impl Chain {
    fn bundle_write(&self, b: &Bundle) -> Result<(), CliError> {
        b.write(&self.out, true).map_err(bundle_error)
    }
}

/// Runs `execute` over several bundles (or one with `--in-place` / `--phased`).
pub fn run(ctx: &Ctx, a: &ExecuteArgs) -> Result<(), CliError> {
    if let (true, Some(o)) = (a.bundles.len() > 1, &a.out) {
        if !o.display().to_string().contains("{chain}") {
            return Err(CliError::new(
                "usage",
                "several bundles need --in-place, or -o with {chain} in the name (e.g. -o executed-{chain}.json)",
            )
            .code(ExitCode::Usage));
        }
    }
    let base = ctx.session()?;
    base.require_trusted("execute")?;
    let mut chains = Vec::with_capacity(a.bundles.len());
    for path in &a.bundles {
        let b = Bundle::read(path).map_err(bundle_error)?;
        let session = base.on_chain_id(b.chain_id);
        if let Some(other) = chains
            .iter()
            .find(|c: &&Chain| c.bundle.chain_id == b.chain_id)
        {
            return Err(CliError::new(
                "usage",
                format!(
                    "{} and {} are both for {}: give one bundle per chain",
                    other.path.display(),
                    path.display(),
                    session.manifest.chain_label()
                ),
            )
            .code(ExitCode::Usage));
        }
        let out = out_path(a, path, &session);
        if out != *path && !a.force && out.exists() {
            return Err(CliError::new(
                "exists",
                format!("{} exists; pass --force to replace it", out.display()),
            )
            .code(ExitCode::Usage));
        }
        chains.push(Chain {
            path: path.clone(),
            out,
            session,
            outcome: finished(&b),
            bundle: b,
        });
    }
    let mut signer = a.signer.open()?;
    let t0 = Instant::now();
    if a.phased {
        for i in 0..chains.len() {
            if chains[i].outcome.is_none() {
                prepare(ctx, a, &mut chains[i], signer.as_mut());
            }
            if chains[i].outcome.is_none() {
                say(ctx, &format!("{}: sending and waiting…", chains[i].label()));
                let o = land_one(&chains[i], a.wait_timeout);
                chains[i].outcome = Some(o);
            }
            report_line(ctx, &chains[i]);
            if !matches!(chains[i].outcome, Some(Outcome::Done { .. })) {
                for c in chains.iter_mut().skip(i + 1) {
                    c.outcome.get_or_insert(Outcome::Failed {
                        why: "not started: an earlier chain of the phased rollout failed".into(),
                        landed: None,
                    });
                    report_line(ctx, c);
                }
                break;
            }
        }
    } else {
        for c in chains.iter_mut() {
            if c.outcome.is_none() {
                prepare(ctx, a, c, signer.as_mut());
            }
        }
        let waiting: Vec<String> = chains
            .iter()
            .filter(|c| c.outcome.is_none())
            .map(|c| c.label())
            .collect();
        if !waiting.is_empty() {
            say(
                ctx,
                &format!("sending and waiting on {}…", waiting.join(", ")),
            );
        }
        let wait = a.wait_timeout;
        let results: Vec<(usize, Outcome)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chains
                .iter()
                .enumerate()
                .filter(|(_, c)| c.outcome.is_none())
                .map(|(i, c)| (i, scope.spawn(move || land_one(c, wait))))
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| {
                    (
                        i,
                        h.join().unwrap_or_else(|_| {
                            Outcome::Error(CliError::new("internal", "the chain's worker panicked"))
                        }),
                    )
                })
                .collect()
        });
        for (i, o) in results {
            chains[i].outcome = Some(o);
        }
        for c in &chains {
            report_line(ctx, c);
        }
    }
    summarize(ctx, &chains, t0.elapsed())
}

fn say(ctx: &Ctx, line: &str) {
    if !ctx.json {
        outln!("{line}");
    }
}

/// Checks the bundle on its chain and signs the execution with the executor; the signed transaction is
/// written to the bundle's file before anything is sent. On failure the chain's outcome is set.
fn prepare(ctx: &Ctx, a: &ExecuteArgs, c: &mut Chain, signer: &mut dyn crate::signer::Signer) {
    if c.bundle.signed_tx.is_some() {
        say(
            ctx,
            &format!(
                "{}: the execution was signed earlier; sending it (never a second one)",
                c.label()
            ),
        );
        return;
    }
    let json_mode = ctx.json;
    let label = c.label();
    let mut progress = |st: Progress| match st {
        Progress::Line(l) if !json_mode => outln!("{label}: {l}"),
        Progress::Line(_) => {}
    };
    let approve = a.approve_as_owner;
    let trust_state = c.session.trust.clone();
    let mut confirm = |executor: Address, r: &crate::policy::Report| {
        approve && confirm_executor_approval(ctx, executor, r, &trust_state)
    };
    let prepared = c
        .session
        .prepare_execution(&c.bundle, signer, &mut progress, &mut confirm);
    match prepared {
        Ok(b) => match b.write(&c.out, true) {
            Ok(()) => c.bundle = b,
            Err(e) => c.outcome = Some(Outcome::Error(bundle_error(e))),
        },
        Err(e) => c.outcome = Some(Outcome::Error(chain_error(e))),
    }
}

fn chain_error(e: IncidentError) -> CliError {
    e.into()
}

fn report_line(ctx: &Ctx, c: &Chain) {
    if ctx.json {
        return;
    }
    let label = c.label();
    match &c.outcome {
        Some(Outcome::Done { landed: Some(l) }) => {
            outln!(
                "{label}: DONE: mined in block {} (gas {}) after {:.2} s",
                l.block.unwrap_or_default(),
                l.gas_used,
                l.seconds
            );
            for p in &l.posts {
                outln!("    PASS {}  (now {})", p.expect, p.actual);
            }
        }
        Some(Outcome::Done { landed: None }) => {
            outln!("{label}: DONE earlier (the bundle holds its receipt; nothing sent)")
        }
        Some(Outcome::Failed { why, landed }) => {
            outln!("{label}: FAILED: {why}");
            for p in landed.iter().flat_map(|l| l.posts.iter()) {
                outln!(
                    "    {} {}  (now {})",
                    if p.pass { "PASS" } else { "FAIL" },
                    p.expect,
                    p.actual
                );
            }
        }
        Some(Outcome::Error(e)) => {
            outln!("{label}: FAILED: {}", e.message);
            if let Some(h) = &e.hint {
                outln!("    next: {h}");
            }
        }
        None => outln!("{label}: not run"),
    }
}

fn summarize(ctx: &Ctx, chains: &[Chain], elapsed: Duration) -> Result<(), CliError> {
    let mut rows: Vec<Value> = Vec::new();
    let mut failed = Vec::new();
    let mut first_error: Option<&CliError> = None;
    for c in chains {
        let mut row = json!({
            "chain": c.session.manifest.chain_name,
            "chain_id": c.session.manifest.chain_id,
            "bundle": c.out.display().to_string(),
        });
        match &c.outcome {
            Some(Outcome::Done { landed }) => {
                row["status"] = json!("done");
                if let Some(l) = landed {
                    row["tx_hash"] = json!(format!("{:#x}", l.hash));
                    row["block_number"] = json!(l.block);
                    row["postconditions"] = json!(l.posts);
                } else {
                    row["earlier"] = json!(true);
                }
            }
            Some(Outcome::Failed { why, landed }) => {
                failed.push(c.label());
                row["status"] = json!("failed");
                row["reason"] = json!(why);
                if let Some(l) = landed {
                    row["tx_hash"] = json!(format!("{:#x}", l.hash));
                    row["postconditions"] = json!(l.posts);
                }
            }
            Some(Outcome::Error(e)) => {
                failed.push(c.label());
                first_error.get_or_insert(e);
                row["status"] = json!("failed");
                row["error"] = json!(e.kind);
                row["reason"] = json!(e.message);
            }
            None => {
                failed.push(c.label());
                row["status"] = json!("not_run");
            }
        }
        rows.push(row);
    }
    let all = failed.is_empty();
    if ctx.json {
        print_json(json!({
            "ok": all,
            "chains": rows,
            "all_passed": all,
            "seconds": elapsed.as_secs_f64(),
        }));
    } else {
        outln!(
            "\n{} of {} chains done in {:.2} s{}",
            chains.len() - failed.len(),
            chains.len(),
            elapsed.as_secs_f64(),
            if all {
                String::new()
            } else {
                format!("; not done: {}", failed.join(", "))
            }
        );
    }
    if all {
        return Ok(());
    }
    let code = first_error.map(|e| e.code).unwrap_or(ExitCode::Error);
    let e = CliError::new(
        "chains_failed",
        format!(
            "not done on {}: run the same command again to finish them (chains that are done are skipped; nothing is signed or sent twice)",
            failed.join(", ")
        ),
    )
    .code(code);
    Err(if ctx.json { e.quiet_in_json() } else { e })
}
