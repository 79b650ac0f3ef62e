//! Storage-layout comparison of upgrades (issue 18): is the new implementation's storage layout a safe
//! successor of the current one?
//!
//! The rules are OpenZeppelin upgrades-core's (`@openzeppelin/upgrades-core` 1.46.0,
//! `dist/storage/compare.js`, `levenshtein.js`, `gap.js`), ported operation for operation so that the
//! verdict equals its own on the same compiler output (`tests/layout.rs` runs both on a fixture table):
//!
//! - The old and new variable lists are matched with the same Levenshtein distance (insert and delete cost
//!   2, a change 3, a type or layout change 1, a gap shrink 0, an append at the end 0), and the operations
//!   on the cheapest path are the findings, less the safe ones: appends at the end, inserts that overlap
//!   no old variable (e.g. into the unused half of a packed slot), and a `__gap` (or `__gap_*`) that
//!   shrinks or is used up by variables ending on the same slot as the gap did.
//! - Types: equal heads or an error (`address` ↔ contract types are equal); structs member by member
//!   (appending members is allowed only where the struct has room: a mapping's value); enums by size
//!   (1 byte up to 256 members) and members (appending allowed); mapping keys exactly, mapping values
//!   recursively; static array length (shrinking never, growing only as a mapping's value),
//!   dynamic ↔ static; user-defined value types by size; function types by visibility.
//! - Renames are errors unless declared ([`Declared::renames`], OZ's `@custom:oz-renamed-from`); a
//!   declared retype ([`Declared::retypes`], OZ's `@custom:oz-retyped-from`) skips the type check but not
//!   the check that slot, offset and size stay.
//! - ERC-7201 namespaces (`@custom:storage-location erc7201:ID`) are compared per namespace, with the same
//!   rules; deleting a namespace that had fields is an error; a new namespace is fine.
//!
//! Where breakglass knows less than upgrades-core: a layout written by `forge inspect … storageLayout`
//! (solc's output alone) has no enum members and no namespaces. Enums without members on either side are
//! compared by size only (upgrades-core would call it an error: "missing members"); namespaces are judged
//! only when the files carry them (the old file's namespaces missing from the new file are deletions).
//! A recursive struct (upgrades-core throws "Recursive types are not supported") and a comparison that
//! exceeds the work bound are [`FindingKind::Unverifiable`], never safe.
//!
//! The input is untrusted: [`StorageLayout::from_json`] bounds the file size, the numbers of variables,
//! types, members and namespaces, and the length and nesting of type identifiers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use alloy::primitives::{keccak256, U256, U512};
use serde::Serialize;
use serde_json::Value;

/// Largest layout file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 8 << 20;
/// Most variables in one list: the storage variables, one namespace's fields, one struct's members.
pub const MAX_LIST_LEN: usize = 2048;
/// Most enum members in one enum (Solidity allows 256).
pub const MAX_ENUM_MEMBERS: usize = 4096;
/// Most entries in `types`.
pub const MAX_TYPES: usize = 8192;
/// Most namespaces.
pub const MAX_NAMESPACES: usize = 256;
/// Most variables, namespace fields and struct members in one file, together.
pub const MAX_TOTAL_ITEMS: usize = 32768;
/// Longest type identifier, label or name, in bytes.
pub const MAX_NAME_LEN: usize = 4096;
/// Deepest nesting of a type identifier (`t_mapping(t_address,t_mapping(…))`).
pub const MAX_TYPE_DEPTH: usize = 32;
/// Most storage slots [`appended_slots`] lists (the first ones, ascending).
pub const MAX_APPENDED_SLOTS: usize = 4096;
/// Bound on the comparison work (Levenshtein cells over all lists compared), far above any real contract.
const WORK_BUDGET: u64 = 16 << 20;

/// Why a layout file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("storage layout file is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// The file's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON.
    #[error("storage layout is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not a storage layout.
    #[error("storage layout: {path}: {reason}")]
    Invalid {
        /// Where in the file (`storage[3].slot`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// More of something than breakglass accepts.
    #[error("storage layout: {what}: more than {max}")]
    Limit {
        /// What was counted.
        what: String,
        /// The limit.
        max: usize,
    },
}

fn invalid(path: impl Into<String>, reason: impl Into<String>) -> LayoutError {
    LayoutError::Invalid {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A storage variable, a namespace field or a struct member.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    contract: String,
    label: String,
    /// Index into [`StorageLayout::types`].
    ty: usize,
    slot: Option<U256>,
    offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Members {
    Struct(Vec<Item>),
    Enum(Vec<String>),
}

/// A parsed type identifier (`t_mapping(t_address,t_uint256)`: head `t_mapping`, two args), with what the
/// layout's `types` says about it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeNode {
    id: String,
    head: String,
    args: Option<Vec<usize>>,
    tail: Option<String>,
    label: Option<String>,
    number_of_bytes: Option<U256>,
    members: Option<Members>,
    underlying: Option<String>,
}

/// A storage layout: solc's `storageLayout` output (`{ "storage": [...], "types": {...} }`, as solc's
/// standard JSON and `forge inspect CONTRACT storageLayout --json` write it), optionally with
/// upgrades-core's `"namespaces": { "erc7201:ID": [items] }` and enum `members` (as
/// `scripts/npm/layouts.js` writes them). `{ "storageLayout": {...} }` (a Foundry artifact) is read too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageLayout {
    storage: Vec<Item>,
    /// Sorted by namespace id.
    namespaces: Vec<(String, Vec<Item>)>,
    types: Vec<TypeNode>,
}

impl StorageLayout {
    /// Parses and validates a layout file (see [`StorageLayout`] for the format).
    pub fn from_json(bytes: &[u8]) -> Result<StorageLayout, LayoutError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(LayoutError::TooLarge {
                size: bytes.len(),
                max: MAX_FILE_BYTES,
            });
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| LayoutError::Json(e.to_string()))?;
        let mut root = &value;
        let mut prefix = String::new();
        if let Some(obj) = root.as_object() {
            if !obj.contains_key("storage") {
                if let Some(inner) = obj.get("storageLayout") {
                    root = inner;
                    prefix = "storageLayout.".into();
                }
            }
        }
        Parser {
            prefix,
            types: Vec::new(),
            index: HashMap::new(),
            total_items: 0,
        }
        .layout(root)
    }

    /// Number of storage variables (not counting namespaces).
    pub fn len(&self) -> usize {
        self.storage.len()
    }

    /// True when the layout has neither storage variables nor namespaces.
    pub fn is_empty(&self) -> bool {
        self.storage.is_empty() && self.namespaces.is_empty()
    }

    /// The namespace ids (`erc7201:ID`), sorted.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.iter().map(|(id, _)| id.as_str())
    }

    fn bytes_of(&self, item: &Item) -> Option<U256> {
        self.types[item.ty].number_of_bytes
    }

    fn type_label(&self, ty: usize) -> String {
        let t = &self.types[ty];
        t.label.clone().unwrap_or_else(|| t.id.clone())
    }
}

struct Parser {
    prefix: String,
    types: Vec<TypeNode>,
    index: HashMap<String, usize>,
    total_items: usize,
}

fn as_str<'v>(v: &'v Value, path: &str) -> Result<&'v str, LayoutError> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(path, "expected a string"))?;
    if s.len() > MAX_NAME_LEN {
        return Err(invalid(path, format!("longer than {MAX_NAME_LEN} bytes")));
    }
    Ok(s)
}

/// A non-negative integer written as a decimal string (solc) or a JSON number.
fn as_uint(v: &Value, path: &str) -> Result<U256, LayoutError> {
    if let Some(n) = v.as_u64() {
        return Ok(U256::from(n));
    }
    let s = v
        .as_str()
        .ok_or_else(|| invalid(path, "expected a decimal string or a number"))?;
    if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            path,
            format!("expected a decimal integer, found {:?}", truncate(s, 80)),
        ));
    }
    U256::from_str_radix(s, 10).map_err(|_| invalid(path, "integer does not fit 256 bits"))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Parser {
    fn path(&self, p: &str) -> String {
        format!("{}{}", self.prefix, p)
    }

    fn layout(mut self, root: &Value) -> Result<StorageLayout, LayoutError> {
        let obj = root
            .as_object()
            .ok_or_else(|| invalid(self.path("(top)"), "expected an object"))?;
        // Types first: items refer to them.
        let mut raw_types: BTreeMap<&str, &Value> = BTreeMap::new();
        match obj.get("types") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if map.len() > MAX_TYPES {
                    return Err(LayoutError::Limit {
                        what: self.path("types"),
                        max: MAX_TYPES,
                    });
                }
                for (id, t) in map {
                    raw_types.insert(id.as_str(), t);
                }
            }
            Some(_) => return Err(invalid(self.path("types"), "expected an object or null")),
        }
        for id in raw_types.keys() {
            let path = self.path(&format!("types.{id}"));
            if id.len() > MAX_NAME_LEN {
                return Err(invalid(
                    path,
                    format!("type id longer than {MAX_NAME_LEN} bytes"),
                ));
            }
            self.intern(id, 0, &path)?;
        }
        // Type details (members reference other types, interned on the way).
        for (id, t) in &raw_types {
            let path = self.path(&format!("types.{id}"));
            let t = t
                .as_object()
                .ok_or_else(|| invalid(&path, "expected an object"))?;
            let label = match t.get("label") {
                Some(v) => Some(as_str(v, &format!("{path}.label"))?.to_string()),
                None => return Err(invalid(format!("{path}.label"), "missing")),
            };
            let number_of_bytes = match t.get("numberOfBytes") {
                None | Some(Value::Null) => None,
                Some(v) => Some(as_uint(v, &format!("{path}.numberOfBytes"))?),
            };
            let underlying = match t.get("underlying") {
                None | Some(Value::Null) => None,
                Some(v) => Some(as_str(v, &format!("{path}.underlying"))?.to_string()),
            };
            let members = match t.get("members") {
                None | Some(Value::Null) => None,
                Some(Value::Array(list)) => Some(self.members(list, &format!("{path}.members"))?),
                Some(_) => return Err(invalid(format!("{path}.members"), "expected an array")),
            };
            let node = self.index[*id];
            let n = &mut self.types[node];
            n.label = label;
            n.number_of_bytes = number_of_bytes;
            n.underlying = underlying;
            n.members = members;
        }
        let storage = match obj.get("storage") {
            Some(Value::Array(list)) => {
                let path = self.path("storage");
                self.items(list, &path, true)?
            }
            Some(_) => return Err(invalid(self.path("storage"), "expected an array")),
            None => {
                return Err(invalid(
                    self.path("storage"),
                    "missing (not a solc storageLayout)",
                ))
            }
        };
        let mut namespaces = Vec::new();
        match obj.get("namespaces") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if map.len() > MAX_NAMESPACES {
                    return Err(LayoutError::Limit {
                        what: self.path("namespaces"),
                        max: MAX_NAMESPACES,
                    });
                }
                for (id, v) in map {
                    let path = self.path(&format!("namespaces.{id}"));
                    if id.is_empty() || id.len() > MAX_NAME_LEN {
                        return Err(invalid(path, "namespace id empty or too long"));
                    }
                    let list = v
                        .as_array()
                        .ok_or_else(|| invalid(&path, "expected an array"))?;
                    let items = self.items(list, &path, false)?;
                    namespaces.push((id.clone(), items));
                }
            }
            Some(_) => return Err(invalid(self.path("namespaces"), "expected an object")),
        }
        namespaces.sort_by(|a, b| a.0.cmp(&b.0));
        // Every variable's, field's and member's type must be described (a described type has a label).
        let undescribed =
            |items: &[Item], path: &dyn Fn(usize) -> String| -> Result<(), LayoutError> {
                for (i, item) in items.iter().enumerate() {
                    if self.types[item.ty].label.is_none() {
                        return Err(invalid(
                            path(i),
                            format!("type {} is not in types", self.types[item.ty].id),
                        ));
                    }
                }
                Ok(())
            };
        undescribed(&storage, &|i| self.path(&format!("storage[{i}].type")))?;
        for (id, items) in &namespaces {
            undescribed(items, &|i| self.path(&format!("namespaces.{id}[{i}].type")))?;
        }
        for node in &self.types {
            if let Some(Members::Struct(items)) = &node.members {
                undescribed(items, &|i| {
                    self.path(&format!("types.{}.members[{i}].type", node.id))
                })?;
            }
        }
        Ok(StorageLayout {
            storage,
            namespaces,
            types: self.types,
        })
    }

    fn members(&mut self, list: &[Value], path: &str) -> Result<Members, LayoutError> {
        if list.iter().all(Value::is_string) && !list.is_empty() {
            if list.len() > MAX_ENUM_MEMBERS {
                return Err(LayoutError::Limit {
                    what: path.into(),
                    max: MAX_ENUM_MEMBERS,
                });
            }
            let names = list
                .iter()
                .enumerate()
                .map(|(i, v)| as_str(v, &format!("{path}[{i}]")).map(str::to_string))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Members::Enum(names));
        }
        let items = self.items(list, path, false)?;
        Ok(Members::Struct(items))
    }

    /// Storage items (`require_slot` for top-level variables, which solc always lays out). Their types
    /// are checked once all are read.
    fn items(
        &mut self,
        list: &[Value],
        path: &str,
        require_slot: bool,
    ) -> Result<Vec<Item>, LayoutError> {
        if list.len() > MAX_LIST_LEN {
            return Err(LayoutError::Limit {
                what: path.into(),
                max: MAX_LIST_LEN,
            });
        }
        self.total_items += list.len();
        if self.total_items > MAX_TOTAL_ITEMS {
            return Err(LayoutError::Limit {
                what: "variables, fields and members".into(),
                max: MAX_TOTAL_ITEMS,
            });
        }
        let mut out = Vec::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let o = v
                .as_object()
                .ok_or_else(|| invalid(&p, "expected an object"))?;
            let label = as_str(
                o.get("label")
                    .ok_or_else(|| invalid(format!("{p}.label"), "missing"))?,
                &format!("{p}.label"),
            )?;
            let contract = match o.get("contract") {
                None | Some(Value::Null) => String::new(),
                Some(c) => as_str(c, &format!("{p}.contract"))?.to_string(),
            };
            let ty_id = as_str(
                o.get("type")
                    .ok_or_else(|| invalid(format!("{p}.type"), "missing"))?,
                &format!("{p}.type"),
            )?;
            let ty = self.intern(ty_id, 0, &format!("{p}.type"))?;
            let slot = match o.get("slot") {
                None | Some(Value::Null) => None,
                Some(s) => Some(as_uint(s, &format!("{p}.slot"))?),
            };
            let offset = match o.get("offset") {
                None | Some(Value::Null) => None,
                Some(s) => {
                    let off = s.as_u64().filter(|o| *o < 32);
                    Some(off.ok_or_else(|| {
                        invalid(format!("{p}.offset"), "expected an integer from 0 to 31")
                    })?)
                }
            };
            if require_slot && (slot.is_none() || offset.is_none()) {
                return Err(invalid(&p, "a storage variable needs its slot and offset"));
            }
            if slot.is_some() != offset.is_some() {
                return Err(invalid(&p, "slot and offset go together"));
            }
            out.push(Item {
                contract,
                label: label.to_string(),
                ty,
                slot,
                offset,
            });
        }
        Ok(out)
    }

    /// Parses a type identifier the way upgrades-core's `parseTypeId` does, interning it and its arguments.
    fn intern(&mut self, id: &str, depth: usize, path: &str) -> Result<usize, LayoutError> {
        if let Some(&i) = self.index.get(id) {
            return Ok(i);
        }
        if depth > MAX_TYPE_DEPTH {
            return Err(invalid(
                path,
                format!("type id nested deeper than {MAX_TYPE_DEPTH}"),
            ));
        }
        if id.len() > MAX_NAME_LEN {
            return Err(invalid(
                path,
                format!("type id longer than {MAX_NAME_LEN} bytes"),
            ));
        }
        if self.types.len() >= 4 * MAX_TYPES {
            return Err(LayoutError::Limit {
                what: "type ids".into(),
                max: 4 * MAX_TYPES,
            });
        }
        let parsed = parse_type_id(id)
            .map_err(|reason| invalid(path, format!("type id {id:?}: {reason}")))?;
        let args = match parsed.args {
            None => None,
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for a in list {
                    out.push(self.intern(a, depth + 1, path)?);
                }
                Some(out)
            }
        };
        // Return types (function types) are not compared by upgrades-core; they are parsed for validity.
        if let Some(rets) = parsed.rets {
            for r in rets {
                self.intern(r, depth + 1, path)?;
            }
        }
        let node = TypeNode {
            id: id.to_string(),
            head: parsed.head.to_string(),
            args,
            tail: parsed.tail.map(str::to_string),
            label: None,
            number_of_bytes: None,
            members: None,
            underlying: None,
        };
        self.types.push(node);
        self.index.insert(id.to_string(), self.types.len() - 1);
        Ok(self.types.len() - 1)
    }
}

struct ParsedId<'s> {
    head: &'s str,
    args: Option<Vec<&'s str>>,
    tail: Option<&'s str>,
    rets: Option<Vec<&'s str>>,
}

/// upgrades-core's `parseTypeId`: `head(args…)tail` or `head(args…)returns(rets…)`; stricter in that
/// parentheses must balance.
fn parse_type_id(id: &str) -> Result<ParsedId<'_>, String> {
    let bytes = id.as_bytes();
    // Parses a comma-separated list from just after '(' to its ')', returning (args, index after ')').
    fn list(id: &str, start: usize) -> Result<(Vec<&str>, usize), String> {
        let bytes = id.as_bytes();
        let mut args = Vec::new();
        let mut i = start;
        let mut pos = start;
        loop {
            let Some(d) = bytes[pos..]
                .iter()
                .position(|b| matches!(b, b'(' | b')' | b','))
            else {
                return Err("unbalanced parentheses".into());
            };
            let at = pos + d;
            pos = at + 1;
            if bytes[at] == b'(' {
                let mut depth = 1usize;
                while depth > 0 {
                    let Some(d) = bytes[pos..].iter().position(|b| matches!(b, b'(' | b')')) else {
                        return Err("unbalanced parentheses".into());
                    };
                    if bytes[pos + d] == b'(' {
                        depth += 1;
                    } else {
                        depth -= 1;
                    }
                    pos += d + 1;
                }
            } else {
                let sub = &id[i..at];
                if !sub.is_empty() {
                    args.push(sub);
                }
                i = at + 1;
                if bytes[at] == b')' {
                    return Ok((args, pos));
                }
            }
        }
    }
    if id.is_empty() {
        return Err("empty".into());
    }
    let Some(open) = bytes.iter().position(|b| *b == b'(') else {
        if bytes.contains(&b')') || bytes.contains(&b',') {
            return Err("unbalanced parentheses".into());
        }
        return Ok(ParsedId {
            head: id,
            args: None,
            tail: None,
            rets: None,
        });
    };
    let head = &id[..open];
    let (args, after) = list(id, open + 1)?;
    let rest = &id[after..];
    match rest.find('(') {
        None => {
            if rest.contains(')') || rest.contains(',') {
                return Err("unbalanced parentheses".into());
            }
            let tail = if rest.is_empty() { None } else { Some(rest) };
            Ok(ParsedId {
                head,
                args: Some(args),
                tail,
                rets: None,
            })
        }
        Some(p) => {
            if &rest[..p] != "returns" {
                return Err("expected `returns(` after the arguments".into());
            }
            let (rets, end) = list(id, after + p + 1)?;
            if end != id.len() {
                return Err("text after the return types".into());
            }
            Ok(ParsedId {
                head,
                args: Some(args),
                tail: None,
                rets: Some(rets),
            })
        }
    }
}

/// Renames and retypes the upgrade declares (the manifest lists them, as OZ's `@custom:oz-renamed-from`
/// and `@custom:oz-retyped-from` annotations do). They apply to storage variables of the new layout (as
/// OZ's annotations do: upgrades-core reads none on namespace fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// (old name, new name).
    pub renames: Vec<(String, String)>,
    /// (variable in the new layout, its old type's label as solc writes it, e.g. `bool`, `struct A.S`).
    pub retypes: Vec<(String, String)>,
}

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FindingKind {
    /// A variable inserted before existing ones, over storage an old variable used (OZ: `insert`).
    Inserted,
    /// A variable deleted (OZ: `delete`).
    Deleted,
    /// A different variable, of an incompatible type, in an old variable's place: a reorder, or a
    /// variable replaced (OZ: `replace`).
    Replaced,
    /// A variable renamed without a declared rename (OZ: `rename`).
    Renamed,
    /// A variable's type changed incompatibly (OZ: `typechange`).
    TypeChanged,
    /// A variable moved: slot, offset or size changed (OZ: `layoutchange`).
    LayoutChanged,
    /// A `__gap` shrunk or used up by variables not ending on the slot it ended on (OZ: `typechange` or
    /// `layoutchange` of a gap).
    GapMisfit,
    /// An ERC-7201 namespace with fields is gone (OZ: `delete-namespace`).
    NamespaceDeleted,
    /// The layouts could not be compared: a recursive type, or more work than breakglass bounds.
    Unverifiable,
}

impl FindingKind {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::Deleted => "deleted",
            Self::Replaced => "replaced",
            Self::Renamed => "renamed",
            Self::TypeChanged => "type changed",
            Self::LayoutChanged => "layout changed",
            Self::GapMisfit => "gap misfit",
            Self::NamespaceDeleted => "namespace deleted",
            Self::Unverifiable => "unverifiable",
        }
    }
}

/// One reason an upgrade's layout is unsafe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What happened.
    pub kind: FindingKind,
    /// The contract declaring the variable (solc's `path:Name`, or the name for namespace fields).
    pub contract: String,
    /// The variable (the new one, or the old one when deleted); for [`FindingKind::NamespaceDeleted`], the
    /// namespace id.
    pub variable: String,
    /// Its slot, decimal (relative to the namespace's root for namespace fields).
    pub slot: String,
    /// Its byte offset in the slot.
    pub offset: u64,
    /// The old type's label.
    pub old_type: Option<String>,
    /// The new type's label.
    pub new_type: Option<String>,
    /// The namespace (`erc7201:ID`) when the variable is a namespace field.
    pub namespace: Option<String>,
    /// One sentence naming the variable, its contract, slot and offset, and old → new type.
    pub message: String,
}

/// Compares an upgrade's layouts: empty means safe. `declared` lists renames and retypes the upgrade
/// intends. The storage variables are compared first, then each namespace of the old layout (by id).
pub fn compare(old: &StorageLayout, new: &StorageLayout, declared: &Declared) -> Vec<Finding> {
    let mut cmp = Comparator {
        old,
        new,
        cache: HashMap::new(),
        stack: HashSet::new(),
        work: 0,
        exhausted: false,
        recursive: false,
    };
    let old_fields: Vec<Field<'_>> = old.storage.iter().map(Field::plain).collect();
    let new_fields: Vec<Field<'_>> = new
        .storage
        .iter()
        .map(|item| Field {
            item,
            renamed_from: declared
                .renames
                .iter()
                .find(|(_, to)| *to == item.label)
                .map(|(from, _)| from.as_str()),
            retyped_from: declared
                .retypes
                .iter()
                .find(|(var, _)| *var == item.label)
                .map(|(_, from)| from.as_str()),
        })
        .collect();
    let mut findings = Vec::new();
    let ops = cmp.layout_levenshtein(&old_fields, &new_fields, true);
    for op in &ops {
        findings.push(cmp.finding(op, None));
    }
    for (id, old_items) in &old.namespaces {
        match new.namespaces.iter().find(|(n, _)| n == id) {
            Some((_, new_items)) => {
                let a: Vec<Field<'_>> = old_items.iter().map(Field::plain).collect();
                let b: Vec<Field<'_>> = new_items.iter().map(Field::plain).collect();
                for op in &cmp.layout_levenshtein(&a, &b, true) {
                    findings.push(cmp.finding(op, Some(id)));
                }
            }
            None if !old_items.is_empty() => {
                let root = namespace_root(id)
                    .map(|r| format!(" (root slot {r:#066x})"))
                    .unwrap_or_default();
                findings.push(Finding {
                    kind: FindingKind::NamespaceDeleted,
                    contract: old_items[0].contract.clone(),
                    variable: id.clone(),
                    slot: "0".into(),
                    offset: 0,
                    old_type: None,
                    new_type: None,
                    namespace: Some(id.clone()),
                    message: format!(
                        "namespace {id}{root} of {} is deleted: its {} field(s) ({}) would be orphaned; keep the \
                         struct annotated `@custom:storage-location {id}` even if unused",
                        old_items[0].contract,
                        old_items.len(),
                        old_items.iter().map(|i| i.label.as_str()).collect::<Vec<_>>().join(", "),
                    ),
                });
            }
            None => {}
        }
    }
    if cmp.exhausted || cmp.recursive {
        let why = if cmp.exhausted {
            "the comparison exceeded breakglass's work bound"
        } else {
            "a recursive struct type cannot be checked (upgrades-core refuses it too)"
        };
        if !findings.iter().any(|f| f.kind == FindingKind::Unverifiable) {
            findings.push(Finding {
                kind: FindingKind::Unverifiable,
                contract: String::new(),
                variable: String::new(),
                slot: String::new(),
                offset: 0,
                old_type: None,
                new_type: None,
                namespace: None,
                message: format!("storage layouts not verified: {why}"),
            });
        }
    }
    findings
}

/// The ERC-7201 root slot of a namespace id `erc7201:ID`:
/// `keccak256(abi.encode(uint256(keccak256(ID)) - 1)) & ~bytes32(uint256(0xff))`. None for other formulas.
pub fn namespace_root(namespace: &str) -> Option<U256> {
    let id = namespace.strip_prefix("erc7201:")?;
    let inner = U256::from_be_bytes(keccak256(id.as_bytes()).0).wrapping_sub(U256::from(1u8));
    let outer = U256::from_be_bytes(keccak256(inner.to_be_bytes::<32>()).0);
    Some(outer & !U256::from(0xffu8))
}

/// Storage slots the new layout uses that the old one did not: storage variables and namespace fields
/// (at the namespace root plus their slot), every slot a variable spans, `__gap`s excluded on both sides
/// (an old gap's slots are free; a new gap uses nothing). Dynamic data (mapping entries, dynamic arrays)
/// lives at hashed slots and is not listed, only the variable's own slot. Ascending, at most
/// [`MAX_APPENDED_SLOTS`] (the first ones). Namespaces of a formula other than `erc7201:` are skipped.
/// For a live check: each must read zero on the proxy before the upgrade.
pub fn appended_slots(old: &StorageLayout, new: &StorageLayout) -> Vec<U256> {
    let old_ranges = merge(used_ranges(old));
    let mut out = Vec::new();
    for (start, end) in merge(used_ranges(new)) {
        // Subtract the old ranges from [start, end).
        let mut cur = start;
        for &(os, oe) in &old_ranges {
            if oe <= cur || os >= end {
                continue;
            }
            if os > cur {
                push_range(&mut out, cur, os);
            }
            cur = cur.max(oe);
            if cur >= end {
                break;
            }
        }
        if cur < end {
            push_range(&mut out, cur, end);
        }
        if out.len() >= MAX_APPENDED_SLOTS {
            break;
        }
    }
    out.truncate(MAX_APPENDED_SLOTS);
    out
}

fn push_range(out: &mut Vec<U256>, start: U512, end: U512) {
    let modulus = U512::from(1u8) << 256;
    let mut s = start;
    while s < end && out.len() < MAX_APPENDED_SLOTS {
        let slot: U512 = s % modulus;
        out.push(U256::from_limbs_slice(&slot.as_limbs()[..4]));
        s += U512::from(1u8);
    }
}

fn merge(mut ranges: Vec<(U512, U512)>) -> Vec<(U512, U512)> {
    ranges.sort();
    let mut out: Vec<(U512, U512)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The slot ranges `[start, end)` a layout's variables and namespace fields use, gaps excluded.
fn used_ranges(layout: &StorageLayout) -> Vec<(U512, U512)> {
    let mut out = Vec::new();
    let mut add = |base: U256, item: &Item| {
        if is_gap(layout, item) {
            return;
        }
        let (Some(slot), Some(offset)) = (item.slot, item.offset) else {
            return;
        };
        let bytes = layout.bytes_of(item).unwrap_or(U256::from(1u8));
        let span_bytes = U512::from(offset) + U512::from(bytes);
        let slots = span_bytes.div_ceil(U512::from(32u8)).max(U512::from(1u8));
        let start = U512::from(base) + U512::from(slot);
        out.push((start, start + slots));
    };
    for item in &layout.storage {
        add(U256::ZERO, item);
    }
    for (id, items) in &layout.namespaces {
        if let Some(root) = namespace_root(id) {
            for item in items {
                add(root, item);
            }
        }
    }
    out
}

fn is_gap(layout: &StorageLayout, item: &Item) -> bool {
    layout.types[item.ty].head == "t_array"
        && (item.label == "__gap" || item.label.starts_with("__gap_"))
}

// ------------------------------------------------------------------------------------------- comparison

#[derive(Clone, Copy)]
struct Field<'a> {
    item: &'a Item,
    renamed_from: Option<&'a str>,
    retyped_from: Option<&'a str>,
}

impl<'a> Field<'a> {
    fn plain(item: &'a Item) -> Self {
        Field {
            item,
            renamed_from: None,
            retyped_from: None,
        }
    }
}

/// upgrades-core's type-change kinds.
#[derive(Debug, Clone)]
enum TypeChange<'a> {
    VisibilityChange,
    ObviousMismatch,
    MissingMembers,
    StructMembers(Vec<Op<'a>>),
    EnumMembers,
    TypeResize,
    MappingKey(Box<TypeChange<'a>>),
    MappingValue(Box<TypeChange<'a>>),
    ArrayDynamic,
    ArrayShrink,
    ArrayGrow,
    ArrayValue(Box<TypeChange<'a>>),
    Unknown,
    Recursive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LayoutChange {
    uncertain: bool,
    known_compatible: bool,
}

#[derive(Debug, Clone)]
enum OpKind<'a> {
    Insert,
    Append,
    Delete,
    Replace,
    Rename,
    TypeChange(TypeChange<'a>),
    LayoutChange(LayoutChange),
    ShrinkGap,
    FinishGap,
}

/// An operation on a list of fields. Fields in `original` belong to the old layout, in `updated` to the new.
#[derive(Debug, Clone)]
struct Op<'a> {
    kind: OpKind<'a>,
    original: Option<&'a Item>,
    updated: Option<&'a Item>,
}

const INSERTION_COST: u64 = 2;
const DELETION_COST: u64 = 2;
const CHANGE_COST: u64 = 3;
const LAYOUTCHANGE_COST: u64 = 1;
const FINISHGAP_COST: u64 = 1;
const SHRINKGAP_COST: u64 = 0;
const TYPECHANGE_COST: u64 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Nop,
    Change,
    Insert,
    Append,
    Delete,
}

type CacheKey = (usize, usize, bool);

struct Comparator<'a> {
    old: &'a StorageLayout,
    new: &'a StorageLayout,
    cache: HashMap<CacheKey, Option<TypeChange<'a>>>,
    stack: HashSet<CacheKey>,
    work: u64,
    exhausted: bool,
    recursive: bool,
}

fn label_of(layout: &StorageLayout, ty: usize) -> Option<&str> {
    layout.types[ty].label.as_deref()
}

/// upgrades-core's `stripContractSubstrings`: drops `contract `, `struct `, `enum ` at word starts.
fn strip_contract_substrings(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut prev_word = false;
    let mut i = 0;
    let bytes = label.as_bytes();
    while i < bytes.len() {
        if !prev_word {
            if let Some(w) = ["contract ", "struct ", "enum "]
                .iter()
                .find(|w| label[i..].starts_with(*w))
            {
                i += w.len();
                prev_word = false; // the removed text ends with a space
                continue;
            }
        }
        let c = label[i..].chars().next().unwrap_or(' ');
        out.push(c);
        prev_word = c.is_ascii_alphanumeric() || c == '_';
        i += c.len_utf8();
    }
    out
}

/// upgrades-core's `normalizeMemoryPointer`: `_memory_ptr` at a word end reads `_memory`.
fn normalize_memory_pointer(head: &str) -> String {
    let mut out = String::with_capacity(head.len());
    let mut rest = head;
    while let Some(p) = rest.find("_memory_ptr") {
        let after = &rest[p + "_memory_ptr".len()..];
        let boundary = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        out.push_str(&rest[..p]);
        out.push_str(if boundary { "_memory" } else { "_memory_ptr" });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `ceil(log2(max(2, n)) / 8)`: bytes an enum of n members takes.
fn enum_size(n: usize) -> u32 {
    let n = n.max(2);
    let bits = usize::BITS - (n - 1).leading_zeros(); // ceil(log2 n)
    bits.div_ceil(8)
}

/// An array type's length from its tail (`49_storage`, `dyn_storage`): `Some(None)` for dynamic.
fn array_length(tail: Option<&str>) -> Option<Option<U256>> {
    let tail = tail?;
    if tail.starts_with("dyn") {
        return Some(None);
    }
    let digits: &str = &tail[..tail.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    U256::from_str_radix(digits, 10).ok().map(Some)
}

impl<'a> Comparator<'a> {
    fn begin(item: &Item) -> Option<U512> {
        Some(U512::from(item.slot?) * U512::from(32u8) + U512::from(item.offset?))
    }

    fn end(layout: &StorageLayout, item: &Item) -> Option<U512> {
        Some(Self::begin(item)? + U512::from(layout.bytes_of(item)?))
    }

    fn has_layout(layout: &StorageLayout, item: &Item) -> bool {
        item.slot.is_some() && item.offset.is_some() && layout.bytes_of(item).is_some()
    }

    /// upgrades-core's `endMatchesGap`: `original` is a gap and both end on the same byte.
    fn end_matches_gap(&self, original: &Item, updated: &Item) -> bool {
        if !is_gap(self.old, original) {
            return false;
        }
        match (Self::end(self.old, original), Self::end(self.new, updated)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    fn layout_levenshtein(
        &mut self,
        original: &[Field<'a>],
        updated: &[Field<'a>],
        allow_append: bool,
    ) -> Vec<Op<'a>> {
        let ops = self.levenshtein(original, updated);
        ops.into_iter()
            .filter(|op| match op.kind {
                OpKind::Insert => {
                    let Some(u) = op.updated else { return true };
                    let (Some(us), Some(ue)) = (Self::begin(u), Self::end(self.new, u)) else {
                        return true;
                    };
                    original
                        .iter()
                        .filter(|f| !is_gap(self.old, f.item))
                        .any(
                            |f| match (Self::begin(f.item), Self::end(self.old, f.item)) {
                                (Some(os), Some(oe)) => os < ue && us < oe,
                                _ => true,
                            },
                        )
                }
                OpKind::ShrinkGap | OpKind::FinishGap => match (op.original, op.updated) {
                    (Some(o), Some(u)) => !self.end_matches_gap(o, u),
                    _ => true,
                },
                OpKind::Append => !allow_append,
                _ => true,
            })
            .collect()
    }

    /// upgrades-core's `levenshtein` with `getFieldChange`, same costs and the same tie-breaking (change,
    /// then insertion, then deletion).
    fn levenshtein(&mut self, a: &[Field<'a>], b: &[Field<'a>]) -> Vec<Op<'a>> {
        let (n, m) = (a.len(), b.len());
        let cells = ((n + 1) * (m + 1)) as u64;
        self.work = self.work.saturating_add(cells);
        if self.exhausted || self.work > WORK_BUDGET {
            self.exhausted = true;
            return Vec::new();
        }
        let w = m + 1;
        let mut cost = vec![0u64; (n + 1) * w];
        let mut kind = vec![Cell::Nop; (n + 1) * w];
        let insertion = |cost: &[u64], i: usize, j: usize| -> (Cell, u64) {
            let pred = cost[i * w + j - 1];
            if j > n {
                (Cell::Append, pred)
            } else {
                (Cell::Insert, pred + INSERTION_COST)
            }
        };
        for j in 1..=m {
            let (k, c) = insertion(&cost, 0, j);
            kind[j] = k;
            cost[j] = c;
        }
        for i in 1..=n {
            kind[i * w] = Cell::Delete;
            cost[i * w] = cost[(i - 1) * w] + DELETION_COST;
            for j in 1..=m {
                let pred = cost[(i - 1) * w + j - 1];
                let change = match self.field_change(&a[i - 1], &b[j - 1]) {
                    Some((_, c)) => (Cell::Change, pred + c),
                    None => (Cell::Nop, pred),
                };
                let ins = insertion(&cost, i, j);
                let del = (Cell::Delete, cost[(i - 1) * w + j] + DELETION_COST);
                let mut best = change;
                for cand in [ins, del] {
                    if cand.1 < best.1 {
                        best = cand;
                    }
                }
                kind[i * w + j] = best.0;
                cost[i * w + j] = best.1;
            }
        }
        let mut ops = Vec::new();
        let (mut i, mut j) = (n, m);
        while i > 0 || j > 0 {
            match kind[i * w + j] {
                Cell::Nop => {
                    i -= 1;
                    j -= 1;
                }
                Cell::Change => {
                    if let Some((op, _)) = self.field_change(&a[i - 1], &b[j - 1]) {
                        ops.push(op);
                    }
                    i -= 1;
                    j -= 1;
                }
                Cell::Insert | Cell::Append => {
                    let k = if kind[i * w + j] == Cell::Insert {
                        OpKind::Insert
                    } else {
                        OpKind::Append
                    };
                    ops.push(Op {
                        kind: k,
                        original: None,
                        updated: Some(b[j - 1].item),
                    });
                    j -= 1;
                }
                Cell::Delete => {
                    ops.push(Op {
                        kind: OpKind::Delete,
                        original: Some(a[i - 1].item),
                        updated: None,
                    });
                    i -= 1;
                }
            }
        }
        ops.reverse();
        ops
    }

    fn layout_change(&self, o: &Item, u: &Item) -> Option<LayoutChange> {
        if Self::has_layout(self.old, o) && Self::has_layout(self.new, u) {
            let changed = o.slot != u.slot
                || o.offset != u.offset
                || self.old.bytes_of(o) != self.new.bytes_of(u);
            changed.then_some(LayoutChange {
                uncertain: false,
                known_compatible: false,
            })
        } else {
            let group = ["uint8", "bool"];
            let ol = label_of(self.old, o.ty);
            let ul = label_of(self.new, u.ty);
            let known_compatible =
                ol.is_some_and(|l| group.contains(&l)) && ul.is_some_and(|l| group.contains(&l));
            Some(LayoutChange {
                uncertain: true,
                known_compatible,
            })
        }
    }

    /// upgrades-core's `getFieldChange`: the operation turning `o` into `u`, and its cost, or None.
    fn field_change(&mut self, o: &Field<'a>, u: &Field<'a>) -> Option<(Op<'a>, u64)> {
        let (oi, ui) = (o.item, u.item);
        let name_change = u.renamed_from != Some(oi.label.as_str())
            && (ui.label != oi.label
                || (u.renamed_from.is_some() && u.renamed_from != o.renamed_from));
        let retyped = match (label_of(self.old, oi.ty), u.retyped_from) {
            (Some(l), Some(r)) => {
                strip_contract_substrings(l) == strip_contract_substrings(r.trim())
            }
            (None, None) => true,
            _ => false,
        };
        let type_change = if retyped {
            None
        } else {
            self.type_change(oi.ty, ui.ty, false)
        };
        let layout_change = self.layout_change(oi, ui);
        let op = |kind| Op {
            kind,
            original: Some(oi),
            updated: Some(ui),
        };
        if u.retyped_from.is_some() {
            if let Some(lc) = layout_change {
                if !lc.uncertain || !lc.known_compatible {
                    return Some((op(OpKind::LayoutChange(lc)), LAYOUTCHANGE_COST));
                }
            }
        }
        if name_change && self.end_matches_gap(oi, ui) {
            return Some((op(OpKind::FinishGap), FINISHGAP_COST));
        }
        if matches!(type_change, Some(TypeChange::ArrayShrink)) && self.end_matches_gap(oi, ui) {
            return Some((op(OpKind::ShrinkGap), SHRINKGAP_COST));
        }
        match (type_change, name_change) {
            (Some(_), true) => Some((op(OpKind::Replace), CHANGE_COST)),
            (None, true) => Some((op(OpKind::Rename), CHANGE_COST)),
            (Some(tc), false) => Some((op(OpKind::TypeChange(tc)), TYPECHANGE_COST)),
            (None, false) => match layout_change {
                Some(lc) if !lc.uncertain => {
                    Some((op(OpKind::LayoutChange(lc)), LAYOUTCHANGE_COST))
                }
                _ => None,
            },
        }
    }

    /// upgrades-core's `getTypeChange` (cached; recursion is [`TypeChange::Recursive`]).
    fn type_change(&mut self, o: usize, u: usize, allow_append: bool) -> Option<TypeChange<'a>> {
        let key = (o, u, allow_append);
        if let Some(c) = self.cache.get(&key) {
            return c.clone();
        }
        if self.stack.contains(&key) {
            self.recursive = true;
            return Some(TypeChange::Recursive);
        }
        self.stack.insert(key);
        let result = self.uncached_type_change(o, u, allow_append);
        self.stack.remove(&key);
        self.cache.insert(key, result.clone());
        result
    }

    fn uncached_type_change(
        &mut self,
        o: usize,
        u: usize,
        allow_append: bool,
    ) -> Option<TypeChange<'a>> {
        let (old, new) = (self.old, self.new);
        let (ot, ut) = (&old.types[o], &new.types[u]);
        if ot.head.starts_with("t_function") && ut.head.starts_with("t_function") {
            let vis = |h: &str| {
                ["t_function_internal", "t_function_external"]
                    .into_iter()
                    .find(|p| h.starts_with(p))
            };
            return match (vis(&ot.head), vis(&ut.head)) {
                (Some(a), Some(b)) if a == b => None,
                (Some(_), Some(_)) => Some(TypeChange::VisibilityChange),
                _ => Some(TypeChange::Unknown),
            };
        }
        if (ot.head == "t_contract" && ut.head == "t_address")
            || (ot.head == "t_address" && ut.head == "t_contract")
        {
            return None;
        }
        if normalize_memory_pointer(&ot.head) != normalize_memory_pointer(&ut.head) {
            return Some(TypeChange::ObviousMismatch);
        }
        let (Some(oargs), Some(uargs)) = (&ot.args, &ut.args) else {
            return if ot.args.is_none() && ut.args.is_none() {
                None
            } else {
                Some(TypeChange::Unknown)
            };
        };
        match ot.head.as_str() {
            "t_contract" => None,
            "t_struct" => {
                let (Some(Members::Struct(om)), Some(Members::Struct(um))) =
                    (&ot.members, &ut.members)
                else {
                    return Some(TypeChange::MissingMembers);
                };
                let a: Vec<Field<'a>> = om.iter().map(Field::plain).collect();
                let b: Vec<Field<'a>> = um.iter().map(Field::plain).collect();
                let ops = self.layout_levenshtein(&a, &b, allow_append);
                if ops.is_empty() {
                    None
                } else {
                    Some(TypeChange::StructMembers(ops))
                }
            }
            "t_enum" => match (&ot.members, &ut.members) {
                (Some(Members::Enum(om)), Some(Members::Enum(um))) => {
                    if enum_size(om.len()) != enum_size(um.len()) {
                        return Some(TypeChange::TypeResize);
                    }
                    enum_members_changed(om, um).then_some(TypeChange::EnumMembers)
                }
                (None, _) | (_, None) => {
                    // solc's layout alone (forge inspect) has no enum members: compare sizes.
                    match (ot.number_of_bytes, ut.number_of_bytes) {
                        (Some(a), Some(b)) if a == b => None,
                        (Some(_), Some(_)) => Some(TypeChange::TypeResize),
                        _ => Some(TypeChange::MissingMembers),
                    }
                }
                _ => Some(TypeChange::MissingMembers),
            },
            "t_mapping" => {
                let ([ok, ov], [uk, uv]) = (oargs.as_slice(), uargs.as_slice()) else {
                    return Some(TypeChange::Unknown);
                };
                let key_change = if old.types[*ok].head == "unknown" {
                    None
                } else {
                    self.type_change(*ok, *uk, false)
                };
                if let Some(k) = key_change {
                    return Some(TypeChange::MappingKey(Box::new(k)));
                }
                self.type_change(*ov, *uv, true)
                    .map(|inner| TypeChange::MappingValue(Box::new(inner)))
            }
            "t_array" => {
                let (Some(ol), Some(ul)) = (
                    array_length(ot.tail.as_deref()),
                    array_length(ut.tail.as_deref()),
                ) else {
                    return Some(TypeChange::Unknown);
                };
                if ol.is_none() != ul.is_none() {
                    return Some(TypeChange::ArrayDynamic);
                }
                if let (Some(ol), Some(ul)) = (ol, ul) {
                    if ul < ol {
                        return Some(TypeChange::ArrayShrink);
                    }
                    if !allow_append && ul > ol {
                        return Some(TypeChange::ArrayGrow);
                    }
                }
                let (Some(oe), Some(ue)) = (oargs.first(), uargs.first()) else {
                    return Some(TypeChange::Unknown);
                };
                self.type_change(*oe, *ue, false)
                    .map(|inner| TypeChange::ArrayValue(Box::new(inner)))
            }
            "t_userDefinedValueType" => {
                let underlying_match = ot.underlying.is_some() && ot.underlying == ut.underlying;
                match (ot.number_of_bytes, ut.number_of_bytes) {
                    (Some(a), Some(b)) if a == b => None,
                    (Some(_), Some(_)) => Some(TypeChange::TypeResize),
                    _ if underlying_match => None,
                    _ => Some(TypeChange::Unknown),
                }
            }
            _ => Some(TypeChange::Unknown),
        }
    }

    // ------------------------------------------------------------------------------------- findings

    fn finding(&self, op: &Op<'a>, namespace: Option<&str>) -> Finding {
        let (old, new) = (self.old, self.new);
        let o = op.original;
        let u = op.updated;
        let main = u.or(o);
        let (contract, variable, slot, offset) = match main {
            Some(it) => (
                it.contract.clone(),
                it.label.clone(),
                it.slot.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                it.offset.unwrap_or(0),
            ),
            None => (String::new(), String::new(), "?".into(), 0),
        };
        let old_type = o.map(|i| old.type_label(i.ty));
        let new_type = u.map(|i| new.type_label(i.ty));
        let gap = o.is_some_and(|i| is_gap(old, i));
        let kind = match &op.kind {
            // Appends are safe at the top level; inside a struct they are part of its type change.
            OpKind::Insert | OpKind::Append => FindingKind::Inserted,
            OpKind::Delete => FindingKind::Deleted,
            OpKind::Replace => FindingKind::Replaced,
            OpKind::Rename => FindingKind::Renamed,
            OpKind::TypeChange(tc) if contains_recursive(tc) => FindingKind::Unverifiable,
            OpKind::TypeChange(_) | OpKind::LayoutChange(_) if gap => FindingKind::GapMisfit,
            OpKind::TypeChange(_) => FindingKind::TypeChanged,
            OpKind::LayoutChange(_) => FindingKind::LayoutChanged,
            OpKind::ShrinkGap | OpKind::FinishGap => FindingKind::GapMisfit,
        };
        let short = |c: &str| c.rsplit(':').next().unwrap_or(c).to_string();
        let at = |it: &Item| -> String {
            let mut s = match it.slot {
                Some(slot) => format!("slot {slot}, offset {}", it.offset.unwrap_or(0)),
                None => "an unknown slot".into(),
            };
            if let (Some(ns), Some(slot)) = (namespace, it.slot) {
                let _ = write!(s, " of namespace {ns}");
                if let Some(root) = namespace_root(ns) {
                    let _ = write!(s, " (slot {:#x})", root.wrapping_add(slot));
                }
            }
            s
        };
        let name = |it: &Item| format!("`{}` of {}", it.label, short(&it.contract));
        let message = match (&op.kind, o, u) {
            (OpKind::Insert, _, Some(u)) => format!(
                "{} ({}) is inserted at {}, over storage an existing variable uses: new variables must come after all existing ones",
                name(u),
                new.type_label(u.ty),
                at(u)
            ),
            (OpKind::Append, _, Some(u)) => format!(
                "member {} ({}) is appended at {} to a struct that has no room for it",
                name(u),
                new.type_label(u.ty),
                at(u)
            ),
            (OpKind::Delete, Some(o), _) => format!(
                "{} ({}) at {} is deleted: keep the variable even if unused",
                name(o),
                old.type_label(o.ty),
                at(o)
            ),
            (OpKind::Replace, Some(o), Some(u)) => format!(
                "{} ({}) at {} replaces {} ({}) at {}: a different variable of an incompatible type in its place",
                name(u),
                new.type_label(u.ty),
                at(u),
                name(o),
                old.type_label(o.ty),
                at(o)
            ),
            (OpKind::Rename, Some(o), Some(u)) => format!(
                "{} at {} was `{}` ({} → {}): renamed without a declared rename",
                name(u),
                at(u),
                o.label,
                old.type_label(o.ty),
                new.type_label(u.ty)
            ),
            (OpKind::TypeChange(tc), Some(o), Some(u)) => format!(
                "{} at {} changes type {} → {}: {}",
                name(u),
                at(u),
                old.type_label(o.ty),
                new.type_label(u.ty),
                self.explain(tc)
            ),
            (OpKind::LayoutChange(lc), Some(o), Some(u)) => format!(
                "{} {} from {} ({}) to {} ({})",
                name(u),
                if lc.uncertain { "may move (its position or size is unknown)" } else { "moves" },
                at(o),
                old.type_label(o.ty),
                at(u),
                new.type_label(u.ty)
            ),
            (OpKind::ShrinkGap | OpKind::FinishGap, Some(o), Some(u)) => format!(
                "{} ({}) at {} does not end on the slot gap {} ({}) ended on",
                name(u),
                new.type_label(u.ty),
                at(u),
                name(o),
                old.type_label(o.ty)
            ),
            _ => format!("{} at {}", kind.name(), main.map(at).unwrap_or_default()),
        };
        let message = if gap && matches!(kind, FindingKind::GapMisfit) {
            let (o, u) = (
                o.map(|i| (i, Self::end(old, i))),
                u.map(|i| (i, Self::end(new, i))),
            );
            match (o, u) {
                (Some((_, Some(oe))), Some((_, Some(ue)))) => format!(
                    "{message}; the gap ended before byte {oe} (slot {}), now before byte {ue} (slot {}): shrink the gap by exactly the slots the new variables take",
                    oe / U512::from(32u8),
                    ue / U512::from(32u8)
                ),
                _ => message,
            }
        } else {
            message
        };
        Finding {
            kind,
            contract,
            variable,
            slot,
            offset,
            old_type,
            new_type,
            namespace: namespace.map(str::to_string),
            message,
        }
    }

    fn explain(&self, tc: &TypeChange<'a>) -> String {
        match tc {
            TypeChange::VisibilityChange => "function type of a different visibility".into(),
            TypeChange::ObviousMismatch => "a different type".into(),
            TypeChange::MissingMembers => {
                "members of the struct or enum unknown, cannot be checked".into()
            }
            TypeChange::StructMembers(ops) => {
                let parts: Vec<String> = ops.iter().map(|op| self.explain_member(op)).collect();
                format!("struct members changed ({})", parts.join("; "))
            }
            TypeChange::EnumMembers => {
                "enum members deleted, inserted or reordered (only appending is safe)".into()
            }
            TypeChange::TypeResize => "a different size in storage".into(),
            TypeChange::MappingKey(inner) => {
                format!("the mapping key changes: {}", self.explain(inner))
            }
            TypeChange::MappingValue(inner) => {
                format!("the mapping value changes: {}", self.explain(inner))
            }
            TypeChange::ArrayDynamic => "dynamic ↔ static array".into(),
            TypeChange::ArrayShrink => "the array shrinks".into(),
            TypeChange::ArrayGrow => "the array grows in place (what follows it moves)".into(),
            TypeChange::ArrayValue(inner) => {
                format!("the array element changes: {}", self.explain(inner))
            }
            TypeChange::Unknown => "types not comparable".into(),
            TypeChange::Recursive => "a recursive type, cannot be checked".into(),
        }
    }

    fn explain_member(&self, op: &Op<'a>) -> String {
        let (old, new) = (self.old, self.new);
        match (&op.kind, op.original, op.updated) {
            (OpKind::Insert, _, Some(u)) => format!("member `{}` inserted", u.label),
            (OpKind::Append, _, Some(u)) => {
                format!("member `{}` appended where the struct has no room", u.label)
            }
            (OpKind::Delete, Some(o), _) => format!("member `{}` deleted", o.label),
            (OpKind::Replace, Some(o), Some(u)) => {
                format!("member `{}` replaced by `{}`", o.label, u.label)
            }
            (OpKind::Rename, Some(o), Some(u)) => {
                format!("member `{}` renamed to `{}`", o.label, u.label)
            }
            (OpKind::TypeChange(tc), Some(o), Some(u)) => format!(
                "member `{}` {} → {}: {}",
                u.label,
                old.type_label(o.ty),
                new.type_label(u.ty),
                self.explain(tc)
            ),
            (OpKind::LayoutChange(_), _, Some(u)) => format!("member `{}` moves", u.label),
            _ => "member changed".into(),
        }
    }
}

fn contains_recursive(tc: &TypeChange<'_>) -> bool {
    match tc {
        TypeChange::Recursive => true,
        TypeChange::MappingKey(i) | TypeChange::MappingValue(i) | TypeChange::ArrayValue(i) => {
            contains_recursive(i)
        }
        TypeChange::StructMembers(ops) => ops.iter().any(|op| match &op.kind {
            OpKind::TypeChange(tc) => contains_recursive(tc),
            _ => false,
        }),
        _ => false,
    }
}

/// upgrades-core's enum member comparison: a Levenshtein over the names (replace 3, insert and delete 2,
/// append free), any operation but an append is a change.
fn enum_members_changed(a: &[String], b: &[String]) -> bool {
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    let mut cost = vec![0u64; (n + 1) * w];
    let mut kind = vec![Cell::Nop; (n + 1) * w];
    for j in 1..=m {
        let (k, c) = if j > n {
            (Cell::Append, cost[j - 1])
        } else {
            (Cell::Insert, cost[j - 1] + INSERTION_COST)
        };
        kind[j] = k;
        cost[j] = c;
    }
    for i in 1..=n {
        kind[i * w] = Cell::Delete;
        cost[i * w] = cost[(i - 1) * w] + DELETION_COST;
        for j in 1..=m {
            let pred = cost[(i - 1) * w + j - 1];
            let mut best = if a[i - 1] == b[j - 1] {
                (Cell::Nop, pred)
            } else {
                (Cell::Change, pred + CHANGE_COST)
            };
            let ins = if j > n {
                (Cell::Append, cost[i * w + j - 1])
            } else {
                (Cell::Insert, cost[i * w + j - 1] + INSERTION_COST)
            };
            let del = (Cell::Delete, cost[(i - 1) * w + j] + DELETION_COST);
            for cand in [ins, del] {
                if cand.1 < best.1 {
                    best = cand;
                }
            }
            kind[i * w + j] = best.0;
            cost[i * w + j] = best.1;
        }
    }
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        match kind[i * w + j] {
            Cell::Nop => {
                i -= 1;
                j -= 1;
            }
            Cell::Append => j -= 1,
            _ => return true,
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(label: &str, bytes: u32) -> Value {
        json!({ "encoding": "inplace", "label": label, "numberOfBytes": bytes.to_string() })
    }

    /// A layout of `(label, type id, slot, offset)` with the standard types.
    fn layout(vars: &[(&str, &str, u64, u64)]) -> StorageLayout {
        layout_with(vars, json!({}))
    }

    fn layout_with(vars: &[(&str, &str, u64, u64)], extra_types: Value) -> StorageLayout {
        let mut types = json!({
            "t_uint256": ty("uint256", 32),
            "t_uint128": ty("uint128", 16),
            "t_uint8": ty("uint8", 1),
            "t_bool": ty("bool", 1),
            "t_address": ty("address", 20),
            "t_array(t_uint256)49_storage": ty("uint256[49]", 49 * 32),
            "t_array(t_uint256)48_storage": ty("uint256[48]", 48 * 32),
            "t_array(t_uint256)47_storage": ty("uint256[47]", 47 * 32),
        });
        for (k, v) in extra_types.as_object().unwrap() {
            types[k] = v.clone();
        }
        let storage: Vec<Value> = vars
            .iter()
            .map(|(label, t, slot, offset)| {
                json!({ "astId": 1, "contract": "src/V.sol:V", "label": label, "offset": offset, "slot": slot.to_string(), "type": t })
            })
            .collect();
        StorageLayout::from_json(
            json!({ "storage": storage, "types": types })
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn kinds(f: &[Finding]) -> Vec<(FindingKind, &str)> {
        f.iter().map(|f| (f.kind, f.variable.as_str())).collect()
    }

    fn err(json: &str) -> String {
        StorageLayout::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parse_errors_are_clear() {
        assert!(
            err("not json").contains("not valid JSON"),
            "{}",
            err("not json")
        );
        assert!(err("[]").contains("expected an object"));
        assert!(err("{}").contains("storage: missing"), "{}", err("{}"));
        assert!(err(r#"{"storage": 1, "types": {}}"#).contains("storage: expected an array"));
        let e = err(
            r#"{"storage":[{"label":"a","type":"t_uint256","slot":"x","offset":0}],"types":{"t_uint256":{"label":"uint256","numberOfBytes":"32"}}}"#,
        );
        assert!(
            e.contains("storage[0].slot") && e.contains("decimal"),
            "{e}"
        );
        let e = err(
            r#"{"storage":[{"label":"a","type":"t_uint256","slot":"0","offset":32}],"types":{"t_uint256":{"label":"uint256","numberOfBytes":"32"}}}"#,
        );
        assert!(e.contains("storage[0].offset"), "{e}");
        let e = err(
            r#"{"storage":[{"label":"a","type":"t_uint8","slot":"0","offset":0}],"types":{"t_uint256":{"label":"uint256","numberOfBytes":"32"}}}"#,
        );
        assert!(e.contains("t_uint8 is not in types"), "{e}");
        let e = err(
            r#"{"storage":[{"label":"a","type":"t_uint256","offset":0}],"types":{"t_uint256":{"label":"uint256","numberOfBytes":"32"}}}"#,
        );
        assert!(e.contains("needs its slot"), "{e}");
        let e = err(
            r#"{"storage":[],"types":{"t_mapping(t_address,t_uint256":{"label":"m","numberOfBytes":"32"}}}"#,
        );
        assert!(e.contains("unbalanced"), "{e}");
        let e = err(r#"{"storage":[],"types":{"t_uint256":{"numberOfBytes":"32"}}}"#);
        assert!(e.contains("types.t_uint256.label: missing"), "{e}");
        let e = err(
            r#"{"storage":[],"types":{"t_struct(S)1_storage":{"label":"struct S","numberOfBytes":"32","members":[{"label":"x","type":"t_bytes7","slot":"0","offset":0}]}}}"#,
        );
        assert!(e.contains("t_bytes7 is not in types"), "{e}");
        let e = err(r#"{"storage":[],"types":{},"namespaces":{"erc7201:x":{}}}"#);
        assert!(e.contains("namespaces.erc7201:x: expected an array"), "{e}");
        let e = err(&format!(
            r#"{{"storage":[],"types":{{"{}":{{"label":"x"}}}}}}"#,
            "t_a(".repeat(40) + &")".repeat(40)
        ));
        assert!(e.contains("nested deeper"), "{e}");
        // Bounds.
        let big = vec![b' '; MAX_FILE_BYTES + 1];
        assert!(matches!(
            StorageLayout::from_json(&big),
            Err(LayoutError::TooLarge { .. })
        ));
        let items: Vec<Value> = (0..=MAX_LIST_LEN)
            .map(|i| json!({"label": format!("v{i}"), "type": "t_uint256", "slot": i.to_string(), "offset": 0}))
            .collect();
        let too_many =
            json!({"storage": items, "types": {"t_uint256": ty("uint256", 32)}}).to_string();
        assert!(matches!(
            StorageLayout::from_json(too_many.as_bytes()),
            Err(LayoutError::Limit { .. })
        ));
        // solc writes `"types": null` for a contract without storage; a Foundry artifact wraps the layout.
        assert!(StorageLayout::from_json(br#"{"storage":[],"types":null}"#)
            .unwrap()
            .is_empty());
        let wrapped = r#"{"abi":[],"storageLayout":{"storage":[{"astId":3,"contract":"a.sol:A","label":"a","offset":0,"slot":"0","type":"t_uint256"}],"types":{"t_uint256":{"encoding":"inplace","label":"uint256","numberOfBytes":"32"}}}}"#;
        assert_eq!(
            StorageLayout::from_json(wrapped.as_bytes()).unwrap().len(),
            1
        );
    }

    #[test]
    fn mangled_files_are_refused_or_compared_without_panicking() {
        let base = json!({
            "storage": [
                {"astId": 1, "contract": "a.sol:A", "label": "m", "offset": 0, "slot": "0", "type": "t_mapping(t_address,t_struct(S)4_storage)"},
                {"astId": 2, "contract": "a.sol:A", "label": "__gap", "offset": 0, "slot": "1", "type": "t_array(t_uint256)49_storage"}
            ],
            "types": {
                "t_address": ty("address", 20),
                "t_uint256": ty("uint256", 32),
                "t_array(t_uint256)49_storage": ty("uint256[49]", 49 * 32),
                "t_mapping(t_address,t_struct(S)4_storage)": {"label": "mapping(address => struct A.S)", "numberOfBytes": "32"},
                "t_struct(S)4_storage": {"label": "struct A.S", "numberOfBytes": "64", "members": [
                    {"label": "x", "type": "t_uint256", "slot": "0", "offset": 0},
                    {"label": "y", "type": "t_address", "slot": "1", "offset": 0}
                ]}
            },
            "namespaces": {"erc7201:a": [{"contract": "A", "label": "z", "type": "t_uint256", "slot": "0", "offset": 0}]}
        })
        .to_string();
        let good = StorageLayout::from_json(base.as_bytes()).unwrap();
        let bytes = base.as_bytes();
        for cut in 0..bytes.len() {
            assert!(StorageLayout::from_json(&bytes[..cut]).is_err());
        }
        let mut loaded = 0;
        for i in 0..bytes.len() {
            for c in [b'0', b'9', b'(', b')', b',', b'"', b'_', b'x'] {
                let mut m = bytes.to_vec();
                m[i] = c;
                if let Ok(l) = StorageLayout::from_json(&m) {
                    loaded += 1;
                    let _ = compare(&good, &l, &Declared::default());
                    let _ = compare(&l, &good, &Declared::default());
                    let _ = appended_slots(&good, &l);
                    let _ = appended_slots(&l, &good);
                }
            }
        }
        assert!(loaded > 0);
    }

    #[test]
    fn type_ids_parse_like_upgrades_core() {
        let p = parse_type_id("t_mapping(t_address,t_mapping(t_uint256,t_bool))").unwrap();
        assert_eq!(p.head, "t_mapping");
        assert_eq!(
            p.args.unwrap(),
            vec!["t_address", "t_mapping(t_uint256,t_bool)"]
        );
        let p = parse_type_id("t_array(t_uint256)49_storage").unwrap();
        assert_eq!((p.head, p.tail), ("t_array", Some("49_storage")));
        let p =
            parse_type_id("t_function_internal_nonpayable(t_uint256,t_uint256)returns(t_address)")
                .unwrap();
        assert_eq!(p.rets.unwrap(), vec!["t_address"]);
        let p = parse_type_id("t_struct(S)12_storage").unwrap();
        assert_eq!(
            (p.head, p.args.unwrap(), p.tail),
            ("t_struct", vec!["S"], Some("12_storage"))
        );
        assert!(parse_type_id("t_a)").is_err());
        assert_eq!(
            strip_contract_substrings("mapping(address => contract IERC20)"),
            "mapping(address => IERC20)"
        );
        assert_eq!(strip_contract_substrings("struct A.S"), "A.S");
        assert_eq!(strip_contract_substrings("mystruct x"), "mystruct x");
        assert_eq!(
            normalize_memory_pointer("t_string_memory_ptr"),
            "t_string_memory"
        );
        assert_eq!(
            (
                enum_size(2),
                enum_size(256),
                enum_size(257),
                enum_size(65536),
                enum_size(65537)
            ),
            (1, 1, 2, 2, 3)
        );
    }

    #[test]
    fn append_is_safe_insert_delete_reorder_are_not() {
        let v1 = layout(&[("a", "t_uint256", 0, 0), ("b", "t_uint256", 1, 0)]);
        let append = layout(&[
            ("a", "t_uint256", 0, 0),
            ("b", "t_uint256", 1, 0),
            ("c", "t_uint256", 2, 0),
        ]);
        assert_eq!(compare(&v1, &append, &Declared::default()), vec![]);
        let insert = layout(&[
            ("a", "t_uint256", 0, 0),
            ("x", "t_uint256", 1, 0),
            ("b", "t_uint256", 2, 0),
        ]);
        let f = compare(&v1, &insert, &Declared::default());
        assert_eq!(
            kinds(&f),
            vec![
                (FindingKind::Inserted, "x"),
                (FindingKind::LayoutChanged, "b")
            ]
        );
        assert!(
            f[0].message.contains("`x` of V") && f[0].message.contains("slot 1, offset 0"),
            "{}",
            f[0].message
        );
        let delete = layout(&[("a", "t_uint256", 0, 0)]);
        assert_eq!(
            kinds(&compare(&v1, &delete, &Declared::default())),
            vec![(FindingKind::Deleted, "b")]
        );
        let v1 = layout(&[("a", "t_uint256", 0, 0), ("b", "t_address", 1, 0)]);
        let swapped = layout(&[("b", "t_address", 0, 0), ("a", "t_uint256", 1, 0)]);
        assert!(!compare(&v1, &swapped, &Declared::default()).is_empty());
        let retyped = layout(&[("a", "t_uint128", 0, 0), ("b", "t_address", 1, 0)]);
        let f = compare(&v1, &retyped, &Declared::default());
        assert_eq!(kinds(&f), vec![(FindingKind::TypeChanged, "a")]);
        assert_eq!(
            (f[0].old_type.as_deref(), f[0].new_type.as_deref()),
            (Some("uint256"), Some("uint128"))
        );
        assert!(
            f[0].message.contains("uint256 → uint128"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn declared_renames_and_retypes() {
        let v1 = layout(&[("admin", "t_address", 0, 0), ("flag", "t_bool", 0, 20)]);
        let v2 = layout(&[("guardian", "t_address", 0, 0), ("flag", "t_uint8", 0, 20)]);
        let f = compare(&v1, &v2, &Declared::default());
        assert_eq!(
            kinds(&f),
            vec![
                (FindingKind::Renamed, "guardian"),
                (FindingKind::TypeChanged, "flag")
            ]
        );
        let declared = Declared {
            renames: vec![("admin".into(), "guardian".into())],
            retypes: vec![("flag".into(), "bool".into())],
        };
        assert_eq!(compare(&v1, &v2, &declared), vec![]);
        // A declared retype still may not move the variable.
        let moved = layout(&[("guardian", "t_address", 0, 0), ("flag", "t_uint8", 0, 21)]);
        assert_eq!(
            kinds(&compare(&v1, &moved, &declared)),
            vec![(FindingKind::LayoutChanged, "flag")]
        );
    }

    #[test]
    fn gaps_may_shrink_only_to_the_same_end() {
        let v1 = layout(&[
            ("a", "t_uint256", 0, 0),
            ("__gap", "t_array(t_uint256)49_storage", 1, 0),
        ]);
        let fits = layout(&[
            ("a", "t_uint256", 0, 0),
            ("b", "t_uint256", 1, 0),
            ("__gap", "t_array(t_uint256)48_storage", 2, 0),
        ]);
        assert_eq!(compare(&v1, &fits, &Declared::default()), vec![]);
        let misfit = layout(&[
            ("a", "t_uint256", 0, 0),
            ("b", "t_uint256", 1, 0),
            ("c", "t_uint256", 2, 0),
            ("__gap", "t_array(t_uint256)48_storage", 3, 0),
        ]);
        let f = compare(&v1, &misfit, &Declared::default());
        assert_eq!(kinds(&f), vec![(FindingKind::GapMisfit, "__gap")]);
        assert!(
            f[0].message.contains("slot 50") && f[0].message.contains("slot 51"),
            "{}",
            f[0].message
        );
        // The new variables are in the old gap's slots: they must read zero; the shrunk gap is not listed.
        assert_eq!(appended_slots(&v1, &fits), vec![U256::from(1)]);
    }

    #[test]
    fn enums_without_members_compare_by_size() {
        let e = |n: u32| json!({ "t_enum(E)3": { "encoding": "inplace", "label": "enum V.E", "numberOfBytes": n.to_string() } });
        let v1 = layout_with(&[("e", "t_enum(E)3", 0, 0)], e(1));
        assert_eq!(
            compare(
                &v1,
                &layout_with(&[("e", "t_enum(E)3", 0, 0)], e(1)),
                &Declared::default()
            ),
            vec![]
        );
        let f = compare(
            &v1,
            &layout_with(&[("e", "t_enum(E)3", 0, 0)], e(2)),
            &Declared::default(),
        );
        assert_eq!(kinds(&f), vec![(FindingKind::TypeChanged, "e")]);
        // With members (as layouts.js writes them), reordering is an error, appending is not.
        let m = |names: &[&str]| json!({ "t_enum(E)3": { "label": "enum V.E", "numberOfBytes": "1", "members": names } });
        let v1 = layout_with(&[("e", "t_enum(E)3", 0, 0)], m(&["A", "B"]));
        let appended = layout_with(&[("e", "t_enum(E)3", 0, 0)], m(&["A", "B", "C"]));
        let reordered = layout_with(&[("e", "t_enum(E)3", 0, 0)], m(&["B", "A"]));
        assert_eq!(compare(&v1, &appended, &Declared::default()), vec![]);
        assert_eq!(
            kinds(&compare(&v1, &reordered, &Declared::default())),
            vec![(FindingKind::TypeChanged, "e")]
        );
    }

    #[test]
    fn recursive_structs_are_unverifiable_not_safe() {
        let types = json!({
            "t_struct(Node)5_storage": { "label": "struct V.Node", "numberOfBytes": "64", "members": [
                { "label": "value", "type": "t_uint256", "slot": "0", "offset": 0 },
                { "label": "children", "type": "t_mapping(t_uint256,t_struct(Node)5_storage)", "slot": "1", "offset": 0 }
            ]},
            "t_mapping(t_uint256,t_struct(Node)5_storage)": { "label": "mapping(uint256 => struct V.Node)", "numberOfBytes": "32" }
        });
        let v = layout_with(&[("root", "t_struct(Node)5_storage", 0, 0)], types);
        let f = compare(&v, &v, &Declared::default());
        assert!(
            f.iter().any(|f| f.kind == FindingKind::Unverifiable),
            "{f:?}"
        );
    }

    #[test]
    fn namespaces_per_namespace_and_their_slots() {
        // EIP-7201's own example.
        let root = namespace_root("erc7201:example.main").unwrap();
        assert_eq!(
            format!("{root:#066x}"),
            "0x183a6125c38840424c4a85fa12bab2ab606c4b6d0e7cc73c0c06ba5300eab500"
        );
        assert_eq!(namespace_root("other:x"), None);
        let ns = |fields: &[&str]| {
            let items: Vec<Value> = fields
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"contract": "V", "label": l, "type": "t_uint256", "slot": i.to_string(), "offset": 0}))
                .collect();
            json!({"storage": [], "types": {"t_uint256": ty("uint256", 32)}, "namespaces": {"erc7201:example.main": items}})
        };
        let load = |v: Value| StorageLayout::from_json(v.to_string().as_bytes()).unwrap();
        let v1 = load(ns(&["x"]));
        let v2 = load(ns(&["x", "y"]));
        assert_eq!(compare(&v1, &v2, &Declared::default()), vec![]);
        assert_eq!(appended_slots(&v1, &v2), vec![root + U256::from(1)]);
        let ins = load(ns(&["w", "x"]));
        let f = compare(&v1, &ins, &Declared::default());
        assert_eq!(f[0].kind, FindingKind::Inserted);
        assert_eq!(f[0].namespace.as_deref(), Some("erc7201:example.main"));
        let gone = load(json!({"storage": [], "types": {}}));
        let f = compare(&v1, &gone, &Declared::default());
        assert_eq!(
            kinds(&f),
            vec![(FindingKind::NamespaceDeleted, "erc7201:example.main")]
        );
        assert!(f[0].message.contains("0x183a6125"), "{}", f[0].message);
        // A new namespace is safe, and all of its slots are appended.
        assert_eq!(compare(&gone, &v2, &Declared::default()), vec![]);
        assert_eq!(appended_slots(&gone, &v2), vec![root, root + U256::from(1)]);
    }

    #[test]
    fn largest_layouts_compare_in_bounded_time() {
        // The most variables a list may hold, every one different: the whole matrix is computed.
        let n = MAX_LIST_LEN;
        let vars = |prefix: &str| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"label": format!("{prefix}{i}"), "type": "t_uint256", "slot": i.to_string(), "offset": 0}))
                .collect()
        };
        let load = |prefix: &str| {
            let v = json!({"storage": vars(prefix), "types": {"t_uint256": ty("uint256", 32)}});
            StorageLayout::from_json(v.to_string().as_bytes()).unwrap()
        };
        let (a, b) = (load("a"), load("b"));
        let t0 = std::time::Instant::now();
        let f = compare(&a, &b, &Declared::default());
        assert_eq!(f.len(), n);
        assert!(f.iter().all(|f| f.kind == FindingKind::Renamed));
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn appended_slots_span_whole_variables() {
        let v1 = layout(&[("a", "t_uint128", 0, 0)]);
        let v2 = layout(&[
            ("a", "t_uint128", 0, 0),
            ("p", "t_uint128", 0, 16),
            ("g", "t_array(t_uint256)47_storage", 1, 0),
        ]);
        // Packed into slot 0 (used before): nothing new; g is named like no gap, so its 47 slots are new.
        assert_eq!(compare(&v1, &v2, &Declared::default()), vec![]);
        let slots = appended_slots(&v1, &v2);
        assert_eq!(slots.len(), 47);
        assert_eq!((slots[0], slots[46]), (U256::from(1), U256::from(47)));
    }
}
