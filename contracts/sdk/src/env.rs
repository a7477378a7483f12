//! The environment a contract's logic runs against. Self-contained (only `core` and `alloc`) so
//! that native code can include this file with `#[path]` and run the same logic without wasm.

use alloc::vec::Vec;

/// A 32-byte id: a player's `PeerId` or a contract's id.
pub type Id = [u8; 32];

/// Why a nested `call` failed (the callee's writes and events are already rolled back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The callee aborted with this message.
    Aborted(Vec<u8>),
    /// The callee ran out of its fuel budget.
    OutOfFuel,
    /// The callee trapped or broke a limit.
    Trapped,
    /// No contract has that id.
    NoContract,
}

/// What a contract can do. See the ABI table in `meshwork::proto::contract`.
pub trait Env {
    /// Who called: a player at top level, the calling contract in a nested call.
    fn caller(&self) -> Id;
    /// This contract's id.
    fn self_id(&self) -> Id;
    /// The input's tick.
    fn tick(&self) -> u64;
    /// Reads a key of this contract's state into `buf`: the value's full length (of which the
    /// first `min(len, buf.len())` bytes were copied), or `None` if the key is absent. The
    /// allocation-free read: records of known size are read into a stack buffer.
    fn get_into(&self, key: &[u8], buf: &mut [u8]) -> Option<usize>;
    /// Reads a key of this contract's state.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Reads a key whose value must be exactly `N` bytes (`None` if absent or of another size).
    fn get_array<const N: usize>(&self, key: &[u8]) -> Option<[u8; N]> {
        let mut buf = [0; N];
        (self.get_into(key, &mut buf)? == N).then_some(buf)
    }
    /// Writes a key.
    fn set(&mut self, key: &[u8], value: &[u8]);
    /// Removes a key; whether it existed.
    fn remove(&mut self, key: &[u8]) -> bool;
    /// Emits an event.
    fn emit(&mut self, topic: &[u8], data: &[u8]);
    /// Calls another contract with at most `fuel`, returning its output.
    fn call(&mut self, contract: &Id, input: &[u8], fuel: u64) -> Result<Vec<u8>, CallError>;
}
