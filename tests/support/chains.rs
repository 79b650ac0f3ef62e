//! One protocol on three chains for issue 15's tests: three anvils (chain ids 31337, 31338, 31339), each
//! with the real Safe 1.4.1 (2 of 3: simulator accounts 0 and 1, the keystore owner) owning an OZ 5
//! transparent pool and a UUPS vault, at different addresses on each chain; the binary reaches each node
//! through a relay the test can take down, named in a local RPC config (`rpc.toml`); the version-2
//! manifest of it all.
#![allow(dead_code)]

use crate::support::anvil::{
    cast_offline, Anvil, PAUSABLE_POOL_ARTIFACT, PAUSABLE_POOL_V2_ARTIFACT,
};
use crate::support::bin::{Run, Sandbox};
use crate::support::relay::Relay;
use crate::support::sim::SimProcess;
use crate::support::world::{all_output, keystores, ok, ONE_HUNDRED_ETH, SIM0, SIM1};

pub(crate) const CHAINS: [(&str, u64); 3] = [("alpha", 31337), ("beta", 31338), ("gamma", 31339)];

pub(crate) struct Deployment {
    pub(crate) name: &'static str,
    pub(crate) anvil: Anvil,
    pub(crate) relay: Relay,
    pub(crate) safe: String,
    pub(crate) pool: String,
    pub(crate) pool_admin: String,
    pub(crate) vault: String,
    pub(crate) pool_v2: String,
}

impl Deployment {
    pub(crate) fn deploy(i: usize, owner3: &str, executor: &str) -> Deployment {
        let (name, id) = CHAINS[i];
        let anvil = Anvil::start_chain(id, &[]);
        // Different addresses on each chain, as real deployments usually have.
        anvil.skip_salts(i as u64 + 1);
        for _ in 0..i {
            anvil.deploy_artifact(PAUSABLE_POOL_ARTIFACT, "", &[]);
        }
        anvil.set_balance(executor, ONE_HUNDRED_ETH);
        let safe = anvil.deploy_safe(&[SIM0, SIM1, owner3], 2);
        let (pool, pool_admin, _) = anvil.deploy_pausable_transparent(&safe);
        let (vault, _) = anvil.deploy_uups(&safe);
        let pool_v2 = anvil.deploy_artifact(PAUSABLE_POOL_V2_ARTIFACT, "", &[]);
        let relay = Relay::start(anvil.port);
        Deployment {
            name,
            anvil,
            relay,
            safe,
            pool,
            pool_admin,
            vault,
            pool_v2,
        }
    }

    pub(crate) fn paused(&self, addr: &str) -> bool {
        self.anvil.call(addr, "paused()(bool)", &[]) == "true"
    }

    pub(crate) fn implementation(&self) -> String {
        let w = self.anvil.storage(
            &self.pool,
            crate::support::anvil::EIP1967_IMPLEMENTATION_SLOT,
        );
        format!("0x{}", &w[w.len() - 40..]).to_ascii_lowercase()
    }

    pub(crate) fn executor_nonce(&self, executor: &str) -> u64 {
        self.anvil.cast(&["nonce", executor]).parse().unwrap()
    }
}

pub(crate) struct Incident {
    pub(crate) sb: Sandbox,
    pub(crate) sim: SimProcess,
    pub(crate) owner3: String,
    pub(crate) executor: String,
    pub(crate) chains: Vec<Deployment>,
    pub(crate) pins: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

impl Incident {
    pub(crate) fn deploy() -> Incident {
        let sb = Sandbox::new();
        let sim = SimProcess::approving();
        let (owner3, executor) = keystores(&sb);
        let chains = std::thread::scope(|s| {
            let hs: Vec<_> = (0..CHAINS.len())
                .map(|i| {
                    let (o, e) = (owner3.clone(), executor.clone());
                    s.spawn(move || Deployment::deploy(i, &o, &e))
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        let rpc: String = chains
            .iter()
            .map(|c| format!("{} = \"{}\"\n", c.name, c.relay.url()))
            .collect();
        sb.write("rpc.toml", rpc);
        Incident {
            sb,
            sim,
            owner3,
            executor,
            chains,
            pins: Default::default(),
        }
    }

    pub(crate) fn chain(&self, name: &str) -> &Deployment {
        self.chains.iter().find(|c| c.name == name).unwrap()
    }

    /// The version-2 manifest of the three deployments; `patched_version` per chain is what the patch's
    /// post-condition expects `version()` to return.
    pub(crate) fn write_manifest(&self, file: &str, patched_version: [&str; 3]) {
        let code = self.chains[0].anvil.code(&self.chains[0].pool_v2);
        let codehash = cast_offline(&["keccak", &code]);
        let abi = r#"abi = [
  "function pause()",
  "function unpause()",
  "function paused() view returns (bool)",
  "function version() view returns (string)",
]"#;
        let mut text = format!(
            r#"version = 2
name = "Acme Lending (three chains)"

[contracts.pool]
proxy = "transparent"
{abi}

[contracts.vault]
proxy = "uups"
{abi}

[[actions]]
id = "pause-pool"
title = "Pause the lending pool"
contract = "pool"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[actions]]
id = "pause-vault"
title = "Pause the vault"
contract = "vault"
function = "pause()"
via = "safe"
expect = ["paused() == true"]

[[actions]]
id = "upgrade-pool"
title = "Patch the pool"
contract = "pool"
function = "upgrade"
via = "safe"
args = {{ implementation = {{ eq = "$pool_v2" }} }}
implementation_codehash = "$pool_v2_codehash"
expect = ["implementation == $pool_v2", 'version() == "$patched_version"']

[[playbooks]]
id = "halt"
title = "Halt all markets"
actions = ["pause-pool", "pause-vault"]

[[playbooks]]
id = "patch"
title = "Patch the pool"
actions = ["upgrade-pool"]
"#
        );
        for (c, v) in self.chains.iter().zip(patched_version) {
            let (_, id) = CHAINS.iter().find(|(n, _)| *n == c.name).unwrap();
            text.push_str(&format!(
                r#"
[chains.{name}]
chain_id = {id}
safe = {{ address = "{safe}", version = "1.4.1", owners = ["{sim0}", "{sim1}", "{owner3}"], threshold = 2 }}
contracts.pool = {{ address = "{pool}", proxy_admin = "{pool_admin}" }}
contracts.vault = {{ address = "{vault}" }}
vars = {{ pool_v2 = "{pool_v2}", pool_v2_codehash = "{codehash}", patched_version = "{v}" }}
"#,
                name = c.name,
                safe = c.safe,
                sim0 = SIM0,
                sim1 = SIM1,
                owner3 = self.owner3,
                pool = c.pool,
                pool_admin = c.pool_admin,
                vault = c.vault,
                pool_v2 = c.pool_v2,
            ));
        }
        self.sb.write(file, text);
        let h = self.sb.run(&["--manifest", file, "manifest", "hash"]);
        ok(&h, "manifest hash");
        self.pins
            .borrow_mut()
            .insert(file.into(), h.stdout.trim().to_string());
    }

    pub(crate) fn bg(&self, m: &str, args: &[&str]) -> Run {
        let pin = self.pins.borrow()[m].clone();
        let mut a = vec!["--manifest", m, "--pin", &pin, "--rpc-config", "rpc.toml"];
        a.extend_from_slice(args);
        self.sb.run(&a)
    }

    /// compose on every chain, then two owners sign all three bundles in one sitting each.
    pub(crate) fn compose_and_sign(&self, m: &str, playbook: &str) -> Vec<String> {
        self.compose_and_sign_with(m, playbook, &[])
    }

    /// [`Self::compose_and_sign`] with extra `compose` arguments (e.g. `--no-simulate`).
    pub(crate) fn compose_and_sign_with(
        &self,
        m: &str,
        playbook: &str,
        extra: &[&str],
    ) -> Vec<String> {
        let out = format!("{playbook}.json");
        let mut args = vec!["compose", playbook, "--chains", "all", "-o", &out];
        args.extend_from_slice(extra);
        let r = self.bg(m, &args);
        ok(&r, "compose on three chains");
        let files: Vec<String> = CHAINS
            .iter()
            .map(|(n, _)| format!("{playbook}-{n}.json"))
            .collect();
        for f in &files {
            assert!(
                self.sb.path(f).is_file(),
                "{f} not written: {}",
                all_output(&r)
            );
        }
        let mut sign = vec!["sign"];
        if extra.contains(&"--no-simulate") {
            sign.push("--no-simulate");
        }
        sign.extend(files.iter().map(String::as_str));
        let mut sim = sign.clone();
        sim.extend_from_slice(&["--speculos", &self.sim.addr, "--account", "0", "--in-place"]);
        let r = self.bg(m, &sim);
        ok(&r, "simulator signs three chains");
        assert_eq!(
            r.stdout.matches("signed by").count(),
            3,
            "one confirmation per chain: {}",
            r.stdout
        );
        let mut ks = sign;
        ks.extend_from_slice(&[
            "--keystore",
            "keystores/owner3",
            "--password-file",
            "password.txt",
            "--in-place",
        ]);
        ok(&self.bg(m, &ks), "keystore owner signs three chains");
        files
    }

    pub(crate) fn execute(&self, m: &str, files: &[String], extra: &[&str]) -> Run {
        let mut a = vec!["--json", "execute"];
        a.extend(files.iter().map(String::as_str));
        a.extend_from_slice(&[
            "--keystore",
            "keystores/executor",
            "--password-file",
            "password.txt",
            "--in-place",
        ]);
        a.extend_from_slice(extra);
        self.bg(m, &a)
    }
}
