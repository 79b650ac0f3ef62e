//! Issue 12: the hostile inputs an adversarial review got through, each performed against the real binary
//! on anvil with the real Safe 1.4.1 and OpenZeppelin 5 proxies (the `execute_chain` world), and each
//! proven refused. Signatures that breakglass would not make are made by Foundry's `cast wallet sign`, as
//! an attacker with an owner's key or a hand-edited bundle would.

use crate::compose_chain::rehash;
use crate::support::anvil::cast_offline;
use crate::support::bin::Run;
use crate::support::world::{all_output, ok, read_json, Pins, World, OWNER_KEY, PASSWORD, SIM0};
use breakglass::signer::ledger::sim::SPECULOS_SEED;
use serde_json::{json, Value};

const ONE_ETH: u128 = 1_000_000_000_000_000_000;

/// Writes `to` = the bundle `from` after `edit`.
fn edit(w: &World, from: &str, to: &str, edit: impl FnOnce(&mut Value)) {
    let mut b = w.bundle(from);
    edit(&mut b);
    w.sb.write(to, serde_json::to_vec_pretty(&b).unwrap());
}

/// A variant of manifest `base` (already written) with `change` applied, pinned under `file`.
fn manifest_variant(w: &World, base: &str, file: &str, change: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(w.sb.path(base)).unwrap();
    let new = change(text);
    w.sb.write(file, &new);
    let h = w.sb.run(&["--manifest", file, "manifest", "hash"]);
    ok(&h, "manifest hash");
    w.pins
        .borrow_mut()
        .insert(file.to_string(), h.stdout.trim().to_string());
}

/// `breakglass --manifest M --pin H --rpc-url URL ARGS` with `stdin`.
fn bg_stdin(w: &World, m: &str, args: &[&str], stdin: &str) -> Run {
    let pin = w.pins.borrow().get(m).cloned().unwrap();
    let rpc = w.rpc.borrow().clone();
    let mut a = vec!["--manifest", m, "--pin", &pin, "--rpc-url", &rpc];
    a.extend_from_slice(args);
    w.sb.run_with_stdin(&a, stdin)
}

/// An approved-hash entry (Safe's v = 1) naming `owner`: r = owner, s = 0, v = 1. Anyone can write it.
fn approved_hash_entry(owner: &str) -> Value {
    let hex = owner.trim_start_matches("0x").to_ascii_lowercase();
    json!({
        "signer": owner,
        "signature": format!("0x{}{hex}{}01", "0".repeat(24), "0".repeat(64)),
        "kind": "approved_hash",
    })
}

/// `cast wallet sign --no-hash` of the bundle's safeTxHash by simulator account 0 (from its seed) or the
/// keystore owner (from its key): an ECDSA owner signature made outside breakglass.
fn cast_signature(b: &Value, who: &str) -> Value {
    let hash = b["safe_tx"]["hashes"]["safe_tx_hash"].as_str().unwrap();
    let sig = if who == SIM0 {
        cast_offline(&[
            "wallet",
            "sign",
            "--no-hash",
            "--mnemonic",
            SPECULOS_SEED,
            "--mnemonic-derivation-path",
            "m/44'/60'/0'/0/0",
            hash,
        ])
    } else {
        cast_offline(&[
            "wallet",
            "sign",
            "--no-hash",
            "--private-key",
            OWNER_KEY,
            hash,
        ])
    };
    json!({"signer": who, "signature": sig, "kind": "eip712", "device": "cast wallet sign"})
}

fn sign_sim0(w: &World, m: &str, bundle: &str, out: &str) {
    let r = w.bg(
        m,
        false,
        &[
            "sign",
            bundle,
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            out,
        ],
    );
    ok(&r, "sign on the simulator");
}

fn finding_codes(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap_or("").to_string(),
                f["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has_finding(report: &Value, severity: &str, code: &str) -> bool {
    finding_codes(report)
        .iter()
        .any(|(s, c)| s == severity && c == code)
}

fn nothing_happened(w: &World, nonce_before: u128) {
    assert_eq!(w.safe_nonce(), nonce_before, "the Safe's nonce moved");
    assert!(!w.paused(&w.pool), "the pool was paused");
}

/// Finding 1: a forged approved-hash entry for a second owner. It must count nowhere (inspect, combine,
/// execute), not even when that owner's key executes; it counts only when the executing owner is shown
/// the review and types the start of the safeTxHash, or when approveHash is on chain.
#[test]
fn forged_approved_hash_entry_never_counts() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    w.anvil.set_balance(&w.owner3, 10 * ONE_ETH);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    sign_sim0(&w, "m.toml", "c.json", "s1.json");
    let owner3 = w.owner3.clone();
    edit(&w, "s1.json", "forged.json", |b| {
        b["signatures"]
            .as_array_mut()
            .unwrap()
            .push(approved_hash_entry(&owner3));
    });
    let nonce0 = w.safe_nonce();

    // inspect, offline and online: one signature counts; the forged entry is named as not counted.
    for online in [false, true] {
        let r = w.bg("m.toml", online, &["--json", "inspect", "forged.json"]);
        ok(&r, "inspect");
        let s = &r.json()["signing"];
        assert_eq!(s["signatures"], json!(1), "{s}");
        assert_eq!(s["ready"], json!(false), "{s}");
        let forged = s["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == json!("approved_hash"))
            .unwrap();
        assert_eq!(forged["state"], json!("unproven"), "{s}");
        assert_eq!(forged["counts"], json!(false), "{s}");
    }
    let r = w.bg("m.toml", false, &["inspect", "forged.json"]);
    ok(&r, "inspect (text)");
    assert!(r.stdout.contains("1 of 2 signatures"), "{}", r.stdout);
    assert!(!r.stdout.contains("ready to execute"), "{}", r.stdout);
    assert!(r.stdout.contains("NOT COUNTED"), "{}", r.stdout);

    // combine: still 1 of 2.
    let r = w.bg(
        "m.toml",
        false,
        &["--json", "combine", "forged.json", "-o", "combined.json"],
    );
    ok(&r, "combine");
    assert_eq!(r.json()["signatures"], json!(1), "{}", r.stdout);
    assert_eq!(r.json()["ready"], json!(false), "{}", r.stdout);

    // execute with the named owner's own key as executor: refused, nothing mined.
    let exec = [
        "execute",
        "forged.json",
        "--keystore",
        "keystores/owner3",
        "--password-file",
        "password.txt",
        "-o",
        "x.json",
    ];
    let r = w.bg("m.toml", true, &exec);
    assert_ne!(r.code, 0, "{}", all_output(&r));
    assert!(
        all_output(&r).contains("not_enough_signatures") || r.stderr.contains("1 of 2"),
        "{}",
        all_output(&r)
    );
    assert!(!w.sb.path("x.json").exists());
    nothing_happened(&w, nonce0);

    // --approve-as-owner with the wrong confirmation: refused, nothing mined.
    let mut with_approve = exec.to_vec();
    with_approve.push("--approve-as-owner");
    let r = bg_stdin(&w, "m.toml", &with_approve, "deadbeef\n");
    assert_ne!(r.code, 0, "{}", all_output(&r));
    assert!(r.stderr.contains("not approved"), "{}", r.stderr);
    nothing_happened(&w, nonce0);

    // The executing owner reviews and types the start of the safeTxHash: now it is a real approval.
    let hash = w.bundle("forged.json")["safe_tx"]["hashes"]["safe_tx_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let r = bg_stdin(&w, "m.toml", &with_approve, &format!("{}\n", &hash[2..10]));
    ok(&r, "execute --approve-as-owner with the typed confirmation");
    assert!(
        r.stdout.contains("ALLOWED"),
        "the review was shown: {}",
        r.stdout
    );
    assert!(w.paused(&w.pool));
    assert_eq!(w.safe_nonce(), nonce0 + 1);
    let _ = PASSWORD;
}

/// An approved-hash entry counts when the chain proves it: the owner called approveHash on the Safe.
#[test]
fn approved_hash_counts_when_approved_on_chain() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    sign_sim0(&w, "m.toml", "c.json", "s1.json");
    let owner3 = w.owner3.clone();
    edit(&w, "s1.json", "approved.json", |b| {
        b["signatures"]
            .as_array_mut()
            .unwrap()
            .push(approved_hash_entry(&owner3));
    });
    let hash = w.bundle("c.json")["safe_tx"]["hashes"]["safe_tx_hash"]
        .as_str()
        .unwrap()
        .to_string();
    // Before: online inspect does not count it.
    let r = w.bg("m.toml", true, &["--json", "inspect", "approved.json"]);
    ok(&r, "inspect");
    assert_eq!(r.json()["signing"]["signatures"], json!(1));
    // The owner approves on chain with their own key.
    w.anvil.set_balance(&w.owner3, 10 * ONE_ETH);
    w.anvil
        .send(OWNER_KEY, &w.safe, "approveHash(bytes32)", &[&hash]);
    let r = w.bg("m.toml", true, &["--json", "inspect", "approved.json"]);
    ok(&r, "inspect after approveHash");
    let s = &r.json()["signing"];
    assert_eq!(s["signatures"], json!(2), "{s}");
    assert_eq!(s["ready"], json!(true), "{s}");
    // Offline, nothing proves it.
    let r = w.bg("m.toml", false, &["--json", "inspect", "approved.json"]);
    assert_eq!(r.json()["signing"]["signatures"], json!(1));
    // A non-owner executor lands it.
    let nonce0 = w.safe_nonce();
    let r = w.execute_keystore("m.toml", "approved.json", "x.json");
    ok(&r, "execute with an on-chain approval");
    assert!(w.paused(&w.pool));
    assert_eq!(w.safe_nonce(), nonce0 + 1);
}

/// One owner's signature twice is one signature, everywhere, and says so.
#[test]
fn duplicated_signature_counts_once() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    sign_sim0(&w, "m.toml", "c.json", "s1.json");
    edit(&w, "s1.json", "dup.json", |b| {
        let first = b["signatures"][0].clone();
        b["signatures"].as_array_mut().unwrap().push(first);
    });
    let r = w.bg("m.toml", false, &["--json", "inspect", "dup.json"]);
    ok(&r, "inspect");
    let s = &r.json()["signing"];
    assert_eq!(s["signatures"], json!(1), "{s}");
    assert_eq!(s["ready"], json!(false), "{s}");
    assert_eq!(s["entries"][1]["state"], json!("duplicate"), "{s}");
    let r = w.bg("m.toml", false, &["inspect", "dup.json"]);
    assert!(r.stdout.contains("already counted"), "{}", r.stdout);
    let r = w.bg(
        "m.toml",
        false,
        &["--json", "combine", "dup.json", "-o", "comb.json"],
    );
    ok(&r, "combine");
    assert_eq!(r.json()["signatures"], json!(1));
    assert_eq!(r.json()["duplicates_dropped"], json!(1));
    let nonce0 = w.safe_nonce();
    let r = w.execute_keystore("m.toml", "dup.json", "x.json");
    assert_ne!(r.code, 0, "{}", all_output(&r));
    nothing_happened(&w, nonce0);
}

/// Finding 3: a Safe pause with safeTxGas > 0 (its inner call may run out of gas while the nonce and
/// signatures are spent). Refused by verify, sign and execute unless the manifest allows it for the action.
#[test]
fn safe_tx_gas_is_refused_unless_the_manifest_allows_it() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    for (field, value) in [("safe_tx_gas", "60000"), ("base_gas", "21000")] {
        let out = format!("gas-{field}.json");
        edit(&w, "c.json", &out, |b| {
            b["safe_tx"][field] = json!(value);
            rehash(b);
        });
        let r = w.bg("m.toml", false, &["--json", "verify", &out]);
        assert_eq!(r.code, 3, "{}", all_output(&r));
        assert!(
            has_finding(&r.json(), "critical", "gas_fields"),
            "{}",
            r.stdout
        );
        let signed = format!("signed-{field}.json");
        let r = w.bg(
            "m.toml",
            false,
            &[
                "sign",
                &out,
                "--speculos",
                &w.sim.addr,
                "--account",
                "0",
                "-o",
                &signed,
            ],
        );
        assert_eq!(r.code, 3, "{}", all_output(&r));
        assert!(!w.sb.path(&signed).exists());
    }
    // With signatures made elsewhere (cast), execute refuses too and the Safe is untouched.
    edit(&w, "gas-safe_tx_gas.json", "gas-signed.json", |b| {
        let s1 = cast_signature(b, SIM0);
        let s2 = cast_signature(b, &w.owner3);
        b["signatures"] = json!([s1, s2]);
    });
    let nonce0 = w.safe_nonce();
    let r = w.execute_keystore("m.toml", "gas-signed.json", "x.json");
    assert_eq!(r.code, 3, "{}", all_output(&r));
    nothing_happened(&w, nonce0);

    // The manifest may allow it for an action: then it verifies, with the risk on the report.
    manifest_variant(&w, "m.toml", "m-gas.toml", |t| {
        t.replace(
            "function = \"pause()\"\nvia = \"safe\"\nexpect = [\"paused() == true\", \"owner()",
            "function = \"pause()\"\nvia = \"safe\"\nallow_safe_tx_gas = true\nexpect = [\"paused() == true\", \"owner()",
        )
    });
    ok(
        &w.bg(
            "m-gas.toml",
            true,
            &["compose", "halt-pool", "-o", "c2.json"],
        ),
        "compose",
    );
    edit(&w, "c2.json", "gas-allowed.json", |b| {
        b["safe_tx"]["safe_tx_gas"] = json!("60000");
        rehash(b);
    });
    let r = w.bg("m-gas.toml", false, &["verify", "gas-allowed.json"]);
    ok(&r, "verify with allow_safe_tx_gas");
    assert!(r.stdout.contains("CRITICAL RISK"), "{}", r.stdout);
    assert!(r.stdout.contains("safeTxGas 60000"), "{}", r.stdout);
}

/// Finding 4: a manifest ABI that lists a Safe-admin function for a second Safe. `enableModule` on that
/// Safe must still be critical (keyed on the selector, not on which ABI decoded it).
#[test]
fn manifest_abi_cannot_mask_a_safe_admin_call() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let safe2 = w.anvil.deploy_safe(&[SIM0], 1);
    let module = "0x000000000000000000000000000000000000dEaD";
    manifest_variant(&w, "m.toml", "m-admin.toml", |t| {
        let t = t.replace(
            "[[actions]]\nid = \"pause-pool\"",
            &format!(
                "[contracts.safe2]\naddress = \"{safe2}\"\nabi = [\"function enableModule(address module)\", \"function addOwnerWithThreshold(address owner, uint256 _threshold)\"]\n\n[[actions]]\nid = \"pause-pool\""
            ),
        );
        format!(
            "{t}\n[[actions]]\nid = \"enable\"\ntitle = \"Enable a module\"\ncontract = \"safe2\"\nfunction = \"enableModule(address)\"\nvia = \"safe\"\nargs = {{ module = {{ any = true }} }}\n\n[[playbooks]]\nid = \"enable\"\ntitle = \"Enable\"\nactions = [\"enable\"]\n"
        )
    });
    let r = w.bg(
        "m-admin.toml",
        true,
        &[
            "--json",
            "compose",
            "enable",
            "--arg",
            &format!("enable.module={module}"),
            "-o",
            "e.json",
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(!w.sb.path("e.json").exists());
    let data = cast_offline(&["calldata", "enableModule(address)", module]);
    let r = w.bg(
        "m-admin.toml",
        false,
        &[
            "--json", "verify", "--safe", &w.safe, "--to", &safe2, "--data", &data,
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        has_finding(&r.json(), "critical", "safe_admin"),
        "{}",
        r.stdout
    );
}

/// Finding 6: a guardian-EOA pause with absurd fees (1e17 wei per gas: thousands of ETH). Refused by
/// compose, verify and sign, and the fee is said in ETH.
#[test]
fn absurd_guardian_fee_is_refused_and_said_in_eth() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let common = [
        "compose",
        "guardian-halt",
        "--from",
        SIM0,
        "--nonce",
        "0",
        "--gas-limit",
        "52067",
    ];
    let mut absurd = common.to_vec();
    absurd.extend_from_slice(&[
        "--max-fee",
        "100000000000000000",
        "--priority-fee",
        "100000000000000000",
        "-o",
        "absurd.json",
    ]);
    let r = w.bg("m.toml", false, &absurd);
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("5206.7 ETH"), "{}", all_output(&r));
    assert!(!w.sb.path("absurd.json").exists());

    // A sane bundle, then its fee fields raised by hand (signing hash recomputed): verify and sign refuse.
    let mut sane = common.to_vec();
    sane.extend_from_slice(&[
        "--max-fee",
        "100000000000",
        "--priority-fee",
        "1000000000",
        "-o",
        "sane.json",
    ]);
    ok(&w.bg("m.toml", false, &sane), "compose sane");
    let r = w.bg("m.toml", false, &["verify", "sane.json"]);
    ok(&r, "verify sane");
    assert!(
        r.stdout.contains("Fee: at most 0.0052067 ETH"),
        "{}",
        r.stdout
    );
    edit(&w, "sane.json", "raised.json", |b| {
        b["eoa_tx"]["max_fee_per_gas"] = json!(100_000_000_000_000_000u128);
        b["eoa_tx"]["max_priority_fee_per_gas"] = json!(100_000_000_000_000_000u128);
        let mut parsed: breakglass::bundle::Bundle = serde_json::from_value(b.clone()).unwrap();
        let e = parsed.eoa_tx.as_mut().unwrap();
        use alloy::consensus::SignableTransaction;
        e.signing_hash = e.unsigned(parsed.chain_id).signature_hash();
        *b = serde_json::to_value(&parsed).unwrap();
    });
    let r = w.bg("m.toml", false, &["--json", "verify", "raised.json"]);
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        has_finding(&r.json(), "critical", "fee_cap"),
        "{}",
        r.stdout
    );
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            "raised.json",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "raised-signed.json",
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("5206.7 ETH"), "{}", all_output(&r));
    assert!(!w.sb.path("raised-signed.json").exists());

    // The manifest sets the limit: a stricter one refuses even the sane fee.
    manifest_variant(&w, "m.toml", "m-fee.toml", |t| {
        t.replace(
            "[timelock]",
            "[policy]\nmax_tx_fee = \"1000000 gwei\"\n\n[timelock]",
        )
    });
    let mut sane2 = common.to_vec();
    sane2.extend_from_slice(&[
        "--max-fee",
        "100000000000",
        "--priority-fee",
        "1000000000",
        "-o",
        "sane2.json",
    ]);
    let r = w.bg("m-fee.toml", false, &sane2);
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("0.001 ETH"), "{}", all_output(&r));
}

/// A plain transaction to the timelock's schedule carrying a via-timelock action: actions are scheduled
/// by the Safe, so any other route is refused.
#[test]
fn timelock_schedule_from_an_account_is_refused() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let unpause = cast_offline(&["calldata", "unpause()"]);
    let zero = format!("0x{}", "0".repeat(64));
    let data = cast_offline(&[
        "calldata",
        "schedule(address,uint256,bytes,bytes32,bytes32,uint256)",
        &w.tl_pool,
        "0",
        &unpause,
        &zero,
        &zero,
        "3600",
    ]);
    let r = w.bg(
        "m.toml",
        false,
        &[
            "--json",
            "verify",
            "--from",
            SIM0,
            "--to",
            &w.timelock,
            "--data",
            &data,
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        has_finding(&r.json(), "refused", "wrong_via"),
        "{}",
        r.stdout
    );
}

/// A bundle's `actions`/`playbook` labels are not hashed; execution picks post-conditions from them. They
/// must match the decoded calls.
#[test]
fn bundle_labels_must_match_the_decoded_calls() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]),
        "compose",
    );
    edit(&w, "c.json", "relabelled.json", |b| {
        b["actions"] = json!(["pause-vault"]);
    });
    edit(&w, "c.json", "replaybooked.json", |b| {
        b["playbook"] = json!("halt");
    });
    for f in ["relabelled.json", "replaybooked.json"] {
        let r = w.bg("m.toml", false, &["verify", f]);
        assert_eq!(r.code, 3, "{f}: {}", all_output(&r));
        assert!(r.stderr.contains("does not match"), "{f}: {}", r.stderr);
        let signed = format!("signed-{f}");
        let r = w.bg(
            "m.toml",
            false,
            &[
                "sign",
                f,
                "--speculos",
                &w.sim.addr,
                "--account",
                "0",
                "-o",
                &signed,
            ],
        );
        assert_eq!(r.code, 3, "{f}: {}", all_output(&r));
        assert!(!w.sb.path(&signed).exists());
    }
    let _ = read_json;
}

/// A MultiSend entry to address 0 runs as a call from the Safe to itself under MultiSend 1.5.0 (which maps
/// 0 to `address(this)`; 1.3.0/1.4.1 call address 0): critical, whatever its selector.
#[test]
fn multisend_entry_to_address_zero_is_a_safe_self_call() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let pause = cast_offline(&["calldata", "pause()"]);
    let pause_hex = pause.trim_start_matches("0x");
    let pool_hex = w.pool.trim_start_matches("0x").to_ascii_lowercase();
    let word = |n: usize| format!("{n:064x}");
    let packed = format!(
        "0x00{pool_hex}{}{}{pause_hex}00{}{}{}{pause_hex}",
        word(0),
        word(4),
        "0".repeat(40),
        word(0),
        word(4)
    );
    let data = cast_offline(&["calldata", "multiSend(bytes)", &packed]);
    let ms = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2";
    let r = w.bg(
        "m.toml",
        false,
        &[
            "--json",
            "verify",
            "--safe",
            &w.safe,
            "--to",
            ms,
            "--operation",
            "1",
            "--data",
            &data,
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    let v = r.json();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == json!("safe_self_call"))
        .unwrap_or_else(|| panic!("no safe_self_call finding: {v}"));
    assert_eq!(f["severity"], json!("critical"));
    assert_eq!(f["path"], json!("0.1"), "{v}");
}
