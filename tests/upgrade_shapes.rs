//! Issue 14 (upgrade shapes): upgrades as protocols run them today, each under `function = "upgrade"`
//! with `implementation_codehash` pinning, composed, signed, executed on anvil and read back from the
//! EIP-1967 slot: an OpenZeppelin 4 UUPS proxy upgraded with `upgradeTo(address)`, and an OZ 4
//! TransparentUpgradeableProxy upgraded through OZ 4's `ProxyAdmin.upgrade(address,address)` whose ABI in
//! the manifest names its arguments `_proxy` and `_implementation` (matching never depends on names). The
//! OZ 4 contracts are the real 4.9.6 artifacts from npm; the UUPS pools are compiled from
//! tests/contracts/UUPSPoolOZ4.sol against OZ 4.9.6.

use crate::support::anvil::{
    address_of, calldata, cast_offline, DEFAULT_KEYS, PAUSABLE_POOL_ARTIFACT,
    PAUSABLE_POOL_V2_ARTIFACT,
};
use crate::support::world::{all_output, ok, Pins, World};
use serde_json::json;

const OZ4_PROXY_ADMIN: &str = "@openzeppelin/contracts-v4/build/contracts/ProxyAdmin.json";
const OZ4_TRANSPARENT: &str =
    "@openzeppelin/contracts-v4/build/contracts/TransparentUpgradeableProxy.json";
const OZ5_ERC1967: &str = "@openzeppelin/contracts/build/contracts/ERC1967Proxy.json";
const UUPS_OZ4: &str = "contracts/UUPSPoolOZ4.json";
const UUPS_OZ4_V2: &str = "contracts/UUPSPoolOZ4V2.json";

#[test]
fn oz4_upgrade_shapes_compose_verify_and_execute() {
    let w = World::deploy();
    w.write_manifest("m.toml", Pins::Right);
    let a = &w.anvil;

    // OZ 4 UUPS behind an ERC1967Proxy, owned by the Safe.
    let uups_v1 = a.deploy_artifact(UUPS_OZ4, "", &[]);
    let uups = a.deploy_artifact(
        OZ5_ERC1967,
        "constructor(address,bytes)",
        &[&uups_v1, &calldata("initialize(address)", &[&w.safe])],
    );
    let uups_v2 = a.deploy_artifact(UUPS_OZ4_V2, "", &[]);

    // OZ 4 transparent proxy administered by an OZ 4 ProxyAdmin that the Safe owns.
    let admin = a.deploy_artifact(OZ4_PROXY_ADMIN, "", &[]);
    let deployer = address_of(DEFAULT_KEYS[0]);
    a.send_as(&deployer, &admin, "transferOwnership(address)", &[&w.safe]);
    let pool_v1 = a.deploy_artifact(PAUSABLE_POOL_ARTIFACT, "", &[]);
    let pool = a.deploy_artifact(
        OZ4_TRANSPARENT,
        "constructor(address,address,bytes)",
        &[
            &pool_v1,
            &admin,
            &calldata("initialize(address)", &[&w.safe]),
        ],
    );
    let pool_v2 = a.deploy_artifact(PAUSABLE_POOL_V2_ARTIFACT, "", &[]);

    let base = std::fs::read_to_string(w.sb.path("m.toml")).unwrap();
    let extra = format!(
        r#"
[contracts.oz4vault]
address = "{uups}"
proxy = "uups"
upgrade_call = "upgradeTo"
abi = ["function version() view returns (string)", "function paused() view returns (bool)"]

[contracts.oz4pool]
address = "{pool}"
proxy = "transparent"
proxy_admin = "{admin}"
upgrade_call = "upgrade"
abi = ["function version() view returns (string)"]

[contracts.oz4admin]
address = "{admin}"
abi = ["function upgrade(address _proxy, address _implementation)", "function upgradeAndCall(address _proxy, address _implementation, bytes _data) payable"]

[[actions]]
id = "upgrade-oz4vault"
title = "Patch the OZ 4 vault"
contract = "oz4vault"
function = "upgrade"
args = {{ implementation = {{ eq = "{uups_v2}" }} }}
implementation_codehash = "{uups_hash}"
expect = ["implementation == {uups_v2}", 'version() == "2"']

[[actions]]
id = "upgrade-oz4pool"
title = "Patch the OZ 4 pool"
contract = "oz4pool"
function = "upgrade"
args = {{ implementation = {{ eq = "{pool_v2}" }} }}
implementation_codehash = "{pool_hash}"
expect = ["implementation == {pool_v2}", "version() == 2"]

[[playbooks]]
id = "patch-oz4"
title = "Patch the OZ 4 deployments"
actions = ["upgrade-oz4vault", "upgrade-oz4pool"]
"#,
        uups_hash = w.codehash(&uups_v2),
        pool_hash = w.codehash(&pool_v2),
    );
    w.sb.write("oz4.toml", format!("{base}{extra}"));
    let h = w.sb.run(&["--manifest", "oz4.toml", "manifest", "hash"]);
    ok(&h, "manifest hash");
    w.pins
        .borrow_mut()
        .insert("oz4.toml".into(), h.stdout.trim().to_string());

    // The calls compose in the declared shapes.
    let signed = w.compose_and_sign("oz4.toml", &["patch-oz4"], "patch");
    let b = w.bundle("patch.json");
    let batch = b["safe_tx"]["data"].as_str().unwrap().to_ascii_lowercase();
    let upgrade_to = cast_offline(&["calldata", "upgradeTo(address)", &uups_v2]);
    let upgrade = cast_offline(&["calldata", "upgrade(address,address)", &pool, &pool_v2]);
    assert!(
        batch.contains(&upgrade_to[2..].to_ascii_lowercase()),
        "{batch}"
    );
    assert!(
        batch.contains(&upgrade[2..].to_ascii_lowercase()),
        "{batch}"
    );

    // Executed on chain: both proxies now point at the pinned V2 code.
    let r = w.execute_keystore("oz4.toml", &signed, "done.json");
    ok(&r, "execute");
    assert!(w.implementation(&uups).eq_ignore_ascii_case(&uups_v2));
    assert!(w.implementation(&pool).eq_ignore_ascii_case(&pool_v2));
    assert_eq!(w.version(&uups), "2");
    let done = w.bundle("done.json");
    assert!(
        done["postconditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["pass"] == json!(true)),
        "{done}"
    );

    // The other shape of each kind verifies too (a file from elsewhere may use it) …
    let uups_and_call = cast_offline(&[
        "calldata",
        "upgradeToAndCall(address,bytes)",
        &uups_v2,
        "0x",
    ]);
    let r = w.bg(
        "oz4.toml",
        false,
        &[
            "--json",
            "verify",
            "--safe",
            &w.safe,
            "--to",
            &uups,
            "--data",
            &uups_and_call,
        ],
    );
    assert_eq!(r.code, 0, "{}", all_output(&r));
    assert_eq!(r.json()["actions"], json!(["upgrade-oz4vault"]));
    let admin_and_call = cast_offline(&[
        "calldata",
        "upgradeAndCall(address,address,bytes)",
        &pool,
        &pool_v2,
        "0x",
    ]);
    let r = w.bg(
        "oz4.toml",
        false,
        &[
            "--json",
            "verify",
            "--safe",
            &w.safe,
            "--to",
            &admin,
            "--data",
            &admin_and_call,
        ],
    );
    assert_eq!(r.code, 0, "{}", all_output(&r));
    // … and an unpinned implementation in either shape is refused, named by its decoded value.
    let evil = "0x00000000000000000000000000000000000000e1";
    let bad = cast_offline(&["calldata", "upgrade(address,address)", &pool, evil]);
    let r = w.bg(
        "oz4.toml",
        false,
        &[
            "--json", "verify", "--safe", &w.safe, "--to", &admin, "--data", &bad,
        ],
    );
    assert_eq!(r.code, 3, "{}", all_output(&r));
    assert!(
        r.stdout.contains("looks like action upgrade-oz4pool"),
        "{}",
        r.stdout
    );
}
