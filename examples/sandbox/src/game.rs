//! The game's headless half: the [`Game`] resource (world state, avatars, action history) and
//! the systems that keep it in step with the other players over the mesh. Rendering and input
//! live in `window.rs`; the node's bot players run this alone under `MinimalPlugins`.
//!
//! Until rollback sessions carry inputs, actions travel on the world topic and every peer applies
//! them in arrival order; a newcomer replays the history a peer sends it. Concurrent conflicting
//! actions (two players on one empty cell at the same moment) can leave peers with different
//! roots; the session's ordered input log is what fixes that.

use std::collections::BTreeMap;

use bevy::prelude::*;
use bevy::time::Real;
use meshwork::bevy::prelude::*;
use meshwork::proto::contract::Address;

use crate::net::{HISTORY_MAX, SandboxMsg, Stamped, WORLD_TOPIC};
use crate::world::{Action, Outcome, SandboxWorld, cells_x, cells_y, code};

/// Avatars not heard from for this long are dropped.
const AVATAR_TIMEOUT_MS: u64 = 5_000;
/// How often a player publishes its presence.
const PRESENCE_INTERVAL_MS: u64 = 100;
/// How long a newcomer waits between history requests.
const HELLO_INTERVAL_MS: u64 = 1_500;
/// History requests before a newcomer assumes it is alone.
const HELLOS_MAX: u32 = 4;
/// How often the world topic subscription is renewed.
const RESUBSCRIBE_MS: u64 = 5_000;
/// Players whose sequence numbers are tracked.
const PLAYERS_MAX: usize = 4_096;

/// Request: take `action` as the local player (applied locally, then published).
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
    /// When we last heard of it (`Time<Real>` ms).
    pub seen_ms: u64,
}

/// Which sequence numbers of one player were applied: the highest and a window of 64 below it.
#[derive(Debug, Clone, Copy, Default)]
struct SeqWindow {
    max: u64,
    below: u64,
}

impl SeqWindow {
    /// Records `seq`; false if it was already recorded or is too old to tell.
    fn insert(&mut self, seq: u64) -> bool {
        if seq > self.max {
            let shift = seq - self.max;
            self.below = if shift >= 64 {
                0
            } else {
                (self.below << shift) | (1 << (shift - 1))
            };
            if self.max == 0 {
                self.below = 0;
            }
            self.max = seq;
            return true;
        }
        let back = self.max - seq;
        if back == 0 || back > 64 {
            return false;
        }
        let bit = 1 << (back - 1);
        let fresh = self.below & bit == 0;
        self.below |= bit;
        fresh
    }
}

/// The sandbox's state on this peer.
#[derive(Resource)]
pub struct Game {
    /// The world, or why it could not be built.
    pub world: Result<SandboxWorld, String>,
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
    /// Actions applied, in order (what a newcomer replays); at most [`HISTORY_MAX`].
    pub history: Vec<Stamped>,
    /// A history was adopted, or nobody answered.
    pub synced: bool,
    seqs: BTreeMap<PeerId, SeqWindow>,
    next_seq: u64,
    frame: u64,
    hellos: u32,
    last_hello_ms: u64,
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
        Self {
            world,
            me,
            bot,
            pos: spawn,
            avatars: BTreeMap::new(),
            last_outcome: None,
            history: Vec::new(),
            synced: false,
            seqs: BTreeMap::new(),
            next_seq: 1,
            frame: 0,
            hellos: 0,
            last_hello_ms: 0,
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

    /// Applies `s` unless it was applied before; returns its outcome if it ran.
    fn apply(&mut self, s: Stamped) -> Option<Outcome> {
        if self.seqs.len() >= PLAYERS_MAX && !self.seqs.contains_key(&s.player) {
            return None;
        }
        if !self.seqs.entry(s.player).or_default().insert(s.seq) {
            return None;
        }
        let world = self.world.as_mut().ok()?;
        self.frame += 1;
        let outcome = world
            .apply_frame(self.frame, &[(Address(s.player.0), s.action)])
            .pop()?;
        if self.history.len() < HISTORY_MAX {
            self.history.push(s);
        }
        Some(outcome)
    }

    /// Adopts a peer's history if it knows more than we do: replays it from genesis, then our
    /// own actions it lacks.
    fn adopt(&mut self, history: Vec<Stamped>) -> bool {
        if history.len() <= self.history.len() {
            return false;
        }
        let Ok(fresh) = SandboxWorld::genesis(code::TOKEN, code::WORLD) else {
            return false;
        };
        let known: std::collections::BTreeSet<(PeerId, u64)> =
            history.iter().map(|s| (s.player, s.seq)).collect();
        let ours: Vec<Stamped> = std::mem::take(&mut self.history)
            .into_iter()
            .filter(|s| !known.contains(&(s.player, s.seq)))
            .collect();
        self.world = Ok(fresh);
        self.seqs.clear();
        self.frame = 0;
        for s in history.into_iter().chain(ours) {
            self.apply(s);
        }
        true
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
    /// Messages from the mesh and the local requests are applied to the world; presence and
    /// actions are published.
    Sync,
    /// What is drawn follows the state.
    Draw,
}

/// The game's headless systems. Needs `MeshworkPlugin` (and, for a player, `SandboxWindowPlugin`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxPlugin {
    /// Run as a bot player (wanders and builds on its own).
    pub bot: bool,
}

impl Plugin for SandboxPlugin {
    fn build(&self, app: &mut App) {
        let me = app.world().resource::<LocalPeer>().peer_id;
        app.insert_resource(Game::new(me, self.bot))
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
                (receive, take_actions, publish_presence, ask_history)
                    .chain()
                    .in_set(SandboxSystems::Sync),
            );
        if self.bot {
            app.add_systems(Update, crate::bot::play.in_set(SandboxSystems::Input));
        }
    }
}

fn now_ms(time: &Time<Real>) -> u64 {
    u64::try_from(time.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn receive(
    time: Res<Time<Real>>,
    mut game: ResMut<Game>,
    mut published: MessageReader<Published>,
    mut received: MessageReader<MessageReceived>,
    mut send: MessageWriter<SendMessage>,
    mut applied: MessageWriter<ActionApplied>,
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
            } => {
                let pos = Vec2::new(x_milli as f32 / 1000.0, y_milli as f32 / 1000.0);
                game.avatars.insert(
                    p.origin,
                    Avatar {
                        pos,
                        links,
                        bot,
                        seen_ms: now,
                    },
                );
            }
            // Only the author may publish its own actions (the overlay's origin is a hint
            // here; signed inputs come with rollback sessions).
            SandboxMsg::Act(s) if s.player == p.origin => {
                if let Some(outcome) = game.apply(s) {
                    applied.write(ActionApplied {
                        player: s.player,
                        action: s.action,
                        outcome,
                    });
                }
            }
            SandboxMsg::Act(_) => {}
            SandboxMsg::Hello if !game.history.is_empty() => {
                send.write(SendMessage {
                    target: p.origin,
                    exact: true,
                    payload: SandboxMsg::History(game.history.clone()).encode(),
                });
            }
            SandboxMsg::Hello | SandboxMsg::History(_) => {}
        }
    }
    for m in received.read() {
        if let Ok(SandboxMsg::History(h)) = SandboxMsg::decode(&m.payload) {
            let count = h.len();
            if game.adopt(h) {
                info!(
                    "adopted a history of {count} actions from {}",
                    m.origin.short()
                );
            }
            game.synced = true;
        }
    }
    game.avatars
        .retain(|_, a| now.saturating_sub(a.seen_ms) <= AVATAR_TIMEOUT_MS);
}

fn take_actions(
    mut game: ResMut<Game>,
    mut requests: MessageReader<TakeAction>,
    mut publish: MessageWriter<Subscribe>,
    mut applied: MessageWriter<ActionApplied>,
) {
    for TakeAction(action) in requests.read() {
        let s = Stamped {
            player: game.me,
            seq: game.next_seq,
            action: *action,
        };
        game.next_seq += 1;
        let Some(outcome) = game.apply(s) else {
            continue;
        };
        game.last_outcome = Some(match &outcome {
            Outcome::Done => match action {
                Action::Place { x, y, .. } => format!("placed a block at ({x}, {y})"),
                Action::Remove { x, y } => format!("removed the block at ({x}, {y})"),
            },
            Outcome::Refused(why) => format!("refused: {why}"),
        });
        // Refused actions travel too: every peer refuses them alike, and the log stays whole.
        publish.write(Subscribe {
            topic: WORLD_TOPIC.to_vec(),
            payload: Some(SandboxMsg::Act(s).encode()),
        });
        applied.write(ActionApplied {
            player: s.player,
            action: s.action,
            outcome,
        });
    }
}

fn publish_presence(
    time: Res<Time<Real>>,
    mut game: ResMut<Game>,
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
    };
    publish.write(Subscribe {
        topic: WORLD_TOPIC.to_vec(),
        payload: Some(msg.encode()),
    });
}

fn ask_history(
    time: Res<Time<Real>>,
    mut game: ResMut<Game>,
    peers: Res<Peers>,
    mut publish: MessageWriter<Subscribe>,
) {
    let now = now_ms(&time);
    if game.synced || peers.linked.is_empty() {
        return;
    }
    if game.hellos >= HELLOS_MAX {
        game.synced = true;
        return;
    }
    if game.hellos > 0 && now.saturating_sub(game.last_hello_ms) < HELLO_INTERVAL_MS {
        return;
    }
    // The first request waits a little for the subscription to reach the topic's rendezvous.
    if game.hellos == 0 && game.last_hello_ms == 0 {
        game.last_hello_ms = now.max(1);
        return;
    }
    game.hellos += 1;
    game.last_hello_ms = now;
    publish.write(Subscribe {
        topic: WORLD_TOPIC.to_vec(),
        payload: Some(SandboxMsg::Hello.encode()),
    });
}

#[cfg(test)]
mod tests {
    use super::SeqWindow;

    #[test]
    fn seq_window_accepts_each_number_once() {
        let mut w = SeqWindow::default();
        assert!(w.insert(1));
        assert!(!w.insert(1));
        assert!(w.insert(3));
        assert!(w.insert(2), "out of order but new");
        assert!(!w.insert(2));
        assert!(w.insert(100));
        assert!(!w.insert(3), "too old to tell: refused");
        assert!(w.insert(99));
        assert!(!w.insert(99));
    }
}
