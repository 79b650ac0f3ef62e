//! Issue 19 on anvil: a pre-signed pause ladder. Five rungs of the halt playbook signed by two owners
//! (the simulator and a keystore); `status` names the live rung; an unrelated Safe transaction moves the
//! nonce, so the next rung is live; `fire` pauses with the post-conditions green; firing again when paused
//! is refused without using the nonce; removing an owner who signed makes the ladder invalid; a manifest
//! that marks an upgrade playbook `presign` is refused at load.

use crate::support::tmux::{console_command, sh_quote, Tmux};
use crate::support::world::{all_output, ok, Pins, World, SIM1};
use serde_json::Value;

fn manifest(w: &World) -> String {
    format!(
        "{}\n[[playbooks]]\nid = \"halt-ladder\"\ntitle = \"Pre-signed halt\"\nactions = [\"pause-pool\", \"pause-vault\"]\npresign = true\n",
        w.manifest_text(Pins::Right, 31337)
    )
}

fn status(w: &World) -> (i32, Value) {
    let r = w.bg("m.toml", true, &["--json", "ladder", "status", "l.json"]);
    (
        r.code,
        serde_json::from_str(&r.stdout).unwrap_or(Value::Null),
    )
}

#[test]
fn a_ladder_is_built_signed_and_fired_and_knows_when_it_is_stale_or_invalid() {
    let w = World::deploy();
    w.write_manifest_text("m.toml", &manifest(&w));
    let n0 = w.safe_nonce();

    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "5",
            "-o",
            "l.json",
        ],
    );
    ok(&r, "ladder build");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.sb.path("l.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the ladder is readable by its owner only"
        );
    }
    // A playbook not marked presign is refused.
    let r = w.bg(
        "m.toml",
        true,
        &["ladder", "build", "halt", "--rungs", "2", "-o", "x.json"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(all_output(&r).contains("presign"), "{}", all_output(&r));

    // Two owners sign every rung in one sitting each (`sign LADDER`, and `ladder sign`).
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            "l.json",
            "--in-place",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
        ],
    );
    ok(&r, "the simulator signs the ladder");
    assert_eq!(r.stdout.matches("=== rung ").count(), 5, "{}", r.stdout);
    assert!(r.stdout.contains("=== rung 3 of 5"), "{}", r.stdout);
    let r = w.bg(
        "m.toml",
        false,
        &[
            "ladder",
            "sign",
            "l.json",
            "--keystore",
            "keystores/owner3",
            "--password-file",
            "password.txt",
        ],
    );
    ok(&r, "the keystore owner signs the ladder");
    let (code, s) = status(&w);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["status"]["state"], "live");
    assert_eq!(s["status"]["rung"], 0);

    // An unrelated Safe transaction at nonce n0: rung 1 is dead, rung 2 live.
    let signed = w.compose_and_sign("m.toml", &["patch-pool"], "patch");
    ok(
        &w.execute_keystore("m.toml", &signed, "patched.json"),
        "unrelated execution",
    );
    assert_eq!(w.safe_nonce(), n0 + 1);
    let (code, s) = status(&w);
    assert_eq!(code, 0, "{s}");
    assert_eq!(s["status"]["rung"], 1, "{s}");

    // Fire: the live rung pauses, the post-conditions hold.
    let r = w.bg(
        "m.toml",
        true,
        &[
            "--json",
            "ladder",
            "fire",
            "l.json",
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
        ],
    );
    ok(&r, "fire");
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["rung"], 2);
    assert_eq!(j["all_passed"], true, "{j}");
    assert!(j["seconds"].as_f64().unwrap() > 0.0);
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
    assert_eq!(w.safe_nonce(), n0 + 2);

    // Fire again, already paused: refused, the nonce stays unused, the ladder stays live.
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "fire",
            "l.json",
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    let out = all_output(&r);
    assert!(
        out.contains("nothing fired") && out.contains("stays unused"),
        "{out}"
    );
    assert_eq!(w.safe_nonce(), n0 + 2);
    let (code, _) = status(&w);
    assert_eq!(code, 0);

    // An owner who signed (the keystore owner) is removed on chain: the ladder is invalid.
    w.anvil.send_as(
        &w.safe,
        &w.safe,
        "removeOwner(address,address,uint256)",
        &[SIM1, &w.owner3, "2"],
    );
    let (code, s) = status(&w);
    assert_eq!(code, 8, "{s}");
    assert_eq!(s["status"]["state"], "invalid");
    assert!(
        s["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("no longer an owner"),
        "{s}"
    );
    let r = w.bg("m.toml", true, &["ladder", "status", "l.json"]);
    assert_eq!(r.code, 8);
    assert!(r.stdout.contains("INVALID"), "{}", r.stdout);
}

/// `presign = true` only on playbooks that can only pause: an upgrade, or an argument that is not fixed,
/// is refused at load.
#[test]
fn presign_is_refused_on_playbooks_that_are_not_fully_determined() {
    let w = World::deploy();
    let base = w.manifest_text(Pins::Right, 31337);
    for (playbook, why) in [("patch", "it is an upgrade"), ("resume", "via timelock")] {
        let text = format!(
            "{base}\n[[playbooks]]\nid = \"ladder-{playbook}\"\nactions = {}\npresign = true\n",
            match playbook {
                "patch" => "[\"upgrade-pool\"]",
                _ => "[\"unpause-tlpool\"]",
            }
        );
        w.sb.write("bad.toml", &text);
        let r = w.sb.run(&["--manifest", "bad.toml", "manifest", "check"]);
        assert_ne!(r.code, 0, "{}", all_output(&r));
        assert!(
            all_output(&r).contains("presign = true") && all_output(&r).contains(why),
            "{}",
            all_output(&r)
        );
    }
}

/// An encrypted ladder (age, to a recipient; or with a passphrase): mode 0600, unreadable without the
/// key (a clear error), signed and fired with it.
#[test]
fn an_encrypted_ladder_fires_with_its_identity_and_not_without() {
    use age::secrecy::ExposeSecret;
    let w = World::deploy();
    w.write_manifest_text("m.toml", &manifest(&w));
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    w.sb.write(
        "ladder.key",
        format!("# test identity\n{}\n", id.to_string().expose_secret()),
    );
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "2",
            "--encrypt-to",
            &recipient,
            "-o",
            "l.json",
        ],
    );
    ok(&r, "build an encrypted ladder");
    let bytes = std::fs::read(w.sb.path("l.json")).unwrap();
    assert!(
        bytes.starts_with(b"age-encryption.org/v1"),
        "encrypted on disk"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.sb.path("l.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Without the identity: a clear error, nothing done.
    let r = w.bg("m.toml", true, &["ladder", "status", "l.json"]);
    assert_ne!(r.code, 0);
    assert!(
        all_output(&r).contains("--identity FILE"),
        "{}",
        all_output(&r)
    );
    // Every command reads it with the identity: `sign LADDER`, `ladder sign`, `inspect`, `export`.
    let mut a = vec!["sign", "l.json", "--in-place", "--identity", "ladder.key"];
    a.extend(["--speculos", w.sim.addr.as_str(), "--account", "0"]);
    ok(&w.bg("m.toml", false, &a), "sign LADDER, encrypted");
    let mut a = vec!["ladder", "sign", "l.json", "--identity", "ladder.key"];
    a.extend([
        "--keystore",
        "keystores/owner3",
        "--password-file",
        "password.txt",
    ]);
    ok(&w.bg("m.toml", false, &a), "ladder sign, encrypted");
    let r = w.bg(
        "m.toml",
        false,
        &["inspect", "l.json", "--identity", "ladder.key"],
    );
    ok(&r, "inspect the encrypted ladder");
    assert_eq!(
        r.stdout.matches("2 of 2 signatures").count(),
        2,
        "{}",
        r.stdout
    );
    let r = w.bg("m.toml", false, &["inspect", "l.json"]);
    assert!(
        all_output(&r).contains("--identity FILE"),
        "{}",
        all_output(&r)
    );
    ok(
        &w.bg(
            "m.toml",
            false,
            &["export", "l.json", "--ur", "--identity", "ladder.key"],
        ),
        "export the encrypted ladder with its identity",
    );
    let r = w.bg(
        "m.toml",
        true,
        &["ladder", "status", "l.json", "--identity", "ladder.key"],
    );
    ok(&r, "status is audited");
    let log = std::fs::read_to_string(w.sb.path("data/audit.jsonl")).unwrap_or_default();
    assert!(log.contains("ladder_status"), "{log}");
    assert!(
        std::fs::read(w.sb.path("l.json"))
            .unwrap()
            .starts_with(b"age-encryption.org/v1"),
        "still encrypted after signing"
    );
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "fire",
            "l.json",
            "--identity",
            "ladder.key",
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
        ],
    );
    ok(&r, "fire the encrypted ladder with its identity");
    assert!(w.paused(&w.pool) && w.paused(&w.vault));

    // A passphrase instead of a recipient.
    w.sb.write("pass.txt", "correct horse battery staple\n");
    let r = w.bg(
        "m.toml",
        false,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "1",
            "--nonce",
            "9",
            "--passphrase-file",
            "pass.txt",
            "-o",
            "p.json",
        ],
    );
    ok(&r, "build with a passphrase");
    w.sb.write("wrong.txt", "wrong\n");
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "status",
            "p.json",
            "--passphrase-file",
            "wrong.txt",
        ],
    );
    assert!(
        all_output(&r).contains("cannot decrypt"),
        "{}",
        all_output(&r)
    );
    let r = w.bg(
        "m.toml",
        true,
        &[
            "--json",
            "ladder",
            "status",
            "p.json",
            "--passphrase-file",
            "pass.txt",
        ],
    );
    assert_eq!(r.code, 6, "waiting for nonce 9: {}", all_output(&r));

    // `--passphrase` asks on the terminal (offline: the vault is already paused here) (twice when encrypting, not echoed), as a person types it.
    let pin = w.pins.borrow().get("m.toml").cloned().unwrap();
    let build_in_tmux = |tag: &str, out: &str| {
        let sb = w.sb.dir.path().to_path_buf();
        let out = out.to_string();
        let pin = pin.clone();
        Tmux::start(tag, move |dir| {
            format!(
                "cd {} && BREAKGLASS_CONFIG_DIR=config BREAKGLASS_DATA_DIR=data {} --manifest m.toml --pin {pin} \
                 ladder build halt-ladder --rungs 1 --nonce 9 --passphrase -o {out}; echo $? >{}",
                sh_quote(&sb.display().to_string()),
                sh_quote(env!("CARGO_BIN_EXE_breakglass")),
                sh_quote(&dir.join("rc").display().to_string())
            )
        })
    };
    let long = std::time::Duration::from_secs(60);
    let t = build_in_tmux("pp-mismatch", "q.json");
    t.wait_for(&["New ladder passphrase:"], long);
    t.send("first phrase");
    t.send("Enter");
    t.wait_for(&["Again:"], long);
    t.send("other phrase");
    t.send("Enter");
    assert_eq!(t.exit_code(long), 2, "{}", t.capture());
    assert!(
        t.capture().contains("the passphrases differ"),
        "{}",
        t.capture()
    );
    assert!(
        !w.sb.path("q.json").exists(),
        "nothing is written on a mismatch"
    );
    let t = build_in_tmux("pp-typed", "q.json");
    t.wait_for(&["New ladder passphrase:"], long);
    t.send("typed phrase");
    t.send("Enter");
    t.wait_for(&["Again:"], long);
    t.send("typed phrase");
    t.send("Enter");
    assert_eq!(t.exit_code(long), 0, "{}", t.capture());
    assert!(
        !t.capture().contains("typed phrase"),
        "the passphrase is not echoed"
    );
    w.sb.write("typed.txt", "typed phrase\n");
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "status",
            "q.json",
            "--passphrase-file",
            "typed.txt",
        ],
    );
    assert_eq!(
        r.code,
        6,
        "the typed passphrase decrypts: {}",
        all_output(&r)
    );
}

/// Copies of one ladder signed by different owners (offline) combine rung by rung; `inspect` shows each
/// rung's signing state; the combined ladder fires.
#[test]
fn ladder_copies_signed_apart_combine_and_fire() {
    let w = World::deploy();
    w.write_manifest_text("m.toml", &manifest(&w));
    let nonce = w.safe_nonce().to_string();
    let r = w.bg(
        "m.toml",
        false,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "3",
            "--nonce",
            &nonce,
            "-o",
            "a.json",
        ],
    );
    ok(&r, "build offline");
    std::fs::copy(w.sb.path("a.json"), w.sb.path("b.json")).unwrap();
    ok(
        &w.bg(
            "m.toml",
            false,
            &[
                "ladder",
                "sign",
                "a.json",
                "--speculos",
                &w.sim.addr,
                "--account",
                "0",
            ],
        ),
        "owner 1 signs copy a",
    );
    ok(
        &w.bg(
            "m.toml",
            false,
            &[
                "ladder",
                "sign",
                "b.json",
                "--keystore",
                "keystores/owner3",
                "--password-file",
                "password.txt",
            ],
        ),
        "owner 3 signs copy b",
    );
    let r = w.bg(
        "m.toml",
        false,
        &["--json", "combine", "a.json", "b.json", "-o", "c.json"],
    );
    ok(&r, "combine the copies");
    let j: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["signatures"], serde_json::json!([2, 2, 2]), "{j}");
    let r = w.bg("m.toml", false, &["inspect", "c.json"]);
    ok(&r, "inspect the ladder");
    assert_eq!(
        r.stdout.matches("2 of 2 signatures").count(),
        3,
        "{}",
        r.stdout
    );
    // The ladder moves to another machine as UR text (or QR images) and is verified there on import.
    let r = w.bg("m.toml", false, &["export", "c.json", "--ur"]);
    ok(&r, "export the ladder as UR parts");
    w.sb.write("c.ur", &r.stdout);
    let r = w.bg("m.toml", false, &["import", "--ur", "c.ur", "-o", "d.json"]);
    ok(&r, "import the ladder");
    assert!(r.stdout.contains("imported ladder"), "{}", r.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.sb.path("d.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let r = w.bg("m.toml", false, &["inspect", "d.json"]);
    assert_eq!(
        r.stdout.matches("2 of 2 signatures").count(),
        3,
        "{}",
        r.stdout
    );
    // A different ladder is not a copy.
    let r = w.bg(
        "m.toml",
        false,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "3",
            "--nonce",
            "7",
            "-o",
            "other.json",
        ],
    );
    ok(&r, "build another ladder");
    let r = w.bg(
        "m.toml",
        false,
        &["combine", "a.json", "other.json", "-o", "x.json"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(!w.sb.path("x.json").exists());
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "fire",
            "c.json",
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
        ],
    );
    ok(&r, "fire the combined ladder");
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
}

/// The console watches several ladders at once (`tui --ladder A --ladder B`), one of them encrypted
/// (read with `--identity`): the dashboard shows each one's state, `F` offers the live one, and the typed
/// word `fire` fires it.
#[test]
fn the_console_watches_several_ladders_and_fires_the_live_one() {
    use age::secrecy::ExposeSecret;
    let w = World::deploy();
    w.write_manifest_text("m.toml", &manifest(&w));
    let n0 = w.safe_nonce();
    let id = age::x25519::Identity::generate();
    w.sb.write(
        "ladder.key",
        format!("{}\n", id.to_string().expose_secret()),
    );
    let later = (n0 + 5).to_string();
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "2",
            "--nonce",
            &later,
            "-o",
            "a.json",
        ],
    );
    ok(&r, "build the waiting ladder");
    let recipient = id.to_public().to_string();
    let r = w.bg(
        "m.toml",
        true,
        &[
            "ladder",
            "build",
            "halt-ladder",
            "--rungs",
            "2",
            "--encrypt-to",
            &recipient,
            "-o",
            "b.json",
        ],
    );
    ok(&r, "build the encrypted ladder");
    for signer in [
        vec!["--speculos", w.sim.addr.as_str(), "--account", "0"],
        vec![
            "--keystore",
            "keystores/owner3",
            "--password-file",
            "password.txt",
        ],
    ] {
        let mut a = vec!["ladder", "sign", "b.json", "--identity", "ladder.key"];
        a.extend(signer);
        ok(&w.bg("m.toml", false, &a), "sign the encrypted ladder");
    }

    let pin = w.pins.borrow().get("m.toml").cloned().unwrap();
    let rpc = w.rpc.borrow().clone();
    let p = |f: &str| w.sb.path(f).display().to_string();
    let (m, a, b, key, ks, pw) = (
        p("m.toml"),
        p("a.json"),
        p("b.json"),
        p("ladder.key"),
        p("keystores/executor"),
        p("password.txt"),
    );
    let t = Tmux::start_sized("ladders", 120, 40, |d| {
        console_command(
            d,
            &[
                "--manifest",
                &m,
                "--pin",
                &pin,
                "--rpc-url",
                &rpc,
                "tui",
                "--ladder",
                &a,
                "--ladder",
                &b,
                "--identity",
                &key,
                "--keystore",
                &ks,
                "--password-file",
                &pw,
            ],
        )
    });
    let step = std::time::Duration::from_secs(60);
    t.wait_for(
        &[
            &format!("Ladder 1  halt-ladder: waiting (Safe nonce {n0}, first rung {later})"),
            &format!("Ladder 2  halt-ladder: LIVE rung 1 of 2 (Safe nonce {n0}), 2 left (F fires)"),
        ],
        step,
    );
    t.send("F");
    t.wait_for(&["Fire the ladder", "ladder 2 of 2; Tab: next"], step);
    for k in ["f", "i", "r", "e"] {
        t.send(k);
    }
    t.wait_for(&["fire_"], step);
    t.send("Enter");
    t.wait_for(&["ladder rung 1 mined", "every post-condition holds"], step);
    t.wait_for(&["Ladder 2  halt-ladder: LIVE rung 2 of 2"], step);
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
    // The fired ladder was written back still encrypted.
    assert!(std::fs::read(w.sb.path("b.json"))
        .unwrap()
        .starts_with(b"age-encryption.org/v1"));
    t.send("q");
}
