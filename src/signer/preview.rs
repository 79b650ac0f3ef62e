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
    preview(&req.kind, full, blind_signing, req.from)
}

/// The same for a bundle on screen (the console's Sign screen), before it is verified again for signing.
pub fn bundle_preview(b: &Bundle, full: bool, blind_signing: Option<bool>) -> DevicePreview {
    match RequestKind::of_bundle(b) {
        Some(kind) => preview(
            &kind,
            full,
            blind_signing,
            b.eoa_tx.as_ref().map(|e| e.from),
        ),
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

fn preview(
    kind: &RequestKind,
    full: bool,
    blind_signing: Option<bool>,
    from: Option<alloy::primitives::Address>,
) -> DevicePreview {
    match kind {
        RequestKind::Safe {
            domain,
            message,
            safe_tx_hash,
            typed,
        } => DevicePreview {
            full: Some(if full {
                pages(typed, blind_signing)
            } else {
                PagesPreview {
                    heading:
                        "The device will show (hashed EIP-712; needs blind signing), page by page:"
                            .to_string(),
                    pages: vec![
                        "Blind signing ahead".to_string(),
                        "Review typed message".to_string(),
                        format!("Domain hash {}", eip712::device_hash(domain)),
                        format!("Message hash {}", eip712::device_hash(message)),
                        "Sign message".to_string(),
                    ],
                    notes: Vec::new(),
                }
            }),
            hashes: Some(HashesPreview {
                heading: if full {
                    "The hashes:".to_string()
                } else {
                    "The same hashes, grouped for reading:".to_string()
                },
                domain: *domain,
                message: *message,
                safe_tx_hash: *safe_tx_hash,
            }),
            tx: None,
        },
        RequestKind::Tx { tx } => {
            // As the Ethereum app 1.22.0 shows an EIP-1559 transaction (firmware-notes/
            // ledger-eth-1.22.0-screens.md): no Amount page for 0, fees in ether with the chain's ticker
            // ("???" for a chain it does not know), the chain id, and the signing hash in lowercase.
            let fee = u128::from(tx.gas_limit).saturating_mul(tx.max_fee_per_gas);
            let ticker = if tx.chain_id == 1 { "ETH" } else { "???" };
            let ether = |wei: u128| {
                crate::manifest::format_eth(wei)
                    .trim_end_matches(" ETH")
                    .to_string()
            };
            let mut pages = Vec::new();
            if !tx.input.is_empty() {
                pages.push("Blind signing ahead".to_string());
            }
            pages.push("Review transaction".to_string());
            if let Some(from) = from {
                pages.push(format!("From {}", from.to_checksum(None)));
            }
            pages.push(format!(
                "To {}",
                alloy::primitives::TxKind::to(&tx.to)
                    .map(|t| t.to_checksum(None))
                    .unwrap_or_default()
            ));
            if !tx.value.is_zero() {
                let v = u128::try_from(tx.value).unwrap_or(u128::MAX);
                pages.push(format!("Amount {} {ticker}", ether(v)));
            }
            pages.push(format!("Max fees {} {ticker}", ether(fee)));
            pages.push(format!("Network {}", tx.chain_id));
            {
                use alloy::consensus::SignableTransaction;
                pages.push(format!("Tx hash {:#x}", tx.signature_hash()));
            }
            pages.push(if tx.input.is_empty() {
                "Sign transaction".to_string()
            } else {
                "Accept risk and sign transaction".to_string()
            });
            DevicePreview {
                full: Some(PagesPreview {
                    heading: "The device will show, page by page:".to_string(),
                    pages,
                    notes: vec![format!(
                        "  (max fees = gas limit {} × max fee {} wei = {} wei)",
                        tx.gas_limit, tx.max_fee_per_gas, fee
                    )],
                }),
                hashes: None,
                tx: None,
            }
        }
    }
}

/// What a Ledger's Ethereum app settings give a guardian reviewing a Safe transaction, in words, for the
/// version and "Blind signing" setting the app reports (GET_APP_CONFIGURATION reports nothing else of its
/// settings: "Raw messages" and "Transaction hash" are the person's to check in the app).
pub fn settings_report(version: (u8, u8, u8), blind_signing: bool) -> Vec<String> {
    let full = version >= (1, 9, 0);
    let mut out = vec![
        format!(
            "  full EIP-712:  {}",
            if full {
                "yes (1.9 or later): breakglass streams the Safe transaction and the device shows it"
            } else {
                "NO (this app is older than 1.9): the device can show only two hashes; update the Ethereum app in Ledger Live"
            }
        ),
        format!(
            "  blind signing: {}",
            if blind_signing { "ON" } else { "OFF" }
        ),
        "  raw messages, transaction hash: not reported by the app; see Ethereum app → Settings on the device".to_string(),
        String::new(),
        "Which settings give which review of a Safe transaction:".to_string(),
        "  Raw messages ON           every SafeTx field on the device, one page each: to, value, data, operation,".to_string(),
        "                            the gas fields, gasToken, refundReceiver, nonce (the review breakglass recommends)".to_string(),
        "  Blind signing ON only     the Safe's chainId and address, then the message hash".to_string(),
        "  Transaction hash ON       adds the domain hash and message hash pages at the end".to_string(),
        "  Both OFF                  the app refuses Safe transactions (0x6a80)".to_string(),
        "  hashed mode (--eip712 hashed, apps before 1.9) needs blind signing and shows the two hashes only".to_string(),
        "  a transaction with calldata (a guardian's own pause) needs blind signing".to_string(),
        String::new(),
    ];
    out.push(if !full {
        "With this device: only hashed mode, and only with blind signing on.".to_string()
    } else if blind_signing {
        "With this device: Safe transactions sign; turn \"Raw messages\" on to see every field, not only the hash.".to_string()
    } else {
        "With this device: Safe transactions sign only if \"Raw messages\" is on (then every field is shown); calls with calldata need blind signing.".to_string()
    });
    out
}
