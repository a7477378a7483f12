//! [`ConsensusParams`]: the one place where every limit, cost and engine switch is written down.
//!
//! Everything here changes what a transition computes, so every peer of a session must use the
//! same values; [`ConsensusParams::fingerprint`] gives a digest to agree on. The interpreter is
//! consensus code too: `wasmi` and `wasmparser` are pinned to exact versions in the workspace
//! `Cargo.toml`, and the crate features are chosen as follows:
//!
//! - `deterministic`: every float operation that produces a NaN yields the canonical NaN
//!   (`0x7fc0_0000` / `0x7ff8_0000_0000_0000`), so `f32.div 0 0` has the same bits on x86
//!   (whose hardware gives a negative NaN) as under V8 or on ARM. Floats are therefore *allowed*
//!   in contracts; the only nondeterminism wasm floats have is NaN bit patterns and those are
//!   gone. `neg`, `abs`, `copysign` and reinterpret are pure bit operations and deterministic.
//! - `validate`: untrusted modules are fully validated before translation.
//! - no `simd` (so SIMD and relaxed-SIMD, whose results may differ per platform, fail
//!   validation), no `memory64`, no `wat` (the host takes binary wasm only).
//! - `auto-dispatch`: wasmi picks its instruction dispatch when it is compiled — each handler
//!   tail-calling the next in an optimising build on a target whose LLVM backend does sibling
//!   calls (x86_64, aarch64, …), a loop otherwise (`opt-level` 0/1, wasm32 without the tail-call
//!   proposal). Dispatch changes speed only, never results or fuel. Tail calls run the world
//!   tick ~30% faster (bench: 98 → 70 µs; referee 7,900 → 10,800 ticks/s), but they keep the
//!   native stack flat only if LLVM turns *every* handler's call into a jump, which stable Rust
//!   does not promise: with debug assertions in an optimised wasmi (Bevy's recommended dev
//!   profile, and fuzz builds) a frame stays per instruction and a long contract loop would
//!   overflow the stack and abort the process. So the host probes its build once per process
//!   before running anything (`dispatch.rs`) and refuses with
//!   [`ContractError::UnsafeDispatch`](super::ContractError::UnsafeDispatch) if the stack grows.
//!   Our workspace turns wasmi's debug assertions off in the dev profile; the fuzz crate, whose
//!   sanitizer build cannot, names wasmi with `portable-dispatch`, which Cargo unifies into ours
//!   (the loop, always flat) — the same escape a game can use.
//! - [`wasmi::CompilationMode::Eager`]: lazy modes charge fuel for translation on the first call
//!   of a function, which would make fuel depend on which functions a peer happened to call
//!   before.

use sha2::{Digest as _, Sha256};

use super::error::ContractError;
use super::types::{Digest, Fuel};

/// Wasm pages are 64 KiB.
pub const PAGE_BYTES: u64 = 65_536;

/// Limits and costs every peer must agree on. Defaults are sized for a game's world contract:
/// a call runs in well under a millisecond and touches a few KiB of state.
///
/// Besides these fields, admission applies wasmi's `EnforcedLimits::strict()` (pinned with the
/// crate): at most 1000 globals, 10 000 functions, 1000 element and 1000 data segments, 32
/// parameters and results per type, 1 memory, and an average function body of at least 40 bytes
/// once bodies total 1000 bytes; and the host's own rules: at most 1 table, exactly 1 memory,
/// defined (not imported) and exported as `memory`, imports only from the ABI.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConsensusParams {
    // --- admission of code ---
    /// Largest wasm module accepted, in bytes.
    pub code_bytes_max: u32,
    /// Most elements of the (at most one) table, initial and after `table.grow`.
    pub table_elements_max: u32,
    // --- execution ---
    /// Most linear memory one instance may have, in 64 KiB pages (initial or after
    /// `memory.grow`). Going past it traps with [`ContractError::MemoryLimit`].
    pub memory_pages_max: u32,
    /// Most linear memory all instances created by one input may have together, in pages.
    /// Bounds the memory of a chain of nested calls.
    pub input_memory_pages_max: u32,
    /// Most bytes of wasmi's value stack per execution (locals and operands).
    pub stack_height_bytes_max: u32,
    /// Most nested wasm function frames per execution (recursion depth).
    pub recursion_depth_max: u32,
    /// Most nested contract-to-contract `call`s (1 = a top-level call may call one level down).
    pub call_depth_max: u8,
    /// Most `call`s one input may make in total (each instantiates a module).
    pub calls_per_input_max: u16,
    /// Most fuel one input may be given.
    pub fuel_per_input_max: Fuel,
    /// Largest input, in bytes.
    pub input_bytes_max: u32,
    /// Largest output of a call, in bytes.
    pub output_bytes_max: u32,
    /// Longest message kept from `abort`, in bytes (longer ones are truncated).
    pub abort_message_bytes_max: u32,
    // --- state ---
    /// Longest storage key, in bytes.
    pub key_bytes_max: u32,
    /// Longest storage value, in bytes.
    pub value_bytes_max: u32,
    /// Most key + value bytes one input may write with `storage_set` (nested calls included,
    /// rolled-back writes included: they were still work).
    pub state_bytes_written_per_input_max: u32,
    /// Most events one input may emit.
    pub events_per_input_max: u16,
    /// Longest event topic, in bytes.
    pub event_topic_bytes_max: u32,
    /// Longest event payload, in bytes.
    pub event_data_bytes_max: u32,
    // --- costs ---
    /// The fuel cost table.
    pub costs: FuelCosts,
}

/// Fuel charged by the host and by wasmi. The per-operator table is wasmi 2.0.0's default
/// (1 fuel per operator; `nop`, `drop`, `block`, `loop`, `else`, `end`, `return` and
/// `unreachable` free) with `memory.grow` overridden, because the host must zero new pages.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FuelCosts {
    /// wasmi: fuel of one `memory.grow` operator (plus the bytes it zeroes, see below).
    pub memory_grow: u8,
    /// wasmi: bytes copied, filled or zeroed (`memory.{grow,copy,fill,init}`) per unit of fuel.
    pub bytes_copied_per_fuel: u32,
    /// Charged once per input before anything runs.
    pub input_base: u64,
    /// Charged per instantiation (every call, top-level or nested, runs in a fresh instance;
    /// a reused, reset instance is charged the same).
    pub instantiate_base: u64,
    /// Charged per initial memory page at instantiation.
    pub instantiate_per_page: u64,
    /// Charged on every host call.
    pub host_call_base: u64,
    /// Charged per byte moved between linear memory and the host (inputs, outputs, keys,
    /// values read, event payloads, call inputs).
    pub per_byte: u64,
    /// Extra charge of `storage_get`.
    pub storage_read: u64,
    /// Extra charge of `storage_set` and `storage_remove` (a Merkle path must be rehashed).
    pub storage_write: u64,
    /// Extra charge per key + value byte written with `storage_set` (state is kept forever).
    pub storage_write_per_byte: u64,
    /// Extra charge of `emit`.
    pub emit: u64,
    /// Extra charge of `call`, on top of the callee's instantiation and execution.
    pub call: u64,
}

impl Default for FuelCosts {
    fn default() -> Self {
        Self {
            memory_grow: 200,
            bytes_copied_per_fuel: 64,
            input_base: 1_000,
            instantiate_base: 2_000,
            instantiate_per_page: 1_000,
            host_call_base: 20,
            per_byte: 1,
            storage_read: 200,
            storage_write: 1_000,
            storage_write_per_byte: 10,
            emit: 200,
            call: 500,
        }
    }
}

impl Default for ConsensusParams {
    fn default() -> Self {
        Self {
            code_bytes_max: 1024 * 1024,
            table_elements_max: 10_000,
            memory_pages_max: 32,
            input_memory_pages_max: 128,
            stack_height_bytes_max: 512 * 1024,
            recursion_depth_max: 512,
            call_depth_max: 4,
            calls_per_input_max: 64,
            fuel_per_input_max: Fuel(50_000_000),
            input_bytes_max: 64 * 1024,
            output_bytes_max: 64 * 1024,
            abort_message_bytes_max: 256,
            key_bytes_max: 256,
            value_bytes_max: 16 * 1024,
            state_bytes_written_per_input_max: 256 * 1024,
            events_per_input_max: 256,
            event_topic_bytes_max: 64,
            event_data_bytes_max: 4 * 1024,
            costs: FuelCosts::default(),
        }
    }
}

impl ConsensusParams {
    /// Checks that the parameters are usable (non-zero where zero makes no sense, memory limits
    /// consistent).
    pub fn validate(&self) -> Result<(), ContractError> {
        let bad = |reason| Err(ContractError::InvalidParams { reason });
        if self.memory_pages_max == 0 || self.memory_pages_max > 65_536 {
            return bad("memory_pages_max must be in 1..=65536");
        }
        if self.input_memory_pages_max < self.memory_pages_max {
            return bad("input_memory_pages_max must be >= memory_pages_max");
        }
        if self.recursion_depth_max == 0 || self.stack_height_bytes_max < 1024 {
            return bad("stack limits too small");
        }
        if self.costs.bytes_copied_per_fuel == 0 {
            return bad("bytes_copied_per_fuel must be > 0");
        }
        if self.fuel_per_input_max.0 == 0 {
            return bad("fuel_per_input_max must be > 0");
        }
        Ok(())
    }

    /// The wasmi engine configuration these parameters imply.
    pub(crate) fn wasmi_config(&self) -> wasmi::Config {
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(wasmi::CompilationMode::Eager)
            .allow_start_fn(false)
            // Names and producers carry no semantics; skipping them saves memory.
            .ignore_custom_sections(true)
            .set_max_recursion_depth(self.recursion_depth_max as usize)
            .set_min_stack_height(1024)
            .set_max_stack_height(self.stack_height_bytes_max as usize)
            .set_max_cached_stacks(4)
            // Deterministic proposals that rustc's wasm32 target emits by default.
            .wasm_mutable_global(true)
            .wasm_sign_extension(true)
            .wasm_saturating_float_to_int(true)
            .wasm_multi_value(true)
            .wasm_bulk_memory(true)
            .wasm_reference_types(true)
            .wasm_extended_const(true)
            .floats(true)
            // Off: not needed, and each is more surface for consensus bugs.
            .wasm_multi_memory(false)
            .wasm_tail_call(false)
            .wasm_custom_page_sizes(false)
            .wasm_wide_arithmetic(false);
        config.operator_cost(wasmi::OperatorCost {
            memory_grow: self.costs.memory_grow,
            ..wasmi::OperatorCost::default()
        });
        config.fuel_cost(wasmi::CustomFuelCosts {
            bytes_copied_per_fuel: self.costs.bytes_copied_per_fuel,
            // Translation is eager and done at load time, outside any input, so these are never
            // charged; set anyway so nothing depends on wasmi's defaults.
            fuel_per_bytes_translated: 1,
            fuel_per_bytes_validated: 1,
        });
        config.enforced_limits(wasmi::EnforcedLimits::strict());
        config
    }

    /// sha256 over every field in declaration order, integers little-endian with their declared
    /// width, prefixed by a version tag. Peers of a session compare this before anything else.
    pub fn fingerprint(&self) -> Digest {
        let c = &self.costs;
        let mut h = Sha256::new();
        h.update(b"meshwork/consensus-params/v1 wasmi=2.0.0");
        for v in [
            self.code_bytes_max,
            self.table_elements_max,
            self.memory_pages_max,
            self.input_memory_pages_max,
            self.stack_height_bytes_max,
            self.recursion_depth_max,
        ] {
            h.update(v.to_le_bytes());
        }
        h.update([self.call_depth_max]);
        h.update(self.calls_per_input_max.to_le_bytes());
        h.update(self.fuel_per_input_max.0.to_le_bytes());
        for v in [
            self.input_bytes_max,
            self.output_bytes_max,
            self.abort_message_bytes_max,
            self.key_bytes_max,
            self.value_bytes_max,
            self.state_bytes_written_per_input_max,
        ] {
            h.update(v.to_le_bytes());
        }
        h.update(self.events_per_input_max.to_le_bytes());
        h.update(self.event_topic_bytes_max.to_le_bytes());
        h.update(self.event_data_bytes_max.to_le_bytes());
        h.update([c.memory_grow]);
        h.update(c.bytes_copied_per_fuel.to_le_bytes());
        for v in [
            c.input_base,
            c.instantiate_base,
            c.instantiate_per_page,
            c.host_call_base,
            c.per_byte,
            c.storage_read,
            c.storage_write,
            c.storage_write_per_byte,
            c.emit,
            c.call,
        ] {
            h.update(v.to_le_bytes());
        }
        h.finalize().into()
    }
}
