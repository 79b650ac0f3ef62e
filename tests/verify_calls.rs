//! `breakglass verify` on the transaction corpus in `tests/fixtures/calls/` (built with Foundry's `cast`
//! by `tests/fixtures/calls/gen.py`; the fields are described there), through the real binary:
//!
//! * every fixture: exit code, the exact sets of critical / refused / warning codes, the matched
//!   actions in order, the exact call-tree paths, a verdict on every node and on nothing else, and for
//!   Safe transactions the three hashes, recomputed here from the report's Safe tx fields with `cast
//!   keccak` / `cast abi-encode` (the fields themselves are checked against the fixture's flags, and a
//!   Transaction Builder file's batch against its own encoding with `cast`);
//! * the same fixture as text: verdict line first, CRITICAL lines before any other finding, every call
//!   path in the tree with its verdict, and the safeTxHash in the groups a Ledger shows;
//! * against a real Safe 1.4.1 on anvil: `safe_tx_hash` and `domain_separator` equal the contract's
//!   `getTransactionHash(…)` and `domainSeparator()`, `cast wallet sign --data` (Foundry's EIP-712) signs
//!   the same digest, and those signatures execute the batch on chain.
//!
//! A fixture may carry `"known_bug": "…"`: its mismatches are printed instead of failing the test, and
//! the test fails once it passes (so the marker is removed when the bug is fixed).

use crate::support::anvil::{
    cast_offline, checksum, Anvil, DEFAULT_ADDRESSES, DEFAULT_KEYS, DEPLOYER_KEY,
    MULTISEND_CALL_ONLY_141, ZERO_ADDRESS,
};
use crate::support::bin::{repo, Run, Sandbox};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// At least this many `fail_*` fixtures must exist.
const MIN_FAIL_FIXTURES: usize = 20;

const DEMO_SAFE: &str = "0x5AFe00000000000000000000000000000000a11C";
const DEMO_CHAIN: u64 = 31337;
const SAFE_TX_SIG: &str =
    "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)";
/// keccak256("EIP712Domain(uint256 chainId,address verifyingContract)") (PROTOCOLS.md §5).
const DOMAIN_TYPEHASH: &str = "0x47e79534a245952e8b16893a336b85a3d9ea9fa8c573f3d803afb92a79469218";

fn fixtures_dir() -> PathBuf {
    repo().join("tests/fixtures/calls")
}

fn demo_manifest() -> String {
    repo().join("examples/demo.toml").display().to_string()
}

/// `(name, fixture)` for every `*.json` in the fixture folder, sorted.
fn fixtures() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(fixtures_dir())
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", fixtures_dir().display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn fixture(name: &str) -> Value {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("fixture {name} is missing"))
        .1
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The fixture's `args`, with the `--safe-json` file made absolute.
fn fixture_args(fx: &Value) -> Vec<String> {
    let mut args = strs(&fx["args"]);
    for i in 1..args.len() {
        if args[i - 1] == "--safe-json" {
            args[i] = fixtures_dir().join(&args[i]).display().to_string();
        }
    }
    args
}

/// The value of `--flag` in the fixture's args.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `verify` under the demo manifest, pinned (the fixtures' verdicts are a trusted manifest's).
fn run_verify(sb: &Sandbox, args: &[String], json: bool) -> Run {
    let manifest = demo_manifest();
    let pin = format!(
        "{:#x}",
        alloy::primitives::keccak256(std::fs::read(&manifest).unwrap())
    );
    let mut all: Vec<&str> = vec!["--manifest", &manifest, "--pin", &pin];
    if json {
        all.push("--json");
    }
    all.extend(args.iter().map(String::as_str));
    sb.run(&all)
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Integer in decimal or 0x-hex (the report prints U256 as 0x-hex) → decimal string for cast.
fn dec(s: &str) -> String {
    if let Some(h) = s.strip_prefix("0x") {
        cast_offline(&[
            "to-dec",
            &format!("0x{}", if h.is_empty() { "0" } else { h }),
        ])
    } else {
        s.to_string()
    }
}

/// Safe EIP-712 hashes computed with cast only: `(domain_separator, message_hash, safe_tx_hash)`.
#[allow(clippy::too_many_arguments)]
fn cast_safe_hashes(
    chain_id: u64,
    safe: &str,
    to: &str,
    value: &str,
    data: &str,
    operation: u8,
    safe_tx_gas: &str,
    base_gas: &str,
    gas_price: &str,
    gas_token: &str,
    refund_receiver: &str,
    nonce: &str,
) -> (String, String, String) {
    let typehash = cast_offline(&[
        "keccak",
        "SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)",
    ]);
    let domain = cast_offline(&[
        "keccak",
        &cast_offline(&[
            "abi-encode",
            "f(bytes32,uint256,address)",
            DOMAIN_TYPEHASH,
            &chain_id.to_string(),
            safe,
        ]),
    ]);
    let data_hash = cast_offline(&["keccak", if data.is_empty() { "0x" } else { data }]);
    let message = cast_offline(&[
        "keccak",
        &cast_offline(&[
            "abi-encode",
            "f(bytes32,address,uint256,bytes32,uint8,uint256,uint256,uint256,address,address,uint256)",
            &typehash,
            to,
            &dec(value),
            &data_hash,
            &operation.to_string(),
            &dec(safe_tx_gas),
            &dec(base_gas),
            &dec(gas_price),
            gas_token,
            refund_receiver,
            &dec(nonce),
        ]),
    ]);
    let digest = cast_offline(&[
        "keccak",
        &cast_offline(&["concat-hex", "0x1901", &domain, &message]),
    ]);
    (domain, message, digest)
}

/// Depth-first tree paths of a report's `tree`.
fn tree_paths(node: &Value, out: &mut Vec<String>) {
    out.push(node["path"].as_str().unwrap_or("?").to_string());
    for c in node["children"].as_array().into_iter().flatten() {
        tree_paths(c, out);
    }
}

fn codes(report: &Value, severity: &str) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn set(v: &Value) -> BTreeSet<String> {
    strs(v).into_iter().collect()
}

/// What a Transaction Builder file should become, encoded with cast: `(to, data, operation)`.
fn builder_expected(path: &Path) -> (String, String, u8) {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut entries = Vec::new();
    let txs = doc["transactions"].as_array().unwrap();
    for t in txs {
        let data = match t["data"].as_str() {
            Some(d) if d != "0x" && !d.is_empty() => d.to_string(),
            _ if t["contractMethod"].is_object() => {
                let m = &t["contractMethod"];
                let inputs = m["inputs"].as_array().unwrap();
                let types: Vec<&str> = inputs.iter().map(|i| i["type"].as_str().unwrap()).collect();
                let sig = format!("{}({})", m["name"].as_str().unwrap(), types.join(","));
                let vals: Vec<String> = inputs
                    .iter()
                    .map(|i| {
                        let v = &t["contractInputsValues"][i["name"].as_str().unwrap()];
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                let mut a = vec!["calldata", sig.as_str()];
                a.extend(vals.iter().map(String::as_str));
                cast_offline(&a)
            }
            _ => "0x".to_string(),
        };
        entries.push((
            t["to"].as_str().unwrap().to_string(),
            t["value"].as_str().unwrap_or("0").to_string(),
            data,
        ));
    }
    if entries.len() == 1 {
        let (to, _, data) = entries.remove(0);
        return (to, data, 0);
    }
    let packed: Vec<String> = entries
        .iter()
        .map(|(to, value, data)| {
            let len = ((data.len() - 2) / 2).to_string();
            cast_offline(&[
                "abi-encode",
                "--packed",
                "f(uint8,address,uint256,uint256,bytes)",
                "0",
                to,
                value,
                &len,
                data,
            ])
        })
        .collect();
    let mut a = vec!["concat-hex"];
    a.extend(packed.iter().map(String::as_str));
    let packed = cast_offline(&a);
    (
        MULTISEND_CALL_ONLY_141.to_string(),
        cast_offline(&["calldata", "multiSend(bytes)", &packed]),
        1,
    )
}

/// Checks one fixture through `--json`; returns every mismatch.
fn check_json(name: &str, fx: &Value, r: &Run) -> Vec<String> {
    let mut errs = Vec::new();
    let mut e = |m: String| errs.push(format!("{name}: {m}"));
    let want_exit = fx["expect_exit"].as_i64().unwrap() as i32;
    if r.code != want_exit {
        e(format!(
            "exit {} (want {want_exit})\nstdout: {}\nstderr: {}",
            r.code, r.stdout, r.stderr
        ));
    }
    let Ok(v) = serde_json::from_str::<Value>(&r.stdout) else {
        e(format!(
            "--json printed no JSON: {:?} / {:?}",
            r.stdout, r.stderr
        ));
        return errs;
    };
    if let Some(want) = fx.get("expect_error") {
        if v["ok"] != false {
            e(format!("expected an error envelope, got {v}"));
            return errs;
        }
        if v["error"]["kind"] != want["kind"] {
            e(format!(
                "error kind {} (want {})",
                v["error"]["kind"], want["kind"]
            ));
        }
        if v["exit_code"] != json!(want_exit) {
            e(format!(
                "envelope exit_code {} (want {want_exit})",
                v["exit_code"]
            ));
        }
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        for s in strs(&want["contains"]) {
            if !msg.contains(&s) {
                e(format!("error message {msg:?} lacks {s:?}"));
            }
        }
        if v["error"]["hint"].as_str().unwrap_or_default().is_empty() {
            e("error has no hint".into());
        }
        return errs;
    }
    if v.get("tree").is_none() {
        e(format!("no report: {v}\nstderr: {}", r.stderr));
        return errs;
    }
    // Findings, exactly.
    for (sev, key) in [
        ("critical", "expect_critical"),
        ("refused", "expect_refused"),
        ("warning", "expect_warnings"),
    ] {
        let got = codes(&v, sev);
        let want = set(&fx[key]);
        if got != want {
            e(format!(
                "{sev} codes {got:?} (want {want:?}); findings: {}",
                v["findings"]
            ));
        }
    }
    // Findings come most severe first.
    let order = |s: &str| match s {
        "critical" => 0,
        "refused" => 1,
        "warning" => 2,
        _ => 3,
    };
    let sevs: Vec<i32> = v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| order(f["severity"].as_str().unwrap_or("")))
        .collect();
    if sevs.windows(2).any(|w| w[0] > w[1]) {
        e(format!(
            "findings are not sorted most severe first: {}",
            v["findings"]
        ));
    }
    let allowed = v["allowed"].as_bool().unwrap_or(false);
    if allowed != (want_exit == 0) {
        e(format!("allowed = {allowed} but exit {want_exit} expected"));
    }
    if allowed && (!codes(&v, "critical").is_empty() || !codes(&v, "refused").is_empty()) {
        e("allowed with critical or refused findings".into());
    }
    // Actions, in call order.
    let got_actions = strs(&v["actions"]);
    let want_actions = strs(&fx["expect_actions"]);
    if got_actions != want_actions {
        e(format!("actions {got_actions:?} (want {want_actions:?})"));
    }
    // Tree paths, and one verdict per node, no more.
    let mut paths = Vec::new();
    tree_paths(&v["tree"], &mut paths);
    let want_paths = strs(&fx["expect_paths"]);
    if paths != want_paths {
        e(format!("tree paths {paths:?} (want {want_paths:?})"));
    }
    let verdicts = v["verdicts"].as_object().cloned().unwrap_or_default();
    for p in &paths {
        match verdicts.get(p).and_then(|x| x["verdict"].as_str()) {
            Some("allowed" | "structural" | "refused") => {}
            other => e(format!("node {p} has no verdict ({other:?})")),
        }
        if let Some(Value::Object(vd)) = verdicts.get(p) {
            let ok = match vd["verdict"].as_str() {
                Some("allowed") => vd["action"].as_str().is_some_and(|s| !s.is_empty()),
                Some("structural") => vd["what"].as_str().is_some_and(|s| !s.is_empty()),
                Some("refused") => vd["reason"].as_str().is_some_and(|s| !s.is_empty()),
                _ => false,
            };
            if !ok {
                e(format!(
                    "verdict of {p} is incomplete: {}",
                    Value::Object(vd.clone())
                ));
            }
        }
    }
    let unknown: Vec<&String> = verdicts.keys().filter(|k| !paths.contains(k)).collect();
    if !unknown.is_empty() {
        e(format!("verdicts for paths not in the tree: {unknown:?}"));
    }
    // A refused or critical verdict at a path carries a finding there, and vice versa.
    for f in v["findings"].as_array().into_iter().flatten() {
        if let Some(p) = f["path"].as_str() {
            if !paths.iter().any(|x| x == p) {
                e(format!("finding at unknown path {p}: {f}"));
            } else if matches!(f["severity"].as_str(), Some("critical" | "refused"))
                && verdicts.get(p).and_then(|x| x["verdict"].as_str()) != Some("refused")
            {
                e(format!(
                    "finding {f} but the verdict of {p} is {}",
                    verdicts[p]
                ));
            }
        }
    }
    for (p, vd) in &verdicts {
        if vd["verdict"] == "refused"
            && !v["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["path"] == p.as_str())
        {
            e(format!("node {p} is refused without a finding"));
        }
    }
    if let Some(at) = fx.get("expect_findings_at").and_then(Value::as_object) {
        for (p, code) in at {
            let hit = v["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|f| f["path"] == p.as_str() && f["code"] == *code);
            if !hit {
                e(format!("no {code} finding at {p}: {}", v["findings"]));
            }
        }
    }
    if let Some(want) = fx.get("expect_verdicts").and_then(Value::as_object) {
        for (p, verdict) in want {
            let got = &verdicts
                .get(p)
                .map(|x| x["verdict"].clone())
                .unwrap_or(Value::Null);
            if got != verdict {
                e(format!("verdict of {p} is {got} (want {verdict})"));
            }
        }
    }
    // Matched actions appear as allowed verdicts, in call order.
    let allowed_actions: Vec<String> = paths
        .iter()
        .filter_map(|p| verdicts.get(p))
        .filter(|x| x["verdict"] == "allowed")
        .map(|x| x["action"].as_str().unwrap().to_string())
        .collect();
    if allowed_actions != got_actions {
        e(format!(
            "allowed verdicts {allowed_actions:?} differ from actions {got_actions:?}"
        ));
    }
    // Manifest identity and chain.
    if v["manifest"] != "Acme Lending (demo)" {
        e(format!("manifest name {}", v["manifest"]));
    }
    let args = fixture_args(fx);
    let want_chain = flag(&args, "--chain-id")
        .map(|c| c.parse::<u64>().unwrap())
        .unwrap_or(DEMO_CHAIN);
    let is_builder = flag(&args, "--safe-json").is_some();
    let want_chain = match flag(&args, "--safe-json") {
        Some(path) if flag(&args, "--chain-id").is_none() => {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            doc["chainId"]
                .as_str()
                .map_or(DEMO_CHAIN, |c| c.parse().unwrap())
        }
        _ => want_chain,
    };
    if v["chain_id"] != json!(want_chain) {
        e(format!("chain_id {} (want {want_chain})", v["chain_id"]));
    }
    // The root node is the transaction given.
    let root = &v["tree"];
    if !is_builder {
        if lower(root["to"].as_str().unwrap_or("")) != lower(flag(&args, "--to").unwrap()) {
            e(format!(
                "tree root to {} (want {:?})",
                root["to"],
                flag(&args, "--to")
            ));
        }
        if lower(root["data"].as_str().unwrap_or("")) != lower(flag(&args, "--data").unwrap()) {
            e(format!(
                "tree root data {} differs from --data",
                root["data"]
            ));
        }
    }
    // Safe transactions: the fields and the three hashes, recomputed with cast.
    let ctx = &v["context"];
    let is_safe = flag(&args, "--safe").is_some() || is_builder;
    match (is_safe, ctx["kind"].as_str()) {
        (true, Some("safe")) => {
            let tx = &ctx["tx"];
            let hashes = &ctx["hashes"];
            for k in ["domain_separator", "message_hash", "safe_tx_hash"] {
                let h = hashes[k].as_str().unwrap_or("");
                if h.len() != 66 || !h.starts_with("0x") {
                    e(format!(
                        "context.hashes.{k} is not a 32-byte hash: {}",
                        hashes[k]
                    ));
                }
            }
            let op: u8 = match tx["operation"].as_str() {
                Some("call") => 0,
                Some("delegate_call" | "delegatecall") => 1,
                other => {
                    e(format!("context.tx.operation {other:?}"));
                    0
                }
            };
            let (want_to, want_data, want_op, want_safe) = if is_builder {
                let path = PathBuf::from(flag(&args, "--safe-json").unwrap());
                let doc: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let (to, data, op) = builder_expected(&path);
                let safe = doc["meta"]["createdFromSafeAddress"]
                    .as_str()
                    .unwrap_or(DEMO_SAFE)
                    .to_string();
                (to, data, op, safe)
            } else {
                (
                    flag(&args, "--to").unwrap().to_string(),
                    flag(&args, "--data").unwrap().to_string(),
                    flag(&args, "--operation").unwrap_or("0").parse().unwrap(),
                    flag(&args, "--safe").unwrap().to_string(),
                )
            };
            let s = |k: &str| tx[k].as_str().unwrap_or("").to_string();
            if lower(&s("to")) != lower(&want_to) {
                e(format!("Safe tx to {} (want {want_to})", s("to")));
            }
            if lower(&s("data")) != lower(&want_data) {
                e(format!("Safe tx data {} (want {want_data})", s("data")));
            }
            if op != want_op {
                e(format!("Safe tx operation {op} (want {want_op})"));
            }
            if lower(ctx["safe"].as_str().unwrap_or("")) != lower(&want_safe) {
                e(format!("context.safe {} (want {want_safe})", ctx["safe"]));
            }
            for (k, fl, default) in [
                ("value", "--value", "0"),
                ("nonce", "--nonce", "0"),
                ("safe_tx_gas", "--safe-tx-gas", "0"),
                ("gas_price", "--gas-price", "0"),
            ] {
                let want = flag(&args, fl).unwrap_or(default);
                if dec(&s(k)) != dec(want) {
                    e(format!("Safe tx {k} {} (want {want})", s(k)));
                }
            }
            for (k, fl) in [
                ("gas_token", "--gas-token"),
                ("refund_receiver", "--refund-receiver"),
            ] {
                let want = flag(&args, fl).unwrap_or(ZERO_ADDRESS);
                if lower(&s(k)) != lower(want) {
                    e(format!("Safe tx {k} {} (want {want})", s(k)));
                }
            }
            let chain = v["chain_id"].as_u64().unwrap_or(0);
            let (domain, message, digest) = cast_safe_hashes(
                chain,
                ctx["safe"].as_str().unwrap_or(ZERO_ADDRESS),
                &s("to"),
                &s("value"),
                &s("data"),
                op,
                &s("safe_tx_gas"),
                &s("base_gas"),
                &s("gas_price"),
                &s("gas_token"),
                &s("refund_receiver"),
                &s("nonce"),
            );
            for (k, want) in [
                ("domain_separator", domain),
                ("message_hash", message),
                ("safe_tx_hash", digest),
            ] {
                if lower(hashes[k].as_str().unwrap_or("")) != want {
                    e(format!(
                        "context.hashes.{k} {} but cast computes {want}",
                        hashes[k]
                    ));
                }
            }
        }
        (true, other) => e(format!("a Safe tx, but context.kind is {other:?}")),
        (false, Some("plain")) => {
            if let Some(from) = flag(&args, "--from") {
                if lower(ctx["from"].as_str().unwrap_or("")) != lower(from) {
                    e(format!("context.from {} (want {from})", ctx["from"]));
                }
            }
        }
        (false, other) => e(format!("a plain tx, but context.kind is {other:?}")),
    }
    errs
}

/// Checks the same fixture as text for a person.
fn check_text(name: &str, fx: &Value, json_report: Option<&Value>, r: &Run) -> Vec<String> {
    let mut errs = Vec::new();
    let mut e = |m: String| errs.push(format!("{name} (text): {m}"));
    let want_exit = fx["expect_exit"].as_i64().unwrap() as i32;
    if r.code != want_exit {
        e(format!("exit {} (want {want_exit})", r.code));
    }
    if let Some(want) = fx.get("expect_error") {
        if !r.stdout.trim().is_empty() {
            e(format!("a refused input printed a report: {}", r.stdout));
        }
        for s in strs(&want["contains"]) {
            if !r.stderr.contains(&s) {
                e(format!("stderr {:?} lacks {s:?}", r.stderr));
            }
        }
        return errs;
    }
    let Some(v) = json_report else {
        return errs;
    };
    let lines: Vec<&str> = r.stdout.lines().collect();
    let first = lines.first().copied().unwrap_or("");
    let want_first = if want_exit == 0 {
        "ALLOWED: "
    } else {
        "REFUSED: "
    };
    if !first.starts_with(want_first) {
        e(format!(
            "first line {first:?} does not start with {want_first:?}"
        ));
    }
    // The findings follow the verdict line, CRITICAL first.
    let finding_lines: Vec<&str> = lines
        .iter()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    let n_findings = v["findings"].as_array().map_or(0, Vec::len);
    if finding_lines.len() != n_findings {
        e(format!(
            "{} finding lines for {n_findings} findings:\n{}",
            finding_lines.len(),
            r.stdout
        ));
    }
    let n_crit = codes(v, "critical").len();
    if n_crit > 0 {
        match finding_lines.first() {
            Some(l) if l.trim_start().starts_with("CRITICAL") => {}
            other => e(format!("the first finding line is {other:?}, not CRITICAL")),
        }
        let last_crit = finding_lines
            .iter()
            .rposition(|l| l.trim_start().starts_with("CRITICAL"));
        let first_other = finding_lines
            .iter()
            .position(|l| !l.trim_start().starts_with("CRITICAL"));
        if let (Some(c), Some(o)) = (last_crit, first_other) {
            if o < c {
                e(format!(
                    "a CRITICAL line comes after another finding:\n{}",
                    r.stdout
                ));
            }
        }
    }
    // Every call path, each followed by its verdict.
    let calls_at = lines.iter().position(|l| *l == "Calls:");
    let Some(calls_at) = calls_at else {
        e(format!("no Calls: section:\n{}", r.stdout));
        return errs;
    };
    let mut paths = Vec::new();
    tree_paths(&v["tree"], &mut paths);
    for p in &paths {
        let tag = format!("[{p}] ");
        match lines[calls_at..]
            .iter()
            .position(|l| l.trim_start().starts_with(&tag))
        {
            None => e(format!("call {p} is not shown:\n{}", r.stdout)),
            Some(i) => {
                let verdict_line = lines.get(calls_at + i + 1).copied().unwrap_or("");
                let want = match v["verdicts"][p]["verdict"].as_str() {
                    Some("allowed") => format!(
                        "-> ALLOWED  {}",
                        v["verdicts"][p]["action"].as_str().unwrap_or("")
                    ),
                    Some("structural") => "-> wrapper ".to_string(),
                    _ => "-> REFUSED".to_string(),
                };
                if !verdict_line.trim_start().starts_with(&want) {
                    e(format!(
                        "call {p}: verdict line {verdict_line:?}, want {want:?}"
                    ));
                }
            }
        }
    }
    if let Some(h) = v["context"]["hashes"]["safe_tx_hash"].as_str() {
        let hex = h.trim_start_matches("0x");
        let groups: Vec<&str> = (0..8).map(|i| &hex[i * 8..i * 8 + 8]).collect();
        let shown = format!("safeTxHash    0x{}", groups.join(" "));
        if !r.stdout.contains(&shown) {
            e(format!(
                "the safeTxHash is not shown as {shown:?}:\n{}",
                r.stdout
            ));
        }
    }
    errs
}

#[test]
fn verify_fixture_corpus() {
    let all = fixtures();
    let n_fail = all.iter().filter(|(n, _)| n.starts_with("fail_")).count();
    let n_ok = all.iter().filter(|(n, _)| n.starts_with("ok_")).count();
    assert!(
        n_fail >= MIN_FAIL_FIXTURES,
        "only {n_fail} fail_* fixtures (want ≥ {MIN_FAIL_FIXTURES})"
    );
    assert!(n_ok >= 8, "only {n_ok} ok_* fixtures");
    let sb = Sandbox::new();
    let mut failures = Vec::new();
    let mut still_buggy = Vec::new();
    for (name, fx) in &all {
        assert!(
            name.starts_with("ok_") || name.starts_with("fail_"),
            "fixture {name}: name must start with ok_ or fail_"
        );
        assert!(
            fx["description"].as_str().is_some_and(|d| !d.is_empty()),
            "fixture {name} has no description"
        );
        let want_exit = fx["expect_exit"].as_i64();
        assert_eq!(
            want_exit,
            Some(if name.starts_with("ok_") { 0 } else { 3 }),
            "fixture {name}: ok_ fixtures exit 0, fail_ fixtures 3"
        );
        if name.starts_with("fail_") && fx.get("expect_error").is_none() {
            assert!(
                !strs(&fx["expect_critical"]).is_empty() || !strs(&fx["expect_refused"]).is_empty(),
                "fixture {name}: a fail_ fixture names the reason code it expects"
            );
        }
        let args = fixture_args(fx);
        let jr = run_verify(&sb, &args, true);
        let mut errs = check_json(name, fx, &jr);
        let report: Option<Value> = serde_json::from_str::<Value>(&jr.stdout)
            .ok()
            .filter(|v| v.get("tree").is_some());
        let tr = run_verify(&sb, &args, false);
        errs.extend(check_text(name, fx, report.as_ref(), &tr));
        match fx.get("known_bug").and_then(Value::as_str) {
            Some(bug) if errs.is_empty() => still_buggy.push(format!(
                "{name}: passes now; remove its \"known_bug\" ({bug})"
            )),
            Some(bug) => {
                eprintln!("known bug in {name} ({bug}):\n  {}", errs.join("\n  "));
            }
            None => failures.extend(errs),
        }
    }
    failures.extend(still_buggy);
    assert!(
        failures.is_empty(),
        "{} mismatches over {} fixtures:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}

/// The same halt batch three ways: flags, a Transaction Builder file, and a bundle from `compose halt`.
#[test]
fn verify_halt_three_ways_same_hash() {
    let sb = Sandbox::new();
    let hash_of = |args: &[String]| -> String {
        let r = run_verify(&sb, args, true);
        assert_eq!(r.code, 0, "{args:?}: {}\n{}", r.stdout, r.stderr);
        r.json()["context"]["hashes"]["safe_tx_hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let flags = hash_of(&fixture_args(&fixture("ok_halt_batch")));
    let builder = hash_of(&fixture_args(&fixture("ok_builder_halt")));
    assert_eq!(
        flags, builder,
        "Transaction Builder import differs from the flags"
    );
    let manifest = demo_manifest();
    let bundle = sb.path("halt.json").display().to_string();
    let r = sb.run(&[
        "--manifest",
        &manifest,
        "compose",
        "halt",
        "--nonce",
        "0",
        "-o",
        &bundle,
    ]);
    assert_eq!(r.code, 0, "compose: {}\n{}", r.stdout, r.stderr);
    let composed = hash_of(&["verify".to_string(), bundle]);
    assert_eq!(
        flags, composed,
        "compose halt differs from the hand-built batch"
    );
}

/// Foundry's EIP-712 (`cast wallet sign --data`) signs exactly the digest breakglass reports: the
/// signature over the typed data equals the signature over the raw safeTxHash (RFC 6979 makes both
/// deterministic), for a single call, a batch, and a tx with every gas/refund field set.
#[test]
fn verify_safe_tx_hash_matches_cast_eip712() {
    let sb = Sandbox::new();
    let mut cases = vec![
        fixture_args(&fixture("ok_pause_pool")),
        fixture_args(&fixture("ok_halt_batch")),
        fixture_args(&fixture("fail_refund_drain")),
    ];
    cases.push(
        [
            "verify",
            "--safe",
            DEMO_SAFE,
            "--to",
            "0xb001000000000000000000000000000000000001",
            "--data",
            "0x8456cb59",
            "--value",
            "7",
            "--safe-tx-gas",
            "100",
            "--base-gas",
            "200",
            "--gas-price",
            "3",
            "--gas-token",
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            "--refund-receiver",
            "0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516",
            "--nonce",
            "77",
        ]
        .map(String::from)
        .to_vec(),
    );
    for args in cases {
        let v = run_verify(&sb, &args, true).json();
        let ctx = &v["context"];
        let tx = &ctx["tx"];
        let typed = typed_data(
            v["chain_id"].as_u64().unwrap(),
            ctx["safe"].as_str().unwrap(),
            tx,
        );
        let key = DEFAULT_KEYS[4];
        let over_typed = cast_offline(&["wallet", "sign", "--private-key", key, "--data", &typed]);
        let hash = ctx["hashes"]["safe_tx_hash"].as_str().unwrap();
        let over_hash = cast_offline(&["wallet", "sign", "--private-key", key, "--no-hash", hash]);
        assert_eq!(
            over_typed, over_hash,
            "{args:?}: cast's EIP-712 digest is not {hash}"
        );
    }
}

/// EIP-712 typed data JSON for a Safe tx from the report's `context.tx`.
fn typed_data(chain_id: u64, safe: &str, tx: &Value) -> String {
    let op = if tx["operation"] == "call" { 0 } else { 1 };
    let s = |k: &str| tx[k].as_str().unwrap().to_string();
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "SafeTx": [
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "data", "type": "bytes"},
                {"name": "operation", "type": "uint8"},
                {"name": "safeTxGas", "type": "uint256"},
                {"name": "baseGas", "type": "uint256"},
                {"name": "gasPrice", "type": "uint256"},
                {"name": "gasToken", "type": "address"},
                {"name": "refundReceiver", "type": "address"},
                {"name": "nonce", "type": "uint256"}
            ]
        },
        "primaryType": "SafeTx",
        "domain": {"chainId": chain_id, "verifyingContract": safe},
        "message": {
            "to": s("to"),
            "value": dec(&s("value")),
            "data": s("data"),
            "operation": op,
            "safeTxGas": dec(&s("safe_tx_gas")),
            "baseGas": dec(&s("base_gas")),
            "gasPrice": dec(&s("gas_price")),
            "gasToken": s("gas_token"),
            "refundReceiver": s("refund_receiver"),
            "nonce": dec(&s("nonce"))
        }
    })
    .to_string()
}

fn chain_manifest(
    safe: &str,
    owners: &[&str],
    pool: &str,
    proxy_admin: &str,
    vault: &str,
) -> String {
    format!(
        r#"version = 1
name = "Hash cross-check"
chain_id = 31337

[safe]
address = "{safe}"
version = "1.4.1"
owners = ["{}", "{}", "{}"]
threshold = 2

[contracts.pool]
address = "{pool}"
proxy = "transparent"
proxy_admin = "{proxy_admin}"
abi = ["function pause()", "function unpause()", "function paused() view returns (bool)"]

[contracts.vault]
address = "{vault}"
proxy = "uups"
abi = ["function pause()", "function unpause()", "function paused() view returns (bool)"]

[[actions]]
id = "pause-pool"
title = "Pause the pool"
contract = "pool"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[actions]]
id = "pause-vault"
title = "Pause the vault"
contract = "vault"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[playbooks]]
id = "halt"
title = "Halt"
actions = ["pause-pool", "pause-vault"]
"#,
        owners[0], owners[1], owners[2]
    )
}

/// The report's hashes against the real Safe 1.4.1 on anvil, then executed with cast-made signatures.
#[test]
fn verify_hashes_equal_real_safe() {
    let anvil = Anvil::start();
    let owners = [
        DEFAULT_ADDRESSES[1],
        DEFAULT_ADDRESSES[2],
        DEFAULT_ADDRESSES[3],
    ];
    let owner_keys = [DEFAULT_KEYS[1], DEFAULT_KEYS[2], DEFAULT_KEYS[3]];
    let safe = anvil.deploy_safe(&owners, 2);
    let (pool, proxy_admin, _) = anvil.deploy_pausable_transparent(&safe);
    let (vault, _) = anvil.deploy_uups(&safe);
    let sb = Sandbox::new();
    sb.write(
        "m.toml",
        chain_manifest(
            &safe,
            &owners,
            &checksum(&pool),
            &checksum(&proxy_admin),
            &checksum(&vault),
        ),
    );
    let pause = cast_offline(&["calldata", "pause()"]);
    let entry = |to: &str| {
        cast_offline(&[
            "abi-encode",
            "--packed",
            "f(uint8,address,uint256,uint256,bytes)",
            "0",
            to,
            "0",
            "4",
            &pause,
        ])
    };
    let batch = cast_offline(&[
        "calldata",
        "multiSend(bytes)",
        &cast_offline(&["concat-hex", &entry(&pool), &entry(&vault)]),
    ]);
    let domain = anvil.call(&safe, "domainSeparator()(bytes32)", &[]);

    struct Case<'a> {
        to: &'a str,
        data: &'a str,
        op: &'a str,
        value: &'a str,
        safe_tx_gas: &'a str,
        base_gas: &'a str,
        gas_price: &'a str,
        gas_token: &'a str,
        refund: &'a str,
        nonce: &'a str,
        allowed: bool,
    }
    let token = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let refund = "0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516";
    let cases = [
        Case {
            to: &pool,
            data: &pause,
            op: "0",
            value: "0",
            safe_tx_gas: "0",
            base_gas: "0",
            gas_price: "0",
            gas_token: ZERO_ADDRESS,
            refund: ZERO_ADDRESS,
            nonce: "5",
            allowed: true,
        },
        Case {
            to: MULTISEND_CALL_ONLY_141,
            data: &batch,
            op: "1",
            value: "0",
            safe_tx_gas: "0",
            base_gas: "0",
            gas_price: "0",
            gas_token: ZERO_ADDRESS,
            refund: ZERO_ADDRESS,
            nonce: "5",
            allowed: true,
        },
        Case {
            to: &pool,
            data: &pause,
            op: "0",
            value: "9",
            safe_tx_gas: "12345",
            base_gas: "678",
            gas_price: "3",
            gas_token: token,
            refund,
            nonce: "123456789",
            allowed: false,
        },
        Case {
            to: MULTISEND_CALL_ONLY_141,
            data: &batch,
            op: "1",
            value: "0",
            safe_tx_gas: "0",
            base_gas: "0",
            gas_price: "0",
            gas_token: ZERO_ADDRESS,
            refund: ZERO_ADDRESS,
            nonce: "0",
            allowed: true,
        },
    ];
    let mut last = Value::Null;
    for c in &cases {
        let r = sb.run(&[
            "--manifest",
            "m.toml",
            "--json",
            "verify",
            "--allow-untrusted",
            "--safe",
            &safe,
            "--to",
            c.to,
            "--data",
            c.data,
            "--operation",
            c.op,
            "--value",
            c.value,
            "--safe-tx-gas",
            c.safe_tx_gas,
            "--base-gas",
            c.base_gas,
            "--gas-price",
            c.gas_price,
            "--gas-token",
            c.gas_token,
            "--refund-receiver",
            c.refund,
            "--nonce",
            c.nonce,
        ]);
        assert_eq!(
            r.code,
            if c.allowed { 0 } else { 3 },
            "{}\n{}",
            r.stdout,
            r.stderr
        );
        let v = r.json();
        let hashes = &v["context"]["hashes"];
        assert_eq!(
            lower(hashes["domain_separator"].as_str().unwrap()),
            lower(&domain),
            "domain separator vs the Safe's domainSeparator()"
        );
        let on_chain = anvil.call(
            &safe,
            "getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256)(bytes32)",
            &[c.to, c.value, c.data, c.op, c.safe_tx_gas, c.base_gas, c.gas_price, c.gas_token, c.refund, c.nonce],
        );
        assert_eq!(
            lower(hashes["safe_tx_hash"].as_str().unwrap()),
            lower(&on_chain),
            "safeTxHash vs the Safe's getTransactionHash (nonce {})",
            c.nonce
        );
        if c.allowed {
            let actions = strs(&v["actions"]);
            assert!(!actions.is_empty(), "{v}");
        }
        last = v;
    }
    // The last case (the batch at the Safe's current nonce 0): two owners sign cast's EIP-712 digest of
    // the report's tx; the Safe accepts the signatures and runs the batch.
    assert_eq!(anvil.call(&safe, "nonce()(uint256)", &[]), "0");
    let ctx = &last["context"];
    let typed = typed_data(31337, &safe, &ctx["tx"]);
    let mut sigs: Vec<(String, String)> = owners
        .iter()
        .zip(owner_keys)
        .take(2)
        .map(|(o, k)| {
            (
                lower(o),
                cast_offline(&["wallet", "sign", "--private-key", k, "--data", &typed]),
            )
        })
        .collect();
    sigs.sort();
    let sig_hex: Vec<&str> = sigs
        .iter()
        .map(|(_, s)| s.trim_start_matches("0x"))
        .collect();
    let signatures = format!("0x{}", sig_hex.concat());
    let hash = ctx["hashes"]["safe_tx_hash"].as_str().unwrap();
    // checkSignatures(bytes32 dataHash, bytes data, bytes signatures) reverts unless both are valid owners' signatures of `hash`.
    anvil.call(
        &safe,
        "checkSignatures(bytes32,bytes,bytes)",
        &[hash, &batch, &signatures],
    );
    anvil.send(
        DEPLOYER_KEY,
        &safe,
        SAFE_TX_SIG,
        &[
            MULTISEND_CALL_ONLY_141,
            "0",
            &batch,
            "1",
            "0",
            "0",
            "0",
            ZERO_ADDRESS,
            ZERO_ADDRESS,
            &signatures,
        ],
    );
    assert_eq!(anvil.call(&pool, "paused()(bool)", &[]), "true");
    assert_eq!(anvil.call(&vault, "paused()(bool)", &[]), "true");
    assert_eq!(anvil.call(&safe, "nonce()(uint256)", &[]), "1");
}
