//! The incident workflow, written once. A [`Session`] holds the manifest, its trust, the node (optional),
//! the audit log and which front end drives it; the workflow steps are its methods: compose, verify, check
//! the code of upgrade implementations, check a signer, sign, count and combine signatures, prepare and land
//! an execution. The command line and the console both call these methods, so every safety check runs on
//! every path. No terminal, no clap, no printing here: results and [`IncidentError`]s are values, with a
//! recommendation in words any front end can show.

mod error;
mod verify;

pub use error::{ErrorKind, IncidentError};
pub use verify::VerifyInput;

use crate::audit::AuditLog;
use crate::bundle::{self, AuditRef, Bundle, EoaRequest, SignatureEntry, Tally, VerifiedBundle};
use crate::chain::postcond::{self, CodeHashCheck, PostCondition};
use crate::chain::Chain;
use crate::compose::{self, ComposeOptions, Composed, EoaParams};
use crate::manifest::trust::Trust;
use crate::manifest::{Manifest, Via};
use crate::policy::Report;
use crate::safe::{pack_signatures, SignatureKind};
use crate::signer::{self, Signer, SigningRequest};
use alloy::consensus::{SignableTransaction, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, Bytes, Signature, B256, U256};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which front end drives the session (recorded in the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    /// A command.
    Cli,
    /// The console.
    Console,
    /// The console in drill mode.
    Drill,
}

/// One incident: the manifest and its trust, the node, the audit log.
#[derive(Debug, Clone)]
pub struct Session {
    /// The manifest.
    pub manifest: Manifest,
    /// Whether it is trusted, and why.
    pub trust: Trust,
    /// The node's URL, when there is one (for a multi-chain manifest: the chains without their own).
    pub rpc_url: Option<String>,
    /// Node URLs by chain name (multi-chain manifests), from the local RPC config or the environment.
    /// Never in the manifest: they carry API keys.
    pub rpc_urls: BTreeMap<String, String>,
    /// The audit log.
    pub audit: AuditLog,
    /// Who drives it.
    pub front_end: FrontEnd,
    /// Whether and how compose and sign simulate the transaction first.
    pub simulate: SimulateOptions,
}

/// Whether and how the workflow simulates a transaction before it is signed.
#[derive(Debug, Clone, Default)]
pub struct SimulateOptions {
    /// Do not simulate (recorded in the audit log).
    pub skip: bool,
    /// Simulate offline against this snapshot (a `breakglass/snapshot@1` file).
    pub snapshot: Option<std::path::PathBuf>,
    /// The block to simulate on (default: the node's latest, pinned when the simulation starts).
    pub block: Option<u64>,
}

/// What a composition needs beyond the playbook; missing nonces and fees are read from the node.
#[derive(Debug, Clone, Default)]
pub struct ComposeRequest {
    /// The playbook.
    pub playbook: String,
    /// Argument values by `action.arg` (or `arg`).
    pub args: BTreeMap<String, String>,
    /// Safe nonce, or account nonce for a guardian-EOA playbook.
    pub nonce: Option<U256>,
    /// Guardian account (EOA playbooks).
    pub from: Option<Address>,
    /// Gas limit (EOA playbooks).
    pub gas_limit: Option<u64>,
    /// maxFeePerGas (EOA playbooks).
    pub max_fee: Option<u128>,
    /// maxPriorityFeePerGas (EOA playbooks).
    pub priority_fee: Option<u128>,
    /// Timelock predecessor.
    pub predecessor: B256,
    /// Timelock salt.
    pub salt: Option<B256>,
    /// Timelock delay.
    pub delay: Option<u64>,
}

/// A bundle that may go to a signer: verified, allowed, trusted, not executed, code hashes checked when a
/// node is at hand. Only [`Session::prepare_signing`] makes one.
#[derive(Debug, Clone)]
pub struct ReadyToSign {
    verified: VerifiedBundle,
    request: SigningRequest,
    /// The code-hash checks that ran (empty offline or without pinned upgrades).
    pub codehashes: Vec<CodeHashCheck>,
    /// The simulation that ran (none offline without a snapshot, or when turned off).
    pub simulation: Option<crate::bundle::simulation::Simulation>,
}

impl ReadyToSign {
    /// The bundle.
    pub fn bundle(&self) -> &Bundle {
        self.verified.bundle()
    }

    /// Its verification report.
    pub fn report(&self) -> &Report {
        self.verified.report()
    }

    /// What the signer is asked to sign.
    pub fn request(&self) -> &SigningRequest {
        &self.request
    }
}

/// Progress of an execution, for the front end to show.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A line for the person.
    Line(String),
}

/// What landing a transaction produced.
#[derive(Debug, Clone)]
pub struct Landed {
    /// The bundle with receipt and post-conditions.
    pub bundle: Bundle,
    /// Transaction hash.
    pub hash: B256,
    /// Receipt status.
    pub ok: bool,
    /// Block.
    pub block: Option<u64>,
    /// Gas used.
    pub gas_used: u64,
    /// Seconds from send to receipt.
    pub seconds: f64,
    /// Post-conditions.
    pub posts: Vec<PostCondition>,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Session {
    /// The session of the deployment on `chain_id` (its manifest view and its node). A version-1 manifest,
    /// or a chain the manifest does not name, leaves the session as it is: verification then refuses the
    /// chain as it always did.
    pub fn on_chain_id(&self, chain_id: u64) -> Session {
        match self.manifest.on_chain_id(chain_id) {
            Some(view) => self.with_view(view),
            None => self.clone(),
        }
    }

    /// The session of the chain named `name` (or with that decimal chain id).
    pub fn on_chain(&self, name: &str) -> Result<Session, IncidentError> {
        self.manifest
            .on_chain(name)
            .map(|v| self.with_view(v))
            .ok_or_else(|| {
                IncidentError::bad_input(
                    "unknown_chain",
                    format!(
                        "the manifest has no chain {name:?}; it has {}",
                        self.manifest.chain_names().join(", ")
                    ),
                )
                .recommend("name one of the manifest's chains")
            })
    }

    /// The sessions of these chains (names or ids; `all` or none: every chain), in the manifest's order.
    pub fn chains(&self, names: &[String]) -> Result<Vec<Session>, IncidentError> {
        if names.is_empty() || names.iter().any(|n| n == "all") {
            return Ok(self
                .manifest
                .all_chains()
                .into_iter()
                .map(|v| self.with_view(v))
                .collect());
        }
        let mut out: Vec<Session> = Vec::new();
        for n in names {
            let s = self.on_chain(n)?;
            if !out
                .iter()
                .any(|o| o.manifest.chain_id == s.manifest.chain_id)
            {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn with_view(&self, view: Manifest) -> Session {
        let mut s = self.clone();
        if let Some(url) = view.chain_name.as_ref().and_then(|n| self.rpc_urls.get(n)) {
            s.rpc_url = Some(url.clone());
        }
        s.manifest = view;
        s
    }

    /// The node, when the session has one.
    pub fn node(&self) -> Result<Option<Chain>, IncidentError> {
        match &self.rpc_url {
            Some(u) => Ok(Some(Chain::connect(u, self.manifest.chain_id)?)),
            None => Ok(None),
        }
    }

    /// The node, which this step needs.
    pub fn require_node(&self, step: &str) -> Result<Chain, IncidentError> {
        self.node()?.ok_or_else(|| match &self.manifest.chain_name {
            Some(_) => IncidentError::bad_input(
                "usage",
                format!("{step} on {} needs a node", self.manifest.chain_label()),
            )
            .recommend("name this chain's node in the local RPC config"),
            None => IncidentError::bad_input("usage", format!("{step} needs a node"))
                .recommend("give the node's URL"),
        })
    }

    /// Refuses unless the manifest is trusted.
    pub fn require_trusted(&self, doing: &str) -> Result<(), IncidentError> {
        if let Trust::Untrusted { reason } = &self.trust {
            return Err(IncidentError::refused(
                "untrusted_manifest",
                format!("refusing to {doing} under an untrusted manifest: {reason}"),
            )
            .recommend("review the manifest, then pin it (or use the hash agreed out of band)"));
        }
        Ok(())
    }

    /// Appends an audit entry (fsynced) for `step` and records its reference in `b`. A step that cannot be
    /// recorded is not done.
    pub fn record(
        &self,
        step: &str,
        mut details: Value,
        b: Option<&mut Bundle>,
    ) -> Result<B256, IncidentError> {
        if let Value::Object(m) = &mut details {
            if let Some(name) = &self.manifest.chain_name {
                m.insert("chain".into(), json!(name));
                m.insert("chain_id".into(), json!(self.manifest.chain_id));
            }
            match self.front_end {
                FrontEnd::Cli => {}
                FrontEnd::Console => {
                    m.insert("console".into(), json!(true));
                }
                FrontEnd::Drill => {
                    m.insert("console".into(), json!(true));
                    m.insert("drill".into(), json!(true));
                }
            }
        }
        let entry = self.audit.append(step, details)?;
        if let Some(b) = b {
            b.audit.push(AuditRef {
                step: step.to_string(),
                entry,
            });
        }
        Ok(entry)
    }

    /// Verifies a bundle against the manifest (hashes, signers, policy, labels). The report is returned
    /// whether allowed or not.
    pub fn verify(&self, b: &Bundle) -> Result<VerifiedBundle, IncidentError> {
        Ok(bundle::verify_bundle(&self.manifest, b)?)
    }

    /// Accepts a bundle whose signatures were combined or imported from elsewhere: it must still verify,
    /// be allowed by the manifest, and its signatures are counted (forged or foreign ones refuse).
    pub fn accept_signatures(&self, b: &Bundle) -> Result<Tally, IncidentError> {
        let v = self.verify(b)?;
        if !v.report().allowed {
            return Err(IncidentError::refused(
                "refused",
                "verification refused this request under the local manifest: nothing was written",
            )
            .recommend("verify the bundle to see why; do not sign or execute it")
            .with_report(v.into_report()));
        }
        self.tally(b)
    }

    /// Compares each pinned upgrade implementation's code on chain with the manifest's
    /// `implementation_codehash`. Offline: nothing is checked (the report says it is checked before
    /// execution). Any mismatch, or code that cannot be read, refuses.
    pub fn check_codehashes(&self, report: &Report) -> Result<Vec<CodeHashCheck>, IncidentError> {
        match self.node()? {
            Some(chain) => check_codehashes_on(&chain, &self.manifest, report),
            None => Ok(Vec::new()),
        }
    }

    /// Simulates a bundle's transaction: against the snapshot when the session names one (offline, every
    /// value proven), else against the node at a pinned block; `None` when there is neither or the
    /// simulation is turned off. The result does not judge: see [`Self::simulate_gate`].
    pub fn simulate(
        &self,
        b: &Bundle,
    ) -> Result<Option<crate::simulate::report::SimRun>, IncidentError> {
        use crate::simulate::{report, snapshot, state};
        if self.simulate.skip {
            return Ok(None);
        }
        if let Some(path) = &self.simulate.snapshot {
            let bytes = std::fs::read(path).map_err(|e| {
                IncidentError::failed(
                    "snapshot_unreadable",
                    format!("cannot read the snapshot {}: {e}", path.display()),
                )
            })?;
            let snap = snapshot::Snapshot::from_slice(&bytes)?;
            let src = snap.verify(b.chain_id)?;
            return Ok(Some(report::simulate_bundle(
                &src,
                "snapshot",
                &self.manifest,
                b,
            )?));
        }
        let Some(chain) = self.node()? else {
            return Ok(None);
        };
        let src = state::RpcSource::at(&chain, b.chain_id, self.simulate.block)?;
        Ok(Some(report::simulate_bundle(
            &src,
            "node",
            &self.manifest,
            b,
        )?))
    }

    /// Simulates on the node and records a snapshot of every account and slot the run read, with proofs,
    /// for an offline machine to replay (`simulate` there checks each proof against the block header).
    pub fn simulate_with_snapshot(
        &self,
        b: &Bundle,
    ) -> Result<(crate::simulate::report::SimRun, Vec<u8>), IncidentError> {
        use crate::simulate::{report, snapshot, state};
        let chain = self.require_node("taking a snapshot")?;
        let src = state::RpcSource::at(&chain, b.chain_id, self.simulate.block)?;
        let run = report::simulate_bundle(&src, "node", &self.manifest, b)?;
        let snap = snapshot::record(&chain, state::StateSource::block(&src), &run.touched)?;
        Ok((run, snap.to_vec()))
    }

    /// Simulates (when it can) and refuses a transaction that reverts, fails a post-condition or changes
    /// state it should not: nothing is signed. Returns the simulation for the bundle and the audit log.
    pub fn simulate_gate(
        &self,
        b: &Bundle,
    ) -> Result<Option<crate::bundle::simulation::Simulation>, IncidentError> {
        let Some(run) = self.simulate(b)? else {
            return Ok(None);
        };
        let sim = run.simulation;
        if !sim.allowed() {
            return Err(IncidentError::refused(
                "simulation",
                format!(
                    "the simulation refuses this transaction: {}; nothing was signed",
                    sim.verdict()
                ),
            )
            .recommend(
                "stop and investigate: the transaction would not do what the playbook expects",
            )
            .with_simulation(sim));
        }
        Ok(Some(sim))
    }

    /// What the audit log says of the simulation.
    pub fn simulation_note(&self, sim: Option<&crate::bundle::simulation::Simulation>) -> Value {
        match sim {
            Some(s) => json!({
                "verdict": s.verdict(),
                "block": s.block.number,
                "block_hash": format!("{:#x}", s.block.hash),
                "source": s.source,
            }),
            None if self.simulate.skip => json!("skipped (turned off by the person)"),
            None => json!("not run (no node and no snapshot)"),
        }
    }

    /// Composes a playbook: nonces and fees not given are read from the node; the result is verified and,
    /// with a node, its upgrade implementations' code is checked. Recorded in the audit log.
    pub fn compose(&self, req: &ComposeRequest) -> Result<Composed, IncidentError> {
        let m = &self.manifest;
        let chain = self.node()?;
        let pb = m.playbook(&req.playbook).ok_or_else(|| {
            IncidentError::from(compose::ComposeError::NoPlaybook(
                req.playbook.clone(),
                m.playbooks
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ))
        })?;
        let via = pb
            .actions
            .first()
            .and_then(|id| m.action(id))
            .map(|a| a.via)
            .unwrap_or(Via::Safe);
        let mut opts = ComposeOptions {
            args: req.args.clone(),
            created_at: now_unix(),
            predecessor: req.predecessor,
            salt: req.salt,
            delay: req.delay,
            ..Default::default()
        };
        match via {
            Via::Safe | Via::Timelock => {
                opts.safe_nonce = match (req.nonce, &chain, &m.safe) {
                    (Some(n), _, _) => Some(n),
                    (None, Some(c), Some(s)) => Some(c.safe_nonce(s.address)?),
                    _ => None,
                };
            }
            Via::Eoa => {
                let from = req.from.ok_or_else(|| {
                    IncidentError::bad_input(
                        "usage",
                        "a guardian-EOA playbook needs the guardian account (from)",
                    )
                })?;
                let nonce = req
                    .nonce
                    .map(|n| {
                        u64::try_from(n).map_err(|_| {
                            IncidentError::bad_input("usage", "the nonce is too large")
                        })
                    })
                    .transpose()?;
                opts.eoa = match (
                    (nonce, req.gas_limit, req.max_fee, req.priority_fee),
                    &chain,
                ) {
                    ((Some(n), Some(g), Some(mf), Some(pf)), _) => Some(EoaParams {
                        from,
                        nonce: n,
                        gas_limit: g,
                        max_fee_per_gas: mf,
                        max_priority_fee_per_gas: pf,
                    }),
                    (_, Some(c)) => {
                        // Fill what was not given from the chain, keeping what was.
                        let action = pb
                            .actions
                            .first()
                            .and_then(|id| m.action(id))
                            .ok_or_else(|| IncidentError::bad_input("usage", "empty playbook"))?;
                        let call = compose::plan_action(m, action, &opts)?;
                        let filled =
                            c.eoa_params(from, call.to, call.value, call.data, req.gas_limit)?;
                        Some(EoaParams {
                            from,
                            nonce: nonce.unwrap_or(filled.nonce),
                            gas_limit: req.gas_limit.unwrap_or(filled.gas_limit),
                            max_fee_per_gas: req.max_fee.unwrap_or(filled.max_fee_per_gas),
                            max_priority_fee_per_gas: req
                                .priority_fee
                                .unwrap_or(filled.max_priority_fee_per_gas),
                        })
                    }
                    _ => None,
                };
            }
        }
        let mut c = compose::compose(m, &req.playbook, &opts)?;
        if let Some(ch) = &chain {
            check_codehashes_on(ch, m, &c.report)?;
        }
        if c.report.allowed {
            c.bundle.simulation = self.simulate_gate(&c.bundle)?.map(Box::new);
        }
        Ok(c)
    }

    /// Composes the `execute` of a scheduled timelock operation (nonce from the node when not given).
    pub fn compose_execute_scheduled(
        &self,
        scheduled: &Bundle,
        nonce: Option<U256>,
    ) -> Result<Composed, IncidentError> {
        let m = &self.manifest;
        let chain = self.node()?;
        let nonce = match (nonce, &chain, &m.safe) {
            (Some(n), _, _) => n,
            (None, Some(c), Some(s)) => c.safe_nonce(s.address)?,
            _ => {
                return Err(IncidentError::bad_input(
                    "usage",
                    "the Safe nonce is needed: give it, or connect a node",
                ))
            }
        };
        let mut c = compose::compose_execute_scheduled(m, scheduled, nonce, now_unix())?;
        if let Some(ch) = &chain {
            check_codehashes_on(ch, m, &c.report)?;
        }
        if c.report.allowed {
            c.bundle.simulation = self.simulate_gate(&c.bundle)?.map(Box::new);
        }
        Ok(c)
    }

    /// Composes a pre-signed pause ladder: the `presign = true` playbook for `rungs` consecutive Safe
    /// nonces from `nonce` (default: the Safe's current nonce), each rung verified like any bundle (the
    /// first simulated when a node is at hand: later rungs run the same calls).
    pub fn build_ladder(
        &self,
        playbook: &str,
        rungs: usize,
        nonce: Option<U256>,
    ) -> Result<crate::ladder::Ladder, IncidentError> {
        let m = &self.manifest;
        let pb = m.playbook(playbook).ok_or_else(|| {
            IncidentError::bad_input("no_playbook", format!("no playbook {playbook:?}"))
        })?;
        if !pb.presign {
            return Err(IncidentError::refused(
                "not_presign",
                format!("playbook {playbook:?} is not marked presign = true: only fully determined pauses may be signed in advance"),
            )
            .recommend("mark the playbook presign = true in the manifest (load checks it can only pause), review and pin it"));
        }
        if rungs == 0 || rungs > crate::ladder::MAX_RUNGS {
            return Err(IncidentError::bad_input(
                "usage",
                format!("a ladder has 1 to {} rungs", crate::ladder::MAX_RUNGS),
            ));
        }
        let safe = m
            .safe
            .as_ref()
            .ok_or_else(|| IncidentError::bad_input("usage", "the manifest has no Safe"))?
            .address;
        let start = match nonce {
            Some(n) => n,
            None => self.require_node("building a ladder")?.safe_nonce(safe)?,
        };
        let mut out = Vec::with_capacity(rungs);
        for i in 0..rungs {
            let mut s = self.clone();
            s.simulate.skip |= i > 0;
            let c = s.compose(&ComposeRequest {
                playbook: playbook.to_string(),
                nonce: Some(start + U256::from(i)),
                ..Default::default()
            })?;
            if !c.report.allowed {
                return Err(IncidentError::refused(
                    "refused",
                    format!("rung {} is refused by verification", i + 1),
                )
                .with_report(c.report));
            }
            out.push(c.bundle);
        }
        let mut l = crate::ladder::Ladder {
            format: crate::ladder::FORMAT.into(),
            playbook: playbook.to_string(),
            chain_id: m.chain_id,
            safe,
            rungs: out,
            encrypt_to: Vec::new(),
        };
        let entry = self.audit.append(
            "ladder_build",
            json!({
                "playbook": playbook,
                "rungs": rungs,
                "first_nonce": start.to_string(),
                "safe_tx_hashes": l.rungs.iter().filter_map(|b| b.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash))).collect::<Vec<_>>(),
            }),
        )?;
        for b in &mut l.rungs {
            b.audit.push(AuditRef {
                step: "ladder_build".into(),
                entry,
            });
        }
        Ok(l)
    }

    /// Where a ladder stands on the chain: the live rung, waiting, stale, or invalid.
    pub fn ladder_status(
        &self,
        l: &crate::ladder::Ladder,
    ) -> Result<crate::ladder::LadderState, IncidentError> {
        if l.chain_id != self.manifest.chain_id {
            return Err(IncidentError::refused(
                "wrong_chain",
                format!(
                    "the ladder is for chain {}, the manifest for chain {}",
                    l.chain_id, self.manifest.chain_id
                ),
            ));
        }
        let chain = self.require_node("ladder status")?;
        let nonce = chain.safe_nonce(l.safe)?;
        let (owners, threshold) = chain.safe_owners(l.safe)?;
        Ok(crate::ladder::state(l, nonce, &owners, threshold))
    }

    /// Fires a ladder's live rung with `executor` (any funded account: the rung's signatures are already
    /// there): checks it is live, prepares the execution (signatures against the chain's owners, the
    /// `eth_call` simulation), calls `persist` with the signed execution before sending it, lands it and
    /// checks the post-conditions. A rung whose calls would revert (the target already paused) is refused:
    /// with `safeTxGas` and `gasPrice` 0 its nonce is not used, and nothing is sent.
    pub fn fire_ladder(
        &self,
        l: &mut crate::ladder::Ladder,
        executor: &mut dyn Signer,
        wait: Duration,
        say: &mut dyn FnMut(Progress),
        persist: &mut dyn FnMut(&crate::ladder::Ladder) -> Result<(), IncidentError>,
    ) -> Result<(usize, Landed), IncidentError> {
        use crate::ladder::LadderState;
        let st = self.ladder_status(l)?;
        let LadderState::Live { rung, nonce, .. } = st else {
            return Err(IncidentError::refused(
                "ladder_not_live",
                format!("nothing fired: the ladder is not live ({st:?})"),
            ));
        };
        let mut no = |_, _: &Report| false;
        let prepared = match self.prepare_execution(&l.rungs[rung], executor, say, &mut no) {
            Ok(b) => b,
            Err(e) if e.code == "simulation_reverted" => {
                return Err(IncidentError::refused(
                    "ladder_rung_reverts",
                    format!(
                        "nothing fired: rung {} would revert ({}); its calls fail (is the protocol already paused?), and since safeTxGas and gasPrice are 0 the Safe would not use nonce {nonce}: it stays unused, the ladder stays live",
                        rung + 1,
                        e.message
                    ),
                ))
            }
            Err(e) => return Err(e),
        };
        l.rungs[rung] = prepared.clone();
        persist(l)?;
        let landed = self.land(prepared, wait, |_, _| {})?;
        l.rungs[rung] = landed.bundle.clone();
        persist(l)?;
        Ok((rung, landed))
    }

    /// Records a composition in the audit log and in the bundle.
    pub fn record_compose(&self, c: &mut Composed, out: Option<&str>) -> Result<(), IncidentError> {
        let details = json!({
            "playbook": c.bundle.playbook,
            "actions": c.bundle.actions,
            "safe_tx_hash": c.bundle.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
            "signing_hash": c.bundle.eoa_tx.as_ref().map(|e| format!("{:#x}", e.signing_hash)),
            "timelock_operation": c.bundle.timelock.as_ref().map(|t| format!("{:#x}", t.operation_id)),
            "out": out,
            "simulation": self.simulation_note(c.bundle.simulation.as_deref()),
        });
        self.record("compose", details, Some(&mut c.bundle))?;
        Ok(())
    }

    /// Everything that must hold before a bundle reaches a signer: a trusted manifest, a bundle that
    /// verifies and is allowed, not executed yet, and (with a node) implementations whose code is the
    /// pinned code. The refusing report travels in the error.
    pub fn prepare_signing(&self, b: &Bundle) -> Result<ReadyToSign, IncidentError> {
        self.require_trusted("sign")?;
        let v = self.verify(b)?;
        if !v.report().allowed {
            return Err(IncidentError::refused(
                "refused",
                "verification refused this bundle: breakglass never signs it",
            )
            .with_report(v.report().clone()));
        }
        if b.receipt.is_some() || b.signed_tx.is_some() && b.eoa_tx.is_none() {
            return Err(IncidentError::refused(
                "wrong_step",
                "this bundle was already executed: there is nothing left to sign",
            ));
        }
        let request = SigningRequest::new(&v, &self.trust)?;
        let codehashes = self.check_codehashes(v.report())?;
        let simulation = self.simulate_gate(b)?;
        Ok(ReadyToSign {
            verified: v,
            request,
            codehashes,
            simulation,
        })
    }

    /// May `address` sign this bundle? An owner of the manifest's Safe (a Safe tx) or the sender (an EOA
    /// tx), who has not signed it yet (an unproven approved-hash entry naming them is not a signature).
    pub fn check_signer(&self, b: &Bundle, address: Address) -> Result<(), IncidentError> {
        let ok = match (&b.safe_tx, &b.eoa_tx) {
            (Some(_), _) => self
                .manifest
                .safe
                .as_ref()
                .is_some_and(|c| c.is_owner(&address)),
            (_, Some(e)) => e.from == address,
            _ => false,
        };
        if !ok {
            let owners = self
                .manifest
                .safe
                .as_ref()
                .map(|c| {
                    c.owners
                        .iter()
                        .map(|o| o.to_checksum(None))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            return Err(IncidentError::signer(
                "wrong_signer",
                match (&b.safe_tx, &b.eoa_tx) {
                    (_, Some(e)) => format!(
                        "the signer's address {} is not the transaction's sender {}",
                        address.to_checksum(None),
                        e.from.to_checksum(None)
                    ),
                    _ => format!(
                        "the signer's address {} is not an owner of the manifest's Safe (owners: {owners})",
                        address.to_checksum(None)
                    ),
                },
            )
            .recommend("use another account of the device, or another keystore; nothing was signed"));
        }
        if b.signatures
            .iter()
            .any(|x| x.signer == address && x.kind != SignatureKind::ApprovedHash)
        {
            return Err(IncidentError::signer(
                "already_signed",
                format!("{} already signed this bundle", address.to_checksum(None)),
            ));
        }
        Ok(())
    }

    /// Signs a prepared bundle with `s`: checks the signer first, asks the device, adds the signature
    /// (recovered again), records it. Returns the new bundle and the signer's address.
    pub fn sign(
        &self,
        ready: &ReadyToSign,
        s: &mut dyn Signer,
    ) -> Result<(Bundle, Address), IncidentError> {
        let address = s.address()?;
        self.check_signer(ready.bundle(), address)?;
        let (sig, mode) = signer::sign_request_mode(s, &ready.request, address)?;
        let mut out = attach_signature(ready.bundle(), &ready.request, address, &sig, s.label())?;
        if let Some(e) = out.signatures.iter_mut().find(|x| x.signer == address) {
            e.mode = mode;
        }
        if let Some(sim) = &ready.simulation {
            out.simulation = Some(Box::new(sim.clone()));
        }
        let kind = out
            .signatures
            .iter()
            .find(|x| x.signer == address)
            .map(|x| x.kind);
        self.record(
            "sign",
            json!({
                "signer": address.to_checksum(None),
                "device": s.label(),
                "digest": format!("{:#x}", ready.request.digest()),
                "kind": kind,
                "mode": mode.map(|m| m.as_str()),
                "simulation": self.simulation_note(ready.simulation.as_ref()),
            }),
            Some(&mut out),
        )?;
        Ok((out, address))
    }

    /// Owners whose approved-hash entries in `b` the chain proves (empty offline).
    pub fn approvals_on_chain(&self, b: &Bundle) -> Result<Vec<Address>, IncidentError> {
        let Some(s) = &b.safe_tx else {
            return Ok(Vec::new());
        };
        let named: Vec<Address> = b
            .signatures
            .iter()
            .filter(|x| x.kind == SignatureKind::ApprovedHash)
            .map(|x| x.signer)
            .collect();
        if named.is_empty() {
            return Ok(Vec::new());
        }
        match self.node()? {
            Some(chain) => Ok(chain.approved_on_chain(s.safe, &named, s.hashes.safe_tx_hash)?),
            None => Ok(Vec::new()),
        }
    }

    /// What the bundle's signatures are worth under the manifest (approvals proven on chain with a node).
    pub fn tally(&self, b: &Bundle) -> Result<Tally, IncidentError> {
        let proven = self.approvals_on_chain(b)?;
        Ok(bundle::tally_manifest(&self.manifest, b, &proven))
    }

    /// Everything `execute` does before sending: verify against the manifest and the chain (owners,
    /// threshold, nonce, implementation code hashes), count the signatures, simulate, and sign the
    /// execution transaction with the executor's signer. `confirm_owner_approval` is asked, when the
    /// executor is an owner whose approval would make the threshold, whether that owner approves now after
    /// the review (the console always answers no). Returns the bundle with its `signed_tx`.
    pub fn prepare_execution(
        &self,
        b: &Bundle,
        signer_box: &mut dyn Signer,
        say: &mut dyn FnMut(Progress),
        confirm_owner_approval: &mut dyn FnMut(Address, &Report) -> bool,
    ) -> Result<Bundle, IncidentError> {
        self.require_trusted("execute")?;
        let m = &self.manifest;
        let chain = self.require_node("execution")?;
        let (v, s) = preflight(m, b)?;
        let (owners, threshold) = chain_owners(&chain, m, s.safe)?;
        let executor = signer_box.address()?;
        let proven = self.approvals_on_chain(b)?;
        let mut t = bundle::tally(b, &owners, threshold, &proven, None);
        let mut executor_approves = false;
        if owners.contains(&executor)
            && !t.counted.contains(&executor)
            && !t.ready()
            && confirm_owner_approval(executor, v.report())
        {
            executor_approves = true;
            t = bundle::tally(b, &owners, threshold, &proven, Some(executor));
            if !t.counted.contains(&executor) {
                t.counted.push(executor);
                t.counted.sort();
                t.missing.retain(|o| *o != executor);
            }
        }
        for e in t.not_counted() {
            say(Progress::Line(format!(
                "not counted: {} ({:?}): {}",
                e.signer.to_checksum(None),
                e.kind,
                e.state.explain()
            )));
        }
        if !t.ready() {
            let missing: Vec<String> = t.missing.iter().map(|o| o.to_checksum(None)).collect();
            let ignored = t.not_counted().count();
            return Err(IncidentError::failed(
                "not_enough_signatures",
                format!(
                    "{} of {threshold} owner signatures count; missing: {}{}",
                    t.counted.len(),
                    missing.join(", "),
                    if ignored > 0 {
                        format!(
                            " ({ignored} entr{} not counted)",
                            if ignored == 1 { "y" } else { "ies" }
                        )
                    } else {
                        String::new()
                    }
                ),
            )
            .recommend("collect more signatures and try again; an executor who is an owner can approve as owner after the review"));
        }
        let nonce = chain.safe_nonce(s.safe)?;
        if nonce != s.tx.nonce {
            return Err(IncidentError::refused(
                "stale_nonce",
                format!(
                    "the Safe's nonce is {nonce}, the bundle's is {}: the signatures are for another nonce",
                    s.tx.nonce
                ),
            )
            .recommend("compose again with the current nonce and collect signatures again"));
        }
        check_codehashes_on(&chain, m, v.report())?;
        let mut valid = t.packable(b);
        if executor_approves && !valid.iter().any(|(a, _)| *a == executor) {
            // Safe's rule: v = 1 with r = msg.sender counts without an on-chain approveHash.
            let mut raw = [0u8; 65];
            raw[12..32].copy_from_slice(executor.as_slice());
            raw[64] = 1;
            valid.push((executor, raw));
        }
        let data = s.tx.exec_calldata(pack_signatures(valid));
        // Simulate first: a revert is explained and nothing is signed.
        if let Err(e) = chain.call_from(Some(executor), s.safe, data.clone()) {
            return Err(IncidentError::refused(
                "simulation_reverted",
                format!("simulation of execTransaction failed: {e}"),
            )
            .recommend("nothing was signed or sent"));
        }
        let p = chain.eoa_params(executor, s.safe, U256::ZERO, data.clone(), None)?;
        let mut req = EoaRequest {
            from: executor,
            to: s.safe,
            value: U256::ZERO,
            data,
            nonce: p.nonce,
            gas_limit: p.gas_limit,
            max_fee_per_gas: p.max_fee_per_gas,
            max_priority_fee_per_gas: p.max_priority_fee_per_gas,
            signing_hash: B256::ZERO,
        };
        req.signing_hash = req.unsigned(m.chain_id).signature_hash();
        let exec_bundle = Bundle {
            safe_tx: None,
            eoa_tx: Some(req),
            timelock: None,
            signatures: Vec::new(),
            ..b.clone()
        };
        // The execution transaction is verified like any other (the fee cap applies to it too).
        let ev = self.verify(&exec_bundle)?;
        if !ev.report().allowed {
            return Err(IncidentError::refused(
                "refused",
                "the execution transaction is refused by verification",
            )
            .with_report(ev.report().clone()));
        }
        let sreq = SigningRequest::new(&ev, &self.trust)?;
        say(Progress::Line(format!(
            "simulation ok; executor {} ({}), nonce {}, gas limit {}, fee at most {}",
            executor.to_checksum(None),
            signer_box.label(),
            p.nonce,
            p.gas_limit,
            crate::manifest::format_eth(u128::from(p.gas_limit).saturating_mul(p.max_fee_per_gas))
        )));
        say(Progress::Line(format!(
            "Confirm the execution transaction on {}…",
            signer_box.label()
        )));
        let sig = signer::sign_request(signer_box, &sreq, executor)?;
        let tx = sreq
            .transaction()
            .cloned()
            .ok_or_else(|| IncidentError::failed("internal", "no transaction to sign"))?;
        let env = TxEnvelope::from(tx.into_signed(sig));
        let mut out = b.clone();
        out.signed_tx = Some(bundle::SignedTx {
            raw: env.encoded_2718().into(),
            hash: *env.tx_hash(),
            from: Some(executor),
            kind: Some("execTransaction".into()),
        });
        self.record(
            "execute",
            json!({
                "stage": "signed",
                "safe_tx_hash": out.safe_hashes().map(|h| format!("{:#x}", h.safe_tx_hash)),
                "tx_hash": format!("{:#x}", env.tx_hash()),
                "executor": executor.to_checksum(None),
            }),
            Some(&mut out),
        )?;
        Ok(out)
    }

    /// Sends a bundle's signed transaction (idempotently), waits for the receipt, evaluates the
    /// post-conditions and records them, in the bundle and the audit log.
    pub fn land(
        &self,
        b: Bundle,
        wait: Duration,
        progress: impl FnMut(Duration, Option<u64>),
    ) -> Result<Landed, IncidentError> {
        let chain = self.require_node("sending")?;
        let mut landed = land_on(&self.manifest, &chain, b, wait, progress)?;
        self.record(
            "broadcast",
            json!({
                "tx_hash": format!("{:#x}", landed.hash),
                "status": landed.ok,
                "block": landed.block,
                "postconditions": landed.posts.iter().map(|p| json!({"expect": p.expect, "pass": p.pass})).collect::<Vec<_>>(),
            }),
            None,
        )
        .map(|entry| {
            landed.bundle.audit.push(AuditRef {
                step: "mined".into(),
                entry,
            })
        })?;
        Ok(landed)
    }
}

/// Each pinned upgrade implementation's code on `chain` against the manifest; a mismatch refuses.
pub fn check_codehashes_on(
    chain: &Chain,
    m: &Manifest,
    report: &Report,
) -> Result<Vec<CodeHashCheck>, IncidentError> {
    for r in postcond::check_roles(chain, m, report)? {
        if !r.pass {
            let who = if m.safe.as_ref().is_some_and(|s| s.address == r.sender) {
                "the Safe"
            } else {
                "the timelock"
            };
            return Err(IncidentError::refused(
                "missing_role",
                format!(
                    "{who} {} does not hold {} ({:#x}) on {} (action {}): the call would revert on chain",
                    r.sender.to_checksum(None),
                    r.role_name,
                    r.role,
                    r.contract.to_checksum(None),
                    r.action
                ),
            )
            .recommend("do not sign: grant the role first (or fix the manifest), then compose again"));
        }
    }
    let checks = postcond::check_codehashes(chain, m, report)?;
    if let Some(bad) = checks.iter().find(|c| !c.pass) {
        return Err(IncidentError::refused(
            "codehash",
            format!(
                "CRITICAL: implementation {} for action {} has code hash {}, the manifest pins {:#x}",
                bad.implementation.to_checksum(None),
                bad.action,
                bad.actual
                    .map(|h| format!("{h:#x}"))
                    .unwrap_or_else(|| "none (no code)".into()),
                bad.pinned
            ),
        )
        .recommend("do not sign: the implementation at that address is not the audited code"));
    }
    if let Some(bad) = postcond::check_layouts(chain, m, report)?
        .into_iter()
        .find(|c| c.problem.is_some())
    {
        return Err(IncidentError::refused(
            "storage_layout",
            format!(
                "action {}: {}",
                bad.action,
                bad.problem.unwrap_or_default()
            ),
        )
        .recommend("do not sign: the upgrade would corrupt the proxy's storage; check the layouts and the live state"));
    }
    Ok(checks)
}

/// The bundle verifies, is allowed, is a Safe tx, and was not executed or signed for execution yet.
fn preflight<'b>(
    m: &Manifest,
    b: &'b Bundle,
) -> Result<(VerifiedBundle, &'b bundle::SafeRequest), IncidentError> {
    let v = bundle::verify_bundle(m, b)?;
    if !v.report().allowed {
        return Err(IncidentError::refused(
            "refused",
            "verification refused this bundle: it is never executed",
        )
        .with_report(v.report().clone()));
    }
    let Some(s) = b.safe_tx.as_ref() else {
        return Err(IncidentError::bad_input(
            "usage",
            "this is a guardian-EOA bundle: it is broadcast once signed, not executed",
        ));
    };
    if b.receipt.is_some() {
        return Err(IncidentError::refused(
            "wrong_step",
            "this bundle was already executed (it holds a receipt)",
        ));
    }
    if b.signed_tx.is_some() {
        return Err(IncidentError::refused(
            "wrong_step",
            "this bundle already holds a signed execution transaction (it may be pending): executing again would sign a second one",
        )
        .recommend("broadcast the bundle to send it (or keep waiting for it); it never sends twice"));
    }
    Ok((v, s))
}

/// The Safe's owners and threshold on chain, which must be the manifest's.
fn chain_owners(
    chain: &Chain,
    m: &Manifest,
    safe: Address,
) -> Result<(Vec<Address>, usize), IncidentError> {
    let (owners, threshold) = chain.safe_owners(safe)?;
    let cfg = m
        .safe
        .as_ref()
        .ok_or_else(|| IncidentError::refused("no_safe", "the manifest has no [safe]"))?;
    let mut on_chain = owners.clone();
    on_chain.sort();
    let mut listed = cfg.owners.clone();
    listed.sort();
    if on_chain != listed || threshold != cfg.threshold {
        return Err(IncidentError::refused(
            "owners_changed",
            format!(
                "CRITICAL: the Safe's owners/threshold on chain ({} owners, threshold {threshold}) differ from the manifest's ({} owners, threshold {}): someone changed who controls the Safe",
                owners.len(),
                cfg.owners.len(),
                cfg.threshold
            ),
        )
        .recommend("stop and investigate; update and re-pin the manifest only after review"));
    }
    Ok((owners, threshold))
}

/// Adds a checked signature to a copy of the bundle (sorted by signer, as Safe requires; an unproven
/// approved-hash entry of the same owner is replaced); for a guardian transaction also the signed raw
/// transaction.
pub fn attach_signature(
    b: &Bundle,
    req: &SigningRequest,
    address: Address,
    sig: &Signature,
    device: String,
) -> Result<Bundle, IncidentError> {
    let mut out = b.clone();
    let (bytes, kind): (Bytes, SignatureKind) = if b.safe_tx.is_some() {
        (
            Bytes::copy_from_slice(&signer::safe_signature_bytes(sig)),
            SignatureKind::Eip712,
        )
    } else {
        (
            Bytes::copy_from_slice(&sig.as_bytes()),
            SignatureKind::Transaction,
        )
    };
    out.signatures
        .retain(|x| !(x.signer == address && x.kind == SignatureKind::ApprovedHash));
    out.signatures.push(SignatureEntry {
        signer: address,
        signature: bytes,
        kind,
        device: Some(device),
        mode: None,
    });
    out.signatures.sort_by_key(|x| x.signer);
    if let Some(tx) = req.transaction() {
        let env = TxEnvelope::from(tx.clone().into_signed(*sig));
        out.signed_tx = Some(bundle::SignedTx {
            raw: env.encoded_2718().into(),
            hash: *env.tx_hash(),
            from: None,
            kind: None,
        });
    }
    out.recompute()?;
    Ok(out)
}

/// Checks a bundle's `signed_tx` against the bundle: it decodes, its hash matches, its signer is who it
/// should be, and it carries exactly the bundle's transaction. Returns (raw, hash, sender).
pub fn check_signed_tx(b: &Bundle) -> Result<(Bytes, B256, Address), IncidentError> {
    use alloy::consensus::Transaction;
    use alloy::eips::eip2718::Decodable2718;
    let refuse = |msg: String| {
        IncidentError::refused("bad_signed_tx", msg).recommend("do not broadcast it; sign again")
    };
    let st = b.signed_tx.as_ref().ok_or_else(|| {
        IncidentError::bad_input("not_signed", "the bundle holds no signed transaction")
            .recommend("execute a Safe transaction, or sign a guardian transaction, first")
    })?;
    let raw = st.raw.clone();
    let env = TxEnvelope::decode_2718(&mut raw.as_ref())
        .map_err(|e| refuse(format!("signed_tx.raw does not decode: {e}")))?;
    let hash = *env.tx_hash();
    if st.hash != hash {
        return Err(refuse(format!(
            "signed_tx.hash {:#x} is not the hash of signed_tx.raw ({hash:#x})",
            st.hash
        )));
    }
    let TxEnvelope::Eip1559(signed) = &env else {
        return Err(refuse("signed_tx is not an EIP-1559 transaction".into()));
    };
    let from = signed
        .signature()
        .recover_address_from_prehash(&signed.tx().signature_hash())
        .map_err(|e| refuse(format!("signed_tx's signature does not recover: {e}")))?;
    if signed.tx().chain_id != b.chain_id {
        return Err(refuse(format!(
            "signed_tx is for chain {}, the bundle for {}",
            signed.tx().chain_id,
            b.chain_id
        )));
    }
    if let Some(e) = &b.eoa_tx {
        if signed.tx().signature_hash() != e.signing_hash || from != e.from {
            return Err(refuse(
                "signed_tx is not the bundle's transaction signed by its sender".into(),
            ));
        }
    } else if let Some(s) = &b.safe_tx {
        let tx = signed.tx();
        let node =
            crate::decode::decode_call(None, tx.to().unwrap_or_default(), tx.value(), tx.input())
                .map_err(|e| refuse(format!("signed_tx's calldata: {e}")))?;
        let fields = crate::decode::exec_transaction_fields(&node);
        let same = fields.is_some_and(|mut f| {
            f.nonce = s.tx.nonce;
            f == s.tx
        });
        if tx.to() != Some(s.safe) || !same {
            return Err(refuse(
                "signed_tx does not execute the bundle's Safe transaction".into(),
            ));
        }
    }
    Ok((raw, hash, from))
}

/// Sends (idempotently), waits, and records the receipt and post-conditions in the bundle.
pub fn land_on(
    m: &Manifest,
    chain: &Chain,
    mut b: Bundle,
    wait: Duration,
    progress: impl FnMut(Duration, Option<u64>),
) -> Result<Landed, IncidentError> {
    let (raw, hash, _) = check_signed_tx(&b)?;
    let t0 = Instant::now();
    chain.send_raw(&raw, hash)?;
    let receipt = chain.wait_receipt(hash, wait, progress)?;
    let ok = receipt.status();
    let seconds = t0.elapsed().as_secs_f64();
    b.receipt = Some(bundle::Receipt {
        tx_hash: hash,
        block_number: receipt.block_number,
        status: u8::from(ok),
        gas_used: receipt.gas_used,
        seconds,
    });
    let now = b.actions_run_now(m);
    let posts: Vec<PostCondition> = if ok {
        postcond::evaluate(chain, m, &now)
    } else {
        Vec::new()
    };
    b.postconditions = Some(posts.clone());
    Ok(Landed {
        bundle: b,
        hash,
        ok,
        block: receipt.block_number,
        gas_used: receipt.gas_used,
        seconds,
        posts,
    })
}
