//! Issue 17: offline snapshots of the real Safe 1.4.1 and OpenZeppelin proxies on anvil. Recorded with
//! `eth_getProof`, verified against the block header, read back through `SnapshotSource` equal to the
//! node's `eth_getStorageAt`; any changed byte, another chain, a dropped entry refused; an address with
//! no account proven empty.

use crate::support::anvil::EIP1967_ADMIN_SLOT;
use crate::support::world::World;
use alloy::primitives::{address, Address, B256, U256};
use breakglass::chain::Chain;
use breakglass::simulate::snapshot::{record, Snapshot};
use breakglass::simulate::state::{AccountState, RpcSource, StateSource, Touched};
use breakglass::simulate::SimError;
use serde_json::{json, Value};
use std::time::Instant;

const IMPLEMENTATION_SLOT: &str =
    "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";
/// Never touched on the chain: no account.
const NOBODY: Address = address!("00000000000000000000000000000000000b0d1e");

fn a(s: &str) -> Address {
    s.parse().unwrap()
}

fn slot(s: &str) -> U256 {
    U256::from_be_bytes(s.parse::<B256>().unwrap().0)
}

/// The Safe (proxy) with slots 0 (singleton), 3 (owner count), 4 (threshold), 5 (nonce), the Safe
/// singleton, the transparent pool (implementation and admin slots, its `paused` slot 0), its
/// implementation and ProxyAdmin, the UUPS vault, and an address with no account.
fn touched(w: &World, singleton: Address, pool_impl: Address) -> Touched {
    let mut t = Touched::new();
    t.insert(
        a(&w.safe),
        [0u64, 3, 4, 5].into_iter().map(U256::from).collect(),
    );
    t.insert(singleton, Default::default());
    t.insert(
        a(&w.pool),
        [
            slot(IMPLEMENTATION_SLOT),
            slot(EIP1967_ADMIN_SLOT),
            U256::ZERO,
        ]
        .into_iter()
        .collect(),
    );
    t.insert(pool_impl, Default::default());
    t.insert(a(&w.pool_admin), [U256::ZERO].into_iter().collect());
    t.insert(
        a(&w.vault),
        [slot(IMPLEMENTATION_SLOT)].into_iter().collect(),
    );
    t.insert(NOBODY, [U256::from(1)].into_iter().collect());
    t
}

fn word_address(w: &World, at: &str, s: &str) -> Address {
    let v = w.anvil.storage(at, s);
    Address::from_word(v.parse().unwrap())
}

struct Recorded {
    w: World,
    snap: Snapshot,
    block: u64,
    touched: Touched,
}

fn recorded() -> Recorded {
    let w = World::deploy();
    let singleton = word_address(&w, &w.safe, "0x0");
    let pool_impl = word_address(&w, &w.pool, IMPLEMENTATION_SLOT);
    let touched = touched(&w, singleton, pool_impl);
    let chain = Chain::connect(&w.anvil.url, 31337).unwrap();
    let src = RpcSource::at(&chain, 31337, None).unwrap();
    let t0 = Instant::now();
    let snap = record(&chain, src.block(), &touched).unwrap();
    eprintln!("recorded in {:?}", t0.elapsed());
    let block = src.block().number;
    Recorded {
        w,
        snap,
        block,
        touched,
    }
}

fn node_word(w: &World, addr: Address, s: U256, block: u64) -> U256 {
    let v = w.anvil.rpc(
        "eth_getStorageAt",
        json!([addr, B256::from(s), format!("{block:#x}")]),
    );
    U256::from_be_bytes(v.as_str().unwrap().parse::<B256>().unwrap().0)
}

#[test]
fn a_snapshot_of_the_safe_and_proxies_verifies_and_reads_as_the_node() {
    let r = recorded();
    let bytes = r.snap.to_vec();
    let t0 = Instant::now();
    let src = Snapshot::from_slice(&bytes).unwrap().verify(31337).unwrap();
    let took = t0.elapsed();
    let slots: usize = r.touched.values().map(|s| s.len()).sum();
    let code: usize = r.snap.accounts.iter().map(|x| x.code.len()).sum();
    let proofs: usize = r
        .snap
        .accounts
        .iter()
        .flat_map(|x| {
            x.account_proof
                .iter()
                .chain(x.storage.iter().flat_map(|s| &s.proof))
        })
        .map(|n| n.len())
        .sum();
    // On this chain: 7 accounts, 10 slots, about 73 KB of JSON (hex doubles the bytes), most of it
    // code (the Safe singleton alone is about 23 KB).
    eprintln!(
        "snapshot of {} accounts and {slots} slots (Safe, singleton, pool, its implementation and \
         ProxyAdmin, vault, an absent address): {} bytes of JSON ({code} bytes of code, {proofs} \
         bytes of proof nodes, a {}-byte header); parsed and verified in {took:?}",
        r.touched.len(),
        bytes.len(),
        r.snap.header.len(),
    );
    assert!(bytes.len() < 200_000);
    assert_eq!(src.block().number, r.block);
    let chain = Chain::connect(&r.w.anvil.url, 31337).unwrap();
    let rpc = RpcSource::at(&chain, 31337, Some(r.block)).unwrap();
    assert_eq!(src.block(), rpc.block());
    for (addr, slots) in &r.touched {
        assert_eq!(
            src.account(*addr).unwrap(),
            rpc.account(*addr).unwrap(),
            "{addr}"
        );
        for s in slots {
            assert_eq!(
                src.storage(*addr, *s).unwrap(),
                node_word(&r.w, *addr, *s, r.block),
                "slot {s:#x} of {addr}"
            );
        }
    }
    // What the slots say: the Safe's 3 owners and threshold 2, nonce 0; the pool's implementation.
    let safe = a(&r.w.safe);
    assert_eq!(src.storage(safe, U256::from(3)).unwrap(), U256::from(3));
    assert_eq!(src.storage(safe, U256::from(4)).unwrap(), U256::from(2));
    assert_eq!(src.storage(safe, U256::from(5)).unwrap(), U256::ZERO);
    let imp = src
        .storage(a(&r.w.pool), slot(IMPLEMENTATION_SLOT))
        .unwrap();
    assert_eq!(
        Address::from_word(imp.into()),
        word_address(&r.w, &r.w.pool, IMPLEMENTATION_SLOT)
    );
    // The address with no account: an exclusion proof, read as empty (every slot zero).
    assert!(r.w.anvil.code(&NOBODY.to_string()) == "0x");
    assert!(!src.account_exists(NOBODY).unwrap());
    assert!(src.account_exists(safe).unwrap());
    assert_eq!(src.account(NOBODY).unwrap(), AccountState::default());
    assert_eq!(src.storage(NOBODY, U256::from(1)).unwrap(), U256::ZERO);
    // Anything else: missing, not zero.
    assert!(matches!(
        src.storage(safe, U256::from(6)),
        Err(SimError::MissingState(m)) if m == format!("slot 0x6 of {safe}")
    ));
    assert!(matches!(
        src.account(a(&r.w.timelock)),
        Err(SimError::MissingState(_))
    ));
}

fn hex_paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with("0x") && s.len() > 2 => out.push(at),
        Value::Array(x) => x
            .iter()
            .enumerate()
            .for_each(|(i, y)| hex_paths(y, format!("{at}/{i}"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, y)| hex_paths(y, format!("{at}/{k}"), out)),
        _ => {}
    }
}

#[test]
fn a_changed_byte_another_chain_or_a_dropped_entry_is_refused() {
    let r = recorded();
    let text: Value = serde_json::from_slice(&r.snap.to_vec()).unwrap();
    let mut paths = Vec::new();
    hex_paths(&text, String::new(), &mut paths);
    // Every hex string of the file, one hex digit changed at its start, middle and end.
    let chain = Chain::connect(&r.w.anvil.url, 31337).unwrap();
    let rpc = RpcSource::at(&chain, 31337, Some(r.block)).unwrap();
    let (mut tried, mut facts) = (0, 0);
    for p in &paths {
        let s = text.pointer(p).unwrap().as_str().unwrap();
        let mut positions = vec![2, 2 + (s.len() - 2) / 2, s.len() - 1];
        positions.dedup();
        for i in positions {
            let d = u8::from_str_radix(&s[i..=i], 16).unwrap() ^ 1;
            let mut t = text.clone();
            *t.pointer_mut(p).unwrap() = Value::String(format!("{}{d:x}{}", &s[..i], &s[i + 1..]));
            tried += 1;
            let changed = Snapshot::from_slice(&serde_json::to_vec(&t).unwrap());
            match changed.clone().and_then(|c| c.verify(31337)) {
                Err(SimError::Snapshot(_)) => {}
                // The key of a zero slot or the address of an absent account may share its exclusion
                // proof with the changed key: the changed snapshot must then state facts only.
                Ok(src) if p.ends_with("/key") || p.ends_with("/address") => {
                    for acc in &changed.unwrap().accounts {
                        let x = acc.address;
                        assert_eq!(src.account(x).unwrap(), rpc.account(x).unwrap(), "{p}");
                        for sp in &acc.storage {
                            let k = U256::from_be_bytes(sp.key.0);
                            assert_eq!(sp.value, node_word(&r.w, x, k, r.block), "{p}");
                        }
                    }
                    facts += 1;
                }
                other => panic!("{p} changed at {i}: {other:?}"),
            }
        }
    }
    eprintln!(
        "{tried} one-digit changes in {} hex fields: {} refused, {facts} still true (exclusion proofs)",
        paths.len(),
        tried - facts
    );

    // Another chain.
    assert!(matches!(r.snap.verify(1), Err(SimError::Snapshot(m)) if m.contains("chain 31337")));
    // A dropped storage entry, a dropped account: verified, and missing when read.
    let safe = a(&r.w.safe);
    let mut s = r.snap.clone();
    let i = s.accounts.iter().position(|x| x.address == safe).unwrap();
    let k = s.accounts[i]
        .storage
        .iter()
        .position(|x| x.key == B256::from(U256::from(4)))
        .unwrap();
    s.accounts[i].storage.remove(k);
    let src = s.verify(31337).unwrap();
    assert_eq!(
        src.storage(safe, U256::from(4)),
        Err(SimError::MissingState(format!("slot 0x4 of {safe}")))
    );
    s.accounts.remove(i);
    let src = s.verify(31337).unwrap();
    assert_eq!(
        src.account(safe),
        Err(SimError::MissingState(format!("account {safe}")))
    );
}
