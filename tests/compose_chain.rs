//! `breakglass compose` against the real thing: the incident world of `tests/support/world.rs` (a Safe
//! 1.4.1 with MultiSendCallOnly at its canonical address, OpenZeppelin 5 transparent and UUPS proxies, a
//! TimelockController) on anvil. Every hash the binary writes into a bundle is compared with what the
//! deployed contracts compute (`getTransactionHash`, `domainSeparator`, `hashOperation`,
//! `hashOperationBatch`) and with an independent implementation here (hand-rolled EIP-712 encoding,
//! Foundry's `cast`); the owners' signatures are made by `cast wallet sign` with the owners' test keys,
//! and the bundles are executed on chain, so the encoding is proven by the contracts accepting it.
//! EIP-1559 bundles are signed with alloy's local signer and compared byte for byte with `cast mktx`.
//!
//! The tampered-bundle fixtures in tests/fixtures/bundles are checked here too; regenerate them with
//! `cargo test --test tests compose_chain::regenerate_bundle_fixtures -- --ignored` after changing
//! examples/demo.toml (see tests/fixtures/bundles/README.md).

use crate::support::anvil::{
    cast_offline, checksum, Anvil, CHAIN_ID, DEFAULT_ADDRESSES, DEFAULT_KEYS,
    EIP1967_IMPLEMENTATION_SLOT, MULTISEND_CALL_ONLY_141,
};
use crate::support::bin::{repo, Run, Sandbox};
use crate::support::world::{owner_key, owners, Pins, World};
use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------ independent encodings

const DOMAIN_TYPE: &str = "EIP712Domain(uint256 chainId,address verifyingContract)";
const SAFE_TX_TYPE: &str = "SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)";

fn word_addr(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

fn word_u256(v: U256) -> [u8; 32] {
    v.to_be_bytes::<32>()
}

fn parse_u256(v: &Value) -> U256 {
    match v {
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) => U256::from_str_radix(h, 16).unwrap(),
            None => U256::from_str_radix(s, 10).unwrap(),
        },
        Value::Number(n) => U256::from(n.as_u64().unwrap()),
        other => panic!("not a number: {other}"),
    }
}

fn parse_u64(v: &Value) -> u64 {
    parse_u256(v).to::<u64>()
}

fn parse_u128(v: &Value) -> u128 {
    parse_u256(v).to::<u128>()
}

fn parse_addr(v: &Value) -> Address {
    v.as_str()
        .unwrap_or_else(|| panic!("not an address: {v}"))
        .parse()
        .unwrap()
}

fn parse_b256(v: &Value) -> B256 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a hash: {v}"))
        .parse()
        .unwrap()
}

fn parse_bytes(v: &Value) -> Bytes {
    v.as_str()
        .unwrap_or_else(|| panic!("not hex: {v}"))
        .parse()
        .unwrap()
}

fn operation_u8(v: &Value) -> u8 {
    match v.as_str() {
        Some("call") => 0,
        Some("delegatecall") => 1,
        other => panic!("operation {other:?}"),
    }
}

fn eq_addr(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `(domain separator, message hash, safeTxHash)` of a bundle's `safe_tx`, by hand (PROTOCOLS.md §5).
fn safe_hashes(chain_id: u64, safe_tx: &Value) -> (B256, B256, B256) {
    let mut d = Vec::new();
    d.extend_from_slice(keccak256(DOMAIN_TYPE).as_slice());
    d.extend_from_slice(&word_u256(U256::from(chain_id)));
    d.extend_from_slice(&word_addr(parse_addr(&safe_tx["safe"])));
    let domain = keccak256(&d);
    let mut m = Vec::new();
    m.extend_from_slice(keccak256(SAFE_TX_TYPE).as_slice());
    m.extend_from_slice(&word_addr(parse_addr(&safe_tx["to"])));
    m.extend_from_slice(&word_u256(parse_u256(&safe_tx["value"])));
    m.extend_from_slice(keccak256(parse_bytes(&safe_tx["data"])).as_slice());
    m.extend_from_slice(&word_u256(U256::from(operation_u8(&safe_tx["operation"]))));
    m.extend_from_slice(&word_u256(parse_u256(&safe_tx["safe_tx_gas"])));
    m.extend_from_slice(&word_u256(parse_u256(&safe_tx["base_gas"])));
    m.extend_from_slice(&word_u256(parse_u256(&safe_tx["gas_price"])));
    m.extend_from_slice(&word_addr(parse_addr(&safe_tx["gas_token"])));
    m.extend_from_slice(&word_addr(parse_addr(&safe_tx["refund_receiver"])));
    m.extend_from_slice(&word_u256(parse_u256(&safe_tx["nonce"])));
    let message = keccak256(&m);
    let mut s = vec![0x19u8, 0x01];
    s.extend_from_slice(domain.as_slice());
    s.extend_from_slice(message.as_slice());
    (domain, message, keccak256(&s))
}

/// Rewrites `safe_tx.hashes` to match the (edited) fields, so only the policy can refuse it.
pub(crate) fn rehash(b: &mut Value) {
    let chain_id = b["chain_id"].as_u64().unwrap();
    let (d, m, h) = safe_hashes(chain_id, &b["safe_tx"]);
    b["safe_tx"]["hashes"] = json!({
        "domain_separator": format!("{d:#x}"),
        "message_hash": format!("{m:#x}"),
        "safe_tx_hash": format!("{h:#x}"),
    });
}

/// MultiSend's packed encoding of CALLs, by hand: `0x00 ‖ to ‖ value(32) ‖ len(32) ‖ data` each.
fn multisend_packed(calls: &[(&str, &str)]) -> String {
    let mut out = Vec::new();
    for (to, data) in calls {
        let data: Bytes = data.parse().unwrap();
        let to: Address = to.parse().unwrap();
        out.push(0u8);
        out.extend_from_slice(to.as_slice());
        out.extend_from_slice(&[0u8; 32]);
        out.extend_from_slice(&word_u256(U256::from(data.len())));
        out.extend_from_slice(&data);
    }
    format!("0x{}", alloy::hex::encode(out))
}

fn calldata(sig: &str, args: &[&str]) -> String {
    crate::support::anvil::calldata(sig, args)
}

fn hex_eq(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

// ------------------------------------------------------------------ the deployment

const TIMELOCK_DELAY: u64 = 3600;
/// The guardian EOA of the EIP-1559 flow (anvil account 4).
const GUARDIAN: usize = 4;
/// Pays for `execTransaction` (anvil account 9, not an owner).
const EXECUTOR: usize = 9;

/// The incident world of `tests/support/world.rs` (a 2-of-3 Safe of simulator accounts 0 and 1 and a
/// keystore owner; transparent pool and UUPS vault; a timelock owning its own pool and vault; the
/// guardian's pool), driven here with `cast` as the owners' signer. Owners are numbered 1..=3 as in
/// [`owners`].
struct Protocol {
    w: World,
}

impl std::ops::Deref for Protocol {
    type Target = World;
    fn deref(&self) -> &World {
        &self.w
    }
}

impl Protocol {
    fn deploy() -> Protocol {
        Protocol { w: World::deploy() }
    }

    /// The world's manifest (implementations pinned) for `chain_id`.
    fn manifest(&self, chain_id: u64) -> String {
        self.w.manifest_text_extended(Pins::Right, chain_id)
    }

    /// A sandbox with this deployment's manifest as `m.toml`.
    fn sandbox(&self) -> Sandbox {
        let sb = Sandbox::new();
        sb.write("m.toml", self.manifest(CHAIN_ID));
        sb
    }

    /// `(domainSeparator(), getTransactionHash(...))` from the deployed Safe for a bundle's fields.
    fn real_safe_hashes(&self, safe_tx: &Value) -> (B256, B256) {
        let safe = safe_tx["safe"].as_str().unwrap();
        assert!(
            eq_addr(safe, &self.safe),
            "bundle Safe {safe} != {}",
            self.safe
        );
        let domain = self.anvil.call(safe, "domainSeparator()(bytes32)", &[]);
        let args = safe_tx_args(safe_tx);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut all = args[..9].to_vec();
        all.push(args[9]);
        let h = self.anvil.call(
            safe,
            "getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256)(bytes32)",
            &all,
        );
        (domain.parse().unwrap(), h.parse().unwrap())
    }

    /// Checks a Safe bundle's three hashes against the real Safe and the hand-rolled encoding.
    fn assert_safe_hashes(&self, b: &Value) {
        let s = &b["safe_tx"];
        let (d, m, h) = safe_hashes(CHAIN_ID, s);
        let (real_d, real_h) = self.real_safe_hashes(s);
        assert_eq!(b["chain_id"], json!(CHAIN_ID));
        assert_eq!(
            parse_b256(&s["hashes"]["domain_separator"]),
            real_d,
            "domain separator vs Safe.domainSeparator()"
        );
        assert_eq!(
            parse_b256(&s["hashes"]["safe_tx_hash"]),
            real_h,
            "safeTxHash vs Safe.getTransactionHash()"
        );
        assert_eq!(
            real_d, d,
            "the hand-rolled domain separator disagrees with the Safe"
        );
        assert_eq!(
            real_h, h,
            "the hand-rolled safeTxHash disagrees with the Safe"
        );
        assert_eq!(
            parse_b256(&s["hashes"]["message_hash"]),
            m,
            "message hash vs hashStruct(SafeTx)"
        );
    }

    /// Two owners sign the bundle's safeTxHash with `cast wallet sign --no-hash`; the signatures are
    /// sorted by owner and `execTransaction` is sent by a non-owner. Returns the receipt.
    fn execute(&self, b: &Value, signer_idx: [usize; 2]) -> Value {
        let sigs = owner_signatures(b, signer_idx);
        self.exec_with(b, &sigs)
    }

    fn try_execute(&self, b: &Value, signer_idx: [usize; 2]) -> Result<Value, String> {
        let sigs = owner_signatures(b, signer_idx);
        let packed = pack_sorted(&sigs);
        let args = safe_tx_args(&b["safe_tx"]);
        let mut a: Vec<&str> = args[..9].iter().map(String::as_str).collect();
        a.push(&packed);
        self.anvil.send_try(
            DEFAULT_KEYS[EXECUTOR],
            &self.safe,
            "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
            &a,
        )
    }

    fn exec_with(&self, b: &Value, sigs: &[(String, String)]) -> Value {
        let nonce_before = self.safe_nonce();
        let packed = pack_sorted(sigs);
        let args = safe_tx_args(&b["safe_tx"]);
        let mut a: Vec<&str> = args[..9].iter().map(String::as_str).collect();
        a.push(&packed);
        let receipt = self.anvil.send(
            DEFAULT_KEYS[EXECUTOR],
            &self.safe,
            "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
            &a,
        );
        // ExecutionSuccess(bytes32 txHash, uint256 payment), not ExecutionFailure: the inner call ran.
        let success_topic = keccak256("ExecutionSuccess(bytes32,uint256)");
        let found = receipt["logs"].as_array().into_iter().flatten().any(|l| {
            eq_addr(l["address"].as_str().unwrap_or(""), &self.safe)
                && l["topics"][0].as_str().map(|t| t.parse::<B256>().unwrap())
                    == Some(success_topic)
        });
        assert!(found, "no ExecutionSuccess from the Safe: {receipt}");
        assert_eq!(self.safe_nonce(), nonce_before + 1);
        receipt
    }

    fn safe_nonce(&self) -> u128 {
        self.anvil.call_u128(&self.safe, "nonce()(uint256)", &[])
    }

    fn paused(&self, addr: &str) -> bool {
        match self.anvil.call(addr, "paused()(bool)", &[]).as_str() {
            "true" => true,
            "false" => false,
            other => panic!("paused() on {addr}: {other}"),
        }
    }
}

/// The ten `execTransaction` / `getTransactionHash` arguments as cast strings: 9 shared fields, then
/// the nonce.
fn safe_tx_args(s: &Value) -> Vec<String> {
    vec![
        s["to"].as_str().unwrap().to_string(),
        parse_u256(&s["value"]).to_string(),
        s["data"].as_str().unwrap().to_string(),
        operation_u8(&s["operation"]).to_string(),
        parse_u256(&s["safe_tx_gas"]).to_string(),
        parse_u256(&s["base_gas"]).to_string(),
        parse_u256(&s["gas_price"]).to_string(),
        s["gas_token"].as_str().unwrap().to_string(),
        s["refund_receiver"].as_str().unwrap().to_string(),
        parse_u256(&s["nonce"]).to_string(),
    ]
}

/// `(owner address, 65-byte signature hex)` by `cast wallet sign --no-hash` over the safeTxHash; owners
/// numbered 1..=3.
fn owner_signatures(b: &Value, signer_idx: [usize; 2]) -> Vec<(String, String)> {
    let hash = b["safe_tx"]["hashes"]["safe_tx_hash"].as_str().unwrap();
    signer_idx
        .iter()
        .map(|&i| {
            let key = owner_key(i - 1);
            let sig = cast_offline(&["wallet", "sign", "--no-hash", "--private-key", &key, hash]);
            assert_eq!(sig.len(), 132, "65-byte signature: {sig}");
            let v = &sig[130..];
            assert!(v == "1b" || v == "1c", "v must be 27/28: {sig}");
            (owners()[i - 1].clone(), sig)
        })
        .collect()
}

/// Signatures concatenated in ascending owner-address order.
fn pack_sorted(sigs: &[(String, String)]) -> String {
    let mut s: Vec<(Address, String)> = sigs
        .iter()
        .map(|(a, sig)| (a.parse().unwrap(), sig.clone()))
        .collect();
    s.sort_by_key(|(a, _)| *a);
    let mut out = String::from("0x");
    for (_, sig) in s {
        out.push_str(sig.trim_start_matches("0x"));
    }
    out
}

// ------------------------------------------------------------------ running the binary

fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}

/// `breakglass --manifest m.toml [global…] compose ARGS -o OUT`; returns the bundle.
fn compose(sb: &Sandbox, global: &[&str], args: &[&str], out: &str) -> Value {
    let mut a = vec!["--manifest", "m.toml"];
    a.extend_from_slice(global);
    a.push("compose");
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", out]);
    let r = sb.run(&a);
    ok(&r, &format!("compose {args:?}"));
    read_json(&sb.path(out))
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks the parts of a Safe bundle every composition shares.
fn assert_safe_bundle_shape(b: &Value, playbook: &str, actions: &[&str], nonce: u64) {
    assert_eq!(b["format"], "breakglass/bundle@1");
    assert_eq!(b["playbook"], playbook);
    assert_eq!(b["actions"], json!(actions));
    let s = &b["safe_tx"];
    assert_eq!(parse_u256(&s["value"]), U256::ZERO);
    assert_eq!(parse_u256(&s["safe_tx_gas"]), U256::ZERO);
    assert_eq!(parse_u256(&s["base_gas"]), U256::ZERO);
    assert_eq!(parse_u256(&s["gas_price"]), U256::ZERO);
    assert_eq!(parse_addr(&s["gas_token"]), Address::ZERO);
    assert_eq!(parse_addr(&s["refund_receiver"]), Address::ZERO);
    assert_eq!(parse_u256(&s["nonce"]), U256::from(nonce));
    assert_eq!(b["signatures"], json!([]));
    assert!(b.get("eoa_tx").is_none_or(Value::is_null));
}

/// Adds the owners' signatures to a bundle file (kind eip712) and checks `inspect` sees them.
fn add_signatures(sb: &Sandbox, file: &str, sigs: &[(String, String)]) -> Value {
    let mut b = read_json(&sb.path(file));
    b["signatures"] = Value::Array(
        sigs.iter()
            .map(|(a, s)| json!({"signer": a, "signature": s, "kind": "eip712", "device": "cast wallet sign"}))
            .collect(),
    );
    sb.write(file, serde_json::to_vec_pretty(&b).unwrap());
    b
}

// ------------------------------------------------------------------ 1. Safe tx: batch and single

#[test]
fn compose_safe_batch_and_single_match_the_real_safe_and_execute() {
    let p = Protocol::deploy();
    let sb = p.sandbox();
    let pause = calldata("pause()", &[]);

    // Single action: a plain CALL to the pool.
    let single = compose(&sb, &[], &["halt-pool", "--nonce", "0"], "single.json");
    assert_safe_bundle_shape(&single, "halt-pool", &["pause-pool"], 0);
    let s = &single["safe_tx"];
    assert!(eq_addr(s["to"].as_str().unwrap(), &p.pool));
    assert_eq!(s["operation"], "call");
    assert!(hex_eq(s["data"].as_str().unwrap(), &pause));
    p.assert_safe_hashes(&single);

    // The batch: DELEGATECALL to the canonical MultiSendCallOnly with the packed calls.
    let halt = compose(&sb, &[], &["halt", "--nonce", "0"], "halt.json");
    assert_safe_bundle_shape(&halt, "halt", &["pause-pool", "pause-vault"], 0);
    let s = &halt["safe_tx"];
    assert!(eq_addr(s["to"].as_str().unwrap(), MULTISEND_CALL_ONLY_141));
    assert_eq!(s["operation"], "delegatecall");
    let packed = multisend_packed(&[(&p.pool, &pause), (&p.vault, &pause)]);
    let want = calldata("multiSend(bytes)", &[&packed]);
    assert!(
        hex_eq(s["data"].as_str().unwrap(), &want),
        "multiSend data:\n{}\nwant\n{want}",
        s["data"]
    );
    p.assert_safe_hashes(&halt);
    assert_ne!(
        single["safe_tx"]["hashes"]["safe_tx_hash"],
        halt["safe_tx"]["hashes"]["safe_tx_hash"]
    );

    // Composition is deterministic: the same playbook and nonce give the same bytes.
    let again = compose(&sb, &[], &["halt", "--nonce", "0"], "halt2.json");
    assert_eq!(again["safe_tx"], halt["safe_tx"]);

    // Signatures from cast: the binary recovers them and reports the bundle ready.
    let sigs = owner_signatures(&halt, [3, 1]);
    add_signatures(&sb, "halt.json", &sigs);
    let r = sb.run(&["--json", "--manifest", "m.toml", "inspect", "halt.json"]);
    ok(&r, "inspect signed halt");
    let v = r.json();
    assert_eq!(v["signing"]["signatures"], 2, "{v}");
    assert_eq!(v["signing"]["ready"], true, "{v}");

    // The single call executes on the real Safe …
    let snap = p.anvil.snapshot();
    p.execute(&single, [1, 2]);
    assert!(p.paused(&p.pool));
    assert!(!p.paused(&p.vault));
    p.anvil.revert_to(&snap);
    assert!(!p.paused(&p.pool));
    assert_eq!(p.safe_nonce(), 0);

    // … and so does the batch, through the real MultiSendCallOnly at its canonical address.
    p.exec_with(&halt, &sigs);
    assert!(p.paused(&p.pool), "pool not paused after the halt batch");
    assert!(p.paused(&p.vault), "vault not paused after the halt batch");
    assert_eq!(p.safe_nonce(), 1);
}

// ------------------------------------------------------------------ 2. --rpc-url reads the Safe nonce

#[test]
fn compose_reads_the_safe_nonce_from_the_node() {
    let p = Protocol::deploy();
    let sb = p.sandbox();
    let url = p.anvil.url.clone();

    let first = compose(&sb, &["--rpc-url", &url], &["halt"], "halt.json");
    assert_eq!(parse_u256(&first["safe_tx"]["nonce"]), U256::ZERO);
    p.assert_safe_hashes(&first);
    p.execute(&first, [1, 2]);
    assert!(p.paused(&p.pool) && p.paused(&p.vault));

    // After one executed tx the Safe's nonce is 1, and compose reads it.
    let second = compose(&sb, &["--rpc-url", &url], &["unhalt"], "unhalt.json");
    assert_safe_bundle_shape(&second, "unhalt", &["unpause-pool", "unpause-vault"], 1);
    p.assert_safe_hashes(&second);
    // An explicit --nonce wins over the node.
    let explicit = compose(
        &sb,
        &["--rpc-url", &url],
        &["unhalt", "--nonce", "7"],
        "n7.json",
    );
    assert_eq!(parse_u256(&explicit["safe_tx"]["nonce"]), U256::from(7));
    // The nonce read from the node is the right one: the Safe executes the bundle.
    p.execute(&second, [2, 3]);
    assert!(!p.paused(&p.pool) && !p.paused(&p.vault));
    assert_eq!(p.safe_nonce(), 2);

    // Without --nonce and without a node there is no nonce: a usage error, nothing written.
    let r = sb.run(&["--manifest", "m.toml", "compose", "halt", "-o", "none.json"]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("nonce"), "{}", r.stderr);
    assert!(!sb.path("none.json").exists());

    // A node on another chain than the manifest's is refused.
    sb.write("chain1.toml", p.manifest(1));
    let r = sb.run(&[
        "--manifest",
        "chain1.toml",
        "--rpc-url",
        &url,
        "compose",
        "halt",
        "-o",
        "c1.json",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("31337") && r.stderr.contains("chain"),
        "{}",
        r.stderr
    );
    assert!(!sb.path("c1.json").exists());
}

// ------------------------------------------------------------------ 3. upgrades

fn implementation_of(p: &Protocol, proxy: &str) -> String {
    crate::support::anvil::word_to_address(&p.anvil.storage(proxy, EIP1967_IMPLEMENTATION_SLOT))
}

#[test]
fn compose_patch_upgrades_transparent_and_uups_proxies() {
    let p = Protocol::deploy();
    let sb = p.sandbox();
    let patch = compose(&sb, &[], &["patch", "--nonce", "0"], "patch.json");
    assert_safe_bundle_shape(&patch, "patch", &["upgrade-pool", "upgrade-vault"], 0);
    let s = &patch["safe_tx"];
    assert!(eq_addr(s["to"].as_str().unwrap(), MULTISEND_CALL_ONLY_141));
    assert_eq!(s["operation"], "delegatecall");
    // Transparent (OZ 5): ProxyAdmin.upgradeAndCall(proxy, impl, ""); UUPS: proxy.upgradeToAndCall(impl, "").
    let up_pool = calldata(
        "upgradeAndCall(address,address,bytes)",
        &[&p.pool, &p.pool_v2, "0x"],
    );
    let up_vault = calldata("upgradeToAndCall(address,bytes)", &[&p.vault_v2, "0x"]);
    let want = calldata(
        "multiSend(bytes)",
        &[&multisend_packed(&[
            (&p.pool_admin, &up_pool),
            (&p.vault, &up_vault),
        ])],
    );
    assert!(
        hex_eq(s["data"].as_str().unwrap(), &want),
        "patch data {}\nwant {want}",
        s["data"]
    );
    p.assert_safe_hashes(&patch);

    assert_eq!(p.anvil.call(&p.pool, "version()(string)", &[]), "\"1\"");
    assert_eq!(p.anvil.call(&p.vault, "version()(string)", &[]), "\"1\"");
    p.execute(&patch, [2, 3]);
    assert_eq!(implementation_of(&p, &p.pool), checksum(&p.pool_v2));
    assert_eq!(implementation_of(&p, &p.vault), checksum(&p.vault_v2));
    assert_eq!(p.anvil.call(&p.pool, "version()(string)", &[]), "\"2\"");
    assert_eq!(p.anvil.call(&p.vault, "version()(string)", &[]), "\"2\"");
    // The proxies still belong to the Safe.
    assert!(eq_addr(
        &p.anvil.call(&p.pool, "owner()(address)", &[]),
        &p.safe
    ));
    assert!(eq_addr(
        &p.anvil.call(&p.vault, "owner()(address)", &[]),
        &p.safe
    ));

    // An implementation outside the manifest's constraint is refused at composition.
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "compose",
        "patch",
        "--nonce",
        "1",
        "--arg",
        &format!("upgrade-pool.implementation={}", p.vault_v2),
        "-o",
        "bad.json",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!sb.path("bad.json").exists());
}

// ------------------------------------------------------------------ 4. guardian EOA, EIP-1559

#[test]
fn compose_eoa_matches_cast_mktx_and_broadcasts() {
    let p = Protocol::deploy();
    let sb = p.sandbox();
    // The guardian's pool is owned by simulator account 0.
    let guardian = owners()[0].clone();
    let guardian = guardian.as_str();
    let key = owner_key(0);
    let key = key.as_str();
    p.anvil.set_balance(guardian, 100_000_000_000_000_000_000);
    let nonce = p.anvil.cast(&["nonce", guardian]);
    let (gas, max_fee, tip) = ("120000", "3000000000", "1500000000");

    // Filled from the node (before anything is sent: gas estimation needs an unpaused pool).
    let filled = compose(
        &sb,
        &["--rpc-url", &p.anvil.url],
        &["guardian-halt", "--from", guardian],
        "filled.json",
    );
    let fe = &filled["eoa_tx"];
    assert_eq!(parse_u64(&fe["nonce"]).to_string(), nonce);
    assert!(parse_u64(&fe["gas_limit"]) > 21_000);
    assert!(parse_u128(&fe["max_fee_per_gas"]) >= parse_u128(&fe["max_priority_fee_per_gas"]));

    let b = compose(
        &sb,
        &[],
        &[
            "guardian-halt",
            "--from",
            guardian,
            "--nonce",
            &nonce,
            "--gas-limit",
            gas,
            "--max-fee",
            max_fee,
            "--priority-fee",
            tip,
        ],
        "eoa.json",
    );
    assert_eq!(b["format"], "breakglass/bundle@1");
    assert!(b.get("safe_tx").is_none_or(Value::is_null));
    let e = &b["eoa_tx"];
    assert!(eq_addr(e["from"].as_str().unwrap(), guardian));
    assert!(eq_addr(e["to"].as_str().unwrap(), &p.g_pool));
    assert!(hex_eq(
        e["data"].as_str().unwrap(),
        &calldata("pause()", &[])
    ));
    assert_eq!(parse_u256(&e["value"]), U256::ZERO);
    assert_eq!(parse_u64(&e["nonce"]).to_string(), nonce);
    assert_eq!(parse_u64(&e["gas_limit"]).to_string(), gas);
    assert_eq!(parse_u128(&e["max_fee_per_gas"]).to_string(), max_fee);
    assert_eq!(parse_u128(&e["max_priority_fee_per_gas"]).to_string(), tip);

    // alloy signs the bundle's unsigned tx; cast builds and signs the same tx from its own flags.
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: parse_u64(&e["nonce"]),
        gas_limit: parse_u64(&e["gas_limit"]),
        max_fee_per_gas: parse_u128(&e["max_fee_per_gas"]),
        max_priority_fee_per_gas: parse_u128(&e["max_priority_fee_per_gas"]),
        to: TxKind::Call(parse_addr(&e["to"])),
        value: parse_u256(&e["value"]),
        access_list: Default::default(),
        input: parse_bytes(&e["data"]),
    };
    let signer: PrivateKeySigner = key.parse().unwrap();
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    let ours = format!(
        "0x{}",
        alloy::hex::encode(tx.into_signed(sig).encoded_2718())
    );
    let cast_raw = cast_offline(&[
        "mktx",
        "--private-key",
        key,
        "--nonce",
        &nonce,
        "--gas-limit",
        gas,
        "--gas-price",
        max_fee,
        "--priority-gas-price",
        tip,
        "--chain",
        "31337",
        &p.g_pool,
        "pause()",
    ]);
    assert_eq!(ours, cast_raw, "alloy-signed bundle tx != cast mktx");

    // The bundle's signing hash is what cast signed: cast's signature recovers to the guardian with it.
    let raw: Bytes = cast_raw.parse().unwrap();
    let env = TxEnvelope::decode_2718(&mut raw.as_ref()).unwrap();
    let signed = env.as_eip1559().expect("cast made an EIP-1559 tx");
    let signing_hash = parse_b256(&e["signing_hash"]);
    let rec = signed
        .signature()
        .recover_address_from_prehash(&signing_hash)
        .unwrap();
    assert_eq!(
        rec,
        signer.address(),
        "bundle signing_hash is not what cast signed"
    );
    // And it is keccak256(0x02 ‖ rlp(unsigned)) of the tx cast decoded.
    let mut payload = Vec::new();
    signed.tx().encode_for_signing(&mut payload);
    assert_eq!(payload[0], 0x02);
    assert_eq!(keccak256(&payload), signing_hash);
    assert_eq!(*signed.tx(), tx_from(e));

    // The binary accepts the bundle with the signature added, and the tx works on chain.
    let mut with_sig = b.clone();
    with_sig["signatures"] = json!([{
        "signer": guardian,
        "signature": format!("0x{}", alloy::hex::encode(sig.as_bytes())),
        "kind": "eip712",
    }]);
    sb.write(
        "eoa-signed.json",
        serde_json::to_vec_pretty(&with_sig).unwrap(),
    );
    ok(
        &sb.run(&["--manifest", "m.toml", "inspect", "eoa-signed.json"]),
        "inspect eoa-signed",
    );
    assert!(!p.paused(&p.g_pool));
    p.anvil.cast(&["publish", &cast_raw]);
    assert!(p.paused(&p.g_pool), "guardian pause did not take effect");
    assert_eq!(
        p.anvil.cast(&["nonce", guardian]),
        (parse_u64(&e["nonce"]) + 1).to_string()
    );

    // Missing fee flags without a node: a usage error naming what is needed.
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "compose",
        "guardian-halt",
        "--from",
        guardian,
        "--nonce",
        "0",
        "-o",
        "nofee.json",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("--max-fee") || r.stderr.contains("--gas-limit"),
        "{}",
        r.stderr
    );
    assert!(!sb.path("nofee.json").exists());
}

/// An account nonce beyond u64 is a usage error, with or without a node (never a panic). Runs the
/// demo manifest against a bare anvil: its guardian pool address has no code, so gas estimation works
/// and the node-filling path gets to parse the nonce.
#[test]
fn compose_eoa_nonce_beyond_u64_is_a_usage_error() {
    let anvil = Anvil::start();
    let sb = Sandbox::new();
    let demo = demo_manifest();
    let demo = demo.to_str().unwrap();
    let guardian = DEFAULT_ADDRESSES[GUARDIAN];
    let huge = "99999999999999999999999";
    let offline = [
        "--manifest",
        demo,
        "compose",
        "guardian-halt",
        "--from",
        guardian,
        "--nonce",
        huge,
        "--gas-limit",
        "100000",
        "--max-fee",
        "2000000000",
        "--priority-fee",
        "1000000000",
        "-o",
        "big.json",
    ];
    let online = [
        "--manifest",
        demo,
        "--rpc-url",
        &anvil.url,
        "compose",
        "guardian-halt",
        "--from",
        guardian,
        "--nonce",
        huge,
        "-o",
        "big.json",
    ];
    for a in [&offline[..], &online[..]] {
        let r = sb.run(a);
        assert_eq!(r.code, 2, "{a:?}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("--nonce"), "{}", r.stderr);
        assert!(!sb.path("big.json").exists());
    }
}

fn tx_from(e: &Value) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: parse_u64(&e["nonce"]),
        gas_limit: parse_u64(&e["gas_limit"]),
        max_fee_per_gas: parse_u128(&e["max_fee_per_gas"]),
        max_priority_fee_per_gas: parse_u128(&e["max_priority_fee_per_gas"]),
        to: TxKind::Call(parse_addr(&e["to"])),
        value: parse_u256(&e["value"]),
        access_list: Default::default(),
        input: parse_bytes(&e["data"]),
    }
}

// ------------------------------------------------------------------ 5. timelock

fn assert_timelock_schedule(p: &Protocol, b: &Value, calls: &[(&str, &str)]) -> B256 {
    let t = &b["timelock"];
    assert_eq!(t["step"], "schedule");
    assert!(eq_addr(t["address"].as_str().unwrap(), &p.timelock));
    assert_eq!(parse_u64(&t["delay"]), TIMELOCK_DELAY);
    let tcalls = t["calls"].as_array().unwrap();
    assert_eq!(tcalls.len(), calls.len());
    for (c, (to, data)) in tcalls.iter().zip(calls) {
        assert!(eq_addr(c["target"].as_str().unwrap(), to));
        assert_eq!(parse_u256(&c["value"]), U256::ZERO);
        assert!(hex_eq(c["data"].as_str().unwrap(), data));
    }
    let pred = t["predecessor"].as_str().unwrap();
    let salt = t["salt"].as_str().unwrap();
    let targets = format!(
        "[{}]",
        calls.iter().map(|c| c.0).collect::<Vec<_>>().join(",")
    );
    let values = format!("[{}]", vec!["0"; calls.len()].join(","));
    let payloads = format!(
        "[{}]",
        calls.iter().map(|c| c.1).collect::<Vec<_>>().join(",")
    );
    let delay = TIMELOCK_DELAY.to_string();
    let (real_id, schedule) = if calls.len() == 1 {
        (
            p.anvil.call(
                &p.timelock,
                "hashOperation(address,uint256,bytes,bytes32,bytes32)(bytes32)",
                &[calls[0].0, "0", calls[0].1, pred, salt],
            ),
            calldata(
                "schedule(address,uint256,bytes,bytes32,bytes32,uint256)",
                &[calls[0].0, "0", calls[0].1, pred, salt, &delay],
            ),
        )
    } else {
        (
            p.anvil.call(
                &p.timelock,
                "hashOperationBatch(address[],uint256[],bytes[],bytes32,bytes32)(bytes32)",
                &[&targets, &values, &payloads, pred, salt],
            ),
            calldata(
                "scheduleBatch(address[],uint256[],bytes[],bytes32,bytes32,uint256)",
                &[&targets, &values, &payloads, pred, salt, &delay],
            ),
        )
    };
    let id = parse_b256(&t["operation_id"]);
    assert_eq!(
        id,
        real_id.parse::<B256>().unwrap(),
        "operation_id vs the real TimelockController"
    );
    let s = &b["safe_tx"];
    assert!(eq_addr(s["to"].as_str().unwrap(), &p.timelock));
    assert_eq!(s["operation"], "call");
    assert!(
        hex_eq(s["data"].as_str().unwrap(), &schedule),
        "schedule data {}\nwant {schedule}",
        s["data"]
    );
    p.assert_safe_hashes(b);
    id
}

fn timelock_bool(p: &Protocol, f: &str, id: B256) -> bool {
    p.anvil.call(
        &p.timelock,
        &format!("{f}(bytes32)(bool)"),
        &[&format!("{id:#x}")],
    ) == "true"
}

#[test]
fn compose_timelock_schedule_and_execute() {
    let p = Protocol::deploy();
    let sb = p.sandbox();
    let unpause = calldata("unpause()", &[]);
    // The timelock owns tlpool/tlvault: pause them as the timelock would have.
    p.anvil.send_as(&p.timelock, &p.tl_pool, "pause()", &[]);
    p.anvil.send_as(&p.timelock, &p.tl_vault, "pause()", &[]);

    // One call: schedule → hashOperation.
    let sched = compose(&sb, &[], &["resume", "--nonce", "0"], "resume.json");
    assert_safe_bundle_shape(&sched, "resume", &["unpause-tlpool"], 0);
    let id = assert_timelock_schedule(&p, &sched, &[(&p.tl_pool, &unpause)]);
    p.execute(&sched, [1, 3]);
    assert!(timelock_bool(&p, "isOperationPending", id));
    assert!(!timelock_bool(&p, "isOperationReady", id));

    let exec = compose(
        &sb,
        &[],
        &["--execute-scheduled", "resume.json", "--nonce", "1"],
        "resume-exec.json",
    );
    assert_eq!(exec["timelock"]["step"], "execute");
    assert_eq!(
        exec["timelock"]["operation_id"],
        sched["timelock"]["operation_id"]
    );
    let t = &sched["timelock"];
    let want = calldata(
        "execute(address,uint256,bytes,bytes32,bytes32)",
        &[
            &p.tl_pool,
            "0",
            &unpause,
            t["predecessor"].as_str().unwrap(),
            t["salt"].as_str().unwrap(),
        ],
    );
    assert!(hex_eq(exec["safe_tx"]["data"].as_str().unwrap(), &want));
    assert!(eq_addr(
        exec["safe_tx"]["to"].as_str().unwrap(),
        &p.timelock
    ));
    assert_eq!(exec["safe_tx"]["operation"], "call");
    assert_eq!(parse_u256(&exec["safe_tx"]["nonce"]), U256::from(1));
    p.assert_safe_hashes(&exec);
    ok(
        &sb.run(&["--manifest", "m.toml", "inspect", "resume-exec.json"]),
        "inspect exec",
    );

    // Too early: the timelock refuses, the Safe tx reverts.
    assert!(
        p.try_execute(&exec, [1, 2]).is_err(),
        "execute before the delay succeeded"
    );
    assert!(p.paused(&p.tl_pool));
    p.anvil.increase_time(TIMELOCK_DELAY + 1);
    assert!(timelock_bool(&p, "isOperationReady", id));
    p.execute(&exec, [1, 2]);
    assert!(
        !p.paused(&p.tl_pool),
        "unpause through the timelock did not take effect"
    );
    assert!(timelock_bool(&p, "isOperationDone", id));

    // Two calls: scheduleBatch → hashOperationBatch; the execute's nonce read from the node.
    p.anvil.send_as(&p.timelock, &p.tl_pool, "pause()", &[]);
    let sched = compose(
        &sb,
        &["--rpc-url", &p.anvil.url],
        &["resume-all"],
        "resume-all.json",
    );
    assert_safe_bundle_shape(
        &sched,
        "resume-all",
        &["unpause-tlpool", "unpause-tlvault"],
        2,
    );
    let id = assert_timelock_schedule(
        &p,
        &sched,
        &[(&p.tl_pool, &unpause), (&p.tl_vault, &unpause)],
    );
    p.execute(&sched, [2, 3]);
    assert!(timelock_bool(&p, "isOperationPending", id));
    p.anvil.increase_time(TIMELOCK_DELAY + 1);
    let exec = compose(
        &sb,
        &["--rpc-url", &p.anvil.url],
        &["--execute-scheduled", "resume-all.json"],
        "resume-all-exec.json",
    );
    let t = &sched["timelock"];
    let want = calldata(
        "executeBatch(address[],uint256[],bytes[],bytes32,bytes32)",
        &[
            &format!("[{},{}]", p.tl_pool, p.tl_vault),
            "[0,0]",
            &format!("[{unpause},{unpause}]"),
            t["predecessor"].as_str().unwrap(),
            t["salt"].as_str().unwrap(),
        ],
    );
    assert!(hex_eq(exec["safe_tx"]["data"].as_str().unwrap(), &want));
    assert_eq!(parse_u256(&exec["safe_tx"]["nonce"]), U256::from(3));
    p.assert_safe_hashes(&exec);
    p.execute(&exec, [3, 1]);
    assert!(!p.paused(&p.tl_pool) && !p.paused(&p.tl_vault));
    assert!(timelock_bool(&p, "isOperationDone", id));

    // --execute-scheduled takes only a schedule bundle.
    let r = sb.run(&[
        "--manifest",
        "m.toml",
        "compose",
        "--execute-scheduled",
        "resume-all-exec.json",
        "--nonce",
        "4",
        "-o",
        "x.json",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!sb.path("x.json").exists());
}

// ------------------------------------------------------------------ 6. tampered bundles

/// What `--json` must say about a refused fixture: the error kind, or (for a consistent bundle the
/// policy refuses) the code of a finding in the report.
#[derive(Clone, Copy)]
enum Json {
    Kind(&'static str),
    /// One of these error kinds (where either names the problem well).
    Kinds(&'static [&'static str]),
    Finding(&'static str),
}
use Json::{Finding, Kind, Kinds};

/// `(file, what --json says, substrings the text output must contain)`; every file is refused (exit 3)
/// by `verify` and `inspect` with `examples/demo.toml`. See tests/fixtures/bundles/README.md.
const FIXTURES: &[(&str, Json, &[&str])] = &[
    // A stored hash edited.
    ("fail_safe_tx_hash_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.safe_tx_hash` does not match"]),
    ("fail_message_hash_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.message_hash` does not match"]),
    ("fail_domain_separator_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.domain_separator` does not match"]),
    ("fail_timelock_operation_id.json", Kind("bundle_tampered"), &["`timelock.operation_id` does not match"]),
    ("fail_eoa_signing_hash.json", Kind("bundle_tampered"), &["`eoa_tx.signing_hash` does not match"]),
    // The timelock section disagrees with the Safe tx's schedule calldata (ids and hashes consistent).
    ("fail_timelock_delay_changed.json", Kinds(&["bundle_tampered", "bundle_inconsistent"]), &["timelock"]),
    ("fail_timelock_salt_rehashed.json", Kinds(&["bundle_tampered", "bundle_inconsistent"]), &["timelock"]),
    ("fail_timelock_step_flipped.json", Kinds(&["bundle_tampered", "bundle_inconsistent"]), &["timelock"]),
    // A signed field edited, the hashes left: the first hash that covers it is named.
    ("fail_data_byte_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.message_hash` does not match"]),
    ("fail_to_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.message_hash` does not match"]),
    ("fail_nonce_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.message_hash` does not match"]),
    ("fail_chain_id_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.domain_separator` does not match"]),
    ("fail_safe_changed.json", Kind("bundle_tampered"), &["`safe_tx.hashes.domain_separator` does not match"]),
    // Edited and re-hashed: consistent, so the policy refuses.
    ("fail_operation_flipped_rehashed.json", Finding("delegatecall"), &["CRITICAL", "DELEGATECALL to 0xb001000000000000000000000000000000000001", "Bybit"]),
    ("fail_operation_call_rehashed.json", Finding("not_in_manifest"), &["multiSend(bytes) on 0x9641d764fc13c8B624c04430C7356C1C7C8102e2 is not an action in the manifest"]),
    ("fail_multisend_target_rehashed.json", Finding("not_in_manifest"), &["0xBAdBadbADBaDBADBadbADbaDBadBaDBADBadBAD0", "is not an action in the manifest"]),
    ("fail_refund_rehashed.json", Finding("refund"), &["CRITICAL", "refund fields are set", "gasPrice 1"]),
    ("fail_chain_id_rehashed.json", Finding("wrong_chain"), &["CRITICAL", "chain id 1 is not the manifest's chain 31337"]),
    ("fail_safe_rehashed.json", Finding("wrong_safe"), &["CRITICAL", "Safe 0x5Afe00000000000000000000000000000000B0b0 is not the manifest's Safe"]),
    // Format and shape.
    ("fail_format_v2.json", Kind("bundle_format"), &["\"breakglass/bundle@2\" bundle", "reads only \"breakglass/bundle@1\""]),
    ("fail_format_missing.json", Kind("bundle_malformed"), &["no \"format\" field"]),
    ("fail_not_json.json", Kind("bundle_malformed"), &["not a breakglass bundle", "line 1 column 1"]),
    ("fail_truncated.json", Kind("bundle_malformed"), &["not a breakglass bundle", "EOF"]),
    ("fail_both_safe_and_eoa.json", Kind("bundle_inconsistent"), &["both a Safe tx and an EOA tx"]),
    ("fail_no_transaction.json", Kind("bundle_inconsistent"), &["holds no transaction"]),
    ("fail_unknown_field.json", Kind("bundle_malformed"), &["unknown field `approved_by_commander`"]),
    ("fail_unknown_field_nested.json", Kind("bundle_malformed"), &["unknown field `ledger_display`"]),
    // Signatures and manifest.
    ("fail_signature_non_owner.json", Kind("bad_signature"), &["signature 0 (0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266)", "not an owner"]),
    ("fail_signature_wrong_signer.json", Kind("bad_signature"), &["signature 0 (0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D)", "recovers to 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]),
    ("fail_signature_short.json", Kind("bad_signature"), &["signature 0", "65 bytes"]),
    ("fail_manifest_hash.json", Kind("wrong_manifest"), &["composed against manifest", "0x1111111111111111111111111111111111111111111111111111111111111111", "0x78bfb292"]),
];

fn fixtures_dir() -> PathBuf {
    repo().join("tests/fixtures/bundles")
}

fn demo_manifest() -> PathBuf {
    repo().join("examples/demo.toml")
}

#[test]
fn tampered_bundles_are_refused_naming_the_field() {
    let dir = fixtures_dir();
    let demo = demo_manifest();
    let demo = demo.to_str().unwrap();
    let sb = Sandbox::new();
    // The untouched bundles the fixtures were made from still verify (else: regenerate, see README).
    for base in [
        "base_halt.json",
        "base_resume.json",
        "base_guardian_halt.json",
    ] {
        let f = dir.join(base);
        let r = sb.run(&[
            "--manifest",
            demo,
            "verify",
            "--allow-untrusted",
            f.to_str().unwrap(),
        ]);
        assert_eq!(
            r.code, 0,
            "{base} no longer verifies against examples/demo.toml; regenerate the fixtures with \
             `cargo test --test tests compose_chain::regenerate_bundle_fixtures -- --ignored`:\n{}\n{}",
            r.stdout, r.stderr
        );
    }
    let mut listed: Vec<&str> = FIXTURES.iter().map(|f| f.0).collect();
    listed.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("fail_"))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, listed,
        "every fail_* fixture has an expectation here"
    );
    assert!(listed.len() >= 10);

    let mut failures = Vec::new();
    for (file, want_json, needles) in FIXTURES {
        let f = dir.join(file);
        let f = f.to_str().unwrap();
        for cmd in ["verify", "inspect"] {
            let r = sb.run(&["--manifest", demo, cmd, f]);
            let all = format!("{}{}", r.stdout, r.stderr);
            if r.code != 3 {
                failures.push(format!("{cmd} {file}: exit {} (want 3)\n{all}", r.code));
                continue;
            }
            for n in *needles {
                if !all.contains(n) {
                    failures.push(format!("{cmd} {file}: output lacks {n:?}:\n{all}"));
                }
            }
            let rj = sb.run(&["--json", "--manifest", demo, cmd, f]);
            let v: Value = match serde_json::from_str(&rj.stdout) {
                Ok(v) => v,
                Err(_) => {
                    failures.push(format!(
                        "{cmd} --json {file}: stdout is not JSON:\n{}",
                        rj.stdout
                    ));
                    continue;
                }
            };
            if rj.code != 3 {
                failures.push(format!("{cmd} --json {file}: exit {} (want 3)", rj.code));
            }
            match *want_json {
                Kinds(kinds) => {
                    if !kinds.iter().any(|k| v["error"]["kind"] == *k) || v["exit_code"] != 3 {
                        failures.push(format!(
                            "{cmd} --json {file}: want error kind in {kinds:?}, exit_code 3:\n{v}"
                        ));
                    }
                }
                Kind(kind) => {
                    if v["error"]["kind"] != kind || v["exit_code"] != 3 {
                        failures.push(format!(
                            "{cmd} --json {file}: want error kind {kind:?}, exit_code 3:\n{v}"
                        ));
                    }
                }
                Finding(code) => {
                    let found = v["findings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f["code"] == code);
                    if v["allowed"] != false || !found {
                        failures.push(format!(
                            "{cmd} --json {file}: want allowed false with a {code:?} finding:\n{v}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Writes tests/fixtures/bundles from fresh compositions of examples/demo.toml. Run with
/// `cargo test --test tests compose_chain::regenerate_bundle_fixtures -- --ignored`.
#[test]
#[ignore = "regenerates tests/fixtures/bundles"]
fn regenerate_bundle_fixtures() {
    let dir = fixtures_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let sb = Sandbox::new();
    let demo = demo_manifest();
    let demo = demo.to_str().unwrap();
    let compose_demo = |args: &[&str], out: &str| -> Value {
        let mut a = vec!["--manifest", demo, "compose"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", out]);
        let r = sb.run(&a);
        ok(&r, &format!("compose {args:?}"));
        let mut v = read_json(&sb.path(out));
        // A fixed timestamp keeps regenerated fixtures diff-free.
        v["created_at"] = json!(1_700_000_000u64);
        v
    };
    let base = compose_demo(&["halt", "--nonce", "0"], "halt.json");
    let resume = compose_demo(&["resume", "--nonce", "0"], "resume.json");
    let guardian = compose_demo(
        &[
            "guardian-halt",
            "--from",
            "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "--nonce",
            "0",
            "--gas-limit",
            "100000",
            "--max-fee",
            "2000000000",
            "--priority-fee",
            "1000000000",
        ],
        "guardian.json",
    );
    // The base really is consistent by the hand-rolled encoding too.
    let (d, m, h) = safe_hashes(CHAIN_ID, &base["safe_tx"]);
    assert_eq!(
        parse_b256(&base["safe_tx"]["hashes"]["domain_separator"]),
        d
    );
    assert_eq!(parse_b256(&base["safe_tx"]["hashes"]["message_hash"]), m);
    assert_eq!(parse_b256(&base["safe_tx"]["hashes"]["safe_tx_hash"]), h);

    let write = |name: &str, v: &Value| {
        let mut body = serde_json::to_vec_pretty(v).unwrap();
        body.push(b'\n');
        std::fs::write(dir.join(name), body).unwrap();
    };
    let write_raw = |name: &str, s: &str| std::fs::write(dir.join(name), s).unwrap();
    let flip_last_nibble = |s: &str| -> String {
        let mut c: Vec<char> = s.chars().collect();
        let last = c.len() - 1;
        c[last] = if c[last] == '0' { '1' } else { '0' };
        c.into_iter().collect()
    };
    let edit = |f: &dyn Fn(&mut Value)| -> Value {
        let mut v = base.clone();
        f(&mut v);
        v
    };

    write("base_halt.json", &base);
    write("base_resume.json", &resume);
    write("base_guardian_halt.json", &guardian);

    // Stored hashes edited.
    write(
        "fail_safe_tx_hash_changed.json",
        &edit(&|v| {
            let h = v["safe_tx"]["hashes"]["safe_tx_hash"]
                .as_str()
                .unwrap()
                .to_string();
            v["safe_tx"]["hashes"]["safe_tx_hash"] = json!(flip_last_nibble(&h));
        }),
    );
    write(
        "fail_message_hash_changed.json",
        &edit(&|v| {
            let h = v["safe_tx"]["hashes"]["message_hash"]
                .as_str()
                .unwrap()
                .to_string();
            v["safe_tx"]["hashes"]["message_hash"] = json!(flip_last_nibble(&h));
        }),
    );
    write(
        "fail_domain_separator_changed.json",
        &edit(&|v| {
            let h = v["safe_tx"]["hashes"]["domain_separator"]
                .as_str()
                .unwrap()
                .to_string();
            v["safe_tx"]["hashes"]["domain_separator"] = json!(flip_last_nibble(&h));
        }),
    );
    // Signed fields edited, hashes left as they were.
    write(
        "fail_data_byte_changed.json",
        &edit(&|v| {
            // One byte of the vault's `pause()` selector: 8456cb59 becomes 8556cb59.
            let d = v["safe_tx"]["data"].as_str().unwrap().to_string();
            let i = d.rfind("8456cb59").unwrap();
            let mut d2 = d.clone();
            d2.replace_range(i..i + 2, "85");
            v["safe_tx"]["data"] = json!(d2);
        }),
    );
    write(
        "fail_to_changed.json",
        &edit(&|v| {
            v["safe_tx"]["to"] = json!("0x40a2accbd92bca938b02010e17a5b8929b49130d");
        }),
    );
    write(
        "fail_nonce_changed.json",
        &edit(&|v| v["safe_tx"]["nonce"] = json!("0x1")),
    );
    write(
        "fail_chain_id_changed.json",
        &edit(&|v| v["chain_id"] = json!(1)),
    );
    write(
        "fail_safe_changed.json",
        &edit(&|v| {
            v["safe_tx"]["safe"] = json!("0x5afe00000000000000000000000000000000b0b0");
        }),
    );
    // Edited and re-hashed: consistent bundles the policy must refuse.
    write(
        "fail_operation_flipped_rehashed.json",
        &edit(&|v| {
            // Bybit: a call the manifest allows (pause the pool), its operation switched to DELEGATECALL.
            v["safe_tx"]["to"] = json!("0xb001000000000000000000000000000000000001");
            v["safe_tx"]["data"] = json!("0x8456cb59");
            v["safe_tx"]["operation"] = json!("delegatecall");
            v["actions"] = json!(["pause-pool"]);
            rehash(v);
        }),
    );
    write(
        "fail_operation_call_rehashed.json",
        &edit(&|v| {
            v["safe_tx"]["operation"] = json!("call");
            rehash(v);
        }),
    );
    write(
        "fail_multisend_target_rehashed.json",
        &edit(&|v| {
            let d = v["safe_tx"]["data"].as_str().unwrap().to_string();
            let d2 = d.replace(
                "1a1b000000000000000000000000000000000002",
                "badbadbadbadbadbadbadbadbadbadbadbadbad0",
            );
            assert_ne!(d, d2);
            v["safe_tx"]["data"] = json!(d2);
            rehash(v);
        }),
    );
    write(
        "fail_refund_rehashed.json",
        &edit(&|v| {
            v["safe_tx"]["gas_price"] = json!("0x1");
            v["safe_tx"]["base_gas"] = json!("0xf4240");
            v["safe_tx"]["refund_receiver"] = json!("0xbadbadbadbadbadbadbadbadbadbadbadbadbad0");
            rehash(v);
        }),
    );
    write(
        "fail_safe_rehashed.json",
        &edit(&|v| {
            v["safe_tx"]["safe"] = json!("0x5afe00000000000000000000000000000000b0b0");
            rehash(v);
        }),
    );
    write(
        "fail_chain_id_rehashed.json",
        &edit(&|v| {
            v["chain_id"] = json!(1);
            rehash(v);
        }),
    );
    // Format and shape.
    write(
        "fail_format_v2.json",
        &edit(&|v| v["format"] = json!("breakglass/bundle@2")),
    );
    write(
        "fail_format_missing.json",
        &edit(&|v| {
            v.as_object_mut().unwrap().remove("format");
        }),
    );
    write_raw(
        "fail_not_json.json",
        "breakglass bundle: pause pool and vault, nonce 0, sign quickly!\n",
    );
    let full = serde_json::to_string_pretty(&base).unwrap();
    write_raw("fail_truncated.json", &full[..full.len() / 2]);
    write(
        "fail_both_safe_and_eoa.json",
        &edit(&|v| v["eoa_tx"] = guardian["eoa_tx"].clone()),
    );
    write(
        "fail_no_transaction.json",
        &edit(&|v| {
            v.as_object_mut().unwrap().remove("safe_tx");
        }),
    );
    // Signatures.
    let h: B256 = parse_b256(&base["safe_tx"]["hashes"]["safe_tx_hash"]);
    let stranger: PrivateKeySigner = DEFAULT_KEYS[0].parse().unwrap();
    let sig = format!(
        "0x{}",
        alloy::hex::encode(stranger.sign_hash_sync(&h).unwrap().as_bytes())
    );
    write(
        "fail_signature_non_owner.json",
        &edit(&|v| {
            v["signatures"] =
                json!([{"signer": DEFAULT_ADDRESSES[0], "signature": sig, "kind": "eip712"}]);
        }),
    );
    write(
        "fail_signature_wrong_signer.json",
        &edit(&|v| {
            v["signatures"] = json!([{"signer": "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D", "signature": sig, "kind": "eip712"}]);
        }),
    );
    write(
        "fail_signature_short.json",
        &edit(&|v| {
            v["signatures"] = json!([{"signer": DEFAULT_ADDRESSES[0], "signature": &sig[..sig.len() - 2], "kind": "eip712"}]);
        }),
    );
    write(
        "fail_manifest_hash.json",
        &edit(&|v| {
            v["manifest"]["hash"] = json!(format!("0x{}", "11".repeat(32)));
        }),
    );
    write(
        "fail_unknown_field.json",
        &edit(&|v| v["approved_by_commander"] = json!(true)),
    );
    write(
        "fail_unknown_field_nested.json",
        &edit(&|v| {
            v["safe_tx"]["hashes"]["ledger_display"] = json!("0xd08a87f4…c25b7de3");
        }),
    );
    let mut t = resume.clone();
    let id = t["timelock"]["operation_id"].as_str().unwrap().to_string();
    t["timelock"]["operation_id"] = json!(flip_last_nibble(&id));
    write("fail_timelock_operation_id.json", &t);
    // The timelock section disagreeing with the Safe tx that schedules it: the delay (not part of the
    // operation id), the salt with the operation id recomputed by cast, and the step.
    let mut t = resume.clone();
    t["timelock"]["delay"] = json!(1);
    write("fail_timelock_delay_changed.json", &t);
    let mut t = resume.clone();
    let salt = format!("0x{}", "22".repeat(32));
    let c = &resume["timelock"]["calls"][0];
    let encoded = cast_offline(&[
        "abi-encode",
        "f(address,uint256,bytes,bytes32,bytes32)",
        c["target"].as_str().unwrap(),
        &parse_u256(&c["value"]).to_string(),
        c["data"].as_str().unwrap(),
        resume["timelock"]["predecessor"].as_str().unwrap(),
        &salt,
    ]);
    t["timelock"]["salt"] = json!(salt);
    t["timelock"]["operation_id"] = json!(cast_offline(&["keccak", &encoded]));
    write("fail_timelock_salt_rehashed.json", &t);
    let mut t = resume.clone();
    t["timelock"]["step"] = json!("execute");
    write("fail_timelock_step_flipped.json", &t);
    let mut g = guardian.clone();
    let sh = g["eoa_tx"]["signing_hash"].as_str().unwrap().to_string();
    g["eoa_tx"]["signing_hash"] = json!(flip_last_nibble(&sh));
    write("fail_eoa_signing_hash.json", &g);
}

// ------------------------------------------------------------------ 7. overwrite protection

#[test]
fn compose_never_replaces_a_file_without_force() {
    let sb = Sandbox::new();
    let demo = demo_manifest();
    let demo = demo.to_str().unwrap();
    let precious = b"{\"a bundle\": \"someone else is still signing\"}\n";
    sb.write("out.json", precious);
    let list = |sb: &Sandbox| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(sb.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // The sandbox's audit log lives in data/: the refusal is recorded there, as it should be.
            .filter(|n| n != "data")
            .collect();
        v.sort();
        v
    };
    let before = list(&sb);

    let r = sb.run(&[
        "--manifest",
        demo,
        "compose",
        "halt",
        "--nonce",
        "0",
        "-o",
        "out.json",
    ]);
    assert_ne!(
        r.code, 0,
        "compose replaced an existing file:\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read(sb.path("out.json")).unwrap(), precious);
    assert_eq!(list(&sb), before, "no temporary file left behind");

    // The same for --execute-scheduled.
    let r = sb.run(&[
        "--manifest",
        demo,
        "compose",
        "resume",
        "--nonce",
        "0",
        "-o",
        "sched.json",
    ]);
    ok(&r, "compose resume");
    let before = list(&sb);
    let r = sb.run(&[
        "--manifest",
        demo,
        "compose",
        "--execute-scheduled",
        "sched.json",
        "--nonce",
        "1",
        "-o",
        "out.json",
    ]);
    assert_ne!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read(sb.path("out.json")).unwrap(), precious);
    assert_eq!(list(&sb), before);

    // With --force it is replaced by a complete, valid bundle.
    let r = sb.run(&[
        "--manifest",
        demo,
        "compose",
        "halt",
        "--nonce",
        "0",
        "-o",
        "out.json",
        "--force",
    ]);
    ok(&r, "compose --force");
    let b = read_json(&sb.path("out.json"));
    assert_eq!(b["format"], "breakglass/bundle@1");
    assert_eq!(b["playbook"], "halt");
    ok(
        &sb.run(&[
            "--manifest",
            demo,
            "verify",
            "--allow-untrusted",
            "out.json",
        ]),
        "verify replaced bundle",
    );
    assert_eq!(list(&sb), before, "no temporary file left behind");
}
