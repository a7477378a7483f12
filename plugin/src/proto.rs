//! Sans-IO protocol cores: plain structs driven by `handle_*(now, input)` and drained by
//! `poll_*()`. Nothing in here touches Bevy, matchbox, async runtimes, threads, the wall
//! clock or ambient randomness; time and randomness are passed in.

pub mod contract;
pub mod fetch;
pub mod identity;
pub mod ledger;
pub mod overlay;
pub mod referee;
pub mod session;
pub mod wire;
