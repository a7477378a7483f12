//! Sessions in the sandbox: who plays together, GGRS rollback carrying the actions, and the
//! checkpoints referees from outside the session finalise.
//!
//! Decisions (the demo's world is small, so it keeps them simple and writes them down):
//! - **One session per region.** The players heard on the world topic whose avatars stand in
//!   our region (at most [`ROSTER_MAX`], lowest peer ids first) form its session. Each region
//!   is its own world instance (same contract code, its own state and checkpoints, its first
//!   session's parent [`region_genesis`](crate::world::region_genesis)); walking into another
//!   region leaves the session and switches worlds ([`Game::enter_region`], which keeps the
//!   last finalised state of regions we left). Actions on cells outside our region are refused
//!   locally. Presence stays on one world topic, so everyone sees every avatar.
//! - **Roster agreement.** The *proposer* is the candidate with the highest finalised height
//!   (ties: lowest peer id). When the candidates it hears differ from the running roster and have
//!   been stable for [`ROSTER_STABLE_MS`], it sends every candidate a [`Proposal`]: members,
//!   referee pool, parent checkpoint, start frame, and the finalised state (a [`Snapshot`]). A
//!   member accepts a proposal that includes it, comes from a member, and does not go back
//!   behind its own finalised height. Every member onboards the newcomers the same way
//!   ([`SandboxWorld::onboard`]) and starts the same session from the same root. A roster change
//!   continues from the last *finalised* state: frames after it that were not finalised are
//!   dropped (at most one checkpoint interval plus finality time).
//! - **GGRS carries the actions and the movement.** Each player's input ([`Pad`]) is its next
//!   queued action (or none) and where its avatar is. Frames up to GGRS's confirmed frame are
//!   final in input, so their actions go into the session's input log ([`SubmitFrame`]) and
//!   into the local world at once. Movement is not contract state: GGRS simulates the session's
//!   avatars ([`Sim`], its rollback state), each moving toward where its player says it is by
//!   at most [`STEP_MAX_CENTI`](crate::input::STEP_MAX_CENTI) per frame, and the other session members' avatars are drawn
//!   where that simulation has them. Players not in our session are drawn from presence.
//! - **Referees** are the node's referee peers (each announces itself on the world topic, with
//!   its deployment's referees per checkpoint, which the proposal carries: a local demo runs 4
//!   per checkpoint instead of the default 16 to stay light on one machine) — the *judges* —
//!   and, as *attesters*, the bonded players of other regions the proposer heard lately
//!   ([`Proposal::attesters`], `RefereePool::with_attesters`): each checkpoint's referees are
//!   drawn from both, so every player's client re-executes other sessions' checkpoints in the
//!   background, while verdicts (and so forfeits) stay with the judges. Requests carry the
//!   session's pool, so an attester knows it was drawn. With ledger bonds the proposal carries
//!   each attester's bond proof and a member refuses it if one does not check out (else a
//!   proposer could fill the referee sets with keys of its own). The set is fixed per
//!   session; the proposer proposes again to take in newcomers, or to leave out a quarter gone
//!   silent, at most every [`ATTESTERS_REFRESH_MS`].
//! - **Session bonds** are ledger outputs when the deployment has a ledger (`crate::bonds`):
//!   only players whose bond checks out against the referee pool are candidates, a proposal
//!   carries every member's bond proof and a member checks them all before it plays. Without a
//!   ledger they are named placeholders ([`placeholder_bond`]).
//! - **Bans carry their evidence.** A player the referees caught cheating is banned with their
//!   verdict ([`Ban`]). With ledger bonds the ban carries the bond's proof and holds if the
//!   verdict forfeits that bond under its own terms (whoever learns it then forfeits the bond);
//!   with placeholders it must be signed by more than two thirds of a checkpoint's panel size
//!   of referees this peer has heard announce themselves. Proposals
//!   carry the proposer's bans, so newcomers learn them; a member that knows a ban on a player
//!   a proposal names refuses it and answers the proposer with that ban
//!   ([`SandboxMsg::Bans`]), which the proposer checks and keeps, so its next proposal leaves
//!   the cheater out. A ban without a valid verdict is ignored.
//! - **No action is lost to a roster change.** Our actions that entered frames the next
//!   session does not start after (frames not finalised, and inputs GGRS had not confirmed)
//!   go to the front of the queue again when that session starts. An action that did reach
//!   the finalised state is never sent twice.
//! - **Trust.** Proposals and announcements are taken at their word (the overlay's origin); a
//!   snapshot must match the proposal's root, but the root is not checked against the referees'
//!   certificate here. Taking a proposal's member list at its word gives a dishonest proposer
//!   no power beyond what proposing already has (it can always leave a player out).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bevy::prelude::*;
use bevy::time::Real;
use meshwork::bevy::prelude::*;
use meshwork::bevy::{MeshworkGgrs, MeshworkNode};
use meshwork::proto::contract::Address;
use meshwork::proto::identity::{Identity, PublicKey};
use meshwork::proto::ledger::{BondTerms, Epoch, OutputId, OutputProof, Verdict};
use meshwork::proto::referee::{
    FinaliserConfig, Member, REFEREES_PER_CHECKPOINT, ROSTER_MAX, RefereePool, SessionId, quorum,
};
use meshwork::proto::session::{SessionConfig, SessionService, Snapshot};
use meshwork::transport::ggrs::ggrs::{
    self, Config, GgrsEvent, GgrsRequest, InputStatus, P2PSession, PlayerType, SessionBuilder,
    SessionState,
};
use sha2::{Digest as _, Sha256};

use crate::game::{Game, cell_of, now_ms};
use crate::input::{Pad, Sim, pad, unpad};
use crate::net::{ATTESTERS_MAX, BANS_MAX, Ban, Proposal, REFEREES_MAX, SandboxMsg};
use crate::world::{Action, Outcome, SandboxWorld, WorldError, region_of};

/// Frames per checkpoint (K): one second.
pub const FRAMES_PER_CHECKPOINT: u16 = 20;
/// GGRS frames per second. The session carries block actions, not movement: 20 Hz is plenty,
/// and it keeps a slow client (a browser without a GPU draws a few frames a second) in step.
pub const FPS: usize = 20;
/// GGRS input delay, in frames.
pub const INPUT_DELAY: usize = 1;
/// Frames GGRS may predict ahead of the last confirmed input.
const PREDICTION_MAX: usize = 12;
/// GGRS's own disconnect timeout: long on purpose. A player GGRS disconnects on its own is
/// one the others stop waiting for while it may still be playing, slow, and receiving their
/// inputs, and GGRS 0.13 then fails its own assertions (its input queue overflows, or a
/// rollback lands outside the prediction window); in the browser such a panic ends the page.
/// A player who really left drops out of the candidates (no presence for [`HEARD_TIMEOUT_MS`])
/// and the proposer starts a session without it; until then the others wait at GGRS's
/// prediction threshold.
const DISCONNECT_MS: u64 = 120_000;
/// How long the candidate set must stay the same before a proposal.
pub const ROSTER_STABLE_MS: u64 = 1_500;
/// Least time between two proposals.
const PROPOSE_INTERVAL_MS: u64 = 3_000;
/// A session that has not confirmed a frame for this long (or never started) is proposed again.
const SYNC_TIMEOUT_MS: u64 = 6_000;
/// A session whose checkpoints have not been finalised for this long is proposed again (its
/// referees are gone, or its members' claims keep losing).
const FINALITY_TIMEOUT_MS: u64 = 20_000;
/// Checkpoints of ours waiting for finality (each holds a copy of the world); beyond, the
/// oldest is dropped.
const CHECKPOINTS_WAITING_MAX: usize = 8;
/// A candidate that should propose (the highest height) but has not while we wait for a
/// session is passed over for this long...
const PROPOSER_PATIENCE_MS: u64 = 10_000;
/// ...for this long (or until it proposes).
const PASSED_OVER_MS: u64 = 60_000;
/// Players and referees not heard from for this long are no longer candidates.
const HEARD_TIMEOUT_MS: u64 = 3_000;
/// A running session is proposed again, to take in players who appeared elsewhere since it
/// started as attesters, at most this often. Attesters are a consensus parameter of the panel,
/// fixed for a session; a new one costs a roster change (frames since the last finalised
/// checkpoint are played again), so newcomers wait up to this long before they referee.
pub const ATTESTERS_REFRESH_MS: u64 = 20_000;
/// Referees not heard from for this long leave the pool.
const REFEREE_TIMEOUT_MS: u64 = 10_000;
/// Local actions waiting for a frame.
pub const QUEUED_MAX: usize = 8;
/// Our actions kept until a checkpoint holding them is finalised (beyond: the oldest are
/// forgotten, with a warning; a player acts a few times a second, a checkpoint is one second).
const UNFINAL_MAX: usize = 256;
/// Bans kept (each backed by a referees' verdict).
const BANNED_MAX: usize = 1_024;
/// Frames GGRS may run in one update (catching up after a slow frame).
const STEPS_MAX: usize = 8;

/// The sandbox's GGRS configuration.
#[derive(Debug)]
pub struct SandboxGgrs;

impl Config for SandboxGgrs {
    type Input = Pad;
    type InputPredictor = ggrs::PredictDefault;
    type State = Sim;
    type Address = PeerId;
}

/// A player's session bond in the demo: a name, not a ledger output (see the module docs).
pub fn placeholder_bond(key: &PublicKey) -> OutputId {
    OutputId(
        Sha256::new()
            .chain_update(b"meshwork-sandbox/session-bond")
            .chain_update(key.0)
            .finalize()
            .into(),
    )
}

/// The session glue's state on this peer.
#[derive(Resource, Default)]
pub struct Play {
    /// Our public key (known once the node is up).
    pub key: Option<PublicKey>,
    /// The session we play.
    pub session: Option<SessionId>,
    /// Its players, in roster order (sorted keys).
    pub roster: Vec<PeerId>,
    /// Referees heard of: when, and the referees per checkpoint each announced.
    pub referees: BTreeMap<PublicKey, (u64, u8)>,
    /// Players a referee panel caught cheating, with the verdict (never proposed again).
    pub banned: BTreeMap<PeerId, Ban>,
    /// Cheats detected in our sessions.
    pub cheats_caught: u64,
    /// Checkpoints of ours finalised.
    pub finalised: u64,
    /// Milliseconds from the last finalised checkpoint's last frame to its finality.
    pub finality_ms: Option<u64>,
    /// Why there is no running session, for the HUD.
    pub status: String,
    ggrs: Option<P2PSession<SandboxGgrs>>,
    handle: usize,
    first_frame: u64,
    recorded: BTreeMap<i32, Vec<Pad>>,
    /// The avatars as GGRS simulates them (predicted up to the current frame).
    pub sim: Sim,
    /// The avatars as of the last confirmed frame (the same on every member).
    pub confirmed: Sim,
    /// Steps of other members' avatars in confirmed frames (movement GGRS carried to us).
    pub avatar_steps: u64,
    next_confirm: i32,
    accumulated_s: f32,
    skip: u32,
    /// Local actions waiting for a frame.
    pub queued: VecDeque<Action>,
    /// Our actions given to GGRS whose frame is not confirmed yet: (frame, action), oldest first.
    inflight: VecDeque<(u64, Action)>,
    /// The GGRS frame we last gave a fresh input for.
    input_frame: Option<i32>,
    /// The last frame GGRS confirmed *and* re-simulated with its confirmed inputs.
    settled: i32,
    /// When our session last had a checkpoint finalised (or started).
    last_final_ms: u64,
    /// The proposer we wait for while we have no (live) session, and since when.
    awaited: Option<(PeerId, u64)>,
    /// Would-be proposers that did not propose, passed over until the given ms.
    passed_over: BTreeMap<PeerId, u64>,
    /// Our actions in confirmed frames not finalised yet: (frame, action), oldest first.
    unfinal: VecDeque<(u64, Action)>,
    /// World copies at our checkpoints' ends (end frame → world, formed-at ms).
    checkpoints: BTreeMap<u64, (SandboxWorld, u64)>,
    candidates: Vec<PeerId>,
    candidates_since_ms: u64,
    left: bool,
    /// When a frame was last confirmed (or the session started).
    progress_ms: u64,
    last_proposal_ms: Option<u64>,
    /// The running session's attesters, and when it started.
    attesters: Vec<PublicKey>,
    started_ms: u64,
    /// The ledger side: the setup, verified bonds, ours, forfeits.
    pub bonds: crate::bonds::Bonds,
}

impl Play {
    /// The referee pool as we hear it at `now`: live referees announcing the deployment's
    /// referees per checkpoint (what most announce), leaving out `exclude`; with that number.
    pub(crate) fn pool_without(
        &self,
        now: u64,
        exclude: &BTreeSet<PublicKey>,
    ) -> (Vec<PublicKey>, u8) {
        let live: Vec<(PublicKey, u8)> = self
            .referees
            .iter()
            .filter(|(k, (seen, _))| {
                !exclude.contains(k) && now.saturating_sub(*seen) <= REFEREE_TIMEOUT_MS
            })
            .map(|(k, (_, n))| (*k, *n))
            .collect();
        let per_checkpoint = panel_size(live.iter().map(|(_, n)| *n));
        let referees = live
            .iter()
            .filter(|(_, n)| *n == per_checkpoint)
            .map(|(k, _)| *k)
            .collect();
        (referees, per_checkpoint)
    }

    /// The referee pool session bonds name (empty until enough referees are heard).
    pub(crate) fn pool(&self, now: u64) -> Vec<PublicKey> {
        let (pool, per_checkpoint) = self.pool_without(now, &BTreeSet::new());
        if pool.len() < usize::from(per_checkpoint) {
            return Vec::new();
        }
        pool
    }

    /// Whether GGRS is running our session.
    pub fn running(&self) -> bool {
        self.ggrs
            .as_ref()
            .is_some_and(|s| s.current_state() == SessionState::Running)
    }

    /// The frame [`Game::world`] is at: frames confirmed since the world's genesis.
    pub fn confirmed_frames(&self) -> u64 {
        self.first_frame + u64::try_from(self.next_confirm).unwrap_or(0)
    }

    /// Queues a local action for the next frame (dropped beyond [`QUEUED_MAX`]).
    pub fn queue(&mut self, action: Action) {
        if self.queued.len() < QUEUED_MAX {
            self.queued.push_back(action);
        }
    }

    /// Puts our actions a session starting at `first_frame` does not hold (given for frames from
    /// `first_frame` on, confirmed or not) back at the front of the queue, oldest first, and
    /// forgets the rest; returns how many were put back. The queue keeps [`QUEUED_MAX`]. An
    /// action given for an earlier frame is in the finalised state the session starts from (or,
    /// if GGRS dropped our input as disconnected, lost): never sent twice, as a repeated block
    /// is refused and still charged.
    fn requeue_from(&mut self, first_frame: u64) -> usize {
        let mut again: VecDeque<Action> = self
            .unfinal
            .drain(..)
            .chain(self.inflight.drain(..))
            .filter(|(frame, _)| *frame >= first_frame)
            .map(|(_, a)| a)
            .collect();
        let n = again.len();
        again.extend(self.queued.drain(..));
        if again.len() > QUEUED_MAX {
            warn!("{} queued actions dropped", again.len() - QUEUED_MAX);
            again.truncate(QUEUED_MAX);
        }
        self.queued = again;
        n
    }

    /// Keeps `ban` (checked by the caller) if it is new and there is room, and has the
    /// cheater's bond forfeited; whether it was kept.
    fn ban(&mut self, ban: Ban) -> bool {
        let peer = PeerId::from_public_key(&ban.player);
        if self.banned.len() >= BANNED_MAX || self.banned.contains_key(&peer) {
            return false;
        }
        self.bonds.forfeit_later(&ban, self.key);
        self.banned.insert(peer, ban);
        true
    }

    fn stop(&mut self) {
        self.session = None;
        self.roster.clear();
        self.ggrs = None;
        self.recorded.clear();
        self.checkpoints.clear();
    }
}

/// Attaches the session service to the node once it is up (identity, world code, referee duty).
pub(crate) fn attach(
    mut node: NonSendMut<MeshworkNode>,
    game: Res<Game>,
    mut play: ResMut<Play>,
    cheat: Res<CheatFlag>,
) {
    if play.key.is_some() {
        return;
    }
    let Ok(world) = &game.world else {
        play.status = "the world contract is not built".into();
        return;
    };
    let identity = node.node.overlay.identity().clone();
    play.key = Some(identity.public_key());
    match session_service(identity, world, cheat.0) {
        Ok(service) => attach_session(&mut node, service),
        Err(e) => play.status = format!("the world contract: {e}"),
    }
}

/// The session service every sandbox peer runs, players and the node's referees alike: the
/// world contract's code, [`FRAMES_PER_CHECKPOINT`], referee duty on; `cheat` claims tampered
/// roots (a cheating bot).
pub fn session_service(
    identity: Identity,
    world: &SandboxWorld,
    cheat: bool,
) -> Result<SessionService, WorldError> {
    let code = world.host().code_of(&world.world_contract())?;
    let cfg = SessionConfig {
        world: world.world_contract(),
        code,
        pool: RefereePool::default(),
        frames_per_checkpoint: FRAMES_PER_CHECKPOINT,
        finaliser: FinaliserConfig::default(),
        referee: true,
        cheat,
    };
    Ok(SessionService::new(identity, cfg, world.host().clone()))
}

/// Whether this player claims tampered roots (a cheating bot, for the demo and its tests).
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct CheatFlag(pub bool);

/// A referee announced itself.
pub(crate) fn heard_referee(
    play: &mut Play,
    origin: PeerId,
    key: PublicKey,
    per_checkpoint: u8,
    now: u64,
) {
    if PeerId::from_public_key(&key) != origin
        || per_checkpoint == 0
        || usize::from(per_checkpoint) > REFEREES_PER_CHECKPOINT
    {
        return;
    }
    if play.referees.len() >= REFEREES_MAX && !play.referees.contains_key(&key) {
        // Full: forget referees gone silent before refusing a new one.
        play.referees
            .retain(|_, (seen, _)| now.saturating_sub(*seen) <= REFEREE_TIMEOUT_MS);
        if play.referees.len() >= REFEREES_MAX {
            return;
        }
    }
    play.referees.insert(key, (now, per_checkpoint));
}

/// Referees per checkpoint of the deployment: what most referees announce (they all announce
/// the same), the library's default when none is heard.
fn panel_size(announced: impl Iterator<Item = u8>) -> u8 {
    let mut votes: BTreeMap<u8, usize> = BTreeMap::new();
    for n in announced {
        *votes.entry(n).or_default() += 1;
    }
    votes
        .iter()
        .max_by_key(|(n, count)| (**count, **n))
        .map_or(REFEREES_PER_CHECKPOINT as u8, |(n, _)| *n)
}

/// Whether `ban` holds: its verdict is against the player's session bond and is signed by more
/// than two thirds of a checkpoint's panel size of referees we know. (A real verdict is signed
/// by more than two thirds of the whole panel, which is at least that many.) Signatures of
/// referees we have not heard of are not counted.
pub(crate) fn check_ban(play: &Play, ban: &Ban) -> bool {
    if let Some(setup) = &play.bonds.setup {
        // A ledger bond: the verdict must forfeit it under its own terms (which name the
        // referees and the quorum; a bond naming others could never be forfeited, and no
        // proposer takes it).
        let Some(proof) = &ban.bond else {
            return false;
        };
        return proof.verify(setup.committee()).is_ok_and(|(id, output)| {
            id == ban.verdict.bond
                && output.owner == ban.player
                && output
                    .bond
                    .as_ref()
                    .is_some_and(|t| t.referee_quorum > 0 && ban.verdict.verify(t).is_ok())
        });
    }
    if ban.verdict.bond != placeholder_bond(&ban.player) {
        return false;
    }
    let per_checkpoint = usize::from(panel_size(play.referees.values().map(|(_, n)| *n)));
    let signatures: Vec<_> = ban
        .verdict
        .signatures
        .iter()
        .filter(|(k, _)| play.referees.contains_key(k))
        .copied()
        .collect();
    let terms = BondTerms {
        expiry: Epoch(0),
        beneficiaries: Vec::new(),
        referees: signatures.iter().map(|(k, _)| *k).collect(),
        referee_quorum: u16::try_from(quorum(per_checkpoint)).unwrap_or(u16::MAX),
        lottery: None,
    };
    Verdict {
        signatures,
        ..ban.verdict.clone()
    }
    .verify(&terms)
    .is_ok()
}

/// Keeps the bans in `bans` that hold and are new; returns how many.
pub(crate) fn learn_bans(play: &mut Play, bans: &[Ban]) -> usize {
    let mut learnt = 0;
    for ban in bans.iter().take(BANS_MAX) {
        let peer = PeerId::from_public_key(&ban.player);
        if play.banned.contains_key(&peer) {
            continue;
        }
        if !check_ban(play, ban) {
            debug!("a ban on {} without a valid verdict: ignored", peer.short());
        } else if play.ban(ban.clone()) {
            info!("learnt that {} was caught cheating", peer.short());
            learnt += 1;
        }
    }
    learnt
}

/// The candidates for the session: players heard lately (not banned) and us, lowest ids first.
/// Where bonds are ledger outputs, only players whose session bond checks out against the
/// referee pool (and we only once ours has settled).
fn candidates(game: &Game, play: &Play, now: u64) -> Vec<(PeerId, PublicKey, u64)> {
    let Some(me) = play.key else {
        return Vec::new();
    };
    let pool = if play.bonds.on_ledger() {
        play.pool(now)
    } else {
        Vec::new()
    };
    let bonded = |k: &PublicKey| !play.bonds.on_ledger() || play.bonds.bond_of(k, &pool).is_some();
    let mut c: Vec<(PeerId, PublicKey, u64)> = game
        .avatars
        .iter()
        .filter(|(p, a)| {
            !play.banned.contains_key(p)
                && now.saturating_sub(a.seen_ms) <= HEARD_TIMEOUT_MS
                && region_at(a.pos) == game.region
        })
        .filter_map(|(p, a)| a.key.map(|k| (*p, k, a.height)))
        .filter(|(_, k, _)| bonded(k))
        .collect();
    if bonded(&me) {
        c.push((game.me, me, game.height));
    }
    c.sort_by_key(|(p, ..)| *p);
    c.truncate(ROSTER_MAX);
    c
}

/// The region holding position `pos`.
fn region_at(pos: Vec2) -> (u16, u16) {
    let (x, y) = cell_of(pos);
    region_of(x, y)
}

/// Bonded players heard lately who are not `candidates`, not banned and not referees, by key,
/// with their bonds' proofs where bonds are ledger outputs (else none): a session's attesters
/// (they referee it from their own sessions elsewhere).
fn attesters(
    game: &Game,
    play: &Play,
    now: u64,
    candidates: &BTreeSet<PublicKey>,
    referees: &[PublicKey],
) -> (Vec<PublicKey>, Vec<OutputProof>) {
    let pool = if play.bonds.on_ledger() {
        play.pool(now)
    } else {
        Vec::new()
    };
    let mut a: Vec<(PublicKey, Option<OutputProof>)> = game
        .avatars
        .iter()
        .filter(|(p, a)| {
            !play.banned.contains_key(p) && now.saturating_sub(a.seen_ms) <= HEARD_TIMEOUT_MS
        })
        .filter_map(|(_, a)| a.key)
        .filter(|k| !candidates.contains(k) && !referees.contains(k))
        .filter_map(|k| {
            if play.bonds.on_ledger() {
                play.bonds
                    .bond_of(&k, &pool)
                    .map(|b| (k, Some(b.proof.clone())))
            } else {
                Some((k, None))
            }
        })
        .collect();
    a.sort_by_key(|(k, _)| *k);
    a.truncate(ATTESTERS_MAX);
    let (keys, bonds): (Vec<_>, Vec<_>) = a.into_iter().unzip();
    (keys, bonds.into_iter().flatten().collect())
}

/// Proposes a session when we are the proposer and the roster should change.
fn maybe_propose(now: u64, game: &Game, play: &mut Play) -> Option<Proposal> {
    let cands = candidates(game, play, now);
    let ids: Vec<PeerId> = cands.iter().map(|(p, ..)| *p).collect();
    if ids != play.candidates {
        play.candidates = ids.clone();
        play.candidates_since_ms = now;
    }
    // A session that never started running, or stopped confirming frames (a member left it
    // without leaving the world, e.g. after its own claim lost), is proposed again.
    let stale = play.session.is_some()
        && (now.saturating_sub(play.progress_ms) > SYNC_TIMEOUT_MS
            || now.saturating_sub(play.last_final_ms) > FINALITY_TIMEOUT_MS);
    // Heights are taken at their word: a candidate claiming the highest one that then never
    // proposes (lying, or stuck) is passed over for a while, so the next one proposes.
    play.passed_over.retain(|_, until| *until > now);
    let waiting = play.session.is_none() || stale;
    if let Some((q, since)) = play.awaited
        && waiting
        && now.saturating_sub(since) > PROPOSER_PATIENCE_MS
    {
        info!(
            "{} should propose a session but has not: passed over",
            q.short()
        );
        play.passed_over.insert(q, now + PASSED_OVER_MS);
        play.awaited = None;
    }
    let proposer = cands
        .iter()
        .filter(|(p, ..)| !play.passed_over.contains_key(p))
        .max_by(|a, b| a.2.cmp(&b.2).then(b.0.cmp(&a.0)))
        .map(|(p, ..)| *p);
    match proposer {
        Some(p) if p != game.me && waiting => {
            if play.awaited.map(|(q, _)| q) != Some(p) {
                play.awaited = Some((p, now));
            }
        }
        _ => play.awaited = None,
    }
    if proposer != Some(game.me) || !cands.iter().any(|(p, ..)| *p == game.me) {
        if play.session.is_none() {
            play.status = if play.bonds.on_ledger() && play.bonds.mine.is_none() {
                "waiting for our session bond to settle".into()
            } else {
                "waiting for a session proposal".into()
            };
        }
        return None;
    }
    let mut roster_now = play.roster.clone();
    roster_now.sort();
    let in_roster: BTreeSet<PublicKey> = cands.iter().map(|(_, k, _)| *k).collect();
    let (referees, per_checkpoint) = play.pool_without(now, &in_roster);
    let (attesters, attester_bonds) = attesters(game, play, now, &in_roster, &referees);
    // Players who appeared in other regions since our session started join its attesters, and
    // a quarter of them gone silent are left out (each silent one drawn costs a retry).
    let gone = play
        .attesters
        .iter()
        .filter(|k| !attesters.contains(k))
        .count();
    let refresh = play.session.is_some()
        && now.saturating_sub(play.started_ms) >= ATTESTERS_REFRESH_MS
        && (attesters.iter().any(|k| !play.attesters.contains(k))
            || (gone > 0 && gone * 4 >= play.attesters.len()));
    if (roster_now == ids && !stale && !refresh)
        || now.saturating_sub(play.candidates_since_ms) < ROSTER_STABLE_MS
        || play
            .last_proposal_ms
            .is_some_and(|t| now.saturating_sub(t) < PROPOSE_INTERVAL_MS)
    {
        return None;
    }
    if referees.len() < usize::from(per_checkpoint) {
        play.status = format!(
            "waiting for referees: {} of {per_checkpoint} heard",
            referees.len()
        );
        return None;
    }
    let finalised = game.finalised.as_ref()?;
    play.last_proposal_ms = Some(now);
    // Bonds: the ledger outputs candidates showed us (every candidate has one, see
    // `candidates`), or placeholders.
    let pool = play.pool(now);
    let mut members = Vec::with_capacity(cands.len());
    let mut bonds = Vec::new();
    for (_, k, _) in &cands {
        if play.bonds.on_ledger() {
            let b = play.bonds.bond_of(k, &pool)?;
            members.push(Member {
                key: *k,
                bond: b.id,
            });
            bonds.push(b.proof.clone());
        } else {
            members.push(Member {
                key: *k,
                bond: placeholder_bond(k),
            });
        }
    }
    let proposal = Proposal {
        members,
        referees,
        per_checkpoint,
        region: game.region,
        attesters,
        attester_bonds,
        parent: game.parent,
        first_frame: game.height,
        root: finalised.root(),
        snapshot: Snapshot::of(finalised.host()),
        bans: play.banned.values().take(BANS_MAX).cloned().collect(),
        bonds,
    };
    Some(proposal)
}

/// Starts the session `p` describes, if we accept it.
fn accept(
    now: u64,
    p: &Proposal,
    from: PeerId,
    node: &mut MeshworkNode,
    ggrs_end: &MeshworkGgrs,
    game: &mut Game,
    play: &mut Play,
) -> Result<(), String> {
    let me = play.key.ok_or("not attached yet")?;
    if !p.members.iter().any(|m| m.key == me) {
        return Err("we are not in it".into());
    }
    if !p
        .members
        .iter()
        .any(|m| PeerId::from_public_key(&m.key) == from)
    {
        return Err("the proposer is not in it".into());
    }
    if play.banned.contains_key(&from) {
        return Err("the proposer cheated".into());
    }
    let mut keys: Vec<PublicKey> = p.members.iter().map(|m| m.key).collect();
    keys.sort();
    keys.dedup();
    if keys.len() != p.members.len() {
        return Err("a member is listed twice".into());
    }
    if p.referees.iter().any(|r| keys.binary_search(r).is_ok()) {
        return Err("a member is listed as a referee".into());
    }
    if p.attesters.iter().any(|r| keys.binary_search(r).is_ok()) {
        return Err("a member is listed as an attester".into());
    }
    if play.bonds.on_ledger() {
        // Attesters sign roots like referees: each must have a session bond the judges can
        // forfeit, or a proposer could list keys of its own and finalise what it likes.
        if p.attester_bonds.len() != p.attesters.len() {
            return Err("an attester without a bond proof".into());
        }
        for (k, proof) in p.attesters.iter().zip(&p.attester_bonds) {
            play.bonds
                .check(proof, k, &p.referees)
                .map_err(|e| format!("attester {}: {e}", PeerId::from_public_key(k).short()))?;
        }
    }
    if p.region != game.region {
        return Err(format!(
            "it plays region {:?}, we are in {:?}",
            p.region, game.region
        ));
    }
    let session_bonds = if play.bonds.on_ledger() {
        if p.bonds.len() != p.members.len() {
            return Err("a member without a bond proof".into());
        }
        let mut bonds = BTreeMap::new();
        for (m, proof) in p.members.iter().zip(&p.bonds) {
            let id = play
                .bonds
                .check(proof, &m.key, &p.referees)
                .map_err(|e| format!("{}: {e}", PeerId::from_public_key(&m.key).short()))?;
            if id != m.bond {
                return Err("a member's bond is not the one proven".into());
            }
            bonds.insert(id, proof.clone());
        }
        bonds
    } else {
        BTreeMap::new()
    };
    if p.first_frame < game.height {
        return Err(format!(
            "it starts at frame {}, behind our finalised {}",
            p.first_frame, game.height
        ));
    }
    // The finalised state: ours if it is the one, else the snapshot (checked against the root).
    let ours = game.finalised.as_ref().ok_or("no world")?;
    let mut base = if ours.root() == p.root {
        ours.clone()
    } else {
        let host = p
            .snapshot
            .restore(ours.host(), p.root)
            .map_err(|e| format!("snapshot: {e}"))?;
        ours.with_host(host).map_err(|e| format!("snapshot: {e}"))?
    };
    let finalised = base.clone();
    let addresses: Vec<Address> = p
        .members
        .iter()
        .map(|m| Address(PeerId::from_public_key(&m.key).0))
        .collect();
    base.onboard(p.first_frame, &addresses);
    let roster: Vec<PeerId> = keys.iter().map(PeerId::from_public_key).collect();
    let mut builder = SessionBuilder::<SandboxGgrs>::new()
        .with_num_players(roster.len())
        .map_err(|e| e.to_string())?
        .with_input_delay(INPUT_DELAY)
        .with_max_prediction_window(PREDICTION_MAX)
        .with_disconnect_timeout(std::time::Duration::from_millis(DISCONNECT_MS))
        .with_fps(FPS)
        .map_err(|e| e.to_string())?;
    let mut handle = 0;
    for (h, peer) in roster.iter().enumerate() {
        let kind = if *peer == game.me {
            handle = h;
            PlayerType::Local
        } else {
            node.node.overlay.connect(now, *peer);
            PlayerType::Remote(*peer)
        };
        builder = builder.add_player(kind, h).map_err(|e| e.to_string())?;
    }
    let ggrs = builder
        .start_p2p_session(ggrs_end.socket())
        .map_err(|e| e.to_string())?;
    let pool = RefereePool::new(p.referees.clone())
        .and_then(|pool| pool.with_per_checkpoint(usize::from(p.per_checkpoint)))
        .and_then(|pool| pool.with_attesters(p.attesters.clone()))
        .map_err(|e| e.to_string())?;
    let service = node.node.session.as_mut().ok_or("no session service")?;
    service.config_mut().pool = pool;
    service.stop();
    // From here on the old session is gone: a failure leaves us with none (and the proposer,
    // seeing no progress, proposes again), never half in the old one.
    let started = service.start(
        p.members.clone(),
        base.host().clone(),
        p.parent,
        p.first_frame,
    );
    let session = match started {
        Ok(s) => s,
        Err(e) => {
            play.stop();
            return Err(e.to_string());
        }
    };
    play.stop();
    let again = play.requeue_from(p.first_frame);
    if again > 0 {
        info!("{again} of our actions were not finalised before the roster changed: queued again");
    }
    play.session = Some(session);
    play.bonds.session = session_bonds;
    play.attesters = p.attesters.clone();
    play.started_ms = now;
    play.roster = roster;
    play.ggrs = Some(ggrs);
    play.handle = handle;
    play.first_frame = p.first_frame;
    play.sim = Sim::default();
    play.confirmed = Sim::default();
    play.next_confirm = 0;
    play.settled = -1;
    play.input_frame = None;
    play.skip = 0;
    play.accumulated_s = 0.0;
    play.progress_ms = now;
    play.last_final_ms = now;
    play.status = "synchronising with the other players".into();
    game.finalised = Some(finalised);
    game.height = p.first_frame;
    game.parent = p.parent;
    game.world = Ok(base);
    info!(
        "session {} started: {} players from frame {}",
        hex::encode(&session.0[..4]),
        p.members.len(),
        p.first_frame
    );
    Ok(())
}

/// Roster upkeep, proposals, GGRS frames and confirmed frames into the world and the input log.
#[expect(clippy::too_many_arguments, reason = "one system driving the session")]
pub(crate) fn play_session(
    time: Res<Time<Real>>,
    mut node: NonSendMut<MeshworkNode>,
    ggrs_end: Res<MeshworkGgrs>,
    mut game: ResMut<Game>,
    mut play: ResMut<Play>,
    mut inbox: ResMut<Inbox>,
    mut send: MessageWriter<SendMessage>,
    mut submit: MessageWriter<SubmitFrame>,
) {
    let now = now_ms(&time);
    let (game, play) = (&mut *game, &mut *play);
    if play.key.is_none() {
        return;
    }
    let standing = game.standing_in();
    if standing != game.region {
        // Sessions are per region: leave ours, switch worlds, and wait for the new region's
        // players. Actions queued for the old region's cells are dropped with it.
        play.stop();
        if let Some(s) = node.node.session.as_mut() {
            s.stop();
        }
        play.queued.clear();
        play.inflight.clear();
        play.unfinal.clear();
        play.candidates.clear();
        play.awaited = None;
        play.last_proposal_ms = None;
        game.enter_region(standing);
        play.status = format!(
            "entered region ({}, {}): waiting for its session",
            standing.0, standing.1
        );
        info!("entered region {standing:?}");
    }
    for (from, bans) in std::mem::take(&mut inbox.bans) {
        let learnt = learn_bans(play, &bans);
        debug!("{} told us of {learnt} new bans", from.short());
    }
    for (from, p) in std::mem::take(&mut inbox.proposals) {
        // It proposes: no longer awaited, nor passed over.
        if play.awaited.is_some_and(|(q, _)| q == from) {
            play.awaited = None;
        }
        play.passed_over.remove(&from);
        learn_bans(play, &p.bans);
        let named: Vec<Ban> = p
            .members
            .iter()
            .filter_map(|m| play.banned.get(&PeerId::from_public_key(&m.key)))
            .take(BANS_MAX)
            .cloned()
            .collect();
        if !named.is_empty() {
            debug!(
                "proposal from {} names {} players caught cheating: refused, told it why",
                from.short(),
                named.len()
            );
            send.write(SendMessage {
                target: from,
                exact: true,
                payload: SandboxMsg::Bans(named).encode(),
            });
            continue;
        }
        if let Err(e) = accept(now, &p, from, &mut node, &ggrs_end, game, play) {
            debug!("proposal from {} refused: {e}", from.short());
        }
    }
    if let Some(p) = maybe_propose(now, game, play) {
        match accept(now, &p, game.me, &mut node, &ggrs_end, game, play) {
            Ok(()) => {
                let payload = SandboxMsg::Propose(Box::new(p)).encode();
                for to in play.roster.iter().filter(|r| **r != game.me) {
                    send.write(SendMessage {
                        target: *to,
                        exact: true,
                        payload: payload.clone(),
                    });
                }
            }
            Err(e) => warn!("our own proposal failed: {e}"),
        }
    }
    step_ggrs(time.delta_secs(), game.pos, play);
    // The other members' avatars are where the session's simulation has them.
    if play.running() {
        for (handle, peer) in play.roster.iter().enumerate() {
            if handle != play.handle
                && let Some((x, y)) = play.sim.position(handle)
                && let Some(avatar) = game.avatars.get_mut(peer)
            {
                avatar.pos = Vec2::new(x, y);
            }
        }
    }
    if std::mem::take(&mut play.left) {
        play.stop();
        if let Some(s) = node.node.session.as_mut() {
            s.stop();
        }
        play.status = "a player left: waiting for the next session".into();
        return;
    }
    confirm(now, game, play, &mut submit);
}

/// Advances GGRS by the frames real time calls for. A panic inside GGRS (a third-party
/// library asserting on its own state) ends the session instead of the program, where the
/// platform unwinds (natively).
fn step_ggrs(dt: f32, pos: Vec2, play: &mut Play) {
    let Some(s) = play.ggrs.take() else {
        return;
    };
    let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut s = s;
        step_ggrs_inner(dt, pos, play, &mut s);
        s
    }));
    match stepped {
        Ok(s) => play.ggrs = Some(s),
        Err(_) => {
            error!("GGRS failed inside: leaving the session");
            play.left = true;
        }
    }
}

fn step_ggrs_inner(dt: f32, pos: Vec2, play: &mut Play, s: &mut P2PSession<SandboxGgrs>) {
    s.poll_remote_clients();
    for ev in s.events() {
        match ev {
            GgrsEvent::WaitRecommendation { skip_frames } => play.skip += skip_frames,
            GgrsEvent::Disconnected { addr } => {
                // The roster changed: a new session is proposed without it. Playing on with a
                // disconnected player is also where GGRS's own assertions have been seen to
                // fail (loading a frame outside its prediction window).
                info!("{} left the session: leaving it too", addr.short());
                play.left = true;
            }
            _ => {}
        }
    }
    if s.current_state() == SessionState::Running {
        play.status.clear();
        let frame_s = 1.0 / FPS as f32;
        play.accumulated_s = (play.accumulated_s + dt).min(frame_s * STEPS_MAX as f32);
        while play.accumulated_s >= frame_s {
            play.accumulated_s -= frame_s;
            if play.skip > 0 {
                play.skip -= 1;
                continue;
            }
            // GGRS 0.13 takes the first input given for a frame and drops later ones for the
            // same frame (given again while it waits at its prediction threshold), so the
            // queue moves only when a frame takes a fresh input.
            let frame = s.current_frame();
            let fresh = play.input_frame != Some(frame);
            let input = pad(play.queued.front(), pos.x, pos.y);
            if s.add_local_input(play.handle, input).is_err() {
                break;
            }
            match s.advance_frame() {
                Ok(requests) => {
                    if fresh {
                        play.input_frame = Some(frame);
                        if let Some(a) = play.queued.pop_front() {
                            let tick = play.first_frame
                                + u64::try_from(frame).unwrap_or(0)
                                + INPUT_DELAY as u64;
                            play.inflight.push_back((tick, a));
                        }
                    }
                    let advanced = requests
                        .iter()
                        .any(|r| matches!(r, GgrsRequest::AdvanceFrame { .. }));
                    for r in requests {
                        match r {
                            GgrsRequest::SaveGameState { cell, frame } => {
                                cell.save(frame, Some(play.sim.clone()), None);
                            }
                            GgrsRequest::LoadGameState { cell, .. } => {
                                if let Some(sim) = cell.load() {
                                    play.sim = sim;
                                }
                            }
                            GgrsRequest::AdvanceFrame { inputs } => {
                                let pads = inputs
                                    .iter()
                                    .map(|(i, st)| {
                                        if *st == InputStatus::Disconnected {
                                            Pad::default()
                                        } else {
                                            *i
                                        }
                                    })
                                    .collect::<Vec<Pad>>();
                                let frame = play.sim.frame;
                                play.sim.advance(&pads);
                                play.recorded.insert(frame, pads);
                            }
                        }
                    }
                    // Every frame up to here was re-simulated with the inputs that confirmed it
                    // (a bare poll raises `confirmed_frame()` before the rollback happens).
                    play.settled = s.confirmed_frame();
                    if !advanced {
                        // At the prediction threshold: wait for the others.
                        break;
                    }
                }
                Err(e) => {
                    debug!("GGRS: {e}");
                    break;
                }
            }
        }
    }
}

/// Frames GGRS confirmed go into the input log and the world, in order.
fn confirm(now: u64, game: &mut Game, play: &mut Play, submit: &mut MessageWriter<SubmitFrame>) {
    if play.ggrs.is_none() {
        return;
    }
    while play.next_confirm <= play.settled {
        let Some(pads) = play.recorded.remove(&play.next_confirm) else {
            break;
        };
        let tick = play.first_frame + u64::try_from(play.next_confirm).unwrap_or(0);
        let before = play.confirmed.avatars.clone();
        play.confirmed.advance(&pads);
        let handle = play.handle;
        play.avatar_steps += play
            .confirmed
            .avatars
            .iter()
            .enumerate()
            .filter(|(i, a)| *i != handle && before.get(*i).is_some_and(|b| b.is_some() && b != *a))
            .count() as u64;
        let mut actions = Vec::new();
        let mut per_player = Vec::with_capacity(pads.len());
        let mut mine = None;
        for (i, p) in pads.iter().enumerate() {
            match unpad(p) {
                Some(a) => {
                    if i == play.handle {
                        mine = Some((actions.len(), a));
                    }
                    let peer = play.roster.get(i).copied().unwrap_or(game.me);
                    actions.push((Address(peer.0), a));
                    per_player.push(vec![a.encode()]);
                }
                None => per_player.push(Vec::new()),
            }
        }
        submit.write(SubmitFrame {
            actions: per_player,
        });
        if let Some((_, a)) = mine {
            if let Some(i) = play.inflight.iter().position(|x| *x == (tick, a)) {
                play.inflight.remove(i);
            }
            if play.unfinal.len() >= UNFINAL_MAX {
                warn!("an action of ours was never finalised: forgotten");
                play.unfinal.pop_front();
            }
            play.unfinal.push_back((tick, a));
        }
        if let Ok(world) = game.world.as_mut() {
            let outcomes = world.apply_tick(tick, &actions);
            if let Some((i, action)) = mine {
                game.last_outcome = Some(describe(&action, outcomes.get(i)));
            }
            let n = u64::try_from(play.next_confirm).unwrap_or(0) + 1;
            if n % u64::from(FRAMES_PER_CHECKPOINT) == 0 {
                play.checkpoints
                    .insert(play.first_frame + n, (world.clone(), now));
                while play.checkpoints.len() > CHECKPOINTS_WAITING_MAX {
                    play.checkpoints.pop_first();
                }
            }
        }
        // Rolled-back frames below the confirmed one are never asked for again.
        play.recorded.retain(|f, _| *f > play.next_confirm);
        play.next_confirm += 1;
        play.progress_ms = now;
    }
}

fn describe(action: &Action, outcome: Option<&Outcome>) -> String {
    match outcome {
        Some(Outcome::Done) => match action {
            Action::Place { x, y, .. } => format!("placed a block at ({x}, {y})"),
            Action::Remove { x, y } => format!("removed the block at ({x}, {y})"),
        },
        Some(Outcome::Refused(why)) => format!("refused: {why}"),
        None => "no outcome".into(),
    }
}

/// Messages sent to us, waiting for [`play_session`].
#[derive(Resource, Default)]
pub(crate) struct Inbox {
    /// Session proposals, by sender.
    pub(crate) proposals: Vec<(PeerId, Proposal)>,
    /// Bans answering our proposals, by sender.
    pub(crate) bans: Vec<(PeerId, Vec<Ban>)>,
}

impl Inbox {
    /// Messages of each kind kept between two frames (more are dropped).
    pub(crate) const MAX: usize = 16;
}

/// Finality and cheats from the session service.
pub(crate) fn outcomes(
    time: Res<Time<Real>>,
    mut game: ResMut<Game>,
    mut play: ResMut<Play>,
    mut finalised: MessageReader<CheckpointFinalised>,
    mut cheats: MessageReader<CheatDetected>,
) {
    let now = now_ms(&time);
    let (game, play) = (&mut *game, &mut *play);
    for f in finalised.read() {
        if Some(f.session) != play.session {
            continue;
        }
        if !f.agreed {
            warn!(
                "checkpoint {} finalised a root we did not compute: leaving the session",
                f.seq
            );
            play.stop();
            continue;
        }
        if let Some((world, formed_ms)) = play.checkpoints.remove(&f.frame)
            && world.root() == f.root
        {
            game.finalised = Some(world);
            game.height = f.frame;
            game.parent = f.digest;
            play.unfinal.retain(|(frame, _)| *frame >= f.frame);
            play.last_final_ms = now;
            play.finalised += 1;
            play.finality_ms = Some(now.saturating_sub(formed_ms));
        }
        play.checkpoints.retain(|end, _| *end > f.frame);
    }
    for c in cheats.read() {
        let peer = PeerId::from_public_key(&c.player);
        let ban = Ban {
            player: c.player,
            verdict: c.verdict.clone(),
            bond: play.bonds.session.get(&c.bond).cloned(),
        };
        if play.ban(ban) {
            play.cheats_caught += 1;
            warn!(
                "referees caught {} claiming a wrong root: verdict against its session bond {}",
                peer.short(),
                hex::encode(&c.bond.0[..4])
            );
        }
    }
}

/// A referee's session service for the sandbox world: what the node's referee peers run
/// (`meshwork --referees N`). Announce it with [`referee_announcement`].
pub fn referee_service(identity: Identity) -> Result<SessionService, WorldError> {
    let world = SandboxWorld::genesis(crate::world::code::TOKEN, crate::world::code::WORLD)?;
    session_service(identity, &world, false)
}

/// What a referee publishes on [`WORLD_TOPIC`](crate::net::WORLD_TOPIC) every few seconds so
/// players put it in their pool, with its deployment's referees per checkpoint.
pub fn referee_announcement(key: PublicKey, per_checkpoint: u8) -> Vec<u8> {
    SandboxMsg::Referee {
        key,
        per_checkpoint,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(x: u32) -> Action {
        Action::Place { x, y: 1, kind: 1 }
    }

    #[test]
    fn actions_a_new_session_does_not_hold_are_queued_again_in_order() {
        let mut play = Play::default();
        // Frames 10 and 25 were confirmed; 18 and 30 were given to GGRS but not confirmed here
        // yet; 40 waits in the queue.
        play.unfinal.extend([(10, place(1)), (25, place(2))]);
        play.inflight.extend([(18, place(5)), (30, place(3))]);
        play.queue(place(4));
        // The next session starts at frame 20: frames 10 and 18 are in its state (the others
        // confirmed 18), frames 25 and 30 are not.
        assert_eq!(play.requeue_from(20), 2);
        assert_eq!(
            play.queued.iter().copied().collect::<Vec<_>>(),
            vec![place(2), place(3), place(4)]
        );
        assert!(play.unfinal.is_empty() && play.inflight.is_empty());
        // Nothing pending: nothing changes.
        assert_eq!(play.requeue_from(40), 0);
        assert_eq!(play.queued.len(), 3);
        // The queue stays bounded.
        play.inflight
            .extend((0..20).map(|i| (100 + u64::from(i), place(i))));
        assert_eq!(play.requeue_from(40), 20);
        assert_eq!(play.queued.len(), QUEUED_MAX);
        assert_eq!(play.queued.front(), Some(&place(0)));
    }

    /// Sessions are per region: a player heard in another region is no candidate but an
    /// attester; walking over switches worlds, and coming back finds the region as we left it.
    #[test]
    fn regions_have_their_own_sessions_and_worlds() {
        let me = Identity::from_seed([1; 32]);
        let near = Identity::from_seed([2; 32]);
        let far = Identity::from_seed([3; 32]);
        let mut game = Game::new(me.peer_id(), true);
        assert!(
            game.world.is_ok(),
            "contracts not built: scripts/build-contracts.sh"
        );
        let play = Play {
            key: Some(me.public_key()),
            ..Play::default()
        };
        let avatar = |pos: Vec2, key| crate::game::Avatar {
            pos,
            links: Vec::new(),
            bot: true,
            key: Some(key),
            height: 0,
            seen_ms: 0,
        };
        game.avatars
            .insert(near.peer_id(), avatar(game.pos, near.public_key()));
        let elsewhere = game.pos - Vec2::new(f32::from(crate::world::REGION_SIZE), 0.0);
        game.avatars
            .insert(far.peer_id(), avatar(elsewhere, far.public_key()));
        let c: Vec<PeerId> = candidates(&game, &play, 0).iter().map(|c| c.0).collect();
        assert!(c.contains(&me.peer_id()) && c.contains(&near.peer_id()));
        assert!(!c.contains(&far.peer_id()), "a player of another region");
        let ours: BTreeSet<PublicKey> = candidates(&game, &play, 0).iter().map(|c| c.1).collect();
        assert_eq!(
            attesters(&game, &play, 0, &ours, &[]),
            (vec![far.public_key()], Vec::new())
        );
        // Another region's world: its own genesis parent; ours is kept.
        let home = game.region;
        let parent = game.parent;
        game.height = 40;
        game.enter_region(region_at(elsewhere));
        assert_ne!(game.parent, parent);
        assert_eq!(game.height, 0);
        game.enter_region(home);
        assert_eq!((game.parent, game.height), (parent, 40));
    }

    /// A peer claiming the highest finalised height that never proposes is passed over after
    /// the patience, and the next candidate (here: us) proposes; it is elected again once the
    /// passing over runs out.
    #[test]
    fn a_silent_proposer_is_passed_over() {
        let me = Identity::from_seed([1; 32]);
        let liar = Identity::from_seed([2; 32]);
        let mut game = Game::new(me.peer_id(), true);
        assert!(
            game.world.is_ok(),
            "contracts not built: scripts/build-contracts.sh"
        );
        let mut play = Play {
            key: Some(me.public_key()),
            ..Play::default()
        };
        for i in 10..14u8 {
            let r = Identity::from_seed([i; 32]);
            heard_referee(&mut play, r.peer_id(), r.public_key(), 4, 0);
        }
        let hear = |game: &mut Game, play: &mut Play, now: u64| {
            game.avatars.insert(
                liar.peer_id(),
                crate::game::Avatar {
                    // In our region: candidates are the players of our region.
                    pos: game.pos,
                    links: Vec::new(),
                    bot: true,
                    key: Some(liar.public_key()),
                    height: u64::MAX,
                    seen_ms: now,
                },
            );
            for (_, (seen, _)) in play.referees.iter_mut() {
                *seen = now;
            }
        };
        let mut now = 0;
        while now <= PROPOSER_PATIENCE_MS {
            hear(&mut game, &mut play, now);
            assert!(
                maybe_propose(now, &game, &mut play).is_none(),
                "at {now} ms"
            );
            now += 500;
        }
        hear(&mut game, &mut play, now);
        let proposal = maybe_propose(now, &game, &mut play).expect("we propose instead");
        assert_eq!(proposal.members.len(), 2, "the liar still plays");
        assert!(play.passed_over.contains_key(&liar.peer_id()));
        now += PASSED_OVER_MS;
        hear(&mut game, &mut play, now);
        assert!(maybe_propose(now, &game, &mut play).is_none());
        assert_eq!(play.awaited.map(|(p, _)| p), Some(liar.peer_id()));
    }

    fn ban_by(referees: &[Identity], player: &Identity) -> Ban {
        let bond = placeholder_bond(&player.public_key());
        Ban {
            player: player.public_key(),
            verdict: Verdict {
                bond,
                case: [9; 32],
                beneficiaries: Vec::new(),
                signatures: referees
                    .iter()
                    .map(|r| Verdict::sign(r, &bond, &[9; 32]))
                    .collect(),
            },
            bond: None,
        }
    }

    #[test]
    fn a_ban_needs_a_verdict_of_known_referees() {
        let referees: Vec<Identity> = (1..=4).map(|i| Identity::from_seed([i; 32])).collect();
        let strangers: Vec<Identity> = (5..=8).map(|i| Identity::from_seed([i; 32])).collect();
        let cheater = Identity::from_seed([20; 32]);
        let mut play = Play::default();
        for r in &referees {
            heard_referee(&mut play, r.peer_id(), r.public_key(), 4, 0);
        }
        // 4 per checkpoint: more than two thirds is 3.
        assert!(check_ban(&play, &ban_by(&referees[..3], &cheater)));
        assert!(!check_ban(&play, &ban_by(&referees[..2], &cheater)));
        assert!(!check_ban(&play, &ban_by(&strangers, &cheater)), "unknown");
        let mut mixed = ban_by(&referees[..2], &cheater);
        mixed
            .verdict
            .signatures
            .extend(ban_by(&strangers, &cheater).verdict.signatures);
        assert!(!check_ban(&play, &mixed), "strangers are not counted");
        let mut elsewhere = ban_by(&referees, &cheater);
        elsewhere.player = referees[0].public_key();
        assert!(!check_ban(&play, &elsewhere), "not that player's bond");
        let mut forged = ban_by(&referees, &cheater);
        forged.verdict.case = [1; 32];
        assert!(!check_ban(&play, &forged), "signatures over another case");
        let mut doubled = ban_by(&referees[..2], &cheater);
        doubled
            .verdict
            .signatures
            .push(doubled.verdict.signatures[0]);
        assert!(!check_ban(&play, &doubled), "one referee counted twice");
        // Only bans that hold are learnt, once.
        let bans = [forged, ban_by(&referees, &cheater)];
        assert_eq!(learn_bans(&mut play, &bans), 1);
        assert_eq!(learn_bans(&mut play, &bans), 0);
        assert!(play.banned.contains_key(&cheater.peer_id()));
    }

    /// With ledger bonds a ban holds when its verdict forfeits the proven bond under the bond's
    /// own terms; whoever learns it queues the forfeit, except the cheater itself.
    #[test]
    fn a_ledger_ban_needs_the_bond_and_a_verdict_under_its_terms() {
        let referees: Vec<Identity> = (30..36).map(|i| Identity::from_seed([i; 32])).collect();
        let pool: Vec<PublicKey> = referees.iter().map(Identity::public_key).collect();
        let cheater = Identity::from_seed([21; 32]);
        let (setup, proof) = crate::ledger::tests::bonded(&cheater, &pool);
        let bond = proof.output().expect("output").0;
        let ban_by = |signers: &[Identity], bond: OutputId| Ban {
            player: cheater.public_key(),
            verdict: Verdict {
                bond,
                case: [9; 32],
                beneficiaries: Vec::new(),
                signatures: signers
                    .iter()
                    .map(|r| Verdict::sign(r, &bond, &[9; 32]))
                    .collect(),
            },
            bond: Some(proof.clone()),
        };
        let mut play = Play::default();
        play.bonds.setup = Some(setup);
        // Quorum of six is five; the referees need not have been heard (the bond names them).
        assert!(check_ban(&play, &ban_by(&referees[..5], bond)));
        assert!(
            !check_ban(&play, &ban_by(&referees[..4], bond)),
            "below quorum"
        );
        let mut unproven = ban_by(&referees, bond);
        unproven.bond = None;
        assert!(!check_ban(&play, &unproven), "no bond proof");
        let mut elsewhere = ban_by(&referees, bond);
        elsewhere.player = Identity::from_seed([22; 32]).public_key();
        assert!(!check_ban(&play, &elsewhere), "another player's ban");
        assert!(
            !check_ban(&play, &ban_by(&referees, OutputId([3; 32]))),
            "a verdict on another bond"
        );
        let strangers: Vec<Identity> = (40..46).map(|i| Identity::from_seed([i; 32])).collect();
        assert!(
            !check_ban(&play, &ban_by(&strangers, bond)),
            "unlisted referees"
        );
        // Learnt once, and queued for forfeit once; the cheater does not queue its own.
        play.key = Some(Identity::from_seed([23; 32]).public_key());
        assert_eq!(learn_bans(&mut play, &[ban_by(&referees, bond)]), 1);
        assert_eq!(learn_bans(&mut play, &[ban_by(&referees, bond)]), 0);
        assert_eq!(play.bonds.forfeits_queued(), 1);
        let mut itself = Play::default();
        itself.bonds.setup = play.bonds.setup.clone();
        itself.key = Some(cheater.public_key());
        assert_eq!(learn_bans(&mut itself, &[ban_by(&referees, bond)]), 1);
        assert_eq!(itself.bonds.forfeits_queued(), 0);
    }
}
