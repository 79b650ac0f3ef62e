//! Issue 18 on anvil: upgrades carry the storage layouts of both implementations (solc's output for the
//! real test contracts, pinned in the manifest). The demo patch passes; an implementation that inserts a
//! variable in the middle is refused by `compose` before signing, naming the variable and slot; an
//! appended variable whose slot already holds data on the live proxy is refused as a collision; a proxy
//! that no longer points at the layout's current implementation is refused.

use crate::support::anvil::tools_dir;
use crate::support::world::{all_output, ok, Pins, World};
use alloy::primitives::keccak256;
use serde_json::Value;

/// Writes a contract's storage layout (from its solc-js artifact) beside the manifest; returns
/// (file name, keccak256 of its bytes).
fn layout_file(w: &World, contract: &str) -> (String, String) {
    let art: Value = serde_json::from_slice(
        &std::fs::read(
            tools_dir()
                .join("contracts")
                .join(format!("{contract}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let bytes = serde_json::to_vec_pretty(&art["storageLayout"]).unwrap();
    let name = format!("layouts/{contract}.json");
    w.sb.write(&name, &bytes);
    (name, format!("{:#x}", keccak256(&bytes)))
}

fn layout_table(cur: &(String, String), new: &(String, String), extra: &str) -> String {
    format!(
        "storage_layout = {{ current = \"{}\", current_hash = \"{}\", new = \"{}\", new_hash = \"{}\"{extra} }}",
        cur.0, cur.1, new.0, new.1
    )
}

/// The world's manifest, its vault upgrade carrying layouts, plus an upgrade to `target` (deployed from
/// `contract`) as playbook `patch-to`.
fn manifest(w: &World, target: &str, contract: &str, extra: &str) -> String {
    let base = w.manifest_text(Pins::Right, 31337);
    let v1 = layout_file(w, "UUPSPool");
    let v2 = layout_file(w, "UUPSPoolV2");
    let args = format!(
        "args = {{ implementation = {{ eq = \"{}\" }} }}",
        w.vault_v2
    );
    assert!(base.contains(&args));
    let with_layout = base.replace(&args, &format!("{args}\n{}", layout_table(&v1, &v2, "")));
    let new = layout_file(w, contract);
    format!(
        r#"{with_layout}
[policy]
require_storage_layout = false

[[actions]]
id = "upgrade-vault-to"
title = "Upgrade the vault to the candidate"
contract = "vault"
function = "upgrade"
args = {{ implementation = {{ eq = "{target}" }} }}
{layout}

[[playbooks]]
id = "patch-to"
title = "Patch the vault to the candidate"
actions = ["upgrade-vault-to"]
"#,
        layout = layout_table(&v1, &new, extra)
    )
}

#[test]
fn upgrades_are_refused_when_their_storage_layout_is_unsafe() {
    let w = World::deploy();
    let inserted =
        w.anvil
            .deploy_artifact("contracts/UUPSPoolV2Inserted.json", "constructor()", &[]);
    let appended =
        w.anvil
            .deploy_artifact("contracts/UUPSPoolV3Appended.json", "constructor()", &[]);

    // The demo patch (V1 → V2, the same layout) passes, and says so.
    w.write_manifest_text("m.toml", &manifest(&w, &inserted, "UUPSPoolV2Inserted", ""));
    let r = w.bg("m.toml", true, &["compose", "patch", "-o", "patch.json"]);
    ok(&r, "compose the demo patch");
    assert!(
        r.stdout.contains("keeps every variable in place"),
        "{}",
        r.stdout
    );
    let r = w.bg("m.toml", false, &["manifest", "check"]);
    ok(&r, "manifest check");
    assert!(
        r.stdout.contains("upgrade-vault: layouts/UUPSPool.json → layouts/UUPSPoolV2.json: keeps every variable in place")
            && r.stdout.contains("upgrade-vault-to: layouts/UUPSPool.json → layouts/UUPSPoolV2Inserted.json: UNSAFE"),
        "{}",
        r.stdout
    );

    // A V2 that inserts a variable in the middle: refused before signing, naming the variable and slot.
    let r = w.bg("m.toml", true, &["compose", "patch-to", "-o", "bad.json"]);
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("storage layout is unsafe"), "{out}");
    assert!(
        out.contains(
            "`_paused` of UUPSPoolV2Inserted moves from slot 0, offset 20 (bool) to slot 2"
        ),
        "names the variable and its slots: {out}"
    );
    assert!(!w.sb.path("bad.json").exists());
    // `verify` of the same call refuses it too (exit 3).
    let r = w.bg(
        "m.toml",
        false,
        &[
            "verify",
            "--safe",
            &w.safe,
            "--to",
            &w.vault,
            "--data",
            &crate::support::anvil::calldata("upgradeToAndCall(address,bytes)", &[&inserted, "0x"]),
            "--nonce",
            "0",
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));

    // An appended variable (safe by layout) whose slot already holds data on the live proxy: a collision.
    w.write_manifest_text(
        "m2.toml",
        &manifest(&w, &appended, "UUPSPoolV3Appended", ""),
    );
    let r = w.bg("m2.toml", true, &["compose", "patch-to", "-o", "v3.json"]);
    ok(&r, "an appended variable over empty storage is safe");
    w.anvil.rpc(
        "anvil_setStorageAt",
        serde_json::json!([w.vault, "0x1", format!("0x{:064x}", 7)]),
    );
    let r = w.bg("m2.toml", true, &["compose", "patch-to", "-o", "v3b.json"]);
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("collision"), "{out}");
    assert!(out.contains("slot 0x1"), "{out}");
    assert!(!w.sb.path("v3b.json").exists());
    w.anvil.rpc(
        "anvil_setStorageAt",
        serde_json::json!([w.vault, "0x1", format!("0x{:064x}", 0)]),
    );

    // The layout's current implementation pinned by code hash: a proxy pointing elsewhere is refused.
    let wrong = format!(", current_codehash = \"0x{}\"", "11".repeat(32));
    w.write_manifest_text(
        "m3.toml",
        &manifest(&w, &appended, "UUPSPoolV3Appended", &wrong),
    );
    let r = w.bg("m3.toml", true, &["compose", "patch-to", "-o", "v3c.json"]);
    let out = all_output(&r);
    assert_eq!(r.code, 3, "{out}");
    assert!(out.contains("not the current implementation"), "{out}");
    let right = format!(
        ", current_codehash = \"{}\"",
        w.codehash(&w.implementation(&w.vault))
    );
    w.write_manifest_text(
        "m4.toml",
        &manifest(&w, &appended, "UUPSPoolV3Appended", &right),
    );
    let r = w.bg("m4.toml", true, &["compose", "patch-to", "-o", "v3d.json"]);
    ok(&r, "the pinned current implementation matches");
}

/// `[policy] require_storage_layout = true`: an upgrade without layouts is a manifest error at load; a
/// changed layout file is refused at load too.
#[test]
fn a_manifest_that_requires_layouts_refuses_upgrades_without_them() {
    let w = World::deploy();
    let base = w.manifest_text(Pins::Right, 31337);
    let text = format!("{base}\n[policy]\nrequire_storage_layout = true\n");
    w.sb.write("req.toml", &text);
    let r = w.sb.run(&["--manifest", "req.toml", "manifest", "check"]);
    assert_ne!(r.code, 0, "{}", all_output(&r));
    assert!(
        all_output(&r).contains("upgrade without storage_layout"),
        "{}",
        all_output(&r)
    );
    let inserted =
        w.anvil
            .deploy_artifact("contracts/UUPSPoolV2Inserted.json", "constructor()", &[]);
    let good = manifest(&w, &inserted, "UUPSPoolV2Inserted", "");
    w.sb.write("ok.toml", &good);
    // The pool's upgrade has no layout: still refused when required.
    w.sb.write(
        "ok.toml",
        good.replace(
            "require_storage_layout = false",
            "require_storage_layout = true",
        ),
    );
    let r = w.sb.run(&["--manifest", "ok.toml", "manifest", "check"]);
    assert!(
        all_output(&r).contains("\"upgrade-pool\" is an upgrade without storage_layout"),
        "{}",
        all_output(&r)
    );
    // A layout file changed after pinning.
    w.sb.write("m.toml", &good);
    w.sb.write(
        "layouts/UUPSPoolV2.json",
        b"{\"storage\": [], \"types\": {}}",
    );
    let r = w.sb.run(&["--manifest", "m.toml", "manifest", "check"]);
    assert_ne!(r.code, 0);
    assert!(
        all_output(&r).contains("the new layout changed"),
        "{}",
        all_output(&r)
    );
}
