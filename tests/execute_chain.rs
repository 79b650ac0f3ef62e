//! `breakglass execute`, `broadcast` and `timelock status` against a real node: anvil with the real Safe
//! 1.4.1 (2-of-3: two accounts of the built-in Ledger simulator and one keystore), OpenZeppelin 5
//! transparent and UUPS proxies and a TimelockController. Every step runs the real binary as an incident
//! team would: `compose` → `sign` on the simulator (`device-sim`, a child process killed by PID) and with a
//! `cast`-made keystore → `execute` / `broadcast` → receipt and post-conditions in the bundle. What the
//! chain says afterwards is read independently with `cast`.
//!
//! The wall times of `broadcast` (signed bundle → mined receipt) and `execute` (simulator executor) are
//! printed, not asserted: `cargo test --test tests execute_chain -- --nocapture` shows them.

use crate::support::anvil::{address_of, Anvil};
use crate::support::bin::Run;
use crate::support::relay::Relay;
use crate::support::world::{
    all_output, ok, Pins, World, ONE_HUNDRED_ETH, SIM0, SIM2, TIMELOCK_DELAY,
};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ the simulator, a child process

// ------------------------------------------------------------------ helpers

fn eq_addr(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The bundle holds a successful receipt and every post-condition passed; returns the tx hash.
fn assert_mined_and_green(b: &Value, expects: &[&str]) -> String {
    let receipt = &b["receipt"];
    assert_eq!(receipt["status"], json!(1), "receipt: {b}");
    let hash = receipt["tx_hash"].as_str().unwrap().to_string();
    assert!(
        eq_addr(&hash, b["signed_tx"]["hash"].as_str().unwrap()),
        "receipt and signed_tx hashes differ: {b}"
    );
    assert!(
        receipt["block_number"].as_u64().unwrap_or(0) > 0,
        "{receipt}"
    );
    let posts = b["postconditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no postconditions: {b}"));
    assert_eq!(posts.len(), expects.len(), "postconditions: {posts:?}");
    for e in expects {
        let p = posts
            .iter()
            .find(|p| p["expect"] == *e)
            .unwrap_or_else(|| panic!("no post-condition {e:?} in {posts:?}"));
        assert_eq!(p["pass"], json!(true), "post-condition failed: {p}");
    }
    hash
}

fn tx_receipt_status(anvil: &Anvil, hash: &str) -> String {
    let r = anvil.rpc("eth_getTransactionReceipt", json!([hash]));
    r["status"].as_str().unwrap_or("").to_string()
}

// ------------------------------------------------------------------ 1. the whole incident

#[test]
fn whole_incident_pause_through_the_safe() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    assert!(!w.paused(&w.pool));
    let signed = w.compose_and_sign("m.toml", &["halt-pool"], "halt");
    let nonce = w.safe_nonce();
    let executor_nonce = w.nonce(&w.executor);

    let t0 = Instant::now();
    let r = w.execute_keystore("m.toml", &signed, "halt-done.json");
    let wall = t0.elapsed();
    ok(&r, "execute");
    eprintln!(
        "[figures] execute (keystore executor, incl. scrypt decryption): {:.0} ms wall",
        wall.as_secs_f64() * 1000.0
    );
    assert!(r.stdout.contains("PASS"), "{}", r.stdout);

    let b = w.bundle("halt-done.json");
    let hash = assert_mined_and_green(&b, &["paused() == true", &format!("owner() == {}", w.safe)]);
    assert!(
        eq_addr(b["signed_tx"]["from"].as_str().unwrap(), &w.executor),
        "{b}"
    );
    assert_eq!(tx_receipt_status(&w.anvil, &hash), "0x1");
    assert!(w.paused(&w.pool), "the pool is not paused on chain");
    assert_eq!(w.safe_nonce(), nonce + 1);
    assert_eq!(w.nonce(&w.executor), executor_nonce + 1);

    // Executing again is refused (the bundle holds a receipt), and so is the 2-signature bundle (its
    // nonce is spent): nothing is sent twice.
    let r = w.execute_keystore("m.toml", "halt-done.json", "again.json");
    assert_ne!(r.code, 0, "{}", all_output(&r));
    let r = w.execute_keystore("m.toml", &signed, "again2.json");
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("nonce"), "{}", all_output(&r));
    assert_eq!(w.nonce(&w.executor), executor_nonce + 1);
    assert_eq!(w.safe_nonce(), nonce + 1);
}

// ------------------------------------------------------------------ 2. MultiSendCallOnly batch

#[test]
fn multisend_batch_pauses_transparent_and_uups_proxies() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let signed = w.compose_and_sign("m.toml", &["halt"], "halt");
    let composed = w.bundle("halt.json");
    assert_eq!(
        composed["safe_tx"]["operation"], "delegatecall",
        "{composed}"
    );
    assert!(eq_addr(
        composed["safe_tx"]["to"].as_str().unwrap(),
        crate::support::anvil::MULTISEND_CALL_ONLY_141
    ));
    // The executor is simulator account 2 (not an owner), funded here.
    w.anvil.set_balance(SIM2, ONE_HUNDRED_ETH);
    let t0 = Instant::now();
    let r = w.execute_sim("m.toml", &signed, 2, "halt-done.json");
    let wall = t0.elapsed();
    ok(&r, "execute (simulator executor)");
    let b = w.bundle("halt-done.json");
    eprintln!(
        "[figures] execute (simulator executor, MultiSend of 2 pauses): {:.0} ms wall; send→receipt {:.1} ms",
        wall.as_secs_f64() * 1000.0,
        b["receipt"]["seconds"].as_f64().unwrap_or(-1.0) * 1000.0
    );
    assert_mined_and_green(
        &b,
        &[
            "paused() == true",
            &format!("owner() == {}", w.safe),
            "paused() == true",
        ],
    );
    assert_eq!(b["postconditions"].as_array().unwrap().len(), 3);
    assert!(eq_addr(b["signed_tx"]["from"].as_str().unwrap(), SIM2));
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
    assert_eq!(w.nonce(SIM2), 1);
}

// ------------------------------------------------------------------ 3. upgrades and code hashes

#[test]
fn upgrades_verified_by_slot_and_version_and_unpinned_code_refused() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    w.write_manifest("wrong.toml", Pins::Wrong);

    // The manifest whose pinned code hash is not the V2 code. With a node at hand, compose refuses at
    // once (issue 7: checked before an upgrade is signed).
    let r = w.bg(
        "wrong.toml",
        true,
        &["compose", "patch", "-o", "patch-wrong-online.json"],
    );
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(
        out.contains("CRITICAL") && out.contains("code hash"),
        "{out}"
    );
    assert!(!w.sb.path("patch-wrong-online.json").exists());
    // Composed and signed offline (no node to check against), it is still refused before the executor
    // signs anything.
    let nonce = w.safe_nonce();
    let nonce_s = nonce.to_string();
    ok(
        &w.bg(
            "wrong.toml",
            false,
            &[
                "compose",
                "patch",
                "--nonce",
                &nonce_s,
                "-o",
                "patch-wrong.json",
            ],
        ),
        "offline compose",
    );
    let signed = w.sign_twice("wrong.toml", "patch-wrong.json", "patch-wrong");
    let executor_nonce = w.nonce(&w.executor);
    let r = w.execute_keystore("wrong.toml", &signed, "patch-wrong-done.json");
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("code hash"), "{out}");
    assert!(out.contains("CRITICAL"), "{out}");
    assert!(
        !w.sb.path("patch-wrong-done.json").exists(),
        "execute wrote a bundle"
    );
    assert_eq!(w.safe_nonce(), nonce, "the Safe's nonce moved");
    assert_eq!(
        w.nonce(&w.executor),
        executor_nonce,
        "the executor sent something"
    );
    assert!(eq_addr(&w.implementation(&w.pool), &w.pool_v1));
    assert_eq!(w.version(&w.pool), "1");

    // The right pins: transparent (ProxyAdmin.upgradeAndCall) and UUPS (upgradeToAndCall) in one batch.
    let signed = w.compose_and_sign("m.toml", &["patch"], "patch");
    let r = w.execute_keystore("m.toml", &signed, "patch-done.json");
    ok(&r, "execute patch");
    let b = w.bundle("patch-done.json");
    let pool_impl = format!("implementation == {}", w.pool_v2);
    let vault_impl = format!("implementation == {}", w.vault_v2);
    assert_mined_and_green(
        &b,
        &[
            &pool_impl,
            "version() == 2",
            &vault_impl,
            "version() == \"2\"",
            "version() != 1",
        ],
    );
    assert!(eq_addr(&w.implementation(&w.pool), &w.pool_v2));
    assert!(eq_addr(&w.implementation(&w.vault), &w.vault_v2));
    assert_eq!(w.version(&w.pool), "2");
    assert_eq!(w.version(&w.vault), "2");
    assert_eq!(w.safe_nonce(), nonce + 1);
}

// ------------------------------------------------------------------ 4. timelock

fn timelock_status(w: &World, bundle: &str) -> Value {
    let r = w.bg("m.toml", true, &["--json", "timelock", "status", bundle]);
    ok(&r, "timelock status");
    r.json()
}

#[test]
fn timelock_schedule_wait_execute() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    // The pool behind the timelock was paused earlier (by the timelock).
    w.anvil.send_as(&w.timelock, &w.tl_pool, "pause()", &[]);
    assert!(w.paused(&w.tl_pool));

    let signed = w.compose_and_sign("m.toml", &["resume"], "resume");
    let st = timelock_status(&w, &signed);
    assert_eq!(st["state"], "unscheduled", "{st}");

    let schedule_run = w.execute_keystore("m.toml", &signed, "resume-scheduled.json");
    let scheduled = w.bundle("resume-scheduled.json");
    assert_eq!(
        scheduled["receipt"]["status"],
        json!(1),
        "{}",
        all_output(&schedule_run)
    );
    // Scheduling does not unpause: the action's post-condition can only hold after the execute step
    // (the exit code of the schedule's execute is checked at the end).
    assert!(w.paused(&w.tl_pool));

    let st = timelock_status(&w, "resume-scheduled.json");
    assert_eq!(st["state"], "pending", "{st}");
    let ready_at = st["ready_at"].as_u64().unwrap();
    let chain_time = st["chain_time"].as_u64().unwrap();
    assert!(ready_at >= chain_time + TIMELOCK_DELAY - 5, "{st}");
    let text = w.bg(
        "m.toml",
        true,
        &["timelock", "status", "resume-scheduled.json"],
    );
    ok(&text, "timelock status (text)");
    assert!(
        text.stdout.contains("pending") && text.stdout.contains(&ready_at.to_string()),
        "{}",
        text.stdout
    );

    // Too early: composing and signing the execute is fine, executing it is refused by the simulation
    // (the timelock reverts inside the Safe: GS013), nothing sent.
    let exec = w.compose_and_sign(
        "m.toml",
        &["--execute-scheduled", "resume-scheduled.json"],
        "resume-exec",
    );
    assert_eq!(w.bundle(&exec)["timelock"]["step"], "execute");
    let safe_nonce = w.safe_nonce();
    let r = w.execute_keystore("m.toml", &exec, "resume-exec-done.json");
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("GS013"), "{}", all_output(&r));
    assert!(!w.sb.path("resume-exec-done.json").exists());
    assert_eq!(w.safe_nonce(), safe_nonce);

    // After the delay: ready, and the same signed bundle executes.
    w.anvil.increase_time(TIMELOCK_DELAY + 1);
    let st = timelock_status(&w, "resume-scheduled.json");
    assert_eq!(st["state"], "ready", "{st}");
    let text = w.bg("m.toml", true, &["timelock", "status", &exec]);
    ok(&text, "timelock status (text, ready)");
    assert!(text.stdout.contains("ready"), "{}", text.stdout);

    let r = w.execute_keystore("m.toml", &exec, "resume-exec-done.json");
    ok(&r, "execute the timelock operation");
    let b = w.bundle("resume-exec-done.json");
    assert_mined_and_green(&b, &["paused() == false"]);
    assert!(!w.paused(&w.tl_pool));
    let st = timelock_status(&w, "resume-exec-done.json");
    assert_eq!(st["state"], "done", "{st}");
    let st = timelock_status(&w, "resume-scheduled.json");
    assert_eq!(st["state"], "done", "{st}");

    // Executing the schedule step must not fail on the action's post-conditions: they describe the
    // state after the timelock executes, which cannot hold when only the schedule is mined.
    ok(
        &schedule_run,
        "execute the schedule (post-conditions belong to the execute step)",
    );
    let posts = scheduled["postconditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        posts.iter().all(|p| p["pass"] != json!(false)),
        "the schedule bundle records failed post-conditions: {posts:?}"
    );
}

// ------------------------------------------------------------------ 5. guardian EOA, offline

/// compose (offline, explicit nonce and fees) → sign on the simulator, account 0 (the guardian).
fn guardian_bundle(w: &World, nonce: u64, name: &str) -> String {
    let composed = format!("{name}.json");
    let signed = format!("{name}-signed.json");
    let n = nonce.to_string();
    let r = w.bg(
        "m.toml",
        false,
        &[
            "compose",
            "guardian-halt",
            "--from",
            SIM0,
            "--nonce",
            &n,
            "--gas-limit",
            "150000",
            "--max-fee",
            "100000000000",
            "--priority-fee",
            "1000000000",
            "-o",
            &composed,
        ],
    );
    ok(&r, "compose guardian-halt offline");
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            &composed,
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            &signed,
        ],
    );
    ok(&r, "sign the guardian tx on the simulator");
    let b = w.bundle(&signed);
    assert!(
        b["signed_tx"]["raw"].as_str().unwrap().starts_with("0x02"),
        "{b}"
    );
    signed
}

#[test]
fn guardian_eoa_signed_offline_broadcast_later_once() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let nonce = w.nonce(SIM0);
    let signed = guardian_bundle(&w, nonce, "guardian");
    w.anvil.set_balance(SIM0, ONE_HUNDRED_ETH);
    assert!(!w.paused(&w.g_pool));

    let t0 = Instant::now();
    let r = w.bg(
        "m.toml",
        true,
        &["broadcast", &signed, "-o", "guardian-done.json"],
    );
    let wall = t0.elapsed();
    ok(&r, "broadcast");
    let b = w.bundle("guardian-done.json");
    eprintln!(
        "[figures] broadcast (signed bundle → mined receipt, automine): {:.0} ms wall for the process; send→receipt {:.1} ms inside",
        wall.as_secs_f64() * 1000.0,
        b["receipt"]["seconds"].as_f64().unwrap_or(-1.0) * 1000.0
    );
    let hash = assert_mined_and_green(&b, &["paused() == true"]);
    assert!(w.paused(&w.g_pool));
    assert_eq!(w.nonce(SIM0), nonce + 1);
    let block = b["receipt"]["block_number"].clone();

    // Again, on the output (in place): found by hash, not sent twice.
    let r = w.bg("m.toml", true, &["broadcast", "guardian-done.json"]);
    ok(&r, "broadcast again");
    let again = w.bundle("guardian-done.json");
    assert_eq!(again["receipt"]["tx_hash"].as_str().unwrap(), hash);
    assert_eq!(again["receipt"]["block_number"], block);
    assert_mined_and_green(&again, &["paused() == true"]);
    assert_eq!(
        w.nonce(SIM0),
        nonce + 1,
        "the guardian's nonce moved: sent twice"
    );
    // And on the original signed bundle too.
    let r = w.bg(
        "m.toml",
        true,
        &["broadcast", &signed, "-o", "guardian-again.json"],
    );
    ok(&r, "broadcast the original again");
    assert_eq!(
        w.bundle("guardian-again.json")["receipt"]["tx_hash"]
            .as_str()
            .unwrap(),
        hash
    );
    assert_eq!(w.nonce(SIM0), nonce + 1);
}

// ------------------------------------------------------------------ 6. nonce already used

#[test]
fn broadcast_with_a_nonce_already_used_fails_naming_the_nonce() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let nonce = w.nonce(SIM0);
    let signed = guardian_bundle(&w, nonce, "guardian");
    // Meanwhile the guardian account used that nonce for something else.
    w.anvil.set_balance(SIM0, ONE_HUNDRED_ETH);
    w.anvil.send_as(SIM0, &w.pool, "deposit()", &[]);
    assert_eq!(w.nonce(SIM0), nonce + 1);

    let r = w.bg("m.toml", true, &["broadcast", &signed, "-o", "out.json"]);
    let out = all_output(&r);
    assert_ne!(r.code, 0, "{out}");
    assert!(out.to_lowercase().contains("nonce"), "{out}");
    assert!(!w.paused(&w.g_pool));
    assert_eq!(w.nonce(SIM0), nonce + 1);
    if w.sb.path("out.json").exists() {
        assert!(
            w.bundle("out.json")["receipt"].is_null(),
            "a receipt was recorded"
        );
    }
}

// ------------------------------------------------------------------ 7. node not mining, down, back

#[test]
fn broadcast_resumes_after_timeout_and_node_outage_without_resending() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    w.anvil.set_balance(SIM0, ONE_HUNDRED_ETH);
    let nonce = w.nonce(SIM0);
    let signed = guardian_bundle(&w, nonce, "guardian");
    let hash = w.bundle(&signed)["signed_tx"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let before = std::fs::read(w.sb.path(&signed)).unwrap();

    // (a) The node accepts the tx but does not mine: the wait times out, nothing is recorded.
    w.anvil.rpc("evm_setAutomine", json!([false]));
    let r = w.bg(
        "m.toml",
        true,
        &["broadcast", &signed, "--wait-timeout", "2"],
    );
    let out = all_output(&r);
    assert_ne!(r.code, 0, "{out}");
    assert!(
        out.contains("no receipt") && out.contains("will not send twice"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(w.sb.path(&signed)).unwrap(),
        before,
        "the bundle changed"
    );
    let pending = w.anvil.rpc("eth_getTransactionByHash", json!([hash]));
    assert!(pending["blockNumber"].is_null(), "{pending}");

    w.anvil.rpc("evm_mine", json!([]));
    w.anvil.rpc("evm_setAutomine", json!([true]));
    let r = w.bg(
        "m.toml",
        true,
        &["broadcast", &signed, "-o", "after-timeout.json"],
    );
    ok(&r, "broadcast after the timeout");
    let b = w.bundle("after-timeout.json");
    assert_eq!(assert_mined_and_green(&b, &["paused() == true"]), hash);
    assert_eq!(w.nonce(SIM0), nonce + 1, "sent twice");

    // (b) The node goes down while broadcast waits, and comes back (anvil keeps its state behind a
    // relay): broadcast keeps waiting, finds the receipt, sends nothing twice.
    w.anvil.send_as(SIM0, &w.g_pool, "unpause()", &[]);
    let nonce = w.nonce(SIM0);
    let signed = guardian_bundle(&w, nonce, "guardian2");
    let hash = w.bundle(&signed)["signed_tx"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let relay = Relay::start(w.anvil.port);
    w.anvil.rpc("evm_setAutomine", json!([false]));
    *w.rpc.borrow_mut() = relay.url();
    let pin = w.pins.borrow()["m.toml"].clone();
    let sb_dir = w.sb.dir.path().to_path_buf();
    let (url, signed2) = (relay.url(), signed.clone());
    let cfg = w.sb.path("config");
    let data = w.sb.path("data");
    let waiter = std::thread::spawn(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_breakglass"))
            .args([
                "--manifest",
                "m.toml",
                "--pin",
                &pin,
                "--rpc-url",
                &url,
                "broadcast",
                &signed2,
                "-o",
                "after-outage.json",
                "--wait-timeout",
                "60",
            ])
            .current_dir(&sb_dir)
            .env("BREAKGLASS_CONFIG_DIR", cfg)
            .env("BREAKGLASS_DATA_DIR", data)
            .env_remove("ETH_RPC_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    });
    // Wait until the node has it pending, then take the node down, mine, and bring it back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while w
        .anvil
        .rpc("eth_getTransactionByHash", json!([hash]))
        .is_null()
    {
        assert!(
            Instant::now() < deadline,
            "broadcast never sent the transaction"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.set_down(true);
    std::thread::sleep(Duration::from_millis(1500));
    w.anvil.rpc("evm_mine", json!([]));
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        !waiter.is_finished(),
        "broadcast gave up while the node was down"
    );
    relay.set_down(false);
    let r = waiter.join().unwrap();
    ok(&r, "broadcast across the outage");
    let b = w.bundle("after-outage.json");
    assert_eq!(assert_mined_and_green(&b, &["paused() == true"]), hash);
    assert_eq!(w.nonce(SIM0), nonce + 1, "sent twice");
    assert!(
        r.stderr.contains("unreachable"),
        "no progress line saying the node is unreachable: {}",
        r.stderr
    );

    // (c) The node is really gone (anvil killed by its PID): a clear "unreachable" error.
    drop(relay);
    *w.rpc.borrow_mut() = w.anvil.url.clone();
    let status = Command::new("kill")
        .arg(w.anvil.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", w.anvil.port)).is_ok() {
        assert!(Instant::now() < deadline, "anvil did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    let r = w.bg("m.toml", true, &["broadcast", &signed, "-o", "dead.json"]);
    let out = all_output(&r);
    assert_ne!(r.code, 0, "{out}");
    assert!(out.contains("unreachable"), "{out}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert!(!w.sb.path("dead.json").exists());
}

// ------------------------------------------------------------------ 8. a revert explained

#[test]
fn reverting_safe_tx_is_explained_and_not_sent() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    // Someone paused the pool already: the Safe's pause() would revert inside execTransaction.
    w.anvil.send_as(&w.safe, &w.pool, "pause()", &[]);
    // Issue 17: compose simulates first and refuses, naming the call that fails; nothing is written.
    let r = w.bg(
        "m.toml",
        true,
        &["compose", "halt-pool", "-o", "refused.json"],
    );
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(
        out.contains("the simulation refuses this transaction"),
        "{out}"
    );
    assert!(out.contains("REVERTS") && out.contains("GS013"), "{out}");
    assert!(out.contains("pool.pause()"), "{out}");
    assert!(!w.sb.path("refused.json").exists());
    // Execute's own check still holds for a bundle composed without the simulation.
    let signed = w.compose_and_sign("m.toml", &["halt-pool", "--no-simulate"], "halt");
    let nonce = w.safe_nonce();
    let executor_nonce = w.nonce(&w.executor);
    let r = w.execute_keystore("m.toml", &signed, "halt-done.json");
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("GS013"), "{out}");
    assert!(out.contains("inner call failed"), "{out}");
    assert!(out.contains("nothing was signed or sent"), "{out}");
    assert!(!w.sb.path("halt-done.json").exists());
    assert_eq!(w.safe_nonce(), nonce);
    assert_eq!(w.nonce(&w.executor), executor_nonce);

    // --json names it too.
    let r = w.bg(
        "m.toml",
        true,
        &[
            "--json",
            "execute",
            &signed,
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
            "-o",
            "halt-done.json",
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        all_output(&r).contains("simulation_reverted"),
        "{}",
        all_output(&r)
    );
}

// ------------------------------------------------------------------ 9. owners changed on chain

#[test]
fn owners_changed_on_chain_is_critical() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let signed = w.compose_and_sign("m.toml", &["halt-pool"], "halt");
    let snap = w.anvil.snapshot();

    // An owner added (by the Safe itself, as a signed execTransaction would).
    let intruder = address_of(crate::support::anvil::DEFAULT_KEYS[7]);
    w.anvil.send_as(
        &w.safe,
        &w.safe,
        "addOwnerWithThreshold(address,uint256)",
        &[&intruder, "2"],
    );
    let nonce = w.safe_nonce();
    let executor_nonce = w.nonce(&w.executor);
    let r = w.execute_keystore("m.toml", &signed, "halt-done.json");
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("CRITICAL"), "{out}");
    assert!(!w.sb.path("halt-done.json").exists());
    assert_eq!(w.safe_nonce(), nonce);
    assert_eq!(w.nonce(&w.executor), executor_nonce);
    assert!(!w.paused(&w.pool));

    // Only the threshold lowered.
    w.anvil.revert_to(&snap);
    w.anvil
        .send_as(&w.safe, &w.safe, "changeThreshold(uint256)", &["1"]);
    let r = w.execute_keystore("m.toml", &signed, "halt-done.json");
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(
        out.contains("CRITICAL") && out.contains("threshold"),
        "{out}"
    );
    assert!(!w.paused(&w.pool));
}

// ------------------------------------------------------------------ 10. execute interrupted

#[test]
fn execute_timed_out_resumes_with_broadcast_and_never_signs_twice() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let signed = w.compose_and_sign("m.toml", &["halt-pool"], "halt");
    let safe_nonce = w.safe_nonce();
    let executor_nonce = w.nonce(&w.executor);
    w.anvil.rpc("evm_setAutomine", json!([false]));
    let r = w.bg(
        "m.toml",
        true,
        &[
            "execute",
            &signed,
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
            "-o",
            "halt-done.json",
            "--wait-timeout",
            "1",
        ],
    );
    let out = all_output(&r);
    assert_ne!(r.code, 0, "{out}");
    assert!(out.contains("no receipt"), "{out}");
    // The signed execution is on disk before it is sent, without a receipt.
    let b = w.bundle("halt-done.json");
    let hash = b["signed_tx"]["hash"].as_str().unwrap().to_string();
    assert!(b["receipt"].is_null(), "{b}");

    // Running execute again on that output (or on the signed bundle) must not sign and send a second
    // execTransaction while the first is pending.
    for (input, out) in [
        ("halt-done.json", "halt-done-2.json"),
        (signed.as_str(), "halt-done-3.json"),
    ] {
        let r = w.execute_keystore("m.toml", input, out);
        assert_ne!(r.code, 0, "execute {input} again: {}", all_output(&r));
        assert!(
            !w.sb.path(out).exists(),
            "execute {input} again wrote {out}"
        );
    }
    let pending = w
        .anvil
        .rpc("eth_getTransactionCount", json!([w.executor, "pending"]));
    assert_eq!(
        pending,
        json!(format!("{:#x}", executor_nonce + 1)),
        "a second tx is pending"
    );

    w.anvil.rpc("evm_mine", json!([]));
    w.anvil.rpc("evm_setAutomine", json!([true]));
    let r = w.bg("m.toml", true, &["broadcast", "halt-done.json"]);
    ok(&r, "broadcast resumes the execute");
    let b = w.bundle("halt-done.json");
    assert_eq!(
        assert_mined_and_green(&b, &["paused() == true", &format!("owner() == {}", w.safe)]),
        hash
    );
    assert!(w.paused(&w.pool));
    assert_eq!(w.safe_nonce(), safe_nonce + 1);
    assert_eq!(
        w.nonce(&w.executor),
        executor_nonce + 1,
        "the executor sent a second transaction"
    );
}

/// A playbook that mixes routes (issue 15): one Safe batch pauses the pool directly and schedules the
/// timelocked pool's resumption; the pause's post-condition is checked when the batch is mined, the
/// resumption's when the timelock executes it.
#[test]
fn mixed_playbook_pauses_directly_and_schedules_through_the_timelock_in_one_batch() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let mut text = std::fs::read_to_string(w.sb.path("m.toml")).unwrap();
    text.push_str(
        r#"
[[playbooks]]
id = "pause-and-resume-later"
title = "Pause the pool now, schedule the timelocked pool's resumption"
actions = ["pause-pool", "unpause-tlpool"]
"#,
    );
    w.sb.write("mixed.toml", &text);
    let h = w.sb.run(&["--manifest", "mixed.toml", "manifest", "hash"]);
    ok(&h, "hash");
    w.pins
        .borrow_mut()
        .insert("mixed.toml".into(), h.stdout.trim().to_string());
    // Direct actions after timelock ones would not be one coherent batch: refused at load.
    let bad = text.replace(
        r#"actions = ["pause-pool", "unpause-tlpool"]"#,
        r#"actions = ["unpause-tlpool", "pause-pool"]"#,
    );
    w.sb.write("bad.toml", bad);
    let r = w.sb.run(&["--manifest", "bad.toml", "manifest", "check"]);
    assert_eq!(r.code, 1, "{}", all_output(&r));
    assert!(
        r.stderr.contains("Safe action after a timelock action"),
        "{}",
        r.stderr
    );

    w.anvil.send_as(&w.timelock, &w.tl_pool, "pause()", &[]);
    let signed = w.compose_and_sign("mixed.toml", &["pause-and-resume-later"], "mixed");
    let b = w.bundle(&signed);
    assert_eq!(b["actions"], json!(["pause-pool", "unpause-tlpool"]));
    assert_eq!(b["timelock"]["step"], "schedule");
    // The batch is MultiSendCallOnly: a direct pause, then the timelock's schedule.
    let v = w.bg("mixed.toml", false, &["--json", "verify", &signed]);
    ok(&v, "verify the mixed batch");
    let report = v.json();
    assert_eq!(report["allowed"], json!(true), "{report}");

    let r = w.execute_keystore("mixed.toml", &signed, "mixed-done.json");
    ok(&r, "execute the batch");
    let done = w.bundle("mixed-done.json");
    assert!(w.paused(&w.pool), "paused directly");
    assert!(w.paused(&w.tl_pool), "the resumption is only scheduled");
    let posts = done["postconditions"].as_array().unwrap();
    assert!(
        posts
            .iter()
            .all(|p| p["action"] == json!("pause-pool") && p["pass"] == json!(true)),
        "only the direct action's post-conditions are checked now: {posts:?}"
    );
    assert!(!posts.is_empty());
    assert_eq!(timelock_status(&w, "mixed-done.json")["state"], "pending");

    w.anvil.increase_time(TIMELOCK_DELAY + 1);
    let exec = w.compose_and_sign(
        "mixed.toml",
        &["--execute-scheduled", "mixed-done.json"],
        "mixed-exec",
    );
    assert_eq!(w.bundle(&exec)["actions"], json!(["unpause-tlpool"]));
    let r = w.execute_keystore("mixed.toml", &exec, "mixed-exec-done.json");
    ok(&r, "execute the timelock operation");
    assert_mined_and_green(&w.bundle("mixed-exec-done.json"), &["paused() == false"]);
    assert!(!w.paused(&w.tl_pool));
    assert!(w.paused(&w.pool));
}
