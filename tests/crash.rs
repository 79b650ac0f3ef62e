//! Crash safety with real SIGKILLs: the real binary is killed at delays swept across its lifetime (with
//! random jitter; the seed is printed, and `BREAKGLASS_CRASH_SEED=N` replays it) while it writes bundles,
//! signs, and appends to the audit log. After every kill: the output file is the old complete file or the
//! new complete file, the audit chain verifies (a torn last line is reported as such, and recorded by the
//! next append, never silently dropped), and a signature the command reported as saved is in the file.

use crate::support::bin::{repo, Sandbox};
use crate::support::sim::SimProcess;
use alloy::primitives::keccak256;
use breakglass::audit::Entry;
use breakglass::bundle::Bundle;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------

fn demo() -> String {
    repo().join("examples/demo.toml").display().to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `breakglass --manifest examples/demo.toml ARGS` in the sandbox (same environment as `Sandbox::run`).
fn cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_breakglass"));
    c.arg("--manifest")
        .arg(demo())
        .args(args)
        .current_dir(sb.dir.path())
        .env("BREAKGLASS_CONFIG_DIR", sb.dir.path().join("config"))
        .env("BREAKGLASS_DATA_DIR", sb.dir.path().join("data"))
        .env_remove("BREAKGLASS_PIN")
        .env_remove("BREAKGLASS_MANIFEST")
        .env_remove("ETH_RPC_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &sb.env {
        c.env(k, v);
    }
    c
}

/// What a (possibly killed) run produced.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    /// Killed by our SIGKILL (it had not finished on its own).
    killed: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// When the first stdout line holding the watched marker arrived (from spawn).
    marker_at: Option<Duration>,
    /// When the watched file first grew (from spawn).
    grew_at: Option<Duration>,
}

/// When to send SIGKILL.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Never: the run finishes on its own.
    Never,
    /// This long after spawn.
    After(Duration),
    /// This long after the first stdout line holding the watched marker (never, if none comes).
    AfterMarker(Duration),
    /// This long after the watched file grew (never, if it does not).
    AfterGrowth(Duration),
}

/// What to watch while a command runs.
#[derive(Debug, Clone, Copy, Default)]
struct Watch<'a> {
    /// A stdout marker.
    marker: Option<&'a str>,
    /// A file whose growth is an event (e.g. the audit log: the signature arrived and is being saved).
    grows: Option<&'a Path>,
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Runs `c`, watching its stdout and a file, and kills it as `kill` says. The poll loop reaps the child
/// with `try_wait` and never signals it afterwards, so the PID signalled is always our live child (or
/// its zombie), never a reused one.
fn run_watch(mut c: Command, watch: Watch, kill: Kill) -> Outcome {
    let marker = watch.marker.map(str::to_string);
    let len0 = watch.grows.map(file_len);
    let start = Instant::now();
    let mut child = c.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let stdout = child.stdout.take();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut sent = false;
        if let Some(s) = stdout {
            let mut r = BufReader::new(s);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if let Some(m) = &marker {
                    if !sent && String::from_utf8_lossy(&line).contains(m.as_str()) {
                        let _ = tx.send(Instant::now());
                        sent = true;
                    }
                }
                buf.extend_from_slice(&line);
            }
        }
        buf
    });
    let err = drain(child.stderr.take());
    let (mut marker_at, mut grew_at) = (None::<Instant>, None::<Instant>);
    let mut killed_sent = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        let now = Instant::now();
        if marker_at.is_none() {
            marker_at = rx.try_recv().ok();
        }
        if let (None, Some(p), Some(l0)) = (grew_at, watch.grows, len0) {
            if file_len(p) > l0 {
                grew_at = Some(now);
            }
        }
        let due = match kill {
            Kill::Never => None,
            Kill::After(d) => Some(start + d),
            Kill::AfterMarker(d) => marker_at.map(|t| t + d),
            Kill::AfterGrowth(d) => grew_at.map(|t| t + d),
        };
        if !killed_sent && due.is_some_and(|t| now >= t) {
            let _ = child.kill();
            killed_sent = true;
        }
        std::thread::sleep(Duration::from_micros(150));
    };
    let elapsed = start.elapsed();
    let stdout = out.join().unwrap();
    if marker_at.is_none() {
        marker_at = rx.try_recv().ok();
    }
    // A run can write its audit entry and exit between two polls: the growth is then seen here, at exit.
    if let (None, Some(p), Some(l0)) = (grew_at, watch.grows, len0) {
        if file_len(p) > l0 {
            grew_at = Some(start + elapsed);
        }
    }
    Outcome {
        status,
        killed: status.signal() == Some(9),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        elapsed,
        marker_at: marker_at.map(|t| t - start),
        grew_at: grew_at.map(|t| t - start),
    }
}

fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `c`; with `kill_after`, sends SIGKILL that long after spawn.
fn run(c: Command, kill_after: Option<Duration>) -> Outcome {
    run_watch(
        c,
        Watch::default(),
        kill_after.map_or(Kill::Never, Kill::After),
    )
}

/// The kill plan of a signing sweep, in rounds of five runs:
/// - one kill swept over the whole lifetime (0..1.2 × d after spawn);
/// - one swept over the device exchange (0..1.1 × the time from the "Confirm on" line to exit);
/// - two swept over saving (0..1.3 × the time from the audit log's growth, i.e. the signature has
///   arrived and its entry is written, to exit): around the audit entry, the bundle write and "signed by";
/// - one run not killed: it re-measures those times, which move with the machine's load.
struct SignSweep {
    n: usize,
    d: Duration,
    tail: Duration,
    save: Duration,
    rng: Rng,
}

const CONFIRM: &str = "Confirm on ";

impl SignSweep {
    /// Measures three complete runs of what `make` builds (text mode, so it prints "Confirm on").
    fn new(what: &str, n: usize, log: &Path, mut make: impl FnMut() -> Command) -> Self {
        let (mut ds, mut tails, mut saves) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            let o = run_watch(make(), Self::watch(log), Kill::Never);
            assert!(o.status.success(), "{}\n{}", o.stdout, o.stderr);
            ds.push(o.elapsed);
            tails.push(o.elapsed - o.marker_at.expect("no \"Confirm on\" line"));
            saves.push(o.elapsed - o.grew_at.expect("the audit log did not grow"));
        }
        ds.sort();
        tails.sort();
        saves.sort();
        Self {
            n,
            d: ds[1],
            tail: tails[1],
            save: saves[1],
            rng: Rng::new(what),
        }
    }

    fn watch(log: &Path) -> Watch<'_> {
        Watch {
            marker: Some(CONFIRM),
            grows: Some(log),
        }
    }

    /// The kill of iteration `i`.
    fn kill(&mut self, i: usize) -> Kill {
        let rounds = self.n.div_ceil(5) as f64;
        let (round, u) = ((i / 5) as f64, self.rng.f64());
        match i % 5 {
            0 => Kill::After(self.d.mul_f64(1.2 * (round + u) / rounds)),
            1 => Kill::AfterMarker(self.tail.mul_f64(1.1 * (round + u) / rounds)),
            2 | 3 => {
                let k = 2.0 * round + (i % 5 - 2) as f64;
                Kill::AfterGrowth(self.save.mul_f64(1.3 * (k + u) / (2.0 * rounds)))
            }
            _ => Kill::Never,
        }
    }

    /// Learns from a run that was not killed.
    fn observe(&mut self, o: &Outcome) {
        if o.killed || !o.status.success() {
            return;
        }
        self.d = (self.d + o.elapsed) / 2;
        if let Some(m) = o.marker_at {
            self.tail = (self.tail + (o.elapsed - m)) / 2;
        }
        if let Some(g) = o.grew_at {
            self.save = (self.save + (o.elapsed - g)) / 2;
        }
    }
}

/// Runs to completion and requires exit 0.
fn must(c: Command) -> Outcome {
    let o = run(c, None);
    assert!(
        o.status.success(),
        "command failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        o.stdout,
        o.stderr
    );
    o
}

/// Median wall time of `n` complete runs of what `make` builds.
fn measure(n: usize, mut make: impl FnMut() -> Command) -> Duration {
    let mut ts: Vec<Duration> = (0..n).map(|_| must(make()).elapsed).collect();
    ts.sort();
    ts[n / 2]
}

/// xorshift64*: jitter without a dependency. The seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new(what: &str) -> Self {
        let seed = std::env::var("BREAKGLASS_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("{what}: kill-delay seed {seed} (replay with BREAKGLASS_CRASH_SEED={seed})");
        Self(seed)
    }

    fn f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The kill delay of iteration `i` of `n`: stratified over 0..1.2 × `d`, jittered within the stratum.
fn delay(i: usize, n: usize, d: Duration, rng: &mut Rng) -> Duration {
    d.mul_f64(1.2 * (i as f64 + rng.f64()) / n as f64)
}

fn manifest_hash(sb: &Sandbox) -> String {
    must(cmd(sb, &["manifest", "hash"]))
        .stdout
        .trim()
        .to_string()
}

/// Which complete version a file holds after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Old,
    New,
}

/// The file must be exactly `old`, or a complete bundle that `is_new` accepts; anything else (missing,
/// empty, partial, unparseable, a third content) fails with the iteration's details.
fn classify(path: &Path, old: &[u8], is_new: impl Fn(&Bundle) -> bool, ctx: &str) -> State {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("{ctx}: {} is gone: {e}", path.display()));
    if bytes == old {
        return State::Old;
    }
    match Bundle::read(path) {
        Ok(b) if is_new(&b) && bytes.ends_with(b"}\n") => State::New,
        Ok(b) => panic!(
            "{ctx}: {} is a complete bundle but neither the old nor the new one: {b:?}",
            path.display()
        ),
        Err(e) => panic!(
            "{ctx}: {} is neither the old nor a new complete bundle ({} bytes: {e}); it starts {:?}",
            path.display(),
            bytes.len(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
        ),
    }
}

/// Temp files `atomic_write` left next to `out` (`.NAME.PID.tmp`).
fn temp_files(out: &Path) -> Vec<PathBuf> {
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    let prefix = format!(".{name}.");
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".tmp")
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// `breakglass audit verify --json --audit-log LOG`: (exit code, report).
fn audit_verify(sb: &Sandbox, log: &Path) -> (i32, serde_json::Value) {
    let o = run(
        cmd(sb, &["audit", "verify", "--json", "--audit-log", &s(log)]),
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "audit verify --json printed no JSON ({e}):\n{}\n{}",
            o.stdout, o.stderr
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

/// Number of lines in the log (a last line without newline counts).
fn line_count(log: &Path) -> usize {
    let b = std::fs::read(log).unwrap_or_default();
    if b.is_empty() {
        return 0;
    }
    b.split(|c| *c == b'\n').count() - usize::from(b.ends_with(b"\n"))
}

/// The audit log passes, or reports exactly a torn last line. Returns the torn line's number, if any.
fn audit_ok_or_torn_last(sb: &Sandbox, log: &Path, ctx: &str) -> Option<usize> {
    let (code, v) = audit_verify(sb, log);
    if code == 0 && v["broken"].is_null() {
        return None;
    }
    let lines = line_count(log);
    let line = v["broken"]["line"].as_u64().unwrap_or(0) as usize;
    let msg = v["broken"]["message"].as_str().unwrap_or("");
    assert!(
        code == 3 && line == lines && msg.contains("torn"),
        "{ctx}: the audit log is broken, and not just by a torn last line (exit {code}, {lines} lines): {v:#}"
    );
    Some(line)
}

// ---------------------------------------------------------------------------------------------------
// Bundle writes
// ---------------------------------------------------------------------------------------------------

/// `compose --force` over an existing bundle, killed anywhere: the old bundle or the new one, never a
/// mix, a partial file, or no file.
#[test]
fn compose_over_a_bundle_killed_anywhere_leaves_the_old_or_the_new_bundle() {
    let sb = Sandbox::new();
    let out = sb.path("out.json");
    let reference = sb.path("ref.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "0", "-o", &s(&out)],
    ));
    let old = std::fs::read(&out).unwrap();
    let compose_new = |o: &Path| {
        cmd(
            &sb,
            &["compose", "halt", "--nonce", "1", "-o", &s(o), "--force"],
        )
    };
    let d = measure(3, || compose_new(&reference));
    let new_ref = Bundle::read(&reference).unwrap();
    assert_ne!(new_ref.safe_tx, Bundle::read(&out).unwrap().safe_tx);
    let is_new = |b: &Bundle| {
        b.safe_tx == new_ref.safe_tx
            && b.signatures.is_empty()
            && b.audit.len() == 1
            && b.audit[0].step == "compose"
    };

    let mut rng = Rng::new("compose sweep");
    let (n, budget, start) = (100, Duration::from_secs(8), Instant::now());
    let (mut old_after_kill, mut new_after_kill, mut finished, mut done) = (0, 0, 0, 0);
    for i in 0..n {
        if start.elapsed() > budget {
            break;
        }
        std::fs::write(&out, &old).unwrap();
        // Under load a run takes longer than the measured one: when 20 runs in a row were all killed
        // before writing, stretch the kill window so the sweep still reaches the write.
        let stretch = if i >= 20 && new_after_kill + finished == 0 {
            2u32.pow((i / 20).min(4) as u32)
        } else {
            1
        };
        let dl = delay(i, n, d * stretch, &mut rng);
        let o = run(compose_new(&out), Some(dl));
        let ctx = format!(
            "iteration {i}, killed after {dl:?} of a {d:?} run ({:?})",
            o.status
        );
        let st = classify(&out, &old, is_new, &ctx);
        if o.killed {
            match st {
                State::Old => old_after_kill += 1,
                State::New => new_after_kill += 1,
            }
        } else {
            assert!(o.status.success(), "{ctx}: {}", o.stderr);
            assert_eq!(st, State::New, "{ctx}: it reported success");
            finished += 1;
        }
        done += 1;
    }
    let tmps = temp_files(&out);
    eprintln!(
        "compose sweep: {done} runs of ~{d:?}: killed → old {old_after_kill}, killed → new {new_after_kill}, finished {finished}; {} temp files left behind",
        tmps.len()
    );
    assert!(done >= 20, "only {done} iterations within the time budget");
    assert!(
        old_after_kill > 0 && new_after_kill + finished > 0,
        "the sweep did not cover the write (old {old_after_kill}, new {new_after_kill}, finished {finished})"
    );
    // Leftover temp files never stand in for the bundle, and the bundle is intact after all that.
    for t in &tmps {
        assert_ne!(t, &out);
    }
    classify(&out, &old, is_new, "after the sweep");
    // The sandbox's audit log (each compose appends) survived every kill.
    audit_ok_or_torn_last(&sb, &sb.path("data/audit.jsonl"), "compose sweep");
}

/// `sign BUNDLE -o BUNDLE --force` (sign in place, through the simulator) killed anywhere: the unsigned
/// bundle or the signed one.
#[test]
fn sign_in_place_killed_anywhere_leaves_the_unsigned_or_the_signed_bundle() {
    let sb = Sandbox::new();
    let sim = SimProcess::start(&["--mode", "approve"]);
    let pin = manifest_hash(&sb);
    let out = sb.path("b.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "3", "-o", &s(&out)],
    ));
    let old = std::fs::read(&out).unwrap();
    let sign = |o: &Path| {
        cmd(
            &sb,
            &[
                "--pin",
                &pin,
                "sign",
                &s(o),
                "-o",
                &s(o),
                "--force",
                "--speculos",
                &sim.addr,
            ],
        )
    };
    let reference = sb.path("ref.json");
    let (n, budget) = (20, Duration::from_secs(9));
    let log = sb.path("data/audit.jsonl");
    let mut sweep = SignSweep::new("sign-in-place sweep", n, &log, || {
        std::fs::write(&reference, &old).unwrap();
        sign(&reference)
    });
    let signed = Bundle::read(&reference).unwrap();
    assert_eq!(signed.signatures.len(), 1);
    let old_b = Bundle::read(&out).unwrap();
    let is_new = |b: &Bundle| {
        b.safe_tx == old_b.safe_tx
            && b.created_at == old_b.created_at
            && b.signatures == signed.signatures
    };

    let start = Instant::now();
    let (mut olds, mut news, mut finished, mut done) = (0, 0, 0, 0);
    let mut killed_while_saving = 0;
    for i in 0..n {
        if start.elapsed() > budget {
            break;
        }
        std::fs::write(&out, &old).unwrap();
        let kill = sweep.kill(i);
        let o = run_watch(sign(&out), SignSweep::watch(&log), kill);
        sweep.observe(&o);
        let ctx = format!(
            "iteration {i}, {kill:?} (run ~{:?}, tail ~{:?}, save ~{:?}): {:?}",
            sweep.d, sweep.tail, sweep.save, o.status
        );
        let st = classify(&out, &old, is_new, &ctx);
        if o.stdout.contains("signed by") {
            assert_eq!(st, State::New, "{ctx}: it said \"signed by\"");
        }
        killed_while_saving += usize::from(o.killed && o.grew_at.is_some());
        if o.killed {
            if st == State::Old {
                olds += 1
            } else {
                news += 1
            }
        } else {
            assert!(o.status.success(), "{ctx}: {}", o.stderr);
            assert_eq!(st, State::New, "{ctx}: it reported success");
            finished += 1;
        }
        done += 1;
    }
    let d = sweep.d;
    eprintln!(
        "sign-in-place sweep: {done} runs of ~{d:?}: killed → unsigned {olds}, killed → signed {news} ({killed_while_saving} kills after the audit entry), finished {finished}; {} temp files left behind",
        temp_files(&out).len()
    );
    assert!(done >= 5, "only {done} iterations within the time budget");
    assert!(olds > 0, "no kill landed before the write");
    audit_ok_or_torn_last(&sb, &sb.path("data/audit.jsonl"), "sign sweep");
}

/// A writer killed between creating its temp file and renaming it leaves `.NAME.PID.tmp` behind (the
/// sweeps above show they accumulate). Once the PID is reused, as PIDs are, the next write of the same
/// file by the process that got that PID must still succeed.
#[test]
fn a_temp_file_left_by_a_killed_writer_does_not_block_a_later_write() {
    let Ok(last) = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid") else {
        eprintln!("no /proc/sys/kernel/ns_last_pid: skipped");
        return;
    };
    let last: u32 = last.trim().parse().unwrap();
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(32768);
    let sb = Sandbox::new();
    let out = sb.path("out.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "0", "-o", &s(&out)],
    ));
    // Leftovers of killed writers under the PIDs the next processes will get.
    for k in 1..=2000u32 {
        let pid = (last + k) % max;
        std::fs::write(sb.path(&format!(".out.json.{pid}.tmp")), b"{\"format\":").unwrap();
    }
    let o = run(
        cmd(
            &sb,
            &["compose", "halt", "--nonce", "1", "-o", &s(&out), "--force"],
        ),
        None,
    );
    assert!(
        o.status.success(),
        "a stale temp file with the writer's PID (left by an earlier, killed writer) made the write fail: {}",
        o.stderr
    );
    let b = Bundle::read(&out).unwrap();
    assert_eq!(
        b.safe_tx.unwrap().tx.nonce,
        alloy::primitives::U256::from(1)
    );
}

// ---------------------------------------------------------------------------------------------------
// No signature reported as saved is lost
// ---------------------------------------------------------------------------------------------------

/// `sign` through a simulator whose person takes a while, killed at swept points: whenever the command
/// had printed that it signed (text: "signed by"; --json: the signature), the output file holds that
/// signature. A file that exists at all is complete.
#[test]
fn a_signature_reported_as_saved_is_never_lost() {
    let sb = Sandbox::new();
    let sim = SimProcess::start(&["--mode", "approve", "--approve-delay-ms", "100"]);
    let pin = manifest_hash(&sb);
    let unsigned = sb.path("unsigned.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "4", "-o", &s(&unsigned)],
    ));
    let out = sb.path("signed.json");
    let sign = |json: bool| {
        let mut a = vec![
            "--pin",
            pin.as_str(),
            "sign",
            unsigned.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--speculos",
            sim.addr.as_str(),
        ];
        if json {
            a.push("--json");
        }
        cmd(&sb, &a)
    };
    let (n, budget) = (20, Duration::from_secs(9));
    let log = sb.path("data/audit.jsonl");
    let mut sweep = SignSweep::new("signature sweep", n, &log, || {
        let _ = std::fs::remove_file(&out);
        sign(false)
    });
    let reference = Bundle::read(&out).unwrap();
    let sig = reference.signatures[0].clone();
    let sig_hex = format!("{}", sig.signature);

    let start = Instant::now();
    let (mut reported, mut unreported_but_written, mut nothing, mut done) = (0, 0, 0, 0);
    let (mut reported_then_killed, mut killed_while_saving) = (0, 0);
    for i in 0..n {
        if start.elapsed() > budget {
            break;
        }
        let _ = std::fs::remove_file(&out);
        let kill = sweep.kill(i);
        // The lifetime sweep runs with --json (nothing printed before the end), the rest as text.
        let json = matches!(kill, Kill::After(_));
        let o = run_watch(sign(json), SignSweep::watch(&log), kill);
        sweep.observe(&o);
        let ctx = format!(
            "iteration {i} (json {json}), {kill:?} (run ~{:?}, tail ~{:?}, save ~{:?}): {:?}; stdout:\n{}",
            sweep.d, sweep.tail, sweep.save, o.status, o.stdout
        );
        killed_while_saving += usize::from(o.killed && o.grew_at.is_some());
        let said_saved = if json {
            o.stdout.contains(&format!("\"signature\": \"{sig_hex}\""))
        } else {
            o.stdout.contains("signed by")
        };
        if !o.killed {
            assert!(o.status.success(), "{ctx}\nstderr: {}", o.stderr);
            assert!(said_saved, "{ctx}: finished without saying so");
        }
        if out.exists() {
            let b = Bundle::read(&out)
                .unwrap_or_else(|e| panic!("{ctx}: the output exists but is not complete: {e}"));
            assert_eq!(b.signatures, vec![sig.clone()], "{ctx}");
            if said_saved {
                reported += 1;
                reported_then_killed += usize::from(o.killed);
            } else {
                unreported_but_written += 1
            }
        } else {
            assert!(
                !said_saved,
                "{ctx}: the command reported the signature as saved, but {} does not exist",
                out.display()
            );
            nothing += 1;
        }
        done += 1;
    }
    let d = sweep.d;
    eprintln!(
        "signature sweep: {done} runs of ~{d:?}: reported and saved {reported} ({reported_then_killed} of them killed afterwards), saved but killed before reporting {unreported_but_written}, nothing written {nothing} ({killed_while_saving} kills after the audit entry); {} temp files left behind",
        temp_files(&out).len()
    );
    assert!(done >= 5, "only {done} iterations within the time budget");
    assert!(
        reported > 0 && nothing > 0,
        "the sweep did not cover both sides of the write (reported {reported}, nothing written {nothing})"
    );
    audit_ok_or_torn_last(&sb, &sb.path("data/audit.jsonl"), "signature sweep");
}

// ---------------------------------------------------------------------------------------------------
// combine
// ---------------------------------------------------------------------------------------------------

/// `combine` killed anywhere: the output is the old bundle or the combined one. Skipped (with a note)
/// while the binary has no `combine`.
#[test]
fn combine_killed_anywhere_leaves_the_old_or_the_combined_bundle() {
    let sb = Sandbox::new();
    if !run(cmd(&sb, &["combine", "--help"]), None).status.success() {
        eprintln!(
            "NOTE: `breakglass combine` does not exist in this binary: its kill sweep is skipped"
        );
        return;
    }
    let sim = SimProcess::start(&["--mode", "approve"]);
    let pin = manifest_hash(&sb);
    let unsigned = sb.path("unsigned.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "5", "-o", &s(&unsigned)],
    ));
    let (a, b) = (sb.path("a.json"), sb.path("b.json"));
    for (acct, o) in [("0", &a), ("1", &b)] {
        must(cmd(
            &sb,
            &[
                "--pin",
                &pin,
                "sign",
                &s(&unsigned),
                "-o",
                &s(o),
                "--speculos",
                &sim.addr,
                "--account",
                acct,
            ],
        ));
    }
    // Assumed interface: `combine BUNDLE… -o OUT [--force]`, output = the union of the signatures.
    let out = sb.path("out.json");
    let combine = |o: &Path| cmd(&sb, &["combine", &s(&a), &s(&b), "-o", &s(o), "--force"]);
    let reference = sb.path("ref.json");
    let first = run(combine(&reference), None);
    assert!(
        first.status.success(),
        "`combine A B -o OUT --force` failed: update tests/crash.rs to combine's interface: {}",
        first.stderr
    );
    let d = measure(3, || combine(&reference));
    let combined = Bundle::read(&reference).unwrap();
    assert_eq!(combined.signatures.len(), 2);
    let old = std::fs::read(&a).unwrap();
    let is_new = |x: &Bundle| x.signatures == combined.signatures && x.safe_tx == combined.safe_tx;
    let mut rng = Rng::new("combine sweep");
    let (n, budget, start) = (100, Duration::from_secs(10), Instant::now());
    let mut done = 0;
    for i in 0..n {
        if start.elapsed() > budget {
            break;
        }
        std::fs::write(&out, &old).unwrap();
        let dl = delay(i, n, d, &mut rng);
        let o = run(combine(&out), Some(dl));
        let ctx = format!(
            "combine iteration {i}, killed after {dl:?} ({:?})",
            o.status
        );
        let st = classify(&out, &old, is_new, &ctx);
        if !o.killed {
            assert!(o.status.success(), "{ctx}: {}", o.stderr);
            assert_eq!(st, State::New, "{ctx}");
        }
        done += 1;
    }
    eprintln!("combine sweep: {done} runs of ~{d:?}");
    audit_ok_or_torn_last(&sb, &sb.path("data/audit.jsonl"), "combine sweep");
}

// ---------------------------------------------------------------------------------------------------
// Audit appends
// ---------------------------------------------------------------------------------------------------

/// `verify` (one audit entry each) killed anywhere: the chain passes, or only its last line is torn; the
/// number of entries never goes down; and a torn line is recorded by the next append.
#[test]
fn audit_appends_killed_anywhere_keep_the_chain() {
    let sb = Sandbox::new();
    let bundle = sb.path("b.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "0", "-o", &s(&bundle)],
    ));
    let log = sb.path("logs/audit.jsonl");
    let verify = || {
        cmd(
            &sb,
            &[
                "verify",
                "--allow-untrusted",
                &s(&bundle),
                "--audit-log",
                &s(&log),
            ],
        )
    };
    let d = measure(3, verify);
    let entries = |v: &serde_json::Value| v["entries"].as_u64().unwrap() as usize;
    let (_, v0) = audit_verify(&sb, &log);
    let mut count = entries(&v0);
    assert_eq!(count, 3);

    let mut rng = Rng::new("audit sweep");
    let (n, budget, start) = (100, Duration::from_secs(8), Instant::now());
    let (mut appended, mut not_appended, mut torn, mut done) = (0, 0, 0, 0);
    for i in 0..n {
        if start.elapsed() > budget {
            break;
        }
        let dl = delay(i, n, d, &mut rng);
        let o = run(verify(), Some(dl));
        let ctx = format!(
            "iteration {i}, killed after {dl:?} of a {d:?} run ({:?})",
            o.status
        );
        if !o.killed {
            assert!(o.status.success(), "{ctx}: {}", o.stderr);
        }
        if let Some(line) = audit_ok_or_torn_last(&sb, &log, &ctx) {
            // A torn line: the next successful command records it and the chain passes again.
            torn += 1;
            must(verify());
            let (code, v) = audit_verify(&sb, &log);
            assert_eq!(code, 0, "{ctx}: after recovery: {v:#}");
            assert!(
                v["torn_recovered"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x.as_u64() == Some(line as u64)),
                "{ctx}: torn line {line} not listed in torn_recovered: {v:#}"
            );
            assert_eq!(entries(&v), count + 2, "{ctx}: torn_entry + the new entry");
            count = entries(&v);
        } else {
            let (_, v) = audit_verify(&sb, &log);
            let now = entries(&v);
            assert!(
                now == count || now == count + 1,
                "{ctx}: entries went from {count} to {now}: {v:#}"
            );
            if !o.killed {
                assert_eq!(now, count + 1, "{ctx}: a finished verify appends one entry");
            }
            if now > count {
                appended += 1
            } else {
                not_appended += 1
            }
            count = now;
        }
        done += 1;
    }
    eprintln!(
        "audit sweep: {done} runs of ~{d:?}: appended {appended}, killed before appending {not_appended}, torn last line {torn}"
    );
    assert!(done >= 20, "only {done} iterations within the time budget");
    assert!(
        appended > 0 && not_appended > 0,
        "the sweep did not cover the append"
    );
    let (code, v) = audit_verify(&sb, &log);
    assert!(
        code == 0
            || v["broken"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("torn"),
        "{v:#}"
    );
}

/// The exact bytes the next entry would have, so a torn copy of it is what a crash mid-append leaves.
fn next_entry_line(log: &Path) -> Vec<u8> {
    let bytes = std::fs::read(log).unwrap();
    let last = bytes[..bytes.len() - 1]
        .split(|c| *c == b'\n')
        .next_back()
        .unwrap();
    let prev: Entry = serde_json::from_slice(last).unwrap();
    serde_json::to_vec(&Entry {
        seq: prev.seq + 1,
        time: prev.time,
        event: "verify".into(),
        details: serde_json::json!({"allowed": true, "actions": ["pause-pool", "pause-vault"]}),
        prev: keccak256(last),
    })
    .unwrap()
}

/// A log with three entries, in a fresh sandbox with a bundle to verify.
fn log_with_three_entries() -> (Sandbox, PathBuf, PathBuf) {
    let sb = Sandbox::new();
    let bundle = sb.path("b.json");
    must(cmd(
        &sb,
        &["compose", "halt", "--nonce", "0", "-o", &s(&bundle)],
    ));
    let log = sb.path("audit.jsonl");
    for _ in 0..3 {
        must(cmd(
            &sb,
            &[
                "verify",
                "--allow-untrusted",
                &s(&bundle),
                "--audit-log",
                &s(&log),
            ],
        ));
    }
    (sb, bundle, log)
}

/// A torn last line written directly (cut at many points, including a whole entry without its newline):
/// `audit verify` reports it as torn on that line; one more command records it, and the chain passes
/// with the line listed in `torn_recovered` and its bytes kept as they were.
#[test]
fn a_torn_last_line_is_reported_then_recorded_never_dropped() {
    let (sb, bundle, log) = log_with_three_entries();
    let pristine = std::fs::read(&log).unwrap();
    let next = next_entry_line(&log);
    let cuts = [1, 2, 10, next.len() / 2, next.len() - 1, next.len()];
    for cut in cuts {
        let ctx = format!("torn after {cut} of {} bytes", next.len());
        std::fs::write(&log, &pristine).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(&next[..cut])
            .unwrap();
        let (code, v) = audit_verify(&sb, &log);
        assert_eq!(code, 3, "{ctx}: {v:#}");
        assert_eq!(v["broken"]["line"], 4, "{ctx}: {v:#}");
        assert!(
            v["broken"]["message"].as_str().unwrap().contains("torn"),
            "{ctx}: {v:#}"
        );
        // The text report says so too.
        let t = run(
            cmd(&sb, &["audit", "verify", "--audit-log", &s(&log)]),
            None,
        );
        assert_eq!(t.status.code(), Some(3), "{ctx}");
        assert!(t.stdout.contains("torn"), "{ctx}: {}", t.stdout);

        must(cmd(
            &sb,
            &[
                "verify",
                "--allow-untrusted",
                &s(&bundle),
                "--audit-log",
                &s(&log),
            ],
        ));
        let (code, v) = audit_verify(&sb, &log);
        assert_eq!(code, 0, "{ctx}: after the next append: {v:#}");
        assert!(v["broken"].is_null(), "{ctx}: {v:#}");
        let whole = cut == next.len();
        if whole {
            // A whole entry whose newline never reached the disk is intact: the next append completes
            // the line and links to it, with nothing to record as torn.
            assert_eq!(v["torn_recovered"], serde_json::json!([]), "{ctx}: {v:#}");
            assert_eq!(v["entries"], 5, "{ctx}: {v:#}");
        } else {
            assert_eq!(v["torn_recovered"], serde_json::json!([4]), "{ctx}: {v:#}");
            assert_eq!(v["entries"], 5, "{ctx}: {v:#}");
        }
        let after = std::fs::read(&log).unwrap();
        let mut kept = pristine.clone();
        kept.extend_from_slice(&next[..cut]);
        kept.push(b'\n');
        assert!(
            after.starts_with(&kept),
            "{ctx}: the torn bytes were not kept as they were"
        );
        let shown = run(
            cmd(&sb, &["audit", "show", "--json", "--audit-log", &s(&log)]),
            None,
        );
        let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        let events: Vec<&str> = shown["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events.contains(&"torn_entry"), !whole, "{ctx}: {events:?}");
        assert_eq!(events.last(), Some(&"verify"), "{ctx}");
        // And the chain keeps going.
        must(cmd(
            &sb,
            &[
                "verify",
                "--allow-untrusted",
                &s(&bundle),
                "--audit-log",
                &s(&log),
            ],
        ));
        let (code, v) = audit_verify(&sb, &log);
        assert_eq!(code, 0, "{ctx}: {v:#}");
        assert_eq!(v["entries"], 6, "{ctx}: {v:#}");
    }
}

/// `audit verify --json` must not say `"ok": true` about a chain it reports as broken.
#[test]
fn audit_verify_json_is_not_ok_when_the_chain_is_broken() {
    let (sb, _, log) = log_with_three_entries();
    let next = next_entry_line(&log);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&next[..next.len() / 2])
        .unwrap();
    let (code, v) = audit_verify(&sb, &log);
    assert_eq!(code, 3);
    assert!(!v["broken"].is_null());
    assert_eq!(
        v["ok"], false,
        "audit verify --json reports a broken chain with \"ok\": {}: {v:#}",
        v["ok"]
    );
}

/// The recovery append writes "\n" + torn_entry + entry in one write; a crash (power loss) that keeps
/// only its first byte leaves the torn line newline-terminated. The next append must still record it as
/// torn, not leave a chain that is broken for good.
#[test]
fn a_torn_line_closed_by_an_interrupted_recovery_is_still_recorded() {
    let (sb, bundle, log) = log_with_three_entries();
    let next = next_entry_line(&log);
    let mut torn = next[..next.len() / 2].to_vec();
    torn.push(b'\n');
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    must(cmd(
        &sb,
        &[
            "verify",
            "--allow-untrusted",
            &s(&bundle),
            "--audit-log",
            &s(&log),
        ],
    ));
    let (code, v) = audit_verify(&sb, &log);
    assert_eq!(
        code, 0,
        "a torn line that got its newline (recovery interrupted) breaks the chain for good: {v:#}"
    );
    assert_eq!(v["torn_recovered"], serde_json::json!([4]), "{v:#}");
}
