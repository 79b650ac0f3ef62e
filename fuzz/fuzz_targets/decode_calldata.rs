//! Arbitrary bytes as calldata: `decode::decode_call` (with and without the demo manifest), then the same
//! bytes as the `data` of a Safe tx through `policy::verify_safe_tx`, and as a plain tx through
//! `policy::verify_plain`; every report is also rendered as text and JSON, as the CLI would.
//!
//! Input layout: byte 0 picks the target (bits 0-2), the Safe operation (bit 3) and a non-zero value
//! (bit 4); the rest is the calldata.
#![no_main]

use alloy::primitives::{address, Address, Bytes, U256};
use breakglass::decode::decode_call;
use breakglass::manifest::Manifest;
use breakglass::policy::{render_text, verify_plain, verify_safe_tx, Report};
use breakglass::safe::{Operation, SafeTxFields};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;

static DEMO: LazyLock<Manifest> = LazyLock::new(|| {
    match Manifest::from_bytes(
        Path::new("examples/demo.toml"),
        include_bytes!("../../examples/demo.toml"),
    ) {
        Ok(m) => m,
        Err(e) => panic!("examples/demo.toml does not load: {e}"),
    }
});

/// The addresses the demo manifest gives meaning to, plus two it does not know.
const TARGETS: [Address; 8] = [
    address!("b001000000000000000000000000000000000001"), // pool (transparent proxy)
    address!("1A1b000000000000000000000000000000000002"), // vault (UUPS)
    address!("5AFe00000000000000000000000000000000a11C"), // the Safe
    address!("7100000000000000000000000000000000000001"), // the timelock
    address!("9641d764fc13c8B624c04430C7356C1C7C8102e2"), // MultiSendCallOnly 1.4.1
    address!("AD00000000000000000000000000000000000001"), // pool's ProxyAdmin
    address!("0000000000000000000000000000000000000000"),
    address!("dEaD00000000000000000000000000000000bEEF"),
];

fn exercise(r: &Report) {
    let _ = render_text(r);
    let _ = serde_json::to_string(r);
    let _ = r.safe_hashes();
    let _ = r.criticals().count();
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    let m: &Manifest = &DEMO;
    let to = TARGETS[usize::from(mode & 7)];
    let operation = if mode & 8 == 0 {
        Operation::Call
    } else {
        Operation::DelegateCall
    };
    let value = if mode & 16 == 0 {
        U256::ZERO
    } else {
        U256::from(1u8)
    };

    if let Ok(tree) = decode_call(Some(m), to, value, data) {
        let _ = tree.walk().len();
    }
    let _ = decode_call(None, to, value, data);

    let safe = m.safe.as_ref().map(|s| s.address).unwrap_or_default();
    let tx = SafeTxFields::new(
        to,
        value,
        Bytes::copy_from_slice(data),
        operation,
        U256::ZERO,
    );
    if let Ok(r) = verify_safe_tx(m, m.chain_id, safe, &tx) {
        exercise(&r);
    }
    if let Ok(r) = verify_plain(m, m.chain_id, None, to, value, data) {
        exercise(&r);
    }
});
