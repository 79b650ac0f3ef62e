//! What the device will show, said before it is asked, so a guardian compares screen to screen. One
//! text for every front end: the CLI prints [`DevicePreview::lines`], the console lays the same parts out
//! on its Sign screen.

use super::ledger::eip712::{self, DeviceSettings};
use super::{RequestKind, SigningRequest};
use crate::bundle::Bundle;
use crate::policy::render::grouped_hex;
use alloy::primitives::B256;

/// The preview of one signing request on one signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePreview {
    /// Full EIP-712: the pages the device shows.
    pub full: Option<PagesPreview>,
    /// A Safe transaction's hashes (what hashed mode shows; what the "Transaction hash" setting adds).
    pub hashes: Option<HashesPreview>,
    /// An EOA transaction: what the device shows of it.
    pub tx: Option<String>,
}

/// Full-mode pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagesPreview {
    /// e.g. "The device will show (full EIP-712, …), page by page:".
    pub heading: String,
    /// One entry per page, in the device's formatting (our own glosses marked "breakglass:").
    pub pages: Vec<String>,
    /// What differs under other settings, and where `data` is cut.
    pub notes: Vec<String>,
}

/// A Safe transaction's hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashesPreview {
    /// "The device will show (hashed EIP-712, blind signing):" or "The hashes:".
    pub heading: String,
    /// Domain separator.
    pub domain: B256,
    /// SafeTx struct hash.
    pub message: B256,
    /// safeTxHash (what Safe{Wallet} shows).
    pub safe_tx_hash: B256,
}

/// The closing line of every preview.
pub const COMPARE: &str =
    "Compare every character on the device with the lines above before you approve.";

impl DevicePreview {
    /// As lines of text.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = &self.full {
            out.push(f.heading.clone());
            out.extend(f.pages.iter().map(|p| format!("  | {p}")));
            out.extend(f.notes.iter().cloned());
        }
        if let Some(h) = &self.hashes {
            out.push(h.heading.clone());
            out.push(format!("  Domain hash   {}", grouped_hex(&h.domain)));
            out.push(format!("  Message hash  {}", grouped_hex(&h.message)));
            out.push(format!(
                "  (safeTxHash   {}: what Safe{{Wallet}} shows)",
                grouped_hex(&h.safe_tx_hash)
            ));
        }
        out.extend(self.tx.iter().cloned());
        out.push(COMPARE.to_string());
        out
    }
}

/// The preview for `req` on a signer that does (`full`) or does not stream typed data, with the "Blind
/// signing" setting its app reported (`None`: unknown, or not a device).
pub fn device_preview(
    req: &SigningRequest,
    full: bool,
    blind_signing: Option<bool>,
) -> DevicePreview {
    preview(&req.kind, full, blind_signing)
}

/// The same for a bundle on screen (the console's Sign screen), before it is verified again for signing.
pub fn bundle_preview(b: &Bundle, full: bool, blind_signing: Option<bool>) -> DevicePreview {
    match RequestKind::of_bundle(b) {
        Some(kind) => preview(&kind, full, blind_signing),
        None => DevicePreview {
            full: None,
            hashes: None,
            tx: Some("The bundle holds no transaction to sign.".to_string()),
        },
    }
}

fn pages(t: &eip712::SafeTyped, blind_signing: Option<bool>) -> PagesPreview {
    let raw = DeviceSettings {
        blind_signing: blind_signing.unwrap_or(false),
        raw_messages: true,
        transaction_hash: false,
    };
    let heading = if blind_signing == Some(false) {
        "The device will show (full EIP-712; blind signing is off, so the Ethereum app's \"Raw messages\" setting must be on or it refuses), page by page:"
    } else {
        "The device will show (full EIP-712, with the Ethereum app's \"Raw messages\" setting on), page by page:"
    };
    let mut notes = Vec::new();
    if t.tx.data.len() > eip712::DEVICE_DATA_BYTES + 1 {
        notes.push(format!(
            "  `data` is {} bytes: the device shows the first {} and \"...\" (the whole is hashed and signed); the decode above is the rest.",
            t.tx.data.len(),
            eip712::DEVICE_DATA_BYTES
        ));
    }
    if blind_signing != Some(false) {
        let blind = DeviceSettings {
            blind_signing: true,
            raw_messages: false,
            transaction_hash: false,
        };
        let short: Vec<String> = eip712::device_pages(t, blind)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p != "Review typed message" && p != "Sign message")
            .collect();
        notes.push(format!(
            "With \"Raw messages\" off it shows only: {}.",
            short.join(" | ")
        ));
    }
    notes.push("With \"Transaction hash\" on, Domain hash and Message hash pages (below) come before \"Sign message\".".to_string());
    PagesPreview {
        heading: heading.to_string(),
        pages: eip712::device_pages(t, raw).unwrap_or_default(),
        notes,
    }
}

fn preview(kind: &RequestKind, full: bool, blind_signing: Option<bool>) -> DevicePreview {
    match kind {
        RequestKind::Safe {
            domain,
            message,
            safe_tx_hash,
            typed,
        } => DevicePreview {
            full: full.then(|| pages(typed, blind_signing)),
            hashes: Some(HashesPreview {
                heading: if full {
                    "The hashes:".to_string()
                } else {
                    "The device will show (hashed EIP-712, blind signing):".to_string()
                },
                domain: *domain,
                message: *message,
                safe_tx_hash: *safe_tx_hash,
            }),
            tx: None,
        },
        RequestKind::Tx { tx } => {
            let fee = u128::from(tx.gas_limit).saturating_mul(tx.max_fee_per_gas);
            DevicePreview {
                full: None,
                hashes: None,
                tx: Some(format!(
                    "The device will show: to {}, amount {} wei, max fees {} wei ({}){}",
                    alloy::primitives::TxKind::to(&tx.to)
                        .map(|t| t.to_checksum(None))
                        .unwrap_or_default(),
                    tx.value,
                    fee,
                    crate::manifest::format_eth(fee),
                    if tx.input.is_empty() {
                        ""
                    } else {
                        ", and \"Blind signing ahead\" (calldata)"
                    }
                )),
            }
        }
    }
}
