//! Issue 16: breakglass against Ledger's real Ethereum app 1.22.0 (Nano S Plus build, Ledger's production
//! keys) under Speculos, its buttons pressed through Speculos' REST API as a person would. One Speculos per
//! settings preset, shared by the tests that need it (support::speculos::shared). The pages the device
//! showed (`/events`, normalised into one entry per field) are compared with what breakglass said, before
//! asking, that the device would show; every signature made is executed by the real Safe 1.4.1 on anvil.
//!
//! When `BREAKGLASS_LEDGER_APP` / `BREAKGLASS_SPECULOS` are unset (no ../shared/ledger-app, or
//! scripts/setup.sh not sourced), each test says on standard error that the real-app tests did not run
//! and returns; when they are set and Speculos does not start, the tests fail.

use crate::support::bin::{Run, Sandbox};
use crate::support::speculos::{self, shared, Decision, Outcome, Preset, Speculos, Walk};
use crate::support::world::{all_output, ok, Pins, World, ONE_HUNDRED_ETH, SIM0, SIM1};
use alloy::primitives::{address, Address, Bytes, U256};
use breakglass::bundle::Bundle;
use breakglass::safe::{Operation, SafeDomain, SafeTxFields};
use breakglass::signer::ledger::apdu::ledger_live_path;
use breakglass::signer::ledger::eip712::{self, DeviceSettings, FieldType, SafeTyped};
use breakglass::signer::ledger::sim::{SimApp, SimConfig};
use breakglass::signer::ledger::{LedgerSigner, TcpTransport};
use breakglass::signer::Signer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What breakglass's sign command printed as the device's pages (`  | …`), our own gloss removed.
fn preview_pages(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  | "))
        .map(|p| {
            p.split("   (breakglass:")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The 64 hex digits of a preview line such as `  Domain hash   0x1234abcd 5678…` (grouped), lowercase.
fn preview_hash(stdout: &str, label: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"));
    let hex: String = line
        .trim_start()
        .trim_start_matches(label)
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(hex.len(), 64, "{line}");
    hex.to_ascii_lowercase()
}

/// A page of a hash as the device shows it: `0x` and 64 uppercase hex digits.
fn device_hash_page(title: &str, lower_hex: &str) -> String {
    format!("{title} 0x{}", lower_hex.to_ascii_uppercase())
}

/// The settings of a preset, as breakglass's preview models them.
fn settings(p: Preset) -> DeviceSettings {
    DeviceSettings {
        blind_signing: p.blind_signing(),
        raw_messages: p.raw_messages(),
        transaction_hash: p.transaction_hash(),
    }
}

/// A Safe batch to sign: the World (anvil, the real Safe 1.4.1 with Speculos' accounts 0 and 1 and a
/// keystore as owners), the manifest `m.toml`, and `halt.json`: `halt` composed online, a
/// MultiSendCallOnly batch (operation 1, DELEGATECALL) pausing the pool and the vault.
fn halt_world() -> World {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt", "-o", "halt.json"]),
        "compose halt",
    );
    let b = w.bundle("halt.json");
    assert_eq!(
        b["safe_tx"]["operation"],
        json!("delegatecall"),
        "halt is a MultiSendCallOnly batch: {}",
        b["safe_tx"]
    );
    w
}

/// The Safe transaction of a bundle as typed data.
fn typed_of(w: &World, file: &str) -> SafeTyped {
    let b = Bundle::read(&w.sb.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let s = b.safe_tx.expect("a Safe transaction");
    SafeTyped {
        chain_id: b.chain_id,
        safe: s.safe,
        domain: s.eip712_domain,
        tx: s.tx,
    }
}

/// `breakglass sign BUNDLE --speculos … --account 0 --eip712 MODE -o OUT` while the device is walked
/// through its review.
fn sign_on(
    w: &World,
    dev: &Speculos,
    bundle: &str,
    mode: &str,
    decision: Decision,
    out: &str,
) -> (Run, Walk) {
    let review = dev.review(decision);
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            bundle,
            "--speculos",
            &dev.addr(),
            "--account",
            "0",
            "--eip712",
            mode,
            "--device-timeout",
            "120",
            "-o",
            out,
        ],
    );
    let walk = match review.try_finish(Duration::from_secs(10)) {
        Ok(walk) => walk,
        Err(e) => panic!(
            "{:?}, --eip712 {mode}: the device was not walked through a review ({e}); the binary said:\n{}",
            dev.preset,
            all_output(&r)
        ),
    };
    (r, walk)
}

/// The signature entry of `who` in a bundle.
fn signature_of(b: &Value, who: &str) -> Value {
    b["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signer"].as_str().unwrap().eq_ignore_ascii_case(who))
        .cloned()
        .unwrap_or_else(|| panic!("no signature by {who}: {b}"))
}

/// The keystore owner adds the second signature; the executor executes; the real Safe accepts it and
/// both markets are paused.
fn executes(w: &World, signed: &str, what: &str) {
    let both = format!("{signed}.2.json");
    ok(
        &w.bg(
            "m.toml",
            false,
            &[
                "sign",
                signed,
                "--keystore",
                "keystores/owner3",
                "--password-file",
                "password.txt",
                "-o",
                &both,
            ],
        ),
        "sign with the keystore owner",
    );
    let done = format!("{signed}.done.json");
    let r = w.execute_keystore("m.toml", &both, &done);
    ok(&r, &format!("the real Safe executes ({what})"));
    assert!(
        w.paused(&w.pool) && w.paused(&w.vault),
        "{what}: not paused after execution"
    );
}

// ------------------------------------------------------------------ 1. address and settings

#[test]
fn address_and_settings_on_every_preset() {
    if !speculos::available("address_and_settings_on_every_preset") {
        return;
    }
    let sb = Sandbox::new();
    for p in Preset::ALL {
        let dev = shared(p);
        let r = sb.run(&["ledger", "address", "--speculos", &dev.addr()]);
        assert_eq!(r.code, 0, "{p:?}: {}", all_output(&r));
        assert!(
            r.stdout.contains(&format!("{SIM0}  m/44'/60'/0'/0/0")),
            "{p:?}: {}",
            r.stdout
        );
        let r = sb.run(&[
            "ledger",
            "address",
            "--speculos",
            &dev.addr(),
            "--account",
            "1",
            "--json",
        ]);
        assert_eq!(r.json()["address"], json!(SIM1), "{p:?}: {}", r.stdout);
        let r = sb.run(&["ledger", "config", "--speculos", &dev.addr(), "--json"]);
        assert_eq!(r.code, 0, "{p:?}: {}", all_output(&r));
        let v = r.json();
        assert_eq!(v["app_version"], json!("1.22.0"), "{p:?}: {v}");
        assert_eq!(v["blind_signing"], json!(p.blind_signing()), "{p:?}: {v}");
        assert!(
            !v["device"].as_str().unwrap_or("").contains("SIMULATED"),
            "the real app is not the simulator: {v}"
        );
    }
}

// ------------------------------------------------------------------ 2. an EOA transaction with calldata

#[test]
fn a_guardian_transaction_with_calldata_signs_after_blind_signing_ahead_and_is_refused_without_it()
{
    if !speculos::available("a_guardian_transaction_with_calldata_signs_after_blind_signing_ahead_and_is_refused_without_it") {
        return;
    }
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let nonce = w.nonce(SIM0).to_string();
    ok(
        &w.bg(
            "m.toml",
            false,
            &[
                "compose",
                "guardian-halt",
                "--from",
                SIM0,
                "--nonce",
                &nonce,
                "--gas-limit",
                "150000",
                "--max-fee",
                "100000000000",
                "--priority-fee",
                "1000000000",
                "-o",
                "g.json",
            ],
        ),
        "compose guardian-halt",
    );
    let composed = w.bundle("g.json");
    let signing_hash = composed["eoa_tx"]["signing_hash"]
        .as_str()
        .unwrap()
        .to_string();

    // Blind signing off: refused at once, with what to turn on; nothing written.
    {
        let dev = shared(Preset::Defaults);
        let (r, walk) = sign_on(&w, &dev, "g.json", "auto", Decision::Approve, "g-off.json");
        assert_eq!(r.code, 4, "{}", all_output(&r));
        assert!(
            r.stderr.contains("Blind signing"),
            "the error names the setting: {}",
            r.stderr
        );
        assert!(!w.sb.path("g-off.json").exists());
        assert_eq!(walk.outcome, Outcome::Refused);
        assert_eq!(
            walk.pages(),
            ["Blind signing must be enabled in settings"],
            "{:?}",
            walk.screens
        );
    }

    // Blind signing on: "Blind signing ahead", the review, "Accept risk and sign transaction".
    let dev = shared(Preset::BlindSigning);
    let (r, walk) = sign_on(
        &w,
        &dev,
        "g.json",
        "auto",
        Decision::Approve,
        "g-signed.json",
    );
    ok(&r, "sign the guardian transaction on the real app");
    drop(dev);
    assert_eq!(walk.outcome, Outcome::Approved);
    let pages = walk.pages();
    let gpool: Address = w.g_pool.parse().unwrap();
    let max_fee_wei: u128 = 150_000 * 100_000_000_000;
    assert_eq!(
        pages,
        [
            "Blind signing ahead".to_string(),
            "Review transaction".to_string(),
            format!("From {SIM0}"),
            format!("To {}", gpool.to_checksum(None)),
            // Chain 31337 has no ticker in the app: "???".
            format!("Max fees {} ???", eth_text(max_fee_wei)),
            "Network 31337".to_string(),
            format!("Tx hash {signing_hash}"),
            "Accept risk and sign transaction".to_string(),
        ],
        "{:?}",
        walk.screens
    );
    // What breakglass said before asking is the device's pages, page for page.
    assert_eq!(preview_pages(&r.stdout), pages, "{}", r.stdout);
    let b = w.bundle("g-signed.json");
    assert!(
        b["signed_tx"]["raw"].as_str().unwrap().starts_with("0x02"),
        "{b}"
    );

    // The node accepts it: the guardian's pool is paused.
    w.anvil.set_balance(SIM0, ONE_HUNDRED_ETH);
    ok(
        &w.bg(
            "m.toml",
            true,
            &["broadcast", "g-signed.json", "-o", "g-done.json"],
        ),
        "broadcast the real app's signature",
    );
    assert!(w.paused(&w.g_pool));
}

/// Wei as the app writes an amount of ether: decimal, trailing zeros dropped.
fn eth_text(wei: u128) -> String {
    let whole = wei / 1_000_000_000_000_000_000;
    let frac = wei % 1_000_000_000_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:018}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

// ------------------------------------------------------------------ 3 and 4. a Safe batch, every mode

#[test]
fn safe_batch_in_hashed_mode_with_blind_signing() {
    if !speculos::available("safe_batch_in_hashed_mode_with_blind_signing") {
        return;
    }
    let w = halt_world();
    let dev = shared(Preset::BlindSigning);
    let (r, walk) = sign_on(&w, &dev, "halt.json", "hashed", Decision::Approve, "s.json");
    drop(dev);
    ok(&r, "sign in hashed mode on the real app");
    assert_eq!(walk.outcome, Outcome::Approved);
    assert!(
        r.stdout
            .contains("The device will show (hashed EIP-712; needs blind signing), page by page:"),
        "{}",
        r.stdout
    );
    assert_eq!(preview_pages(&r.stdout), walk.pages(), "{}", r.stdout);
    let domain = preview_hash(&r.stdout, "Domain hash");
    let message = preview_hash(&r.stdout, "Message hash");
    assert_eq!(
        walk.pages(),
        [
            "Blind signing ahead".to_string(),
            "Review typed message".to_string(),
            device_hash_page("Domain hash", &domain),
            device_hash_page("Message hash", &message),
            "Sign message".to_string(),
        ],
        "{:?}",
        walk.screens
    );
    let sig = signature_of(&w.bundle("s.json"), SIM0);
    assert_eq!(sig["mode"], json!("eip712-hashed"), "{sig}");
    executes(&w, "s.json", "hashed mode");
}

/// Signs `halt` in full mode on `preset` through the binary, checks the device's pages against the
/// preview and the library's model of that preset, then has the Safe execute it. Returns the pages.
fn full_mode_on(preset: Preset) -> Vec<String> {
    let w = halt_world();
    let typed = typed_of(&w, "halt.json");
    let dev = shared(preset);
    let t0 = Instant::now();
    let (r, walk) = sign_on(&w, &dev, "halt.json", "full", Decision::Approve, "s.json");
    drop(dev);
    ok(
        &r,
        &format!("sign in full mode on the real app ({preset:?})"),
    );
    assert_eq!(walk.outcome, Outcome::Approved);
    eprintln!(
        "[figures] real app, full EIP-712, {preset:?}: {} screens, {} presses, review walked in {:.1} s, sign command {:.1} s",
        walk.screens.len(),
        walk.presses,
        walk.elapsed.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    let pages = walk.pages();
    // The raw `/events` and the screens the walker read one by one give the same pages.
    assert_eq!(pages, speculos::logical_pages(&walk.screens));
    assert!(r.stdout.contains("full EIP-712"), "{}", r.stdout);

    // What the library says this preset shows, page for page (our gloss stripped).
    let model: Vec<String> = eip712::device_pages(&typed, settings(preset))
        .expect("the preset signs")
        .into_iter()
        .map(|p| {
            p.split("   (breakglass:")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(pages, model, "{preset:?}: the device vs breakglass's model");

    // What the binary printed before asking.
    let printed = preview_pages(&r.stdout);
    let domain = preview_hash(&r.stdout, "Domain hash");
    let message = preview_hash(&r.stdout, "Message hash");
    if preset.raw_messages() {
        let mut want = printed.clone();
        if preset.transaction_hash() {
            // "With "Transaction hash" on, Domain hash and Message hash pages (below) come before "Sign
            // message"."
            assert!(
                r.stdout.contains("With \"Transaction hash\" on"),
                "{}",
                r.stdout
            );
            let sign = want.pop();
            want.push(device_hash_page("Domain hash", &domain));
            want.push(device_hash_page("Message hash", &message));
            want.extend(sign);
        }
        assert_eq!(pages, want, "{preset:?}: the device vs the printed preview");
        for field in ["to ", "operation 1", "nonce "] {
            assert!(
                pages.iter().any(|p| p.starts_with(field)),
                "{field}: {pages:?}"
            );
        }
        assert!(
            r.stdout
                .contains("| operation 1   (breakglass: = DELEGATECALL)"),
            "{}",
            r.stdout
        );
    } else {
        // Blind signing only: the preview's note "With "Raw messages" off it shows only: A | B | C."
        let note = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("With \"Raw messages\" off it shows only: "))
            .unwrap_or_else(|| panic!("no raw-messages-off note:\n{}", r.stdout));
        let said: Vec<&str> = note.trim_end_matches('.').split(" | ").collect();
        let shown: Vec<&str> = pages
            .iter()
            .map(String::as_str)
            .filter(|p| *p != "Review typed message" && *p != "Sign message")
            .collect();
        assert_eq!(shown, said, "the device vs the preview's note");
        assert!(shown.contains(&device_hash_page("Message hash", &message).as_str()));
    }
    let sig = signature_of(&w.bundle("s.json"), SIM0);
    assert_eq!(sig["mode"], json!("eip712-full"), "{sig}");

    // breakglass's simulator, given the same APDUs with the same settings, shows the same pages (it has
    // no "Transaction hash" setting: without the two hash pages) and makes the same signature.
    let mut sim = SimApp::new(SimConfig {
        blind_signing: preset.blind_signing(),
        raw_messages: preset.raw_messages(),
        ..Default::default()
    });
    let mut answer = Vec::new();
    for a in eip712::full_apdus(&ledger_live_path(0), &typed) {
        answer = sim.handle(&a);
    }
    let real_without_hash_pages: Vec<String> = if preset.transaction_hash() {
        let n = pages.len();
        [&pages[..n - 3], &pages[n - 1..]].concat()
    } else {
        pages.clone()
    };
    assert_eq!(
        sim.last_pages, real_without_hash_pages,
        "{preset:?}: the simulator vs the real app"
    );
    assert_eq!(answer.len(), 67, "{answer:?}");
    let mut rsv = answer[1..65].to_vec();
    rsv.push(answer[0]);
    assert_eq!(
        sig["signature"],
        json!(format!("0x{}", alloy::hex::encode(rsv))),
        "{preset:?}: the simulator's signature vs the real app's"
    );

    executes(&w, "s.json", &format!("full mode, {preset:?}"));
    pages
}

#[test]
fn safe_batch_in_full_mode_with_raw_messages_shows_every_field() {
    if !speculos::available("safe_batch_in_full_mode_with_raw_messages_shows_every_field") {
        return;
    }
    let pages = full_mode_on(Preset::RawMessages);
    for want in [
        "Review struct SafeTx",
        "operation 1",
        "value 0",
        "safeTxGas 0",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want}: {pages:?}");
    }
}

#[test]
fn safe_batch_in_full_mode_with_blind_signing_only_shows_the_safe_and_the_message_hash() {
    if !speculos::available(
        "safe_batch_in_full_mode_with_blind_signing_only_shows_the_safe_and_the_message_hash",
    ) {
        return;
    }
    let pages = full_mode_on(Preset::BlindSigning);
    assert!(
        pages.iter().any(|p| p.starts_with("verifyingContract 0x")),
        "{pages:?}"
    );
    assert!(!pages.iter().any(|p| p.starts_with("to ")), "{pages:?}");
}

#[test]
fn safe_batch_in_full_mode_with_blind_raw_and_transaction_hash_adds_the_hash_pages() {
    if !speculos::available(
        "safe_batch_in_full_mode_with_blind_raw_and_transaction_hash_adds_the_hash_pages",
    ) {
        return;
    }
    let pages = full_mode_on(Preset::BlindRawTxHash);
    let n = pages.len();
    assert!(pages[n - 3].starts_with("Domain hash 0x"), "{pages:?}");
    assert!(pages[n - 2].starts_with("Message hash 0x"), "{pages:?}");
}

// ------------------------------------------------------------------ 5 and 6. refusals write nothing

#[test]
fn rejecting_on_the_device_exits_4_and_writes_nothing() {
    if !speculos::available("rejecting_on_the_device_exits_4_and_writes_nothing") {
        return;
    }
    let w = halt_world();
    for (preset, mode) in [
        (Preset::RawMessages, "full"),
        (Preset::BlindSigning, "hashed"),
    ] {
        let dev = shared(preset);
        let out = format!("rejected-{mode}.json");
        let (r, walk) = sign_on(&w, &dev, "halt.json", mode, Decision::Reject, &out);
        drop(dev);
        assert_eq!(r.code, 4, "{preset:?} {mode}: {}", all_output(&r));
        assert!(
            r.stderr.to_lowercase().contains("reject"),
            "{preset:?} {mode}: {}",
            r.stderr
        );
        assert!(!w.sb.path(&out).exists(), "{out} written after a rejection");
        assert_eq!(walk.outcome, Outcome::Rejected, "{:?}", walk.screens);
        let last = walk.screens.last().map(|s| speculos::join_screen(s));
        let want = if mode == "full" {
            "Reject message"
        } else {
            "Reject transaction"
        };
        assert_eq!(last.as_deref(), Some(want), "{:?}", walk.screens);
    }
}

#[test]
fn with_blind_signing_and_raw_messages_off_the_error_names_the_settings() {
    if !speculos::available("with_blind_signing_and_raw_messages_off_the_error_names_the_settings")
    {
        return;
    }
    let w = halt_world();
    let dev = shared(Preset::Defaults);
    let (r, walk) = sign_on(&w, &dev, "halt.json", "full", Decision::Approve, "off.json");
    assert_eq!(r.code, 4, "{}", all_output(&r));
    assert!(
        r.stderr.contains("Raw messages") && r.stderr.contains("Blind signing"),
        "{}",
        r.stderr
    );
    assert!(!w.sb.path("off.json").exists());
    assert_eq!(walk.outcome, Outcome::Refused);
    assert_eq!(walk.pages(), ["Blind signing must be enabled in settings"]);

    // Hashed mode needs blind signing.
    let (r, walk) = sign_on(
        &w,
        &dev,
        "halt.json",
        "hashed",
        Decision::Approve,
        "off2.json",
    );
    assert_eq!(r.code, 4, "{}", all_output(&r));
    assert!(r.stderr.contains("Blind signing"), "{}", r.stderr);
    assert!(!w.sb.path("off2.json").exists());
    assert_eq!(walk.outcome, Outcome::Refused);
}

// ------------------------------------------------------------------ 7. data around every chunk boundary

/// PROTOCOLS.md §2b's vector with `data` of `len` bytes (a MultiSend selector, then 0x03, +7 mod 256…).
fn vector(len: usize) -> SafeTyped {
    let mut data = vec![0x8d, 0x80, 0xff, 0x0a];
    let mut b: u8 = 0x03;
    while data.len() < len {
        data.push(b);
        b = b.wrapping_add(7);
    }
    data.truncate(len);
    SafeTyped {
        chain_id: 31337,
        safe: address!("E44e314721A62c3405D534086540F00f4E2fC0fd"),
        domain: SafeDomain::ChainId,
        tx: SafeTxFields::new(
            address!("9641d764fc13c8B624c04430C7356C1C7C8102e2"),
            U256::ZERO,
            Bytes::from(data),
            Operation::DelegateCall,
            U256::ZERO,
        ),
    }
}

#[test]
fn data_around_every_chunk_boundary_streams_and_signs_on_the_real_app() {
    if !speculos::available("data_around_every_chunk_boundary_streams_and_signs_on_the_real_app") {
        return;
    }
    let lens: Vec<usize> = [0, 1, 187, 188]
        .into_iter()
        .chain(249..=258)
        .chain(504..=513)
        .collect();
    // Where the device's `data` page matters (empty, one byte, the longest shown whole, cut after 187
    // bytes) the whole page is read; for the others the review skips the fields after the first page
    // ("press both to skip"), which still streams, hashes and signs everything.
    let read_data = [0, 1, 187, 188, 249, 513];
    let dev = shared(Preset::RawMessages);
    let t0 = Instant::now();
    let mut signer = LedgerSigner::new(
        Box::new(TcpTransport::connect(&dev.addr(), Duration::from_secs(60)).expect("connect")),
        ledger_live_path(0),
    );
    assert_eq!(signer.address().unwrap(), SIM0.parse::<Address>().unwrap());
    assert!(signer.full_eip712(), "1.22.0 has full EIP-712");
    for len in lens {
        let t = vector(len);
        let h = t.tx.hashes_in(t.domain, t.chain_id, t.safe);
        let skip_after = if read_data.contains(&len) {
            "data"
        } else {
            "Review struct EIP712Domain"
        };
        let review = dev.review_with(Decision::Approve, Some(skip_after));
        let (sig, mode) = signer
            .sign_safe_typed(&t, &h.domain_separator, &h.message_hash)
            .unwrap_or_else(|e| panic!("data of {len} bytes: {e}"));
        let walk = review.finish(Duration::from_secs(10));
        assert_eq!(mode, breakglass::bundle::SignMode::Eip712Full);
        assert_eq!(
            sig.recover_address_from_prehash(&h.safe_tx_hash).unwrap(),
            SIM0.parse::<Address>().unwrap(),
            "data of {len} bytes"
        );
        if read_data.contains(&len) {
            let want = format!("data {}", eip712::device_text(FieldType::Bytes, &t.tx.data));
            let pages = walk.pages();
            assert!(
                pages.contains(&want),
                "data of {len} bytes: {want:?} not in {pages:?}"
            );
            // The page breakglass previews for this length is the same text.
            let preview = eip712::device_pages(&t, settings(Preset::RawMessages)).unwrap();
            assert!(preview.contains(&want), "{preview:?}");
        }
    }
    eprintln!(
        "[figures] real app: 24 Safe transactions with data of 0–513 bytes streamed, reviewed and signed in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
