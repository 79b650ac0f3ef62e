//! Manifest trust through the real binary: the pin store, explicit pins, and Safe-owner approvals signed
//! with real keys (alloy's local signer, and Foundry's `cast wallet sign` as an independent EIP-191
//! implementation).

use crate::support::anvil::{cast_offline, DEFAULT_ADDRESSES, DEFAULT_KEYS};
use crate::support::bin::Sandbox;
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use serde_json::json;

fn manifest(title: &str, owners: [&str; 3]) -> String {
    format!(
        r#"version = 1
name = "Trust Test"
chain_id = 31337

[safe]
address = "0x5AFe00000000000000000000000000000000a11C"
version = "1.4.1"
owners = ["{}", "{}", "{}"]
threshold = 2

[contracts.pool]
address = "0xb001000000000000000000000000000000000001"
abi = ["function pause()"]

[[actions]]
id = "pause"
title = "{title}"
contract = "pool"
function = "pause()"

[[playbooks]]
id = "halt"
actions = ["pause"]
"#,
        owners[0], owners[1], owners[2]
    )
}

fn owners() -> [&'static str; 3] {
    [
        DEFAULT_ADDRESSES[1],
        DEFAULT_ADDRESSES[2],
        DEFAULT_ADDRESSES[3],
    ]
}

fn hash_of(sb: &Sandbox) -> String {
    let r = sb.run(&["--manifest", "m.toml", "manifest", "hash"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout.trim().to_string()
}

fn trust_state(sb: &Sandbox, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--manifest", "m.toml"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["manifest", "check", "--json"]);
    let r = sb.run(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    r.json()["trust"].clone()
}

/// EIP-191 personal_sign of `breakglass manifest <hash>` with alloy's local signer.
fn approve_alloy(key: &str, hash: &str) -> serde_json::Value {
    let signer: PrivateKeySigner = key.parse().unwrap();
    let sig = signer
        .sign_message_sync(format!("breakglass manifest {hash}").as_bytes())
        .unwrap();
    json!({ "signer": signer.address().to_checksum(None), "signature": format!("0x{}", alloy::hex::encode(sig.as_bytes())) })
}

/// The same with Foundry's `cast wallet sign` (an independent implementation).
fn approve_cast(key: &str, address: &str, hash: &str) -> serde_json::Value {
    let sig = cast_offline(&[
        "wallet",
        "sign",
        "--private-key",
        key,
        &format!("breakglass manifest {hash}"),
    ]);
    json!({ "signer": address, "signature": sig })
}

fn write_approvals(sb: &Sandbox, hash: &str, approvals: Vec<serde_json::Value>) {
    let body = json!({ "manifest_hash": hash, "approvals": approvals });
    sb.write(
        "m.toml.approvals.json",
        serde_json::to_vec_pretty(&body).unwrap(),
    );
}

#[test]
fn pin_store_trusts_exactly_the_pinned_bytes() {
    let sb = Sandbox::new();
    sb.write("m.toml", manifest("Pause", owners()));
    let h1 = hash_of(&sb);
    assert_eq!(h1.len(), 66);
    assert_eq!(trust_state(&sb, &[])["state"], "untrusted");

    // Without --yes and without a typed "yes", nothing is pinned.
    let r = sb.run_with_stdin(&["--manifest", "m.toml", "manifest", "pin"], "y\n");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("not pinned"), "{}", r.stderr);
    assert_eq!(trust_state(&sb, &[])["state"], "untrusted");

    let r = sb.run_with_stdin(&["--manifest", "m.toml", "manifest", "pin"], "yes\n");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&h1), "pin shows the hash: {}", r.stdout);
    assert!(
        r.stdout.contains("2 of 3 owners"),
        "pin shows the summary: {}",
        r.stdout
    );
    assert_eq!(trust_state(&sb, &[])["state"], "pinned");

    // One changed byte is another manifest: untrusted, and the reason says the file changed.
    sb.write("m.toml", manifest("Pause!", owners()));
    let h2 = hash_of(&sb);
    assert_ne!(h1, h2);
    let t = trust_state(&sb, &[]);
    assert_eq!(t["state"], "untrusted");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains(&h1) && reason.contains(&h2), "{reason}");

    // Re-pinning says what changed: old and new hash.
    let r = sb.run(&["--manifest", "m.toml", "manifest", "pin", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("DIFFERENT") && r.stdout.contains(&h1) && r.stdout.contains(&h2),
        "{}",
        r.stdout
    );
    assert_eq!(trust_state(&sb, &[])["state"], "pinned");
    let r = sb.run(&["--manifest", "m.toml", "manifest", "pin", "--yes", "--json"]);
    assert_eq!(r.json()["changed"], false);
}

#[test]
fn explicit_pin_by_flag_and_env() {
    let mut sb = Sandbox::new();
    sb.write("m.toml", manifest("Pause", owners()));
    let h = hash_of(&sb);
    assert_eq!(trust_state(&sb, &["--pin", &h])["state"], "pinned");
    let wrong = format!("0x{}", "ab".repeat(32));
    let t = trust_state(&sb, &["--pin", &wrong]);
    assert_eq!(t["state"], "untrusted");
    assert!(t["reason"]
        .as_str()
        .unwrap()
        .contains("not the manifest you pinned"));

    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "--pin",
        "0x1234",
        "manifest",
        "check",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("64 hex digits"), "{}", r.stderr);

    sb.env.push(("BREAKGLASS_PIN".into(), h.clone()));
    let t = trust_state(&sb, &[]);
    assert_eq!(t["state"], "pinned");
    assert_eq!(t["source"], "BREAKGLASS_PIN");
}

#[test]
fn owner_approvals_trust_a_new_version() {
    let sb = Sandbox::new();
    // v1 is pinned after review: its Safe owners become the anchor for approving later versions.
    sb.write("m.toml", manifest("Pause", owners()));
    assert_eq!(
        sb.run(&["--manifest", "m.toml", "manifest", "pin", "--yes"])
            .code,
        0
    );
    let h1 = hash_of(&sb);

    sb.write("m.toml", manifest("Pause the pool", owners()));
    let h2 = hash_of(&sb);

    // One owner, one non-owner, and the same owner again: 1 of 2, untrusted.
    write_approvals(
        &sb,
        &h2,
        vec![
            approve_alloy(DEFAULT_KEYS[1], &h2),
            approve_alloy(DEFAULT_KEYS[5], &h2),
            approve_cast(DEFAULT_KEYS[1], DEFAULT_ADDRESSES[1], &h2),
        ],
    );
    let r = sb.run(&["--manifest", "m.toml", "manifest", "approvals", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let statuses: Vec<&str> = v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["valid", "not_owner", "duplicate"]);
    assert_eq!(v["valid"], 1);
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["anchor"], h1);
    assert_eq!(trust_state(&sb, &[])["state"], "untrusted");

    // A signature by owner 3 claimed as owner 2's is rejected as a bad signature.
    let mut forged = approve_alloy(DEFAULT_KEYS[3], &h2);
    forged["signer"] = json!(DEFAULT_ADDRESSES[2]);
    // A real approval by owner 3, but of the OLD hash, does not recover to owner 3 for the new text.
    let mut stale = approve_alloy(DEFAULT_KEYS[3], &h1);
    stale["signer"] = json!(DEFAULT_ADDRESSES[3]);
    write_approvals(
        &sb,
        &h2,
        vec![approve_alloy(DEFAULT_KEYS[1], &h2), forged, stale],
    );
    let v = sb
        .run(&["--manifest", "m.toml", "manifest", "approvals", "--json"])
        .json();
    let statuses: Vec<&str> = v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["valid", "bad_signature", "bad_signature"]);
    assert_eq!(trust_state(&sb, &[])["state"], "untrusted");

    // Owner 2 signs with cast: 2 of 2, approved.
    write_approvals(
        &sb,
        &h2,
        vec![
            approve_alloy(DEFAULT_KEYS[1], &h2),
            approve_cast(DEFAULT_KEYS[2], DEFAULT_ADDRESSES[2], &h2),
        ],
    );
    let t = trust_state(&sb, &[]);
    assert_eq!(t["state"], "approved", "{t}");
    assert_eq!(t["approvals"], 2);

    // Tampering with the approved manifest (one more byte) voids every approval.
    let mut tampered = manifest("Pause the pool", owners());
    tampered.push('\n');
    sb.write("m.toml", tampered);
    assert_eq!(trust_state(&sb, &[])["state"], "untrusted");
    let r = sb.run(&["--manifest", "m.toml", "manifest", "approvals"]);
    assert!(
        r.stdout.contains("approves another manifest"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_manifest_cannot_approve_itself_with_new_owners() {
    // Regression for the attack SECURITY.md describes: an edited manifest lists the attacker's keys as
    // owners and carries their approvals. Approvals count against the pinned version's owners only.
    let sb = Sandbox::new();
    sb.write("m.toml", manifest("Pause", owners()));
    assert_eq!(
        sb.run(&["--manifest", "m.toml", "manifest", "pin", "--yes"])
            .code,
        0
    );
    let attackers = [
        DEFAULT_ADDRESSES[6],
        DEFAULT_ADDRESSES[7],
        DEFAULT_ADDRESSES[8],
    ];
    sb.write("m.toml", manifest("Pause", attackers));
    let h = hash_of(&sb);
    write_approvals(
        &sb,
        &h,
        vec![
            approve_alloy(DEFAULT_KEYS[6], &h),
            approve_alloy(DEFAULT_KEYS[7], &h),
        ],
    );
    assert_eq!(trust_state(&sb, &[])["state"], "untrusted");
    let v = sb
        .run(&["--manifest", "m.toml", "manifest", "approvals", "--json"])
        .json();
    assert_eq!(v["valid"], 0);

    // With nothing pinned at all, approvals cannot create trust either.
    let sb2 = Sandbox::new();
    sb2.write("m.toml", manifest("Pause", attackers));
    let h = hash_of(&sb2);
    write_approvals(
        &sb2,
        &h,
        vec![
            approve_alloy(DEFAULT_KEYS[6], &h),
            approve_alloy(DEFAULT_KEYS[7], &h),
        ],
    );
    assert_eq!(trust_state(&sb2, &[])["state"], "untrusted");
}

#[test]
fn malformed_approvals_file_is_a_clear_error() {
    let sb = Sandbox::new();
    sb.write("m.toml", manifest("Pause", owners()));
    sb.write("m.toml.approvals.json", "{not json");
    let r = sb.run(&["--manifest", "m.toml", "manifest", "approvals"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("not a valid approvals file"),
        "{}",
        r.stderr
    );
}
