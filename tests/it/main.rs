//! Meshwork integration tests: one binary, one module per area.
//!
//! Simulator tests take their seed from `SIM_SEED` (default: a fixed corpus) and print a
//! `reproduce:` line when they fail. Slow variants run only with `MESHWORK_SLOW_TESTS=1`.

mod bevy_apps;
mod bevy_wallet;
mod contract;
mod fetch;
#[cfg(feature = "ggrs")]
mod ggrs_apps;
mod ledger;
mod overlay_sim;
#[cfg(feature = "signalling")]
mod real_links;
mod seeds;
mod session_net;
mod sessions;
