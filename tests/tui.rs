//! The incident console without a terminal.
//!
//! * Rendering: every screen (Dashboard, Playbooks, Review with a composed halt bundle and with a refused
//!   Bybit-shaped transaction, Sign with 0, 1 and 2 signatures, Transfer, Execute before, during and after
//!   execution, Log, the help overlay, each confirm dialog) drawn with ratatui's `TestBackend` at 80×24
//!   and at 160×48, asserting on the buffer's text (what a person must be able to read) and on cell styles
//!   (critical lines red, nothing coloured with NO_COLOR).
//! * The state machine: `update(app, action)` driven by key sequences and background results, asserting
//!   screens, the effects it asks for (and, for dangerous steps, that it asks for none before `y`), and the
//!   refusals.

use crate::support::bin::repo;
use alloy::primitives::{address, Address, Bytes, U256};
use breakglass::bundle::{Bundle, SignatureEntry};
use breakglass::chain::postcond::PostCondition;
use breakglass::compose::{compose, ComposeOptions};
use breakglass::manifest::trust::Trust;
use breakglass::manifest::Manifest;
use breakglass::policy::render::grouped_hex;
use breakglass::policy::{verify_safe_tx, Report};
use breakglass::safe::{Operation, SafeTxFields, SignatureKind};
use breakglass::tui::app::{
    update, Account, Action, App, Confirm, DeviceStatus, Effect, Level, Screen,
};
use breakglass::tui::ui;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

// ------------------------------------------------------------------ fixtures

/// The demo manifest's Safe owners (the first three Ledger Live accounts of Speculos' seed).
const OWNERS: [Address; 3] = [
    address!("Dad77910DbDFdE764fC21FCD4E74D71bBACA6D8D"),
    address!("463e4e114AA57F54f2Fd2C3ec03572C6f75d84C2"),
    address!("5DD37a819253D52EC6c31f0323bd17C20c1B4CC2"),
];
/// Not an owner (anvil's account 0).
const STRANGER: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
const DEMO_SAFE: Address = address!("5AFe00000000000000000000000000000000a11C");
const DEMO_POOL: Address = address!("b001000000000000000000000000000000000001");
const RPC: &str = "http://127.0.0.1:8545";
const SIM_LABEL: &str =
    "SIMULATED LEDGER (test/drill device) at 127.0.0.1:40000, Ethereum app 1.22.0";
const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn manifest() -> Manifest {
    Manifest::load(&repo().join("examples/demo.toml")).unwrap()
}

fn pinned() -> Trust {
    Trust::Pinned {
        source: "--pin".into(),
    }
}

fn untrusted() -> Trust {
    Trust::Untrusted {
        reason: "its hash is not pinned: run `breakglass manifest pin`".into(),
    }
}

/// `compose(demo, id)` at Safe nonce 0.
fn composed(id: &str) -> (Bundle, Report) {
    let c = compose(
        &manifest(),
        id,
        &ComposeOptions {
            safe_nonce: Some(U256::ZERO),
            ..Default::default()
        },
    )
    .unwrap();
    (c.bundle, c.report)
}

/// Bybit, Feb 2025: a call the manifest allows (pool.pause()), its operation switched to DELEGATECALL.
fn bybit_report() -> Report {
    let tx = SafeTxFields {
        to: DEMO_POOL,
        value: U256::ZERO,
        data: Bytes::from(vec![0x84, 0x56, 0xcb, 0x59]),
        operation: Operation::DelegateCall,
        safe_tx_gas: U256::ZERO,
        base_gas: U256::ZERO,
        gas_price: U256::ZERO,
        gas_token: Address::ZERO,
        refund_receiver: Address::ZERO,
        nonce: U256::ZERO,
    };
    let r = verify_safe_tx(&manifest(), 31337, DEMO_SAFE, &tx).unwrap();
    assert!(!r.allowed, "the Bybit-shaped tx must be refused");
    assert!(r.criticals().count() > 0);
    r
}

fn accounts(addrs: &[Address]) -> Vec<Account> {
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| Account {
            index: i as u32,
            address: *a,
        })
        .collect()
}

fn simulator() -> DeviceStatus {
    DeviceStatus {
        label: SIM_LABEL.into(),
        blind_signing: Some(true),
        full_eip712: false,
        accounts: accounts(&OWNERS),
        error: None,
    }
}

/// A console on the demo manifest, pinned, online, with the simulator's three owner accounts.
fn app(drill: bool) -> App {
    let mut a = App::new(manifest(), pinned(), Some(RPC.into()), drill);
    a.device = simulator();
    a.color = true;
    a
}

/// The same with the halt playbook composed (as after `Action::Composed`).
fn app_with_halt(drill: bool) -> App {
    let mut a = app(drill);
    let (b, r) = composed("halt");
    update(&mut a, Action::Composed(Ok((Box::new(b), Box::new(r)))));
    assert_eq!(a.screen, Screen::Review);
    a
}

/// A signature entry (the console only reads `signer`).
fn sig(by: Address) -> SignatureEntry {
    SignatureEntry {
        signer: by,
        signature: Bytes::from(vec![0x11; 65]),
        kind: SignatureKind::Eip712,
        device: Some(SIM_LABEL.into()),
        mode: None,
    }
}

/// The current bundle with signatures from `by` added.
fn signed_bundle(a: &App, by: &[Address]) -> Bundle {
    let mut b = a.bundle.clone().unwrap();
    for x in by {
        b.signatures.push(sig(*x));
    }
    b
}

fn posts(pass: bool) -> Vec<PostCondition> {
    vec![
        PostCondition {
            action: "pause-pool".into(),
            expect: "paused() == true".into(),
            actual: "true".into(),
            pass: true,
        },
        PostCondition {
            action: "pause-vault".into(),
            expect: "paused() == true".into(),
            actual: if pass { "true" } else { "false" }.into(),
            pass,
        },
    ]
}

const RECEIPT: &str = "mined in block 12 (gas 107380, 0.01 s)";

/// `app` after a full halt: two signatures, executed, post-conditions `pass`.
fn app_executed(pass: bool) -> App {
    let mut a = app_with_halt(true);
    let b = signed_bundle(&a, &OWNERS[..2]);
    a.bundle = Some(b.clone());
    a.screen = Screen::Execute;
    update(&mut a, Action::ExecLine("simulation ok".into()));
    update(
        &mut a,
        Action::ExecLine("sent 0x9797e2e9; waiting for the receipt".into()),
    );
    update(
        &mut a,
        Action::Executed(Ok((Box::new(b), posts(pass), RECEIPT.into()))),
    );
    a
}

// ------------------------------------------------------------------ keys

fn key(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Action {
    Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// Presses each character of `keys` in turn; returns all effects.
fn press(a: &mut App, keys: &str) -> Vec<Effect> {
    let mut out = Vec::new();
    for c in keys.chars() {
        out.extend(update(a, key(c)));
    }
    out
}

fn enter(a: &mut App) -> Vec<Effect> {
    update(a, code(KeyCode::Enter))
}

fn esc(a: &mut App) -> Vec<Effect> {
    update(a, code(KeyCode::Esc))
}

fn names(e: &[Effect]) -> Vec<String> {
    e.iter()
        .map(|e| match e {
            Effect::Compose(p) => format!("Compose({p})"),
            Effect::Sign(_, a) => format!("Sign({})", a.index),
            Effect::Execute(_) => "Execute".into(),
            Effect::Export(_) => "Export".into(),
            Effect::Qr(_, sigs_only) => format!("Qr({sigs_only})"),
            Effect::Quit => "Quit".into(),
            // Effects added later: their variant name.
            #[allow(unreachable_patterns)]
            other => format!("{other:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

fn message(a: &App) -> (Level, String) {
    a.message.clone().expect("a message on the status line")
}

// ------------------------------------------------------------------ rendering helpers

fn render(a: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::draw(f, a)).unwrap();
    t.backend().buffer().clone()
}

/// One string per row (one char per cell).
fn rows(b: &Buffer) -> Vec<String> {
    let a = b.area;
    (a.y..a.y + a.height)
        .map(|y| {
            (a.x..a.x + a.width)
                .map(|x| b[(x, y)].symbol().to_string())
                .collect()
        })
        .collect()
}

fn dump(b: &Buffer) -> String {
    rows(b).join("\n")
}

/// Where `needle` starts: (x, y) in cells.
fn find(b: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for (y, _) in rows(b).iter().enumerate() {
        let cells: Vec<String> = (0..b.area.width)
            .map(|x| b[(x, y as u16)].symbol().to_string())
            .collect();
        let n: Vec<char> = needle.chars().collect();
        let row: Vec<char> = cells
            .iter()
            .map(|s| s.chars().next().unwrap_or(' '))
            .collect();
        if n.len() > row.len() {
            continue;
        }
        for x in 0..=row.len() - n.len() {
            if row[x..x + n.len()] == n[..] {
                return Some((x as u16, y as u16));
            }
        }
    }
    None
}

#[track_caller]
fn has(b: &Buffer, needle: &str) -> (u16, u16) {
    find(b, needle).unwrap_or_else(|| {
        panic!(
            "{needle:?} is not on the {}×{} screen:\n{}",
            b.area.width,
            b.area.height,
            dump(b)
        )
    })
}

#[track_caller]
fn lacks(b: &Buffer, needle: &str) {
    if let Some((x, y)) = find(b, needle) {
        panic!(
            "{needle:?} should not be on the {}×{} screen (found at {x},{y}):\n{}",
            b.area.width,
            b.area.height,
            dump(b)
        );
    }
}

/// The foreground colour of every non-blank cell of `needle`'s first occurrence.
#[track_caller]
fn fg_of(b: &Buffer, needle: &str) -> Vec<Color> {
    let (x, y) = has(b, needle);
    (x..x + needle.chars().count() as u16)
        .filter(|x| b[(*x, y)].symbol() != " ")
        .map(|x| b[(x, y)].fg)
        .collect()
}

#[track_caller]
fn assert_fg(b: &Buffer, needle: &str, c: Color) {
    let fgs = fg_of(b, needle);
    assert!(
        fgs.iter().all(|f| *f == c),
        "{needle:?} should be {c:?}, its cells are {fgs:?}:\n{}",
        dump(b)
    );
}

/// NO_COLOR: no cell has a colour (bold and reverse are fine).
#[track_caller]
fn assert_colourless(b: &Buffer, what: &str) {
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            let c = &b[(x, y)];
            assert!(
                c.fg == Color::Reset && c.bg == Color::Reset,
                "{what}: cell ({x},{y}) {:?} has fg {:?} bg {:?} with colours off:\n{}",
                c.symbol(),
                c.fg,
                c.bg,
                dump(b)
            );
        }
    }
}

/// The last row (footer) shows these keys, and the screen shows the DRILL label when in drill mode.
#[track_caller]
fn assert_chrome(b: &Buffer, a: &App, footer: &[&str]) {
    let r = rows(b);
    let last = r.last().unwrap();
    for k in footer {
        assert!(
            last.contains(k),
            "footer should show {k:?}; it is {last:?} ({}×{}):\n{}",
            b.area.width,
            b.area.height,
            dump(b)
        );
    }
    if a.drill {
        assert!(r[0].contains(" DRILL "), "header without DRILL: {:?}", r[0]);
        assert!(
            r[1].contains(&format!("{} — DRILL", a.screen.title())),
            "body title without DRILL: {:?}",
            r[1]
        );
    } else {
        lacks(b, "DRILL");
    }
    if b.area.width < 120 {
        assert!(
            r[0].contains(&format!("[{}]", a.screen.title())),
            "compact header should name the screen: {:?}",
            r[0]
        );
    } else {
        for s in [
            "d:Dashboard",
            "p:Playbooks",
            "r:Review",
            "s:Sign",
            "t:Transfer",
            "x:Execute",
            "l:Log",
        ] {
            assert!(r[0].contains(s), "wide header should list {s}: {:?}", r[0]);
        }
        // The current screen is reversed in the header.
        let (x, y) = has(
            b,
            &format!(
                "{}:{}",
                match a.screen {
                    Screen::Execute => 'x',
                    s => s.title().chars().next().unwrap().to_ascii_lowercase(),
                },
                a.screen.title()
            ),
        );
        assert_eq!(y, 0);
        assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
    }
}

const SCREEN_KEYS: [&str; 3] = ["d p r s t x l screens", "? help", "q quit"];

fn footer(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = extra.to_vec();
    v.extend(SCREEN_KEYS);
    v
}

// ------------------------------------------------------------------ rendering: every screen

#[test]
fn dashboard_shows_protocol_trust_safe_signer_and_node() {
    let a = app(true);
    let m = manifest();
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["p playbooks"]));
        has(&b, "Acme Lending (demo)");
        has(&b, "31337");
        // The manifest hash in full.
        has(&b, &m.hash_hex());
        has(&b, "PINNED (--pin)");
        assert_fg(&b, "PINNED (--pin)", Color::Green);
        has(&b, "0x5AFe00000000000000000000000000000000a11C");
        has(&b, "2 of 3 must sign");
        for o in OWNERS {
            has(&b, &o.to_checksum(None));
        }
        has(&b, "SIMULATED LEDGER");
        has(&b, "blind signing ON");
        has(&b, "owner");
        has(&b, RPC);
        has(&b, "(DRILL local chain)");
        has(&b, "Press p to choose a playbook.");
    }
}

#[test]
fn dashboard_untrusted_offline_and_device_error() {
    let mut a = App::new(manifest(), untrusted(), None, false);
    a.color = true;
    update(
        &mut a,
        Action::Device(DeviceStatus {
            label: "unavailable".into(),
            error: Some("no Ledger found: plug it in and unlock it".into()),
            ..Default::default()
        }),
    );
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["p playbooks"]));
        has(&b, "UNTRUSTED — signing disabled");
        assert_fg(&b, "UNTRUSTED — signing disabled", Color::Red);
        has(&b, "its hash is not pinned");
        has(&b, "ERROR: no Ledger found");
        assert_fg(&b, "ERROR: no Ledger found", Color::Red);
        has(&b, "offline");
        // The status line says it too, in red.
        has(&b, "signer: no Ledger found");
        assert_fg(&b, "signer: no Ledger found", Color::Red);
        has(&b, "Press p to choose a playbook.");
    }
    // Approved.
    let mut a = app(false);
    a.trust = Trust::Approved {
        approvals: 2,
        threshold: 2,
    };
    let b = render(&a, 80, 24);
    has(&b, "APPROVED by 2 of 2 owners");
    assert_fg(&b, "APPROVED by 2 of 2 owners", Color::Green);
    // The startup state, before the signer answers.
    let a = App::new(manifest(), pinned(), None, false);
    has(&render(&a, 80, 24), "checking the signer");
}

#[test]
fn playbooks_lists_titles_and_actions_with_selection() {
    let mut a = app(true);
    press(&mut a, "p");
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["↑↓ choose", "Enter compose"]));
        has(&b, "▶ halt");
        has(&b, "Halt all markets (via safe)");
        has(&b, "· pause-pool: Pause the lending pool");
        has(&b, "· pause-vault: Pause the vault");
        has(&b, "patch");
        has(&b, "resume");
        has(&b, "(via timelock)");
        has(&b, "guardian-halt");
        has(&b, "(via eoa)");
    }
    press(&mut a, "jj");
    let b = render(&a, 80, 24);
    has(&b, "▶ resume");
    lacks(&b, "▶ halt");
    let (x, y) = has(&b, "resume");
    assert!(b[(x, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn review_shows_the_hashes_in_full_and_the_verdict() {
    let a = app_with_halt(true);
    let h = *a.bundle.as_ref().unwrap().safe_hashes().unwrap();
    for (w, hgt) in SIZES {
        let b = render(&a, w, hgt);
        assert_chrome(&b, &a, &footer(&["↑↓ scroll", "s sign"]));
        has(&b, "Compare with the Ledger screen:");
        // Each hash whole on one row, in the groups the Ledger shows.
        let (_, yd) = has(&b, &grouped_hex(&h.domain_separator));
        let (_, ym) = has(&b, &grouped_hex(&h.message_hash));
        let (_, ys) = has(&b, &grouped_hex(&h.safe_tx_hash));
        let (_, yl) = has(&b, "Domain hash");
        let (_, yml) = has(&b, "Message hash");
        has(&b, "safeTxHash");
        assert!(yd < ym && ym < ys, "hash order on {w}×{hgt}");
        if w >= 160 {
            assert_eq!(yl, yd, "at {w} columns the label and hash share a row");
            assert_eq!(yml, ym);
        } else {
            assert_eq!(
                yl + 1,
                yd,
                "at {w} columns the hash is on the row under its label"
            );
        }
        // Shown once, large: the report's own copy is not repeated.
        let hex = grouped_hex(&h.domain_separator);
        assert_eq!(
            rows(&b).iter().filter(|r| r.contains(&hex)).count(),
            1,
            "domain hash repeated:\n{}",
            dump(&b)
        );
        assert!(
            fg_of(&b, &hex).iter().all(|c| *c == Color::Cyan),
            "the hashes to compare are highlighted"
        );
        has(&b, "ALLOWED: pause-pool, pause-vault");
        assert_fg(&b, "ALLOWED: pause-pool, pause-vault", Color::Green);
        has(&b, "Calls:");
        has(&b, "operation DELEGATECALL");
    }
    // At 160×48 the whole call tree fits, with a verdict on each call.
    let b = render(&a, 160, 48);
    has(&b, "MultiSendCallOnly batch of 2 calls");
    has(&b, "pause()");
    // Scrolling moves the text.
    let mut s = app_with_halt(false);
    let top = rows(&render(&s, 80, 24));
    update(&mut s, code(KeyCode::Down));
    update(&mut s, code(KeyCode::Down));
    assert_eq!(s.scroll, 2);
    let down = rows(&render(&s, 80, 24));
    assert_eq!(top[4], down[2], "scrolled by two rows");
    update(&mut s, code(KeyCode::Up));
    update(&mut s, code(KeyCode::Up));
    update(&mut s, code(KeyCode::Up));
    assert_eq!(s.scroll, 0, "scroll stops at the top");
}

#[test]
fn review_before_composing_says_what_to_do() {
    let mut a = app(false);
    press(&mut a, "r");
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["s sign"]));
        has(
            &b,
            "Nothing composed yet: press p, choose a playbook, press Enter.",
        );
    }
}

#[test]
fn review_of_a_refused_tx_puts_critical_findings_on_the_first_screen_in_red() {
    let mut a = app(false);
    let (bundle, _) = composed("halt");
    a.bundle = Some(bundle);
    a.report = Some(bybit_report());
    a.screen = Screen::Review;
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["s sign"]));
        // Visible without scrolling, above the call tree.
        let (_, yr) = has(&b, "REFUSED: ");
        let (_, yc) = has(&b, "CRITICAL");
        assert!(yr < yc, "verdict, then criticals:\n{}", dump(&b));
        if let Some((_, ycalls)) = find(&b, "Calls:") {
            assert!(yc < ycalls, "criticals before the calls:\n{}", dump(&b));
        }
        assert_fg(&b, "REFUSED: ", Color::Red);
        assert_fg(&b, "CRITICAL", Color::Red);
        let (x, y) = has(&b, "CRITICAL");
        assert!(b[(x, y)].modifier.contains(Modifier::BOLD));
        has(&b, "Bybit");
        has(&b, "DELEGATECALL");
        lacks(&b, "ALLOWED");
        // The hashes are still there to compare (or to show they differ).
        has(&b, "Domain hash");
    }
    // With colours off, the words carry the meaning.
    a.color = false;
    let b = render(&a, 80, 24);
    assert_colourless(&b, "refused review");
    has(&b, "REFUSED: ");
    has(&b, "CRITICAL");
}

#[test]
fn sign_with_zero_one_and_two_signatures() {
    let h = *app_with_halt(true).bundle.unwrap().safe_hashes().unwrap();
    for n in 0..=2usize {
        let mut a = app_with_halt(true);
        press(&mut a, "s");
        a.bundle = Some(signed_bundle(&a, &OWNERS[..n]));
        a.account_idx = n.min(2);
        for (w, hgt) in SIZES {
            let b = render(&a, w, hgt);
            assert_chrome(&b, &a, &footer(&["↑↓ account", "Enter sign"]));
            has(&b, "Signer: SIMULATED LEDGER");
            has(
                &b,
                "The device will show (hashed EIP-712; in capitals, without spaces):",
            );
            has(&b, &grouped_hex(&h.domain_separator));
            has(&b, &grouped_hex(&h.message_hash));
            let count = format!("Signatures: {n} of 2");
            has(&b, &count);
            assert_fg(
                &b,
                &count,
                if n >= 2 { Color::Green } else { Color::Yellow },
            );
            for (i, o) in OWNERS.iter().enumerate() {
                let cs = o.to_checksum(None);
                if i < n {
                    has(&b, &format!("✓ {cs}"));
                    assert_fg(&b, &format!("✓ {cs}"), Color::Green);
                    has(&b, &format!("account {i}  {cs}  (signed)"));
                    lacks(&b, &format!("missing {cs}"));
                } else {
                    has(&b, &format!("· missing {cs}"));
                    has(&b, &format!("account {i}  {cs}  (owner)"));
                }
            }
            has(&b, "Sign with (↑↓, Enter):");
            has(&b, &format!("▶ account {}", n.min(2)));
        }
    }
    // A device account that is not an owner is marked so.
    let mut a = app_with_halt(false);
    a.device.accounts = accounts(&[OWNERS[0], STRANGER]);
    press(&mut a, "s");
    has(
        &render(&a, 80, 24),
        &format!("account 1  {}  (not an owner)", STRANGER.to_checksum(None)),
    );
    // Nothing composed.
    let mut a = app(false);
    press(&mut a, "s");
    for (w, h) in SIZES {
        has(
            &render(&a, w, h),
            "Nothing to sign yet: compose a playbook first (p).",
        );
    }
}

/// Issue 16: with a Ledger app that signs in full EIP-712 mode, the Sign screen shows the device's pages
/// (the same text `breakglass sign` prints), scrolled with PgDn/PgUp at 80×24, whole at 160×48.
#[test]
fn sign_screen_previews_the_devices_pages_in_full_mode() {
    let mut a = app_with_halt(true);
    a.device.full_eip712 = true;
    press(&mut a, "s");
    let b = render(&a, 160, 48);
    assert_chrome(
        &b,
        &a,
        &footer(&["↑↓ account", "Enter sign", "PgDn/PgUp device pages"]),
    );
    let bundle = a.bundle.clone().unwrap();
    let want = breakglass::signer::preview::bundle_preview(&bundle, true, Some(true));
    let full = want.full.clone().expect("full-mode pages");
    has(&b, "The device will show (full EIP-712");
    for page in [
        "Review struct SafeTx",
        "operation 1   (breakglass: = DELEGATECALL)",
        "nonce ",
        "verifyingContract ",
    ] {
        assert!(
            full.pages.iter().any(|p| p.starts_with(page)),
            "{page}: {:?}",
            full.pages
        );
    }
    let to = format!(
        "| to {}",
        bundle.safe_tx.as_ref().unwrap().tx.to.to_checksum(None)
    );
    has(&b, &to);
    has(&b, "| operation 1");
    has(&b, "Message hash");
    has(&b, "Sign with (↑↓, Enter):");
    // At 80×24 the pages run past the screen; PgDn brings the later ones into view.
    let small = render(&a, 80, 24);
    has(&small, "Sign with (↑↓, Enter):");
    lacks(&small, "| nonce ");
    for _ in 0..6 {
        update(&mut a, code(KeyCode::PageDown));
    }
    let small = render(&a, 80, 24);
    assert!(
        find(&small, "| nonce ").is_some() || find(&small, "Message hash").is_some(),
        "{}",
        dump(&small)
    );
    // ↑↓ still choose the account.
    update(&mut a, code(KeyCode::Down));
    assert_eq!(a.account_idx, 1);
}

/// While the device is asked, the screen says to confirm on the device, in full, at 80 columns.
#[test]
fn sign_while_waiting_for_the_device_says_confirm_on_the_device() {
    let mut a = app_with_halt(true);
    press(&mut a, "s");
    enter(&mut a);
    let e = press(&mut a, "y");
    assert_eq!(names(&e), ["Sign(0)"]);
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["Esc cancel"]));
        has(&b, "confirm on the device");
    }
}

const TRANSFER_KEYS: [&str; 4] = ["e file", "i import", "a QR", "g QR sigs"];

#[test]
fn transfer_before_and_after_export() {
    let mut a = app(true);
    press(&mut a, "t");
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&TRANSFER_KEYS));
        has(
            &b,
            "Move the request to an offline signer, or signatures back:",
        );
        has(&b, "Nothing composed yet (p).");
    }
    let mut a = app_with_halt(true);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..1]));
    press(&mut a, "t");
    let e = press(&mut a, "e");
    assert_eq!(names(&e), ["Export"]);
    update(
        &mut a,
        Action::Exported(Ok("/tmp/drill/halt-nonce0.json".into())),
    );
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&TRANSFER_KEYS));
        has(&b, "Bundle halt, 1 signature(s)");
        has(&b, "e: write a file");
        has(&b, "i: import signatures from files");
        has(&b, "a/g: QR request/sigs");
        has(&b, "written: /tmp/drill/halt-nonce0.json");
        assert_fg(&b, "written: /tmp/drill/halt-nonce0.json", Color::Green);
        has(&b, "bundle written to /tmp/drill/halt-nonce0.json");
    }
}

/// The animated QR frames, made with the library as the console's runtime makes them.
fn qr_frames(b: &Bundle, signatures_only: bool) -> Vec<String> {
    use breakglass::transfer::{payload, qr, ur};
    let cbor = if signatures_only {
        payload::signatures_payload(b).unwrap()
    } else {
        payload::bundle_payload(b).unwrap()
    };
    let mut stream = ur::UrStream::new(payload::UR_TYPE, &cbor, ur::MAX_FRAGMENT_LEN).unwrap();
    let n = if stream.is_single() {
        1
    } else {
        stream.fragment_count() * 2
    };
    let parts = stream.take(n).unwrap();
    let version = qr::common_version(&parts).unwrap();
    parts
        .iter()
        .map(|p| qr::to_terminal(&qr::encode(p, version).unwrap(), false))
        .collect()
}

#[test]
fn transfer_qr_is_shown_whole_and_animated() {
    let mut a = app_with_halt(true);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..1]));
    press(&mut a, "t");
    // a: the request; g: the signatures only. Nothing while busy.
    let e = press(&mut a, "a");
    assert_eq!(names(&e), ["Qr(false)"]);
    assert!(press(&mut a, "g").is_empty(), "not twice at once");
    let frames = qr_frames(a.bundle.as_ref().unwrap(), false);
    assert!(frames.len() > 1, "the halt bundle is an animated QR");
    update(
        &mut a,
        Action::QrReady(Ok((frames.clone(), "the whole bundle".into()))),
    );
    assert!(a.busy.is_none());
    assert_eq!(names(&press(&mut a, "g")), ["Qr(true)"]);
    update(&mut a, Action::QrReady(Err("too large".into())));
    assert_eq!(message(&a), (Level::Error, "QR failed: too large".into()));
    update(
        &mut a,
        Action::QrReady(Ok((frames.clone(), "the whole bundle".into()))),
    );
    let caption = |i: usize| format!("frame {i} of {}", frames.len());
    // At 160×48 the frame on screen is the QR itself, whole.
    let b = render(&a, 160, 48);
    assert_chrome(&b, &a, &footer(&TRANSFER_KEYS));
    has(&b, &caption(1));
    let qr_row = frames[0].lines().nth(2).unwrap().trim_end().to_string();
    assert!(
        rows(&b).iter().any(|r| r.contains(&qr_row)),
        "QR frame 1 is not drawn whole at 160×48:\n{}",
        dump(&b)
    );
    lacks(&b, "enlarge the terminal");
    // At 80×24 it is drawn whole, or the screen says what size it needs and how else to get it.
    let b = render(&a, 80, 24);
    assert_chrome(&b, &a, &footer(&TRANSFER_KEYS));
    has(&b, &caption(1));
    if !rows(&b).iter().any(|r| r.contains(&qr_row)) {
        has(&b, "enlarge the terminal");
        has(&b, "--qr");
    }
    // Ticks on the Transfer screen animate it; elsewhere they do not.
    update(&mut a, Action::Tick(1.0));
    assert_eq!(a.qr_idx, 1);
    has(&render(&a, 80, 24), &caption(2));
    press(&mut a, "d");
    update(&mut a, Action::Tick(1.2));
    assert_eq!(a.qr_idx, 1);
    press(&mut a, "t");
    for _ in 0..frames.len() - 1 {
        update(&mut a, Action::Tick(2.0));
    }
    assert_eq!(a.qr_idx, 0, "the animation loops");
    // Without colours the QR is still there (half-blocks, not colours).
    a.color = false;
    let b = render(&a, 160, 48);
    assert_colourless(&b, "QR");
    has(&b, &caption(1));
    // Nothing composed: nothing to show.
    let mut a = app(false);
    press(&mut a, "t");
    assert!(press(&mut a, "a").is_empty());
    assert_eq!(message(&a).0, Level::Error);
}

#[test]
fn execute_before_during_and_after() {
    // Not enough signatures: no "Ready".
    let mut a = app_with_halt(true);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..1]));
    press(&mut a, "x");
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["Enter execute"]));
        has(&b, "Signatures 1 of 2");
        has(&b, &format!("Node: {RPC}"));
        lacks(&b, "Ready");
    }
    // Ready.
    a.bundle = Some(signed_bundle(&a, &OWNERS[1..2]));
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        has(&b, "Signatures 2 of 2");
        has(&b, "executor: account 0");
        has(&b, &OWNERS[0].to_checksum(None));
        has(
            &b,
            "Ready: press Enter to execute (you will be asked to confirm).",
        );
    }
    // Running: progress lines, and no invitation to press Enter again.
    enter(&mut a);
    assert_eq!(names(&press(&mut a, "y")), ["Execute"]);
    update(&mut a, Action::ExecLine("simulation ok; executor …".into()));
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        // An execution cannot be cancelled (the transaction may be out): no Esc in the footer.
        assert_chrome(&b, &a, &footer(&[]));
        has(&b, "simulation ok; executor");
        has(&b, "… executing");
        lacks(&b, "Ready: press Enter");
    }
    // Done: receipt and post-conditions, green.
    let a = app_executed(true);
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &SCREEN_KEYS);
        has(&b, "simulation ok");
        has(&b, RECEIPT);
        has(&b, "Post-conditions:");
        for p in ["pause-pool", "pause-vault"] {
            let l = format!("PASS  {p}: paused() == true  (now true)");
            has(&b, &l);
            assert_fg(&b, &l, Color::Green);
        }
        has(&b, "all post-conditions passed");
        assert_fg(&b, "all post-conditions passed", Color::Green);
        lacks(&b, "Ready");
    }
    // A failed post-condition is red, in words too.
    let a = app_executed(false);
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        let l = "FAIL  pause-vault: paused() == true  (now false)";
        has(&b, l);
        assert_fg(&b, l, Color::Red);
        assert_fg(
            &b,
            "PASS  pause-pool: paused() == true  (now true)",
            Color::Green,
        );
        has(&b, "a post-condition FAILED");
        assert_fg(&b, "a post-condition FAILED", Color::Red);
    }
    // Offline.
    let mut a = App::new(manifest(), pinned(), None, false);
    press(&mut a, "x");
    has(&render(&a, 80, 24), "Node: offline");
}

#[test]
fn log_shows_the_session() {
    let mut a = app_with_halt(true);
    update(&mut a, Action::Tick(12.5));
    update(
        &mut a,
        Action::Signed(Err("the device refused: rejected on the device".into())),
    );
    press(&mut a, "l");
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &footer(&["↑↓ scroll"]));
        has(&b, "composed halt (pause-pool, pause-vault)");
        has(&b, "12.5s  signing failed: the device refused");
        assert_fg(&b, "signing failed: the device refused", Color::Red);
    }
    let mut a = app(false);
    press(&mut a, "l");
    let b = render(&a, 80, 24);
    assert_chrome(&b, &a, &footer(&["↑↓ scroll"]));
}

#[test]
fn help_overlay_lists_every_key() {
    let mut a = app(true);
    press(&mut a, "?");
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &["Esc close help"]);
        assert!(!rows(&b).last().unwrap().contains("q quit"));
        has(&b, " Help ");
        for k in [
            "d Dashboard",
            "p Playbooks",
            "r Review",
            "s Sign",
            "t Transfer",
            "x Execute",
            "l Log",
            "Esc cancels",
            "q quits",
            "? closes this help",
        ] {
            has(&b, k);
        }
    }
}

#[test]
fn confirm_dialogs_show_what_is_confirmed_and_the_keys() {
    // Sign.
    let mut a = app_with_halt(true);
    press(&mut a, "s");
    enter(&mut a);
    assert_eq!(a.confirm, Some(Confirm::Sign(accounts(&OWNERS)[0].clone())));
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &["y confirm", "n/Esc cancel"]);
        assert!(!rows(&b).last().unwrap().contains("q quit"));
        has(&b, " Confirm ");
        has(&b, "Sign with account 0");
        has(&b, &OWNERS[0].to_checksum(None));
        has(&b, "Compare the hashes on the device");
        has(&b, "y = sign");
        has(&b, "n / Esc = cancel");
        assert_fg(&b, "y = sign", Color::Yellow);
    }
    // Execute.
    let mut a = app_with_halt(true);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..2]));
    press(&mut a, "x");
    enter(&mut a);
    assert_eq!(a.confirm, Some(Confirm::Execute));
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &["y confirm", "n/Esc cancel"]);
        has(&b, "Execute now?");
        has(&b, "signed by the executor account");
        has(&b, "y = execute");
        has(&b, "n / Esc = cancel");
    }
    // Quit with work running.
    let mut a = app(true);
    press(&mut a, "p");
    enter(&mut a);
    press(&mut a, "q");
    assert_eq!(a.confirm, Some(Confirm::Quit));
    for (w, h) in SIZES {
        let b = render(&a, w, h);
        assert_chrome(&b, &a, &["y confirm", "n/Esc cancel"]);
        has(&b, "Work is still running. Quit anyway?");
        has(&b, "y = quit");
        has(&b, "n / Esc = stay");
    }
}

/// Every screen in every state fits the footer's `q quit` (or the dialog keys) into 80 columns.
#[test]
fn footer_fits_at_80_columns_everywhere() {
    let mut states: Vec<(String, App)> = Vec::new();
    for k in ["d", "p", "r", "s", "t", "x", "l"] {
        let mut a = app_with_halt(true);
        press(&mut a, k);
        states.push((format!("screen {k}"), a));
        let mut a = app_with_halt(true);
        a.busy = Some("composing playbook halt".into());
        press(&mut a, k);
        states.push((format!("busy screen {k}"), a));
    }
    for (what, a) in states {
        let b = render(&a, 80, 24);
        let last = rows(&b).pop().unwrap();
        assert!(
            last.contains("? help") && last.contains("q quit"),
            "{what}: footer {last:?}"
        );
        if a.busy.is_some() {
            assert!(last.contains("Esc cancel"), "{what}: footer {last:?}");
        }
    }
}

/// NO_COLOR: every screen, dialog and overlay without a single coloured cell; the meaning is in words.
#[test]
fn no_color_means_no_colour_anywhere() {
    let mut states: Vec<(String, App)> = Vec::new();
    for k in ["d", "p", "r", "s", "t", "x", "l", "?"] {
        let mut a = app_with_halt(true);
        press(&mut a, k);
        states.push((format!("key {k}"), a));
    }
    let mut a = App::new(manifest(), untrusted(), None, true);
    update(
        &mut a,
        Action::Device(DeviceStatus {
            error: Some("no device".into()),
            ..Default::default()
        }),
    );
    states.push(("untrusted dashboard with device error".into(), a));
    let mut a = app_with_halt(true);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..1]));
    press(&mut a, "s");
    enter(&mut a);
    states.push(("sign dialog, 1 signature".into(), a));
    let mut a = app_with_halt(true);
    press(&mut a, "s");
    enter(&mut a);
    press(&mut a, "y");
    states.push(("signing (busy)".into(), a));
    let mut a = app_executed(true);
    states.push(("executed, pass".into(), a.clone_for_test()));
    press(&mut a, "l");
    states.push(("log after execution".into(), a));
    states.push(("executed, fail".into(), app_executed(false)));
    let mut a = app_executed(true);
    a.screen = Screen::Execute;
    a.confirm = Some(Confirm::Execute);
    states.push(("execute dialog".into(), a));
    let mut a = app(true);
    a.busy = Some("x".into());
    a.confirm = Some(Confirm::Quit);
    states.push(("quit dialog".into(), a));
    for (what, mut a) in states {
        a.color = false;
        for (w, h) in SIZES {
            let b = render(&a, w, h);
            assert_colourless(&b, &format!("{what} at {w}×{h}"));
            if a.drill {
                has(&b, " DRILL ");
            }
        }
    }
    // And App::new reads NO_COLOR (here only checked for the variable's current state).
    let a = App::new(manifest(), pinned(), None, false);
    assert_eq!(a.color, std::env::var_os("NO_COLOR").is_none());
}

/// With colours on, the DRILL label stands out.
#[test]
fn drill_label_is_highlighted_with_colours() {
    let a = app(true);
    let b = render(&a, 80, 24);
    let (x, y) = has(&b, " DRILL ");
    assert_eq!(y, 0);
    assert_eq!(b[(x + 1, y)].bg, Color::Yellow);
    assert!(b[(x + 1, y)].modifier.contains(Modifier::BOLD));
}

/// A tiny terminal does not panic.
#[test]
fn tiny_terminals_do_not_panic() {
    let mut states = vec![app(true), app_with_halt(true), app_executed(true)];
    let mut a = app_with_halt(true);
    press(&mut a, "s");
    enter(&mut a);
    states.push(a);
    let mut a = app(true);
    press(&mut a, "?");
    states.push(a);
    for k in ["p", "s", "t", "l"] {
        let mut a = app_with_halt(true);
        press(&mut a, k);
        states.push(a);
    }
    for a in &states {
        for (w, h) in [(1, 1), (10, 4), (20, 5), (40, 10), (79, 23)] {
            render(a, w, h);
        }
    }
}

trait CloneForTest {
    fn clone_for_test(&self) -> App;
}

impl CloneForTest for App {
    /// `App` is not `Clone`; rebuild the parts the renderer reads.
    fn clone_for_test(&self) -> App {
        let mut a = App::new(
            self.manifest.clone(),
            self.trust.clone(),
            self.rpc.clone(),
            self.drill,
        );
        a.screen = self.screen;
        a.device = self.device.clone();
        a.bundle = self.bundle.clone();
        a.report = self.report.clone();
        a.exec = self.exec.clone();
        a.log = self.log.clone();
        a.message = self.message.clone();
        a.color = self.color;
        a
    }
}

// ------------------------------------------------------------------ the state machine, by keys

#[test]
fn screens_are_one_key_away() {
    let mut a = app(false);
    for (k, s) in [
        ('p', Screen::Playbooks),
        ('r', Screen::Review),
        ('s', Screen::Sign),
        ('t', Screen::Transfer),
        ('x', Screen::Execute),
        ('l', Screen::Log),
        ('d', Screen::Dashboard),
    ] {
        let e = update(&mut a, key(k));
        assert!(e.is_empty(), "{k} asks for {:?}", names(&e));
        assert_eq!(a.screen, s, "after {k}");
    }
    // Help swallows screen keys until closed.
    press(&mut a, "?");
    assert!(a.help);
    press(&mut a, "px");
    assert_eq!(a.screen, Screen::Dashboard);
    assert!(a.help);
    assert_eq!(a.footer_keys(), [("Esc", "close help")]);
    esc(&mut a);
    assert!(!a.help);
    for close in [key('?'), key('q'), code(KeyCode::Enter)] {
        press(&mut a, "?");
        let e = update(&mut a, close);
        assert!(
            e.is_empty(),
            "closing help does nothing else (q does not quit)"
        );
        assert!(!a.help && !a.quit);
    }
}

#[test]
fn playbook_choice_and_enter_composes() {
    let mut a = app(false);
    press(&mut a, "p");
    assert_eq!(names(&enter(&mut a)), ["Compose(halt)"]);
    assert_eq!(a.busy.as_deref(), Some("composing playbook halt"));
    // Busy: Enter again does nothing but say so.
    assert!(enter(&mut a).is_empty());
    assert!(message(&a).1.contains("busy"));
    esc(&mut a);
    assert!(a.busy.is_none());
    // The cancelled composition is still out: nothing new starts until its (discarded) result is in.
    assert!(enter(&mut a).is_empty());
    update(&mut a, Action::Composed(Err("late".into())));
    // Selection clamps at both ends; j/k and arrows.
    update(&mut a, code(KeyCode::Up));
    assert_eq!(a.playbook_idx, 0);
    press(&mut a, "jjjjjjj");
    assert_eq!(a.playbook_idx, 3);
    press(&mut a, "k");
    update(&mut a, code(KeyCode::Up));
    assert_eq!(a.playbook_idx, 1);
    assert_eq!(names(&enter(&mut a)), ["Compose(patch)"]);
}

#[test]
fn composed_result_opens_review_and_errors_stay() {
    let mut a = app(false);
    press(&mut a, "p");
    enter(&mut a);
    update(
        &mut a,
        Action::Composed(Err("offline: the Safe nonce is unknown".into())),
    );
    assert!(a.busy.is_none());
    assert_eq!(a.screen, Screen::Playbooks);
    assert!(a.bundle.is_none());
    assert_eq!(message(&a).0, Level::Error);
    assert!(message(&a).1.contains("compose failed: offline"));
    let b = render(&a, 80, 24);
    assert_fg(&b, "compose failed: offline", Color::Red);

    enter(&mut a);
    let (bundle, report) = composed("halt");
    let hash = format!("{:#x}", bundle.safe_hashes().unwrap().safe_tx_hash);
    update(
        &mut a,
        Action::Composed(Ok((Box::new(bundle), Box::new(report)))),
    );
    assert_eq!(a.screen, Screen::Review);
    assert!(a.busy.is_none());
    assert_eq!(message(&a).0, Level::Ok);
    assert!(message(&a).1.contains(&hash), "{:?}", a.message);
    assert_eq!(a.signatures(), (0, 2));
    assert_eq!(a.missing_owners(), OWNERS.to_vec());
}

/// A refused report never reads "ALLOWED" anywhere, even if one arrives through `Composed`.
#[test]
fn composed_with_a_refused_report_is_not_announced_as_allowed() {
    let mut a = app(false);
    press(&mut a, "p");
    enter(&mut a);
    let (bundle, _) = composed("halt");
    update(
        &mut a,
        Action::Composed(Ok((Box::new(bundle), Box::new(bybit_report())))),
    );
    assert!(
        !message(&a).1.contains("ALLOWED"),
        "status says {:?} for a refused report",
        message(&a).1
    );
    assert!(a.log.iter().all(|l| !l.text.contains("ALLOWED")));
}

#[test]
fn sign_needs_enter_then_y_and_never_less() {
    let mut a = app_with_halt(false);
    // From Review, Enter or s goes to Sign; neither signs.
    assert!(enter(&mut a).is_empty());
    assert_eq!(a.screen, Screen::Sign);
    // Enter opens the dialog, no effect yet.
    assert!(enter(&mut a).is_empty());
    assert_eq!(a.confirm, Some(Confirm::Sign(accounts(&OWNERS)[0].clone())));
    assert!(a.busy.is_none());
    // Keys other than y/n/Esc do nothing in the dialog (not even switch screens or quit).
    for c in ['s', 'x', 'd', 'q', 'e', '?'] {
        assert!(update(&mut a, key(c)).is_empty(), "{c} in the dialog");
    }
    assert!(enter(&mut a).is_empty());
    assert_eq!(a.screen, Screen::Sign);
    assert!(a.confirm.is_some() && !a.quit && !a.help);
    // y: exactly one Sign effect with this bundle and account.
    let e = press(&mut a, "y");
    assert_eq!(names(&e), ["Sign(0)"]);
    match &e[0] {
        Effect::Sign(b, acct) => {
            assert_eq!(Some(b.as_ref()), a.bundle.as_ref());
            assert_eq!(acct.address, OWNERS[0]);
        }
        _ => unreachable!(),
    }
    assert!(a.confirm.is_none());
    assert!(a.busy.as_deref().unwrap().contains("confirm on the device"));
    // A second y is just a key.
    assert!(press(&mut a, "y").is_empty());
}

#[test]
fn esc_or_n_cancels_the_dialog_with_no_effect() {
    for cancel in [code(KeyCode::Esc), key('n'), key('N')] {
        let mut a = app_with_halt(false);
        press(&mut a, "s");
        enter(&mut a);
        assert!(a.confirm.is_some());
        assert!(update(&mut a, cancel).is_empty());
        assert!(a.confirm.is_none());
        assert!(a.busy.is_none());
        assert_eq!(message(&a).1, "cancelled");
        assert!(
            press(&mut a, "y").is_empty(),
            "y after cancel signs nothing"
        );
        assert_eq!(a.screen, Screen::Sign);
    }
}

#[test]
fn signing_is_refused_with_a_reason() {
    #[track_caller]
    fn refused(mut a: App, why: &str) {
        let before = a.bundle.clone();
        press(&mut a, "s");
        let e = enter(&mut a);
        assert!(e.is_empty(), "{why}: effects {:?}", names(&e));
        assert!(a.confirm.is_none(), "{why}: a dialog opened");
        assert!(press(&mut a, "y").is_empty(), "{why}: y signed");
        let (lvl, m) = message(&a);
        assert_eq!(lvl, Level::Error, "{why}: {m}");
        assert!(m.contains(why), "expected {why:?} in {m:?}");
        assert_eq!(a.bundle, before);
        let b = render(&a, 80, 24);
        assert_fg(&b, why, Color::Red);
    }
    // Untrusted manifest.
    let mut a = app_with_halt(false);
    a.trust = untrusted();
    refused(a, "the manifest is not trusted");
    // Refused report.
    let mut a = app_with_halt(false);
    a.report = Some(bybit_report());
    refused(a, "verification refused this transaction");
    // No report at all.
    let mut a = app_with_halt(false);
    a.report = None;
    refused(a, "verification refused this transaction");
    // Not an owner.
    let mut a = app_with_halt(false);
    a.device.accounts = accounts(&[STRANGER]);
    refused(a, "is not a signer of this transaction");
    // Already signed.
    let mut a = app_with_halt(false);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..1]));
    refused(a, "already signed");
    // Nothing composed.
    refused(app(false), "nothing to sign");
    // No accounts.
    let mut a = app_with_halt(false);
    a.device = DeviceStatus::default();
    refused(a, "no signer account available");
}

#[test]
fn signatures_move_the_flow_to_execute() {
    let mut a = app_with_halt(false);
    press(&mut a, "s");
    enter(&mut a);
    let e = press(&mut a, "y");
    let Effect::Sign(b, _) = &e[0] else { panic!() };
    let mut b1 = (**b).clone();
    b1.signatures.push(sig(OWNERS[0]));
    update(&mut a, Action::Signed(Ok((Box::new(b1), OWNERS[0]))));
    assert!(a.busy.is_none());
    assert_eq!(a.screen, Screen::Sign);
    assert_eq!(a.signatures(), (1, 2));
    assert_eq!(a.account_idx, 1, "the next account is selected");
    assert_eq!(a.missing_owners(), OWNERS[1..].to_vec());
    assert!(message(&a).1.contains("1 of 2 signatures"));
    // Signing failure: stays, says why, nothing lost.
    enter(&mut a);
    press(&mut a, "y");
    update(
        &mut a,
        Action::Signed(Err("the device refused: rejected".into())),
    );
    assert_eq!(a.signatures(), (1, 2));
    assert_eq!(message(&a).0, Level::Error);
    assert!(message(&a).1.contains("signing failed: the device refused"));
    // Second signature: Execute.
    enter(&mut a);
    let e = press(&mut a, "y");
    assert_eq!(names(&e), ["Sign(1)"]);
    let Effect::Sign(b, _) = &e[0] else { panic!() };
    let mut b2 = (**b).clone();
    b2.signatures.push(sig(OWNERS[1]));
    update(&mut a, Action::Signed(Ok((Box::new(b2), OWNERS[1]))));
    assert_eq!(a.screen, Screen::Execute);
    assert_eq!(a.signatures(), (2, 2));
    assert!(message(&a).1.contains("2 of 2 signatures"));
}

#[test]
fn execute_needs_threshold_signatures_a_node_and_y() {
    // Nothing composed.
    let mut a = app(false);
    press(&mut a, "x");
    assert!(enter(&mut a).is_empty());
    assert!(a.confirm.is_none());
    assert!(message(&a).1.contains("nothing to execute"));
    // 0 and 1 signatures.
    for n in 0..2 {
        let mut a = app_with_halt(false);
        a.bundle = Some(signed_bundle(&a, &OWNERS[..n]));
        press(&mut a, "x");
        assert!(enter(&mut a).is_empty());
        assert!(a.confirm.is_none());
        assert!(press(&mut a, "y").is_empty());
        assert_eq!(
            message(&a),
            (Level::Error, format!("{n} of 2 signatures: sign first (s)"))
        );
    }
    // Offline.
    let mut a = App::new(manifest(), pinned(), None, false);
    a.device = simulator();
    let (b, r) = composed("halt");
    update(&mut a, Action::Composed(Ok((Box::new(b), Box::new(r)))));
    a.bundle = Some(signed_bundle(&a, &OWNERS[..2]));
    press(&mut a, "x");
    assert!(enter(&mut a).is_empty());
    assert!(a.confirm.is_none());
    assert!(message(&a).1.contains("offline: execution needs a node"));
    // Ready: Enter opens the dialog, y executes; Esc in the dialog does not.
    let mut a = app_with_halt(false);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..2]));
    press(&mut a, "x");
    assert!(enter(&mut a).is_empty());
    assert_eq!(a.confirm, Some(Confirm::Execute));
    assert!(esc(&mut a).is_empty());
    assert!(a.confirm.is_none() && a.busy.is_none());
    assert!(enter(&mut a).is_empty());
    let e = press(&mut a, "y");
    assert_eq!(names(&e), ["Execute"]);
    let Effect::Execute(b) = &e[0] else { panic!() };
    assert_eq!(b.signatures.len(), 2);
    assert!(a.busy.is_some());
    // Progress, then the result.
    update(&mut a, Action::ExecLine("simulation ok".into()));
    assert_eq!(a.exec.lines, ["simulation ok"]);
    assert!(!a.exec.done);
    let done = (**b).clone();
    update(
        &mut a,
        Action::Executed(Ok((Box::new(done), posts(true), RECEIPT.into()))),
    );
    assert!(a.busy.is_none() && a.exec.done);
    assert_eq!(a.exec.receipt.as_deref(), Some(RECEIPT));
    assert_eq!(a.exec.posts.len(), 2);
    assert_eq!(message(&a).0, Level::Ok);
    // Executed once: Enter again does not offer to execute again.
    assert!(enter(&mut a).is_empty());
    assert!(a.confirm.is_none());
    assert!(message(&a).1.contains("already executed"));
    // A failed execution says so and may be retried.
    let mut a = app_with_halt(false);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..2]));
    press(&mut a, "x");
    enter(&mut a);
    press(&mut a, "y");
    update(
        &mut a,
        Action::Executed(Err("simulation reverted: GS026".into())),
    );
    assert_eq!(
        message(&a),
        (
            Level::Error,
            "execution failed: simulation reverted: GS026".into()
        )
    );
    assert!(a.busy.is_none());
    enter(&mut a);
    assert_eq!(
        a.confirm,
        Some(Confirm::Execute),
        "a failed execution can be retried"
    );
}

#[test]
fn quit_asks_only_when_work_is_running() {
    let mut a = app(false);
    assert_eq!(names(&press(&mut a, "q")), ["Quit"]);
    assert!(a.quit);
    // Busy: q asks; n stays; y quits.
    let mut a = app(false);
    press(&mut a, "p");
    enter(&mut a);
    assert!(press(&mut a, "q").is_empty());
    assert!(!a.quit);
    assert_eq!(a.confirm, Some(Confirm::Quit));
    assert!(press(&mut a, "n").is_empty());
    assert!(!a.quit && a.confirm.is_none());
    assert!(a.busy.is_some(), "staying keeps the work running");
    press(&mut a, "q");
    assert_eq!(names(&press(&mut a, "y")), ["Quit"]);
    assert!(a.quit);
    // Ctrl-C always quits, even from a dialog or help.
    for setup in ["?", "s"] {
        let mut a = app_with_halt(false);
        press(&mut a, setup);
        if setup == "s" {
            enter(&mut a);
            assert!(a.confirm.is_some());
        }
        let e = update(
            &mut a,
            Action::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        );
        assert_eq!(names(&e), ["Quit"]);
        assert!(a.quit);
    }
}

#[test]
fn results_after_esc_cancel_are_discarded() {
    // Composition.
    let mut a = app(false);
    press(&mut a, "p");
    enter(&mut a);
    esc(&mut a);
    assert!(a.busy.is_none());
    assert!(message(&a)
        .1
        .starts_with("cancelled: composing playbook halt"));
    let (b, r) = composed("halt");
    update(&mut a, Action::Composed(Ok((Box::new(b), Box::new(r)))));
    assert!(a.bundle.is_none(), "a cancelled composition is not used");
    assert_eq!(a.screen, Screen::Playbooks);
    assert!(message(&a).1.contains("discarded"));
    // The next one is used again.
    enter(&mut a);
    let (b, r) = composed("halt");
    update(&mut a, Action::Composed(Ok((Box::new(b), Box::new(r)))));
    assert!(a.bundle.is_some());
    assert_eq!(a.screen, Screen::Review);

    // Signature.
    let mut a = app_with_halt(false);
    press(&mut a, "s");
    enter(&mut a);
    press(&mut a, "y");
    esc(&mut a);
    let late = signed_bundle(&a, &OWNERS[..1]);
    update(&mut a, Action::Signed(Ok((Box::new(late), OWNERS[0]))));
    assert_eq!(a.signatures(), (0, 2), "a cancelled signature is not saved");
    assert_eq!(a.screen, Screen::Sign);
    assert!(message(&a).1.contains("discarded"));
    // A cancelled failure is not reported as the current error either.
    enter(&mut a);
    press(&mut a, "y");
    esc(&mut a);
    update(&mut a, Action::Signed(Err("timeout".into())));
    assert_ne!(message(&a).0, Level::Error);
}

/// Cancel a step, start the same step again, and the first one's result arrives first: it belongs to
/// the cancelled step and must be discarded, not taken for the new one's.
#[test]
fn a_stale_result_is_not_taken_for_the_restarted_step() {
    let mut a = app_with_halt(false);
    press(&mut a, "s");
    enter(&mut a);
    press(&mut a, "y"); // account 0
    esc(&mut a); // cancelled: "a signature already made on the device is not saved"
    press(&mut a, "j");
    // While the cancelled step is still out, nothing new starts (so a late result cannot be taken for
    // another step's).
    enter(&mut a);
    assert!(press(&mut a, "y").is_empty());
    assert!(
        message(&a).1.contains("cancelled step"),
        "{:?}",
        message(&a)
    );
    // The cancelled account-0 signature arrives now: discarded.
    let stale = signed_bundle(&a, &OWNERS[..1]);
    update(&mut a, Action::Signed(Ok((Box::new(stale), OWNERS[0]))));
    // Now the account-1 signature can start.
    enter(&mut a);
    assert_eq!(names(&press(&mut a, "y")), ["Sign(1)"]);
    assert!(
        a.bundle
            .as_ref()
            .unwrap()
            .signatures
            .iter()
            .all(|s| s.signer != OWNERS[0]),
        "the cancelled signature by account 0 was saved: {:?}",
        message(&a)
    );
    assert!(a.busy.is_some(), "the account-1 signature is still awaited");
}

/// An execution cancelled with Esc may still have been sent: its result is shown, not dropped.
#[test]
fn execution_result_after_cancel_is_still_shown() {
    let mut a = app_with_halt(false);
    a.bundle = Some(signed_bundle(&a, &OWNERS[..2]));
    press(&mut a, "x");
    enter(&mut a);
    let e = press(&mut a, "y");
    let Effect::Execute(b) = &e[0] else { panic!() };
    esc(&mut a);
    update(
        &mut a,
        Action::Executed(Ok((b.clone(), posts(true), RECEIPT.into()))),
    );
    assert_eq!(a.exec.receipt.as_deref(), Some(RECEIPT));
    has(&render(&a, 80, 24), "PASS  pause-pool");
}

#[test]
fn export_only_with_a_bundle_and_not_while_busy() {
    let mut a = app(false);
    press(&mut a, "t");
    assert!(press(&mut a, "e").is_empty());
    assert!(message(&a).1.contains("nothing to export"));
    // 'e' elsewhere is not export.
    let mut a = app_with_halt(false);
    assert!(press(&mut a, "e").is_empty());
    press(&mut a, "t");
    assert_eq!(names(&press(&mut a, "e")), ["Export"]);
    assert!(press(&mut a, "e").is_empty(), "not twice at once");
    update(&mut a, Action::Exported(Err("permission denied".into())));
    assert_eq!(
        message(&a),
        (Level::Error, "export failed: permission denied".into())
    );
    assert!(a.exported.is_none());
    assert!(a.busy.is_none());
}

#[test]
fn footer_keys_follow_the_state() {
    let mut a = app_with_halt(false);
    let keys = |a: &App| -> Vec<String> {
        a.footer_keys()
            .iter()
            .map(|(k, w)| format!("{k} {w}"))
            .collect()
    };
    assert_eq!(keys(&a)[..2], ["↑↓ scroll", "s sign"]);
    press(&mut a, "s");
    assert!(keys(&a).contains(&"Enter sign".to_string()));
    assert!(!keys(&a).contains(&"Esc cancel".to_string()));
    enter(&mut a);
    assert_eq!(keys(&a), ["y confirm", "n/Esc cancel"]);
    press(&mut a, "y");
    assert!(keys(&a).contains(&"Esc cancel".to_string()));
    assert!(keys(&a).contains(&"q quit".to_string()));
}

#[test]
fn log_records_every_step_with_its_time() {
    let mut a = app(false);
    update(&mut a, Action::Tick(0.4));
    update(&mut a, Action::Device(simulator()));
    press(&mut a, "p");
    update(&mut a, Action::Tick(4.7));
    enter(&mut a);
    let (b, r) = composed("halt");
    update(&mut a, Action::Composed(Ok((Box::new(b), Box::new(r)))));
    let texts: Vec<(f64, Level, &str)> = a
        .log
        .iter()
        .map(|l| (l.at, l.level, l.text.as_str()))
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(texts[0].0, 0.4);
    assert!(texts[0].2.starts_with("signer ready: SIMULATED LEDGER"));
    assert_eq!((texts[1].0, texts[1].1), (4.7, Level::Info));
    assert_eq!(texts[1].2, "composing playbook halt");
    assert_eq!(texts[2].1, Level::Ok);
    // Scrolling the log.
    press(&mut a, "l");
    press(&mut a, "jj");
    assert_eq!(a.scroll, 2);
    press(&mut a, "d");
    assert_eq!(a.scroll, 0, "changing screens resets the scroll");
}

/// `i` on Transfer imports signatures from bundle files; the merged bundle is kept and saved only when
/// something new came in.
#[test]
fn importing_signatures_from_files_adds_them_and_saves() {
    let mut a = app_with_halt(false);
    press(&mut a, "t");
    let e = press(&mut a, "i");
    assert_eq!(e.len(), 1);
    assert!(matches!(e[0], Effect::ImportSignatures(_)));
    assert!(a.busy.is_some());
    let merged = signed_bundle(&a, &OWNERS[..2]);
    let effects = update(
        &mut a,
        Action::Imported(Ok((
            Box::new(merged),
            2,
            vec!["a.json".into(), "b.json".into()],
        ))),
    );
    assert!(matches!(effects.as_slice(), [Effect::Save(_)]));
    assert_eq!(a.signatures(), (2, 2));
    assert!(message(&a)
        .1
        .contains("imported 2 new signature(s) from 2 file(s)"));
    // A failure is an error message, and the bundle is unchanged.
    press(&mut a, "i");
    update(
        &mut a,
        Action::Imported(Err("b.json: signature 0 (0x…): not an owner".into())),
    );
    assert_eq!(message(&a).0, Level::Error);
    assert_eq!(a.signatures(), (2, 2));
}
