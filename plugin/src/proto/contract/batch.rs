//! Running a batch of ordered inputs: one wasmi store serves many inputs (and, through the
//! [`StoreCache`], many transitions), each input gets a reset [`ExecState`] and instances in
//! their freshly-instantiated state, and commits into the contracts' trees only if it succeeds.
//!
//! Why share a store: creating one and its host functions costs about as much as instantiating a
//! small contract, and a store is where reset instances are pooled (see `exec.rs`). Sharing it
//! changes nothing observable: nothing in the store outlives an input except pooled instances,
//! which are reset to the state a fresh instantiation gives, and unreachable dead instances,
//! which are bounded by starting a new store after [`STORE_BYTES_MAX`] bytes of linear memory or
//! [`STORE_INSTANCES_MAX`] instances.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmi::Store;

use super::abi;
use super::error::ContractError;
use super::exec::{
    CALL_EXPORT, ContractEntry, ExecState, INIT_EXPORT, Limiter, Shared, charge, classify, invoke,
};
use super::params::PAGE_BYTES;
use super::types::{CodeHash, ContractId, Fuel, Input, Receipt, Tick};

/// Start a new store once dead instances of earlier inputs hold this much linear memory.
const STORE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Start a new store once this many instances were created in it (a module may have a memory of
/// zero pages, which the byte bound would not see).
const STORE_INSTANCES_MAX: u64 = 4096;

/// A store kept between batches of inputs, shared by a host and its forks (a referee's fork
/// re-executes on the store its parent left). At most one batch uses the store at a time; a
/// batch that finds it taken creates its own. Holds no contract state between batches.
#[derive(Clone, Default)]
pub(crate) struct StoreCache(Arc<Mutex<Option<Store<ExecState>>>>);

impl core::fmt::Debug for StoreCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StoreCache")
    }
}

impl StoreCache {
    /// The cached store if it was made for `shared` (same parameters, engine and modules).
    fn take(&self, shared: &Arc<Shared>) -> Option<Store<ExecState>> {
        let store = self.0.try_lock().ok()?.take()?;
        Arc::ptr_eq(&store.data().shared, shared).then_some(store)
    }

    /// Keeps `store` for the next batch, unless another batch already left one.
    fn put(&self, store: Store<ExecState>) {
        if let Ok(mut slot) = self.0.try_lock()
            && slot.is_none()
        {
            *slot = Some(store);
        }
    }
}

/// Which export a top-level run starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `mw_call`.
    Call,
    /// `mw_init` (skipped if the module does not export it).
    Init,
}

/// A store with the host functions defined and the limiter installed, holding `contracts`.
fn new_store(
    shared: &Arc<Shared>,
    contracts: BTreeMap<ContractId, ContractEntry>,
) -> Result<Store<ExecState>, ContractError> {
    let params = &shared.params;
    let calls = usize::from(params.calls_per_input_max) + 1;
    let state = ExecState {
        shared: Arc::clone(shared),
        linker: None,
        contracts,
        pending: BTreeMap::new(),
        journal: Vec::new(),
        events: Vec::new(),
        frames: Vec::new(),
        tick: Tick(0),
        bytes_written: 0,
        calls: 0,
        pools: BTreeMap::new(),
        instances_created: 0,
        limiter: Limiter {
            instance_bytes_max: u64::from(params.memory_pages_max) * PAGE_BYTES,
            input_bytes_max: u64::from(params.input_memory_pages_max) * PAGE_BYTES,
            bytes_used: 0,
            store_bytes: 0,
            table_elements_max: u64::from(params.table_elements_max),
            // Per input the host caps calls; across a store, `STORE_INSTANCES_MAX` recycles it
            // before this.
            instances_max: calls.saturating_add(STORE_INSTANCES_MAX as usize),
        },
    };
    let mut store = Store::new(&shared.engine, state);
    store.limiter(|state| &mut state.limiter);
    let linker = abi::linker(&mut store)?;
    store.data_mut().linker = Some(Arc::new(linker));
    Ok(store)
}

/// Creates a store and instantiates `code` in it `count` times, running nothing (benchmark
/// probe).
pub(crate) fn instantiate_only(
    shared: &Arc<Shared>,
    code: &CodeHash,
    count: u32,
) -> Result<(), ContractError> {
    let module = shared
        .modules
        .get(code)
        .ok_or(ContractError::UnknownCode(*code))?;
    let mut store = new_store(shared, BTreeMap::new())?;
    let linker = store
        .data()
        .linker
        .clone()
        .ok_or_else(|| ContractError::Internal {
            reason: "store has no linker".into(),
        })?;
    for _ in 0..count {
        linker
            .instantiate_and_start(&mut store, module)
            .map_err(classify)?;
    }
    Ok(())
}

/// The outcome of one input: its receipt and the contracts whose state it changed.
pub(crate) type Applied = (Receipt, Vec<ContractId>);

fn refused(error: ContractError) -> Applied {
    (
        Receipt {
            result: Err(error),
            fuel_used: Fuel::ZERO,
            events: Vec::new(),
        },
        Vec::new(),
    )
}

/// Runs `inputs` in order against `contracts`, committing each successful input's writes into the
/// contracts' trees (without hashing). Returns one [`Applied`] per input.
pub(crate) fn run_inputs(
    shared: &Arc<Shared>,
    cache: &StoreCache,
    contracts: &mut BTreeMap<ContractId, ContractEntry>,
    inputs: &[Input],
    entry: Entry,
) -> Vec<Applied> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut store: Option<Store<ExecState>> = cache.take(shared);
    if let Some(s) = store.as_mut() {
        s.data_mut().contracts = std::mem::take(contracts);
    }
    for input in inputs {
        let live = store.as_ref().map_or(&*contracts, |s| &s.data().contracts);
        if let Some(error) = precheck(shared, input, live) {
            out.push(refused(error));
            continue;
        }
        let full = store.as_ref().is_some_and(|s| {
            let data = s.data();
            data.limiter.store_bytes > STORE_BYTES_MAX
                || data.instances_created > STORE_INSTANCES_MAX
        });
        if let Some(old) = store.take_if(|_| full) {
            *contracts = old.into_data().contracts;
        }
        if store.is_none() {
            match new_store(shared, BTreeMap::new()) {
                Ok(mut fresh) => {
                    fresh.data_mut().contracts = std::mem::take(contracts);
                    store = Some(fresh);
                }
                Err(error) => {
                    out.push(refused(error));
                    continue;
                }
            }
        }
        if let Some(s) = store.as_mut() {
            out.push(run_one(s, input, entry));
        }
    }
    if let Some(mut s) = store {
        *contracts = std::mem::take(&mut s.data_mut().contracts);
        cache.put(s);
    }
    out
}

/// Refusals decided before running anything.
fn precheck(
    shared: &Shared,
    input: &Input,
    contracts: &BTreeMap<ContractId, ContractEntry>,
) -> Option<ContractError> {
    let params = &shared.params;
    if input.fuel_limit > params.fuel_per_input_max {
        return Some(ContractError::InvalidInput {
            reason: "fuel limit above fuel_per_input_max",
        });
    }
    if input.data.len() as u64 > u64::from(params.input_bytes_max) {
        return Some(ContractError::InvalidInput {
            reason: "input larger than input_bytes_max",
        });
    }
    if !contracts.contains_key(&input.contract) {
        return Some(ContractError::UnknownContract(input.contract));
    }
    None
}

fn run_one(store: &mut Store<ExecState>, input: &Input, entry: Entry) -> Applied {
    let state = store.data_mut();
    state.pending.clear();
    state.journal.clear();
    state.events.clear();
    state.frames.clear();
    state.tick = input.tick;
    state.bytes_written = 0;
    state.calls = 0;
    state.limiter.bytes_used = 0;
    let costs = state.shared.params.costs.clone();
    let fuel_limit = input.fuel_limit.0;
    let result = store
        .set_fuel(fuel_limit)
        .map_err(classify)
        .and_then(|()| {
            let base = costs
                .input_base
                .saturating_add(costs.per_byte.saturating_mul(input.data.len() as u64));
            charge(&mut *store, base).map_err(classify)
        })
        .and_then(|()| {
            let export = match entry {
                Entry::Call => CALL_EXPORT,
                Entry::Init => INIT_EXPORT,
            };
            invoke(
                &mut *store,
                input.contract,
                input.caller,
                input.data.clone(),
                export,
            )
        });
    let fuel_used = Fuel(fuel_limit.saturating_sub(store.get_fuel().unwrap_or(0)));
    let state = store.data_mut();
    let pending = std::mem::take(&mut state.pending);
    let events = std::mem::take(&mut state.events);
    match result {
        Err(error) => (
            Receipt {
                result: Err(error),
                fuel_used,
                events: Vec::new(),
            },
            Vec::new(),
        ),
        Ok(output) => {
            let mut touched = Vec::with_capacity(pending.len());
            for (id, writes) in pending {
                let Some(entry) = state.contracts.get_mut(&id) else {
                    continue;
                };
                for (key, value) in writes {
                    match value {
                        Some(value) => entry
                            .state
                            .insert_owned(key.into_boxed_slice(), value.into_boxed_slice()),
                        None => entry.state.remove(&key),
                    };
                }
                touched.push(id);
            }
            (
                Receipt {
                    result: Ok(output),
                    fuel_used,
                    events,
                },
                touched,
            )
        }
    }
}
