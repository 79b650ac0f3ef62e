//! `breakglass watch` as a person runs it (issue 20): human output, `--ws-url` new-head notifications
//! (the HTTP poll is set to a minute, so only the WebSocket can wake the watcher in time), `--on-alert`
//! receiving the alert as JSON on its standard input, Ctrl-C stopping cleanly with the cursor saved, and
//! an attacker's event text reaching the terminal only sanitised.

use crate::support::world::{Pins, World};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const IMPL_SLOT: &str = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";

struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(w: &World, args: &[&str]) -> Watch {
        let pin = w.pins.borrow().get("m.toml").cloned().unwrap();
        let rpc = w.rpc.borrow().clone();
        let mut child = Command::new(env!("CARGO_BIN_EXE_breakglass"))
            .args(["--manifest", "m.toml", "--pin", &pin, "--rpc-url", &rpc])
            .args(["--audit-log", "audit.jsonl", "watch"])
            .args(args)
            .current_dir(w.sb.dir.path())
            .env("BREAKGLASS_CONFIG_DIR", w.sb.path("config"))
            .env("BREAKGLASS_DATA_DIR", w.sb.path("data"))
            .env_remove("ETH_RPC_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = channel();
        for s in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(s).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Watch {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing every needle.
    fn wait(&mut self, needles: &[&str], timeout: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self
                .seen
                .iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return l.clone();
            }
            let left = timeout.saturating_sub(t0.elapsed());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(l) => self.seen.push(l),
                Err(_) if t0.elapsed() < timeout => {}
                Err(_) => panic!(
                    "no line with {needles:?} within {timeout:?}; the watcher printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn interrupt(&mut self) -> i32 {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the watcher did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_wakes_on_new_heads_pages_through_on_alert_and_stops_on_ctrl_c() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let ws = w.rpc.borrow().replace("http://", "ws://");
    let mut watch = Watch::start(
        &w,
        &[
            "--ws-url",
            &ws,
            "--poll-ms",
            "60000",
            "--cursor",
            "cursor.json",
            "--on-alert",
            "cat > alert.json",
        ],
    );
    watch.wait(&["subscribed to new heads"], Duration::from_secs(20));
    let start = watch.wait(&["watching chain 31337 from block"], Duration::from_secs(5));
    assert!(
        start.contains("builtin:pool:implementation")
            && start.contains("builtin:pool:admin")
            && start.contains("builtin:vault:implementation")
            && start.contains("builtin:safe"),
        "{start}"
    );
    // The vault's implementation changed behind its back: no event, no transaction.
    w.anvil.rpc(
        "anvil_setStorageAt",
        serde_json::json!([w.vault, IMPL_SLOT, format!("0x{:0>64}", "beef")]),
    );
    w.anvil.rpc("anvil_mine", serde_json::json!(["0x1"]));
    let block = w.anvil.rpc("eth_blockNumber", serde_json::json!([]));
    let block = u64::from_str_radix(block.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let t0 = Instant::now();
    let alert = watch.wait(
        &[
            "ALERT [critical] builtin:vault:implementation",
            &format!("at block {block} (no transaction)"),
        ],
        Duration::from_secs(5),
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "only the WebSocket could have woken the watcher so soon"
    );
    assert!(
        alert.contains("0x000000000000000000000000000000000000bEEF"),
        "{alert}"
    );
    // The person's command got the alert as JSON.
    let t0 = Instant::now();
    let json = loop {
        let text = std::fs::read_to_string(w.sb.path("alert.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            break v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "--on-alert wrote nothing: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(json["rule"], "builtin:vault:implementation");
    assert_eq!(json["block"], block);
    assert!(json["tx"].is_null());
    // Ctrl-C: exit 0, the cursor names the last block checked.
    assert_eq!(watch.interrupt(), 0, "{}", watch.seen.join("\n"));
    let cursor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.sb.path("cursor.json")).unwrap()).unwrap();
    assert_eq!(cursor["block"], block);
    // The audit log has the alert.
    let audit = std::fs::read_to_string(w.sb.path("audit.jsonl")).unwrap();
    assert!(audit.contains("\"watch_alert\"") && audit.contains("builtin:vault:implementation"));
}

/// Bad starts are clear errors: a wss:// URL, a cursor for another chain, no node.
#[test]
fn watch_refuses_bad_starts_clearly() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let r = w.bg(
        "m.toml",
        true,
        &["watch", "--ws-url", "wss://example.invalid"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("wss:// is not supported"), "{}", r.stderr);
    w.sb.write(
        "other.json",
        r#"{"format":"breakglass/watch-cursor@1","chain_id":1,"block":5,"hash":"0x0000000000000000000000000000000000000000000000000000000000000001","recent":[[5,"0x0000000000000000000000000000000000000000000000000000000000000001"]]}"#,
    );
    let r = w.bg("m.toml", true, &["watch", "--cursor", "other.json"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("it is for chain 1"), "{}", r.stderr);
    let r = w.bg("m.toml", false, &["watch"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--rpc-url"), "{}", r.stderr);
}

/// The attacker writes the event: a `Note(string)` whose text holds a terminal escape (set the window
/// title), a newline followed by a forged `ALERT` line, and a right-to-left override. The watcher prints
/// the alert on one line with all of it made visible, and the JSON lines carry it escaped.
#[test]
fn an_attackers_event_text_cannot_forge_lines_or_drive_the_terminal() {
    let w = World::deploy();
    // A contract that logs its calldata as Note(string) (LOG1 with topic keccak("Note(string)")), put in
    // place with anvil_setCode: CALLDATACOPY(0, 0, size); LOG1(0, size, topic).
    let topic = crate::support::anvil::cast_offline(&["keccak", "Note(string)"]);
    let topic = topic.trim().trim_start_matches("0x");
    let code = format!("0x3660006000377f{topic}366000a100");
    let noisy = "0x00000000000000000000000000000000000b0015";
    w.anvil
        .rpc("anvil_setCode", serde_json::json!([noisy, code]));
    let text = format!(
        "{}\n[contracts.noisy]\naddress = \"{noisy}\"\nabi = [\"function note()\"]\n\n[[watch]]\nid = \"notes\"\nseverity = \"info\"\nkind = \"event\"\ncontract = \"noisy\"\nevent = \"event Note(string text)\"\n",
        w.manifest_text(Pins::Right, 31337)
    );
    w.write_manifest_text("m.toml", &text);
    let evil = "\u{1b}]0;pwned\u{7}\nALERT [critical] builtin:safe at block 1 (no transaction): forged\u{202e}";
    let data = crate::support::anvil::abi_encode("f(string)", &[evil]);
    let hash = w.anvil.rpc(
        "eth_sendTransaction",
        serde_json::json!([{ "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "to": noisy, "data": data.trim() }]),
    );
    let t0 = Instant::now();
    let receipt = loop {
        let r = w
            .anvil
            .rpc("eth_getTransactionReceipt", serde_json::json!([hash]));
        if !r.is_null() || t0.elapsed() > Duration::from_secs(10) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        receipt["logs"].as_array().map(|l| l.len()),
        Some(1),
        "{receipt}"
    );
    let block = u64::from_str_radix(
        receipt["blockNumber"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let b = block.to_string();
    let r = w.bg(
        "m.toml",
        true,
        &["watch", "--from-block", &b, "--until-block", &b],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let alerts: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("ALERT"))
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "one alert, one line; no forged line:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    let line = alerts[0];
    assert!(line.contains("ALERT [info] notes at block"), "{line}");
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{7}'),
        "{:?}",
        r.stdout
    );
    assert!(!r.stdout.contains('\u{202e}'), "{:?}", r.stdout);
    assert!(
        line.contains("forged"),
        "the text is shown, made visible: {line}"
    );
    // JSON lines: the same text, escaped.
    let r = w.bg(
        "m.toml",
        true,
        &["--json", "watch", "--from-block", &b, "--until-block", &b],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    let alert: serde_json::Value = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "alert")
        .unwrap();
    assert_eq!(alert["rule"], "notes");
}

/// `balance_drop` on an ERC-20 a contract holds (`token = "<contract id>"`): transfers that keep the balance
/// within the threshold raise nothing; a transfer of most of it alerts, naming the token and the transaction.
#[test]
fn an_erc20_balance_drop_alerts_and_small_moves_do_not() {
    let w = World::deploy();
    let supply = "1000000000000000000000"; // 1000 DEMO
    let token = w.anvil.deploy_artifact(
        "contracts/DemoToken.json",
        "constructor(uint256)",
        &[supply],
    );
    // The holder: an address the test controls (anvil's account 1, impersonated by anvil's unlocked send).
    let holder = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let deployer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    let send = |from: &str, to: &str, amount: &str| {
        let data = crate::support::anvil::calldata("transfer(address,uint256)", &[to, amount]);
        let hash = w.anvil.rpc(
            "eth_sendTransaction",
            serde_json::json!([{ "from": from, "to": token, "data": data.trim() }]),
        );
        let t0 = Instant::now();
        loop {
            let r = w
                .anvil
                .rpc("eth_getTransactionReceipt", serde_json::json!([hash]));
            if !r.is_null() {
                assert_eq!(r["status"], "0x1", "{r}");
                return (
                    u64::from_str_radix(
                        r["blockNumber"].as_str().unwrap().trim_start_matches("0x"),
                        16,
                    )
                    .unwrap(),
                    hash.as_str().unwrap().to_string(),
                );
            }
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let (first, _) = send(deployer, holder, "100000000000000000000"); // 100 DEMO
    let text = format!(
        "{}\n[contracts.treasury]\naddress = \"{holder}\"\nabi = [\"function noop()\"]\n\n[contracts.demo]\naddress = \"{token}\"\nabi = [\"function balanceOf(address) view returns (uint256)\"]\n\n[[watch]]\nid = \"treasury-demo\"\nseverity = \"critical\"\nkind = \"balance_drop\"\ncontract = \"treasury\"\ntoken = \"demo\"\npercent = 30\nblocks = 5\nplaybook = \"halt\"\n",
        w.manifest_text(Pins::Right, 31337)
    );
    w.write_manifest_text("m.toml", &text);
    // 10% out, then another 10%: below the threshold each time.
    send(holder, deployer, "10000000000000000000");
    send(holder, deployer, "10000000000000000000");
    // 60 of the 80 left: an alert.
    let (block, tx) = send(holder, deployer, "60000000000000000000");
    let (from, to) = ((first + 1).to_string(), block.to_string());
    let r = w.bg(
        "m.toml",
        true,
        &[
            "--json",
            "watch",
            "--from-block",
            &from,
            "--until-block",
            &to,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let alerts: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "alert" && v["rule"] == "treasury-demo")
        .collect();
    assert_eq!(alerts.len(), 1, "{}", r.stdout);
    let a = &alerts[0];
    assert_eq!(a["block"], block);
    assert_eq!(a["tx"], tx);
    // The highest balance within the window (5 blocks) is the 100 before the small moves.
    assert_eq!(a["old"], "100000000000000000000");
    assert_eq!(a["new"], "20000000000000000000");
    assert_eq!(a["playbook"], "halt");
    assert!(
        a["summary"]
            .as_str()
            .unwrap()
            .contains("demo balance of treasury fell 80.0%"),
        "{a}"
    );
}
