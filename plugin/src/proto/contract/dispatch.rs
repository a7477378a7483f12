//! Whether this build's wasmi instruction dispatch keeps the native stack flat.
//!
//! wasmi dispatches instructions in one of two ways, chosen when wasmi is *compiled*
//! (`auto-dispatch`, see `params.rs`): a loop (portable, always flat), or each instruction's
//! handler calling the next one in tail position, which is ~30–40% faster but is flat only if
//! LLVM turns every such call into a jump. wasmi's build script picks the tail calls only for an
//! optimising build on a target known to do that; a build setting it cannot see (debug
//! assertions in an optimised dependency, for one, which is how Bevy's recommended dev profile
//! builds wasmi) can still leave a call that pushes a frame per instruction executed. A contract
//! loop of a few million instructions would then overflow the native stack and abort the whole
//! process — any peer's contract could do it.
//!
//! So before the first host is made, [`check`] runs a probe once per process: a loop through
//! the handler families a contract can repeat — locals, constants, arithmetic, loads and stores,
//! a global, an internal call, `call_indirect`, a host call, `memory.grow`, `table.grow`,
//! `memory.fill`, `memory.copy`, `br_table` and `br` — that after 16 and after [`LONG_RUN`]
//! iterations calls a host function noting how deep the native stack is. Flat dispatch gives the
//! same depth both times; a handler that keeps its frame shows as at least 8,000 frames (over
//! 100 KiB) more after the long run. The probe runs on its own thread with a large stack, so even
//! a build that fails it cannot overflow, and its store has a resource limiter as the host's do
//! (the grow handlers call it). A failing build gets [`ContractError::UnsafeDispatch`] from
//! `ContractHost::new` and runs no contract.
//!
//! LLVM decides per handler whether its final call becomes a jump (on stable Rust wasmi's
//! `dispatch!` is a plain `return handler(..)`), so the probe covers the handlers most likely to
//! keep a frame — those that pass a local's address to an opaque call (host calls, the grow
//! handlers, `memory.copy`) — and the common ones. It does not run every one of wasmi's several
//! hundred handler variants; a build that keeps a frame only in a handler outside the probe
//! would pass. Release builds, our dev profile and our benchmarks all show 0 bytes of growth.

// On wasm32 nothing is probed (see `probe_on_own_thread`); the probe stays compiled there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

use std::sync::OnceLock;

use super::error::ContractError;
use super::params::ConsensusParams;

/// Iterations of the long probe run: each runs about 25 handlers, so even one handler keeping a
/// 16-byte frame per iteration sinks the stack by 125 KiB.
const LONG_RUN: i32 = 8_000;

/// How much deeper the native stack may be after the long run (stack addresses of one call site
/// may differ by a few words between runs; a frame per instruction shows as megabytes).
const TOLERANCE_BYTES: usize = 16 * 1024;

/// The probe's own thread stack: more than a build that keeps a frame per handler would use for
/// [`LONG_RUN`] iterations (the worst build measured grew 28 MB), so the probe itself never
/// overflows; small enough to reserve on 32-bit targets.
const PROBE_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The probe module's text. The host takes binary wasm only, so the module itself is
/// [`PROBE_WASM`]; a unit test compiles this text with the `wat` crate and compares.
#[cfg_attr(not(test), allow(dead_code))]
const PROBE_WAT: &str = r#"(module
  (type $s (func (param i32) (result i32)))
  (import "p" "mark" (func $mark))
  (import "p" "nop" (func $nop))
  (memory 1)
  (table 1 funcref)
  (elem (i32.const 0) $step)
  (global $g (mut i32) (i32.const 0))
  (func $step (type $s) local.get 0 i32.const 1 i32.add)
  (func (export "run") (param $n i32) (local $acc i64)
    (loop $l
      i32.const 8 local.get $acc i64.store
      i32.const 8 i64.load i64.const 3 i64.mul local.set $acc
      global.get $g call $step global.set $g
      global.get $g i32.const 0 call_indirect (type $s) global.set $g
      call $nop
      i32.const 0 memory.grow drop
      ref.null func i32.const 0 table.grow 0 drop
      i32.const 16 i32.const 0 i32.const 8 memory.fill
      i32.const 24 i32.const 8 i32.const 8 memory.copy
      (block $b
        (block $a
          local.get $n i32.const 3 i32.and
          br_table $a $b $a))
      (block $c br $c)
      local.get $n i32.const -1 i32.add local.tee $n
      br_if $l)
    call $mark))"#;

/// [`PROBE_WAT`] assembled, without the custom name section the text format adds.
pub(crate) const PROBE_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0d, 0x03, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x00, 0x02, 0x12, 0x02, 0x01, 0x70, 0x04, 0x6d, 0x61, 0x72,
    0x6b, 0x00, 0x01, 0x01, 0x70, 0x03, 0x6e, 0x6f, 0x70, 0x00, 0x01, 0x03, 0x03, 0x02, 0x00, 0x02,
    0x04, 0x04, 0x01, 0x70, 0x00, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x01,
    0x41, 0x00, 0x0b, 0x07, 0x07, 0x01, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x03, 0x09, 0x07, 0x01, 0x00,
    0x41, 0x00, 0x0b, 0x01, 0x02, 0x0a, 0x73, 0x02, 0x07, 0x00, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x0b,
    0x69, 0x01, 0x01, 0x7e, 0x03, 0x40, 0x41, 0x08, 0x20, 0x01, 0x37, 0x03, 0x00, 0x41, 0x08, 0x29,
    0x03, 0x00, 0x42, 0x03, 0x7e, 0x21, 0x01, 0x23, 0x00, 0x10, 0x02, 0x24, 0x00, 0x23, 0x00, 0x41,
    0x00, 0x11, 0x00, 0x00, 0x24, 0x00, 0x10, 0x01, 0x41, 0x00, 0x40, 0x00, 0x1a, 0xd0, 0x70, 0x41,
    0x00, 0xfc, 0x0f, 0x00, 0x1a, 0x41, 0x10, 0x41, 0x00, 0x41, 0x08, 0xfc, 0x0b, 0x00, 0x41, 0x18,
    0x41, 0x08, 0x41, 0x08, 0xfc, 0x0a, 0x00, 0x00, 0x02, 0x40, 0x02, 0x40, 0x20, 0x00, 0x41, 0x03,
    0x71, 0x0e, 0x02, 0x00, 0x01, 0x00, 0x0b, 0x0b, 0x02, 0x40, 0x0c, 0x00, 0x0b, 0x20, 0x00, 0x41,
    0x7f, 0x6a, 0x22, 0x00, 0x0d, 0x00, 0x0b, 0x10, 0x00, 0x0b,
];

/// Whether contracts may run in this process: the probe's verdict, computed once. Only a
/// verdict is kept; a probe that could not run (no thread, say) is tried again next time.
pub(crate) fn check() -> Result<(), ContractError> {
    static VERDICT: OnceLock<Result<(), ContractError>> = OnceLock::new();
    if let Some(verdict) = VERDICT.get() {
        return verdict.clone();
    }
    let verdict = probe_on_own_thread();
    if matches!(verdict, Ok(()) | Err(ContractError::UnsafeDispatch { .. })) {
        let _ = VERDICT.set(verdict.clone());
    }
    verdict
}

#[cfg(not(target_arch = "wasm32"))]
fn probe_on_own_thread() -> Result<(), ContractError> {
    match growth_on_own_thread()? {
        growth if growth <= TOLERANCE_BYTES => Ok(()),
        growth => Err(ContractError::UnsafeDispatch { growth }),
    }
}

/// [`stack_growth`] on a thread with a stack large enough for any build.
#[cfg(not(target_arch = "wasm32"))]
fn growth_on_own_thread() -> Result<usize, ContractError> {
    let probe = std::thread::Builder::new()
        .name("meshwork-dispatch-probe".into())
        .stack_size(PROBE_STACK_BYTES)
        .spawn(stack_growth);
    match probe.map(std::thread::JoinHandle::join) {
        Ok(Ok(Ok(growth))) => Ok(growth),
        Ok(Ok(Err(reason))) => Err(ContractError::Internal { reason }),
        Ok(Err(_)) => Err(ContractError::Internal {
            reason: "the dispatch probe panicked".into(),
        }),
        Err(e) => Err(ContractError::Internal {
            reason: format!("cannot start the dispatch probe: {e}"),
        }),
    }
}

/// Not probed on wasm32: without the tail-call proposal (our browser build, and rustc's default
/// for wasm32-unknown-unknown) wasmi dispatches in a loop; a build that enables `+tail-call` is
/// not checked (a host-side address cannot see the engine's frames there). There is also no
/// thread to probe on.
#[cfg(target_arch = "wasm32")]
fn probe_on_own_thread() -> Result<(), ContractError> {
    Ok(())
}

/// The probe's store data: the stack address `mark` saw, and limits for the grow handlers.
struct ProbeState {
    depth: usize,
    limits: wasmi::StoreLimits,
}

/// How many bytes deeper the native stack was at the end of the long run than of the short one.
fn stack_growth() -> Result<usize, String> {
    let engine = wasmi::Engine::new(&ConsensusParams::default().wasmi_config());
    let module = wasmi::Module::new(&engine, PROBE_WASM).map_err(|e| e.to_string())?;
    let state = ProbeState {
        depth: 0,
        limits: wasmi::StoreLimitsBuilder::new().build(),
    };
    let mut store = wasmi::Store::new(&engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_fuel(u64::MAX).map_err(|e| e.to_string())?;
    let mark = wasmi::Func::wrap(&mut store, |mut caller: wasmi::Caller<'_, ProbeState>| {
        let here = 0u8;
        caller.data_mut().depth = std::hint::black_box(&here) as *const u8 as usize;
    });
    let nop = wasmi::Func::wrap(&mut store, |_: wasmi::Caller<'_, ProbeState>| {});
    let instance = wasmi::Instance::new(&mut store, &module, &[mark.into(), nop.into()])
        .map_err(|e| e.to_string())?;
    let run = instance
        .get_typed_func::<i32, ()>(&store, "run")
        .map_err(|e| e.to_string())?;
    let mut depth_after = |n: i32| -> Result<usize, String> {
        run.call(&mut store, n).map_err(|e| e.to_string())?;
        Ok(store.data().depth)
    };
    let short = depth_after(16)?;
    let long = depth_after(LONG_RUN)?;
    Ok(short.abs_diff(long))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_bytes_are_the_documented_module() {
        let parsed = wat::parse_str(PROBE_WAT).expect("valid wat");
        // The same module; the text format adds a custom "name" section (id 0) at the end.
        let (module, names) = parsed.split_at(PROBE_WASM.len());
        assert_eq!(module, PROBE_WASM);
        assert_eq!(names.first(), Some(&0));
    }

    #[test]
    fn this_build_dispatches_on_a_flat_stack() {
        let growth = growth_on_own_thread().expect("the probe runs");
        println!("native stack growth over the long probe run: {growth} bytes");
        assert!(growth <= TOLERANCE_BYTES, "stack grew by {growth} bytes");
        assert_eq!(check(), Ok(()));
    }
}
