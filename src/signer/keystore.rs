//! The Web3 Secret Storage keystore that geth and `cast wallet` write, decrypted with alloy's keystore
//! support (scrypt/pbkdf2 + AES-128-CTR, MAC checked). The password and the key are secrets: the password
//! is a `SecretString` zeroized on drop, the key lives only inside alloy's signer (k256, zeroized on drop),
//! and neither is ever printed, logged or written. There is no raw-private-key option anywhere.

use super::{Signer, SignerError};
use alloy::consensus::{SignableTransaction, TxEip1559};
use alloy::primitives::{Address, Signature, B256};
use alloy::signers::local::{LocalSignerError, PrivateKeySigner};
use alloy::signers::SignerSync;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

/// Keystore problems.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The file could not be read.
    #[error("cannot read keystore {path}: {reason}")]
    Unreadable {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Wrong password (the MAC did not match).
    #[error("wrong password for keystore {path}: nothing was decrypted")]
    WrongPassword {
        /// File.
        path: PathBuf,
    },
    /// Not a keystore.
    #[error("{path} is not a Web3 Secret Storage keystore: {reason}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No password could be read.
    #[error("no password: {0}")]
    NoPassword(String),
    /// Signing failed.
    #[error("keystore signing failed: {0}")]
    Sign(String),
}

/// Reads the password from a file (first line, trailing newline removed) or prompts on the terminal.
pub fn read_password(file: Option<&Path>, keystore: &Path) -> Result<SecretString, KeystoreError> {
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                KeystoreError::NoPassword(format!("cannot read {}: {e}", f.display()))
            })?;
            let line = text.lines().next().unwrap_or("").to_string();
            drop(zeroize::Zeroizing::new(text));
            Ok(SecretString::from(line))
        }
        None => rpassword::prompt_password(format!("Password for {}: ", keystore.display()))
            .map(SecretString::from)
            .map_err(|e| {
                KeystoreError::NoPassword(format!("cannot prompt ({e}); pass --password-file FILE"))
            }),
    }
}

/// A decrypted keystore account.
pub struct KeystoreSigner {
    signer: PrivateKeySigner,
    path: PathBuf,
}

impl std::fmt::Debug for KeystoreSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeystoreSigner({}, {})",
            self.path.display(),
            self.signer.address()
        )
    }
}

impl KeystoreSigner {
    /// Decrypts `path` with `password`.
    pub fn open(path: &Path, password: &SecretString) -> Result<Self, KeystoreError> {
        let bytes = std::fs::read(path).map_err(|e| KeystoreError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| KeystoreError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if json.get("crypto").or_else(|| json.get("Crypto")).is_none() {
            return Err(KeystoreError::Invalid {
                path: path.to_path_buf(),
                reason: "no \"crypto\" section".into(),
            });
        }
        match PrivateKeySigner::decrypt_keystore(path, password.expose_secret()) {
            Ok(signer) => Ok(Self {
                signer,
                path: path.to_path_buf(),
            }),
            Err(LocalSignerError::EthKeystoreError(e))
                if e.to_string().to_lowercase().contains("mac") =>
            {
                Err(KeystoreError::WrongPassword {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => Err(KeystoreError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }
}

impl Signer for KeystoreSigner {
    fn address(&mut self) -> Result<Address, SignerError> {
        Ok(self.signer.address())
    }

    fn label(&self) -> String {
        format!("keystore {}", self.path.display())
    }

    fn sign_safe(&mut self, domain: &B256, message: &B256) -> Result<Signature, SignerError> {
        let mut buf = [0u8; 66];
        buf[0] = 0x19;
        buf[1] = 0x01;
        buf[2..34].copy_from_slice(domain.as_slice());
        buf[34..].copy_from_slice(message.as_slice());
        let digest = alloy::primitives::keccak256(buf);
        self.signer
            .sign_hash_sync(&digest)
            .map_err(|e| KeystoreError::Sign(e.to_string()).into())
    }

    fn sign_tx(&mut self, tx: &TxEip1559) -> Result<Signature, SignerError> {
        self.signer
            .sign_hash_sync(&tx.signature_hash())
            .map_err(|e| KeystoreError::Sign(e.to_string()).into())
    }

    fn sign_personal(&mut self, message: &[u8]) -> Result<Signature, SignerError> {
        self.signer
            .sign_message_sync(message)
            .map_err(|e| KeystoreError::Sign(e.to_string()).into())
    }
}
