//! The EVM run: a transaction in `revm` over a [`StateSource`], with every call frame recorded (to name
//! the failing call of a batch), the state it read (for snapshots), and read-only calls on the state
//! before and after (views, post-conditions).

use super::state::{AccountState, StateSource, Touched};
use super::SimError;
use alloy::primitives::{Address, Bytes, Log, TxKind, B256, U256};
use revm::bytecode::Bytecode;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{Context, ContextTr, TxEnv};
use revm::database::CacheDB;
use revm::inspector::Inspector;
use revm::interpreter::{CallInputs, CallOutcome, CallScheme};
use revm::state::{AccountInfo, EvmState};
use revm::{DatabaseCommit, DatabaseRef, InspectEvm, MainBuilder, MainContext};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A [`SimError`] as revm's database error.
#[derive(Debug)]
pub struct DbError(pub SimError);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DbError {}
impl revm::database_interface::DBErrorMarker for DbError {}

/// The source as a revm database, recording what was read.
pub struct SourceDb<'a> {
    src: &'a dyn StateSource,
    touched: RefCell<Touched>,
    accounts: RefCell<BTreeMap<Address, AccountState>>,
}

impl<'a> SourceDb<'a> {
    /// Over `src`.
    pub fn new(src: &'a dyn StateSource) -> Self {
        Self {
            src,
            touched: RefCell::new(Touched::new()),
            accounts: RefCell::new(BTreeMap::new()),
        }
    }

    /// Every account and slot read so far.
    pub fn touched(&self) -> Touched {
        self.touched.borrow().clone()
    }

    /// The state of an account as the source gave it (before the transaction).
    pub fn original(&self, a: &Address) -> Option<AccountState> {
        self.accounts.borrow().get(a).cloned()
    }
}

impl DatabaseRef for SourceDb<'_> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        let acc = self.src.account(address).map_err(DbError)?;
        self.touched.borrow_mut().entry(address).or_default();
        let code = Bytecode::new_raw(acc.code.clone());
        let info = AccountInfo::new(acc.balance, acc.nonce, acc.code_hash(), code);
        self.accounts.borrow_mut().insert(address, acc);
        Ok(Some(info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DbError> {
        // Code always arrives with its account; an unknown hash is state we do not have.
        Err(DbError(SimError::MissingState(format!(
            "code with hash {code_hash:#x}"
        ))))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, DbError> {
        let v = self.src.storage(address, index).map_err(DbError)?;
        self.touched
            .borrow_mut()
            .entry(address)
            .or_default()
            .insert(index);
        Ok(v)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        self.src.block_hash(number).map_err(DbError)
    }
}

/// One call frame of the execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// 0 for the transaction's own call.
    pub depth: usize,
    /// Caller (for a DELEGATECALL: the account whose storage runs).
    pub from: Address,
    /// The account whose storage the code runs on.
    pub target: Address,
    /// Whose code runs.
    pub code: Address,
    /// DELEGATECALL (or CALLCODE).
    pub delegate: bool,
    /// STATICCALL.
    pub is_static: bool,
    /// Calldata.
    pub input: Bytes,
    /// Wei sent.
    pub value: U256,
    /// Whether it returned successfully.
    pub ok: bool,
    /// Return or revert data.
    pub output: Bytes,
}

/// Records every call frame.
#[derive(Debug, Default)]
pub struct CallRecorder {
    /// In the order the calls began.
    pub frames: Vec<Frame>,
    stack: Vec<usize>,
}

impl<CTX: ContextTr> Inspector<CTX> for CallRecorder {
    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let delegate = matches!(
            inputs.scheme,
            CallScheme::DelegateCall | CallScheme::CallCode
        );
        self.frames.push(Frame {
            depth: self.stack.len(),
            from: inputs.caller,
            target: inputs.target_address,
            code: inputs.bytecode_address,
            delegate,
            is_static: inputs.is_static,
            input: inputs.input.bytes(context),
            value: inputs.value.get(),
            ok: false,
            output: Bytes::new(),
        });
        self.stack.push(self.frames.len() - 1);
        None
    }

    fn call_end(&mut self, _context: &mut CTX, _inputs: &CallInputs, outcome: &mut CallOutcome) {
        if let Some(i) = self.stack.pop() {
            let f = &mut self.frames[i];
            f.ok = outcome.result.result.is_ok();
            f.output = outcome.result.output.clone();
        }
    }
}

/// The transaction to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxPlan {
    /// Sender.
    pub from: Address,
    /// Recipient.
    pub to: Address,
    /// Wei.
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
    /// Gas limit.
    pub gas_limit: u64,
    /// Storage overrides applied before the run: (account, slot, value).
    pub overrides: Vec<(Address, U256, U256)>,
    /// Run in a block with this timestamp (default: the pinned block's + 12 s).
    pub timestamp: Option<u64>,
}

/// What the run produced, before it is explained.
#[derive(Debug)]
pub struct RawRun {
    /// Success, revert or halt.
    pub success: bool,
    /// Return data or revert data.
    pub output: Bytes,
    /// Why it halted (not a revert), when it did.
    pub halt: Option<String>,
    /// Gas used.
    pub gas_used: u64,
    /// Logs (empty when it failed).
    pub logs: Vec<Log>,
    /// Every call frame.
    pub frames: Vec<Frame>,
    /// The state after (changed accounts and slots, with their originals).
    pub state: EvmState,
    /// Accounts as they were before, as read.
    pub before: BTreeMap<Address, AccountState>,
    /// Everything read.
    pub touched: Touched,
    /// Results of the read-only calls before and after: (before, after) per request.
    pub views: Vec<(Result<Bytes, String>, Result<Bytes, String>)>,
}

type Db<'a> = CacheDB<SourceDb<'a>>;

struct Call {
    from: Address,
    to: Address,
    data: Bytes,
    value: U256,
    gas_limit: u64,
    nonce: u64,
}

fn evm_call(
    db: &mut Db<'_>,
    block: &super::state::BlockInfo,
    timestamp: u64,
    call: Call,
) -> Result<
    (
        revm::context::result::ExecResultAndState<ExecutionResult>,
        Vec<Frame>,
    ),
    SimError,
> {
    let ctx = Context::mainnet()
        .with_db(&mut *db)
        .modify_block_chained(|b| {
            b.number = U256::from(block.number + 1);
            b.timestamp = U256::from(timestamp);
            b.gas_limit = block.gas_limit.max(call.gas_limit);
            b.basefee = 0;
            b.beneficiary = block.coinbase;
            b.prevrandao = Some(block.prevrandao);
        })
        .modify_cfg_chained(|c| {
            c.chain_id = block.chain_id;
            c.disable_nonce_check = true;
        });
    let mut evm = ctx.build_mainnet_with_inspector(CallRecorder::default());
    let tx = TxEnv::builder()
        .caller(call.from)
        .kind(TxKind::Call(call.to))
        .data(call.data)
        .value(call.value)
        .gas_limit(call.gas_limit)
        .gas_price(0)
        .nonce(call.nonce)
        .chain_id(Some(block.chain_id))
        .build()
        .map_err(|e| SimError::Evm(format!("the transaction is malformed: {e:?}")))?;
    let r = evm.inspect_tx(tx).map_err(|e| match e {
        revm::context::result::EVMError::Database(DbError(s)) => s,
        other => SimError::Evm(other.to_string()),
    })?;
    let frames = std::mem::take(&mut evm.inspector.frames);
    Ok((r, frames))
}

const VIEW_GAS: u64 = 5_000_000;

fn view(
    db: &mut Db<'_>,
    block: &super::state::BlockInfo,
    timestamp: u64,
    to: Address,
    data: &Bytes,
) -> Result<Result<Bytes, String>, SimError> {
    let (r, _) = evm_call(
        db,
        block,
        timestamp,
        Call {
            from: Address::ZERO,
            to,
            data: data.clone(),
            value: U256::ZERO,
            gas_limit: VIEW_GAS,
            nonce: 0,
        },
    )?;
    Ok(match r.result {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        ExecutionResult::Revert { output, .. } => Err(crate::chain::decode_revert(&output)),
        ExecutionResult::Halt { reason, .. } => Err(format!("halted: {reason:?}")),
    })
}

/// Reads on the post-state: a read-only call and a storage read.
pub type AfterFn<'a> = dyn FnMut(
        &mut dyn FnMut(Address, Bytes) -> Result<Bytes, String>,
        &mut dyn FnMut(Address, B256) -> Result<B256, String>,
    ) + 'a;

/// Runs `plan` over `src`, with read-only `views` (target, calldata) answered before and after.
/// `after` is called with the post-state for further reads (post-conditions).
pub fn run(
    src: &dyn StateSource,
    plan: &TxPlan,
    views: &[(Address, Bytes)],
    after: &mut AfterFn<'_>,
) -> Result<RawRun, SimError> {
    let block = src.block().clone();
    let ts = plan.timestamp.unwrap_or(block.timestamp + 12);
    let mut db: Db<'_> = CacheDB::new(SourceDb::new(src));
    for (a, slot, v) in &plan.overrides {
        db.insert_account_storage(*a, *slot, *v)
            .map_err(|DbError(e)| e)?;
    }
    let mut before_views = Vec::with_capacity(views.len());
    for (to, data) in views {
        before_views.push(view(&mut db, &block, ts, *to, data)?);
    }
    let sender = db.basic_ref_nonce(plan.from)?;
    let (r, frames) = evm_call(
        &mut db,
        &block,
        ts,
        Call {
            from: plan.from,
            to: plan.to,
            data: plan.data.clone(),
            value: plan.value,
            gas_limit: plan.gas_limit,
            nonce: sender,
        },
    )?;
    let (success, output, halt, gas_used, logs) = match &r.result {
        ExecutionResult::Success {
            output, gas, logs, ..
        } => (
            true,
            match output {
                Output::Call(b) => b.clone(),
                Output::Create(b, _) => b.clone(),
            },
            None,
            gas.tx_gas_used(),
            logs.clone(),
        ),
        ExecutionResult::Revert { gas, output, .. } => {
            (false, output.clone(), None, gas.tx_gas_used(), Vec::new())
        }
        ExecutionResult::Halt { reason, gas, .. } => (
            false,
            Bytes::new(),
            Some(format!("{reason:?}")),
            gas.tx_gas_used(),
            Vec::new(),
        ),
    };
    let state = r.state.clone();
    db.commit(r.state);
    let mut after_views = Vec::with_capacity(views.len());
    for (to, data) in views {
        after_views.push(view(&mut db, &block, ts, *to, data)?);
    }
    // Further reads on the post-state: errors reading state surface as the read's error text.
    {
        let cell = RefCell::new(&mut db);
        let mut call = |to: Address, data: Bytes| -> Result<Bytes, String> {
            let mut guard = cell.borrow_mut();
            match view(&mut guard, &block, ts, to, &data) {
                Ok(r) => r,
                Err(e) => Err(e.to_string()),
            }
        };
        let mut storage = |a: Address, slot: B256| -> Result<B256, String> {
            let mut guard = cell.borrow_mut();
            revm::Database::storage(&mut **guard, a, U256::from_be_bytes(slot.0))
                .map(|v| B256::from(v.to_be_bytes::<32>()))
                .map_err(|DbError(e)| e.to_string())
        };
        after(&mut call, &mut storage);
    }
    let touched = db.db.touched();
    let before = db.db.accounts.borrow().clone();
    Ok(RawRun {
        success,
        output,
        halt,
        gas_used,
        logs,
        frames,
        state,
        before,
        touched,
        views: before_views.into_iter().zip(after_views).collect(),
    })
}

trait NonceOf {
    fn basic_ref_nonce(&mut self, a: Address) -> Result<u64, SimError>;
}

impl NonceOf for Db<'_> {
    fn basic_ref_nonce(&mut self, a: Address) -> Result<u64, SimError> {
        Ok(revm::Database::basic(self, a)
            .map_err(|DbError(e)| e)?
            .map(|i| i.nonce)
            .unwrap_or(0))
    }
}
