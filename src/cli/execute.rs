//! `breakglass execute`, `breakglass broadcast`, `breakglass timelock status`: the last mile, on a node.

use super::common::bundle_error;
use super::common::SignerArgs;
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::{Bundle, TimelockStep};
use crate::incident::{self, Landed, Progress, Session};
use crate::manifest::trust;
use alloy::primitives::Address;
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `breakglass execute …`
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// A bundle holding at least threshold owner signatures. Several (one per chain of a multi-chain
    /// incident) are executed concurrently, each reported on its own; re-running finishes only what is
    /// not done.
    #[arg(value_name = "BUNDLE", required = true, num_args = 1..)]
    pub bundles: Vec<PathBuf>,
    /// The executor account's signer (pays the gas; any account can execute a fully signed Safe tx).
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Where to write the bundle with the signed execution tx, receipt and post-conditions. With several
    /// bundles, `{chain}` in the name is replaced by each chain's name (or use --in-place).
    #[arg(
        short = 'o',
        long = "out",
        value_name = "BUNDLE",
        required_unless_present = "in_place"
    )]
    pub out: Option<PathBuf>,
    /// Record the execution in each bundle's own file.
    #[arg(long, conflicts_with = "out")]
    pub in_place: bool,
    /// Chain after chain, in the order given: stop at the first chain whose transaction fails or whose
    /// post-conditions do not hold (a phased rollout of a patch). Without it, chains run concurrently.
    #[arg(long)]
    pub phased: bool,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the receipt.
    #[arg(long, value_name = "SECONDS", default_value = "120")]
    pub wait_timeout: u64,
    /// The executor is an owner and approves the Safe transaction now (Safe counts `v = 1` from the
    /// sender): the review is shown and you type the start of the safeTxHash, as you would check it on a
    /// signer. Without this, an approved-hash entry counts only when approveHash is on chain.
    #[arg(long)]
    pub approve_as_owner: bool,
}

/// `breakglass broadcast …`
#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// A bundle holding a signed transaction.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Where to write the bundle with the receipt and post-conditions (default: update BUNDLE in place).
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: Option<PathBuf>,
    /// Seconds to wait for the receipt.
    #[arg(long, value_name = "SECONDS", default_value = "120")]
    pub wait_timeout: u64,
}

/// `breakglass timelock …`
#[derive(Debug, Subcommand)]
pub enum TimelockCmd {
    /// Whether the bundle's timelock operation is unscheduled, pending (and when it is ready), ready, or done.
    Status {
        /// A bundle that schedules or executes a timelock operation.
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
    },
}

fn write_bundle(b: &Bundle, out: &Path, overwrite: bool) -> Result<(), CliError> {
    b.write(out, overwrite).map_err(bundle_error)
}

fn progress_line(json: bool) -> impl FnMut(Duration, Option<u64>) {
    let mut last = Instant::now();
    move |elapsed, block| {
        if json || last.elapsed() < Duration::from_millis(500) {
            return;
        }
        last = Instant::now();
        let b = block
            .map(|b| format!("block {b}"))
            .unwrap_or_else(|| "node unreachable, retrying".into());
        // Our own text only (the carriage return redraws this progress line).
        eprint!(
            "\r  waiting for the receipt: {:.1} s, {b}   ",
            elapsed.as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
}

/// Sends (idempotently), waits, records the receipt and post-conditions. Returns whether all passed.
fn send_and_finish(
    ctx: &Ctx,
    session: &Session,
    b: Bundle,
    out: &Path,
    wait: u64,
) -> Result<bool, CliError> {
    if !ctx.json {
        if let Some(st) = &b.signed_tx {
            outln!("sending {:#x}", st.hash);
        }
    }
    let Landed {
        bundle: b,
        hash,
        ok,
        block,
        gas_used,
        seconds,
        posts,
    } = session.land(b, Duration::from_secs(wait), progress_line(ctx.json))?;
    if !ctx.json {
        errln!();
    }
    write_bundle(&b, out, true)?;
    let all = ok && posts.iter().all(|p| p.pass);
    if ctx.json {
        print_json(json!({
            "tx_hash": format!("{hash:#x}"),
            "status": ok,
            "block_number": block,
            "gas_used": gas_used,
            "postconditions": posts,
            "all_passed": all,
            "out": out.display().to_string(),
        }));
    } else {
        outln!(
            "{} in block {} (gas {}) after {:.2} s",
            if ok { "mined" } else { "REVERTED" },
            block.unwrap_or_default(),
            gas_used,
            seconds
        );
        for p in &posts {
            outln!(
                "  {} {}  (now {})",
                if p.pass { "PASS" } else { "FAIL" },
                p.expect,
                p.actual
            );
        }
        outln!("wrote {}", out.display());
    }
    if !ok {
        return Err(CliError::new(
            "reverted",
            format!("transaction {hash:#x} reverted on chain"),
        )
        .hint("see the simulation with `breakglass execute` again, or inspect the Safe's state"));
    }
    Ok(all)
}

/// The executing owner approves the Safe transaction as a signer would: the whole review is shown, then
/// the owner types the first 8 hex digits of the safeTxHash. Anything else approves nothing.
pub(crate) fn confirm_executor_approval(
    ctx: &Ctx,
    executor: Address,
    r: &crate::policy::Report,
    trust_state: &trust::Trust,
) -> bool {
    let Some(h) = r.safe_hashes() else {
        return false;
    };
    if !r.allowed {
        return false;
    }
    if ctx.json {
        // The review goes to stderr so that stdout stays one JSON document.
        errln!("{}", crate::policy::render_text(r));
    } else {
        super::common::print_report(ctx, r, trust_state);
    }
    let want = alloy::hex::encode(h.safe_tx_hash)
        .chars()
        .take(8)
        .collect::<String>();
    err!(
        "\nApprove this Safe transaction as owner {} (the executor)? This counts as your signature.\nType the first 8 hex digits of the safeTxHash (after 0x) to approve: ",
        executor.to_checksum(None)
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    let ok = line
        .trim()
        .trim_start_matches("0x")
        .eq_ignore_ascii_case(&want);
    if !ok {
        errln!("not approved: that is not the safeTxHash's beginning");
    }
    ok
}

/// Runs `execute`.
pub fn run_execute(ctx: &Ctx, a: ExecuteArgs) -> Result<(), CliError> {
    if !a.signer.chosen() {
        return Err(CliError::new(
            "usage",
            "choose the executor's signer: --ledger, --speculos HOST:PORT or --keystore FILE",
        )
        .code(ExitCode::Usage));
    }
    if a.bundles.len() > 1 || a.in_place || a.phased {
        return super::execute_chains::run(ctx, &a);
    }
    let Some(out_path) = a.out.clone() else {
        return Err(CliError::new("usage", "pass -o BUNDLE or --in-place").code(ExitCode::Usage));
    };
    if !a.force && out_path.exists() {
        return Err(CliError::new(
            "exists",
            format!("{} exists; pass --force to replace it", out_path.display()),
        )
        .code(ExitCode::Usage));
    }
    let session = ctx.session()?;
    session.require_trusted("execute")?;
    let b = Bundle::read(&a.bundles[0]).map_err(bundle_error)?;
    let session = session.on_chain_id(b.chain_id);
    session.require_node("execute")?;
    let mut signer_box = a.signer.open()?;
    let json_mode = ctx.json;
    let mut say = |st: Progress| match st {
        Progress::Line(l) if !json_mode => outln!("{l}"),
        Progress::Line(_) => {}
    };
    let approve = a.approve_as_owner;
    let trust_state = session.trust.clone();
    let mut confirm = |executor: Address, r: &crate::policy::Report| {
        approve && confirm_executor_approval(ctx, executor, r, &trust_state)
    };
    let out = match session.prepare_execution(&b, signer_box.as_mut(), &mut say, &mut confirm) {
        Ok(out) => out,
        Err(e) => {
            if let Some(r) = &e.report {
                super::common::print_report(ctx, r, &session.trust);
            }
            return Err(e.into());
        }
    };
    // Nothing lost on a crash: the signed transaction is on disk before it is sent.
    write_bundle(&out, &out_path, a.force)?;
    let all = send_and_finish(ctx, &session, out, &out_path, a.wait_timeout)?;
    if all {
        Ok(())
    } else {
        Err(CliError::new(
            "postcondition_failed",
            "a post-condition failed: the chain is not in the state the playbook promised",
        )
        .quiet_in_json())
    }
}

/// Runs `broadcast`.
pub fn run_broadcast(ctx: &Ctx, a: BroadcastArgs) -> Result<(), CliError> {
    let session = ctx.session()?;
    session.require_trusted("broadcast").map_err(|e| {
        CliError::from(e)
            .hint("pin the manifest here too (`breakglass manifest pin`, or --pin 0x<hash>)")
    })?;
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let session = session.on_chain_id(b.chain_id);
    let v = session.verify(&b)?;
    if !v.report().allowed {
        super::common::print_report(ctx, v.report(), &session.trust);
        return Err(CliError::new(
            "refused",
            "verification refused this bundle: it is never broadcast",
        )
        .code(ExitCode::Refused));
    }
    incident::check_signed_tx(&b)?;
    session.require_node("broadcast")?;
    let out = a.out.clone().unwrap_or_else(|| a.bundle.clone());
    let all = send_and_finish(ctx, &session, b, &out, a.wait_timeout)?;
    if all {
        Ok(())
    } else {
        Err(CliError::new(
            "postcondition_failed",
            "a post-condition failed: the chain is not in the state the playbook promised",
        )
        .quiet_in_json())
    }
}

/// Runs `timelock status`.
pub fn run_timelock(ctx: &Ctx, cmd: TimelockCmd) -> Result<(), CliError> {
    let TimelockCmd::Status { bundle: path } = cmd;
    let session = ctx.session()?;
    let b = Bundle::read(&path).map_err(bundle_error)?;
    let session = session.on_chain_id(b.chain_id);
    let t = b.timelock.clone().ok_or_else(|| {
        CliError::new("usage", "the bundle holds no timelock operation").code(ExitCode::Usage)
    })?;
    let chain = session.require_node("timelock status")?;
    let ts = chain
        .timelock_timestamp(t.address, t.operation_id)
        .map_err(incident::IncidentError::from)?;
    let (_, now) = chain.latest().map_err(incident::IncidentError::from)?;
    let (state, ready_at) = if ts.is_zero() {
        ("unscheduled", None)
    } else if ts == alloy::primitives::U256::from(1) {
        ("done", None)
    } else {
        let at = ts.saturating_to::<u64>();
        (if at <= now { "ready" } else { "pending" }, Some(at))
    };
    if ctx.json {
        print_json(
            json!({ "operation_id": format!("{:#x}", t.operation_id), "state": state, "ready_at": ready_at, "chain_time": now, "step": t.step }),
        );
    } else {
        out!("timelock operation {:#x}: {state}", t.operation_id);
        if let Some(at) = ready_at {
            if at > now {
                out!(" — ready at unix {at} (in {} s)", at - now);
            } else {
                if t.step == TimelockStep::Schedule {
                    out!(" since unix {at}: compose the execute with `breakglass compose --execute-scheduled {}`", path.display());
                } else {
                    out!(" since unix {at}: this bundle executes it — sign it and run `breakglass execute {}`", path.display());
                }
            }
        }
        outln!();
        if t.step == TimelockStep::Execute && state != "done" {
            outln!("  (this bundle executes the operation)");
        }
    }
    Ok(())
}
