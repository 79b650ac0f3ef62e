//! One protocol on anvil for the tests that run an incident end to end: a 2-of-3 Safe 1.4.1 (simulator
//! accounts 0 and 1, and a `cast`-made keystore owner) owning a transparent pool (and its ProxyAdmin) and a
//! UUPS vault; V2 implementations for both; a TimelockController (proposer and executor: the Safe) owning
//! its own pool; a pool owned directly by the guardian EOA (simulator account 0); the simulator, the
//! keystores, a sandbox, and the manifest of it all (`write_manifest`), pinned per file.
#![allow(dead_code)]

use crate::support::anvil::{
    address_of, cast_offline, Anvil, EIP1967_IMPLEMENTATION_SLOT, PAUSABLE_POOL_V2_ARTIFACT,
    UUPS_POOL_V2_ARTIFACT, ZERO_ADDRESS,
};
use crate::support::bin::{Run, Sandbox};
use crate::support::sim::SimProcess;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

/// The simulator's accounts (Speculos' seed, m/44'/60'/N'/0/0).
pub(crate) const SIM0: &str = "0xDad77910DbDFdE764fC21FCD4E74D71bBACA6D8D";
pub(crate) const SIM1: &str = "0x463e4e114AA57F54f2Fd2C3ec03572C6f75d84C2";
pub(crate) const SIM2: &str = "0x5DD37a819253D52EC6c31f0323bd17C20c1B4CC2";
/// The third Safe owner, held in a keystore (a test key, never used anywhere real).
pub(crate) const OWNER_KEY: &str =
    "0x0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
/// The executor that pays for `execTransaction`, in a keystore (not an owner).
pub(crate) const EXECUTOR_KEY: &str =
    "0xe1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1";
pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const TIMELOCK_DELAY: u64 = 3600;
pub(crate) const ONE_HUNDRED_ETH: u128 = 100_000_000_000_000_000_000;

// ------------------------------------------------------------------ the protocol on anvil

/// Which upgrades a manifest pins, and how.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Pins {
    /// `implementation_codehash` = keccak256 of the V2 runtime code.
    Right,
    /// `implementation_codehash` = keccak256 of the V1 pool's runtime code: not what is deployed at
    /// the V2 address.
    Wrong,
}

/// A protocol on anvil: a 2-of-3 Safe (simulator accounts 0 and 1, the keystore owner) owning a
/// transparent pool (and its ProxyAdmin) and a UUPS vault; V2 implementations for both; a
/// TimelockController (proposer and executor: the Safe) owning its own pool; and a pool owned directly by
/// the guardian EOA (simulator account 0). Plus the simulator, the keystores and a sandbox.
pub(crate) struct World {
    pub(crate) anvil: Anvil,
    pub(crate) sim: SimProcess,
    pub(crate) sb: Sandbox,
    pub(crate) safe: String,
    pub(crate) owner3: String,
    pub(crate) executor: String,
    pub(crate) pool: String,
    pub(crate) pool_admin: String,
    pub(crate) pool_v1: String,
    pub(crate) vault: String,
    pub(crate) pool_v2: String,
    pub(crate) vault_v2: String,
    pub(crate) timelock: String,
    pub(crate) tl_pool: String,
    pub(crate) tl_vault: String,
    pub(crate) g_pool: String,
    pub(crate) g_pool_admin: String,
    pub(crate) pins: RefCell<HashMap<String, String>>,
    /// Where the binary reaches the node (anvil itself, or a relay in front of it).
    pub(crate) rpc: RefCell<String>,
}

impl World {
    pub(crate) fn deploy() -> World {
        Self::deploy_on(Anvil::start())
    }

    pub(crate) fn deploy_on(anvil: Anvil) -> World {
        let sim = SimProcess::approving();
        let sb = Sandbox::new();
        let (owner3, executor) = keystores(&sb);
        anvil.set_balance(&executor, ONE_HUNDRED_ETH);

        let safe = anvil.deploy_safe(&[SIM0, SIM1, &owner3], 2);
        let (pool, pool_admin, pool_v1) = anvil.deploy_pausable_transparent(&safe);
        let (vault, _) = anvil.deploy_uups(&safe);
        let pool_v2 = anvil.deploy_artifact(PAUSABLE_POOL_V2_ARTIFACT, "", &[]);
        let vault_v2 = anvil.deploy_artifact(UUPS_POOL_V2_ARTIFACT, "", &[]);
        let timelock = anvil.deploy_timelock(TIMELOCK_DELAY, &[&safe], &[&safe], ZERO_ADDRESS);
        let (tl_pool, _, _) = anvil.deploy_pausable_transparent(&timelock);
        let (tl_vault, _) = anvil.deploy_uups(&timelock);
        let (g_pool, g_pool_admin, _) = anvil.deploy_pausable_transparent(SIM0);
        let rpc = RefCell::new(anvil.url.clone());
        World {
            anvil,
            sim,
            sb,
            safe,
            owner3,
            executor,
            pool,
            pool_admin,
            pool_v1,
            vault,
            pool_v2,
            vault_v2,
            timelock,
            tl_pool,
            tl_vault,
            g_pool,
            g_pool_admin,
            pins: RefCell::default(),
            rpc,
        }
    }

    pub(crate) fn codehash(&self, addr: &str) -> String {
        let code = self.anvil.code(addr);
        assert_ne!(code, "0x", "no code at {addr}");
        cast_offline(&["keccak", &code])
    }

    /// The manifest of this deployment, written to `file` (and pinned for [`World::bg`]).
    pub(crate) fn write_manifest(&self, file: &str, pins: Pins) {
        let text = self.manifest_text(pins, 31337);
        self.sb.write(file, text);
        let h = self.sb.run(&["--manifest", file, "manifest", "hash"]);
        ok(&h, "manifest hash");
        self.pins
            .borrow_mut()
            .insert(file.to_string(), h.stdout.trim().to_string());
    }

    /// A manifest of the caller's own text, written to `file` and pinned for [`World::bg`].
    pub(crate) fn write_manifest_text(&self, file: &str, text: &str) {
        self.sb.write(file, text);
        let h = self.sb.run(&["--manifest", file, "manifest", "hash"]);
        ok(&h, "manifest hash");
        self.pins
            .borrow_mut()
            .insert(file.to_string(), h.stdout.trim().to_string());
    }

    /// The manifest with more to compose: unpausing the pool and vault directly (`unhalt`), and the
    /// timelocked vault beside the timelocked pool (`resume-all`, a two-call timelock batch).
    pub(crate) fn manifest_text_extended(&self, pins: Pins, chain_id: u64) -> String {
        let abi = r#"abi = [
  "function pause()",
  "function unpause()",
  "function paused() view returns (bool)",
  "function version() view returns (string)",
]"#;
        format!(
            r#"{base}
[contracts.tlvault]
address = "{tl_vault}"
{abi}

[[actions]]
id = "unpause-pool"
title = "Unpause the lending pool"
contract = "pool"
function = "unpause()"
via = "safe"
expect = ["paused() == false"]

[[actions]]
id = "unpause-vault"
title = "Unpause the vault"
contract = "vault"
function = "unpause()"
via = "safe"
expect = ["paused() == false"]

[[actions]]
id = "unpause-tlvault"
title = "Resume the timelocked vault"
contract = "tlvault"
function = "unpause()"
via = "timelock"
expect = ["paused() == false"]

[[playbooks]]
id = "unhalt"
title = "Resume all markets"
actions = ["unpause-pool", "unpause-vault"]

[[playbooks]]
id = "resume-all"
title = "Schedule the resumption of the timelocked pool and vault"
actions = ["unpause-tlpool", "unpause-tlvault"]
"#,
            base = self.manifest_text(pins, chain_id),
            tl_vault = self.tl_vault,
        )
    }

    /// The manifest of this deployment (for `chain_id`, which a test may set to another chain's).
    pub(crate) fn manifest_text(&self, pins: Pins, chain_id: u64) -> String {
        let (pool_hash, vault_hash) = match pins {
            Pins::Right => (self.codehash(&self.pool_v2), self.codehash(&self.vault_v2)),
            Pins::Wrong => (self.codehash(&self.pool_v1), self.codehash(&self.pool_v1)),
        };
        let abi = r#"abi = [
  "function pause()",
  "function unpause()",
  "function paused() view returns (bool)",
  "function version() view returns (string)",
  "function owner() view returns (address)",
]"#;
        format!(
            r#"version = 1
name = "Acme Lending (execute_chain)"
chain_id = {chain_id}

[safe]
address = "{safe}"
version = "1.4.1"
owners = ["{sim0}", "{sim1}", "{owner3}"]
threshold = 2

[timelock]
address = "{timelock}"
min_delay = {delay}

[contracts.pool]
address = "{pool}"
proxy = "transparent"
proxy_admin = "{pool_admin}"
{abi}

[contracts.vault]
address = "{vault}"
proxy = "uups"
{abi}

[contracts.tlpool]
address = "{tl_pool}"
{abi}

[contracts.gpool]
address = "{g_pool}"
proxy = "transparent"
proxy_admin = "{g_pool_admin}"
{abi}

[[actions]]
id = "pause-pool"
title = "Pause the lending pool"
contract = "pool"
function = "pause()"
via = "safe"
expect = ["paused() == true", "owner() == {safe}"]

[[actions]]
id = "pause-vault"
title = "Pause the vault"
contract = "vault"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[actions]]
id = "upgrade-pool"
title = "Patch the pool: upgrade to the audited v2 implementation"
contract = "pool"
function = "upgrade"
via = "safe"
args = {{ implementation = {{ one_of = ["{pool_v2}"] }} }}
implementation_codehash = "{pool_hash}"
expect = ["implementation == {pool_v2}", "version() == 2"]

[[actions]]
id = "upgrade-vault"
title = "Patch the vault: upgrade to the audited v2 implementation"
contract = "vault"
function = "upgrade"
via = "safe"
args = {{ implementation = {{ eq = "{vault_v2}" }} }}
implementation_codehash = "{vault_hash}"
expect = ["implementation == {vault_v2}", 'version() == "2"', "version() != 1"]

[[actions]]
id = "unpause-tlpool"
title = "Resume the timelocked pool"
contract = "tlpool"
function = "unpause()"
via = "timelock"
expect = ["paused() == false"]

[[actions]]
id = "guardian-pause-pool"
title = "Pause the guardian's pool from the guardian account"
contract = "gpool"
function = "pause()"
via = "eoa"
expect = ["paused() == true"]

[[playbooks]]
id = "halt-pool"
title = "Halt the pool"
actions = ["pause-pool"]

[[playbooks]]
id = "halt"
title = "Halt all markets"
actions = ["pause-pool", "pause-vault"]

[[playbooks]]
id = "patch"
title = "Patch both contracts"
actions = ["upgrade-pool", "upgrade-vault"]

[[playbooks]]
id = "patch-pool"
title = "Patch the pool"
actions = ["upgrade-pool"]

[[playbooks]]
id = "resume"
title = "Schedule the timelocked pool's resumption"
actions = ["unpause-tlpool"]

[[playbooks]]
id = "guardian-halt"
title = "Pause the guardian's pool from the guardian EOA"
actions = ["guardian-pause-pool"]
"#,
            safe = self.safe,
            sim0 = SIM0,
            sim1 = SIM1,
            owner3 = self.owner3,
            timelock = self.timelock,
            delay = TIMELOCK_DELAY,
            pool = self.pool,
            pool_admin = self.pool_admin,
            vault = self.vault,
            tl_pool = self.tl_pool,
            g_pool = self.g_pool,
            g_pool_admin = self.g_pool_admin,
            pool_v2 = self.pool_v2,
            vault_v2 = self.vault_v2,
        )
    }

    /// `breakglass --manifest M --pin H [--rpc-url URL] ARGS`.
    pub(crate) fn bg(&self, manifest: &str, online: bool, args: &[&str]) -> Run {
        let pin = self
            .pins
            .borrow()
            .get(manifest)
            .cloned()
            .expect("write_manifest first");
        let rpc = self.rpc.borrow().clone();
        let mut a = vec!["--manifest", manifest, "--pin", &pin];
        if online {
            a.extend_from_slice(&["--rpc-url", &rpc]);
        }
        a.extend_from_slice(args);
        self.sb.run(&a)
    }

    pub(crate) fn bundle(&self, file: &str) -> Value {
        read_json(&self.sb.path(file))
    }

    /// compose (nonce from the node) → sign on the simulator (account 0) → sign with the keystore owner.
    /// Returns the name of the bundle holding both signatures.
    pub(crate) fn compose_and_sign(&self, m: &str, compose: &[&str], name: &str) -> String {
        let composed = format!("{name}.json");
        let mut a = vec!["compose"];
        a.extend_from_slice(compose);
        a.extend_from_slice(&["-o", &composed]);
        ok(&self.bg(m, true, &a), &format!("compose {compose:?}"));
        self.sign_twice(m, &composed, name)
    }

    pub(crate) fn sign_twice(&self, m: &str, composed: &str, name: &str) -> String {
        let s1 = format!("{name}-s1.json");
        let s2 = format!("{name}-s2.json");
        let r = self.bg(
            m,
            false,
            &[
                "sign",
                composed,
                "--speculos",
                &self.sim.addr,
                "--account",
                "0",
                "-o",
                &s1,
            ],
        );
        ok(&r, "sign on the simulator");
        let r = self.bg(
            m,
            false,
            &[
                "sign",
                &s1,
                "--keystore",
                "keystores/owner3",
                "--password-file",
                "password.txt",
                "-o",
                &s2,
            ],
        );
        ok(&r, "sign with the keystore");
        let b = self.bundle(&s2);
        let signers: Vec<String> = b["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["signer"].as_str().unwrap().to_ascii_lowercase())
            .collect();
        assert_eq!(signers.len(), 2, "{b}");
        assert!(signers.contains(&SIM0.to_ascii_lowercase()), "{signers:?}");
        assert!(
            signers.contains(&self.owner3.to_ascii_lowercase()),
            "{signers:?}"
        );
        s2
    }

    /// `execute` with the keystore executor.
    pub(crate) fn execute_keystore(&self, m: &str, bundle: &str, out: &str) -> Run {
        self.bg(
            m,
            true,
            &[
                "execute",
                bundle,
                "--keystore",
                "keystores/executor",
                "--password-file",
                "password.txt",
                "-o",
                out,
            ],
        )
    }

    /// `execute` with a simulator account as the executor.
    pub(crate) fn execute_sim(&self, m: &str, bundle: &str, account: u32, out: &str) -> Run {
        let n = account.to_string();
        self.bg(
            m,
            true,
            &[
                "execute",
                bundle,
                "--speculos",
                &self.sim.addr,
                "--account",
                &n,
                "-o",
                out,
            ],
        )
    }

    pub(crate) fn safe_nonce(&self) -> u128 {
        self.anvil.call_u128(&self.safe, "nonce()(uint256)", &[])
    }

    pub(crate) fn nonce(&self, addr: &str) -> u64 {
        self.anvil.cast(&["nonce", addr]).parse().unwrap()
    }

    pub(crate) fn paused(&self, addr: &str) -> bool {
        match self.anvil.call(addr, "paused()(bool)", &[]).as_str() {
            "true" => true,
            "false" => false,
            other => panic!("paused() on {addr}: {other}"),
        }
    }

    pub(crate) fn implementation(&self, proxy: &str) -> String {
        let w = self.anvil.storage(proxy, EIP1967_IMPLEMENTATION_SLOT);
        format!("0x{}", &w[w.len() - 40..])
    }

    pub(crate) fn version(&self, addr: &str) -> String {
        let v = self.anvil.call(addr, "version()(string)", &[]);
        v.trim_matches('"').to_string()
    }
}

// ------------------------------------------------------------------ helpers

/// The Safe's owners in order: simulator accounts 0 and 1, then the keystore owner.
pub(crate) fn owners() -> [String; 3] {
    [SIM0.to_string(), SIM1.to_string(), address_of(OWNER_KEY)]
}

/// The private key of owner `i` of [`owners`] (test keys: the simulator's are Speculos' public seed,
/// derived by `cast wallet private-key` at m/44'/60'/i'/0/0), for signing with `cast` independently of
/// the code under test.
pub(crate) fn owner_key(i: usize) -> String {
    match i {
        0 | 1 => {
            let path = format!("m/44'/60'/{i}'/0/0");
            let k = cast_offline(&[
                "wallet",
                "private-key",
                breakglass::signer::ledger::sim::SPECULOS_SEED,
                &path,
            ]);
            assert_eq!(
                address_of(&k).to_ascii_lowercase(),
                owners()[i].to_ascii_lowercase()
            );
            k
        }
        2 => OWNER_KEY.to_string(),
        _ => panic!("the Safe has three owners"),
    }
}

/// Writes the keystores of the third owner and the executor (made by `cast wallet import`) and the
/// password file into the sandbox; returns their addresses.
pub(crate) fn keystores(sb: &Sandbox) -> (String, String) {
    let owner3 = address_of(OWNER_KEY);
    let executor = address_of(EXECUTOR_KEY);
    let ks_dir = sb.path("keystores");
    std::fs::create_dir_all(&ks_dir).unwrap();
    let ks_dir_s = ks_dir.display().to_string();
    for (name, key) in [("owner3", OWNER_KEY), ("executor", EXECUTOR_KEY)] {
        cast_offline(&[
            "wallet",
            "import",
            name,
            "--private-key",
            key,
            "--unsafe-password",
            PASSWORD,
            "--keystore-dir",
            &ks_dir_s,
        ]);
        assert!(ks_dir.join(name).is_file(), "cast wrote no keystore {name}");
    }
    sb.write("password.txt", format!("{PASSWORD}\n"));
    (owner3, executor)
}

pub(crate) fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    );
}

pub(crate) fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub(crate) fn all_output(r: &Run) -> String {
    format!("{}\n{}", r.stdout, r.stderr)
}
