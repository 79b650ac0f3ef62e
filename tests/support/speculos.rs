//! Ledger's real Ethereum app 1.22.0 (Nano S Plus build) under Speculos, for the real-app tests of issue 16.
//!
//! [`Speculos::start`] copies a settings preset (`settings-*.nvram`, ../shared/ledger-app/README.md) as
//! `main_nvram.bin` into a fresh temporary directory and starts
//! `speculos --model nanosp --display headless --apdu-port P --api-port Q --load-nvram ELF` there, in its
//! own process group (Speculos runs the app in a `qemu-arm-static` child). It is stopped by that group's
//! id when dropped, and, for the instances shared between tests in `static`s (which are never dropped), by
//! a watchdog `sh` that kills the group when this test process ends, however it ends (its stdin is a
//! pipe from this process: end of file = we are gone).
//!
//! [`Speculos::review`] walks the device through a review on a background thread as a person would, with
//! the buttons of Speculos' REST API; [`screens_from_events`] and [`logical_pages`] turn the raw `/events`
//! text into one entry per page (a title with its value, multi-screen values joined), to compare with the
//! `  | …` lines breakglass prints before it asks the device.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The app's file in `$BREAKGLASS_LEDGER_APP`.
pub const ELF: &str = "app-ethereum-1.22.0-nanosp.elf";

/// The Ethereum app's settings, as the presets in `$BREAKGLASS_LEDGER_APP` set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Everything off (`00 00 00 00 00 00 00 01`).
    Defaults,
    /// Blind signing on.
    BlindSigning,
    /// Raw messages on (blind signing off).
    RawMessages,
    /// Blind signing, raw messages and transaction hash on.
    BlindRawTxHash,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 4] = [
        Preset::Defaults,
        Preset::BlindSigning,
        Preset::RawMessages,
        Preset::BlindRawTxHash,
    ];

    /// Its file in the app folder.
    pub fn file(self) -> &'static str {
        match self {
            Preset::Defaults => "settings-defaults.nvram",
            Preset::BlindSigning => "settings-blind-signing.nvram",
            Preset::RawMessages => "settings-raw-messages.nvram",
            Preset::BlindRawTxHash => "settings-blind-raw-txhash.nvram",
        }
    }

    /// The "Blind signing" setting.
    pub fn blind_signing(self) -> bool {
        matches!(self, Preset::BlindSigning | Preset::BlindRawTxHash)
    }

    /// The "Raw messages" setting.
    pub fn raw_messages(self) -> bool {
        matches!(self, Preset::RawMessages | Preset::BlindRawTxHash)
    }

    /// The "Transaction hash" setting.
    pub fn transaction_hash(self) -> bool {
        self == Preset::BlindRawTxHash
    }

    fn index(self) -> usize {
        match self {
            Preset::Defaults => 0,
            Preset::BlindSigning => 1,
            Preset::RawMessages => 2,
            Preset::BlindRawTxHash => 3,
        }
    }
}

/// Where the real app and Speculos are: `Ok(None)` when `BREAKGLASS_LEDGER_APP` or `BREAKGLASS_SPECULOS`
/// is unset (the real-app tests do not run), `Err` when they are set but point at nothing.
pub fn locate() -> Result<Option<(PathBuf, PathBuf)>, String> {
    let app = std::env::var_os("BREAKGLASS_LEDGER_APP").filter(|v| !v.is_empty());
    let spec = std::env::var_os("BREAKGLASS_SPECULOS").filter(|v| !v.is_empty());
    let (Some(app), Some(spec)) = (app, spec) else {
        return Ok(None);
    };
    let (app, spec) = (PathBuf::from(app), PathBuf::from(spec));
    if !app.join(ELF).is_file() {
        return Err(format!(
            "BREAKGLASS_LEDGER_APP={} holds no {ELF}",
            app.display()
        ));
    }
    if !spec.is_file() {
        return Err(format!(
            "BREAKGLASS_SPECULOS={} does not exist (run scripts/setup.sh)",
            spec.display()
        ));
    }
    Ok(Some((app, spec)))
}

/// Whether the real-app tests can run. When they cannot because the app or Speculos is not configured,
/// says so on standard error in one plain line and returns false (the test then returns: it did not run,
/// and says so). Panics (the test fails) when they are configured but missing.
pub fn available(test: &str) -> bool {
    match locate() {
        Ok(Some(_)) => true,
        Ok(None) => {
            // Straight to the process's stderr, not through `eprintln!`, which the test harness captures
            // and hides for a passing test: this must show in every `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "real Ledger app tests did not run: BREAKGLASS_LEDGER_APP or BREAKGLASS_SPECULOS is unset \
                 (`source scripts/setup.sh` with ../shared/ledger-app present sets both) [{test}]"
            );
            false
        }
        Err(e) => panic!("real Ledger app tests: {e}"),
    }
}

/// One Speculos running the real Ethereum app with a settings preset, stopped (its whole process group,
/// by id) when dropped, or by its watchdog when this test process ends.
pub struct Speculos {
    /// The preset it runs with.
    pub preset: Preset,
    /// The raw APDU port on 127.0.0.1.
    pub apdu_port: u16,
    /// Its REST API.
    pub api: Api,
    child: Child,
    watchdog: Child,
    /// The watchdog's stdin: closing it (our exit) makes the watchdog kill Speculos.
    watchdog_stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
}

fn free_port() -> Result<(TcpListener, u16), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let p = l.local_addr().map_err(|e| e.to_string())?.port();
    Ok((l, p))
}

impl Speculos {
    /// Starts Speculos with `preset` and waits until its REST API answers (retries on a port clash).
    pub fn start(preset: Preset) -> Result<Speculos, String> {
        let (app, spec) = locate()?.ok_or(
            "BREAKGLASS_LEDGER_APP or BREAKGLASS_SPECULOS is unset: the real Ledger app is not at hand",
        )?;
        let mut errors = Vec::new();
        for _ in 0..3 {
            match Self::try_start(preset, &app, &spec) {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "Speculos with {} did not start: {}",
            preset.file(),
            errors.join(" | ")
        ))
    }

    fn try_start(
        preset: Preset,
        app: &std::path::Path,
        spec: &std::path::Path,
    ) -> Result<Speculos, String> {
        let dir = tempfile::Builder::new()
            .prefix("breakglass-speculos-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        std::fs::copy(app.join(preset.file()), dir.path().join("main_nvram.bin"))
            .map_err(|e| format!("copy {}: {e}", preset.file()))?;
        // Two distinct free ports: both listeners are held until both are known.
        let (apdu_port, api_port) = {
            let (_a, apdu) = free_port()?;
            let (_b, api) = free_port()?;
            (apdu, api)
        };
        let log =
            std::fs::File::create(dir.path().join("speculos.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let elf = app.join(ELF);
        let mut cmd = Command::new(spec);
        cmd.args(["--model", "nanosp", "--display", "headless", "--apdu-port"])
            .arg(apdu_port.to_string())
            .arg("--api-port")
            .arg(api_port.to_string())
            .arg("--load-nvram")
            .arg(&elf)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own process group (id = its PID), so that its qemu child is stopped with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", spec.display()))?;
        let pgid = child.id();
        // The watchdog: ignores ^C and hang-ups (a ^C reaches our whole foreground group), waits for the end
        // of its stdin (this process exiting, or Drop), then kills the group and removes the temp dir.
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                r#"trap '' INT TERM HUP; read _ignored; kill -KILL "-$1" 2>/dev/null; rm -rf -- "$2""#,
                "breakglass-speculos-watchdog",
            ])
            .arg(pgid.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                kill_group(pgid);
                format!("cannot start the watchdog: {e}")
            })?;
        let watchdog_stdin = watchdog.stdin.take();
        let mut s = Speculos {
            preset,
            apdu_port,
            api: Api { port: api_port },
            child,
            watchdog,
            watchdog_stdin,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = s.child.try_wait() {
                return Err(format!("speculos exited with {status}: {}", s.log_tail()));
            }
            if let Ok(screen) = s.api.screen() {
                if screen.iter().any(|t| t.contains("app is ready")) {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "speculos (API port {api_port}) did not show the app's home screen within 60 s: {}",
                    s.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("speculos.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// `127.0.0.1:P` of its APDU port, for `--speculos` and `TcpTransport`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.apdu_port)
    }

    /// The PID of the `speculos` process (the id of its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves a screen that waits for a button (the "Blind signing must be enabled in settings" error),
    /// so that the next request starts from the app's home screen.
    pub fn ensure_idle(&self) {
        for _ in 0..3 {
            let Ok(screen) = self.api.screen() else {
                return;
            };
            if screen
                .first()
                .is_some_and(|t| t.starts_with("Blind signing must"))
            {
                let _ = self.api.press(Button::Both);
                std::thread::sleep(Duration::from_millis(200));
            } else {
                return;
            }
        }
    }

    /// Starts walking the device through the next review on a background thread: clears `/events`, then
    /// reads each new screen and presses the buttons a person would (both buttons on "Blind signing
    /// ahead" to accept the risk, right through the pages, both on the approve screen — or, for
    /// [`Decision::Reject`], right once more to the reject screen and both there). Start it before the
    /// request is sent.
    pub fn review(&self, decision: Decision) -> Review {
        self.review_with(decision, None)
    }

    /// Like [`Speculos::review`]; once a page whose title starts with `skip_after` has been shown, the next
    /// "Press right button to continue message or press both to skip" screen gets both buttons (the app
    /// then skips the remaining fields to "Sign message").
    pub fn review_with(&self, decision: Decision, skip_after: Option<&str>) -> Review {
        let _ = self.api.clear_events();
        let api = self.api.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let skip_after = skip_after.map(str::to_string);
        let handle = std::thread::spawn(move || walk(&api, decision, skip_after.as_deref(), &s));
        Review {
            stop,
            handle: Some(handle),
        }
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Speculos {
    fn drop(&mut self) {
        // The watchdog first (by its PID), so that it never signals a group id that may be reused later.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        drop(self.watchdog_stdin.take());
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// One instance per preset for the whole test binary, started on first use, used by one test at a time
/// (the guard), stopped by its watchdog when the test process ends. Panics (the test fails) when
/// Speculos does not start.
pub fn shared(preset: Preset) -> MutexGuard<'static, Speculos> {
    static DEVICES: [OnceLock<Mutex<Speculos>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let m = DEVICES[preset.index()]
        .get_or_init(|| Mutex::new(Speculos::start(preset).unwrap_or_else(|e| panic!("{e}"))));
    // A test that failed while holding it poisons the lock; the device itself is still usable.
    let guard = m.lock().unwrap_or_else(PoisonError::into_inner);
    guard.ensure_idle();
    guard
}

// ------------------------------------------------------------------ REST API

/// A button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// Left.
    Left,
    /// Right.
    Right,
    /// Both.
    Both,
}

/// One text element the app drew, from `/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The text, as drawn (word-wrapped lines keep their trailing space).
    pub text: String,
    /// Position on the 128×64 screen.
    pub x: i64,
    /// Position on the screen (top = 0).
    pub y: i64,
}

/// Speculos' REST API on 127.0.0.1 (plain HTTP/1.1 over a TcpStream, one connection a request).
#[derive(Debug, Clone)]
pub struct Api {
    /// Its port.
    pub port: u16,
}

/// How long Speculos holds a button down (and waits after the release). Its default, 0.1 s, is one
/// tick of the app's clock, twice per press; below one tick it does not wait at all: the press and the
/// release are queued in order and the app acts on the release. The walker waits for each new screen
/// itself, so nothing is pressed before the app has drawn the screen the press is meant for.
const PRESS_DELAY: &str = "0";

impl Api {
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Result<String, String> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("{method} {path}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes())
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{method} {path}: malformed answer {text:?}"))?;
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if !status.starts_with('2') {
            return Err(format!("{method} {path}: HTTP {status}: {payload}"));
        }
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(payload)
        } else {
            Ok(payload.to_string())
        }
    }

    fn events_at(&self, path: &str) -> Result<Vec<Event>, String> {
        let v: Value = serde_json::from_str(&self.request("GET", path, None)?)
            .map_err(|e| format!("GET {path}: {e}"))?;
        let list = v["events"]
            .as_array()
            .ok_or_else(|| format!("GET {path}: no events in {v}"))?;
        Ok(list
            .iter()
            .map(|e| Event {
                text: e["text"].as_str().unwrap_or_default().to_string(),
                x: e["x"].as_i64().unwrap_or(0),
                y: e["y"].as_i64().unwrap_or(0),
            })
            .collect())
    }

    /// `GET /events`: every text drawn since the start or the last [`Api::clear_events`].
    pub fn events(&self) -> Result<Vec<Event>, String> {
        self.events_at("/events")
    }

    /// `GET /events?currentscreenonly=true`: the texts of the screen now showing.
    pub fn screen(&self) -> Result<Vec<String>, String> {
        Ok(self
            .events_at("/events?currentscreenonly=true")?
            .into_iter()
            .map(|e| e.text)
            .collect())
    }

    /// `DELETE /events`.
    pub fn clear_events(&self) -> Result<(), String> {
        self.request("DELETE", "/events", None).map(drop)
    }

    /// `POST /button/{left|right|both}` press-and-release.
    pub fn press(&self, b: Button) -> Result<(), String> {
        let name = match b {
            Button::Left => "left",
            Button::Right => "right",
            Button::Both => "both",
        };
        let body = format!(r#"{{"action":"press-and-release","delay":{PRESS_DELAY}}}"#);
        self.request("POST", &format!("/button/{name}"), Some(&body))
            .map(drop)
    }
}

fn dechunk(mut s: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = s.split_once("\r\n").ok_or("bad chunked body")?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_line:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("truncated chunk")?);
        s = rest
            .get(size..)
            .ok_or("truncated chunk")?
            .trim_start_matches("\r\n");
    }
}

// ------------------------------------------------------------------ walking a review

/// What the person does at the end of the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Both buttons on the approve screen ("Sign message", "Accept risk and sign transaction").
    Approve,
    /// Right from the approve screen to the reject screen ("Reject message", "Reject transaction"), both.
    Reject,
}

/// How a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Approved on the approve screen.
    Approved,
    /// Rejected on the reject screen.
    Rejected,
    /// The app refused before any review ("Blind signing must be enabled in settings"); dismissed.
    Refused,
}

/// A review the device went through.
#[derive(Debug, Clone)]
pub struct Walk {
    /// Each screen as the walker read it (`currentscreenonly`), in order, up to the decision.
    pub screens: Vec<Vec<String>>,
    /// Everything `/events` recorded, up to shortly after the decision.
    pub events: Vec<Event>,
    /// How it ended.
    pub outcome: Outcome,
    /// Button presses.
    pub presses: usize,
    /// From the first screen to the decision.
    pub elapsed: Duration,
}

impl Walk {
    /// The logical pages of the raw `/events` (see [`logical_pages`]).
    pub fn pages(&self) -> Vec<String> {
        logical_pages(&screens_from_events(&self.events))
    }
}

/// A review walking on its thread; [`Review::finish`] collects it. Dropping it stops the walker.
pub struct Review {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Walk, String>>>,
}

impl Review {
    /// Call when the request is over (the command exited, the signer returned): waits up to `grace` for
    /// the walk to end (its last press, then the result screen), and returns it, or why it did not end at
    /// a decision (e.g. no review came: the walker is stopped then).
    pub fn try_finish(mut self, grace: Duration) -> Result<Walk, String> {
        let Some(h) = self.handle.take() else {
            return Err("the review was already finished".into());
        };
        let deadline = Instant::now() + grace;
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        match h.join() {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the review walker panicked".into()),
        }
    }

    /// Like [`Review::try_finish`]; panics (the test fails) when the walk did not end at a decision.
    pub fn finish(self, grace: Duration) -> Walk {
        self.try_finish(grace)
            .unwrap_or_else(|e| panic!("walking the device's review: {e}"))
    }
}

impl Drop for Review {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn is_approve(text: &str) -> bool {
    text.starts_with("Sign ") || text.starts_with("Accept")
}

fn is_reject(text: &str) -> bool {
    text.starts_with("Reject")
}

/// The app's home screen and the result screens shown after a decision.
fn is_idle_or_result(text: &str) -> bool {
    text == "Ethereum app is ready"
        || matches!(
            text,
            "Message signed" | "Message rejected" | "Transaction signed" | "Transaction rejected"
        )
}

fn is_continue(text: &str) -> bool {
    text.starts_with("Press right button to continue message")
}

/// Waits until `/events` holds more than `seen` events and has stopped growing; returns them.
fn next_events(
    api: &Api,
    seen: usize,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Vec<Event>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err("stopped (the request ended)".into());
        }
        let ev = api.events()?;
        if ev.len() > seen {
            // Let the screen finish drawing.
            let mut ev = ev;
            loop {
                std::thread::sleep(Duration::from_millis(30));
                let again = api.events()?;
                if again.len() == ev.len() {
                    return Ok(ev);
                }
                ev = again;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no new screen within {} s (events so far: {:?})",
                timeout.as_secs(),
                ev.iter().map(|e| e.text.as_str()).collect::<Vec<_>>()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn walk(
    api: &Api,
    decision: Decision,
    skip_after: Option<&str>,
    stop: &AtomicBool,
) -> Result<Walk, String> {
    let mut seen = 0;
    let mut screens: Vec<Vec<String>> = Vec::new();
    let mut presses = 0;
    let mut skip_armed = false;
    let mut started: Option<Instant> = None;
    let outcome = loop {
        // The first screen comes when the request reaches the device (the binary starts, verifies the
        // bundle, reads the app's settings); the next ones follow each press.
        let timeout = if screens.is_empty() { 120 } else { 20 };
        let ev = next_events(api, seen, Duration::from_secs(timeout), stop)
            .map_err(|e| format!("{e}; no decision reached; the screens so far: {screens:?}"))?;
        seen = ev.len();
        let screen = api.screen()?;
        if screen.is_empty() {
            continue;
        }
        let text = join_screen(&screen);
        if is_idle_or_result(&text) {
            // The home screen, or the previous request's result timing out to it: nothing to press.
            continue;
        }
        screens.push(screen);
        started.get_or_insert_with(Instant::now);
        if let Some(prefix) = skip_after {
            if text.starts_with(prefix) {
                skip_armed = true;
            }
        }
        let (button, done) = if text.starts_with("Blind signing must") {
            (Button::Both, Some(Outcome::Refused))
        } else if text.starts_with("Blind signing ahead") {
            (Button::Both, None)
        } else if is_approve(&text) {
            match decision {
                Decision::Approve => (Button::Both, Some(Outcome::Approved)),
                Decision::Reject => (Button::Right, None),
            }
        } else if is_reject(&text) && decision == Decision::Reject {
            (Button::Both, Some(Outcome::Rejected))
        } else if is_continue(&text) && skip_armed {
            (Button::Both, None)
        } else {
            (Button::Right, None)
        };
        api.press(button)?;
        presses += 1;
        if let Some(o) = done {
            break o;
        }
        if presses > 400 {
            return Err(format!("no decision after 400 presses: {screens:?}"));
        }
    };
    let elapsed = started.map(|t| t.elapsed()).unwrap_or_default();
    // The result screen ("Message signed", …) follows; give it a moment so that it is in the record.
    let _ = next_events(api, seen, Duration::from_secs(3), stop);
    Ok(Walk {
        screens,
        events: api.events()?,
        outcome,
        presses,
        elapsed,
    })
}

// ------------------------------------------------------------------ from /events to pages

/// Screens that are one line and stand alone (they may be drawn lower on the screen than the first line
/// of the screen that follows them, so the position alone does not separate them).
const ONE_LINE_SCREENS: &[&str] = &[
    "Sign message",
    "Reject message",
    "Reject transaction",
    "Message signed",
    "Message rejected",
    "Transaction signed",
    "Transaction rejected",
    "Review transaction",
];

/// Splits the raw `/events` into screens. The app draws each screen's lines top to bottom, and `/events`
/// has no marker between screens: a line drawn no lower than the previous one starts a new screen, and
/// so does (and ends one) each of the app's one-line screens.
pub fn screens_from_events(events: &[Event]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut last_y: Option<i64> = None;
    for e in events {
        let alone = ONE_LINE_SCREENS.contains(&e.text.trim());
        if (alone || last_y.is_some_and(|y| e.y <= y)) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(e.text.clone());
        last_y = Some(e.y);
        if alone {
            out.push(std::mem::take(&mut cur));
            last_y = None;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One screen as one line of text: a word-wrapped sentence (its lines end in a space, or hold spaces)
/// joined with spaces ("Review typed message"); a title and its value with one space, the value's lines
/// joined as they are (an address or hex split over three lines is one token again).
pub fn join_screen(lines: &[String]) -> String {
    let Some((first, rest)) = lines.split_first() else {
        return String::new();
    };
    if rest.is_empty() {
        return first.trim().to_string();
    }
    let prose =
        first.ends_with(' ') || (rest.len() > 1 && rest.iter().any(|l| l.trim().contains(' ')));
    if prose {
        let words: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
        words.join(" ")
    } else {
        let value: String = rest.iter().map(|l| l.trim()).collect();
        format!("{} {value}", first.trim())
    }
}

/// A multi-screen value's title: `data (3/8)` → ("data", 3, 8).
fn part_of(title: &str) -> Option<(&str, usize, usize)> {
    let t = title.trim();
    let open = t.rfind(" (")?;
    let inner = t[open + 2..].strip_suffix(')')?;
    let (k, n) = inner.split_once('/')?;
    Some((&t[..open], k.parse().ok()?, n.parse().ok()?))
}

/// The logical pages of a review, one entry per field as breakglass previews them: a title with its value
/// (`chainId 31337`, `to 0x9641…02e2`), a value spread over several screens joined (`data (1/8)` …
/// `(8/8)`, `Message hash (1/2)`, `(2/2)` → `data 0x…`, `Message hash 0x…`), "Blind signing ahead"
/// without its button instructions, and the approve screen last. Left out: the navigation screens
/// ("Press right button to continue message or press both to skip", the reject screen), and whatever
/// comes after the approve screen (the result, the home screen).
pub fn logical_pages(screens: &[Vec<String>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut multi: Option<(String, String)> = None;
    for s in screens {
        let Some(first) = s.first() else { continue };
        if let Some((name, k, n)) = part_of(first) {
            let value: String = s[1..].iter().map(|l| l.trim()).collect();
            let (name_so_far, mut acc) = multi.take().unwrap_or((name.to_string(), String::new()));
            if k == 1 {
                acc.clear();
            }
            acc.push_str(&value);
            if k == n {
                out.push(format!("{name_so_far} {acc}"));
            } else {
                multi = Some((name_so_far, acc));
            }
            continue;
        }
        let text = join_screen(s);
        if is_continue(&text) || is_reject(&text) || is_idle_or_result(&text) {
            continue;
        }
        if text.starts_with("Blind signing ahead") {
            out.push("Blind signing ahead".to_string());
            continue;
        }
        let approve = is_approve(&text);
        out.push(text);
        if approve {
            break;
        }
    }
    out
}
