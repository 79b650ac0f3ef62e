//! The payload of our UR type `breakglass-bundle`: a CBOR byte string holding compact JSON, either a
//! whole bundle (`"format": "breakglass/bundle@1"`) or only its signatures
//! (`"format": "breakglass/signatures@1"`) with the hash they sign, to keep the return trip from an
//! offline signer to one or two QR frames.
//!
//! JSON rather than a CBOR schema: the bundle is already JSON and every reader already recomputes it;
//! one format to audit is better than two. The CBOR byte string around it is what makes it a UR.

use super::TransferError;
use crate::bundle::{self, Bundle, SignatureEntry};
use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

/// Our UR type.
pub const UR_TYPE: &str = "breakglass-bundle";

/// The format tag of a signatures-only payload.
pub const SIGNATURES_FORMAT: &str = "breakglass/signatures@1";

/// The longest `device` description a signatures-only payload carries (longer ones are cut, ending in
/// "..."): the description is informational, and with it one signature stays within two QR frames.
pub const MAX_DEVICE_LEN: usize = 24;

fn short_device(d: &str) -> String {
    if d.chars().count() <= MAX_DEVICE_LEN {
        d.to_string()
    } else {
        format!(
            "{}...",
            d.chars().take(MAX_DEVICE_LEN - 3).collect::<String>()
        )
    }
}

/// Only the signatures of a bundle, and the hash they sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignaturesOnly {
    /// Always [`SIGNATURES_FORMAT`].
    pub format: String,
    /// For a Safe tx: its safeTxHash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_tx_hash: Option<B256>,
    /// For an EOA tx: its signing hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_hash: Option<B256>,
    /// The signatures.
    pub signatures: Vec<SignatureEntry>,
}

impl SignaturesOnly {
    /// The signatures of a bundle.
    pub fn of(b: &Bundle) -> Result<Self, TransferError> {
        if b.signatures.is_empty() {
            return Err(TransferError::WrongStep(
                "the bundle has no signature yet: sign it first, or export the whole bundle".into(),
            ));
        }
        Ok(Self {
            format: SIGNATURES_FORMAT.into(),
            safe_tx_hash: b.safe_tx.as_ref().map(|s| s.hashes.safe_tx_hash),
            signing_hash: b.eoa_tx.as_ref().map(|e| e.signing_hash),
            signatures: b
                .signatures
                .iter()
                .map(|s| SignatureEntry {
                    device: s.device.as_deref().map(short_device),
                    ..s.clone()
                })
                .collect(),
        })
    }

    /// Checks that these signatures are for `b`'s request.
    pub fn check_for(&self, b: &Bundle) -> Result<(), TransferError> {
        match (&b.safe_tx, &b.eoa_tx) {
            (Some(s), _) => {
                let found = self.safe_tx_hash.ok_or_else(|| TransferError::Malformed {
                    what: "signatures",
                    reason: "they are for an EOA transaction, the bundle holds a Safe tx".into(),
                })?;
                if found != s.hashes.safe_tx_hash {
                    return Err(TransferError::WrongRequest {
                        what: "the signatures payload",
                        field: "safeTxHash",
                        expected: s.hashes.safe_tx_hash,
                        found,
                    });
                }
            }
            (_, Some(e)) => {
                let found = self.signing_hash.ok_or_else(|| TransferError::Malformed {
                    what: "signatures",
                    reason: "they are for a Safe tx, the bundle holds an EOA transaction".into(),
                })?;
                if found != e.signing_hash {
                    return Err(TransferError::WrongRequest {
                        what: "the signatures payload",
                        field: "signing hash",
                        expected: e.signing_hash,
                        found,
                    });
                }
            }
            (None, None) => {
                return Err(TransferError::Bundle(bundle::BundleError::Inconsistent(
                    "it holds no transaction".into(),
                )))
            }
        }
        Ok(())
    }
}

/// What a `breakglass-bundle` UR carried.
#[derive(Debug, Clone)]
pub enum Payload {
    /// A whole bundle, recomputed.
    Bundle(Box<Bundle>),
    /// Only signatures (not yet checked against any request: see [`SignaturesOnly::check_for`]).
    Signatures(SignaturesOnly),
    /// A pre-signed pause ladder (every rung through the bundle checks).
    Ladder(Box<crate::ladder::Ladder>),
}

fn wrap(json: &[u8]) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::with_capacity(json.len() + 5));
    // Writing into a Vec cannot fail.
    let _ = e.bytes(json);
    e.into_writer()
}

/// The CBOR payload of a whole bundle.
pub fn bundle_payload(b: &Bundle) -> Result<Vec<u8>, TransferError> {
    let json = serde_json::to_vec(b).map_err(|e| TransferError::Encode(e.to_string()))?;
    Ok(wrap(&json))
}

/// The CBOR payload of a pre-signed pause ladder (its JSON, `"format": "breakglass/ladder@1"`).
pub fn ladder_payload(l: &crate::ladder::Ladder) -> Result<Vec<u8>, TransferError> {
    let json = serde_json::to_vec(l).map_err(|e| TransferError::Encode(e.to_string()))?;
    Ok(wrap(&json))
}

/// The CBOR payload of a bundle's signatures.
pub fn signatures_payload(b: &Bundle) -> Result<Vec<u8>, TransferError> {
    let s = SignaturesOnly::of(b)?;
    let json = serde_json::to_vec(&s).map_err(|e| TransferError::Encode(e.to_string()))?;
    Ok(wrap(&json))
}

/// Reads a `breakglass-bundle` payload: a whole bundle goes through every recomputation check of
/// [`Bundle::from_slice`]; signatures are parsed (each must be 65 bytes) and wait for their bundle.
pub fn decode(cbor: &[u8]) -> Result<Payload, TransferError> {
    let mut d = minicbor::Decoder::new(cbor);
    let json = d.bytes().map_err(|e| TransferError::Malformed {
        what: "breakglass-bundle payload",
        reason: format!("not a CBOR byte string: {e}"),
    })?;
    if d.position() != cbor.len() {
        return Err(TransferError::Malformed {
            what: "breakglass-bundle payload",
            reason: "trailing bytes after the byte string".into(),
        });
    }
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| TransferError::Malformed {
            what: "breakglass-bundle payload",
            reason: format!("not JSON: {e}"),
        })?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some(SIGNATURES_FORMAT) => {
            let s: SignaturesOnly =
                serde_json::from_value(v).map_err(|e| TransferError::Malformed {
                    what: "signatures",
                    reason: e.to_string(),
                })?;
            if s.signatures.is_empty() {
                return Err(TransferError::Malformed {
                    what: "signatures",
                    reason: "no signature in it".into(),
                });
            }
            if s.safe_tx_hash.is_some() == s.signing_hash.is_some() {
                return Err(TransferError::Malformed {
                    what: "signatures",
                    reason: "it must name exactly one of safe_tx_hash and signing_hash".into(),
                });
            }
            if let Some(bad) = s.signatures.iter().find(|x| x.signature.len() != 65) {
                return Err(TransferError::Malformed {
                    what: "signatures",
                    reason: format!(
                        "the signature of {} is {} bytes, not 65",
                        bad.signer.to_checksum(None),
                        bad.signature.len()
                    ),
                });
            }
            Ok(Payload::Signatures(s))
        }
        Some(crate::ladder::FORMAT) => {
            crate::ladder::Ladder::from_slice("the imported ladder", json)
                .map(|l| Payload::Ladder(Box::new(l)))
                .map_err(|e| TransferError::Malformed {
                    what: "ladder",
                    reason: e.to_string(),
                })
        }
        _ => Ok(Payload::Bundle(Box::new(Bundle::from_slice(
            "the imported bundle",
            json,
        )?))),
    }
}
