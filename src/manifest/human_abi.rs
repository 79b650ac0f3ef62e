//! Human-readable function signatures with named struct components, as protocols write them
//! (`function setSlots((bytes32 key, bytes32 value)[] slots)`), which alloy's parser does not take. A
//! small parser for exactly that: the name, the parameters (tuples with components, array suffixes, data
//! locations, names), the mutability, and `returns (…)`. Errors say which parameter is wrong and why.

use alloy::dyn_abi::DynSolType;
use alloy::json_abi::{Function, Param, StateMutability};

/// Parses `function NAME(PARAMS) [MODIFIERS] [returns (PARAMS)]`.
pub(crate) fn parse_function(sig: &str) -> Result<Function, String> {
    let s = sig.trim();
    let s = s
        .strip_prefix("function")
        .ok_or("it does not start with `function`")?
        .trim_start();
    let open = s
        .find('(')
        .ok_or("there is no `(` after the function name")?;
    let name = s[..open].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("{name:?} is not a function name"));
    }
    let close = matching(s, open).ok_or("its parentheses do not balance")?;
    let inputs = params(&s[open + 1..close]).map_err(|e| format!("parameters: {e}"))?;
    let mut rest = s[close + 1..].trim();
    let mut state_mutability = StateMutability::NonPayable;
    let mut outputs = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("returns") {
            let r = r.trim_start();
            if !r.starts_with('(') {
                return Err("`returns` must be followed by `(…)`".into());
            }
            let c = matching(r, 0).ok_or("the parentheses after `returns` do not balance")?;
            outputs = params(&r[1..c]).map_err(|e| format!("returns: {e}"))?;
            rest = r[c + 1..].trim();
            continue;
        }
        let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        match word {
            "view" => state_mutability = StateMutability::View,
            "pure" => state_mutability = StateMutability::Pure,
            "payable" => state_mutability = StateMutability::Payable,
            "nonpayable" | "external" | "public" => {}
            other => return Err(format!("unexpected {other:?} after the parameters")),
        }
        rest = tail.trim();
    }
    Ok(Function {
        name: name.to_string(),
        inputs,
        outputs,
        state_mutability,
    })
}

/// The index of the `)` matching the `(` at `open`.
fn matching(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits on top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn params(s: &str) -> Result<Vec<Param>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_top(s)
        .into_iter()
        .enumerate()
        .map(|(i, p)| param(p.trim()).map_err(|e| format!("parameter {} ({p:?}): {e}", i + 1)))
        .collect()
}

fn param(p: &str) -> Result<Param, String> {
    if p.is_empty() {
        return Err("it is empty".into());
    }
    let (ty, components, rest) = if p.starts_with('(') || p.starts_with("tuple(") {
        let open = p.find('(').unwrap_or(0);
        let close = matching(p, open).ok_or("its parentheses do not balance")?;
        let components = params(&p[open + 1..close])?;
        let after = &p[close + 1..];
        let suffix_len = after
            .char_indices()
            .take_while(|(_, c)| *c == '[' || *c == ']' || c.is_ascii_digit())
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        let suffix = &after[..suffix_len];
        (
            format!("tuple{suffix}"),
            components,
            after[suffix_len..].trim(),
        )
    } else {
        let (ty, rest) = p.split_once(char::is_whitespace).unwrap_or((p, ""));
        DynSolType::parse(ty).map_err(|_| format!("{ty:?} is not a Solidity type"))?;
        (ty.to_string(), Vec::new(), rest.trim())
    };
    let mut words: Vec<&str> = rest.split_whitespace().collect();
    words.retain(|w| !matches!(*w, "memory" | "calldata" | "storage" | "indexed"));
    let name = match words.as_slice() {
        [] => String::new(),
        [n] if n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => n.to_string(),
        other => return Err(format!("unexpected {:?}", other.join(" "))),
    };
    Ok(Param {
        ty,
        name,
        components,
        internal_type: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn named_struct_components() {
        let f = parse_function("function setSlots((bytes32 key, bytes32 value)[] slots)").unwrap();
        assert_eq!(f.signature(), "setSlots((bytes32,bytes32)[])");
        assert_eq!(f.inputs[0].name, "slots");
        assert_eq!(f.inputs[0].components[1].name, "value");
        let g = parse_function(
            "function f(uint256 a, (address who, (uint8 x, bytes y) inner) calldata t) external view returns (bool ok)",
        )
        .unwrap();
        assert_eq!(g.signature(), "f(uint256,(address,(uint8,bytes)))");
        assert_eq!(g.state_mutability, StateMutability::View);
        assert_eq!(g.outputs[0].name, "ok");
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = parse_function("function f(uint257 x)").unwrap_err();
        assert!(e.contains("parameter 1") && e.contains("uint257"), "{e}");
        let e = parse_function("function f((uint8 a, bool) x").unwrap_err();
        assert!(e.contains("balance"), "{e}");
    }
}
