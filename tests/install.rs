//! Issue 21: breakglass outside its repository. The binary, copied out of the build as `cargo install`
//! would put it, runs the drill end to end in tmux from an empty directory with a temporary HOME and
//! CARGO_HOME, no BREAKGLASS_TOOLS and no `.tools`, and only anvil on PATH: the contracts it deploys are
//! embedded (and are exactly what the pinned packages hold, and the Safe's canonical code); without anvil
//! it says how to get it.

use crate::support::anvil::{node_modules, tools_dir};
use crate::support::tmux::{require_tmux, require_tools, sh_quote, Tmux};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The embedded contracts are what `scripts/npm/drill-assets.js` makes from the pinned packages and the
/// project's compiled contracts today, byte for byte.
#[test]
fn drill_assets_are_the_pinned_packages() {
    let t = require_tools();
    let out = tempfile::tempdir().unwrap();
    let fresh = out.path().join("drill-contracts.json");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("node")
        .arg(repo.join("scripts/npm/drill-assets.js"))
        .arg(node_modules())
        .arg(t.join("contracts"))
        .arg(&fresh)
        .output()
        .expect("node (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(&fresh).unwrap();
    let have = std::fs::read(repo.join("assets/drill-contracts.json")).unwrap();
    assert!(
        want == have,
        "assets/drill-contracts.json is not what the pinned packages give: regenerate it with \
         `node scripts/npm/drill-assets.js .tools/npm/node_modules .tools/contracts assets/drill-contracts.json`"
    );
}

/// The canonical code hashes the drill checks are Safe's own (`@safe-global/safe-deployments`).
#[test]
fn drill_canonical_code_hashes_are_safe_deployments() {
    let _ = require_tools();
    let files = [
        ("Safe", "safe"),
        ("SafeProxyFactory", "safe_proxy_factory"),
        (
            "CompatibilityFallbackHandler",
            "compatibility_fallback_handler",
        ),
        ("MultiSendCallOnly", "multi_send_call_only"),
    ];
    for (name, file) in files {
        let p = node_modules().join(format!(
            "@safe-global/safe-deployments/dist/assets/v1.4.1/{file}.json"
        ));
        let v: Value = serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap();
        let want = v["deployments"]["canonical"]["codeHash"].as_str().unwrap();
        let ours = breakglass::drill::CANONICAL_CODEHASHES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1;
        assert_eq!(format!("{ours:#x}"), want, "{name}");
    }
}

#[test]
fn an_installed_binary_runs_the_drill_anywhere_with_only_anvil_on_path() {
    require_tmux();
    let anvil = tools_dir().join("npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        anvil.is_file(),
        "run scripts/setup.sh: no anvil at {}",
        anvil.display()
    );
    let root = tempfile::tempdir().unwrap();
    let d = |rel: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let (bin, path, home, cargo_home, work) =
        (d("bin"), d("path"), d("home"), d("cargo"), d("work"));
    let installed = bin.join("breakglass");
    std::fs::copy(env!("CARGO_BIN_EXE_breakglass"), &installed).unwrap();
    std::os::unix::fs::symlink(&anvil, path.join("anvil")).unwrap();
    let env = |dir: &Path, path_dirs: &str| {
        format!(
            "cd {work} && env -i HOME={home} CARGO_HOME={cargo} TMPDIR={tmp} TERM=xterm-256color PATH={path_dirs} \
             {bin} --audit-log {audit}",
            work = sh_quote(&work.display().to_string()),
            home = sh_quote(&home.display().to_string()),
            cargo = sh_quote(&cargo_home.display().to_string()),
            tmp = sh_quote(&dir.display().to_string()),
            bin = sh_quote(&installed.display().to_string()),
            audit = sh_quote(&dir.join("audit.jsonl").display().to_string()),
        )
    };
    let system = "/usr/bin:/bin";
    assert!(
        !Path::new("/usr/bin/anvil").exists() && !Path::new("/bin/anvil").exists(),
        "this test needs a machine without a system-wide anvil"
    );

    // Without anvil on PATH: the way to get it, and nothing started.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("{} drill", env(root.path(), system)))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Foundry") && err.contains("--anvil PATH"),
        "{err}"
    );

    // With only anvil on PATH: the drill end to end.
    let path_dirs = format!("{}:{system}", path.display());
    let t = Tmux::start("installed", |dir| {
        format!(
            "{} drill 2>{}; echo $? >{}",
            env(dir, &path_dirs),
            sh_quote(&dir.join("stderr").display().to_string()),
            sh_quote(&dir.join("rc").display().to_string())
        )
    });
    let long = Duration::from_secs(90);
    let step = Duration::from_secs(30);
    t.wait_for(&["SIMULATED LEDGER", "Press p to choose a playbook."], long);
    t.send("p");
    t.wait_for(&["▶ halt"], step);
    t.send("Enter");
    t.wait_for(&["ALLOWED: pause-pool, pause-vault", "s sign"], step);
    t.send("s");
    t.wait_for(&["Signatures: 0 of 2", "▶ account 0"], step);
    t.send("Enter");
    t.wait_for(&["y = sign"], step);
    t.send("y");
    t.wait_for(&["Signatures: 1 of 2", "▶ account 1"], step);
    t.send("Enter");
    t.wait_for(&["Sign with account 1", "y = sign"], step);
    t.send("y");
    t.wait_for(&["Ready: press Enter to execute"], step);
    t.send("Enter");
    t.wait_for(&["y = execute"], step);
    t.send("y");
    t.wait_for(
        &[
            "PASS  pause-pool: paused() == true",
            "PASS  pause-vault: paused() == true",
            "all post-conditions passed",
        ],
        step,
    );
    t.send("q");
    assert_eq!(t.exit_code(step), 0, "{}", t.stderr());
    // It ran the anvil on PATH and wrote nothing into the (temporary) home but its own data.
    assert!(
        t.stderr()
            .contains("DRILL: local chain at http://127.0.0.1:"),
        "{}",
        t.stderr()
    );
}

/// Shell completions and manual pages come from the command-line definition; `--version` names the commit.
#[test]
fn completions_man_pages_and_version() {
    let sb = crate::support::bin::Sandbox::new();
    let r = sb.run(&["completions", "bash"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for sub in ["watch", "ladder", "drill", "compose", "completions"] {
        assert!(r.stdout.contains(sub), "bash completion lacks {sub}");
    }
    let p = sb.write("breakglass.bash", &r.stdout);
    let o = Command::new("bash").arg("-n").arg(&p).output().unwrap();
    assert!(
        o.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = sb.run(&["completions", shell]);
        assert!(
            r.code == 0 && r.stdout.contains("breakglass"),
            "{shell}: {}",
            r.stderr
        );
    }
    let r = sb.run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "an unknown shell is a usage error");

    let r = sb.run(&["man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(".TH breakglass 1"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    assert!(r.stdout.contains("watch") && r.stdout.contains("ladder"));
    let r = sb.run(&["man", "--out-dir", "man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for page in [
        "breakglass.1",
        "breakglass-watch.1",
        "breakglass-ladder-fire.1",
        "breakglass-drill.1",
    ] {
        let text = std::fs::read_to_string(sb.path("man").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }

    let r = sb.run(&["--version"]);
    assert_eq!(r.code, 0);
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match git {
        Ok(o) if o.status.success() => {
            let commit = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert_eq!(
                r.stdout.trim(),
                format!("breakglass {} (commit {commit})", env!("CARGO_PKG_VERSION"))
            );
        }
        _ => assert!(r.stdout.contains("(commit "), "{}", r.stdout),
    }
}
