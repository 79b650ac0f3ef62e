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

use crate::support::anvil::tools_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const W: u16 = 80;
const H: u16 = 24;

/// Fails (does not skip) when tmux is missing.
fn require_tmux() {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`tmux -V` failed ({}): the console's end-to-end test needs tmux; scripts/test.sh installs it \
             (scripts/setup.sh, apt package tmux)",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "tmux is not installed ({e}): the console's end-to-end test needs it; scripts/test.sh installs it \
             (scripts/setup.sh, apt package tmux)"
        ),
    }
}

/// Fails with the hint when the pinned tools (anvil, contract artifacts) are missing.
fn require_tools() -> PathBuf {
    let t = tools_dir();
    let anvil = t.join("npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        anvil.is_file(),
        "the drill needs anvil at {}: run scripts/test.sh once (it installs the pinned tools into .tools/), \
         or set BREAKGLASS_TOOLS",
        anvil.display()
    );
    t
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A private tmux server with one 80×24 session running one command; killed on drop.
struct Tmux {
    socket: String,
    name: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts the shell command line `command(dir)` in a detached session of size W×H, where `dir` is a
    /// fresh directory for everything the command writes (removed on drop).
    fn start(tag: &str, command: impl FnOnce(&Path) -> String) -> Self {
        require_tmux();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let unique = format!("bg-{tag}-{}-{nanos}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        // No status bar (the pane is then the whole W×H), keep the pane after the process exits so its
        // exit status can be read, and no user configuration.
        let conf = dir.path().join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g status off\nset -g remain-on-exit on\nset -g history-limit 0\n",
        )
        .unwrap();
        let command = command(dir.path());
        let t = Self {
            socket: dir.path().join("tmux.sock").display().to_string(),
            name: unique,
            dir,
        };
        let (w, h) = (W.to_string(), H.to_string());
        let o = Command::new("tmux")
            .args(["-S", &t.socket, "-f"])
            .arg(&conf)
            .args([
                "new-session",
                "-d",
                "-s",
                &t.name,
                "-x",
                &w,
                "-y",
                &h,
                &command,
            ])
            .env_remove("TMUX")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    fn capture(&self) -> String {
        let o = self.tmux(&["capture-pane", "-p", "-t", &self.name]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn display(&self, fmt: &str) -> String {
        let o = self.tmux(&["display-message", "-p", "-t", &self.name, fmt]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn send(&self, key: &str) {
        let o = self.tmux(&["send-keys", "-t", &self.name, key]);
        assert!(
            o.status.success(),
            "send-keys {key}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn pane_pid(&self) -> u32 {
        self.display("#{pane_pid}").parse().unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Polls the screen until `ok` holds; panics with the screen and the process's stderr at `timeout`.
    fn wait(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> (String, Duration) {
        let t0 = Instant::now();
        loop {
            let s = self.capture();
            if ok(&s) {
                return (s, t0.elapsed());
            }
            if t0.elapsed() > timeout {
                panic!(
                    "waited {timeout:?} for {what}; the screen is:\n{s}\n--- exit code: {:?}; stderr:\n{}",
                    std::fs::read_to_string(self.path("rc")).ok(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until every needle is on the screen and the screen has settled (unchanged for 25 ms), so a
    /// frame caught half-written does not count.
    fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
        let last = std::cell::RefCell::new((String::new(), Instant::now()));
        self.wait(&format!("{needles:?}"), timeout, |s| {
            let mut l = last.borrow_mut();
            if l.0 != s {
                *l = (s.to_string(), Instant::now());
                return false;
            }
            l.1.elapsed() >= Duration::from_millis(25) && needles.iter().all(|n| s.contains(n))
        })
        .0
    }

    /// The console's process: the child of the pane's shell.
    fn console_pid(&self) -> u32 {
        let sh = self.pane_pid();
        let t0 = Instant::now();
        loop {
            let kids: Vec<u32> = children(sh)
                .into_iter()
                .filter(|(_, c)| c == "breakglass")
                .map(|(p, _)| p)
                .collect();
            if let [p] = kids[..] {
                return p;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no breakglass process under the pane's shell {sh}: {:?}",
                children(sh)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The console's exit code, written by the pane's shell once it returns.
    fn exit_code(&self, timeout: Duration) -> i32 {
        let t0 = Instant::now();
        loop {
            if let Ok(s) = std::fs::read_to_string(self.path("rc")) {
                if let Ok(c) = s.trim().parse() {
                    return c;
                }
            }
            assert!(
                t0.elapsed() < timeout,
                "the console did not exit:\n{}\n--- stderr:\n{}",
                self.capture(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-session", "-t", &self.name]);
        let _ = self.tmux(&["kill-server"]);
    }
}

// ------------------------------------------------------------------ /proc

/// (ppid, comm, utime+stime ticks) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u32, String, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
    // After "pid (comm) ": state(0) ppid(1) … utime(11) stime(12).
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((ppid, comm, ticks))
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 2..].starts_with('Z') && !s[i + 2..].starts_with('X'))
        })
        .unwrap_or(false)
}

fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((pp, comm, _)) = stat(p) {
            if pp == pid {
                out.push((p, comm));
            }
        }
    }
    out
}

/// Nanoseconds on CPU and voluntary context switches, summed over the process's threads.
fn cpu_ns_and_wakeups(pid: u32) -> (u64, u64) {
    let (mut ns, mut sw) = (0, 0);
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let p = t.path();
            if let Ok(s) = std::fs::read_to_string(p.join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if let Ok(s) = std::fs::read_to_string(p.join("status")) {
                for l in s.lines() {
                    if let Some(v) = l.strip_prefix("voluntary_ctxt_switches:") {
                        sw += v.trim().parse::<u64>().unwrap_or(0);
                    }
                }
            }
        }
    }
    (ns, sw)
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The command line for the pane: the real binary with a clean environment (NO_COLOR unset) and
/// everything it writes under `dir`; the pane's shell writes its exit code to `dir/rc`.
fn console_command(dir: &Path, args: &[&str]) -> String {
    let tools = tools_dir();
    let bin = env!("CARGO_BIN_EXE_breakglass");
    let d = |rel: &str| sh_quote(&dir.join(rel).display().to_string());
    format!(
        "cd {} && env -u NO_COLOR -u ETH_RPC_URL -u BREAKGLASS_MANIFEST -u BREAKGLASS_PIN \
         TMPDIR={} BREAKGLASS_TOOLS={} BREAKGLASS_CONFIG_DIR={} BREAKGLASS_DATA_DIR={} \
         {} --audit-log {} {} 2>{}; echo $? >{}",
        sh_quote(&dir.display().to_string()),
        sh_quote(&dir.display().to_string()),
        sh_quote(&tools.display().to_string()),
        d("config"),
        d("data"),
        sh_quote(bin),
        d("audit.jsonl"),
        args.iter()
            .map(|a| sh_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        d("stderr"),
        d("rc"),
    )
}

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

    // Sign: Enter opens the dialog; y signs; the simulator approves.
    t.send("s");
    t.wait_for(&["[Sign]", "Signatures: 0 of 2", "▶ account 0"], step);
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
