//! A real local chain for integration tests: anvil + cast from the pinned npm packages that
//! `scripts/test.sh` installs into `.tools/npm`, and the contracts it compiles into
//! `.tools/contracts`.
//!
//! Independent from the code under test on purpose: std + serde_json only, every chain
//! interaction goes through the `cast` CLI or a raw JSON-RPC request over TCP.
//!
//! Addresses returned by the helpers are EIP-55 checksummed (as `cast to-check-sum-address`
//! prints them); compare addresses case-insensitively anyway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::cell::{Cell, OnceCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The chain id every test chain uses.
pub const CHAIN_ID: u64 = 31337;

/// Anvil's default accounts (mnemonic "test test test test test test test test test test test
/// junk", m/44'/60'/0'/0/i). Public test keys: never use them anywhere real.
pub const DEFAULT_ADDRESSES: [&str; 10] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
];

/// Private keys of [`DEFAULT_ADDRESSES`], same order.
pub const DEFAULT_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// The account the deploy helpers pay from (anvil account 0).
pub const DEPLOYER_KEY: &str = DEFAULT_KEYS[0];

pub const ZERO_ADDRESS: &str = "0x0000000000000000000000000000000000000000";

/// Canonical Safe 1.4.1 MultiSendCallOnly address (the helpers put its code there).
pub const MULTISEND_CALL_ONLY_141: &str = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2";

/// EIP-1967 storage slots.
pub const EIP1967_IMPLEMENTATION_SLOT: &str =
    "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc";
pub const EIP1967_ADMIN_SLOT: &str =
    "0xb53127684a568b3173ae13b9f8a6016e243e63b6e8ee1178d6a717850b5d6103";
pub const EIP1967_BEACON_SLOT: &str =
    "0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50";

/// Artifact paths (relative to `node_modules`, see [`artifact`]).
pub const SAFE_ARTIFACT: &str =
    "@safe-global/safe-contracts/build/artifacts/contracts/Safe.sol/Safe.json";
pub const SAFE_L2_ARTIFACT: &str =
    "@safe-global/safe-contracts/build/artifacts/contracts/SafeL2.sol/SafeL2.json";
pub const SAFE_PROXY_FACTORY_ARTIFACT: &str =
    "@safe-global/safe-contracts/build/artifacts/contracts/proxies/SafeProxyFactory.sol/SafeProxyFactory.json";
pub const MULTISEND_CALL_ONLY_ARTIFACT: &str =
    "@safe-global/safe-contracts/build/artifacts/contracts/libraries/MultiSendCallOnly.sol/MultiSendCallOnly.json";
pub const COMPATIBILITY_FALLBACK_HANDLER_ARTIFACT: &str =
    "@safe-global/safe-contracts/build/artifacts/contracts/handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json";
pub const OZ_TRANSPARENT_PROXY_ARTIFACT: &str =
    "@openzeppelin/contracts/build/contracts/TransparentUpgradeableProxy.json";
pub const OZ_PROXY_ADMIN_ARTIFACT: &str = "@openzeppelin/contracts/build/contracts/ProxyAdmin.json";
pub const OZ_ERC1967_PROXY_ARTIFACT: &str =
    "@openzeppelin/contracts/build/contracts/ERC1967Proxy.json";
pub const OZ_TIMELOCK_ARTIFACT: &str =
    "@openzeppelin/contracts/build/contracts/TimelockController.json";
/// The project's own test contracts (tests/contracts/*.sol, compiled by scripts/test.sh).
pub const PAUSABLE_POOL_ARTIFACT: &str = "contracts/PausablePool.json";
pub const PAUSABLE_POOL_V2_ARTIFACT: &str = "contracts/PausablePoolV2.json";
pub const UUPS_POOL_ARTIFACT: &str = "contracts/UUPSPool.json";
pub const UUPS_POOL_V2_ARTIFACT: &str = "contracts/UUPSPoolV2.json";

const RUN_TEST_SH: &str = "run `scripts/test.sh` once (it installs the pinned test tools into \
     .tools/ and compiles tests/contracts), or set BREAKGLASS_TOOLS to such a folder";

// ------------------------------------------------------------------ tool locations

/// `$BREAKGLASS_TOOLS`, else `<CARGO_MANIFEST_DIR>/.tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BREAKGLASS_TOOLS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.join(".tools")
}

/// `<tools>/npm/node_modules`.
pub fn node_modules() -> PathBuf {
    tools_dir().join("npm").join("node_modules")
}

fn foundry_bin(name: &str) -> PathBuf {
    let path = node_modules()
        .join("@foundry-rs")
        .join(format!("{name}-linux-amd64"))
        .join("bin")
        .join(name);
    if !path.is_file() {
        panic!("{name} not found at {}: {RUN_TEST_SH}", path.display());
    }
    path
}

/// Path of the pinned `anvil` binary (panics with a hint if it is not installed).
pub fn anvil_bin() -> PathBuf {
    foundry_bin("anvil")
}

/// Path of the pinned `cast` binary (panics with a hint if it is not installed).
pub fn cast_bin() -> PathBuf {
    foundry_bin("cast")
}

// ------------------------------------------------------------------ artifacts

/// Reads a Hardhat-style artifact JSON and returns `(abi, bytecode, deployed_bytecode)`, the
/// bytecodes as `0x…` hex. `rel_path` is tried, in order, as an absolute path, relative to
/// [`tools_dir`], to `<tools>/npm/node_modules` and to `<tools>/contracts`; so
/// `artifact(OZ_TIMELOCK_ARTIFACT)`, `artifact("contracts/PausablePool.json")` and
/// `artifact("PausablePool.json")` all work.
pub fn artifact(rel_path: &str) -> (Value, String, String) {
    let tools = tools_dir();
    let candidates = [
        PathBuf::from(rel_path),
        tools.join(rel_path),
        tools.join("npm").join("node_modules").join(rel_path),
        tools.join("contracts").join(rel_path),
    ];
    let path = candidates
        .iter()
        .enumerate()
        .find(|(i, p)| (*i > 0 || p.is_absolute()) && p.is_file())
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!("artifact {rel_path} not found (tried {candidates:?}): {RUN_TEST_SH}")
        });
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let hex = |key: &str| -> String {
        let s = json[key]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no string field {key}", path.display()));
        if s.starts_with("0x") {
            s.to_string()
        } else {
            format!("0x{s}")
        }
    };
    (
        json["abi"].clone(),
        hex("bytecode"),
        hex("deployedBytecode"),
    )
}

// ------------------------------------------------------------------ cast without a chain

fn run_cast(args: &[&str], rpc_url: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(cast_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // cast reads ETH_RPC_URL for every subcommand that talks to a node; commands that
        // don't (calldata, abi-encode, wallet …) ignore it. Keeps callers from caring which
        // subcommands accept --rpc-url.
        .env_remove("ETH_RPC_URL")
        .env_remove("ETH_FROM")
        .env_remove("ETH_KEYSTORE");
    if let Some(url) = rpc_url {
        cmd.env("ETH_RPC_URL", url);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cast: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Runs `cast ARGS` with no node (calldata, abi-encode, keccak, wallet address, …);
/// returns trimmed stdout, panics with stderr on failure.
pub fn cast_offline(args: &[&str]) -> String {
    run_cast(args, None).unwrap_or_else(|e| panic!("cast {args:?} failed: {e}"))
}

/// `cast calldata SIG ARGS…` → `0x…`.
pub fn calldata(sig: &str, args: &[&str]) -> String {
    let mut a = vec!["calldata", sig];
    a.extend_from_slice(args);
    cast_offline(&a)
}

/// `cast abi-encode SIG ARGS…` → `0x…` (e.g. constructor arguments: `"constructor(address,uint256)"`).
pub fn abi_encode(sig: &str, args: &[&str]) -> String {
    let mut a = vec!["abi-encode", sig];
    a.extend_from_slice(args);
    cast_offline(&a)
}

/// EIP-55 checksummed form of an address.
pub fn checksum(addr: &str) -> String {
    cast_offline(&["to-check-sum-address", addr])
}

/// Address of a private key.
pub fn address_of(key: &str) -> String {
    cast_offline(&["wallet", "address", "--private-key", key])
}

/// Formats addresses as a cast array argument: `[0xa,0xb]`.
pub fn addr_list(addrs: &[&str]) -> String {
    format!("[{}]", addrs.join(","))
}

fn strip0x(s: &str) -> &str {
    s.strip_prefix("0x").unwrap_or(s)
}

/// The address in the low 20 bytes of a 32-byte word (e.g. a storage slot), checksummed.
pub fn word_to_address(word: &str) -> String {
    let hex = strip0x(word.trim());
    assert!(hex.len() >= 40, "not a 32-byte word: {word}");
    checksum(&format!("0x{}", &hex[hex.len() - 40..]))
}

// ------------------------------------------------------------------ the chain

/// Safe 1.4.1 contracts shared by every Safe that [`Anvil::deploy_safe`] creates on one chain.
#[derive(Debug, Clone)]
pub struct SafeInfra {
    pub singleton: String,
    pub proxy_factory: String,
    pub fallback_handler: String,
    /// Always [`MULTISEND_CALL_ONLY_141`].
    pub multisend_call_only: String,
}

/// One anvil process on 127.0.0.1, killed (by its own PID) when dropped.
pub struct Anvil {
    pub url: String,
    pub port: u16,
    pub chain_id: u64,
    child: Child,
    log: PathBuf,
    safe_infra: OnceCell<SafeInfra>,
    salt: Cell<u64>,
}

impl Anvil {
    /// Starts anvil (chain id 31337, default accounts, automine) on a free port and waits until
    /// it answers `eth_chainId`.
    pub fn start() -> Anvil {
        Self::start_with(&[])
    }

    /// Like [`Anvil::start`] with extra anvil flags (e.g. `["--block-time", "1"]`).
    pub fn start_with(extra_args: &[&str]) -> Anvil {
        Self::start_chain(CHAIN_ID, extra_args)
    }

    /// Like [`Anvil::start_with`] on another chain id.
    pub fn start_chain(chain_id: u64, extra_args: &[&str]) -> Anvil {
        let mut last_err = String::new();
        // The free port is found by binding port 0 and releasing it, so another process may
        // grab it before anvil does: retry a few times.
        for _ in 0..3 {
            match Self::try_start(chain_id, extra_args) {
                Ok(anvil) => return anvil,
                Err(e) => last_err = e,
            }
        }
        panic!("anvil did not start: {last_err}");
    }

    fn try_start(chain_id: u64, extra_args: &[&str]) -> Result<Anvil, String> {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            listener.local_addr().map_err(|e| e.to_string())?.port()
        };
        let log = std::env::temp_dir().join(format!(
            "breakglass-anvil-{}-{port}.log",
            std::process::id()
        ));
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let port_s = port.to_string();
        let chain_s = chain_id.to_string();
        let mut args = vec![
            "--host",
            "127.0.0.1",
            "--port",
            &port_s,
            "--chain-id",
            &chain_s,
            "--accounts",
            "10",
            "--quiet",
        ];
        args.extend_from_slice(extra_args);
        let child = Command::new(anvil_bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot spawn anvil: {e}"))?;
        let mut anvil = Anvil {
            url: format!("http://127.0.0.1:{port}"),
            port,
            chain_id,
            child,
            log,
            safe_infra: OnceCell::new(),
            salt: Cell::new(0),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                let log = std::fs::read_to_string(&anvil.log).unwrap_or_default();
                return Err(format!("anvil exited with {status}: {log}"));
            }
            if let Ok(Ok(v)) = anvil.rpc_try_raw("eth_chainId", json!([])) {
                if v.as_str()
                    .and_then(|s| u64::from_str_radix(strip0x(s), 16).ok())
                    == Some(chain_id)
                {
                    return Ok(anvil);
                }
            }
            if Instant::now() > deadline {
                // Dropping `anvil` kills the child.
                return Err(format!(
                    "anvil on port {port} did not answer eth_chainId within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Skips `n` salt nonces of [`Anvil::deploy_safe`], so that Safes on different chains get different
    /// addresses.
    pub fn skip_salts(&self, n: u64) {
        self.salt.set(self.salt.get() + n);
    }

    /// PID of the anvil process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    // -------------------------------------------------------------- raw JSON-RPC

    /// One JSON-RPC request over a fresh TCP connection: `Ok(Ok(result))`, `Ok(Err(error))` for
    /// a JSON-RPC error, `Err` for a transport problem.
    fn rpc_try_raw(&self, method: &str, params: Value) -> Result<Result<Value, Value>, String> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let req = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(req.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("malformed HTTP answer: {text}"))?;
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(payload)?
        } else {
            payload.to_string()
        };
        let v: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("bad JSON-RPC answer ({e}): {head}\r\n\r\n{payload}"))?;
        if let Some(err) = v.get("error") {
            return Ok(Err(err.clone()));
        }
        Ok(Ok(v.get("result").cloned().unwrap_or(Value::Null)))
    }

    /// JSON-RPC call; `Err` carries the JSON-RPC error object (panics on transport errors).
    pub fn rpc_try(&self, method: &str, params: Value) -> Result<Value, Value> {
        self.rpc_try_raw(method, params)
            .unwrap_or_else(|e| panic!("JSON-RPC {method} to {}: {e}", self.url))
    }

    /// JSON-RPC call that must succeed; returns `result`.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let p = params.clone();
        self.rpc_try(method, params)
            .unwrap_or_else(|e| panic!("JSON-RPC {method} {p} failed: {e}"))
    }

    // -------------------------------------------------------------- cast against this chain

    /// `cast ARGS` against this chain (ETH_RPC_URL is set); trimmed stdout, panics with stderr.
    pub fn cast(&self, args: &[&str]) -> String {
        self.cast_try(args)
            .unwrap_or_else(|e| panic!("cast {args:?} failed: {e}"))
    }

    /// Like [`Anvil::cast`] but returns stderr on failure (for expected reverts).
    pub fn cast_try(&self, args: &[&str]) -> Result<String, String> {
        run_cast(args, Some(&self.url))
    }

    /// `cast call TO SIG ARGS…` (SIG with return types, e.g. `"paused()(bool)"`, to decode).
    pub fn call(&self, to: &str, sig: &str, args: &[&str]) -> String {
        let mut a = vec!["call", to, sig];
        a.extend_from_slice(args);
        self.cast(&a)
    }

    /// [`Anvil::call`] for a single unsigned integer result (`sig` like `"nonce()(uint256)"`);
    /// ignores the `[3.6e3]`-style annotation some cast versions append.
    pub fn call_u128(&self, to: &str, sig: &str, args: &[&str]) -> u128 {
        let out = self.call(to, sig, args);
        let first = out.split_whitespace().next().unwrap_or("");
        first
            .parse()
            .unwrap_or_else(|e| panic!("{sig} on {to} returned {out:?}, not a u128: {e}"))
    }

    /// `cast send TO SIG ARGS… --private-key KEY --json`; returns the receipt and panics if the
    /// transaction reverted.
    pub fn send(&self, from_key: &str, to: &str, sig: &str, args: &[&str]) -> Value {
        self.send_try(from_key, to, sig, args)
            .unwrap_or_else(|e| panic!("cast send {to} {sig} {args:?} failed: {e}"))
    }

    /// Like [`Anvil::send`]; `Err` holds cast's error (e.g. the revert reason).
    pub fn send_try(
        &self,
        from_key: &str,
        to: &str,
        sig: &str,
        args: &[&str],
    ) -> Result<Value, String> {
        let mut a = vec!["send", "--private-key", from_key, "--json", to, sig];
        a.extend_from_slice(args);
        let out = self.cast_try(&a)?;
        let receipt = parse_receipt(&out);
        if receipt_ok(&receipt) {
            Ok(receipt)
        } else {
            Err(format!("transaction reverted: {receipt}"))
        }
    }

    /// Sends from any address via `anvil_impersonateAccount` (after giving it 100 ETH when its
    /// balance is zero); panics on revert. For "the Safe itself calls X" style setups.
    pub fn send_as(&self, from: &str, to: &str, sig: &str, args: &[&str]) -> Value {
        if self.balance(from) == 0 {
            self.set_balance(from, 100_000_000_000_000_000_000);
        }
        self.rpc("anvil_impersonateAccount", json!([from]));
        let mut a = vec!["send", "--unlocked", "--from", from, "--json", to, sig];
        a.extend_from_slice(args);
        let result = self.cast_try(&a);
        self.rpc("anvil_stopImpersonatingAccount", json!([from]));
        let receipt =
            parse_receipt(&result.unwrap_or_else(|e| panic!("send as {from} failed: {e}")));
        assert!(receipt_ok(&receipt), "send as {from} reverted: {receipt}");
        receipt
    }

    /// Deploys `bytecode_hex ‖ ctor_args_encoded_hex` (either may have `0x`; args may be empty)
    /// with `cast send --create`; returns the contract address.
    pub fn deploy(
        &self,
        bytecode_hex: &str,
        ctor_args_encoded_hex: &str,
        from_key: &str,
    ) -> String {
        let code = format!(
            "0x{}{}",
            strip0x(bytecode_hex),
            strip0x(ctor_args_encoded_hex)
        );
        assert!(
            code.len() > 2,
            "empty bytecode (abstract contract or interface?)"
        );
        let out = self.cast(&[
            "send",
            "--private-key",
            from_key,
            "--json",
            "--create",
            &code,
        ]);
        let receipt = parse_receipt(&out);
        assert!(receipt_ok(&receipt), "deployment reverted: {receipt}");
        let addr = receipt["contractAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("no contractAddress in receipt: {receipt}"));
        checksum(addr)
    }

    /// Deploys an artifact (see [`artifact`]) from [`DEPLOYER_KEY`]; `ctor_sig` such as
    /// `"constructor(address,uint256)"` with `args`, or `""` for no constructor arguments.
    pub fn deploy_artifact(&self, rel_path: &str, ctor_sig: &str, args: &[&str]) -> String {
        let (_, bytecode, _) = artifact(rel_path);
        let encoded = if ctor_sig.is_empty() {
            String::new()
        } else {
            abi_encode(ctor_sig, args)
        };
        self.deploy(&bytecode, &encoded, DEPLOYER_KEY)
    }

    /// `anvil_setCode`: puts runtime `code` at `addr`.
    pub fn set_code(&self, addr: &str, code: &str) {
        self.cast(&["rpc", "anvil_setCode", addr, code]);
    }

    /// `eth_getCode` (`0x` when there is none).
    pub fn code(&self, addr: &str) -> String {
        self.cast(&["code", addr])
    }

    /// `cast storage ADDR SLOT` → 32-byte hex word.
    pub fn storage(&self, addr: &str, slot: &str) -> String {
        self.cast(&["storage", addr, slot])
    }

    /// Balance in wei.
    pub fn balance(&self, addr: &str) -> u128 {
        let v = self.rpc("eth_getBalance", json!([addr, "latest"]));
        u128::from_str_radix(strip0x(v.as_str().unwrap()), 16).unwrap()
    }

    /// `anvil_setBalance` in wei.
    pub fn set_balance(&self, addr: &str, wei: u128) {
        self.rpc("anvil_setBalance", json!([addr, format!("0x{wei:x}")]));
    }

    /// Current block number.
    pub fn block_number(&self) -> u64 {
        let v = self.rpc("eth_blockNumber", json!([]));
        u64::from_str_radix(strip0x(v.as_str().unwrap()), 16).unwrap()
    }

    /// Moves the chain clock forward by `secs` and mines a block (for timelock delays).
    pub fn increase_time(&self, secs: u64) {
        self.rpc("evm_increaseTime", json!([secs]));
        self.rpc("evm_mine", json!([]));
    }

    /// `evm_snapshot` → id for [`Anvil::revert_to`].
    pub fn snapshot(&self) -> String {
        self.rpc("evm_snapshot", json!([]))
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `evm_revert` to a snapshot id.
    pub fn revert_to(&self, id: &str) {
        let ok = self.rpc("evm_revert", json!([id]));
        assert_eq!(ok, Value::Bool(true), "evm_revert {id} failed");
    }

    // -------------------------------------------------------------- Safe 1.4.1

    /// Deploys (once per chain) the Safe 1.4.1 singleton, SafeProxyFactory and
    /// CompatibilityFallbackHandler, and places MultiSendCallOnly's runtime code at its
    /// canonical address [`MULTISEND_CALL_ONLY_141`].
    pub fn safe_infra(&self) -> &SafeInfra {
        self.safe_infra.get_or_init(|| {
            let singleton = self.deploy_artifact(SAFE_ARTIFACT, "", &[]);
            let proxy_factory = self.deploy_artifact(SAFE_PROXY_FACTORY_ARTIFACT, "", &[]);
            let fallback_handler =
                self.deploy_artifact(COMPATIBILITY_FALLBACK_HANDLER_ARTIFACT, "", &[]);
            let (_, _, multisend_code) = artifact(MULTISEND_CALL_ONLY_ARTIFACT);
            self.set_code(MULTISEND_CALL_ONLY_141, &multisend_code);
            SafeInfra {
                singleton,
                proxy_factory,
                fallback_handler,
                multisend_call_only: MULTISEND_CALL_ONLY_141.to_string(),
            }
        })
    }

    /// Creates a Safe 1.4.1 proxy with these owners and threshold (fallback handler set, no
    /// modules, no guard) through `SafeProxyFactory.createProxyWithNonce`; returns its address.
    /// Each call uses a new salt nonce, so equal owner sets give distinct Safes.
    pub fn deploy_safe(&self, owners: &[&str], threshold: u64) -> String {
        assert!(!owners.is_empty() && threshold >= 1 && threshold as usize <= owners.len());
        let infra = self.safe_infra().clone();
        let threshold_s = threshold.to_string();
        let setup = calldata(
            "setup(address[],uint256,address,bytes,address,address,uint256,address)",
            &[
                &addr_list(owners),
                &threshold_s,
                ZERO_ADDRESS,
                "0x",
                &infra.fallback_handler,
                ZERO_ADDRESS,
                "0",
                ZERO_ADDRESS,
            ],
        );
        let salt = self.salt.get();
        self.salt.set(salt + 1);
        let salt_s = salt.to_string();
        let sig = "createProxyWithNonce(address,bytes,uint256)";
        // The proxy address is CREATE2-deterministic: simulate first to learn it, then send.
        let predicted = self.call(
            &infra.proxy_factory,
            &format!("{sig}(address)"),
            &[&infra.singleton, &setup, &salt_s],
        );
        let receipt = self.send(
            DEPLOYER_KEY,
            &infra.proxy_factory,
            sig,
            &[&infra.singleton, &setup, &salt_s],
        );
        let safe = checksum(&predicted);
        // Cross-check with ProxyCreation(address indexed proxy, address singleton): topic 1.
        let from_log = receipt["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| {
                l["address"].as_str().map(str::to_ascii_lowercase)
                    == Some(infra.proxy_factory.to_ascii_lowercase())
            })
            .find_map(|l| {
                l["topics"]
                    .get(1)
                    .and_then(Value::as_str)
                    .map(word_to_address)
            });
        assert_eq!(
            from_log.as_deref(),
            Some(safe.as_str()),
            "ProxyCreation log: {receipt}"
        );
        let got_owners = self.call(&safe, "getOwners()(address[])", &[]);
        for o in owners {
            assert!(
                got_owners
                    .to_ascii_lowercase()
                    .contains(&o.to_ascii_lowercase()),
                "Safe {safe} owners {got_owners} lack {o}"
            );
        }
        assert_eq!(
            self.call(&safe, "getThreshold()(uint256)", &[]),
            threshold_s
        );
        safe
    }

    // -------------------------------------------------------------- OpenZeppelin proxies

    /// PausablePool behind an OZ 5 TransparentUpgradeableProxy initialised with
    /// `initialize(owner)`; `owner` owns both the pool and the ProxyAdmin that the proxy
    /// creates. Returns `(proxy, proxy_admin, implementation)`.
    pub fn deploy_pausable_transparent(&self, owner: &str) -> (String, String, String) {
        let implementation = self.deploy_artifact(PAUSABLE_POOL_ARTIFACT, "", &[]);
        let init = calldata("initialize(address)", &[owner]);
        let proxy = self.deploy_artifact(
            OZ_TRANSPARENT_PROXY_ARTIFACT,
            "constructor(address,address,bytes)",
            &[&implementation, owner, &init],
        );
        let proxy_admin = word_to_address(&self.storage(&proxy, EIP1967_ADMIN_SLOT));
        assert_eq!(
            word_to_address(&self.storage(&proxy, EIP1967_IMPLEMENTATION_SLOT)),
            implementation
        );
        (proxy, proxy_admin, implementation)
    }

    /// UUPSPool behind an OZ 5 ERC1967Proxy initialised with `initialize(owner)`.
    /// Returns `(proxy, implementation)`.
    pub fn deploy_uups(&self, owner: &str) -> (String, String) {
        let implementation = self.deploy_artifact(UUPS_POOL_ARTIFACT, "", &[]);
        let init = calldata("initialize(address)", &[owner]);
        let proxy = self.deploy_artifact(
            OZ_ERC1967_PROXY_ARTIFACT,
            "constructor(address,bytes)",
            &[&implementation, &init],
        );
        (proxy, implementation)
    }

    /// OZ 5 TimelockController(minDelay, proposers, executors, admin); `admin` may be
    /// [`ZERO_ADDRESS`] (the timelock then administers itself only).
    pub fn deploy_timelock(
        &self,
        min_delay: u64,
        proposers: &[&str],
        executors: &[&str],
        admin: &str,
    ) -> String {
        self.deploy_artifact(
            OZ_TIMELOCK_ARTIFACT,
            "constructor(uint256,address[],address[],address)",
            &[
                &min_delay.to_string(),
                &addr_list(proposers),
                &addr_list(executors),
                admin,
            ],
        )
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // Child::kill signals exactly this child's PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn parse_receipt(out: &str) -> Value {
    serde_json::from_str(out)
        .unwrap_or_else(|e| panic!("cast --json printed non-JSON ({e}): {out}"))
}

fn receipt_ok(receipt: &Value) -> bool {
    matches!(
        receipt["status"].as_str(),
        Some("0x1") | Some("1") | Some("true")
    ) || receipt["status"] == Value::Bool(true)
        || receipt["status"] == json!(1)
}

fn dechunk(mut s: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = s.split_once("\r\n").ok_or("bad chunked body")?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size_line:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        s = rest
            .get(size..)
            .ok_or("truncated chunk")?
            .trim_start_matches("\r\n");
    }
}

/// Whether [`tools_dir`] holds the installed tools and compiled contracts.
pub fn tools_installed() -> bool {
    let nm = node_modules();
    nm.join("@foundry-rs/anvil-linux-amd64/bin/anvil").is_file()
        && nm.join("@foundry-rs/cast-linux-amd64/bin/cast").is_file()
        && tools_dir()
            .join("contracts")
            .join("PausablePool.json")
            .is_file()
}
