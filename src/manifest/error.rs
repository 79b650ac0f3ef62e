//! Manifest errors: every problem carries the file, line and column it was found at, and what to write
//! instead.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// One problem found in a manifest, with its position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: Option<String>,
}

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Io {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid manifest.
    #[error("{}", render(path, diagnostics))]
    Invalid {
        /// The path given.
        path: PathBuf,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(path: &std::path::Path, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}:{}:{}: {}",
            path.display(),
            d.line,
            d.column,
            d.message
        ));
        if let Some(h) = &d.hint {
            out.push_str(&format!("\n    help: {h}"));
        }
    }
    out
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Collects diagnostics while validating, turning byte spans into line and column.
pub(crate) struct Diags<'a> {
    text: &'a str,
    pub list: Vec<(usize, Diagnostic)>,
    /// ABIs already parsed, by the byte span they were written at: a multi-chain manifest's shared
    /// contract is validated once per chain from the same text.
    pub abi_cache:
        std::collections::HashMap<(usize, usize), Option<std::sync::Arc<alloy::json_abi::JsonAbi>>>,
    /// Human-readable ABI items alloy parsed, by their text (`validate::parsed_abi_item`).
    pub abi_items: std::collections::HashMap<String, std::rc::Rc<alloy::json_abi::JsonAbi>>,
    /// Whole `abi = [ … ]` lists that parsed without a diagnostic, by their items' texts.
    pub abi_lists: std::collections::HashMap<Vec<String>, std::sync::Arc<alloy::json_abi::JsonAbi>>,
    /// Items whose every parameter type was checked and is a Solidity type.
    pub abi_items_typed: std::collections::HashSet<String>,
    /// The manifest's folder: `abi_file` paths are relative to it.
    pub base_dir: std::path::PathBuf,
}

impl<'a> Diags<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            list: Vec::new(),
            abi_cache: Default::default(),
            abi_items: Default::default(),
            abi_lists: Default::default(),
            abi_items_typed: Default::default(),
            base_dir: Default::default(),
        }
    }

    pub fn push(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.list.push((
            span.start,
            Diagnostic {
                line,
                column,
                message: message.into(),
                hint,
            },
        ));
    }

    pub fn err(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        self.push(span, message, Some(hint.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|(pos, _)| *pos);
        self.list.dedup_by(|a, b| a.1 == b.1);
        self.list.into_iter().map(|(_, d)| d).collect()
    }
}

/// 1-based line and character column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in text.as_bytes().iter().enumerate().take(offset) {
        if *b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let column = text
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}
