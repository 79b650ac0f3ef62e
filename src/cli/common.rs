//! What the command files share: argument parsers, the signer options, the mapping of core errors to
//! exit codes and hints, and the printers of reports, trust and signing state. One place, so that no
//! command file imports another.

use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::{Bundle, BundleError, Tally};
use crate::manifest::trust::Trust;
use crate::policy::{self, Report};
use crate::signer::keystore::{read_password, KeystoreSigner};
use crate::signer::ledger::apdu::{ledger_live_path, HdPath, LedgerError};
use crate::signer::ledger::{HidTransport, LedgerSigner, TcpTransport, Transport};
use crate::signer::{Signer, SignerError};
use alloy::primitives::{Address, Bytes, B256, U256};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// A usage error (exit 2).
pub(crate) fn usage(msg: impl Into<String>) -> CliError {
    CliError::new("usage", msg).code(ExitCode::Usage)
}

pub(crate) fn bundle_error(e: BundleError) -> CliError {
    let (kind, code, hint) = match &e {
        BundleError::Io { .. } => ("bundle_unreadable", ExitCode::Error, "check the path"),
        BundleError::Malformed { .. } => ("bundle_malformed", ExitCode::Refused, "the file is damaged or not a bundle: ask for it again"),
        BundleError::UnknownFormat { .. } => ("bundle_format", ExitCode::Refused, "update breakglass on this machine, or ask the sender for a breakglass/bundle@1 file"),
        BundleError::Mismatch { .. } => ("bundle_tampered", ExitCode::Refused, "do not sign it; compose the transaction again from the playbook"),
        BundleError::Inconsistent(_) => ("bundle_inconsistent", ExitCode::Refused, "do not sign it; compose it again"),
        BundleError::WrongManifest { .. } => ("wrong_manifest", ExitCode::Refused, "use the manifest the bundle was composed with (check `breakglass manifest hash`), or compose again here"),
        BundleError::BadSignature { .. } => ("bad_signature", ExitCode::Refused, "drop that signature and ask the owner to sign again"),
        BundleError::Decode(_) => ("malformed_calldata", ExitCode::Refused, "do not sign it"),
        BundleError::Write { .. } => ("write_failed", ExitCode::Error, "choose another output path, or pass --force to replace the file"),
    };
    CliError::new(kind, e.to_string()).code(code).hint(hint)
}

pub(crate) fn parse_b256(s: &str, what: &str) -> Result<B256, CliError> {
    let t = s.trim();
    if t.len() != 66 || !t.starts_with("0x") {
        return Err(CliError::new(
            "usage",
            format!("{what} must be 0x followed by 64 hex digits"),
        )
        .code(ExitCode::Usage));
    }
    t.parse()
        .map_err(|_| CliError::new("usage", format!("{what} is not hex")).code(ExitCode::Usage))
}

pub(crate) fn trust_text(t: &Trust) -> String {
    match t {
        Trust::Pinned { source } => format!("PINNED (by {source})"),
        Trust::Approved {
            approvals,
            threshold,
        } => {
            format!("APPROVED by {approvals} of {threshold} Safe owners")
        }
        Trust::Untrusted { reason } => format!("UNTRUSTED: {reason}"),
    }
}

/// Which signer to use.
#[derive(Debug, Args, Clone)]
pub struct SignerArgs {
    /// A Ledger on USB.
    #[arg(long, conflicts_with_all = ["speculos", "keystore"])]
    pub ledger: bool,
    /// Speculos, or `breakglass device-sim`, at HOST:PORT (raw APDU port).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "keystore")]
    pub speculos: Option<String>,
    /// An encrypted keystore (Web3 Secret Storage, as geth and `cast wallet` write).
    #[arg(long, value_name = "FILE")]
    pub keystore: Option<PathBuf>,
    /// Read the keystore password from this file instead of prompting.
    #[arg(long, value_name = "FILE", requires = "keystore")]
    pub password_file: Option<PathBuf>,
    /// Ledger derivation path (default m/44'/60'/0'/0/0).
    #[arg(long, value_name = "PATH", conflicts_with = "account")]
    pub hd_path: Option<String>,
    /// Ledger Live account number N: m/44'/60'/N'/0/0.
    #[arg(long, value_name = "N")]
    pub account: Option<u32>,
    /// Seconds to wait for the person to confirm on the device.
    #[arg(long, value_name = "SECONDS", default_value = "180")]
    pub device_timeout: u64,
    /// How a Ledger signs a Safe transaction: `full` streams the typed data so the device shows the Safe,
    /// its chain and (with the app's "Raw messages" setting) every field; `hashed` sends two hashes
    /// (apps older than 1.9); `auto` is full when the app has it.
    #[arg(long, value_name = "auto|full|hashed", default_value = "auto")]
    pub eip712: crate::signer::ledger::Eip712Mode,
}

pub(crate) fn signer_error(e: SignerError) -> CliError {
    let kind = match &e {
        SignerError::Ledger(LedgerError::Rejected) => "rejected",
        SignerError::Ledger(
            LedgerError::BlindSigningOrInvalid { .. } | LedgerError::TypedDataRefused,
        ) => "blind_signing",
        SignerError::Ledger(LedgerError::Locked) => "locked",
        SignerError::Ledger(LedgerError::AppNotOpen { .. }) => "app_not_open",
        SignerError::Ledger(_) => "device",
        SignerError::Transport(_) => "device_unavailable",
        SignerError::Keystore(crate::signer::keystore::KeystoreError::WrongPassword { .. }) => {
            "wrong_password"
        }
        SignerError::Keystore(_) => "keystore",
        SignerError::WrongSigner { .. } => "wrong_signer",
        SignerError::NotSignable(_) => "not_signable",
    };
    let code = if matches!(e, SignerError::NotSignable(_)) {
        ExitCode::Refused
    } else {
        ExitCode::Signer
    };
    CliError::new(kind, e.to_string())
        .code(code)
        .hint("nothing was signed and nothing was written")
}

impl SignerArgs {
    pub(crate) fn path(&self) -> Result<HdPath, CliError> {
        match (&self.hd_path, self.account) {
            (Some(p), _) => {
                HdPath::parse(p).map_err(|e| CliError::new("usage", e).code(ExitCode::Usage))
            }
            (None, Some(n)) => Ok(ledger_live_path(n)),
            (None, None) => Ok(ledger_live_path(0)),
        }
    }

    /// Whether any signer was chosen.
    pub fn chosen(&self) -> bool {
        self.ledger || self.speculos.is_some() || self.keystore.is_some()
    }

    /// Opens the chosen signer.
    pub fn open(&self) -> Result<Box<dyn Signer>, CliError> {
        if let Some(ks) = &self.keystore {
            let pw = read_password(self.password_file.as_deref(), ks)
                .map_err(|e| signer_error(e.into()))?;
            let s = KeystoreSigner::open(ks, &pw).map_err(|e| signer_error(e.into()))?;
            return Ok(Box::new(s));
        }
        let transport: Box<dyn Transport> = if let Some(addr) = &self.speculos {
            Box::new(
                TcpTransport::connect(addr, Duration::from_secs(self.device_timeout))
                    .map_err(|e| signer_error(e.into()))?,
            )
        } else if self.ledger {
            Box::new(HidTransport::open().map_err(|e| signer_error(e.into()))?)
        } else {
            return Err(CliError::new(
                "usage",
                "choose a signer: --ledger, --speculos HOST:PORT or --keystore FILE",
            )
            .code(ExitCode::Usage));
        };
        Ok(Box::new(
            LedgerSigner::new(transport, self.path()?).with_eip712(self.eip712),
        ))
    }

    /// Opens a Ledger (USB or Speculos) for the `ledger` subcommands.
    pub(crate) fn open_ledger(&self) -> Result<LedgerSigner, CliError> {
        let transport: Box<dyn Transport> = match &self.speculos {
            Some(addr) => Box::new(
                TcpTransport::connect(addr, Duration::from_secs(self.device_timeout))
                    .map_err(|e| signer_error(e.into()))?,
            ),
            None => Box::new(HidTransport::open().map_err(|e| signer_error(e.into()))?),
        };
        Ok(LedgerSigner::new(transport, self.path()?).with_eip712(self.eip712))
    }
}

/// The signing state for `--json`.
pub(crate) fn tally_json(t: &Tally) -> serde_json::Value {
    json!({
        "signatures": t.counted.len(),
        "threshold": t.threshold,
        "signed_by": t.counted.iter().map(|a| a.to_checksum(None)).collect::<Vec<_>>(),
        "entries": t.entries.iter().map(|e| json!({
            "signer": e.signer.to_checksum(None),
            "kind": e.kind,
            "state": e.state,
            "counts": e.state.counts(),
            "why": e.state.explain(),
        })).collect::<Vec<_>>(),
        "not_counted": t.not_counted().count(),
        "missing": t.missing.iter().map(|a| a.to_checksum(None)).collect::<Vec<_>>(),
        "ready": t.ready(),
    })
}

/// The signing state for a person: what counts, what does not and why, who is missing.
pub(crate) fn print_tally(t: &Tally, b: &Bundle) {
    outln!(
        "{} of {} signature{}{}",
        t.counted.len(),
        t.threshold,
        if t.threshold == 1 { "" } else { "s" },
        if t.ready() {
            " — ready to execute"
        } else {
            ""
        }
    );
    for (e, sig) in t.entries.iter().zip(&b.signatures) {
        let device = sig
            .device
            .as_ref()
            .map(|d| format!(", {d}"))
            .unwrap_or_default();
        if e.state.counts() {
            outln!(
                "  signed   {} ({:?}{device}): {}",
                e.signer.to_checksum(None),
                e.kind,
                e.state.explain()
            );
        } else {
            outln!(
                "  ignored  {} ({:?}{device}): {}",
                e.signer.to_checksum(None),
                e.kind,
                e.state.explain()
            );
        }
    }
    if !t.ready() {
        for a in &t.missing {
            outln!("  missing  {}", a.to_checksum(None));
        }
    }
}

pub(crate) fn parse_addr(s: &str, what: &str) -> Result<Address, CliError> {
    crate::manifest::parse_address_strict(s).map_err(|(m, h)| usage(format!("{what}: {m}")).hint(h))
}

pub(crate) fn parse_u256(s: &str, what: &str) -> Result<U256, CliError> {
    let t = s.trim();
    let r = if let Some(h) = t.strip_prefix("0x") {
        U256::from_str_radix(h, 16)
    } else {
        U256::from_str_radix(t, 10)
    };
    r.map_err(|_| {
        usage(format!("{what} {s:?} is not a number"))
            .hint("write a decimal integer (wei) or 0x-hex")
    })
}

pub(crate) fn parse_hex(s: &str, what: &str) -> Result<Bytes, CliError> {
    let t = s.trim();
    let h = t.strip_prefix("0x").unwrap_or(t);
    alloy::hex::decode(h).map(Bytes::from).map_err(|e| {
        CliError::new("bad_hex", format!("{what} is not hex: {e}"))
            .code(ExitCode::Refused)
            .hint("pass 0x-prefixed hex bytes, e.g. --data 0x8456cb59")
    })
}

pub(crate) fn print_report(ctx: &Ctx, report: &Report, trust: &Trust) {
    if ctx.json {
        let mut v = serde_json::to_value(report).unwrap_or_default();
        v["trust"] = serde_json::to_value(trust).unwrap_or_default();
        v["trusted"] = serde_json::json!(trust.is_trusted());
        print_json(v);
    } else {
        out!("{}", policy::render_text(report));
        if !trust.is_trusted() {
            outln!(
                "\nNOTE: the manifest itself is {}",
                super::common::trust_text(trust)
            );
        }
    }
}
