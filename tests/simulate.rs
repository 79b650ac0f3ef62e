//! Issue 17: shadow simulation before signing. The bundle's transaction runs in-process (revm) against
//! anvil's state at a pinned block; the report is checked against the node itself (the same transaction
//! executed on anvil: `debug_traceTransaction`'s prestate diff and the receipt's logs), reverts are
//! refused before signing with the failing call named, and the offline route replays a snapshot on a
//! machine with no node.

use crate::support::world::{all_output, ok, Pins, World};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// (address, slot) → (before, after) as 0x-prefixed 32-byte words, lower case.
type Diff = BTreeMap<(String, String), (String, String)>;

fn word(v: &Value) -> String {
    let s = v.as_str().unwrap_or("0x0").trim_start_matches("0x");
    format!("0x{:0>64}", lower(s))
}

fn sim_diff(sim: &Value) -> Diff {
    sim["storage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                (lower(c["address"].as_str().unwrap()), word(&c["slot"])),
                (word(&c["before"]), word(&c["after"])),
            )
        })
        .collect()
}

/// anvil's `prestateTracer` in diff mode: every slot whose value changed.
fn node_diff(w: &World, tx: &str) -> Diff {
    let t = w.anvil.rpc(
        "debug_traceTransaction",
        json!([tx, {"tracer": "prestateTracer", "tracerConfig": {"diffMode": true}}]),
    );
    let pre = &t["pre"];
    let post = &t["post"];
    let mut out = Diff::new();
    let mut slots: BTreeMap<(String, String), (Option<String>, Option<String>)> = BTreeMap::new();
    for (side, v) in [(0, pre), (1, post)] {
        if let Some(m) = v.as_object() {
            for (addr, acc) in m {
                if let Some(st) = acc["storage"].as_object() {
                    for (slot, val) in st {
                        let e = slots.entry((lower(addr), word(&json!(slot)))).or_default();
                        if side == 0 {
                            e.0 = Some(word(val));
                        } else {
                            e.1 = Some(word(val));
                        }
                    }
                }
            }
        }
    }
    let zero = format!("0x{}", "0".repeat(64));
    for (k, (b, a)) in slots {
        let b = b.unwrap_or_else(|| zero.clone());
        // A slot in pre but not in post was cleared (diff mode omits zero post values).
        let a = a.unwrap_or_else(|| zero.clone());
        if a != b {
            out.insert(k, (b, a));
        }
    }
    out
}

#[test]
fn the_halt_batch_simulates_as_the_node_executes_it() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let nonce = w.safe_nonce();
    let r = w.bg("m.toml", true, &["--json", "simulate", "--help"]);
    assert!(r.stdout.contains("snapshot"), "{}", all_output(&r));
    let r = w.bg("m.toml", true, &["compose", "halt", "-o", "halt.json"]);
    ok(&r, "compose simulates");
    assert!(r.stdout.contains("Simulation at block"), "{}", r.stdout);
    let composed = w.bundle("halt.json");
    assert_eq!(composed["simulation"]["success"], true, "{composed}");

    let r = w.bg("m.toml", true, &["--json", "simulate", "halt.json"]);
    ok(&r, "simulate");
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["allowed"], true, "{}", r.stdout);
    let sim = &j["simulation"];
    assert_eq!(sim["success"], true);
    assert!(sim["method"]
        .as_str()
        .unwrap()
        .contains("threshold overridden to 1"));
    // paused false → true on both, as views.
    let views = sim["views"].as_array().unwrap();
    for c in ["pool", "vault"] {
        assert!(
            views.iter().any(|v| v["contract"] == c
                && v["function"] == "paused()"
                && v["before"] == "false"
                && v["after"] == "true"),
            "{c}: {views:?}"
        );
    }
    // Events: Paused on both, then the Safe's ExecutionSuccess.
    let events: Vec<String> = sim["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events.iter().filter(|e| e.starts_with("Paused(")).count(),
        2,
        "{events:?}"
    );
    assert!(
        events.last().unwrap().starts_with("ExecutionSuccess("),
        "{events:?}"
    );
    // The Safe's nonce n → n+1, named.
    let storage = sim["storage"].as_array().unwrap();
    let safe_nonce = storage
        .iter()
        .find(|c| c["name"] == "Safe nonce")
        .unwrap_or_else(|| panic!("{storage:?}"));
    assert_eq!(
        word(&safe_nonce["before"]),
        word(&json!(format!("{nonce:#x}")))
    );
    assert_eq!(
        word(&safe_nonce["after"]),
        word(&json!(format!("{:#x}", nonce + 1)))
    );
    assert!(
        sim["critical"].as_array().is_none_or(|c| c.is_empty()),
        "{sim}"
    );
    let posts = sim["postconditions"].as_array().unwrap();
    assert!(
        !posts.is_empty() && posts.iter().all(|p| p["pass"] == true),
        "{posts:?}"
    );
    // Human output names the block to compare out of band.
    let r = w.bg("m.toml", true, &["simulate", "halt.json"]);
    ok(&r, "simulate (text)");
    assert!(r.stdout.contains("Compare block"), "{}", r.stdout);

    // Cross-check with the node: execute the same transaction on anvil; the storage changes equal the
    // prestate diff of the mined transaction, the events equal the receipt's logs.
    let signed = w.sign_twice("m.toml", "halt.json", "halt");
    let r = w.execute_keystore("m.toml", &signed, "done.json");
    ok(&r, "execute");
    let done = w.bundle("done.json");
    let tx = done["signed_tx"]["hash"].as_str().unwrap().to_string();
    let node = node_diff(&w, &tx);
    let mine = sim_diff(sim);
    // The executor's own account changes (nonce, fees) are not storage; the Safe's threshold override
    // is not a change. Both sides list storage only.
    assert_eq!(
        mine, node,
        "simulated storage changes vs anvil's prestate diff"
    );
    let receipt = w.anvil.rpc("eth_getTransactionReceipt", json!([tx]));
    let logs = receipt["logs"].as_array().unwrap();
    let sim_events = sim["events"].as_array().unwrap();
    assert_eq!(logs.len(), sim_events.len());
    for (l, e) in logs.iter().zip(sim_events) {
        assert_eq!(
            lower(l["address"].as_str().unwrap()),
            lower(e["address"].as_str().unwrap())
        );
    }
}

fn console_env(w: &World, m: &str) -> breakglass::tui::Env {
    breakglass::tui::Env {
        manifest: breakglass::manifest::Manifest::load(&w.sb.path(m)).unwrap(),
        trust: breakglass::manifest::trust::Trust::Pinned {
            source: "test".into(),
        },
        rpc: Some(w.anvil.url.clone()),
        signer: None,
        drill: false,
        out_dir: w.sb.path("."),
        accounts: 1,
        audit: breakglass::audit::AuditLog::new(w.sb.path("console-audit.jsonl")),
        ladders: Vec::new(),
        ladder_keys: Default::default(),
        rpc_urls: Default::default(),
    }
}

/// An upgrade whose initializer reverts, and a pause after the Safe lost its pauser role: `compose`,
/// `sign` and the console's compose refuse them before anything is signed, naming the failing call.
#[test]
fn reverting_upgrades_and_lost_roles_are_refused_before_signing() {
    let w = World::deploy();
    let role_pool = w.anvil.deploy_artifact(
        "contracts/RolePool.json",
        "constructor(address,address)",
        &[&w.safe, &w.safe],
    );
    let base = w.manifest_text(Pins::Right, 31337);
    // The vault's upgrade carries an init call the new implementation does not have.
    let bad_init = base.replace(
        &format!(
            "args = {{ implementation = {{ eq = \"{}\" }} }}",
            w.vault_v2
        ),
        &format!(
            "args = {{ implementation = {{ eq = \"{}\" }}, data = {{ eq = \"0xdeadbeef\" }} }}",
            w.vault_v2
        ),
    );
    assert_ne!(bad_init, base, "the upgrade-vault action was found");
    let text = format!(
        r#"{bad_init}
[contracts.rpool]
address = "{role_pool}"
abi = ["function pause()", "function paused() view returns (bool)"]

[[actions]]
id = "pause-rpool"
title = "Pause the role pool"
contract = "rpool"
function = "pause()"
expect = ["paused() == true"]

[[playbooks]]
id = "halt-rpool"
title = "Halt the role pool"
actions = ["pause-rpool"]

[[playbooks]]
id = "patch-vault"
title = "Patch the vault"
actions = ["upgrade-vault"]
"#
    );
    w.write_manifest_text("m.toml", &text);

    // The upgrade: refused at compose, the failing call named.
    let r = w.bg("m.toml", true, &["compose", "patch-vault", "-o", "p.json"]);
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("REVERTS"), "{out}");
    assert!(out.contains("vault.upgradeToAndCall("), "{out}");
    assert!(!w.sb.path("p.json").exists());

    // The pause works while the Safe holds the role…
    let r = w.bg(
        "m.toml",
        true,
        &["--json", "compose", "halt-rpool", "-o", "h.json"],
    );
    ok(&r, "compose while the Safe is pauser");
    // …and after the role is revoked, the same playbook is refused at compose; a bundle composed before
    // the revocation is refused at sign (with a node), before the device is asked; the console too.
    let role = w.anvil.call(&role_pool, "PAUSER_ROLE()(bytes32)", &[]);
    w.anvil.send_as(
        &w.safe,
        &role_pool,
        "revokeRole(bytes32,address)",
        &[&role, &w.safe],
    );
    let r = w.bg("m.toml", true, &["compose", "halt-rpool", "-o", "h2.json"]);
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("rpool.pause()"), "{out}");
    assert!(!w.sb.path("h2.json").exists());
    let r = w.bg(
        "m.toml",
        true,
        &[
            "sign",
            "h.json",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "s.json",
        ],
    );
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(
        out.contains("the simulation refuses") && out.contains("rpool.pause()"),
        "{out}"
    );
    assert!(
        !out.contains("Confirm on"),
        "the device was not asked: {out}"
    );
    assert!(!w.sb.path("s.json").exists());
    // --no-simulate signs, and says so in the audit log.
    let r = w.bg(
        "m.toml",
        true,
        &[
            "sign",
            "h.json",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "s.json",
            "--no-simulate",
        ],
    );
    ok(&r, "sign --no-simulate");
    assert!(r.stdout.contains("Simulation: skipped"), "{}", r.stdout);
    let log = std::fs::read_to_string(w.sb.path("data/audit.jsonl")).unwrap_or_default();
    assert!(log.contains("skipped (turned off by the person)"), "{log}");

    let env = console_env(&w, "m.toml");
    let e = breakglass::tui::compose_job(&env, "halt-rpool", None).unwrap_err();
    assert!(
        e.contains("the simulation refuses") && e.contains("rpool.pause()"),
        "{e}"
    );
}

/// Offline: a snapshot taken online replays on a machine with no node into the same report; a changed
/// byte is refused; a dropped proof is refused as missing state; `sign --snapshot` simulates before signing.
#[test]
fn a_snapshot_replays_offline_and_refuses_tampering() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let r = w.bg("m.toml", true, &["compose", "halt", "-o", "halt.json"]);
    ok(&r, "compose");
    let r = w.bg(
        "m.toml",
        true,
        &[
            "--json",
            "simulate",
            "halt.json",
            "--snapshot-out",
            "halt.snap",
        ],
    );
    ok(&r, "simulate --snapshot-out");
    let online: Value = serde_json::from_str(&r.stdout).unwrap();
    let size = online["snapshot"]["bytes"].as_u64().unwrap();
    assert!(size > 1000, "{}", r.stdout);
    eprintln!(
        "halt snapshot: {size} bytes, {} QR frames",
        online["snapshot"]["qr_frames"]
    );

    // Offline: no --rpc-url, and nothing listening.
    let r = w.bg(
        "m.toml",
        false,
        &["--json", "simulate", "halt.json", "--snapshot", "halt.snap"],
    );
    ok(&r, "simulate offline");
    let offline: Value = serde_json::from_str(&r.stdout).unwrap();
    let strip = |v: &Value| {
        let mut v = v["simulation"].clone();
        v["source"] = json!("");
        v
    };
    assert_eq!(strip(&offline), strip(&online), "the same report offline");
    assert_eq!(offline["simulation"]["source"], "snapshot");
    // sign --snapshot simulates before signing.
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            "halt.json",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "s.json",
            "--snapshot",
            "halt.snap",
        ],
    );
    ok(&r, "sign --snapshot");
    assert!(r.stdout.contains("from the snapshot"), "{}", r.stdout);

    // A changed byte in a proof: refused.
    let snap: Value =
        serde_json::from_slice(&std::fs::read(w.sb.path("halt.snap")).unwrap()).unwrap();
    let mut bad = snap.clone();
    let node = bad["accounts"][0]["account_proof"][0]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = format!(
        "{}{}",
        &node[..node.len() - 1],
        if node.ends_with('0') { "1" } else { "0" }
    );
    bad["accounts"][0]["account_proof"][0] = json!(flipped);
    w.sb.write("bad.snap", serde_json::to_string(&bad).unwrap());
    let r = w.bg(
        "m.toml",
        false,
        &["simulate", "halt.json", "--snapshot", "bad.snap"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        all_output(&r).contains("snapshot is refused"),
        "{}",
        all_output(&r)
    );
    // A dropped storage proof: the execution reads state the snapshot lacks.
    let mut short = snap.clone();
    let accounts = short["accounts"].as_array_mut().unwrap();
    let with_slots = accounts
        .iter_mut()
        .find(|a| !a["storage"].as_array().unwrap().is_empty())
        .unwrap();
    with_slots["storage"].as_array_mut().unwrap().remove(0);
    w.sb.write("short.snap", serde_json::to_string(&short).unwrap());
    let r = w.bg(
        "m.toml",
        false,
        &["simulate", "halt.json", "--snapshot", "short.snap"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("lacks state"), "{}", all_output(&r));
    // Another chain's bundle: the snapshot is for chain 31337 only.
    assert!(!w.sb.path("s-bad.json").exists());
}

/// A guardian's own transaction (EOA playbook) simulates as it is: from the guardian, no override.
#[test]
fn a_guardian_transaction_simulates_as_signed() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let r = w.bg(
        "m.toml",
        true,
        &[
            "compose",
            "guardian-halt",
            "--from",
            crate::support::world::SIM0,
            "-o",
            "g.json",
        ],
    );
    ok(&r, "compose a guardian playbook");
    let r = w.bg("m.toml", true, &["--json", "simulate", "g.json"]);
    ok(&r, "simulate");
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    let sim = &j["simulation"];
    assert!(
        sim["method"]
            .as_str()
            .unwrap()
            .contains("the guardian's transaction"),
        "{sim}"
    );
    assert!(sim["views"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["contract"] == "gpool" && v["after"] == "true"));
}
