//! Watching the chain (issue 20): every block checked against the manifest's watch rules, alerts, and
//! the response (the proposed playbook, or a pre-signed ladder fired at once).

pub mod rules;

pub use rules::{rules, SafeAspect, Severity, WatchKind, WatchRule};
pub mod engine;
pub mod ws;

pub use engine::{Alert, Cursor, StartAt, WatchError, WatchEvent, Watcher};

use crate::incident::{IncidentError, Session};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A pre-signed ladder the watcher fires when a rule proposing its playbook matches (`--auto-fire`).
pub struct AutoFire {
    /// The ladder file.
    pub ladder: PathBuf,
    /// Its keys, when encrypted.
    pub keys: crate::ladder::Protection,
    /// Who sends the execution (any funded account: the signatures are in the ladder).
    pub executor: Box<dyn crate::signer::Signer>,
    /// How long to wait for the receipt.
    pub wait: Duration,
}

/// What the response to an alert did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The ladder's live rung was executed.
    Fired {
        /// The rule that matched.
        rule: String,
        /// The block it matched in.
        alert_block: u64,
        /// The rung (1-based).
        rung: usize,
        /// The execution's transaction.
        tx: alloy::primitives::B256,
        /// Where it was mined.
        mined_block: Option<u64>,
        /// Seconds from the alert to the receipt.
        seconds: f64,
        /// Whether it succeeded and every post-condition holds.
        ok: bool,
    },
    /// The ladder was not fired, and why (already paused, stale, invalid, unreadable…).
    FireRefused {
        /// The rule that matched.
        rule: String,
        /// Why.
        reason: String,
    },
}

impl Session {
    /// A watcher over the manifest's rules (built-in and `[[watch]]`) on the session's node.
    pub fn watcher(&self, start: &StartAt) -> Result<Watcher, IncidentError> {
        let chain = self.node()?.ok_or_else(|| {
            IncidentError::refused("no_node", "watching needs a node: pass --rpc-url URL")
        })?;
        let rules = rules(&self.manifest);
        if rules.is_empty() {
            return Err(IncidentError::refused(
                "no_rules",
                "the manifest has no watch rules (no proxies, no Safe, no [[watch]]) and nothing to watch",
            ));
        }
        Watcher::new(chain, self.manifest.chain_id, rules, start).map_err(|e| match e {
            WatchError::Chain(c) => c.into(),
            other => IncidentError::failed("watch", other.to_string()),
        })
    }

    /// Records an alert in the audit log.
    pub fn record_alert(&self, a: &Alert) -> Result<(), IncidentError> {
        let v = serde_json::to_value(a).unwrap_or_default();
        self.record("watch_alert", v, None).map(|_| ())
    }

    /// Records the watcher losing or regaining the node, or a reorganisation.
    pub fn record_watch_event(&self, e: &WatchEvent) -> Result<(), IncidentError> {
        let step = match e {
            WatchEvent::Blind { .. } => "watch_blind",
            WatchEvent::Resumed { .. } => "watch_resumed",
            WatchEvent::Reorg { .. } => "watch_reorg",
            WatchEvent::Alert(a) => return self.record_alert(a),
            WatchEvent::Start { .. } | WatchEvent::Block { .. } => return Ok(()),
        };
        let v = serde_json::to_value(e).unwrap_or_default();
        self.record(step, v, None).map(|_| ())
    }

    /// The response to an alert: when its rule proposes the ladder's playbook, fire the ladder's live rung
    /// at once (the same step as `ladder fire`), recorded with the alert that caused it. Nothing new is
    /// composed or signed. `None` when the alert is not the ladder's.
    pub fn respond(&self, alert: &Alert, fire: &mut AutoFire) -> Option<Response> {
        let t0 = Instant::now();
        let refused = |reason: String| Response::FireRefused {
            rule: alert.rule.clone(),
            reason,
        };
        let mut l = match crate::ladder::Ladder::read_with(&fire.ladder, &fire.keys) {
            Ok(l) => l,
            Err(e) => {
                let r = refused(format!("cannot read the ladder: {e}"));
                let _ = self.record("watch_fire", json_of(&r, alert), None);
                return Some(r);
            }
        };
        if alert.playbook.as_deref() != Some(l.playbook.as_str()) {
            return None;
        }
        let path = fire.ladder.clone();
        let keys = fire.keys.clone();
        let mut persist = |l: &crate::ladder::Ladder| {
            l.write_with(&path, true, &keys)
                .map_err(|e| IncidentError::failed("ladder_write", e.to_string()))
        };
        let r = match self.fire_ladder(
            &mut l,
            fire.executor.as_mut(),
            fire.wait,
            &mut |_| {},
            &mut persist,
        ) {
            Ok((rung, landed)) => Response::Fired {
                rule: alert.rule.clone(),
                alert_block: alert.block,
                rung: rung + 1,
                tx: landed.hash,
                mined_block: landed.block,
                seconds: t0.elapsed().as_secs_f64(),
                ok: landed.ok && landed.posts.iter().all(|p| p.pass),
            },
            Err(e) => refused(e.message),
        };
        let _ = self.record("watch_fire", json_of(&r, alert), None);
        Some(r)
    }
}

fn json_of(r: &Response, a: &Alert) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("alert".into(), serde_json::to_value(a).unwrap_or_default());
    }
    v
}
