//! One error type for the whole workflow: what kind of failure (so a front end can pick an exit code or a
//! colour), a stable code, the message, and a recommendation in words that fit any front end. No CLI
//! flag names here: the command line adds those (see `cli::output`).

use crate::bundle::BundleError;
use crate::chain::ChainError;
use crate::compose::ComposeError;
use crate::decode::DecodeError;
use crate::policy::Report;
use crate::signer::ledger::apdu::LedgerError;
use crate::signer::SignerError;
use serde::Serialize;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Something failed (I/O, the node, the audit log).
    Failed,
    /// The input cannot be used as given (missing parameter, no such playbook).
    BadInput,
    /// Verification refused it: never signed, never sent.
    Refused,
    /// The signer refused or is unavailable.
    Signer,
}

/// A workflow error.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct IncidentError {
    /// The kind.
    pub kind: ErrorKind,
    /// A stable machine-readable code, e.g. `codehash`, `not_enough_signatures`.
    pub code: &'static str,
    /// What happened.
    pub message: String,
    /// What to do next, in words for any front end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// The verification report, when verification refused.
    #[serde(skip)]
    pub report: Option<Box<Report>>,
    /// The simulation, when the simulation refused.
    #[serde(skip)]
    pub simulation: Option<Box<crate::bundle::simulation::Simulation>>,
}

impl IncidentError {
    /// A new error.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            recommendation: None,
            report: None,
            simulation: None,
        }
    }

    /// Verification refused it.
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, code, message)
    }

    /// Something failed.
    pub fn failed(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, code, message)
    }

    /// The input cannot be used.
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, code, message)
    }

    /// The signer refused or is unavailable.
    pub fn signer(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Signer, code, message)
    }

    /// Adds the recommendation.
    pub fn recommend(mut self, r: impl Into<String>) -> Self {
        self.recommendation = Some(r.into());
        self
    }

    /// Attaches the refusing simulation.
    pub fn with_simulation(mut self, s: crate::bundle::simulation::Simulation) -> Self {
        self.simulation = Some(Box::new(s));
        self
    }

    /// Attaches the refusing report.
    pub fn with_report(mut self, r: Report) -> Self {
        self.report = Some(Box::new(r));
        self
    }
}

impl From<BundleError> for IncidentError {
    fn from(e: BundleError) -> Self {
        let (kind, code, rec) = match &e {
            BundleError::Io { .. } => (ErrorKind::Failed, "bundle_unreadable", "check the path"),
            BundleError::Malformed { .. } => (
                ErrorKind::Refused,
                "bundle_malformed",
                "the file is damaged or not a bundle: ask for it again",
            ),
            BundleError::UnknownFormat { .. } => (
                ErrorKind::Refused,
                "bundle_format",
                "update breakglass on this machine, or ask the sender for a breakglass/bundle@1 file",
            ),
            BundleError::Mismatch { .. } => (
                ErrorKind::Refused,
                "bundle_tampered",
                "do not sign it; compose the transaction again from the playbook",
            ),
            BundleError::Inconsistent(_) => (
                ErrorKind::Refused,
                "bundle_inconsistent",
                "do not sign it; compose it again",
            ),
            BundleError::WrongManifest { .. } => (
                ErrorKind::Refused,
                "wrong_manifest",
                "use the manifest the bundle was composed with (compare the manifest hashes), or compose again here",
            ),
            BundleError::BadSignature { .. } => (
                ErrorKind::Refused,
                "bad_signature",
                "drop that signature and ask the owner to sign again",
            ),
            BundleError::Decode(_) => (
                ErrorKind::Refused,
                "malformed_calldata",
                "do not sign it: a legitimate encoder never produces this",
            ),
            BundleError::Write { .. } => (
                ErrorKind::Failed,
                "bundle_write",
                "check the directory and free space; nothing was replaced",
            ),
        };
        IncidentError::new(kind, code, e.to_string()).recommend(rec)
    }
}

impl From<ChainError> for IncidentError {
    fn from(e: ChainError) -> Self {
        let rec = match &e {
            ChainError::WrongChain { .. } => "connect to a node of the manifest's chain",
            ChainError::BadUrl(_) => "give the node's URL, e.g. http://127.0.0.1:8545",
            ChainError::Rpc { message, revert }
                if revert.is_some() || message.to_lowercase().contains("revert") =>
            {
                "the node answered: the call would fail on chain as it is now (e.g. the contract is already paused, or the sender lacks the role); check the contract's state"
            }
            ChainError::Rpc { .. } => "the node refused the request: see its message",
            ChainError::Tls { .. } => "check the URL is the node you mean: its certificate is not one this machine trusts for that name (for a private CA, point SSL_CERT_FILE at its certificate)",
            ChainError::TlsSetup { .. } => "install the system's CA certificates (Debian: ca-certificates), or point SSL_CERT_FILE at a readable PEM file of the CAs to trust",
            ChainError::Timeout { .. } => {
                "try again later: the transaction is found by hash and never sent twice"
            }
            _ => "check that the node is running and reachable, or work offline with an explicit nonce (and fees)",
        };
        IncidentError::failed("chain", e.to_string()).recommend(rec)
    }
}

impl From<DecodeError> for IncidentError {
    fn from(e: DecodeError) -> Self {
        IncidentError::refused("malformed_calldata", e.to_string())
            .recommend("do not sign it: a legitimate encoder never produces this")
    }
}

impl From<ComposeError> for IncidentError {
    fn from(e: ComposeError) -> Self {
        match e {
            ComposeError::Refused(msg, report) => {
                let layout = report.findings.iter().any(|f| f.code == "storage_layout");
                IncidentError::refused(
                    "compose_refused",
                    format!("composition refused by verification: {msg}"),
                )
                .with_report(*report)
                .recommend(if layout {
                    "do not upgrade to this implementation: its storage layout would corrupt the proxy's state; fix the implementation (append, do not insert) and its layout file"
                } else {
                    "the manifest's action and its constraints disagree: fix the manifest and pin it again"
                })
            }
            ComposeError::Bundle(b) => b.into(),
            ComposeError::Decode(d) => d.into(),
            ComposeError::DelayTooShort { .. } => IncidentError::refused("timelock_delay", e.to_string())
                .recommend("use at least the manifest's min_delay: a shorter delay is what the manifest refuses"),
            ComposeError::NoPlaybook(..) => IncidentError::bad_input("no_playbook", e.to_string()),
            ComposeError::NeedsArg { .. } | ComposeError::BadArg { .. } | ComposeError::Missing(_) => {
                IncidentError::bad_input("compose_input", e.to_string())
            }
        }
    }
}

impl From<SignerError> for IncidentError {
    fn from(e: SignerError) -> Self {
        let code = match &e {
            SignerError::Ledger(LedgerError::Rejected) => "rejected",
            SignerError::Ledger(
                LedgerError::BlindSigningOrInvalid { .. } | LedgerError::TypedDataRefused,
            ) => "blind_signing",
            SignerError::Ledger(LedgerError::Locked) => "locked",
            SignerError::Ledger(LedgerError::AppNotOpen { .. }) => "app_not_open",
            SignerError::Ledger(_) => "device",
            SignerError::Transport(_) => "device_unavailable",
            SignerError::Keystore(crate::signer::keystore::KeystoreError::WrongPassword {
                ..
            }) => "wrong_password",
            SignerError::Keystore(_) => "keystore",
            SignerError::WrongSigner { .. } => "wrong_signer",
            SignerError::NotSignable(_) => "not_signable",
        };
        let kind = if matches!(e, SignerError::NotSignable(_)) {
            ErrorKind::Refused
        } else {
            ErrorKind::Signer
        };
        IncidentError::new(kind, code, e.to_string())
            .recommend("nothing was signed and nothing was written")
    }
}

impl From<crate::audit::AuditError> for IncidentError {
    fn from(e: crate::audit::AuditError) -> Self {
        IncidentError::failed("audit", e.to_string()).recommend(
            "fix the audit log's location and try again: a step that cannot be recorded is not done",
        )
    }
}

impl From<crate::manifest::trust::TrustError> for IncidentError {
    fn from(e: crate::manifest::trust::TrustError) -> Self {
        use crate::manifest::trust::TrustError;
        let code = match &e {
            TrustError::BadPin(_) => "bad_pin",
            _ => "trust_store",
        };
        IncidentError::failed(code, e.to_string())
    }
}

impl From<crate::simulate::SimError> for IncidentError {
    fn from(e: crate::simulate::SimError) -> Self {
        use crate::simulate::SimError;
        let (kind, code, rec) = match &e {
            SimError::Node(_) => (
                ErrorKind::Failed,
                "simulation_node",
                "use a node that serves the block and eth_getProof (an archive node for old blocks), or skip the simulation and say so",
            ),
            SimError::Snapshot(_) => (
                ErrorKind::Refused,
                "snapshot_refused",
                "do not rely on this snapshot: take a new one online and move it again",
            ),
            SimError::MissingState(_) => (
                ErrorKind::Refused,
                "snapshot_incomplete",
                "take the snapshot again online from the same bundle",
            ),
            SimError::Evm(_) => (ErrorKind::Failed, "simulation_failed", "report this"),
            SimError::Input(_) => (ErrorKind::BadInput, "simulation_input", "check the bundle and the chain"),
        };
        IncidentError::new(kind, code, e.to_string()).recommend(rec)
    }
}
