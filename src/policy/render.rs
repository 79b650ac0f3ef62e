//! The report as text for a person: verdict first, critical findings at the top, the hashes to compare
//! with the Ledger screen, then the call tree with a verdict on every line.

use super::{Report, Severity, TxContext, Verdict};
use crate::decode::{CallNode, Decoded};
use crate::manifest::show_value;
use crate::safe::Operation;
use alloy::primitives::B256;

/// `0x` + hex in groups of 8, for comparing with a device screen.
pub fn grouped_hex(h: &B256) -> String {
    let hex = alloy::hex::encode(h);
    let groups: Vec<&str> = (0..hex.len())
        .step_by(8)
        .filter_map(|i| hex.get(i..i + 8))
        .collect();
    format!("0x{}", groups.join(" "))
}

fn node_line(r: &Report, n: &CallNode, depth: usize, out: &mut String) {
    let indent = "    ".repeat(depth);
    let op = match n.operation {
        Operation::Call => "CALL",
        Operation::DelegateCall => "DELEGATECALL",
    };
    let m_contract = match &n.decoded {
        Decoded::Function {
            contract: Some(c), ..
        } => format!("{c} "),
        _ => String::new(),
    };
    let what = match &n.decoded {
        Decoded::Empty => "(no calldata)".to_string(),
        Decoded::Function { signature, .. } => signature.clone(),
        Decoded::Unknown { selector, args } => format!(
            "UNKNOWN selector 0x{} with {} argument bytes",
            alloy::hex::encode(selector),
            args.len()
        ),
    };
    let verdict = match r.verdicts.get(&n.path) {
        Some(Verdict::Allowed { action, .. }) => format!("ALLOWED  {action}"),
        Some(Verdict::Structural { what }) => format!("wrapper  {what}"),
        Some(Verdict::Refused { reason }) => format!("REFUSED  {reason}"),
        None => "?".to_string(),
    };
    out.push_str(&format!(
        "{indent}[{}] {op} {m_contract}{} {what}{}\n",
        n.path,
        n.to.to_checksum(None),
        if n.value.is_zero() {
            String::new()
        } else {
            format!("  value {} wei", n.value)
        }
    ));
    out.push_str(&format!("{indent}      -> {verdict}\n"));
    if let Decoded::Function { args, .. } = &n.decoded {
        for a in args {
            let mut v = show_value(&a.value);
            if v.len() > 140 {
                v = format!("{}… ({} chars)", &v[..120], v.len());
            }
            out.push_str(&format!("{indent}      {} {} = {v}\n", a.ty, a.name));
        }
    }
    if let Decoded::Unknown { args, .. } = &n.decoded {
        if !args.is_empty() {
            let hex = alloy::hex::encode(args);
            for chunk in hex.as_bytes().chunks(64) {
                out.push_str(&format!(
                    "{indent}      {}\n",
                    String::from_utf8_lossy(chunk)
                ));
            }
        }
    }
    if let Some(id) = &n.timelock_operation_id {
        out.push_str(&format!("{indent}      timelock operation id {id:#x}\n"));
    }
    if let Some(Verdict::Allowed { checks, .. }) = r.verdicts.get(&n.path) {
        for c in checks {
            out.push_str(&format!("{indent}      ok: {c}\n"));
        }
    }
    for c in &n.children {
        node_line(r, c, depth + 1, out);
    }
}

/// Renders the report.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let crit = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    let refused = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Refused)
        .count();
    if r.allowed {
        out.push_str(&format!(
            "ALLOWED: {} (manifest {}, {})\n",
            r.actions.join(", "),
            r.manifest,
            r.manifest_hash
        ));
    } else {
        out.push_str(&format!(
            "REFUSED: {crit} critical, {refused} refused (manifest {}, {})\n",
            r.manifest, r.manifest_hash
        ));
    }
    for f in &r.findings {
        let label = match f.severity {
            Severity::Critical => "CRITICAL",
            Severity::Refused => "REFUSED ",
            Severity::Warning => "WARNING ",
            Severity::Info => "info    ",
        };
        let at = f
            .path
            .as_ref()
            .map(|p| format!("[{p}] "))
            .unwrap_or_default();
        out.push_str(&format!("  {label} {at}{}\n", f.message));
    }
    out.push('\n');
    match &r.context {
        TxContext::Safe { safe, tx, hashes } => {
            out.push_str(&format!(
                "Safe transaction on Safe {} (chain {}), nonce {}, operation {}\n",
                safe.to_checksum(None),
                r.chain_id,
                tx.nonce,
                match tx.operation {
                    Operation::Call => "CALL",
                    Operation::DelegateCall => "DELEGATECALL",
                }
            ));
            out.push_str(&format!(
                "Gas fields: safeTxGas {}, baseGas {}, gasPrice {}, gasToken {}, refundReceiver {}\n",
                tx.safe_tx_gas,
                tx.base_gas,
                tx.gas_price,
                tx.gas_token.to_checksum(None),
                tx.refund_receiver.to_checksum(None)
            ));
            out.push_str("Compare with the Ledger screen:\n");
            out.push_str(&format!(
                "  Domain hash   {}\n",
                grouped_hex(&hashes.domain_separator)
            ));
            out.push_str(&format!(
                "  Message hash  {}\n",
                grouped_hex(&hashes.message_hash)
            ));
            out.push_str(&format!(
                "  safeTxHash    {}\n",
                grouped_hex(&hashes.safe_tx_hash)
            ));
        }
        TxContext::Plain { from, fee } => {
            out.push_str(&format!(
                "Transaction on chain {}{}\n",
                r.chain_id,
                from.map(|f| format!(" from {}", f.to_checksum(None)))
                    .unwrap_or_default()
            ));
            if let Some(f) = fee {
                out.push_str(&format!(
                    "Fee: at most {} (gas limit {} × max fee {} wei per gas, priority {} wei); limit {}\n",
                    f.max_total_eth,
                    f.gas_limit,
                    f.max_fee_per_gas,
                    f.max_priority_fee_per_gas,
                    crate::manifest::format_eth(f.limit_wei)
                ));
            }
        }
    }
    out.push_str("\nCalls:\n");
    node_line(r, &r.tree, 0, &mut out);
    out
}
