// WIRING (for the lead, who owns these files; this module needs exactly these lines):
//
// Cargo.toml, [dependencies]:
//     ur = "0.5"
//     minicbor = { version = "2", default-features = false, features = ["alloc"] }
//     qrcode = { version = "0.14", default-features = false }
//     rxing = { version = "0.9.3", default-features = false, features = ["qrcode", "decoders", "encoding_rs"] }
//     image = { version = "0.25", default-features = false, features = ["png", "jpeg"] }
//   (`minicbor` 2 is the one `ur` 0.5 already builds; `qrcode` and `rxing` need no `image` feature
//   of their own: pixels go through `image` 0.25 here, so there is one `image` in the build.)
//
// src/lib.rs:
//     pub mod transfer;
//
// src/cli/mod.rs:
//     mod transfer;                                   // beside `pub(crate) mod sign;`
//   in `enum Command`:
//     /// Merge the signatures of bundles for the same request into one (sorted by owner, as Safe
//     /// requires). Exit 3 when the bundles are not for the same request.
//     Combine(transfer::CombineArgs),
//     /// Show a bundle (or just its signatures) as UR strings, PNG QR codes or an animated terminal QR;
//     /// or as an ERC-4527 `eth-sign-request` for QR signers (Keystone, AirGap Vault).
//     Export(transfer::ExportArgs),
//     /// Read a bundle, its signatures or an ERC-4527 `eth-signature` from QR images or UR lines,
//     /// check it and write the bundle.
//     Import(transfer::ImportArgs),
//   in `run`:
//     Command::Combine(a) => transfer::run_combine(&ctx, a),
//     Command::Export(a) => transfer::run_export(&ctx, a),
//     Command::Import(a) => transfer::run_import(&ctx, a),
//
// tests/tests.rs (before `mod verify_calls;`: rustfmt keeps the mods sorted):
//     /// Moving bundles between machines: combine, UR/QR export and import, ERC-4527 with Keystone's library.
//     mod transfer;
//
// scripts/npm/package.json, "dependencies" (exact pins; tests/js/erc4527.js needs them and the
// Rust test skips that part while they are absent):
//     "@keystonehq/bc-ur-registry-eth": "0.22.1",
//     "@ngraveio/bc-ur": "1.1.13"
//   (`ethers` 5.4.0, which the same script uses as an independent EIP-712 implementation and signer,
//   is already installed there as the peer dependency of @safe-global/safe-contracts.)

//! Moving bundles between machines that share no network: files (combine), QR codes (our own UR type
//! `breakglass-bundle`), and ERC-4527 (`eth-sign-request` / `eth-signature`) so that QR signers made by
//! others — Keystone, AirGap Vault — can take part.
//!
//! Everything here is pure: bytes and values in, bytes and values out. The terminal animation, files
//! and stdin live in `cli/transfer.rs`.
//!
//! # Formats
//!
//! - [`ur`]: BC-UR (BlockchainCommons bcr-2020-005): `ur:<type>/<bytewords>` when the payload fits one
//!   fragment, else fountain-coded parts `ur:<type>/<seq>-<count>/<bytewords>`: parts 1..=count are the
//!   fragments themselves, later parts XOR several, so any ~count-sized subset usually decodes. Each part
//!   carries a CRC32 (bytewords) and the whole message another (fountain header), so a damaged part is
//!   refused and two exports' parts never blend.
//! - [`payload`]: the `breakglass-bundle` UR carries a CBOR byte string holding JSON: the compact bundle
//!   (`"format": "breakglass/bundle@1"`), or only its signatures (`"format":
//!   "breakglass/signatures@1"`, with the safeTxHash or EOA signing hash they belong to) for the short
//!   return trip.
//! - [`erc4527`]: `eth-sign-request` / `eth-signature` CBOR maps as in EIP-4527 and Keystone's
//!   `ur-registry-eth`, byte for byte.
//! - [`qr`]: QR codes of the upper-cased part strings (alphanumeric mode), error correction M, one QR
//!   version for all frames of an export; rendered as Unicode half-blocks or PNG; decoded with `rxing`.
//!
//! # Sizes (see [`ur::MAX_FRAGMENT_LEN`])
//!
//! A fragment is at most 210 bytes, so a part is at most ~480 alphanumeric characters: a version-13 QR
//! (69×69 modules) at error-correction level M, which with its quiet zone takes 77 columns × 39 lines
//! of a terminal (two modules a character cell) or 308×308 pixels as PNG (4 px a module). Measured:
//!
//! | what | bytes | frames |
//! | --- | --- | --- |
//! | one signature, `--signatures-only` | ~410 | 2 |
//! | an ERC-4527 `eth-signature` (from a QR signer) | 99 | 1 |
//! | a Safe request, 2-call MultiSend batch, unsigned | ~1.4 K | 7 |
//! | the same as ERC-4527 `eth-sign-request` (typed data JSON) | ~1.5 K | 8 |
//! | the same with 2 signatures | ~2.05 K | 10 |
//!
//! The fragments come first; `--qr` then keeps going with fountain parts, so a missed frame is made up
//! by any later one instead of waiting for it to come round again.

pub mod combine;
pub mod erc4527;
pub mod payload;
pub mod qr;
pub mod ur;

use crate::bundle::BundleError;
use alloy::primitives::{Address, B256};

/// Why a transfer step refused its input.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A line or QR code that is not a UR string.
    #[error("{what} is not a UR string (ur:TYPE/…): {text:?}")]
    NotUr {
        /// Where it came from (e.g. "line 3").
        what: String,
        /// The beginning of the text.
        text: String,
    },
    /// A part whose checksum or structure is wrong.
    #[error("{what} is corrupted ({reason}): scan or copy it again")]
    Corrupted {
        /// Which part.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Parts of two UR types mixed.
    #[error("parts of two different kinds are mixed: {first} and {other} ({what})")]
    MixedTypes {
        /// Type of the first part.
        first: String,
        /// Type of the offending part.
        other: String,
        /// Which part.
        what: String,
    },
    /// Parts of two different messages mixed.
    #[error("{what} belongs to another message than the parts before it ({detail}): parts of two exports are mixed; import each export on its own")]
    MixedMessages {
        /// Which part.
        what: String,
        /// How they differ.
        detail: String,
    },
    /// Not enough parts to rebuild the message.
    #[error("incomplete {ur_type}: {resolved} of {count} fragments recovered from {received} distinct part(s); {}", missing_text(missing, *count))]
    Incomplete {
        /// UR type.
        ur_type: String,
        /// Fragments in the message.
        count: usize,
        /// Fragments recovered so far.
        resolved: usize,
        /// Distinct parts received.
        received: usize,
        /// Which of the parts 1..=count (the plain fragments) were never seen.
        missing: Vec<usize>,
    },
    /// Nothing to read.
    #[error("no UR parts were given: {0}")]
    Empty(String),
    /// A UR of a type this command does not take.
    #[error("this UR is of type {found}: {expected}")]
    WrongType {
        /// Type found.
        found: String,
        /// What was expected, said for a person.
        expected: String,
    },
    /// Malformed CBOR or JSON inside a complete message.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// Parser message.
        reason: String,
    },
    /// The bundle inside is refused by the recomputation checks.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Two bundles are not for the same request.
    #[error(
        "not the same request: `{field}` differs ({left} in {left_file}, {right} in {right_file})"
    )]
    NotSameRequest {
        /// The first differing field, as a JSON path into the bundle.
        field: String,
        /// Value in the first bundle.
        left: String,
        /// Value in the other bundle.
        right: String,
        /// The first bundle.
        left_file: String,
        /// The other bundle.
        right_file: String,
    },
    /// Signatures or an answer for another request.
    #[error("{what} is for {found:#x}, but the bundle's {field} is {expected:#x}: it answers another request")]
    WrongRequest {
        /// What was imported.
        what: &'static str,
        /// Which hash of the bundle.
        field: &'static str,
        /// The bundle's.
        expected: B256,
        /// The imported one's.
        found: B256,
    },
    /// An ERC-4527 answer for another request id.
    #[error("the eth-signature answers request {found}, but this bundle's request id is {expected}: it answers another request")]
    WrongRequestId {
        /// The bundle's request id.
        expected: String,
        /// The signature's.
        found: String,
    },
    /// A signature that does not recover to someone allowed to sign.
    #[error("the signature {reason}")]
    BadSignature {
        /// Why.
        reason: String,
    },
    /// Verification refused the request: it is never sent to a signer.
    #[error("{0}")]
    Refused(String),
    /// The bundle is past the step the command is for.
    #[error("{0}")]
    WrongStep(String),
    /// A signer address that may not sign this request.
    #[error("{address} {reason}")]
    WrongSigner {
        /// The address.
        address: Address,
        /// Why not.
        reason: String,
    },
    /// An image that cannot be read or holds no QR code.
    #[error("{path}: {reason}")]
    Image {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Encoding failed (a payload too large for any QR version, an empty payload).
    #[error("cannot encode: {0}")]
    Encode(String),
}

fn missing_text(missing: &[usize], count: usize) -> String {
    if missing.is_empty() {
        return format!(
            "every part 1–{count} was seen but some were mixed parts: show a few more frames"
        );
    }
    let list: Vec<String> = missing.iter().take(20).map(|n| n.to_string()).collect();
    format!(
        "parts never seen among 1–{count}: {}{}; scan or paste more parts (any part numbered above {count} helps too)",
        list.join(", "),
        if missing.len() > 20 { ", …" } else { "" }
    )
}
