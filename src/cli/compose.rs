//! `breakglass compose` and `breakglass inspect`.

use super::output::print_json;
use super::verify::{parse_addr, parse_u256, print_report};
use super::{CliError, Ctx, ExitCode};
use crate::bundle::{self, Bundle, BundleError};
use crate::chain::{Chain, ChainError};
use crate::compose::{self, ComposeError, ComposeOptions, EoaParams};
use crate::manifest::trust;
use crate::manifest::Via;
use alloy::primitives::{Address, B256, U256};
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
    /// Safe nonce (Safe and timelock playbooks) or account nonce (`--eoa`); read from the chain with --rpc-url.
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
    /// Where to write the bundle.
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
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
}

pub(crate) fn bundle_error(e: BundleError) -> CliError {
    let (kind, code, hint) = match &e {
        BundleError::Io { .. } => ("bundle_unreadable", ExitCode::Error, "check the path"),
        BundleError::Malformed { .. } => ("bundle_malformed", ExitCode::Refused, "the file is damaged or not a bundle: ask for it again"),
        BundleError::UnknownFormat { .. } => ("bundle_format", ExitCode::Refused, "update breakglass on this machine, or ask the sender for a breakglass/bundle@1 file"),
        BundleError::Mismatch { .. } => ("bundle_tampered", ExitCode::Refused, "do not sign it; compose the transaction again from the playbook"),
        BundleError::Inconsistent(_) => ("bundle_inconsistent", ExitCode::Refused, "do not sign it; compose it again"),
        BundleError::WrongManifest { .. } => ("wrong_manifest", ExitCode::Refused, "use the manifest the bundle was composed with (check `breakglass manifest hash`), or compose again here"),
        BundleError::BadSignature { .. } => ("bad_signature", ExitCode::Refused, "drop that signature and ask the owner to sign again"),
        BundleError::Decode(_) => ("malformed_calldata", ExitCode::Refused, "do not sign it"),
        BundleError::Write { .. } => ("write_failed", ExitCode::Error, "choose another output path, or pass --force to replace the file"),
    };
    CliError::new(kind, e.to_string()).code(code).hint(hint)
}

/// With a node at hand, upgrades are checked against the manifest's pinned implementation code hash
/// before anything is signed (and again before execution).
pub(crate) fn check_codehashes_now(
    chain: &Chain,
    m: &crate::manifest::Manifest,
    report: &crate::policy::Report,
) -> Result<(), CliError> {
    let checks = crate::chain::postcond::check_codehashes(chain, m, report).map_err(chain_error)?;
    if let Some(bad) = checks.iter().find(|c| !c.pass) {
        return Err(CliError::new(
            "codehash",
            format!(
                "CRITICAL: implementation {} for action {} has code hash {}, the manifest pins {:#x}",
                bad.implementation.to_checksum(None),
                bad.action,
                bad.actual.map(|h| format!("{h:#x}")).unwrap_or_else(|| "none (no code)".into()),
                bad.pinned
            ),
        )
        .code(ExitCode::Refused)
        .hint("do not sign: the implementation at that address is not the audited code"));
    }
    Ok(())
}

pub(crate) fn chain_error(e: ChainError) -> CliError {
    let hint = match &e {
        ChainError::WrongChain { .. } => "point --rpc-url at a node of the manifest's chain",
        ChainError::BadUrl(_) => "write e.g. --rpc-url http://127.0.0.1:8545",
        ChainError::Rpc { message, revert } if revert.is_some() || message.to_lowercase().contains("revert") => "the node answered: the call would fail on chain as it is now (e.g. the contract is already paused, or the sender lacks the role); check the contract's state",
        ChainError::Rpc { .. } => "the node refused the request: see its message above",
        ChainError::Timeout { .. } => "run the same command again later: it finds the transaction by hash and never sends twice",
        _ => "check that the node is running and reachable, or work offline with explicit --nonce (and fee flags)",
    };
    CliError::new("chain", e.to_string()).hint(hint)
}

fn compose_error(e: ComposeError) -> CliError {
    match e {
        ComposeError::Refused(msg, _) => CliError::new(
            "compose_refused",
            format!("composition refused by verification: {msg}"),
        )
        .code(ExitCode::Refused)
        .hint("the manifest's action and its constraints disagree: fix the manifest and re-pin it"),
        ComposeError::Bundle(b) => bundle_error(b),
        ComposeError::NoPlaybook(..) => {
            CliError::new("no_playbook", e.to_string()).code(ExitCode::Usage)
        }
        ComposeError::NeedsArg { .. } | ComposeError::BadArg { .. } | ComposeError::Missing(_) => {
            CliError::new("compose_input", e.to_string()).code(ExitCode::Usage)
        }
        ComposeError::Decode(d) => super::verify::decode_error(d),
    }
}

fn parse_b256(s: &str, what: &str) -> Result<B256, CliError> {
    let t = s.trim();
    if t.len() != 66 || !t.starts_with("0x") {
        return Err(CliError::new(
            "usage",
            format!("{what} must be 0x followed by 64 hex digits"),
        )
        .code(ExitCode::Usage));
    }
    t.parse()
        .map_err(|_| CliError::new("usage", format!("{what} is not hex")).code(ExitCode::Usage))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn write_and_report(
    ctx: &Ctx,
    c: &compose::Composed,
    out: &std::path::Path,
    force: bool,
    trust_state: &trust::Trust,
) -> Result<(), CliError> {
    if !force && out.exists() {
        return Err(bundle_error(crate::bundle::BundleError::Write {
            path: out.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; pass --force to replace it",
            ),
        }));
    }
    let entry = ctx.audit(
        "compose",
        json!({
            "playbook": c.bundle.playbook,
            "actions": c.bundle.actions,
            "safe_tx_hash": c.bundle.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "signing_hash": c.bundle.eoa_tx.as_ref().map(|e| format!("{:#x}", e.signing_hash)),
            "timelock_operation": c.bundle.timelock.as_ref().map(|t| format!("{:#x}", t.operation_id)),
            "out": out.display().to_string(),
        }),
    )?;
    let mut bundle = c.bundle.clone();
    bundle.audit.push(crate::bundle::AuditRef {
        step: "compose".into(),
        entry,
    });
    bundle.write(out, force).map_err(bundle_error)?;
    if ctx.json {
        let mut v = serde_json::to_value(&c.report).unwrap_or_default();
        v["bundle"] = json!(out.display().to_string());
        v["trust"] = serde_json::to_value(trust_state).unwrap_or_default();
        print_json(v);
    } else {
        out!("{}", crate::policy::render_text(&c.report));
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
                super::manifest::trust_text(trust_state)
            );
        }
    }
    Ok(())
}

/// Runs `compose`.
pub fn run_compose(ctx: &Ctx, a: ComposeArgs) -> Result<(), CliError> {
    let m = ctx.load_manifest()?;
    let trust_state = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
    let chain = match &ctx.rpc_url {
        Some(u) => Some(Chain::connect(u, m.chain_id).map_err(chain_error)?),
        None => None,
    };
    let nonce_flag = a
        .nonce
        .as_deref()
        .map(|n| parse_u256(n, "--nonce"))
        .transpose()?;
    if let Some(path) = &a.execute_scheduled {
        let scheduled = Bundle::read(path).map_err(bundle_error)?;
        let nonce = match (nonce_flag, &chain, &m.safe) {
            (Some(n), _, _) => n,
            (None, Some(c), Some(s)) => c.safe_nonce(s.address).map_err(chain_error)?,
            _ => {
                return Err(CliError::new(
                    "usage",
                    "the Safe nonce is needed: pass --nonce N or --rpc-url URL",
                )
                .code(ExitCode::Usage))
            }
        };
        let c = compose::compose_execute_scheduled(&m, &scheduled, nonce, now())
            .map_err(compose_error)?;
        return write_and_report(ctx, &c, &a.out, a.force, &trust_state);
    }
    let playbook = a.playbook.clone().unwrap_or_default();
    let pb = m.playbook(&playbook).ok_or_else(|| {
        compose_error(ComposeError::NoPlaybook(
            playbook.clone(),
            m.playbooks
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    })?;
    let via = pb
        .actions
        .first()
        .and_then(|id| m.action(id))
        .map(|a| a.via)
        .unwrap_or(Via::Safe);
    let mut args = BTreeMap::new();
    for kv in &a.args {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            CliError::new("usage", format!("--arg {kv:?} is not ACTION.ARG=VALUE"))
                .code(ExitCode::Usage)
        })?;
        args.insert(k.trim().to_string(), v.trim().to_string());
    }
    let mut opts = ComposeOptions {
        args,
        created_at: now(),
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
        ..Default::default()
    };
    match via {
        Via::Safe | Via::Timelock => {
            opts.safe_nonce = match (nonce_flag, &chain, &m.safe) {
                (Some(n), _, _) => Some(n),
                (None, Some(c), Some(s)) => Some(c.safe_nonce(s.address).map_err(chain_error)?),
                _ => None,
            };
        }
        Via::Eoa => {
            let from: Address = match &a.from {
                Some(f) => parse_addr(f, "--from")?,
                None => {
                    return Err(CliError::new(
                        "usage",
                        "an EOA playbook needs --from ADDR (the guardian account)",
                    )
                    .code(ExitCode::Usage))
                }
            };
            let explicit = (nonce_flag, a.gas_limit, a.max_fee, a.priority_fee);
            opts.eoa = match (explicit, &chain) {
                ((Some(n), Some(g), Some(mf), Some(pf)), _) => Some(EoaParams {
                    from,
                    nonce: u64::try_from(n).map_err(|_| {
                        CliError::new("usage", "--nonce is too large").code(ExitCode::Usage)
                    })?,
                    gas_limit: g,
                    max_fee_per_gas: mf,
                    max_priority_fee_per_gas: pf,
                }),
                (_, Some(c)) => {
                    // Fill what was not given from the chain, keeping what was.
                    let action = pb
                        .actions
                        .first()
                        .and_then(|id| m.action(id))
                        .ok_or_else(|| CliError::new("usage", "empty playbook"))?;
                    let call = compose::plan_action(&m, action, &opts).map_err(compose_error)?;
                    let filled = c
                        .eoa_params(from, call.to, call.value, call.data, a.gas_limit)
                        .map_err(chain_error)?;
                    let nonce = match nonce_flag {
                        Some(n) => u64::try_from(n).map_err(|_| {
                            CliError::new("usage", "--nonce is too large").code(ExitCode::Usage)
                        })?,
                        None => filled.nonce,
                    };
                    Some(EoaParams {
                        from,
                        nonce,
                        gas_limit: a.gas_limit.unwrap_or(filled.gas_limit),
                        max_fee_per_gas: a.max_fee.unwrap_or(filled.max_fee_per_gas),
                        max_priority_fee_per_gas: a
                            .priority_fee
                            .unwrap_or(filled.max_priority_fee_per_gas),
                    })
                }
                _ => None,
            };
        }
    }
    let c = compose::compose(&m, &playbook, &opts).map_err(compose_error)?;
    if let Some(ch) = &chain {
        check_codehashes_now(ch, &m, &c.report)?;
    }
    write_and_report(ctx, &c, &a.out, a.force, &trust_state)
}

/// Runs `inspect`: the verify report of a bundle plus its signing state.
pub fn run_inspect(ctx: &Ctx, a: InspectArgs) -> Result<(), CliError> {
    let m = ctx.load_manifest()?;
    let trust_state = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let v = bundle::verify_bundle(&m, &b).map_err(bundle_error)?;
    let proven = super::transfer::onchain_approvals(ctx, &m, &b)?;
    let t = bundle::tally_manifest(&m, &b, &proven);
    if ctx.json {
        let mut out = serde_json::to_value(v.report()).unwrap_or_default();
        out["trust"] = serde_json::to_value(&trust_state).unwrap_or_default();
        out["bundle"] = serde_json::to_value(&b).unwrap_or_default();
        let mut signing = super::transfer::tally_json(&t);
        signing["ready"] = json!(v.report().allowed && t.ready());
        out["signing"] = signing;
        print_json(out);
    } else {
        print_report(ctx, v.report(), &trust_state);
        out!("\nSigning: ");
        super::transfer::print_tally(&t, &b);
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
