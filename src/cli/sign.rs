//! `breakglass sign`, `breakglass ledger list|address|config`, `breakglass device-sim`, and the signer
//! options they share.

use super::common::bundle_error;
use super::common::{signer_error, SignerArgs};
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::Bundle;
use crate::signer::ledger::sim::{self, SimConfig, SimMode};
use crate::signer::ledger::HidTransport;
use crate::signer::Signer;
use alloy::primitives::Address;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// `breakglass sign …`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle to sign; several (e.g. one per chain of a multi-chain incident) are signed in one
    /// sitting, one device confirmation each.
    #[arg(value_name = "BUNDLE", required = true, num_args = 1..)]
    pub bundles: Vec<PathBuf>,
    /// Signer.
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Where to write the signed bundle. With several bundles, `{chain}` in the name is replaced by each
    /// bundle's chain name (or use --in-place).
    #[arg(
        short = 'o',
        long = "out",
        value_name = "BUNDLE",
        required_unless_present = "in_place"
    )]
    pub out: Option<PathBuf>,
    /// Write each signed bundle back to its own file (the signature is added; nothing else changes).
    #[arg(long, conflicts_with = "out")]
    pub in_place: bool,
    /// Do not simulate before signing (recorded in the audit log and the signature's audit entry).
    #[arg(long)]
    pub no_simulate: bool,
    /// Offline: simulate against this snapshot (from `simulate --snapshot-out` online) before signing.
    #[arg(long, value_name = "SNAP", conflicts_with = "no_simulate")]
    pub snapshot: Option<PathBuf>,
    /// Replace an existing output file (e.g. sign in place).
    #[arg(long)]
    pub force: bool,
    /// For an encrypted ladder: its age identity file or passphrase file.
    #[command(flatten)]
    pub ladder_keys: super::ladder::LadderKeys,
}

/// One bundle of a signing sitting, checked and ready.
struct Sitting {
    session: crate::incident::Session,
    ready: crate::incident::ReadyToSign,
    out: PathBuf,
}

/// Runs `sign`.
pub fn run_sign(ctx: &Ctx, a: SignArgs) -> Result<(), CliError> {
    // A ladder (issue 19) signs every rung in one sitting, as `ladder sign`.
    if let [only] = a.bundles.as_slice() {
        if crate::ladder::is_ladder_file(only) {
            if a.out.is_some() {
                return Err(CliError::new(
                    "usage",
                    "a ladder is signed in place: pass --in-place (it keeps mode 0600)",
                )
                .code(ExitCode::Usage));
            }
            return super::ladder::run(
                ctx,
                super::ladder::LadderCmd::Sign {
                    ladder: only.clone(),
                    signer: a.signer.clone(),
                    keys: a.ladder_keys.clone(),
                },
            );
        }
    }
    if !a.signer.chosen() {
        return Err(CliError::new(
            "usage",
            "choose a signer: --ledger, --speculos HOST:PORT or --keystore FILE",
        )
        .code(ExitCode::Usage));
    }
    let several = a.bundles.len() > 1;
    if let (true, Some(out)) = (several, &a.out) {
        if !out.display().to_string().contains("{chain}") {
            return Err(CliError::new(
                "usage",
                "several bundles need --in-place, or -o with {chain} in the name (e.g. -o signed-{chain}.json)",
            )
            .code(ExitCode::Usage));
        }
    }
    let mut base = ctx.session()?;
    base.simulate.skip = a.no_simulate;
    base.simulate.snapshot = a.snapshot.clone();
    // Everything is checked before the device is asked anything: each bundle verified, allowed, trusted,
    // not executed, and this signer an owner who has not signed it yet.
    let mut sittings = Vec::with_capacity(a.bundles.len());
    for path in &a.bundles {
        let b = Bundle::read(path).map_err(bundle_error)?;
        let session = base.on_chain_id(b.chain_id);
        let out = match &a.out {
            None => path.clone(),
            Some(o) if o.display().to_string().contains("{chain}") => super::compose::chain_path(
                o,
                &session
                    .manifest
                    .chain_name
                    .clone()
                    .unwrap_or_else(|| session.manifest.chain_id.to_string()),
            ),
            Some(o) => o.clone(),
        };
        if !a.force && !a.in_place && out.exists() {
            return Err(CliError::new(
                "exists",
                format!(
                    "{} exists; pass --force to replace it (nothing was signed)",
                    out.display()
                ),
            )
            .code(ExitCode::Usage));
        }
        let ready = match session.prepare_signing(&b) {
            Ok(r) => r,
            Err(e) => {
                if let Some(r) = &e.report {
                    super::common::print_report(ctx, r, &session.trust);
                }
                let label = session.manifest.chain_label();
                let mut c = CliError::from(e);
                if several {
                    c.message = format!("{}: {label}: {}", path.display(), c.message);
                }
                return Err(c);
            }
        };
        sittings.push(Sitting {
            session,
            ready,
            out,
        });
    }
    // The signer first: a key that may not sign this bundle sees no report that looks like approval.
    let mut s = a.signer.open()?;
    let address = s.address().map_err(signer_error)?;
    for st in &sittings {
        st.session.check_signer(st.ready.bundle(), address)?;
    }
    let total = sittings.len();
    let mut results = Vec::with_capacity(total);
    for (i, st) in sittings.into_iter().enumerate() {
        if !ctx.json {
            if several {
                outln!(
                    "\n=== {} of {}: {} ({}) ===",
                    i + 1,
                    total,
                    st.session.manifest.chain_label(),
                    st.out.display()
                );
            }
            preview(&st.ready, s.as_ref(), address, &st.session);
        }
        let (out, _) = st.session.sign(&st.ready, s.as_mut())?;
        let (bytes, kind) = out
            .signatures
            .iter()
            .find(|x| x.signer == address)
            .map(|x| (x.signature.clone(), x.kind))
            .ok_or_else(|| CliError::new("internal", "signature not attached"))?;
        out.write(&st.out, a.force || a.in_place)
            .map_err(bundle_error)?;
        let tally = st.session.tally(&out)?;
        let (counted, threshold) = (tally.counted.len(), tally.threshold);
        let v = json!({
            "signer": address.to_checksum(None),
            "signature": format!("{bytes}"),
            "kind": kind,
            "device": s.label(),
            "out": st.out.display().to_string(),
            "signatures": counted,
            "threshold": threshold,
            "chain": st.session.manifest.chain_name,
            "chain_id": st.session.manifest.chain_id,
            "simulation": st.ready.simulation.as_ref().map(|x| x.verdict()),
        });
        if !ctx.json {
            outln!(
                "signed by {} ({}); {} of {} signatures; wrote {}",
                address.to_checksum(None),
                s.label(),
                counted,
                threshold,
                st.out.display()
            );
        }
        results.push(v);
    }
    if ctx.json {
        if several {
            print_json(json!({ "signed": results }));
        } else if let Some(v) = results.pop() {
            print_json(v);
        }
    }
    Ok(())
}

/// Before touching the device: what it will show, so the guardian compares screen to screen.
fn preview(
    ready: &crate::incident::ReadyToSign,
    s: &dyn Signer,
    address: Address,
    session: &crate::incident::Session,
) {
    out!("{}", crate::policy::render_text(ready.report()));
    super::compose::print_simulation(session, ready.simulation.as_ref());
    outln!();
    let preview = crate::signer::preview::device_preview(
        ready.request(),
        s.full_eip712(),
        s.blind_signing_setting(),
    );
    for l in preview.lines() {
        outln!("{l}");
    }
    outln!(
        "\nConfirm on {} ({})…",
        s.label(),
        address.to_checksum(None)
    );
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
    /// Show the Ethereum app's version and blind-signing setting, and which settings give which review.
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
            let full = cfg.version >= (1, 9, 0);
            if ctx.json {
                print_json(json!({
                    "device": label,
                    "app_version": cfg.version_string(),
                    "blind_signing": cfg.blind_signing(),
                    "full_eip712": full,
                    "flags": cfg.flags,
                    "not_reported": ["raw_messages", "transaction_hash"],
                }));
            } else {
                outln!("{label}");
                for line in
                    crate::signer::preview::settings_report(cfg.version, cfg.blind_signing())
                {
                    outln!("{line}");
                }
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
    /// The app's "Raw messages" setting: full EIP-712 shows every field of the Safe transaction.
    #[arg(long)]
    pub raw_messages: bool,
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
        raw_messages: a.raw_messages,
        print_pages: !ctx.json,
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
