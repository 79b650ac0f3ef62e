//! Issue 14 (Multicall3 batches): Optimism and Base batch Safe transactions by DELEGATECALLing
//! Multicall3's `aggregate3`. breakglass opens the batch like a MultiSend and judges every call, allows
//! the DELEGATECALL only when the manifest names that Multicall3 as the Safe's `batcher`, and refuses a
//! call that may fail silently (`allowFailure`). Executed on anvil with the real Safe 1.4.1; the batcher
//! is tests/contracts/Multicall3Lite.sol (Multicall3's batch ABI) at Multicall3's canonical address.

use crate::compose_chain::rehash;
use crate::support::anvil::{artifact, cast_offline};
use crate::support::world::{all_output, ok, Pins, World};
use serde_json::json;

const MULTICALL3: &str = "0xcA11bde05977b3631167028862bE2a173976CA11";

fn aggregate3(calls: &[(&str, bool, &str)]) -> String {
    let list: Vec<String> = calls
        .iter()
        .map(|(t, f, d)| format!("({t},{f},{d})"))
        .collect();
    cast_offline(&[
        "calldata",
        "aggregate3((address,bool,bytes)[])",
        &format!("[{}]", list.join(",")),
    ])
}

#[test]
fn multicall3_batches_are_opened_and_allowed_only_as_the_named_batcher() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let (_, _, runtime) = artifact("contracts/Multicall3Lite.json");
    w.anvil.set_code(MULTICALL3, &runtime);
    let base = std::fs::read_to_string(w.sb.path("m.toml")).unwrap();
    w.sb.write(
        "batcher.toml",
        base.replace(
            "threshold = 2\n",
            &format!("threshold = 2\nbatcher = \"{MULTICALL3}\"\n"),
        ),
    );
    let h =
        w.sb.run(&["--manifest", "batcher.toml", "manifest", "hash"]);
    ok(&h, "hash");
    w.pins
        .borrow_mut()
        .insert("batcher.toml".into(), h.stdout.trim().to_string());

    let pause = cast_offline(&["calldata", "pause()"]);
    let unpause = cast_offline(&["calldata", "unpause()"]);
    let halt = aggregate3(&[(&w.pool, false, &pause), (&w.vault, false, &pause)]);
    let verify = |m: &str, data: &str| {
        w.bg(
            m,
            false,
            &[
                "--json",
                "verify",
                "--safe",
                &w.safe,
                "--to",
                MULTICALL3,
                "--operation",
                "1",
                "--data",
                data,
            ],
        )
    };

    // Not named as the batcher: a DELEGATECALL to a foreign contract, critical.
    let r = verify("m.toml", &halt);
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(r.stdout.contains("\"delegatecall\""), "{}", r.stdout);

    // Named: opened call by call, both pauses allowed.
    let r = verify("batcher.toml", &halt);
    assert_eq!(r.code, 0, "{}", all_output(&r));
    let v = r.json();
    assert_eq!(v["actions"], json!(["pause-pool", "pause-vault"]));
    assert_eq!(v["verdicts"]["0.0"]["verdict"], json!("allowed"), "{v}");
    assert_eq!(v["verdicts"]["0.1"]["verdict"], json!("allowed"), "{v}");

    // A call allowed to fail silently, or a call the manifest does not allow: refused.
    let lenient = aggregate3(&[(&w.pool, true, &pause), (&w.vault, false, &pause)]);
    let r = verify("batcher.toml", &lenient);
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(r.stdout.contains("allow_failure"), "{}", r.stdout);
    let sneaky = aggregate3(&[(&w.pool, false, &pause), (&w.vault, false, &unpause)]);
    let r = verify("batcher.toml", &sneaky);
    assert_eq!(r.code, 3, "{}", all_output(&r));

    // Executed for real: the halt bundle rewritten to the Multicall3 batch, signed, executed.
    ok(
        &w.bg("batcher.toml", true, &["compose", "halt", "-o", "c.json"]),
        "compose",
    );
    let mut b = w.bundle("c.json");
    b["safe_tx"]["to"] = json!(MULTICALL3);
    b["safe_tx"]["data"] = json!(halt);
    b["safe_tx"]["operation"] = json!("delegatecall");
    rehash(&mut b);
    w.sb.write("mc.json", serde_json::to_vec_pretty(&b).unwrap());
    let signed = w.sign_twice("batcher.toml", "mc.json", "mc");
    let r = w.execute_keystore("batcher.toml", &signed, "mc-done.json");
    ok(&r, "execute the Multicall3 batch");
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
}
