//! Where a simulation reads the chain's state from: a node at a pinned block (fetched on demand over
//! JSON-RPC), or an offline snapshot whose every value is proven against a block header. The engine
//! records which accounts and slots it read, so an online run can write the snapshot an offline signer
//! replays.

use super::SimError;
use crate::chain::Chain;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// The block a simulation runs on top of (its state is the state after this block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Chain id.
    pub chain_id: u64,
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Timestamp (seconds).
    pub timestamp: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Base fee (wei).
    pub base_fee: u64,
    /// Fee recipient.
    pub coinbase: Address,
    /// `mixHash` (PREVRANDAO after the merge).
    pub prevrandao: B256,
    /// The header's state root.
    pub state_root: B256,
}

/// One account's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    /// Balance (wei).
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code (empty for an EOA or an absent account).
    pub code: Bytes,
}

impl AccountState {
    /// keccak256 of the code.
    pub fn code_hash(&self) -> B256 {
        keccak256(&self.code)
    }
}

/// What an execution read: every account, and every slot of each.
pub type Touched = BTreeMap<Address, BTreeSet<U256>>;

/// A source of state at one block.
pub trait StateSource {
    /// The block the state is of.
    fn block(&self) -> &BlockInfo;
    /// An account (an absent account is all zero with no code).
    fn account(&self, a: Address) -> Result<AccountState, SimError>;
    /// A storage slot.
    fn storage(&self, a: Address, slot: U256) -> Result<U256, SimError>;
    /// The hash of an earlier block (BLOCKHASH).
    fn block_hash(&self, number: u64) -> Result<B256, SimError>;
}

/// A node at a pinned block.
pub struct RpcSource<'a> {
    chain: &'a Chain,
    block: BlockInfo,
    tag: String,
    hashes: RefCell<BTreeMap<u64, B256>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RpcBlock {
    number: U256,
    hash: B256,
    timestamp: U256,
    gas_limit: U256,
    #[serde(default)]
    base_fee_per_gas: Option<U256>,
    miner: Address,
    #[serde(default)]
    mix_hash: Option<B256>,
    state_root: B256,
}

fn u64_of(v: U256, what: &str) -> Result<u64, SimError> {
    u64::try_from(v).map_err(|_| SimError::Node(format!("the block's {what} does not fit 64 bits")))
}

impl<'a> RpcSource<'a> {
    /// The node's state after block `number` (default: the latest block, pinned now).
    pub fn at(chain: &'a Chain, chain_id: u64, number: Option<u64>) -> Result<Self, SimError> {
        let tag = match number {
            Some(n) => format!("{n:#x}"),
            None => "latest".to_string(),
        };
        let b: Option<RpcBlock> = chain
            .rpc("eth_getBlockByNumber", (tag.clone(), false))
            .map_err(|e| SimError::Node(format!("eth_getBlockByNumber({tag}): {e}")))?;
        let b = b.ok_or_else(|| SimError::Node(format!("the node does not have block {tag}")))?;
        let block = BlockInfo {
            chain_id,
            number: u64_of(b.number, "number")?,
            hash: b.hash,
            timestamp: u64_of(b.timestamp, "timestamp")?,
            gas_limit: u64_of(b.gas_limit, "gas limit")?,
            base_fee: u64_of(b.base_fee_per_gas.unwrap_or_default(), "base fee")?,
            coinbase: b.miner,
            prevrandao: b.mix_hash.unwrap_or_default(),
            state_root: b.state_root,
        };
        Ok(Self {
            chain,
            tag: format!("{:#x}", block.number),
            block,
            hashes: RefCell::new(BTreeMap::new()),
        })
    }

    fn call<R: alloy::rpc::json_rpc::RpcRecv>(
        &self,
        method: &'static str,
        params: impl alloy::rpc::json_rpc::RpcSend,
    ) -> Result<R, SimError> {
        self.chain
            .rpc(method, params)
            .map_err(|e| SimError::Node(format!("{method} at block {}: {e}", self.block.number)))
    }
}

impl StateSource for RpcSource<'_> {
    fn block(&self) -> &BlockInfo {
        &self.block
    }

    fn account(&self, a: Address) -> Result<AccountState, SimError> {
        let balance: U256 = self.call("eth_getBalance", (a, self.tag.clone()))?;
        let nonce: U256 = self.call("eth_getTransactionCount", (a, self.tag.clone()))?;
        let code: Bytes = self.call("eth_getCode", (a, self.tag.clone()))?;
        Ok(AccountState {
            balance,
            nonce: u64_of(nonce, "nonce")?,
            code,
        })
    }

    fn storage(&self, a: Address, slot: U256) -> Result<U256, SimError> {
        let v: B256 = self.call("eth_getStorageAt", (a, slot, self.tag.clone()))?;
        Ok(U256::from_be_bytes(v.0))
    }

    fn block_hash(&self, number: u64) -> Result<B256, SimError> {
        if number == self.block.number {
            return Ok(self.block.hash);
        }
        if let Some(h) = self.hashes.borrow().get(&number) {
            return Ok(*h);
        }
        let b: Option<RpcBlock> =
            self.call("eth_getBlockByNumber", (format!("{number:#x}"), false))?;
        let h = b.map(|b| b.hash).unwrap_or_default();
        self.hashes.borrow_mut().insert(number, h);
        Ok(h)
    }
}
