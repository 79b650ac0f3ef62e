//! Moving bundles between machines, through the real binary (issue 6): `combine`; `export` / `import`
//! as UR strings and PNG QR codes read back with rxing (shuffled, with parts lost: fountain recovery);
//! damaged, foreign and mixed parts refused with nothing written; the air-gap loop between two
//! sandboxes that each pin their own manifest; and ERC-4527 against Keystone's own library
//! (`tests/js/erc4527.js`, run when `@keystonehq/bc-ur-registry-eth` is installed in the tools folder).
//!
//! Signatures come from the built-in Ledger simulator (`device-sim`, Speculos' public test seed), so
//! the owners below are its accounts m/44'/60'/N'/0/0.

use crate::support::anvil::node_modules;
use crate::support::bin::{Run, Sandbox};
use crate::support::sim::SimProcess;
use alloy::primitives::B256;
use alloy::signers::local::MnemonicBuilder;
use alloy::signers::SignerSync;
use breakglass::transfer::{erc4527, qr};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// Speculos' public test seed (the simulator's default).
const SEED: &str = "glory promote mansion idle axis finger extra february uncover one trip resource lawn turtle enact monster seven myth punch hobby comfort wild raise skin";

/// The simulator's address for account N (m/44'/60'/N'/0/0).
fn sim_address(sim: &SimProcess, n: u32) -> String {
    let sb = Sandbox::new();
    let r = sb.run(&[
        "--json",
        "ledger",
        "address",
        "--speculos",
        &sim.addr,
        "--account",
        &n.to_string(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()["address"].as_str().unwrap().to_string()
}

fn manifest(title: &str, owners: &[String; 3]) -> String {
    format!(
        r#"version = 1
name = "Transfer Test"
chain_id = 31337

[safe]
address = "0x5AFe00000000000000000000000000000000a11C"
version = "1.4.1"
owners = ["{}", "{}", "{}"]
threshold = 2

[contracts.pool]
address = "0xb001000000000000000000000000000000000001"
abi = ["function pause()", "function paused() view returns (bool)"]

[contracts.vault]
address = "0xb001000000000000000000000000000000000002"
abi = ["function pause()"]

[[actions]]
id = "pause-pool"
title = "{title}"
contract = "pool"
function = "pause()"
expect = ["paused() == true"]

[[actions]]
id = "pause-vault"
contract = "vault"
function = "pause()"

[[actions]]
id = "guardian-pause"
contract = "pool"
function = "pause()"
via = "eoa"

[[playbooks]]
id = "halt"
actions = ["pause-pool", "pause-vault"]

[[playbooks]]
id = "pause-one"
actions = ["pause-pool"]

[[playbooks]]
id = "guardian"
actions = ["guardian-pause"]
"#,
        owners[0], owners[1], owners[2]
    )
}

/// One machine: a sandbox with its own copy of the manifest, pinned in its own pin store.
struct Machine {
    sb: Sandbox,
}

impl Machine {
    fn new(manifest_text: &str) -> Self {
        let sb = Sandbox::new();
        sb.write("m.toml", manifest_text);
        let r = sb.run(&["--manifest", "m.toml", "manifest", "pin", "--yes"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        Self { sb }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["--manifest", "m.toml"];
        all.extend_from_slice(args);
        self.sb.run_with_stdin(&all, stdin)
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}\n{}\n{}", r.stdout, r.stderr);
        r
    }

    fn bundle(&self, name: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.sb.path(name)).unwrap()).unwrap()
    }

    /// The bundle without its audit references (each machine's import adds its own entry).
    fn request(&self, name: &str) -> Value {
        let mut v = self.bundle(name);
        if let Some(o) = v.as_object_mut() {
            o.remove("audit");
        }
        v
    }

    fn exists(&self, name: &str) -> bool {
        self.sb.path(name).exists()
    }

    fn sign(&self, sim: &SimProcess, bundle: &str, account: u32, out: &str) {
        self.ok(&[
            "sign",
            bundle,
            "--speculos",
            &sim.addr,
            "--account",
            &account.to_string(),
            "-o",
            out,
        ]);
    }
}

/// Three owners (simulator accounts 0, 1, 2) and the simulator; account 3 is not an owner.
struct World {
    sim: SimProcess,
    owners: [String; 3],
    outsider: String,
}

impl World {
    fn new() -> Self {
        let sim = SimProcess::approving();
        let owners = [
            sim_address(&sim, 0),
            sim_address(&sim, 1),
            sim_address(&sim, 2),
        ];
        let outsider = sim_address(&sim, 3);
        Self {
            sim,
            owners,
            outsider,
        }
    }

    fn machine(&self) -> Machine {
        Machine::new(&manifest("Pause the pool", &self.owners))
    }
}

fn lines(r: &Run) -> Vec<String> {
    lines_of(&r.stdout)
}

fn lines_of(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

fn signers(b: &Value) -> Vec<String> {
    b["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["signer"].as_str().unwrap().to_lowercase())
        .collect()
}

fn hash_of(b: &Value) -> B256 {
    b["safe_tx"]["hashes"]["safe_tx_hash"]
        .as_str()
        .or_else(|| b["eoa_tx"]["signing_hash"].as_str())
        .unwrap()
        .parse()
        .unwrap()
}

/// A deterministic shuffle (no rand dependency): sort by a keyed hash of the index.
fn shuffled<T: Clone>(items: &[T], key: u8) -> Vec<T> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by_key(|i| alloy::primitives::keccak256([key, *i as u8]));
    idx.into_iter().map(|i| items[i].clone()).collect()
}

#[test]
fn combine_sorts_by_owner_drops_duplicates_and_refuses_other_requests() {
    let w = World::new();
    let m = w.machine();
    m.ok(&["compose", "halt", "--nonce", "3", "-o", "req.json"]);
    m.sign(&w.sim, "req.json", 2, "s2.json");
    m.sign(&w.sim, "req.json", 0, "s0.json");

    let r = m.ok(&[
        "--json", "combine", "s2.json", "s0.json", "s2.json", "-o", "all.json",
    ]);
    let j = r.json();
    assert_eq!(j["signatures"], 2);
    assert_eq!(j["threshold"], 2);
    assert_eq!(j["ready"], true);
    assert_eq!(j["duplicates_dropped"], 1);
    assert_eq!(j["missing"], serde_json::json!([w.owners[1]]));
    let all = m.bundle("all.json");
    let mut expected = vec![w.owners[0].to_lowercase(), w.owners[2].to_lowercase()];
    expected.sort();
    assert_eq!(
        signers(&all),
        expected,
        "ascending owner order, as Safe requires"
    );
    // The combined bundle passes every check again.
    m.ok(&["verify", "all.json"]);
    let r = m.ok(&["inspect", "all.json"]);
    assert!(r.stdout.contains("ready to execute"), "{}", r.stdout);

    // Human output: how many of the threshold, and who is missing.
    let r = m.ok(&["combine", "s0.json", "-o", "one.json"]);
    assert!(r.stdout.contains("1 of 2 signatures"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("missing  {}", w.owners[1])),
        "{}",
        r.stdout
    );

    // Another nonce: the same calls, another request. The field is named, nothing is written.
    m.ok(&["compose", "halt", "--nonce", "4", "-o", "req4.json"]);
    m.sign(&w.sim, "req4.json", 1, "s1-4.json");
    let r = m.run(&["combine", "s0.json", "s1-4.json", "-o", "bad.json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("`safe_tx.nonce` differs") && r.stderr.contains("s1-4.json"),
        "{}",
        r.stderr
    );
    // Another playbook.
    m.ok(&["compose", "pause-one", "--nonce", "3", "-o", "one-req.json"]);
    let r = m.run(&[
        "--json",
        "combine",
        "s0.json",
        "one-req.json",
        "-o",
        "bad.json",
    ]);
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["error"]["kind"], "not_same_request");
    assert!(!m.exists("bad.json"));
    // A bundle of another manifest (same owners, another title): refused before anything is compared.
    let other = Machine::new(&manifest("Pause it now", &w.owners));
    other.ok(&["compose", "halt", "--nonce", "3", "-o", "req.json"]);
    std::fs::copy(other.sb.path("req.json"), m.sb.path("foreign.json")).unwrap();
    let r = m.run(&["combine", "s0.json", "foreign.json", "-o", "bad.json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("`manifest.hash` differs"), "{}", r.stderr);
    assert!(!m.exists("bad.json"));
}

#[test]
fn png_round_trip_with_fountain_recovery() {
    let w = World::new();
    let m = w.machine();
    m.ok(&["compose", "halt", "--nonce", "3", "-o", "req.json"]);
    m.sign(&w.sim, "req.json", 0, "s0.json");
    m.sign(&w.sim, "req.json", 2, "s2.json");
    m.ok(&["combine", "s0.json", "s2.json", "-o", "all.json"]);

    // A many-part bundle: 10–13 fragments (the simulator's port is in the signature labels), written as
    // 48 PNGs (fragments, then fountain parts). Which fragments a fountain part mixes depends on the
    // bundle's bytes; with 24 parts a 12-fragment bundle could miss a lost fragment in every mixed part,
    // so the test failed for some ports. With 48, enough mixed parts cover any three lost fragments.
    let r = m.ok(&[
        "--json", "export", "all.json", "--png", "png", "--parts", "48",
    ]);
    let j = r.json();
    let fragments = j["fragments"].as_u64().unwrap() as usize;
    assert!(fragments >= 8, "{j}");
    assert_eq!(j["qr"]["ec_level"], "M");
    let files: Vec<String> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 48);
    assert!(files[0].ends_with("part-0001.png") && files[47].ends_with("part-0048.png"));
    // Lose three of the plain fragments, shuffle the rest: the mixed parts stand in for them.
    let kept: Vec<String> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| ![1, 4, 6].contains(i))
        .map(|(_, f)| f.clone())
        .collect();
    let mut args = vec!["--json", "import"];
    let shuffled_files = shuffled(&kept, 7);
    args.extend(shuffled_files.iter().map(String::as_str));
    args.extend(["-o", "back.json"]);
    let r = m.ok(&args);
    assert_eq!(r.json()["content"], "bundle");
    assert_eq!(m.request("back.json"), m.request("all.json"));
    let steps: Vec<Value> = m.bundle("back.json")["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["step"].clone())
        .collect();
    assert_eq!(
        steps.last(),
        Some(&Value::from("import")),
        "the import is recorded in the bundle"
    );

    // Too few parts: which are missing, exit 1, nothing written.
    let r = m.run(&["import", &files[0], &files[2], &files[3], "-o", "none.json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("incomplete")
            && r.stderr.contains("parts never seen among 1–")
            && r.stderr.contains("2, "),
        "{}",
        r.stderr
    );
    assert!(!m.exists("none.json"));

    // The return trip: one signature is two frames, imported into the request.
    let r = m.ok(&[
        "--json",
        "export",
        "s2.json",
        "--signatures-only",
        "--png",
        "sig",
    ]);
    assert_eq!(r.json()["fragments"], 2, "{}", r.stdout);
    let r = m.ok(&[
        "import",
        "sig/part-0002.png",
        "sig/part-0001.png",
        "--into",
        "s0.json",
        "-o",
        "both.json",
    ]);
    assert!(r.stdout.contains("2 of 2 signatures"), "{}", r.stdout);
    assert_eq!(
        signers(&m.bundle("both.json")),
        signers(&m.bundle("all.json"))
    );

    // A one-part QR: an ERC-4527 eth-signature (made here with the owner's key, derived from the
    // simulator's seed) drawn with breakglass's own QR code and read back by `import`.
    let req = m.bundle("req.json");
    let key = MnemonicBuilder::english()
        .phrase(SEED)
        .derivation_path("m/44'/60'/1'/0/0")
        .unwrap()
        .build()
        .unwrap();
    let sig = key.sign_hash_sync(&hash_of(&req)).unwrap();
    let answer = erc4527::EthSignature {
        request_id: Some(erc4527::request_id(&hash_of(&req))),
        signature: sig.as_bytes().to_vec(),
        origin: Some("test".into()),
    };
    let part = ur::ur::encode(&answer.to_cbor(), &ur::Type::Custom("eth-signature"));
    let v = qr::common_version(std::slice::from_ref(&part)).unwrap();
    let png = qr::to_png(&qr::encode(&part, v).unwrap(), qr::PNG_MODULE_PX).unwrap();
    m.sb.write("answer.png", png);
    // The same photographed as a JPEG.
    let mut jpeg = Vec::new();
    image::load_from_memory(&std::fs::read(m.sb.path("answer.png")).unwrap())
        .unwrap()
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    m.sb.write("answer.jpg", jpeg);
    m.ok(&[
        "import",
        "answer.jpg",
        "--into",
        "s0.json",
        "-o",
        "k-jpeg.json",
    ]);
    let r = m.ok(&[
        "--json",
        "import",
        "answer.png",
        "--into",
        "s0.json",
        "-o",
        "k.json",
    ]);
    let j = r.json();
    assert_eq!(j["parts_distinct"], 1);
    assert_eq!(j["content"], "eth-signature");
    assert_eq!(j["signing"]["ready"], true);
    let k = m.bundle("k.json");
    assert!(signers(&k).contains(&w.owners[1].to_lowercase()));
    assert_eq!(k["signatures"].as_array().unwrap().len(), 2);
    assert_eq!(m.request("k-jpeg.json"), m.request("k.json"));
}

#[test]
fn damaged_foreign_and_mixed_parts_are_refused_and_nothing_is_written() {
    let w = World::new();
    let m = w.machine();
    m.ok(&["compose", "halt", "--nonce", "3", "-o", "req.json"]);
    m.ok(&["compose", "halt", "--nonce", "4", "-o", "req4.json"]);
    m.sign(&w.sim, "req.json", 0, "s0.json");
    let a = lines(&m.ok(&["export", "req.json", "--ur"]));
    let b = lines(&m.ok(&["export", "req4.json", "--ur"]));
    assert!(a.len() > 2 && a.len() == b.len());

    // Any case, blank lines, zbar's "QR-Code:" prefix, any order, repeats: accepted.
    let mut text = String::from("\n");
    for (i, l) in a.iter().rev().enumerate() {
        let l = if i % 2 == 0 {
            l.to_ascii_uppercase()
        } else {
            l.clone()
        };
        text.push_str(&format!("QR-Code:{l}\n\n{l}\n"));
    }
    m.ok_stdin(&["import", "--ur", "-", "-o", "ok.json"], &text);
    assert_eq!(m.request("ok.json"), m.request("req.json"));

    let refused = |stdin: String, needle: &str, kind: &str| {
        let r = m.run_with_stdin(&["--json", "import", "--ur", "-", "-o", "bad.json"], &stdin);
        assert_eq!(r.code, 3, "{}", r.stdout);
        let j = r.json();
        assert_eq!(j["error"]["kind"], kind, "{j}");
        let msg = j["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg}");
        assert!(!m.exists("bad.json"));
    };
    // One changed letter in a part: its checksum fails, whichever letter it is.
    let mut damaged = a.clone();
    let mut chars: Vec<char> = damaged[1].chars().collect();
    let n = chars.len() - 12;
    chars[n] = if chars[n] == 'a' { 'e' } else { 'a' };
    damaged[1] = chars.into_iter().collect();
    refused(damaged.join("\n"), "line 2 is corrupted", "corrupted_part");
    // Parts of two bundles.
    let mixed = format!("{}\n{}\n{}\n", a[0], b[1], a[2]);
    refused(mixed, "line 2 belongs to another message", "mixed_parts");
    // A UR of another type, alone or among ours.
    let bytes = ur::ur::encode(b"not a bundle", &ur::Type::Bytes);
    refused(format!("{bytes}\n"), "type bytes", "wrong_ur_type");
    refused(
        format!("{}\n{bytes}\n", a[0]),
        "two different kinds",
        "mixed_parts",
    );
    // Our own request for a QR signer is not an answer.
    let req = lines(&m.ok(&["export", "req.json", "--erc4527", "--signer", &w.owners[1]]));
    refused(req.join("\n"), "not an answer", "wrong_ur_type");
    // Not UR at all: exit 1.
    let r = m.run_with_stdin(&["import", "--ur", "-", "-o", "bad.json"], "hello\n");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("line 1 is not a UR string"),
        "{}",
        r.stderr
    );
    // Nothing at all: usage.
    let r = m.run(&["import", "-o", "bad.json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // Signatures for another request, and without the request: refused.
    let sig = lines(&m.ok(&["export", "s0.json", "--signatures-only"])).join("\n");
    let r = m.run_with_stdin(
        &[
            "import",
            "--ur",
            "-",
            "--into",
            "req4.json",
            "-o",
            "bad.json",
        ],
        &sig,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("it answers another request"),
        "{}",
        r.stderr
    );
    let r = m.run_with_stdin(&["import", "--ur", "-", "-o", "bad.json"], &sig);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("needs --into"), "{}", r.stderr);
    assert!(!m.exists("bad.json"));

    // ERC-4527 answers: another request's id, and a key that is not an owner.
    let req = m.bundle("req.json");
    let outsider = MnemonicBuilder::english()
        .phrase(SEED)
        .derivation_path("m/44'/60'/3'/0/0")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(outsider.address().to_checksum(None), w.outsider);
    let answer = |id_of: B256| {
        let sig = outsider.sign_hash_sync(&hash_of(&req)).unwrap();
        let a = erc4527::EthSignature {
            request_id: Some(erc4527::request_id(&id_of)),
            signature: sig.as_bytes().to_vec(),
            origin: None,
        };
        ur::ur::encode(&a.to_cbor(), &ur::Type::Custom("eth-signature"))
    };
    let r = m.run_with_stdin(
        &[
            "import", "--ur", "-", "--into", "req.json", "-o", "bad.json",
        ],
        &answer(hash_of(&m.bundle("req4.json"))),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("answers request"), "{}", r.stderr);
    let r = m.run_with_stdin(
        &[
            "import", "--ur", "-", "--into", "req.json", "-o", "bad.json",
        ],
        &answer(hash_of(&req)),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(&w.outsider) && r.stderr.contains("is not an owner"),
        "{}",
        r.stderr
    );
    assert!(!m.exists("bad.json"));

    // Exporting to a QR signer refuses what is not for it.
    let r = m.run(&["export", "req.json", "--erc4527", "--signer", &w.outsider]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = m.run(&["export", "s0.json", "--erc4527", "--signer", &w.owners[0]]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("already signed"), "{}", r.stderr);
    let r = m.run(&["export", "req.json", "--erc4527"]);
    assert_eq!(r.code, 2, "a Safe request needs --signer: {}", r.stderr);
    let r = m.sb.run(&[
        "--manifest",
        "m.toml",
        "--pin",
        &format!("0x{}", "11".repeat(32)),
        "export",
        "req.json",
        "--erc4527",
        "--signer",
        &w.owners[1],
    ]);
    assert_eq!(r.code, 3, "untrusted manifest: {}", r.stderr);
}

impl Machine {
    fn ok_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let r = self.run_with_stdin(args, stdin);
        assert_eq!(r.code, 0, "{args:?}\n{}\n{}", r.stdout, r.stderr);
        r
    }
}

/// The air-gap loop of issue 6 with two machines that share nothing but text: the online machine
/// composes and exports; the offline machine imports, verifies against its own pin, signs, and exports
/// the signature; the online machine imports it into the request and combines.
#[test]
fn air_gap_loop_between_two_machines() {
    let w = World::new();
    let online = w.machine();
    let offline = w.machine();

    online.ok(&["compose", "halt", "--nonce", "5", "-o", "request.json"]);
    let parts = online.ok(&["export", "request.json", "--ur"]).stdout;
    // --qr with stdout not a terminal prints the same parts and does not animate.
    assert_eq!(online.ok(&["export", "request.json", "--qr"]).stdout, parts);

    // Offline: import (recomputed, checked against its own pinned manifest), verify, sign.
    let shuffled_parts = shuffled(&lines_of(&parts), 3).join("\n");
    offline.ok_stdin(
        &["import", "--ur", "-", "-o", "request.json"],
        &shuffled_parts,
    );
    offline.ok(&["verify", "request.json"]);
    offline.sign(&w.sim, "request.json", 1, "signed.json");
    let back = offline.ok(&["export", "signed.json", "--signatures-only", "--ur"]);
    assert!(lines(&back).len() <= 2, "{}", back.stdout);

    // Online: the signature joins the request; an online owner signs too; combine.
    let r = online.ok_stdin(
        &[
            "--json",
            "import",
            "--ur",
            "-",
            "--into",
            "request.json",
            "-o",
            "from-offline.json",
        ],
        &back.stdout,
    );
    assert_eq!(r.json()["content"], "signatures");
    assert_eq!(r.json()["added"], 1);
    online.sign(&w.sim, "request.json", 0, "from-online.json");
    let r = online.ok(&[
        "--json",
        "combine",
        "from-online.json",
        "from-offline.json",
        "-o",
        "all.json",
    ]);
    assert_eq!(r.json()["ready"], true);
    assert_eq!(
        offline.bundle("signed.json")["signatures"][0]["signature"],
        online.bundle("all.json")["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["signer"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(&w.owners[1]))
            .unwrap()["signature"]
    );

    // Each step refuses what is not for it. An offline machine with another manifest:
    let stranger = Machine::new(&manifest("Another manifest", &w.owners));
    let r = stranger.run_with_stdin(&["import", "--ur", "-", "-o", "request.json"], &parts);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("composed against manifest"),
        "{}",
        r.stderr
    );
    assert!(!stranger.exists("request.json"));
    // Signatures into an executed bundle:
    let mut executed = online.bundle("all.json");
    executed["receipt"] = serde_json::json!({
        "tx_hash": format!("0x{}", "ab".repeat(32)),
        "block_number": 7,
        "status": 1,
        "gas_used": 90000,
        "seconds": 1.5,
    });
    online
        .sb
        .write("executed.json", serde_json::to_vec(&executed).unwrap());
    let r = online.run_with_stdin(
        &[
            "import",
            "--ur",
            "-",
            "--into",
            "executed.json",
            "-o",
            "x.json",
        ],
        &back.stdout,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("already executed"), "{}", r.stderr);
    let r = online.run(&[
        "combine",
        "executed.json",
        "from-online.json",
        "-o",
        "x.json",
    ]);
    assert_eq!(r.code, 3);
    assert!(!online.exists("x.json"));
}

/// Runs tests/js/erc4527.js with Keystone's library; `None` when it is not installed.
fn node(mode: &[&str], stdin: &str) -> Option<Value> {
    let nm = node_modules();
    // Not a skip: without Keystone's library the cross-check cannot run, and that is a failure.
    assert!(
        nm.join("@keystonehq/bc-ur-registry-eth").exists(),
        "{} has no @keystonehq/bc-ur-registry-eth: run scripts/test.sh, which installs it",
        nm.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/erc4527.js");
    let mut child = Command::new("node")
        .arg(script)
        .args(mode)
        .env("NODE_PATH", &nm)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node {mode:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn erc4527_against_keystones_library() {
    let Some(vectors) = node(&["vectors"], "") else {
        return;
    };
    // Keystone's test vectors, as its library encodes them today, equal ours.
    let id: [u8; 16] = alloy::hex::decode("9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d")
        .unwrap()
        .try_into()
        .unwrap();
    let mut request = erc4527::EthSignRequest {
        request_id: Some(id),
        sign_data: alloy::hex::decode("f849808609184e72a00082271094000000000000000000000000000000000000000080a47f7465737432000000000000000000000000000000000000000000000000000000600057808080").unwrap(),
        data_type: erc4527::DataType::Transaction,
        chain_id: Some(1),
        derivation_path: erc4527::KeyPath {
            components: vec![(44, true), (1, true), (1, true), (0, false), (1, false)],
            source_fingerprint: Some(0x1234_5678),
        },
        address: None,
        origin: Some("metamask".into()),
    };
    let enc = |t: &str, c: Vec<u8>| ur::ur::encode(&c, &ur::Type::Custom(t));
    assert_eq!(
        vectors["sign_request_origin"],
        enc("eth-sign-request", request.to_cbor())
    );
    request.origin = None;
    assert_eq!(
        vectors["sign_request_constructed"],
        enc("eth-sign-request", request.to_cbor())
    );
    let mut sig = erc4527::EthSignature {
        request_id: Some(id),
        signature: alloy::hex::decode("d4f0a7bcd95bba1fbb1051885054730e3f47064288575aacc102fbbf6a9a14daa066991e360d3e3406c20c00a40973eff37c7d641e5b351ec4a99bfe86f335f713").unwrap(),
        origin: None,
    };
    assert_eq!(vectors["signature"], enc("eth-signature", sig.to_cbor()));
    sig.origin = Some("keystone".into());
    assert_eq!(
        vectors["signature_origin"],
        enc("eth-signature", sig.to_cbor())
    );

    let w = World::new();
    let m = w.machine();

    // A Safe request: Keystone's library decodes every field; ethers hashes its typed data to the
    // safeTxHash; a Keystone-like signer (ethers, key from the seed at the request's path) answers,
    // and the answer equals what the Ledger (simulator) signs for the same owner.
    m.ok(&["compose", "halt", "--nonce", "3", "-o", "req.json"]);
    let req = m.bundle("req.json");
    let r = m.ok(&[
        "--json",
        "export",
        "req.json",
        "--erc4527",
        "--signer",
        &w.owners[1],
        "--account",
        "1",
        "--xfp",
        "f23f9fd2",
    ]);
    let exported = r.json();
    let parts: Vec<String> = exported["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(parts.len() > 1, "multipart");
    let d = node(&["decode-request"], &shuffled(&parts, 1).join("\n")).unwrap();
    assert_eq!(d["ur_type"], "eth-sign-request");
    assert_eq!(d["request_id"], exported["request_id"]);
    assert_eq!(
        d["request_id"],
        erc4527::uuid_string(&erc4527::request_id(&hash_of(&req)))
    );
    assert_eq!(d["data_type"], 2);
    assert_eq!(d["chain_id"], 31337);
    assert_eq!(d["derivation_path"], "44'/60'/1'/0/0");
    assert_eq!(d["source_fingerprint"], "f23f9fd2");
    assert_eq!(d["address"], w.owners[1].as_str());
    assert_eq!(d["origin"], "breakglass");
    assert_eq!(d["hash"], req["safe_tx"]["hashes"]["safe_tx_hash"]);
    assert_eq!(d["typed_data"]["primaryType"], "SafeTx");
    assert_eq!(d["typed_data"]["message"]["nonce"], "3");
    assert_eq!(d["typed_data"]["message"]["data"], req["safe_tx"]["data"]);

    let answer = node(&["sign", SEED], &parts.join("\n")).unwrap();
    assert_eq!(answer["address"], w.owners[1].as_str());
    let part = answer["part"].as_str().unwrap();
    assert!(part.starts_with("ur:eth-signature/"), "{part}");
    let r = m.ok_stdin(
        &[
            "--json", "import", "--ur", "-", "--into", "req.json", "-o", "k.json",
        ],
        part,
    );
    assert_eq!(r.json()["content"], "eth-signature");
    m.sign(&w.sim, "req.json", 1, "l.json");
    let (k, l) = (m.bundle("k.json"), m.bundle("l.json"));
    assert_eq!(
        k["signatures"][0]["signature"],
        l["signatures"][0]["signature"]
    );
    assert_eq!(k["signatures"][0]["kind"], "eip712");
    assert_eq!(
        k["signatures"][0]["device"],
        "ERC-4527 QR signer (keystone)"
    );

    // An EOA request: a typed transaction that ethers parses back to the bundle's fields, whose keccak
    // is the signing hash; the answer (v = y-parity) gives the same signed tx as the Ledger.
    let from = w.outsider.clone();
    m.ok(&[
        "compose",
        "guardian",
        "--from",
        &from,
        "--nonce",
        "7",
        "--gas-limit",
        "60000",
        "--max-fee",
        "30000000000",
        "--priority-fee",
        "1000000000",
        "-o",
        "eoa.json",
    ]);
    let eoa = m.bundle("eoa.json");
    let parts = lines(&m.ok(&["export", "eoa.json", "--erc4527", "--account", "3"]));
    let d = node(&["decode-request"], &parts.join("\n")).unwrap();
    assert_eq!(d["data_type"], 4);
    assert_eq!(d["address"], from.as_str());
    assert_eq!(d["hash"], eoa["eoa_tx"]["signing_hash"]);
    let t = &d["transaction"];
    assert_eq!(t["type"], 2);
    assert_eq!(t["chain_id"], 31337);
    assert_eq!(t["nonce"], 7);
    assert_eq!(t["gas_limit"], "60000");
    assert_eq!(t["max_fee_per_gas"], "30000000000");
    assert_eq!(t["max_priority_fee_per_gas"], "1000000000");
    assert_eq!(t["data"], eoa["eoa_tx"]["data"]);
    assert!(t["to"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case(eoa["eoa_tx"]["to"].as_str().unwrap()));
    let answer = node(&["sign", SEED], &parts.join("\n")).unwrap();
    m.ok_stdin(
        &[
            "import",
            "--ur",
            "-",
            "--into",
            "eoa.json",
            "-o",
            "eoa-k.json",
        ],
        answer["part"].as_str().unwrap(),
    );
    m.sign(&w.sim, "eoa.json", 3, "eoa-l.json");
    assert_eq!(
        m.bundle("eoa-k.json")["signed_tx"],
        m.bundle("eoa-l.json")["signed_tx"]
    );
    assert_eq!(
        m.bundle("eoa-k.json")["signatures"][0]["signature"],
        m.bundle("eoa-l.json")["signatures"][0]["signature"]
    );

    // Our own multipart type, fountain-decoded by @ngraveio/bc-ur from a shuffled subset with losses.
    m.ok(&["combine", "k.json", "-o", "k1.json"]);
    let r = m.ok(&["--json", "export", "k1.json", "--parts", "30"]);
    let j = r.json();
    let parts: Vec<String> = j["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    let kept: Vec<String> = parts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 0 && *i != 3)
        .map(|(_, p)| p.clone())
        .collect();
    let d = node(&["decode-bundle"], &shuffled(&kept, 9).join("\n")).unwrap();
    assert_eq!(d["ur_type"], "breakglass-bundle");
    assert_eq!(d["payload"], m.bundle("k1.json"));
}

/// Export and import of a 10-part bundle in-process (the criterion bench measures it in release; this
/// keeps an eye on it in debug builds).
#[test]
fn ten_part_bundle_round_trips_in_any_order() {
    use breakglass::bundle::Bundle;
    use breakglass::transfer::payload;
    use breakglass::transfer::ur::{UrCollector, UrStream, MAX_FRAGMENT_LEN};
    let b = Bundle::from_slice(
        "base_halt.json",
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bundles/base_halt.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut big = b.clone();
    big.actions
        .extend((0..8).map(|i| format!("padding-action-{i:02}-{}", "x".repeat(48))));
    let t0 = std::time::Instant::now();
    let cbor = payload::bundle_payload(&big).unwrap();
    let mut s = UrStream::new(payload::UR_TYPE, &cbor, MAX_FRAGMENT_LEN).unwrap();
    let n = s.fragment_count();
    let parts = s.take(n).unwrap();
    let mut c = UrCollector::new();
    for p in parts.iter().rev() {
        c.receive(p, "part").unwrap();
    }
    let (_, back) = c.finish().unwrap();
    assert!(matches!(
        payload::decode(&back),
        Ok(payload::Payload::Bundle(_))
    ));
    let dt = t0.elapsed();
    eprintln!(
        "{n}-part bundle ({} bytes): export + import {dt:?}",
        cbor.len()
    );
    assert!(n >= 8, "{n} parts");
    // Timings live in benches/core.rs (transfer/ur_export_import_10_part_bundle); this only reports.
}
