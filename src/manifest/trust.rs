//! Whether a manifest may be used for signing: pinned by hash, or approved by enough Safe owners.
//!
//! Pins live in `<config dir>/breakglass/pins.json` (override the directory with
//! `BREAKGLASS_CONFIG_DIR`), keyed by manifest name. Approvals live beside the manifest in
//! `<manifest>.approvals.json`: each is an EIP-191 `personal_sign` by a Safe owner of the text
//! `breakglass manifest <0x-hash>`, recovered with ecrecover; non-owners and duplicates are rejected.

use super::Manifest;
use crate::fsutil::atomic_write;
use alloy::primitives::{Address, Signature, B256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The text a Safe owner signs (EIP-191 personal_sign) to approve a manifest.
pub fn approval_message(hash: &B256) -> String {
    format!("breakglass manifest {hash:#x}")
}

/// Errors reading or writing trust state.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("{path} is not a valid {what}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it should be.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// No config directory could be found.
    #[error("no configuration directory: set BREAKGLASS_CONFIG_DIR or HOME")]
    NoConfigDir,
    /// A pin given on the command line or in the environment is not a 32-byte hash.
    #[error("pin {0:?} is not a 32-byte hash: write 0x followed by 64 hex digits, as `breakglass manifest hash` prints it")]
    BadPin(String),
}

/// One pinned manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinEntry {
    /// The pinned hash.
    pub hash: B256,
    /// Where the manifest was when pinned.
    pub file: String,
    /// Unix seconds.
    pub pinned_at: u64,
    /// The Safe as the pinned manifest described it: whose approvals can trust a later version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe: Option<PinnedSafe>,
}

/// The Safe of a pinned manifest. Approvals of a new manifest are counted against these owners and this
/// threshold, never against the owners the new manifest itself lists: otherwise an attacker who edits the
/// manifest could list their own keys as owners and approve their own edit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinnedSafe {
    /// The Safe address.
    pub address: Address,
    /// Its owners.
    pub owners: Vec<Address>,
    /// Its threshold.
    pub threshold: usize,
}

impl PinnedSafe {
    /// The Safe of a manifest, for pinning.
    pub fn of(m: &Manifest) -> Option<Self> {
        m.safe.as_ref().map(|s| Self {
            address: s.address,
            owners: s.owners.clone(),
            threshold: s.threshold,
        })
    }
}

/// The pin store.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PinStore {
    /// Pins by manifest name.
    pub pins: BTreeMap<String, PinEntry>,
}

/// The directory holding breakglass's configuration.
pub fn config_dir() -> Result<PathBuf, TrustError> {
    if let Some(d) = std::env::var_os("BREAKGLASS_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    dirs::config_dir()
        .map(|d| d.join("breakglass"))
        .ok_or(TrustError::NoConfigDir)
}

impl PinStore {
    /// The store's file.
    pub fn path() -> Result<PathBuf, TrustError> {
        Ok(config_dir()?.join("pins.json"))
    }

    /// Loads the store (empty when the file does not exist).
    pub fn load() -> Result<Self, TrustError> {
        let path = Self::path()?;
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| TrustError::Malformed {
                path,
                what: "pin store",
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(TrustError::Io { path, source }),
        }
    }

    /// Writes the store atomically.
    pub fn save(&self) -> Result<PathBuf, TrustError> {
        let path = Self::path()?;
        let mut body = serde_json::to_vec_pretty(self).map_err(|e| TrustError::Malformed {
            path: path.clone(),
            what: "pin store",
            reason: e.to_string(),
        })?;
        body.push(b'\n');
        atomic_write(&path, &body, true).map_err(|source| TrustError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// One approval as stored in `<manifest>.approvals.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApprovalEntry {
    /// Who claims to have signed.
    pub signer: Address,
    /// 65-byte r ‖ s ‖ v signature over [`approval_message`].
    pub signature: alloy::primitives::Bytes,
}

/// `<manifest>.approvals.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ApprovalsFile {
    /// The manifest hash the approvals are for.
    pub manifest_hash: B256,
    /// The approvals.
    pub approvals: Vec<ApprovalEntry>,
}

/// Where approvals for a manifest live.
pub fn approvals_path(manifest: &Path) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(".approvals.json");
    PathBuf::from(s)
}

/// The verdict on one approval.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// A valid approval by a Safe owner.
    Valid,
    /// The signature does not recover to the claimed signer.
    BadSignature {
        /// Why.
        reason: String,
    },
    /// The signer is not an owner in the manifest's `[safe]`.
    NotOwner,
    /// A second approval by the same owner.
    Duplicate,
}

/// One approval, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedApproval {
    /// Claimed signer.
    pub signer: Address,
    /// Verdict.
    #[serde(flatten)]
    pub status: ApprovalStatus,
}

/// Approvals found for a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalReport {
    /// The approvals file.
    pub file: String,
    /// Whether it exists.
    pub present: bool,
    /// The hash the file says it approves (may differ from the manifest's).
    pub file_hash: Option<B256>,
    /// Each approval (empty when the file is for another hash).
    pub approvals: Vec<CheckedApproval>,
    /// Distinct valid owner approvals.
    pub valid: usize,
    /// The threshold that counts (from the anchor; 0 when there is none).
    pub threshold: usize,
    /// Where the owners and threshold that count come from: the earlier pinned manifest of the same name.
    /// `None`: nothing is pinned for this name yet, so approvals cannot make it trusted.
    pub anchor: Option<B256>,
    /// Owners who have not approved.
    pub missing: Vec<Address>,
}

/// Recovers and checks every approval for `m`, counting owners of the Safe pinned for `m.name`.
pub fn check_approvals(m: &Manifest, store: &PinStore) -> Result<ApprovalReport, TrustError> {
    let path = approvals_path(&m.path);
    let anchor = store
        .pins
        .get(&m.name)
        .and_then(|p| p.safe.clone().map(|s| (p.hash, s)));
    let (threshold, owners) = anchor
        .as_ref()
        .map_or((0, Vec::new()), |(_, s)| (s.threshold, s.owners.clone()));
    let mut report = ApprovalReport {
        file: path.display().to_string(),
        present: false,
        file_hash: None,
        approvals: Vec::new(),
        valid: 0,
        threshold,
        anchor: anchor.as_ref().map(|(h, _)| *h),
        missing: owners.clone(),
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(source) => return Err(TrustError::Io { path, source }),
    };
    report.present = true;
    let file: ApprovalsFile =
        serde_json::from_slice(&bytes).map_err(|e| TrustError::Malformed {
            path: path.clone(),
            what: "approvals file",
            reason: e.to_string(),
        })?;
    report.file_hash = Some(file.manifest_hash);
    if file.manifest_hash != m.hash {
        return Ok(report);
    }
    let msg = approval_message(&m.hash);
    let mut approved: Vec<Address> = Vec::new();
    for a in &file.approvals {
        let status = match Signature::from_raw(&a.signature) {
            Err(e) => ApprovalStatus::BadSignature {
                reason: format!("not a 65-byte signature: {e}"),
            },
            Ok(sig) => match sig.recover_address_from_msg(msg.as_bytes()) {
                Err(e) => ApprovalStatus::BadSignature {
                    reason: e.to_string(),
                },
                Ok(rec) if rec != a.signer => ApprovalStatus::BadSignature {
                    reason: format!(
                        "signed by {}, not by {}",
                        rec.to_checksum(None),
                        a.signer.to_checksum(None)
                    ),
                },
                Ok(_) if !owners.contains(&a.signer) => ApprovalStatus::NotOwner,
                Ok(_) if approved.contains(&a.signer) => ApprovalStatus::Duplicate,
                Ok(_) => {
                    approved.push(a.signer);
                    ApprovalStatus::Valid
                }
            },
        };
        report.approvals.push(CheckedApproval {
            signer: a.signer,
            status,
        });
    }
    report.valid = approved.len();
    report.missing = owners
        .into_iter()
        .filter(|o| !approved.contains(o))
        .collect();
    Ok(report)
}

/// Why a manifest is (or is not) trusted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Trust {
    /// Its hash equals a pin.
    Pinned {
        /// Where the pin came from: `--pin`, `BREAKGLASS_PIN` or the pin store's path.
        source: String,
    },
    /// Enough Safe owners approved its hash.
    Approved {
        /// Valid approvals.
        approvals: usize,
        /// Threshold.
        threshold: usize,
    },
    /// Neither.
    Untrusted {
        /// What to do about it.
        reason: String,
    },
}

impl Trust {
    /// Whether signing may use this manifest.
    pub fn is_trusted(&self) -> bool {
        !matches!(self, Trust::Untrusted { .. })
    }

    /// One word for screens: pinned / approved / untrusted.
    pub fn word(&self) -> &'static str {
        match self {
            Trust::Pinned { .. } => "pinned",
            Trust::Approved { .. } => "approved",
            Trust::Untrusted { .. } => "untrusted",
        }
    }
}

/// Where an explicit pin came from.
#[derive(Debug, Clone)]
pub struct ExplicitPin {
    /// The hash.
    pub hash: B256,
    /// `--pin` or `BREAKGLASS_PIN`.
    pub source: String,
}

/// Parses a pin given by flag or environment.
pub fn parse_pin(s: &str, source: &str) -> Result<ExplicitPin, TrustError> {
    let t = s.trim();
    if t.len() != 66 || !t.starts_with("0x") {
        return Err(TrustError::BadPin(s.to_string()));
    }
    let hash = t
        .parse::<B256>()
        .map_err(|_| TrustError::BadPin(s.to_string()))?;
    Ok(ExplicitPin {
        hash,
        source: source.to_string(),
    })
}

/// Decides trust. An explicit pin (flag or env) that does not match makes the manifest untrusted even if
/// the store or approvals would trust it: the person asked for that exact manifest.
pub fn evaluate(m: &Manifest, explicit: Option<&ExplicitPin>) -> Result<Trust, TrustError> {
    if let Some(p) = explicit {
        return Ok(if p.hash == m.hash {
            Trust::Pinned {
                source: p.source.clone(),
            }
        } else {
            Trust::Untrusted {
                reason: format!(
                    "the manifest hash {:#x} is not the {} {:#x}: this is not the manifest you pinned",
                    m.hash, p.source, p.hash
                ),
            }
        });
    }
    let store = PinStore::load()?;
    if let Some(entry) = store.pins.get(&m.name) {
        if entry.hash == m.hash {
            return Ok(Trust::Pinned {
                source: PinStore::path()?.display().to_string(),
            });
        }
    }
    let report = check_approvals(m, &store)?;
    if report.threshold > 0 && report.valid >= report.threshold {
        return Ok(Trust::Approved {
            approvals: report.valid,
            threshold: report.threshold,
        });
    }
    let mut reason = format!("the manifest hash {:#x} is not pinned", m.hash);
    if let Some(entry) = store.pins.get(&m.name) {
        reason.push_str(&format!(
            " (the pin for {:?} is {:#x}: the file changed since it was pinned)",
            m.name, entry.hash
        ));
    }
    if report.threshold > 0 {
        reason.push_str(&format!(
            " and has {} of {} owner approvals; review it and run `breakglass --manifest {} manifest pin`, or collect owner approvals",
            report.valid,
            report.threshold,
            m.path.display()
        ));
    } else if m.safe.is_some() {
        reason.push_str(&format!(
            "; review it and run `breakglass --manifest {} manifest pin` (owner approvals can only trust a new version of a manifest that was pinned before)",
            m.path.display()
        ));
    } else {
        reason.push_str(&format!(
            "; review it and run `breakglass --manifest {} manifest pin`",
            m.path.display()
        ));
    }
    Ok(Trust::Untrusted { reason })
}
