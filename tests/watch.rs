//! Issue 20 on anvil with `--block-time 1`: `breakglass watch --json` run as a child process against the
//! incident world (a Safe 1.4.1 owning OZ 5 proxies) plus a deliberately exploitable `LeakyVault`.
//! (a) an upgrade through the ProxyAdmin, an implementation slot written with `anvil_setStorageAt`, an owner
//! added to the Safe and a large withdrawal each alert within 2 blocks (and reach `--on-alert`, the audit
//! log, and the human output of the same blocks checked again afterwards); (b) a 100-block control run with
//! ordinary deposits and small withdrawals reports every block once and raises nothing; (c) `--auto-fire`
//! with a live ladder leaves the vault paused by block B+2 of the exploit at B; (d) anvil killed and
//! restarted on its port with its state: "blind", then "resumed", no block missing; a watcher stopped with
//! SIGINT and restarted with its cursor neither misses nor repeats a block; (e) `anvil_reorg`: a "reorg" line
//! and the replaced heights checked again.
//!
//! Independent of the code under test: the chain is read and driven with `cast` and raw JSON-RPC only.

use crate::support::anvil::{
    address_of, anvil_bin, calldata, cast_offline, Anvil, DEFAULT_ADDRESSES, DEFAULT_KEYS,
    EIP1967_IMPLEMENTATION_SLOT, ZERO_ADDRESS,
};
use crate::support::world::{ok, owner_key, Pins, World};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// tests/contracts/LeakyVault.sol, compiled by scripts/setup.sh into `.tools/contracts`.
const LEAKY_VAULT_ARTIFACT: &str = "contracts/LeakyVault.json";
/// Who exploits the vault (anvil account 5) and who deposits into it (anvil account 1).
const ATTACKER: usize = 5;
const DEPOSITOR: usize = 1;
const ETH: u128 = 1_000_000_000_000_000_000;

// ------------------------------------------------------------------ the world

/// The incident world on anvil with interval mining (1 s blocks), and a LeakyVault owned by the Safe
/// holding `deposit_eth` ETH. The deployment itself runs with automine (`evm_setAutomine true`, so the
/// twenty-odd deployment transactions don't take a second each); `evm_setIntervalMining 1` then puts
/// the chain back on 1-second blocks before any test step.
fn world(anvil_args: &[&str], deposit_eth: u128) -> (World, String) {
    let mut args = vec!["--block-time", "1"];
    args.extend_from_slice(anvil_args);
    let anvil = Anvil::start_with(&args);
    anvil.rpc("evm_setAutomine", json!([true]));
    let w = World::deploy_on(anvil);
    let vault = w
        .anvil
        .deploy_artifact(LEAKY_VAULT_ARTIFACT, "constructor(address)", &[&w.safe]);
    assert_eq!(
        w.anvil.call(&vault, "owner()(address)", &[]).to_lowercase(),
        w.safe.to_lowercase(),
        "the Safe owns the LeakyVault"
    );
    if deposit_eth > 0 {
        deposit(&w, &vault, DEPOSITOR, deposit_eth * ETH);
    }
    w.anvil.rpc("evm_setIntervalMining", json!([1]));
    // Interval mining is back: the head moves by itself.
    let h = w.anvil.block_number();
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.anvil.block_number() <= h {
        assert!(
            Instant::now() < deadline,
            "anvil mines no block after evm_setIntervalMining 1"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (w, vault)
}

/// The world's manifest plus the LeakyVault (`lvault`), a pre-signed `halt-ladder` (pause the pool and the
/// LeakyVault), and the `vault-drain` rule (more than 20% of its ETH gone within 10 blocks → halt-ladder).
fn manifest(w: &World, vault: &str) -> String {
    format!(
        r#"{base}
[contracts.lvault]
address = "{vault}"
abi = [
  "function deposit() payable",
  "function withdraw(uint256 amount)",
  "function pause()",
  "function unpause()",
  "function paused() view returns (bool)",
  "function version() view returns (string)",
  "event Deposited(address indexed from, uint256 amount)",
  "event Withdrawn(address indexed to, uint256 amount)",
]

[[actions]]
id = "pause-lvault"
title = "Pause the leaky vault"
contract = "lvault"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[playbooks]]
id = "halt-ladder"
title = "Pre-signed halt: the pool and the leaky vault"
actions = ["pause-pool", "pause-lvault"]
presign = true

[[watch]]
id = "vault-drain"
severity = "critical"
kind = "balance_drop"
contract = "lvault"
token = "eth"
percent = 20
blocks = 10
playbook = "halt-ladder"
"#,
        base = w.manifest_text(Pins::Right, 31337),
    )
}

/// `deposit()` with `wei` from anvil account `from`; panics unless it succeeded. Returns the receipt.
fn deposit(w: &World, vault: &str, from: usize, wei: u128) -> Value {
    let value = wei.to_string();
    let out = w.anvil.cast(&[
        "send",
        "--private-key",
        DEFAULT_KEYS[from],
        "--json",
        "--value",
        &value,
        vault,
        "deposit()",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(r["status"], "0x1", "deposit reverted: {r}");
    r
}

/// The exploit: anvil account [`ATTACKER`] withdraws `wei` it never deposited. Returns the receipt.
fn withdraw(w: &World, vault: &str, wei: u128) -> Value {
    w.anvil.send(
        DEFAULT_KEYS[ATTACKER],
        vault,
        "withdraw(uint256)",
        &[&wei.to_string()],
    )
}

/// A Safe transaction from the Safe to `to` with `data`, signed with `cast` by owners 0 and 2 (the
/// simulator's account 0 and the keystore owner, by their test keys) and executed by anvil account 0:
/// the real Safe path, independent of breakglass. Returns the receipt of `execTransaction`.
fn exec_safe_tx(w: &World, to: &str, data: &str) -> Value {
    let nonce = w.safe_nonce().to_string();
    let hash = w.anvil.call(
        &w.safe,
        "getTransactionHash(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,uint256)(bytes32)",
        &[to, "0", data, "0", "0", "0", "0", ZERO_ADDRESS, ZERO_ADDRESS, &nonce],
    );
    let mut sigs: Vec<(String, String)> = [0usize, 2]
        .iter()
        .map(|&i| {
            let key = owner_key(i);
            let sig = cast_offline(&["wallet", "sign", "--no-hash", "--private-key", &key, &hash]);
            (address_of(&key).to_lowercase(), sig)
        })
        .collect();
    // The Safe wants signatures ordered by owner address.
    sigs.sort();
    let packed: String = sigs
        .iter()
        .map(|(_, s)| s.trim_start_matches("0x"))
        .collect();
    w.anvil.send(
        DEFAULT_KEYS[0],
        &w.safe,
        "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
        &[
            to,
            "0",
            data,
            "0",
            "0",
            "0",
            "0",
            ZERO_ADDRESS,
            ZERO_ADDRESS,
            &format!("0x{packed}"),
        ],
    )
}

fn hex_u64(v: &Value) -> u64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex quantity: {v}"));
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("not a hex quantity {s}: {e}"))
}

fn block_hash(w: &World, n: u64) -> String {
    let b = w
        .anvil
        .rpc("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]));
    b["hash"]
        .as_str()
        .unwrap_or_else(|| panic!("no block {n}: {b}"))
        .to_lowercase()
}

/// Waits until the node's head is at least `n`.
fn wait_head(w: &World, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while w.anvil.block_number() < n {
        assert!(
            Instant::now() < deadline,
            "the chain did not reach block {n} within {timeout:?} (head {})",
            w.anvil.block_number()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `paused()` of `addr` in the state after block `n`.
fn paused_at(w: &World, addr: &str, n: u64) -> String {
    let b = n.to_string();
    w.anvil
        .cast(&["call", "--block", &b, addr, "paused()(bool)"])
}

// ------------------------------------------------------------------ the watcher as a child process

/// `breakglass --manifest M --pin P --rpc-url URL watch --json ARGS` as a child process of this test, with
/// the sandbox's environment (as `Sandbox::run_with_stdin`); its stdout lines are read in a thread into a
/// channel, its stderr collected in another. Dropped: killed by its own PID if still running.
struct Watcher {
    child: Child,
    rx: Receiver<String>,
    /// Every stdout line that parsed as JSON, in order.
    lines: Vec<Value>,
    /// Stdout lines that did not (there should be none with `--json`).
    not_json: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    stdout_closed: bool,
    exit: Option<i32>,
    args: Vec<String>,
}

impl Watcher {
    fn start(w: &World, manifest: &str, args: &[&str]) -> Watcher {
        let pin = w
            .pins
            .borrow()
            .get(manifest)
            .cloned()
            .expect("write_manifest_text first");
        let rpc = w.rpc.borrow().clone();
        let mut all: Vec<String> = [
            "--manifest",
            manifest,
            "--pin",
            &pin,
            "--rpc-url",
            &rpc,
            "watch",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(args.iter().map(|s| s.to_string()));
        let dir = w.sb.dir.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakglass"));
        cmd.args(&all)
            .current_dir(dir)
            .env("BREAKGLASS_CONFIG_DIR", dir.join("config"))
            .env("BREAKGLASS_DATA_DIR", dir.join("data"))
            .env_remove("BREAKGLASS_PIN")
            .env_remove("BREAKGLASS_MANIFEST")
            .env_remove("ETH_RPC_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &w.sb.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start breakglass watch: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Watcher {
            child,
            rx,
            lines: Vec::new(),
            not_json: Vec::new(),
            stderr,
            stderr_thread: Some(stderr_thread),
            stdout_closed: false,
            exit: None,
            args: all,
        }
    }

    fn push(&mut self, line: String) {
        match serde_json::from_str::<Value>(&line) {
            Ok(v) if v.is_object() => self.lines.push(v),
            _ => self.not_json.push(line),
        }
    }

    /// What the watcher said so far, for panic messages.
    fn context(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(Value::to_string).collect();
        format!(
            "\n--- breakglass {}\n--- exit: {:?}\n--- stdout JSON lines ({}):\n{}\n--- stdout lines that are not JSON ({}):\n{}\n--- stderr:\n{}\n---",
            self.args.join(" "),
            self.exit,
            lines.len(),
            lines.join("\n"),
            self.not_json.len(),
            self.not_json.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Reads stdout lines until one at index `from` or later satisfies `pred`; panics with everything the
    /// watcher said when `timeout` passes or stdout closes first.
    fn wait_for_from(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> (usize, Value) {
        let deadline = Instant::now() + timeout;
        let mut checked = from;
        loop {
            while checked < self.lines.len() {
                if pred(&self.lines[checked]) {
                    return (checked, self.lines[checked].clone());
                }
                checked += 1;
            }
            if self.stdout_closed {
                // Give it a moment to exit, so that the message shows its exit code.
                std::thread::sleep(Duration::from_millis(200));
                if let Ok(Some(s)) = self.child.try_wait() {
                    self.exit = Some(s.code().unwrap_or(-1));
                }
                panic!(
                    "the watcher's stdout closed before {what}{}",
                    self.context()
                );
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("no {what} within {timeout:?}{}", self.context());
            }
            match self
                .rx
                .recv_timeout((deadline - now).min(Duration::from_millis(100)))
            {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
            }
        }
    }

    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_from(0, what, timeout, pred).1
    }

    /// Waits for the `"type":"block"` line of block `n` or a later one.
    fn wait_block(&mut self, n: u64, timeout: Duration) -> Value {
        self.wait_for(&format!("\"block\" line for block {n}"), timeout, |v| {
            v["type"] == "block" && v["number"].as_u64().is_some_and(|b| b >= n)
        })
    }

    fn start_line(&mut self) -> Value {
        self.wait_for("\"start\" line", Duration::from_secs(20), |v| {
            v["type"] == "start"
        })
    }

    /// SIGINT to the watcher (by its PID).
    fn interrupt(&mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed{}", self.context());
    }

    /// Waits for the watcher to exit and reads the rest of its output; returns its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(line) = self.rx.try_recv() {
                self.push(line);
            }
            if let Some(s) = self.child.try_wait().unwrap() {
                self.exit = Some(s.code().unwrap_or(-1));
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the watcher did not exit within {timeout:?}{}",
                    self.context()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The rest of stdout, up to EOF.
        let until = Instant::now() + Duration::from_secs(5);
        while !self.stdout_closed && Instant::now() < until {
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
            }
        }
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        self.exit.unwrap()
    }

    /// Reads whatever lines arrive within `d`.
    fn pump(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline && !self.stdout_closed {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
            }
        }
    }

    fn of_type(&self, t: &str) -> Vec<Value> {
        self.lines
            .iter()
            .filter(|v| v["type"] == t)
            .cloned()
            .collect()
    }

    /// Block numbers of the `"type":"block"` lines, in order.
    fn blocks(&self) -> Vec<u64> {
        self.lines
            .iter()
            .filter(|v| v["type"] == "block")
            .map(|v| {
                v["number"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("block line without a number: {v}"))
            })
            .collect()
    }

    fn alerts(&self) -> Vec<Value> {
        self.of_type("alert")
    }

    fn assert_all_json(&self) {
        assert!(
            self.not_json.is_empty(),
            "with --json every stdout line is one JSON object{}",
            self.context()
        );
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // BREAKGLASS_WATCH_TEST_DEBUG=1 cargo test … -- --nocapture shows what every watcher said.
        if std::env::var_os("BREAKGLASS_WATCH_TEST_DEBUG").is_some() {
            eprintln!("{}", self.context());
        }
        if self.exit.is_none() {
            // Child::kill signals exactly this child's PID.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts that `blocks` is exactly `from..=to`, each once, in order.
fn assert_every_block_once(blocks: &[u64], from: u64, to: u64, ctx: &str) {
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for b in blocks {
        *count.entry(*b).or_default() += 1;
    }
    let missing: Vec<u64> = (from..=to).filter(|b| !count.contains_key(b)).collect();
    let repeated: Vec<u64> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(b, _)| *b)
        .collect();
    let outside: Vec<u64> = count
        .keys()
        .copied()
        .filter(|b| *b < from || *b > to)
        .collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && outside.is_empty(),
        "blocks {from}..={to} each exactly once: missing {missing:?}, repeated {repeated:?}, outside {outside:?}{ctx}"
    );
    let want: Vec<u64> = (from..=to).collect();
    assert_eq!(blocks, want.as_slice(), "blocks out of order{ctx}");
}

/// Checks the fields every alert has, and that it names block `block` with the node's hash of it.
fn assert_alert(w: &World, a: &Value, rule: &str, kind: &str, ctx: &str) {
    assert_eq!(a["type"], "alert", "{a}{ctx}");
    assert_eq!(a["rule"], rule, "{a}{ctx}");
    assert_eq!(a["kind"], kind, "{a}{ctx}");
    assert_eq!(a["severity"], "critical", "{a}{ctx}");
    let n = a["block"]
        .as_u64()
        .unwrap_or_else(|| panic!("alert without a block number: {a}{ctx}"));
    assert_eq!(
        a["block_hash"].as_str().map(str::to_lowercase),
        Some(block_hash(w, n)),
        "the alert's block_hash is the node's hash of block {n}: {a}{ctx}"
    );
    assert!(
        a["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "{a}{ctx}"
    );
    assert!(
        a.get("tx").is_some(),
        "\"tx\" is always present (null when none): {a}{ctx}"
    );
    assert!(
        a.get("playbook").is_some(),
        "\"playbook\" is always present: {a}{ctx}"
    );
}

fn same_addr(v: &Value, addr: &str) -> bool {
    v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(addr))
}

/// Whether an `old`/`new` value mentions `addr` (as an address or in a 32-byte word).
fn mentions(v: &Value, addr: &str) -> bool {
    v.to_string()
        .to_lowercase()
        .contains(&addr.trim_start_matches("0x").to_lowercase())
}

/// The first alert of `rule` once the watcher has reported block `made + 2`; panics when there is none.
fn alert_within_two_blocks(wt: &mut Watcher, rule: &str, made: u64) -> Value {
    wt.wait_block(made + 2, Duration::from_secs(30));
    let found = wt.alerts().into_iter().find(|a| a["rule"] == rule);
    let Some(a) = found else {
        panic!(
            "no alert of {rule} by block {} (the change was made in block {made}){}",
            made + 2,
            wt.context()
        )
    };
    a
}

// ------------------------------------------------------------------ (a) each injected change alerts

/// Four injected changes, each alerting within 2 blocks of the block that made it, with the right rule,
/// block, block hash and transaction; nothing else alerts. Every alert reaches `--on-alert` (as JSON on
/// its stdin) and the audit log; `watch` over the same past blocks without `--json` prints the same alerts.
#[test]
fn each_injected_change_alerts_within_two_blocks() {
    let (w, lvault) = world(&[], 10);
    w.write_manifest_text("m.toml", &manifest(&w, &lvault));
    let from = w.anvil.block_number();
    let from_s = from.to_string();
    let mut wt = Watcher::start(
        &w,
        "m.toml",
        &[
            "--from-block",
            &from_s,
            "--poll-ms",
            "200",
            "--on-alert",
            "cat >> on-alert.jsonl; echo >> on-alert.jsonl",
        ],
    );
    let start = wt.start_line();
    assert_eq!(start["chain_id"], 31337, "{}", wt.context());
    assert_eq!(start["from_block"], from, "{}", wt.context());
    let rules: Vec<&str> = start["rules"]
        .as_array()
        .unwrap_or_else(|| panic!("start without rules{}", wt.context()))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for r in [
        "builtin:pool:implementation",
        "builtin:pool:admin",
        "builtin:vault:implementation",
        "builtin:gpool:implementation",
        "builtin:gpool:admin",
        "builtin:safe",
        "vault-drain",
    ] {
        assert!(
            rules.contains(&r),
            "rule {r} missing from {rules:?}{}",
            wt.context()
        );
    }
    wt.wait_block(from + 1, Duration::from_secs(20));
    assert!(
        wt.alerts().is_empty(),
        "alerts before any change{}",
        wt.context()
    );

    // 1. The transparent pool upgraded through its ProxyAdmin by a Safe transaction (breakglass's own
    //    patch-pool playbook: compose, two signatures, execute).
    let signed = w.compose_and_sign("m.toml", &["patch-pool"], "patch");
    ok(
        &w.execute_keystore("m.toml", &signed, "patched.json"),
        "execute patch-pool",
    );
    assert!(w.implementation(&w.pool).eq_ignore_ascii_case(&w.pool_v2));
    let upgraded = cast_offline(&["keccak", "Upgraded(address)"]);
    let logs = w.anvil.rpc(
        "eth_getLogs",
        json!([{"address": w.pool, "fromBlock": format!("0x{from:x}"), "toBlock": "latest", "topics": [upgraded]}]),
    );
    let log = &logs.as_array().unwrap()[0];
    let made = hex_u64(&log["blockNumber"]);
    let tx = log["transactionHash"].as_str().unwrap().to_lowercase();
    let a = alert_within_two_blocks(&mut wt, "builtin:pool:implementation", made);
    let ctx = wt.context();
    assert_alert(&w, &a, "builtin:pool:implementation", "slot_changed", &ctx);
    let n = a["block"].as_u64().unwrap();
    assert!(
        n >= made && n <= made + 2,
        "upgraded in block {made}, alert at {n}{ctx}"
    );
    assert_eq!(
        a["tx"].as_str().map(str::to_lowercase),
        Some(tx),
        "{a}{ctx}"
    );
    assert_eq!(a["contract"], "pool", "{a}{ctx}");
    assert!(same_addr(&a["address"], &w.pool), "{a}{ctx}");
    assert!(
        mentions(&a["old"], &w.pool_v1) && mentions(&a["new"], &w.pool_v2),
        "{a}{ctx}"
    );
    assert_eq!(a["playbook"], Value::Null, "{a}{ctx}");

    // 2. The UUPS vault's implementation slot written with anvil_setStorageAt: no transaction, no event.
    //    The change is in the state of the first block mined after the call at the latest.
    let before = w.anvil.block_number();
    let word = format!(
        "0x{:0>64}",
        w.vault_v2.trim_start_matches("0x").to_lowercase()
    );
    w.anvil.rpc(
        "anvil_setStorageAt",
        json!([w.vault, EIP1967_IMPLEMENTATION_SLOT, word]),
    );
    let made = w.anvil.block_number() + 1;
    assert!(w.implementation(&w.vault).eq_ignore_ascii_case(&w.vault_v2));
    let a = alert_within_two_blocks(&mut wt, "builtin:vault:implementation", made);
    let ctx = wt.context();
    assert_alert(&w, &a, "builtin:vault:implementation", "slot_changed", &ctx);
    let n = a["block"].as_u64().unwrap();
    assert!(
        n >= before && n <= made + 2,
        "slot written after block {before}, alert at {n}{ctx}"
    );
    assert_eq!(
        a["tx"],
        Value::Null,
        "no transaction made this change: {a}{ctx}"
    );
    assert_eq!(a["contract"], "vault", "{a}{ctx}");
    assert!(same_addr(&a["address"], &w.vault), "{a}{ctx}");
    assert!(mentions(&a["new"], &w.vault_v2), "{a}{ctx}");

    // 3. An owner added to the Safe: addOwnerWithThreshold as a real Safe transaction.
    let newcomer = DEFAULT_ADDRESSES[7];
    let data = calldata("addOwnerWithThreshold(address,uint256)", &[newcomer, "2"]);
    let receipt = exec_safe_tx(&w, &w.safe, &data);
    assert!(w
        .anvil
        .call(&w.safe, "getOwners()(address[])", &[])
        .to_lowercase()
        .contains(&newcomer.to_lowercase()));
    let made = hex_u64(&receipt["blockNumber"]);
    let tx = receipt["transactionHash"].as_str().unwrap().to_lowercase();
    let a = alert_within_two_blocks(&mut wt, "builtin:safe", made);
    let ctx = wt.context();
    assert_alert(&w, &a, "builtin:safe", "safe_changed", &ctx);
    let n = a["block"].as_u64().unwrap();
    assert!(
        n >= made && n <= made + 2,
        "owner added in block {made}, alert at {n}{ctx}"
    );
    assert_eq!(
        a["tx"].as_str().map(str::to_lowercase),
        Some(tx),
        "{a}{ctx}"
    );
    assert!(same_addr(&a["address"], &w.safe), "{a}{ctx}");
    assert!(
        mentions(&a["new"], newcomer),
        "the new owner is named: {a}{ctx}"
    );

    // 4. A large withdrawal from the LeakyVault: 6 of its 10 ETH, far over 20%.
    let receipt = withdraw(&w, &lvault, 6 * ETH);
    let made = hex_u64(&receipt["blockNumber"]);
    let tx = receipt["transactionHash"].as_str().unwrap().to_lowercase();
    let a = alert_within_two_blocks(&mut wt, "vault-drain", made);
    let ctx = wt.context();
    assert_alert(&w, &a, "vault-drain", "balance_drop", &ctx);
    let n = a["block"].as_u64().unwrap();
    assert!(
        n >= made && n <= made + 2,
        "drained in block {made}, alert at {n}{ctx}"
    );
    assert_eq!(a["contract"], "lvault", "{a}{ctx}");
    assert!(same_addr(&a["address"], &lvault), "{a}{ctx}");
    assert_eq!(
        a["playbook"], "halt-ladder",
        "the alert names the rule's playbook: {a}{ctx}"
    );
    // The withdrawal is the block's only transaction to the vault: the alert names it.
    assert_eq!(
        a["tx"].as_str().map(str::to_lowercase),
        Some(tx),
        "{a}{ctx}"
    );

    // Nothing else alerted (the Safe's nonce moving, the vault's deposits, …), nothing fired.
    wt.pump(Duration::from_millis(500));
    let mut rules: Vec<String> = wt
        .alerts()
        .iter()
        .map(|a| a["rule"].as_str().unwrap_or("?").to_string())
        .collect();
    rules.sort();
    rules.dedup();
    assert_eq!(
        rules,
        [
            "builtin:pool:implementation",
            "builtin:safe",
            "builtin:vault:implementation",
            "vault-drain"
        ],
        "{}",
        wt.context()
    );
    assert!(wt.of_type("fired").is_empty(), "{}", wt.context());
    // The block lines so far: every block from the start, once each.
    let blocks = wt.blocks();
    let last = *blocks.last().unwrap();
    assert_every_block_once(&blocks, from, last, &wt.context());
    for a in wt.alerts() {
        let n = a["block"].as_u64().unwrap();
        let line = wt
            .lines
            .iter()
            .find(|v| v["type"] == "block" && v["number"] == n)
            .unwrap();
        assert_eq!(line["hash"], a["block_hash"], "{}", wt.context());
        assert!(
            line["alerts"].as_u64().is_some_and(|k| k >= 1),
            "{line}{}",
            wt.context()
        );
    }
    wt.interrupt();
    assert_eq!(
        wt.wait_exit(Duration::from_secs(15)),
        0,
        "SIGINT: exit 0{}",
        wt.context()
    );
    wt.assert_all_json();
    // Every alert is in the audit log.
    let log = std::fs::read_to_string(w.sb.path("data/audit.jsonl")).unwrap_or_default();
    assert_eq!(
        log.matches("watch_alert").count(),
        4,
        "the audit log has the alerts:\n{log}"
    );
    // --on-alert ran once per alert with the alert as JSON on its standard input (beside the watcher:
    // give the last one a moment).
    let want: Vec<(String, u64)> = wt
        .alerts()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["block"].as_u64().unwrap(),
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let hooked = loop {
        let text = std::fs::read_to_string(w.sb.path("on-alert.jsonl")).unwrap_or_default();
        let got: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("--on-alert got a line that is not JSON ({e}): {l}"))
            })
            .collect();
        if got.len() >= want.len() || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut got: Vec<(String, u64)> = hooked
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or("?").to_string(),
                a["block"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        got, want_sorted,
        "--on-alert saw every alert once: {hooked:?}"
    );

    // The same blocks checked again afterwards (history, human output): the same alerts. The slot written
    // with anvil_setStorageAt may land one block apart (the live watcher may have read that block's state
    // before anvil stored its snapshot), the others at the very same block and transaction.
    let last_s = last.to_string();
    let r = w.bg(
        "m.toml",
        true,
        &["watch", "--from-block", &from_s, "--until-block", &last_s],
    );
    ok(&r, "watch over past blocks");
    let lines: Vec<&str> = r.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        4,
        "four alerts, nothing else on stdout:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    for a in wt.alerts() {
        let rule = a["rule"].as_str().unwrap();
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("ALERT [critical] {rule} at block ")))
            .unwrap_or_else(|| panic!("no ALERT line for {rule}:\n{}", r.stdout));
        match a["tx"].as_str() {
            Some(tx) => assert!(
                line.to_lowercase().contains(&format!(
                    " at block {} (tx {})",
                    a["block"],
                    tx.to_lowercase()
                )),
                "{line} vs {a}"
            ),
            None => assert!(line.contains("(no transaction)"), "{line}"),
        }
        if rule == "vault-drain" {
            assert!(
                line.contains("halt-ladder"),
                "the proposed playbook is named: {line}"
            );
        }
    }
}

// ------------------------------------------------------------------ (b) the control run

/// 100 blocks (mined quickly with anvil_mine between transactions, interval mining still on) with ordinary
/// deposits and small withdrawals: every block reported once, not one alert; `--until-block` ends the run.
#[test]
fn a_hundred_ordinary_blocks_raise_no_alert() {
    let (w, lvault) = world(&[], 40);
    w.write_manifest_text("m.toml", &manifest(&w, &lvault));
    let from = w.anvil.block_number();
    let to = from + 99;
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let mut wt = Watcher::start(
        &w,
        "m.toml",
        &[
            "--from-block",
            &from_s,
            "--until-block",
            &to_s,
            "--poll-ms",
            "100",
        ],
    );
    let start = wt.start_line();
    assert_eq!(start["from_block"], from, "{}", wt.context());

    let deposit_data = calldata("deposit()", &[]);
    let small = calldata("withdraw(uint256)", &[&(ETH / 4).to_string()]);
    let mut round = 0u32;
    while w.anvil.block_number() < to {
        // Unlocked anvil accounts: the transaction goes to the pool at once, anvil_mine includes it.
        let (from_acct, data, value) = match round % 3 {
            0 | 1 => (
                DEPOSITOR + (round as usize % 2),
                &deposit_data,
                format!("0x{:x}", ETH / 2),
            ),
            _ => (ATTACKER, &small, "0x0".to_string()),
        };
        let hash = w.anvil.rpc(
            "eth_sendTransaction",
            json!([{"from": DEFAULT_ADDRESSES[from_acct], "to": lvault, "data": data, "value": value}]),
        );
        w.anvil.rpc("anvil_mine", json!(["0x3"]));
        let receipt = w.anvil.rpc("eth_getTransactionReceipt", json!([hash]));
        assert_eq!(receipt["status"], "0x1", "round {round}: {receipt}");
        round += 1;
    }
    let code = wt.wait_exit(Duration::from_secs(60));
    let ctx = wt.context();
    assert_eq!(code, 0, "--until-block {to}: exit 0{ctx}");
    wt.assert_all_json();
    assert!(round >= 20, "only {round} transactions");
    assert!(wt.alerts().is_empty(), "no alert in the control run{ctx}");
    let types: Vec<&str> = wt.lines.iter().filter_map(|v| v["type"].as_str()).collect();
    assert!(
        types.iter().all(|t| *t == "start" || *t == "block"),
        "only start and block lines: {types:?}{ctx}"
    );
    assert_every_block_once(&wt.blocks(), from, to, &ctx);
    for b in wt.of_type("block") {
        let n = b["number"].as_u64().unwrap();
        assert_eq!(b["alerts"], 0, "{b}{ctx}");
        assert_eq!(
            b["hash"].as_str().map(str::to_lowercase),
            Some(block_hash(&w, n)),
            "{b}{ctx}"
        );
    }
}

// ------------------------------------------------------------------ (c) auto-fire

/// `--auto-fire` with a live ladder (halt-ladder signed by two owners): the exploit at block B leaves the
/// LeakyVault (and the pool) paused in the state of block B+2, and a "fired" line says so.
#[test]
fn auto_fire_pauses_the_vault_within_two_blocks_of_the_exploit() {
    let (w, lvault) = world(&[], 10);
    w.write_manifest_text("m.toml", &manifest(&w, &lvault));
    ok(
        &w.bg(
            "m.toml",
            true,
            &[
                "ladder",
                "build",
                "halt-ladder",
                "--rungs",
                "3",
                "-o",
                "l.json",
            ],
        ),
        "ladder build",
    );
    ok(
        &w.bg(
            "m.toml",
            false,
            &[
                "ladder",
                "sign",
                "l.json",
                "--speculos",
                &w.sim.addr,
                "--account",
                "0",
            ],
        ),
        "the simulator signs the ladder",
    );
    ok(
        &w.bg(
            "m.toml",
            false,
            &[
                "ladder",
                "sign",
                "l.json",
                "--keystore",
                "keystores/owner3",
                "--password-file",
                "password.txt",
            ],
        ),
        "the keystore owner signs the ladder",
    );
    let r = w.bg("m.toml", true, &["--json", "ladder", "status", "l.json"]);
    ok(&r, "ladder status");
    assert_eq!(r.json()["status"]["state"], "live", "{}", r.stdout);

    let from = w.anvil.block_number();
    let from_s = from.to_string();
    let mut wt = Watcher::start(
        &w,
        "m.toml",
        &[
            "--from-block",
            &from_s,
            "--poll-ms",
            "200",
            "--auto-fire",
            "l.json",
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
        ],
    );
    wt.start_line();
    wt.wait_block(from + 1, Duration::from_secs(20));
    assert!(!w.paused(&lvault));

    let receipt = withdraw(&w, &lvault, 6 * ETH);
    let b = hex_u64(&receipt["blockNumber"]);
    let fired = wt.wait_for(
        "\"fired\" (or \"fire_refused\") line",
        Duration::from_secs(30),
        |v| v["type"] == "fired" || v["type"] == "fire_refused",
    );
    let ctx = wt.context();
    assert_eq!(fired["type"], "fired", "{fired}{ctx}");
    assert_eq!(fired["rule"], "vault-drain", "{fired}{ctx}");
    assert_eq!(fired["ok"], true, "{fired}{ctx}");
    let alert_block = fired["alert_block"].as_u64().unwrap();
    assert!(
        alert_block >= b && alert_block <= b + 1,
        "exploit in {b}, alert at {alert_block}{ctx}"
    );
    let mined = fired["mined_block"].as_u64().unwrap();
    assert!(
        mined <= b + 2,
        "exploit in block {b}, the pause mined in {mined}{ctx}"
    );
    assert!(
        fired["tx"].as_str().is_some_and(|t| t.len() == 66),
        "{fired}{ctx}"
    );
    let fire_receipt = w
        .anvil
        .rpc("eth_getTransactionReceipt", json!([fired["tx"]]));
    assert_eq!(fire_receipt["status"], "0x1", "{fire_receipt}");
    assert_eq!(
        hex_u64(&fire_receipt["blockNumber"]),
        mined,
        "{fire_receipt}"
    );
    assert_eq!(
        fire_receipt["to"].as_str().map(str::to_lowercase),
        Some(w.safe.to_lowercase()),
        "the rung is a Safe transaction: {fire_receipt}"
    );

    // The state of block B+2: paused.
    wait_head(&w, b + 2, Duration::from_secs(10));
    assert_eq!(
        paused_at(&w, &lvault, b + 2),
        "true",
        "LeakyVault paused at block B+2 = {}",
        b + 2
    );
    assert_eq!(paused_at(&w, &w.pool, b + 2), "true", "the pool too");
    assert_eq!(paused_at(&w, &lvault, b), "false", "not yet in block B");
    // The attacker's next withdrawal is refused.
    assert!(
        withdraw_try(&w, &lvault, ETH).is_err(),
        "a paused vault refuses withdrawals"
    );

    // The alert that caused it is there, naming the ladder's playbook; the ladder fired once.
    let alert = wt
        .alerts()
        .into_iter()
        .find(|a| a["rule"] == "vault-drain")
        .unwrap_or_else(|| panic!("no vault-drain alert{}", wt.context()));
    assert_eq!(alert["block"].as_u64(), Some(alert_block), "{alert}{ctx}");
    assert_eq!(alert["playbook"], "halt-ladder", "{alert}{ctx}");
    wt.wait_block(b + 4, Duration::from_secs(15));
    assert_eq!(wt.of_type("fired").len(), 1, "fired once{}", wt.context());
    wt.interrupt();
    assert_eq!(wt.wait_exit(Duration::from_secs(15)), 0, "{}", wt.context());
    wt.assert_all_json();
    let log = std::fs::read_to_string(w.sb.path("data/audit.jsonl")).unwrap_or_default();
    assert!(log.contains("watch_fire"), "the fire is audited:\n{log}");
}

fn withdraw_try(w: &World, vault: &str, wei: u128) -> Result<Value, String> {
    w.anvil.send_try(
        DEFAULT_KEYS[ATTACKER],
        vault,
        "withdraw(uint256)",
        &[&wei.to_string()],
    )
}

// ------------------------------------------------------------------ (d) node outage and cursor

/// An anvil started by this test on a given port (the restarted node), killed by its PID when dropped.
struct Restarted {
    child: Child,
}

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` (a child of this test) has exited (a zombie until reaped) or is gone.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S …": the state follows the last ')'.
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// anvil killed (SIGTERM: it writes its state file and exits) while the watcher runs, then started again on
/// the same port from that state: "blind", then "resumed", every block reported once; the restarted chain
/// keeps its block hashes (so no reorg), and a change made after the restart still alerts.
#[test]
fn a_killed_and_restarted_node_is_reported_and_no_block_is_missed() {
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("anvil-state.json");
    let state_s = state.display().to_string();
    let (w, lvault) = world(&["--state", &state_s, "--preserve-historical-states"], 10);
    w.write_manifest_text("m.toml", &manifest(&w, &lvault));
    let from = w.anvil.block_number();
    let from_s = from.to_string();
    let mut wt = Watcher::start(&w, "m.toml", &["--from-block", &from_s, "--poll-ms", "200"]);
    wt.start_line();
    wt.wait_block(from + 2, Duration::from_secs(20));

    // Kill anvil (by its PID) and wait until it is gone.
    let pid = w.anvil.pid();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exited(pid) {
        assert!(Instant::now() < deadline, "anvil did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        std::fs::metadata(&state).is_ok_and(|m| m.len() > 0),
        "anvil wrote no state to {state_s}"
    );
    let blind = wt.wait_for("\"blind\" line", Duration::from_secs(20), |v| {
        v["type"] == "blind"
    });
    let ctx = wt.context();
    let blind_from = blind["from_block"]
        .as_u64()
        .unwrap_or_else(|| panic!("{blind}{ctx}"));
    assert!(
        blind["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{blind}{ctx}"
    );
    // The last block the watcher reported before going blind; the node's head at the kill was at least that.
    let before = *wt.blocks().last().unwrap();
    assert_eq!(
        blind_from,
        before + 1,
        "blind from the first unchecked block{ctx}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        wt.of_type("resumed").is_empty(),
        "resumed while the node is down{}",
        wt.context()
    );

    // Start anvil again, on the same port, from its state, still mining every second.
    let port = w.anvil.port.to_string();
    let log = std::fs::File::create(state_dir.path().join("anvil2.log")).unwrap();
    let child = Command::new(anvil_bin())
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--chain-id",
            "31337",
            "--accounts",
            "10",
            "--quiet",
            "--block-time",
            "1",
            "--state",
            &state_s,
            "--preserve-historical-states",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _restarted = Restarted { child };
    let deadline = Instant::now() + Duration::from_secs(15);
    while w.anvil.cast_try(&["chain-id"]).is_err() {
        assert!(Instant::now() < deadline, "restarted anvil does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The chain survived with its hashes: the watcher's last block is the node's block.
    let line = wt
        .lines
        .iter()
        .rfind(|v| v["type"] == "block")
        .cloned()
        .unwrap();
    assert_eq!(
        line["hash"].as_str().map(str::to_lowercase),
        Some(block_hash(&w, before)),
        "anvil keeps its block hashes across --state restarts"
    );
    let resumed = wt.wait_for("\"resumed\" line", Duration::from_secs(40), |v| {
        v["type"] == "resumed"
    });
    let ctx = wt.context();
    assert_eq!(
        resumed["from_block"].as_u64(),
        Some(blind_from),
        "{resumed}{ctx}"
    );
    assert!(
        resumed["head"].as_u64().is_some_and(|h| h >= before),
        "{resumed}{ctx}"
    );

    // It watches again: a change now alerts.
    let word = format!(
        "0x{:0>64}",
        w.vault_v2.trim_start_matches("0x").to_lowercase()
    );
    w.anvil.rpc(
        "anvil_setStorageAt",
        json!([w.vault, EIP1967_IMPLEMENTATION_SLOT, word]),
    );
    let made = w.anvil.block_number() + 1;
    alert_within_two_blocks(&mut wt, "builtin:vault:implementation", made);
    wt.interrupt();
    assert_eq!(wt.wait_exit(Duration::from_secs(15)), 0, "{}", wt.context());
    wt.assert_all_json();
    let ctx = wt.context();
    // blind before resumed, and nothing about a reorg: the chain did not change.
    let pos = |t: &str| wt.lines.iter().position(|v| v["type"] == t);
    assert!(pos("blind") < pos("resumed"), "{ctx}");
    assert!(wt.of_type("reorg").is_empty(), "{ctx}");
    assert_eq!(
        wt.of_type("blind").len(),
        1,
        "one outage, one blind line{ctx}"
    );
    let blocks = wt.blocks();
    assert_every_block_once(&blocks, from, *blocks.last().unwrap(), &ctx);
    let log = std::fs::read_to_string(w.sb.path("data/audit.jsonl")).unwrap_or_default();
    assert!(
        log.contains("watch_blind") && log.contains("watch_resumed"),
        "the outage is audited:\n{log}"
    );
}

/// A watcher stopped with SIGINT mid-run and started again with the same command line (`--cursor FILE`,
/// and the same `--from-block`, which the cursor overrides): together they report every block once.
#[test]
fn a_restarted_watcher_with_its_cursor_neither_misses_nor_repeats_a_block() {
    let (w, lvault) = world(&[], 10);
    w.write_manifest_text("m.toml", &manifest(&w, &lvault));
    let from = w.anvil.block_number();
    let to = from + 12;
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let args = [
        "--cursor",
        "watch.cursor",
        "--from-block",
        &from_s,
        "--until-block",
        &to_s,
        "--poll-ms",
        "200",
    ];
    let mut one = Watcher::start(&w, "m.toml", &args);
    let s1 = one.start_line();
    assert_eq!(s1["from_block"], from, "{}", one.context());
    one.wait_block(from + 3, Duration::from_secs(20));
    one.interrupt();
    assert_eq!(
        one.wait_exit(Duration::from_secs(15)),
        0,
        "SIGINT: exit 0{}",
        one.context()
    );
    one.assert_all_json();
    let first = one.blocks();
    let last = *first.last().unwrap();
    assert!(
        last < to,
        "the first run was stopped before --until-block{}",
        one.context()
    );
    assert!(w.sb.path("watch.cursor").is_file(), "no cursor file");
    assert_every_block_once(&first, from, last, &one.context());

    // Blocks go by with no watcher.
    wait_head(&w, last + 3, Duration::from_secs(10));
    let mut two = Watcher::start(&w, "m.toml", &args);
    let s2 = two.start_line();
    assert_eq!(
        s2["from_block"].as_u64(),
        Some(last + 1),
        "the cursor's block + 1{}",
        two.context()
    );
    assert_eq!(
        two.wait_exit(Duration::from_secs(40)),
        0,
        "{}",
        two.context()
    );
    two.assert_all_json();
    let mut all = first.clone();
    all.extend(two.blocks());
    let ctx = format!("{}{}", one.context(), two.context());
    assert_every_block_once(&all, from, to, &ctx);
    assert!(one.alerts().is_empty() && two.alerts().is_empty(), "{ctx}");
}

// ------------------------------------------------------------------ (e) reorg

/// `anvil_reorg` replaces the last two blocks, the second one now holding a large withdrawal: a "reorg"
/// line (depth 2, from the first replaced height), both heights reported again with their new hashes, and
/// the withdrawal alerts in the replacement block.
#[test]
fn a_reorg_is_reported_and_the_replaced_blocks_are_checked_again() {
    let (w, lvault) = world(&[], 10);
    w.write_manifest_text("m.toml", &manifest(&w, &lvault));
    let from = w.anvil.block_number();
    let from_s = from.to_string();
    let mut wt = Watcher::start(&w, "m.toml", &["--from-block", &from_s, "--poll-ms", "200"]);
    wt.start_line();
    wt.wait_block(from + 2, Duration::from_secs(20));

    // Stop the clock so that the reorg replaces known heights, and let the watcher catch up with the head.
    w.anvil.rpc("evm_setIntervalMining", json!([0]));
    let h = w.anvil.block_number();
    wt.wait_block(h, Duration::from_secs(20));
    let old = [block_hash(&w, h - 1), block_hash(&w, h)];
    let checked_before = wt.lines.len();
    let data = calldata("withdraw(uint256)", &[&(6 * ETH).to_string()]);
    w.anvil.rpc(
        "anvil_reorg",
        json!({"depth": 2, "tx_block_pairs": [[{"from": DEFAULT_ADDRESSES[ATTACKER], "to": lvault, "data": data}, 1]]}),
    );
    assert_eq!(w.anvil.block_number(), h, "a reorg keeps the height");
    let new = [block_hash(&w, h - 1), block_hash(&w, h)];
    assert!(
        old[0] != new[0] && old[1] != new[1],
        "both blocks replaced: {old:?} {new:?}"
    );
    let txs = w
        .anvil
        .rpc("eth_getBlockByNumber", json!([format!("0x{h:x}"), false]))["transactions"]
        .clone();
    assert_eq!(
        txs.as_array().map(Vec::len),
        Some(1),
        "the withdrawal is in block {h}: {txs}"
    );
    let tx = txs[0].as_str().unwrap().to_lowercase();
    let receipt = w.anvil.rpc("eth_getTransactionReceipt", json!([tx]));
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert!(w.anvil.balance(&lvault) == 4 * ETH);
    w.anvil.rpc("evm_setIntervalMining", json!([1]));

    let (at, reorg) = wt.wait_for_from(
        checked_before,
        "\"reorg\" line",
        Duration::from_secs(20),
        |v| v["type"] == "reorg",
    );
    let ctx = wt.context();
    assert_eq!(reorg["depth"], 2, "{reorg}{ctx}");
    assert_eq!(reorg["from_block"].as_u64(), Some(h - 1), "{reorg}{ctx}");
    // Both replaced heights are checked again, with their new hashes, and the drain alerts in block h.
    for (i, n) in [h - 1, h].into_iter().enumerate() {
        let (_, line) = wt.wait_for_from(
            at,
            &format!("block {n} again"),
            Duration::from_secs(20),
            |v| v["type"] == "block" && v["number"] == n,
        );
        assert_eq!(
            line["hash"].as_str().map(str::to_lowercase),
            Some(new[i].clone()),
            "{line}{}",
            wt.context()
        );
    }
    wt.wait_block(h + 1, Duration::from_secs(20));
    let ctx = wt.context();
    let alert = wt
        .alerts()
        .into_iter()
        .find(|a| a["rule"] == "vault-drain")
        .unwrap_or_else(|| {
            panic!("no vault-drain alert for the withdrawal in the replacement block{ctx}")
        });
    assert_alert(&w, &alert, "vault-drain", "balance_drop", &ctx);
    assert_eq!(alert["block"].as_u64(), Some(h), "{alert}{ctx}");
    assert_eq!(
        alert["block_hash"].as_str().map(str::to_lowercase),
        Some(new[1].clone()),
        "{alert}{ctx}"
    );
    assert_eq!(
        alert["tx"].as_str().map(str::to_lowercase),
        Some(tx),
        "the withdrawal placed in the replacement block: {alert}{ctx}"
    );
    wt.interrupt();
    assert_eq!(wt.wait_exit(Duration::from_secs(15)), 0, "{}", wt.context());
    wt.assert_all_json();
    // Every height reported; the two replaced ones twice (old and new), the others once.
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for b in wt.blocks() {
        *count.entry(b).or_default() += 1;
    }
    let last = *count.keys().last().unwrap();
    for n in from..=last {
        let want = if n == h - 1 || n == h { 2 } else { 1 };
        assert_eq!(
            count.get(&n).copied(),
            Some(want),
            "block {n}{}",
            wt.context()
        );
    }
    assert_eq!(wt.of_type("reorg").len(), 1, "{}", wt.context());
}
