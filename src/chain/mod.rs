//! The node: reads, broadcast, receipts and post-conditions over JSON-RPC with alloy's provider (HTTP).
//! Offline machines never need this module: everything a signer needs is in the bundle.

pub mod postcond;

use crate::compose::EoaParams;
use alloy::network::TransactionBuilder;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::sol;
use alloy::sol_types::SolCall;
use alloy::transports::{RpcError, TransportErrorKind};
use std::time::{Duration, Instant};

sol! {
    function getOwners() external view returns (address[] owners);
    function getThreshold() external view returns (uint256 threshold);
    function getTimestamp(bytes32 id) external view returns (uint256 timestamp);
    function approvedHashes(address owner, bytes32 hash) external view returns (uint256 approved);
}

/// What went wrong talking to the node.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The URL is not a URL.
    #[error("--rpc-url {0:?} is not a URL (write e.g. http://127.0.0.1:8545)")]
    BadUrl(String),
    /// The node did not answer.
    #[error("the node at {url} is unreachable: {reason}")]
    Unreachable {
        /// URL.
        url: String,
        /// Transport message.
        reason: String,
    },
    /// The node's certificate is not acceptable (not trusted, expired, for another name…).
    #[error("the node at {url} refused a secure connection: {reason}")]
    Tls {
        /// URL.
        url: String,
        /// rustls's reason.
        reason: String,
    },
    /// HTTPS cannot be set up on this machine (no certificate authorities could be loaded).
    #[error("cannot set up HTTPS to the node at {url}: {reason}")]
    TlsSetup {
        /// URL.
        url: String,
        /// reqwest's reason.
        reason: String,
    },
    /// The node is on another chain.
    #[error("the node at {url} is on chain {actual}, but the manifest is for chain {expected}: check --rpc-url")]
    WrongChain {
        /// URL.
        url: String,
        /// The manifest's chain.
        expected: u64,
        /// The node's chain.
        actual: u64,
    },
    /// The node answered with an error.
    #[error("{}", explain_rpc(.message, .revert))]
    Rpc {
        /// JSON-RPC error message.
        message: String,
        /// Revert data, when a call reverted.
        revert: Option<Bytes>,
    },
    /// A call returned something that makes no sense.
    #[error("{0}")]
    Call(String),
    /// Waiting for a receipt took too long.
    #[error("no receipt for {hash:#x} after {secs} s: the transaction may still be pending; run `breakglass broadcast` on the same bundle to keep waiting (it will not send twice)")]
    Timeout {
        /// Transaction hash.
        hash: B256,
        /// Seconds waited.
        secs: u64,
    },
    /// The runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
}

/// An error and its causes in one line ("error sending request …: client error (Connect): Connection
/// refused"): the outermost message alone rarely says what to fix.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(err) = next {
        let t = err.to_string();
        if !t.is_empty() && !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        next = err.source();
    }
    text
}

/// The certificate failure under a transport error, if that is what it is. hyper hands rustls's error up
/// inside an `io::Error`, whose `source()` skips it, so each `io::Error` is opened too.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            // Only the certificate is the node's fault in a way retrying cannot fix; an alert or a
            // broken session stays "unreachable" (retried while waiting for a receipt).
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::UnsupportedNameType
            )
            .then_some(tls);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = tls_error(inner) {
                return Some(tls);
            }
        }
        next = err.source();
    }
    None
}

/// Safe's revert codes (safe-smart-account `docs/error_codes.md`), explained for a person.
pub fn explain_gs(code: &str) -> Option<&'static str> {
    Some(match code {
        "GS000" => "could not finish initialization",
        "GS001" => "threshold needs to be defined",
        "GS010" => "not enough gas to execute the Safe transaction",
        "GS011" => "could not pay gas costs with ether",
        "GS012" => "could not pay gas costs with token",
        "GS013" => "the Safe transaction's inner call failed (gasPrice and safeTxGas are 0, so the whole transaction reverts): the paused/upgraded contract refused the call — check the Safe is allowed to call it",
        "GS020" => "the signatures are too short: fewer signatures than the threshold",
        "GS021" => "invalid contract signature location (inside the static part)",
        "GS022" => "invalid contract signature location (length not present)",
        "GS023" => "invalid contract signature location (data not complete)",
        "GS024" => "invalid contract signature provided",
        "GS025" => "hash has not been approved",
        "GS026" => "invalid owner: a signature is not from an owner, is duplicated, or the signatures are not sorted by owner — or the Safe's nonce moved on and the signatures are for an older safeTxHash",
        "GS030" => "only owners can approve a hash",
        "GS031" => "method can only be called from the Safe itself",
        "GS100" => "modules have already been initialized",
        "GS101" => "invalid module address provided",
        "GS102" => "module has already been added",
        "GS103" => "invalid prevModule, module pair provided",
        "GS104" => "method can only be called from an enabled module",
        "GS200" => "owners have already been set up",
        "GS201" => "threshold cannot exceed owner count",
        "GS202" => "threshold needs to be greater than 0",
        "GS203" => "invalid owner address provided",
        "GS204" => "address is already an owner",
        "GS205" => "invalid prevOwner, owner pair provided",
        "GS300" => "guard does not implement IERC165",
        _ => return None,
    })
}

/// Decodes revert data: `Error(string)` (with Safe's GS codes explained), `Panic(uint256)`, or raw.
pub fn decode_revert(data: &[u8]) -> String {
    use alloy::sol_types::{Panic, Revert, SolError};
    if data.is_empty() {
        return "reverted without a reason".into();
    }
    if let Ok(r) = Revert::abi_decode(data) {
        let reason = r.reason;
        return match explain_gs(&reason) {
            Some(e) => format!("reverted with {reason}: {e}"),
            None => format!("reverted with {reason:?}"),
        };
    }
    if let Ok(p) = Panic::abi_decode(data) {
        return format!("panicked with code {}", p.code);
    }
    format!("reverted with data 0x{}", alloy::hex::encode(data))
}

fn explain_rpc(message: &str, revert: &Option<Bytes>) -> String {
    let m = message.to_lowercase();
    if let Some(r) = revert {
        return format!("the call {}", decode_revert(r));
    }
    if m.contains("nonce too low") {
        return format!("nonce too low — someone else already used this nonce, or this transaction was already mined ({message})");
    }
    if m.contains("replacement transaction underpriced") || m.contains("underpriced") {
        return format!("replacement underpriced — a transaction with this nonce is pending with higher fees: bump the fee (--bump-fee PERCENT) ({message})");
    }
    if m.contains("insufficient funds") {
        return format!("the sending account cannot pay for gas: fund it ({message})");
    }
    if m.contains("gas required exceeds") || m.contains("out of gas") {
        return format!("out of gas ({message})");
    }
    if m.contains("execution reverted") {
        return format!("the call reverted ({message})");
    }
    format!("the node refused: {message}")
}

/// A connection to a node whose chain id was checked.
pub struct Chain {
    url: String,
    provider: RootProvider,
    rt: tokio::runtime::Runtime,
}

const TIMEOUT: Duration = Duration::from_secs(15);

impl Chain {
    /// Connects and checks the chain id against `expected_chain_id`.
    pub fn connect(url: &str, expected_chain_id: u64) -> Result<Self, ChainError> {
        let parsed: alloy::transports::http::reqwest::Url =
            url.parse().map_err(|_| ChainError::BadUrl(url.into()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ChainError::Runtime(e.to_string()))?;
        // reqwest is built without a crypto provider of its own: HTTPS uses rustls with ring. Installing
        // it a second time (another chain) is refused by rustls and changes nothing.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // reqwest loads the certificate authorities when the client is built, whatever the URL, and
        // panics in `Client::new()` when it finds none. A plain-HTTP node needs none: an air-gapped machine
        // without a CA bundle (or with SSL_CERT_FILE wrong) still reaches its local node, and anything
        // it redirects to over HTTPS is refused. For HTTPS, a missing or unreadable bundle is an error.
        let builder = if parsed.scheme() == "https" {
            alloy::transports::http::reqwest::Client::builder()
        } else {
            alloy::transports::http::reqwest::Client::builder().tls_certs_only(std::iter::empty())
        };
        let client = builder.build().map_err(|e| ChainError::TlsSetup {
            url: url.into(),
            reason: causes(&e),
        })?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_reqwest(client, parsed)
            .root()
            .clone();
        let c = Chain {
            url: url.to_string(),
            provider,
            rt,
        };
        let actual = c.block_on(c.provider.get_chain_id())?;
        if actual != expected_chain_id {
            return Err(ChainError::WrongChain {
                url: url.into(),
                expected: expected_chain_id,
                actual,
            });
        }
        Ok(c)
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn classify(&self, e: RpcError<TransportErrorKind>) -> ChainError {
        match e.as_error_resp() {
            Some(p) => ChainError::Rpc {
                message: p.message.to_string(),
                revert: p.as_revert_data(),
            },
            None => match tls_error(&e) {
                Some(tls) => ChainError::Tls {
                    url: self.url.clone(),
                    reason: tls.to_string(),
                },
                None => ChainError::Unreachable {
                    url: self.url.clone(),
                    reason: causes(&e),
                },
            },
        }
    }

    fn block_on<T>(
        &self,
        f: impl std::future::IntoFuture<Output = Result<T, RpcError<TransportErrorKind>>>,
    ) -> Result<T, ChainError> {
        let r = self
            .rt
            .block_on(async move { tokio::time::timeout(TIMEOUT, f.into_future()).await });
        match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(_) => Err(ChainError::Unreachable {
                url: self.url.clone(),
                reason: format!("no answer within {} s", TIMEOUT.as_secs()),
            }),
        }
    }

    /// Any JSON-RPC method (e.g. anvil's `anvil_setCode` in drill mode).
    pub fn rpc<P, R>(&self, method: &'static str, params: P) -> Result<R, ChainError>
    where
        P: alloy::rpc::json_rpc::RpcSend,
        R: alloy::rpc::json_rpc::RpcRecv,
    {
        self.block_on(self.provider.raw_request(method.into(), params))
    }

    /// `eth_call` (from `from` when given).
    pub fn call_from(
        &self,
        from: Option<Address>,
        to: Address,
        data: Bytes,
    ) -> Result<Bytes, ChainError> {
        let mut req = TransactionRequest::default().with_to(to).with_input(data);
        if let Some(f) = from {
            req = req.with_from(f);
        }
        self.block_on(self.provider.call(req))
    }

    /// `eth_call`.
    pub fn call(&self, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        self.call_from(None, to, data)
    }

    /// The Safe's current nonce (`nonce()`).
    pub fn safe_nonce(&self, safe: Address) -> Result<U256, ChainError> {
        let out = self.call(safe, crate::safe::nonceCall {}.abi_encode().into())?;
        crate::safe::nonceCall::abi_decode_returns(&out).map_err(|e| {
            ChainError::Call(format!(
                "{} did not answer nonce() like a Safe: {e}",
                safe.to_checksum(None)
            ))
        })
    }

    /// The Safe's owners and threshold as the chain says.
    pub fn safe_owners(&self, safe: Address) -> Result<(Vec<Address>, usize), ChainError> {
        let o = self.call(safe, getOwnersCall {}.abi_encode().into())?;
        let owners = getOwnersCall::abi_decode_returns(&o).map_err(|e| {
            ChainError::Call(format!(
                "{} did not answer getOwners(): {e}",
                safe.to_checksum(None)
            ))
        })?;
        let t = self.call(safe, getThresholdCall {}.abi_encode().into())?;
        let threshold = getThresholdCall::abi_decode_returns(&t).map_err(|e| {
            ChainError::Call(format!(
                "{} did not answer getThreshold(): {e}",
                safe.to_checksum(None)
            ))
        })?;
        Ok((owners, threshold.saturating_to::<usize>()))
    }

    /// Which of `owners` approved `hash` on chain (`approvedHashes(owner, hash) != 0` on the Safe).
    pub fn approved_on_chain(
        &self,
        safe: Address,
        owners: &[Address],
        hash: B256,
    ) -> Result<Vec<Address>, ChainError> {
        let mut out = Vec::new();
        for o in owners {
            let r = self.call(
                safe,
                approvedHashesCall { owner: *o, hash }.abi_encode().into(),
            )?;
            let v = approvedHashesCall::abi_decode_returns(&r).map_err(|e| {
                ChainError::Call(format!(
                    "{} did not answer approvedHashes(): {e}",
                    safe.to_checksum(None)
                ))
            })?;
            if !v.is_zero() {
                out.push(*o);
            }
        }
        Ok(out)
    }

    /// keccak256 of the runtime code at `a` (`None` when there is no code).
    pub fn code_hash(&self, a: Address) -> Result<Option<B256>, ChainError> {
        let code = self.block_on(self.provider.get_code_at(a))?;
        Ok((!code.is_empty()).then(|| keccak256(&code)))
    }

    /// A storage word.
    pub fn storage(&self, a: Address, slot: B256) -> Result<B256, ChainError> {
        let v = self.block_on(self.provider.get_storage_at(a, U256::from_be_bytes(slot.0)))?;
        Ok(B256::from(v.to_be_bytes::<32>()))
    }

    /// The latest block's number and timestamp.
    pub fn latest(&self) -> Result<(u64, u64), ChainError> {
        let b = self
            .block_on(
                self.provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest),
            )?
            .ok_or_else(|| ChainError::Call("the node has no latest block".into()))?;
        Ok((b.header.number, b.header.timestamp))
    }

    /// A timelock operation's timestamp (0 unset, 1 done, else ready time).
    pub fn timelock_timestamp(&self, timelock: Address, id: B256) -> Result<U256, ChainError> {
        let out = self.call(timelock, getTimestampCall { id }.abi_encode().into())?;
        getTimestampCall::abi_decode_returns(&out).map_err(|e| {
            ChainError::Call(format!(
                "{} did not answer getTimestamp(): {e}",
                timelock.to_checksum(None)
            ))
        })
    }

    /// Fills an EOA transaction from the chain: pending nonce, fee estimate, and `eth_estimateGas` plus
    /// a 25 % margin.
    pub fn eoa_params(
        &self,
        from: Address,
        to: Address,
        value: U256,
        data: Bytes,
        gas_limit: Option<u64>,
    ) -> Result<EoaParams, ChainError> {
        let nonce = self.block_on(self.provider.get_transaction_count(from).pending())?;
        let fees = self
            .rt
            .block_on(self.provider.estimate_eip1559_fees())
            .map_err(|e| self.classify(e))?;
        let req = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_value(value)
            .with_input(data);
        let gas = match gas_limit {
            Some(g) => g.saturating_mul(4) / 5,
            None => self.block_on(self.provider.estimate_gas(req))?,
        };
        Ok(EoaParams {
            from,
            nonce,
            gas_limit: gas.saturating_mul(5) / 4,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        })
    }

    /// Whether the node knows the transaction (pending or mined).
    pub fn known(&self, hash: B256) -> Result<bool, ChainError> {
        let v: Option<serde_json::Value> = self.block_on(
            self.provider
                .raw_request("eth_getTransactionByHash".into(), (hash,)),
        )?;
        Ok(v.is_some_and(|v| !v.is_null()))
    }

    /// Sends a signed raw transaction. Idempotent: a transaction the node already knows is not an error.
    pub fn send_raw(&self, raw: &Bytes, hash: B256) -> Result<B256, ChainError> {
        if self.known(hash)? {
            return Ok(hash);
        }
        match self.block_on(
            self.provider
                .raw_request::<_, B256>("eth_sendRawTransaction".into(), (raw,)),
        ) {
            Ok(h) => Ok(h),
            Err(ChainError::Rpc { message, .. })
                if message.to_lowercase().contains("already known") =>
            {
                Ok(hash)
            }
            Err(e @ ChainError::Rpc { .. }) => {
                // After a crash the transaction may have been mined meanwhile: then "nonce too low" is ours.
                if self.receipt(hash)?.is_some() {
                    Ok(hash)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The receipt, if mined.
    pub fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>, ChainError> {
        self.block_on(self.provider.get_transaction_receipt(hash))
    }

    /// Waits for the receipt, calling `progress(elapsed, latest block)` about every 250 ms.
    pub fn wait_receipt(
        &self,
        hash: B256,
        timeout: Duration,
        mut progress: impl FnMut(Duration, Option<u64>),
    ) -> Result<TransactionReceipt, ChainError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(25);
        loop {
            match self.receipt(hash) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(ChainError::Unreachable { .. }) if start.elapsed() < timeout => {
                    progress(start.elapsed(), None);
                }
                Err(e) => return Err(e),
            }
            if start.elapsed() >= timeout {
                return Err(ChainError::Timeout {
                    hash,
                    secs: timeout.as_secs(),
                });
            }
            let block = self.latest().ok().map(|b| b.0);
            progress(start.elapsed(), block);
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }
}
