//! `breakglass verify`: decode a transaction from anywhere and check it against the manifest.

use super::common::{parse_addr, parse_hex, parse_u256, print_report, usage};
use super::{CliError, Ctx, ExitCode};
use crate::incident::VerifyInput;
use crate::safe::{Operation, SafeTxFields};
use alloy::primitives::Address;
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

/// Gathers the transaction from the arguments; the session verifies it and records the verdict.
pub fn run(ctx: &Ctx, a: VerifyArgs) -> Result<(), CliError> {
    let session = ctx.session()?;
    let input = input(&a)?;
    let report = session.verify_input(input)?;
    let trust = &session.trust;
    print_report(ctx, &report, trust);
    if report.allowed && !trust.is_trusted() && !a.allow_untrusted {
        Err(CliError::new(
            "untrusted_manifest",
            format!(
                "allowed, but by a manifest that is {}: this is no verdict yet",
                super::common::trust_text(trust)
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

fn opt_addr(s: &Option<String>, flag: &str) -> Result<Option<Address>, CliError> {
    s.as_deref().map(|s| parse_addr(s, flag)).transpose()
}

/// What the arguments name: a bundle, a Builder file, or a transaction given field by field.
fn input(a: &VerifyArgs) -> Result<VerifyInput, CliError> {
    if let Some(path) = &a.bundle {
        let b = crate::bundle::Bundle::read(path).map_err(super::common::bundle_error)?;
        return Ok(VerifyInput::Bundle(Box::new(b)));
    }
    if let Some(path) = &a.safe_json {
        let bytes = std::fs::read(path).map_err(|e| {
            CliError::new("bad_builder_json", format!("{}: {e}", path.display()))
                .code(ExitCode::Refused)
                .hint("do not sign this file; ask for it again from its source")
        })?;
        return Ok(VerifyInput::Builder {
            name: path.display().to_string(),
            bytes,
            chain_id: a.chain_id,
            safe: opt_addr(&a.safe, "--safe")?,
            nonce: parse_u256(&a.nonce, "--nonce")?,
        });
    }
    let (Some(to), Some(data)) = (&a.to, &a.data) else {
        return Err(usage("nothing to verify").hint(
            "pass a bundle file, or --to ADDR --data HEX [--safe ADDR], or --safe-json FILE",
        ));
    };
    let to = parse_addr(to, "--to")?;
    let data = parse_hex(data, "--data")?;
    let value = parse_u256(&a.value, "--value")?;
    let Some(safe) = opt_addr(&a.safe, "--safe")? else {
        if a.operation != 0 {
            return Err(usage(
                "--operation applies to Safe transactions: add --safe ADDR",
            ));
        }
        return Ok(VerifyInput::Plain {
            chain_id: a.chain_id,
            from: opt_addr(&a.from, "--from")?,
            to,
            value,
            data,
        });
    };
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
        gas_token: opt_addr(&a.gas_token, "--gas-token")?.unwrap_or_default(),
        refund_receiver: opt_addr(&a.refund_receiver, "--refund-receiver")?.unwrap_or_default(),
        nonce: parse_u256(&a.nonce, "--nonce")?,
    };
    Ok(VerifyInput::Safe {
        chain_id: a.chain_id,
        safe,
        tx: Box::new(tx),
    })
}
