//! Safe Transaction Builder files, read as the Builder itself reads them. Real files (exported by
//! Safe{Wallet}, or written by protocol ops scripts) give values in several shapes, and a guardian handed
//! one mid-incident must get a verdict, not a parse error:
//! - `chainId` as a string, a number, or empty (then it comes from the manifest or the command line);
//! - the Safe in `meta.createdFromSafeAddress`, or (when that is empty) in a top-level `safeAddress`/`safe`;
//! - `contractInputsValues` with array and tuple values as JSON-quoted strings (`"[\"0xab…\"]"`, which
//!   the Builder `JSON.parse`s), as JSON arrays/objects, or as Solidity literals (`[0xab, 0xcd]`);
//! - `tuple` / `tuple[]` inputs with their `components`;
//! - a `contractMethod` without a `name` when raw `data` is present (the data is what runs);
//! - `operation` 0 or 1 (number or string).
//!
//! When a file carries both raw `data` and a `contractMethod` (what Safe{Wallet} displays), they must
//! encode the same call: a file whose display disagrees with its bytes is refused.

use crate::safe::{MultiSendEntry, Operation};
use alloy::dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier};
use alloy::json_abi::{Function, Param, StateMutability};
use alloy::primitives::{Address, Bytes, U256};
use serde::Deserialize;
use serde_json::Value;

/// Why a Builder file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuilderError {
    /// Not JSON of the Builder's shape.
    #[error("not a Safe Transaction Builder file: {0}")]
    NotBuilder(String),
    /// A field of the file, or of one transaction, is wrong.
    #[error("{}{message}", .tx.map(|i| format!("transaction {i}: ")).unwrap_or_default())]
    Invalid {
        /// The transaction (index in `transactions`), if the problem is in one.
        tx: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The displayed method and the raw data disagree.
    #[error("transaction {tx}: its raw data (selector 0x{data_selector}) does not encode its contractMethod (selector 0x{method_selector}): what Safe{{Wallet}} shows is not what would be signed")]
    DisplayMismatch {
        /// The transaction.
        tx: usize,
        /// Selector of the raw data.
        data_selector: String,
        /// Selector of the displayed method.
        method_selector: String,
    },
}

fn invalid(tx: Option<usize>, message: impl Into<String>) -> BuilderError {
    BuilderError::Invalid {
        tx,
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    #[serde(default)]
    chain_id: Option<Value>,
    #[serde(default)]
    meta: Option<RawMeta>,
    #[serde(default)]
    safe_address: Option<String>,
    #[serde(default)]
    safe: Option<String>,
    transactions: Vec<RawTx>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    created_from_safe_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTx {
    to: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    contract_method: Option<RawMethod>,
    #[serde(default)]
    contract_inputs_values: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    operation: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawMethod {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    inputs: Vec<RawInput>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawInput {
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    components: Option<Vec<RawInput>>,
}

/// A Builder file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderBatch {
    /// The chain, when the file names one.
    pub chain_id: Option<u64>,
    /// The Safe, when the file names one.
    pub safe: Option<Address>,
    /// The transactions, as MultiSend entries.
    pub entries: Vec<MultiSendEntry>,
}

fn parse_address(s: &str, tx: Option<usize>, what: &str) -> Result<Address, BuilderError> {
    crate::manifest::parse_address_strict(s.trim())
        .map_err(|(m, _)| invalid(tx, format!("{what}: {m}")))
}

fn parse_uint(v: &Value, tx: Option<usize>, what: &str) -> Result<U256, BuilderError> {
    let text = match v {
        Value::String(s) if s.trim().is_empty() => return Ok(U256::ZERO),
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return Ok(U256::ZERO),
        other => return Err(invalid(tx, format!("{what} {other} is not a number"))),
    };
    let parsed = if let Some(h) = text.strip_prefix("0x") {
        U256::from_str_radix(h, 16)
    } else {
        U256::from_str_radix(&text, 10)
    };
    parsed.map_err(|_| invalid(tx, format!("{what} {text:?} is not a number")))
}

/// Parses a Builder file.
pub fn parse(bytes: &[u8]) -> Result<BuilderBatch, BuilderError> {
    let f: RawFile =
        serde_json::from_slice(bytes).map_err(|e| BuilderError::NotBuilder(e.to_string()))?;
    let chain_id = match &f.chain_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => {
            let n = parse_uint(v, None, "chainId")?;
            Some(u64::try_from(n).map_err(|_| invalid(None, format!("chainId {n} is too large")))?)
        }
    };
    let named = |s: &Option<String>| {
        s.as_ref()
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
    };
    let safe = match named(
        &f.meta
            .as_ref()
            .and_then(|m| m.created_from_safe_address.clone()),
    )
    .or_else(|| named(&f.safe_address))
    .or_else(|| named(&f.safe))
    {
        Some(s) => Some(parse_address(&s, None, "the Safe address")?),
        None => None,
    };
    if f.transactions.is_empty() {
        return Err(invalid(None, "the batch has no transactions"));
    }
    let mut entries = Vec::with_capacity(f.transactions.len());
    for (i, t) in f.transactions.iter().enumerate() {
        entries.push(MultiSendEntry {
            operation: operation(i, t)?,
            to: parse_address(&t.to, Some(i), "to")?,
            value: match &t.value {
                Some(v) => parse_uint(v, Some(i), "value")?,
                None => U256::ZERO,
            },
            data: calldata(i, t)?,
        });
    }
    Ok(BuilderBatch {
        chain_id,
        safe,
        entries,
    })
}

/// A transaction's `operation`: absent means CALL; 0/1 as a number or a string; anything else is refused.
fn operation(i: usize, t: &RawTx) -> Result<Operation, BuilderError> {
    let bad = |shown: String| {
        invalid(
            Some(i),
            format!("operation {shown} is neither 0 (CALL) nor 1 (DELEGATECALL)"),
        )
    };
    let n = match &t.operation {
        None | Some(Value::Null) => return Ok(Operation::Call),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(n.to_string()))?,
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad(format!("{s:?}")))?,
        Some(other) => return Err(bad(other.to_string())),
    };
    u8::try_from(n)
        .ok()
        .and_then(Operation::from_u8)
        .ok_or_else(|| bad(n.to_string()))
}

fn calldata(i: usize, t: &RawTx) -> Result<Bytes, BuilderError> {
    let raw = match &t.data {
        Some(d) if !d.trim().is_empty() && d.trim() != "0x" => Some(
            d.trim()
                .parse::<Bytes>()
                .map_err(|_| invalid(Some(i), "data is not hex"))?,
        ),
        _ => None,
    };
    let method = match &t.contract_method {
        Some(m) => match (&m.name, &raw) {
            // A method without a name: the raw data is what runs (and what is judged).
            (None, Some(_)) => None,
            (None, None) => return Err(invalid(
                Some(i),
                "contractMethod has no name and there is no raw data: nothing says what to call",
            )),
            (Some(name), _) => Some(method_calldata(i, name, m, t)?),
        },
        None => None,
    };
    match (raw, method) {
        (Some(r), Some(m)) if r != m => Err(BuilderError::DisplayMismatch {
            tx: i,
            data_selector: alloy::hex::encode(r.get(..4).unwrap_or_default()),
            method_selector: alloy::hex::encode(m.get(..4).unwrap_or_default()),
        }),
        (Some(r), _) => Ok(r),
        (None, Some(m)) => Ok(m),
        (None, None) => Ok(Bytes::new()),
    }
}

fn to_param(p: &RawInput) -> Param {
    Param {
        ty: p.ty.trim().to_string(),
        name: p.name.clone(),
        components: p
            .components
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(to_param)
            .collect(),
        internal_type: None,
    }
}

fn method_calldata(i: usize, name: &str, m: &RawMethod, t: &RawTx) -> Result<Bytes, BuilderError> {
    let given = t.contract_inputs_values.clone().unwrap_or_default();
    let inputs: Vec<Param> = m.inputs.iter().map(to_param).collect();
    let mut values = Vec::with_capacity(inputs.len());
    for p in &inputs {
        let ty = p
            .resolve()
            .map_err(|e| invalid(Some(i), format!("input {:?} type {:?}: {e}", p.name, p.ty)))?;
        let raw = given
            .get(&p.name)
            .ok_or_else(|| invalid(Some(i), format!("no value for input {:?}", p.name)))?;
        values.push(
            json_value(&ty, p, raw)
                .map_err(|e| invalid(Some(i), format!("input {:?} = {raw}: {e}", p.name)))?,
        );
    }
    let f = Function {
        name: name.to_string(),
        inputs,
        outputs: vec![],
        state_mutability: StateMutability::NonPayable,
    };
    f.abi_encode_input(&values)
        .map(Bytes::from)
        .map_err(|e| invalid(Some(i), e.to_string()))
}

/// A JSON value (or a JSON-quoted string holding one, or a Solidity literal) as a value of `ty`.
fn json_value(ty: &DynSolType, p: &Param, v: &Value) -> Result<DynSolValue, String> {
    let composite = matches!(
        ty,
        DynSolType::Array(_) | DynSolType::FixedArray(..) | DynSolType::Tuple(_)
    );
    match v {
        Value::String(s) if composite => match serde_json::from_str::<Value>(s) {
            Ok(inner @ (Value::Array(_) | Value::Object(_))) => json_value(ty, p, &inner),
            _ => ty.coerce_str(s).map_err(|e| e.to_string()),
        },
        Value::Array(items) => match ty {
            DynSolType::Array(inner) => items
                .iter()
                .map(|x| json_value(inner, p, x))
                .collect::<Result<Vec<_>, _>>()
                .map(DynSolValue::Array),
            DynSolType::FixedArray(inner, n) => {
                if items.len() != *n {
                    return Err(format!("{} items where {n} are needed", items.len()));
                }
                items
                    .iter()
                    .map(|x| json_value(inner, p, x))
                    .collect::<Result<Vec<_>, _>>()
                    .map(DynSolValue::FixedArray)
            }
            DynSolType::Tuple(types) => {
                if items.len() != types.len() {
                    return Err(format!(
                        "{} values where the tuple has {} components",
                        items.len(),
                        types.len()
                    ));
                }
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(k, (t, x))| json_value(t, p.components.get(k).unwrap_or(p), x))
                    .collect::<Result<Vec<_>, _>>()
                    .map(DynSolValue::Tuple)
            }
            _ => Err(format!("a list where a {} is needed", ty.sol_type_name())),
        },
        Value::Object(map) => match ty {
            DynSolType::Tuple(types) => {
                if p.components.len() != types.len() {
                    return Err("a tuple given by names needs its components' names".into());
                }
                types
                    .iter()
                    .zip(&p.components)
                    .map(|(t, c)| {
                        let x = map
                            .get(&c.name)
                            .ok_or_else(|| format!("no value for component {:?}", c.name))?;
                        json_value(t, c, x)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(DynSolValue::Tuple)
            }
            _ => Err(format!(
                "an object where a {} is needed",
                ty.sol_type_name()
            )),
        },
        Value::String(s) => ty.coerce_str(s).map_err(|e| e.to_string()),
        Value::Number(n) => ty.coerce_str(&n.to_string()).map_err(|e| e.to_string()),
        Value::Bool(b) => ty
            .coerce_str(if *b { "true" } else { "false" })
            .map_err(|e| e.to_string()),
        Value::Null => Err("no value".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_in_every_shape_encode_alike() {
        let addr = "0x00000000000000000000000000000000000000aa";
        let file = |v: Value| {
            serde_json::json!({
                "chainId": 1,
                "meta": {"createdFromSafeAddress": ""},
                "safeAddress": "0x5AFe00000000000000000000000000000000a11C",
                "transactions": [{
                    "to": addr, "value": "0", "data": null,
                    "contractMethod": {"name": "f", "inputs": [{"name": "xs", "type": "address[]"}]},
                    "contractInputsValues": {"xs": v}
                }]
            })
        };
        let shapes = [
            Value::String(format!("[\"{addr}\",\"{addr}\"]")),
            serde_json::json!([addr, addr]),
            Value::String(format!("[{addr}, {addr}]")),
        ];
        let mut seen = Vec::new();
        for s in shapes {
            let b = parse(serde_json::to_vec(&file(s)).unwrap().as_slice()).unwrap();
            assert_eq!(b.chain_id, Some(1));
            assert!(b.safe.is_some());
            seen.push(b.entries[0].data.clone());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    }
}
