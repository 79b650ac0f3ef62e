//! Drill mode: the whole incident on built-in pieces, with no network and no hardware. A local anvil
//! node (from the project's pinned npm tools) gets the real Safe 1.4.1, MultiSendCallOnly at its
//! canonical address, OpenZeppelin 5 proxies and timelock, and the project's pausable pools; the demo
//! manifest is rewritten with those addresses; the built-in Ledger simulator signs for the guardians.
//! Everything here is labelled DRILL.

use crate::chain::{Chain, ChainError};
use crate::signer::ledger::sim::{self, SimConfig};
use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy::sol;
use alloy::sol_types::SolCall;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo manifest, built into the binary.
pub const DEMO_MANIFEST: &str = include_str!("../examples/demo.toml");

/// anvil's first default account (unlocked on anvil; a public test key).
const DEPLOYER: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
const MSCO_141: Address = address!("9641d764fc13c8B624c04430C7356C1C7C8102e2");

sol! {
    function setup(address[] _owners, uint256 _threshold, address to, bytes data, address fallbackHandler, address paymentToken, uint256 payment, address paymentReceiver) external;
    function createProxyWithNonce(address _singleton, bytes initializer, uint256 saltNonce) external returns (address proxy);
    function initialize(address owner_) external;
}

/// Why the drill could not start.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The pinned tools are not installed.
    #[error("the drill needs the project's pinned tools (anvil and the contract artifacts) in {0}: run scripts/drill.sh, which installs them")]
    NoTools(String),
    /// An artifact is missing or malformed.
    #[error("artifact {0}: {1}")]
    Artifact(String, String),
    /// anvil did not start.
    #[error("cannot start anvil: {0}")]
    Anvil(String),
    /// A chain step failed.
    #[error("drill setup on the local chain failed: {0}")]
    Chain(#[from] ChainError),
    /// A file could not be written.
    #[error("drill setup: {0}")]
    Io(String),
}

/// Where the pinned tools are: `BREAKGLASS_TOOLS`, `./.tools`, or the repository the binary was built in.
pub fn tools_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BREAKGLASS_TOOLS") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from(".tools");
    if local.join("npm").exists() {
        return local;
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools");
    if built.exists() {
        return built;
    }
    local
}

/// A running drill: a local chain, the simulator, and the drill manifest.
pub struct Drill {
    anvil: Child,
    /// The local node's URL.
    pub rpc_url: String,
    /// The simulator's address (HOST:PORT).
    pub sim_addr: String,
    /// The generated drill manifest.
    pub manifest_path: PathBuf,
    /// Its hash (the drill pins it for the session).
    pub manifest_hash: B256,
    /// The working directory (bundles are written here).
    pub dir: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Drop for Drill {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }
}

fn artifact(tools: &Path, rel: &str) -> Result<(Bytes, Bytes), DrillError> {
    let candidates = [
        tools.join("npm/node_modules").join(rel),
        tools.join("contracts").join(rel),
    ];
    let path = candidates
        .iter()
        .find(|p| p.exists())
        .ok_or_else(|| DrillError::NoTools(tools.display().to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(path).map_err(|e| DrillError::Artifact(rel.into(), e.to_string()))?,
    )
    .map_err(|e| DrillError::Artifact(rel.into(), e.to_string()))?;
    let get = |k: &str| -> Result<Bytes, DrillError> {
        let s = v
            .get(k)
            .and_then(|x| x.as_str())
            .ok_or_else(|| DrillError::Artifact(rel.into(), format!("no {k}")))?;
        let s = if s.starts_with("0x") {
            s.to_string()
        } else {
            format!("0x{s}")
        };
        s.parse()
            .map_err(|_| DrillError::Artifact(rel.into(), format!("{k} is not hex")))
    };
    Ok((get("bytecode")?, get("deployedBytecode")?))
}

/// A project contract's storage layout (solc's `storageLayout`, kept in its artifact), written to
/// `dir/layouts/NAME.json`; returns the manifest's `storage_layout` half for it: (path, keccak256).
fn write_layout(tools: &Path, dir: &Path, name: &str) -> Result<(String, B256), DrillError> {
    let rel = format!("{name}.json");
    let path = tools.join("contracts").join(&rel);
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).map_err(|e| DrillError::Artifact(rel.clone(), e.to_string()))?,
    )
    .map_err(|e| DrillError::Artifact(rel.clone(), e.to_string()))?;
    let layout = v.get("storageLayout").ok_or_else(|| {
        DrillError::Artifact(
            rel.clone(),
            "no storageLayout (run scripts/setup.sh again)".into(),
        )
    })?;
    let bytes = serde_json::to_vec_pretty(layout).map_err(|e| DrillError::Io(e.to_string()))?;
    let out = format!("layouts/{name}.json");
    std::fs::create_dir_all(dir.join("layouts")).map_err(|e| DrillError::Io(e.to_string()))?;
    std::fs::write(dir.join(&out), &bytes).map_err(|e| DrillError::Io(e.to_string()))?;
    Ok((out, keccak256(&bytes)))
}

fn free_port() -> Result<u16, DrillError> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| DrillError::Anvil(e.to_string()))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| DrillError::Anvil(e.to_string()))
}

fn send(chain: &Chain, to: Option<Address>, data: Bytes) -> Result<Option<Address>, DrillError> {
    let mut tx = serde_json::json!({ "from": DEPLOYER, "data": data, "gas": "0x1c9c380" });
    if let Some(t) = to {
        tx["to"] = serde_json::json!(t);
    }
    let hash: B256 = chain.rpc("eth_sendTransaction", (tx,))?;
    let receipt = chain.wait_receipt(hash, Duration::from_secs(20), |_, _| {})?;
    if !receipt.status() {
        return Err(DrillError::Chain(ChainError::Call(format!(
            "drill setup transaction {hash:#x} reverted"
        ))));
    }
    Ok(receipt.contract_address)
}

fn deploy(chain: &Chain, code: &Bytes, args: &[u8]) -> Result<Address, DrillError> {
    let mut data = code.to_vec();
    data.extend_from_slice(args);
    send(chain, None, data.into())?
        .ok_or_else(|| DrillError::Chain(ChainError::Call("no contract address".into())))
}

impl Drill {
    /// Builds the drill's pre-signed pause ladder (three rungs of `halt-ladder` from the Safe's nonce),
    /// signed by owners 0 and 1 on a simulator without the drill's simulated person, written to
    /// `dir/halt.ladder` (mode 0600). Returns its path.
    pub fn presign_ladder(&self, progress: &mut dyn FnMut(&str)) -> Result<PathBuf, DrillError> {
        use crate::incident::Session;
        use crate::signer::ledger::apdu::ledger_live_path;
        use crate::signer::ledger::{LedgerSigner, TcpTransport};
        progress("DRILL: pre-signing a pause ladder (3 rungs of halt-ladder, owners 0 and 1)…");
        let err = |e: crate::incident::IncidentError| DrillError::Io(e.to_string());
        let session = Session {
            manifest: crate::manifest::Manifest::load(&self.manifest_path)
                .map_err(|e| DrillError::Io(e.to_string()))?,
            trust: crate::manifest::trust::Trust::Pinned {
                source: "DRILL".into(),
            },
            rpc_url: Some(self.rpc_url.clone()),
            rpc_urls: Default::default(),
            audit: crate::audit::AuditLog::new(self.dir.join("ladder-audit.jsonl")),
            front_end: crate::incident::FrontEnd::Drill,
            simulate: Default::default(),
        };
        let mut l = session.build_ladder("halt-ladder", 3, None).map_err(err)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| DrillError::Io(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| DrillError::Io(e.to_string()))?
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let server = std::thread::spawn(move || sim::serve(listener, SimConfig::default(), stop2));
        let result = (|| {
            for account in 0..2 {
                let t = TcpTransport::connect(&addr, Duration::from_secs(10))
                    .map_err(|e| DrillError::Io(e.to_string()))?;
                let mut s = LedgerSigner::new(Box::new(t), ledger_live_path(account));
                for i in 0..l.rungs.len() {
                    let mut one = session.clone();
                    one.simulate.skip = true;
                    let ready = one.prepare_signing(&l.rungs[i]).map_err(err)?;
                    l.rungs[i] = one.sign(&ready, &mut s).map_err(err)?.0;
                }
            }
            Ok::<(), DrillError>(())
        })();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = server.join();
        result?;
        let path = self.dir.join("halt.ladder");
        l.write(&path, true)
            .map_err(|e| DrillError::Io(e.to_string()))?;
        Ok(path)
    }

    /// Starts anvil, deploys the demo protocol, writes the drill manifest, starts the simulator.
    pub fn start(progress: &mut dyn FnMut(&str)) -> Result<Self, DrillError> {
        let tools = tools_dir();
        let anvil_bin = tools.join("npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if !anvil_bin.exists() {
            return Err(DrillError::NoTools(tools.display().to_string()));
        }
        let dir = std::env::temp_dir().join(format!("breakglass-drill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| DrillError::Io(e.to_string()))?;
        progress("DRILL: starting a local chain (anvil on 127.0.0.1)…");
        let port = free_port()?;
        let mut anvil = Command::new(&anvil_bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--chain-id",
                "31337",
                "--quiet",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DrillError::Anvil(e.to_string()))?;
        let rpc_url = format!("http://127.0.0.1:{port}");
        let t0 = Instant::now();
        let chain = loop {
            match Chain::connect(&rpc_url, 31337) {
                Ok(c) => break c,
                Err(_) if t0.elapsed() < Duration::from_secs(15) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => {
                    let _ = anvil.kill();
                    return Err(DrillError::Anvil(e.to_string()));
                }
            }
        };
        let result = Self::deploy_all(&chain, &tools, &dir, progress);
        let (manifest_path, manifest_hash) = match result {
            Ok(x) => x,
            Err(e) => {
                let _ = anvil.kill();
                let _ = anvil.wait();
                return Err(e);
            }
        };
        progress(&format!(
            "DRILL: local chain at {rpc_url}, drill files in {}; the console watches this chain",
            dir.display()
        ));
        progress("DRILL: starting the built-in Ledger simulator…");
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| DrillError::Io(e.to_string()))?;
        let sim_addr = listener
            .local_addr()
            .map_err(|e| DrillError::Io(e.to_string()))?
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        // The recommended settings: "Raw messages" on, so the simulated device shows every field of the
        // Safe transaction, as the console's Sign screen previews it.
        let cfg = SimConfig {
            approve_delay: Duration::from_millis(400),
            raw_messages: true,
            ..Default::default()
        };
        std::thread::spawn(move || sim::serve(listener, cfg, stop2));
        Ok(Self {
            anvil,
            rpc_url,
            sim_addr,
            manifest_path,
            manifest_hash,
            dir,
            stop,
        })
    }

    fn deploy_all(
        chain: &Chain,
        tools: &Path,
        dir: &Path,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(PathBuf, B256), DrillError> {
        let a = |rel: &str| artifact(tools, rel);
        progress(
            "DRILL: deploying Safe 1.4.1, MultiSendCallOnly, OpenZeppelin 5 proxies and timelock…",
        );
        let (safe_code, _) =
            a("@safe-global/safe-contracts/build/artifacts/contracts/Safe.sol/Safe.json")?;
        let (factory_code, _) = a("@safe-global/safe-contracts/build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json")?;
        let (handler_code, _) = a("@safe-global/safe-contracts/build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json")?;
        let (_, msco_runtime) = a("@safe-global/safe-contracts/build/artifacts/contracts/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json")?;
        let (tup_code, _) =
            a("@openzeppelin/contracts/build/contracts/TransparentUpgradeableProxy.json")?;
        let (erc1967_code, _) = a("@openzeppelin/contracts/build/contracts/ERC1967Proxy.json")?;
        let (timelock_code, _) =
            a("@openzeppelin/contracts/build/contracts/TimelockController.json")?;
        let (pool_code, _) = a("PausablePool.json")?;
        let (pool2_code, _) = a("PausablePoolV2.json")?;
        let (uups_code, _) = a("UUPSPool.json")?;
        let (uups2_code, _) = a("UUPSPoolV2.json")?;

        let singleton = deploy(chain, &safe_code, &[])?;
        let factory = deploy(chain, &factory_code, &[])?;
        let handler = deploy(chain, &handler_code, &[])?;
        chain.rpc::<_, serde_json::Value>("anvil_setCode", (MSCO_141, msco_runtime))?;

        let owners = vec![
            address!("Dad77910DbDFdE764fC21FCD4E74D71bBACA6D8D"),
            address!("463e4e114AA57F54f2Fd2C3ec03572C6f75d84C2"),
            address!("5DD37a819253D52EC6c31f0323bd17C20c1B4CC2"),
        ];
        let init: Bytes = setupCall {
            _owners: owners.clone(),
            _threshold: U256::from(2),
            to: Address::ZERO,
            data: Bytes::new(),
            fallbackHandler: handler,
            paymentToken: Address::ZERO,
            payment: U256::ZERO,
            paymentReceiver: Address::ZERO,
        }
        .abi_encode()
        .into();
        let create: Bytes = createProxyWithNonceCall {
            _singleton: singleton,
            initializer: init,
            saltNonce: U256::from(31337),
        }
        .abi_encode()
        .into();
        let out = chain.call_from(Some(DEPLOYER), factory, create.clone())?;
        let safe = createProxyWithNonceCall::abi_decode_returns(&out)
            .map_err(|e| DrillError::Chain(ChainError::Call(e.to_string())))?;
        send(chain, Some(factory), create)?;
        for o in &owners {
            chain
                .rpc::<_, serde_json::Value>("anvil_setBalance", (o, U256::from(10u128.pow(20))))?;
        }

        let init_safe: Bytes = initializeCall { owner_: safe }.abi_encode().into();
        let ctor = |vals: Vec<DynSolValue>| DynSolValue::Tuple(vals).abi_encode_params();
        let pool_impl = deploy(chain, &pool_code, &[])?;
        let pool = deploy(
            chain,
            &tup_code,
            &ctor(vec![
                DynSolValue::Address(pool_impl),
                DynSolValue::Address(safe),
                DynSolValue::Bytes(init_safe.to_vec()),
            ]),
        )?;
        let admin_word = chain.storage(pool, crate::manifest::ProxySlot::Admin.slot())?;
        let proxy_admin = Address::from_slice(&admin_word[12..]);
        let uups_impl = deploy(chain, &uups_code, &[])?;
        let vault = deploy(
            chain,
            &erc1967_code,
            &ctor(vec![
                DynSolValue::Address(uups_impl),
                DynSolValue::Bytes(init_safe.to_vec()),
            ]),
        )?;
        let pool_v2 = deploy(chain, &pool2_code, &[])?;
        let vault_v2 = deploy(chain, &uups2_code, &[])?;
        let timelock = deploy(
            chain,
            &timelock_code,
            &ctor(vec![
                DynSolValue::Uint(U256::from(86400), 256),
                DynSolValue::Array(vec![DynSolValue::Address(safe)]),
                DynSolValue::Array(vec![DynSolValue::Address(safe)]),
                DynSolValue::Address(Address::ZERO),
            ]),
        )?;
        let pool_v2_hash = chain.code_hash(pool_v2)?.unwrap_or_default();
        let vault_v2_hash = chain.code_hash(vault_v2)?.unwrap_or_default();

        progress("DRILL: writing the drill manifest…");
        let c = |a: Address| a.to_checksum(None);
        // The patch carries the storage layouts of both implementations (issue 18): the console's Review
        // shows the check, and the proxies must point at the current implementations.
        let layout = |cur: &str, new: &str, current: Address| -> Result<String, DrillError> {
            let (cf, ch) = write_layout(tools, dir, cur)?;
            let (nf, nh) = write_layout(tools, dir, new)?;
            let code = chain.code_hash(current)?.unwrap_or_default();
            Ok(format!("storage_layout = {{ current = \"{cf}\", current_hash = \"{ch:#x}\", new = \"{nf}\", new_hash = \"{nh:#x}\", current_codehash = \"{code:#x}\" }}"))
        };
        let pool_layout = layout("PausablePool", "PausablePoolV2", pool_impl)?;
        let vault_layout = layout("UUPSPool", "UUPSPoolV2", uups_impl)?;
        let mut text = DEMO_MANIFEST.to_string();
        text = text.replace(
            "expect = [\"implementation == 0x1A1b000000000000000000000000000000000003\"]",
            &format!("implementation_codehash = \"{pool_v2_hash:#x}\"\n{pool_layout}\nexpect = [\"implementation == 0x1A1b000000000000000000000000000000000003\"]"),
        );
        text = text.replace(
            "expect = [\"implementation == 0x1a1B000000000000000000000000000000000004\"]",
            &format!("implementation_codehash = \"{vault_v2_hash:#x}\"\n{vault_layout}\nexpect = [\"implementation == 0x1a1B000000000000000000000000000000000004\"]"),
        );
        for (from, to) in [
            ("0x5AFe00000000000000000000000000000000a11C", c(safe)),
            ("0x7100000000000000000000000000000000000001", c(timelock)),
            ("0xb001000000000000000000000000000000000001", c(pool)),
            ("0xAD00000000000000000000000000000000000001", c(proxy_admin)),
            ("0x1A1b000000000000000000000000000000000002", c(vault)),
            ("0x1A1b000000000000000000000000000000000003", c(pool_v2)),
            ("0x1a1B000000000000000000000000000000000004", c(vault_v2)),
        ] {
            text = text.replace(from, &to);
        }
        // A pre-signed pause ladder's playbook (issue 19): the halt, fully determined.
        text.push_str(
            "\n[[playbooks]]\nid = \"halt-ladder\"\ntitle = \"Halt all markets (pre-signed ladder)\"\nactions = [\"pause-pool\", \"pause-vault\"]\npresign = true\n",
        );
        text = text.replacen(
            "# breakglass demo manifest",
            "# DRILL MANIFEST: generated by `breakglass drill` from examples/demo.toml, with the addresses of the\n# contracts deployed on the drill's local chain. Not for real use.\n# breakglass demo manifest",
            1,
        );
        let path = dir.join("drill.toml");
        std::fs::write(&path, &text).map_err(|e| DrillError::Io(e.to_string()))?;
        Ok((path, keccak256(text.as_bytes())))
    }
}
