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
//! So before the first host is made, [`check`] runs a probe once per process: a loop exercising
//! locals, constants, arithmetic, linear memory, a global and an internal call, after 16 and
//! after [`LONG_RUN`] iterations calls a host function that notes how deep the native stack is.
//! Flat dispatch gives the same depth both times; a frame per instruction would show at least
//! tens of KiB more after the long run. The probe runs on its own thread with a large stack, so
//! even a build that fails it cannot overflow. A failing build gets
//! [`ContractError::UnsafeDispatch`] from `ContractHost::new` and runs no contract.
//!
//! The probe covers the handlers a tight loop uses, not all of wasmi's several hundred; wasmi
//! generates every handler from the same macro, so a build that keeps these flat keeps the others
//! flat too, and a build that does not is caught here.

// On wasm32 nothing is probed (see `probe_on_own_thread`); the probe stays compiled there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

use std::sync::OnceLock;

use super::error::ContractError;
use super::params::ConsensusParams;

/// Iterations of the long probe run: each runs a dozen handlers, so a build whose handlers each
/// kept even a 16-byte frame would sink the stack by more than 1 MiB.
const LONG_RUN: i32 = 8_000;

/// How much deeper the native stack may be after the long run (stack addresses of one call site
/// may differ by a few words between runs; a frame per instruction shows as megabytes).
const TOLERANCE_BYTES: usize = 16 * 1024;

/// The probe's own thread stack: far more than a build that keeps a frame per handler would use
/// for [`LONG_RUN`] iterations, so the probe itself never overflows.
const PROBE_STACK_BYTES: usize = 256 * 1024 * 1024;

/// The probe module, assembled by hand (the host takes binary wasm only; the unit test checks
/// these bytes against the text below):
///
/// ```wat
/// (module
///   (import "p" "mark" (func $mark))
///   (memory 1)
///   (global $g (mut i32) (i32.const 0))
///   (func $step (param i32) (result i32) local.get 0 i32.const 1 i32.add)
///   (func (export "run") (param $n i32) (local $acc i64)
///     (loop $l
///       i32.const 8 local.get $acc i64.store
///       i32.const 8 i64.load i64.const 3 i64.mul local.set $acc
///       global.get $g call $step global.set $g
///       local.get $n i32.const -1 i32.add local.tee $n
///       br_if $l)
///     call $mark))
/// ```
pub(crate) const PROBE_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    // types: () -> (), (i32) -> i32, (i32) -> ()
    0x01, 0x0d, 0x03, 0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x00,
    // import "p" "mark" (type 0)
    0x02, 0x0a, 0x01, 0x01, 0x70, 0x04, 0x6d, 0x61, 0x72, 0x6b, 0x00, 0x00,
    // functions: $step (type 1), run (type 2)
    0x03, 0x03, 0x02, 0x01, 0x02, //
    // memory: min 1 page
    0x05, 0x03, 0x01, 0x00, 0x01, //
    // global: mut i32 = 0
    0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b, //
    // export "run" = function 2
    0x07, 0x07, 0x01, 0x03, 0x72, 0x75, 0x6e, 0x00, 0x02, //
    // code
    0x0a, 0x33, 0x02, //
    0x07, 0x00, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x0b, // $step
    0x29, 0x01, 0x01, 0x7e, // run: one i64 local
    0x03, 0x40, // loop
    0x41, 0x08, 0x20, 0x01, 0x37, 0x03, 0x00, // i64.store [8] = acc
    0x41, 0x08, 0x29, 0x03, 0x00, 0x42, 0x03, 0x7e, 0x21, 0x01, // acc = [8] * 3
    0x23, 0x00, 0x10, 0x01, 0x24, 0x00, // g = step(g)
    0x20, 0x00, 0x41, 0x7f, 0x6a, 0x22, 0x00, 0x0d, 0x00, // n -= 1; br_if n
    0x0b, // end loop
    0x10, 0x00, // call $mark
    0x0b, // end
];

/// Whether contracts may run in this process: the probe's verdict, computed once.
pub(crate) fn check() -> Result<(), ContractError> {
    static VERDICT: OnceLock<Result<(), ContractError>> = OnceLock::new();
    VERDICT.get_or_init(probe_on_own_thread).clone()
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

/// On wasm32 wasmi uses tail calls only with the tail-call proposal enabled, whose
/// `return_call` is a guaranteed jump; otherwise it dispatches in a loop. Nothing to probe (and
/// no threads to probe on).
#[cfg(target_arch = "wasm32")]
fn probe_on_own_thread() -> Result<(), ContractError> {
    Ok(())
}

/// How many bytes deeper the native stack was at the end of the long run than of the short one.
fn stack_growth() -> Result<usize, String> {
    let engine = wasmi::Engine::new(&ConsensusParams::default().wasmi_config());
    let module = wasmi::Module::new(&engine, PROBE_WASM).map_err(|e| e.to_string())?;
    let mut store = wasmi::Store::new(&engine, 0usize);
    store.set_fuel(u64::MAX).map_err(|e| e.to_string())?;
    let mark = wasmi::Func::wrap(&mut store, |mut caller: wasmi::Caller<'_, usize>| {
        let here = 0u8;
        *caller.data_mut() = std::hint::black_box(&here) as *const u8 as usize;
    });
    let instance =
        wasmi::Instance::new(&mut store, &module, &[mark.into()]).map_err(|e| e.to_string())?;
    let run = instance
        .get_typed_func::<i32, ()>(&store, "run")
        .map_err(|e| e.to_string())?;
    let mut depth_after = |n: i32| -> Result<usize, String> {
        run.call(&mut store, n).map_err(|e| e.to_string())?;
        Ok(*store.data())
    };
    let short = depth_after(16)?;
    let long = depth_after(LONG_RUN)?;
    // The stack grows downwards on every target this runs on: deeper = a lower address.
    Ok(short.saturating_sub(long))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_bytes_are_the_documented_module() {
        let text = r#"(module
          (import "p" "mark" (func $mark))
          (memory 1)
          (global $g (mut i32) (i32.const 0))
          (func $step (param i32) (result i32) local.get 0 i32.const 1 i32.add)
          (func (export "run") (param $n i32) (local $acc i64)
            (loop $l
              i32.const 8 local.get $acc i64.store
              i32.const 8 i64.load i64.const 3 i64.mul local.set $acc
              global.get $g call $step global.set $g
              local.get $n i32.const -1 i32.add local.tee $n
              br_if $l)
            call $mark))"#;
        let parsed = wat::parse_str(text).expect("valid wat");
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
