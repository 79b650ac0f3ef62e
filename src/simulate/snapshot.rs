//! Offline snapshots: the state a simulation reads, proven against one block header, so that a machine
//! with no node can replay the transaction and trust every value it reads.
//!
//! A snapshot is recorded online ([`record`]): the header of the pinned block (its RLP), and for every
//! account the execution touched its `eth_getProof` answer (account proof, and a storage proof for each
//! slot read) and its code. Offline, [`Snapshot::verify`] checks that the header hashes to the block
//! hash the snapshot names, every account proof against the header's `stateRoot`, every storage proof
//! against its account's storage root, and every code against its account's code hash; only then does
//! it hand out a [`SnapshotSource`], which answers with proven values only. Anything the snapshot does
//! not prove is [`SimError::MissingState`], never zero. The guardian compares the block number and hash
//! out of band (a block explorer, a second node): that comparison is what ties the snapshot to the chain
//! (a header does not commit to its chain id, so `chain_id` is checked as a label only).
//!
//! The file is JSON (`format: "breakglass/snapshot@1"`, unknown fields refused):
//!
//! ```json
//! { "format": "breakglass/snapshot@1", "chain_id": 1, "block_hash": "0x…", "header": "0x…(RLP)",
//!   "accounts": [ { "address": "0x…", "balance": "0x…", "nonce": 1, "code_hash": "0x…",
//!                   "storage_hash": "0x…", "account_proof": ["0x…"], "code": "0x…",
//!                   "storage": [ { "key": "0x…(32 bytes)", "value": "0x…", "proof": ["0x…"] } ] } ] }
//! ```

use super::state::{AccountState, BlockInfo, StateSource, Touched};
use super::SimError;
use crate::chain::Chain;
use alloy::consensus::Header;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::rpc::types::EIP1186AccountProofResponse;
use alloy_rlp::Decodable;
use alloy_trie::proof::{verify_proof, ProofVerificationError};
use alloy_trie::{Nibbles, TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The format tag of a snapshot file.
pub const FORMAT: &str = "breakglass/snapshot@1";
/// The largest snapshot file read (64 MiB).
pub const MAX_SNAPSHOT_BYTES: usize = 64 << 20;
/// The most accounts a snapshot may hold.
pub const MAX_ACCOUNTS: usize = 10_000;
/// The most storage slots a snapshot may hold (all accounts together).
pub const MAX_SLOTS: usize = 200_000;
/// The largest block header (RLP) accepted.
const MAX_HEADER_BYTES: usize = 16 << 10;
/// The longest proof accepted: a 64-nibble path has at most 64 branch nodes, each possibly behind an
/// extension node, plus the leaf.
const MAX_PROOF_NODES: usize = 130;
/// The largest proof node accepted (a full branch node is 532 bytes).
const MAX_PROOF_NODE_BYTES: usize = 2048;
/// The largest contract code accepted (1 MiB, well above any chain's code size limit).
const MAX_CODE_BYTES: usize = 1 << 20;

/// A snapshot of the state a simulation reads, with its proofs (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// `breakglass/snapshot@1`.
    pub format: String,
    /// The chain the block is on.
    pub chain_id: u64,
    /// The block's hash (what the guardian compares out of band).
    pub block_hash: B256,
    /// The block header, RLP-encoded (its keccak256 is `block_hash`).
    pub header: Bytes,
    /// Every account the execution touched, with its proofs.
    pub accounts: Vec<AccountProof>,
}

/// One account at the snapshot's block: its `eth_getProof` answer and its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountProof {
    /// The account's address.
    pub address: Address,
    /// Balance (wei).
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// keccak256 of the code (`0xc5d2…a470` for no code).
    pub code_hash: B256,
    /// The root of the account's storage trie (`0x56e8…b421` when empty).
    pub storage_hash: B256,
    /// The state-trie nodes from the header's `stateRoot` to the account (eth_getProof's `accountProof`).
    pub account_proof: Vec<Bytes>,
    /// The code.
    pub code: Bytes,
    /// The slots read, each with its proof from `storage_hash`.
    pub storage: Vec<StorageProof>,
}

/// One storage slot with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageProof {
    /// The slot (32 bytes).
    pub key: B256,
    /// Its value (zero: the proof shows the slot absent from the storage trie).
    pub value: U256,
    /// The storage-trie nodes from the account's storage root to the slot.
    pub proof: Vec<Bytes>,
}

fn node_err(msg: String) -> SimError {
    SimError::Node(msg)
}

fn snap_err(msg: String) -> SimError {
    SimError::Snapshot(msg)
}

/// Records a snapshot of `touched` at `block` from the node: the block's header, and for each account its
/// `eth_getProof` (with every touched slot) and `eth_getCode`. The result is verified before it is
/// returned, so a node that serves inconsistent proofs is an error here, not a refusal offline.
pub fn record(chain: &Chain, block: &BlockInfo, touched: &Touched) -> Result<Snapshot, SimError> {
    let n = block.number;
    let tag = format!("{n:#x}");
    let rpc_header: Option<alloy::rpc::types::Header> = chain
        .rpc("eth_getBlockByNumber", (tag.clone(), false))
        .map_err(|e| node_err(format!("eth_getBlockByNumber({n}): {e}")))?;
    let rpc_header =
        rpc_header.ok_or_else(|| node_err(format!("the node does not have block {n}")))?;
    if rpc_header.hash != block.hash {
        return Err(node_err(format!(
            "the node's block {n} is now {:#x}, not the simulated block {:#x} (a reorganisation?)",
            rpc_header.hash, block.hash
        )));
    }
    let header = alloy_rlp::encode(&rpc_header.inner);
    let computed = keccak256(&header);
    if computed != block.hash {
        return Err(node_err(format!(
            "the node's header of block {n} does not hash to its block hash {:#x} (it hashes to \
             {computed:#x}: the node serves header fields this version does not know, or wrong ones)",
            block.hash
        )));
    }
    if touched.len() > MAX_ACCOUNTS {
        return Err(node_err(format!(
            "the execution touched {} accounts, more than a snapshot holds ({MAX_ACCOUNTS})",
            touched.len()
        )));
    }
    let mut accounts = Vec::with_capacity(touched.len());
    for (address, slots) in touched {
        accounts.push(record_account(chain, &tag, n, *address, slots)?);
    }
    let snap = Snapshot {
        format: FORMAT.to_string(),
        chain_id: block.chain_id,
        block_hash: block.hash,
        header: header.into(),
        accounts,
    };
    snap.verify(block.chain_id).map_err(|e| {
        node_err(format!(
            "the node's proofs at block {n} do not verify against its own header: {e}"
        ))
    })?;
    Ok(snap)
}

fn record_account(
    chain: &Chain,
    tag: &str,
    n: u64,
    address: Address,
    slots: &BTreeSet<U256>,
) -> Result<AccountProof, SimError> {
    let keys: Vec<B256> = slots.iter().map(|s| B256::from(*s)).collect();
    let p: EIP1186AccountProofResponse = chain
        .rpc("eth_getProof", (address, keys.clone(), tag.to_string()))
        .map_err(|e| {
            node_err(format!(
                "the node does not answer eth_getProof: {e} (for {address} at block {n}; a node \
                 that keeps the state of that block and serves proofs is needed)"
            ))
        })?;
    if p.address != address {
        return Err(node_err(format!(
            "eth_getProof for {address} answered for {}",
            p.address
        )));
    }
    if p.storage_proof.len() != keys.len() {
        return Err(node_err(format!(
            "eth_getProof for {address} answered {} storage proofs for {} slots",
            p.storage_proof.len(),
            keys.len()
        )));
    }
    let mut storage = Vec::with_capacity(keys.len());
    for (key, sp) in keys.iter().zip(p.storage_proof) {
        if sp.key.as_b256() != *key {
            return Err(node_err(format!(
                "eth_getProof for {address} answered slot {:#x} for slot {key:#x}",
                sp.key.as_b256()
            )));
        }
        storage.push(StorageProof {
            key: *key,
            value: sp.value,
            proof: sp.proof,
        });
    }
    let code: Bytes = chain
        .rpc("eth_getCode", (address, tag.to_string()))
        .map_err(|e| node_err(format!("eth_getCode({address}) at block {n}: {e}")))?;
    // Some nodes answer an absent account with zero hashes: the trie's empty values are meant.
    let empty = p.nonce == 0 && p.balance.is_zero() && code.is_empty();
    let code_hash = if empty && p.code_hash == B256::ZERO {
        KECCAK_EMPTY
    } else {
        p.code_hash
    };
    let storage_hash = if empty && p.storage_hash == B256::ZERO {
        EMPTY_ROOT_HASH
    } else {
        p.storage_hash
    };
    if keccak256(&code) != code_hash {
        return Err(node_err(format!(
            "the node's code of {address} at block {n} does not hash to the code hash its proof states"
        )));
    }
    Ok(AccountProof {
        address,
        balance: p.balance,
        nonce: p.nonce,
        code_hash,
        storage_hash,
        account_proof: p.account_proof,
        code,
        storage,
    })
}

#[derive(Deserialize)]
struct FormatOnly {
    format: Option<String>,
}

fn check_proof_shape(proof: &[Bytes], what: &dyn Fn() -> String) -> Result<(), SimError> {
    if proof.len() > MAX_PROOF_NODES {
        return Err(snap_err(format!(
            "the proof of {} has {} nodes (at most {MAX_PROOF_NODES})",
            what(),
            proof.len()
        )));
    }
    if let Some(big) = proof.iter().find(|p| p.len() > MAX_PROOF_NODE_BYTES) {
        return Err(snap_err(format!(
            "the proof of {} has a node of {} bytes (at most {MAX_PROOF_NODE_BYTES})",
            what(),
            big.len()
        )));
    }
    Ok(())
}

fn why(e: &ProofVerificationError) -> String {
    match e {
        ProofVerificationError::RootMismatch { .. } => {
            "the proof does not start at the root".into()
        }
        ProofVerificationError::ValueMismatch { got: None, .. } => {
            "the proof shows no value where one is stated".into()
        }
        ProofVerificationError::ValueMismatch { .. } => {
            "a proof node or the stated value does not match".into()
        }
        ProofVerificationError::UnexpectedEmptyRoot => "the proof has an empty node inside".into(),
        ProofVerificationError::Rlp(e) => format!("a proof node is not valid RLP ({e})"),
    }
}

impl Snapshot {
    /// Reads a snapshot file (JSON). Only the shape is checked here; [`Snapshot::verify`] checks the proofs.
    pub fn from_slice(bytes: &[u8]) -> Result<Snapshot, SimError> {
        if bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(snap_err(format!(
                "the file is {} bytes, more than a snapshot may be ({MAX_SNAPSHOT_BYTES})",
                bytes.len()
            )));
        }
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(snap_err("not a snapshot file (not a JSON object)".into()));
        }
        let tag: FormatOnly = serde_json::from_slice(bytes)
            .map_err(|e| snap_err(format!("not a snapshot file (not JSON: {e})")))?;
        match tag.format.as_deref() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(snap_err(format!(
                    "the file's format is {other:?}; this breakglass reads {FORMAT:?}"
                )))
            }
            None => return Err(snap_err("not a snapshot file (no format tag)".into())),
        }
        serde_json::from_slice(bytes).map_err(|e| snap_err(format!("malformed snapshot: {e}")))
    }

    /// The snapshot as a file (compact JSON).
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks everything (see the module's documentation) and returns the proven state; any failure is
    /// [`SimError::Snapshot`] naming what failed.
    pub fn verify(&self, expected_chain_id: u64) -> Result<SnapshotSource, SimError> {
        if self.format != FORMAT {
            return Err(snap_err(format!(
                "the format is {:?}; this breakglass reads {FORMAT:?}",
                self.format
            )));
        }
        if self.chain_id != expected_chain_id {
            return Err(snap_err(format!(
                "it is of chain {}, not chain {expected_chain_id}",
                self.chain_id
            )));
        }
        let header = self.verify_header()?;
        if self.accounts.len() > MAX_ACCOUNTS {
            return Err(snap_err(format!(
                "it holds {} accounts (at most {MAX_ACCOUNTS})",
                self.accounts.len()
            )));
        }
        let slots: usize = self.accounts.iter().map(|a| a.storage.len()).sum();
        if slots > MAX_SLOTS {
            return Err(snap_err(format!(
                "it holds {slots} storage slots (at most {MAX_SLOTS})"
            )));
        }
        let mut accounts = BTreeMap::new();
        for a in &self.accounts {
            if accounts.contains_key(&a.address) {
                return Err(snap_err(format!("account {} appears twice", a.address)));
            }
            accounts.insert(a.address, verify_account(a, header.state_root)?);
        }
        let block = BlockInfo {
            chain_id: self.chain_id,
            number: header.number,
            hash: self.block_hash,
            timestamp: header.timestamp,
            gas_limit: header.gas_limit,
            base_fee: header.base_fee_per_gas.unwrap_or_default(),
            coinbase: header.beneficiary,
            prevrandao: header.mix_hash,
            state_root: header.state_root,
        };
        Ok(SnapshotSource {
            block,
            header,
            accounts,
        })
    }

    fn verify_header(&self) -> Result<Header, SimError> {
        if self.header.len() > MAX_HEADER_BYTES {
            return Err(snap_err(format!(
                "the header is {} bytes (at most {MAX_HEADER_BYTES})",
                self.header.len()
            )));
        }
        let computed = keccak256(&self.header);
        if computed != self.block_hash {
            return Err(snap_err(format!(
                "the header does not hash to the block hash it names ({:#x}; it hashes to \
                 {computed:#x})",
                self.block_hash
            )));
        }
        let mut buf = &self.header[..];
        let header = Header::decode(&mut buf)
            .map_err(|e| snap_err(format!("the header is not a block header ({e})")))?;
        if !buf.is_empty() || alloy_rlp::encode(&header) != self.header[..] {
            return Err(snap_err(
                "the header is not a canonical block header encoding".into(),
            ));
        }
        Ok(header)
    }
}

fn verify_account(a: &AccountProof, state_root: B256) -> Result<ProvenAccount, SimError> {
    let addr = a.address;
    check_proof_shape(&a.account_proof, &|| format!("account {addr}"))?;
    if a.code.len() > MAX_CODE_BYTES {
        return Err(snap_err(format!(
            "the code of {addr} is {} bytes (at most {MAX_CODE_BYTES})",
            a.code.len()
        )));
    }
    if keccak256(&a.code) != a.code_hash {
        return Err(snap_err(format!(
            "the code of {addr} does not hash to its account's code hash"
        )));
    }
    let key = Nibbles::unpack(keccak256(addr));
    let trie_account = TrieAccount::new(a.nonce, a.balance, a.storage_hash, a.code_hash);
    let included = verify_proof(
        state_root,
        key,
        Some(alloy_rlp::encode(trie_account)),
        &a.account_proof,
    );
    let exists = match included {
        Ok(()) => true,
        Err(e) => {
            // An account absent from the state trie: eth_getProof states it empty, and the proof
            // shows that the trie has no such key.
            let empty = a.nonce == 0
                && a.balance.is_zero()
                && a.code_hash == KECCAK_EMPTY
                && a.storage_hash == EMPTY_ROOT_HASH;
            if !empty || verify_proof(state_root, key, None, &a.account_proof).is_err() {
                return Err(snap_err(format!(
                    "the proof of account {addr} does not verify against the header's state root: {}",
                    why(&e)
                )));
            }
            false
        }
    };
    let mut storage = BTreeMap::new();
    for s in &a.storage {
        let slot = U256::from_be_bytes(s.key.0);
        if storage.contains_key(&slot) {
            return Err(snap_err(format!("slot {slot:#x} of {addr} appears twice")));
        }
        check_proof_shape(&s.proof, &|| format!("slot {slot:#x} of {addr}"))?;
        let expected = (!s.value.is_zero()).then(|| alloy_rlp::encode(s.value));
        verify_proof(
            a.storage_hash,
            Nibbles::unpack(keccak256(s.key)),
            expected,
            &s.proof,
        )
        .map_err(|e| {
            snap_err(format!(
                "the proof of slot {slot:#x} of {addr} does not verify against the account's \
                 storage root: {}",
                why(&e)
            ))
        })?;
        storage.insert(slot, s.value);
    }
    Ok(ProvenAccount {
        state: AccountState {
            balance: a.balance,
            nonce: a.nonce,
            code: a.code.clone(),
        },
        exists,
        empty_storage: a.storage_hash == EMPTY_ROOT_HASH,
        storage,
    })
}

#[derive(Debug, Clone)]
struct ProvenAccount {
    state: AccountState,
    exists: bool,
    /// The storage root is the empty trie's: every slot is proven zero.
    empty_storage: bool,
    storage: BTreeMap<U256, U256>,
}

/// The proven state of a verified [`Snapshot`] (made only by [`Snapshot::verify`]). It answers with
/// proven values only: an account or slot the snapshot does not prove is [`SimError::MissingState`].
/// (An account whose proven storage root is the empty trie's has every slot proven zero.)
#[derive(Debug, Clone)]
pub struct SnapshotSource {
    block: BlockInfo,
    header: Header,
    accounts: BTreeMap<Address, ProvenAccount>,
}

impl SnapshotSource {
    /// The verified block header (for the block environment's other fields).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether the account is in the state trie (`false`: proven absent, which reads as empty).
    pub fn account_exists(&self, a: Address) -> Result<bool, SimError> {
        Ok(self.proven(a)?.exists)
    }

    /// The accounts the snapshot proves.
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.accounts.keys()
    }

    fn proven(&self, a: Address) -> Result<&ProvenAccount, SimError> {
        self.accounts
            .get(&a)
            .ok_or_else(|| SimError::MissingState(format!("account {a}")))
    }
}

impl StateSource for SnapshotSource {
    fn block(&self) -> &BlockInfo {
        &self.block
    }

    fn account(&self, a: Address) -> Result<AccountState, SimError> {
        Ok(self.proven(a)?.state.clone())
    }

    fn storage(&self, a: Address, slot: U256) -> Result<U256, SimError> {
        let acc = self
            .accounts
            .get(&a)
            .ok_or_else(|| SimError::MissingState(format!("slot {slot:#x} of {a}")))?;
        if let Some(v) = acc.storage.get(&slot) {
            return Ok(*v);
        }
        if acc.empty_storage {
            return Ok(U256::ZERO);
        }
        Err(SimError::MissingState(format!("slot {slot:#x} of {a}")))
    }

    fn block_hash(&self, number: u64) -> Result<B256, SimError> {
        if number == self.block.number {
            return Ok(self.block.hash);
        }
        // The header names its parent, so that hash is proven too.
        if number.checked_add(1) == Some(self.block.number) {
            return Ok(self.header.parent_hash);
        }
        Err(SimError::MissingState(format!(
            "the hash of block {number}"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::simulate::state::RpcSource;
    use alloy::primitives::address;
    use serde_json::{json, Value};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A contract with three slots set (one of them a high, hashed-looking slot), a balance and a nonce.
    const CONTRACT: Address = address!("00000000000000000000000000000000c0ffee01");
    /// anvil's first default account (10 000 ETH, no code).
    const EOA: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    /// Never touched: no account in the state trie.
    const ABSENT: Address = address!("00000000000000000000000000000000deadbeef");
    const CODE: &[u8] = &[0x60, 0x2a, 0x60, 0x00, 0x55, 0x00]; // PUSH1 42 PUSH1 0 SSTORE STOP

    fn high_slot() -> U256 {
        U256::from_be_bytes(
            "360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
                .parse::<B256>()
                .unwrap()
                .0,
        )
    }

    /// anvil (the project's pinned binary) on a free port; killed on drop.
    struct Anvil {
        child: Child,
        url: String,
    }

    impl Drop for Anvil {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn anvil() -> (Anvil, Chain) {
        let bin = crate::drill::find_anvil(None).unwrap();
        assert!(
            bin.exists(),
            "anvil not found at {} (run scripts/setup.sh)",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", "31337", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let t0 = Instant::now();
        loop {
            match Chain::connect(&node.url, 31337) {
                Ok(c) => return (node, c),
                Err(e) if t0.elapsed() > Duration::from_secs(15) => panic!("anvil: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn set(chain: &Chain, method: &'static str, params: Value) {
        let _: Value = chain.rpc(method, params).unwrap();
    }

    /// The contract's state, one mined block, and the block pinned.
    fn world() -> (Anvil, Chain, BlockInfo) {
        let (node, chain) = anvil();
        set(
            &chain,
            "anvil_setCode",
            json!([CONTRACT, Bytes::from(CODE)]),
        );
        set(&chain, "anvil_setBalance", json!([CONTRACT, "0x1234"]));
        set(&chain, "anvil_setNonce", json!([CONTRACT, "0x7"]));
        for (slot, value) in [
            (U256::ZERO, U256::from(42)),
            (U256::from(1), U256::MAX),
            (high_slot(), U256::from(0xabcdefu64)),
        ] {
            set(
                &chain,
                "anvil_setStorageAt",
                json!([CONTRACT, B256::from(slot), B256::from(value)]),
            );
        }
        set(&chain, "evm_mine", json!([]));
        let block = RpcSource::at(&chain, 31337, None).unwrap().block().clone();
        (node, chain, block)
    }

    fn touched() -> Touched {
        let mut t = Touched::new();
        t.insert(
            CONTRACT,
            [U256::ZERO, U256::from(1), U256::from(2), high_slot()]
                .into_iter()
                .collect(),
        );
        t.insert(EOA, BTreeSet::new());
        t.insert(ABSENT, [U256::from(5)].into_iter().collect());
        t
    }

    fn refused(snap: &Snapshot) -> bool {
        matches!(snap.verify(31337), Err(SimError::Snapshot(_)))
    }

    #[test]
    fn a_recorded_snapshot_verifies_and_reads_what_the_node_reads() {
        let (_node, chain, block) = world();
        let snap = record(&chain, &block, &touched()).unwrap();
        let bytes = snap.to_vec();
        let back = Snapshot::from_slice(&bytes).unwrap();
        assert_eq!(back, snap);
        let src = back.verify(31337).unwrap();
        // The block environment from the proven header equals the node's.
        assert_eq!(src.block(), &block);
        assert_eq!(src.header().hash_slow(), block.hash);
        let rpc = RpcSource::at(&chain, 31337, Some(block.number)).unwrap();
        for (a, slots) in touched() {
            assert_eq!(src.account(a).unwrap(), rpc.account(a).unwrap(), "{a}");
            for s in slots {
                assert_eq!(src.storage(a, s).unwrap(), rpc.storage(a, s).unwrap());
            }
        }
        let c = src.account(CONTRACT).unwrap();
        assert_eq!(
            (c.nonce, c.balance, &c.code[..]),
            (7, U256::from(0x1234), CODE)
        );
        assert_eq!(src.storage(CONTRACT, U256::from(1)).unwrap(), U256::MAX);
        assert_eq!(src.storage(CONTRACT, U256::from(2)).unwrap(), U256::ZERO);
        // The absent account: an exclusion proof; it reads empty, and its empty storage root proves
        // every slot zero.
        assert!(!src.account_exists(ABSENT).unwrap());
        assert!(src.account_exists(EOA).unwrap());
        assert_eq!(src.account(ABSENT).unwrap(), AccountState::default());
        assert_eq!(src.storage(ABSENT, U256::from(99)).unwrap(), U256::ZERO);
        // Not in the snapshot: missing, never zero.
        let other = address!("0000000000000000000000000000000000000bad");
        assert_eq!(
            src.account(other),
            Err(SimError::MissingState(format!("account {other}")))
        );
        assert_eq!(
            src.storage(CONTRACT, U256::from(3)),
            Err(SimError::MissingState(format!("slot 0x3 of {CONTRACT}")))
        );
        // An account with the empty storage root has every slot proven zero.
        assert_eq!(src.storage(EOA, U256::from(77)), Ok(U256::ZERO));
        eprintln!(
            "snapshot of {} accounts and 5 slots: {} bytes",
            snap.accounts.len(),
            bytes.len()
        );
    }

    #[test]
    fn block_hashes_are_the_blocks_own_and_its_parents_only() {
        let (_node, chain, _) = world();
        set(&chain, "evm_mine", json!([]));
        set(&chain, "evm_mine", json!([]));
        let block = RpcSource::at(&chain, 31337, None).unwrap().block().clone();
        assert!(block.number >= 3);
        let src = record(&chain, &block, &Touched::new())
            .unwrap()
            .verify(31337)
            .unwrap();
        assert_eq!(src.block_hash(block.number).unwrap(), block.hash);
        let parent: alloy::rpc::types::Header = chain
            .rpc(
                "eth_getBlockByNumber",
                (format!("{:#x}", block.number - 1), false),
            )
            .unwrap();
        assert_eq!(src.block_hash(block.number - 1).unwrap(), parent.hash);
        for n in [0, block.number - 2, block.number + 1, u64::MAX] {
            assert_eq!(
                src.block_hash(n),
                Err(SimError::MissingState(format!("the hash of block {n}")))
            );
        }
    }

    /// Each variant of `snap` with one byte of one hex field changed, with the field's name, and
    /// whether the change could still state a fact (the address of an account proven absent, the key
    /// of a slot proven zero: another absent key may share the exclusion proof).
    fn one_byte_variants(snap: &Snapshot) -> Vec<(String, bool, Snapshot)> {
        fn flip(bytes: &mut [u8], i: usize) {
            bytes[i] ^= 0x01;
        }
        let mut out = Vec::new();
        let mut push = |name: String, may_hold: bool, f: &dyn Fn(&mut Snapshot)| {
            let mut s = snap.clone();
            f(&mut s);
            out.push((name, may_hold, s));
        };
        for i in 0..32 {
            push(format!("block_hash[{i}]"), false, &|s| {
                flip(&mut s.block_hash.0, i)
            });
        }
        for i in 0..snap.header.len() {
            push(format!("header[{i}]"), false, &|s| {
                let mut h = s.header.to_vec();
                flip(&mut h, i);
                s.header = h.into();
            });
        }
        for (ai, a) in snap.accounts.iter().enumerate() {
            let absent = a.account_proof.is_empty()
                || (a.nonce == 0 && a.balance.is_zero() && a.code.is_empty());
            let name = a.address;
            for i in 0..20 {
                push(format!("{name}.address[{i}]"), absent, &|s| {
                    flip(&mut s.accounts[ai].address.0 .0, i)
                });
            }
            for i in 0..32 {
                push(format!("{name}.balance[{i}]"), false, &|s| {
                    let mut b = s.accounts[ai].balance.to_be_bytes::<32>();
                    flip(&mut b, i);
                    s.accounts[ai].balance = U256::from_be_bytes(b);
                });
                push(format!("{name}.code_hash[{i}]"), false, &|s| {
                    flip(&mut s.accounts[ai].code_hash.0, i)
                });
                push(format!("{name}.storage_hash[{i}]"), false, &|s| {
                    flip(&mut s.accounts[ai].storage_hash.0, i)
                });
            }
            for i in 0..8 {
                push(format!("{name}.nonce[{i}]"), false, &|s| {
                    s.accounts[ai].nonce ^= 1 << (8 * i)
                });
            }
            for i in 0..a.code.len() {
                push(format!("{name}.code[{i}]"), false, &|s| {
                    let mut c = s.accounts[ai].code.to_vec();
                    flip(&mut c, i);
                    s.accounts[ai].code = c.into();
                });
            }
            for (pi, node) in a.account_proof.iter().enumerate() {
                for i in 0..node.len() {
                    push(format!("{name}.account_proof[{pi}][{i}]"), false, &|s| {
                        let mut n = s.accounts[ai].account_proof[pi].to_vec();
                        flip(&mut n, i);
                        s.accounts[ai].account_proof[pi] = n.into();
                    });
                }
            }
            for (si, sp) in a.storage.iter().enumerate() {
                let slot = sp.key;
                for i in 0..32 {
                    push(
                        format!("{name}.slot {slot}.key[{i}]"),
                        sp.value.is_zero(),
                        &|s| flip(&mut s.accounts[ai].storage[si].key.0, i),
                    );
                    push(format!("{name}.slot {slot}.value[{i}]"), false, &|s| {
                        let mut v = s.accounts[ai].storage[si].value.to_be_bytes::<32>();
                        flip(&mut v, i);
                        s.accounts[ai].storage[si].value = U256::from_be_bytes(v);
                    });
                }
                for (pi, node) in sp.proof.iter().enumerate() {
                    for i in 0..node.len() {
                        push(
                            format!("{name}.slot {slot}.proof[{pi}][{i}]"),
                            false,
                            &|s| {
                                let mut n = s.accounts[ai].storage[si].proof[pi].to_vec();
                                flip(&mut n, i);
                                s.accounts[ai].storage[si].proof[pi] = n.into();
                            },
                        );
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let (_node, chain, block) = world();
        let snap = record(&chain, &block, &touched()).unwrap();
        let rpc = RpcSource::at(&chain, 31337, Some(block.number)).unwrap();
        let variants = one_byte_variants(&snap);
        let (mut refused_n, mut facts) = (0, 0);
        for (name, may_hold, v) in &variants {
            match v.verify(31337) {
                Err(SimError::Snapshot(_)) => refused_n += 1,
                Err(e) => panic!("{name}: {e}"),
                Ok(src) => {
                    // Only an exclusion proof may also exclude the changed key: then the changed
                    // snapshot still states facts only, which the node confirms.
                    assert!(*may_hold, "{name}: a changed byte verified");
                    for a in src.addresses() {
                        assert_eq!(src.account(*a).unwrap(), rpc.account(*a).unwrap(), "{name}");
                    }
                    for acc in &v.accounts {
                        for s in &acc.storage {
                            let slot = U256::from_be_bytes(s.key.0);
                            assert_eq!(s.value, rpc.storage(acc.address, slot).unwrap(), "{name}");
                        }
                    }
                    facts += 1;
                }
            }
        }
        eprintln!(
            "{} one-byte changes: {refused_n} refused, {facts} still true statements about the block",
            variants.len()
        );
        assert!(refused_n > 0 && refused_n + facts == variants.len());

        // In the file itself: one hex digit of every hex string changed.
        let text: Value = serde_json::from_slice(&snap.to_vec()).unwrap();
        let mut paths = Vec::new();
        hex_strings(&text, String::new(), &mut paths);
        assert!(paths.len() > 20);
        for p in &paths {
            let mut t = text.clone();
            let s = t.pointer_mut(p).unwrap();
            let old = s.as_str().unwrap().to_string();
            let i = old.len() - 1;
            let c = if old.as_bytes()[i] == b'0' { "1" } else { "0" };
            *s = Value::String(format!("{}{c}", &old[..i]));
            let bytes = serde_json::to_vec(&t).unwrap();
            let holds = p.ends_with("/key") || p.ends_with("/address");
            match Snapshot::from_slice(&bytes).and_then(|s| s.verify(31337)) {
                Err(SimError::Snapshot(_)) => {}
                Ok(_) if holds => {}
                other => panic!("{p}: {other:?}"),
            }
        }
    }

    fn hex_strings(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.starts_with("0x") && s.len() > 2 => out.push(at),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| hex_strings(x, format!("{at}/{i}"), out)),
            Value::Object(o) => o
                .iter()
                .for_each(|(k, x)| hex_strings(x, format!("{at}/{k}"), out)),
            _ => {}
        }
    }

    #[test]
    fn wrong_chain_format_duplicates_and_oversize_are_refused() {
        let (_node, chain, block) = world();
        let snap = record(&chain, &block, &touched()).unwrap();
        let err = snap.verify(1).unwrap_err();
        assert_eq!(
            err,
            SimError::Snapshot("it is of chain 31337, not chain 1".into())
        );
        // The header does not commit to the chain id: relabelled, the snapshot verifies for the other
        // chain, but names the same block hash, which the guardian compares out of band.
        let mut s = snap.clone();
        s.chain_id = 1;
        assert!(s.verify(31337).is_err());
        assert_eq!(s.verify(1).unwrap().block().hash, block.hash);

        // Another format, unknown fields, not JSON.
        let mut v: Value = serde_json::from_slice(&snap.to_vec()).unwrap();
        v["format"] = json!("breakglass/snapshot@2");
        let e = Snapshot::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(e.to_string().contains("breakglass/snapshot@2"), "{e}");
        let mut v: Value = serde_json::from_slice(&snap.to_vec()).unwrap();
        v["accounts"][0]["extra"] = json!(1);
        assert!(matches!(
            Snapshot::from_slice(&serde_json::to_vec(&v).unwrap()),
            Err(SimError::Snapshot(_))
        ));
        assert!(Snapshot::from_slice(b"\x00\x01").is_err());
        assert!(Snapshot::from_slice(br#"["breakglass/snapshot@1"]"#).is_err());
        let e = Snapshot::from_slice(br#"{"chain_id": 1}"#).unwrap_err();
        assert!(e.to_string().contains("no format tag"), "{e}");
        assert!(Snapshot::from_slice(&vec![b' '; MAX_SNAPSHOT_BYTES + 1]).is_err());

        // The same account twice; the same slot twice.
        let mut s = snap.clone();
        s.accounts.push(s.accounts[0].clone());
        assert!(matches!(s.verify(31337), Err(SimError::Snapshot(m)) if m.contains("twice")));
        let mut s = snap.clone();
        let i = s
            .accounts
            .iter()
            .position(|a| a.address == CONTRACT)
            .unwrap();
        let dup = s.accounts[i].storage[0].clone();
        s.accounts[i].storage.push(dup);
        assert!(matches!(s.verify(31337), Err(SimError::Snapshot(m)) if m.contains("twice")));

        // A proof padded with a node, an oversize node, oversize code.
        let mut s = snap.clone();
        s.accounts[i].account_proof.push(Bytes::from(vec![0xc0]));
        assert!(refused(&s));
        let mut s = snap.clone();
        s.accounts[i].account_proof[0] = Bytes::from(vec![0u8; MAX_PROOF_NODE_BYTES + 1]);
        assert!(refused(&s));
        let mut s = snap.clone();
        s.accounts[i].code = Bytes::from(vec![0u8; MAX_CODE_BYTES + 1]);
        assert!(refused(&s));
        // A truncated proof.
        let mut s = snap.clone();
        s.accounts[i].account_proof.pop();
        assert!(refused(&s));
        // An absent account stated with a balance.
        let mut s = snap;
        let j = s.accounts.iter().position(|a| a.address == ABSENT).unwrap();
        s.accounts[j].balance = U256::from(1);
        let e = s.verify(31337).unwrap_err().to_string();
        assert!(e.contains(&format!("account {ABSENT}")), "{e}");
    }

    #[test]
    fn dropped_entries_read_as_missing_state() {
        let (_node, chain, block) = world();
        let snap = record(&chain, &block, &touched()).unwrap();
        let i = snap
            .accounts
            .iter()
            .position(|a| a.address == CONTRACT)
            .unwrap();
        let mut s = snap.clone();
        let dropped = s.accounts[i].storage.remove(0);
        let slot = U256::from_be_bytes(dropped.key.0);
        let src = s.verify(31337).unwrap();
        assert_eq!(
            src.storage(CONTRACT, slot),
            Err(SimError::MissingState(format!(
                "slot {slot:#x} of {CONTRACT}"
            )))
        );
        assert!(src.storage(CONTRACT, U256::from(1)).is_ok());
        let mut s = snap;
        s.accounts.remove(i);
        let src = s.verify(31337).unwrap();
        assert_eq!(
            src.account(CONTRACT),
            Err(SimError::MissingState(format!("account {CONTRACT}")))
        );
        assert!(matches!(
            src.storage(CONTRACT, U256::from(1)),
            Err(SimError::MissingState(_))
        ));
    }

    #[test]
    fn a_node_without_the_block_or_the_hash_is_named() {
        let (_node, chain, block) = world();
        let mut future = block.clone();
        future.number += 10;
        let e = record(&chain, &future, &touched()).unwrap_err();
        assert_eq!(
            e,
            SimError::Node(format!("the node does not have block {}", future.number))
        );
        let mut other = block;
        other.hash = B256::repeat_byte(0x11);
        let e = record(&chain, &other, &touched()).unwrap_err();
        assert!(
            matches!(&e, SimError::Node(m) if m.contains("reorganisation")),
            "{e}"
        );
    }

    /// A node that serves blocks but not `eth_getProof` (as many public endpoints): canned answers.
    struct NoProofNode {
        url: String,
        stop: Arc<AtomicBool>,
    }

    impl Drop for NoProofNode {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    fn no_proof_node(block_json: Value) -> NoProofNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => answer(conn, &block_json),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        NoProofNode { url, stop }
    }

    fn answer(mut conn: TcpStream, block_json: &Value) {
        conn.set_nonblocking(false).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let body = loop {
            let n = conn.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break body.to_string();
                }
            }
        };
        let req: Value = serde_json::from_str(&body).unwrap();
        let id = req["id"].clone();
        let reply = match req["method"].as_str().unwrap() {
            "eth_chainId" => json!({"jsonrpc": "2.0", "id": id, "result": "0x7a69"}),
            "eth_getBlockByNumber" => json!({"jsonrpc": "2.0", "id": id, "result": block_json}),
            m => json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": format!("the method {m} does not exist/is not available")}}),
        }
        .to_string();
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{reply}",
            reply.len()
        );
    }

    #[test]
    fn a_node_without_eth_get_proof_is_named() {
        let (_node, chain, block) = world();
        let block_json: Value = chain
            .rpc(
                "eth_getBlockByNumber",
                (format!("{:#x}", block.number), false),
            )
            .unwrap();
        let fake = no_proof_node(block_json);
        let c = Chain::connect(&fake.url, 31337).unwrap();
        let e = record(&c, &block, &touched()).unwrap_err();
        assert!(
            matches!(&e, SimError::Node(m) if m.starts_with("the node does not answer eth_getProof: ")),
            "{e}"
        );
        eprintln!("{e}");
        // With nothing touched, the header alone is recorded and verifies.
        let snap = record(&c, &block, &Touched::new()).unwrap();
        assert_eq!(snap.verify(31337).unwrap().block(), &block);
    }
}
