//! `breakglass execute`, `breakglass broadcast`, `breakglass timelock status`: the last mile, on a node.

use super::compose::{bundle_error, chain_error};
use super::output::print_json;
use super::sign::{signer_error, SignerArgs};
use super::{CliError, Ctx, ExitCode};
use crate::bundle::{self, Bundle, EoaRequest, TimelockStep};
use crate::chain::postcond::{self, PostCondition};
use crate::chain::Chain;
use crate::manifest::trust;
use crate::manifest::Manifest;
use crate::safe::{pack_signatures, SignatureKind};
use crate::signer::{self, SigningRequest};
use alloy::consensus::{SignableTransaction, Transaction, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::primitives::{Address, Bytes, B256};
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `breakglass execute …`
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// A bundle holding at least threshold owner signatures.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// The executor account's signer (pays the gas; any account can execute a fully signed Safe tx).
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Where to write the bundle with the signed execution tx, receipt and post-conditions.
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
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

fn need_chain(ctx: &Ctx, m: &Manifest) -> Result<Chain, CliError> {
    let url = ctx.rpc_url.as_deref().ok_or_else(|| {
        CliError::new(
            "usage",
            "this command needs a node: pass --rpc-url URL (or set ETH_RPC_URL)",
        )
        .code(ExitCode::Usage)
    })?;
    Chain::connect(url, m.chain_id).map_err(chain_error)
}

fn write_bundle(b: &Bundle, out: &Path, overwrite: bool) -> Result<(), CliError> {
    b.write(out, overwrite).map_err(bundle_error)
}

/// Checks a bundle's `signed_tx` against the bundle: it decodes, its hash matches, its signer is who it
/// should be, and it carries exactly the bundle's transaction. Returns (raw, hash, sender).
fn check_signed_tx(b: &Bundle) -> Result<(Bytes, B256, Address), CliError> {
    let refuse = |msg: String| {
        CliError::new("bad_signed_tx", msg)
            .code(ExitCode::Refused)
            .hint("do not broadcast it; sign again")
    };
    let st = b.signed_tx.as_ref().ok_or_else(|| {
        CliError::new("not_signed", "the bundle holds no signed transaction").code(ExitCode::Usage).hint(
            "for a Safe tx run `breakglass execute`; for a guardian tx run `breakglass sign` first",
        )
    })?;
    let raw_hex = st
        .get("raw")
        .and_then(|v| v.as_str())
        .ok_or_else(|| refuse("signed_tx.raw is missing".into()))?;
    let raw: Bytes = raw_hex
        .parse()
        .map_err(|_| refuse("signed_tx.raw is not hex".into()))?;
    let env = TxEnvelope::decode_2718(&mut raw.as_ref())
        .map_err(|e| refuse(format!("signed_tx.raw does not decode: {e}")))?;
    let hash = *env.tx_hash();
    if let Some(h) = st.get("hash").and_then(|v| v.as_str()) {
        if h.parse::<B256>().ok() != Some(hash) {
            return Err(refuse(format!(
                "signed_tx.hash {h} is not the hash of signed_tx.raw ({hash:#x})"
            )));
        }
    }
    let TxEnvelope::Eip1559(signed) = &env else {
        return Err(refuse("signed_tx is not an EIP-1559 transaction".into()));
    };
    let from = signed
        .signature()
        .recover_address_from_prehash(&signed.tx().signature_hash())
        .map_err(|e| refuse(format!("signed_tx's signature does not recover: {e}")))?;
    if signed.tx().chain_id != b.chain_id {
        return Err(refuse(format!(
            "signed_tx is for chain {}, the bundle for {}",
            signed.tx().chain_id,
            b.chain_id
        )));
    }
    if let Some(e) = &b.eoa_tx {
        if signed.tx().signature_hash() != e.signing_hash || from != e.from {
            return Err(refuse(
                "signed_tx is not the bundle's transaction signed by its sender".into(),
            ));
        }
    } else if let Some(s) = &b.safe_tx {
        let tx = signed.tx();
        let node =
            crate::decode::decode_call(None, tx.to().unwrap_or_default(), tx.value(), tx.input())
                .map_err(|e| refuse(format!("signed_tx's calldata: {e}")))?;
        let fields = crate::decode::exec_transaction_fields(&node);
        let same = fields.is_some_and(|mut f| {
            f.nonce = s.tx.nonce;
            f == s.tx
        });
        if tx.to() != Some(s.safe) || !same {
            return Err(refuse(
                "signed_tx does not execute the bundle's Safe transaction".into(),
            ));
        }
    }
    Ok((raw, hash, from))
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
        eprint!(
            "\r  waiting for the receipt: {:.1} s, {b}   ",
            elapsed.as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
}

/// What landing a transaction produced.
pub(crate) struct Landed {
    /// The bundle with receipt and post-conditions.
    pub bundle: Bundle,
    /// Transaction hash.
    pub hash: B256,
    /// Receipt status.
    pub ok: bool,
    /// Block.
    pub block: Option<u64>,
    /// Gas used.
    pub gas_used: u64,
    /// Seconds from send to receipt.
    pub seconds: f64,
    /// Post-conditions.
    pub posts: Vec<PostCondition>,
}

/// Sends (idempotently), waits, and records the receipt and post-conditions in the bundle.
pub(crate) fn land(
    m: &Manifest,
    chain: &Chain,
    mut b: Bundle,
    wait: u64,
    progress: impl FnMut(Duration, Option<u64>),
) -> Result<Landed, CliError> {
    let (raw, hash, _) = check_signed_tx(&b)?;
    let t0 = Instant::now();
    chain.send_raw(&raw, hash).map_err(chain_error)?;
    let receipt = chain
        .wait_receipt(hash, Duration::from_secs(wait), progress)
        .map_err(chain_error)?;
    let ok = receipt.status();
    let seconds = t0.elapsed().as_secs_f64();
    b.receipt = Some(json!({
        "tx_hash": format!("{hash:#x}"),
        "block_number": receipt.block_number,
        "status": if ok { 1 } else { 0 },
        "gas_used": receipt.gas_used,
        "seconds": seconds,
    }));
    // A timelock schedule changes nothing yet: its actions' post-conditions belong to the execute step.
    let scheduling = b
        .timelock
        .as_ref()
        .is_some_and(|t| t.step == TimelockStep::Schedule);
    let posts: Vec<PostCondition> = if ok && !scheduling {
        postcond::evaluate(chain, m, &b.actions)
    } else {
        Vec::new()
    };
    b.postconditions = Some(serde_json::to_value(&posts).unwrap_or_default());
    Ok(Landed {
        bundle: b,
        hash,
        ok,
        block: receipt.block_number,
        gas_used: receipt.gas_used,
        seconds,
        posts,
    })
}

/// Sends (idempotently), waits, records the receipt and post-conditions. Returns whether all passed.
fn send_and_finish(
    ctx: &Ctx,
    m: &Manifest,
    chain: &Chain,
    b: Bundle,
    out: &Path,
    wait: u64,
) -> Result<bool, CliError> {
    if !ctx.json {
        if let Some(h) = b
            .signed_tx
            .as_ref()
            .and_then(|s| s.get("hash"))
            .and_then(|h| h.as_str())
        {
            outln!("sending {h}");
        }
    }
    let Landed {
        bundle: mut b,
        hash,
        ok,
        block,
        gas_used,
        seconds,
        posts,
    } = land(m, chain, b, wait, progress_line(ctx.json))?;
    let entry = ctx.audit(
        "broadcast",
        json!({
            "tx_hash": format!("{hash:#x}"),
            "status": ok,
            "block": block,
            "postconditions": posts.iter().map(|p| json!({"expect": p.expect, "pass": p.pass})).collect::<Vec<_>>(),
        }),
    )?;
    b.audit.push(crate::bundle::AuditRef {
        step: "mined".into(),
        entry,
    });
    if !ctx.json {
        eprintln!();
    }
    let receipt_block = block;
    write_bundle(&b, out, true)?;
    let all = ok && posts.iter().all(|p| p.pass);
    if ctx.json {
        print_json(json!({
            "tx_hash": format!("{hash:#x}"),
            "status": ok,
            "block_number": receipt_block,
            "gas_used": gas_used,
            "postconditions": posts,
            "all_passed": all,
            "out": out.display().to_string(),
        }));
    } else {
        outln!(
            "{} in block {} (gas {}) after {:.2} s",
            if ok { "mined" } else { "REVERTED" },
            receipt_block.unwrap_or_default(),
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

/// Progress from the execution core, for the CLI (printed) or the TUI (shown).
pub(crate) enum Status {
    /// A line for the person.
    Line(String),
    /// The verification report of a refused bundle.
    Report(Box<crate::policy::Report>),
}

/// Everything `execute` does before sending: verify against the manifest and the chain (owners,
/// threshold, nonce, implementation code hashes), simulate, and sign the execution transaction with
/// `signer_box`. Returns the bundle with its `signed_tx`.
pub(crate) fn prepare_execution(
    m: &Manifest,
    chain: &Chain,
    b: &Bundle,
    trust_state: &trust::Trust,
    signer_box: &mut dyn crate::signer::Signer,
    say: &mut dyn FnMut(Status),
    confirm_owner_approval: &mut dyn FnMut(Address, &crate::policy::Report) -> bool,
) -> Result<Bundle, CliError> {
    let v = bundle::verify_bundle(m, b).map_err(bundle_error)?;
    if !v.report().allowed {
        say(Status::Report(Box::new(v.report().clone())));
        return Err(CliError::new(
            "refused",
            "verification refused this bundle: it is never executed",
        )
        .code(ExitCode::Refused));
    }
    let Some(s) = b.safe_tx.clone() else {
        return Err(CliError::new(
            "usage",
            "this is a guardian-EOA bundle: use `breakglass broadcast` after `breakglass sign`",
        )
        .code(ExitCode::Usage));
    };
    if b.receipt.is_some() {
        return Err(CliError::new(
            "wrong_step",
            "this bundle was already executed (it holds a receipt)",
        )
        .code(ExitCode::Refused));
    }
    if b.signed_tx.is_some() {
        return Err(CliError::new(
            "wrong_step",
            "this bundle already holds a signed execution transaction (it may be pending): executing again would sign a second one",
        )
        .code(ExitCode::Refused)
        .hint(format!("run `breakglass broadcast {}` to send it (or keep waiting for it); it never sends twice", "BUNDLE")));
    }
    // Signatures against the Safe's owners and threshold as the chain says, not only the manifest.
    let (owners, threshold) = chain.safe_owners(s.safe).map_err(chain_error)?;
    let cfg = m
        .safe
        .as_ref()
        .ok_or_else(|| CliError::new("no_safe", "the manifest has no [safe]"))?;
    let mut chain_owners = owners.clone();
    chain_owners.sort();
    let mut manifest_owners = cfg.owners.clone();
    manifest_owners.sort();
    if chain_owners != manifest_owners || threshold != cfg.threshold {
        return Err(CliError::new(
            "owners_changed",
            format!(
                "CRITICAL: the Safe's owners/threshold on chain ({} owners, threshold {threshold}) differ from the manifest's ({} owners, threshold {}): someone changed who controls the Safe",
                owners.len(),
                cfg.owners.len(),
                cfg.threshold
            ),
        )
        .code(ExitCode::Refused)
        .hint("stop and investigate; update and re-pin the manifest only after review"));
    }
    // Approved-hash entries (v = 1) name an owner and prove nothing: they count only when the chain
    // has the approval, or when their owner is the executor and confirms now, after the review.
    let named: Vec<Address> = b
        .signatures
        .iter()
        .filter(|x| x.kind == SignatureKind::ApprovedHash)
        .map(|x| x.signer)
        .collect();
    let proven = if named.is_empty() {
        Vec::new()
    } else {
        chain
            .approved_on_chain(s.safe, &named, s.hashes.safe_tx_hash)
            .map_err(chain_error)?
    };
    let executor = signer_box.address().map_err(signer_error)?;
    let mut t = bundle::tally(b, &owners, threshold, &proven, None);
    let mut executor_approves = false;
    if owners.contains(&executor)
        && !t.counted.contains(&executor)
        && !t.ready()
        && confirm_owner_approval(executor, v.report())
    {
        executor_approves = true;
        t = bundle::tally(b, &owners, threshold, &proven, Some(executor));
        if !t.counted.contains(&executor) {
            t.counted.push(executor);
            t.counted.sort();
            t.missing.retain(|o| *o != executor);
        }
    }
    for e in t.not_counted() {
        say(Status::Line(format!(
            "not counted: {} ({:?}): {}",
            e.signer.to_checksum(None),
            e.kind,
            e.state.explain()
        )));
    }
    if !t.ready() {
        let missing: Vec<String> = t.missing.iter().map(|o| o.to_checksum(None)).collect();
        let ignored = t.not_counted().count();
        return Err(CliError::new(
            "not_enough_signatures",
            format!(
                "{} of {threshold} owner signatures count; missing: {}{}",
                t.counted.len(),
                missing.join(", "),
                if ignored > 0 {
                    format!(" ({ignored} entr{} not counted, see above)", if ignored == 1 { "y" } else { "ies" })
                } else {
                    String::new()
                }
            ),
        )
        .hint("collect more signatures (`breakglass sign`, `breakglass combine`) and try again; an executor who is an owner can approve with --approve-as-owner after reviewing"));
    }
    let mut valid = t.packable(b);
    if executor_approves && !valid.iter().any(|(a, _)| *a == executor) {
        // Safe's rule: v = 1 with r = msg.sender counts without an on-chain approveHash.
        let mut raw = [0u8; 65];
        raw[12..32].copy_from_slice(executor.as_slice());
        raw[64] = 1;
        valid.push((executor, raw));
    }
    let nonce = chain.safe_nonce(s.safe).map_err(chain_error)?;
    if nonce != s.tx.nonce {
        return Err(CliError::new("stale_nonce", format!("the Safe's nonce is {nonce}, the bundle's is {}: the signatures are for another nonce", s.tx.nonce))
            .code(ExitCode::Refused)
            .hint("compose again with the current nonce and collect signatures again"));
    }
    super::compose::check_codehashes_now(chain, m, v.report())?;
    let data = s.tx.exec_calldata(pack_signatures(valid));
    // Simulate first: a revert is explained and nothing is signed.
    match chain.call_from(Some(executor), s.safe, data.clone()) {
        Ok(_) => {}
        Err(e) => {
            return Err(CliError::new(
                "simulation_reverted",
                format!("simulation of execTransaction failed: {e}"),
            )
            .code(ExitCode::Refused)
            .hint("nothing was signed or sent"))
        }
    }
    let p = chain
        .eoa_params(
            executor,
            s.safe,
            alloy::primitives::U256::ZERO,
            data.clone(),
            None,
        )
        .map_err(chain_error)?;
    let mut req = EoaRequest {
        from: executor,
        to: s.safe,
        value: alloy::primitives::U256::ZERO,
        data,
        nonce: p.nonce,
        gas_limit: p.gas_limit,
        max_fee_per_gas: p.max_fee_per_gas,
        max_priority_fee_per_gas: p.max_priority_fee_per_gas,
        signing_hash: B256::ZERO,
    };
    req.signing_hash = req.unsigned(m.chain_id).signature_hash();
    let exec_bundle = Bundle {
        safe_tx: None,
        eoa_tx: Some(req),
        timelock: None,
        signatures: Vec::new(),
        ..b.clone()
    };
    let ev = bundle::verify_bundle(m, &exec_bundle).map_err(bundle_error)?;
    let sreq = SigningRequest::new(&ev, trust_state).map_err(signer_error)?;
    say(Status::Line(format!(
        "simulation ok; executor {} ({}), nonce {}, gas limit {}",
        executor.to_checksum(None),
        signer_box.label(),
        p.nonce,
        p.gas_limit
    )));
    say(Status::Line(format!(
        "Confirm the execution transaction on {}…",
        signer_box.label()
    )));
    let sig = signer::sign_request(signer_box, &sreq, executor).map_err(signer_error)?;
    let tx = sreq
        .transaction()
        .cloned()
        .ok_or_else(|| CliError::new("internal", "no transaction"))?;
    let env = TxEnvelope::from(tx.into_signed(sig));
    let mut out = b.clone();
    out.signed_tx = Some(json!({
        "raw": format!("0x{}", alloy::hex::encode(env.encoded_2718())),
        "hash": format!("{:#x}", env.tx_hash()),
        "from": executor.to_checksum(None),
        "kind": "execTransaction",
    }));
    Ok(out)
}

/// The executing owner approves the Safe transaction as a signer would: the whole review is shown, then
/// the owner types the first 8 hex digits of the safeTxHash. Anything else approves nothing.
fn confirm_executor_approval(
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
        eprintln!("{}", crate::policy::render_text(r));
    } else {
        super::verify::print_report(ctx, r, trust_state);
    }
    let want = alloy::hex::encode(h.safe_tx_hash)
        .chars()
        .take(8)
        .collect::<String>();
    eprint!(
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
        eprintln!("not approved: that is not the safeTxHash's beginning");
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
    if !a.force && a.out.exists() {
        return Err(CliError::new(
            "exists",
            format!("{} exists; pass --force to replace it", a.out.display()),
        )
        .code(ExitCode::Usage));
    }
    let m = ctx.load_manifest()?;
    let trust_state = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
    if let trust::Trust::Untrusted { reason } = &trust_state {
        return Err(CliError::new(
            "untrusted_manifest",
            format!("refusing to execute under an untrusted manifest: {reason}"),
        )
        .code(ExitCode::Refused));
    }
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let chain = need_chain(ctx, &m)?;
    let mut signer_box = a.signer.open()?;
    let json_mode = ctx.json;
    let mut say = |st: Status| match st {
        Status::Line(l) if !json_mode => outln!("{l}"),
        Status::Report(r) => super::verify::print_report(ctx, &r, &trust_state),
        _ => {}
    };
    let approve = a.approve_as_owner;
    let mut confirm = |executor: Address, r: &crate::policy::Report| {
        approve && confirm_executor_approval(ctx, executor, r, &trust_state)
    };
    let out = prepare_execution(
        &m,
        &chain,
        &b,
        &trust_state,
        signer_box.as_mut(),
        &mut say,
        &mut confirm,
    )?;
    // Nothing lost on a crash: the signed transaction is on disk before it is sent.
    let entry = ctx.audit(
        "execute",
        json!({
            "stage": "signed",
            "safe_tx_hash": out.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "tx_hash": out.signed_tx.as_ref().and_then(|s| s.get("hash")).cloned(),
            "executor": out.signed_tx.as_ref().and_then(|s| s.get("from")).cloned(),
        }),
    )?;
    let mut out = out;
    out.audit.push(crate::bundle::AuditRef {
        step: "execute".into(),
        entry,
    });
    write_bundle(&out, &a.out, a.force)?;
    let all = send_and_finish(ctx, &m, &chain, out, &a.out, a.wait_timeout)?;
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
    let m = ctx.load_manifest()?;
    if let trust::Trust::Untrusted { reason } = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())? {
        return Err(CliError::new(
            "untrusted_manifest",
            format!("refusing to broadcast under an untrusted manifest: {reason}"),
        )
        .code(ExitCode::Refused)
        .hint("pin the manifest here too (`breakglass manifest pin`, or --pin 0x<hash>)"));
    }
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let v = bundle::verify_bundle(&m, &b).map_err(bundle_error)?;
    if !v.report().allowed {
        let t = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
        super::verify::print_report(ctx, v.report(), &t);
        return Err(CliError::new(
            "refused",
            "verification refused this bundle: it is never broadcast",
        )
        .code(ExitCode::Refused));
    }
    check_signed_tx(&b)?;
    let chain = need_chain(ctx, &m)?;
    let out = a.out.clone().unwrap_or_else(|| a.bundle.clone());
    let all = send_and_finish(ctx, &m, &chain, b, &out, a.wait_timeout)?;
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
    let m = ctx.load_manifest()?;
    let b = Bundle::read(&path).map_err(bundle_error)?;
    let t = b.timelock.clone().ok_or_else(|| {
        CliError::new("usage", "the bundle holds no timelock operation").code(ExitCode::Usage)
    })?;
    let chain = need_chain(ctx, &m)?;
    let ts = chain
        .timelock_timestamp(t.address, t.operation_id)
        .map_err(chain_error)?;
    let (_, now) = chain.latest().map_err(chain_error)?;
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
