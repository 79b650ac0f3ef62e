//! Issue 14 (Safe 1.0.0 / 1.1.1 / 1.2.0): those Safes (Optimism's operations Safe, Bybit's) sign an
//! EIP-712 domain without chain id (and 1.0.0 a SafeTx type with `dataGas`). The hashes breakglass
//! prints and signs are checked against Foundry's own EIP-712 implementation: `cast wallet sign --data`
//! of the typed data (domain without chainId) gives the same signature as `cast wallet sign --no-hash` of breakglass's safeTxHash (deterministic ECDSA), and
//! the domain separator is `keccak256(abi.encode(keccak256("EIP712Domain(address verifyingContract)"),
//! safe))` computed by cast. A bundle cannot claim the other domain.

use crate::support::anvil::{cast_offline, DEFAULT_ADDRESSES, DEFAULT_KEYS};
use crate::support::bin::Sandbox;
use serde_json::json;

const SAFE: &str = "0x5AFe00000000000000000000000000000000a11C";
const POOL: &str = "0xb001000000000000000000000000000000000001";

fn manifest(version: &str) -> String {
    format!(
        r#"version = 1
name = "Legacy Safe"
chain_id = 10

[safe]
address = "{SAFE}"
version = "{version}"
owners = ["{o1}", "{o2}"]
threshold = 2

[contracts.pool]
address = "{POOL}"
abi = ["function pause()", "function paused() view returns (bool)"]

[[actions]]
id = "pause-pool"
title = "Pause the pool"
contract = "pool"
function = "pause()"
expect = ["paused() == true"]

[[playbooks]]
id = "halt"
title = "Halt"
actions = ["pause-pool"]
"#,
        o1 = DEFAULT_ADDRESSES[1],
        o2 = DEFAULT_ADDRESSES[2],
    )
}

#[test]
fn safe_1_1_1_hashes_match_foundrys_eip712_without_chain_id() {
    let sb = Sandbox::new();
    for version in ["1.0.0", "1.1.1", "1.2.0"] {
        let gas_field = if version == "1.0.0" {
            "dataGas"
        } else {
            "baseGas"
        };
        sb.write("m.toml", manifest(version));
        let pause = cast_offline(&["calldata", "pause()"]);
        let r = sb.run(&[
            "--manifest",
            "m.toml",
            "--json",
            "verify",
            "--allow-untrusted",
            "--safe",
            SAFE,
            "--to",
            POOL,
            "--data",
            &pause,
            "--nonce",
            "7",
        ]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        let v = r.json();
        let h = &v["context"]["hashes"];
        // Domain separator, by cast.
        let typehash = cast_offline(&["keccak", "EIP712Domain(address verifyingContract)"]);
        let enc = cast_offline(&["abi-encode", "f(bytes32,address)", &typehash, SAFE]);
        let domain = cast_offline(&["keccak", &enc]);
        assert_eq!(h["domain_separator"].as_str().unwrap(), domain, "{version}");
        // The whole safeTxHash, by cast's EIP-712 (typed data with a chain-id-less domain).
        let mut typed = json!({
            "types": {
                "EIP712Domain": [{"name": "verifyingContract", "type": "address"}],
                "SafeTx": [
                    {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"},
                    {"name": "data", "type": "bytes"}, {"name": "operation", "type": "uint8"},
                    {"name": "safeTxGas", "type": "uint256"}, {"name": gas_field, "type": "uint256"},
                    {"name": "gasPrice", "type": "uint256"}, {"name": "gasToken", "type": "address"},
                    {"name": "refundReceiver", "type": "address"}, {"name": "nonce", "type": "uint256"}
                ]
            },
            "primaryType": "SafeTx",
            "domain": {"verifyingContract": SAFE},
            "message": {
                "to": POOL, "value": "0", "data": pause, "operation": 0, "safeTxGas": "0",
                "baseGas": "0", "gasPrice": "0",
                "gasToken": "0x0000000000000000000000000000000000000000",
                "refundReceiver": "0x0000000000000000000000000000000000000000", "nonce": "7"
            }
        });
        if version == "1.0.0" {
            let m = typed["message"].as_object_mut().unwrap();
            let v = m.remove("baseGas").unwrap();
            m.insert("dataGas".into(), v);
        }
        let by_cast = cast_offline(&[
            "wallet",
            "sign",
            "--data",
            &typed.to_string(),
            "--private-key",
            DEFAULT_KEYS[1],
        ]);
        let over_ours = cast_offline(&[
            "wallet",
            "sign",
            "--no-hash",
            "--private-key",
            DEFAULT_KEYS[1],
            h["safe_tx_hash"].as_str().unwrap(),
        ]);
        assert_eq!(
            by_cast, over_ours,
            "{version}: safeTxHash differs from cast's EIP-712 hash"
        );
        // And it is not the ≥ 1.3.0 hash.
        sb.write("m13.toml", manifest("1.3.0"));
        let r13 = sb.run(&[
            "--manifest",
            "m13.toml",
            "--json",
            "verify",
            "--allow-untrusted",
            "--safe",
            SAFE,
            "--to",
            POOL,
            "--data",
            &pause,
            "--nonce",
            "7",
        ]);
        assert_ne!(
            r13.json()["context"]["hashes"]["safe_tx_hash"],
            h["safe_tx_hash"]
        );
    }
}

#[test]
fn a_bundle_cannot_claim_the_other_domain() {
    let sb = Sandbox::new();
    sb.write("m.toml", manifest("1.1.1"));
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "compose",
        "halt",
        "--nonce",
        "3",
        "-o",
        "c.json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.path("c.json")).unwrap()).unwrap();
    assert_eq!(b["safe_tx"]["eip712_domain"], json!("no_chain_id"), "{b}");
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "verify",
        "--allow-untrusted",
        "c.json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Dropping the flag (and recomputing the ≥ 1.3.0 hashes) is refused under this manifest.
    b["safe_tx"]
        .as_object_mut()
        .unwrap()
        .remove("eip712_domain");
    crate::compose_chain::rehash(&mut b);
    sb.write("flipped.json", serde_json::to_vec(&b).unwrap());
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "verify",
        "--allow-untrusted",
        "flipped.json",
    ]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("eip712_domain"), "{}", r.stderr);
}
