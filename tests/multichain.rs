//! Issue 15: one incident on three chains. Three anvils (chain ids 31337, 31338, 31339), each with the real
//! Safe 1.4.1 (2 of 3: simulator accounts 0 and 1, a keystore owner) owning an OZ 5 transparent pool and a
//! UUPS vault, at different addresses on each chain; one version-2 manifest describes all three; the
//! binary reaches each node through a relay that the test can take down, named in a local RPC config
//! (the world is `tests/support/chains.rs`). The chain's state is read independently with `cast`.

use crate::support::anvil::cast_offline;
use crate::support::chains::{Deployment, Incident, CHAINS};
use crate::support::world::{all_output, ok, read_json, SIM0, SIM1};
use serde_json::{json, Value};

fn status_of(out: &Value, chain: &str) -> Value {
    out["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chain"] == json!(chain))
        .cloned()
        .unwrap_or_else(|| panic!("no row for {chain}: {out}"))
}

#[test]
fn halt_pauses_three_chains_and_a_rerun_finishes_only_the_chain_that_was_down() {
    let w = Incident::deploy();
    w.write_manifest("m.toml", ["2", "2", "2"]);
    let check = w.bg("m.toml", &["manifest", "check"]);
    ok(&check, "manifest check");
    for (n, id) in CHAINS {
        assert!(
            check.stdout.contains(&format!("{n} (chain {id})")),
            "{}",
            check.stdout
        );
    }
    let files = w.compose_and_sign("m.toml", "halt");
    // One transaction per chain: each bundle names its chain and its own Safe.
    for (f, c) in files.iter().zip(&w.chains) {
        let b = read_json(&w.sb.path(f));
        let (_, id) = CHAINS.iter().find(|(n, _)| *n == c.name).unwrap();
        assert_eq!(b["chain_id"], json!(id), "{f}");
        assert_eq!(
            b["safe_tx"]["safe"].as_str().unwrap().to_ascii_lowercase(),
            c.safe.to_ascii_lowercase(),
            "{f}"
        );
        assert_eq!(b["signatures"].as_array().unwrap().len(), 2, "{f}");
    }

    // The node of chain beta is down: alpha and gamma are paused, beta is reported with the reason.
    let beta = w.chain("beta");
    beta.relay.set_down(true);
    let r = w.execute("m.toml", &files, &[]);
    assert_ne!(r.code, 0, "{}", all_output(&r));
    let out = r.json();
    assert_eq!(out["ok"], json!(false), "{out}");
    assert_eq!(status_of(&out, "alpha")["status"], json!("done"), "{out}");
    assert_eq!(status_of(&out, "gamma")["status"], json!("done"), "{out}");
    let b = status_of(&out, "beta");
    assert_eq!(b["status"], json!("failed"), "{out}");
    assert!(
        b["reason"].as_str().unwrap().contains("127.0.0.1"),
        "the reason names the node: {b}"
    );
    for c in &w.chains {
        let expect = c.name != "beta";
        assert_eq!(w.chain(c.name).paused(&c.pool), expect, "{} pool", c.name);
        assert_eq!(w.chain(c.name).paused(&c.vault), expect, "{} vault", c.name);
    }
    for p in status_of(&out, "alpha")["postconditions"]
        .as_array()
        .unwrap()
    {
        assert_eq!(p["pass"], json!(true), "{p}");
    }
    let sent: Vec<u64> = w
        .chains
        .iter()
        .map(|c| c.executor_nonce(&w.executor))
        .collect();

    // Beta's node is back: the same command finishes beta only; nothing is sent again on alpha and gamma.
    beta.relay.set_down(false);
    let r = w.execute("m.toml", &files, &[]);
    ok(&r, "re-run execute");
    let out = r.json();
    assert_eq!(out["all_passed"], json!(true), "{out}");
    assert_eq!(status_of(&out, "alpha")["earlier"], json!(true), "{out}");
    assert_eq!(status_of(&out, "gamma")["earlier"], json!(true), "{out}");
    let b = status_of(&out, "beta");
    assert_eq!(b["status"], json!("done"), "{out}");
    assert!(b["tx_hash"].is_string(), "{b}");
    for p in b["postconditions"].as_array().unwrap() {
        assert_eq!(p["pass"], json!(true), "{p}");
    }
    assert!(beta.paused(&beta.pool) && beta.paused(&beta.vault));
    let after: Vec<u64> = w
        .chains
        .iter()
        .map(|c| c.executor_nonce(&w.executor))
        .collect();
    assert_eq!(after[0], sent[0], "nothing sent again on alpha");
    assert_eq!(after[2], sent[2], "nothing sent again on gamma");
    assert_eq!(after[1], sent[1] + 1, "one execution on beta");

    // The console's effects reach every chain through the same session: each node's state, and a
    // composition on gamma with gamma's Safe nonce (read from gamma's node).
    let env = console_env(&w, "m.toml");
    let live = breakglass::tui::chain_status(&env);
    assert_eq!(live.len(), 3);
    for (id, l) in &live {
        let l = l.as_ref().unwrap_or_else(|e| panic!("chain {id}: {e}"));
        assert_eq!(l.safe_nonce, Some(alloy::primitives::U256::from(1)), "{id}");
        assert_eq!(l.owners_match, Some(true), "{id}");
        assert_eq!(l.paused.len(), 2, "{id}");
        assert!(l.paused.iter().all(|(_, p)| *p), "{id}: {:?}", l.paused);
    }
    // Halting gamma again would revert (it is paused): the console's compose simulates and refuses it,
    // naming the failing call (issue 17).
    let e = breakglass::tui::compose_job_on(&env, 31339, "halt", None).unwrap_err();
    assert!(
        e.contains("the simulation refuses") && e.contains("pool.pause()"),
        "{e}"
    );
    let (b, report) = breakglass::tui::compose_job_on(&env, 31339, "patch", None).unwrap();
    assert_eq!(b.chain_id, 31339);
    assert!(report.allowed);
    let s = b.safe_tx.as_ref().unwrap();
    assert_eq!(s.safe.to_checksum(None), w.chain("gamma").safe);
    assert_eq!(s.tx.nonce, alloy::primitives::U256::from(1));
    // In the console, that composition shows on gamma's row, and stays there when another chain is active.
    {
        use breakglass::tui::app::{update, Action, App};
        use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let mut app = App::new(env.manifest.clone(), env.trust.clone(), None, false);
        app.set_chain_nodes(&env.rpc_urls);
        let c = || Action::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE));
        update(&mut app, c());
        update(&mut app, c());
        assert_eq!(app.manifest.chain_id, 31339);
        assert_eq!(
            app.rpc.as_deref(),
            Some(w.chain("gamma").relay.url().as_str())
        );
        update(&mut app, Action::Composed(Ok((b.clone(), report.clone()))));
        update(&mut app, c());
        assert_eq!(app.manifest.chain_id, 31337);
        assert!(app.bundle.is_none(), "alpha has no bundle in the console");
        let gamma = &app.chains[2];
        assert_eq!(
            gamma.stage(gamma.bundle.as_ref(), &gamma.exec),
            "patch: 0 of 2 signatures"
        );
        let alpha = &app.chains[0];
        assert_eq!(alpha.stage(app.bundle.as_ref(), &app.exec), "—");
        let executed = breakglass::bundle::Bundle::read(&w.sb.path("halt-alpha.json")).unwrap();
        assert_eq!(
            alpha.stage(Some(&executed), &app.exec),
            "halt: executed, post-conditions ok"
        );
    }
    // Beta's node down: the console says so for beta only.
    beta.relay.set_down(true);
    let live = breakglass::tui::chain_status(&env);
    assert!(live.iter().find(|(id, _)| *id == 31338).unwrap().1.is_err());
    assert!(live.iter().filter(|(_, l)| l.is_ok()).count() == 2);
    beta.relay.set_down(false);

    // A third run does nothing and says so.
    let r = w.execute("m.toml", &files, &[]);
    ok(&r, "third run");
    for (n, _) in CHAINS {
        assert_eq!(status_of(&r.json(), n)["earlier"], json!(true));
    }
}

#[test]
fn a_signature_for_one_chain_is_refused_on_another() {
    let w = Incident::deploy();
    w.write_manifest("m.toml", ["2", "2", "2"]);
    let r = w.bg("m.toml", &["compose", "halt", "-o", "halt.json"]);
    ok(&r, "compose (every chain by default)");
    let files = ["halt-alpha.json", "halt-beta.json"];
    let r = w.bg(
        "m.toml",
        &[
            "sign",
            files[0],
            files[1],
            "--speculos",
            &w.sim.addr,
            "--account",
            "0",
            "-o",
            "signed-{chain}.json",
        ],
    );
    ok(&r, "sign two chains");
    // The same owner, the same playbook, the same nonce: only the chain differs. Put A's signature into
    // B's request.
    let a = read_json(&w.sb.path("signed-alpha.json"));
    let mut b = read_json(&w.sb.path("signed-beta.json"));
    assert_eq!(a["safe_tx"]["tx"]["nonce"], b["safe_tx"]["tx"]["nonce"]);
    b["signatures"] = a["signatures"].clone();
    w.sb.write("evil-beta.json", serde_json::to_vec_pretty(&b).unwrap());

    let r = w.bg("m.toml", &["verify", "evil-beta.json"]);
    assert_eq!(r.code, 3, "verify: {}", all_output(&r));
    let r = w.bg("m.toml", &["inspect", "evil-beta.json"]);
    assert_eq!(r.code, 3, "inspect: {}", all_output(&r));
    let r = w.bg(
        "m.toml",
        &[
            "combine",
            "halt-beta.json",
            "evil-beta.json",
            "-o",
            "c.json",
        ],
    );
    assert_eq!(r.code, 3, "combine: {}", all_output(&r));
    assert!(!w.sb.path("c.json").exists());
    let r = w.bg(
        "m.toml",
        &[
            "combine",
            "signed-alpha.json",
            "signed-beta.json",
            "-o",
            "c.json",
        ],
    );
    assert_eq!(r.code, 3, "combine across chains: {}", all_output(&r));
    assert!(!w.sb.path("c.json").exists());
    // With the keystore's real signature beside it, execution still refuses the foreign one.
    let r = w.bg(
        "m.toml",
        &[
            "sign",
            "evil-beta.json",
            "--keystore",
            "keystores/owner3",
            "--password-file",
            "password.txt",
            "-o",
            "evil-beta-2.json",
        ],
    );
    assert_eq!(
        r.code,
        3,
        "sign refuses the tampered request: {}",
        all_output(&r)
    );
    let r = w.execute("m.toml", &["evil-beta.json".to_string()], &[]);
    assert_ne!(r.code, 0, "execute: {}", all_output(&r));
    let beta = w.chain("beta");
    assert!(!beta.paused(&beta.pool), "nothing executed on beta");
}

#[test]
fn a_phased_patch_stops_at_the_first_chain_whose_postcondition_fails() {
    let w = Incident::deploy();
    // The patch's post-condition on alpha expects a version the new implementation does not report.
    w.write_manifest("bad.toml", ["3", "2", "2"]);
    // Issue 17: compose simulates each chain first and refuses alpha's patch before anyone signs.
    let r = w.bg(
        "bad.toml",
        &["compose", "patch", "--chains", "all", "-o", "refused.json"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        all_output(&r).contains("POST-CONDITION FAILS: version() == \"3\""),
        "{}",
        all_output(&r)
    );
    // The execution's own check, on bundles composed without the simulation.
    let files = w.compose_and_sign_with("bad.toml", "patch", &["--no-simulate"]);
    let before: Vec<String> = w.chains.iter().map(|c| c.implementation()).collect();
    let r = w.execute("bad.toml", &files, &["--phased"]);
    assert_ne!(r.code, 0, "{}", all_output(&r));
    let out = r.json();
    let a = status_of(&out, "alpha");
    assert_eq!(a["status"], json!("failed"), "{out}");
    assert!(
        a["postconditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pass"] == json!(false)),
        "{a}"
    );
    // Alpha was upgraded (its transaction ran); beta and gamma were never started.
    let alpha = w.chain("alpha");
    assert_eq!(alpha.implementation(), alpha.pool_v2.to_ascii_lowercase());
    for (i, c) in w.chains.iter().enumerate().skip(1) {
        assert_eq!(status_of(&out, c.name)["status"], json!("failed"), "{out}");
        assert!(
            status_of(&out, c.name)["reason"]
                .as_str()
                .unwrap()
                .contains("not started"),
            "{out}"
        );
        assert_eq!(c.implementation(), before[i], "{} untouched", c.name);
    }

    // With a correct manifest the same rollout goes through every chain, in order.
    w.write_manifest("good.toml", ["2", "2", "2"]);
    let files: Vec<String> = files.iter().map(|f| format!("good-{f}")).collect();
    let r = w.bg(
        "good.toml",
        &[
            "compose",
            "patch",
            "--chains",
            "beta,gamma",
            "-o",
            "good-patch-{chain}.json",
        ],
    );
    ok(&r, "compose on beta and gamma");
    let files = &files[1..];
    for f in files {
        for signer in [
            vec!["--speculos", w.sim.addr.as_str(), "--account", "0"],
            vec![
                "--keystore",
                "keystores/owner3",
                "--password-file",
                "password.txt",
            ],
        ] {
            let mut a = vec!["sign", f.as_str()];
            a.extend(signer);
            a.push("--in-place");
            ok(&w.bg("good.toml", &a), "sign");
        }
    }
    let r = w.execute("good.toml", files, &["--phased"]);
    ok(&r, "phased rollout on beta then gamma");
    for c in &w.chains[1..] {
        assert_eq!(
            c.implementation(),
            c.pool_v2.to_ascii_lowercase(),
            "{}",
            c.name
        );
    }
}

/// `requires_role`: before anything is signed, the Safe must hold the role on each chain (an
/// OpenZeppelin 5 AccessControl pool). On beta the pauser role was given to someone else: composing there
/// is refused naming the role, while alpha composes, and `role("…")` arguments are keccak256 of the name.
#[test]
fn the_safe_must_hold_the_role_a_pause_needs_on_each_chain() {
    let w = Incident::deploy();
    let alpha = w.chain("alpha");
    let beta = w.chain("beta");
    let a_pool = alpha.anvil.deploy_artifact(
        "contracts/RolePool.json",
        "constructor(address,address)",
        &[&alpha.safe, &alpha.safe],
    );
    let b_pool = beta.anvil.deploy_artifact(
        "contracts/RolePool.json",
        "constructor(address,address)",
        &[&beta.safe, crate::support::world::SIM2],
    );
    // The role as the contract computes it equals role("PAUSER_ROLE") in the manifest.
    let on_chain = alpha.anvil.call(&a_pool, "PAUSER_ROLE()(bytes32)", &[]);
    assert_eq!(on_chain, cast_offline(&["keccak", "PAUSER_ROLE"]));
    let chain = |c: &Deployment, pool: &str| {
        let (_, id) = CHAINS.iter().find(|(n, _)| *n == c.name).unwrap();
        format!(
            r#"
[chains.{name}]
chain_id = {id}
safe = {{ address = "{safe}", version = "1.4.1", owners = ["{sim0}", "{sim1}", "{owner3}"], threshold = 2 }}
contracts.rpool = {{ address = "{pool}" }}
"#,
            name = c.name,
            safe = c.safe,
            sim0 = SIM0,
            sim1 = SIM1,
            owner3 = w.owner3,
        )
    };
    let text = format!(
        r#"version = 2
name = "Role pools"

[contracts.rpool]
abi = [
  "function pause()",
  "function paused() view returns (bool)",
  "function hasRole(bytes32 role, address account) view returns (bool)",
]

[[actions]]
id = "pause-rpool"
title = "Pause the role pool"
contract = "rpool"
function = "pause()"
via = "safe"
requires_role = 'role("PAUSER_ROLE")'
expect = ["paused() == true", 'hasRole(role("PAUSER_ROLE"), $safe) == true']

[[playbooks]]
id = "halt"
title = "Halt"
actions = ["pause-rpool"]
{}{}"#,
        chain(alpha, &a_pool) + &format!("vars = {{ safe = \"{}\" }}\n", alpha.safe),
        chain(beta, &b_pool) + &format!("vars = {{ safe = \"{}\" }}\n", beta.safe),
    );
    w.sb.write("roles.toml", text);
    let h = w.sb.run(&["--manifest", "roles.toml", "manifest", "hash"]);
    ok(&h, "manifest hash");
    w.pins
        .borrow_mut()
        .insert("roles.toml".into(), h.stdout.trim().to_string());

    let r = w.bg(
        "roles.toml",
        &["compose", "halt", "--chains", "beta", "-o", "r.json"],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        r.stdout.contains("PAUSER_ROLE") || r.stderr.contains("PAUSER_ROLE"),
        "{}",
        all_output(&r)
    );
    assert!(
        all_output(&r).contains("does not hold"),
        "{}",
        all_output(&r)
    );
    assert!(
        !w.sb.path("r-beta.json").exists(),
        "nothing written for beta"
    );

    let r = w.bg(
        "roles.toml",
        &["compose", "halt", "--chains", "alpha", "-o", "r.json"],
    );
    ok(&r, "alpha: the Safe holds the role");
    let signed = ["r-alpha.json".to_string()];
    for signer in [
        vec!["--speculos", w.sim.addr.as_str(), "--account", "0"],
        vec![
            "--keystore",
            "keystores/owner3",
            "--password-file",
            "password.txt",
        ],
    ] {
        let mut a = vec!["sign", "r-alpha.json"];
        a.extend(signer);
        a.push("--in-place");
        ok(&w.bg("roles.toml", &a), "sign");
    }
    let r = w.execute("roles.toml", &signed, &[]);
    ok(&r, "execute on alpha");
    assert!(alpha.paused(&a_pool));
    let posts = status_of(&r.json(), "alpha")["postconditions"].clone();
    assert_eq!(posts.as_array().unwrap().len(), 2, "{posts}");
    assert!(
        posts
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["pass"] == json!(true)),
        "{posts}"
    );
    assert!(!beta.paused(&b_pool));
}

fn console_env(w: &Incident, m: &str) -> breakglass::tui::Env {
    let manifest = breakglass::manifest::Manifest::load(&w.sb.path(m)).unwrap();
    breakglass::tui::Env {
        manifest,
        trust: breakglass::manifest::trust::Trust::Pinned {
            source: "test".into(),
        },
        rpc: None,
        signer: None,
        drill: false,
        out_dir: w.sb.path("."),
        accounts: 1,
        audit: breakglass::audit::AuditLog::new(w.sb.path("console-audit.jsonl")),
        ladders: Vec::new(),
        ladder_keys: Default::default(),
        rpc_urls: w
            .chains
            .iter()
            .map(|c| (c.name.to_string(), c.relay.url()))
            .collect(),
    }
}

/// The console with a multi-chain manifest: a row per chain with its node's state and where the incident
/// stands, `c` moves to the next chain (its Safe, its playbooks), a node that is down is shown as down.
#[test]
fn console_shows_every_chain_and_switches_between_them() {
    use breakglass::tui::app::{update, Action, App, ChainLive};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let m = breakglass::manifest::Manifest::load(
        &crate::support::bin::repo().join("examples/multichain.toml"),
    )
    .unwrap();
    let mut a = App::new(
        m,
        breakglass::manifest::trust::Trust::Pinned {
            source: "test".into(),
        },
        None,
        false,
    );
    let render = |a: &App| {
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
        t.draw(|f| breakglass::tui::ui::draw(f, a)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(a.chains.len(), 3);
    assert_eq!(a.manifest.chain_id, 31337);
    let screen = render(&a);
    for n in ["alpha", "beta", "gamma"] {
        assert!(screen.contains(n), "{screen}");
    }
    assert!(screen.contains("alpha (chain 31337)"), "{screen}");
    assert!(screen.contains("no node"), "{screen}");
    let key = |c: char| Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));

    update(
        &mut a,
        Action::ChainStatus(vec![
            (
                31337,
                Ok(ChainLive {
                    block: 7,
                    safe_nonce: Some(alloy::primitives::U256::from(3)),
                    owners_match: Some(true),
                    paused: vec![("pool".into(), true), ("vault".into(), false)],
                }),
            ),
            (
                31338,
                Err("the node at http://127.0.0.1:9 is unreachable".into()),
            ),
            (
                31339,
                Ok(ChainLive {
                    block: 9,
                    safe_nonce: Some(alloy::primitives::U256::from(0)),
                    owners_match: Some(false),
                    paused: vec![("pool".into(), false)],
                }),
            ),
        ]),
    );
    let screen = render(&a);
    assert!(
        screen.contains("Safe nonce 3 · owners ok · paused 1/2"),
        "{screen}"
    );
    assert!(screen.contains("node DOWN"), "{screen}");
    assert!(screen.contains("OWNERS DIFFER"), "{screen}");

    update(&mut a, key('c'));
    assert_eq!(a.manifest.chain_id, 31338);
    assert_eq!(
        a.manifest.safe.as_ref().unwrap().address.to_checksum(None),
        "0x5AFe00000000000000000000000000000000B0B1"
    );
    assert!(render(&a).contains("beta (chain 31338)"));
    update(&mut a, key('c'));
    assert_eq!(a.manifest.chain_name.as_deref(), Some("gamma"));
    // gamma has no vault: only the patch playbook is offered there.
    assert_eq!(
        a.manifest
            .playbooks
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["patch"]
    );
    update(&mut a, key('c'));
    assert_eq!(
        a.manifest.chain_id, 31337,
        "c cycles back to the first chain"
    );
}

/// The real binary's console in tmux, as a guardian runs it against three chains: every chain's row
/// comes from its own node, a pause on one chain shows after `u`, and `c` moves the console to the next
/// chain (its Safe in the header and the dashboard).
#[test]
fn console_in_tmux_shows_each_chains_state_from_its_own_node() {
    use crate::support::tmux::{console_command, Tmux};
    use std::time::Duration;
    let w = Incident::deploy();
    w.write_manifest("m.toml", ["2", "2", "2"]);
    let pin = w.pins.borrow()["m.toml"].clone();
    let m = w.sb.path("m.toml").display().to_string();
    let rpc = w.sb.path("rpc.toml").display().to_string();
    let t = Tmux::start_sized("multichain", 120, 40, |dir| {
        console_command(
            dir,
            &["--manifest", &m, "--pin", &pin, "--rpc-config", &rpc, "tui"],
        )
    });
    let s = t.wait_for(
        &["alpha", "beta", "gamma", "alpha (chain 31337)"],
        Duration::from_secs(20),
    );
    let s = if s.matches("owners ok · paused 0/2").count() == 3 {
        s
    } else {
        t.wait("three chains' state", Duration::from_secs(20), |s| {
            s.matches("owners ok · paused 0/2").count() == 3
        })
        .0
    };
    assert!(s.contains("Safe nonce 0"), "{s}");

    // Someone pauses beta's pool on chain: after `u`, beta's row says so and the others do not.
    let beta = w.chain("beta");
    beta.anvil.send_as(&beta.safe, &beta.pool, "pause()", &[]);
    t.send("u");
    let s = t
        .wait("beta's pause", Duration::from_secs(20), |s| {
            s.contains("paused 1/2")
        })
        .0;
    assert_eq!(s.matches("paused 0/2").count(), 2, "{s}");

    t.send("c");
    let s = t.wait_for(&["beta (chain 31338)"], Duration::from_secs(10));
    assert!(s.contains(&beta.safe), "beta's Safe on the dashboard: {s}");
    t.send("q");
    assert_eq!(t.exit_code(Duration::from_secs(10)), 0, "{}", t.stderr());
}
