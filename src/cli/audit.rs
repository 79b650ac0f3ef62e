//! `breakglass audit verify|show`.

use super::output::print_json;
use super::{CliError, Ctx, ExitCode};
use crate::audit;
use clap::Subcommand;
use serde_json::json;

/// `breakglass audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain; report the first broken or missing entry (exit 3 if any).
    Verify,
    /// Print the entries.
    Show {
        /// Only entries at or after this time (unix seconds, or e.g. 1h / 30m / 2d ago).
        #[arg(long, value_name = "T")]
        since: Option<String>,
    },
}

fn parse_since(s: &str) -> Result<u64, CliError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t = s.trim();
    let bad = || {
        CliError::new(
            "usage",
            format!("--since {s:?}: write unix seconds, or 30m / 2h / 1d"),
        )
        .code(ExitCode::Usage)
    };
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    let (num, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(bad()),
    };
    Ok(now.saturating_sub(secs))
}

/// Runs `audit …`.
pub fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<(), CliError> {
    let bytes = ctx
        .audit
        .read()
        .map_err(|e| CliError::new("audit", e.to_string()))?;
    match cmd {
        AuditCmd::Verify => {
            let v = audit::verify(&bytes);
            if ctx.json {
                print_json(json!({
                    "file": ctx.audit.path().display().to_string(),
                    "entries": v.entries,
                    "head": v.head.map(|h| format!("{h:#x}")),
                    "torn_recovered": v.torn_recovered,
                    "broken": v.broken.as_ref().map(|(l, m)| json!({"line": l, "message": m})),
                    "ok": v.broken.is_none(),
                }));
            } else {
                outln!(
                    "audit log {}: {} entries",
                    ctx.audit.path().display(),
                    v.entries
                );
                for l in &v.torn_recovered {
                    outln!("  line {l}: an entry torn by a crash, recorded by the next append (not tampering)");
                }
                match &v.broken {
                    None => outln!(
                        "  chain intact; head {}",
                        v.head
                            .map(|h| format!("{h:#x}"))
                            .unwrap_or_else(|| "(empty)".into())
                    ),
                    Some((l, m)) => outln!("  BROKEN at line {l}: {m}"),
                }
            }
            match v.broken {
                None => Ok(()),
                Some((l, m)) => Err(CliError::new(
                    "audit_broken",
                    format!("the audit chain is broken at line {l}: {m}"),
                )
                .code(ExitCode::Refused)
                .quiet_in_json()),
            }
        }
        AuditCmd::Show { since } => {
            let since = since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
            let es: Vec<audit::Entry> = audit::entries(&bytes)
                .into_iter()
                .filter(|e| e.time >= since)
                .collect();
            if ctx.json {
                print_json(
                    json!({ "file": ctx.audit.path().display().to_string(), "entries": es }),
                );
            } else {
                for e in es {
                    outln!("{:>5}  {}  {:<10} {}", e.seq, e.time, e.event, e.details);
                }
            }
            Ok(())
        }
    }
}
