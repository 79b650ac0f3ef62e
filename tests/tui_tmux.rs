//! The drill end to end, as a person runs it: the real binary in an 80×24 tmux pane, keys sent with
//! `send-keys`, the screen read with `capture-pane`. From the Dashboard to the halt playbook, two
//! signatures on the built-in Ledger simulator, execution on the drill's anvil and both post-conditions
//! green; then `q`, and the drill's process and its anvil are gone.
//!
//! Also measured and printed (not asserted): process start to first frame, key press to redraw, and the
//! console's idle CPU. Run with `--nocapture` to see the figures.
//!
//! Every tmux command uses a private server (`tmux -S <socket in a temporary directory>`), killed in a
//! Drop guard, so a failing test leaves no session behind and never touches anyone else's tmux.

use crate::support::tmux::{
    alive, children, clk_tck, console_command, cpu_ns_and_wakeups, ms, percentile, require_tmux,
    require_tools, stat, Tmux, H, W,
};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ the drill

#[test]
fn drill_in_tmux_from_playbook_to_green_postconditions() {
    require_tmux();
    require_tools();
    let spawned = Instant::now();
    let t = Tmux::start("drill", |d| console_command(d, &["drill"]));
    let err = || t.stderr();
    let long = Duration::from_secs(90);
    let step = Duration::from_secs(30);

    // Pane geometry is what the test claims.
    assert_eq!(
        t.display("#{pane_width}x#{pane_height}"),
        format!("{W}x{H}")
    );

    // First frame, then the simulator answers.
    t.wait("the first frame", long, |s| {
        s.contains("breakglass") && s.contains("[Dashboard]")
    });
    let first_frame = spawned.elapsed();
    let pid = t.console_pid();
    let s = t.wait_for(
        &[
            "SIMULATED LEDGER",
            "blind signing ON",
            " DRILL ",
            "Dashboard — DRILL",
            "PINNED (DRILL",
            "2 of 3 must sign",
            "(DRILL local chain)",
            "#0 0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D owner",
            "#1 0x463e4e114AA57F54f2Fd2C3ec03572C6f75d84C2 owner",
            "Press p to choose a playbook.",
            "q quit",
        ],
        long,
    );
    let ready = spawned.elapsed();
    let anvils: Vec<u32> = children(pid)
        .into_iter()
        .filter(|(_, c)| c.starts_with("anvil"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        anvils.len(),
        1,
        "the drill runs one anvil: {:?}",
        children(pid)
    );
    let anvil = anvils[0];
    // The first screen in full, 80×24.
    assert_eq!(s.lines().count(), H as usize, "{s}");

    // Playbooks.
    t.send("p");
    t.wait_for(
        &["[Playbooks]", "▶ halt", "Halt all markets", "Enter compose"],
        step,
    );

    // Enter composes and verifies: Review with the hashes to compare.
    t.send("Enter");
    let s = t.wait_for(
        &[
            "[Review]",
            "Compare with the Ledger screen:",
            "Domain hash",
            "Message hash",
            "safeTxHash",
            "ALLOWED: pause-pool, pause-vault",
            "Simulation (block",
            "succeeds: 3 event(s)",
            "s sign",
        ],
        step,
    );
    let hash_rows: Vec<&str> = s
        .lines()
        .filter(|l| {
            let l = l.trim_matches(|c| c == '│' || c == ' ');
            l.starts_with("0x") && l.split(' ').count() == 8
        })
        .collect();
    assert_eq!(
        hash_rows.len(),
        3,
        "three whole grouped hashes on Review:\n{s}"
    );

    // Sign: the screen previews the simulated device's pages (full EIP-712, "Raw messages" on, as the
    // drill's device is set); PgDn shows the later fields. Enter opens the dialog; y signs; the
    // simulator approves.
    t.send("s");
    t.wait_for(
        &[
            "[Sign]",
            "Signatures: 0 of 2",
            "▶ account 0",
            "The device will show (full EIP-712",
            "| Review struct EIP712Domain",
            "| chainId 31337",
        ],
        step,
    );
    for _ in 0..3 {
        t.send("NPage");
    }
    t.wait_for(&["| operation 1", "= DELEGATECALL"], step);
    t.wait_for(&["| nonce 0"], step);
    t.send("Enter");
    t.wait_for(
        &["Confirm", "Sign with account 0", "y = sign", "y confirm"],
        step,
    );
    t.send("y");
    t.wait_for(
        &[
            "Signatures: 1 of 2",
            "✓ 0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D",
            "▶ account 1",
        ],
        step,
    );
    t.send("Enter");
    t.wait_for(&["Sign with account 1", "y = sign"], step);
    t.send("y");

    // The second signature reaches the threshold: Execute.
    t.wait_for(
        &[
            "[Execute]",
            "Signatures 2 of 2",
            "Ready: press Enter to execute",
        ],
        step,
    );
    t.send("Enter");
    t.wait_for(&["Execute now?", "y = execute"], step);
    t.send("y");
    let s = t.wait_for(
        &[
            "PASS  pause-pool: paused() == true",
            "PASS  pause-vault: paused() == true",
            "mined in block",
            "all post-conditions passed",
        ],
        step,
    );
    assert!(!s.contains("FAIL"), "{s}");
    println!("--- the end of the drill at {W}×{H}:\n{s}");

    // ---- measurements (reported, not asserted)
    let mut lat = Vec::new();
    let mut send_cost = Vec::new();
    for i in 0..20 {
        let (k, want) = if i % 2 == 0 {
            ("d", "[Dashboard]")
        } else {
            ("x", "[Execute]")
        };
        let t0 = Instant::now();
        t.send(k);
        send_cost.push(t0.elapsed());
        t.wait(want, step, |s| s.contains(want));
        lat.push(t0.elapsed());
    }
    let mut cap = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        t.capture();
        cap.push(t0.elapsed());
    }
    let cap_med = percentile(&mut cap, 0.5);
    let send_med = percentile(&mut send_cost, 0.5);
    let (lat_med, lat_p90, lat_max) = (
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.9),
        percentile(&mut lat, 1.0),
    );

    // Idle CPU over 5 s.
    let tck = clk_tck();
    let (_, _, ticks0) = stat(pid).unwrap();
    let (ns0, sw0) = cpu_ns_and_wakeups(pid);
    let anvil0 = stat(anvil).map(|s| s.2).unwrap_or(0);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let secs = t0.elapsed().as_secs_f64();
    let (_, _, ticks1) = stat(pid).unwrap();
    let (ns1, sw1) = cpu_ns_and_wakeups(pid);
    let anvil1 = stat(anvil).map(|s| s.2).unwrap_or(0);
    let idle_pct_ticks = (ticks1 - ticks0) as f64 / tck as f64 / secs * 100.0;
    let idle_pct_ns = (ns1 - ns0) as f64 / 1e9 / secs * 100.0;
    let wakeups = (sw1 - sw0) as f64 / secs;
    let anvil_pct = (anvil1 - anvil0) as f64 / tck as f64 / secs * 100.0;

    println!(
        "MEASURE drill: process start to first frame {} (includes anvil start and contract deployment); \
         to the simulator ready {}",
        ms(first_frame),
        ms(ready)
    );
    println!(
        "MEASURE key press to redraw over 20 presses (tmux send-keys + capture-pane polling): median {}, \
         p90 {}, max {}; tmux overhead: send-keys median {}, capture-pane median {}",
        ms(lat_med),
        ms(lat_p90),
        ms(lat_max),
        ms(send_med),
        ms(cap_med)
    );
    println!(
        "MEASURE idle CPU of the drill process over {secs:.1} s: {idle_pct_ticks:.2}% (utime+stime, {tck} Hz \
         ticks), {idle_pct_ns:.3}% (schedstat), {wakeups:.0} wakeups/s over all threads; its anvil {anvil_pct:.2}%"
    );

    // ---- q: the console closes, the drill stops its anvil, the process exits 0.
    t.send("q");
    let code = t.exit_code(step);
    let e = err();
    assert_eq!(code, 0, "drill exit status; stderr:\n{e}");
    assert!(!alive(pid), "the drill's process {pid} is still running");
    let t0 = Instant::now();
    while alive(anvil) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(anvil), "the drill's anvil {anvil} outlived it");
    assert!(
        e.contains("DRILL over: the local chain was stopped"),
        "stderr:\n{e}"
    );
    assert!(
        e.contains("bundle halt; signatures 2 of 2; mined in block"),
        "stderr:\n{e}"
    );
    // The terminal was restored: the pane is back on the normal screen, not the console's.
    let after = t.capture();
    assert!(!after.contains("Dashboard — DRILL"), "{after}");

    // The audit trail has the incident, marked as a drill.
    let audit = std::fs::read_to_string(t.path("audit.jsonl")).unwrap();
    let events: Vec<(String, bool)> = audit
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event"].as_str().unwrap_or("").to_string(),
                v["details"]["drill"] == serde_json::json!(true),
            )
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        ["compose", "sign", "sign", "execute", "broadcast"],
        "audit log:\n{audit}"
    );
    assert!(
        events.iter().all(|(_, d)| *d),
        "every entry says drill: {audit}"
    );
    drop(t);
}

/// The console without the drill's chain setup: process start to first frame, reported.
#[test]
fn console_first_frame_time() {
    require_tmux();
    let manifest = crate::support::bin::repo().join("examples/demo.toml");
    let m = manifest.display().to_string();
    let spawned = Instant::now();
    let t = Tmux::start("tui", |d| console_command(d, &["--manifest", &m, "tui"]));
    let (s, _) = t.wait("the first frame", Duration::from_secs(30), |s| {
        s.contains("[Dashboard]") && s.contains("Press p to choose a playbook.")
    });
    let first = spawned.elapsed();
    assert!(
        s.contains("UNTRUSTED"),
        "no pin in a fresh config dir:\n{s}"
    );
    assert!(s.contains("offline"), "{s}");
    assert!(!s.contains("DRILL"), "{s}");
    // tmux's own cost: the same wait for a shell that prints a line.
    let spawned = Instant::now();
    let base = Tmux::start("base", |_| "printf '[Dashboard]'; sleep 30".to_string());
    base.wait("printf", Duration::from_secs(10), |s| {
        s.contains("[Dashboard]")
    });
    let baseline = spawned.elapsed();
    println!(
        "MEASURE console (breakglass tui, demo manifest, offline): process start to first frame {} \
         (tmux session start + polling included; the same for printf: {})",
        ms(first),
        ms(baseline)
    );
    t.send("q");
    let code = t.exit_code(Duration::from_secs(10));
    assert_eq!(code, 0, "stderr: {}", t.stderr());
}

/// Issue 18 in the drill: the patch playbook carries both implementations' storage layouts, and the
/// console's Review shows the check for each upgrade beside the simulation (issue 17).
#[test]
fn drill_patch_review_shows_the_storage_layout_check() {
    require_tmux();
    require_tools();
    let t = Tmux::start_sized("drill-patch", 120, 60, |d| console_command(d, &["drill"]));
    let long = Duration::from_secs(90);
    let step = Duration::from_secs(30);
    t.wait_for(&["SIMULATED LEDGER", "Press p to choose a playbook."], long);
    t.send("p");
    t.wait_for(&["▶ halt", "patch"], step);
    t.send("Down");
    t.wait_for(&["▶ patch"], step);
    t.send("Enter");
    t.wait_for(
        &[
            "Review — DRILL",
            "ALLOWED: upgrade-pool, upgrade-vault",
            "Simulation (block",
            "ok: storage layout layouts/PausablePool.json → layouts/PausablePoolV2.json keeps every variable in place",
            "ok: storage layout layouts/UUPSPool.json → layouts/UUPSPoolV2.json keeps every variable in place",
        ],
        step,
    );
    t.send("q");
}

/// Issue 19 in the drill: the dashboard shows the drill's pre-signed pause ladder as live; `F` and the
/// typed word `fire` execute its live rung (the pool and vault pause, post-conditions hold); the ladder
/// then shows its next rung live.
#[test]
fn drill_fires_its_pre_signed_ladder_from_the_dashboard() {
    require_tmux();
    require_tools();
    let t = Tmux::start_sized("drill-ladder", 120, 40, |d| console_command(d, &["drill"]));
    let long = Duration::from_secs(90);
    let step = Duration::from_secs(30);
    t.wait_for(
        &[
            "SIMULATED LEDGER",
            "halt-ladder: LIVE rung 1 of 3 (Safe nonce 0), 3 left (F fires)",
            "F fire ladder",
        ],
        long,
    );
    t.send("F");
    t.wait_for(&["Fire the ladder", "Type fire and press Enter"], step);
    // A wrong word does not fire.
    for k in ["f", "i", "r", "Enter"] {
        t.send(k);
    }
    t.wait_for(&["ladder not fired: type the word fire"], step);
    t.send("F");
    for k in ["f", "i", "r", "e"] {
        t.send(k);
    }
    t.wait_for(&["fire_"], step);
    t.send("Enter");
    t.wait_for(&["ladder rung 1 mined", "every post-condition holds"], step);
    t.wait_for(&["halt-ladder: LIVE rung 2 of 3 (Safe nonce 1)"], step);
    t.send("q");
}

/// Issue 20 in the console: the dashboard runs the chain watcher on the drill's node. A change of the
/// pool proxy's EIP-1967 implementation slot made behind its back (`anvil_setStorageAt`, no event, no
/// transaction) takes over the header in red with the rule and the block; `A` acknowledges it.
#[test]
fn the_console_watches_the_chain_and_raises_an_alert() {
    require_tmux();
    require_tools();
    let t = Tmux::start_sized("drill-watch", 120, 40, |d| console_command(d, &["drill"]));
    let long = Duration::from_secs(90);
    let step = Duration::from_secs(30);
    t.wait_for(
        &["SIMULATED LEDGER", "Watch     4 rule(s), from block"],
        long,
    );
    // The drill says where its chain and files are.
    let err = t.stderr();
    let rpc = err
        .split("local chain at ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("the drill did not say where its chain is:\n{err}"))
        .to_string();
    let dir = err
        .split("drill files in ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    let manifest = std::fs::read_to_string(std::path::Path::new(&dir).join("drill.toml")).unwrap();
    let pool = manifest
        .split("[contracts.pool]")
        .nth(1)
        .and_then(|s| s.split("address = \"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let cast = |args: &[&str]| {
        let o = std::process::Command::new(crate::support::anvil::cast_bin())
            .args(args)
            .args(["--rpc-url", &rpc])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cast {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    cast(&[
        "rpc",
        "anvil_setStorageAt",
        &pool,
        "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc",
        "0x000000000000000000000000000000000000000000000000000000000000dead",
    ]);
    cast(&["rpc", "anvil_mine", "0x1"]);
    let s = t.wait_for(
        &[
            "ALERT [CRITICAL] builtin:pool:implementation",
            "no transaction",
            "A acknowledge",
            "0x000000000000000000000000000000000000dEaD",
        ],
        step,
    );
    assert!(
        s.contains("1 alert(s) this session") || s.contains("ALERT"),
        "{s}"
    );
    t.send("A");
    t.wait("the alert banner to go", step, |s| {
        !s.contains("ALERT [CRITICAL]") && s.contains("alert acknowledged")
    });
    // It is in the audit log.
    let audit = std::fs::read_to_string(t.path("audit.jsonl")).unwrap_or_default();
    assert!(
        audit.contains("watch_alert") && audit.contains("builtin:pool:implementation"),
        "{audit}"
    );
    t.send("q");
}
