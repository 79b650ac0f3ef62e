//! The built-in Ledger simulator for tests: as a child process (`breakglass device-sim`, as a person runs
//! it; killed by its own PID when dropped) or on a thread of the test process. One wrapper for every test
//! module.
#![allow(dead_code)]

use breakglass::signer::ledger::apdu::ledger_live_path;
use breakglass::signer::ledger::sim::{self, SimConfig};
use breakglass::signer::ledger::{LedgerSigner, TcpTransport};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `breakglass device-sim --listen 127.0.0.1:0 ARGS` (the OS picks the port), killed by its PID on drop.
pub struct SimProcess {
    child: Child,
    /// HOST:PORT of its APDU port.
    pub addr: String,
}

impl SimProcess {
    /// Starts it with extra arguments (`--mode …`, `--blind-signing off`, `--approve-delay-ms N`).
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_breakglass"))
            .args(["device-sim", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("BREAKGLASS_MANIFEST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn device-sim");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        // "SIMULATED LEDGER (…) listening on 127.0.0.1:PORT: Ethereum app 1.22.0, …"
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split(": ").next())
            .map(|a| a.trim().to_string());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("device-sim {args:?} did not say where it listens: {line:?}");
        };
        assert!(
            line.contains("SIMULATED LEDGER"),
            "the simulator must say what it is: {line}"
        );
        // Keep draining its stdout so that it never blocks on (or dies of) a closed pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        Self { child, addr }
    }

    /// The default simulator (approves, blind signing on).
    pub fn approving() -> Self {
        Self::start(&[])
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // Child::kill signals exactly this child's PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator on a thread of this process, on 127.0.0.1:0, stopped when dropped.
pub struct InProcessSim {
    /// HOST:PORT.
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InProcessSim {
    /// Starts it with `cfg`.
    pub fn start(cfg: SimConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let _ = sim::serve(listener, cfg, s);
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// With blind signing on or off.
    pub fn blind(on: bool) -> Self {
        Self::start(SimConfig {
            blind_signing: on,
            ..Default::default()
        })
    }

    /// In a fault mode.
    pub fn mode(mode: sim::SimMode) -> Self {
        Self::start(SimConfig {
            mode,
            ..Default::default()
        })
    }

    /// A TCP transport to it.
    pub fn connect(&self) -> TcpTransport {
        TcpTransport::connect(&self.addr, Duration::from_secs(30))
            .expect("connect to the simulator")
    }

    /// A Ledger signer for Ledger Live account `account`.
    pub fn signer(&self, account: u32) -> LedgerSigner {
        LedgerSigner::new(Box::new(self.connect()), ledger_live_path(account))
    }
}

impl Drop for InProcessSim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
