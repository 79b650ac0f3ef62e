//! Arbitrary bytes as a bundle file: `Bundle::from_slice` (parse + recompute every hash and signer), and a
//! bundle that reads is verified against the demo manifest, as `breakglass verify BUNDLE` does.
#![no_main]

use breakglass::bundle::{verify_bundle, Bundle};
use breakglass::manifest::Manifest;
use breakglass::policy::render_text;
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

fuzz_target!(|bytes: &[u8]| {
    let Ok(b) = Bundle::from_slice("fuzz.json", bytes) else {
        return;
    };
    let _ = b.safe_hashes();
    if let Ok(v) = verify_bundle(&DEMO, &b) {
        let _ = render_text(v.report());
    }
});
