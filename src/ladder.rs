//! Pre-signed pause ladders: one `presign = true` playbook composed for K consecutive Safe nonces, each
//! rung a full bundle (verified like any bundle), signed in advance, fired in seconds when the signers
//! are asleep. `safeTxGas = 0` and `gasPrice = 0` on every rung, so a rung whose call reverts (the target
//! is already paused) reverts the whole transaction and leaves its nonce unused (Safe's GS013 rule).
//!
//! The file can pause the protocol for anyone who holds it: it is written with mode 0600.

use crate::bundle::{Bundle, BundleError};
use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format tag.
pub const FORMAT: &str = "breakglass/ladder@1";
/// The most rungs a ladder may hold.
pub const MAX_RUNGS: usize = 256;
/// The largest ladder file read.
pub const MAX_LADDER_BYTES: u64 = 64 << 20;

/// Why a ladder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    /// I/O.
    #[error("cannot read or write {path}: {reason}")]
    Io {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Not a ladder, or an inconsistent one.
    #[error("{path} is not a usable ladder: {reason}")]
    Malformed {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A rung failed the bundle checks.
    #[error("rung {rung} of {path}: {source}")]
    Rung {
        /// Path.
        path: String,
        /// Rung index (1-based).
        rung: usize,
        /// The bundle error.
        source: Box<BundleError>,
    },
}

/// A ladder file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    /// Always [`FORMAT`].
    pub format: String,
    /// The playbook every rung carries.
    pub playbook: String,
    /// The chain.
    pub chain_id: u64,
    /// The Safe.
    pub safe: Address,
    /// One bundle per nonce, ascending and consecutive.
    pub rungs: Vec<Bundle>,
    /// The age recipients the file is encrypted to (public keys), so a rewrite (a signature added, a rung
    /// fired) encrypts to the same set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encrypt_to: Vec<String>,
}

/// How a ladder file is protected on disk, beyond mode 0600.
#[derive(Clone, Default)]
pub struct Protection {
    /// Encrypt to these age recipients (`age1…`); decrypt with one of their identities.
    pub recipients: Vec<String>,
    /// Or encrypt with this passphrase (scrypt).
    pub passphrase: Option<age::secrecy::SecretString>,
    /// The identities that may decrypt (an age identity file's `AGE-SECRET-KEY-1…` lines).
    pub identities: Vec<age::x25519::Identity>,
}

/// The first bytes of an age file.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";

impl Protection {
    /// Reads identities from an age identity file (comment lines skipped).
    pub fn add_identity_file(&mut self, path: &Path) -> Result<(), LadderError> {
        let text = std::fs::read_to_string(path).map_err(|e| LadderError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let id: age::x25519::Identity =
                line.parse().map_err(|e: &str| LadderError::Malformed {
                    path: path.display().to_string(),
                    reason: format!("not an age identity file: {e}"),
                })?;
            self.identities.push(id);
        }
        Ok(())
    }

    fn encrypt(&self, plain: &[u8], recipients: &[String]) -> Result<Option<Vec<u8>>, String> {
        use std::io::Write;
        let enc = if !recipients.is_empty() {
            let rs: Vec<age::x25519::Recipient> = recipients
                .iter()
                .map(|r| {
                    r.parse()
                        .map_err(|e: &str| format!("{r:?} is not an age recipient: {e}"))
                })
                .collect::<Result<_, _>>()?;
            age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| e.to_string())?
        } else if let Some(p) = &self.passphrase {
            age::Encryptor::with_user_passphrase(p.clone())
        } else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(plain.len() + 256);
        let mut w = enc.wrap_output(&mut out).map_err(|e| e.to_string())?;
        w.write_all(plain).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        Ok(Some(out))
    }

    fn decrypt(&self, path: &str, bytes: &[u8]) -> Result<Vec<u8>, LadderError> {
        use std::io::Read;
        let bad = |reason: String| LadderError::Malformed {
            path: path.to_string(),
            reason,
        };
        let d =
            age::Decryptor::new(bytes).map_err(|e| bad(format!("not a readable age file: {e}")))?;
        let reader = if d.is_scrypt() {
            let Some(p) = &self.passphrase else {
                return Err(bad("it is encrypted with a passphrase: pass --passphrase (asked on the terminal) or --passphrase-file FILE".into()));
            };
            let id = age::scrypt::Identity::new(p.clone());
            d.decrypt(std::iter::once(&id as &dyn age::Identity))
        } else {
            if self.identities.is_empty() {
                return Err(bad("it is encrypted to age recipients: pass --identity FILE (an age identity file)".into()));
            }
            d.decrypt(self.identities.iter().map(|i| i as &dyn age::Identity))
        }
        .map_err(|e| bad(format!("cannot decrypt it: {e}")))?;
        let mut out = Vec::new();
        reader
            .take(MAX_LADDER_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("cannot decrypt it: {e}")))?;
        Ok(out)
    }
}

impl Ladder {
    /// The Safe nonce of rung `i`.
    pub fn nonce(&self, i: usize) -> U256 {
        self.rungs[i]
            .safe_tx
            .as_ref()
            .map(|s| s.tx.nonce)
            .unwrap_or_default()
    }

    /// The rung for the Safe's nonce `n`.
    pub fn rung_for(&self, n: U256) -> Option<usize> {
        (0..self.rungs.len()).find(|i| self.nonce(*i) == n)
    }

    /// Reads a ladder: its shape, then every rung through the bundle checks (each hash recomputed, each
    /// signature recovered), the same Safe, chain and playbook on every rung, nonces consecutive.
    pub fn read(path: &Path) -> Result<Self, LadderError> {
        Self::read_with(path, &Protection::default())
    }

    /// [`Self::read`] of a ladder that may be encrypted (age: recipients or a passphrase).
    pub fn read_with(path: &Path, keys: &Protection) -> Result<Self, LadderError> {
        let p = path.display().to_string();
        let md = std::fs::metadata(path).map_err(|e| LadderError::Io {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if md.len() > MAX_LADDER_BYTES {
            return Err(LadderError::Malformed {
                path: p,
                reason: format!("{} bytes, more than a ladder may be", md.len()),
            });
        }
        let bytes = std::fs::read(path).map_err(|e| LadderError::Io {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if bytes.starts_with(AGE_MAGIC) {
            let plain = keys.decrypt(&p, &bytes)?;
            return Self::from_slice(&p, &plain);
        }
        Self::from_slice(&p, &bytes)
    }

    /// [`Self::read`] from bytes.
    pub fn from_slice(p: &str, bytes: &[u8]) -> Result<Self, LadderError> {
        let bad = |reason: String| LadderError::Malformed {
            path: p.to_string(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(bad(format!("its format is not {FORMAT}")));
        }
        let rungs_v = v
            .get("rungs")
            .and_then(|r| r.as_array())
            .ok_or_else(|| bad("no rungs".into()))?;
        if rungs_v.is_empty() || rungs_v.len() > MAX_RUNGS {
            return Err(bad(format!(
                "{} rungs (1 to {MAX_RUNGS} allowed)",
                rungs_v.len()
            )));
        }
        let mut rungs = Vec::with_capacity(rungs_v.len());
        for (i, r) in rungs_v.iter().enumerate() {
            let b = serde_json::to_vec(r).map_err(|e| bad(e.to_string()))?;
            rungs.push(
                Bundle::from_slice(&format!("{p} rung {}", i + 1), &b).map_err(|source| {
                    LadderError::Rung {
                        path: p.to_string(),
                        rung: i + 1,
                        source: Box::new(source),
                    }
                })?,
            );
        }
        let mut l: Ladder = serde_json::from_value(serde_json::json!({
            "format": v.get("format"),
            "playbook": v.get("playbook"),
            "chain_id": v.get("chain_id"),
            "safe": v.get("safe"),
            "rungs": [],
            "encrypt_to": v.get("encrypt_to").cloned().unwrap_or(serde_json::json!([])),
        }))
        .map_err(|e| bad(e.to_string()))?;
        if let Some(extra) = v.as_object().and_then(|o| {
            o.keys().find(|k| {
                ![
                    "format",
                    "playbook",
                    "chain_id",
                    "safe",
                    "rungs",
                    "encrypt_to",
                ]
                .contains(&k.as_str())
            })
        }) {
            return Err(bad(format!("unknown field {extra:?}")));
        }
        l.rungs = rungs;
        l.check().map_err(bad)?;
        Ok(l)
    }

    fn check(&self) -> Result<(), String> {
        for (i, b) in self.rungs.iter().enumerate() {
            let Some(s) = &b.safe_tx else {
                return Err(format!("rung {} is not a Safe transaction", i + 1));
            };
            if b.chain_id != self.chain_id || s.safe != self.safe {
                return Err(format!(
                    "rung {} is for Safe {} on chain {}, the ladder for {} on chain {}",
                    i + 1,
                    s.safe.to_checksum(None),
                    b.chain_id,
                    self.safe.to_checksum(None),
                    self.chain_id
                ));
            }
            if b.playbook.as_deref() != Some(self.playbook.as_str()) {
                return Err(format!(
                    "rung {} carries playbook {:?}, the ladder {:?}",
                    i + 1,
                    b.playbook,
                    self.playbook
                ));
            }
            if !s.tx.safe_tx_gas.is_zero() || !s.tx.gas_price.is_zero() {
                return Err(format!(
                    "rung {} has safeTxGas or gasPrice set: a reverting rung would spend its nonce",
                    i + 1
                ));
            }
            if i > 0 && s.tx.nonce != self.nonce(i - 1) + U256::from(1) {
                return Err(format!(
                    "rung {} has nonce {}, not the one after rung {}'s",
                    i + 1,
                    s.tx.nonce,
                    i
                ));
            }
        }
        Ok(())
    }

    /// Writes the ladder atomically, readable by its owner only (mode 0600).
    pub fn write(&self, path: &Path, force: bool) -> Result<(), LadderError> {
        self.write_with(path, force, &Protection::default())
    }

    /// [`Self::write`], encrypted to [`Self::encrypt_to`] (or `keys.recipients` / `keys.passphrase`).
    pub fn write_with(
        &self,
        path: &Path,
        force: bool,
        keys: &Protection,
    ) -> Result<(), LadderError> {
        let plain = serde_json::to_vec_pretty(self).map_err(|e| LadderError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let recipients = if self.encrypt_to.is_empty() {
            &keys.recipients
        } else {
            &self.encrypt_to
        };
        let bytes =
            match keys
                .encrypt(&plain, recipients)
                .map_err(|reason| LadderError::Malformed {
                    path: path.display().to_string(),
                    reason,
                })? {
                Some(b) => b,
                None => plain,
            };
        crate::fsutil::atomic_write_mode(path, &bytes, force, Some(0o600)).map_err(|e| {
            LadderError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })
    }
}

/// Whether a file is a ladder (its format tag), without reading it whole into a ladder.
pub fn is_ladder_file(path: &Path) -> bool {
    std::fs::read(path).ok().is_some_and(|b| {
        b.starts_with(AGE_MAGIC)
            || serde_json::from_slice::<serde_json::Value>(&b)
                .is_ok_and(|v| v.get("format").and_then(|f| f.as_str()) == Some(FORMAT))
    })
}

/// Where a ladder stands against the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LadderState {
    /// The rung for the Safe's current nonce is there, with enough valid signatures.
    Live {
        /// Rung index (0-based).
        rung: usize,
        /// The Safe's nonce.
        nonce: U256,
        /// Rungs from this one to the last.
        remaining: usize,
    },
    /// The Safe's nonce is below the first rung: the ladder becomes live later.
    Waiting {
        /// The Safe's nonce.
        nonce: U256,
        /// The first rung's nonce.
        first: U256,
    },
    /// The Safe's nonce has passed every rung.
    Stale {
        /// The Safe's nonce.
        nonce: U256,
        /// The last rung's nonce.
        last: U256,
    },
    /// The live rung's signatures no longer reach the threshold (an owner removed, the threshold raised).
    Invalid {
        /// Rung index (0-based).
        rung: usize,
        /// Why, in words.
        reason: String,
    },
}

impl LadderState {
    /// The exit code a monitor acts on: 0 live, 6 waiting, 7 stale, 8 invalid.
    pub fn exit_code(&self) -> i32 {
        match self {
            LadderState::Live { .. } => 0,
            LadderState::Waiting { .. } => 6,
            LadderState::Stale { .. } => 7,
            LadderState::Invalid { .. } => 8,
        }
    }
}

/// The ladder's state given the Safe's nonce, owners and threshold on chain.
pub fn state(l: &Ladder, nonce: U256, owners: &[Address], threshold: usize) -> LadderState {
    let first = l.nonce(0);
    let last = l.nonce(l.rungs.len() - 1);
    if nonce < first {
        return LadderState::Waiting { nonce, first };
    }
    if nonce > last {
        return LadderState::Stale { nonce, last };
    }
    let Some(i) = l.rung_for(nonce) else {
        return LadderState::Stale { nonce, last };
    };
    let t = crate::bundle::tally(&l.rungs[i], owners, threshold, &[], None);
    if !t.ready() {
        let gone: Vec<String> = l.rungs[i]
            .signatures
            .iter()
            .filter(|s| !owners.contains(&s.signer))
            .map(|s| s.signer.to_checksum(None))
            .collect();
        let reason = if gone.is_empty() {
            format!(
                "{} valid signature(s), the Safe's threshold is now {threshold}",
                t.counted.len()
            )
        } else {
            format!(
                "{} signed but {} no longer an owner: {} valid signature(s) of {threshold}",
                gone.join(", "),
                if gone.len() == 1 { "is" } else { "are" },
                t.counted.len()
            )
        };
        return LadderState::Invalid { rung: i, reason };
    }
    LadderState::Live {
        rung: i,
        nonce,
        remaining: l.rungs.len() - i,
    }
}
