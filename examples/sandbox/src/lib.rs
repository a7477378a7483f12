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
//! [`world`] is the contract side (no Bevy), [`net`] the messages, [`game`] the headless systems,
//! `window` (feature `window`) the rendering and input.

pub mod bot;
pub mod game;
pub mod net;
pub mod session;
#[cfg(feature = "window")]
pub mod window;
pub mod world;

use bevy::prelude::*;
use meshwork::bevy::prelude::*;
use meshwork::bevy::{IdentitySource, TransportConfig};
use meshwork::transport::matchbox::MatchboxConfig;

pub use bevy::app::App as BevyApp;
pub use game::{ActionApplied, Game, SandboxPlugin, SandboxSystems, TakeAction};

/// The signalling room URL the node's embedded server offers by default.
pub const DEFAULT_SIGNALLING_URL: &str = "ws://127.0.0.1:3536/meshwork";

/// Meshwork over real WebRTC links, bootstrapping through `signalling_url`, with a fresh identity
/// per run (two tabs of one browser must be two players, so the key is not stored).
pub fn matchbox_config(signalling_url: &str) -> MeshworkConfig {
    let mut config = MeshworkConfig::memory(Default::default());
    config.identity = IdentitySource::Generate;
    config.transport = TransportConfig::Matchbox(MatchboxConfig::new(signalling_url));
    config
}

/// A headless bot player: `MinimalPlugins`, Meshwork over `config`, the sandbox as a bot. Drive
/// it with `App::update`.
pub fn bot_app(config: MeshworkConfig) -> App {
    bot_app_with(config, false)
}

/// A headless bot player that claims tampered roots at every checkpoint when `cheat` (what
/// referees must catch).
pub fn bot_app_with(config: MeshworkConfig, cheat: bool) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(MeshworkPlugin::new(config))
        .add_plugins(SandboxPlugin { bot: true, cheat });
    app
}
