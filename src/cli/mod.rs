//! Command-line interface: one file per subcommand. Each parses its arguments, calls the core, and prints
//! for a person or, with `--json`, as data. Errors become [`CliError`] with an exit code from DESIGN.md:
//! 0 ok, 1 error, 2 usage, 3 verification refused, 4 signer refused or unavailable.

/// `println!` that ignores a closed stdout (e.g. `breakglass verify … | head -1`): the command still
/// finishes and its exit code still tells the outcome, instead of a panic. Every line is terminal-safe:
/// control characters and escapes from files are shown as `\x1b`, bidi and invisible characters as
/// `<U+202E>` ([`crate::text::sanitize`]), whoever wrote them.
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($t)*);
        let _ = writeln!(std::io::stdout().lock(), "{}", $crate::text::sanitize(&text));
    }};
}

/// `print!` that ignores a closed stdout; terminal-safe like [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($t)*);
        let _ = write!(std::io::stdout().lock(), "{}", $crate::text::sanitize(&text));
    }};
}

/// `eprintln!`, terminal-safe like [`outln!`].
macro_rules! errln {
    () => {{
        eprintln!();
    }};
    ($($t:tt)*) => {{
        let text = format!($($t)*);
        eprintln!("{}", $crate::text::sanitize(&text));
    }};
}

/// `eprint!`, terminal-safe like [`outln!`].
macro_rules! err {
    ($($t:tt)*) => {{
        let text = format!($($t)*);
        eprint!("{}", $crate::text::sanitize(&text));
    }};
}

mod audit;
mod common;
mod compose;
pub(crate) mod execute;
mod execute_chains;
pub(crate) mod ladder;
mod lazy;
mod manifest;
mod output;
pub(crate) mod sign;
mod simulate;
mod transfer;
mod tui;
mod verify;
mod watch;

pub use output::{CliError, ExitCode};

use crate::manifest::trust::{self, ExplicitPin};
use crate::manifest::Manifest;
use clap::{Parser, Subcommand};
use lazy::{Lazy, LazySub};
use std::path::PathBuf;

/// The version, with the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BREAKGLASS_COMMIT"),
    ")"
);

/// breakglass: compose, verify, sign and execute emergency pause and patch transactions against a pinned
/// manifest.
#[derive(Debug, Parser)]
#[command(name = "breakglass", version = VERSION, about, long_about = None, propagate_version = true)]
#[command(next_help_heading = "Global options (before or after the command)")]
pub struct Cli {
    /// The manifest (TOML) describing what may be signed.
    #[arg(
        long,
        global = true,
        env = "BREAKGLASS_MANIFEST",
        default_value = "breakglass.toml",
        value_name = "PATH"
    )]
    pub manifest: PathBuf,
    /// Trust exactly this manifest hash (also env BREAKGLASS_PIN); overrides the pin store.
    #[arg(long, global = true, value_name = "HASH")]
    pub pin: Option<String>,
    /// Append audit entries to this file instead of the default in the user's data directory.
    #[arg(long, global = true, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// JSON-RPC endpoint of a node.
    #[arg(long, global = true, env = "ETH_RPC_URL", value_name = "URL")]
    pub rpc_url: Option<String>,
    /// Node URLs per chain of a multi-chain manifest: a local TOML file of `NAME = "URL"` lines (never
    /// pinned; keep API keys out of the manifest). BREAKGLASS_RPC_<NAME> variables override it.
    #[arg(
        long,
        global = true,
        env = "BREAKGLASS_RPC_CONFIG",
        value_name = "FILE"
    )]
    pub rpc_config: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do (without a command: the console, when a manifest is found).
    #[command(subcommand)]
    pub command: Option<lazy::Root<Command>>,
}

/// Parses the process's command line ([`lazy::Root`]: clap is given only the command on it); on a usage
/// error, `--help` or `--version`, prints and exits as clap does.
pub fn parse() -> Cli {
    use clap::Parser as _;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    lazy::only(lazy::command_on_line(&args));
    let cli = Cli::parse_from(args);
    lazy::only(None);
    cli
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, check, pin and approve the manifest.
    #[command(subcommand)]
    Manifest(LazySub<manifest::ManifestCmd>),
    /// Decode a transaction (flags, bundle or Safe Transaction Builder file) and check it against the
    /// manifest. Exit 0 when allowed, 3 when refused, 5 when allowed by an untrusted manifest.
    Verify(Lazy<verify::VerifyArgs>),
    /// Compose a playbook into the exact transaction guardians sign, verified, as a bundle file.
    Compose(Lazy<compose::ComposeArgs>),
    /// Show a bundle's verification report and signing state.
    Inspect(Lazy<compose::InspectArgs>),
    /// Re-verify a bundle against the local pinned manifest and add a signature (Ledger, Speculos or
    /// keystore). Exit 4 when the device refuses or is unavailable; nothing is written then.
    Sign(Lazy<sign::SignArgs>),
    /// Pre-signed pause ladders: build, sign, status, fire.
    #[command(subcommand)]
    Ladder(LazySub<ladder::LadderCmd>),
    /// Follow the chain: check every new block against the manifest's watch rules (every proxy's
    /// EIP-1967 slots and the Safe's configuration built in, plus [[watch]]), alert, and with
    /// --auto-fire fire a pre-signed ladder. Ctrl-C stops after the current block.
    Watch(Lazy<watch::WatchArgs>),
    /// Run a bundle's transaction in-process against the node's state at a pinned block (or offline
    /// against a snapshot): revert reason and failing call, events, storage and balance changes, and the
    /// manifest's post-conditions. Exit 0 when it does what the playbook expects, 3 when not.
    Simulate(Lazy<simulate::SimulateArgs>),
    /// Talk to a Ledger: list devices, show an address, read the Ethereum app's settings.
    #[command(subcommand)]
    Ledger(LazySub<sign::LedgerCmd>),
    /// Execute a fully signed Safe transaction: check signatures against the chain, simulate, sign the
    /// execution with the executor's signer, send, wait, and check the post-conditions.
    Execute(Lazy<execute::ExecuteArgs>),
    /// Send an already-signed transaction (idempotent: re-running never sends twice), wait, and check
    /// the post-conditions.
    Broadcast(Lazy<execute::BroadcastArgs>),
    /// Timelock operations.
    #[command(subcommand)]
    Timelock(LazySub<execute::TimelockCmd>),
    /// Merge the signatures of bundles for the same request into one (sorted by owner, as Safe
    /// requires). Exit 3 when the bundles are not for the same request.
    Combine(Lazy<transfer::CombineArgs>),
    /// Show a bundle (or just its signatures) as UR strings, PNG QR codes or an animated terminal QR;
    /// or as an ERC-4527 `eth-sign-request` for QR signers (Keystone, AirGap Vault).
    Export(Lazy<transfer::ExportArgs>),
    /// Read a bundle, its signatures or an ERC-4527 `eth-signature` from QR images or UR lines,
    /// check it and write the bundle.
    Import(Lazy<transfer::ImportArgs>),
    /// The audit trail: verify its hash chain, or show it.
    #[command(subcommand)]
    Audit(LazySub<audit::AuditCmd>),
    /// The incident console: a keyboard-driven TUI.
    Tui(Lazy<tui::TuiArgs>),
    /// A whole incident on built-in pieces: local chain, demo manifest, simulated Ledger. Everything DRILL.
    /// Needs only Foundry's anvil (the project's pinned one, on PATH, or --anvil PATH); the contracts it
    /// deploys are built into the binary.
    Drill(Lazy<tui::DrillArgs>),
    /// Run the built-in Ledger simulator (a TEST AND DRILL device) on a TCP port, Speculos protocol.
    DeviceSim(Lazy<sign::DeviceSimArgs>),
    /// Print a shell completion script, generated from the command-line definition
    /// (e.g. `breakglass completions bash > ~/.local/share/bash-completion/completions/breakglass`).
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from the command-line definition
    /// (`breakglass man | man -l -`); --out-dir writes one page per command.
    Man {
        /// Write breakglass.1 and breakglass-COMMAND.1 for every command into this directory.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// `breakglass completions SHELL`: the script on standard output.
fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    use clap::CommandFactory;
    lazy::eager();
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "breakglass", &mut out);
    write_stdout(&out)
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new("output", e.to_string()))
        }
        _ => Ok(()),
    }
}

/// `breakglass man [--out-dir DIR]`: the main page on standard output, or every command's page in DIR.
fn man(out_dir: Option<&std::path::Path>) -> Result<(), CliError> {
    use clap::CommandFactory;
    lazy::eager();
    let cmd = Cli::command();
    let err = |e: std::io::Error| CliError::new("man", e.to_string());
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(err)?;
            clap_mangen::generate_to(cmd, dir).map_err(err)?;
            errln!("manual pages written to {}", dir.display());
            Ok(())
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map_err(err)?;
            write_stdout(&out)
        }
    }
}

/// Shared state for a command run.
pub struct Ctx {
    /// `--json`.
    pub json: bool,
    /// `--manifest`.
    pub manifest_path: PathBuf,
    /// `--pin`.
    pub pin_flag: Option<String>,
    /// `--rpc-url`.
    pub rpc_url: Option<String>,
    /// `--rpc-config`.
    pub rpc_config: Option<PathBuf>,
    /// The audit log.
    pub audit: crate::audit::AuditLog,
}

impl Ctx {
    /// Loads and validates the manifest.
    pub fn load_manifest(&self) -> Result<Manifest, CliError> {
        Manifest::load(&self.manifest_path).map_err(CliError::from)
    }

    /// The incident session of this command: the manifest (loaded and validated), its trust, the node
    /// and the audit log.
    pub fn session(&self) -> Result<crate::incident::Session, CliError> {
        let manifest = self.load_manifest()?;
        let trust = trust::evaluate(&manifest, self.explicit_pin()?.as_ref())?;
        Ok(crate::incident::Session {
            rpc_url: self.rpc_url.clone(),
            rpc_urls: self.rpc_urls(&manifest)?,
            manifest,
            trust,
            audit: self.audit.clone(),
            front_end: crate::incident::FrontEnd::Cli,
            simulate: Default::default(),
        })
    }

    /// Node URLs by chain name: the `--rpc-config` file, then `BREAKGLASS_RPC_<NAME>` variables (the name
    /// upper-cased, `-` as `_`).
    pub fn rpc_urls(
        &self,
        m: &Manifest,
    ) -> Result<std::collections::BTreeMap<String, String>, CliError> {
        let mut urls = std::collections::BTreeMap::new();
        if let Some(path) = &self.rpc_config {
            let bad = |why: String| {
                CliError::new("bad_rpc_config", format!("{}: {why}", path.display()))
                    .code(ExitCode::Usage)
                    .hint("write one line per chain: NAME = \"http://…\" (the chain names of the manifest)")
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
            let names = m.chain_names();
            for (k, v) in table {
                let url = v
                    .as_str()
                    .ok_or_else(|| bad(format!("{k}: the URL must be a string")))?;
                // Names of other manifests' chains are ignored: one config may serve several manifests.
                if m.is_multichain() && !names.contains(&k) {
                    continue;
                }
                urls.insert(k, url.to_string());
            }
        }
        for name in m.chain_names() {
            let var = format!(
                "BREAKGLASS_RPC_{}",
                name.to_ascii_uppercase().replace('-', "_")
            );
            if let Ok(u) = std::env::var(&var) {
                if !u.trim().is_empty() {
                    urls.insert(name, u.trim().to_string());
                }
            }
        }
        Ok(urls)
    }

    /// Appends an audit entry (fsynced). A command that cannot record what it did does not report success.
    pub fn audit(
        &self,
        event: &str,
        details: serde_json::Value,
    ) -> Result<alloy::primitives::B256, CliError> {
        self.audit.append(event, details).map_err(|e| {
            CliError::new("audit", e.to_string())
                .hint("fix the audit log location (--audit-log PATH) and run the command again")
        })
    }

    /// The pin given by flag or environment, if any.
    pub fn explicit_pin(&self) -> Result<Option<ExplicitPin>, CliError> {
        if let Some(p) = &self.pin_flag {
            return Ok(Some(trust::parse_pin(p, "--pin")?));
        }
        match std::env::var("BREAKGLASS_PIN") {
            Ok(p) if !p.trim().is_empty() => Ok(Some(trust::parse_pin(&p, "BREAKGLASS_PIN")?)),
            _ => Ok(None),
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx {
        json: cli.json,
        manifest_path: cli.manifest.clone(),
        pin_flag: cli.pin.clone(),
        rpc_url: cli.rpc_url.clone(),
        rpc_config: cli.rpc_config.clone(),
        audit: crate::audit::AuditLog::new(
            cli.audit_log
                .clone()
                .unwrap_or_else(crate::audit::default_path),
        ),
    };
    let Some(lazy::Root(command)) = cli.command else {
        if ctx.manifest_path.exists() {
            return tui::run_tui(
                &ctx,
                tui::TuiArgs {
                    accounts: 3,
                    ..Default::default()
                },
            );
        }
        return Err(CliError::new("usage", format!("no command, and no manifest at {}", ctx.manifest_path.display()))
            .code(ExitCode::Usage)
            .hint("run `breakglass --help`, `breakglass drill`, or `breakglass --manifest FILE` for the console"));
    };
    match &command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man { out_dir } => return man(out_dir.as_deref()),
        _ => {}
    }
    let audited = match &command {
        Command::Manifest(LazySub(
            manifest::ManifestCmd::Pin { .. } | manifest::ManifestCmd::Approve { .. },
        )) => Some("manifest"),
        Command::Verify(_) => Some("verify"),
        Command::Compose(_) => Some("compose"),
        Command::Sign(_) => Some("sign"),
        Command::Simulate(_) => Some("simulate"),
        Command::Ladder(_) => Some("ladder"),
        Command::Execute(_) => Some("execute"),
        Command::Broadcast(_) => Some("broadcast"),
        Command::Combine(_) => Some("combine"),
        Command::Export(_) => Some("export"),
        Command::Import(_) => Some("import"),
        _ => None,
    };
    let result = match command {
        Command::Audit(LazySub(c)) => audit::run(&ctx, c),
        Command::Combine(Lazy(a)) => transfer::run_combine(&ctx, a),
        Command::Export(Lazy(a)) => transfer::run_export(&ctx, a),
        Command::Import(Lazy(a)) => transfer::run_import(&ctx, a),
        Command::Tui(Lazy(a)) => tui::run_tui(&ctx, a),
        Command::Drill(Lazy(a)) => tui::run_drill(&ctx, a),
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
        Command::Manifest(LazySub(cmd)) => manifest::run(&ctx, cmd),
        Command::Verify(Lazy(a)) => verify::run(&ctx, a),
        Command::Compose(Lazy(a)) => compose::run_compose(&ctx, a),
        Command::Inspect(Lazy(a)) => compose::run_inspect(&ctx, a),
        Command::Sign(Lazy(a)) => sign::run_sign(&ctx, a),
        Command::Simulate(Lazy(a)) => simulate::run_simulate(&ctx, a),
        Command::Ladder(LazySub(c)) => ladder::run(&ctx, c),
        Command::Watch(Lazy(a)) => watch::run_watch(&ctx, a),
        Command::Ledger(LazySub(c)) => sign::run_ledger(&ctx, c),
        Command::DeviceSim(Lazy(a)) => sign::run_device_sim(&ctx, a),
        Command::Execute(Lazy(a)) => execute::run_execute(&ctx, a),
        Command::Broadcast(Lazy(a)) => execute::run_broadcast(&ctx, a),
        Command::Timelock(LazySub(c)) => execute::run_timelock(&ctx, c),
    };
    if let (Err(e), Some(cmd)) = (&result, audited) {
        // Refusals and failures are part of the record too (a verify refusal is logged as its verdict).
        if e.kind != "refused" || cmd != "verify" {
            let _ = ctx.audit.append("error", serde_json::json!({ "command": cmd, "kind": e.kind, "message": e.message, "exit_code": e.code as i32 }));
        }
    }
    result
}
