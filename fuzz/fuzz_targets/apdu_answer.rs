//! Arbitrary device answers through every APDU answer parser, and arbitrary APDUs into the simulated
//! Ethereum app (a chunked SIGN over several commands included), as a hostile or broken device would
//! send them. Nothing may panic; the parsers either return a value or a typed error.
#![no_main]

use breakglass::signer::ledger::apdu;
use breakglass::signer::ledger::sim::{SimApp, SimConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = apdu::check_status(bytes, "fuzz");
    let _ = apdu::parse_public_key(bytes);
    let _ = apdu::parse_signature(bytes);
    let _ = apdu::parse_app_configuration(bytes);
    let _ = apdu::parse_app_and_version(bytes);
    let _ = std::str::from_utf8(bytes).map(apdu::HdPath::parse);
    // The same bytes as a stream of APDUs (each prefixed by its length byte) into one simulator session.
    let mut app = SimApp::new(SimConfig::default());
    let mut rest = bytes;
    for _ in 0..8 {
        let Some((&n, tail)) = rest.split_first() else { break };
        let n = (n as usize).min(tail.len());
        let _ = app.handle(&tail[..n]);
        rest = &tail[n..];
    }
});
