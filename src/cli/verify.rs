//! `breakglass verify`: decode a transaction from anywhere and check it against the manifest.

use super::common::{decode_error, parse_addr, parse_hex, parse_u256, print_report, usage};
use super::{CliError, Ctx, ExitCode};
use crate::manifest::trust::{self};
use crate::manifest::Manifest;
use crate::policy::{self, Report};
use crate::safe::{Operation, SafeTxFields};
use alloy::dyn_abi::{DynSolType, JsonAbiExt, Specifier};
use alloy::json_abi::{Function, Param};
use alloy::primitives::{Bytes, U256};
use clap::Args;
use serde::Deserialize;
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuilderFile {
    #[serde(default)]
    chain_id: Option<String>,
    #[serde(default)]
    meta: Option<BuilderMeta>,
    transactions: Vec<BuilderTx>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuilderMeta {
    #[serde(default)]
    created_from_safe_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuilderTx {
    to: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    contract_method: Option<BuilderMethod>,
    #[serde(default)]
    contract_inputs_values: Option<serde_json::Map<String, serde_json::Value>>,
    /// 0 (CALL) or 1 (DELEGATECALL), as a number or a string; honoured, never ignored.
    #[serde(default)]
    operation: Option<serde_json::Value>,
}

/// A Builder transaction's `operation`: absent means CALL; 0/1 as a number or a string; anything else is
/// refused (the file says something breakglass would otherwise not judge).
fn builder_operation(i: usize, t: &BuilderTx) -> Result<Operation, CliError> {
    let bad = |shown: String| {
        CliError::new(
            "bad_builder_json",
            format!("transaction {i}: operation {shown} is neither 0 (CALL) nor 1 (DELEGATECALL)"),
        )
        .code(ExitCode::Refused)
        .hint("do not sign this file; ask for it again from its source")
    };
    let n = match &t.operation {
        None | Some(serde_json::Value::Null) => return Ok(Operation::Call),
        Some(serde_json::Value::Number(n)) => n.as_u64().ok_or_else(|| bad(n.to_string()))?,
        Some(serde_json::Value::String(s)) => {
            s.trim().parse::<u64>().map_err(|_| bad(format!("{s:?}")))?
        }
        Some(other) => return Err(bad(other.to_string())),
    };
    u8::try_from(n)
        .ok()
        .and_then(Operation::from_u8)
        .ok_or_else(|| bad(n.to_string()))
}

#[derive(Debug, Deserialize)]
struct BuilderMethod {
    name: String,
    inputs: Vec<BuilderInput>,
}

#[derive(Debug, Deserialize)]
struct BuilderInput {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// A Builder transaction's calldata. When a file carries both raw `data` and `contractMethod` (which is
/// what Safe{Wallet} displays), they must encode the same call: a file whose display disagrees with its
/// bytes is refused.
fn builder_calldata(i: usize, t: &BuilderTx) -> Result<Bytes, CliError> {
    let raw = match &t.data {
        Some(d) if !d.is_empty() && d != "0x" => {
            Some(parse_hex(d, &format!("transaction {i} data"))?)
        }
        _ => None,
    };
    let method = if t.contract_method.is_some() {
        Some(builder_method_calldata(i, t)?)
    } else {
        None
    };
    match (raw, method) {
        (Some(r), Some(m)) if r != m => Err(CliError::new(
            "bad_builder_json",
            format!("transaction {i}: its raw data (selector 0x{}) does not encode its contractMethod (selector 0x{}): what Safe{{Wallet}} shows is not what would be signed", alloy::hex::encode(r.get(..4).unwrap_or_default()), alloy::hex::encode(m.get(..4).unwrap_or_default())),
        )
        .code(ExitCode::Refused)
        .hint("do not sign this file; ask for it again from its source")),
        (Some(r), _) => Ok(r),
        (None, Some(m)) => Ok(m),
        (None, None) => Ok(Bytes::new()),
    }
}

fn builder_method_calldata(i: usize, t: &BuilderTx) -> Result<Bytes, CliError> {
    let bad = |msg: String| {
        CliError::new("bad_builder_json", format!("transaction {i}: {msg}")).code(ExitCode::Refused)
    };
    match &t.contract_method {
        Some(method) => {
            let mut inputs = Vec::new();
            let mut values = Vec::new();
            let given = t.contract_inputs_values.clone().unwrap_or_default();
            for inp in &method.inputs {
                let ty = DynSolType::parse(&inp.ty)
                    .map_err(|e| bad(format!("type {:?}: {e}", inp.ty)))?;
                let raw = given
                    .get(&inp.name)
                    .ok_or_else(|| bad(format!("no value for input {:?}", inp.name)))?;
                let text = match raw {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                values.push(
                    ty.coerce_str(&text)
                        .map_err(|e| bad(format!("input {:?} = {text:?}: {e}", inp.name)))?,
                );
                inputs.push(Param {
                    ty: inp.ty.clone(),
                    name: inp.name.clone(),
                    components: vec![],
                    internal_type: None,
                });
            }
            let f = Function {
                name: method.name.clone(),
                inputs,
                outputs: vec![],
                state_mutability: alloy::json_abi::StateMutability::NonPayable,
            };
            for p in &f.inputs {
                p.resolve().map_err(|e| bad(e.to_string()))?;
            }
            f.abi_encode_input(&values)
                .map(Bytes::from)
                .map_err(|e| bad(e.to_string()))
        }
        _ => Ok(Bytes::new()),
    }
}

fn from_builder_json(m: &Manifest, path: &PathBuf, a: &VerifyArgs) -> Result<Report, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::new("unreadable", format!("{}: {e}", path.display())))?;
    let f: BuilderFile = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::new(
            "bad_builder_json",
            format!(
                "{} is not a Safe Transaction Builder file: {e}",
                path.display()
            ),
        )
        .code(ExitCode::Refused)
    })?;
    let chain_id = match (a.chain_id, &f.chain_id) {
        (Some(c), _) => c,
        (None, Some(c)) => c.parse::<u64>().map_err(|_| {
            CliError::new("bad_builder_json", format!("chainId {c:?} is not a number"))
                .code(ExitCode::Refused)
        })?,
        (None, None) => m.chain_id,
    };
    let safe = match (
        &a.safe,
        f.meta
            .as_ref()
            .and_then(|mm| mm.created_from_safe_address.clone()),
    ) {
        (Some(s), _) => parse_addr(s, "--safe")?,
        (None, Some(s)) => parse_addr(&s, "meta.createdFromSafeAddress")?,
        (None, None) => m
            .safe
            .as_ref()
            .map(|s| s.address)
            .ok_or_else(|| usage("the file names no Safe: pass --safe ADDR"))?,
    };
    if f.transactions.is_empty() {
        return Err(
            CliError::new("bad_builder_json", "the batch has no transactions")
                .code(ExitCode::Refused),
        );
    }
    let mut entries = Vec::new();
    for (i, t) in f.transactions.iter().enumerate() {
        entries.push(crate::safe::MultiSendEntry {
            operation: builder_operation(i, t)?,
            to: parse_addr(&t.to, &format!("transaction {i} to"))?,
            value: parse_u256(
                t.value.as_deref().unwrap_or("0"),
                &format!("transaction {i} value"),
            )?,
            data: builder_calldata(i, t)?,
        });
    }
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
