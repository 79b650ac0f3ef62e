//! The audit trail: an append-only JSON-lines log, one entry per compose, verdict, pin, approval,
//! signature, transfer, execution, override and error, each carrying the hash of the previous line (a hash
//! chain) and fsynced before the command reports success. Secrets never enter it: only addresses, hashes,
//! file names and outcomes.
//!
//! A crash can leave a torn last line. It is never silently dropped: the next append first closes it
//! with a newline and records a `torn_entry` entry whose `prev` is the torn bytes' hash, so `audit verify`
//! reports it (as recovered) and the chain still links.

use alloy::primitives::{keccak256, B256};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// What happened: `compose`, `verify`, `pin`, `approve`, `sign`, `export`, `import`, `combine`,
    /// `execute`, `broadcast`, `override`, `error`, `torn_entry`.
    pub event: String,
    /// Public details (never secrets).
    pub details: serde_json::Value,
    /// keccak256 of the previous line's bytes (zero for the first).
    pub prev: B256,
}

/// Audit problems.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// I/O.
    #[error("audit log {path}: {reason}")]
    Io {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

/// The default location: `BREAKGLASS_DATA_DIR`, else the user's data directory.
pub fn default_path() -> PathBuf {
    if let Some(d) = std::env::var_os("BREAKGLASS_DATA_DIR") {
        return PathBuf::from(d).join("audit.jsonl");
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("breakglass")
        .join("audit.jsonl")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How much of the log's end is read at first when appending (grown fourfold until the last entry is
/// whole): most entries are under 4 KB, and every command that records pays for this read.
const TAIL_CHUNK: u64 = 8 * 1024;

/// The last line of `bytes` (without its newline) and whether it is complete (newline-terminated).
fn last_line(bytes: &[u8]) -> Option<(&[u8], bool)> {
    if bytes.is_empty() {
        return None;
    }
    let complete = bytes.last() == Some(&b'\n');
    let body = if complete {
        &bytes[..bytes.len() - 1]
    } else {
        bytes
    };
    let start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    Some((&body[start..], complete))
}

impl AuditLog {
    /// The log at `path` (created on first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: impl std::fmt::Display) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Appends an entry (under an exclusive file lock) and fsyncs it. Returns the new line's hash.
    pub fn append(&self, event: &str, details: serde_json::Value) -> Result<B256, AuditError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let mut f = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        f.lock().map_err(|e| self.io(e))?;
        let result = self.append_locked(&mut f, event, details);
        let _ = f.unlock();
        result
    }

    fn append_locked(
        &self,
        f: &mut File,
        event: &str,
        details: serde_json::Value,
    ) -> Result<B256, AuditError> {
        let len = f.metadata().map_err(|e| self.io(e))?.len();
        let tail = self.read_tail(f, len)?;
        let (mut prev, mut seq) = (B256::ZERO, 0u64);
        let mut out = Vec::new();
        if let Some((line, complete)) = last_line(&tail) {
            prev = keccak256(line);
            match serde_json::from_slice::<Entry>(line) {
                Ok(e) => {
                    seq = e.seq;
                    if !complete {
                        // A whole entry whose newline never reached the disk.
                        out.push(b'\n');
                    }
                }
                Err(_) => {
                    // A torn (or unreadable) last line. Each unreadable line after the last whole entry
                    // took a number; record the tear so it is never silently dropped.
                    let body = if complete {
                        &tail[..tail.len() - 1]
                    } else {
                        &tail[..]
                    };
                    let mut unreadable = 0u64;
                    let mut last_seq = 0u64;
                    for l in body.split(|b| *b == b'\n').rev() {
                        match serde_json::from_slice::<Entry>(l) {
                            Ok(e) => {
                                last_seq = e.seq;
                                break;
                            }
                            Err(_) => unreadable += 1,
                        }
                    }
                    seq = last_seq + unreadable;
                    if !complete {
                        out.push(b'\n');
                    }
                    seq += 1;
                    let torn = Entry {
                        seq,
                        time: now(),
                        event: "torn_entry".into(),
                        details: serde_json::json!({ "bytes": line.len(), "note": "the previous entry was cut short by a crash; it is kept as it was" }),
                        prev,
                    };
                    let t = serde_json::to_vec(&torn).map_err(|e| self.io(e))?;
                    prev = keccak256(&t);
                    out.extend_from_slice(&t);
                    out.push(b'\n');
                }
            }
        }
        let entry = Entry {
            seq: seq + 1,
            time: now(),
            event: event.into(),
            details,
            prev,
        };
        let line = serde_json::to_vec(&entry).map_err(|e| self.io(e))?;
        let hash = keccak256(&line);
        out.extend_from_slice(&line);
        out.push(b'\n');
        f.write_all(&out).map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        Ok(hash)
    }

    /// The end of the log from a line start: at least the whole last line, and, when the last line is not
    /// an entry (torn), back to the last whole entry or the start of the file. Read backwards in growing
    /// chunks, so an entry of any size (a 5,000-call batch is 70 KB) is found whole: never mistaken for a
    /// torn line because only its end was read.
    fn read_tail(&self, f: &mut File, len: u64) -> Result<Vec<u8>, AuditError> {
        let mut take = len.min(TAIL_CHUNK);
        loop {
            f.seek(SeekFrom::Start(len - take))
                .map_err(|e| self.io(e))?;
            let mut buf = Vec::with_capacity(take as usize);
            Read::by_ref(f)
                .take(take)
                .read_to_end(&mut buf)
                .map_err(|e| self.io(e))?;
            let at_start = take == len;
            let from_line_start: Option<&[u8]> = if at_start {
                Some(&buf[..])
            } else {
                // The first bytes may be the middle of a line: start after the first newline.
                buf.iter()
                    .position(|b| *b == b'\n')
                    .map(|i| &buf[i + 1..])
                    .filter(|rest| !rest.is_empty())
            };
            if let Some(slice) = from_line_start {
                let enough = at_start
                    || match last_line(slice) {
                        Some((line, _)) if serde_json::from_slice::<Entry>(line).is_ok() => true,
                        // Torn last line: the tail must also hold the last whole entry before it.
                        Some(_) => {
                            let body = slice.strip_suffix(b"\n").unwrap_or(slice);
                            body.split(|b| *b == b'\n')
                                .rev()
                                .skip(1)
                                .any(|l| serde_json::from_slice::<Entry>(l).is_ok())
                        }
                        None => false,
                    };
                if enough {
                    let skip = buf.len() - slice.len();
                    buf.drain(..skip);
                    return Ok(buf);
                }
            }
            take = take.saturating_mul(4).min(len);
        }
    }

    /// Reads every entry (a missing file is an empty log).
    pub fn read(&self) -> Result<Vec<u8>, AuditError> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io(e)),
        }
    }
}

/// The result of checking the chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verification {
    /// Entries that parse and link.
    pub entries: usize,
    /// Hash of the last line (the head of the chain).
    pub head: Option<B256>,
    /// Torn entries that a later append recorded (crashes, not tampering).
    pub torn_recovered: Vec<usize>,
    /// The first problem: (1-based line, what is wrong).
    pub broken: Option<(usize, String)>,
}

/// Checks the chain: every line parses, links to the previous line's hash, and numbers follow.
pub fn verify(bytes: &[u8]) -> Verification {
    let mut v = Verification {
        entries: 0,
        head: None,
        torn_recovered: Vec::new(),
        broken: None,
    };
    if bytes.is_empty() {
        return v;
    }
    let complete = bytes.last() == Some(&b'\n');
    let body = if complete {
        &bytes[..bytes.len() - 1]
    } else {
        bytes
    };
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let mut prev = B256::ZERO;
    let mut seq = 0u64;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        match serde_json::from_slice::<Entry>(line) {
            Ok(e) => {
                if e.prev != prev {
                    v.broken = Some((n, format!("entry {} does not link to the line before it (an entry was removed, inserted or edited)", e.seq)));
                    return v;
                }
                if e.seq != seq + 1 {
                    v.broken = Some((
                        n,
                        format!(
                            "entry numbers jump from {seq} to {}: an entry is missing",
                            e.seq
                        ),
                    ));
                    return v;
                }
                if e.event == "torn_entry" {
                    v.torn_recovered.push(n - 1);
                }
                seq = e.seq;
                v.entries += 1;
            }
            Err(err) => {
                // Unreadable lines are accepted only as crash damage: a run of them must end in a
                // `torn_entry` record that links to the last one.
                let mut k = i;
                while k + 1 < lines.len() && serde_json::from_slice::<Entry>(lines[k + 1]).is_err()
                {
                    k += 1;
                }
                let recorded = lines
                    .get(k + 1)
                    .and_then(|l| serde_json::from_slice::<Entry>(l).ok())
                    .is_some_and(|e| e.event == "torn_entry" && e.prev == keccak256(lines[k]));
                if recorded {
                    seq += 1;
                } else if i + 1 == lines.len() {
                    v.broken = Some((
                        n,
                        "the last entry is torn (cut short by a crash); the next append will record it".into(),
                    ));
                    return v;
                } else {
                    v.broken = Some((n, format!("line is not an audit entry: {err}")));
                    return v;
                }
            }
        }
        prev = keccak256(line);
    }
    if !complete && v.broken.is_none() {
        v.broken = Some((
            lines.len(),
            "the last entry has no newline: it may be torn".into(),
        ));
    }
    v.head = Some(prev);
    v
}

/// Parses entries for display (unparseable lines are skipped; `verify` reports them).
pub fn entries(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Entry>(l).ok())
        .collect()
}
