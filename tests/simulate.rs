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
