//! Issue 12, finding 7: one large audit entry must not break the chain. The appender used to read only
//! the last 64 KiB of the log, so after a 70 KB entry (the verdict of a 5,000-call Builder batch) the next
//! append took the entry's tail for a torn line, recorded a spurious `torn_entry` and restarted the
//! numbering, and `audit verify` then reported tampering: anyone could make an honest trail look forged.

use crate::support::bin::{repo, Sandbox};
use breakglass::audit::{self, AuditLog};
use serde_json::{json, Value};

fn demo() -> String {
    repo().join("examples/demo.toml").display().to_string()
}

fn audit_verify(sb: &Sandbox, log: &str) -> Value {
    let r = sb.run(&["--json", "audit", "verify", "--audit-log", log]);
    assert_eq!(r.code, 0, "audit verify: {}\n{}", r.stdout, r.stderr);
    r.json()
}

/// The attack as it happened: `verify` of a Safe Transaction Builder file of 6,000 pauses writes a
/// verdict entry of more than 64 KiB; the commands after it must keep the chain whole.
#[test]
fn a_huge_verdict_entry_keeps_the_chain() {
    let sb = Sandbox::new();
    let pause = "0x8456cb59";
    let txs: Vec<Value> = (0..6000)
        .map(|_| json!({"to": "0xb001000000000000000000000000000000000001", "value": "0", "data": pause}))
        .collect();
    let f = json!({
        "version": "1.0",
        "chainId": "31337",
        "meta": {"createdFromSafeAddress": "0x5AFe00000000000000000000000000000000a11C"},
        "transactions": txs,
    });
    sb.write("big.json", serde_json::to_vec(&f).unwrap());
    let log = sb.path("audit.jsonl").display().to_string();
    let demo = demo();
    let run = |args: &[&str]| {
        let mut a = vec!["--manifest", demo.as_str(), "--audit-log", log.as_str()];
        a.extend_from_slice(args);
        sb.run(&a)
    };
    let r = run(&["verify", "--allow-untrusted", "--safe-json", "big.json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let size = std::fs::metadata(sb.path("audit.jsonl")).unwrap().len();
    assert!(
        size > 64 * 1024,
        "the verdict entry should be large: {size} bytes"
    );
    sb.write("small.json", serde_json::to_vec(&json!({
        "chainId": "31337",
        "meta": {"createdFromSafeAddress": "0x5AFe00000000000000000000000000000000a11C"},
        "transactions": [{"to": "0xb001000000000000000000000000000000000001", "value": "0", "data": pause}],
    })).unwrap());
    let r = run(&["manifest", "pin", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for _ in 0..3 {
        let r = run(&["verify", "--safe-json", "small.json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let v = audit_verify(&sb, &log);
    assert_eq!(v["ok"], json!(true), "{v}");
    // The large verdict, the pin, three small verdicts.
    assert_eq!(v["entries"], json!(5), "{v}");
    assert_eq!(v["torn_recovered"], json!([]), "{v}");
    let bytes = std::fs::read(sb.path("audit.jsonl")).unwrap();
    let seqs: Vec<u64> = audit::entries(&bytes).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=5).collect::<Vec<_>>());
    assert!(!audit::entries(&bytes)
        .iter()
        .any(|e| e.event == "torn_entry"));
}

/// Through the library, entries of 70 KB and 1 MB between small ones: numbers continuous, chain intact.
#[test]
fn entries_of_any_size_append_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::new(dir.path().join("a.jsonl"));
    log.append("compose", json!({"n": 1})).unwrap();
    log.append("verify", json!({"blob": "x".repeat(70_000)}))
        .unwrap();
    log.append("sign", json!({"n": 3})).unwrap();
    log.append("verify", json!({"blob": "y".repeat(1_000_000)}))
        .unwrap();
    log.append("execute", json!({"n": 5})).unwrap();
    let bytes = log.read().unwrap();
    let v = audit::verify(&bytes);
    assert_eq!(v.broken, None, "{v:?}");
    assert_eq!(v.entries, 5);
    assert!(v.torn_recovered.is_empty());
    let seqs: Vec<u64> = audit::entries(&bytes).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

/// A genuinely torn tail after a large entry is still recorded as torn (not dropped, not mistaken).
#[test]
fn a_torn_tail_after_a_large_entry_is_still_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let log = AuditLog::new(&path);
    log.append("verify", json!({"blob": "z".repeat(200_000)}))
        .unwrap();
    // A crash mid-write of the next entry: half a line, no newline.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":2,"time":1,"event":"sign","details":{"sig"#);
    std::fs::write(&path, &bytes).unwrap();
    assert!(audit::verify(&bytes).broken.is_some());
    log.append("sign", json!({"n": 3})).unwrap();
    let bytes = log.read().unwrap();
    let v = audit::verify(&bytes);
    assert_eq!(v.broken, None, "{v:?}");
    assert_eq!(v.torn_recovered.len(), 1, "{v:?}");
    let events: Vec<(u64, String)> = audit::entries(&bytes)
        .into_iter()
        .map(|e| (e.seq, e.event))
        .collect();
    assert_eq!(
        events,
        [
            (1, "verify".to_string()),
            (3, "torn_entry".to_string()),
            (4, "sign".to_string())
        ]
    );
    // A torn run of a large entry's tail (several unreadable lines after a huge one) counts each line.
    let mut bytes = log.read().unwrap();
    bytes.extend_from_slice(b"garbage line one\n");
    bytes.extend_from_slice(&vec![b'q'; 100_000]);
    std::fs::write(&path, &bytes).unwrap();
    log.append("execute", json!({})).unwrap();
    let bytes = log.read().unwrap();
    let v = audit::verify(&bytes);
    assert_eq!(v.broken, None, "{v:?}");
    assert_eq!(v.torn_recovered.len(), 2, "{v:?}");
}
