//! `breakglass combine`, `breakglass export` and `breakglass import`: moving requests and signatures
//! between machines by file, UR strings, PNG QR codes or an animated terminal QR, and to and from
//! ERC-4527 QR signers. The formats and checks are in [`crate::transfer`]; this file reads files and
//! stdin, draws, and prints.

use super::common::bundle_error;
use super::common::parse_addr;
use super::common::{print_tally, tally_json};
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::bundle::Tally;
use crate::bundle::{self, Bundle};
use crate::incident::Session;
use crate::manifest::trust;
use crate::signer::ledger::apdu::{ledger_live_path, HdPath};
use crate::transfer::combine::{self, Merged};
use crate::transfer::erc4527::{self, EthSignature, RequestOptions};
use crate::transfer::payload::{self, Payload};
use crate::transfer::ur::{UrCollector, UrStream, MAX_FRAGMENT_LEN};
use crate::transfer::{qr, TransferError};
use clap::Args;
use serde_json::json;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `breakglass combine …`
#[derive(Debug, Args)]
pub struct CombineArgs {
    /// Bundles of the same request, each holding some signatures.
    #[arg(value_name = "BUNDLE", required = true)]
    pub bundles: Vec<PathBuf>,
    /// Where to write the combined bundle.
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// For an encrypted ladder: its age identity file or passphrase file.
    #[command(flatten)]
    pub ladder_keys: super::ladder::LadderKeys,
}

/// `breakglass export …`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle to export.
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Print the UR part strings, one per line (the default).
    #[arg(long)]
    pub ur: bool,
    /// Animate the parts as QR codes in this terminal, about 5 a second, until Ctrl-C. When stdout is
    /// not a terminal, print the parts instead.
    #[arg(long)]
    pub qr: bool,
    /// Write one PNG per part into DIR (part-0001.png, …) and exit (also with --qr).
    #[arg(long, value_name = "DIR")]
    pub png: Option<PathBuf>,
    /// Only the signatures and the hash they sign (one or two QR frames): the trip back from a signer.
    #[arg(long, conflicts_with = "erc4527")]
    pub signatures_only: bool,
    /// An ERC-4527 `eth-sign-request` for a QR signer (Keystone, AirGap Vault): a Safe tx as EIP-712
    /// typed data, an EOA tx as a typed transaction.
    #[arg(long)]
    pub erc4527: bool,
    /// ERC-4527: the address that will sign (required for a Safe tx: the owner; an EOA tx's sender by
    /// default).
    #[arg(long, value_name = "ADDR", requires = "erc4527")]
    pub signer: Option<String>,
    /// ERC-4527: derivation path of the signing key (default m/44'/60'/0'/0/0).
    #[arg(
        long,
        value_name = "PATH",
        requires = "erc4527",
        conflicts_with = "account"
    )]
    pub hd_path: Option<String>,
    /// ERC-4527: account N as Ledger Live numbers them, m/44'/60'/N'/0/0.
    #[arg(long, value_name = "N", requires = "erc4527")]
    pub account: Option<u32>,
    /// ERC-4527: the signer's master key fingerprint, 8 hex digits (the signer checks it is its own).
    #[arg(long, value_name = "HEX", requires = "erc4527")]
    pub xfp: Option<String>,
    /// How many parts --ur and --png write (default: as many as the fragments; more add fountain parts
    /// that stand in for lost ones).
    #[arg(long, value_name = "N")]
    pub parts: Option<usize>,
    /// Frames per second of --qr (1 to 15).
    #[arg(long, value_name = "N", default_value = "5")]
    pub fps: u32,
    /// --qr: draw for a light terminal background.
    #[arg(long)]
    pub light_terminal: bool,
    /// --png: replace existing part files.
    #[arg(long)]
    pub force: bool,
    /// For an encrypted ladder: its age identity file or passphrase file.
    #[command(flatten)]
    pub ladder_keys: super::ladder::LadderKeys,
}

/// `breakglass import …`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// QR code images (PNG or JPEG), in any order: `export --png` files, screenshots, or photos of a
    /// screen from a phone or webcam (one code an image).
    #[arg(value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Read UR strings, one per line, from FILE, or from standard input with `-` (as `zbarcam --raw`
    /// prints them); any order and case, blank lines ignored.
    #[arg(long, value_name = "FILE|-", conflicts_with = "images")]
    pub ur: Option<String>,
    /// The bundle that the imported signatures (or eth-signature) answer; the result is it plus them.
    #[arg(long, value_name = "BUNDLE")]
    pub into: Option<PathBuf>,
    /// Where to write the bundle.
    #[arg(short = 'o', long = "out", value_name = "BUNDLE")]
    pub out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

pub(crate) fn transfer_error(e: TransferError) -> CliError {
    use TransferError as T;
    let (kind, code, hint) = match &e {
        T::Bundle(_) => {
            if let T::Bundle(b) = e {
                return bundle_error(b);
            }
            ("bundle", ExitCode::Refused, "")
        }
        T::NotUr { .. } => ("not_ur", ExitCode::Error, "give one UR string per line, as `breakglass export --ur` or `zbarcam --raw` print them"),
        T::Corrupted { .. } => ("corrupted_part", ExitCode::Refused, "nothing was written; scan or copy that part again"),
        T::MixedTypes { .. } | T::MixedMessages { .. } => ("mixed_parts", ExitCode::Refused, "nothing was written; import the parts of one export at a time"),
        T::Incomplete { .. } => ("incomplete", ExitCode::Error, "nothing was written; add the missing parts (order and repeats do not matter) and import again"),
        T::Empty(_) => ("no_parts", ExitCode::Error, "pass PNG/JPEG files, or --ur - with UR lines on standard input"),
        T::WrongType { .. } => ("wrong_ur_type", ExitCode::Refused, "nothing was written"),
        T::Malformed { .. } => ("malformed", ExitCode::Refused, "nothing was written; export it again"),
        T::NotSameRequest { .. } => ("not_same_request", ExitCode::Refused, "combine only bundles of one request: compare them with `breakglass inspect`; nothing was written"),
        T::WrongRequest { .. } | T::WrongRequestId { .. } => ("wrong_request", ExitCode::Refused, "pass with --into the bundle that was exported to the signer; nothing was written"),
        T::BadSignature { .. } => ("bad_signature", ExitCode::Refused, "nothing was written; ask the owner to sign again"),
        T::WrongSigner { .. } => ("wrong_signer", ExitCode::Refused, "nothing was written; the key must be an owner of the manifest's Safe (or the EOA transaction's sender)"),
        T::Refused(_) => ("refused", ExitCode::Refused, "see `breakglass verify`; nothing was exported"),
        T::WrongStep(_) => ("wrong_step", ExitCode::Refused, "nothing was written"),
        T::Image { .. } => ("image", ExitCode::Error, "take the picture again, or import the UR strings with --ur"),
        T::Encode(_) => ("encode", ExitCode::Error, ""),
    };
    let err = CliError::new(kind, e.to_string()).code(code);
    if hint.is_empty() {
        err
    } else {
        err.hint(hint)
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::new("usage", msg).code(ExitCode::Usage)
}

/// Checks a bundle with new signatures against the local manifest (signers must be owners, the request
/// must be allowed) and writes it.
fn check_and_write(
    ctx: &Ctx,
    event: &str,
    session: &Session,
    b: &Bundle,
    out: &Path,
    force: bool,
) -> Result<Tally, CliError> {
    let t = session
        .on_chain_id(b.chain_id)
        .accept_signatures(b)
        .map_err(|e| {
            if e.code == "refused" {
                CliError::from(e).hint("run `breakglass verify` on the bundle to see why")
            } else {
                e.into()
            }
        })?;
    write_audited(ctx, event, b, out, force)?;
    Ok(t)
}

/// Records the step in the audit log (fsynced), then writes the bundle carrying that entry.
fn write_audited(
    ctx: &Ctx,
    event: &str,
    b: &Bundle,
    out: &Path,
    force: bool,
) -> Result<(), CliError> {
    if !force && out.exists() {
        return Err(bundle_error(crate::bundle::BundleError::Write {
            path: out.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; pass --force to replace it",
            ),
        }));
    }
    let entry = ctx.audit(
        event,
        json!({
            "safe_tx_hash": b.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "signing_hash": b.eoa_tx.as_ref().map(|e| format!("{:#x}", e.signing_hash)),
            "signers": b.signatures.iter().map(|s| s.signer.to_checksum(None)).collect::<Vec<_>>(),
            "out": out.display().to_string(),
        }),
    )?;
    let mut b = b.clone();
    b.audit.push(crate::bundle::AuditRef {
        step: event.to_string(),
        entry,
    });
    b.write(out, force).map_err(bundle_error)
}

/// Runs `combine`.
pub fn run_combine(ctx: &Ctx, a: CombineArgs) -> Result<(), CliError> {
    if a.bundles.iter().all(|p| crate::ladder::is_ladder_file(p)) {
        return super::ladder::combine(ctx, &a.bundles, &a.out, a.force, &a.ladder_keys);
    }
    let session = ctx.session()?;
    let trust_state = session.trust.clone();
    let mut inputs = Vec::with_capacity(a.bundles.len());
    for p in &a.bundles {
        inputs.push((
            p.display().to_string(),
            Bundle::read(p).map_err(bundle_error)?,
        ));
    }
    let merged = combine::combine(&inputs).map_err(transfer_error)?;
    let status = check_and_write(ctx, "combine", &session, &merged.bundle, &a.out, a.force)?;
    if ctx.json {
        let mut v = tally_json(&status);
        v["out"] = json!(a.out.display().to_string());
        v["inputs"] = json!(inputs.len());
        v["duplicates_dropped"] = json!(merged.duplicates);
        v["trust"] = serde_json::to_value(&trust_state).unwrap_or_default();
        print_json(v);
    } else {
        outln!(
            "combined {} bundle{}{}",
            inputs.len(),
            if inputs.len() == 1 { "" } else { "s" },
            if merged.duplicates > 0 {
                format!(
                    " ({} duplicate signature{} dropped)",
                    merged.duplicates,
                    if merged.duplicates == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
        print_tally(&status, &merged.bundle);
        outln!("wrote {}", a.out.display());
        if !trust_state.is_trusted() {
            outln!(
                "NOTE: the manifest here is {}: the owners above are checked against it",
                super::common::trust_text(&trust_state)
            );
        }
    }
    Ok(())
}

fn hd_path(a: &ExportArgs) -> Result<HdPath, CliError> {
    match (&a.hd_path, a.account) {
        (Some(p), _) => HdPath::parse(p).map_err(usage),
        (None, Some(n)) => Ok(ledger_live_path(n)),
        (None, None) => Ok(ledger_live_path(0)),
    }
}

fn parse_xfp(s: &str) -> Result<u32, CliError> {
    let t = s.trim().trim_start_matches("0x");
    if t.len() != 8 {
        return Err(usage(format!(
            "--xfp {s:?}: write the 8 hex digits of the master key fingerprint"
        )));
    }
    u32::from_str_radix(t, 16).map_err(|_| usage(format!("--xfp {s:?} is not hex")))
}

/// What an export carries, ready to encode.
struct Export {
    ur_type: &'static str,
    cbor: Vec<u8>,
    what: String,
    request_id: Option<String>,
}

fn build_export(ctx: &Ctx, a: &ExportArgs, b: &Bundle) -> Result<Export, CliError> {
    if a.erc4527 {
        let m = ctx.load_manifest()?;
        let trust_state = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
        if let trust::Trust::Untrusted { reason } = &trust_state {
            return Err(CliError::new(
                "untrusted_manifest",
                format!("refusing to send a request to a signer under an untrusted manifest: {reason}"),
            )
            .code(ExitCode::Refused)
            .hint("review the manifest, then `breakglass manifest pin`, or pass --pin 0x<hash> agreed out of band"));
        }
        let v = bundle::verify_bundle(&m, b).map_err(bundle_error)?;
        let signer = match (&a.signer, &b.eoa_tx) {
            (Some(s), _) => parse_addr(s, "--signer")?,
            (None, Some(e)) => e.from,
            (None, None) => {
                return Err(usage(
                    "a Safe request needs --signer ADDR: the owner whose QR signer will sign",
                ))
            }
        };
        let opts = RequestOptions {
            signer,
            path: hd_path(a)?.0,
            source_fingerprint: a.xfp.as_deref().map(parse_xfp).transpose()?,
        };
        let req = erc4527::sign_request(&m, &v, &opts).map_err(transfer_error)?;
        return Ok(Export {
            ur_type: erc4527::SIGN_REQUEST_TYPE,
            cbor: req.to_cbor(),
            what: format!(
                "eth-sign-request ({}) for {} at {}",
                if b.safe_tx.is_some() {
                    "EIP-712 SafeTx"
                } else {
                    "EIP-1559 transaction"
                },
                signer.to_checksum(None),
                req.derivation_path.to_path_string()
            ),
            request_id: req.request_id.as_ref().map(erc4527::uuid_string),
        });
    }
    if a.signatures_only {
        return Ok(Export {
            ur_type: payload::UR_TYPE,
            cbor: payload::signatures_payload(b).map_err(transfer_error)?,
            what: format!("{} signature(s)", b.signatures.len()),
            request_id: None,
        });
    }
    Ok(Export {
        ur_type: payload::UR_TYPE,
        cbor: payload::bundle_payload(b).map_err(transfer_error)?,
        what: format!(
            "bundle ({} signature{})",
            b.signatures.len(),
            if b.signatures.len() == 1 { "" } else { "s" }
        ),
        request_id: None,
    })
}

/// Runs `export`.
pub fn run_export(ctx: &Ctx, a: ExportArgs) -> Result<(), CliError> {
    if !(1..=15).contains(&a.fps) {
        return Err(usage("--fps takes 1 to 15"));
    }
    if a.parts == Some(0) {
        return Err(usage("--parts takes at least 1"));
    }
    // A pre-signed pause ladder moves as one payload (its rungs and their signatures).
    if crate::ladder::is_ladder_file(&a.bundle) {
        if a.erc4527 || a.signatures_only {
            return Err(usage(
                "a ladder is exported whole (no --erc4527, no --signatures-only)",
            ));
        }
        let keys = a.ladder_keys.protection()?;
        let l = crate::ladder::Ladder::read_with(&a.bundle, &keys).map_err(|e| {
            CliError::new("ladder", e.to_string())
                .hint("an encrypted ladder moves as its file; export a decrypted copy only on a machine you trust")
                .code(ExitCode::Refused)
        })?;
        let ex = Export {
            ur_type: payload::UR_TYPE,
            cbor: payload::ladder_payload(&l).map_err(transfer_error)?,
            what: format!("ladder {:?} ({} rungs)", l.playbook, l.rungs.len()),
            request_id: None,
        };
        ctx.audit(
            "export",
            json!({ "ladder": a.bundle.display().to_string(), "content": ex.what }),
        )?;
        return emit(ctx, &a, &ex);
    }
    let b = Bundle::read(&a.bundle).map_err(bundle_error)?;
    let ex = build_export(ctx, &a, &b)?;
    ctx.audit(
        "export",
        json!({
            "bundle": a.bundle.display().to_string(),
            "ur_type": ex.ur_type,
            "content": ex.what,
            "safe_tx_hash": b.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "signing_hash": b.eoa_tx.as_ref().map(|e| format!("{:#x}", e.signing_hash)),
            "request_id": ex.request_id,
        }),
    )?;
    emit(ctx, &a, &ex)
}

/// Shows an export: animated QR, PNG files or UR lines.
fn emit(ctx: &Ctx, a: &ExportArgs, ex: &Export) -> Result<(), CliError> {
    let mut stream =
        UrStream::new(ex.ur_type, &ex.cbor, MAX_FRAGMENT_LEN).map_err(transfer_error)?;
    let fragments = stream.fragment_count();
    let n = if stream.is_single() {
        1
    } else {
        a.parts.unwrap_or(fragments)
    };
    let animate = a.qr && a.png.is_none() && !ctx.json && std::io::stdout().is_terminal();
    if animate {
        return animate_qr(&mut stream, ex, a.fps, a.light_terminal);
    }
    let parts = stream.take(n).map_err(transfer_error)?;
    let version = qr::common_version(&parts).map_err(transfer_error)?;
    let mut meta = json!({
        "ur_type": ex.ur_type,
        "content": ex.what,
        "bytes": ex.cbor.len(),
        "fragments": fragments,
        "qr": { "version": version, "ec_level": "M", "modules": qr::modules(version) },
    });
    if let Some(id) = &ex.request_id {
        meta["request_id"] = json!(id);
    }
    if let Some(dir) = &a.png {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::new(
                "write_failed",
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let mut files = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let code = qr::encode(p, version).map_err(transfer_error)?;
            let png = qr::to_png(&code, qr::PNG_MODULE_PX).map_err(transfer_error)?;
            let path = dir.join(format!("part-{:04}.png", i + 1));
            crate::fsutil::atomic_write(&path, &png, a.force).map_err(|e| {
                CliError::new(
                    "write_failed",
                    format!("cannot write {}: {e}", path.display()),
                )
                .hint("choose another directory, or pass --force to replace the files")
            })?;
            files.push(path.display().to_string());
        }
        if ctx.json {
            meta["files"] = json!(files);
            print_json(meta);
        } else {
            outln!(
                "wrote {} PNG file{} into {}: {} {}, {} bytes in {} fragment{}, QR version {} (level M)",
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                dir.display(),
                ex.ur_type,
                ex.what,
                ex.cbor.len(),
                fragments,
                if fragments == 1 { "" } else { "s" },
                version
            );
        }
        return Ok(());
    }
    if ctx.json {
        meta["parts"] = json!(parts);
        print_json(meta);
    } else {
        let mut out = std::io::stdout().lock();
        for p in &parts {
            if writeln!(out, "{p}").is_err() {
                break;
            }
        }
    }
    Ok(())
}

fn animate_qr(stream: &mut UrStream, ex: &Export, fps: u32, light: bool) -> Result<(), CliError> {
    let fragments = stream.fragment_count();
    let first = stream.take(fragments).map_err(transfer_error)?;
    let mut version = qr::common_version(&first).map_err(transfer_error)?;
    let mut queue: std::collections::VecDeque<String> = first.into();
    let period = Duration::from_millis(1000 / u64::from(fps));
    let mut out = std::io::stdout().lock();
    if write!(out, "\x1b[2J").is_err() {
        return Ok(());
    }
    let mut frame: u64 = 0;
    loop {
        let part = match queue.pop_front() {
            Some(p) => p,
            None => stream.next_part().map_err(transfer_error)?,
        };
        frame += 1;
        let code = match qr::encode(&part, version) {
            Ok(c) => c,
            Err(_) => {
                // A later fountain part has a longer part number: one size up, then steady again.
                version =
                    qr::common_version(std::slice::from_ref(&part)).map_err(transfer_error)?;
                qr::encode(&part, version).map_err(transfer_error)?
            }
        };
        let seq = if stream.is_single() {
            "single part".to_string()
        } else if frame as usize <= fragments {
            format!("part {frame}/{fragments}")
        } else {
            format!("part {frame} (fountain, {fragments} fragments)")
        };
        let text = format!(
            "\x1b[H{}\n frame {frame} · {seq} · {}, {} bytes · QR v{version}-M · Ctrl-C stops\x1b[J",
            qr::to_terminal(&code, light),
            ex.ur_type,
            ex.cbor.len()
        );
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return Ok(());
        }
        std::thread::sleep(period);
    }
}

/// Reads UR part strings from images or lines into a collector.
fn collect(a: &ImportArgs) -> Result<(UrCollector, usize), CliError> {
    let mut c = UrCollector::new();
    let mut given = 0;
    if let Some(src) = &a.ur {
        let mut text = String::new();
        let res = if src == "-" {
            std::io::stdin().read_to_string(&mut text)
        } else {
            std::fs::File::open(src).and_then(|mut f| f.read_to_string(&mut text))
        };
        res.map_err(|e| CliError::new("unreadable", format!("cannot read {src}: {e}")))?;
        for (i, line) in text.lines().enumerate() {
            let mut l = line.trim();
            // zbarimg/zbarcam without --raw prefix each code with its symbology.
            if l.len() > 8 && l[..8].eq_ignore_ascii_case("qr-code:") {
                l = l[8..].trim();
            }
            if l.is_empty() {
                continue;
            }
            given += 1;
            c.receive(l, &format!("line {}", i + 1))
                .map_err(transfer_error)?;
        }
    } else if a.images.is_empty() {
        return Err(usage(
            "give QR images (PNG or JPEG) or --ur - with UR strings on standard input",
        ));
    }
    // Reading a camera image takes 1–5 ms: decode on every core all the same, feed in file order.
    let decoded = decode_images(&a.images);
    for (p, res) in a.images.iter().zip(decoded) {
        for text in res? {
            given += 1;
            c.receive(&text, &p.display().to_string())
                .map_err(transfer_error)?;
        }
    }
    Ok((c, given))
}

fn decode_images(paths: &[PathBuf]) -> Vec<Result<Vec<String>, CliError>> {
    let one = |p: &PathBuf| -> Result<Vec<String>, CliError> {
        let bytes = std::fs::read(p).map_err(|e| {
            CliError::new("unreadable", format!("cannot read {}: {e}", p.display()))
        })?;
        qr::decode_image(&bytes, &p.display().to_string()).map_err(transfer_error)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads == 1 || paths.len() < 2 {
        return paths.iter().map(one).collect();
    }
    let chunk = paths.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|c| {
                (
                    c.len(),
                    s.spawn(move || c.iter().map(one).collect::<Vec<_>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| {
                h.join().unwrap_or_else(|_| {
                    (0..n)
                        .map(|_| Err(CliError::new("image", "an image decoder thread failed")))
                        .collect()
                })
            })
            .collect()
    })
}

fn read_into(a: &ImportArgs, what: &str) -> Result<Bundle, CliError> {
    let p = a.into.as_ref().ok_or_else(|| {
        usage(format!(
            "{what} needs --into BUNDLE: the bundle of the request they answer"
        ))
    })?;
    let b = Bundle::read(p).map_err(bundle_error)?;
    combine::check_still_signing(&b, &p.display().to_string()).map_err(transfer_error)?;
    Ok(b)
}

/// Runs `import`.
pub fn run_import(ctx: &Ctx, a: ImportArgs) -> Result<(), CliError> {
    let (collector, given) = collect(&a)?;
    let received = collector.received();
    let (ur_type, cbor) = collector.finish().map_err(transfer_error)?;
    let mut report = json!({
        "ur_type": ur_type,
        "parts_read": given,
        "parts_distinct": received,
        "bytes": cbor.len(),
        "out": a.out.display().to_string(),
    });
    let (content, merged, status): (&str, Option<Merged>, Option<(Tally, Bundle)>) = match ur_type.as_str()
    {
        payload::UR_TYPE => match payload::decode(&cbor).map_err(transfer_error)? {
            Payload::Bundle(b) => match &a.into {
                Some(into_path) => {
                    let session = ctx.session()?;
                    let base = read_into(&a, "a bundle")?;
                    combine::same_request(
                        &base,
                        &into_path.display().to_string(),
                        &b,
                        "the imported bundle",
                    )
                    .map_err(transfer_error)?;
                    let merged = combine::add_signatures(&base, b.signatures.iter().cloned())
                        .map_err(transfer_error)?;
                    let st = check_and_write(ctx, "import", &session, &merged.bundle, &a.out, a.force)?;
                    let sb = merged.bundle.clone();
                    ("bundle", Some(merged), Some((st, sb)))
                }
                None => {
                    let st = if ctx.manifest_path.exists() {
                        let session = ctx.session()?;
                        Some((
                            check_and_write(ctx, "import", &session, &b, &a.out, a.force)?,
                            (*b).clone(),
                        ))
                    } else {
                        write_audited(ctx, "import", &b, &a.out, a.force)?;
                        None
                    };
                    ("bundle", None, st)
                }
            },
            Payload::Ladder(l) => {
                if a.into.is_some() {
                    return Err(usage("a ladder is imported whole: drop --into"));
                }
                // Every rung verified under this machine's manifest before anything is written.
                let session = ctx.session()?.on_chain_id(l.chain_id);
                for (i, b) in l.rungs.iter().enumerate() {
                    let v = session.verify(b)?;
                    if !v.report().allowed {
                        super::common::print_report(ctx, v.report(), &session.trust);
                        return Err(CliError::new(
                            "refused",
                            format!("rung {} of the imported ladder is refused by verification here: nothing was written", i + 1),
                        )
                        .code(ExitCode::Refused));
                    }
                }
                l.write(&a.out, a.force)
                    .map_err(|e| CliError::new("ladder_write", e.to_string()))?;
                ctx.audit(
                    "import",
                    json!({ "ladder": a.out.display().to_string(), "playbook": l.playbook, "rungs": l.rungs.len() }),
                )?;
                if ctx.json {
                    report["content"] = json!("ladder");
                    report["rungs"] = json!(l.rungs.len());
                    print_json(report);
                } else {
                    outln!(
                        "imported ladder {:?} ({} rungs, every rung verified here); wrote {} (mode 0600)",
                        l.playbook,
                        l.rungs.len(),
                        a.out.display()
                    );
                }
                return Ok(());
            }
            Payload::Signatures(s) => {
                let session = ctx.session()?;
                let base = read_into(&a, "a signatures-only export")?;
                s.check_for(&base).map_err(transfer_error)?;
                let merged =
                    combine::add_signatures(&base, s.signatures).map_err(transfer_error)?;
                let st = check_and_write(ctx, "import", &session, &merged.bundle, &a.out, a.force)?;
                let sb = merged.bundle.clone();
                ("signatures", Some(merged), Some((st, sb)))
            }
        },
        erc4527::SIGNATURE_TYPE => {
            let session = ctx.session()?;
            let base = read_into(&a, "an eth-signature")?;
            let sig = EthSignature::from_cbor(&cbor).map_err(transfer_error)?;
            let entry = erc4527::signature_entry(&session.on_chain_id(base.chain_id).manifest, &base, &sig).map_err(transfer_error)?;
            let merged = combine::add_signatures(&base, [entry]).map_err(transfer_error)?;
            let st = check_and_write(ctx, "import", &session, &merged.bundle, &a.out, a.force)?;
            let sb = merged.bundle.clone();
            ("eth-signature", Some(merged), Some((st, sb)))
        }
        erc4527::SIGN_REQUEST_TYPE => {
            return Err(transfer_error(TransferError::WrongType {
                found: ur_type,
                expected: "it is a request for a QR signer, not an answer: show it to the signer (Keystone, AirGap Vault) and import the eth-signature it shows".into(),
            }))
        }
        _ => {
            return Err(transfer_error(TransferError::WrongType {
                found: ur_type,
                expected: "breakglass imports breakglass-bundle and eth-signature URs".into(),
            }))
        }
    };
    report["content"] = json!(content);
    if let Some(m) = &merged {
        report["added"] = json!(m.added);
        report["duplicates_dropped"] = json!(m.duplicates);
    }
    if let Some((s, _)) = &status {
        report["signing"] = tally_json(s);
    }
    if ctx.json {
        print_json(report);
    } else {
        outln!(
            "imported {content} ({} bytes from {received} distinct part{})",
            report["bytes"],
            if received == 1 { "" } else { "s" }
        );
        if let Some(m) = &merged {
            outln!(
                "{} new signature{}{}",
                m.added,
                if m.added == 1 { "" } else { "s" },
                if m.duplicates > 0 {
                    format!(", {} already present", m.duplicates)
                } else {
                    String::new()
                }
            );
        }
        match &status {
            Some((s, sb)) => print_tally(s, sb),
            None => outln!(
                "NOTE: not checked against a manifest ({} not found): run `breakglass verify` on it",
                ctx.manifest_path.display()
            ),
        }
        outln!("wrote {}", a.out.display());
    }
    Ok(())
}
