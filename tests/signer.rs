//! Signers, end to end.
//!
//! 1. The built-in simulator, reached over a real TCP socket through `TcpTransport`, reproduces
//!    PROTOCOLS.md §2's vectors observed from Ledger's Ethereum app 1.22.0 byte for byte
//!    (tests/fixtures/apdu/ledger-eth-1.22.0-*.apdus), and breakglass's APDU builders produce hw-app-eth's
//!    reference vector.
//! 2. The APDUs breakglass sends are the ones Ledger's own JavaScript client sends: sessions recorded from
//!    breakglass (answers from the simulator) replay through `@ledgerhq/hw-app-eth` 7.9.0 with
//!    `@ledgerhq/hw-transport-mocker`, which fails on the first APDU that differs (tests/js/replay_hw_app_eth.js).
//! 3. Every status word of PROTOCOLS.md §2 maps to an error that says what to do; the `sign` command exits 4
//!    and writes nothing when the device says no or is not there, and 3 under an untrusted manifest.
//! 4. Keystores written by Foundry's `cast wallet` sign Safe bundles; a wrong password exits 4; no secret
//!    ever reaches the terminal or a file.
//! 5. The real Safe 1.4.1 on anvil accepts a simulator signature and a keystore signature
//!    (`checkSignatures`, then `execTransaction`), and an EOA transaction signed by the simulator is mined.
//! 6. Host-side time per signature (printed, not asserted; run with `--nocapture` to see it).

use crate::support::anvil::{
    cast_offline, node_modules, Anvil, CHAIN_ID, DEFAULT_ADDRESSES, DEFAULT_KEYS,
};
use crate::support::bin::{repo, Run, Sandbox};
use crate::support::sim::{InProcessSim as InProcSim, SimProcess};
use alloy::consensus::{SignableTransaction, TxEip1559};
use alloy::primitives::{keccak256, Address, Bytes, Signature, TxKind, B256, U256};
use breakglass::signer::ledger::apdu::{self, ledger_live_path, HdPath, LedgerError};
use breakglass::signer::ledger::sim::{self, SimConfig, SimMode};
use breakglass::signer::ledger::{LedgerSigner, TcpTransport, Transport};
use breakglass::signer::{ApprovalRequest, Signer, SigningRequest};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ PROTOCOLS.md §2 vectors

/// `m/44'/60'/0'/0/0` of Speculos' default seed.
const SIM_ADDR0: &str = "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D";
/// Ledger Live accounts 1 and 2 of the same seed (examples/demo.toml's other owners).
const SIM_ADDR1: &str = "0x463e4e114AA57F54f2Fd2C3ec03572C6f75d84C2";
const SIM_ADDR2: &str = "0x5DD37a819253D52EC6c31f0323bd17C20c1B4CC2";
const PATH0_HEX: &str = "058000002c8000003c800000000000000000000000";

/// EIP-1559, chain 1, nonce 0, tip 1 gwei, max fee 30 gwei, gas 21000, to 0xd8dA…6045, 0.01 ETH.
const TX_VECTOR: &str = "02ef0180843b9aca008506fc23ac0082520894d8da6bf26964af9d7eed9e03e53415d37aa96045872386f26fc1000080c0";
const TX_R: &str = "1a29eef1ddcc36f124dadd53585baed5c34952050b96b9648e4176c0a56ffa52";
const TX_S: &str = "078a831462be93b3d2ba03e078226cf8b3f725fc9d4927678a2bcdb1fac91ee3";
/// SIGN_EIP712 hashed, domain 32 × 0x11, message 32 × 0x22.
const EIP712_R: &str = "6489f43b059e1aac2c2264ea0347a77fb1d748764a4917864f394baa1fd7bd0f";
const EIP712_S: &str = "0b0d6167c947113bf4c415621d173dc0ec3c88cc169189975a91ae1af4f19b2d";
/// The same tx shape with calldata `pause()` (value 0, gas 60000): needs blind signing.
const CALLDATA_TX: &str =
    "02ec0180843b9aca008506fc23ac0082ea6094d8da6bf26964af9d7eed9e03e53415d37aa9604580848456cb59c0";

/// @ledgerhq/hw-app-eth's unit-test vector (another seed).
const REF_TX: &str =
    "02e801808417d78400850c529dc58c82520894b0b5b0106d69fe64545a60a68c014f7570d3f8610180c0";
const REF_APDU: &str = "e00400003f058000002c8000003c80000000000000000000000002e801808417d78400850c529dc58c82520894b0b5b0106d69fe64545a60a68c014f7570d3f8610180c0";
const REF_ANSWER: &str = "00339a8118c0329e403415129205d1d019e5fc5c95bc746b7e9e6efde3ddebfc1107c0393a6bba61a6f3eabc9a1d8298820fd0316436b49b0bc4082bfab81531e39000";

const VITALIK: &str = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045";

// ------------------------------------------------------------------ small helpers

fn hex(b: impl AsRef<[u8]>) -> String {
    alloy::hex::encode(b)
}

fn unhex(s: &str) -> Vec<u8> {
    alloy::hex::decode(s.trim()).unwrap_or_else(|e| panic!("not hex ({e}): {s}"))
}

fn addr(s: &str) -> Address {
    s.parse()
        .unwrap_or_else(|e| panic!("not an address ({e}): {s}"))
}

fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
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

/// A 65-byte `r ‖ s ‖ v` signature (v 27/28 or 0/1).
fn sig_from_rsv(b: &[u8]) -> Signature {
    assert_eq!(b.len(), 65, "signature length: {}", hex(b));
    let parity = match b[64] {
        0 | 27 => false,
        1 | 28 => true,
        v => panic!("v = {v}"),
    };
    Signature::new(
        U256::from_be_slice(&b[..32]),
        U256::from_be_slice(&b[32..64]),
        parity,
    )
}

fn eip712_digest(domain: &B256, message: &B256) -> B256 {
    let mut buf = vec![0x19, 0x01];
    buf.extend_from_slice(domain.as_slice());
    buf.extend_from_slice(message.as_slice());
    keccak256(buf)
}

/// hw-app-eth's path syntax: `44'/60'/0'/0/0`.
fn js_path(p: &HdPath) -> String {
    p.to_string().trim_start_matches("m/").to_string()
}

// ------------------------------------------------------------------ simulators

/// One APDU over TCP, answer as hex (data ‖ SW).
fn xchg(t: &mut TcpTransport, apdu: &[u8]) -> String {
    hex(t.exchange(apdu).unwrap())
}

// ------------------------------------------------------------------ APDU sessions (RecordStore)

fn apdu_fixture(name: &str) -> String {
    let p = repo().join("tests/fixtures/apdu").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(apdu hex, answer hex)` pairs of a RecordStore text (`#` lines are comments).
fn session(text: &str) -> Vec<(String, String)> {
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace(' ', "").to_ascii_lowercase())
        .collect();
    assert!(
        lines.chunks_exact(2).remainder().is_empty(),
        "odd number of lines in a session"
    );
    lines
        .chunks(2)
        .map(|p| {
            let a = p[0]
                .strip_prefix("=>")
                .unwrap_or_else(|| panic!("expected => line: {}", p[0]));
            let b = p[1]
                .strip_prefix("<=")
                .unwrap_or_else(|| panic!("expected <= line: {}", p[1]));
            (a.to_string(), b.to_string())
        })
        .collect()
}

fn record_text(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(a, b)| format!("=> {a}\n<= {b}\n"))
        .collect()
}

/// Sends `apdus` over TCP and records the exchanges (what breakglass would do on a device).
fn record(t: &mut TcpTransport, apdus: &[Vec<u8>]) -> Vec<(String, String)> {
    apdus.iter().map(|a| (hex(a), xchg(t, a))).collect()
}

/// Runs tests/js/replay_hw_app_eth.js on `cases`; one result object per case.
fn hw_app_eth(cases: &Value) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec_pretty(cases).unwrap()).unwrap();
    let nm = node_modules();
    assert!(
        nm.join("@ledgerhq/hw-app-eth").is_dir() && nm.join("@ledgerhq/hw-transport-mocker").is_dir(),
        "@ledgerhq/hw-app-eth and @ledgerhq/hw-transport-mocker are not installed under {}: run scripts/test.sh or set BREAKGLASS_TOOLS",
        nm.display()
    );
    let out = Command::new("node")
        .arg(repo().join("tests/js/replay_hw_app_eth.js"))
        .arg(&file)
        .env("NODE_PATH", &nm)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node replay_hw_app_eth.js failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("replay output is not JSON ({e}): {stdout}"));
    let results = v.as_array().unwrap().clone();
    assert_eq!(results.len(), cases.as_array().unwrap().len());
    results
}

/// A failure report: what breakglass sent next to what hw-app-eth sent, APDU by APDU.
fn apdu_diff(case: &Value, result: &Value) -> String {
    let ours: Vec<String> = session(case["record"].as_str().unwrap())
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let theirs: Vec<String> = result["sent"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!(
        "case {:?}: {}\n  breakglass sent {} APDU(s), hw-app-eth {}:\n",
        case["name"].as_str().unwrap_or(""),
        result["error"],
        ours.len(),
        theirs.len()
    );
    for i in 0..ours.len().max(theirs.len()) {
        let a = ours.get(i).map(String::as_str).unwrap_or("-");
        let b = theirs.get(i).map(String::as_str).unwrap_or("-");
        let mark = if a == b { "same" } else { "DIFF" };
        s.push_str(&format!(
            "  [{i}] {mark}\n    breakglass ({:3} data bytes) {a}\n    hw-app-eth ({:3} data bytes) {b}\n",
            a.len().saturating_sub(10) / 2,
            b.len().saturating_sub(10) / 2
        ));
    }
    s
}

/// Asserts every case replayed; `expect_fail` names cases that must be refused (negative controls).
fn assert_replayed(cases: &Value, results: &[Value], expect_fail: &[&str]) {
    let mut failures = Vec::new();
    for (c, r) in cases.as_array().unwrap().iter().zip(results) {
        let name = c["name"].as_str().unwrap();
        let okay = r["ok"] == json!(true);
        if expect_fail.contains(&name) {
            assert!(
                !okay,
                "negative control {name:?} replayed although an APDU was altered: {r}"
            );
            assert!(
                r["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("RecordStoreWrongAPDU"),
                "negative control {name:?} failed for another reason: {r}"
            );
        } else if !okay {
            failures.push(apdu_diff(c, r));
        }
    }
    assert!(
        failures.is_empty(),
        "hw-app-eth does not send the APDUs breakglass sends:\n{}",
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ 1. vectors over TCP

#[test]
fn path_encoding_and_vector_transactions() {
    let p = ledger_live_path(0);
    assert_eq!(hex(p.encode()), PATH0_HEX);
    assert_eq!(HdPath::parse("m/44'/60'/0'/0/0").unwrap(), p);
    assert_eq!(HdPath::parse("m/44h/60h/0h/0/0").unwrap(), p);
    assert_eq!(p.to_string(), "m/44'/60'/0'/0/0");
    assert_eq!(
        hex(HdPath::parse("m/44'/60'/0'/7").unwrap().encode()),
        "048000002c8000003c8000000000000007"
    );
    for bad in [
        "44'/60'",
        "m/",
        "m/x",
        "m/2147483648",
        "m/1/2/3/4/5/6/7/8/9/10/11",
    ] {
        assert!(HdPath::parse(bad).is_err(), "{bad:?} must be refused");
    }
    // The vectors' unsigned transactions are what alloy encodes for the fields PROTOCOLS.md describes.
    let base = TxEip1559 {
        chain_id: 1,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(addr(VITALIK)),
        value: U256::from(10_000_000_000_000_000u64),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    assert_eq!(hex(base.encoded_for_signing()), TX_VECTOR);
    let with_data = TxEip1559 {
        gas_limit: 60_000,
        value: U256::ZERO,
        input: Bytes::from(vec![0x84, 0x56, 0xcb, 0x59]),
        ..base.clone()
    };
    assert_eq!(hex(with_data.encoded_for_signing()), CALLDATA_TX);
    let reference = TxEip1559 {
        chain_id: 1,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 0x0c529dc58c,
        max_priority_fee_per_gas: 0x17d78400,
        to: TxKind::Call(addr("0xB0b5B0106D69fE64545A60A68C014f7570D3F861")),
        value: U256::from(1),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    assert_eq!(hex(reference.encoded_for_signing()), REF_TX);
}

#[test]
fn hw_app_eth_reference_vector() {
    // Signed by hw-app-eth's test device (another seed): only the APDU bytes and the answer's parsing.
    let pairs = session(&apdu_fixture("hw-app-eth-reference.apdus"));
    assert_eq!(pairs, vec![(REF_APDU.to_string(), REF_ANSWER.to_string())]);
    let path = HdPath::parse("m/44'/60'/0'/0/0").unwrap();
    let apdus = apdu::sign_transaction(&path, &unhex(REF_TX));
    assert_eq!(apdus.len(), 1);
    assert_eq!(hex(&apdus[0]), REF_APDU);
    let data = apdu::check_status(&unhex(REF_ANSWER), "a transaction").unwrap();
    assert_eq!(data.len(), 65);
    let sig = apdu::parse_signature(&data).unwrap();
    assert!(!sig.v(), "v byte 00 is y-parity 0");
    assert_eq!(
        hex(sig.r().to_be_bytes::<32>()),
        "339a8118c0329e403415129205d1d019e5fc5c95bc746b7e9e6efde3ddebfc11"
    );
    assert_eq!(
        hex(sig.s().to_be_bytes::<32>()),
        "07c0393a6bba61a6f3eabc9a1d8298820fd0316436b49b0bc4082bfab81531e3"
    );
    // It is a valid signature of that transaction by someone.
    sig.recover_address_from_prehash(&keccak256(unhex(REF_TX)))
        .unwrap();
}

#[test]
fn simulator_reproduces_protocols_vectors_over_tcp() {
    let on = InProcSim::blind(true);
    let off = InProcSim::blind(false);
    let path = ledger_live_path(0);
    let domain = B256::repeat_byte(0x11);
    let message = B256::repeat_byte(0x22);
    let unknown_ins = [0xE0, 0x42, 0x00, 0x00, 0x00];
    let zero_levels = unhex("e00200000100");
    let mut eleven = vec![0xE0, 0x02, 0x00, 0x00, 45, 11];
    for _ in 0..11 {
        eleven.extend_from_slice(&0x8000_002cu32.to_be_bytes());
    }
    let sign_zero_levels = unhex("e00400000100");

    for (sim, blind) in [(&on, true), (&off, false)] {
        let mut t = sim.connect();
        assert!(t.is_tcp());

        // GET_PUBLIC_KEY: the address, as checksummed ASCII, of the key returned.
        let ans = t.exchange(&apdu::get_public_key(&path, false)).unwrap();
        let data = apdu::check_status(&ans, "the address").unwrap();
        let pk = apdu::parse_public_key(&data).unwrap();
        assert_eq!(pk.address, addr(SIM_ADDR0));
        assert_eq!(
            std::str::from_utf8(&data[67..107]).unwrap(),
            SIM_ADDR0.trim_start_matches("0x")
        );

        // GET_APP_CONFIGURATION.
        let cfg = xchg(&mut t, &apdu::get_app_configuration());
        assert_eq!(
            cfg,
            if blind {
                "030116009000"
            } else {
                "020116009000"
            }
        );
        let parsed = apdu::parse_app_configuration(&unhex(&cfg[..8])).unwrap();
        assert_eq!(parsed.blind_signing(), blind);
        assert_eq!(parsed.version_string(), "1.22.0");

        // SIGN of the vector transaction (no calldata: blind signing is not needed).
        let apdus = apdu::sign_transaction(&path, &unhex(TX_VECTOR));
        assert_eq!(apdus.len(), 1);
        assert_eq!(hex(&apdus[0]), format!("e004000046{PATH0_HEX}{TX_VECTOR}"));
        let ans = xchg(&mut t, &apdus[0]);
        assert_eq!(ans, format!("01{TX_R}{TX_S}9000"), "blind signing {blind}");
        let sig = apdu::parse_signature(&unhex(&ans[..130])).unwrap();
        assert_eq!(
            sig.recover_address_from_prehash(&keccak256(unhex(TX_VECTOR)))
                .unwrap(),
            addr(SIM_ADDR0)
        );

        // SIGN_EIP712 hashed.
        let a = apdu::sign_eip712_hashed(&path, &domain, &message);
        assert_eq!(
            hex(&a),
            format!(
                "e00c000055{PATH0_HEX}{}{}",
                "11".repeat(32),
                "22".repeat(32)
            )
        );
        let ans = xchg(&mut t, &a);
        if blind {
            assert_eq!(ans, format!("1b{EIP712_R}{EIP712_S}9000"));
            let sig = apdu::parse_signature(&unhex(&ans[..130])).unwrap();
            assert_eq!(
                sig.recover_address_from_prehash(&eip712_digest(&domain, &message))
                    .unwrap(),
                addr(SIM_ADDR0)
            );
        } else {
            assert_eq!(ans, "6a80", "hashed EIP-712 without blind signing");
        }

        // A transaction with calldata.
        let apdus = apdu::sign_transaction(&path, &unhex(CALLDATA_TX));
        let ans = xchg(&mut t, &apdus[0]);
        if blind {
            assert!(ans.ends_with("9000") && ans.len() == 134, "{ans}");
            let sig = apdu::parse_signature(&unhex(&ans[..130])).unwrap();
            assert_eq!(
                sig.recover_address_from_prehash(&keccak256(unhex(CALLDATA_TX)))
                    .unwrap(),
                addr(SIM_ADDR0)
            );
        } else {
            assert_eq!(ans, "6a80", "calldata without blind signing");
        }

        // Unknown INS, malformed paths.
        assert_eq!(xchg(&mut t, &unknown_ins), "6d00");
        assert_eq!(xchg(&mut t, &zero_levels), "6a80");
        assert_eq!(xchg(&mut t, &eleven), "6a80");
        assert_eq!(xchg(&mut t, &sign_zero_levels), "6a80");

        // The connection still works after errors.
        assert_eq!(
            xchg(&mut t, &apdu::sign_transaction(&path, &unhex(TX_VECTOR))[0]),
            format!("01{TX_R}{TX_S}9000")
        );
    }

    // The fixture sessions (what the real app answered) replay against the simulator exactly, and their
    // signing APDUs are the ones breakglass builds.
    for (sim, file) in [
        (&on, "ledger-eth-1.22.0-blind-on.apdus"),
        (&off, "ledger-eth-1.22.0-blind-off.apdus"),
    ] {
        let pairs = session(&apdu_fixture(file));
        let mut t = sim.connect();
        for (a, want) in &pairs {
            assert_eq!(&xchg(&mut t, &unhex(a)), want, "{file}: => {a}");
        }
        let sent: Vec<&str> = pairs.iter().map(|(a, _)| a.as_str()).collect();
        for built in [
            apdu::get_public_key(&path, false),
            apdu::get_app_configuration(),
            apdu::sign_transaction(&path, &unhex(TX_VECTOR))[0].clone(),
            apdu::sign_eip712_hashed(&path, &domain, &message),
        ] {
            assert!(
                sent.contains(&hex(&built).as_str()),
                "{file} lacks {}",
                hex(&built)
            );
        }
    }

    // The person rejects: 6985 for signatures; silent address reads still work.
    let reject = InProcSim::mode(SimMode::Reject);
    let mut t = reject.connect();
    assert_eq!(
        xchg(&mut t, &apdu::sign_transaction(&path, &unhex(TX_VECTOR))[0]),
        "6985"
    );
    assert_eq!(
        xchg(&mut t, &apdu::sign_eip712_hashed(&path, &domain, &message)),
        "6985"
    );
    assert_eq!(
        xchg(&mut t, &apdu::get_public_key(&path, true)),
        "6985",
        "refusing to confirm the address on screen"
    );
    let ans = t.exchange(&apdu::get_public_key(&path, false)).unwrap();
    assert_eq!(
        apdu::parse_public_key(&apdu::check_status(&ans, "").unwrap())
            .unwrap()
            .address,
        addr(SIM_ADDR0)
    );
}

#[test]
fn ledger_signer_over_tcp_signs_and_labels_the_simulator() {
    let sim = InProcSim::blind(true);
    let mut s = LedgerSigner::new(Box::new(sim.connect()), ledger_live_path(0));
    assert_eq!(s.address().unwrap(), addr(SIM_ADDR0));
    let label = s.label();
    assert!(label.contains("SIMULATED LEDGER"), "{label}");
    assert!(label.contains("1.22.0"), "{label}");
    assert!(s.blind_signing().unwrap());
    let domain = B256::repeat_byte(0x11);
    let message = B256::repeat_byte(0x22);
    let sig = s.sign_safe(&domain, &message).unwrap();
    assert_eq!(hex(sig.r().to_be_bytes::<32>()), EIP712_R);
    assert_eq!(hex(sig.s().to_be_bytes::<32>()), EIP712_S);
    assert!(!sig.v());
    let bytes = breakglass::signer::safe_signature_bytes(&sig);
    assert_eq!(
        hex(bytes),
        format!("{EIP712_R}{EIP712_S}1b"),
        "execTransaction form r ‖ s ‖ v(27/28)"
    );
    // A manifest approval (EIP-191) through the real APDUs.
    let req = ApprovalRequest::new(&B256::repeat_byte(0xab));
    let sig = breakglass::signer::sign_approval(&mut s, &req, addr(SIM_ADDR0)).unwrap();
    assert_eq!(
        sig.recover_address_from_msg(req.text().as_bytes()).unwrap(),
        addr(SIM_ADDR0)
    );
    // Expecting another signer is refused after recovery.
    let err = breakglass::signer::sign_approval(&mut s, &req, addr(SIM_ADDR1)).unwrap_err();
    assert!(
        err.to_string().contains("not to the expected signer"),
        "{err}"
    );
    // Another account.
    let mut s1 = LedgerSigner::new(Box::new(sim.connect()), ledger_live_path(1));
    assert_eq!(s1.address().unwrap(), addr(SIM_ADDR1));
}

#[test]
fn ledger_cli_reads_addresses_and_config() {
    let on = SimProcess::start(&[]);
    let off = SimProcess::start(&["--blind-signing", "off"]);
    let sb = Sandbox::new();
    // Independent derivation of the same seed by Foundry's cast.
    for (account, want) in [(0u32, SIM_ADDR0), (1, SIM_ADDR1), (2, SIM_ADDR2)] {
        let path = format!("m/44'/60'/{account}'/0/0");
        let by_cast = cast_offline(&[
            "wallet",
            "address",
            "--mnemonic",
            sim::SPECULOS_SEED,
            "--mnemonic-derivation-path",
            &path,
        ]);
        assert_eq!(by_cast, want, "cast derives {path}");
        let n = account.to_string();
        let r = sb.run(&[
            "--json",
            "ledger",
            "address",
            "--speculos",
            &on.addr,
            "--account",
            &n,
        ]);
        ok(&r, "ledger address --account");
        let j = r.json();
        assert_eq!(j["address"], want);
        assert_eq!(j["path"], path);
        assert!(
            j["device"].as_str().unwrap().contains("SIMULATED LEDGER"),
            "{j}"
        );
        let r = sb.run(&[
            "ledger",
            "address",
            "--speculos",
            &on.addr,
            "--hd-path",
            &path,
        ]);
        ok(&r, "ledger address --hd-path");
        assert!(r.stdout.contains(want), "{}", r.stdout);
    }
    let r = sb.run(&[
        "--json",
        "ledger",
        "address",
        "--speculos",
        &on.addr,
        "--show",
    ]);
    ok(&r, "ledger address --show");
    assert_eq!(r.json()["address"], SIM_ADDR0);
    for (sim, blind, flags) in [(&on, true, 3), (&off, false, 2)] {
        let r = sb.run(&["--json", "ledger", "config", "--speculos", &sim.addr]);
        ok(&r, "ledger config");
        let j = r.json();
        assert_eq!(j["blind_signing"], blind);
        assert_eq!(j["app_version"], "1.22.0");
        assert_eq!(j["flags"], flags);
        assert_eq!(j["full_eip712"], true);
        let r = sb.run(&["ledger", "config", "--speculos", &sim.addr]);
        ok(&r, "ledger config (text)");
        // Issue 16: which settings give which review, in words.
        assert!(
            r.stdout.contains("Raw messages ON") && r.stdout.contains("every SafeTx field"),
            "{}",
            r.stdout
        );
        if !blind {
            assert!(r.stdout.contains("Blind signing"), "{}", r.stdout);
        }
    }
    // A bad path is a usage error.
    let r = sb.run(&[
        "ledger",
        "address",
        "--speculos",
        &on.addr,
        "--hd-path",
        "m/44'/x",
    ]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
}

// ------------------------------------------------------------------ 2. against hw-app-eth

/// An EIP-1559 transaction to 0xd8dA…6045 whose unsigned encoding is exactly `len` bytes.
fn tx_of_len(len: usize) -> TxEip1559 {
    for n in 0..4000 {
        let tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 7,
            gas_limit: 250_000,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: TxKind::Call(addr(VITALIK)),
            value: U256::ZERO,
            access_list: Default::default(),
            input: Bytes::from((0..n).map(|i| (i % 251) as u8 + 1).collect::<Vec<u8>>()),
        };
        if tx.encoded_for_signing().len() == len {
            return tx;
        }
    }
    panic!("no transaction encodes to {len} bytes");
}

/// Records breakglass signing `raw` (an unsigned typed tx) on `path`; checks the chunking and the
/// signature; returns the hw-app-eth case.
fn tx_case(t: &mut TcpTransport, name: &str, path: &HdPath, raw: &[u8], signer: Address) -> Value {
    let apdus = apdu::sign_transaction(path, raw);
    let total = path.encode().len() + raw.len();
    assert_eq!(
        apdus.len(),
        total.div_ceil(apdu::CHUNK),
        "{name}: APDU count for {total} bytes"
    );
    for (i, a) in apdus.iter().enumerate() {
        assert_eq!(a[..4], [0xE0, 0x04, if i == 0 { 0x00 } else { 0x80 }, 0x00]);
        assert_eq!(a[4] as usize, a.len() - 5);
        assert!(a.len() - 5 <= 255);
    }
    let joined: Vec<u8> = apdus.iter().flat_map(|a| a[5..].to_vec()).collect();
    assert_eq!(joined, [path.encode(), raw.to_vec()].concat());
    let pairs = record(t, &apdus);
    for (a, ans) in &pairs[..pairs.len() - 1] {
        assert_eq!(ans, "9000", "{name}: intermediate answer to {a}");
    }
    let last = &pairs.last().unwrap().1;
    assert!(last.ends_with("9000"), "{name}: {last}");
    let sig = apdu::parse_signature(&unhex(&last[..130])).unwrap();
    assert_eq!(
        sig.recover_address_from_prehash(&keccak256(raw)).unwrap(),
        signer,
        "{name}: the simulator's signature"
    );
    json!({
        "name": name,
        "record": record_text(&pairs),
        "calls": [{"method": "signTransaction", "args": [js_path(path), hex(raw), null]}],
        "want": {"r": hex(sig.r().to_be_bytes::<32>()), "s": hex(sig.s().to_be_bytes::<32>())},
    })
}

/// Checks that hw-app-eth parsed the same r/s as breakglass from the same answers.
fn assert_same_signatures(cases: &Value, results: &[Value]) {
    for (c, r) in cases.as_array().unwrap().iter().zip(results) {
        if let Some(want) = c.get("want") {
            if r["ok"] != json!(true) {
                continue;
            }
            let got = &r["results"].as_array().unwrap().last().unwrap()["value"];
            assert_eq!(got["r"], want["r"], "{}: r", c["name"]);
            assert_eq!(got["s"], want["s"], "{}: s", c["name"]);
        }
    }
}

#[test]
fn transaction_and_eip712_apdus_replay_through_hw_app_eth() {
    let sim = InProcSim::blind(true);
    let mut t = sim.connect();
    let path = ledger_live_path(0);
    let legacy = HdPath::parse("m/44'/60'/0'/3").unwrap();
    let legacy_addr = {
        let mut s = LedgerSigner::new(Box::new(sim.connect()), legacy.clone());
        s.address().unwrap()
    };
    let p = path.encode().len();
    assert_eq!(p, 21);
    let mut cases = Vec::new();

    // Addresses (silent and on screen) and the app configuration.
    for (name, display) in [("getAddress", false), ("getAddress on screen", true)] {
        let pairs = record(&mut t, &[apdu::get_public_key(&path, display)]);
        cases.push(json!({
            "name": name,
            "record": record_text(&pairs),
            "calls": [{"method": "getAddress", "args": [js_path(&path), display]}],
        }));
    }
    let pairs = record(&mut t, &[apdu::get_app_configuration()]);
    cases.push(
        json!({"name": "getAppConfiguration", "record": record_text(&pairs),
        "calls": [{"method": "getAppConfiguration", "args": []}]}),
    );

    // Transactions: short, path + tx exactly 255 and 256 bytes, ~1000 bytes of calldata.
    let sim0 = addr(SIM_ADDR0);
    cases.push(tx_case(
        &mut t,
        "short tx (vector)",
        &path,
        &unhex(TX_VECTOR),
        sim0,
    ));
    cases.push(tx_case(
        &mut t,
        "calldata tx",
        &path,
        &unhex(CALLDATA_TX),
        sim0,
    ));
    let exact = tx_of_len(255 - p).encoded_for_signing();
    assert_eq!(p + exact.len(), 255);
    cases.push(tx_case(&mut t, "path+tx = 255 bytes", &path, &exact, sim0));
    let over = tx_of_len(256 - p).encoded_for_signing();
    assert_eq!(p + over.len(), 256);
    cases.push(tx_case(&mut t, "path+tx = 256 bytes", &path, &over, sim0));
    let long = tx_of_len(1050).encoded_for_signing();
    cases.push(tx_case(
        &mut t,
        "tx with ~1000 bytes of calldata",
        &path,
        &long,
        sim0,
    ));
    let two_full = tx_of_len(510 - p).encoded_for_signing();
    cases.push(tx_case(
        &mut t,
        "path+tx = 510 bytes",
        &path,
        &two_full,
        sim0,
    ));
    let exact_legacy = tx_of_len(255 - legacy.encode().len()).encoded_for_signing();
    cases.push(tx_case(
        &mut t,
        "4-level path, path+tx = 255 bytes",
        &legacy,
        &exact_legacy,
        legacy_addr,
    ));

    // EIP-712 hashed: PROTOCOLS.md's pair and a Safe tx's hashes (examples/demo.toml's halt, nonce 0).
    for (name, d, m) in [
        (
            "EIP-712 hashed 11/22",
            B256::repeat_byte(0x11),
            B256::repeat_byte(0x22),
        ),
        (
            "EIP-712 hashed Safe tx",
            "0x14a9515181ac132f860850ba1d5d8a178f20d1ee9218fa07277d736fa86768ba"
                .parse()
                .unwrap(),
            "0x30883fad1b6374e1dbfd4d016d4b7b3e8dbe8fb0a26f642f96509d476dd153b4"
                .parse()
                .unwrap(),
        ),
    ] {
        let pairs = record(&mut t, &[apdu::sign_eip712_hashed(&path, &d, &m)]);
        let ans = &pairs[0].1;
        let sig = apdu::parse_signature(&unhex(&ans[..130])).unwrap();
        assert_eq!(
            sig.recover_address_from_prehash(&eip712_digest(&d, &m))
                .unwrap(),
            sim0
        );
        cases.push(json!({
            "name": name,
            "record": record_text(&pairs),
            "calls": [{"method": "signEIP712HashedMessage", "args": [js_path(&path), hex(d), hex(m)]}],
            "want": {"r": hex(sig.r().to_be_bytes::<32>()), "s": hex(sig.s().to_be_bytes::<32>())},
        }));
    }

    // PROTOCOLS.md's sessions and hw-app-eth's own vector, from tests/fixtures/apdu.
    let p0 = js_path(&path);
    cases.push(json!({
        "name": "fixture ledger-eth-1.22.0-blind-on",
        "record": apdu_fixture("ledger-eth-1.22.0-blind-on.apdus"),
        "calls": [
            {"method": "getAddress", "args": [p0, false]},
            {"method": "getAppConfiguration", "args": []},
            {"method": "signTransaction", "args": [p0, TX_VECTOR, null]},
            {"method": "signEIP712HashedMessage", "args": [p0, "11".repeat(32), "22".repeat(32)]},
        ],
        "want": {"r": EIP712_R, "s": EIP712_S},
    }));
    let eleven = format!("0b{}", "8000002c".repeat(11));
    cases.push(json!({
        "name": "fixture ledger-eth-1.22.0-blind-off",
        "record": apdu_fixture("ledger-eth-1.22.0-blind-off.apdus"),
        "calls": [
            {"method": "getAddress", "args": [p0, false]},
            {"method": "getAppConfiguration", "args": []},
            {"method": "signTransaction", "args": [p0, TX_VECTOR, null]},
            {"method": "signEIP712HashedMessage", "args": [p0, "11".repeat(32), "22".repeat(32)], "status": 0x6a80},
            {"method": "signTransaction", "args": [p0, CALLDATA_TX, null], "status": 0x6a80},
            {"method": "send", "args": [0xe0, 0x42, 0, 0, ""], "status": 0x6d00},
            {"method": "send", "args": [0xe0, 0x02, 0, 0, "00"], "status": 0x6a80},
            {"method": "send", "args": [0xe0, 0x02, 0, 0, eleven], "status": 0x6a80},
        ],
    }));
    cases.push(json!({
        "name": "fixture hw-app-eth-reference",
        "record": apdu_fixture("hw-app-eth-reference.apdus"),
        "calls": [{"method": "signTransaction", "args": [p0, REF_TX, null]}],
        "want": {"r": "339a8118c0329e403415129205d1d019e5fc5c95bc746b7e9e6efde3ddebfc11",
                 "s": "07c0393a6bba61a6f3eabc9a1d8298820fd0316436b49b0bc4082bfab81531e3"},
    }));

    // Negative controls: one byte changed in the last chunk of the long tx, one chunk boundary moved.
    let long_case = cases
        .iter()
        .find(|c| c["name"] == "tx with ~1000 bytes of calldata")
        .unwrap()
        .clone();
    let mut pairs = session(long_case["record"].as_str().unwrap());
    let last = pairs.len() - 1;
    let a = &mut pairs[last].0;
    let flip = if a.ends_with('0') { "1" } else { "0" };
    a.replace_range(a.len() - 1.., flip);
    cases.push(
        json!({"name": "control: altered byte", "record": record_text(&pairs),
        "calls": long_case["calls"].clone()}),
    );
    let raw = unhex(long_case["calls"][0]["args"][1].as_str().unwrap());
    let payload = [path.encode(), raw].concat();
    let moved: Vec<(String, String)> = payload
        .chunks(250)
        .enumerate()
        .map(|(i, c)| {
            let mut a = vec![0xE0, 0x04, if i == 0 { 0 } else { 0x80 }, 0, c.len() as u8];
            a.extend_from_slice(c);
            (hex(a), "9000".to_string())
        })
        .collect();
    cases.push(
        json!({"name": "control: 250-byte chunks", "record": record_text(&moved),
        "calls": long_case["calls"].clone()}),
    );

    let cases = Value::Array(cases);
    let results = hw_app_eth(&cases);
    assert_replayed(
        &cases,
        &results,
        &["control: altered byte", "control: 250-byte chunks"],
    );
    assert_same_signatures(&cases, &results);
    // hw-app-eth read the same address and configuration.
    let by_name = |n: &str| {
        results
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("no result {n}"))
            .clone()
    };
    for n in ["getAddress", "getAddress on screen"] {
        let a = by_name(n)["results"][0]["value"]["address"].clone();
        assert_eq!(a.as_str().map(addr), Some(sim0), "{n}: {a}");
    }
    let cfg = by_name("getAppConfiguration")["results"][0]["value"].clone();
    assert_eq!(cfg["arbitraryDataEnabled"], 1, "{cfg}");
    assert_eq!(cfg["version"], "1.22.0", "{cfg}");
    let fx = by_name("fixture ledger-eth-1.22.0-blind-on");
    assert_eq!(
        fx["results"][2]["value"],
        json!({"v": "01", "r": TX_R, "s": TX_S}),
        "hw-app-eth's reading of the PROTOCOLS.md tx vector"
    );
    assert_eq!(fx["results"][3]["value"]["v"], 27);
}

#[test]
fn personal_message_apdus_replay_through_hw_app_eth() {
    let sim = InProcSim::blind(true);
    let mut t = sim.connect();
    let path = ledger_live_path(0);
    let approval = ApprovalRequest::new(&B256::repeat_byte(0x5a));
    let long: Vec<u8> =
        "breakglass drill: the guardians of Acme Lending confirm the incident runbook. "
            .repeat(4)
            .into_bytes()[..300]
            .to_vec();
    let mut cases = Vec::new();
    for (name, msg) in [
        ("approval text", approval.text().as_bytes().to_vec()),
        ("300-byte message", long),
    ] {
        let apdus = apdu::sign_personal_message(&path, &msg);
        let pairs = record(&mut t, &apdus);
        let last = &pairs.last().unwrap().1;
        let sig = apdu::parse_signature(&unhex(&last[..130])).unwrap();
        assert_eq!(
            sig.recover_address_from_msg(&msg).unwrap(),
            addr(SIM_ADDR0),
            "{name}"
        );
        cases.push(json!({
            "name": name,
            "record": record_text(&pairs),
            "calls": [{"method": "signPersonalMessage", "args": [js_path(&path), hex(&msg)]}],
            "want": {"r": hex(sig.r().to_be_bytes::<32>()), "s": hex(sig.s().to_be_bytes::<32>())},
        }));
    }
    let cases = Value::Array(cases);
    let results = hw_app_eth(&cases);
    // Whatever hw-app-eth sends (its own chunking, captured), the simulator signs the same message.
    for (c, r) in cases.as_array().unwrap().iter().zip(&results) {
        let msg = unhex(c["calls"][0]["args"][1].as_str().unwrap());
        let sent: Vec<Vec<u8>> = r["sent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| unhex(a.as_str().unwrap()))
            .collect();
        assert!(!sent.is_empty(), "{}: hw-app-eth sent nothing", c["name"]);
        let pairs = record(&mut t, &sent);
        let last = &pairs.last().unwrap().1;
        assert!(
            last.ends_with("9000") && last.len() == 134,
            "{}: {last}",
            c["name"]
        );
        let sig = apdu::parse_signature(&unhex(&last[..130])).unwrap();
        assert_eq!(
            sig.recover_address_from_msg(&msg).unwrap(),
            addr(SIM_ADDR0),
            "{}: the simulator with hw-app-eth's chunks",
            c["name"]
        );
    }
    assert_replayed(&cases, &results, &[]);
    assert_same_signatures(&cases, &results);
}

// ------------------------------------------------------------------ 3. errors

#[test]
fn status_words_map_to_actionable_errors() {
    let cases: &[(u16, &str, &str)] = &[
        (0x6985, "Rejected", "rejected on the device"),
        (0x6a80, "BlindSigningOrInvalid", "enable blind signing"),
        (0x6982, "Locked", "unlock"),
        (0x5515, "Locked", "unlock"),
        (0x6d00, "AppNotOpen", "open the Ethereum app"),
        (0x6e00, "AppNotOpen", "open the Ethereum app"),
        (0x6e01, "AppNotOpen", "open the Ethereum app"),
        (0x6d02, "AppNotOpen", "open the Ethereum app"),
        (0x650f, "AppNotOpen", "open the Ethereum app"),
        (0x5501, "AppNotOpen", "open the Ethereum app"),
        (0x6983, "Status", "update the Ethereum app"),
        (0x6b00, "Status", "update the Ethereum app"),
        (0x6f00, "Status", "report this"),
    ];
    for &(sw, variant, phrase) in cases {
        let mut answer = vec![0xAA, 0xBB];
        answer.extend_from_slice(&sw.to_be_bytes());
        let e = apdu::check_status(&answer, "a Safe transaction (hashed EIP-712)").unwrap_err();
        let got = match &e {
            LedgerError::Rejected => "Rejected",
            LedgerError::BlindSigningOrInvalid { what } => {
                assert_eq!(what, "a Safe transaction (hashed EIP-712)");
                "BlindSigningOrInvalid"
            }
            LedgerError::Locked => "Locked",
            LedgerError::AppNotOpen { sw: s, .. } => {
                assert_eq!(*s, sw);
                "AppNotOpen"
            }
            LedgerError::Status { sw: s, .. } => {
                assert_eq!(*s, sw);
                "Status"
            }
            LedgerError::ShortResponse { .. } => "ShortResponse",
            LedgerError::Malformed(_) => "Malformed",
            LedgerError::TypedDataRefused => "TypedDataRefused",
            LedgerError::NoFullEip712 { .. } => "NoFullEip712",
        };
        assert_eq!(got, variant, "{sw:#06x}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.to_lowercase().contains(&phrase.to_lowercase()),
            "{sw:#06x}: {msg:?} lacks {phrase:?}"
        );
        if variant == "BlindSigningOrInvalid" {
            assert!(msg.contains("a Safe transaction (hashed EIP-712)"), "{msg}");
        }
        if matches!(variant, "AppNotOpen" | "Status") {
            assert!(msg.contains(&format!("{sw:#06x}")), "{msg} names {sw:#06x}");
        }
    }
    assert_eq!(
        apdu::check_status(&[1, 2, 0x90, 0x00], "").unwrap(),
        vec![1, 2]
    );
    assert!(matches!(
        apdu::check_status(&[0x90], ""),
        Err(LedgerError::ShortResponse { got: 1, .. })
    ));
    assert!(matches!(
        apdu::parse_signature(&[0u8; 64]),
        Err(LedgerError::ShortResponse { .. })
    ));
    let mut bad_v = vec![5u8];
    bad_v.extend_from_slice(&[1u8; 64]);
    assert!(matches!(
        apdu::parse_signature(&bad_v),
        Err(LedgerError::Malformed(_))
    ));
    // A GET_PUBLIC_KEY answer whose address is not the key's is refused.
    let on = InProcSim::blind(true);
    let mut tr = on.connect();
    let mut data = apdu::check_status(
        &tr.exchange(&apdu::get_public_key(&ledger_live_path(0), false))
            .unwrap(),
        "",
    )
    .unwrap();
    data[70] = if data[70] == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        apdu::parse_public_key(&data),
        Err(LedgerError::Malformed(_))
    ));
}

/// A sandbox with examples/demo.toml as m.toml, a halt bundle (h.json) and an EOA bundle (g.json) from
/// the simulator's account 0; returns the sandbox and the manifest's pin.
fn demo_sandbox() -> (Sandbox, String) {
    let sb = Sandbox::new();
    sb.write(
        "m.toml",
        std::fs::read(repo().join("examples/demo.toml")).unwrap(),
    );
    let r = sb.run(&["--manifest", "m.toml", "manifest", "hash"]);
    ok(&r, "manifest hash");
    let pin = r.stdout.trim().to_string();
    assert!(pin.starts_with("0x") && pin.len() == 66, "{pin}");
    ok(
        &sb.run(&[
            "--manifest",
            "m.toml",
            "compose",
            "halt",
            "--nonce",
            "0",
            "-o",
            "h.json",
        ]),
        "compose halt",
    );
    ok(
        &sb.run(&[
            "--manifest",
            "m.toml",
            "compose",
            "guardian-halt",
            "--from",
            SIM_ADDR0,
            "--nonce",
            "0",
            "--gas-limit",
            "60000",
            "--max-fee",
            "30000000000",
            "--priority-fee",
            "1000000000",
            "-o",
            "g.json",
        ]),
        "compose guardian-halt",
    );
    (sb, pin)
}

fn sign_run(sb: &Sandbox, pin: Option<&str>, bundle: &str, signer: &[&str], out: &str) -> Run {
    let mut a = vec!["--manifest", "m.toml"];
    if let Some(p) = pin {
        a.extend_from_slice(&["--pin", p]);
    }
    a.extend_from_slice(&["sign", bundle]);
    a.extend_from_slice(signer);
    a.extend_from_slice(&["-o", out]);
    sb.run(&a)
}

fn assert_refused(r: &Run, code: i32, phrases: &[&str], sb: &Sandbox, out: &str, what: &str) {
    assert_eq!(
        r.code, code,
        "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    for p in phrases {
        assert!(
            r.stderr.to_lowercase().contains(&p.to_lowercase()),
            "{what}: stderr lacks {p:?}:\n{}",
            r.stderr
        );
    }
    assert!(
        !sb.path(out).exists(),
        "{what}: {out} was written although nothing was signed"
    );
}

#[test]
fn sign_cli_exits_4_and_writes_nothing_when_the_device_says_no() {
    let (sb, pin_hash) = demo_sandbox();
    let pin = Some(pin_hash.as_str());

    let reject = SimProcess::start(&["--mode", "reject"]);
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &reject.addr],
        "out.json",
    );
    assert_refused(
        &r,
        4,
        &["rejected on the device"],
        &sb,
        "out.json",
        "reject (Safe)",
    );
    let r = sign_run(
        &sb,
        pin,
        "g.json",
        &["--speculos", &reject.addr],
        "out.json",
    );
    assert_refused(
        &r,
        4,
        &["rejected on the device"],
        &sb,
        "out.json",
        "reject (EOA)",
    );
    // The same in JSON: a stable kind and exit code.
    let mut a = vec!["--json", "--manifest", "m.toml", "--pin", &pin_hash];
    a.extend_from_slice(&[
        "sign",
        "h.json",
        "--speculos",
        &reject.addr,
        "-o",
        "out.json",
    ]);
    let r = sb.run(&a);
    assert_eq!(r.code, 4, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["exit_code"], 4);
    assert_eq!(j["error"]["kind"], "rejected");
    assert!(!sb.path("out.json").exists());
    drop(reject);

    let locked = SimProcess::start(&["--mode", "locked"]);
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &locked.addr],
        "out.json",
    );
    assert_refused(&r, 4, &["unlock"], &sb, "out.json", "locked");
    drop(locked);

    let dashboard = SimProcess::start(&["--mode", "dashboard"]);
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &dashboard.addr],
        "out.json",
    );
    assert_refused(
        &r,
        4,
        &["open the Ethereum app"],
        &sb,
        "out.json",
        "dashboard",
    );
    drop(dashboard);

    let blind_off = SimProcess::start(&["--blind-signing", "off"]);
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &blind_off.addr],
        "out.json",
    );
    assert_refused(
        &r,
        4,
        &["blind signing", "Safe transaction"],
        &sb,
        "out.json",
        "blind signing off (Safe)",
    );
    let r = sign_run(
        &sb,
        pin,
        "g.json",
        &["--speculos", &blind_off.addr],
        "out.json",
    );
    assert_refused(
        &r,
        4,
        &["blind signing", "calldata"],
        &sb,
        "out.json",
        "blind signing off (EOA with calldata)",
    );
    drop(blind_off);

    // Nothing listening: a port that was just free.
    let free = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let r = sign_run(&sb, pin, "h.json", &["--speculos", &free], "out.json");
    assert_refused(
        &r,
        4,
        &["device-sim", "Speculos"],
        &sb,
        "out.json",
        "no simulator",
    );

    // A device account that is not an owner of the Safe, or not the EOA's sender.
    let approve = InProcSim::blind(true);
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &approve.addr, "--account", "5"],
        "out.json",
    );
    assert_refused(
        &r,
        4,
        &["not an owner"],
        &sb,
        "out.json",
        "account 5 (Safe)",
    );
    let r = sign_run(
        &sb,
        pin,
        "g.json",
        &["--speculos", &approve.addr, "--account", "1"],
        "out.json",
    );
    assert_refused(&r, 4, &["sender"], &sb, "out.json", "account 1 (EOA)");

    // Untrusted manifest: refused before touching the device (exit 3).
    let r = sign_run(
        &sb,
        None,
        "h.json",
        &["--speculos", &approve.addr],
        "out.json",
    );
    assert_refused(&r, 3, &["untrusted"], &sb, "out.json", "no pin");
    let wrong_pin = format!("0x{}", "00".repeat(32));
    let r = sign_run(
        &sb,
        Some(&wrong_pin),
        "h.json",
        &["--speculos", &approve.addr],
        "out.json",
    );
    assert_refused(&r, 3, &["not the"], &sb, "out.json", "wrong pin");

    // And the approving device signs; signing again with the same account is refused.
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &approve.addr],
        "s1.json",
    );
    ok(&r, "sign with the simulator");
    let r = sign_run(
        &sb,
        pin,
        "s1.json",
        &["--speculos", &approve.addr],
        "s2.json",
    );
    assert_refused(
        &r,
        4,
        &["already signed"],
        &sb,
        "s2.json",
        "second signature by the same account",
    );
    // An existing output is not replaced without --force.
    let r = sign_run(
        &sb,
        pin,
        "h.json",
        &["--speculos", &approve.addr, "--account", "1"],
        "s1.json",
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    let b = read_json(&sb.path("s1.json"));
    assert_eq!(b["signatures"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------------ 4. keystores

/// `cast wallet new DIR --unsafe-password PW --json` → (address, keystore file).
fn cast_wallet_new(dir: &Path, password: &str) -> (Address, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let out = cast_offline(&[
        "wallet",
        "new",
        dir.to_str().unwrap(),
        "--unsafe-password",
        password,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("cast wallet new --json ({e}): {out}"));
    let w = &v[0];
    (
        addr(w["address"].as_str().unwrap()),
        PathBuf::from(w["path"].as_str().unwrap()),
    )
}

/// `cast wallet import NAME --private-key K --unsafe-password PW --keystore-dir DIR` → keystore file.
fn cast_wallet_import(dir: &Path, name: &str, key: &str, password: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    cast_offline(&[
        "wallet",
        "import",
        name,
        "--private-key",
        key,
        "--unsafe-password",
        password,
        "--keystore-dir",
        dir.to_str().unwrap(),
    ]);
    dir.join(name)
}

/// A manifest like examples/demo.toml's halt, for `safe` with these owners (threshold 2); `eoa_pool`
/// adds a guardian pool and the guardian-halt playbook.
fn manifest_for(
    safe: &str,
    owners: &[&str],
    pool: &str,
    pool_admin: &str,
    eoa_pool: Option<(&str, &str)>,
) -> String {
    let abi = r#"abi = [
  "function pause()",
  "function unpause()",
  "function paused() view returns (bool)",
]"#;
    let owners: Vec<String> = owners.iter().map(|o| format!("\"{o}\"")).collect();
    let mut m = format!(
        r#"version = 1
name = "Signer test"
chain_id = {CHAIN_ID}

[safe]
address = "{safe}"
version = "1.4.1"
owners = [{owners}]
threshold = 2

[contracts.pool]
address = "{pool}"
proxy = "transparent"
proxy_admin = "{pool_admin}"
{abi}
"#,
        owners = owners.join(", ")
    );
    if let Some((g, ga)) = eoa_pool {
        m.push_str(&format!(
            r#"
[contracts.gpool]
address = "{g}"
proxy = "transparent"
proxy_admin = "{ga}"
{abi}
"#
        ));
    }
    m.push_str(
        r#"
[[actions]]
id = "pause-pool"
title = "Pause the lending pool"
contract = "pool"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[playbooks]]
id = "halt"
title = "Halt the pool"
actions = ["pause-pool"]
"#,
    );
    if eoa_pool.is_some() {
        m.push_str(
            r#"
[[actions]]
id = "guardian-pause-pool"
title = "Pause the guardian's pool from the guardian EOA"
contract = "gpool"
function = "pause()"
via = "eoa"
expect = ["paused() == true"]

[[playbooks]]
id = "guardian-halt"
title = "Pause the guardian's pool"
actions = ["guardian-pause-pool"]
"#,
        );
    }
    m
}

fn manifest_pin(sb: &Sandbox) -> String {
    let r = sb.run(&["--manifest", "m.toml", "manifest", "hash"]);
    ok(&r, "manifest hash");
    r.stdout.trim().to_string()
}

/// Every file under `dir` (recursively), except those under `skip`.
fn files_under(dir: &Path, skip: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if skip.iter().any(|s| p.starts_with(s)) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn assert_no_secret(haystack: &str, secrets: &[&str], where_: &str) {
    let h = haystack.to_lowercase();
    for s in secrets {
        assert!(
            !h.contains(&s.to_lowercase()),
            "a secret ({}…) appears in {where_}",
            &s[..4.min(s.len())]
        );
    }
}

#[test]
fn keystores_from_cast_sign_safe_bundles_without_leaking_secrets() {
    let sb = Sandbox::new();
    let ks = sb.path("keystores");
    let pw_new = "correct horse battery staple 7f3a";
    let pw_imp = "Tr0ub4dor&3-imported";
    let (new_addr, new_file) = cast_wallet_new(&ks, pw_new);
    let imp_key = DEFAULT_KEYS[6];
    let imp_file = cast_wallet_import(&ks, "guardian", imp_key, pw_imp);
    let imp_addr = addr(DEFAULT_ADDRESSES[6]);
    let new_key = {
        let out = cast_offline(&[
            "wallet",
            "decrypt-keystore",
            new_file.file_name().unwrap().to_str().unwrap(),
            "--keystore-dir",
            ks.to_str().unwrap(),
            "--unsafe-password",
            pw_new,
        ]);
        out.rsplit(' ').next().unwrap().trim().to_string()
    };
    assert!(
        new_key.starts_with("0x") && new_key.len() == 66,
        "cast wallet decrypt-keystore did not print a 32-byte key (not shown)"
    );

    let owners = [
        new_addr.to_checksum(None),
        imp_addr.to_checksum(None),
        DEFAULT_ADDRESSES[3].to_string(),
    ];
    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
    sb.write(
        "m.toml",
        manifest_for(
            "0x5AFe00000000000000000000000000000000a11C",
            &owners,
            "0xb001000000000000000000000000000000000001",
            "0xAD00000000000000000000000000000000000001",
            None,
        ),
    );
    let pin = manifest_pin(&sb);
    ok(
        &sb.run(&[
            "--manifest",
            "m.toml",
            "compose",
            "halt",
            "--nonce",
            "0",
            "-o",
            "h.json",
        ]),
        "compose halt",
    );
    let pwf_new = sb.write("pw-new.txt", format!("{pw_new}\n"));
    let pwf_imp = sb.write("pw-imp.txt", pw_imp);
    let pwf_bad = sb.write("pw-bad.txt", "not the password\n");
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let mut runs = Vec::new();
    // Wrong password: exit 4, "wrong password", nothing written.
    let r = sign_run(
        &sb,
        Some(&pin),
        "h.json",
        &["--keystore", &s(&new_file), "--password-file", &s(&pwf_bad)],
        "s1.json",
    );
    assert_refused(&r, 4, &["wrong password"], &sb, "s1.json", "wrong password");
    runs.push(r);

    // The new keystore signs; the signature recovers to its address over the safeTxHash.
    let r = sign_run(
        &sb,
        Some(&pin),
        "h.json",
        &["--keystore", &s(&new_file), "--password-file", &s(&pwf_new)],
        "s1.json",
    );
    ok(&r, "sign with the new keystore");
    runs.push(r);
    let b1 = read_json(&sb.path("s1.json"));
    let hash: B256 = b1["safe_tx"]["hashes"]["safe_tx_hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sigs = b1["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(addr(sigs[0]["signer"].as_str().unwrap()), new_addr);
    assert_eq!(sigs[0]["kind"], "eip712");
    let raw = unhex(sigs[0]["signature"].as_str().unwrap());
    assert!(raw[64] == 27 || raw[64] == 28, "v must be 27/28");
    assert_eq!(
        sig_from_rsv(&raw)
            .recover_address_from_prehash(&hash)
            .unwrap(),
        new_addr
    );
    assert!(
        sigs[0]["device"]
            .as_str()
            .unwrap_or("")
            .contains("keystore"),
        "{}",
        sigs[0]
    );

    // The imported keystore adds the second signature (JSON output); the list stays sorted by owner.
    let mut a = vec![
        "--json",
        "--manifest",
        "m.toml",
        "--pin",
        &pin,
        "sign",
        "s1.json",
    ];
    let (kf, pf) = (s(&imp_file), s(&pwf_imp));
    a.extend_from_slice(&["--keystore", &kf, "--password-file", &pf, "-o", "s2.json"]);
    let r = sb.run(&a);
    ok(&r, "sign with the imported keystore");
    let j = r.json();
    assert_eq!(j["signatures"], 2);
    assert_eq!(j["threshold"], 2);
    assert_eq!(addr(j["signer"].as_str().unwrap()), imp_addr);
    runs.push(r);
    let b2 = read_json(&sb.path("s2.json"));
    let sigs = b2["signatures"].as_array().unwrap();
    let signers: Vec<Address> = sigs
        .iter()
        .map(|x| addr(x["signer"].as_str().unwrap()))
        .collect();
    let mut sorted = signers.clone();
    sorted.sort();
    assert_eq!(signers, sorted);
    for x in sigs {
        let got = sig_from_rsv(&unhex(x["signature"].as_str().unwrap()))
            .recover_address_from_prehash(&hash)
            .unwrap();
        assert_eq!(got, addr(x["signer"].as_str().unwrap()));
    }
    // The same signature as an independent implementation (cast wallet sign --no-hash; RFC 6979).
    let by_cast = cast_offline(&[
        "wallet",
        "sign",
        "--no-hash",
        "--private-key",
        imp_key,
        &format!("{hash:#x}"),
    ]);
    let ours = sigs
        .iter()
        .find(|x| addr(x["signer"].as_str().unwrap()) == imp_addr)
        .unwrap()["signature"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert_eq!(
        ours,
        by_cast.to_lowercase(),
        "keystore signature vs cast wallet sign"
    );

    // An EOA keystore that is not an owner is refused before signing.
    let (_, stranger) = cast_wallet_new(&sb.path("other"), pw_new);
    let r = sign_run(
        &sb,
        Some(&pin),
        "h.json",
        &["--keystore", &s(&stranger), "--password-file", &s(&pwf_new)],
        "s3.json",
    );
    assert_refused(
        &r,
        4,
        &["not an owner"],
        &sb,
        "s3.json",
        "keystore not an owner",
    );
    runs.push(r);
    // Not a keystore.
    let r = sign_run(
        &sb,
        Some(&pin),
        "h.json",
        &["--keystore", "m.toml", "--password-file", &s(&pwf_new)],
        "s3.json",
    );
    assert_refused(&r, 4, &[], &sb, "s3.json", "not a keystore");
    runs.push(r);

    // No secret anywhere: terminal output, bundles, audit log, config.
    let k_new = new_key.trim_start_matches("0x").to_string();
    let k_imp = imp_key.trim_start_matches("0x").to_string();
    let secrets = [pw_new, pw_imp, k_new.as_str(), k_imp.as_str()];
    for (i, r) in runs.iter().enumerate() {
        assert_no_secret(&r.stdout, &secrets, &format!("stdout of run {i}"));
        assert_no_secret(&r.stderr, &secrets, &format!("stderr of run {i}"));
    }
    let skip = [
        ks.clone(),
        sb.path("other"),
        pwf_new.clone(),
        pwf_imp.clone(),
        pwf_bad.clone(),
    ];
    let files = files_under(sb.dir.path(), &skip);
    assert!(files.iter().any(|f| f.ends_with("s2.json")));
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert_no_secret(&text, &secrets, &f.display().to_string());
    }
}

// ------------------------------------------------------------------ 5. the real Safe accepts them

fn safe_tx_args(s: &Value) -> Vec<String> {
    let op = match s["operation"].as_str() {
        Some("call") => "0",
        Some("delegatecall") => "1",
        other => panic!("operation {other:?}"),
    };
    vec![
        s["to"].as_str().unwrap().to_string(),
        parse_u256(&s["value"]).to_string(),
        s["data"].as_str().unwrap().to_string(),
        op.to_string(),
        parse_u256(&s["safe_tx_gas"]).to_string(),
        parse_u256(&s["base_gas"]).to_string(),
        parse_u256(&s["gas_price"]).to_string(),
        s["gas_token"].as_str().unwrap().to_string(),
        s["refund_receiver"].as_str().unwrap().to_string(),
        parse_u256(&s["nonce"]).to_string(),
    ]
}

fn packed_signatures(b: &Value) -> String {
    let mut out = String::from("0x");
    let mut last = Address::ZERO;
    for x in b["signatures"].as_array().unwrap() {
        let a = addr(x["signer"].as_str().unwrap());
        assert!(a > last, "signatures must be sorted by owner");
        last = a;
        out.push_str(x["signature"].as_str().unwrap().trim_start_matches("0x"));
    }
    out
}

fn paused(anvil: &Anvil, pool: &str) -> bool {
    match anvil.call(pool, "paused()(bool)", &[]).as_str() {
        "true" => true,
        "false" => false,
        other => panic!("paused() on {pool}: {other}"),
    }
}

#[test]
fn real_safe_accepts_simulator_and_keystore_signatures() {
    let anvil = Anvil::start();
    let sb = Sandbox::new();
    let pw = "anvil keystore pw";
    let (ks_addr, ks_file) = cast_wallet_new(&sb.path("ks"), pw);
    let pwf = sb.write("pw.txt", format!("{pw}\n"));
    let ks_owner = ks_addr.to_checksum(None);
    let owners = [SIM_ADDR0, ks_owner.as_str(), DEFAULT_ADDRESSES[1]];
    let safe = anvil.deploy_safe(&owners, 2);
    let (pool, pool_admin, _) = anvil.deploy_pausable_transparent(&safe);
    let (gpool, gpool_admin, _) = anvil.deploy_pausable_transparent(SIM_ADDR0);
    sb.write(
        "m.toml",
        manifest_for(
            &safe,
            &owners,
            &pool,
            &pool_admin,
            Some((&gpool, &gpool_admin)),
        ),
    );
    let pin = manifest_pin(&sb);
    let sim = InProcSim::blind(true);

    // Safe: compose, sign with the simulator and the keystore.
    ok(
        &sb.run(&[
            "--manifest",
            "m.toml",
            "compose",
            "halt",
            "--nonce",
            "0",
            "-o",
            "h.json",
        ]),
        "compose halt",
    );
    ok(
        &sign_run(
            &sb,
            Some(&pin),
            "h.json",
            &["--speculos", &sim.addr],
            "s1.json",
        ),
        "sign (simulator)",
    );
    let r = sign_run(
        &sb,
        Some(&pin),
        "s1.json",
        &[
            "--keystore",
            ks_file.to_str().unwrap(),
            "--password-file",
            pwf.to_str().unwrap(),
        ],
        "s2.json",
    );
    ok(&r, "sign (keystore)");
    let b = read_json(&sb.path("s2.json"));
    let s = &b["safe_tx"];
    let args = safe_tx_args(s);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let hash = s["hashes"]["safe_tx_hash"].as_str().unwrap();
    let real_hash = anvil.call(
        &safe,
        "getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256)(bytes32)",
        &a,
    );
    assert_eq!(
        real_hash.to_lowercase(),
        hash.to_lowercase(),
        "safeTxHash vs the Safe"
    );
    let tx_data = anvil.call(
        &safe,
        "encodeTransactionData(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256)(bytes)",
        &a,
    );
    let sigs = packed_signatures(&b);
    assert_eq!(sigs.len(), 2 + 2 * 65 * 2);
    // checkSignatures must not revert with both; it must with one, or with the order swapped.
    anvil
        .cast_try(&[
            "call",
            &safe,
            "checkSignatures(bytes32,bytes,bytes)",
            hash,
            &tx_data,
            &sigs,
        ])
        .unwrap_or_else(|e| panic!("checkSignatures reverted: {e}"));
    let one = &sigs[..2 + 130];
    assert!(
        anvil
            .cast_try(&[
                "call",
                &safe,
                "checkSignatures(bytes32,bytes,bytes)",
                hash,
                &tx_data,
                one
            ])
            .is_err(),
        "one signature must not satisfy a 2-of-3 Safe"
    );
    let swapped = format!("0x{}{}", &sigs[132..], &sigs[2..132]);
    assert!(
        anvil
            .cast_try(&[
                "call",
                &safe,
                "checkSignatures(bytes32,bytes,bytes)",
                hash,
                &tx_data,
                &swapped
            ])
            .is_err(),
        "unsorted signatures must be refused"
    );
    // execTransaction by a non-owner: the pool is paused.
    assert!(!paused(&anvil, &pool));
    let mut exec: Vec<&str> = a[..9].to_vec();
    exec.push(&sigs);
    anvil.send(
        DEFAULT_KEYS[9],
        &safe,
        "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
        &exec,
    );
    assert!(
        paused(&anvil, &pool),
        "the Safe transaction did not pause the pool"
    );
    assert_eq!(anvil.call_u128(&safe, "nonce()(uint256)", &[]), 1);

    // EOA: the simulator's account 0 owns the guardian pool; its signed tx is mined as is.
    anvil.set_balance(SIM_ADDR0, 10_000_000_000_000_000_000);
    let nonce = anvil.cast(&["nonce", SIM_ADDR0]);
    ok(
        &sb.run(&[
            "--manifest",
            "m.toml",
            "compose",
            "guardian-halt",
            "--from",
            SIM_ADDR0,
            "--nonce",
            &nonce,
            "--gas-limit",
            "120000",
            "--max-fee",
            "30000000000",
            "--priority-fee",
            "1000000000",
            "-o",
            "g.json",
        ]),
        "compose guardian-halt",
    );
    ok(
        &sign_run(
            &sb,
            Some(&pin),
            "g.json",
            &["--speculos", &sim.addr],
            "gs.json",
        ),
        "sign EOA (simulator)",
    );
    let g = read_json(&sb.path("gs.json"));
    let raw = g["signed_tx"]["raw"].as_str().unwrap();
    let tx_hash = g["signed_tx"]["hash"].as_str().unwrap();
    assert!(raw.starts_with("0x02"), "{raw}");
    assert_eq!(
        format!("{:#x}", keccak256(unhex(raw))),
        tx_hash.to_lowercase()
    );
    assert!(!paused(&anvil, &gpool));
    anvil.cast(&["publish", raw]);
    let receipt = anvil.rpc("eth_getTransactionReceipt", json!([tx_hash]));
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(
        addr(receipt["from"].as_str().unwrap()),
        addr(SIM_ADDR0),
        "{receipt}"
    );
    assert!(
        paused(&anvil, &gpool),
        "the guardian's tx did not pause its pool"
    );
}

// ------------------------------------------------------------------ 6. host-side overhead

#[test]
fn host_overhead_per_signature() {
    let (sb, pin) = demo_sandbox();
    let sim = InProcSim::blind(true);
    const N: usize = 5;

    // Whole `sign` processes (parse, verify, connect, check the app, address, sign, recover, write).
    let mut per_process = Vec::new();
    for (bundle, label) in [("h.json", "Safe"), ("g.json", "EOA")] {
        let mut times = Vec::new();
        for i in 0..N {
            let out = format!("t-{label}-{i}.json");
            let t0 = Instant::now();
            let r = sign_run(&sb, Some(&pin), bundle, &["--speculos", &sim.addr], &out);
            times.push(t0.elapsed());
            ok(&r, "timed sign");
        }
        per_process.push((label, times));
    }

    // In process: the same request through the public API, one connection.
    let m = breakglass::manifest::Manifest::load(&sb.path("m.toml")).unwrap();
    let explicit = breakglass::manifest::trust::parse_pin(&pin, "--pin").unwrap();
    let trust = breakglass::manifest::trust::evaluate(&m, Some(&explicit)).unwrap();
    let mut in_proc = Vec::new();
    for (bundle, label) in [("h.json", "Safe"), ("g.json", "EOA")] {
        let t0 = Instant::now();
        let b = breakglass::bundle::Bundle::read(&sb.path(bundle)).unwrap();
        let v = breakglass::bundle::verify_bundle(&m, &b).unwrap();
        let req = SigningRequest::new(&v, &trust).unwrap();
        let prepare = t0.elapsed();
        let t1 = Instant::now();
        let mut s = LedgerSigner::new(Box::new(sim.connect()), ledger_live_path(0));
        let address = s.address().unwrap();
        let open = t1.elapsed();
        let mut times = Vec::new();
        for _ in 0..N * 4 {
            let t = Instant::now();
            breakglass::signer::sign_request(&mut s, &req, address).unwrap();
            times.push(t.elapsed());
        }
        in_proc.push((label, prepare, open, times));
    }

    // For scale: the simulator's own work per request (key derivation from the seed, RFC 6979), no TCP.
    let mut app = sim::SimApp::new(SimConfig::default());
    let eip712 = apdu::sign_eip712_hashed(
        &ledger_live_path(0),
        &B256::repeat_byte(0x11),
        &B256::repeat_byte(0x22),
    );
    let mut sim_times = Vec::new();
    for _ in 0..N * 4 {
        let t = Instant::now();
        let ans = app.handle(&eip712);
        sim_times.push(t.elapsed());
        assert_eq!(hex(&ans[65..]), "9000");
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let stats = |v: &[Duration]| {
        let mut s: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (s[0], s[s.len() / 2], s[s.len() - 1])
    };
    println!(
        "host-side overhead per signature ({} build, simulator in process over TCP):",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for (label, times) in &per_process {
        let (min, med, max) = stats(times);
        println!("  `breakglass sign` process, {label} bundle: min {min:.1} ms, median {med:.1} ms, max {max:.1} ms ({N} runs)");
    }
    for (label, prepare, open, times) in &in_proc {
        let (min, med, max) = stats(times);
        println!(
            "  in process, {label}: read+verify+request {:.2} ms; connect+app check+address {:.2} ms; sign_request min {min:.2} ms, median {med:.2} ms, max {max:.2} ms ({} runs)",
            ms(*prepare),
            ms(*open),
            times.len()
        );
    }
    let (min, med, max) = stats(&sim_times);
    println!(
        "  of which the simulator itself (SimApp::handle, EIP-712, no TCP): min {min:.2} ms, median {med:.2} ms, max {max:.2} ms ({} runs)",
        sim_times.len()
    );
}
