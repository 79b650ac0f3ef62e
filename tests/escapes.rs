//! Issue 12, finding 5: terminal escape injection. Text from files (a bundle signature's `device` label,
//! manifest titles and ids, a device's answer) reached the terminal raw: `ESC[2J` painted a fake ALLOWED
//! over a refused report; `\r ESC[3A ESC[J` in a title erased the action after it; `ESC[8m` hid a
//! playbook's actions from the reviewer who pinned it. Each attack is performed here on the real binary
//! (in a private tmux server, as a person sees it, and on raw bytes), and in the console's renderer.

use crate::compose_chain::rehash;
use crate::support::bin::repo;
use crate::support::world::{Pins, World, SIM0};
use breakglass::manifest::trust::Trust;
use breakglass::manifest::Manifest;
use breakglass::tui::app::{App, DeviceStatus, Screen};
use breakglass::tui::ui;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const FAKE: &str = "\u{1b}[2J\u{1b}[HALLOWED: pause-pool (manifest looks fine)\r\n\u{1b}[8m";

/// Runs `sh -c SCRIPT` in a private tmux server (100×40) and returns the pane's text once it printed
/// `__DONE__`. The server is killed before returning.
fn in_tmux(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("tmux.sock").display().to_string();
    let conf = dir.path().join("tmux.conf");
    std::fs::write(&conf, "set -g status off\nset -g history-limit 0\n").unwrap();
    let full = format!("{script}; printf '\\n__DONE__\\n'; sleep 30");
    let o = Command::new("tmux")
        .args(["-S", &sock, "-f"])
        .arg(&conf)
        .args([
            "new-session",
            "-d",
            "-s",
            "esc",
            "-x",
            "100",
            "-y",
            "40",
            "sh",
            "-c",
            &full,
        ])
        .env_remove("TMUX")
        .output()
        .expect("tmux is needed (scripts/test.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let o = Command::new("tmux")
            .args(["-S", &sock, "capture-pane", "-p", "-t", "esc"])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        if t.contains("__DONE__") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("tmux")
        .args(["-S", &sock, "kill-server"])
        .output();
    assert!(
        text.contains("__DONE__"),
        "the command did not finish:\n{text}"
    );
    text
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A refused bundle (safeTxGas set) carrying an entry whose `device` label holds a screen clear and a
/// fake verdict: `inspect` and `verify` show the refusal, and the escape as text.
#[test]
fn a_device_label_cannot_repaint_a_refused_report() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let r = w.bg("m.toml", true, &["compose", "halt-pool", "-o", "c.json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut b = w.bundle("c.json");
    b["safe_tx"]["safe_tx_gas"] = json!("60000");
    rehash(&mut b);
    let owner = SIM0.trim_start_matches("0x").to_ascii_lowercase();
    b["signatures"] = json!([{
        "signer": SIM0,
        "signature": format!("0x{}{owner}{}01", "0".repeat(24), "0".repeat(64)),
        "kind": "approved_hash",
        "device": FAKE,
    }]);
    w.sb.write("evil.json", serde_json::to_vec_pretty(&b).unwrap());

    // Raw bytes: no ESC, no carriage return reaches the terminal; the label is there, made visible.
    let r = w.bg("m.toml", false, &["inspect", "evil.json"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    for (what, out) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(!out.contains('\u{1b}'), "{what} carries ESC: {out:?}");
        assert!(!out.contains('\r'), "{what} carries CR: {out:?}");
    }
    assert!(r.stdout.starts_with("REFUSED"), "{}", r.stdout);
    assert!(r.stdout.contains("\\x1b[2J\\x1b[HALLOWED"), "{}", r.stdout);
    // JSON stays JSON and carries the label exactly (escaped by JSON, not by us).
    let r = w.bg("m.toml", false, &["--json", "inspect", "evil.json"]);
    assert!(!r.stdout.contains('\u{1b}'));
    let v = r.json();
    assert_eq!(v["bundle"]["signatures"][0]["device"], json!(FAKE));

    // As a person sees it: the refusal is on the screen, the fake verdict never painted over it.
    let pin = w.pins.borrow().get("m.toml").cloned().unwrap();
    let script = format!(
        "cd {dir} && BREAKGLASS_CONFIG_DIR={cfg} BREAKGLASS_DATA_DIR={data} {bin} --manifest m.toml --pin {pin} inspect evil.json",
        dir = sh_quote(&w.sb.dir.path().display().to_string()),
        cfg = sh_quote(&w.sb.path("config").display().to_string()),
        data = sh_quote(&w.sb.path("data").display().to_string()),
        bin = sh_quote(env!("CARGO_BIN_EXE_breakglass")),
    );
    let screen = in_tmux(&script);
    let first = screen.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        first.starts_with("REFUSED"),
        "first line {first:?}:\n{screen}"
    );
    assert!(screen.contains("CRITICAL"), "{screen}");
    assert!(screen.contains("\\x1b[2J"), "{screen}");
    assert!(
        !screen.lines().any(|l| l.starts_with("ALLOWED")),
        "a fake verdict line was painted:\n{screen}"
    );
}

/// Manifest names, titles and ids with escapes, carriage returns, bidi or zero-width characters are
/// refused at load, by every command that reads the manifest, with their position; nothing raw is printed.
#[test]
fn manifest_text_with_escapes_is_refused_at_load() {
    let fixtures = repo().join("tests/fixtures/manifests");
    let sb = crate::support::bin::Sandbox::new();
    for (file, at) in [
        ("fail_title_escape.toml", ":21:9:"),
        ("fail_playbook_title_concealed.toml", ":29:9:"),
        ("fail_action_id_bidi.toml", ":20:6:"),
        ("fail_name_zero_width.toml", ":3:8:"),
    ] {
        let m = fixtures.join(file).display().to_string();
        for cmd in [
            vec!["manifest", "check"],
            vec!["manifest", "show"],
            vec!["manifest", "pin", "--yes"],
        ] {
            let mut a = vec!["--manifest", m.as_str()];
            a.extend_from_slice(&cmd);
            let r = sb.run(&a);
            assert_eq!(r.code, 1, "{file} {cmd:?}: {}\n{}", r.stdout, r.stderr);
            assert!(r.stderr.contains(at), "{file} {cmd:?}: {}", r.stderr);
            for out in [&r.stdout, &r.stderr] {
                assert!(
                    !out.chars().any(breakglass::text::is_unsafe),
                    "{file} {cmd:?} printed a raw control/bidi character: {out:?}"
                );
            }
        }
    }
    // Nothing was pinned.
    let pinned: Vec<_> = std::fs::read_dir(sb.path("config")).unwrap().collect();
    assert!(pinned.is_empty(), "{pinned:?}");
}

/// The console: a device that answers with escapes and bidi overrides in its label, a bundle whose
/// playbook label and a log line carry them: no cell of the screen holds a control, bidi or invisible
/// character, and the escape is shown as text.
#[test]
fn console_renders_hostile_text_visibly() {
    let m = Manifest::load(&repo().join("examples/demo.toml")).unwrap();
    let mut a = App::new(
        m,
        Trust::Pinned {
            source: "--pin".into(),
        },
        None,
        false,
    );
    a.color = false;
    a.device = DeviceStatus {
        label: "Ledger \u{1b}[2J\u{202E}lanigiro\u{200B}".into(),
        blind_signing: Some(true),
        full_eip712: false,
        accounts: Vec::new(),
        error: None,
    };
    for screen in [Screen::Dashboard, Screen::Sign, Screen::Log] {
        a.screen = screen;
        for (wd, ht) in [(80u16, 24u16), (160, 48)] {
            let mut t = Terminal::new(TestBackend::new(wd, ht)).unwrap();
            t.draw(|f| ui::draw(f, &a)).unwrap();
            let buf = t.backend().buffer().clone();
            let mut text = String::new();
            for cell in buf.content.iter() {
                assert!(
                    !cell.symbol().chars().any(breakglass::text::is_unsafe),
                    "{screen:?} {wd}x{ht}: unsafe cell {:?}",
                    cell.symbol()
                );
                text.push_str(cell.symbol());
            }
            if screen == Screen::Dashboard {
                assert!(text.contains("<U+202E>"), "{text}");
                assert!(text.contains("\\x1b[2J"), "{text}");
            }
        }
    }
}
