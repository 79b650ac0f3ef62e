//! `breakglass sign`, `breakglass ledger list|address|config`, `breakglass device-sim`, and the signer
//! options they share.

use super::compose::bundle_error;
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::{self, Bundle, SignatureEntry};
use crate::manifest::trust;
use crate::safe::SignatureKind;
use crate::signer::keystore::{read_password, KeystoreSigner};
use crate::signer::ledger::apdu::{ledger_live_path, HdPath, LedgerError};
use crate::signer::ledger::sim::{self, SimConfig, SimMode};
use crate::signer::ledger::{HidTransport, LedgerSigner, TcpTransport, Transport};
use crate::signer::{self, Signer, SignerError, SigningRequest};
use alloy::primitives::{Address, Bytes};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

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
}

pub(crate) fn signer_error(e: SignerError) -> CliError {
    let kind = match &e {
        SignerError::Ledger(LedgerError::Rejected) => "rejected",
        SignerError::Ledger(LedgerError::BlindSigningOrInvalid { .. }) => "blind_signing",
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
    fn path(&self) -> Result<HdPath, CliError> {
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
        Ok(Box::new(LedgerSigner::new(transport, self.path()?)))
    }

    /// Opens a Ledger (USB or Speculos) for the `ledger` subcommands.
    fn open_ledger(&self) -> Result<LedgerSigner, CliError> {
        let transport: Box<dyn Transport> = match &self.speculos {
            Some(addr) => Box::new(
                TcpTransport::connect(addr, Duration::from_secs(self.device_timeout))
                    .map_err(|e| signer_error(e.into()))?,
            ),
            None => Box::new(HidTransport::open().map_err(|e| signer_error(e.into()))?),
        };
        Ok(LedgerSigner::new(transport, self.path()?))
    }
}

/// Adds a checked signature to a copy of the bundle (sorted by signer, as Safe requires); for a guardian
/// transaction also the signed raw transaction.
pub(crate) fn attach_signature(
    b: &Bundle,
    req: &SigningRequest,
    address: Address,
    sig: &alloy::primitives::Signature,
    device: String,
) -> Result<Bundle, CliError> {
    let mut out = b.clone();
    let (bytes, kind): (Bytes, SignatureKind) = if b.safe_tx.is_some() {
        (
            Bytes::copy_from_slice(&signer::safe_signature_bytes(sig)),
            SignatureKind::Eip712,
        )
    } else {
        (
            Bytes::copy_from_slice(&sig.as_bytes()),
            SignatureKind::Transaction,
        )
    };
    out.signatures.push(SignatureEntry {
        signer: address,
        signature: bytes,
        kind,
        device: Some(device),
    });
    out.signatures.sort_by_key(|x| x.signer);
    if let Some(tx) = req.transaction() {
        use alloy::consensus::SignableTransaction;
        use alloy::eips::eip2718::Encodable2718;
        let env = alloy::consensus::TxEnvelope::from(tx.clone().into_signed(*sig));
        out.signed_tx = Some(json!({
            "raw": format!("0x{}", alloy::hex::encode(env.encoded_2718())),
            "hash": format!("{:#x}", env.tx_hash()),
        }));
    }
    out.recompute().map_err(bundle_error)?;
    Ok(out)
}

/// `breakglass sign …`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle to sign.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Signer.
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Where to write the signed bundle.
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Replace an existing output file (e.g. sign in place).
    #[arg(long)]
    pub force: bool,
}

/// Runs `sign`.
pub fn run_sign(ctx: &Ctx, a: SignArgs) -> Result<(), CliError> {
    if !a.signer.chosen() {
        return Err(CliError::new(
            "usage",
            "choose a signer: --ledger, --speculos HOST:PORT or --keystore FILE",
        )
        .code(ExitCode::Usage));
    }
    if !a.force && a.out.exists() {
        return Err(CliError::new(
            "exists",
            format!(
                "{} exists; pass --force to replace it (nothing was signed)",
                a.out.display()
            ),
        )
        .code(ExitCode::Usage));
    }
    let m = ctx.load_manifest()?;
    let trust_state = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
    if let trust::Trust::Untrusted { reason } = &trust_state {
        return Err(CliError::new("untrusted_manifest", format!("refusing to sign under an untrusted manifest: {reason}"))
            .code(ExitCode::Refused)
            .hint("review the manifest, then `breakglass manifest pin`, or pass --pin 0x<hash> agreed out of band"));
    }
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let v = bundle::verify_bundle(&m, &b).map_err(bundle_error)?;
    if !v.report().allowed {
        super::verify::print_report(ctx, v.report(), &trust_state);
        return Err(CliError::new(
            "refused",
            "verification refused this bundle: breakglass never signs it",
        )
        .code(ExitCode::Refused));
    }
    if b.receipt.is_some() || b.signed_tx.is_some() && b.eoa_tx.is_none() {
        return Err(CliError::new(
            "wrong_step",
            "this bundle was already executed: there is nothing left to sign",
        )
        .code(ExitCode::Refused));
    }
    let req = SigningRequest::new(&v, &trust_state).map_err(signer_error)?;
    if let Some(url) = &ctx.rpc_url {
        let chain =
            crate::chain::Chain::connect(url, m.chain_id).map_err(super::compose::chain_error)?;
        super::compose::check_codehashes_now(&chain, &m, v.report())?;
    }
    // Before touching the device: what it will show, so the guardian compares screen to screen.
    if !ctx.json {
        out!("{}", crate::policy::render_text(v.report()));
        outln!();
        if let Some((d, msg, h)) = req.safe_hashes() {
            outln!("The device will show (hashed EIP-712, blind signing):");
            outln!("  Domain hash   {}", crate::policy::render::grouped_hex(&d));
            outln!(
                "  Message hash  {}",
                crate::policy::render::grouped_hex(&msg)
            );
            outln!(
                "  (safeTxHash   {}: what Safe{{Wallet}} shows)",
                crate::policy::render::grouped_hex(&h)
            );
        } else if let Some(tx) = req.transaction() {
            outln!("The device will show: to {}, amount {} wei, max fees {} wei, and \"Blind signing ahead\" (calldata)", 
                alloy::primitives::TxKind::to(&tx.to).map(|t| t.to_checksum(None)).unwrap_or_default(),
                tx.value,
                u128::from(tx.gas_limit) * tx.max_fee_per_gas);
        }
        outln!("Compare every character on the device with the lines above before you approve.");
    }
    let mut s = a.signer.open()?;
    let address = s.address().map_err(signer_error)?;
    let expected_ok = match (&b.safe_tx, &b.eoa_tx) {
        (Some(_), _) => m.safe.as_ref().is_some_and(|c| c.is_owner(&address)),
        (_, Some(e)) => e.from == address,
        _ => false,
    };
    if !expected_ok {
        return Err(CliError::new(
            "wrong_signer",
            format!("the signer's address {} is not {}", address.to_checksum(None), if b.safe_tx.is_some() { "an owner of the manifest's Safe" } else { "the transaction's sender" }),
        )
        .code(ExitCode::Signer)
        .hint("use --account N or --hd-path for another Ledger account, or another keystore; nothing was signed"));
    }
    if b.signatures.iter().any(|x| x.signer == address) {
        return Err(CliError::new(
            "already_signed",
            format!("{} already signed this bundle", address.to_checksum(None)),
        )
        .code(ExitCode::Signer));
    }
    if !ctx.json {
        outln!(
            "\nConfirm on {} ({})…",
            s.label(),
            address.to_checksum(None)
        );
    }
    let sig = signer::sign_request(s.as_mut(), &req, address).map_err(signer_error)?;
    let out = attach_signature(&b, &req, address, &sig, s.label())?;
    let (bytes, kind) = out
        .signatures
        .iter()
        .find(|x| x.signer == address)
        .map(|x| (x.signature.clone(), x.kind))
        .ok_or_else(|| CliError::new("internal", "signature not attached"))?;
    out.recompute().map_err(bundle_error)?;
    if !a.force && a.out.exists() {
        return Err(bundle_error(crate::bundle::BundleError::Write {
            path: a.out.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; pass --force to replace it",
            ),
        }));
    }
    let entry = ctx.audit(
        "sign",
        json!({
            "signer": address.to_checksum(None),
            "device": s.label(),
            "digest": format!("{:#x}", req.digest()),
            "kind": kind,
            "out": a.out.display().to_string(),
        }),
    )?;
    let mut out = out;
    out.audit.push(crate::bundle::AuditRef {
        step: "sign".into(),
        entry,
    });
    out.write(&a.out, a.force).map_err(bundle_error)?;
    let proven = super::transfer::onchain_approvals(ctx, &m, &out)?;
    let tally = crate::bundle::tally_manifest(&m, &out, &proven);
    let (counted, threshold) = (tally.counted.len(), tally.threshold);
    if ctx.json {
        print_json(json!({
            "signer": address.to_checksum(None),
            "signature": format!("{bytes}"),
            "kind": kind,
            "device": s.label(),
            "out": a.out.display().to_string(),
            "signatures": counted,
            "threshold": threshold,
        }));
    } else {
        outln!(
            "signed by {} ({}); {} of {} signatures; wrote {}",
            address.to_checksum(None),
            s.label(),
            counted,
            threshold,
            a.out.display()
        );
    }
    Ok(())
}

/// `breakglass ledger …`
#[derive(Debug, Subcommand)]
pub enum LedgerCmd {
    /// List Ledgers on USB (or check the device at --speculos).
    List(SignerArgs),
    /// Show the address of a derivation path (asks the device to display it with --show).
    Address {
        /// Signer options (use --speculos for Speculos or the simulator).
        #[command(flatten)]
        signer: SignerArgs,
        /// Display the address on the device for confirmation.
        #[arg(long)]
        show: bool,
    },
    /// Show the Ethereum app's version and blind-signing setting.
    Config(SignerArgs),
}

/// Runs `ledger …`.
pub fn run_ledger(ctx: &Ctx, cmd: LedgerCmd) -> Result<(), CliError> {
    match cmd {
        LedgerCmd::List(s) => {
            if s.speculos.is_some() {
                let mut l = s.open_ledger()?;
                let (label, cfg) = l.check_app().map_err(signer_error)?;
                if ctx.json {
                    print_json(
                        json!({ "devices": [{ "model": label, "app_version": cfg.version_string(), "blind_signing": cfg.blind_signing() }] }),
                    );
                } else {
                    outln!(
                        "{label} (blind signing {})",
                        if cfg.blind_signing() { "on" } else { "off" }
                    );
                }
                return Ok(());
            }
            let devs = HidTransport::list().map_err(|e| signer_error(e.into()))?;
            if ctx.json {
                print_json(json!({ "devices": devs }));
            } else if devs.is_empty() {
                outln!("no Ledger found on USB: plug it in and unlock it; on Linux install the udev rules (udev/README.md)");
            } else {
                for d in devs {
                    outln!(
                        "{}  (product id {:#06x}, {})",
                        d.model,
                        d.product_id,
                        d.path
                    );
                }
            }
            Ok(())
        }
        LedgerCmd::Address { signer, show } => {
            let mut l = signer.open_ledger()?;
            let addr: Address =
                if show { l.show_address() } else { l.address() }.map_err(signer_error)?;
            if ctx.json {
                print_json(
                    json!({ "address": addr.to_checksum(None), "path": l.path().to_string(), "device": l.label() }),
                );
            } else {
                outln!("{}  {}  ({})", addr.to_checksum(None), l.path(), l.label());
            }
            Ok(())
        }
        LedgerCmd::Config(s) => {
            let mut l = s.open_ledger()?;
            let (label, cfg) = l.check_app().map_err(signer_error)?;
            if ctx.json {
                print_json(
                    json!({ "device": label, "app_version": cfg.version_string(), "blind_signing": cfg.blind_signing(), "flags": cfg.flags }),
                );
            } else {
                outln!(
                    "{label}\n  blind signing: {}",
                    if cfg.blind_signing() {
                        "ON"
                    } else {
                        "OFF — Safe transactions and calls with data need it: Ethereum app → Settings → Blind signing"
                    }
                );
            }
            Ok(())
        }
    }
}

/// `breakglass device-sim …`
#[derive(Debug, Args)]
pub struct DeviceSimArgs {
    /// Address to listen on (loopback only is sensible).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9999")]
    pub listen: String,
    /// Blind-signing setting of the simulated Ethereum app.
    #[arg(long, value_name = "on|off", default_value = "on")]
    pub blind_signing: String,
    /// How the simulated person and device behave.
    #[arg(long, value_enum, default_value = "approve")]
    pub mode: SimMode,
    /// A file holding a BIP39 mnemonic (default: Speculos' public test seed).
    #[arg(long, value_name = "FILE")]
    pub mnemonic_file: Option<PathBuf>,
    /// Milliseconds the simulated person takes to approve.
    #[arg(long, value_name = "MS", default_value = "0")]
    pub approve_delay_ms: u64,
}

/// Runs `device-sim` until killed.
pub fn run_device_sim(ctx: &Ctx, a: DeviceSimArgs) -> Result<(), CliError> {
    let blind = match a.blind_signing.as_str() {
        "on" => true,
        "off" => false,
        other => {
            return Err(CliError::new(
                "usage",
                format!("--blind-signing {other:?}: write on or off"),
            )
            .code(ExitCode::Usage))
        }
    };
    let mnemonic = match &a.mnemonic_file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| CliError::new("unreadable", format!("{}: {e}", f.display())))?
            .trim()
            .to_string(),
        None => sim::SPECULOS_SEED.to_string(),
    };
    let listener = std::net::TcpListener::bind(&a.listen)
        .map_err(|e| CliError::new("listen", format!("cannot listen on {}: {e}", a.listen)))?;
    let bound = listener
        .local_addr()
        .map(|x| x.to_string())
        .unwrap_or_else(|_| a.listen.clone());
    let cfg = SimConfig {
        mnemonic,
        blind_signing: blind,
        mode: a.mode,
        approve_delay: Duration::from_millis(a.approve_delay_ms),
        ..Default::default()
    };
    if ctx.json {
        print_json(
            json!({ "listening": bound, "simulator": true, "blind_signing": blind, "mode": format!("{:?}", a.mode).to_lowercase() }),
        );
    } else {
        outln!("SIMULATED LEDGER (test and drill device, not a wallet) listening on {bound}: Ethereum app 1.22.0, blind signing {}, mode {:?}", if blind { "on" } else { "off" }, a.mode);
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    sim::serve(listener, cfg, stop).map_err(|e| CliError::new("listen", e.to_string()))
}
