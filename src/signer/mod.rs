//! Signing. One [`Signer`] trait, implemented by the Ledger (USB HID, Speculos TCP, or the built-in
//! simulator, all through the same APDU code) and by an encrypted keystore.
//!
//! The wrong order cannot be written: a signer accepts only a [`SigningRequest`], and the only way to
//! get one is [`SigningRequest::new`] from a [`VerifiedBundle`] whose report is allowed, under a trusted
//! manifest. After every signature the signer is recovered and compared with the address expected.

pub mod keystore;
pub mod ledger;
pub mod preview;

use crate::bundle::{SignMode, VerifiedBundle};
use crate::manifest::trust::Trust;
use alloy::consensus::{SignableTransaction, TxEip1559};
use alloy::primitives::{Address, Signature, B256};
use ledger::eip712::SafeTyped;

/// Why signing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The device or app said no, or is not ready.
    #[error(transparent)]
    Ledger(#[from] ledger::apdu::LedgerError),
    /// The connection to the device failed.
    #[error(transparent)]
    Transport(#[from] ledger::TransportError),
    /// The keystore could not be used.
    #[error(transparent)]
    Keystore(#[from] keystore::KeystoreError),
    /// The signature recovers to someone else: never use it.
    #[error(
        "the signature recovers to {got}, not to the expected signer {expected}: it was discarded"
    )]
    WrongSigner {
        /// Expected.
        expected: Address,
        /// Recovered.
        got: Address,
    },
    /// The request may not be signed.
    #[error("{0}")]
    NotSignable(String),
}

/// What a signer may sign: built only from a verified, allowed bundle under a trusted manifest.
#[derive(Debug, Clone)]
pub struct SigningRequest {
    kind: RequestKind,
    /// For an EOA tx: its sender (what the device shows as From).
    from: Option<Address>,
}

#[derive(Debug, Clone)]
enum RequestKind {
    Safe {
        domain: B256,
        message: B256,
        safe_tx_hash: B256,
        typed: Box<SafeTyped>,
    },
    Tx {
        tx: Box<TxEip1559>,
    },
}

impl RequestKind {
    /// What a bundle asks to sign (unchecked: [`SigningRequest::new`] checks).
    fn of_bundle(b: &crate::bundle::Bundle) -> Option<Self> {
        if let Some(s) = &b.safe_tx {
            return Some(RequestKind::Safe {
                domain: s.hashes.domain_separator,
                message: s.hashes.message_hash,
                safe_tx_hash: s.hashes.safe_tx_hash,
                typed: Box::new(SafeTyped {
                    chain_id: b.chain_id,
                    safe: s.safe,
                    domain: s.eip712_domain,
                    tx: s.tx.clone(),
                }),
            });
        }
        b.eoa_tx.as_ref().map(|e| RequestKind::Tx {
            tx: Box::new(e.unsigned(b.chain_id)),
        })
    }
}

impl SigningRequest {
    /// The request for a verified bundle; refuses what verification refused and untrusted manifests.
    pub fn new(v: &VerifiedBundle, trust: &Trust) -> Result<Self, SignerError> {
        if let Trust::Untrusted { reason } = trust {
            return Err(SignerError::NotSignable(format!(
                "the manifest is not trusted: {reason}"
            )));
        }
        if !v.report().allowed {
            return Err(SignerError::NotSignable(
                "verification refused this transaction: breakglass never signs it".into(),
            ));
        }
        let kind = RequestKind::of_bundle(v.bundle())
            .ok_or_else(|| SignerError::NotSignable("the bundle holds no transaction".into()))?;
        Ok(Self {
            kind,
            from: v.bundle().eoa_tx.as_ref().map(|e| e.from),
        })
    }

    /// For a Safe tx: (domain separator, message hash, safeTxHash).
    pub fn safe_hashes(&self) -> Option<(B256, B256, B256)> {
        match &self.kind {
            RequestKind::Safe {
                domain,
                message,
                safe_tx_hash,
                ..
            } => Some((*domain, *message, *safe_tx_hash)),
            RequestKind::Tx { .. } => None,
        }
    }

    /// For a Safe tx: the typed data a Ledger streams in full EIP-712 mode.
    pub fn safe_typed(&self) -> Option<&SafeTyped> {
        match &self.kind {
            RequestKind::Safe { typed, .. } => Some(typed),
            RequestKind::Tx { .. } => None,
        }
    }

    /// For an EOA tx: the unsigned transaction.
    pub fn transaction(&self) -> Option<&TxEip1559> {
        match &self.kind {
            RequestKind::Tx { tx } => Some(tx),
            RequestKind::Safe { .. } => None,
        }
    }

    /// The 32-byte digest the signature must recover from.
    pub fn digest(&self) -> B256 {
        match &self.kind {
            RequestKind::Safe { safe_tx_hash, .. } => *safe_tx_hash,
            RequestKind::Tx { tx } => tx.signature_hash(),
        }
    }
}

/// A manifest approval to sign (EIP-191 personal_sign of `breakglass manifest <hash>`).
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    text: String,
}

impl ApprovalRequest {
    /// The approval of a manifest hash.
    pub fn new(hash: &B256) -> Self {
        Self {
            text: crate::manifest::trust::approval_message(hash),
        }
    }

    /// The exact text signed.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A signer: a Ledger (any transport) or a keystore.
pub trait Signer {
    /// The account's address.
    fn address(&mut self) -> Result<Address, SignerError>;
    /// What it is, for people and the bundle (e.g. "Ledger Nano S Plus, Ethereum app 1.22.0").
    fn label(&self) -> String;
    /// Signs a Safe tx (EIP-712 hashed: domain separator and message hash); v is 27/28.
    fn sign_safe(&mut self, domain: &B256, message: &B256) -> Result<Signature, SignerError>;
    /// Signs a Safe tx given as typed data, saying how: a device that can show the transaction's fields
    /// does (a Ledger in full EIP-712 mode); the default signs the hashes.
    fn sign_safe_typed(
        &mut self,
        typed: &SafeTyped,
        domain: &B256,
        message: &B256,
    ) -> Result<(Signature, SignMode), SignerError> {
        let _ = typed;
        Ok((self.sign_safe(domain, message)?, SignMode::Digest))
    }
    /// Whether this signer shows a Safe transaction's fields (a Ledger in full EIP-712 mode).
    fn full_eip712(&self) -> bool {
        false
    }
    /// The device's "Blind signing" setting, as its app reported it (`None`: not a device, or not asked
    /// yet).
    fn blind_signing_setting(&self) -> Option<bool> {
        None
    }
    /// Signs an EIP-1559 transaction.
    fn sign_tx(&mut self, tx: &TxEip1559) -> Result<Signature, SignerError>;
    /// Signs a personal message (EIP-191).
    fn sign_personal(&mut self, message: &[u8]) -> Result<Signature, SignerError>;
}

/// Signs a verified request and checks the signature recovers to `expected`.
pub fn sign_request(
    s: &mut dyn Signer,
    req: &SigningRequest,
    expected: Address,
) -> Result<Signature, SignerError> {
    sign_request_mode(s, req, expected).map(|(sig, _)| sig)
}

/// [`sign_request`], also saying how a Safe signature was asked for.
pub fn sign_request_mode(
    s: &mut dyn Signer,
    req: &SigningRequest,
    expected: Address,
) -> Result<(Signature, Option<SignMode>), SignerError> {
    let (sig, mode) = match &req.kind {
        RequestKind::Safe {
            domain,
            message,
            typed,
            ..
        } => {
            let (sig, mode) = s.sign_safe_typed(typed, domain, message)?;
            (sig, Some(mode))
        }
        RequestKind::Tx { tx } => (s.sign_tx(tx)?, None),
    };
    let got = sig
        .recover_address_from_prehash(&req.digest())
        .map_err(|e| SignerError::NotSignable(format!("the signature does not recover: {e}")))?;
    if got != expected {
        return Err(SignerError::WrongSigner { expected, got });
    }
    Ok((sig, mode))
}

/// Signs a manifest approval and checks the signature recovers to `expected`.
pub fn sign_approval(
    s: &mut dyn Signer,
    req: &ApprovalRequest,
    expected: Address,
) -> Result<Signature, SignerError> {
    let sig = s.sign_personal(req.text.as_bytes())?;
    let got = sig
        .recover_address_from_msg(req.text.as_bytes())
        .map_err(|e| SignerError::NotSignable(format!("the signature does not recover: {e}")))?;
    if got != expected {
        return Err(SignerError::WrongSigner { expected, got });
    }
    Ok(sig)
}

/// A signature as `execTransaction` takes it: r ‖ s ‖ v with v 27/28.
pub fn safe_signature_bytes(sig: &Signature) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    out[64] = 27 + u8::from(sig.v());
    out
}
