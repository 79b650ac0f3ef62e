//! The manifest fixture corpus in `tests/fixtures/manifests/`.
//!
//! * `ok_*.toml` must load; a few fields are spot-checked.
//! * `fail_*.toml` must be refused. Each one's first line says where and what:
//!   `# expect: LINE:COL: <substring of the message>`: the FIRST diagnostic (file order) must be at exactly
//!   that 1-based line and character column, its message must contain the substring, and it must carry a
//!   non-empty hint. Every mismatch is collected and reported at once.
//! * The real binary: `--json manifest check` on failing fixtures gives the error envelope and exit 1;
//!   `manifest hash` prints keccak256 of the file bytes, computed independently with `cast keccak`.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{address, U256};
use breakglass::manifest::{
    Constraint, ExpectLhs, Manifest, ManifestError, ProxyKind, ProxySlot, SafeVersion, Via,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// At least this many `fail_*` fixtures must exist.
const MIN_FAIL_FIXTURES: usize = 30;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests")
}

fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    assert!(p.is_file(), "fixture {} is missing", p.display());
    p
}

/// Fixture files whose name starts with `prefix` and ends in `.toml`, sorted.
fn fixtures(prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", fixtures_dir().display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".toml")
        })
        .collect();
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// What a `fail_*` fixture's first line promises.
#[derive(Debug)]
struct Expected {
    line: usize,
    column: usize,
    substring: String,
}

/// Parses `# expect: LINE:COL: substring` from the file's first line (which must be UTF-8 even when a
/// later byte is not).
fn expected(path: &Path) -> Result<Expected, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = std::str::from_utf8(first).map_err(|_| "first line is not UTF-8".to_string())?;
    let first = first.trim_end_matches('\r');
    let rest = first
        .strip_prefix("# expect: ")
        .ok_or_else(|| format!("first line {first:?} does not start with \"# expect: \""))?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next().unwrap_or_default().trim();
    let column = parts.next().unwrap_or_default().trim();
    let substring = parts.next().unwrap_or_default().trim();
    let bad = || format!("first line {first:?} is not \"# expect: LINE:COL: message\"");
    let line: usize = line.parse().map_err(|_| bad())?;
    let column: usize = column.parse().map_err(|_| bad())?;
    if substring.is_empty() || line == 0 || column == 0 {
        return Err(bad());
    }
    Ok(Expected {
        line,
        column,
        substring: substring.to_string(),
    })
}

#[test]
fn ok_fixtures_load() {
    let oks = fixtures("ok_");
    let names: Vec<String> = oks.iter().map(|p| file_name(p)).collect();
    for want in ["ok_minimal.toml", "ok_full.toml", "ok_eoa_only.toml"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} is missing from {names:?}"
        );
    }
    let mut failures = Vec::new();
    for p in &oks {
        if let Err(e) = Manifest::load(p) {
            failures.push(format!("{}: {e}", file_name(p)));
        }
    }
    assert!(
        failures.is_empty(),
        "ok fixtures that did not load:\n{}",
        failures.join("\n")
    );
}

#[test]
fn ok_minimal_contents() {
    let path = fixture("ok_minimal.toml");
    let m = Manifest::load(&path).unwrap();
    assert_eq!(m.name, "Minimal");
    assert_eq!(m.chain_id, 1);
    let safe = m.safe.as_ref().expect("ok_minimal has a [safe]");
    assert_eq!(safe.version, SafeVersion::V1_4_1);
    assert_eq!(safe.owners.len(), 2);
    assert_eq!(safe.threshold, 1);
    assert!(!safe.multisend_overridden);
    assert_eq!(
        safe.multisend_call_only,
        address!("9641d764fc13c8B624c04430C7356C1C7C8102e2")
    );
    assert!(m.timelock.is_none());
    assert_eq!(m.actions.len(), 1);
    assert_eq!(m.actions[0].via, Via::Safe);
    assert_eq!(m.actions[0].call_signature(), "pause()");
    assert_eq!(
        m.actions[0].value,
        Constraint::Eq(DynSolValue::Uint(U256::ZERO, 256))
    );
    assert_eq!(m.playbooks.len(), 1);
    assert_eq!(m.playbooks[0].actions, vec!["pause-pool".to_string()]);
}

#[test]
fn ok_full_contents() {
    {
        let m = Manifest::load(&fixture("ok_full.toml")).unwrap();
        assert_eq!(m.policy.max_tx_fee_wei, 250_000_000_000_000_000);
        assert!(m.action("pause-pool").unwrap().allow_safe_tx_gas);
        let other = m.actions.iter().filter(|a| a.allow_safe_tx_gas).count();
        assert_eq!(other, 1, "only pause-pool allows safeTxGas");
        let minimal = Manifest::load(&fixture("ok_minimal.toml")).unwrap();
        assert_eq!(
            minimal.policy.max_tx_fee_wei, 500_000_000_000_000_000,
            "default 0.5 ETH"
        );
    }
    let m = Manifest::load(&fixture("ok_full.toml")).unwrap();
    assert_eq!(m.chain_id, 10);

    // Safe 1.3.0 with the MultiSendCallOnly override used instead of the canonical 1.3.0 deployment.
    let safe = m.safe.as_ref().expect("ok_full has a [safe]");
    assert_eq!(safe.version, SafeVersion::V1_3_0);
    assert_eq!(safe.owners.len(), 3);
    assert_eq!(safe.threshold, 2);
    assert!(safe.multisend_overridden);
    assert_eq!(
        safe.multisend_call_only,
        address!("3d50000000000000000000000000000000000001")
    );
    assert_ne!(
        safe.multisend_call_only,
        address!("40A2aCCbd92BCA938b02010E17A5b8929b49130D")
    );

    let tl = m.timelock.as_ref().expect("ok_full has a [timelock]");
    assert_eq!(
        tl.address,
        address!("7100000000000000000000000000000000000001")
    );
    assert_eq!(tl.min_delay, 172800);

    // The three proxy kinds.
    assert_eq!(m.contracts.len(), 3);
    assert_eq!(
        m.contract("pool").unwrap().proxy,
        ProxyKind::Transparent {
            proxy_admin: address!("AD00000000000000000000000000000000000001")
        }
    );
    assert_eq!(m.contract("vault").unwrap().proxy, ProxyKind::Uups);
    assert_eq!(
        m.contract("token").unwrap().proxy,
        ProxyKind::Beacon {
            beacon: address!("BeAc0000000000000000000000000000000000B1")
        }
    );
    // abi_json was parsed.
    let vault_abi = &m.contract("vault").unwrap().abi;
    assert!(
        vault_abi.function("paused").is_some(),
        "vault's abi_json lost paused()"
    );
    assert!(
        vault_abi.event("Paused").is_some(),
        "vault's abi_json lost the Paused event"
    );

    // Constraint kinds.
    let args = |id: &str| {
        m.action(id)
            .unwrap_or_else(|| panic!("no action {id}"))
            .args
            .clone()
    };
    assert_eq!(
        args("set-oracle"),
        vec![(
            "oracle".to_string(),
            Constraint::Eq(DynSolValue::Address(address!(
                "0ac1e00000000000000000000000000000000001"
            )))
        )]
    );
    assert_eq!(
        args("set-fee"),
        vec![(
            "fee".to_string(),
            Constraint::Range {
                min: Some(DynSolValue::Uint(U256::ZERO, 256)),
                max: Some(DynSolValue::Uint(U256::from(500), 256)),
            }
        )]
    );
    let rescue = args("rescue");
    assert_eq!(rescue.len(), 2);
    assert_eq!(rescue[0].0, "token");
    assert!(
        matches!(&rescue[0].1, Constraint::OneOf(l) if l.len() == 2),
        "{:?}",
        rescue[0].1
    );
    assert_eq!(rescue[1], ("amount".to_string(), Constraint::Any));

    // A value constraint.
    assert_eq!(
        m.action("fund-pool").unwrap().value,
        Constraint::Range {
            min: None,
            max: Some(DynSolValue::Uint(U256::from(10).pow(U256::from(18)), 256))
        }
    );

    // The upgrade: codehash, the implicit empty `data`, the EIP-1967 slot post-condition.
    let up = m.action("upgrade-vault").unwrap();
    assert!(up.implementation_codehash.is_some());
    assert_eq!(up.args.len(), 2);
    assert!(matches!(&up.args[0].1, Constraint::OneOf(l) if l.len() == 1));
    assert_eq!(
        up.args[1],
        (
            "data".to_string(),
            Constraint::Eq(DynSolValue::Bytes(Vec::new()))
        )
    );
    assert!(matches!(
        up.expect[0].lhs,
        ExpectLhs::Slot(ProxySlot::Implementation)
    ));
    assert!(matches!(
        m.action("upgrade-token").unwrap().expect[0].lhs,
        ExpectLhs::Slot(ProxySlot::Beacon)
    ));

    // A view call with an argument in a post-condition.
    let pause = m.action("pause-pool").unwrap();
    assert_eq!(pause.expect.len(), 2);
    match &pause.expect[1].lhs {
        ExpectLhs::Call { function, args } => {
            assert_eq!(function.signature(), "balanceOf(address)");
            assert_eq!(
                args,
                &vec![DynSolValue::Address(address!(
                    "DeaD00000000000000000000000000000000BEEf"
                ))]
            );
        }
        other => panic!("expected a view call, got {other:?}"),
    }
    assert_eq!(pause.expect[1].rhs, DynSolValue::Uint(U256::ZERO, 256));

    assert_eq!(m.action("unpause-pool").unwrap().via, Via::Timelock);
    assert_eq!(m.actions.len(), 9);
    assert_eq!(m.playbooks.len(), 3);
}

#[test]
fn ok_eoa_only_contents() {
    let m = Manifest::load(&fixture("ok_eoa_only.toml")).unwrap();
    assert!(m.safe.is_none());
    assert!(m.timelock.is_none());
    assert!(!m.actions.is_empty());
    assert!(m.actions.iter().all(|a| a.via == Via::Eoa));
}

#[test]
fn fail_fixtures_report_their_first_problem_at_its_position() {
    let fails = fixtures("fail_");
    assert!(
        fails.len() >= MIN_FAIL_FIXTURES,
        "only {} fail_*.toml fixtures, want at least {MIN_FAIL_FIXTURES}",
        fails.len()
    );
    let mut mismatches = Vec::new();
    for p in &fails {
        let name = file_name(p);
        let want = match expected(p) {
            Ok(w) => w,
            Err(e) => {
                mismatches.push(format!("{name}: {e}"));
                continue;
            }
        };
        let diagnostics = match Manifest::load(p) {
            Ok(_) => {
                mismatches.push(format!("{name}: loaded, but should fail with {want:?}"));
                continue;
            }
            Err(ManifestError::Invalid { diagnostics, .. }) => diagnostics,
            Err(e) => {
                mismatches.push(format!("{name}: not ManifestError::Invalid: {e}"));
                continue;
            }
        };
        let Some(d) = diagnostics.first() else {
            mismatches.push(format!(
                "{name}: ManifestError::Invalid without diagnostics"
            ));
            continue;
        };
        let mut problems = Vec::new();
        if (d.line, d.column) != (want.line, want.column) {
            problems.push(format!(
                "at {}:{}, want {}:{}",
                d.line, d.column, want.line, want.column
            ));
        }
        if !d.message.contains(&want.substring) {
            problems.push(format!("message does not contain {:?}", want.substring));
        }
        if d.hint.as_deref().is_none_or(|h| h.trim().is_empty()) {
            problems.push("no hint".to_string());
        }
        if !problems.is_empty() {
            mismatches.push(format!(
                "{name}: {}\n    got {}:{}: {}\n    hint: {:?}",
                problems.join("; "),
                d.line,
                d.column,
                d.message,
                d.hint
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} fail fixtures do not match their `# expect:` line:\n{}",
        mismatches.len(),
        fails.len(),
        mismatches.join("\n")
    );
}

/// Runs the real binary with an isolated config dir.
fn run_binary(args: &[&str]) -> (i32, String, String) {
    let config = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_breakglass"))
        .args(args)
        .env("BREAKGLASS_CONFIG_DIR", config.path().join("config"))
        .env("BREAKGLASS_DATA_DIR", config.path().join("data"))
        .env_remove("BREAKGLASS_PIN")
        .env_remove("BREAKGLASS_MANIFEST")
        .env_remove("ETH_RPC_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn binary_reports_fixture_errors_as_json_and_hashes_the_file_bytes() {
    for name in [
        "fail_safe_unknown_field_treshold.toml",
        "fail_address_bad_checksum.toml",
    ] {
        let path = fixture(name);
        let want = expected(&path).unwrap();
        let (code, stdout, stderr) = run_binary(&[
            "--manifest",
            path.to_str().unwrap(),
            "manifest",
            "check",
            "--json",
        ]);
        assert_eq!(
            code, 1,
            "{name}: exit code\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{name}: stdout is not JSON ({e}):\n{stdout}\nstderr:\n{stderr}")
        });
        assert_eq!(v["ok"], serde_json::json!(false), "{name}: {v:#}");
        assert_eq!(v["exit_code"], serde_json::json!(1), "{name}: {v:#}");
        let err = &v["error"];
        assert_eq!(err["kind"], "manifest_invalid", "{name}: {v:#}");
        assert!(
            err["file"].as_str().is_some_and(|f| f.ends_with(name)),
            "{name}: {v:#}"
        );
        assert!(
            err["message"]
                .as_str()
                .is_some_and(|m| m.contains(&want.substring)),
            "{name}: {v:#}"
        );
        assert!(
            err["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{name}: {v:#}"
        );
        let diags = err["diagnostics"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no diagnostics: {v:#}"));
        let d = &diags[0];
        assert_eq!(d["line"].as_u64(), Some(want.line as u64), "{name}: {v:#}");
        assert_eq!(
            d["column"].as_u64(),
            Some(want.column as u64),
            "{name}: {v:#}"
        );
        assert!(
            d["message"]
                .as_str()
                .is_some_and(|m| m.contains(&want.substring)),
            "{name}: {v:#}"
        );
        assert!(
            d["hint"].as_str().is_some_and(|h| !h.is_empty()),
            "{name}: {v:#}"
        );
    }

    // `manifest hash` prints keccak256 of the file bytes; computed here with cast, not the crate's alloy.
    let path = fixture("ok_minimal.toml");
    let bytes = std::fs::read(&path).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let want = crate::support::anvil::cast_offline(&["keccak", &format!("0x{hex}")]);
    let (code, stdout, stderr) =
        run_binary(&["--manifest", path.to_str().unwrap(), "manifest", "hash"]);
    assert_eq!(
        code, 0,
        "manifest hash: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stdout.trim(), want.trim().to_lowercase());
    assert_eq!(want.len(), 66, "cast keccak printed {want:?}");
}

#[test]
fn ok_v2_multichain_contents() {
    let path = fixture("ok_v2_multichain.toml");
    let m = Manifest::load(&path).unwrap();
    assert!(m.is_multichain());
    assert_eq!(m.chain_names(), ["alpha", "beta", "gamma"]);
    // One identity for all chains: keccak256 of the file, the same in every view.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(m.hash, alloy::primitives::keccak256(&bytes));
    let views = m.all_chains();
    assert!(views.iter().all(|v| v.hash == m.hash && v.name == m.name));
    assert_eq!(
        views.iter().map(|v| v.chain_id).collect::<Vec<_>>(),
        [31337, 31338, 31339]
    );
    // Per chain: its own Safe and addresses; shared ABIs and proxy kinds; $vars substituted.
    let beta = m.on_chain("beta").unwrap();
    assert_eq!(
        beta.safe.as_ref().unwrap().address,
        address!("5AFe00000000000000000000000000000000B0B1")
    );
    assert_eq!(
        beta.contract("pool").unwrap().address,
        address!("b001000000000000000000000000000000000011")
    );
    assert!(matches!(
        beta.contract("vault").unwrap().proxy,
        ProxyKind::Uups
    ));
    let up = beta.action("upgrade-pool").unwrap();
    assert_eq!(
        up.args[0].1,
        Constraint::Eq(DynSolValue::Address(address!(
            "1a1b000000000000000000000000000000000013"
        )))
    );
    assert_eq!(
        up.expect[0].text,
        "implementation == 0x1a1b000000000000000000000000000000000013"
    );
    assert!(up.implementation_codehash.is_some());
    // gamma has no vault: its halt playbook does not exist there, patch does.
    let gamma = m.on_chain_id(31339).unwrap();
    assert!(gamma.playbook("halt").is_none());
    assert!(gamma.playbook("patch").is_some());
    assert!(gamma.contract("vault").is_none());
    assert_eq!(
        m.on_chain("31338").unwrap().chain_name.as_deref(),
        Some("beta")
    );
    assert!(m.on_chain("delta").is_none());
    assert!(m.on_chain_id(1).is_none());

    // A version-1 manifest is its own single view, unchanged.
    let v1 = Manifest::load(&fixture("ok_full.toml")).unwrap();
    assert!(!v1.is_multichain());
    assert_eq!(v1.on_chain_id(v1.chain_id).unwrap().hash, v1.hash);
    assert!(v1.on_chain_id(v1.chain_id + 1).is_none());
    assert_eq!(v1.all_chains().len(), 1);
}

#[test]
fn ok_v2_action_lists_and_shared_vars() {
    let m = Manifest::load(&fixture("ok_v2_action_lists.toml")).unwrap();
    // One action for a list of contracts: one action per contract on each chain, and the playbook takes
    // those that are there.
    let alpha = m.on_chain("alpha").unwrap();
    assert_eq!(
        alpha.playbook("halt").unwrap().actions,
        ["pause@pool", "pause@vault"]
    );
    assert_eq!(alpha.action("pause@vault").unwrap().contract, "vault");
    let gamma = m.on_chain("gamma").unwrap();
    assert_eq!(gamma.playbook("halt").unwrap().actions, ["pause@pool"]);
    assert!(gamma.action("pause@vault").is_none());
    // A shared [vars] value reaches every chain.
    let want: alloy::primitives::B256 =
        "0x5f1d4a8e2b0c0d9a6f4e3b2a1908f7e6d5c4b3a2918f7e6d5c4b3a2918f7e6d5"
            .parse()
            .unwrap();
    for v in m.all_chains() {
        assert_eq!(
            v.action("upgrade-pool").unwrap().implementation_codehash,
            Some(want),
            "{:?}",
            v.chain_name
        );
    }
}

/// `[[watch]]` rules of every kind load with what they say; the built-in rules cover the Safe (the pool is
/// not a proxy, so it has no slot rules); `watch_builtins = false` turns them off.
#[test]
fn ok_watch_rules_contents() {
    use breakglass::watch::{rules, SafeAspect, Severity, WatchKind};
    let path = fixture("ok_watch_rules.toml");
    let m = Manifest::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let all = rules(&m);
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "builtin:safe",
            "pool-paused",
            "pool-drain",
            "safe-owners",
            "big-deposit",
            "pool-slot0"
        ]
    );
    assert_eq!(all[1].playbook.as_deref(), Some("halt"));
    assert_eq!(all[1].severity, Severity::Warning);
    match &all[2].kind {
        WatchKind::BalanceDrop {
            percent,
            blocks,
            token,
            ..
        } => {
            assert_eq!((*percent, *blocks, token.is_none()), (20, 10, true))
        }
        k => panic!("{k:?}"),
    }
    match &all[3].kind {
        WatchKind::SafeChanged { what, .. } => {
            assert_eq!(what, &[SafeAspect::Owners, SafeAspect::Threshold])
        }
        k => panic!("{k:?}"),
    }
    match &all[4].kind {
        WatchKind::Event { event, filters, .. } => {
            // The selector is keccak256 of the canonical signature, as `cast sig-event` computes it.
            assert_eq!(
                format!("{:#x}", event.selector()),
                breakglass_cast(&["sig-event", "Deposited(address,uint256)"])
            );
            assert_eq!(filters.len(), 1);
            assert_eq!(filters[0].0, "amount");
        }
        k => panic!("{k:?}"),
    }
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "version = 1",
        "version = 1\nwatch_builtins = false",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(&p, text).unwrap();
    let m = Manifest::load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(rules(&m).iter().all(|r| !r.id.starts_with("builtin:")));
}

fn breakglass_cast(args: &[&str]) -> String {
    crate::support::anvil::cast_offline(args).trim().to_string()
}
