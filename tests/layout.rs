//! Issue 18: breakglass's storage-layout verdict equals OpenZeppelin upgrades-core's own, pair by pair.
//!
//! `scripts/npm/layouts.js` compiles tests/contracts/layout/*.sol (each file a pair: contracts V1 and V2)
//! with the pinned solc-js, writes each side's layout file as breakglass reads it, and runs the pinned
//! `@openzeppelin/upgrades-core`'s comparison on the same compiler output. Here every pair's layout files
//! go through `breakglass::layout::compare`, and both verdicts must agree: safe or not, and the same
//! findings (kind and variable). Each pair's intended verdict is written below too, so the two tools
//! cannot agree on a wrong answer unnoticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use alloy::primitives::U256;
use breakglass::layout::{
    appended_slots, compare, namespace_root, Declared, Finding, FindingKind, StorageLayout,
};
use serde_json::Value;

use crate::support::anvil::node_modules;

/// (pair, declared renames/retypes on breakglass's side, intended verdict: safe?)
fn table() -> Vec<(&'static str, Declared, bool)> {
    let none = Declared::default;
    let rename = |a: &str, b: &str| Declared {
        renames: vec![(a.into(), b.into())],
        retypes: vec![],
    };
    let retype = |a: &str, b: &str| Declared {
        renames: vec![],
        retypes: vec![(a.into(), b.into())],
    };
    vec![
        // The list.
        ("Append", none(), true),
        ("MiddleInsert", none(), false),
        ("Delete", none(), false),
        ("Reorder", none(), false),
        ("Uint256ToUint128", none(), false),
        ("AddressToUint160", none(), false),
        ("EnumGrow", none(), true),
        ("EnumGrowPastByte", none(), false),
        ("StructMember", none(), false),
        ("MappingKey", none(), false),
        ("StaticArrayResize", none(), false),
        ("GapShrinkFits", none(), true),
        ("GapShrinkMisfit", none(), false),
        ("NamespaceAppend", none(), true),
        ("NamespaceDelete", none(), false),
        ("InheritanceReorder", none(), false),
        ("DeclaredRename", rename("admin", "guardian"), true),
        // More of upgrades-core's rules.
        ("UndeclaredRename", none(), false),
        ("DeclaredRetype", retype("flag", "bool"), true),
        ("DynamicToStatic", none(), false),
        ("AddressToContract", none(), true),
        ("EnumAppendSmall", none(), true),
        ("EnumReorder", none(), false),
        ("StructAppendInPlace", none(), false),
        ("MappingValueStructAppend", none(), true),
        ("PackedInsertFree", none(), true),
        ("PackedInsertOverlap", none(), false),
        ("GapFinish", none(), true),
        ("NamespaceInsert", none(), false),
        ("NamespaceAdd", none(), true),
    ]
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// layouts.js's report and the layout files it wrote (by path), run once for the tests of this module.
struct Fixtures {
    report: Value,
    files: BTreeMap<String, Vec<u8>>,
    elapsed: std::time::Duration,
}

fn fixtures() -> &'static Fixtures {
    static ONCE: OnceLock<Fixtures> = OnceLock::new();
    ONCE.get_or_init(|| {
        let t0 = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let report = run_layouts_js(dir.path());
        let mut files = BTreeMap::new();
        for p in report["pairs"].as_array().unwrap() {
            for side in ["old", "new"] {
                let path = p[side].as_str().unwrap().to_string();
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                files.insert(path, bytes);
            }
        }
        Fixtures {
            report,
            files,
            elapsed: t0.elapsed(),
        }
    })
}

/// Runs layouts.js into `out`: its JSON report.
fn run_layouts_js(out: &Path) -> Value {
    let modules = node_modules();
    assert!(
        modules
            .join("@openzeppelin/upgrades-core/package.json")
            .is_file(),
        "@openzeppelin/upgrades-core is not installed in {}: run scripts/setup.sh",
        modules.display()
    );
    let output = Command::new("node")
        .current_dir(repo_root())
        .arg("scripts/npm/layouts.js")
        .arg(&modules)
        .arg(out)
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "layouts.js failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("layouts.js prints JSON")
}

fn bytes(path: &str) -> &'static [u8] {
    &fixtures().files[path]
}

fn load(path: &str) -> StorageLayout {
    StorageLayout::from_json(bytes(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// upgrades-core's operations as (breakglass kind, variable), sorted.
fn oz_findings(ops: &[Value]) -> Vec<(FindingKind, String)> {
    let mut out: Vec<(FindingKind, String)> = ops
        .iter()
        .map(|op| {
            let s = |k: &str| op[k].as_str().unwrap_or("").to_string();
            let gap = op["originalIsGap"].as_bool().unwrap_or(false);
            let kind = match s("kind").as_str() {
                "insert" | "append" => FindingKind::Inserted,
                "delete" => FindingKind::Deleted,
                "replace" => FindingKind::Replaced,
                "rename" => FindingKind::Renamed,
                "typechange" | "layoutchange" if gap => FindingKind::GapMisfit,
                "typechange" => FindingKind::TypeChanged,
                "layoutchange" => FindingKind::LayoutChanged,
                "shrinkgap" | "finishgap" => FindingKind::GapMisfit,
                "delete-namespace" => FindingKind::NamespaceDeleted,
                other => panic!("upgrades-core operation kind {other:?} has no breakglass kind"),
            };
            let variable = match kind {
                FindingKind::NamespaceDeleted => s("namespace"),
                FindingKind::Deleted => s("original"),
                _ => s("updated"),
            };
            (kind, variable)
        })
        .collect();
    out.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
    out
}

fn bg_findings(findings: &[Finding]) -> Vec<(FindingKind, String)> {
    let mut out: Vec<(FindingKind, String)> = findings
        .iter()
        .map(|f| (f.kind, f.variable.clone()))
        .collect();
    out.sort_by(|a, b| (a.0.name(), &a.1).cmp(&(b.0.name(), &b.1)));
    out
}

/// The words breakglass's message uses for each of upgrades-core's type-change kinds.
fn explanation(change: &str) -> &'static str {
    match change {
        "obvious mismatch" => "a different type",
        "type resize" => "a different size in storage",
        "struct members" => "struct members changed",
        "enum members" => "enum members deleted, inserted or reordered",
        "mapping key" => "the mapping key changes",
        "mapping value" => "the mapping value changes",
        "array dynamic" => "dynamic ↔ static array",
        "array shrink" => "the array shrinks",
        "array grow" => "the array grows in place",
        "array value" => "the array element changes",
        "visibility change" => "function type of a different visibility",
        "missing members" => "members of the struct or enum unknown",
        other => panic!("upgrades-core type change {other:?} not mapped"),
    }
}

/// The layout file as `forge inspect … storageLayout --json` writes it: no enum members, no namespaces.
fn forge_shaped(path: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bytes(path)).unwrap();
    v.as_object_mut().unwrap().remove("namespaces");
    for (_, t) in v["types"].as_object_mut().unwrap().iter_mut() {
        if t["members"]
            .as_array()
            .is_some_and(|m| m.iter().all(Value::is_string))
        {
            t.as_object_mut().unwrap().remove("members");
        }
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn breakglass_verdict_equals_upgrades_core_on_every_pair() {
    let t0 = Instant::now();
    let report = &fixtures().report;
    let js_time = fixtures().elapsed;
    let pairs = report["pairs"].as_array().unwrap();
    let table = table();
    let names: Vec<&str> = pairs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for (name, _, _) in &table {
        assert!(
            names.contains(name),
            "pair {name} missing from layouts.js's report ({names:?})"
        );
    }
    for n in &names {
        assert!(
            table.iter().any(|(t, _, _)| t == n),
            "pair {n} has no row in tests/layout.rs's table"
        );
    }
    assert!(pairs.len() >= 16);

    let mut rows = Vec::new();
    for pair in pairs {
        let name = pair["name"].as_str().unwrap();
        let (_, declared, intended_safe) = table.iter().find(|(t, _, _)| *t == name).unwrap();
        let old_path = pair["old"].as_str().unwrap();
        let new_path = pair["new"].as_str().unwrap();
        let (old, new) = (load(old_path), load(new_path));
        let findings = compare(&old, &new, declared);
        let oz_ok = pair["oz"]["ok"].as_bool().unwrap();
        let oz = oz_findings(pair["oz"]["ops"].as_array().unwrap());
        let bg = bg_findings(&findings);
        let explain = pair["oz"]["explain"].as_str().unwrap_or("");
        assert_eq!(oz_ok, *intended_safe, "{name}: upgrades-core says ok={oz_ok}, the fixture intends {intended_safe}:\n{explain}");
        assert_eq!(
            findings.is_empty(),
            oz_ok,
            "{name}: breakglass {findings:#?}\nupgrades-core:\n{explain}"
        );
        assert_eq!(
            bg, oz,
            "{name}: findings differ\nbreakglass: {findings:#?}\nupgrades-core:\n{explain}"
        );
        // upgrades-core's kind of type change is the one breakglass explains.
        for op in pair["oz"]["ops"].as_array().unwrap() {
            let Some(change) = op["change"].as_str() else {
                continue;
            };
            let var = op["updated"].as_str().unwrap();
            let f = findings.iter().find(|f| {
                f.variable == var
                    && matches!(f.kind, FindingKind::TypeChanged | FindingKind::GapMisfit)
            });
            let f = f.unwrap_or_else(|| panic!("{name}: no type change of {var} in {findings:#?}"));
            assert!(
                f.message.contains(explanation(change)),
                "{name}: upgrades-core: {change}, breakglass: {}",
                f.message
            );
        }
        for f in &findings {
            // Each finding names its variable, contract and position.
            assert!(f.message.contains(&f.variable), "{name}: {}", f.message);
            if f.kind != FindingKind::NamespaceDeleted {
                let contract = f.contract.rsplit(':').next().unwrap();
                assert!(f.message.contains(contract), "{name}: {}", f.message);
                assert!(
                    f.message.contains(&format!("slot {}", f.slot)),
                    "{name}: {}",
                    f.message
                );
            }
        }
        // A declared rename or retype is what makes those pairs safe on breakglass's side.
        if *declared != Declared::default() {
            assert!(
                !compare(&old, &new, &Declared::default()).is_empty(),
                "{name}: safe without its declaration"
            );
        }
        // The same files as forge writes them (solc's output alone) load, and give the same verdict where
        // they carry what the check needs (no enums, no namespaces).
        let (fo, fnew) = (forge_shaped(old_path), forge_shaped(new_path));
        let (fo, fnew) = (
            StorageLayout::from_json(&fo).unwrap(),
            StorageLayout::from_json(&fnew).unwrap(),
        );
        if !name.starts_with("Enum") && !name.starts_with("Namespace") {
            assert_eq!(
                bg_findings(&compare(&fo, &fnew, declared)),
                bg,
                "{name}: forge-shaped files judged differently"
            );
        }
        let oz_kinds: Vec<String> = pair["oz"]["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| {
                let change = op["change"]
                    .as_str()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                let var = op["updated"]
                    .as_str()
                    .or(op["original"].as_str())
                    .or(op["namespace"].as_str())
                    .unwrap_or("");
                format!("{}{change} {var}", op["kind"].as_str().unwrap())
            })
            .collect();
        let bg_kinds: Vec<String> = findings
            .iter()
            .map(|f| format!("{} {}", f.kind.name(), f.variable))
            .collect();
        rows.push((
            name.to_string(),
            oz_ok,
            oz_kinds.join(", "),
            bg_kinds.join(", "),
        ));
        for f in &findings {
            eprintln!("    {name}: {}", f.message);
        }
    }
    eprintln!(
        "solc {}, @openzeppelin/upgrades-core {}; layouts.js {:.1?}, total {:.1?}",
        report["solc"].as_str().unwrap_or("?"),
        report["upgradesCore"].as_str().unwrap_or("?"),
        js_time,
        t0.elapsed()
    );
    for (name, ok, oz, bg) in &rows {
        eprintln!(
            "{name:<26} {:<6} oz: [{oz}]  breakglass: [{bg}]",
            if *ok { "safe" } else { "UNSAFE" }
        );
    }
}

/// The slots a live check must find zero: new variables' slots, a used-up gap's slots, a namespace's.
#[test]
fn appended_slots_of_the_fixture_pairs() {
    let report = &fixtures().report;
    let pairs: BTreeMap<&str, &Value> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p))
        .collect();
    let slots = |name: &str| {
        let p = pairs[name];
        appended_slots(
            &load(p["old"].as_str().unwrap()),
            &load(p["new"].as_str().unwrap()),
        )
    };
    let n = |v: &[u64]| v.iter().map(|s| U256::from(*s)).collect::<Vec<_>>();
    let root = namespace_root("erc7201:example.main").unwrap();
    assert_eq!(slots("Append"), n(&[2]));
    // b and c take the gap's first two slots (the gap's slots were never written).
    assert_eq!(slots("GapShrinkFits"), n(&[1, 2]));
    assert_eq!(slots("GapFinish"), n(&[1, 2]));
    // Packed into the free half of slot 0, which the old layout used: nothing new.
    assert_eq!(slots("PackedInsertFree"), n(&[]));
    assert_eq!(slots("NamespaceAppend"), vec![root + U256::from(2)]);
    assert_eq!(slots("NamespaceAdd"), vec![root]);
    assert_eq!(slots("StaticArrayResize"), n(&[4]));
}
