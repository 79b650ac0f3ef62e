//! Smoke tests of the anvil test harness (tests/support/anvil.rs): the chain starts, the
//! pinned Safe / OpenZeppelin / project contracts deploy and answer as expected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::anvil::{
    address_of, artifact, Anvil, DEFAULT_ADDRESSES, DEFAULT_KEYS, EIP1967_IMPLEMENTATION_SLOT,
    MULTISEND_CALL_ONLY_141, PAUSABLE_POOL_V2_ARTIFACT, UUPS_POOL_V2_ARTIFACT, ZERO_ADDRESS,
};

fn eq_addr(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[test]
fn harness_default_keys_match_addresses() {
    for (key, addr) in DEFAULT_KEYS.iter().zip(DEFAULT_ADDRESSES) {
        assert_eq!(address_of(key), addr);
    }
}

#[test]
fn harness_anvil_starts_and_stops() {
    let anvil = Anvil::start();
    assert_eq!(anvil.cast(&["chain-id"]), "31337");
    let pid = anvil.pid();
    let url = anvil.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(anvil.balance(DEFAULT_ADDRESSES[0]) > 0);
    drop(anvil);
    // Killed and reaped: the PID is gone from /proc.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn harness_safe_2_of_3() {
    let anvil = Anvil::start();
    let owners = &DEFAULT_ADDRESSES[1..4];
    let safe = anvil.deploy_safe(owners, 2);

    let got = anvil.call(&safe, "getOwners()(address[])", &[]);
    let want = format!("[{}]", owners.join(", "));
    assert!(got.eq_ignore_ascii_case(&want), "owners {got} != {want}");
    assert_eq!(anvil.call(&safe, "getThreshold()(uint256)", &[]), "2");
    assert_eq!(anvil.call_u128(&safe, "nonce()(uint256)", &[]), 0);
    assert_eq!(anvil.call(&safe, "VERSION()(string)", &[]), "\"1.4.1\"");

    // Proxy points at the singleton (slot 0), MultiSendCallOnly sits at its canonical address.
    let infra = anvil.safe_infra();
    let slot0 = anvil.storage(&safe, "0x0");
    assert!(slot0
        .to_ascii_lowercase()
        .ends_with(&infra.singleton[2..].to_ascii_lowercase()));
    let (_, _, multisend_runtime) = artifact(crate::support::anvil::MULTISEND_CALL_ONLY_ARTIFACT);
    assert_eq!(anvil.code(MULTISEND_CALL_ONLY_141), multisend_runtime);

    // A second Safe with the same owners gets another address.
    let other = anvil.deploy_safe(owners, 2);
    assert!(!eq_addr(&safe, &other));
}

#[test]
fn harness_transparent_pausable_owned_by_safe() {
    let anvil = Anvil::start();
    let safe = anvil.deploy_safe(&DEFAULT_ADDRESSES[1..4], 2);
    let (proxy, proxy_admin, implementation) = anvil.deploy_pausable_transparent(&safe);

    assert_eq!(anvil.call(&proxy, "paused()(bool)", &[]), "false");
    assert_eq!(anvil.call(&proxy, "version()(string)", &[]), "\"1\"");
    assert!(eq_addr(&anvil.call(&proxy, "owner()(address)", &[]), &safe));
    assert!(eq_addr(
        &anvil.call(&proxy_admin, "owner()(address)", &[]),
        &safe
    ));
    assert_eq!(
        anvil.call(&proxy_admin, "UPGRADE_INTERFACE_VERSION()(string)", &[]),
        "\"5.0.0\""
    );
    assert!(!eq_addr(&implementation, &proxy));

    // Only the owner (the Safe) may pause; a stranger's call reverts.
    assert!(anvil
        .send_try(DEFAULT_KEYS[5], &proxy, "pause()", &[])
        .is_err());
    anvil.send_as(&safe, &proxy, "pause()", &[]);
    assert_eq!(anvil.call(&proxy, "paused()(bool)", &[]), "true");

    // The Safe upgrades through the ProxyAdmin to V2; state survives.
    let v2 = anvil.deploy_artifact(PAUSABLE_POOL_V2_ARTIFACT, "", &[]);
    anvil.send_as(
        &safe,
        &proxy_admin,
        "upgradeAndCall(address,address,bytes)",
        &[&proxy, &v2, "0x"],
    );
    assert_eq!(anvil.call(&proxy, "version()(string)", &[]), "\"2\"");
    assert_eq!(anvil.call(&proxy, "paused()(bool)", &[]), "true");
    let slot = anvil.storage(&proxy, EIP1967_IMPLEMENTATION_SLOT);
    assert!(slot
        .to_ascii_lowercase()
        .ends_with(&v2[2..].to_ascii_lowercase()));
}

#[test]
fn harness_uups_and_timelock() {
    let anvil = Anvil::start();
    let owner = DEFAULT_ADDRESSES[1];
    let (proxy, implementation) = anvil.deploy_uups(owner);
    assert_eq!(anvil.call(&proxy, "version()(string)", &[]), "\"1\"");
    assert_eq!(anvil.call(&proxy, "paused()(bool)", &[]), "false");
    assert!(eq_addr(&anvil.call(&proxy, "owner()(address)", &[]), owner));
    let slot = anvil.storage(&proxy, EIP1967_IMPLEMENTATION_SLOT);
    assert!(slot
        .to_ascii_lowercase()
        .ends_with(&implementation[2..].to_ascii_lowercase()));

    // The owner pauses and upgrades through the proxy itself (UUPS).
    anvil.send(DEFAULT_KEYS[1], &proxy, "pause()", &[]);
    let v2 = anvil.deploy_artifact(UUPS_POOL_V2_ARTIFACT, "", &[]);
    assert!(anvil
        .send_try(
            DEFAULT_KEYS[2],
            &proxy,
            "upgradeToAndCall(address,bytes)",
            &[&v2, "0x"]
        )
        .is_err());
    anvil.send(
        DEFAULT_KEYS[1],
        &proxy,
        "upgradeToAndCall(address,bytes)",
        &[&v2, "0x"],
    );
    assert_eq!(anvil.call(&proxy, "version()(string)", &[]), "\"2\"");
    assert_eq!(anvil.call(&proxy, "paused()(bool)", &[]), "true");

    let timelock =
        anvil.deploy_timelock(3600, &[DEFAULT_ADDRESSES[1]], &[ZERO_ADDRESS], ZERO_ADDRESS);
    assert_eq!(
        anvil.call_u128(&timelock, "getMinDelay()(uint256)", &[]),
        3600
    );
    let proposer_role = anvil.call(&timelock, "PROPOSER_ROLE()(bytes32)", &[]);
    assert_eq!(
        anvil.call(
            &timelock,
            "hasRole(bytes32,address)(bool)",
            &[&proposer_role, DEFAULT_ADDRESSES[1]]
        ),
        "true"
    );
}
