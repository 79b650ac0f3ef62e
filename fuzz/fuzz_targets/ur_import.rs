//! Arbitrary text as UR part lines (as `zbarcam --raw` prints them), fed to the collector in order, then
//! decoded as our payload or an ERC-4527 `eth-signature`, as `breakglass import --ur -` does; and arbitrary
//! bytes as a CBOR payload directly.
#![no_main]

use breakglass::transfer::erc4527::EthSignature;
use breakglass::transfer::payload;
use breakglass::transfer::ur::UrCollector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = payload::decode(bytes);
    let _ = EthSignature::from_cbor(bytes);
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut c = UrCollector::new();
    for line in text.lines().take(64) {
        if c.receive(line, "fuzz").is_err() {
            return;
        }
    }
    if c.is_complete() {
        if let Ok((_, cbor)) = c.finish() {
            let _ = payload::decode(&cbor);
            let _ = EthSignature::from_cbor(&cbor);
        }
    }
});
