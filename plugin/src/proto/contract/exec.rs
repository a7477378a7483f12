//! Running one input: every call runs in an instance in the state a fresh instantiation gives
//! (a new one, or a pooled one reset to that state), with a journal of pending writes that
//! commits only if the whole input succeeds.
//!
//! # Instance reuse
//!
//! Instantiating a module costs more than a small call: wasmi allocates and zeroes the linear
//! memory, copies the data segments and resolves every import. For a *resettable* module (see
//! `validate::prescan`) the host keeps the instances of finished calls in a per-store pool and
//! hands one out instead of instantiating, after resetting it:
//! - its memory must still have the initial size (otherwise the instance is dropped, not pooled),
//!   and every byte is overwritten with the image captured right after the first instantiation
//!   of that module in the store, before any code ran (zeroes plus the data segments);
//! - every mutable global (all are exported in a resettable module) is set to the value it had
//!   in that image;
//! - tables and segments cannot have changed: the module contains no operator that changes them.
//!
//! Everything else an instance has is immutable (functions, types, imports bound to the same
//! host functions, immutable globals). A reset instance is therefore indistinguishable from a
//! fresh one to the code it runs, and the host charges it exactly as a fresh one: the same
//! instantiation fuel and the same memory accounting against `input_memory_pages_max`. Whether
//! a peer reuses instances, and how many it has pooled, cannot change any result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use wasmi::{
    AsContext, AsContextMut, Engine, Global, Instance, Linker, Memory, Module, TrapCode, Val,
};

use super::error::{ContractError, TrapKind};
use super::merkle::MerkleMap;
use super::params::{ConsensusParams, PAGE_BYTES};
use super::types::{Address, CodeHash, ContractId, Event, Tick};

/// Export run for every call.
pub(crate) const CALL_EXPORT: &str = "mw_call";
/// Optional export run once when a contract is instantiated.
pub(crate) const INIT_EXPORT: &str = "mw_init";
/// The linear memory export.
pub(crate) const MEMORY_EXPORT: &str = "memory";

/// A contract: its code and its committed state.
#[derive(Clone, Debug)]
pub(crate) struct ContractEntry {
    pub(crate) code_hash: CodeHash,
    pub(crate) state: MerkleMap,
}

/// What every execution shares: parameters, the engine, loaded modules.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub(crate) params: ConsensusParams,
    pub(crate) engine: Engine,
    pub(crate) modules: BTreeMap<CodeHash, Module>,
    /// Modules whose instances may be reset and reused (see the module docs).
    pub(crate) resettable: BTreeSet<CodeHash>,
}

/// The state of a resettable module's instance right after instantiation.
#[derive(Debug)]
pub(crate) struct Image {
    memory: Vec<u8>,
    globals: Vec<Val>,
}

/// A finished instance waiting for reuse, already reset to its module's [`Image`].
#[derive(Debug)]
pub(crate) struct Pooled {
    instance: Instance,
    memory: Memory,
    /// The instance's mutable globals, in the order of [`Image::globals`].
    globals: Vec<Global>,
}

/// Instances of one resettable module kept by a store.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    image: Option<Image>,
    free: Vec<Pooled>,
}

/// Most idle instances a store keeps per module (a call chain needs at most `call_depth_max + 1`
/// at once, and only when one code serves several contracts).
const POOL_FREE_MAX: usize = 8;

/// One contract activation on the call stack.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) contract: ContractId,
    pub(crate) caller: Address,
    pub(crate) input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    /// Output (or abort message) of the last nested `call`.
    pub(crate) return_data: Vec<u8>,
    pub(crate) memory: Option<Memory>,
}

/// A write's previous pending value, to undo it: `None` = the key had no pending write.
type Undo = (ContractId, Vec<u8>, Option<Option<Vec<u8>>>);

/// The wasmi store data. A store serves a batch of inputs (see `batch.rs`); everything but
/// `shared`, `linker` and `contracts` is reset before each input.
#[derive(Debug)]
pub(crate) struct ExecState {
    pub(crate) shared: Arc<Shared>,
    /// Resolves imports to this store's host functions; set right after the store is created.
    pub(crate) linker: Option<Arc<Linker<ExecState>>>,
    /// Moved in from the host for the batch, moved back after.
    pub(crate) contracts: BTreeMap<ContractId, ContractEntry>,
    /// Writes not yet committed: `Some(v)` = set, `None` = removed.
    pub(crate) pending: BTreeMap<ContractId, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    pub(crate) journal: Vec<Undo>,
    pub(crate) events: Vec<Event>,
    pub(crate) frames: Vec<Frame>,
    pub(crate) tick: Tick,
    pub(crate) bytes_written: u64,
    pub(crate) calls: u16,
    pub(crate) limiter: Limiter,
    /// Reusable instances per code (kept across inputs; see the module docs).
    pub(crate) pools: BTreeMap<CodeHash, Pool>,
    /// Instances created in this store so far (decides when to start a new store).
    pub(crate) instances_created: u64,
}

/// Memory and table limits, enforced by wasmi at instantiation and on every grow.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) instance_bytes_max: u64,
    pub(crate) input_bytes_max: u64,
    /// Linear memory created by the current input (reset per input).
    pub(crate) bytes_used: u64,
    /// Linear memory created in this store so far (decides when to start a new store).
    pub(crate) store_bytes: u64,
    pub(crate) table_elements_max: u64,
    pub(crate) instances_max: usize,
}

impl Limiter {
    /// Accounts a reused instance's memory exactly as [`wasmi::ResourceLimiter::memory_growing`]
    /// accounts the memory of a fresh instantiation (from 0 to `bytes`), except that no new
    /// memory joins the store. `false` = the input's memory budget is exhausted.
    fn reuse(&mut self, bytes: u64) -> bool {
        let total = self.bytes_used.saturating_add(bytes);
        if bytes > self.instance_bytes_max || total > self.input_bytes_max {
            return false;
        }
        self.bytes_used = total;
        true
    }
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        let (current, desired) = (current as u64, desired as u64);
        let total = self.bytes_used + desired.saturating_sub(current);
        if desired > self.instance_bytes_max || total > self.input_bytes_max {
            // Trap rather than return -1: a contract has no business probing the limit, and a
            // trap gives a typed error instead of a confused allocator.
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        self.bytes_used = total;
        self.store_bytes += desired.saturating_sub(current);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired as u64 > self.table_elements_max {
            return Err(wasmi_core::LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances_max
    }

    fn tables(&self) -> usize {
        self.instances_max
    }

    fn memories(&self) -> usize {
        self.instances_max
    }
}

/// The host's own trap payload: carries the typed error through wasmi.
#[derive(Debug)]
pub(crate) struct HostTrap(pub(crate) ContractError);

impl core::fmt::Display for HostTrap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.0, f)
    }
}

impl wasmi::errors::HostError for HostTrap {}

/// Wraps a typed error as a wasmi trap.
pub(crate) fn trap(error: ContractError) -> wasmi::Error {
    wasmi::Error::host(HostTrap(error))
}

/// Maps whatever wasmi returned to a typed error.
pub(crate) fn classify(error: wasmi::Error) -> ContractError {
    use wasmi::errors::{ErrorKind, FuelError, InstantiationError, MemoryError, TableError};
    if let Some(HostTrap(inner)) = error.downcast_ref::<HostTrap>() {
        return inner.clone();
    }
    if let Some(code) = error.as_trap_code() {
        return match code {
            TrapCode::OutOfFuel => ContractError::OutOfFuel,
            TrapCode::StackOverflow => ContractError::StackOverflow,
            TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory => {
                ContractError::MemoryLimit
            }
            TrapCode::UnreachableCodeReached => ContractError::Trap(TrapKind::Unreachable),
            TrapCode::MemoryOutOfBounds => ContractError::Trap(TrapKind::MemoryOutOfBounds),
            TrapCode::TableOutOfBounds => ContractError::Trap(TrapKind::TableOutOfBounds),
            TrapCode::IndirectCallToNull => ContractError::Trap(TrapKind::IndirectCallToNull),
            TrapCode::IntegerDivisionByZero => ContractError::Trap(TrapKind::IntegerDivisionByZero),
            TrapCode::IntegerOverflow => ContractError::Trap(TrapKind::IntegerOverflow),
            TrapCode::BadConversionToInteger => {
                ContractError::Trap(TrapKind::BadConversionToInteger)
            }
            TrapCode::BadSignature => ContractError::Trap(TrapKind::BadSignature),
        };
    }
    match error.kind() {
        ErrorKind::Fuel(FuelError::OutOfFuel { .. })
        | ErrorKind::Memory(MemoryError::OutOfFuel { .. })
        | ErrorKind::Table(TableError::OutOfFuel { .. }) => ContractError::OutOfFuel,
        // A new instance's memory refused by the limiter (the input's memory budget) is the same
        // error a reused instance reports (see `acquire`): which one a peer runs cannot show.
        ErrorKind::Memory(_)
        | ErrorKind::Table(_)
        | ErrorKind::Instantiation(InstantiationError::FailedToInstantiateMemory(_)) => {
            ContractError::MemoryLimit
        }
        _ => ContractError::Internal {
            reason: error.to_string(),
        },
    }
}

/// Takes `cost` fuel from the store, trapping with [`ContractError::OutOfFuel`] if there is not
/// enough (the remaining fuel is then zero, as if the work had run until it ran out).
pub(crate) fn charge(mut ctx: impl AsContextMut, cost: u64) -> Result<(), wasmi::Error> {
    let mut ctx = ctx.as_context_mut();
    let left = ctx.get_fuel()?;
    match left.checked_sub(cost) {
        Some(rest) => ctx.set_fuel(rest),
        None => {
            ctx.set_fuel(0)?;
            Err(trap(ContractError::OutOfFuel))
        }
    }
}

impl ExecState {
    /// The innermost frame. Host functions only run inside a frame.
    pub(crate) fn frame(&self) -> Result<&Frame, wasmi::Error> {
        self.frames.last().ok_or_else(no_frame)
    }

    /// The innermost frame, mutably.
    pub(crate) fn frame_mut(&mut self) -> Result<&mut Frame, wasmi::Error> {
        self.frames.last_mut().ok_or_else(no_frame)
    }

    /// The value of `key` in `contract`'s state as this input currently sees it.
    pub(crate) fn read(&self, contract: &ContractId, key: &[u8]) -> Option<&[u8]> {
        if let Some(pending) = self.pending.get(contract).and_then(|p| p.get(key)) {
            return pending.as_deref();
        }
        self.contracts.get(contract)?.state.get(key)
    }

    /// Records a write (`None` = remove), journaled so a failing nested call can undo it.
    pub(crate) fn write(&mut self, contract: ContractId, key: &[u8], value: Option<Vec<u8>>) {
        let previous = self
            .pending
            .entry(contract)
            .or_default()
            .insert(key.to_vec(), value);
        self.journal.push((contract, key.to_vec(), previous));
    }

    /// Undoes every write after journal position `mark`.
    pub(crate) fn rollback(&mut self, mark: usize) {
        while self.journal.len() > mark {
            let Some((contract, key, previous)) = self.journal.pop() else {
                break;
            };
            let Some(writes) = self.pending.get_mut(&contract) else {
                continue;
            };
            match previous {
                Some(value) => {
                    writes.insert(key, value);
                }
                None => {
                    writes.remove(&key);
                }
            }
        }
    }
}

fn no_frame() -> wasmi::Error {
    trap(ContractError::Internal {
        reason: "host call outside a call frame".into(),
    })
}

/// Instantiates `contract`'s code afresh in the store and runs `export` with `input`.
/// Pushes and always pops one frame. Used for top-level inputs and nested `call`s alike.
pub(crate) fn invoke(
    mut ctx: impl AsContextMut<Data = ExecState>,
    contract: ContractId,
    caller: Address,
    input: Vec<u8>,
    export: &str,
) -> Result<Vec<u8>, ContractError> {
    let (code, module, shared, linker) = {
        let context = ctx.as_context();
        let data = context.data();
        let entry = data
            .contracts
            .get(&contract)
            .ok_or(ContractError::UnknownContract(contract))?;
        let module = data
            .shared
            .modules
            .get(&entry.code_hash)
            .ok_or(ContractError::UnknownCode(entry.code_hash))?
            .clone();
        let linker = data.linker.clone().ok_or_else(|| ContractError::Internal {
            reason: "store has no linker".into(),
        })?;
        (entry.code_hash, module, Arc::clone(&data.shared), linker)
    };
    ctx.as_context_mut().data_mut().frames.push(Frame {
        contract,
        caller,
        input,
        output: Vec::new(),
        return_data: Vec::new(),
        memory: None,
    });
    let result = instantiate_and_run(&mut ctx, &shared, &linker, code, &module, export);
    let frame = ctx.as_context_mut().data_mut().frames.pop();
    result?;
    Ok(frame.map(|f| f.output).unwrap_or_default())
}

fn instantiate_and_run(
    mut ctx: impl AsContextMut<Data = ExecState>,
    shared: &Shared,
    linker: &Linker<ExecState>,
    code: CodeHash,
    module: &Module,
    export: &str,
) -> Result<(), ContractError> {
    let costs = &shared.params.costs;
    let pages = initial_pages(module);
    charge(
        &mut ctx,
        costs
            .instantiate_base
            .saturating_add(costs.instantiate_per_page.saturating_mul(pages)),
    )
    .map_err(classify)?;
    let resettable = shared.resettable.contains(&code);
    let pooled = if resettable {
        acquire(&mut ctx, code, pages)?
    } else {
        None
    };
    let instance = match pooled {
        Some(pooled) => pooled,
        None => {
            ctx.as_context_mut().data_mut().instances_created += 1;
            let instance = linker
                .instantiate_and_start(&mut ctx, module)
                .map_err(classify)?;
            let memory =
                instance
                    .get_memory(&ctx, MEMORY_EXPORT)
                    .ok_or(ContractError::MissingExport {
                        name: MEMORY_EXPORT,
                    })?;
            let globals = if resettable {
                let globals = mutable_globals(&ctx, instance);
                capture_image(&mut ctx, code, memory, &globals);
                globals
            } else {
                Vec::new()
            };
            Pooled {
                instance,
                memory,
                globals,
            }
        }
    };
    if let Some(frame) = ctx.as_context_mut().data_mut().frames.last_mut() {
        frame.memory = Some(instance.memory);
    }
    let result = run_export(&mut ctx, instance.instance, export);
    if resettable {
        release(&mut ctx, code, instance, pages);
    }
    result
}

fn run_export(
    mut ctx: impl AsContextMut<Data = ExecState>,
    instance: Instance,
    export: &str,
) -> Result<(), ContractError> {
    let Some(func) = instance.get_func(&ctx, export) else {
        // Only `mw_init` is optional; `mw_call` is checked at load time.
        return Ok(());
    };
    let func = func
        .typed::<(), ()>(&ctx)
        .map_err(|_| ContractError::MissingExport { name: "mw_call" })?;
    func.call(&mut ctx, ()).map_err(classify)
}

/// The mutable globals of `instance`, ordered by export name.
fn mutable_globals(ctx: impl AsContext, instance: Instance) -> Vec<Global> {
    let ctx = ctx.as_context();
    let mut globals: Vec<(&str, Global)> = instance
        .exports(ctx)
        .filter_map(|export| Some((export.name(), export.into_global()?)))
        .filter(|(_, global)| global.ty(ctx).mutability().is_mut())
        .collect();
    globals.sort_unstable_by_key(|(name, _)| *name);
    globals.into_iter().map(|(_, global)| global).collect()
}

/// Records the image of `code` (`memory` and `globals` of an instance that has just been
/// created), if the store has none yet.
fn capture_image(
    mut ctx: impl AsContextMut<Data = ExecState>,
    code: CodeHash,
    memory: Memory,
    globals: &[Global],
) {
    let has_image = ctx
        .as_context()
        .data()
        .pools
        .get(&code)
        .is_some_and(|pool| pool.image.is_some());
    if has_image {
        return;
    }
    let image = Image {
        memory: memory.data(&ctx).to_vec(),
        globals: globals.iter().map(|global| global.get(&ctx)).collect(),
    };
    ctx.as_context_mut()
        .data_mut()
        .pools
        .entry(code)
        .or_default()
        .image = Some(image);
}

/// A reset instance of `code` from the pool, charged to the input's memory budget as a fresh
/// instance of `pages` pages would be.
fn acquire(
    mut ctx: impl AsContextMut<Data = ExecState>,
    code: CodeHash,
    pages: u64,
) -> Result<Option<Pooled>, ContractError> {
    let mut context = ctx.as_context_mut();
    let data = context.data_mut();
    let Some(pool) = data.pools.get_mut(&code) else {
        return Ok(None);
    };
    if pool.free.is_empty() {
        return Ok(None);
    }
    if !data.limiter.reuse(pages.saturating_mul(PAGE_BYTES)) {
        // What a fresh instantiation reports when the limiter refuses its memory.
        return Err(ContractError::MemoryLimit);
    }
    Ok(data.pools.get_mut(&code).and_then(|pool| pool.free.pop()))
}

/// Resets a finished instance of `code` to the image and pools it; drops it instead if its
/// memory grew (or anything about it does not match the image).
fn release(
    mut ctx: impl AsContextMut<Data = ExecState>,
    code: CodeHash,
    instance: Pooled,
    pages: u64,
) {
    if instance.memory.size(&ctx) != pages {
        return;
    }
    let mut context = ctx.as_context_mut();
    let (bytes, data) = instance.memory.data_and_store_mut(&mut context);
    let Some(pool) = data.pools.get_mut(&code) else {
        return;
    };
    let Some(image) = pool.image.as_mut() else {
        return;
    };
    if pool.free.len() >= POOL_FREE_MAX
        || bytes.len() != image.memory.len()
        || instance.globals.len() != image.globals.len()
    {
        return;
    }
    bytes.copy_from_slice(&image.memory);
    let values = core::mem::take(&mut image.globals);
    let mut reset = true;
    for (global, value) in instance.globals.iter().zip(&values) {
        reset &= global.set(&mut context, value.clone()).is_ok();
    }
    let data = context.data_mut();
    let Some(pool) = data.pools.get_mut(&code) else {
        return;
    };
    if let Some(image) = pool.image.as_mut() {
        image.globals = values;
    }
    if reset {
        pool.free.push(instance);
    }
}

/// The initial size of the module's memory, in pages.
fn initial_pages(module: &Module) -> u64 {
    match module.get_export(MEMORY_EXPORT) {
        Some(wasmi::ExternType::Memory(ty)) => ty.minimum(),
        _ => 0,
    }
}
