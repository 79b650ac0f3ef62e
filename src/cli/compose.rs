//! `breakglass compose` and `breakglass inspect`.

use super::common::bundle_error;
use super::common::{parse_addr, parse_b256, parse_u256, print_report};
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::Bundle;
use crate::compose;
use crate::incident::{ComposeRequest, Session};
use alloy::primitives::U256;
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `breakglass compose …`
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The playbook to compose (see `breakglass manifest check`).
    #[arg(value_name = "PLAYBOOK", required_unless_present = "execute_scheduled")]
    pub playbook: Option<String>,
    /// Safe nonce (Safe and timelock playbooks) or the guardian account's nonce (EOA playbooks); read from the
    /// chain with --rpc-url.
    #[arg(long, value_name = "N")]
    pub nonce: Option<String>,
    /// Argument value for an action whose constraint allows more than one: `ACTION.ARG=VALUE` (repeatable).
    #[arg(long = "arg", value_name = "ACTION.ARG=VALUE")]
    pub args: Vec<String>,
    /// Guardian-EOA sender (EOA playbooks).
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Gas limit (EOA playbooks).
    #[arg(long, value_name = "GAS")]
    pub gas_limit: Option<u64>,
    /// maxFeePerGas in wei (EOA playbooks).
    #[arg(long, value_name = "WEI")]
    pub max_fee: Option<u128>,
    /// maxPriorityFeePerGas in wei (EOA playbooks).
    #[arg(long, value_name = "WEI")]
    pub priority_fee: Option<u128>,
    /// Accepted for DESIGN.md's CLI contract; the playbook's `via` decides the kind.
    #[arg(long, hide = true)]
    pub eoa: bool,
    /// Timelock delay in seconds (default: the manifest's min_delay; never less).
    #[arg(long, value_name = "SECONDS")]
    pub delay: Option<u64>,
    /// Timelock salt (default: derived from the manifest hash, playbook and nonce).
    #[arg(long, value_name = "HEX32")]
    pub salt: Option<String>,
    /// Timelock predecessor operation id (default: none).
    #[arg(long, value_name = "HEX32")]
    pub predecessor: Option<String>,
    /// Build the `execute` of the timelock operation a bundle scheduled.
    #[arg(long, value_name = "BUNDLE", conflicts_with = "playbook")]
    pub execute_scheduled: Option<PathBuf>,
    /// Chains of a multi-chain manifest to compose for (names or chain ids, comma-separated, or `all`;
    /// default: every chain that has the playbook). One bundle per chain.
    #[arg(long, value_name = "CHAIN,…", value_delimiter = ',')]
    pub chains: Vec<String>,
    /// Where to write the bundle. With several chains, `{chain}` in the name is replaced by each chain's
    /// name (without it, `-CHAIN` goes before the extension).
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Do not simulate the transaction on the node before writing it (recorded in the audit log).
    #[arg(long)]
    pub no_simulate: bool,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// `breakglass inspect BUNDLE`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// For an encrypted ladder: its age identity file or passphrase file.
    #[command(flatten)]
    pub ladder_keys: super::ladder::LadderKeys,
}

fn write_and_report(
    ctx: &Ctx,
    session: &Session,
    mut c: compose::Composed,
    out: &std::path::Path,
    force: bool,
) -> Result<(), CliError> {
    let trust_state = &session.trust;
    if !force && out.exists() {
        return Err(bundle_error(crate::bundle::BundleError::Write {
            path: out.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; pass --force to replace it",
            ),
        }));
    }
    session.record_compose(&mut c, Some(&out.display().to_string()))?;
    c.bundle.write(out, force).map_err(bundle_error)?;
    if ctx.json {
        let mut v = serde_json::to_value(&c.report).unwrap_or_default();
        v["bundle"] = json!(out.display().to_string());
        v["trust"] = serde_json::to_value(trust_state).unwrap_or_default();
        v["simulation"] = serde_json::to_value(&c.bundle.simulation).unwrap_or_default();
        print_json(v);
    } else {
        out!("{}", crate::policy::render_text(&c.report));
        print_simulation(session, c.bundle.simulation.as_deref());
        if let Some(t) = &c.bundle.timelock {
            outln!(
                "\nTimelock operation {:#x}: executable {} s after the schedule is mined (predecessor {:#x}, salt {:#x})",
                t.operation_id, t.delay, t.predecessor, t.salt
            );
        }
        if let Some(e) = &c.bundle.eoa_tx {
            outln!(
                "\nEIP-1559 tx from {} nonce {} gas {} max fee {} wei, tip {} wei; signing hash {:#x}",
                e.from.to_checksum(None),
                e.nonce,
                e.gas_limit,
                e.max_fee_per_gas,
                e.max_priority_fee_per_gas,
                e.signing_hash
            );
        }
        outln!("\nwrote {}", out.display());
        if !trust_state.is_trusted() {
            outln!(
                "NOTE: the manifest is {}: signers will refuse this bundle until it is trusted",
                super::common::trust_text(trust_state)
            );
        }
    }
    Ok(())
}

/// Runs `compose`.
pub fn run_compose(ctx: &Ctx, a: ComposeArgs) -> Result<(), CliError> {
    let mut session = ctx.session()?;
    session.simulate.skip = a.no_simulate;
    let nonce = a
        .nonce
        .as_deref()
        .map(|n| parse_u256(n, "--nonce"))
        .transpose()?;
    if let Some(path) = &a.execute_scheduled {
        let scheduled = Bundle::read(path).map_err(bundle_error)?;
        let session = session.on_chain_id(scheduled.chain_id);
        let c = session
            .compose_execute_scheduled(&scheduled, nonce)
            .map_err(|e| {
                let usage = e.code == "usage";
                let c = CliError::from(e);
                if usage {
                    c.hint("pass --nonce N or --rpc-url URL")
                } else {
                    c
                }
            })?;
        return write_and_report(ctx, &session, c, &a.out, a.force);
    }
    let mut args = BTreeMap::new();
    for kv in &a.args {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            CliError::new("usage", format!("--arg {kv:?} is not ACTION.ARG=VALUE"))
                .code(ExitCode::Usage)
        })?;
        args.insert(k.trim().to_string(), v.trim().to_string());
    }
    let req = ComposeRequest {
        playbook: a.playbook.clone().unwrap_or_default(),
        args,
        nonce,
        from: a
            .from
            .as_deref()
            .map(|f| parse_addr(f, "--from"))
            .transpose()?,
        gas_limit: a.gas_limit,
        max_fee: a.max_fee,
        priority_fee: a.priority_fee,
        predecessor: a
            .predecessor
            .as_deref()
            .map(|p| parse_b256(p, "--predecessor"))
            .transpose()?
            .unwrap_or_default(),
        salt: a
            .salt
            .as_deref()
            .map(|p| parse_b256(p, "--salt"))
            .transpose()?,
        delay: a.delay,
    };
    if session.manifest.is_multichain() {
        return compose_chains(ctx, &session, &req, &a);
    }
    if !a.chains.is_empty() {
        return Err(CliError::new(
            "usage",
            "--chains needs a multi-chain (version 2) manifest; this one describes one chain",
        )
        .code(ExitCode::Usage));
    }
    let c = session.compose(&req).map_err(compose_error)?;
    write_and_report(ctx, &session, c, &a.out, a.force)
}

/// The bundle path of one chain: `{chain}` replaced, or `-CHAIN` before the extension.
pub(crate) fn chain_path(out: &std::path::Path, chain: &str) -> PathBuf {
    let s = out.display().to_string();
    if s.contains("{chain}") {
        return PathBuf::from(s.replace("{chain}", chain));
    }
    let stem = out
        .file_stem()
        .map(|x| x.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match out.extension() {
        Some(ext) => format!("{stem}-{chain}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{chain}"),
    };
    out.with_file_name(name)
}

/// Composes the playbook on each chain: one bundle per chain, each verified and recorded. A chain that
/// fails (node down, playbook missing) does not stop the others; the command then fails with its error.
fn compose_chains(
    ctx: &Ctx,
    session: &Session,
    req: &ComposeRequest,
    a: &ComposeArgs,
) -> Result<(), CliError> {
    let explicit = !a.chains.is_empty() && !a.chains.iter().any(|c| c == "all");
    let sessions = session.chains(&a.chains)?;
    if req.nonce.is_some() && sessions.len() > 1 {
        return Err(CliError::new(
            "usage",
            "--nonce applies to one chain: each chain's Safe has its own nonce",
        )
        .code(ExitCode::Usage)
        .hint("compose chain by chain with --chains NAME --nonce N, or give each chain's node (--rpc-config) so the nonces are read"));
    }
    let mut results = Vec::new();
    let mut first_err: Option<CliError> = None;
    for s in sessions {
        let name = s.manifest.chain_name.clone().unwrap_or_default();
        if s.manifest.playbook(&req.playbook).is_none() && !explicit {
            results.push(json!({"chain": name, "chain_id": s.manifest.chain_id, "skipped": "the playbook is not on this chain"}));
            if !ctx.json {
                outln!(
                    "== {}: skipped: playbook {:?} is not on this chain",
                    s.manifest.chain_label(),
                    req.playbook
                );
            }
            continue;
        }
        let out = chain_path(&a.out, &name);
        if !ctx.json {
            outln!("== {} ==", s.manifest.chain_label());
        }
        let r = s
            .compose(req)
            .map_err(compose_error)
            .and_then(|c| write_chain(ctx, &s, c, &out, a.force));
        match r {
            Ok(v) => results.push(v),
            Err(e) => {
                if !ctx.json {
                    outln!("FAILED on {}: {}", s.manifest.chain_label(), e.message);
                }
                results.push(json!({"chain": name, "chain_id": s.manifest.chain_id, "error": e.kind, "message": e.message}));
                first_err.get_or_insert(e);
            }
        }
    }
    if ctx.json {
        print_json(
            json!({"ok": first_err.is_none(), "playbook": req.playbook, "chains": results, "trust": session.trust}),
        );
    }
    match first_err {
        Some(e) if ctx.json => Err(e.quiet_in_json()),
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn write_chain(
    ctx: &Ctx,
    session: &Session,
    mut c: compose::Composed,
    out: &std::path::Path,
    force: bool,
) -> Result<serde_json::Value, CliError> {
    if !force && out.exists() {
        return Err(bundle_error(crate::bundle::BundleError::Write {
            path: out.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; pass --force to replace it",
            ),
        }));
    }
    session.record_compose(&mut c, Some(&out.display().to_string()))?;
    c.bundle.write(out, force).map_err(bundle_error)?;
    if !ctx.json {
        out!("{}", crate::policy::render_text(&c.report));
        print_simulation(session, c.bundle.simulation.as_deref());
        outln!("wrote {}\n", out.display());
    }
    Ok(json!({
        "simulation": c.bundle.simulation.as_ref().map(|s| s.verdict()),
        "chain": session.manifest.chain_name,
        "chain_id": session.manifest.chain_id,
        "bundle": out.display().to_string(),
        "allowed": c.report.allowed,
        "safe_tx_hash": c.bundle.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
        "nonce": c.bundle.safe_tx.as_ref().map(|t| t.tx.nonce.to_string()),
    }))
}

/// The simulation's report, or why there was none.
pub(crate) fn print_simulation(
    session: &Session,
    sim: Option<&crate::bundle::simulation::Simulation>,
) {
    match sim {
        Some(s) => {
            outln!();
            for l in s.lines() {
                outln!("{l}");
            }
        }
        None if session.simulate.skip => {
            outln!("\nSimulation: skipped (--no-simulate); recorded in the audit log")
        }
        None => outln!("\nSimulation: not run (no node; offline, use `simulate --snapshot`)"),
    }
}

fn compose_error(e: crate::incident::IncidentError) -> CliError {
    let from_missing = e.code == "usage" && e.message.contains("guardian account");
    let nonce_too_large = e.code == "usage" && e.message.contains("nonce is too large");
    let c = CliError::from(e);
    if nonce_too_large {
        CliError::new(
            "usage",
            "--nonce is too large for an account nonce (at most 2^64 - 1)",
        )
        .code(ExitCode::Usage)
    } else if from_missing {
        CliError::new(
            "usage",
            "an EOA playbook needs --from ADDR (the guardian account)",
        )
        .code(ExitCode::Usage)
    } else {
        c
    }
}

/// Runs `inspect`: the verify report of a bundle plus its signing state.
pub fn run_inspect(ctx: &Ctx, a: InspectArgs) -> Result<(), CliError> {
    if crate::ladder::is_ladder_file(&a.bundle) {
        return super::ladder::inspect(ctx, &a.bundle, &a.ladder_keys);
    }
    let session = ctx.session()?;
    let trust_state = session.trust.clone();
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let session = session.on_chain_id(b.chain_id);
    let v = session.verify(&b)?;
    let t = session.tally(&b)?;
    if ctx.json {
        let mut out = serde_json::to_value(v.report()).unwrap_or_default();
        out["trust"] = serde_json::to_value(&trust_state).unwrap_or_default();
        out["bundle"] = serde_json::to_value(&b).unwrap_or_default();
        let mut signing = super::common::tally_json(&t);
        signing["ready"] = json!(v.report().allowed && t.ready());
        out["signing"] = signing;
        print_json(out);
    } else {
        print_report(ctx, v.report(), &trust_state);
        out!("\nSigning: ");
        super::common::print_tally(&t, &b);
    }
    let _ = U256::ZERO;
    if v.report().allowed {
        Ok(())
    } else {
        Err(
            CliError::new("refused", "verification refused: see the findings above")
                .code(ExitCode::Refused)
                .quiet_in_json(),
        )
    }
}
