//! The host functions behind the ABI in the [module docs](super). Every function charges fuel
//! before doing work, checks lengths against the limits before touching memory, and reports
//! misuse as a typed trap; none can panic.

use wasmi::{Caller, Func, Linker, Store, ValType};

use super::error::ContractError;
use super::exec::{CALL_EXPORT, ExecState, charge, invoke, trap};
use super::types::{Address, ContractId, Event};

/// The import module name of ABI version 1.
pub const ABI_MODULE: &str = "mw1";

/// Status `call` returns when the callee called `abort` (its message is the return data).
pub const CALL_ABORTED: i32 = -1;
/// Status `call` returns when the callee ran out of its fuel budget.
pub const CALL_OUT_OF_FUEL: i32 = -2;
/// Status `call` returns when the callee trapped or broke a limit.
pub const CALL_TRAPPED: i32 = -3;
/// Status `call` returns when no contract has the given id.
pub const CALL_NO_CONTRACT: i32 = -4;

use ValType::{I32, I64};

/// Every import of the ABI: name, parameters, results. Anything else is refused at load time.
pub(crate) const IMPORTS: &[(&str, &[ValType], &[ValType])] = &[
    ("input_len", &[], &[I32]),
    ("input_read", &[I32], &[]),
    ("output", &[I32, I32], &[]),
    ("abort", &[I32, I32], &[]),
    ("caller", &[I32], &[]),
    ("self_id", &[I32], &[]),
    ("tick", &[], &[I64]),
    ("fuel_left", &[], &[I64]),
    ("storage_get", &[I32, I32, I32, I32], &[I32]),
    ("storage_set", &[I32, I32, I32, I32], &[]),
    ("storage_remove", &[I32, I32], &[I32]),
    ("emit", &[I32, I32, I32, I32], &[]),
    ("call", &[I32, I32, I32, I64], &[I32]),
    ("return_data_len", &[], &[I32]),
    ("return_data_read", &[I32], &[]),
];

type Ctx<'a> = Caller<'a, ExecState>;
type HostResult<T> = Result<T, wasmi::Error>;

/// A wasm `i32` used as an offset or length: reinterpreted as `u32`, never sign-extended.
fn u32_of(value: i32) -> u32 {
    u32::from_ne_bytes(value.to_ne_bytes())
}

/// `len` as a wasm `i32` result (lengths are bounded by limits far below `i32::MAX`).
fn i32_of(len: usize) -> HostResult<i32> {
    i32::try_from(len).map_err(|_| {
        trap(ContractError::ArgumentTooLarge {
            what: "length does not fit an i32",
        })
    })
}

/// Charges `host_call_base + extra + per_byte * bytes`.
fn charge_call(ctx: &mut Ctx<'_>, extra: u64, bytes: u64) -> HostResult<()> {
    let costs = &ctx.data().shared.params.costs;
    let cost = costs
        .host_call_base
        .saturating_add(extra)
        .saturating_add(costs.per_byte.saturating_mul(bytes));
    charge(ctx, cost)
}

/// `f` of `memory[ptr .. ptr + len]` of the current frame.
fn with_memory<T>(ctx: &Ctx<'_>, ptr: i32, len: u32, f: impl FnOnce(&[u8]) -> T) -> HostResult<T> {
    let memory = ctx.data().frame()?.memory.ok_or_else(no_memory)?;
    let start = u32_of(ptr) as usize;
    let end = start
        .checked_add(len as usize)
        .ok_or_else(|| trap(ContractError::HostMemoryAccess))?;
    memory
        .data(ctx)
        .get(start..end)
        .map(f)
        .ok_or_else(|| trap(ContractError::HostMemoryAccess))
}

/// `memory[ptr .. ptr + len]` of the current frame, copied out.
fn read_memory(ctx: &Ctx<'_>, ptr: i32, len: u32) -> HostResult<Vec<u8>> {
    with_memory(ctx, ptr, len, <[u8]>::to_vec)
}

/// Copies `bytes` to `memory[ptr ..]` of the current frame.
fn write_memory(ctx: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> HostResult<()> {
    let memory = ctx.data().frame()?.memory.ok_or_else(no_memory)?;
    let start = u32_of(ptr) as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or_else(|| trap(ContractError::HostMemoryAccess))?;
    memory
        .data_mut(ctx)
        .get_mut(start..end)
        .ok_or_else(|| trap(ContractError::HostMemoryAccess))?
        .copy_from_slice(bytes);
    Ok(())
}

/// Bytes copied out of (or for) linear memory: inline when short (keys, most values), so that a
/// storage call allocates nothing on the host for them.
enum Copied {
    Inline([u8; INLINE_BYTES], usize),
    Heap(Vec<u8>),
}

/// Longest byte string [`Copied`] keeps inline.
const INLINE_BYTES: usize = 64;

impl Copied {
    fn of(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE_BYTES {
            let mut inline = [0; INLINE_BYTES];
            inline[..bytes.len()].copy_from_slice(bytes);
            Self::Inline(inline, bytes.len())
        } else {
            Self::Heap(bytes.to_vec())
        }
    }
}

impl core::ops::Deref for Copied {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline(bytes, len) => &bytes[..*len],
            Self::Heap(bytes) => bytes,
        }
    }
}

/// [`read_memory`] into a [`Copied`].
fn read_memory_copied(ctx: &Ctx<'_>, ptr: i32, len: u32) -> HostResult<Copied> {
    with_memory(ctx, ptr, len, Copied::of)
}

fn no_memory() -> wasmi::Error {
    trap(ContractError::Internal {
        reason: "frame has no memory".into(),
    })
}

/// Fails with `error` if `len > max`.
fn check_len(len: i32, max: u32, error: ContractError) -> HostResult<u32> {
    let len = u32_of(len);
    if len > max {
        return Err(trap(error));
    }
    Ok(len)
}

/// Creates every host function of the ABI in `store` and a linker that resolves imports to them.
///
/// Done once per store rather than with store-independent `Linker::func_wrap` definitions, which
/// would allocate a fresh host function entity per import on *every* instantiation (and every
/// call instantiates).
pub(crate) fn linker(store: &mut Store<ExecState>) -> Result<Linker<ExecState>, ContractError> {
    let mut l = Linker::<ExecState>::new(store.engine());
    define(&mut l, store).map_err(|e| ContractError::Internal {
        reason: e.to_string(),
    })?;
    Ok(l)
}

fn define(
    l: &mut Linker<ExecState>,
    s: &mut Store<ExecState>,
) -> Result<(), wasmi::errors::LinkerError> {
    let m = ABI_MODULE;
    l.define(
        m,
        "input_len",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>| -> HostResult<i32> {
            charge_call(&mut ctx, 0, 0)?;
            i32_of(ctx.data().frame()?.input.len())
        }),
    )?;
    l.define(
        m,
        "input_read",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>, dst: i32| -> HostResult<()> {
            let input = ctx.data().frame()?.input.clone();
            charge_call(&mut ctx, 0, input.len() as u64)?;
            write_memory(&mut ctx, dst, &input)
        }),
    )?;
    l.define(
        m,
        "output",
        Func::wrap(
            &mut *s,
            |mut ctx: Ctx<'_>, src: i32, len: i32| -> HostResult<()> {
                let max = ctx.data().shared.params.output_bytes_max;
                let what = ContractError::ArgumentTooLarge { what: "output" };
                let len = check_len(len, max, what)?;
                charge_call(&mut ctx, 0, u64::from(len))?;
                let bytes = read_memory(&ctx, src, len)?;
                ctx.data_mut().frame_mut()?.output = bytes;
                Ok(())
            },
        ),
    )?;
    l.define(
        m,
        "abort",
        Func::wrap(
            &mut *s,
            |mut ctx: Ctx<'_>, msg: i32, len: i32| -> HostResult<()> {
                let max = ctx.data().shared.params.abort_message_bytes_max;
                // Longer messages are truncated, not refused: aborting must always work.
                let len = u32_of(len).min(max);
                charge_call(&mut ctx, 0, u64::from(len))?;
                let message = read_memory(&ctx, msg, len)?;
                Err(trap(ContractError::Aborted { message }))
            },
        ),
    )?;
    l.define(
        m,
        "caller",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>, dst: i32| -> HostResult<()> {
            charge_call(&mut ctx, 0, 32)?;
            let caller = ctx.data().frame()?.caller;
            write_memory(&mut ctx, dst, &caller.0)
        }),
    )?;
    l.define(
        m,
        "self_id",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>, dst: i32| -> HostResult<()> {
            charge_call(&mut ctx, 0, 32)?;
            let id = ctx.data().frame()?.contract;
            write_memory(&mut ctx, dst, &id.0)
        }),
    )?;
    l.define(
        m,
        "tick",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>| -> HostResult<i64> {
            charge_call(&mut ctx, 0, 0)?;
            Ok(i64::from_ne_bytes(ctx.data().tick.0.to_ne_bytes()))
        }),
    )?;
    l.define(
        m,
        "fuel_left",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>| -> HostResult<i64> {
            charge_call(&mut ctx, 0, 0)?;
            let left = ctx.get_fuel()?;
            Ok(i64::try_from(left).unwrap_or(i64::MAX))
        }),
    )?;
    l.define(m, "storage_get", Func::wrap(&mut *s, storage_get))?;
    l.define(m, "storage_set", Func::wrap(&mut *s, storage_set))?;
    l.define(m, "storage_remove", Func::wrap(&mut *s, storage_remove))?;
    l.define(m, "emit", Func::wrap(&mut *s, emit))?;
    l.define(m, "call", Func::wrap(&mut *s, call))?;
    l.define(
        m,
        "return_data_len",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>| -> HostResult<i32> {
            charge_call(&mut ctx, 0, 0)?;
            i32_of(ctx.data().frame()?.return_data.len())
        }),
    )?;
    l.define(
        m,
        "return_data_read",
        Func::wrap(&mut *s, |mut ctx: Ctx<'_>, dst: i32| -> HostResult<()> {
            let data = ctx.data().frame()?.return_data.clone();
            charge_call(&mut ctx, 0, data.len() as u64)?;
            write_memory(&mut ctx, dst, &data)
        }),
    )?;
    Ok(())
}

fn read_key(ctx: &mut Ctx<'_>, key: i32, key_len: i32, extra: u64) -> HostResult<Copied> {
    let max = ctx.data().shared.params.key_bytes_max;
    let key_len = check_len(
        key_len,
        max,
        ContractError::StateLimit { what: "key length" },
    )?;
    charge_call(ctx, extra, u64::from(key_len))?;
    read_memory_copied(ctx, key, key_len)
}

fn storage_get(mut ctx: Ctx<'_>, key: i32, key_len: i32, dst: i32, cap: i32) -> HostResult<i32> {
    let read_cost = ctx.data().shared.params.costs.storage_read;
    let key = read_key(&mut ctx, key, key_len, read_cost)?;
    let contract = ctx.data().frame()?.contract;
    // One lookup (each hashes the key): copy what fits out now, charge, then write it.
    let (len, value) = match ctx.data().read(&contract, &key) {
        None => return Ok(-1),
        Some(v) => (v.len(), Copied::of(&v[..v.len().min(u32_of(cap) as usize)])),
    };
    charge_call(&mut ctx, 0, value.len() as u64)?;
    if !value.is_empty() {
        write_memory(&mut ctx, dst, &value)?;
    }
    i32_of(len)
}

fn storage_set(mut ctx: Ctx<'_>, key: i32, key_len: i32, val: i32, val_len: i32) -> HostResult<()> {
    let params = &ctx.data().shared.params;
    let (max, per_byte, write_cost) = (
        params.value_bytes_max,
        params.costs.storage_write_per_byte,
        params.costs.storage_write,
    );
    let budget = u64::from(params.state_bytes_written_per_input_max);
    let what = ContractError::StateLimit {
        what: "value length",
    };
    let val_len = check_len(val_len, max, what)?;
    let key = read_key(&mut ctx, key, key_len, write_cost)?;
    let written = key.len() as u64 + u64::from(val_len);
    let total = ctx.data().bytes_written.saturating_add(written);
    if total > budget {
        return Err(trap(ContractError::StateLimit {
            what: "state bytes written per input",
        }));
    }
    charge_call(
        &mut ctx,
        per_byte.saturating_mul(written),
        u64::from(val_len),
    )?;
    let value = read_memory(&ctx, val, val_len)?;
    let contract = ctx.data().frame()?.contract;
    let data = ctx.data_mut();
    data.bytes_written = total;
    data.write(contract, &key, Some(value));
    Ok(())
}

fn storage_remove(mut ctx: Ctx<'_>, key: i32, key_len: i32) -> HostResult<i32> {
    let write_cost = ctx.data().shared.params.costs.storage_write;
    let key = read_key(&mut ctx, key, key_len, write_cost)?;
    let contract = ctx.data().frame()?.contract;
    let existed = ctx.data().read(&contract, &key).is_some();
    if existed {
        ctx.data_mut().write(contract, &key, None);
    }
    Ok(i32::from(existed))
}

fn emit(mut ctx: Ctx<'_>, topic: i32, topic_len: i32, data: i32, data_len: i32) -> HostResult<()> {
    let params = &ctx.data().shared.params;
    let (topic_max, data_max, count_max, cost) = (
        params.event_topic_bytes_max,
        params.event_data_bytes_max,
        usize::from(params.events_per_input_max),
        params.costs.emit,
    );
    let topic_len = check_len(
        topic_len,
        topic_max,
        ContractError::EventLimit { what: "topic" },
    )?;
    let data_len = check_len(
        data_len,
        data_max,
        ContractError::EventLimit { what: "data" },
    )?;
    if ctx.data().events.len() >= count_max {
        return Err(trap(ContractError::EventLimit {
            what: "events per input",
        }));
    }
    charge_call(&mut ctx, cost, u64::from(topic_len) + u64::from(data_len))?;
    let topic = read_memory(&ctx, topic, topic_len)?;
    let data = read_memory(&ctx, data, data_len)?;
    let contract = ctx.data().frame()?.contract;
    ctx.data_mut().events.push(Event {
        contract,
        topic,
        data,
    });
    Ok(())
}

/// `call(contract, input, input_len, fuel)`: see the ABI table in the module docs.
fn call(mut ctx: Ctx<'_>, contract: i32, input: i32, input_len: i32, fuel: i64) -> HostResult<i32> {
    let params = &ctx.data().shared.params;
    let (depth_max, calls_max, input_max, cost) = (
        usize::from(params.call_depth_max),
        params.calls_per_input_max,
        params.input_bytes_max,
        params.costs.call,
    );
    let input_len = check_len(
        input_len,
        input_max,
        ContractError::ArgumentTooLarge { what: "call input" },
    )?;
    charge_call(&mut ctx, cost, 32 + u64::from(input_len))?;
    let id = read_memory(&ctx, contract, 32)?;
    let callee = ContractId(
        id.try_into()
            .map_err(|_| trap(ContractError::HostMemoryAccess))?,
    );
    let input = read_memory(&ctx, input, input_len)?;
    let data = ctx.data();
    // frames[0] is the top-level call, so `frames.len()` is the depth the callee would run at.
    if data.frames.len() > depth_max {
        return Err(trap(ContractError::CallDepthExceeded));
    }
    if data.frames.iter().any(|f| f.contract == callee) {
        return Err(trap(ContractError::Reentry(callee)));
    }
    if data.calls >= calls_max {
        return Err(trap(ContractError::CallLimit));
    }
    if !data.contracts.contains_key(&callee) {
        ctx.data_mut().frame_mut()?.return_data.clear();
        return Ok(CALL_NO_CONTRACT);
    }
    let me = Address::from(data.frame()?.contract);
    let (mark, events_mark) = (data.journal.len(), data.events.len());
    ctx.data_mut().calls += 1;
    // The callee gets min(requested, remaining) and its use is charged to the caller.
    let remaining = ctx.get_fuel()?;
    let budget = u64::from_ne_bytes(fuel.to_ne_bytes()).min(remaining);
    ctx.set_fuel(budget)?;
    let result = invoke(&mut ctx, callee, me, input, CALL_EXPORT);
    let used = budget.saturating_sub(ctx.get_fuel().unwrap_or(0));
    ctx.set_fuel(remaining.saturating_sub(used))?;
    match result {
        Ok(output) => {
            let len = i32_of(output.len())?;
            ctx.data_mut().frame_mut()?.return_data = output;
            Ok(len)
        }
        Err(error) => {
            let data = ctx.data_mut();
            data.rollback(mark);
            data.events.truncate(events_mark);
            let (status, return_data) = match error {
                ContractError::Aborted { message } => (CALL_ABORTED, message),
                ContractError::OutOfFuel => (CALL_OUT_OF_FUEL, Vec::new()),
                ContractError::UnknownContract(_) => (CALL_NO_CONTRACT, Vec::new()),
                _ => (CALL_TRAPPED, Vec::new()),
            };
            data.frame_mut()?.return_data = return_data;
            Ok(status)
        }
    }
}
