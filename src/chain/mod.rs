//! The node: reads over JSON-RPC with alloy's provider (HTTP). Offline machines never need this module:
//! everything a signer needs is in the bundle.

use crate::compose::EoaParams;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use std::time::Duration;

/// What went wrong talking to the node.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The URL is not a URL.
    #[error("--rpc-url {0:?} is not a URL (write e.g. http://127.0.0.1:8545)")]
    BadUrl(String),
    /// The node did not answer.
    #[error("the node at {url} is unreachable or failed: {reason}")]
    Unreachable {
        /// URL.
        url: String,
        /// Transport message.
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
    /// A call reverted or returned nonsense.
    #[error("{0}")]
    Call(String),
    /// The runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
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
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(parsed)
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

    fn block_on<T, E: std::fmt::Display>(
        &self,
        f: impl std::future::IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, ChainError> {
        let url = self.url.clone();
        self.rt.block_on(async move {
            match tokio::time::timeout(TIMEOUT, f.into_future()).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(ChainError::Unreachable {
                    url,
                    reason: e.to_string(),
                }),
                Err(_) => Err(ChainError::Unreachable {
                    url,
                    reason: format!("no answer within {} s", TIMEOUT.as_secs()),
                }),
            }
        })
    }

    /// `eth_call`.
    pub fn call(&self, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        let req = TransactionRequest::default().with_to(to).with_input(data);
        self.block_on(self.provider.call(req))
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

    /// Fills an EOA transaction from the chain: pending nonce, fee estimate, and `eth_estimateGas` plus
    /// a 25 % margin.
    pub fn eoa_params(
        &self,
        from: Address,
        to: Address,
        value: U256,
        data: Bytes,
    ) -> Result<EoaParams, ChainError> {
        let nonce = self.block_on(self.provider.get_transaction_count(from).pending())?;
        let fees = self.block_on(self.provider.estimate_eip1559_fees())?;
        let req = TransactionRequest::default()
            .with_from(from)
            .with_to(to)
            .with_value(value)
            .with_input(data);
        let gas = self.block_on(self.provider.estimate_gas(req))?;
        Ok(EoaParams {
            from,
            nonce,
            gas_limit: gas.saturating_mul(5) / 4,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        })
    }
}
