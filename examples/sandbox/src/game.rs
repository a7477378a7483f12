//! The game's headless half: the [`Game`] resource (world state, avatars) and the systems that
//! keep it in step with the other players over the mesh. Rendering and input live in
//! `window.rs`; the node's bot players run this alone under `MinimalPlugins`.
//!
//! Avatars and their positions travel on the world topic (presence, ten times a second) and, in
//! a session, in its GGRS inputs; the world's actions travel in the session (`crate::session`):
//! GGRS orders them, every player applies the confirmed frames, and referees finalise the
//! checkpoints. Blocks are contract state: [`PlacedBlock`] entities mirror the world contract's
//! block entries at the last confirmed frame (`ContractStatePlugin`), which is what the window
//! draws.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevy::time::Real;
use meshwork::bevy::prelude::*;
use meshwork::proto::contract::Address;
use meshwork::proto::identity::PublicKey;
use meshwork::proto::referee::CheckpointDigest;

use crate::net::{SandboxMsg, WORLD_TOPIC};
use crate::session::{CheatFlag, Inbox, Play};
use crate::world::{
    Action, BLOCK_PREFIX, Block, Outcome, REGIONS_X, REGIONS_Y, SandboxWorld, block_entry, cells_x,
    cells_y, code, region_cells, region_genesis, region_of,
};

/// A block as contract state: one entity per block entry of the world contract, kept by
/// `ContractStatePlugin` from the state at the last confirmed frame.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedBlock {
    /// Its cell.
    pub cell: (u32, u32),
    /// The block.
    pub block: Block,
}

impl ContractState for PlacedBlock {
    const PREFIX: &'static [u8] = BLOCK_PREFIX;

    fn from_entry(key: &[u8], value: &[u8]) -> Option<Self> {
        block_entry(key, value).map(|(cell, block)| Self { cell, block })
    }
}

/// Avatars not heard from for this long are dropped.
const AVATAR_TIMEOUT_MS: u64 = 5_000;
/// How often a player publishes its presence.
const PRESENCE_INTERVAL_MS: u64 = 100;
/// How often the world topic subscription is renewed.
const RESUBSCRIBE_MS: u64 = 5_000;
/// Avatars tracked.
const AVATARS_MAX: usize = 4_096;

/// Request: take `action` as the local player (queued for the session's next frame).
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeAction(pub Action);

/// An action (ours or another player's) was applied to the local world.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
pub struct ActionApplied {
    /// Who acted.
    pub player: PeerId,
    /// What.
    pub action: Action,
    /// What came of it.
    pub outcome: Outcome,
}

/// Another player's avatar.
#[derive(Debug, Clone)]
pub struct Avatar {
    /// Where it is, in cells.
    pub pos: Vec2,
    /// The peers it is linked to.
    pub links: Vec<PeerId>,
    /// A bot player.
    pub bot: bool,
    /// Its public key, once its presence checked out.
    pub key: Option<PublicKey>,
    /// Its finalised height.
    pub height: u64,
    /// When we last heard of it (`Time<Real>` ms).
    pub seen_ms: u64,
}

/// The sandbox's state on this peer.
#[derive(Resource)]
pub struct Game {
    /// The region we play in: the one our avatar stands in. `world`, `finalised`, `height` and
    /// `parent` are that region's; sessions are per region.
    pub region: (u16, u16),
    /// A bot's home region (it wanders inside it); `None` for a person, who goes anywhere.
    pub home: Option<(u16, u16)>,
    /// The other regions we played in: their last finalised state, height and checkpoint.
    regions: BTreeMap<(u16, u16), (SandboxWorld, u64, CheckpointDigest)>,
    /// The world's genesis, what a region we never saw starts from.
    genesis: Option<SandboxWorld>,
    /// The world as of the last confirmed frame, or why it could not be built.
    pub world: Result<SandboxWorld, String>,
    /// The world as of the last finalised checkpoint (`None` if it could not be built).
    pub finalised: Option<SandboxWorld>,
    /// The frame that checkpoint ends at (0: genesis).
    pub height: u64,
    /// That checkpoint's digest (all zeros: genesis).
    pub parent: CheckpointDigest,
    /// The local player.
    pub me: PeerId,
    /// A bot player (no window).
    pub bot: bool,
    /// The local avatar, in cells.
    pub pos: Vec2,
    /// Other players' avatars.
    pub avatars: BTreeMap<PeerId, Avatar>,
    /// What came of the local player's last action.
    pub last_outcome: Option<String>,
    last_presence_ms: u64,
    last_subscribe_ms: u64,
}

impl Game {
    /// A fresh game for `me` at the world's genesis.
    pub fn new(me: PeerId, bot: bool) -> Self {
        let world = SandboxWorld::genesis(code::TOKEN, code::WORLD).map_err(|e| e.to_string());
        if let Err(e) = &world {
            error!("{e}");
        }
        let spawn = Vec2::new(cells_x() as f32 / 2.0, cells_y() as f32 / 2.0);
        let (x, y) = cell_of(spawn);
        let region = region_of(x, y);
        Self {
            region,
            home: None,
            regions: BTreeMap::new(),
            genesis: world.as_ref().ok().cloned(),
            finalised: world.as_ref().ok().cloned(),
            world,
            height: 0,
            parent: region_genesis(region),
            me,
            bot,
            pos: spawn,
            avatars: BTreeMap::new(),
            last_outcome: None,
            last_presence_ms: 0,
            last_subscribe_ms: 0,
        }
    }

    /// The local player's token balance (what it would get on its first action, before).
    pub fn balance(&self) -> Option<u64> {
        self.world
            .as_ref()
            .ok()
            .map(|w| w.spendable(&Address(self.me.0)))
    }

    /// The cell the local avatar stands on.
    pub fn cell(&self) -> (u32, u32) {
        cell_of(self.pos)
    }

    /// The region the local avatar stands in (where it should play; see [`Game::region`]).
    pub fn standing_in(&self) -> (u16, u16) {
        let (x, y) = self.cell();
        region_of(x, y)
    }

    /// Puts a bot in its `home` region: it appears at the region's centre and wanders inside.
    pub fn make_home(&mut self, home: (u16, u16)) {
        let home = (home.0.min(REGIONS_X - 1), home.1.min(REGIONS_Y - 1));
        let (x0, y0, x1, y1) = region_cells(home);
        self.home = Some(home);
        self.pos = Vec2::new((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
        self.enter_region(home);
    }

    /// Switches to `region`'s world (the caller leaves the session first): the current region's
    /// finalised state is kept for when we come back, and the new one's is what we kept of it,
    /// or its genesis. What was confirmed but not finalised here is dropped, and so are our
    /// actions not finalised yet (the caller clears them: they were for this region's cells).
    pub fn enter_region(&mut self, region: (u16, u16)) {
        if region == self.region {
            return;
        }
        let Some(genesis) = &self.genesis else {
            self.region = region;
            return;
        };
        // Only a region never seen starts from a copy of the genesis.
        let entered = match self.regions.remove(&region) {
            Some(kept) => kept,
            None => (genesis.clone(), 0, region_genesis(region)),
        };
        if let Some(f) = self.finalised.take() {
            self.regions
                .insert(self.region, (f, self.height, self.parent));
        }
        let (finalised, height, parent) = entered;
        self.world = Ok(finalised.clone());
        self.finalised = Some(finalised);
        self.height = height;
        self.parent = parent;
        self.region = region;
    }
}

/// The cell holding position `pos` (in cells), clamped to the world.
pub fn cell_of(pos: Vec2) -> (u32, u32) {
    let clamp = |v: f32, n: u32| (v.max(0.0) as u32).min(n - 1);
    (clamp(pos.x, cells_x()), clamp(pos.y, cells_y()))
}

/// Ordered phases of the game's frame, in `Update`.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxSystems {
    /// The local player (keyboard and mouse, or the bot) moves and asks for actions.
    Input,
    /// Messages from the mesh are taken in, the session advances, presence is published.
    Sync,
    /// What is drawn follows the state.
    Draw,
}

/// The game's headless systems. Needs `MeshworkPlugin` built with its `ggrs` feature (and, for
/// a player, `SandboxWindowPlugin`).
#[derive(Debug, Clone, Default)]
pub struct SandboxPlugin {
    /// Run as a bot player (wanders and builds on its own).
    pub bot: bool,
    /// Claim tampered roots at checkpoints (a cheating player, for the demo and its tests).
    pub cheat: bool,
    /// The deployment's ledger: with it the plugin adds a `LedgerPlugin` wallet under the
    /// mesh identity, and sessions need session bonds on the ledger (see `crate::bonds`);
    /// without it, placeholder bonds.
    pub ledger: Option<crate::ledger::LedgerSetup>,
    /// A bot's home region (`Game::make_home`); a person starts in the middle of the world.
    pub home: Option<(u16, u16)>,
}

impl Plugin for SandboxPlugin {
    fn build(&self, app: &mut App) {
        let me = app.world().resource::<LocalPeer>().peer_id;
        let mut game = Game::new(me, self.bot);
        if let Some(home) = self.home {
            game.make_home(home);
        }
        let mut play = Play::default();
        if let Some(setup) = &self.ledger {
            // The wallet's key is the mesh identity: payments and certificates for it are
            // routed to this peer.
            let seed = app
                .world()
                .non_send::<meshwork::bevy::MeshworkNode>()
                .node
                .overlay
                .identity()
                .seed();
            app.add_plugins(LedgerPlugin::new(
                LedgerConfig::new(setup.committee().clone()).with_seed(seed),
            ));
            play.bonds.setup = Some(setup.clone());
        }
        if let Ok(world) = &game.world {
            app.add_plugins(ContractStatePlugin::<PlacedBlock>::new(
                world.world_contract(),
            ));
        }
        app.insert_resource(game)
            .insert_resource(play)
            .init_resource::<Inbox>()
            .insert_resource(CheatFlag(self.cheat))
            .add_message::<TakeAction>()
            .add_message::<ActionApplied>()
            .configure_sets(
                Update,
                (
                    SandboxSystems::Input,
                    SandboxSystems::Sync,
                    SandboxSystems::Draw,
                )
                    .chain(),
            )
            .add_systems(
                Update,
                (
                    crate::session::attach,
                    receive,
                    take_actions,
                    crate::session::outcomes,
                    crate::session::play_session,
                    crate::bonds::upkeep,
                    publish_presence,
                    publish_state,
                )
                    .chain()
                    .in_set(SandboxSystems::Sync),
            );
        if self.bot {
            app.add_systems(Update, crate::bot::play.in_set(SandboxSystems::Input));
        }
    }
}

pub(crate) fn now_ms(time: &Time<Real>) -> u64 {
    u64::try_from(time.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn receive(
    time: Res<Time<Real>>,
    mut game: ResMut<Game>,
    mut play: ResMut<Play>,
    mut inbox: ResMut<Inbox>,
    mut published: MessageReader<Published>,
    mut received: MessageReader<MessageReceived>,
) {
    let now = now_ms(&time);
    let topic = PeerId::hash_of(WORLD_TOPIC);
    let me = game.me;
    for p in published.read() {
        if p.topic != topic || p.origin == me {
            continue;
        }
        let msg = match SandboxMsg::decode(&p.payload) {
            Ok(m) => m,
            Err(e) => {
                debug!("sandbox message from {} refused: {e}", p.origin.short());
                continue;
            }
        };
        match msg {
            SandboxMsg::Presence {
                x_milli,
                y_milli,
                links,
                bot,
                key,
                height,
            } => {
                if game.avatars.len() >= AVATARS_MAX && !game.avatars.contains_key(&p.origin) {
                    continue;
                }
                let pos = Vec2::new(x_milli as f32 / 1000.0, y_milli as f32 / 1000.0);
                let key = (PeerId::from_public_key(&key) == p.origin).then_some(key);
                game.avatars.insert(
                    p.origin,
                    Avatar {
                        pos,
                        links,
                        bot,
                        key,
                        height,
                        seen_ms: now,
                    },
                );
            }
            SandboxMsg::Referee {
                key,
                per_checkpoint,
            } => {
                crate::session::heard_referee(&mut play, p.origin, key, per_checkpoint, now);
            }
            SandboxMsg::Bond(proof) => {
                // Only the owner publishes its bond (its peer id is the owner key's hash).
                let owner = proof.output().map(|(_, o)| o.owner);
                match owner {
                    Ok(owner) if PeerId::from_public_key(&owner) == p.origin => {
                        if let Err(e) = play.bonds.heard(owner, &proof, now) {
                            debug!("bond from {} refused: {e}", p.origin.short());
                        }
                    }
                    _ => debug!("bond from {} is not its own: refused", p.origin.short()),
                }
            }
            SandboxMsg::Propose(_) | SandboxMsg::Bans(_) | SandboxMsg::Grant { .. } => {}
        }
    }
    for m in received.read() {
        match SandboxMsg::decode(&m.payload) {
            Ok(SandboxMsg::Propose(p)) => {
                if inbox.proposals.len() < Inbox::MAX {
                    inbox.proposals.push((m.origin, *p));
                }
            }
            Ok(SandboxMsg::Bans(bans)) => {
                if inbox.bans.len() < Inbox::MAX {
                    inbox.bans.push((m.origin, bans));
                }
            }
            Ok(_) => {}
            Err(e) => debug!("direct message from {} refused: {e}", m.origin.short()),
        }
    }
    game.avatars
        .retain(|_, a| now.saturating_sub(a.seen_ms) <= AVATAR_TIMEOUT_MS);
}

/// The world contract's state at the last confirmed frame, for the components that mirror it.
fn publish_state(game: Res<Game>, states: Option<ResMut<ContractStates>>) {
    if let (Ok(world), Some(mut states)) = (&game.world, states)
        && let Err(e) = states.set_from_host(world.host(), world.world_contract())
    {
        warn!("world state not published: {e}");
    }
}

/// Queues the local player's actions; one on a cell outside our region is refused here (that
/// region's world is another session's).
fn take_actions(
    mut game: ResMut<Game>,
    mut play: ResMut<Play>,
    mut requests: MessageReader<TakeAction>,
) {
    for TakeAction(action) in requests.read() {
        let (x, y) = action.cell();
        if region_of(x, y) != game.region {
            game.last_outcome = Some(format!(
                "({x}, {y}) is outside region ({}, {}): walk there to build",
                game.region.0, game.region.1
            ));
            continue;
        }
        play.queue(*action);
    }
}

fn publish_presence(
    time: Res<Time<Real>>,
    mut game: ResMut<Game>,
    play: Res<Play>,
    peers: Res<Peers>,
    mut publish: MessageWriter<Subscribe>,
) {
    let now = now_ms(&time);
    // Subscribe at once and again every few seconds: the topic's rendezvous (the peer closest to
    // its key) changes while the mesh forms, and the overlay's own renewal waits 20 s.
    if game.last_subscribe_ms == 0 || now.saturating_sub(game.last_subscribe_ms) >= RESUBSCRIBE_MS {
        game.last_subscribe_ms = now.max(1);
        publish.write(Subscribe {
            topic: WORLD_TOPIC.to_vec(),
            payload: None,
        });
    }
    let Some(key) = play.key else {
        return;
    };
    if peers.linked.is_empty() || now.saturating_sub(game.last_presence_ms) < PRESENCE_INTERVAL_MS {
        return;
    }
    game.last_presence_ms = now;
    let msg = SandboxMsg::Presence {
        x_milli: (game.pos.x.max(0.0) * 1000.0) as u32,
        y_milli: (game.pos.y.max(0.0) * 1000.0) as u32,
        links: peers
            .linked
            .keys()
            .copied()
            .take(crate::net::LINKS_MAX)
            .collect(),
        bot: game.bot,
        key,
        height: game.height,
    };
    publish.write(Subscribe {
        topic: WORLD_TOPIC.to_vec(),
        payload: Some(msg.encode()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block entities the contract-state mirror keeps are the world contract's blocks,
    /// through places and removals.
    #[test]
    fn block_entities_mirror_the_world_contract() {
        let Ok(mut world) = SandboxWorld::genesis(code::TOKEN, code::WORLD) else {
            panic!("contracts not built: run scripts/build-contracts.sh");
        };
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(ContractStatePlugin::<PlacedBlock>::new(
                world.world_contract(),
            ));
        let (a, b) = (Address([1; 32]), Address([2; 32]));
        world.onboard(0, &[a, b]);
        let place = |x, y, kind| Action::Place { x, y, kind };
        let frames = [
            vec![(a, place(1, 1, 1)), (b, place(2, 5, 3))],
            vec![(a, place(7, 7, 2))],
            vec![(a, Action::Remove { x: 1, y: 1 }), (b, place(1, 1, 2))],
        ];
        for (tick, actions) in frames.iter().enumerate() {
            world.apply_tick(tick as u64 + 1, actions);
            app.world_mut()
                .resource_mut::<ContractStates>()
                .set_from_host(world.host(), world.world_contract())
                .expect("the world contract exists");
            app.update();
            let mut q = app.world_mut().query::<&PlacedBlock>();
            let mirrored: BTreeMap<(u32, u32), Block> =
                q.iter(app.world()).map(|p| (p.cell, p.block)).collect();
            assert_eq!(&mirrored, world.blocks(), "after frame {tick}");
        }
        assert_eq!(world.blocks().len(), 3);
        assert_eq!(app.world().resource::<ContractStates>().skipped(), 0);
    }
}
