//! Device faults through the built-in simulator (`breakglass device-sim --mode …`): a cable pulled
//! mid-signature, a device that never answers, a locked device, the wrong app, a garbage answer, a short
//! answer, a rejection, and no device at all. Each is exit 4 with an error that says what to do, nothing
//! is written (neither a new file nor over an existing one with --force), and the audit log records the
//! error and still verifies.

use crate::support::bin::{repo, Run, Sandbox};
use crate::support::sim::SimProcess;
use breakglass::audit;
use std::time::{Duration, Instant};

fn demo() -> String {
    repo().join("examples/demo.toml").display().to_string()
}

/// `breakglass --manifest examples/demo.toml ARGS` in the sandbox.
fn bg(sb: &Sandbox, args: &[&str]) -> Run {
    let mut a = vec!["--manifest".to_string(), demo()];
    a.extend(args.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    sb.run(&a)
}

/// Temp files of an aborted write of `name` (`.NAME.PID.tmp`) in the sandbox.
fn strays(sb: &Sandbox, name: &str) -> Vec<String> {
    let prefix = format!(".{name}.");
    std::fs::read_dir(sb.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Signs a composed halt bundle against `addr` (a simulator in some mode, or nothing): exit 4, stderr
/// naming one of `phrases`, nothing written (new file, and in place with --force), an `error` entry of
/// `kind` in the sandbox's audit log, which still verifies; no `sign` entry.
fn assert_fault(addr: &str, extra: &[&str], phrases: &[&str], kind: &str) {
    let sb = Sandbox::new();
    let unsigned = sb.path("unsigned.json");
    let c = bg(
        &sb,
        &[
            "compose",
            "halt",
            "--nonce",
            "0",
            "-o",
            unsigned.to_str().unwrap(),
        ],
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    let original = std::fs::read(&unsigned).unwrap();
    let pin = bg(&sb, &["manifest", "hash"]).stdout.trim().to_string();
    let out = sb.path("signed.json");
    let log = sb.path("data/audit.jsonl");

    for in_place in [false, true] {
        let target = if in_place { &unsigned } else { &out };
        let ctx = format!(
            "{kind} ({}):",
            if in_place {
                "in place, --force"
            } else {
                "new file"
            }
        );
        let mut args = vec![
            "--pin",
            pin.as_str(),
            "sign",
            unsigned.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
            "--speculos",
            addr,
        ];
        if in_place {
            args.push("--force");
        }
        args.extend_from_slice(extra);
        let before = audit::entries(&std::fs::read(&log).unwrap()).len();
        let t = Instant::now();
        let r = bg(&sb, &args);
        let took = t.elapsed();
        assert_eq!(
            r.code, 4,
            "{ctx} exit {} (want 4)\nstdout:\n{}\nstderr:\n{}",
            r.code, r.stdout, r.stderr
        );
        assert!(
            took < Duration::from_secs(20),
            "{ctx} took {took:?} to give up"
        );
        let err = r.stderr.to_lowercase();
        assert!(
            phrases.iter().any(|p| err.contains(&p.to_lowercase())),
            "{ctx} stderr names none of {phrases:?}:\n{}",
            r.stderr
        );
        assert!(
            err.contains("nothing was written") || err.contains("nothing was signed"),
            "{ctx} stderr does not say that nothing was signed or written:\n{}",
            r.stderr
        );
        assert!(!r.stdout.contains("signed by"), "{ctx}\n{}", r.stdout);
        // Nothing written.
        assert!(!out.exists(), "{ctx} {} was written", out.display());
        assert_eq!(
            std::fs::read(&unsigned).unwrap(),
            original,
            "{ctx} the input bundle changed"
        );
        let st = strays(&sb, "signed.json");
        assert!(st.is_empty(), "{ctx} stray files: {st:?}");
        let st = strays(&sb, "unsigned.json");
        assert!(st.is_empty(), "{ctx} stray files: {st:?}");
        // The audit log has the error (and no signature), and still verifies.
        let bytes = std::fs::read(&log).unwrap();
        let es = audit::entries(&bytes);
        assert_eq!(es.len(), before + 1, "{ctx} one entry per failed sign");
        let last = es.last().unwrap();
        assert_eq!(last.event, "error", "{ctx} {last:?}");
        assert_eq!(last.details["command"], "sign", "{ctx} {last:?}");
        assert_eq!(last.details["exit_code"], 4, "{ctx} {last:?}");
        assert_eq!(last.details["kind"], kind, "{ctx} {last:?}");
        assert!(
            es.iter().all(|e| e.event != "sign"),
            "{ctx} a sign entry for a signature that was never made: {es:?}"
        );
        let v = audit::verify(&bytes);
        assert!(v.broken.is_none(), "{ctx} {v:?}");
        let av = bg(&sb, &["audit", "verify"]);
        assert_eq!(av.code, 0, "{ctx} {}{}", av.stdout, av.stderr);
    }
}

fn sim_fault(mode: &str, extra: &[&str], phrases: &[&str], kind: &str) {
    let sim = SimProcess::start(&["--mode", mode]);
    assert_fault(&sim.addr, extra, phrases, kind);
}

#[test]
fn cable_pulled_mid_signature() {
    sim_fault("disconnect", &[], &["unplugged"], "device_unavailable");
}

#[test]
fn device_never_answers() {
    sim_fault(
        "hang",
        &["--device-timeout", "2"],
        &["no answer within 2 s"],
        "device_unavailable",
    );
}

#[test]
fn device_locked() {
    sim_fault("locked", &[], &["unlock"], "locked");
}

#[test]
fn wrong_app_open() {
    sim_fault("dashboard", &[], &["open the Ethereum app"], "app_not_open");
}

#[test]
fn garbage_answer() {
    sim_fault("garbage", &[], &["malformed", "discarded"], "device");
}

#[test]
fn short_answer() {
    sim_fault("short", &[], &["too short"], "device");
}

#[test]
fn rejected_on_the_device() {
    sim_fault("reject", &[], &["rejected on the device"], "rejected");
}

#[test]
fn no_device_listening() {
    // A port that was free a moment ago: nothing listens there.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    assert_fault(
        &addr,
        &[],
        &["device-sim", "Speculos"],
        "device_unavailable",
    );
}
