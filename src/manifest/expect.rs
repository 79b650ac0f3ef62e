//! Post-conditions (`expect = ["paused() == true", "implementation == 0x…"]`), parsed and typed at load
//! time so that a typo is found during review, not after the pause is mined.

use alloy::dyn_abi::{DynSolType, DynSolValue, Specifier};
use alloy::json_abi::{Function, JsonAbi};
use alloy::primitives::{b256, B256};

/// An EIP-1967 proxy slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySlot {
    /// `eip1967.proxy.implementation` - 1.
    Implementation,
    /// `eip1967.proxy.admin` - 1.
    Admin,
    /// `eip1967.proxy.beacon` - 1.
    Beacon,
}

impl ProxySlot {
    /// The storage slot.
    pub fn slot(self) -> B256 {
        match self {
            ProxySlot::Implementation => {
                b256!("360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc")
            }
            ProxySlot::Admin => {
                b256!("b53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103")
            }
            ProxySlot::Beacon => {
                b256!("a3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50")
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            ProxySlot::Implementation => "implementation",
            ProxySlot::Admin => "admin",
            ProxySlot::Beacon => "beacon",
        }
    }
}

/// What a post-condition reads.
#[derive(Debug, Clone)]
pub enum ExpectLhs {
    /// A view function of the contract, called with `eth_call`.
    Call {
        /// The function (exactly one output).
        function: Function,
        /// Its arguments.
        args: Vec<DynSolValue>,
    },
    /// An EIP-1967 slot of the proxy, read as an address.
    Slot(ProxySlot),
}

/// The comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// One post-condition.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// As written.
    pub text: String,
    /// What is read.
    pub lhs: ExpectLhs,
    /// How it is compared.
    pub op: ExpectOp,
    /// The expected value, typed as the left side's output.
    pub rhs: DynSolValue,
}

/// Parses `LHS == RHS` / `LHS != RHS` against a contract's ABI. Errors are (message, hint).
pub(crate) fn parse_expectation(
    text: &str,
    abi: &JsonAbi,
    is_proxy: bool,
) -> Result<Expectation, (String, String)> {
    let example = "write e.g. \"paused() == true\" or \"implementation == 0x…\"";
    let (lhs_s, op, rhs_s) = if let Some((l, r)) = text.split_once("==") {
        (l, ExpectOp::Eq, r)
    } else if let Some((l, r)) = text.split_once("!=") {
        (l, ExpectOp::Ne, r)
    } else {
        return Err((
            format!("post-condition {text:?} has no `==` or `!=`"),
            example.into(),
        ));
    };
    let lhs_s = lhs_s.trim();
    let rhs_s = rhs_s.trim();
    if rhs_s.is_empty() || lhs_s.is_empty() {
        return Err((
            format!("post-condition {text:?} is missing a side"),
            example.into(),
        ));
    }
    let slot = match lhs_s {
        "implementation" => Some(ProxySlot::Implementation),
        "admin" => Some(ProxySlot::Admin),
        "beacon" => Some(ProxySlot::Beacon),
        _ => None,
    };
    let (lhs, out_ty) = if let Some(slot) = slot {
        if !is_proxy {
            return Err((
                format!("`{}` reads an EIP-1967 proxy slot, but this contract is not a proxy", slot.name()),
                "set `proxy = \"transparent\" | \"uups\" | \"beacon\"` on the contract, or check a view function instead".into(),
            ));
        }
        (ExpectLhs::Slot(slot), DynSolType::Address)
    } else {
        let (name, rest) = lhs_s.split_once('(').ok_or_else(|| {
            (
                format!("{lhs_s:?} is neither a view call like `paused()` nor implementation/admin/beacon"),
                example.to_string(),
            )
        })?;
        let inner = rest.strip_suffix(')').ok_or_else(|| {
            (
                format!("{lhs_s:?} is missing its closing `)`"),
                example.to_string(),
            )
        })?;
        let name = name.trim();
        let arg_texts: Vec<&str> = if inner.trim().is_empty() {
            Vec::new()
        } else {
            inner.split(',').map(str::trim).collect()
        };
        let candidates: Vec<&Function> = abi
            .functions()
            .filter(|f| f.name == name && f.inputs.len() == arg_texts.len())
            .collect();
        let function = match candidates.as_slice() {
            [f] => (*f).clone(),
            [] => {
                return Err((
                    format!(
                        "no function `{name}` with {} argument(s) in this contract's abi",
                        arg_texts.len()
                    ),
                    format!(
                        "add e.g. \"function {name}() view returns (bool)\" to the contract's abi"
                    ),
                ))
            }
            _ => {
                return Err((
                    format!(
                        "`{name}` with {} argument(s) is ambiguous in this contract's abi",
                        arg_texts.len()
                    ),
                    "remove the overload from the abi or check another function".into(),
                ))
            }
        };
        if function.outputs.len() != 1 {
            return Err((
                format!("`{}` returns {} values; a post-condition needs exactly one", function.signature(), function.outputs.len()),
                format!("write its return type in the abi, e.g. \"function {name}() view returns (bool)\""),
            ));
        }
        let mut args = Vec::new();
        for (param, t) in function.inputs.iter().zip(&arg_texts) {
            let ty = param
                .resolve()
                .map_err(|e| (format!("bad type in abi: {e}"), String::new()))?;
            let role = match &ty {
                alloy::dyn_abi::DynSolType::FixedBytes(32) if t.starts_with("role(") => {
                    super::role_value(t)
                        .map(|(_, v)| alloy::dyn_abi::DynSolValue::FixedBytes(v, 32))
                }
                _ => None,
            };
            let v = role
                .map(Ok)
                .unwrap_or_else(|| ty.coerce_str(t))
                .map_err(|_| {
                    (
                        format!("argument {t:?} does not fit {}", ty.sol_type_name()),
                        format!("write a {} literal", ty.sol_type_name()),
                    )
                })?;
            args.push(v);
        }
        let out_ty = function.outputs[0]
            .resolve()
            .map_err(|e| (format!("bad output type in abi: {e}"), String::new()))?;
        (ExpectLhs::Call { function, args }, out_ty)
    };
    let rhs = out_ty.coerce_str(rhs_s).map_err(|_| {
        (
            format!(
                "expected value {rhs_s:?} does not fit {}",
                out_ty.sol_type_name()
            ),
            format!("write a {} literal", out_ty.sol_type_name()),
        )
    })?;
    Ok(Expectation {
        text: text.to_string(),
        lhs,
        op,
        rhs,
    })
}
