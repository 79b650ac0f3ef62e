//! `breakglass verify`: decode a transaction from anywhere and check it against the manifest.

use super::common::{decode_error, parse_addr, parse_hex, parse_u256, print_report, usage};
use super::{CliError, Ctx, ExitCode};
use crate::manifest::trust::{self};
use crate::manifest::Manifest;
use crate::policy::{self, Report};
use crate::safe::{Operation, SafeTxFields};
use alloy::primitives::U256;
use clap::Args;
use std::path::PathBuf;

/// `breakglass verify …`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A bundle file written by `breakglass compose` (or received from another guardian).
    #[arg(value_name = "BUNDLE", conflicts_with_all = ["to", "safe_json"])]
    pub bundle: Option<PathBuf>,
    /// The Safe the transaction is for (makes it a Safe tx; without it, a plain transaction).
    #[arg(long, value_name = "ADDR")]
    pub safe: Option<String>,
    /// Target address.
    #[arg(long, value_name = "ADDR", requires = "data")]
    pub to: Option<String>,
    /// Calldata, 0x-hex (`0x` for none).
    #[arg(long, value_name = "HEX", requires = "to")]
    pub data: Option<String>,
    /// Wei sent.
    #[arg(long, value_name = "WEI", default_value = "0")]
    pub value: String,
    /// Safe operation: 0 CALL, 1 DELEGATECALL.
    #[arg(long, value_name = "0|1", default_value = "0")]
    pub operation: u8,
    /// Safe nonce (changes the hashes, not the verdict).
    #[arg(long, value_name = "N", default_value = "0")]
    pub nonce: String,
    /// Chain id the transaction is for (default: the manifest's).
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<u64>,
    /// Sender of a plain transaction (shown only).
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// SafeTx safeTxGas.
    #[arg(long, value_name = "N", default_value = "0")]
    pub safe_tx_gas: String,
    /// SafeTx baseGas.
    #[arg(long, value_name = "N", default_value = "0")]
    pub base_gas: String,
    /// SafeTx gasPrice (refund price; must be 0).
    #[arg(long, value_name = "WEI", default_value = "0")]
    pub gas_price: String,
    /// SafeTx gasToken (must be zero).
    #[arg(long, value_name = "ADDR")]
    pub gas_token: Option<String>,
    /// SafeTx refundReceiver (must be zero).
    #[arg(long, value_name = "ADDR")]
    pub refund_receiver: Option<String>,
    /// A Safe{Wallet} Transaction Builder JSON batch file.
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub safe_json: Option<PathBuf>,
    /// Exit 0 for an allowed transaction even when the manifest is not trusted (not pinned, not
    /// approved). Without it such a verdict exits 5.
    #[arg(long)]
    pub allow_untrusted: bool,
}

/// Builds the Safe tx (or plain tx) from flags and verifies it.
pub fn run(ctx: &Ctx, a: VerifyArgs) -> Result<(), CliError> {
    let m = ctx.load_manifest()?;
    let trust = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
    let report = if let Some(path) = &a.bundle {
        let b = crate::bundle::Bundle::read(path).map_err(super::common::bundle_error)?;
        let verified = crate::bundle::verify_bundle(&m, &b).map_err(super::common::bundle_error)?;
        verified.into_report()
    } else if let Some(path) = &a.safe_json {
        from_builder_json(&m, path, &a)?
    } else {
        let (Some(to), Some(data)) = (&a.to, &a.data) else {
            return Err(usage("nothing to verify").hint(
                "pass a bundle file, or --to ADDR --data HEX [--safe ADDR], or --safe-json FILE",
            ));
        };
        let to = parse_addr(to, "--to")?;
        let data = parse_hex(data, "--data")?;
        let value = parse_u256(&a.value, "--value")?;
        let chain_id = a.chain_id.unwrap_or(m.chain_id);
        match &a.safe {
            Some(safe) => {
                let safe = parse_addr(safe, "--safe")?;
                let operation = Operation::from_u8(a.operation).ok_or_else(|| {
                    usage(format!(
                        "--operation {} is neither 0 (CALL) nor 1 (DELEGATECALL)",
                        a.operation
                    ))
                })?;
                let tx = SafeTxFields {
                    to,
                    value,
                    data,
                    operation,
                    safe_tx_gas: parse_u256(&a.safe_tx_gas, "--safe-tx-gas")?,
                    base_gas: parse_u256(&a.base_gas, "--base-gas")?,
                    gas_price: parse_u256(&a.gas_price, "--gas-price")?,
                    gas_token: a
                        .gas_token
                        .as_deref()
                        .map(|s| parse_addr(s, "--gas-token"))
                        .transpose()?
                        .unwrap_or_default(),
                    refund_receiver: a
                        .refund_receiver
                        .as_deref()
                        .map(|s| parse_addr(s, "--refund-receiver"))
                        .transpose()?
                        .unwrap_or_default(),
                    nonce: parse_u256(&a.nonce, "--nonce")?,
                };
                policy::verify_safe_tx(&m, chain_id, safe, &tx).map_err(decode_error)?
            }
            None => {
                if a.operation != 0 {
                    return Err(usage(
                        "--operation applies to Safe transactions: add --safe ADDR",
                    ));
                }
                let from = a
                    .from
                    .as_deref()
                    .map(|s| parse_addr(s, "--from"))
                    .transpose()?;
                policy::verify_plain(&m, chain_id, from, to, value, &data).map_err(decode_error)?
            }
        }
    };
    ctx.audit(
        "verify",
        serde_json::json!({
            "allowed": report.allowed,
            "actions": report.actions,
            "safe_tx_hash": report.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "critical": report.criticals().map(|f| f.code).collect::<Vec<_>>(),
            "manifest": report.manifest_hash,
        }),
    )?;
    print_report(ctx, &report, &trust);
    if report.allowed && !trust.is_trusted() && !a.allow_untrusted {
        Err(CliError::new(
            "untrusted_manifest",
            format!(
                "allowed, but by a manifest that is {}: this is no verdict yet",
                super::common::trust_text(&trust)
            ),
        )
        .code(ExitCode::Untrusted)
        .hint("review and pin the manifest (`breakglass manifest pin`, or --pin 0x<hash>), or pass --allow-untrusted to accept the manifest as it is")
        .quiet_in_json())
    } else if report.allowed {
        Ok(())
    } else {
        Err(
            CliError::new("refused", "verification refused: see the findings above")
                .code(ExitCode::Refused)
                .quiet_in_json(),
        )
    }
}

/// A Safe Transaction Builder file's error: one kind and one exit code (3) for every problem of the file.
fn builder_error(path: &std::path::Path, e: impl std::fmt::Display) -> CliError {
    CliError::new("bad_builder_json", format!("{}: {e}", path.display()))
        .code(ExitCode::Refused)
        .hint("do not sign this file; ask for it again from its source")
}

fn from_builder_json(m: &Manifest, path: &PathBuf, a: &VerifyArgs) -> Result<Report, CliError> {
    let bytes = std::fs::read(path).map_err(|e| builder_error(path, e))?;
    let batch = crate::builder::parse(&bytes).map_err(|e| builder_error(path, e))?;
    let chain_id = a.chain_id.or(batch.chain_id).unwrap_or(m.chain_id);
    let safe = match (&a.safe, batch.safe) {
        (Some(s), _) => parse_addr(s, "--safe")?,
        (None, Some(s)) => s,
        (None, None) => {
            return Err(CliError::new(
                "bad_builder_json",
                format!(
                    "{} names no Safe (meta.createdFromSafeAddress is empty): pass --safe ADDR; the file itself need not change",
                    path.display()
                ),
            )
            .code(ExitCode::Refused))
        }
    };
    let mut entries = batch.entries;
    let nonce = parse_u256(&a.nonce, "--nonce")?;
    // As Safe{Wallet} does: one transaction is a plain CALL; several are a MultiSendCallOnly batch.
    let tx = if entries.len() == 1 {
        let e = entries.remove(0);
        SafeTxFields::new(e.to, e.value, e.data, e.operation, nonce)
    } else {
        let ms = m
            .safe
            .as_ref()
            .map(|s| s.multisend_call_only)
            .ok_or_else(|| {
                usage("a batch needs the manifest's [safe] (for its MultiSendCallOnly)")
            })?;
        SafeTxFields::new(
            ms,
            U256::ZERO,
            crate::safe::multisend_calldata(&entries),
            Operation::DelegateCall,
            nonce,
        )
    };
    policy::verify_safe_tx(m, chain_id, safe, &tx).map_err(decode_error)
}
