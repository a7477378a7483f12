//! Ready-made apps: the matchbox configuration the sandbox uses and headless bot players.

use bevy::prelude::*;
use meshwork::bevy::prelude::*;
use meshwork::bevy::{IdentitySource, TransportConfig};
use meshwork::transport::matchbox::MatchboxConfig;

pub use crate::game::{ActionApplied, Game, SandboxPlugin, SandboxSystems, TakeAction};
use crate::ledger::LedgerSetup;
pub use bevy::app::App as BevyApp;

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

/// A headless bot player: `MinimalPlugins`, Meshwork over `config`, the sandbox as a bot
/// wandering the whole world. Drive it with `App::update`.
pub fn bot_app(config: MeshworkConfig) -> App {
    bot_app_with(config, false, None, None)
}

/// A headless bot player that claims tampered roots at every checkpoint when `cheat` (what
/// referees must catch), with session bonds on `ledger` if given, living in region `home` if
/// given (else wandering everywhere).
pub fn bot_app_with(
    config: MeshworkConfig,
    cheat: bool,
    ledger: Option<LedgerSetup>,
    home: Option<(u16, u16)>,
) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .add_plugins(MeshworkPlugin::new(config))
        .add_plugins(SandboxPlugin {
            bot: true,
            cheat,
            ledger,
            home,
        });
    app
}

/// Where the node puts bot `i` of `n`: the first half (rounded up) in region (1, 1), the rest in
/// region (2, 1), where people appear. Two sessions, so each one's players referee the other's
/// checkpoints (as attesters), and the people share theirs with a bot or two.
pub fn bot_home(i: usize, n: usize) -> (u16, u16) {
    if i < n.div_ceil(2) { (1, 1) } else { (2, 1) }
}
