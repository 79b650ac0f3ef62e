//! Issue 12's "also wrong, though not exploitable alone", each performed through the real binary on anvil
//! with the real Safe (the `execute_chain` world) and proven fixed.

use crate::support::world::{all_output, ok, Pins, World, SIM0};
use serde_json::{json, Value};

/// A Builder file (as Safe{Wallet}'s Transaction Builder writes it) of `txs`.
fn builder_file(w: &World, name: &str, txs: Value) {
    let f = json!({
        "version": "1.0",
        "chainId": "31337",
        "createdAt": 1718000000000u64,
        "meta": {
            "name": "Transactions Batch",
            "txBuilderVersion": "1.16.5",
            "createdFromSafeAddress": w.safe,
        },
        "transactions": txs,
    });
    w.sb.write(name, serde_json::to_vec_pretty(&f).unwrap());
}

/// `verify` of an allowed transaction under an untrusted manifest exits 5, not 0; `--allow-untrusted`
/// makes that explicit; a pinned manifest exits 0; a refused one still exits 3.
#[test]
fn verify_under_an_untrusted_manifest_is_no_verdict() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    // No pin at all.
    let r = w.sb.run(&["--manifest", "m.toml", "verify", "c.json"]);
    assert_eq!(r.code, 5, "{}", all_output(&r));
    assert!(r.stderr.contains("untrusted"), "{}", r.stderr);
    let r =
        w.sb.run(&["--manifest", "m.toml", "--json", "verify", "c.json"]);
    assert_eq!(r.code, 5, "{}", all_output(&r));
    let v = r.json();
    assert_eq!(v["allowed"], json!(true));
    assert_eq!(v["trusted"], json!(false));
    let r = w.sb.run(&[
        "--manifest",
        "m.toml",
        "verify",
        "--allow-untrusted",
        "c.json",
    ]);
    assert_eq!(r.code, 0, "{}", all_output(&r));
    // Pinned: a verdict.
    let r = w.bg("m.toml", false, &["verify", "c.json"]);
    assert_eq!(r.code, 0, "{}", all_output(&r));
    // Refused stays 3 whatever the trust.
    let data = crate::support::anvil::cast_offline(&["calldata", "unpause()"]);
    let r = w.sb.run(&[
        "--manifest",
        "m.toml",
        "verify",
        "--safe",
        &w.safe,
        "--to",
        &w.pool,
        "--data",
        &data,
    ]);
    assert_eq!(r.code, 3, "{}", all_output(&r));
}

/// A timelock delay below the manifest's minimum is a refusal (3), not a usage error (2).
#[test]
fn timelock_delay_below_minimum_is_a_refusal() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let r = w.bg(
        "m.toml",
        true,
        &["compose", "resume", "--delay", "60", "-o", "short.json"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(r.stderr.contains("min_delay"), "{}", r.stderr);
    assert!(!w.sb.path("short.json").exists());
    let r = w.bg(
        "m.toml",
        true,
        &[
            "--json",
            "compose",
            "resume",
            "--delay",
            "60",
            "-o",
            "short.json",
        ],
    );
    assert_eq!(r.code, 3);
    assert_eq!(
        r.json()["error"]["kind"],
        json!("timelock_delay"),
        "{}",
        r.stdout
    );
}

/// A Builder file's `operation` is honoured: `1` makes the call a DELEGATECALL, which the always-critical
/// rule refuses (single transaction and batch entry); an unknown value is refused; `0` stays allowed.
#[test]
fn builder_operation_is_honoured() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let pause = crate::support::anvil::cast_offline(&["calldata", "pause()"]);
    let tx = |op: Value| json!({"to": w.pool, "value": "0", "data": pause, "operation": op});
    let cases = [
        (
            "single-op1.json",
            json!([tx(json!(1))]),
            3,
            Some("delegatecall"),
        ),
        (
            "single-op1-str.json",
            json!([tx(json!("1"))]),
            3,
            Some("delegatecall"),
        ),
        (
            "batch-op1.json",
            json!([tx(json!(0)), {"to": w.vault, "value": "0", "data": pause, "operation": 1}]),
            3,
            Some("inner_delegatecall"),
        ),
        ("op7.json", json!([tx(json!(7))]), 3, None),
        ("op0.json", json!([tx(json!(0))]), 0, None),
    ];
    for (name, txs, want, critical) in cases {
        builder_file(&w, name, txs);
        let r = w.bg("m.toml", false, &["--json", "verify", "--safe-json", name]);
        assert_eq!(r.code, want, "{name}: {}", all_output(&r));
        if let Some(code) = critical {
            let v = r.json();
            assert!(
                v["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["code"] == json!(code) && f["severity"] == json!("critical")),
                "{name}: {v}"
            );
        }
        if name == "op7.json" {
            assert!(r.stdout.contains("operation 7"), "{}", r.stdout);
        }
    }
}

/// Signing with a key that is not an owner fails first (exit 4), before anything that looks like an
/// approval is printed; nothing is written.
#[test]
fn non_owner_signer_is_refused_before_the_report() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    for signer in [
        vec![
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
        ],
        vec!["--speculos", &w.sim.addr, "--account", "2"],
    ] {
        let mut args = vec!["sign", "c.json"];
        args.extend_from_slice(&signer);
        args.extend_from_slice(&["-o", "s.json"]);
        let r = w.bg("m.toml", false, &args);
        assert_eq!(r.code, 4, "{}", all_output(&r));
        assert!(!r.stdout.contains("ALLOWED"), "{}", r.stdout);
        assert!(!r.stdout.contains("The device will show"), "{}", r.stdout);
        assert!(r.stderr.contains("not an owner"), "{}", r.stderr);
        assert!(!w.sb.path("s.json").exists());
    }
    // An owner still gets the review first, then signs.
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            "c.json",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "s.json",
        ],
    );
    ok(&r, "sign as an owner");
    assert!(r.stdout.contains("ALLOWED"), "{}", r.stdout);
    let _ = SIM0;
}

/// Issue 14: handing over control is critical whatever the manifest says (the Radiant payload was allowed
/// by `newOwner = { any = true }`), and `manifest check` warns loudly about such an entry.
#[test]
fn ownership_handover_is_critical_even_when_the_manifest_allows_it() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let text = std::fs::read_to_string(w.sb.path("m.toml")).unwrap();
    let text = text.replace(
        "\"function owner() view returns (address)\",",
        "\"function owner() view returns (address)\",\n  \"function transferOwnership(address newOwner)\",\n  \"function grantRole(bytes32 role, address account)\",",
    );
    let text = format!(
        "{text}\n[[actions]]\nid = \"hand-over\"\ntitle = \"Hand the pool over\"\ncontract = \"pool\"\nfunction = \"transferOwnership(address)\"\nargs = {{ newOwner = {{ any = true }} }}\n\n[[actions]]\nid = \"grant\"\ntitle = \"Grant a role\"\ncontract = \"pool\"\nfunction = \"grantRole(bytes32,address)\"\nargs = {{ role = {{ any = true }}, account = {{ any = true }} }}\n"
    );
    w.sb.write("radiant.toml", &text);
    let h =
        w.sb.run(&["--manifest", "radiant.toml", "manifest", "hash"]);
    w.pins
        .borrow_mut()
        .insert("radiant.toml".into(), h.stdout.trim().to_string());
    let r = w.bg("radiant.toml", false, &["manifest", "check"]);
    assert_eq!(r.code, 0, "{}", all_output(&r));
    assert!(
        r.stdout.contains("WARNING") && r.stdout.contains("newOwner"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("can never be signed"), "{}", r.stdout);
    let r = w.bg("radiant.toml", false, &["--json", "manifest", "check"]);
    let warnings = r.json()["warnings"].as_array().unwrap().len();
    assert!(warnings >= 3, "{}", r.stdout);
    let attacker = "0xbDd077f651EBe7f7b3cE16fe5F2b025BE2969516";
    let data =
        crate::support::anvil::cast_offline(&["calldata", "transferOwnership(address)", attacker]);
    let r = w.bg(
        "radiant.toml",
        false,
        &[
            "--json", "verify", "--safe", &w.safe, "--to", &w.pool, "--data", &data,
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    let v = r.json();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == json!("control_change") && f["severity"] == json!("critical")),
        "{v}"
    );
    // The default admin role, likewise; another role stays the manifest's to allow.
    let admin = crate::support::anvil::cast_offline(&[
        "calldata",
        "grantRole(bytes32,address)",
        &format!("0x{}", "00".repeat(32)),
        attacker,
    ]);
    let r = w.bg(
        "radiant.toml",
        false,
        &[
            "verify", "--safe", &w.safe, "--to", &w.pool, "--data", &admin,
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    let pauser = crate::support::anvil::cast_offline(&[
        "calldata",
        "grantRole(bytes32,address)",
        &format!("0x{}", "11".repeat(32)),
        attacker,
    ]);
    let r = w.bg(
        "radiant.toml",
        false,
        &[
            "verify", "--safe", &w.safe, "--to", &w.pool, "--data", &pauser,
        ],
    );
    assert_eq!(r.code, 0, "{}", all_output(&r));
}
