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
    pub file: Option<String>,
    /// With `--json`, print nothing more (the command already printed its report).
    #[serde(skip)]
    pub quiet_json: bool,
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
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            eprintln!("error: {}", self.message);
            if let Some(h) = &self.hint {
                eprintln!("  next: {h}");
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
                file: Some(path.display().to_string()),
                quiet_json: false,
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
    outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}
