//! `breakglass manifest hash|check|show|pin|approvals`.

use super::common::trust_text;
use super::output::print_json;
use super::{CliError, Ctx};
use crate::manifest::constraint_text;
use crate::manifest::trust::{self, PinEntry, PinStore};
use crate::manifest::{ActionCall, ExpectLhs, Manifest, ProxyKind};
use clap::Subcommand;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};

/// `breakglass manifest …`
#[derive(Debug, Subcommand)]
pub enum ManifestCmd {
    /// Print the manifest's identity: keccak256 of the file bytes (0x-prefixed).
    Hash,
    /// Validate the manifest and print its summary, hash and trust state.
    Check,
    /// Print everything the manifest allows: Safe, contracts, actions with argument constraints, playbooks.
    Show,
    /// Pin this manifest's hash in the user's pin store after review (asks for a typed `yes`).
    Pin {
        /// Do not ask; pin at once.
        #[arg(long)]
        yes: bool,
    },
    /// Check the Safe owners' approvals of this manifest (in `<manifest>.approvals.json`).
    Approvals,
    /// Approve this manifest's hash as a Safe owner: EIP-191 personal_sign of `breakglass manifest
    /// <hash>` on a Ledger, Speculos or keystore, appended to `<manifest>.approvals.json`.
    Approve {
        /// Signer.
        #[command(flatten)]
        signer: super::common::SignerArgs,
        /// Do not ask for a typed `yes` before signing.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: ManifestCmd) -> Result<(), CliError> {
    let m = ctx.load_manifest()?;
    match cmd {
        ManifestCmd::Hash => {
            if ctx.json {
                print_json(json!({ "file": m.path.display().to_string(), "hash": m.hash_hex() }));
            } else {
                outln!("{}", m.hash_hex());
            }
            Ok(())
        }
        ManifestCmd::Check => {
            let t = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
            // Each upgrade's storage layouts, compared (issue 18): what verify/compose/sign will say.
            let layouts: Vec<(String, String, Vec<String>)> = m
                .actions
                .iter()
                .filter_map(|a| {
                    a.storage_layout.as_ref().map(|l| {
                        (
                            a.id.clone(),
                            format!("{} → {}", l.current_file, l.new_file),
                            l.findings().into_iter().map(|f| f.message).collect(),
                        )
                    })
                })
                .collect();
            if ctx.json {
                let mut v = summary_json(&m);
                v["trust"] = serde_json::to_value(&t).unwrap_or(Value::Null);
                v["valid"] = Value::Bool(true);
                v["storage_layouts"] = serde_json::json!(layouts
                    .iter()
                    .map(|(id, files, f)| serde_json::json!({"action": id, "files": files, "safe": f.is_empty(), "findings": f}))
                    .collect::<Vec<_>>());
                print_json(v);
            } else {
                out!("{}", summary_text(&m));
                outln!("  {:<10}{}", "trust", trust_text(&t));
                for (id, files, f) in &layouts {
                    if f.is_empty() {
                        outln!("  layout    {id}: {files}: keeps every variable in place");
                    } else {
                        outln!(
                            "  layout    {id}: {files}: UNSAFE, every upgrade with it is refused:"
                        );
                        for x in f {
                            outln!("              {x}");
                        }
                    }
                }
            }
            Ok(())
        }
        ManifestCmd::Show => {
            let t = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
            if ctx.json {
                let mut v = show_json(&m);
                v["trust"] = serde_json::to_value(&t).unwrap_or(Value::Null);
                print_json(v);
            } else {
                out!("{}", show_text(&m));
                outln!("\ntrust: {}", trust_text(&t));
            }
            Ok(())
        }
        ManifestCmd::Pin { yes } => pin(ctx, &m, yes),
        ManifestCmd::Approve { signer, yes } => approve(ctx, &m, &signer, yes),
        ManifestCmd::Approvals => {
            let r = trust::check_approvals(&m, &PinStore::load()?)?;
            if ctx.json {
                let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                v["manifest_hash"] = Value::String(m.hash_hex());
                v["message"] = Value::String(trust::approval_message(&m.hash));
                print_json(v);
                return Ok(());
            }
            outln!("approvals for {} ({})", m.name, m.hash_hex());
            outln!("  file     {}", r.file);
            outln!(
                "  message  {:?} (EIP-191 personal_sign)",
                trust::approval_message(&m.hash)
            );
            if !r.present {
                outln!("  no approvals file yet");
            } else if r.file_hash != Some(m.hash) {
                outln!(
                    "  the file approves another manifest ({}): none of its approvals count for this one",
                    r.file_hash.map(|h| format!("{h:#x}")).unwrap_or_default()
                );
            }
            for a in &r.approvals {
                let status = match &a.status {
                    trust::ApprovalStatus::Valid => "valid owner approval".to_string(),
                    trust::ApprovalStatus::NotOwner => {
                        "REJECTED: not an owner of the manifest's Safe".to_string()
                    }
                    trust::ApprovalStatus::Duplicate => {
                        "REJECTED: duplicate of an earlier approval".to_string()
                    }
                    trust::ApprovalStatus::BadSignature { reason } => {
                        format!("REJECTED: bad signature ({reason})")
                    }
                };
                outln!("  {}  {status}", a.signer.to_checksum(None));
            }
            if r.anchor.is_none() {
                outln!("  nothing is pinned for {:?} yet: approvals are counted against the owners of the Safe in an", m.name);
                outln!("  earlier pinned version of this manifest, so this one can only be trusted by `manifest pin`");
            } else {
                outln!(
                    "  counted against the owners of the pinned manifest {:#x}",
                    r.anchor.unwrap_or_default()
                );
                outln!("  {} of {} required owner approvals", r.valid, r.threshold);
                if r.valid < r.threshold {
                    for o in &r.missing {
                        outln!("  missing  {}", o.to_checksum(None));
                    }
                }
            }
            Ok(())
        }
    }
}

fn approve(
    ctx: &Ctx,
    m: &Manifest,
    signer: &super::common::SignerArgs,
    yes: bool,
) -> Result<(), CliError> {
    use crate::manifest::trust::{approvals_path, ApprovalEntry, ApprovalsFile};
    if !signer.chosen() {
        return Err(CliError::new(
            "usage",
            "choose a signer: --ledger, --speculos HOST:PORT or --keystore FILE",
        )
        .code(super::ExitCode::Usage));
    }
    let path = approvals_path(&m.path);
    let mut file = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice::<ApprovalsFile>(&b).map_err(|e| {
            CliError::new(
                "approvals_malformed",
                format!("{} is not a valid approvals file: {e}", path.display()),
            )
        })?,
        Err(_) => ApprovalsFile {
            manifest_hash: m.hash,
            approvals: Vec::new(),
        },
    };
    if file.manifest_hash != m.hash {
        return Err(CliError::new(
            "approvals_other_manifest",
            format!("{} holds approvals of another manifest ({:#x})", path.display(), file.manifest_hash),
        )
        .hint("move that file away (those approvals do not count for this version), then approve again"));
    }
    let req = crate::signer::ApprovalRequest::new(&m.hash);
    if !ctx.json {
        out!("{}", summary_text(m));
        outln!(
            "
You are approving, as a Safe owner, the text:
  {}",
            req.text()
        );
        outln!("Review `breakglass manifest show` first: this approval lets the manifest be used for signing.");
    }
    if !yes {
        out!("Type yes to sign the approval: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
        if read == 0 || line.trim() != "yes" {
            return Err(
                CliError::new("not_confirmed", "not approved: the answer was not `yes`")
                    .hint("type yes, or pass --yes"),
            );
        }
    }
    let mut s = signer.open()?;
    let address = s.address().map_err(super::common::signer_error)?;
    let store = PinStore::load()?;
    let anchor_owner = store
        .pins
        .get(&m.name)
        .and_then(|p| p.safe.as_ref())
        .map(|s| s.owners.contains(&address));
    let manifest_owner = m.safe.as_ref().is_some_and(|c| c.is_owner(&address));
    if anchor_owner == Some(false) || (anchor_owner.is_none() && !manifest_owner) {
        return Err(CliError::new(
            "not_owner",
            format!("{} is not an owner of the Safe", address.to_checksum(None)),
        )
        .code(super::ExitCode::Signer)
        .hint(
            "approve with an owner's Ledger account (--account N) or keystore; nothing was signed",
        ));
    }
    if file.approvals.iter().any(|a| a.signer == address) {
        return Err(CliError::new(
            "already_approved",
            format!(
                "{} already approved this manifest",
                address.to_checksum(None)
            ),
        ));
    }
    if !ctx.json {
        outln!(
            "Confirm the message on {} ({})…",
            s.label(),
            address.to_checksum(None)
        );
    }
    let sig = crate::signer::sign_approval(s.as_mut(), &req, address)
        .map_err(super::common::signer_error)?;
    file.approvals.push(ApprovalEntry {
        signer: address,
        signature: alloy::primitives::Bytes::copy_from_slice(&sig.as_bytes()),
    });
    let mut body = serde_json::to_vec_pretty(&file)
        .map_err(|e| CliError::new("write_failed", e.to_string()))?;
    body.push(b'\n');
    ctx.audit(
        "approve",
        json!({ "manifest": m.hash_hex(), "signer": address.to_checksum(None), "device": s.label() }),
    )?;
    crate::fsutil::atomic_write(&path, &body, true).map_err(|e| {
        CliError::new(
            "write_failed",
            format!("cannot write {}: {e}", path.display()),
        )
    })?;
    let report = trust::check_approvals(m, &store)?;
    if ctx.json {
        print_json(
            json!({ "signer": address.to_checksum(None), "file": path.display().to_string(), "valid": report.valid, "threshold": report.threshold }),
        );
    } else {
        outln!(
            "approved by {}; wrote {}",
            address.to_checksum(None),
            path.display()
        );
        if report.threshold > 0 {
            outln!("{} of {} owner approvals", report.valid, report.threshold);
        }
    }
    Ok(())
}

fn pin(ctx: &Ctx, m: &Manifest, yes: bool) -> Result<(), CliError> {
    let mut store = PinStore::load()?;
    let previous = store.pins.get(&m.name).cloned();
    if previous.as_ref().is_some_and(|p| p.hash == m.hash) {
        if ctx.json {
            print_json(
                json!({ "pinned": true, "changed": false, "name": m.name, "hash": m.hash_hex() }),
            );
        } else {
            outln!("{} is already pinned at {}", m.name, m.hash_hex());
        }
        return Ok(());
    }
    if !ctx.json {
        out!("{}", summary_text(m));
        if let Some(p) = &previous {
            outln!(
                "\nWARNING: {:?} is pinned to a DIFFERENT manifest:\n  old  {:#x}  ({})\n  new  {}  ({})\nThe file changed since it was pinned. Review `breakglass manifest show` before you re-pin.",
                m.name,
                p.hash,
                p.file,
                m.hash_hex(),
                m.path.display()
            );
        }
    }
    if !yes {
        if !std::io::stdin().is_terminal() && ctx.json {
            return Err(CliError::new(
                "confirmation_required",
                "pinning needs a typed confirmation",
            )
            .hint("pass --yes to pin without asking")
            .code(super::ExitCode::Usage));
        }
        out!(
            "\nPin {} as trusted for {:?}? Type yes to confirm: ",
            m.hash_hex(),
            m.name
        );
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line).unwrap_or(0);
        if read == 0 || line.trim() != "yes" {
            return Err(
                CliError::new("not_confirmed", "not pinned: the answer was not `yes`")
                    .hint("type yes (the whole word) to pin, or pass --yes"),
            );
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let file = std::fs::canonicalize(&m.path).unwrap_or_else(|_| m.path.clone());
    store.pins.insert(
        m.name.clone(),
        PinEntry {
            hash: m.hash,
            file: file.display().to_string(),
            pinned_at: now,
            safe: trust::PinnedSafe::of(m),
        },
    );
    ctx.audit(
        "pin",
        json!({ "name": m.name, "hash": m.hash_hex(), "previous": previous.as_ref().map(|p| format!("{:#x}", p.hash)), "file": m.path.display().to_string() }),
    )?;
    let path = store.save()?;
    if ctx.json {
        print_json(json!({
            "pinned": true,
            "changed": true,
            "name": m.name,
            "hash": m.hash_hex(),
            "previous_hash": previous.map(|p| format!("{:#x}", p.hash)),
            "store": path.display().to_string(),
        }));
    } else {
        outln!(
            "pinned {} for {:?} in {}",
            m.hash_hex(),
            m.name,
            path.display()
        );
    }
    Ok(())
}

fn summary_json(m: &Manifest) -> Value {
    json!({
        "file": m.path.display().to_string(),
        "name": m.name,
        "hash": m.hash_hex(),
        "chain_id": m.chain_id,
        "safe": m.safe.as_ref().map(|s| json!({
            "address": s.address.to_checksum(None),
            "version": s.version.as_str(),
            "owners": s.owners.iter().map(|o| o.to_checksum(None)).collect::<Vec<_>>(),
            "threshold": s.threshold,
            "multisend_call_only": s.multisend_call_only.to_checksum(None),
            "multisend_overridden": s.multisend_overridden,
        })),
        "timelock": m.timelock.as_ref().map(|t| json!({
            "address": t.address.to_checksum(None),
            "min_delay": t.min_delay,
        })),
        "contracts": m.contracts.len(),
        "actions": m.actions.len(),
        "playbooks": m.playbooks.iter().map(|p| json!({"id": p.id, "title": p.title, "actions": p.actions})).collect::<Vec<_>>(),
        "warnings": m.warnings(),
        "chain": m.chain_name,
        "chains": if m.is_multichain() {
            Value::Array(m.all_chains().iter().map(|c| json!({
                "name": c.chain_name,
                "chain_id": c.chain_id,
                "safe": c.safe.as_ref().map(|s| s.address.to_checksum(None)),
                "playbooks": c.playbooks.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            })).collect())
        } else {
            Value::Null
        },
    })
}

fn summary_text(m: &Manifest) -> String {
    let mut s = String::new();
    s.push_str(&format!("{}: manifest OK\n", m.name));
    s.push_str(&format!("  {:<10}{}\n", "file", m.path.display()));
    s.push_str(&format!("  {:<10}{}\n", "hash", m.hash_hex()));
    if m.is_multichain() {
        s.push_str(&format!(
            "  {:<10}{} ({}): one hash, one pin for all\n",
            "chains",
            m.deployments.len(),
            m.chain_names().join(", ")
        ));
        for view in m.all_chains() {
            s.push_str(&format!("\n  == {} ==\n", view.chain_label()));
            s.push_str(&chain_summary_text(&view));
        }
    } else {
        s.push_str(&format!("  {:<10}{}\n", "chain", m.chain_id));
        s.push_str(&chain_summary_text(m));
    }
    for w in m.warnings() {
        s.push_str(&format!("  WARNING   {w}\n"));
    }
    s
}

fn chain_summary_text(m: &Manifest) -> String {
    let mut s = String::new();
    if let Some(safe) = &m.safe {
        s.push_str(&format!(
            "  {:<10}{} (Safe {}, {} of {} owners; MultiSendCallOnly {}{})\n",
            "safe",
            safe.address.to_checksum(None),
            safe.version.as_str(),
            safe.threshold,
            safe.owners.len(),
            safe.multisend_call_only.to_checksum(None),
            if safe.multisend_overridden {
                ", overridden"
            } else {
                ""
            }
        ));
    }
    if let Some(t) = &m.timelock {
        s.push_str(&format!(
            "  {:<10}{} (min delay {} s)\n",
            "timelock",
            t.address.to_checksum(None),
            t.min_delay
        ));
    }
    s.push_str(&format!(
        "  {:<10}{} contracts, {} actions, {} playbooks\n",
        "contents",
        m.contracts.len(),
        m.actions.len(),
        m.playbooks.len()
    ));
    for p in &m.playbooks {
        s.push_str(&format!(
            "  {:<10}{}: {} [{}]\n",
            "playbook",
            p.id,
            p.title,
            p.actions.join(", ")
        ));
    }
    s
}

fn action_json(m: &Manifest, a: &crate::manifest::Action) -> Value {
    let contract = m.contract(&a.contract);
    json!({
        "id": a.id,
        "title": a.title,
        "contract": a.contract,
        "address": contract.map(|c| c.address.to_checksum(None)),
        "via": a.via,
        "call": a.call_signature(),
        "upgrade": matches!(a.call, ActionCall::Upgrade),
        "args": a.args.iter().map(|(n, c)| json!({"name": n, "constraint": constraint_text(c)})).collect::<Vec<_>>(),
        "value": constraint_text(&a.value),
        "implementation_codehash": a.implementation_codehash.map(|h| format!("{h:#x}")),
        "allow_safe_tx_gas": a.allow_safe_tx_gas,
        "expect": a.expect.iter().map(|e| e.text.clone()).collect::<Vec<_>>(),
    })
}

fn show_json(m: &Manifest) -> Value {
    let mut v = chain_show_json(m);
    if m.is_multichain() {
        v["chains"] = Value::Array(m.all_chains().iter().map(chain_show_json).collect());
    }
    v
}

fn chain_show_json(m: &Manifest) -> Value {
    let mut v = summary_json(m);
    v["contracts"] = Value::Array(
        m.contracts
            .values()
            .map(|c| {
                json!({
                    "id": c.id,
                    "address": c.address.to_checksum(None),
                    "proxy": c.proxy.as_str(),
                    "proxy_admin": match &c.proxy { ProxyKind::Transparent { proxy_admin } => Some(proxy_admin.to_checksum(None)), _ => None },
                    "beacon": match &c.proxy { ProxyKind::Beacon { beacon } => Some(beacon.to_checksum(None)), _ => None },
                    "functions": c.abi.functions().map(|f| f.signature()).collect::<Vec<_>>(),
                    "upgrade_call": c.upgrade_call.map(|u| u.signature()),
                })
            })
            .collect(),
    );
    v["actions"] = Value::Array(m.actions.iter().map(|a| action_json(m, a)).collect());
    v["policy"] = json!({
        "max_tx_fee_wei": m.policy.max_tx_fee_wei.to_string(),
        "max_tx_fee": crate::manifest::format_eth(m.policy.max_tx_fee_wei),
    });
    v
}

fn show_text(m: &Manifest) -> String {
    let mut s = summary_text(m);
    s.push_str(&format!(
        "\nPolicy: one transaction may cost at most {} (gas limit × max fee)\n",
        crate::manifest::format_eth(m.policy.max_tx_fee_wei)
    ));
    if m.is_multichain() {
        for view in m.all_chains() {
            s.push_str(&format!("\n======== {} ========\n", view.chain_label()));
            s.push_str(&chain_show_text(&view));
        }
    } else {
        s.push_str(&chain_show_text(m));
    }
    s
}

fn chain_show_text(m: &Manifest) -> String {
    let mut s = String::new();
    if let Some(safe) = &m.safe {
        s.push_str("\nSafe owners:\n");
        for o in &safe.owners {
            s.push_str(&format!("  {}\n", o.to_checksum(None)));
        }
    }
    s.push_str("\nContracts:\n");
    for c in m.contracts.values() {
        let proxy = match &c.proxy {
            ProxyKind::None => String::new(),
            ProxyKind::Uups => ", UUPS proxy".into(),
            ProxyKind::Transparent { proxy_admin } => {
                format!(
                    ", transparent proxy, ProxyAdmin {}",
                    proxy_admin.to_checksum(None)
                )
            }
            ProxyKind::Beacon { beacon } => {
                format!(", beacon proxy, beacon {}", beacon.to_checksum(None))
            }
        };
        let upgrade = c
            .upgrade_call
            .map(|u| format!(", upgrades with {}", u.signature()))
            .unwrap_or_default();
        s.push_str(&format!(
            "  {:<12}{}{proxy}{upgrade}\n",
            c.id,
            c.address.to_checksum(None)
        ));
    }
    s.push_str("\nActions:\n");
    for a in &m.actions {
        s.push_str(&format!("  {} — {}\n", a.id, a.title));
        s.push_str(&format!(
            "      {}.{} via {}\n",
            a.contract,
            a.call_signature(),
            a.via.as_str()
        ));
        for (n, c) in &a.args {
            s.push_str(&format!("      arg {n}: {}\n", constraint_text(c)));
        }
        s.push_str(&format!("      value: {}\n", constraint_text(&a.value)));
        if let Some(h) = a.implementation_codehash {
            s.push_str(&format!("      implementation code hash: {h:#x}\n"));
        }
        if a.allow_safe_tx_gas {
            s.push_str("      CRITICAL RISK: allows non-zero safeTxGas/baseGas (the inner call may fail while the nonce is spent)\n");
        }
        for e in &a.expect {
            let kind = match e.lhs {
                ExpectLhs::Slot(_) => "EIP-1967 slot",
                ExpectLhs::Call { .. } => "eth_call",
            };
            s.push_str(&format!("      expect: {} ({kind})\n", e.text));
        }
    }
    s
}
