//! Issue 16 (first part): full EIP-712 signing of Safe transactions. The streamed APDUs reproduce the
//! vector observed on Ledger's real Ethereum app 1.22.0 (PROTOCOLS.md §2b: digest and signature), the
//! simulator follows the app's rules (definitions first, the domain before the message, exact lengths,
//! 6a80 when neither blind signing nor raw messages is on) and shows the pages breakglass previews,
//! every `data` length around the chunk boundaries signs and recovers, and through the binary the
//! bundle records which mode signed.

use crate::support::sim::InProcessSim;
use crate::support::world::{all_output, ok, Pins, World, SIM0};
use alloy::primitives::{address, b256, Address, Bytes, U256};
use breakglass::safe::{Operation, SafeDomain, SafeTxFields};
use breakglass::signer::ledger::apdu::ledger_live_path;
use breakglass::signer::ledger::eip712::{self, DeviceSettings, SafeTyped};
use breakglass::signer::ledger::sim::{SimApp, SimConfig};
use breakglass::signer::Signer;
use serde_json::json;

/// PROTOCOLS.md §2b's vector: a MultiSendCallOnly batch on chain 31337.
fn vector(data_len: usize) -> SafeTyped {
    let mut data = vec![0x8d, 0x80, 0xff, 0x0a];
    let mut b: u8 = 0x03;
    while data.len() < data_len {
        data.push(b);
        b = b.wrapping_add(7);
    }
    data.truncate(data_len);
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

fn run(app: &mut SimApp, apdus: &[Vec<u8>]) -> Vec<Vec<u8>> {
    apdus.iter().map(|a| app.handle(a)).collect()
}

#[test]
fn the_streamed_apdus_reproduce_the_real_apps_vector() {
    let t = vector(204);
    let h = t.tx.hashes_in(t.domain, t.chain_id, t.safe);
    assert_eq!(
        h.domain_separator,
        b256!("f8d0c19c887a4f76355e89c6d930eabb214d76dd845ce470524b42f83ea14792")
    );
    assert_eq!(
        h.message_hash,
        b256!("69672b883906b21a9b54aad1cda995c5af95049e4cb21f25314022b340fa35ed")
    );
    assert_eq!(
        h.safe_tx_hash,
        b256!("33a00b93f89ca6e1361ea8b65965705d260d38b37e5628e62ac4fff3108ff71c")
    );
    let apdus = eip712::full_apdus(&ledger_live_path(0), &t);
    // As observed: 28 APDUs of definitions and values, then the sign APDU; 644 bytes with the sign
    // APDU (618 + 26: PROTOCOLS.md's "28 APDUs (644 bytes) plus the sign APDU" counts its bytes).
    let (stream, sign) = apdus.split_at(apdus.len() - 1);
    assert_eq!(stream.len(), 28);
    assert_eq!(apdus.iter().map(Vec::len).sum::<usize>(), 644);
    assert_eq!(
        alloy::hex::encode(&stream[0]),
        "e01a00000c454950373132446f6d61696e"
    );
    assert!(stream
        .iter()
        .any(|a| alloy::hex::encode(a) == "e01a00ff0a422007636861696e4964"));
    assert!(stream
        .iter()
        .any(|a| alloy::hex::encode(a) == "e01a00ff040302746f"));
    assert!(stream
        .iter()
        .any(|a| alloy::hex::encode(a) == "e01c00ff0400027a69"));
    assert_eq!(&sign[0][..4], &[0xe0, 0x0c, 0x00, 0x01]);

    let mut app = SimApp::new(SimConfig::default());
    let answers = run(&mut app, &apdus);
    for a in &answers[..answers.len() - 1] {
        assert_eq!(a, &[0x90, 0x00]);
    }
    let sig = answers.last().unwrap();
    assert_eq!(sig.len(), 67);
    // The app answers v ‖ r ‖ s; the vector is written r ‖ s ‖ v.
    let mut rsv = sig[1..65].to_vec();
    rsv.push(sig[0]);
    assert_eq!(
        alloy::hex::encode(rsv),
        "ec88f0dbfe78302862aea85181cf25cb62d7652e861693e485532405c863fb187ed4862297c9bb20291a1fa858207c817bdd4b3bc026992aa294a5d12f2586081b"
    );
}

#[test]
fn the_simulator_keeps_the_apps_rules_and_shows_what_breakglass_previews() {
    let t = vector(204);
    let apdus = eip712::full_apdus(&ledger_live_path(0), &t);
    // Blind signing and raw messages off: refused at the first domain value, as the real app does.
    let mut app = SimApp::new(SimConfig {
        blind_signing: false,
        ..Default::default()
    });
    let answers = run(&mut app, &apdus);
    let first_value = apdus
        .iter()
        .position(|a| a[1] == 0x1c && a[3] == 0xff)
        .unwrap();
    assert_eq!(answers[first_value], [0x6a, 0x80]);

    // A definition after a value, a message before the domain, a wrong length: 6a80.
    let mut app = SimApp::new(SimConfig::default());
    let mut late = apdus.clone();
    late.insert(first_value + 1, late[0].clone());
    assert_eq!(run(&mut app, &late)[first_value + 1], [0x6a, 0x80]);
    let mut app = SimApp::new(SimConfig::default());
    let safe_root = apdus
        .iter()
        .position(|a| a[1] == 0x1c && a[3] == 0x00 && a[5..] == *b"SafeTx")
        .unwrap();
    let mut swapped: Vec<Vec<u8>> = apdus[..first_value - 1].to_vec();
    swapped.push(apdus[safe_root].clone());
    assert_eq!(run(&mut app, &swapped).last().unwrap(), &[0x6a, 0x80]);
    let mut app = SimApp::new(SimConfig::default());
    let mut short = apdus.clone();
    let chain_value = &mut short[first_value];
    chain_value[6] = 3; // declared length 3, two bytes sent
    assert_eq!(run(&mut app, &short)[first_value], [0x6a, 0x80]);

    // Raw messages on (blind signing off): every field, in the device's formatting; the preview is the same.
    for settings in [
        DeviceSettings {
            blind_signing: false,
            raw_messages: true,
            transaction_hash: false,
        },
        DeviceSettings {
            blind_signing: true,
            raw_messages: false,
            transaction_hash: false,
        },
    ] {
        let mut app = SimApp::new(SimConfig {
            blind_signing: settings.blind_signing,
            raw_messages: settings.raw_messages,
            ..Default::default()
        });
        let answers = run(&mut app, &apdus);
        assert_eq!(answers.last().unwrap().len(), 67, "{settings:?} signs");
        let preview: Vec<String> = eip712::device_pages(&t, settings)
            .unwrap()
            .into_iter()
            .map(|p| p.split("   (breakglass:").next().unwrap().to_string())
            .collect();
        assert_eq!(app.last_pages, preview, "{settings:?}");
        if settings.raw_messages {
            for want in [
                "Review struct SafeTx",
                "to 0x9641d764fc13c8B624c04430C7356C1C7C8102e2",
                "operation 1",
                "nonce 0",
                "gasToken 0x0000000000000000000000000000000000000000",
                "verifyingContract 0xE44e314721A62c3405D534086540F00f4E2fC0fd",
            ] {
                assert!(
                    app.last_pages.iter().any(|p| p == want),
                    "{want}: {:?}",
                    app.last_pages
                );
            }
            let data = app
                .last_pages
                .iter()
                .find(|p| p.starts_with("data "))
                .unwrap();
            // 204 bytes: longer than 188, so the first 187 and `...`.
            assert_eq!(
                data,
                &format!("data 0x{}...", alloy::hex::encode_upper(&t.tx.data[..187]))
            );
        } else {
            assert!(app.last_pages.contains(
                &"Message hash 0x69672B883906B21A9B54AAD1CDA995C5AF95049E4CB21F25314022B340FA35ED"
                    .to_string()
            ));
        }
    }
    // The device cuts `data` after 187 bytes when it is longer than 188.
    let long = vector(300);
    let pages = eip712::device_pages(
        &long,
        DeviceSettings {
            blind_signing: false,
            raw_messages: true,
            transaction_hash: false,
        },
    )
    .unwrap();
    let data = pages.iter().find(|p| p.starts_with("data ")).unwrap();
    assert_eq!(
        data,
        &format!(
            "data 0x{}...",
            alloy::hex::encode_upper(&long.tx.data[..187])
        )
    );
}

#[test]
fn data_around_every_chunk_boundary_streams_and_signs() {
    let sim = InProcessSim::start(SimConfig::default());
    let mut signer = sim.signer(0);
    assert_eq!(signer.address().unwrap(), SIM0.parse::<Address>().unwrap());
    assert!(signer.full_eip712(), "the app reports 1.22.0");
    let lens: Vec<usize> = [0, 1, 187, 188]
        .into_iter()
        .chain(249..=258)
        .chain(504..=513)
        .collect();
    for len in lens {
        let mut t = vector(len.max(4));
        t.tx.data = t.tx.data.slice(..len);
        let h = t.tx.hashes_in(t.domain, t.chain_id, t.safe);
        let (sig, mode) = signer
            .sign_safe_typed(&t, &h.domain_separator, &h.message_hash)
            .unwrap_or_else(|e| panic!("data of {len} bytes: {e}"));
        assert_eq!(mode, breakglass::bundle::SignMode::Eip712Full);
        assert_eq!(
            sig.recover_address_from_prehash(&h.safe_tx_hash).unwrap(),
            SIM0.parse::<Address>().unwrap(),
            "data of {len} bytes"
        );
    }
    // Blind signing and raw messages off: the person is told which setting to turn on.
    let off = InProcessSim::start(SimConfig {
        blind_signing: false,
        ..Default::default()
    });
    let mut s = off.signer(0);
    let t = vector(204);
    let h = t.tx.hashes_in(t.domain, t.chain_id, t.safe);
    let e = s
        .sign_safe_typed(&t, &h.domain_separator, &h.message_hash)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Raw messages") && e.contains("Blind signing"),
        "{e}"
    );
}

#[test]
fn the_bundle_records_how_each_owner_signed_and_the_safe_accepts_it() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    ok(
        &w.bg("m.toml", true, &["compose", "halt", "-o", "halt.json"]),
        "compose",
    );
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            "halt.json",
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "s1.json",
        ],
    );
    ok(&r, "sign on the simulator");
    assert!(r.stdout.contains("full EIP-712"), "{}", all_output(&r));
    assert!(r.stdout.contains("| Review struct SafeTx"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("| operation 1   (breakglass: = DELEGATECALL)"),
        "{}",
        r.stdout
    );
    let r = w.bg(
        "m.toml",
        false,
        &[
            "sign",
            "s1.json",
            "--keystore",
            "keystores/owner3",
            "--password-file",
            "password.txt",
            "-o",
            "s2.json",
        ],
    );
    ok(&r, "sign with the keystore");
    let b = w.bundle("s2.json");
    let mode_of = |who: &str| {
        b["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["signer"].as_str().unwrap().eq_ignore_ascii_case(who))
            .map(|s| s["mode"].clone())
            .unwrap()
    };
    assert_eq!(mode_of(SIM0), json!("eip712-full"));
    assert_eq!(mode_of(&w.owner3), json!("digest"));
    let r = w.execute_keystore("m.toml", "s2.json", "done.json");
    ok(&r, "the real Safe accepts the full-mode signature");
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
}
