//! Storage adapters for the sans-IO cores: where their state meets a disk or the browser.
//!
//! - [`RedbStore`] (feature `redb`, native only): the validator's crash-safe
//!   [`LedgerStore`](crate::proto::ledger::LedgerStore) on redb, one durable write transaction per
//!   `apply`. The node binary runs its validator over it.
//! - [`WalletStorage`]: a wallet's key and state (coins with their certificates, orders not yet
//!   settled, certificates payees have not acknowledged) in a pair of files natively and in local
//!   storage in the browser.
//!
//! The cores never call into this module; a host (the node, the Bevy glue) opens storage, hands
//! the core its state, and saves what the core exports.

#[cfg(all(feature = "redb", not(target_arch = "wasm32")))]
mod redb_store;
mod wallet;

#[cfg(all(feature = "redb", not(target_arch = "wasm32")))]
pub use redb_store::RedbStore;
pub use wallet::{WalletStorage, WalletStorageError};
