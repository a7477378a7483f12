//! Guest SDK for Meshwork contracts, ABI v1 (specified in `meshwork::proto::contract`).
//!
//! A contract is a `cdylib` whose logic is written against the [`env::Env`] trait, so the same
//! source also compiles natively (the benchmark runs it that way to compare with wasmi):
//!
//! ```ignore
//! use meshwork_contract_sdk::{entry, env::Env};
//! fn call<E: Env>(env: &mut E, input: &[u8]) -> Result<Vec<u8>, &'static str> { Ok(input.to_vec()) }
//! entry!(call = call::<meshwork_contract_sdk::WasmEnv>);
//! ```
//!
//! On wasm32 the SDK also provides the global allocator (a bump allocator that never frees:
//! every call runs in a fresh instance, so memory is reclaimed when the instance is dropped or
//! reset) and the panic handler (`unreachable`, which the host reports as a trap and rolls back).
#![no_std]

extern crate alloc;

pub mod codec;
pub mod env;

#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
pub use wasm::{WasmEnv, run};

/// Exports `mw_call` (and optionally `mw_init`) running the given functions, each of type
/// `fn(&mut WasmEnv, &[u8]) -> Result<Vec<u8>, &'static str>`. `Ok` becomes the output, `Err`
/// aborts with the message (rolling back the call).
#[macro_export]
macro_rules! entry {
    (call = $call:path $(, init = $init:path)? $(,)?) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn mw_call() {
            $crate::run($call)
        }
        $(
            #[unsafe(no_mangle)]
            pub extern "C" fn mw_init() {
                $crate::run($init)
            }
        )?
    };
}
