//! Printing results and errors, for people and for `--json`.

use crate::manifest::{Diagnostic, ManifestError};
use serde::Serialize;

/// DESIGN.md's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 1: an error.
    Error = 1,
    /// 2: bad usage.
    Usage = 2,
    /// 3: verification refused.
    Refused = 3,
    /// 4: signer refused or unavailable.
    Signer = 4,
    /// 5: `verify` found the transaction allowed, but by a manifest that is not trusted (not pinned, not
    /// approved): a script must not take that for a verdict (`--allow-untrusted` makes it 0).
    Untrusted = 5,
    /// 6: `ladder status`: the Safe's nonce has not reached the first rung yet.
    LadderWaiting = 6,
    /// 7: `ladder status`: the Safe's nonce has passed every rung.
    LadderStale = 7,
    /// 8: `ladder status`: the live rung no longer has enough valid signatures.
    LadderInvalid = 8,
}

/// An error for the person at the keyboard: what happened, and what to do.
#[derive(Debug, Clone, Serialize)]
pub struct CliError {
    /// Exit code.
    #[serde(skip)]
    pub code: ExitCode,
    /// A stable machine-readable kind, e.g. `manifest_invalid`.
    pub kind: &'static str,
    /// What happened.
    pub message: String,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Positioned problems, for manifest errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// The file the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<str>>,
    /// With `--json`, print nothing more (the command already printed its report).
    #[serde(skip)]
    pub quiet_json: bool,
    /// The simulation that refused, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub simulation: Option<Box<crate::bundle::simulation::Simulation>>,
}

impl CliError {
    /// A generic error (exit 1).
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: ExitCode::Error,
            kind,
            message: message.into(),
            hint: None,
            diagnostics: Vec::new(),
            file: None,
            quiet_json: false,
            simulation: None,
        }
    }

    /// With `--json`, the command's own output already says it all.
    pub fn quiet_in_json(mut self) -> Self {
        self.quiet_json = true;
        self
    }

    /// Adds what to do next.
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    /// Sets the exit code.
    pub fn code(mut self, c: ExitCode) -> Self {
        self.code = c;
        self
    }

    /// Prints the error (stderr for people, stdout JSON envelope for `--json`) and returns the exit code.
    pub fn report(&self, json: bool) -> i32 {
        if json && self.quiet_json {
            return self.code as i32;
        }
        if json {
            let v =
                serde_json::json!({ "ok": false, "exit_code": self.code as i32, "error": self });
            print_json_raw(&v);
        } else {
            if let Some(sim) = &self.simulation {
                for l in sim.lines() {
                    errln!("{l}");
                }
            }
            errln!("error: {}", self.message);
            if let Some(h) = &self.hint {
                errln!("  next: {h}");
            }
        }
        self.code as i32
    }
}

impl From<ManifestError> for CliError {
    fn from(e: ManifestError) -> Self {
        match &e {
            ManifestError::Io { path, .. } => CliError::new("manifest_unreadable", e.to_string())
                .hint(format!(
                    "pass --manifest PATH (or set BREAKGLASS_MANIFEST); {} was not found or not readable",
                    path.display()
                )),
            ManifestError::Invalid { path, diagnostics } => CliError {
                code: ExitCode::Error,
                kind: "manifest_invalid",
                message: format!(
                    "the manifest has {} problem{}:\n{}",
                    diagnostics.len(),
                    if diagnostics.len() == 1 { "" } else { "s" },
                    e
                ),
                hint: Some("fix each problem at the line and column shown, then run `breakglass manifest check` again".into()),
                diagnostics: diagnostics.clone(),
                file: Some(path.display().to_string().into()),
                quiet_json: false,
                simulation: None,
            },
        }
    }
}

impl From<crate::manifest::trust::TrustError> for CliError {
    fn from(e: crate::manifest::trust::TrustError) -> Self {
        use crate::manifest::trust::TrustError;
        let kind = match &e {
            TrustError::BadPin(_) => "bad_pin",
            _ => "trust_store",
        };
        CliError::new(kind, e.to_string())
    }
}

/// Prints a JSON value with `"ok": true` merged in.
pub fn print_json(v: serde_json::Value) {
    let v = match v {
        serde_json::Value::Object(mut m) => {
            m.entry("ok").or_insert(serde_json::Value::Bool(true));
            serde_json::Value::Object(m)
        }
        other => other,
    };
    print_json_raw(&v);
}

/// Writes a JSON document to stdout, terminal-safe without changing its meaning
/// ([`crate::text::json_terminal_safe`]); a closed stdout is ignored.
fn print_json_raw(v: &serde_json::Value) {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        crate::text::json_terminal_safe(&text)
    );
}

impl From<crate::incident::IncidentError> for CliError {
    fn from(e: crate::incident::IncidentError) -> Self {
        use crate::incident::ErrorKind;
        let code = match e.kind {
            ErrorKind::Failed => ExitCode::Error,
            ErrorKind::BadInput => ExitCode::Usage,
            ErrorKind::Refused => ExitCode::Refused,
            ErrorKind::Signer => ExitCode::Signer,
        };
        // The command line's own words where a flag is the answer.
        let hint = match (e.code, e.recommendation.as_deref()) {
            ("untrusted_manifest", _) => Some("review the manifest, then `breakglass manifest pin`, or pass --pin 0x<hash> agreed out of band".to_string()),
            ("usage", Some(r)) if r.starts_with("name this chain's node") => Some("name it in --rpc-config FILE (NAME = \"URL\" lines) or BREAKGLASS_RPC_<NAME>".to_string()),
            ("usage", _) if e.message.contains("needs a node") => Some("pass --rpc-url URL (or set ETH_RPC_URL)".to_string()),
            ("not_enough_signatures", _) => Some("collect more signatures (`breakglass sign`, `breakglass combine`) and try again; an executor who is an owner can approve with --approve-as-owner after reviewing".to_string()),
            ("wrong_step", Some(r)) if r.starts_with("broadcast") => Some("run `breakglass broadcast BUNDLE` to send it (or keep waiting for it); it never sends twice".to_string()),
            ("wrong_signer", _) => Some("use --account N or --hd-path for another Ledger account, or another keystore; nothing was signed".to_string()),
            ("chain", Some(r)) if r.starts_with("connect to a node") => Some("point --rpc-url at a node of the manifest's chain".to_string()),
            ("chain", Some(r)) if r.starts_with("give the node") => Some("write e.g. --rpc-url http://127.0.0.1:8545".to_string()),
            ("chain", Some(r)) if r.starts_with("check that the node") => Some("check that the node is running and reachable, or work offline with explicit --nonce (and fee flags)".to_string()),
            ("chain", Some(r)) if r.starts_with("try again later") => Some("run the same command again later: it finds the transaction by hash and never sends twice".to_string()),
            ("bad_builder_json", Some(r)) if r.starts_with("name the Safe") => Some("pass --safe ADDR".to_string()),
            ("audit", _) => Some("fix the audit log location (--audit-log PATH) and run the command again".to_string()),
            (_, r) => r.map(str::to_string),
        };
        CliError {
            code,
            kind: e.code,
            message: e.message,
            hint,
            diagnostics: Vec::new(),
            file: None,
            quiet_json: false,
            simulation: e.simulation,
        }
    }
}
