//! `breakglass ladder build|sign|status|fire`: pre-signed pause ladders (see `crate::ladder`).

use super::common::{parse_u256, signer_error, SignerArgs};
use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::incident::Progress;
use crate::ladder::{Ladder, LadderState};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a ladder file is decrypted (and re-encrypted when rewritten).
#[derive(Debug, Args, Clone, Default)]
pub struct LadderKeys {
    /// An age identity file (AGE-SECRET-KEY-1… lines) for a ladder encrypted to recipients.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// A file holding the passphrase of a ladder encrypted with one (first line).
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// Ask for the passphrase of a ladder encrypted with one, on the terminal (not echoed).
    #[arg(long)]
    pub passphrase: bool,
}

impl LadderKeys {
    pub(crate) fn protection(&self) -> Result<crate::ladder::Protection, CliError> {
        let mut p = crate::ladder::Protection::default();
        if let Some(f) = &self.identity {
            p.add_identity_file(f)
                .map_err(|e| CliError::new("ladder_key", e.to_string()).code(ExitCode::Usage))?;
        }
        if let Some(f) = &self.passphrase_file {
            let text = std::fs::read_to_string(f).map_err(|e| {
                CliError::new("ladder_key", format!("cannot read {}: {e}", f.display()))
                    .code(ExitCode::Usage)
            })?;
            let line = text.lines().next().unwrap_or_default().to_string();
            if line.is_empty() {
                return Err(CliError::new(
                    "ladder_key",
                    format!("{} holds no passphrase", f.display()),
                )
                .code(ExitCode::Usage));
            }
            p.passphrase = Some(age::secrecy::SecretString::from(line));
        }
        if self.passphrase {
            p.passphrase = Some(prompt_passphrase("Ladder passphrase: ", false)?);
        }
        Ok(p)
    }
}

/// Reads a passphrase from the terminal without echo; `confirm` asks twice (when encrypting).
fn prompt_passphrase(prompt: &str, confirm: bool) -> Result<age::secrecy::SecretString, CliError> {
    let err = |e: std::io::Error| {
        CliError::new(
            "ladder_key",
            format!(
                "cannot read the passphrase from the terminal: {e} (use --passphrase-file FILE)"
            ),
        )
        .code(ExitCode::Usage)
    };
    let first = zeroize::Zeroizing::new(rpassword::prompt_password(prompt).map_err(err)?);
    if first.is_empty() {
        return Err(CliError::new("ladder_key", "empty passphrase").code(ExitCode::Usage));
    }
    if confirm {
        let again = zeroize::Zeroizing::new(rpassword::prompt_password("Again: ").map_err(err)?);
        if *again != *first {
            return Err(
                CliError::new("ladder_key", "the passphrases differ; nothing written")
                    .code(ExitCode::Usage),
            );
        }
    }
    Ok(age::secrecy::SecretString::from(first.as_str().to_string()))
}

/// `breakglass ladder …`
#[derive(Debug, Subcommand)]
pub enum LadderCmd {
    /// Compose a `presign = true` playbook for K consecutive Safe nonces (from the Safe's current
    /// nonce, or --nonce N) into a ladder file (mode 0600: it can pause the protocol for whoever holds it).
    Build {
        /// The playbook (marked presign = true in the manifest).
        #[arg(value_name = "PLAYBOOK")]
        playbook: String,
        /// How many rungs (consecutive nonces).
        #[arg(long, value_name = "K")]
        rungs: usize,
        /// The first rung's Safe nonce (default: the Safe's current nonce, read from the node).
        #[arg(long, value_name = "N")]
        nonce: Option<String>,
        /// The ladder file to write.
        #[arg(short = 'o', long = "out", value_name = "LADDER")]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Encrypt the file to this age recipient (`age1…`; repeat for several).
        #[arg(long = "encrypt-to", value_name = "AGE_RECIPIENT")]
        encrypt_to: Vec<String>,
        /// Or encrypt it with the passphrase in this file.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["encrypt_to", "passphrase"])]
        passphrase_file: Option<PathBuf>,
        /// Or encrypt it with a passphrase asked on the terminal (twice, not echoed).
        #[arg(long, conflicts_with = "encrypt_to")]
        passphrase: bool,
    },
    /// Sign every rung in one sitting (one device confirmation per rung); the ladder is rewritten in place.
    Sign {
        /// The ladder file.
        #[arg(value_name = "LADDER")]
        ladder: PathBuf,
        /// The signer.
        #[command(flatten)]
        signer: SignerArgs,
        /// Keys of an encrypted ladder.
        #[command(flatten)]
        keys: LadderKeys,
    },
    /// Where the ladder stands: exit 0 live (a rung for the Safe's nonce with enough valid signatures),
    /// 6 waiting (the Safe's nonce is below the first rung), 7 stale (past every rung), 8 invalid (an
    /// owner who signed was removed, or the threshold rose).
    Status {
        /// The ladder file.
        #[arg(value_name = "LADDER")]
        ladder: PathBuf,
        /// Keys of an encrypted ladder.
        #[command(flatten)]
        keys: LadderKeys,
    },
    /// Execute the live rung with any executor (its signatures are already there), wait, check the
    /// post-conditions; prints the seconds from the command to the mined pause.
    Fire {
        /// The ladder file.
        #[arg(value_name = "LADDER")]
        ladder: PathBuf,
        /// The executor's signer (any funded account).
        #[command(flatten)]
        signer: SignerArgs,
        /// Seconds to wait for the receipt.
        #[arg(long, value_name = "SECONDS", default_value = "120")]
        wait_timeout: u64,
        /// Keys of an encrypted ladder.
        #[command(flatten)]
        keys: LadderKeys,
    },
}

fn read(path: &Path, keys: &crate::ladder::Protection) -> Result<Ladder, CliError> {
    Ladder::read_with(path, keys).map_err(|e| {
        let code = if matches!(e, crate::ladder::LadderError::Io { .. }) {
            ExitCode::Error
        } else {
            ExitCode::Refused
        };
        CliError::new("ladder", e.to_string()).code(code)
    })
}

fn write(
    l: &Ladder,
    path: &Path,
    force: bool,
    keys: &crate::ladder::Protection,
) -> Result<(), CliError> {
    l.write_with(path, force, keys)
        .map_err(|e| CliError::new("ladder_write", e.to_string()))
}

fn state_text(l: &Ladder, s: &LadderState) -> String {
    match s {
        LadderState::Live {
            rung,
            nonce,
            remaining,
        } => format!(
            "LIVE: rung {} of {} (Safe nonce {nonce}); {remaining} rung(s) left including this one",
            rung + 1,
            l.rungs.len()
        ),
        LadderState::Waiting { nonce, first } => format!(
            "WAITING: the Safe's nonce is {nonce}, the first rung is for nonce {first}"
        ),
        LadderState::Stale { nonce, last } => format!(
            "STALE: the Safe's nonce {nonce} has passed every rung (the last is for {last}): build and sign a new ladder"
        ),
        LadderState::Invalid { rung, reason } => format!(
            "INVALID: rung {} no longer executes: {reason}; build and sign a new ladder",
            rung + 1
        ),
    }
}

/// Runs `ladder …`.
pub fn run(ctx: &Ctx, cmd: LadderCmd) -> Result<(), CliError> {
    match cmd {
        LadderCmd::Build {
            playbook,
            rungs,
            nonce,
            out,
            force,
            encrypt_to,
            passphrase_file,
            passphrase,
        } => {
            let mut keys = LadderKeys {
                identity: None,
                passphrase_file,
                passphrase: false,
            }
            .protection()?;
            if passphrase {
                keys.passphrase = Some(prompt_passphrase("New ladder passphrase: ", true)?);
            }
            if out.exists() && !force {
                return Err(CliError::new(
                    "exists",
                    format!("{} exists; pass --force to replace it", out.display()),
                )
                .code(ExitCode::Usage));
            }
            let session = ctx.session()?;
            let nonce = nonce
                .as_deref()
                .map(|n| parse_u256(n, "--nonce"))
                .transpose()?;
            let l = session.build_ladder(&playbook, rungs, nonce).map_err(|e| {
                if let Some(r) = &e.report {
                    super::common::print_report(ctx, r, &session.trust);
                }
                CliError::from(e)
            })?;
            let mut l = l;
            l.encrypt_to = encrypt_to;
            write(&l, &out, force, &keys)?;
            if ctx.json {
                print_json(json!({
                    "ladder": out.display().to_string(),
                    "playbook": l.playbook,
                    "rungs": l.rungs.len(),
                    "first_nonce": l.nonce(0).to_string(),
                    "safe_tx_hashes": l.rungs.iter().filter_map(|b| b.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash))).collect::<Vec<_>>(),
                }));
            } else {
                if let Some(sim) = l.rungs[0].simulation.as_deref() {
                    for line in sim.lines() {
                        outln!("{line}");
                    }
                }
                outln!(
                    "wrote {} (mode 0600): {} rung(s) of {:?} for Safe nonces {}…{}; sign it with `breakglass ladder sign`",
                    out.display(),
                    l.rungs.len(),
                    l.playbook,
                    l.nonce(0),
                    l.nonce(l.rungs.len() - 1)
                );
            }
            Ok(())
        }
        LadderCmd::Sign {
            ladder,
            signer,
            keys,
        } => {
            let keys = keys.protection()?;
            let mut l = read(&ladder, &keys)?;
            let session = ctx.session()?.on_chain_id(l.chain_id);
            // Everything checked before the device is asked: every rung verified, allowed, trusted.
            let mut ready = Vec::with_capacity(l.rungs.len());
            for (i, b) in l.rungs.iter().enumerate() {
                let mut s = session.clone();
                s.simulate.skip |= i > 0;
                ready.push(s.prepare_signing(b).map_err(|e| {
                    if let Some(r) = &e.report {
                        super::common::print_report(ctx, r, &session.trust);
                    }
                    let mut c = CliError::from(e);
                    c.message = format!("rung {}: {}", i + 1, c.message);
                    c
                })?);
            }
            let mut s = signer.open()?;
            let address = s.address().map_err(signer_error)?;
            for r in &ready {
                session.check_signer(r.bundle(), address)?;
            }
            let n = ready.len();
            for (i, r) in ready.iter().enumerate() {
                if !ctx.json {
                    outln!("\n=== rung {} of {n}: Safe nonce {} ===", i + 1, l.nonce(i));
                    let p = crate::signer::preview::device_preview(
                        r.request(),
                        s.full_eip712(),
                        s.blind_signing_setting(),
                    );
                    for line in p.lines() {
                        outln!("{line}");
                    }
                    outln!("Confirm on {} ({})…", s.label(), address.to_checksum(None));
                }
                let (out, _) = session.sign(r, s.as_mut())?;
                l.rungs[i] = out;
                // Nothing lost on a crash: each signature is on disk before the next is asked.
                write(&l, &ladder, true, &keys)?;
            }
            let tally = session.tally(&l.rungs[0])?;
            if ctx.json {
                print_json(json!({
                    "ladder": ladder.display().to_string(),
                    "signer": address.to_checksum(None),
                    "rungs": n,
                    "signatures": tally.counted.len(),
                    "threshold": tally.threshold,
                }));
            } else {
                outln!(
                    "signed {n} rung(s) by {}; {} of {} signatures; wrote {}",
                    address.to_checksum(None),
                    tally.counted.len(),
                    tally.threshold,
                    ladder.display()
                );
            }
            Ok(())
        }
        LadderCmd::Status { ladder, keys } => {
            let l = read(&ladder, &keys.protection()?)?;
            let session = ctx.session()?.on_chain_id(l.chain_id);
            let st = session.ladder_status(&l)?;
            ctx.audit(
                "ladder_status",
                json!({ "ladder": ladder.display().to_string(), "playbook": l.playbook, "status": st }),
            )?;
            if ctx.json {
                print_json(
                    json!({ "ladder": ladder.display().to_string(), "status": st, "rungs": l.rungs.len(), "exit_code": st.exit_code() }),
                );
            } else {
                outln!("{}", state_text(&l, &st));
            }
            match st.exit_code() {
                0 => Ok(()),
                code => Err(CliError {
                    code: match code {
                        6 => ExitCode::LadderWaiting,
                        7 => ExitCode::LadderStale,
                        _ => ExitCode::LadderInvalid,
                    },
                    ..CliError::new("ladder_status", state_text(&l, &st))
                }
                .quiet_in_json()),
            }
        }
        LadderCmd::Fire {
            ladder,
            signer,
            wait_timeout,
            keys,
        } => {
            let t0 = Instant::now();
            let keys = keys.protection()?;
            let mut l = read(&ladder, &keys)?;
            let session = ctx.session()?.on_chain_id(l.chain_id);
            let st = session.ladder_status(&l)?;
            if !matches!(st, LadderState::Live { .. }) {
                return Err(CliError::new(
                    "ladder_not_live",
                    format!("nothing fired: {}", state_text(&l, &st)),
                )
                .code(ExitCode::Refused));
            }
            let mut signer_box = signer.open()?;
            let json_mode = ctx.json;
            let mut say = |p: Progress| match p {
                Progress::Line(x) if !json_mode => outln!("{x}"),
                Progress::Line(_) => {}
            };
            let mut persist = |l: &Ladder| {
                l.write_with(&ladder, true, &keys).map_err(|e| {
                    crate::incident::IncidentError::failed("ladder_write", e.to_string())
                })
            };
            let (rung, landed) = session.fire_ladder(
                &mut l,
                signer_box.as_mut(),
                Duration::from_secs(wait_timeout),
                &mut say,
                &mut persist,
            )?;
            let nonce = l.nonce(rung);
            let secs = t0.elapsed().as_secs_f64();
            let all = landed.ok && landed.posts.iter().all(|p| p.pass);
            if ctx.json {
                print_json(json!({
                    "rung": rung + 1,
                    "nonce": nonce.to_string(),
                    "tx_hash": format!("{:#x}", landed.hash),
                    "status": landed.ok,
                    "block_number": landed.block,
                    "postconditions": landed.posts,
                    "all_passed": all,
                    "seconds": secs,
                }));
            } else {
                outln!(
                    "rung {} (Safe nonce {nonce}) {} in block {} {:#x}: {:.2} s from command to mined",
                    rung + 1,
                    if landed.ok { "MINED" } else { "REVERTED" },
                    landed.block.unwrap_or_default(),
                    landed.hash,
                    secs
                );
                for p in &landed.posts {
                    outln!(
                        "  {} {} ({}): {}",
                        if p.pass { "ok " } else { "FAIL" },
                        p.expect,
                        p.action,
                        p.actual
                    );
                }
            }
            if all {
                Ok(())
            } else {
                Err(CliError::new(
                    "postcondition_failed",
                    "the rung was mined but a post-condition failed: the chain is not in the state the playbook promised",
                )
                .quiet_in_json())
            }
        }
    }
}

/// `combine LADDER LADDER… -o OUT`: the signatures of copies of one ladder (signed by different owners,
/// e.g. on offline machines), merged rung by rung; each merged rung is verified under the local manifest.
pub fn combine(
    ctx: &Ctx,
    inputs: &[PathBuf],
    out: &Path,
    force: bool,
    keys: &LadderKeys,
) -> Result<(), CliError> {
    let keys = keys.protection()?;
    let mut ladders = Vec::with_capacity(inputs.len());
    for p in inputs {
        ladders.push((p.display().to_string(), read(p, &keys)?));
    }
    let (_, first) = &ladders[0];
    for (name, l) in &ladders[1..] {
        let same = l.playbook == first.playbook
            && l.chain_id == first.chain_id
            && l.safe == first.safe
            && l.rungs.len() == first.rungs.len()
            && l.rungs.iter().zip(&first.rungs).all(|(a, b)| {
                a.safe_hashes().map(|h| h.safe_tx_hash) == b.safe_hashes().map(|h| h.safe_tx_hash)
            });
        if !same {
            return Err(CliError::new(
                "ladder_mismatch",
                format!("{name} is not a copy of the same ladder (playbook, Safe, rungs and their safeTxHashes must be equal): nothing was written"),
            )
            .code(ExitCode::Refused));
        }
    }
    let session = ctx.session()?.on_chain_id(first.chain_id);
    let mut merged = first.clone();
    let mut counts = Vec::with_capacity(merged.rungs.len());
    for i in 0..merged.rungs.len() {
        let rung_inputs: Vec<(String, crate::bundle::Bundle)> = ladders
            .iter()
            .map(|(n, l)| (format!("{n} rung {}", i + 1), l.rungs[i].clone()))
            .collect();
        let m = crate::transfer::combine::combine(&rung_inputs)
            .map_err(|e| CliError::new("ladder_combine", e.to_string()).code(ExitCode::Refused))?;
        let t = session.accept_signatures(&m.bundle)?;
        counts.push(t.counted.len());
        merged.rungs[i] = m.bundle;
    }
    write(&merged, out, force, &keys)?;
    if ctx.json {
        print_json(
            json!({ "ladder": out.display().to_string(), "rungs": merged.rungs.len(), "signatures": counts }),
        );
    } else {
        outln!(
            "combined {} copies of ladder {:?}: signatures per rung {:?}; wrote {} (mode 0600)",
            ladders.len(),
            merged.playbook,
            counts,
            out.display()
        );
    }
    Ok(())
}

/// `inspect LADDER`: each rung's nonce, safeTxHash and signing state under the local manifest.
pub fn inspect(ctx: &Ctx, path: &Path, keys: &LadderKeys) -> Result<(), CliError> {
    let l = read(path, &keys.protection()?)?;
    let session = ctx.session()?.on_chain_id(l.chain_id);
    let mut rows = Vec::new();
    for (i, b) in l.rungs.iter().enumerate() {
        let v = session.verify(b)?;
        let t = session.tally(b)?;
        rows.push(json!({
            "rung": i + 1,
            "nonce": l.nonce(i).to_string(),
            "safe_tx_hash": b.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "allowed": v.report().allowed,
            "signatures": t.counted.len(),
            "threshold": t.threshold,
            "executed": b.receipt.is_some(),
        }));
        if !ctx.json {
            outln!(
                "rung {:>3}  nonce {:>6}  {}  {}  {} of {} signatures{}",
                i + 1,
                l.nonce(i),
                b.safe_hashes()
                    .map(|h| format!("{:#x}", h.safe_tx_hash))
                    .unwrap_or_default(),
                if v.report().allowed {
                    "ALLOWED"
                } else {
                    "REFUSED"
                },
                t.counted.len(),
                t.threshold,
                if b.receipt.is_some() {
                    "  (executed)"
                } else {
                    ""
                }
            );
        }
    }
    if ctx.json {
        print_json(
            json!({ "ladder": path.display().to_string(), "playbook": l.playbook, "safe": l.safe.to_checksum(None), "rungs": rows }),
        );
    } else {
        outln!(
            "ladder {:?} for Safe {} on chain {}: {} rung(s)",
            l.playbook,
            l.safe.to_checksum(None),
            l.chain_id,
            l.rungs.len()
        );
    }
    Ok(())
}
