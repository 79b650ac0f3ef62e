//! Raw TOML → validated [`Manifest`], collecting every problem with its position.

use super::constraint::Constraint;
use super::error::{Diags, ManifestError};
use super::expect::parse_expectation;
use super::raw::{RawConstraint, RawLiteral, RawManifest, S};
use super::{
    Action, ActionCall, Contract, Manifest, Playbook, ProxyKind, SafeConfig, SafeVersion,
    TimelockConfig, Via,
};
use alloy::dyn_abi::{DynSolType, DynSolValue, Specifier};
use alloy::json_abi::{Function, JsonAbi};
use alloy::primitives::{Address, B256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// Parses an address, insisting on a valid EIP-55 checksum when the hex is mixed case.
pub(crate) fn parse_address(s: &str) -> Result<Address, (String, String)> {
    let hex = s.strip_prefix("0x").ok_or_else(|| {
        (
            format!("{s:?} is not an address"),
            "write 0x followed by 40 hex digits".to_string(),
        )
    })?;
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err((
            format!("{s:?} is not an address: it contains the non-hex character {bad:?}"),
            "write 0x followed by 40 hex digits (0-9, a-f)".into(),
        ));
    }
    if hex.len() != 40 {
        return Err((
            format!("{s:?} is not an address ({} hex digits)", hex.len()),
            "write 0x followed by 40 hex digits".into(),
        ));
    }
    let mixed =
        hex.chars().any(|c| c.is_ascii_lowercase()) && hex.chars().any(|c| c.is_ascii_uppercase());
    let addr: Address = s
        .parse()
        .map_err(|e| (format!("{s:?} is not an address: {e}"), String::new()))?;
    if mixed && Address::parse_checksummed(s, None).is_err() {
        return Err((
            format!(
                "{s:?} has an invalid EIP-55 checksum: a mistyped address, or one changed by hand"
            ),
            format!(
                "check the address against its source; if it is right, its checksummed form is {}",
                addr.to_checksum(None)
            ),
        ));
    }
    Ok(addr)
}

/// The first meaningful line of a multi-line parser message.
pub(crate) fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && *l != "parser error:")
        .unwrap_or("")
        .to_string()
}

fn parse_b256(s: &str) -> Option<B256> {
    let hex = s.strip_prefix("0x")?;
    if hex.len() != 64 {
        return None;
    }
    s.parse().ok()
}

fn type_hint(ty: &DynSolType) -> String {
    match ty {
        DynSolType::Uint(n) => {
            format!("write an integer from 0 to 2^{n}-1 (large values as a quoted decimal string)")
        }
        DynSolType::Int(n) => format!("write an integer from -2^{} to 2^{}-1", n - 1, n - 1),
        DynSolType::Address => "write 0x followed by 40 hex digits".into(),
        DynSolType::Bool => "write true or false".into(),
        DynSolType::Bytes | DynSolType::FixedBytes(_) => {
            "write 0x-prefixed hex bytes as a string".into()
        }
        other => format!("write a {} value as a string", other.sol_type_name()),
    }
}

/// Turns a TOML literal into a value of the ABI type. Errors are (message, hint), one line each.
pub(crate) fn literal_value(
    ty: &DynSolType,
    lit: &RawLiteral,
) -> Result<DynSolValue, (String, String)> {
    let shown = match lit {
        RawLiteral::Str(s) => format!("{s:?}"),
        other => other.as_text(),
    };
    let name = ty.sol_type_name();
    match (ty, lit) {
        (DynSolType::Address, RawLiteral::Str(s)) => parse_address(s).map(DynSolValue::Address),
        (DynSolType::FixedBytes(32), RawLiteral::Str(s)) if s.starts_with("role(") => {
            super::role_value(s)
                .map(|(_, v)| DynSolValue::FixedBytes(v, 32))
                .ok_or_else(|| {
                    (
                        format!("{shown} is not a role"),
                        "write role(\"PAUSER_ROLE\"): keccak256 of the name, as OpenZeppelin's AccessControl defines it".into(),
                    )
                })
        }
        (DynSolType::Bool, RawLiteral::Bool(b)) => Ok(DynSolValue::Bool(*b)),
        (DynSolType::Bool, _) => Err((format!("{shown} is not a bool"), type_hint(ty))),
        (DynSolType::Uint(_) | DynSolType::Int(_), RawLiteral::Bool(_)) => {
            Err((format!("{shown} is not an integer"), type_hint(ty)))
        }
        (_, RawLiteral::Int(_)) if !matches!(ty, DynSolType::Uint(_) | DynSolType::Int(_)) => {
            Err((
                format!("{shown} is an integer, but the argument is {name}"),
                type_hint(ty),
            ))
        }
        _ => ty
            .coerce_str(&lit.as_text())
            .map_err(|_| (format!("{shown} does not fit {name}"), type_hint(ty))),
    }
}

fn build_constraint(
    d: &mut Diags<'_>,
    raw: &S<RawConstraint>,
    ty: &DynSolType,
    what: &str,
) -> Option<Constraint> {
    let c = raw.get_ref();
    let span = raw.span();
    let set = [
        c.eq.is_some(),
        c.one_of.is_some(),
        c.min.is_some() || c.max.is_some(),
        c.any.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    let hint = "write exactly one of { eq = … }, { one_of = [ … ] }, { min = …, max = … } or { any = true }";
    if set != 1 {
        d.err(
            span,
            format!("{what}: a constraint needs exactly one kind of rule, found {set}"),
            hint,
        );
        return None;
    }
    let lit = |d: &mut Diags<'_>, l: &S<RawLiteral>| match literal_value(ty, l.get_ref()) {
        Ok(v) => Some(v),
        Err((m, h)) => {
            d.err(l.span(), format!("{what}: {m}"), h);
            None
        }
    };
    if let Some(any) = &c.any {
        if !*any.get_ref() {
            d.err(
                any.span(),
                format!("{what}: `any = false` allows nothing"),
                "write { any = true } or a real constraint",
            );
            return None;
        }
        return Some(Constraint::Any);
    }
    if let Some(eq) = &c.eq {
        return lit(d, eq).map(Constraint::Eq);
    }
    if let Some(list) = &c.one_of {
        if list.get_ref().is_empty() {
            d.err(
                list.span(),
                format!("{what}: `one_of` is empty and allows nothing"),
                "list at least one value",
            );
            return None;
        }
        let mut out = Vec::new();
        for l in list.get_ref() {
            out.push(lit(d, l)?);
        }
        return Some(Constraint::OneOf(out));
    }
    if !matches!(ty, DynSolType::Uint(_) | DynSolType::Int(_)) {
        d.err(
            span,
            format!(
                "{what}: min/max only apply to integers, this is {}",
                ty.sol_type_name()
            ),
            "use eq or one_of",
        );
        return None;
    }
    let min = match &c.min {
        Some(l) => Some(lit(d, l)?),
        None => None,
    };
    let max = match &c.max {
        Some(l) => Some(lit(d, l)?),
        None => None,
    };
    if let (Some(lo), Some(hi)) = (&min, &max) {
        if super::constraint::cmp_int(lo, hi) == Some(std::cmp::Ordering::Greater) {
            d.err(
                span,
                format!("{what}: min is above max"),
                "swap min and max",
            );
            return None;
        }
    }
    Some(Constraint::Range { min, max })
}

fn addr_field(d: &mut Diags<'_>, s: &S<String>, what: &str) -> Option<Address> {
    match parse_address(s.get_ref()) {
        Ok(a) if a == Address::ZERO => {
            d.err(
                s.span(),
                format!("{what} is the zero address"),
                "write the real deployed address",
            );
            None
        }
        Ok(a) => Some(a),
        Err((m, h)) => {
            d.err(s.span(), format!("{what}: {m}"), h);
            None
        }
    }
}

/// One human-readable ABI item parsed by alloy, once per distinct text in a manifest: contracts of one
/// protocol list the same `function pause()` again and again. Items alloy does not take are not kept.
fn parsed_abi_item(
    d: &mut Diags<'_>,
    text: &str,
) -> Result<std::rc::Rc<JsonAbi>, alloy::json_abi::parser::Error> {
    if let Some(one) = d.abi_items.get(text) {
        return Ok(one.clone());
    }
    let one = std::rc::Rc::new(JsonAbi::parse([text])?);
    d.abi_items.insert(text.to_string(), one.clone());
    Ok(one)
}

fn parse_human_abi(d: &mut Diags<'_>, items: &[S<String>]) -> Option<Arc<JsonAbi>> {
    // Contracts of one kind list the same items: a list seen whole and clean before gives the same ABI.
    let texts: Vec<String> = items.iter().map(|i| i.get_ref().clone()).collect();
    if let Some(abi) = d.abi_lists.get(&texts) {
        return Some(abi.clone());
    }
    let errors_before = d.list.len();
    let abi = parse_human_abi_uncached(d, items).map(Arc::new);
    if let (Some(abi), true) = (&abi, d.list.len() == errors_before) {
        d.abi_lists.insert(texts, abi.clone());
    }
    abi
}

fn parse_human_abi_uncached(d: &mut Diags<'_>, items: &[S<String>]) -> Option<JsonAbi> {
    {
        {
            let mut abi = JsonAbi::new();
            let mut ok = true;
            for item in items {
                match parsed_abi_item(d, item.get_ref()) {
                    Ok(one) => {
                        for f in one.functions() {
                            if abi.functions().any(|g| g.signature() == f.signature()) {
                                d.err(
                                    item.span(),
                                    format!("function {} is listed twice", f.signature()),
                                    "remove the duplicate",
                                );
                                ok = false;
                            }
                            abi.functions
                                .entry(f.name.clone())
                                .or_default()
                                .push(f.clone());
                        }
                        for e in one.events() {
                            abi.events
                                .entry(e.name.clone())
                                .or_default()
                                .push(e.clone());
                        }
                        for e in one.errors() {
                            abi.errors
                                .entry(e.name.clone())
                                .or_default()
                                .push(e.clone());
                        }
                    }
                    Err(_) if item.get_ref().trim_start().starts_with("function") => {
                        // Named struct components, which alloy's parser does not take.
                        match super::human_abi::parse_function(item.get_ref()) {
                            Ok(f) => {
                                if abi.functions().any(|g| g.signature() == f.signature()) {
                                    d.err(
                                        item.span(),
                                        format!("function {} is listed twice", f.signature()),
                                        "remove the duplicate",
                                    );
                                    ok = false;
                                }
                                abi.functions.entry(f.name.clone()).or_default().push(f);
                            }
                            Err(why) => {
                                d.err(
                                    item.span(),
                                    format!("cannot parse ABI item {:?}: {why}", item.get_ref()),
                                    "write a Solidity signature such as \"function pause()\", \"function paused() view returns (bool)\" or \"function set((bytes32 key, bytes32 value)[] slots)\"",
                                );
                                ok = false;
                            }
                        }
                    }
                    Err(e) => {
                        d.err(
                            item.span(),
                            format!("cannot parse ABI item {:?}: {}", item.get_ref(), first_line(&e.to_string())),
                            "write a Solidity signature such as \"function pause()\" or \"function paused() view returns (bool)\"",
                        );
                        ok = false;
                    }
                }
            }
            // Every type must be a Solidity type (alloy's parser takes `uint257` and fails only when
            // encoding): say which parameter of which signature is wrong, at the item.
            for item in items {
                let Ok(one) = parsed_abi_item(d, item.get_ref()) else {
                    continue;
                };
                if d.abi_items_typed.contains(item.get_ref().as_str()) {
                    continue;
                }
                let errors_before = d.list.len();
                for f in one.functions() {
                    for (k, p) in f.inputs.iter().chain(f.outputs.iter()).enumerate() {
                        if let Err(e) =
                            alloy::dyn_abi::Specifier::<alloy::dyn_abi::DynSolType>::resolve(p)
                        {
                            d.err(
                                item.span(),
                                format!(
                                    "cannot parse ABI item {:?}: parameter {} ({} {}): {}",
                                    item.get_ref(),
                                    k + 1,
                                    p.ty,
                                    p.name,
                                    first_line(&e.to_string())
                                ),
                                "use a Solidity type: uint8…uint256 in steps of 8, bytes1…bytes32, address, bool, string, bytes, arrays and tuples of them",
                            );
                            ok = false;
                        }
                    }
                }
                if d.list.len() == errors_before {
                    d.abi_items_typed.insert(item.get_ref().clone());
                }
            }
            ok.then_some(abi)
        }
    }
}

/// The ABI of a contract from exactly one of `abi`, `abi_json` or `abi_file` (+ `abi_hash`); each parsed
/// once per file however many chains share it.
fn contract_abi(d: &mut Diags<'_>, id: &str, c: &super::raw::RawContract) -> Option<Arc<JsonAbi>> {
    let given = [c.abi.is_some(), c.abi_json.is_some(), c.abi_file.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given > 1 {
        let span = c
            .abi_file
            .as_ref()
            .map(|f| f.span())
            .or(c.abi_json.as_ref().map(|j| j.span()))
            .unwrap_or(0..0);
        d.err(
            span,
            format!("contracts.{id} has more than one of abi, abi_json and abi_file"),
            "keep one of them",
        );
        return None;
    }
    if let (Some(h), None) = (&c.abi_hash, &c.abi_file) {
        d.err(
            h.span(),
            format!("contracts.{id}: abi_hash without abi_file"),
            "add abi_file = \"PATH\" or remove abi_hash",
        );
        return None;
    }
    let span = match (&c.abi, &c.abi_json, &c.abi_file) {
        (Some(a), _, _) => a.span(),
        (_, Some(j), _) => j.span(),
        (_, _, Some(f)) => f.span(),
        _ => return Some(Arc::new(JsonAbi::new())),
    };
    let key = (span.start, span.end);
    if let Some(hit) = d.abi_cache.get(&key) {
        return hit.clone();
    }
    let parsed = match (&c.abi, &c.abi_json, &c.abi_file) {
        (Some(a), _, _) => parse_human_abi(d, a.get_ref()),
        (_, Some(j), _) => parse_json_abi(d, j).map(Arc::new),
        (_, _, Some(f)) => abi_from_file(d, id, f, c.abi_hash.as_ref()).map(Arc::new),
        _ => None,
    };
    d.abi_cache.insert(key, parsed.clone());
    parsed
}

/// The most a storage-layout file may hold.
const MAX_LAYOUT_FILE: u64 = 8 << 20;

/// An upgrade's `storage_layout`: both files read, pinned and parsed.
fn layout_check(
    d: &mut Diags<'_>,
    id: &str,
    l: &super::raw::RawStorageLayout,
) -> Option<super::LayoutCheck> {
    let what = format!("action {id:?}: storage_layout");
    let cur = read_pinned_file(
        d,
        &what,
        "current layout",
        "current_hash",
        &l.current,
        l.current_hash.as_ref(),
        MAX_LAYOUT_FILE,
    );
    let new = read_pinned_file(
        d,
        &what,
        "new layout",
        "new_hash",
        &l.new,
        l.new_hash.as_ref(),
        MAX_LAYOUT_FILE,
    );
    let mut parse = |bytes: Option<Vec<u8>>, f: &S<String>| {
        let bytes = bytes?;
        match crate::layout::StorageLayout::from_json(&bytes) {
            Ok(x) => Some(std::sync::Arc::new(x)),
            Err(e) => {
                d.err(
                    f.span(),
                    format!("{what}: {} is not a storage layout: {e}", f.get_ref()),
                    "write solc's storageLayout output ({ \"storage\": [...], \"types\": {...} }), e.g. from forge inspect CONTRACT storageLayout --json",
                );
                None
            }
        }
    };
    let current = parse(cur, &l.current);
    let new = parse(new, &l.new);
    let current_codehash = match &l.current_codehash {
        Some(h) => match parse_b256(h.get_ref()) {
            Some(b) => Some(b),
            None => {
                d.err(
                    h.span(),
                    format!(
                        "{what}: current_codehash {:?} is not a 32-byte hash",
                        h.get_ref()
                    ),
                    "write keccak256 of the current implementation's runtime code",
                );
                None
            }
        },
        None => None,
    };
    let declared = crate::layout::Declared {
        renames: l
            .renamed
            .iter()
            .map(|(new, old)| (old.get_ref().clone(), new.clone()))
            .collect(),
        retypes: l
            .retyped
            .iter()
            .map(|(var, old)| (var.clone(), old.get_ref().clone()))
            .collect(),
    };
    Some(super::LayoutCheck {
        current_file: l.current.get_ref().clone(),
        new_file: l.new.get_ref().clone(),
        current: current?,
        new: new?,
        current_codehash,
        declared: std::sync::Arc::new(declared),
    })
}

/// The most an ABI file may hold (a large protocol's ABI is a few hundred KiB).
const MAX_ABI_FILE: u64 = 4 << 20;

/// A file named in the manifest (relative to it, inside its folder) whose keccak256 the manifest pins,
/// so the manifest's hash covers its bytes. `what` names the table (e.g. `contracts.pool`), `key` and
/// `hash_key` the fields.
pub(crate) fn read_pinned_file(
    d: &mut Diags<'_>,
    what: &str,
    key: &str,
    hash_key: &str,
    f: &S<String>,
    hash: Option<&S<String>>,
    max: u64,
) -> Option<Vec<u8>> {
    let rel = Path::new(f.get_ref());
    let Some(hash) = hash else {
        d.err(
            f.span(),
            format!("{what}: {key} needs {hash_key}, the keccak256 of the file, so the manifest's hash covers it"),
            format!("add {hash_key} = \"0x…\" (cast keccak \"$(cat {})\" prints it)", f.get_ref()),
        );
        return None;
    };
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        d.err(
            f.span(),
            format!("{what}: {key} {:?} must be a plain relative path inside the manifest's folder", f.get_ref()),
            "put the file beside the manifest (or in a subfolder) and name it relative to the manifest, without ..",
        );
        return None;
    }
    let Some(pinned) = parse_b256(hash.get_ref()) else {
        d.err(
            hash.span(),
            format!(
                "{what}: {hash_key} {:?} is not a 32-byte hash",
                hash.get_ref()
            ),
            "write 0x followed by 64 hex digits: keccak256 of the file's bytes",
        );
        return None;
    };
    let path = d.base_dir.join(rel);
    let bytes = match std::fs::metadata(&path) {
        Ok(md) if md.len() > max => {
            d.err(
                f.span(),
                format!(
                    "{what}: {} is {} bytes, more than a {key} may be ({max})",
                    path.display(),
                    md.len()
                ),
                "point it at the file itself",
            );
            return None;
        }
        Ok(_) => match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                d.err(
                    f.span(),
                    format!("{what}: cannot read {}: {e}", path.display()),
                    "put the file beside the manifest, as pinned",
                );
                return None;
            }
        },
        Err(e) => {
            d.err(
                f.span(),
                format!("{what}: cannot read {}: {e}", path.display()),
                "put the file beside the manifest, as pinned",
            );
            return None;
        }
    };
    let actual = alloy::primitives::keccak256(&bytes);
    if actual != pinned {
        d.err(
            hash.span(),
            format!("{what}: {} has keccak256 {actual:#x}, the manifest pins {pinned:#x}: the {key} changed", f.get_ref()),
            "do not use it: get the reviewed file back, or review the new one and pin its hash in a new manifest",
        );
        return None;
    }
    Some(bytes)
}

fn abi_from_file(
    d: &mut Diags<'_>,
    id: &str,
    f: &S<String>,
    hash: Option<&S<String>>,
) -> Option<JsonAbi> {
    let bytes = read_pinned_file(
        d,
        &format!("contracts.{id}"),
        "abi_file",
        "abi_hash",
        f,
        hash,
        MAX_ABI_FILE,
    )?;
    let v: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            d.err(
                f.span(),
                format!("contracts.{id}: {} is not JSON: {e}", f.get_ref()),
                "write the ABI array, or a compiler artifact with an \"abi\" key",
            );
            return None;
        }
    };
    let abi_v = match v {
        serde_json::Value::Object(mut o) if o.contains_key("abi") => {
            o.remove("abi").unwrap_or_default()
        }
        other => other,
    };
    match serde_json::from_value::<JsonAbi>(abi_v) {
        Ok(abi) => Some(abi),
        Err(e) => {
            d.err(
                f.span(),
                format!("contracts.{id}: {} is not an ABI: {e}", f.get_ref()),
                "write the ABI array, or a compiler artifact with an \"abi\" key",
            );
            None
        }
    }
}

fn parse_json_abi(d: &mut Diags<'_>, raw: &S<String>) -> Option<JsonAbi> {
    match serde_json::from_str::<JsonAbi>(raw.get_ref()) {
        Ok(abi) => Some(abi),
        Err(e) => {
            d.err(raw.span(), format!("cannot parse abi_json: {e}"), "paste the ABI array as solc or a block explorer prints it, or list human-readable signatures in abi = [ … ]");
            None
        }
    }
}

fn find_function(abi: &JsonAbi, wanted: &str) -> Result<Function, (String, String)> {
    let wanted = wanted
        .trim()
        .strip_prefix("function ")
        .unwrap_or(wanted.trim());
    let all: Vec<&Function> = abi.functions().collect();
    let listing = || {
        all.iter()
            .map(|f| f.signature())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if wanted.contains('(') {
        // Already canonical (`pause()`, as most manifests write it): no need to parse it to compare.
        if let Some(f) = all.iter().find(|f| f.signature() == wanted) {
            return Ok((*f).clone());
        }
        let normalized = match Function::parse(wanted) {
            Ok(f) => f.signature(),
            Err(e) => {
                return Err((
                    format!("cannot parse function {wanted:?}: {e}"),
                    "write it as name(type,type), e.g. \"pause()\"".into(),
                ))
            }
        };
        all.iter()
            .find(|f| f.signature() == normalized)
            .map(|f| (*f).clone())
            .ok_or_else(|| {
                (
                    format!("function {normalized} is not in the contract's abi"),
                    format!("use one of: {}; or add it to the abi", listing()),
                )
            })
    } else {
        let named: Vec<&&Function> = all.iter().filter(|f| f.name == wanted).collect();
        match named.as_slice() {
            [f] => Ok((**f).clone()),
            [] => Err((
                format!("function {wanted:?} is not in the contract's abi"),
                format!("use one of: {}; or add it to the abi", listing()),
            )),
            _ => Err((
                format!("function {wanted:?} is overloaded"),
                format!(
                    "write the full signature, one of: {}",
                    named
                        .iter()
                        .map(|f| f.signature())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

/// Names, titles and ids are plain text: a control character (escape sequences, carriage returns,
/// newlines), a bidi control or an invisible character could change what a terminal shows a reviewer
/// (issue 12: a title holding `\r ESC[3A ESC[J` erased the action after it from `manifest show`).
fn plain_text(d: &mut Diags<'_>, span: std::ops::Range<usize>, text: &str, what: &str) {
    if let Some((i, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| crate::text::is_unsafe(*c) || *c == '\n' || *c == '\t')
    {
        let kind = if c.is_control() {
            "a control character"
        } else {
            "a bidi control or invisible character"
        };
        d.err(
            span,
            format!(
                "{what} contains {kind} (U+{:04X} at character {}): it could change what a terminal shows the reviewer",
                c as u32,
                i + 1
            ),
            "remove it: names, titles and ids are plain text",
        );
    }
}

pub(crate) fn validate(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let invalid = |diagnostics| ManifestError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or("");
            let mut d = Diags::new(prefix);
            d.err(
                at..at,
                format!("the manifest is not UTF-8 text (bad byte at offset {at})"),
                "save the file as UTF-8",
            );
            return Err(invalid(d.into_sorted()));
        }
    };
    let mut d = Diags::new(text);
    d.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if declares_version_2(text) {
        let raw: super::raw::RawManifestV2 = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                toml_error(&mut d, &e);
                return Err(invalid(d.into_sorted()));
            }
        };
        let m = super::chains::build_v2(&mut d, &raw, path, super::hash_bytes(bytes));
        return match m {
            Some(m) if d.is_empty() => Ok(m),
            _ => Err(invalid(d.into_sorted())),
        };
    }
    let raw: RawManifest = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            toml_error(&mut d, &e);
            return Err(invalid(d.into_sorted()));
        }
    };
    if *raw.version.get_ref() == 2 {
        d.err(
            raw.version.span(),
            "version 2 must be written as `version = 2` on a line of its own, before any [table]",
            "write version = 2 at the top of the file",
        );
        return Err(invalid(d.into_sorted()));
    }
    let m = build(&mut d, &raw, path, super::hash_bytes(bytes));
    if !d.is_empty() {
        return Err(invalid(d.into_sorted()));
    }
    Ok(m)
}

/// `presign = true` playbooks: a ladder signed in advance can only ever do exactly one thing, so every
/// action must be fully determined: each argument `eq`-constrained, value 0, sent through the Safe, no
/// upgrade, and not a call to the Safe itself (owners, threshold, modules, guard).
fn presign_section(d: &mut Diags<'_>, raw: &RawManifest, actions: &[Action]) {
    let safe = raw
        .safe
        .as_ref()
        .and_then(|s| parse_address(s.get_ref().address.get_ref()).ok());
    for p in &raw.playbooks {
        let p = p.get_ref();
        let Some(flag) = p.presign.as_ref().filter(|b| *b.get_ref()) else {
            continue;
        };
        let id = p.id.get_ref();
        for aid in p.actions.get_ref() {
            let Some(a) = actions.iter().find(|a| &a.id == aid.get_ref()) else {
                continue;
            };
            let why = if matches!(a.call, ActionCall::Upgrade) {
                Some("it is an upgrade".to_string())
            } else if a.via != Via::Safe {
                Some(format!("it goes via {}, not the Safe", a.via.as_str()))
            } else if !matches!(&a.value, Constraint::Eq(alloy::dyn_abi::DynSolValue::Uint(v, _)) if v.is_zero())
            {
                Some("its ETH value is not fixed at 0".to_string())
            } else if let Some((n, _)) =
                a.args.iter().find(|(_, c)| !matches!(c, Constraint::Eq(_)))
            {
                Some(format!("its argument `{n}` is not fixed with eq"))
            } else if raw
                .contracts
                .get(&a.contract)
                .and_then(|c| parse_address(c.get_ref().address.get_ref()).ok())
                .is_some_and(|addr| Some(addr) == safe)
            {
                Some("it calls the Safe itself".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                d.err(
                    flag.span(),
                    format!("playbook {id:?} has presign = true, but its action {:?} is not fully determined: {why}", a.id),
                    "a pre-signed ladder may only ever pause: fix every argument with eq, value 0, no upgrade, no Safe admin call — or remove presign",
                );
            }
        }
    }
}

/// `[[watch]]` rules: each names a kind, a severity and what it watches; everything it names must exist.
fn watch_section(
    d: &mut Diags<'_>,
    raw: &RawManifest,
    contracts: &BTreeMap<String, Contract>,
    playbooks: &[Playbook],
    safe: Option<&super::SafeConfig>,
) -> Vec<crate::watch::WatchRule> {
    use crate::watch::rules::{parse_slot, SafeAspect, Severity, WatchKind, WatchRule};
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for w in &raw.watch {
        let span = w.span();
        let w = w.get_ref();
        let id = w.id.get_ref().clone();
        plain_text(d, w.id.span(), &id, "a watch rule id");
        if id.is_empty() || id.starts_with("builtin:") {
            d.err(
                w.id.span(),
                format!("watch rule id {id:?} is empty or reserved"),
                "ids starting with builtin: name the built-in rules; pick another id",
            );
        }
        if !ids.insert(id.clone()) {
            d.err(
                w.id.span(),
                format!("watch rule {id:?} is defined twice"),
                "give each [[watch]] rule its own id",
            );
        }
        let Some(severity) = Severity::parse(w.severity.get_ref()) else {
            d.err(
                w.severity.span(),
                format!(
                    "watch rule {id}: unknown severity {:?}",
                    w.severity.get_ref()
                ),
                "write critical, warning or info",
            );
            continue;
        };
        if let Some(p) = &w.playbook {
            if !playbooks.iter().any(|pb| &pb.id == p.get_ref()) {
                d.err(
                    p.span(),
                    format!("watch rule {id}: playbook {:?} is not defined", p.get_ref()),
                    "name one of the manifest's [[playbooks]]",
                );
            }
        }
        // The contract the rule is about, when its kind needs one.
        let contract = |d: &mut Diags<'_>| -> Option<(String, &Contract)> {
            let Some(c) = &w.contract else {
                d.err(
                    span.clone(),
                    format!(
                        "watch rule {id}: kind {} needs contract = \"…\"",
                        w.kind.get_ref()
                    ),
                    "name one of the manifest's [contracts.<id>]",
                );
                return None;
            };
            match contracts.get(c.get_ref()) {
                Some(k) => Some((c.get_ref().clone(), k)),
                None => {
                    d.err(
                        c.span(),
                        format!("watch rule {id}: contract {:?} is not defined", c.get_ref()),
                        "name one of the manifest's [contracts.<id>]",
                    );
                    None
                }
            }
        };
        // Fields that belong to other kinds are mistakes, not decoration.
        let stray: Vec<(&str, bool, &str)> = vec![
            ("slot", w.slot.is_some(), "slot_changed"),
            ("what", w.what.is_some(), "safe_changed"),
            ("event", w.event.is_some(), "event"),
            ("where", !w.where_.is_empty(), "event"),
            ("token", w.token.is_some(), "balance_drop"),
            ("percent", w.percent.is_some(), "balance_drop"),
            ("blocks", w.blocks.is_some(), "balance_drop"),
        ];
        for (field, present, kind) in stray {
            if present && w.kind.get_ref() != kind {
                d.err(
                    span.clone(),
                    format!(
                        "watch rule {id}: `{field}` belongs to kind {kind}, not {}",
                        w.kind.get_ref()
                    ),
                    "remove it, or fix the kind",
                );
            }
        }
        let kind = match w.kind.get_ref().as_str() {
            "slot_changed" => {
                let Some((cid, c)) = contract(d) else {
                    continue;
                };
                let Some(slot) = &w.slot else {
                    d.err(
                        span.clone(),
                        format!("watch rule {id}: slot_changed needs slot = \"implementation\" (or admin, beacon, or 0x + 64 hex)"),
                        "add slot",
                    );
                    continue;
                };
                let Some((s, name)) = parse_slot(slot.get_ref()) else {
                    d.err(
                        slot.span(),
                        format!("watch rule {id}: slot {:?} is not implementation, admin, beacon or 32 bytes of hex", slot.get_ref()),
                        "write implementation, admin, beacon, or 0x followed by 64 hex digits",
                    );
                    continue;
                };
                let fits = match slot.get_ref().as_str() {
                    "implementation" => {
                        !matches!(c.proxy, ProxyKind::None | ProxyKind::Beacon { .. })
                    }
                    "admin" => matches!(c.proxy, ProxyKind::Transparent { .. }),
                    "beacon" => matches!(c.proxy, ProxyKind::Beacon { .. }),
                    _ => true,
                };
                if !fits {
                    d.err(
                        slot.span(),
                        format!(
                            "watch rule {id}: contract {cid} is {} and has no {} slot",
                            if matches!(c.proxy, ProxyKind::None) {
                                "not a proxy".to_string()
                            } else {
                                format!("a {} proxy", c.proxy.as_str())
                            },
                            slot.get_ref()
                        ),
                        "name the slot its proxy kind has, or a raw 0x slot",
                    );
                    continue;
                }
                WatchKind::SlotChanged {
                    contract: cid,
                    address: c.address,
                    slot: s,
                    slot_name: name,
                }
            }
            "safe_changed" => {
                let Some(safe) = safe else {
                    d.err(
                        w.kind.span(),
                        format!("watch rule {id}: safe_changed needs a [safe] table"),
                        "declare the Safe, or remove the rule",
                    );
                    continue;
                };
                let what = match &w.what {
                    None => SafeAspect::ALL.to_vec(),
                    Some(list) => {
                        let mut v = Vec::new();
                        for a in list.get_ref() {
                            match SafeAspect::parse(a.get_ref()) {
                                Some(x) => v.push(x),
                                None => d.err(
                                    a.span(),
                                    format!("watch rule {id}: {:?} is not part of a Safe's configuration", a.get_ref()),
                                    "write owners, threshold, modules, guard or fallback_handler",
                                ),
                            }
                        }
                        if v.is_empty() {
                            d.err(
                                list.span(),
                                format!("watch rule {id}: `what` is empty"),
                                "list at least one part, or leave `what` out for all",
                            );
                            continue;
                        }
                        v
                    }
                };
                WatchKind::SafeChanged {
                    safe: safe.address,
                    what,
                }
            }
            "event" => {
                let Some((cid, c)) = contract(d) else {
                    continue;
                };
                let Some(sig) = &w.event else {
                    d.err(
                        span.clone(),
                        format!("watch rule {id}: kind event needs event = \"event Name(type indexed name, …)\""),
                        "add the event's signature",
                    );
                    continue;
                };
                let text = sig.get_ref().trim();
                let text = if text.starts_with("event ") {
                    text.to_string()
                } else {
                    format!("event {text}")
                };
                let event = match alloy::json_abi::Event::parse(&text) {
                    Ok(e) => e,
                    Err(e) => {
                        d.err(
                            sig.span(),
                            format!("watch rule {id}: cannot read the event signature: {}", first_line(&e.to_string())),
                            "write it as in Solidity: event Withdrawn(address indexed to, uint256 amount)",
                        );
                        continue;
                    }
                };
                let mut filters = Vec::new();
                for (name, cons) in &w.where_ {
                    let Some((i, p)) = event
                        .inputs
                        .iter()
                        .enumerate()
                        .find(|(_, p)| &p.name == name)
                    else {
                        d.err(
                            cons.span(),
                            format!(
                                "watch rule {id}: event {} has no argument {name:?}",
                                event.name
                            ),
                            format!(
                                "its arguments are: {}",
                                event
                                    .inputs
                                    .iter()
                                    .map(|p| p.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                        continue;
                    };
                    let ty = match DynSolType::parse(&p.ty) {
                        Ok(t) => t,
                        Err(_) => {
                            d.err(cons.span(), format!("watch rule {id}: argument {name} has type {} which `where` cannot compare", p.ty), "constrain another argument");
                            continue;
                        }
                    };
                    if p.indexed && ty.is_dynamic() {
                        d.err(
                            cons.span(),
                            format!("watch rule {id}: argument {name} is an indexed {}: the log holds only its hash", p.ty),
                            "constrain another argument",
                        );
                        continue;
                    }
                    if let Some(c) =
                        build_constraint(d, cons, &ty, &format!("watch rule {id} where.{name}"))
                    {
                        filters.push((name.clone(), i, c));
                    }
                }
                WatchKind::Event {
                    contract: cid,
                    address: c.address,
                    event,
                    filters,
                }
            }
            "balance_drop" => {
                let Some((cid, c)) = contract(d) else {
                    continue;
                };
                let token = match &w.token {
                    None => None,
                    Some(t) if t.get_ref() == "eth" => None,
                    Some(t) => match contracts.get(t.get_ref()) {
                        Some(k) => Some((t.get_ref().clone(), k.address)),
                        None => match parse_address(t.get_ref()) {
                            Ok(a) => Some((a.to_checksum(None), a)),
                            Err(_) => {
                                d.err(
                                    t.span(),
                                    format!("watch rule {id}: token {:?} is neither eth, a manifest contract nor an address", t.get_ref()),
                                    "write eth, a [contracts.<id>] name, or the ERC-20's 0x address",
                                );
                                continue;
                            }
                        },
                    },
                };
                let percent = match &w.percent {
                    Some(p) if (1..=100).contains(p.get_ref()) => *p.get_ref() as u8,
                    Some(p) => {
                        d.err(
                            p.span(),
                            format!(
                                "watch rule {id}: percent {} is outside 1..=100",
                                p.get_ref()
                            ),
                            "write the drop that alerts, e.g. percent = 20",
                        );
                        continue;
                    }
                    None => {
                        d.err(
                            span.clone(),
                            format!("watch rule {id}: balance_drop needs percent = N"),
                            "add the drop that alerts, e.g. percent = 20",
                        );
                        continue;
                    }
                };
                let blocks = match &w.blocks {
                    Some(b) if (1..=10_000).contains(b.get_ref()) => *b.get_ref() as u64,
                    Some(b) => {
                        d.err(
                            b.span(),
                            format!(
                                "watch rule {id}: blocks {} is outside 1..=10000",
                                b.get_ref()
                            ),
                            "write the window in blocks, e.g. blocks = 10",
                        );
                        continue;
                    }
                    None => {
                        d.err(
                            span.clone(),
                            format!("watch rule {id}: balance_drop needs blocks = N"),
                            "add the window in blocks, e.g. blocks = 10",
                        );
                        continue;
                    }
                };
                WatchKind::BalanceDrop {
                    contract: cid,
                    address: c.address,
                    token,
                    percent,
                    blocks,
                }
            }
            "paused_changed" => {
                let Some((cid, c)) = contract(d) else {
                    continue;
                };
                WatchKind::PausedChanged {
                    contract: cid,
                    address: c.address,
                }
            }
            other => {
                d.err(
                    w.kind.span(),
                    format!("watch rule {id}: unknown kind {other:?}"),
                    "write slot_changed, safe_changed, event, balance_drop or paused_changed",
                );
                continue;
            }
        };
        out.push(WatchRule {
            id,
            severity,
            playbook: w.playbook.as_ref().map(|p| p.get_ref().clone()),
            kind,
        });
    }
    out
}

/// Whether the file's top level says `version = 2` (top-level keys come before the first table header).
/// A cheap look before the one full parse; anything unusual falls to the version-1 parser, which reports it.
fn declares_version_2(text: &str) -> bool {
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            return false;
        }
        let Some(rest) = l.strip_prefix("version") else {
            continue;
        };
        let Some(v) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let v = v.split('#').next().unwrap_or("").trim();
        return v == "2";
    }
    false
}

fn toml_error(d: &mut Diags<'_>, e: &toml::de::Error) {
    let span = e.span().unwrap_or(0..0);
    let msg = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected a boolean", "expected true or false");
    let hint = if msg.contains("invalid type") {
        "this field needs another kind of value: numbers without quotes (threshold = 2), text in quotes (version = \"1.4.1\"), lists in [ ]"
    } else if msg.contains("unknown field `address`") && msg.contains("upgrade_call") {
        "in a version-2 manifest a contract's address differs per chain: write it under its chain, e.g. [chains.NAME] contracts.ID = { address = \"0x…\" }"
    } else if msg.contains("unknown field `chain_id`") && msg.contains("`chains`") {
        "a version-2 manifest names its chains under [chains.NAME] (each with chain_id, safe, contracts); for one chain write version = 1"
    } else if msg.contains("unknown field") {
        "remove the field or fix its spelling; the fields are listed in DESIGN.md's manifest section"
    } else if msg.contains("missing field") {
        "add the field"
    } else {
        "fix the TOML syntax at this position"
    };
    d.err(span, msg, hint);
}

/// Validates one deployment's raw manifest (a version-1 file, or one chain of a version-2 file). Problems
/// go to `d`; the result is meaningful only when `d` stays empty.
pub(crate) fn build(d: &mut Diags<'_>, raw: &RawManifest, path: &Path, hash: B256) -> Manifest {
    let expanded;
    let raw = if raw.actions.iter().any(|a| a.get_ref().contracts.is_some()) {
        expanded = expand_action_lists(d, raw);
        &expanded
    } else {
        raw
    };
    let (name, chain_id) = header_section(d, raw);
    let safe = safe_section(d, raw);
    let timelock = timelock_section(d, raw);
    let policy = policy_section(d, raw);

    let contracts = contracts_section(d, raw);
    let (actions, action_ids) = actions_section(d, raw, &contracts);
    let playbooks = playbooks_section(d, raw, &action_ids);
    presign_section(d, raw, &actions);
    let watch = watch_section(d, raw, &contracts, &playbooks, safe.as_ref());

    Manifest {
        path: path.to_path_buf(),
        hash,
        name,
        chain_id: chain_id.max(0) as u64,
        safe,
        timelock,
        contracts,
        actions,
        playbooks,
        watch,
        watch_builtins: raw.watch_builtins.as_ref().is_none_or(|b| *b.get_ref()),
        policy,
        chain_name: None,
        deployments: Default::default(),
    }
}

/// An action with `contracts = [A, B, …]` becomes one action `ID@A`, `ID@B`, … each; a playbook that names
/// `ID` names them all, in the list's order.
fn expand_action_lists(d: &mut Diags<'_>, raw: &RawManifest) -> RawManifest {
    let mut out = raw.clone();
    let mut actions = Vec::with_capacity(raw.actions.len());
    let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &raw.actions {
        let r = a.get_ref();
        let Some(list) = &r.contracts else {
            actions.push(a.clone());
            continue;
        };
        if let Some(c) = &r.contract {
            d.err(
                c.span(),
                format!("action {:?} has both contract and contracts", r.id.get_ref()),
                "keep one: contract = \"ID\" for one contract, contracts = [\"A\", \"B\"] for the same call on several",
            );
            continue;
        }
        if list.get_ref().is_empty() {
            d.err(
                list.span(),
                format!("action {:?}: contracts is empty", r.id.get_ref()),
                "list the contracts the action calls",
            );
            continue;
        }
        let mut ids = Vec::new();
        for c in list.get_ref() {
            let mut one = r.clone();
            let id = format!("{}@{}", r.id.get_ref(), c.get_ref());
            one.id = toml::Spanned::new(r.id.span(), id.clone());
            one.contract = Some(c.clone());
            one.contracts = None;
            actions.push(toml::Spanned::new(a.span(), one));
            ids.push(id);
        }
        lists.insert(r.id.get_ref().clone(), ids);
    }
    out.actions = actions;
    if !lists.is_empty() {
        for p in &mut out.playbooks {
            let pr = p.get_mut();
            let span = pr.actions.span();
            let mut names = Vec::new();
            for n in pr.actions.get_ref() {
                match lists.get(n.get_ref()) {
                    Some(ids) => {
                        names.extend(ids.iter().map(|i| toml::Spanned::new(n.span(), i.clone())))
                    }
                    None => names.push(n.clone()),
                }
            }
            pr.actions = toml::Spanned::new(span, names);
        }
    }
    out
}

/// `[contracts.*]`, in file order.
fn contracts_section(d: &mut Diags<'_>, raw: &RawManifest) -> BTreeMap<String, Contract> {
    // [contracts.*]
    let mut contracts = BTreeMap::new();
    let mut contract_addrs: BTreeMap<Address, String> = BTreeMap::new();
    let mut ordered: Vec<(&String, &S<super::raw::RawContract>)> = raw.contracts.iter().collect();
    ordered.sort_by_key(|(_, c)| c.span().start);
    for (id, c) in ordered {
        let span = c.span();
        plain_text(d, span.clone(), id, "a contract id");
        let c = c.get_ref();
        let address = addr_field(d, &c.address, &format!("contracts.{id}.address"));
        if let Some(a) = address {
            if let Some(other) = contract_addrs.insert(a, id.clone()) {
                d.err(
                    c.address.span(),
                    format!("contracts.{id} has the same address as contracts.{other}"),
                    "give each contract once",
                );
            }
        }
        let kind = c
            .proxy
            .as_ref()
            .map(|p| p.get_ref().as_str())
            .unwrap_or("none");
        let proxy = match kind {
            "none" => Some(ProxyKind::None),
            "uups" => Some(ProxyKind::Uups),
            "transparent" => match &c.proxy_admin {
                Some(pa) => addr_field(d, pa, &format!("contracts.{id}.proxy_admin"))
                    .map(|proxy_admin| ProxyKind::Transparent { proxy_admin }),
                None => {
                    d.err(
                        c.proxy.as_ref().map_or(span.clone(), |p| p.span()),
                        format!("contracts.{id} is a transparent proxy without proxy_admin"),
                        "add proxy_admin = \"0x…\" (the OZ 5 ProxyAdmin that owns the upgrade)",
                    );
                    None
                }
            },
            "beacon" => match &c.beacon {
                Some(b) => addr_field(d, b, &format!("contracts.{id}.beacon"))
                    .map(|beacon| ProxyKind::Beacon { beacon }),
                None => {
                    d.err(
                        c.proxy.as_ref().map_or(span.clone(), |p| p.span()),
                        format!("contracts.{id} is a beacon proxy without beacon"),
                        "add beacon = \"0x…\" (the UpgradeableBeacon)",
                    );
                    None
                }
            },
            other => {
                d.err(
                    c.proxy.as_ref().map_or(span.clone(), |p| p.span()),
                    format!("unknown proxy kind {other:?}"),
                    "write proxy = \"none\", \"transparent\", \"uups\" or \"beacon\"",
                );
                None
            }
        };
        // The upgrade function: by default the one OZ 5 has for the kind; OZ 4 and Optimism use others.
        use crate::upgrade::UpgradeShape as U;
        let upgrade_call = match (&c.upgrade_call, kind) {
            (None, "uups") => Some(U::UpgradeToAndCall),
            (None, "transparent") => Some(U::UpgradeAndCall),
            (None, "beacon") => Some(U::UpgradeTo),
            (None, _) => None,
            (Some(u), _) => {
                let allowed: &[U] = match kind {
                    "uups" => &[U::UpgradeToAndCall, U::UpgradeTo],
                    "transparent" => &[U::UpgradeAndCall, U::Upgrade],
                    "beacon" => &[U::UpgradeTo],
                    _ => &[],
                };
                match allowed.iter().find(|s| s.name() == u.get_ref().trim()) {
                    Some(s) => Some(*s),
                    None => {
                        d.err(
                            u.span(),
                            format!(
                                "upgrade_call {:?} is not an upgrade function of a {kind:?} proxy",
                                u.get_ref()
                            ),
                            format!(
                                "write one of {:?}",
                                allowed.iter().map(|s| s.name()).collect::<Vec<_>>()
                            ),
                        );
                        None
                    }
                }
            }
        };
        if kind != "transparent" {
            if let Some(pa) = &c.proxy_admin {
                d.err(pa.span(), format!("proxy_admin only applies to transparent proxies, contracts.{id} is {kind:?}"), "remove proxy_admin or set proxy = \"transparent\"");
            }
        }
        if kind != "beacon" {
            if let Some(b) = &c.beacon {
                d.err(
                    b.span(),
                    format!("beacon only applies to beacon proxies, contracts.{id} is {kind:?}"),
                    "remove beacon or set proxy = \"beacon\"",
                );
            }
        }
        let abi = contract_abi(d, id, c);
        if let (Some(address), Some(proxy), Some(abi)) = (address, proxy, abi) {
            contracts.insert(
                id.clone(),
                Contract {
                    id: id.clone(),
                    address,
                    proxy,
                    abi,
                    upgrade_call,
                },
            );
        }
    }

    contracts
}

/// `[[actions]]`, checked against the contracts, the Safe and the timelock. Also returns each id's via.
#[allow(clippy::type_complexity)]
fn actions_section(
    d: &mut Diags<'_>,
    raw: &RawManifest,
    contracts: &BTreeMap<String, Contract>,
) -> (Vec<Action>, BTreeMap<String, Option<Via>>) {
    // [[actions]]
    let mut actions = Vec::new();
    let mut action_ids: BTreeMap<String, Option<Via>> = BTreeMap::new();
    for a in &raw.actions {
        let a_span = a.span();
        let a = a.get_ref();
        let id = a.id.get_ref().clone();
        plain_text(d, a.id.span(), &id, "an action id");
        if let Some(t) = &a.title {
            plain_text(
                d,
                t.span(),
                t.get_ref(),
                &format!("the title of action {:?}", crate::text::sanitize_line(&id)),
            );
        }
        if id.trim().is_empty() {
            d.err(
                a.id.span(),
                "an action id is empty",
                "write a short id such as \"pause-pool\"",
            );
        }
        let via = match a
            .via
            .as_ref()
            .map(|v| v.get_ref().as_str())
            .unwrap_or("safe")
        {
            "safe" => Some(Via::Safe),
            "eoa" => Some(Via::Eoa),
            "timelock" => Some(Via::Timelock),
            other => {
                d.err(
                    a.via.as_ref().map_or(a_span.clone(), |v| v.span()),
                    format!("unknown via {other:?}"),
                    "write via = \"safe\", \"eoa\" or \"timelock\"",
                );
                None
            }
        };
        let via_span = a.via.as_ref().map_or(a_span.clone(), |v| v.span());
        match via {
            Some(Via::Safe) if raw.safe.is_none() => d.err(via_span.clone(), format!("action {id:?} goes via the Safe but the manifest has no [safe]"), "add a [safe] table with address, version, owners and threshold"),
            Some(Via::Timelock) if raw.timelock.is_none() => d.err(via_span.clone(), format!("action {id:?} goes via the timelock but the manifest has no [timelock]"), "add a [timelock] table with address and min_delay"),
            Some(Via::Timelock) if raw.safe.is_none() => d.err(via_span.clone(), format!("action {id:?} goes via the timelock, which the Safe schedules, but the manifest has no [safe]"), "add a [safe] table"),
            _ => {}
        }
        if action_ids.insert(id.clone(), via).is_some() {
            d.err(
                a.id.span(),
                format!("action id {id:?} is used twice"),
                "give each action its own id",
            );
        }
        let title = a
            .title
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_else(|| id.clone());
        let Some(contract_field) = &a.contract else {
            d.err(
                a.id.span(),
                format!("action {id:?} names no contract"),
                "add contract = \"ID\" (or contracts = [\"A\", \"B\"] for the same call on several)",
            );
            continue;
        };
        let cname = contract_field.get_ref();
        let Some(contract) = contracts.get(cname) else {
            if !raw.contracts.contains_key(cname) {
                let known: Vec<&String> = raw.contracts.keys().collect();
                d.err(contract_field.span(), format!("action {id:?} names contract {cname:?}, which the manifest does not define"), format!("define [contracts.{cname}] or use one of {known:?}"));
            }
            continue;
        };
        let fname = a.function.get_ref();
        let (call, params): (ActionCall, Vec<(String, DynSolType)>) = if fname == "upgrade" {
            match contract.proxy {
                ProxyKind::None => {
                    d.err(a.function.span(), format!("action {id:?} upgrades contracts.{cname}, which is not a proxy"), format!("set proxy = \"transparent\" | \"uups\" | \"beacon\" on contracts.{cname}"));
                    continue;
                }
                ProxyKind::Beacon { .. } => (
                    ActionCall::Upgrade,
                    vec![("implementation".into(), DynSolType::Address)],
                ),
                _ if !contract.upgrade_call.is_some_and(|u| u.has_data()) => (
                    ActionCall::Upgrade,
                    vec![("implementation".into(), DynSolType::Address)],
                ),
                _ => (
                    ActionCall::Upgrade,
                    vec![
                        ("implementation".into(), DynSolType::Address),
                        ("data".into(), DynSolType::Bytes),
                    ],
                ),
            }
        } else {
            match find_function(&contract.abi, fname) {
                Ok(f) => {
                    let mut params = Vec::new();
                    let mut ok = true;
                    for (i, p) in f.inputs.iter().enumerate() {
                        match p.resolve() {
                            Ok(t) => params.push((
                                if p.name.is_empty() {
                                    format!("arg{i}")
                                } else {
                                    p.name.clone()
                                },
                                t,
                            )),
                            Err(e) => {
                                d.err(
                                    a.function.span(),
                                    format!("parameter {i} of {}: {e}", f.signature()),
                                    "fix the type in the abi",
                                );
                                ok = false;
                            }
                        }
                    }
                    if !ok {
                        continue;
                    }
                    (ActionCall::Function(f), params)
                }
                Err((m, h)) => {
                    d.err(a.function.span(), format!("action {id:?}: {m}"), h);
                    continue;
                }
            }
        };
        // Every parameter needs a constraint; every constraint a parameter.
        let mut args = Vec::new();
        for (pname, ty) in &params {
            match a.args.get(pname) {
                Some(rc) => {
                    if let Some(c) = build_constraint(d, rc, ty, &format!("action {id:?} argument `{pname}`")) {
                        args.push((pname.clone(), c));
                    }
                }
                None if matches!(call, ActionCall::Upgrade) && pname == "data" => {
                    args.push((pname.clone(), Constraint::Eq(DynSolValue::Bytes(Vec::new()))));
                }
                None => d.err(a.function.span(), format!("action {id:?}: argument `{pname}` ({}) has no constraint", ty.sol_type_name()), format!("add args = {{ {pname} = {{ eq = … }} }}, or {{ any = true }} if any value is acceptable")),
            }
        }
        for (k, v) in &a.args {
            if !params.iter().any(|(p, _)| p == k) {
                let names: Vec<&String> = params.iter().map(|(p, _)| p).collect();
                d.err(
                    v.span(),
                    format!(
                        "action {id:?}: {} has no argument `{k}`",
                        a.function.get_ref()
                    ),
                    if names.is_empty() {
                        format!(
                            "{} takes no arguments: remove `{k}` from args",
                            a.function.get_ref()
                        )
                    } else {
                        format!("constrain only the function's arguments: {names:?}")
                    },
                );
            }
        }
        let value = match &a.value {
            Some(v) => build_constraint(
                d,
                v,
                &DynSolType::Uint(256),
                &format!("action {id:?} value"),
            ),
            None => Some(Constraint::Eq(DynSolValue::Uint(
                alloy::primitives::U256::ZERO,
                256,
            ))),
        };
        if let (Some(v), ActionCall::Function(f), Some(_)) = (&a.value, &call, &value) {
            let zero_only =
                matches!(&value, Some(Constraint::Eq(DynSolValue::Uint(u, _))) if u.is_zero());
            if !zero_only && f.state_mutability != alloy::json_abi::StateMutability::Payable {
                d.err(
                    v.span(),
                    format!(
                        "action {id:?}: {} is not payable, so any ETH value would make it revert",
                        f.signature()
                    ),
                    "remove value, or declare the function payable in the abi if it is",
                );
            }
        }
        let implementation_codehash = match &a.implementation_codehash {
            Some(h) if fname != "upgrade" => {
                d.err(
                    h.span(),
                    format!("action {id:?}: implementation_codehash only applies to upgrades"),
                    "remove it, or write function = \"upgrade\"",
                );
                None
            }
            Some(h) => match parse_b256(h.get_ref()) {
                Some(b) => Some(b),
                None => {
                    d.err(h.span(), format!("{:?} is not a 32-byte hash", h.get_ref()), "write 0x followed by 64 hex digits: keccak256 of the implementation's runtime code (cast keccak $(cast code IMPL))");
                    None
                }
            },
            None => None,
        };
        let allow_safe_tx_gas = match &a.allow_safe_tx_gas {
            Some(b) if *b.get_ref() && via != Some(Via::Safe) && via != Some(Via::Timelock) => {
                d.err(
                    b.span(),
                    format!("action {id:?}: allow_safe_tx_gas only applies to actions in a Safe transaction"),
                    "remove it",
                );
                false
            }
            Some(b) => *b.get_ref(),
            None => false,
        };
        let requires_role = match &a.requires_role {
            Some(r) => match super::role_value(r.get_ref()) {
                Some(v) => Some(v),
                None => {
                    d.err(
                        r.span(),
                        format!("action {id:?}: requires_role {:?} is not a role", r.get_ref()),
                        "write the role's name as the contract defines it (e.g. \"PAUSER_ROLE\", hashed with keccak256), or its 0x-prefixed 32-byte value",
                    );
                    None
                }
            },
            None => None,
        };
        if let (Some(r), Some(Via::Eoa)) = (&a.requires_role, via) {
            d.err(
                r.span(),
                format!("action {id:?}: requires_role is checked for the Safe or the timelock, not a guardian account"),
                "remove it, or send the action through the Safe",
            );
        }
        let require_layout = raw
            .policy
            .as_ref()
            .and_then(|p| p.get_ref().require_storage_layout.as_ref())
            .is_some_and(|b| *b.get_ref());
        let storage_layout = match &a.storage_layout {
            Some(l) if fname != "upgrade" => {
                d.err(
                    l.span(),
                    format!("action {id:?}: storage_layout only applies to upgrades"),
                    "remove it, or write function = \"upgrade\"",
                );
                None
            }
            Some(l) => layout_check(d, &id, l.get_ref()),
            None => {
                if require_layout && fname == "upgrade" {
                    d.err(
                        a.id.span(),
                        format!("action {id:?} is an upgrade without storage_layout, and [policy] require_storage_layout = true"),
                        "add storage_layout = { current = \"PATH\", current_hash = \"0x…\", new = \"PATH\", new_hash = \"0x…\" } with solc's storageLayout output of each implementation",
                    );
                }
                None
            }
        };
        let mut expect = Vec::new();
        for e in &a.expect {
            match parse_expectation(
                e.get_ref(),
                &contract.abi,
                contract.proxy != ProxyKind::None,
            ) {
                Ok(x) => expect.push(x),
                Err((m, h)) => d.err(e.span(), format!("action {id:?}: {m}"), h),
            }
        }
        if let (Some(via), Some(value)) = (via, value) {
            actions.push(Action {
                id,
                title,
                contract: cname.clone(),
                call,
                via,
                args,
                value,
                implementation_codehash,
                allow_safe_tx_gas,
                requires_role,
                expect,
                storage_layout,
            });
        }
    }

    (actions, action_ids)
}

/// `[[playbooks]]`, checked against the actions.
fn playbooks_section(
    d: &mut Diags<'_>,
    raw: &RawManifest,
    action_ids: &BTreeMap<String, Option<Via>>,
) -> Vec<Playbook> {
    // [[playbooks]]
    let mut playbooks = Vec::new();
    let mut pb_ids = BTreeSet::new();
    for p in &raw.playbooks {
        let p = p.get_ref();
        let id = p.id.get_ref().clone();
        plain_text(d, p.id.span(), &id, "a playbook id");
        if let Some(t) = &p.title {
            plain_text(
                d,
                t.span(),
                t.get_ref(),
                &format!(
                    "the title of playbook {:?}",
                    crate::text::sanitize_line(&id)
                ),
            );
        }
        if !pb_ids.insert(id.clone()) {
            d.err(
                p.id.span(),
                format!("playbook id {id:?} is used twice"),
                "give each playbook its own id",
            );
        }
        if p.actions.get_ref().is_empty() {
            d.err(
                p.actions.span(),
                format!("playbook {id:?} has no actions"),
                "list the action ids it runs",
            );
        }
        let mut vias = BTreeSet::new();
        let mut order: Vec<Via> = Vec::new();
        let mut seen = BTreeSet::new();
        for a in p.actions.get_ref() {
            match action_ids.get(a.get_ref()) {
                Some(via) => {
                    if let Some(via) = via {
                        vias.insert(via.as_str());
                        order.push(*via);
                    }
                }
                None => d.err(
                    a.span(),
                    format!(
                        "playbook {id:?} runs action {:?}, which the manifest does not define",
                        a.get_ref()
                    ),
                    format!(
                        "define it in [[actions]] or use one of {:?}",
                        action_ids.keys().collect::<Vec<_>>()
                    ),
                ),
            }
            if !seen.insert(a.get_ref().clone()) {
                d.err(
                    a.span(),
                    format!("playbook {id:?} runs action {:?} twice", a.get_ref()),
                    "list each action once",
                );
            }
        }
        // One Safe transaction may carry direct calls and a timelock schedule (direct calls first); a
        // guardian account's transaction is its own.
        let safe_and_timelock =
            vias.len() == 2 && vias.contains("safe") && vias.contains("timelock");
        if vias.len() > 1 && !safe_and_timelock {
            d.err(p.actions.span(), format!("playbook {id:?} mixes actions via {:?}: a playbook composes into one transaction", vias), "split it into one playbook per via (only safe and timelock actions share one Safe batch)");
        } else if safe_and_timelock
            && order
                .windows(2)
                .any(|w| w[0] == Via::Timelock && w[1] == Via::Safe)
        {
            d.err(
                p.actions.span(),
                format!("playbook {id:?} lists a Safe action after a timelock action"),
                "list the direct (via = \"safe\") actions first: the Safe batch makes those calls, then schedules the timelock's",
            );
        }
        let title = p
            .title
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_else(|| id.clone());
        playbooks.push(Playbook {
            presign: p.presign.as_ref().is_some_and(|b| *b.get_ref()),
            id,
            title,
            actions: p
                .actions
                .get_ref()
                .iter()
                .map(|a| a.get_ref().clone())
                .collect(),
        });
    }

    playbooks
}

/// `version`, `name`, `chain_id`.
fn header_section(d: &mut Diags<'_>, raw: &RawManifest) -> (String, i64) {
    if !matches!(*raw.version.get_ref(), 1 | 2) {
        d.err(
            raw.version.span(),
            format!(
                "manifest version {} is not supported",
                raw.version.get_ref()
            ),
            "write version = 1 (one chain) or version = 2 (several chains, see examples/multichain.toml)",
        );
    }
    let name = raw.name.get_ref().trim().to_string();
    plain_text(d, raw.name.span(), raw.name.get_ref(), "the manifest name");
    if name.is_empty() {
        d.err(
            raw.name.span(),
            "the manifest name is empty",
            "write the protocol's name, e.g. name = \"Acme Lending\"",
        );
    }
    let chain_id = *raw.chain_id.get_ref();
    if chain_id < 1 {
        d.err(
            raw.chain_id.span(),
            format!("chain_id {chain_id} is not a chain"),
            "write the EIP-155 chain id, e.g. 1 for Ethereum mainnet",
        );
    }

    (name, chain_id)
}

/// `[safe]`.
fn safe_section(d: &mut Diags<'_>, raw: &RawManifest) -> Option<SafeConfig> {
    // [safe]
    raw.safe.as_ref().and_then(|s| {
        let s_span = s.span();
        let s = s.get_ref();
        let address = addr_field(d, &s.address, "safe.address");
        let version = match s.version.get_ref().as_str() {
            "1.0.0" => Some(SafeVersion::V1_0_0),
            "1.1.1" => Some(SafeVersion::V1_1_1),
            "1.2.0" => Some(SafeVersion::V1_2_0),
            "1.3.0" => Some(SafeVersion::V1_3_0),
            "1.4.1" => Some(SafeVersion::V1_4_1),
            v => {
                d.err(
                    s.version.span(),
                    format!("Safe version {v:?} is not one breakglass supports"),
                    "write version = \"1.0.0\", \"1.1.1\", \"1.2.0\", \"1.3.0\" or \"1.4.1\"",
                );
                None
            }
        };
        let mut owners = Vec::new();
        let mut seen = BTreeSet::new();
        for o in s.owners.get_ref() {
            if let Some(a) = addr_field(d, o, "safe owner") {
                if a == Address::with_last_byte(1) {
                    d.err(
                        o.span(),
                        "0x…0001 is Safe's sentinel, not an owner",
                        "list the owners' real addresses",
                    );
                } else if !seen.insert(a) {
                    d.err(
                        o.span(),
                        format!("owner {} is listed twice", a.to_checksum(None)),
                        "list each owner once",
                    );
                } else {
                    owners.push(a);
                }
            }
        }
        if s.owners.get_ref().is_empty() {
            d.err(
                s.owners.span(),
                "the Safe has no owners",
                "list the Safe's owner addresses",
            );
        }
        let t = *s.threshold.get_ref();
        if !s.owners.get_ref().is_empty() && (t < 1 || t as usize > s.owners.get_ref().len()) {
            d.err(
                s.threshold.span(),
                format!(
                    "threshold {t} is impossible with {} owner(s)",
                    s.owners.get_ref().len()
                ),
                format!(
                    "write a threshold between 1 and {}",
                    s.owners.get_ref().len().max(1)
                ),
            );
        }
        let ms = match &s.multisend_call_only {
            Some(m) => addr_field(d, m, "safe.multisend_call_only").map(|a| (a, true)),
            None => version.map(|v| (v.canonical_multisend_call_only(), false)),
        };
        let _ = s_span;
        let batcher = s
            .batcher
            .as_ref()
            .and_then(|b| addr_field(d, b, "safe.batcher"));
        match (address, version, ms) {
            (Some(address), Some(version), Some((multisend_call_only, multisend_overridden)))
                if owners.len() == s.owners.get_ref().len()
                    && t >= 1
                    && (t as usize) <= owners.len() =>
            {
                Some(SafeConfig {
                    address,
                    version,
                    owners,
                    threshold: t as usize,
                    multisend_call_only,
                    multisend_overridden,
                    batcher,
                })
            }
            _ => None,
        }
    })
}

/// `[timelock]`.
fn timelock_section(d: &mut Diags<'_>, raw: &RawManifest) -> Option<TimelockConfig> {
    raw.timelock.as_ref().and_then(|t| {
        let t = t.get_ref();
        let address = addr_field(d, &t.address, "timelock.address");
        let delay = *t.min_delay.get_ref();
        if delay < 0 {
            d.err(
                t.min_delay.span(),
                "min_delay is negative",
                "write the TimelockController's minimum delay in seconds",
            );
        }
        address
            .filter(|_| delay >= 0)
            .map(|address| TimelockConfig {
                address,
                min_delay: delay as u64,
            })
    })
}

/// `[policy]`.
fn policy_section(d: &mut Diags<'_>, raw: &RawManifest) -> super::Policy {
    // [policy]
    let mut policy = super::Policy::default();
    if let Some(fee) = raw
        .policy
        .as_ref()
        .and_then(|p| p.get_ref().max_tx_fee.as_ref())
    {
        match super::parse_amount(fee.get_ref()) {
            Ok(0) => d.err(
                fee.span(),
                "policy.max_tx_fee is zero: no transaction could ever be sent",
                "write the most one transaction may cost, e.g. max_tx_fee = \"0.5 ether\"",
            ),
            Ok(w) => policy.max_tx_fee_wei = w,
            Err(e) => d.err(
                fee.span(),
                format!("policy.max_tx_fee: {e}"),
                "write an amount with its unit, e.g. max_tx_fee = \"0.5 ether\" or \"20000000 gwei\"",
            ),
        }
    }

    policy.require_storage_layout = raw
        .policy
        .as_ref()
        .and_then(|p| p.get_ref().require_storage_layout.as_ref())
        .is_some_and(|b| *b.get_ref());
    policy
}
