//! Deterministic WASM contracts: a sans-IO host on wasmi with fuel metering, composition between
//! contracts, and sha256 Merkle-committed key-value state.
//!
//! ```
//! use meshwork::proto::contract::{Address, ConsensusParams, ContractHost, Fuel, Input, Tick};
//!
//! // A contract that stores its input under the key "k" and echoes it back.
//! let wasm = wat::parse_str(r#"(module
//!     (import "mw1" "input_len" (func $input_len (result i32)))
//!     (import "mw1" "input_read" (func $input_read (param i32)))
//!     (import "mw1" "storage_set" (func $set (param i32 i32 i32 i32)))
//!     (import "mw1" "output" (func $output (param i32 i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 0) "k")
//!     (func (export "mw_call") (local $n i32)
//!         (local.set $n (call $input_len))
//!         (call $input_read (i32.const 16))
//!         (call $set (i32.const 0) (i32.const 1) (i32.const 16) (local.get $n))
//!         (call $output (i32.const 16) (local.get $n))))"#).unwrap();
//!
//! let mut host = ContractHost::new(ConsensusParams::default()).unwrap();
//! let code = host.load_code(&wasm).unwrap();
//! let me = Address([7; 32]);
//! let (id, _) = host.instantiate(code, me, &[0; 32], &[], Tick(0), Fuel(100_000)).unwrap();
//! let receipt = host.apply(&Input {
//!     contract: id, caller: me, tick: Tick(1), fuel_limit: Fuel(100_000), data: b"hello".to_vec(),
//! });
//! assert_eq!(receipt.output().unwrap(), b"hello");
//! assert_eq!(host.read(&id, b"k").unwrap(), Some(&b"hello"[..]));
//! let root = host.contract_root(&id).unwrap();
//! assert!(host.prove(&id, b"k").unwrap().verify(&root.0, b"k", Some(b"hello")));
//! ```
//!
//! # Model
//!
//! - **Code** is a wasm binary, identified by its [`CodeHash`] (sha256 of the bytes). It is
//!   validated and compiled once, eagerly, by [`ContractHost::load_code`]; see [`ConsensusParams`]
//!   for the feature set (floats allowed with canonical NaNs; SIMD, threads, memory64, start
//!   functions refused).
//! - A **contract** is code plus a key-value state at a [`ContractId`] derived from the code hash,
//!   the creator and a salt. Its state commits to a sha256 Merkle root ([`MerkleMap`]); the host
//!   commits to all contracts with one more tree keyed by contract id whose values are
//!   `code hash ‖ state root` ([`ContractHost::root`]).
//! - An **input** runs one contract's `mw_call` export. Every call — top-level or nested —
//!   runs in a *fresh instance*: linear memory and globals never survive a call, only the
//!   key-value state does. So a transition `(prior root, ordered inputs) → (next root, receipts,
//!   events, fuel used)` depends on nothing else, and [`TransitionResult::encode`] gives the same
//!   bytes on every peer, native or wasm32. (A fresh instance is the *state*, not necessarily a
//!   new allocation: see "Instance reuse" below.)
//! - An input is **atomic**: if it traps, none of its writes or events (nested calls included)
//!   are kept; it still burns the fuel it used. A nested `call` is atomic too: if the callee
//!   fails, its writes and events are rolled back and the caller continues with a status code.
//!
//! # ABI v1, byte by byte
//!
//! A contract module must:
//! - define exactly one memory (32-bit, unshared, initial size ≤ `memory_pages_max`) and export
//!   it as `memory`;
//! - export `mw_call: [] -> []`, run for every input and every nested call;
//! - optionally export `mw_init: [] -> []`, run once by [`ContractHost::instantiate`];
//! - import only the functions below, from module `"mw1"`, with exactly these types;
//! - have no start function and at most one table.
//!
//! All `i32` offsets and lengths are read as unsigned 32-bit (`u32`); a region
//! `memory[ptr .. ptr + len]` outside the memory traps with [`ContractError::HostMemoryAccess`].
//! Ids are 32 raw bytes. `i64` values are the two's-complement bits of a `u64`. Every host call
//! first charges `host_call_base` plus the extras listed (see [`FuelCosts`]); `per_byte` is
//! charged on every byte copied between memory and host.
//!
//! | import | type | semantics |
//! |---|---|---|
//! | `input_len` | `[] -> [i32]` | length of this call's input |
//! | `input_read` | `[i32 dst] -> []` | copy the whole input to `memory[dst..]` |
//! | `output` | `[i32 src, i32 len] -> []` | set this call's output to `memory[src..src+len]` (the last call wins); `len ≤ output_bytes_max` |
//! | `abort` | `[i32 msg, i32 len] -> []` | trap with [`ContractError::Aborted`] carrying `memory[msg..msg+min(len, abort_message_bytes_max)]`; never returns |
//! | `caller` | `[i32 dst] -> []` | write the 32-byte caller to `memory[dst..dst+32]`: the input's [`Address`] at top level, the calling contract's id in a nested call |
//! | `self_id` | `[i32 dst] -> []` | write this contract's 32-byte id |
//! | `tick` | `[] -> [i64]` | the input's [`Tick`] |
//! | `fuel_left` | `[] -> [i64]` | fuel remaining (after this call's charge) |
//! | `storage_get` | `[i32 key, i32 key_len, i32 dst, i32 cap] -> [i32]` | `-1` if the key is absent; else the value's full length `n`, with `min(n, cap)` bytes copied to `memory[dst..]`. Extra: `storage_read` |
//! | `storage_set` | `[i32 key, i32 key_len, i32 val, i32 val_len] -> []` | set key to value. `key_len ≤ key_bytes_max`, `val_len ≤ value_bytes_max`, and the input's total key+value bytes written `≤ state_bytes_written_per_input_max`, else [`ContractError::StateLimit`]. Extra: `storage_write + storage_write_per_byte × (key_len + val_len)` |
//! | `storage_remove` | `[i32 key, i32 key_len] -> [i32]` | remove the key; `1` if it existed, else `0`. Extra: `storage_write` |
//! | `emit` | `[i32 topic, i32 topic_len, i32 data, i32 data_len] -> []` | record an [`Event`]. Limits `event_topic_bytes_max`, `event_data_bytes_max`, `events_per_input_max`, else [`ContractError::EventLimit`]. Extra: `emit` |
//! | `call` | `[i32 contract, i32 input, i32 input_len, i64 fuel] -> [i32]` | run contract `memory[contract..contract+32]`'s `mw_call` with `memory[input..input+input_len]` as input and at most `min(fuel as u64, fuel_left)` fuel, charged to the caller. Returns `n ≥ 0` = success with an `n`-byte output now in the return data, or a status: `-1` the callee aborted (return data = its message), `-2` it ran out of fuel, `-3` it trapped or broke a limit, `-4` no such contract. On any failure the callee's writes and events are rolled back. *Traps the caller* with [`ContractError::Reentry`] if the callee is already on the call stack (including itself), [`ContractError::CallDepthExceeded`] beyond `call_depth_max` nested levels, [`ContractError::CallLimit`] beyond `calls_per_input_max` calls per input. Extra: `call` (+ the callee's instantiation) |
//! | `return_data_len` | `[] -> [i32]` | length of the last `call`'s return data (0 before any) |
//! | `return_data_read` | `[i32 dst] -> []` | copy the return data to `memory[dst..]` |
//!
//! Each instantiation charges `instantiate_base + instantiate_per_page × initial pages`; each
//! input charges `input_base + per_byte × input length` before anything runs.
//!
//! Storage keys and values are opaque bytes; each contract sees only its own keys. Reads see the
//! input's own pending writes.
//!
//! # Instance reuse
//!
//! Instantiating costs more than a small call (allocating and zeroing memory, copying data
//! segments, resolving imports), so the host reuses instances of *resettable* modules, decided
//! at load time ([`ContractHost::reuses_instances`]): every mutable global is exported, none is
//! imported, and no function contains `table.set`, `table.grow`, `table.fill`, `table.copy`,
//! `table.init`, `elem.drop`, `data.drop` or `memory.init`. After a call (successful or not) such
//! an instance is reset — every memory byte to the image taken right after the module's first
//! instantiation in that wasmi store, every mutable global to its initial value — and pooled; if
//! its memory grew it is dropped instead. Nothing else in an instance can change, so a reset
//! instance is indistinguishable from a new one to the code it runs. Fuel and the memory budget
//! are charged exactly as for a new instance, so reuse changes no result, receipt or fuel figure
//! (a test runs the same inputs on a resettable and an unresettable build of one module and
//! compares). The Rust contracts export `__stack_pointer` (their `build.rs`) to be resettable.
//! The store holding the pool is kept across transitions and shared with forks.

mod abi;
mod batch;
mod dispatch;
mod error;
mod exec;
mod host;
mod merkle;
mod params;
mod types;
mod validate;

pub use abi::{ABI_MODULE, CALL_ABORTED, CALL_NO_CONTRACT, CALL_OUT_OF_FUEL, CALL_TRAPPED};
pub use error::{ContractError, TrapKind};
pub use host::{ContractHost, StateEntry, TransitionResult};
pub use merkle::{EMPTY_ROOT, MerkleMap, MerkleProof, ProofTerminal};
pub use params::{ConsensusParams, FuelCosts, PAGE_BYTES};
pub use types::{
    Address, CodeHash, ContractId, Digest, Event, Fuel, Input, Receipt, StateRoot, Tick,
};
