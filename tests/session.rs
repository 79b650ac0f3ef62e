//! The incident core in-process (issue 13): a [`Session`] drives the whole incident on anvil with the real
//! Safe 1.4.1 and OpenZeppelin 5 proxies (the `execute_chain` world) without spawning the binary:
//! compose → two owners sign (the built-in Ledger simulator served on a thread, and a `cast`-made
//! keystore) → execute with a third account → receipt and post-conditions. And the console's path
//! (the same `Session` calls the console makes) refuses an upgrade to unpinned code before any signature.

use crate::support::sim::InProcessSim;
use crate::support::world::{Pins, World, PASSWORD, SIM0};
use breakglass::audit::AuditLog;
use breakglass::incident::{ComposeRequest, ErrorKind, FrontEnd, Session};
use breakglass::manifest::trust::Trust;
use breakglass::manifest::Manifest;
use breakglass::signer::keystore::KeystoreSigner;
use breakglass::signer::ledger::sim::SimConfig;
use breakglass::signer::Signer;
use secrecy::SecretString;
use std::time::Duration;

fn session(w: &World, manifest: &str, online: bool, front_end: FrontEnd) -> Session {
    let m = Manifest::load(&w.sb.path(manifest)).unwrap();
    Session {
        manifest: m,
        trust: Trust::Pinned {
            source: "test".into(),
        },
        rpc_url: online.then(|| w.anvil.url.clone()),
        rpc_urls: Default::default(),
        audit: AuditLog::new(w.sb.path("audit.jsonl")),
        front_end,
        simulate: Default::default(),
    }
}

fn keystore(w: &World, name: &str) -> KeystoreSigner {
    let pw = SecretString::from(PASSWORD.to_string());
    KeystoreSigner::open(&w.sb.path(&format!("keystores/{name}")), &pw).unwrap()
}

#[test]
fn whole_incident_in_process() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let s = session(&w, "m.toml", true, FrontEnd::Cli);
    let sim = InProcessSim::start(SimConfig::default());
    let mut c = s
        .compose(&ComposeRequest {
            playbook: "halt".into(),
            ..Default::default()
        })
        .unwrap();
    s.record_compose(&mut c, None).unwrap();
    assert_eq!(c.bundle.actions, ["pause-pool", "pause-vault"]);
    assert!(c.report.allowed);

    let ready = s.prepare_signing(&c.bundle).unwrap();
    let mut ledger = sim.signer(0);
    let (b1, who) = s.sign(&ready, &mut ledger).unwrap();
    assert_eq!(who.to_checksum(None), SIM0);
    // The same owner cannot sign twice.
    let again = s.prepare_signing(&b1).unwrap();
    let e = s.sign(&again, &mut sim.signer(0)).unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Signer, "already_signed"));
    // A non-owner is refused before the device is asked.
    let e = s.sign(&again, &mut keystore(&w, "executor")).unwrap_err();
    assert_eq!(e.code, "wrong_signer");

    let (b2, _) = s.sign(&again, &mut keystore(&w, "owner3")).unwrap();
    let t = s.tally(&b2).unwrap();
    assert!(t.ready(), "{t:?}");
    assert_eq!(t.counted.len(), 2);

    let mut executor = keystore(&w, "executor");
    let mut lines = Vec::new();
    let prepared = s
        .prepare_execution(
            &b2,
            &mut executor,
            &mut |p| lines.push(format!("{p:?}")),
            &mut |_, _| false,
        )
        .unwrap();
    assert!(prepared.signed_tx.is_some());
    assert!(
        lines.iter().any(|l| l.contains("simulation ok")),
        "{lines:?}"
    );
    let landed = s
        .land(prepared, Duration::from_secs(60), |_, _| {})
        .unwrap();
    assert!(landed.ok);
    assert!(
        landed.posts.iter().all(|p| p.pass) && !landed.posts.is_empty(),
        "{:?}",
        landed.posts
    );
    assert!(w.paused(&w.pool) && w.paused(&w.vault));
    // Every step is in the audit log, in order, and the bundle carries the references.
    let steps: Vec<&str> = landed
        .bundle
        .audit
        .iter()
        .map(|a| a.step.as_str())
        .collect();
    assert_eq!(steps, ["compose", "sign", "sign", "execute", "mined"]);
    let _ = executor.address();
}

/// Issue 13's "done when": through the console's code path (the `Session` calls the console makes),
/// an upgrade whose implementation's code on chain is not the pinned code is refused before any
/// signature: at compose with a node, and at signing for a bundle composed offline.
#[test]
fn console_path_refuses_unpinned_implementation_before_any_signature() {
    let w = World::deploy();
    w.write_manifest("wrong.toml", Pins::Wrong);
    let online = session(&w, "wrong.toml", true, FrontEnd::Console);
    let e = online
        .compose(&ComposeRequest {
            playbook: "patch-pool".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Refused, "codehash"), "{e:?}");
    assert!(e.message.contains("CRITICAL"), "{}", e.message);

    // Composed offline (no node to check against), then brought to an online console to sign.
    let offline = session(&w, "wrong.toml", false, FrontEnd::Console);
    let c = offline
        .compose(&ComposeRequest {
            playbook: "patch-pool".into(),
            nonce: Some(alloy::primitives::U256::from(w.safe_nonce())),
            ..Default::default()
        })
        .unwrap();
    let e = online.prepare_signing(&c.bundle).unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::Refused, "codehash"), "{e:?}");

    // With the right pin the same steps sign.
    w.write_manifest("right.toml", Pins::Right);
    let right = session(&w, "right.toml", true, FrontEnd::Console);
    let c = right
        .compose(&ComposeRequest {
            playbook: "patch-pool".into(),
            ..Default::default()
        })
        .unwrap();
    let ready = right.prepare_signing(&c.bundle).unwrap();
    assert_eq!(ready.codehashes.len(), 1);
    assert!(ready.codehashes[0].pass);
    let sim = InProcessSim::start(SimConfig::default());
    right.sign(&ready, &mut sim.signer(0)).unwrap();
}

/// The same through the console's own effects (`tui::compose_job`, `tui::sign_job`, which the console
/// runs on its worker threads): refused, nothing signed, nothing recorded as signed.
#[test]
fn console_effects_refuse_unpinned_implementation() {
    use breakglass::tui::app::Account;
    use breakglass::tui::{compose_job, sign_job, Env, SignerSpec};
    let w = World::deploy();
    w.write_manifest("wrong.toml", Pins::Wrong);
    let sim = InProcessSim::start(SimConfig::default());
    let env = Env {
        manifest: Manifest::load(&w.sb.path("wrong.toml")).unwrap(),
        trust: Trust::Pinned {
            source: "test".into(),
        },
        rpc: Some(w.anvil.url.clone()),
        signer: Some(SignerSpec::Speculos(sim.addr.clone())),
        drill: false,
        out_dir: w.sb.path("."),
        accounts: 3,
        audit: AuditLog::new(w.sb.path("console-audit.jsonl")),
        rpc_urls: Default::default(),
        ladders: Vec::new(),
        ladder_keys: Default::default(),
    };
    let e = compose_job(&env, "patch-pool", None).unwrap_err();
    assert!(e.contains("CRITICAL") && e.contains("code hash"), "{e}");
    // A bundle composed elsewhere (offline), brought to the console to sign.
    let offline = session(&w, "wrong.toml", false, FrontEnd::Cli);
    let c = offline
        .compose(&ComposeRequest {
            playbook: "patch-pool".into(),
            nonce: Some(alloy::primitives::U256::from(w.safe_nonce())),
            ..Default::default()
        })
        .unwrap();
    let account = Account {
        index: 0,
        address: SIM0.parse().unwrap(),
    };
    let e = sign_job(&env, &c.bundle, &account).unwrap_err();
    assert!(e.contains("CRITICAL") && e.contains("code hash"), "{e}");
    let log = std::fs::read_to_string(w.sb.path("console-audit.jsonl")).unwrap_or_default();
    assert!(!log.contains("\"sign\""), "{log}");
}
