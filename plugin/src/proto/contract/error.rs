//! [`ContractError`]: every way loading code or running an input can fail.

use super::types::{CodeHash, ContractId, StateRoot};

/// Why a module was refused, an input failed, or a state import did not match.
///
/// Errors that happen while an input runs are deterministic: every peer that re-executes the input
/// gets the same variant (and the same [`ContractError::code`]), so they are part of a transition's
/// result. The `String` reasons of load-time errors come from the wasm validator and are for humans
/// only; they never enter a receipt digest.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ContractError {
    /// The bytes are not a valid wasm module under the consensus feature set (malformed, fails
    /// validation, or uses a disabled proposal such as SIMD, memory64 or threads).
    #[error("invalid wasm module: {reason}")]
    InvalidModule {
        /// The validator's message.
        reason: String,
    },
    /// The module has a `start` function. Refused because it would run code at instantiation,
    /// before the host has set up a call frame, and every call instantiates afresh.
    #[error("module declares a start function")]
    StartFunction,
    /// The module imports something that is not part of the host ABI, or with the wrong type.
    #[error("forbidden import {module}::{name}")]
    ForbiddenImport {
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },
    /// A required export (`memory` or `mw_call`) is missing or has the wrong type.
    #[error("missing or mistyped export `{name}`")]
    MissingExport {
        /// The export's name.
        name: &'static str,
    },
    /// The module declares more of something than the consensus parameters allow.
    #[error("module limit exceeded: {what} = {value} > {max}")]
    ModuleLimit {
        /// What was counted.
        what: &'static str,
        /// The module's value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// The code's sha256 is not the one the session agreed on.
    #[error("code hash mismatch: expected {expected}, got {actual}")]
    CodeHashMismatch {
        /// The agreed hash.
        expected: CodeHash,
        /// The hash of the bytes offered.
        actual: CodeHash,
    },
    /// No code with this hash has been loaded.
    #[error("unknown code {0:?}")]
    UnknownCode(CodeHash),
    /// No contract with this id exists.
    #[error("unknown contract {0:?}")]
    UnknownContract(ContractId),
    /// A contract with this id already exists (same code, creator and salt).
    #[error("contract {0:?} already exists")]
    ContractExists(ContractId),
    /// The input is refused before running: too large, or asks for more fuel than allowed.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: &'static str,
    },
    /// The call ran out of fuel (an infinite loop ends here).
    #[error("out of fuel")]
    OutOfFuel,
    /// The wasm value stack or call stack limit was hit (deep recursion ends here).
    #[error("stack overflow")]
    StackOverflow,
    /// `memory.grow`, `table.grow` or instantiation went past the memory or table limits (a
    /// memory bomb ends here).
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// A wasm trap other than the ones above.
    #[error("wasm trap: {0:?}")]
    Trap(TrapKind),
    /// The contract called `abort`; its message is kept (at most `abort_message_bytes_max`).
    #[error("aborted: {}", String::from_utf8_lossy(message))]
    Aborted {
        /// The contract's message.
        message: Vec<u8>,
    },
    /// A host call passed a pointer/length outside the caller's linear memory.
    #[error("host call accessed memory out of bounds")]
    HostMemoryAccess,
    /// A key, value, or the bytes written by one input went over its limit.
    #[error("state limit exceeded: {what}")]
    StateLimit {
        /// Which limit.
        what: &'static str,
    },
    /// Too many events, or an oversized topic or payload.
    #[error("event limit exceeded: {what}")]
    EventLimit {
        /// Which limit.
        what: &'static str,
    },
    /// The output or an argument of a host call is larger than allowed.
    #[error("host call argument too large: {what}")]
    ArgumentTooLarge {
        /// Which argument.
        what: &'static str,
    },
    /// A `call` would enter a contract already on the call stack.
    #[error("re-entry into {0:?}")]
    Reentry(ContractId),
    /// A `call` would nest deeper than `call_depth_max`.
    #[error("call depth limit exceeded")]
    CallDepthExceeded,
    /// One input made more `call`s than `calls_per_input_max`.
    #[error("too many calls in one input")]
    CallLimit,
    /// An imported state does not hash to the expected root.
    #[error("state root mismatch: expected {expected:?}, got {actual:?}")]
    StateRootMismatch {
        /// The root that was expected.
        expected: StateRoot,
        /// The root the data hashes to.
        actual: StateRoot,
    },
    /// The consensus parameters are inconsistent.
    #[error("invalid consensus parameters: {reason}")]
    InvalidParams {
        /// What is wrong.
        reason: &'static str,
    },
    /// This build of the host would run contracts on a native stack that grows with every wasm
    /// instruction executed, so a long-running contract could crash the process (see
    /// `dispatch.rs`). Nothing runs. Either build wasmi without debug assertions
    /// (`[profile.dev.package.wasmi] debug-assertions = false`, as Meshwork's own workspace does)
    /// or depend on `wasmi = { version = "=2.0.0", default-features = false, features =
    /// ["portable-dispatch"] }` yourself (Cargo unifies the feature into Meshwork's wasmi: a
    /// loop, ~30% slower, always flat). Keep `default-features = false`: wasmi's defaults would
    /// add proposals (memory64) to that build's engine that the consensus set leaves out (the
    /// host refuses 64-bit memories and tables itself, but nothing else should differ).
    #[error(
        "wasmi's instruction dispatch in this build grows the native stack ({growth} bytes in the \
         probe): set `[profile.dev.package.wasmi] debug-assertions = false`, or add wasmi =2.0.0 \
         with default-features = false and its portable-dispatch feature to your dependencies"
    )]
    UnsafeDispatch {
        /// How much deeper the native stack was after the probe's long run.
        growth: usize,
    },
    /// wasmi reported something the host did not expect. Still deterministic (same code for every
    /// peer); the reason is for humans.
    #[error("internal host error: {reason}")]
    Internal {
        /// wasmi's message.
        reason: String,
    },
}

/// The wasm traps that do not have their own [`ContractError`] variant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TrapKind {
    /// `unreachable` executed (a Rust panic ends here).
    Unreachable,
    /// Load or store outside linear memory.
    MemoryOutOfBounds,
    /// Table access out of bounds.
    TableOutOfBounds,
    /// `call_indirect` to a null table entry.
    IndirectCallToNull,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// Integer overflow (`i32.div_s` of `MIN / -1`).
    IntegerOverflow,
    /// Float to int conversion out of range or NaN.
    BadConversionToInteger,
    /// `call_indirect` signature mismatch.
    BadSignature,
}

impl ContractError {
    /// A stable number for this variant, used in receipt digests (and the `call` status ABI).
    pub fn code(&self) -> u16 {
        match self {
            Self::InvalidModule { .. } => 1,
            Self::StartFunction => 2,
            Self::ForbiddenImport { .. } => 3,
            Self::MissingExport { .. } => 4,
            Self::ModuleLimit { .. } => 5,
            Self::CodeHashMismatch { .. } => 6,
            Self::UnknownCode(_) => 7,
            Self::UnknownContract(_) => 8,
            Self::ContractExists(_) => 9,
            Self::InvalidInput { .. } => 10,
            Self::OutOfFuel => 20,
            Self::StackOverflow => 21,
            Self::MemoryLimit => 22,
            Self::Trap(kind) => 30 + *kind as u16,
            Self::Aborted { .. } => 40,
            Self::HostMemoryAccess => 41,
            Self::StateLimit { .. } => 42,
            Self::EventLimit { .. } => 43,
            Self::ArgumentTooLarge { .. } => 44,
            Self::Reentry(_) => 45,
            Self::CallDepthExceeded => 46,
            Self::CallLimit => 47,
            Self::StateRootMismatch { .. } => 60,
            Self::InvalidParams { .. } => 61,
            Self::UnsafeDispatch { .. } => 62,
            Self::Internal { .. } => 99,
        }
    }
}
