//! `breakglass tui` and `breakglass drill`.

use super::common::SignerArgs;
use super::{CliError, Ctx, ExitCode};
use crate::drill::Drill;
use crate::manifest::trust::{self, Trust};
use crate::manifest::Manifest;
use crate::tui::{self, Env, SignerSpec};
use clap::Args;
use std::io::IsTerminal;

/// `breakglass tui …`
#[derive(Debug, Args, Default)]
pub struct TuiArgs {
    /// Signer for guardians and the executor.
    #[command(flatten)]
    pub signer: Option<SignerArgs>,
    /// How many Ledger accounts (m/44'/60'/N'/0/0) to offer on the Sign screen.
    #[arg(long, value_name = "N", default_value = "3")]
    pub accounts: u32,
    /// Directory for bundle files (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
    /// A pre-signed pause ladder to watch on the dashboard (and fire with F, then typing `fire`);
    /// repeat for several.
    #[arg(long, value_name = "LADDER")]
    pub ladder: Vec<std::path::PathBuf>,
    /// Keys of encrypted ladders.
    #[command(flatten)]
    pub ladder_keys: super::ladder::LadderKeys,
}

fn need_terminal() -> Result<(), CliError> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::new("no_terminal", "the console needs a terminal")
            .code(ExitCode::Usage)
            .hint("run it in a terminal, or use the commands (compose, verify, sign, execute) from scripts"));
    }
    Ok(())
}

fn spec(s: &SignerArgs) -> Result<Option<SignerSpec>, CliError> {
    if let Some(ks) = &s.keystore {
        let pw = crate::signer::keystore::read_password(s.password_file.as_deref(), ks)
            .map_err(|e| super::common::signer_error(e.into()))?;
        return Ok(Some(SignerSpec::Keystore(ks.clone(), pw)));
    }
    if let Some(a) = &s.speculos {
        return Ok(Some(SignerSpec::Speculos(a.clone())));
    }
    Ok(s.ledger.then_some(SignerSpec::Ledger))
}

fn summary(app: &tui::app::App) {
    let (have, need) = app.signatures();
    errln!(
        "breakglass console closed: {} log entries; bundle {}; signatures {have} of {need}{}",
        app.log.len(),
        app.bundle
            .as_ref()
            .and_then(|b| b.playbook.clone())
            .unwrap_or_else(|| "none".into()),
        app.exec
            .receipt
            .as_ref()
            .map(|r| format!("; {r}"))
            .unwrap_or_default()
    );
}

/// Runs `tui`.
pub fn run_tui(ctx: &Ctx, a: TuiArgs) -> Result<(), CliError> {
    need_terminal()?;
    let m = ctx.load_manifest()?;
    let m_for_urls = m.clone();
    let trust_state = trust::evaluate(&m, ctx.explicit_pin()?.as_ref())?;
    let signer = match &a.signer {
        Some(s) => spec(s)?,
        None => None,
    };
    let env = Env {
        manifest: m,
        trust: trust_state,
        rpc: ctx.rpc_url.clone(),
        signer,
        drill: false,
        out_dir: a.out_dir.unwrap_or_else(|| std::path::PathBuf::from(".")),
        accounts: a.accounts,
        audit: ctx.audit.clone(),
        rpc_urls: ctx.rpc_urls(&m_for_urls)?,
        ladders: a.ladder,
        ladder_keys: a.ladder_keys.protection()?,
    };
    let app = tui::run(env).map_err(|e| CliError::new("terminal", e.to_string()))?;
    summary(&app);
    Ok(())
}

/// `breakglass drill …`
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The anvil to run (default: the project's pinned one in .tools or BREAKGLASS_TOOLS, else `anvil` on
    /// PATH).
    #[arg(long, value_name = "PATH")]
    pub anvil: Option<std::path::PathBuf>,
}

/// Runs `drill`.
pub fn run_drill(ctx: &Ctx, a: DrillArgs) -> Result<(), CliError> {
    // Anvil first: without it nothing else matters, terminal or not.
    let anvil = crate::drill::find_anvil(a.anvil.as_deref())
        .map_err(|e| CliError::new("drill", e.to_string()))?;
    need_terminal()?;
    let drill = Drill::start_with(Some(&anvil), &mut |s| errln!("{s}"))
        .map_err(|e| CliError::new("drill", e.to_string()))?;
    let m = Manifest::load(&drill.manifest_path)?;
    let trust_state = Trust::Pinned {
        source: "DRILL: generated manifest, pinned for this session only".into(),
    };
    // The drill's pre-signed pause ladder (issue 19): three rungs of halt-ladder, signed by two owners.
    let ladder = drill
        .presign_ladder(&mut |s| errln!("{s}"))
        .map_err(|e| CliError::new("drill", e.to_string()))?;
    let env = Env {
        manifest: m,
        trust: trust_state,
        rpc: Some(drill.rpc_url.clone()),
        signer: Some(SignerSpec::Speculos(drill.sim_addr.clone())),
        drill: true,
        out_dir: drill.dir.clone(),
        accounts: 3,
        audit: ctx.audit.clone(),
        rpc_urls: Default::default(),
        ladders: vec![ladder],
        ladder_keys: Default::default(),
    };
    let app = tui::run(env).map_err(|e| CliError::new("terminal", e.to_string()))?;
    summary(&app);
    errln!(
        "DRILL over: the local chain was stopped; bundles are in {}",
        drill.dir.display()
    );
    drop(drill);
    Ok(())
}
