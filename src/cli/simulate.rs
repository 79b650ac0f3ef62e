//! `breakglass simulate`: what a bundle's transaction will do to live state (against the node at a
//! pinned block), or, on an offline machine, against a snapshot proven against a block header.

use super::common::bundle_error;
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::Bundle;
use crate::transfer::ur::MAX_FRAGMENT_LEN;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

/// `breakglass simulate …`
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The bundle (any step: request, signed, executed).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Simulate on the state after this block (default: the node's latest, pinned now).
    #[arg(long, value_name = "N", conflicts_with = "snapshot")]
    pub block: Option<u64>,
    /// Offline: simulate against this snapshot (no node; every value is checked against the block
    /// header the snapshot names).
    #[arg(long, value_name = "SNAP")]
    pub snapshot: Option<PathBuf>,
    /// Online: also write a snapshot of everything the run read, with proofs, for an offline machine.
    #[arg(long, value_name = "SNAP", conflicts_with = "snapshot")]
    pub snapshot_out: Option<PathBuf>,
    /// Replace an existing snapshot file.
    #[arg(long)]
    pub force: bool,
}

/// Runs `simulate`. Exit 0 when the transaction succeeds with every post-condition and nothing
/// critical, 3 when it reverts, fails a post-condition or changes state it should not.
pub fn run_simulate(ctx: &Ctx, a: SimulateArgs) -> Result<(), CliError> {
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let mut session = ctx.session()?.on_chain_id(b.chain_id);
    session.simulate.block = a.block;
    session.simulate.snapshot = a.snapshot.clone();
    if a.snapshot.is_none() && session.rpc_url.is_none() {
        return Err(CliError::new(
            "usage",
            "simulate needs a node (--rpc-url URL, or ETH_RPC_URL) or a snapshot (--snapshot SNAP)",
        )
        .code(ExitCode::Usage));
    }
    if let Some(out) = &a.snapshot_out {
        if out.exists() && !a.force {
            return Err(CliError::new(
                "exists",
                format!("{} exists; pass --force to replace it", out.display()),
            )
            .code(ExitCode::Usage));
        }
    }
    let (run, snap) = match &a.snapshot_out {
        Some(_) => {
            let (run, bytes) = session.simulate_with_snapshot(&b)?;
            (run, Some(bytes))
        }
        None => (
            session
                .simulate(&b)?
                .ok_or_else(|| CliError::new("internal", "the simulation did not run"))?,
            None,
        ),
    };
    let sim = run.simulation;
    let mut snap_info = serde_json::Value::Null;
    if let (Some(out), Some(bytes)) = (&a.snapshot_out, &snap) {
        crate::fsutil::atomic_write(out, bytes, a.force).map_err(|e| {
            CliError::new(
                "write",
                format!("cannot write the snapshot {}: {e}", out.display()),
            )
        })?;
        // The QR route: the file as a CBOR byte string in UR fragments.
        let frames = bytes.len().div_ceil(MAX_FRAGMENT_LEN);
        snap_info = json!({
            "path": out.display().to_string(),
            "bytes": bytes.len(),
            "accounts": run.touched.len(),
            "slots": run.touched.values().map(|s| s.len()).sum::<usize>(),
            "qr_frames": frames,
        });
    }
    session.record(
        "simulate",
        json!({
            "bundle": a.bundle.display().to_string(),
            "simulation": session.simulation_note(Some(&sim)),
            "snapshot_out": snap_info.get("path"),
        }),
        None,
    )?;
    let allowed = sim.allowed();
    if ctx.json {
        print_json(json!({
            "allowed": allowed,
            "verdict": sim.verdict(),
            "simulation": sim,
            "snapshot": snap_info,
        }));
    } else {
        for l in sim.lines() {
            outln!("{l}");
        }
        if !snap_info.is_null() {
            outln!(
                "wrote snapshot {}: {} bytes, {} accounts, {} slots with proofs ({} QR frames: move it as a file unless that is few)",
                snap_info["path"].as_str().unwrap_or_default(),
                snap_info["bytes"],
                snap_info["accounts"],
                snap_info["slots"],
                snap_info["qr_frames"]
            );
        }
        outln!(
            "Compare block {} {:#x} with a block explorer or a second node before relying on it.",
            sim.block.number,
            sim.block.hash
        );
    }
    if allowed {
        Ok(())
    } else {
        let mut e = CliError::new(
            "simulation",
            format!("the simulation refuses this transaction: {}", sim.verdict()),
        )
        .code(ExitCode::Refused)
        .hint("stop and investigate: do not sign it");
        if ctx.json {
            e = e.quiet_in_json();
        }
        Err(e)
    }
}
