//! A private tmux server for driving the real binary as a person does: `send-keys`, `capture-pane`.
//! Every tmux command uses its own socket in a temporary directory, killed on drop, so a failing test
//! leaves no session behind and never touches anyone else's tmux. Also /proc helpers for the console's
//! process and its children.
#![allow(dead_code)]

use crate::support::anvil::tools_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(crate) const W: u16 = 80;
pub(crate) const H: u16 = 24;

/// Fails (does not skip) when tmux is missing.
pub(crate) fn require_tmux() {
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
pub(crate) fn require_tools() -> PathBuf {
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

pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A private tmux server with one 80×24 session running one command; killed on drop.
pub(crate) struct Tmux {
    socket: String,
    name: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts the shell command line `command(dir)` in a detached session of size W×H, where `dir` is a
    /// fresh directory for everything the command writes (removed on drop).
    pub(crate) fn start(tag: &str, command: impl FnOnce(&Path) -> String) -> Self {
        Self::start_sized(tag, W, H, command)
    }

    /// [`Tmux::start`] in a pane of `w`×`h`.
    pub(crate) fn start_sized(
        tag: &str,
        w: u16,
        h: u16,
        command: impl FnOnce(&Path) -> String,
    ) -> Self {
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
        let (w, h) = (w.to_string(), h.to_string());
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

    pub(crate) fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    pub(crate) fn capture(&self) -> String {
        let o = self.tmux(&["capture-pane", "-p", "-t", &self.name]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub(crate) fn display(&self, fmt: &str) -> String {
        let o = self.tmux(&["display-message", "-p", "-t", &self.name, fmt]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub(crate) fn send(&self, key: &str) {
        let o = self.tmux(&["send-keys", "-t", &self.name, key]);
        assert!(
            o.status.success(),
            "send-keys {key}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub(crate) fn pane_pid(&self) -> u32 {
        self.display("#{pane_pid}").parse().unwrap()
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Polls the screen until `ok` holds; panics with the screen and the process's stderr at `timeout`.
    pub(crate) fn wait(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
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
    pub(crate) fn wait_for(&self, needles: &[&str], timeout: Duration) -> String {
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
    pub(crate) fn console_pid(&self) -> u32 {
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
    pub(crate) fn exit_code(&self, timeout: Duration) -> i32 {
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
pub(crate) fn stat(pid: u32) -> Option<(u32, String, u64)> {
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

pub(crate) fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 2..].starts_with('Z') && !s[i + 2..].starts_with('X'))
        })
        .unwrap_or(false)
}

pub(crate) fn children(pid: u32) -> Vec<(u32, String)> {
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
pub(crate) fn cpu_ns_and_wakeups(pid: u32) -> (u64, u64) {
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

pub(crate) fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

pub(crate) fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The command line for the pane: the real binary with a clean environment (NO_COLOR unset) and
/// everything it writes under `dir`; the pane's shell writes its exit code to `dir/rc`.
pub(crate) fn console_command(dir: &Path, args: &[&str]) -> String {
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
