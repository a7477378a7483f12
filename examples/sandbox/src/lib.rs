//! The Meshwork sandbox: a 2D world of regions where players walk about and place and remove
//! blocks through the world contract, each block paid in world tokens; a HUD shows the mesh
//! (peers, latency), the balance and what the referees will report; a small map draws the mesh.
//!
//! - Native window: `cargo run -p meshwork-sandbox -- --signalling ws://127.0.0.1:3536/meshwork`
//!   (start a node first: `scripts/demo`).
//! - Browser: `scripts/build-web.sh`, then open the URL the node prints.
//! - Headless bot players: [`bot_app`] (the node's `--players N`); build without the default
//!   `window` feature to leave rendering out.
//!
//! [`world`] is the contract side, [`input`] the GGRS input and the avatars' rollback
//! simulation, [`net`] the messages, [`ledger`] the session bond rules (these four without
//! Bevy); with the `game` feature, `game` the headless systems, `session` the sessions, `bonds`
//! the session bonds on the ledger; `window` (feature `window`) the rendering and input.

#[cfg(feature = "game")]
pub mod bonds;
#[cfg(feature = "game")]
pub mod bot;
#[cfg(feature = "game")]
pub mod game;
pub mod input;
pub mod ledger;
pub mod net;
#[cfg(feature = "game")]
pub mod session;
#[cfg(feature = "window")]
pub mod window;
pub mod world;

#[cfg(feature = "game")]
mod apps;
#[cfg(feature = "game")]
pub use apps::*;
