//! Issue 14 (first part): Safe Transaction Builder files in the shapes real ops repositories hold
//! (JSON-quoted arrays, numeric or empty `chainId`, tuples with components, an empty
//! `meta.createdFromSafeAddress` with the Safe at the top level, a nameless `contractMethod` with raw
//! data). Each gets a verdict, and its safeTxHash equals the real Safe 1.4.1's `getTransactionHash` on
//! anvil. A file naming no Safe is refused with the flag to pass, not a request to edit the file.

use crate::support::anvil::cast_offline;
use crate::support::world::{all_output, Pins, World};
use serde_json::{json, Value};

const GET_TX_HASH: &str = "getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256)(bytes32)";

/// Writes a Builder file with `top` merged into the usual header.
fn file(w: &World, name: &str, top: Value, txs: Value) {
    let mut f = json!({
        "version": "1.0",
        "chainId": "31337",
        "createdAt": 1718000000000u64,
        "meta": {"name": "Transactions Batch", "createdFromSafeAddress": w.safe},
        "transactions": txs,
    });
    for (k, v) in top.as_object().unwrap() {
        f[k] = v.clone();
    }
    w.sb.write(name, serde_json::to_vec_pretty(&f).unwrap());
}

fn dec(hex: &str) -> String {
    cast_offline(&["to-dec", hex])
}

/// Verifies `name` and checks its safeTxHash against the Safe's own `getTransactionHash`. Returns the report.
fn verdict_matches_the_safe(w: &World, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "verify"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--safe-json", name]);
    let r = w.bg("m.toml", false, &args);
    assert!(r.code == 0 || r.code == 3, "{name}: {}", all_output(&r));
    let v = r.json();
    let ctx = &v["context"];
    assert_eq!(ctx["kind"], json!("safe"), "{name}: {v}");
    let tx = &ctx["tx"];
    let op = match tx["operation"].as_str().unwrap() {
        "call" => "0",
        _ => "1",
    };
    let real = w.anvil.call(
        &w.safe,
        GET_TX_HASH,
        &[
            tx["to"].as_str().unwrap(),
            &dec(tx["value"].as_str().unwrap()),
            tx["data"].as_str().unwrap(),
            op,
            "0",
            "0",
            "0",
            "0x0000000000000000000000000000000000000000",
            "0x0000000000000000000000000000000000000000",
            &dec(tx["nonce"].as_str().unwrap()),
        ],
    );
    assert_eq!(
        ctx["hashes"]["safe_tx_hash"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase(),
        real.trim().to_ascii_lowercase(),
        "{name}: safeTxHash differs from the Safe's getTransactionHash"
    );
    v
}

#[test]
fn builder_files_in_real_shapes_get_a_verdict_with_the_safes_hash() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let a1 = "0x00000000000000000000000000000000000000a1";
    let a2 = "0x00000000000000000000000000000000000000a2";
    let pause_method = json!({"name": "pause", "inputs": [], "payable": false});

    // Numeric chainId; a single allowed pause: ALLOWED.
    file(
        &w,
        "numeric-chain.json",
        json!({"chainId": 31337}),
        json!([{"to": w.pool, "value": "0", "data": null, "contractMethod": pause_method, "contractInputsValues": {}}]),
    );
    let v = verdict_matches_the_safe(&w, "numeric-chain.json", &[]);
    assert_eq!(v["allowed"], json!(true), "{v}");
    assert_eq!(v["chain_id"], json!(31337));

    // Empty chainId: the manifest's chain.
    file(
        &w,
        "empty-chain.json",
        json!({"chainId": ""}),
        json!([{"to": w.pool, "value": "0", "data": null, "contractMethod": pause_method, "contractInputsValues": {}}]),
    );
    let v = verdict_matches_the_safe(&w, "empty-chain.json", &[]);
    assert_eq!(v["chain_id"], json!(31337));

    // Empty meta, the Safe in a top-level field.
    file(
        &w,
        "top-level-safe.json",
        json!({"meta": {"createdFromSafeAddress": ""}, "safeAddress": w.safe}),
        json!([{"to": w.pool, "value": "0", "data": null, "contractMethod": pause_method, "contractInputsValues": {}}]),
    );
    verdict_matches_the_safe(&w, "top-level-safe.json", &[]);

    // A JSON-quoted array (the Builder JSON.parses it): refused (not in the manifest), with the Safe's hash,
    // and encoded exactly as cast encodes the same call.
    let quoted = format!("[\"{a1}\",\"{a2}\"]");
    file(
        &w,
        "quoted-array.json",
        json!({}),
        json!([{"to": w.pool, "value": "0", "data": null,
            "contractMethod": {"name": "setSigners", "inputs": [{"name": "signers", "type": "address[]", "internalType": "address[]"}]},
            "contractInputsValues": {"signers": quoted}}]),
    );
    let v = verdict_matches_the_safe(&w, "quoted-array.json", &[]);
    assert_eq!(v["allowed"], json!(false));
    let want = cast_offline(&["calldata", "setSigners(address[])", &format!("[{a1},{a2}]")]);
    assert_eq!(v["context"]["tx"]["data"].as_str().unwrap(), want);

    // tuple[] with components, values as a JSON-quoted string of arrays.
    let k = format!("0x{}", "11".repeat(32));
    let val = format!("0x{}", "22".repeat(32));
    let slots = format!("[[\"{k}\",\"{val}\"],[\"{val}\",\"{k}\"]]");
    file(
        &w,
        "tuples.json",
        json!({}),
        json!([{"to": w.pool, "value": "0", "data": null,
            "contractMethod": {"name": "setSlots", "inputs": [{"name": "slots", "type": "tuple[]", "internalType": "struct Pool.Slot[]",
                "components": [{"name": "key", "type": "bytes32"}, {"name": "value", "type": "bytes32"}]}]},
            "contractInputsValues": {"slots": slots}}]),
    );
    let v = verdict_matches_the_safe(&w, "tuples.json", &[]);
    let want = cast_offline(&[
        "calldata",
        "setSlots((bytes32,bytes32)[])",
        &format!("[({k},{val}),({val},{k})]"),
    ]);
    assert_eq!(v["context"]["tx"]["data"].as_str().unwrap(), want);

    // A nameless contractMethod with raw data: the data is what runs.
    let pause = cast_offline(&["calldata", "pause()"]);
    file(
        &w,
        "nameless.json",
        json!({}),
        json!([{"to": w.pool, "value": "0", "data": pause, "contractMethod": {"inputs": []}, "contractInputsValues": null}]),
    );
    let v = verdict_matches_the_safe(&w, "nameless.json", &[]);
    assert_eq!(v["allowed"], json!(true), "{v}");

    // A two-transaction batch in mixed shapes: a MultiSendCallOnly batch with the Safe's hash.
    file(
        &w,
        "batch.json",
        json!({"chainId": 31337}),
        json!([
            {"to": w.pool, "value": "0", "data": pause, "contractMethod": null},
            {"to": w.vault, "value": 0, "data": null, "contractMethod": pause_method, "contractInputsValues": {}}
        ]),
    );
    let v = verdict_matches_the_safe(&w, "batch.json", &[]);
    assert_eq!(v["allowed"], json!(true), "{v}");
    assert_eq!(v["actions"], json!(["pause-pool", "pause-vault"]));

    // No Safe anywhere: refused (3), the message says to pass --safe, and --safe then works.
    file(
        &w,
        "no-safe.json",
        json!({"meta": {"createdFromSafeAddress": ""}}),
        json!([{"to": w.pool, "value": "0", "data": pause}]),
    );
    let r = w.bg("m.toml", false, &["verify", "--safe-json", "no-safe.json"]);
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(r.stderr.contains("--safe"), "{}", r.stderr);
    assert!(r.stderr.contains("need not change"), "{}", r.stderr);
    verdict_matches_the_safe(&w, "no-safe.json", &["--safe", &w.safe]);

    // Every file problem has one exit code (3).
    w.sb.write("not-json.json", "{ nope");
    for f in ["not-json.json", "missing.json"] {
        let r = w.bg("m.toml", false, &["verify", "--safe-json", f]);
        assert_eq!(r.code, 3, "{f}: {}", all_output(&r));
    }
}
