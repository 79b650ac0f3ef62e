//! The bundle: `breakglass/bundle@1`, the one JSON format that moves between machines. It grows as it
//! moves (request → signatures → signed tx → receipt). Readers trust nothing in it: every hash is
//! recomputed and every signer recovered, and a field that does not match is an error naming the field.
//! Writes are atomic (temp file, fsync, rename) and never replace a file without `force`.

pub mod simulation;

use crate::decode::DecodeError;
use crate::manifest::Manifest;
use crate::policy::{self, Report};
use crate::safe::{Operation, SafeDomain, SafeHashes, SafeTxFields, SignatureKind};
pub use crate::timelock::{
    timelock_calldata, timelock_operation_id, TimelockCall, TimelockOp, TimelockStep,
};
use alloy::consensus::{SignableTransaction, TxEip1559};
use alloy::primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format tag of this version.
pub const FORMAT: &str = "breakglass/bundle@1";

/// Which manifest the bundle was composed against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestRef {
    /// Manifest name.
    pub name: String,
    /// Manifest hash.
    pub hash: B256,
}

/// A Safe transaction request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafeRequest {
    /// The Safe.
    pub safe: Address,
    /// The SafeTx fields.
    #[serde(flatten)]
    pub tx: SafeTxFields,
    /// Hashes (recomputed by every reader).
    pub hashes: SafeHashes,
    /// The EIP-712 shape the Safe signs: absent for Safe ≥ 1.3.0 (domain with chain id); `no_chain_id`
    /// for 1.1.x / 1.2.0; `no_chain_id_data_gas` for 1.0.0.
    #[serde(default, skip_serializing_if = "SafeDomain::is_chain_id")]
    pub eip712_domain: SafeDomain,
}

/// An EIP-1559 transaction request (guardian EOA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EoaRequest {
    /// Sender.
    pub from: Address,
    /// Target.
    pub to: Address,
    /// Wei.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
    /// Account nonce.
    pub nonce: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// maxFeePerGas (wei).
    pub max_fee_per_gas: u128,
    /// maxPriorityFeePerGas (wei).
    pub max_priority_fee_per_gas: u128,
    /// keccak256(0x02 ‖ rlp(unsigned fields)): what the signer signs (recomputed by every reader).
    pub signing_hash: B256,
}

impl EoaRequest {
    /// The unsigned alloy transaction.
    pub fn unsigned(&self, chain_id: u64) -> TxEip1559 {
        TxEip1559 {
            chain_id,
            nonce: self.nonce,
            gas_limit: self.gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            to: TxKind::Call(self.to),
            value: self.value,
            access_list: Default::default(),
            input: self.data.clone(),
        }
    }
}

/// An owner's signature of the safeTxHash (or a guardian's of the EOA tx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    /// Who signed (recovered and compared by every reader).
    pub signer: Address,
    /// 65 bytes r ‖ s ‖ v, as `execTransaction` takes it.
    pub signature: Bytes,
    /// How it was made.
    pub kind: SignatureKind,
    /// Which device or key store made it (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What the signer was shown and asked (informational): a Ledger in full EIP-712 mode (the device
    /// showed the Safe transaction), in hashed mode (two hashes), or a key that signed the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SignMode>,
}

/// How a Safe signature was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignMode {
    /// The Ledger received the typed data and showed its fields.
    #[serde(rename = "eip712-full")]
    Eip712Full,
    /// The Ledger received the domain and message hashes only.
    #[serde(rename = "eip712-hashed")]
    Eip712Hashed,
    /// A key (keystore) signed the digest: nothing was shown.
    #[serde(rename = "digest")]
    Digest,
}

impl SignMode {
    /// As written in bundles and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMode::Eip712Full => "eip712-full",
            SignMode::Eip712Hashed => "eip712-hashed",
            SignMode::Digest => "digest",
        }
    }
}

/// A signed EIP-1559 transaction (raw bytes and hash are checked against each other and the bundle by
/// every reader that sends it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTx {
    /// The EIP-2718 envelope.
    pub raw: Bytes,
    /// Its hash.
    pub hash: B256,
    /// The executor, for an `execTransaction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Address>,
    /// `execTransaction` for an executor's transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The receipt of the landed transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Transaction hash.
    pub tx_hash: B256,
    /// Block.
    pub block_number: Option<u64>,
    /// 1 success, 0 reverted.
    pub status: u8,
    /// Gas used.
    pub gas_used: u64,
    /// Seconds from send to receipt.
    pub seconds: f64,
}

/// One post-condition's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostCondition {
    /// Action id.
    pub action: String,
    /// As written in the manifest.
    pub expect: String,
    /// What the chain says.
    pub actual: String,
    /// Whether it held.
    pub pass: bool,
}

/// A bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// The manifest it was composed against.
    pub manifest: ManifestRef,
    /// Chain id.
    pub chain_id: u64,
    /// Playbook id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    /// Action ids, in call order.
    pub actions: Vec<String>,
    /// Unix seconds when composed.
    pub created_at: u64,
    /// A Safe transaction request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_tx: Option<SafeRequest>,
    /// An EIP-1559 transaction request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eoa_tx: Option<EoaRequest>,
    /// The timelock operation the Safe tx schedules or executes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timelock: Option<TimelockOp>,
    /// Signatures collected so far.
    #[serde(default)]
    pub signatures: Vec<SignatureEntry>,
    /// The signed transaction that lands it: the guardian's EIP-1559 transaction, or the executor's
    /// `execTransaction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_tx: Option<SignedTx>,
    /// Receipt, once mined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Post-condition results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postconditions: Option<Vec<PostCondition>>,
    /// The audit-log entries of the steps that produced this bundle, so an offline machine's log and the
    /// online one can be matched after the fact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditRef>,
    /// The last simulation of its transaction (informational: as recorded by whoever wrote the bundle;
    /// `sign` and `simulate` run their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<Box<simulation::Simulation>>,
}

/// A step's audit-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRef {
    /// compose, sign, execute, …
    pub step: String,
    /// keccak256 of the audit line.
    pub entry: B256,
}

/// Why a bundle is refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not readable.
    #[error("cannot read bundle {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Not JSON of the bundle shape.
    #[error("{path} is not a breakglass bundle: {reason}")]
    Malformed {
        /// File.
        path: String,
        /// Parser message.
        reason: String,
    },
    /// Another format version.
    #[error("{path} is a {found:?} bundle; this breakglass reads only {FORMAT:?}")]
    UnknownFormat {
        /// File.
        path: String,
        /// The format tag found.
        found: String,
    },
    /// A stored field differs from its recomputation.
    #[error("bundle field `{field}` does not match its recomputation: stored {stored}, recomputed {recomputed}. The bundle was altered or corrupted: do not sign it")]
    Mismatch {
        /// The field.
        field: String,
        /// As stored.
        stored: String,
        /// As recomputed.
        recomputed: String,
    },
    /// Inconsistent content.
    #[error("bundle is inconsistent: {0}")]
    Inconsistent(String),
    /// Composed against another manifest.
    #[error("the bundle was composed against manifest {bundle_name:?} {bundle_hash:#x}, but the manifest here is {name:?} {hash:#x}")]
    WrongManifest {
        /// Bundle's manifest name.
        bundle_name: String,
        /// Bundle's manifest hash.
        bundle_hash: B256,
        /// Local name.
        name: String,
        /// Local hash.
        hash: B256,
    },
    /// A signature does not recover to its signer, or the signer is not an owner.
    #[error("signature {index} ({signer}): {reason}")]
    BadSignature {
        /// Index in `signatures`.
        index: usize,
        /// Claimed signer.
        signer: String,
        /// Why.
        reason: String,
    },
    /// Malformed calldata inside.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
}

fn mismatch<T: std::fmt::Display>(field: &str, stored: T, recomputed: T) -> BundleError {
    BundleError::Mismatch {
        field: field.into(),
        stored: stored.to_string(),
        recomputed: recomputed.to_string(),
    }
}

/// Recovers the signer of a Safe signature over `safe_tx_hash`.
pub fn recover_safe_signature(
    sig: &[u8],
    kind: SignatureKind,
    safe_tx_hash: &B256,
) -> Result<Address, String> {
    if sig.len() != 65 {
        return Err(format!(
            "a signature is 65 bytes, this one is {}",
            sig.len()
        ));
    }
    let v = sig[64];
    match kind {
        SignatureKind::Eip712 => {
            if v != 27 && v != 28 {
                return Err(format!("v {v} is not 27/28 for an EIP-712 signature"));
            }
            let s = Signature::from_raw(sig).map_err(|e| e.to_string())?;
            s.recover_address_from_prehash(safe_tx_hash)
                .map_err(|e| e.to_string())
        }
        SignatureKind::EthSign => {
            if v != 31 && v != 32 {
                return Err(format!("v {v} is not 31/32 for an eth_sign signature"));
            }
            let mut raw = [0u8; 65];
            raw.copy_from_slice(sig);
            raw[64] = v - 4;
            let s = Signature::from_raw(&raw).map_err(|e| e.to_string())?;
            s.recover_address_from_msg(safe_tx_hash.as_slice())
                .map_err(|e| e.to_string())
        }
        SignatureKind::Transaction => Err("a transaction signature cannot sign a Safe tx".into()),
        SignatureKind::ApprovedHash => {
            if v != 1 {
                return Err(format!("v {v} is not 1 for an approved-hash signature"));
            }
            if sig[..12].iter().any(|b| *b != 0) || sig[32..64].iter().any(|b| *b != 0) {
                return Err("an approved-hash signature is r = the owner's address (left-padded with zeros), s = 0, v = 1".into());
            }
            // This names an owner; it proves nothing. See [`tally`]: it counts only when proven.
            Ok(Address::from_slice(&sig[12..32]))
        }
    }
}

impl Bundle {
    /// The actions whose effects this transaction makes now, so whose post-conditions hold after it: all
    /// of them, except a timelock schedule's (they run at the execute step; only the direct calls of a
    /// mixed playbook run now).
    pub fn actions_run_now(&self, m: &Manifest) -> Vec<String> {
        let scheduling = self
            .timelock
            .as_ref()
            .is_some_and(|t| t.step == TimelockStep::Schedule);
        self.actions
            .iter()
            .filter(|id| {
                !scheduling
                    || m.action(id)
                        .is_some_and(|a| a.via != crate::manifest::Via::Timelock)
            })
            .cloned()
            .collect()
    }

    /// Parses bundle bytes, checking the format tag first so another version gets a clear message.
    pub fn from_slice(path: &str, bytes: &[u8]) -> Result<Self, BundleError> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed {
                path: path.into(),
                reason: e.to_string(),
            })?;
        match v.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(BundleError::UnknownFormat {
                    path: path.into(),
                    found: other.into(),
                })
            }
            None => {
                return Err(BundleError::Malformed {
                    path: path.into(),
                    reason: "no \"format\" field".into(),
                })
            }
        }
        let b: Bundle = serde_json::from_value(v).map_err(|e| BundleError::Malformed {
            path: path.into(),
            reason: e.to_string(),
        })?;
        b.recompute()?;
        Ok(b)
    }

    /// Reads and checks a bundle file.
    pub fn read(path: &Path) -> Result<Self, BundleError> {
        let bytes = std::fs::read(path).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_slice(&path.display().to_string(), &bytes)
    }

    /// Writes the bundle atomically; refuses to replace an existing file unless `force`.
    pub fn write(&self, path: &Path, force: bool) -> Result<(), BundleError> {
        let mut body = serde_json::to_vec_pretty(self).map_err(|e| BundleError::Write {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        body.push(b'\n');
        crate::fsutil::atomic_write(path, &body, force).map_err(|source| BundleError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Recomputes every hash and recovers every signer; any difference is an error naming the field.
    pub fn recompute(&self) -> Result<(), BundleError> {
        if self.format != FORMAT {
            return Err(BundleError::UnknownFormat {
                path: String::new(),
                found: self.format.clone(),
            });
        }
        match (&self.safe_tx, &self.eoa_tx) {
            (Some(_), Some(_)) => {
                return Err(BundleError::Inconsistent(
                    "it holds both a Safe tx and an EOA tx".into(),
                ))
            }
            (None, None) => {
                return Err(BundleError::Inconsistent("it holds no transaction".into()))
            }
            _ => {}
        }
        if let Some(s) = &self.safe_tx {
            let h = s.tx.hashes_in(s.eip712_domain, self.chain_id, s.safe);
            if h.domain_separator != s.hashes.domain_separator {
                return Err(mismatch(
                    "safe_tx.hashes.domain_separator",
                    s.hashes.domain_separator,
                    h.domain_separator,
                ));
            }
            if h.message_hash != s.hashes.message_hash {
                return Err(mismatch(
                    "safe_tx.hashes.message_hash",
                    s.hashes.message_hash,
                    h.message_hash,
                ));
            }
            if h.safe_tx_hash != s.hashes.safe_tx_hash {
                return Err(mismatch(
                    "safe_tx.hashes.safe_tx_hash",
                    s.hashes.safe_tx_hash,
                    h.safe_tx_hash,
                ));
            }
            for (i, sig) in self.signatures.iter().enumerate() {
                let rec = recover_safe_signature(&sig.signature, sig.kind, &h.safe_tx_hash)
                    .map_err(|reason| BundleError::BadSignature {
                        index: i,
                        signer: sig.signer.to_checksum(None),
                        reason,
                    })?;
                if rec != sig.signer {
                    return Err(BundleError::BadSignature {
                        index: i,
                        signer: sig.signer.to_checksum(None),
                        reason: format!(
                            "it recovers to {}, not to the signer it names",
                            rec.to_checksum(None)
                        ),
                    });
                }
            }
        }
        if let Some(e) = &self.eoa_tx {
            let h = e.unsigned(self.chain_id).signature_hash();
            if h != e.signing_hash {
                return Err(mismatch("eoa_tx.signing_hash", e.signing_hash, h));
            }
            for (i, sig) in self.signatures.iter().enumerate() {
                let s = Signature::from_raw(&sig.signature).map_err(|err| {
                    BundleError::BadSignature {
                        index: i,
                        signer: sig.signer.to_checksum(None),
                        reason: err.to_string(),
                    }
                })?;
                let rec = s.recover_address_from_prehash(&h).map_err(|err| {
                    BundleError::BadSignature {
                        index: i,
                        signer: sig.signer.to_checksum(None),
                        reason: err.to_string(),
                    }
                })?;
                if rec != sig.signer || rec != e.from {
                    return Err(BundleError::BadSignature {
                        index: i,
                        signer: sig.signer.to_checksum(None),
                        reason: format!(
                            "it recovers to {}, the transaction is from {}",
                            rec.to_checksum(None),
                            e.from.to_checksum(None)
                        ),
                    });
                }
            }
        }
        if let Some(t) = &self.timelock {
            let id = timelock_operation_id(&t.calls, t.predecessor, t.salt, t.calls.len() != 1);
            if id != t.operation_id {
                return Err(mismatch("timelock.operation_id", t.operation_id, id));
            }
            let s = self.safe_tx.as_ref().ok_or_else(|| {
                BundleError::Inconsistent("a timelock operation needs a Safe tx".into())
            })?;
            // The timelock is called by the Safe tx itself, or (a playbook that mixes routes) by the last
            // entry of its MultiSend batch.
            let timelock_call = if s.tx.to == t.address && s.tx.operation == Operation::Call {
                Some(s.tx.data.clone())
            } else if s.tx.operation == Operation::DelegateCall {
                crate::safe::multisend_entries(&s.tx.data)
                    .and_then(|e| e.last().cloned())
                    .filter(|e| {
                        e.to == t.address && e.operation == Operation::Call && e.value.is_zero()
                    })
                    .map(|e| e.data)
            } else {
                None
            };
            let Some(timelock_call) = timelock_call else {
                return Err(BundleError::Inconsistent(
                    "the Safe tx does not call the timelock".into(),
                ));
            };
            if t.calls.is_empty() {
                return Err(BundleError::Inconsistent(
                    "the timelock operation has no calls".into(),
                ));
            }
            if timelock_calldata(t) != timelock_call {
                return Err(BundleError::Inconsistent(
                    "the timelock section (step, calls, predecessor, salt or delay) is not what the Safe tx's calldata schedules or executes".into(),
                ));
            }
        }
        Ok(())
    }

    /// The Safe hashes, for a Safe tx bundle.
    pub fn safe_hashes(&self) -> Option<&SafeHashes> {
        self.safe_tx.as_ref().map(|s| &s.hashes)
    }
}

/// A bundle that was recomputed and checked against the local manifest's policy. Only
/// [`verify_bundle`] makes one; signers accept only what comes from it (and only when allowed).
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    bundle: Bundle,
    report: Report,
}

impl VerifiedBundle {
    /// The bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// The policy report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The report, by value.
    pub fn into_report(self) -> Report {
        self.report
    }
}

/// The bundle's labels (`actions`, `playbook`) are free text that nothing hashes, yet execution picks
/// post-conditions from them and screens show them: they must be exactly what the decoded calls are.
fn check_labels(m: &Manifest, b: &Bundle, report: &Report) -> Result<(), BundleError> {
    if !report.allowed {
        // A refused bundle is never signed or executed; its report says why, labels aside.
        return Ok(());
    }
    if b.actions != report.actions {
        return Err(mismatch(
            "actions",
            format!("{:?}", b.actions),
            format!("{:?}", report.actions),
        ));
    }
    if let Some(p) = &b.playbook {
        let Some(pb) = m.playbook(p) else {
            return Err(BundleError::Inconsistent(format!(
                "it names playbook {p:?}, which the manifest does not define"
            )));
        };
        // A timelock execution carries only the playbook's timelock actions (a mixed playbook made its
        // direct calls when it scheduled them).
        let executing = report.tree.walk().iter().any(|n| {
            n.timelock_operation_id.is_some()
                && matches!(&n.decoded, crate::decode::Decoded::Function { name, .. } if name == "execute" || name == "executeBatch")
        });
        let expected: Vec<String> = if executing {
            pb.actions
                .iter()
                .filter(|id| {
                    m.action(id)
                        .is_some_and(|a| a.via == crate::manifest::Via::Timelock)
                })
                .cloned()
                .collect()
        } else {
            pb.actions.clone()
        };
        if expected != report.actions {
            return Err(mismatch(
                "playbook",
                format!("{p:?} (actions {:?})", pb.actions),
                format!("calls for actions {:?}", report.actions),
            ));
        }
    }
    Ok(())
}

/// Checks a (recomputed) bundle against the local manifest: same manifest, same chain, and the policy.
/// The report is returned whether allowed or not; callers that sign must check `report.allowed`.
pub fn verify_bundle(m: &Manifest, b: &Bundle) -> Result<VerifiedBundle, BundleError> {
    // A multi-chain manifest judges each bundle by the deployment on the bundle's chain.
    let view = m
        .is_multichain()
        .then(|| m.on_chain_id(b.chain_id))
        .flatten();
    let m = view.as_ref().unwrap_or(m);
    b.recompute()?;
    if b.manifest.hash != m.hash {
        return Err(BundleError::WrongManifest {
            bundle_name: b.manifest.name.clone(),
            bundle_hash: b.manifest.hash,
            name: m.name.clone(),
            hash: m.hash,
        });
    }
    if let (Some(s), Some(cfg)) = (&b.safe_tx, &m.safe) {
        if s.eip712_domain != cfg.version.eip712_domain() {
            return Err(mismatch(
                "safe_tx.eip712_domain",
                format!("{:?}", s.eip712_domain),
                format!(
                    "{:?} (Safe {})",
                    cfg.version.eip712_domain(),
                    cfg.version.as_str()
                ),
            ));
        }
    }
    let report = match (&b.safe_tx, &b.eoa_tx) {
        (Some(s), _) => policy::verify_safe_tx(m, b.chain_id, s.safe, &s.tx)?,
        (_, Some(e)) => {
            let mut r = policy::verify_plain(m, b.chain_id, Some(e.from), e.to, e.value, &e.data)?;
            policy::check_eoa_fee(
                m,
                &mut r,
                e.gas_limit,
                e.max_fee_per_gas,
                e.max_priority_fee_per_gas,
            );
            r
        }
        (None, None) => return Err(BundleError::Inconsistent("it holds no transaction".into())),
    };
    check_labels(m, b, &report)?;
    if let Some(s) = &b.safe_tx {
        if let Some(cfg) = &m.safe {
            for (i, sig) in b.signatures.iter().enumerate() {
                if !cfg.is_owner(&sig.signer) {
                    return Err(BundleError::BadSignature {
                        index: i,
                        signer: sig.signer.to_checksum(None),
                        reason: format!("not an owner of Safe {}", s.safe.to_checksum(None)),
                    });
                }
            }
        }
    }
    Ok(VerifiedBundle {
        bundle: b.clone(),
        report,
    })
}

/// Why a bundle signature counts towards the threshold, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureState {
    /// A recovered signature of an owner (or of the EOA transaction's sender): it counts.
    Counted,
    /// An approved hash (`v = 1`) proven on chain (`approvedHashes(owner, safeTxHash) != 0`): it counts.
    ProvenOnChain,
    /// An approved hash (`v = 1`) whose owner executes now and confirmed after the review: it counts.
    ExecutorConfirmed,
    /// An approved hash (`v = 1`) that nothing proves: it only names an owner, anyone can write one.
    Unproven,
    /// A second signature of an owner who is already counted.
    Duplicate,
    /// The signer is not an owner (or not the transaction's sender).
    NotOwner,
}

impl SignatureState {
    /// Whether the entry counts towards the threshold.
    pub fn counts(self) -> bool {
        matches!(
            self,
            Self::Counted | Self::ProvenOnChain | Self::ExecutorConfirmed
        )
    }

    /// Why, in words.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Counted => "signature recovered",
            Self::ProvenOnChain => "approved on chain (approveHash)",
            Self::ExecutorConfirmed => "the executing owner approves after the review",
            Self::Unproven => "NOT COUNTED: an approved-hash entry (v = 1) proves nothing by itself; it counts only when approveHash is on chain (give a node with --rpc-url) or when its owner executes with --approve-as-owner",
            Self::Duplicate => "NOT COUNTED: this owner's signature is already counted",
            Self::NotOwner => "NOT COUNTED: not an owner",
        }
    }
}

/// One signature entry and whether it counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TallyEntry {
    /// Who it names.
    pub signer: Address,
    /// How it was made.
    pub kind: SignatureKind,
    /// Whether and why it counts.
    pub state: SignatureState,
}

/// What a bundle's signatures are worth: each entry judged, each owner counted once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Signatures needed (the Safe threshold; 1 for an EOA tx).
    pub threshold: usize,
    /// The owners counted, once each, ascending.
    pub counted: Vec<Address>,
    /// Every entry in bundle order, with its state.
    pub entries: Vec<TallyEntry>,
    /// Owners not counted yet (empty for an EOA tx).
    pub missing: Vec<Address>,
}

impl Tally {
    /// Whether enough signatures count.
    pub fn ready(&self) -> bool {
        self.counted.len() >= self.threshold
    }

    /// Entries that do not count.
    pub fn not_counted(&self) -> impl Iterator<Item = &TallyEntry> {
        self.entries.iter().filter(|e| !e.state.counts())
    }

    /// The counted entries' signatures, ready for `pack_signatures` (one per owner).
    pub fn packable(&self, b: &Bundle) -> Vec<(Address, [u8; 65])> {
        let mut out: Vec<(Address, [u8; 65])> = Vec::new();
        for (e, sig) in self.entries.iter().zip(&b.signatures) {
            if e.state.counts() && !out.iter().any(|(a, _)| *a == e.signer) {
                if let Ok(raw) = <[u8; 65]>::try_from(sig.signature.as_ref()) {
                    out.push((e.signer, raw));
                }
            }
        }
        out
    }
}

/// Judges a (recomputed) bundle's signatures against `owners` and `threshold`: recovered ECDSA signatures of
/// owners count; an approved-hash entry (Safe's `v = 1`, which only *names* an owner) counts only when its
/// owner is in `proven_on_chain` (read `approvedHashes` from a node) or is `confirmed_executor` (the owner
/// who executes and confirmed after the review); an owner counts once however many entries name it.
pub fn tally(
    b: &Bundle,
    owners: &[Address],
    threshold: usize,
    proven_on_chain: &[Address],
    confirmed_executor: Option<Address>,
) -> Tally {
    let mut counted: Vec<Address> = Vec::new();
    let mut entries = Vec::new();
    let eoa_from = b.eoa_tx.as_ref().map(|e| e.from);
    for sig in &b.signatures {
        let owner_ok = match eoa_from {
            Some(from) => sig.signer == from,
            None => owners.contains(&sig.signer),
        };
        let state = if !owner_ok {
            SignatureState::NotOwner
        } else if counted.contains(&sig.signer) {
            SignatureState::Duplicate
        } else if sig.kind == SignatureKind::ApprovedHash {
            if proven_on_chain.contains(&sig.signer) {
                SignatureState::ProvenOnChain
            } else if confirmed_executor == Some(sig.signer) {
                SignatureState::ExecutorConfirmed
            } else {
                SignatureState::Unproven
            }
        } else if sig.kind == SignatureKind::Transaction && eoa_from.is_none() {
            SignatureState::NotOwner
        } else {
            SignatureState::Counted
        };
        if state.counts() {
            counted.push(sig.signer);
        }
        entries.push(TallyEntry {
            signer: sig.signer,
            kind: sig.kind,
            state,
        });
    }
    counted.sort();
    let (threshold, missing) = if eoa_from.is_some() {
        (1, Vec::new())
    } else {
        (
            threshold,
            owners
                .iter()
                .filter(|o| !counted.contains(o))
                .copied()
                .collect(),
        )
    };
    Tally {
        threshold,
        counted,
        entries,
        missing,
    }
}

/// [`tally`] under the manifest's owners and threshold.
pub fn tally_manifest(m: &Manifest, b: &Bundle, proven_on_chain: &[Address]) -> Tally {
    let view = m
        .is_multichain()
        .then(|| m.on_chain_id(b.chain_id))
        .flatten();
    let m = view.as_ref().unwrap_or(m);
    let (owners, threshold) = m
        .safe
        .as_ref()
        .map_or((Vec::new(), 1), |s| (s.owners.clone(), s.threshold));
    tally(b, &owners, threshold, proven_on_chain, None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use alloy::primitives::address;
    use alloy::signers::local::PrivateKeySigner;
    use alloy::signers::SignerSync;

    const A: Address = address!("00000000000000000000000000000000000000aa");

    fn bundle_with(sigs: Vec<SignatureEntry>) -> Bundle {
        let tx = SafeTxFields::new(A, U256::ZERO, Bytes::new(), Operation::Call, U256::ZERO);
        let safe = address!("5AFe00000000000000000000000000000000a11C");
        Bundle {
            format: FORMAT.into(),
            manifest: ManifestRef {
                name: "t".into(),
                hash: B256::ZERO,
            },
            chain_id: 1,
            playbook: None,
            actions: Vec::new(),
            created_at: 0,
            safe_tx: Some(SafeRequest {
                safe,
                hashes: tx.hashes(1, safe),
                tx,
                eip712_domain: SafeDomain::ChainId,
            }),
            eoa_tx: None,
            timelock: None,
            signatures: sigs,
            signed_tx: None,
            receipt: None,
            postconditions: None,
            audit: Vec::new(),
            simulation: None,
        }
    }

    fn approved(owner: Address) -> SignatureEntry {
        let mut raw = [0u8; 65];
        raw[12..32].copy_from_slice(owner.as_slice());
        raw[64] = 1;
        SignatureEntry {
            signer: owner,
            signature: Bytes::copy_from_slice(&raw),
            kind: SignatureKind::ApprovedHash,
            device: None,
            mode: None,
        }
    }

    #[test]
    fn tally_counts_proven_signatures_once() {
        let k1 = PrivateKeySigner::from_bytes(&B256::repeat_byte(1)).unwrap();
        let k2 = PrivateKeySigner::from_bytes(&B256::repeat_byte(2)).unwrap();
        let b0 = bundle_with(Vec::new());
        let h = b0.safe_tx.as_ref().unwrap().hashes.safe_tx_hash;
        let s1 = k1.sign_hash_sync(&h).unwrap();
        let e1 = SignatureEntry {
            signer: k1.address(),
            signature: Bytes::copy_from_slice(&s1.as_bytes()),
            kind: SignatureKind::Eip712,
            device: None,
            mode: None,
        };
        let owners = [k1.address(), k2.address()];
        let b = bundle_with(vec![e1.clone(), e1.clone(), approved(k2.address())]);
        b.recompute().unwrap();
        let t = tally(&b, &owners, 2, &[], None);
        assert_eq!(t.counted, vec![k1.address()]);
        assert_eq!(
            t.entries.iter().map(|e| e.state).collect::<Vec<_>>(),
            [
                SignatureState::Counted,
                SignatureState::Duplicate,
                SignatureState::Unproven
            ]
        );
        assert!(!t.ready());
        assert_eq!(t.missing, vec![k2.address()]);
        // Proven on chain, or confirmed by the executing owner: it counts.
        assert!(tally(&b, &owners, 2, &[k2.address()], None).ready());
        assert!(tally(&b, &owners, 2, &[], Some(k2.address())).ready());
        // The executor confirming does not make another owner's entry count.
        assert!(!tally(&b, &owners, 2, &[], Some(k1.address())).ready());
        // A non-owner never counts.
        let stranger = address!("00000000000000000000000000000000000000bb");
        let t = tally(
            &bundle_with(vec![approved(stranger)]),
            &owners,
            1,
            &[stranger],
            None,
        );
        assert_eq!(t.entries[0].state, SignatureState::NotOwner);
        assert!(t.counted.is_empty());
    }

    #[test]
    fn approved_hash_must_be_canonical() {
        let h = B256::ZERO;
        let mut raw = [0u8; 65];
        raw[12..32].copy_from_slice(A.as_slice());
        raw[64] = 1;
        assert_eq!(
            recover_safe_signature(&raw, SignatureKind::ApprovedHash, &h),
            Ok(A)
        );
        let mut dirty = raw;
        dirty[0] = 1;
        assert!(recover_safe_signature(&dirty, SignatureKind::ApprovedHash, &h).is_err());
        let mut with_s = raw;
        with_s[40] = 1;
        assert!(recover_safe_signature(&with_s, SignatureKind::ApprovedHash, &h).is_err());
    }
}
