//! Arbitrary bytes as a manifest: `Manifest::from_bytes`. A manifest that loads is then used as far as
//! the offline core goes: every playbook is composed (Safe nonce 0, fixed EOA parameters), and each
//! composed bundle is serialized, read back and verified against the same manifest.
#![no_main]

use alloy::primitives::{Address, U256};
use breakglass::bundle::{verify_bundle, Bundle};
use breakglass::compose::{compose, ComposeOptions, EoaParams};
use breakglass::manifest::Manifest;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    let Ok(m) = Manifest::from_bytes(Path::new("fuzz.toml"), bytes) else {
        return;
    };
    let _ = m.hash_hex();
    let opts = ComposeOptions {
        safe_nonce: Some(U256::ZERO),
        eoa: Some(EoaParams {
            from: Address::repeat_byte(0x11),
            nonce: 0,
            gas_limit: 200_000,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
        }),
        created_at: 1_700_000_000,
        ..Default::default()
    };
    for pb in &m.playbooks {
        let Ok(c) = compose(&m, &pb.id, &opts) else {
            continue;
        };
        let Ok(json) = serde_json::to_vec(&c.bundle) else {
            continue;
        };
        if let Ok(b) = Bundle::from_slice("fuzz.json", &json) {
            let _ = verify_bundle(&m, &b);
        }
    }
});
