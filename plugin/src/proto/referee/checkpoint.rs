//! Sessions, rosters, checkpoints and the input log: the question a referee answers.

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::RefereeError;
use crate::proto::contract::{Address, CodeHash, ContractId, Fuel, Input, StateRoot, Tick};
use crate::proto::identity::{PeerId, PublicKey};
use crate::proto::ledger::OutputId;

/// Most players in one session.
pub const ROSTER_MAX: usize = 16;
/// Most frames one checkpoint covers (10 s at 60 Hz).
pub const FRAMES_PER_CHECKPOINT_MAX: u16 = 600;
/// Most world actions one player sends in one frame.
pub const ACTIONS_PER_FRAME_MAX: u8 = 4;
/// Most bytes of one action (op byte ‖ fields; the world's largest, `place`, is 10).
pub const ACTION_BYTES_MAX: u8 = 32;
/// Most bytes of one encoded input log.
pub const LOG_BYTES_MAX: usize = 256 * 1024;
/// Fuel each frame's `tick` input may burn (a 16-player place tick burns ~162k).
pub const TICK_FUEL: Fuel = Fuel(20_000_000);
/// The world contract's `tick` op.
pub const WORLD_TICK_OP: u8 = 0x06;

macro_rules! id32 {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(&self.0[..6]))
            }
        }
    };
}

id32!(
    /// A session: one roster playing one world contract from one start root
    /// ([`SessionId::derive`]). A roster change starts a new session.
    SessionId
);
id32!(
    /// sha256 of a [`Checkpoint`]'s canonical bytes: the case referees judge and verdicts name.
    CheckpointDigest
);
id32!(
    /// sha256 of an encoded [`InputLog`].
    LogHash
);

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The address the world contract sees as the caller of a session's `tick` inputs. Every player
/// delegates to it once (world op `0x05`); only the session machinery submits inputs with this
/// caller, after the players signed the checkpoint that carries them.
pub fn session_sequencer() -> Address {
    Address(sha(&[b"meshwork/session-sequencer/v1"]))
}

/// One player of a session: its key and the session bond a verdict can forfeit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// The player's key (its world address is `sha256(key)`, its `PeerId`).
    pub key: PublicKey,
    /// Its session bond (an output whose terms list the session's referee panel).
    pub bond: OutputId,
}

/// A session's players, sorted by key, no duplicates, 1..=[`ROSTER_MAX`] (checked when
/// decoded, too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Member>")]
pub struct Roster(Vec<Member>);

impl TryFrom<Vec<Member>> for Roster {
    type Error = RefereeError;

    fn try_from(members: Vec<Member>) -> Result<Self, RefereeError> {
        let roster = Self(members);
        roster.check()?;
        Ok(roster)
    }
}

impl Roster {
    /// Sorts and checks `members`.
    pub fn new(mut members: Vec<Member>) -> Result<Self, RefereeError> {
        members.sort();
        let roster = Self(members);
        roster.check()?;
        Ok(roster)
    }

    /// Bounds, order, distinct keys (for decoded rosters).
    pub fn check(&self) -> Result<(), RefereeError> {
        if self.0.is_empty() {
            return Err(RefereeError::BadRoster("empty"));
        }
        if self.0.len() > ROSTER_MAX {
            return Err(RefereeError::BadRoster("too many players"));
        }
        if !self.0.windows(2).all(|w| w[0].key < w[1].key) {
            return Err(RefereeError::BadRoster(
                "not sorted by key or duplicate key",
            ));
        }
        Ok(())
    }

    /// The members in key order.
    pub fn members(&self) -> &[Member] {
        &self.0
    }

    /// Whether `key` plays in this session.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.member(key).is_some()
    }

    /// The member with `key`.
    pub fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.0
            .binary_search_by(|m| m.key.cmp(key))
            .ok()
            .map(|i| &self.0[i])
    }

    /// Number of players.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a checked roster.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(u8::try_from(self.0.len()).expect("≤ ROSTER_MAX"));
        for m in &self.0 {
            out.extend_from_slice(&m.key.0);
            out.extend_from_slice(&m.bond.0);
        }
    }
}

impl SessionId {
    /// `sha256("meshwork/session/v1" ‖ parent[32] ‖ world[32] ‖ code[32] ‖ start_root[32] ‖
    /// roster)`, roster = `count u8 ‖ (key[32] ‖ bond[32])*`. `parent` is the digest of the
    /// finalised checkpoint the session continues from (zeros for a world's first session).
    /// Nothing in it is free for the players to grind but the roster itself.
    pub fn derive(
        parent: &CheckpointDigest,
        world: &ContractId,
        code: &CodeHash,
        start_root: &StateRoot,
        roster: &Roster,
    ) -> Self {
        let mut bytes = Vec::with_capacity(160 + 64 * roster.len());
        bytes.extend_from_slice(b"meshwork/session/v1");
        bytes.extend_from_slice(&parent.0);
        bytes.extend_from_slice(&world.0);
        bytes.extend_from_slice(&code.0);
        bytes.extend_from_slice(&start_root.0);
        roster.encode_into(&mut bytes);
        Self(sha(&[&bytes]))
    }
}

/// What a session asks its referees: "from `prior_root`, running the world code `code_hash` on
/// the inputs hashing to `input_log_hash` (frames up to `frame`), which root do you get?"
///
/// The answer is not part of it: each player's answer is its signed [`super::Claim`], each
/// referee's its [`super::Attestation`]; both name this checkpoint's [`CheckpointDigest`]. (So a
/// cheater's claim and the honest claims are about the *same* checkpoint and can be compared.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The session.
    pub session: SessionId,
    /// 0, 1, 2, … within the session.
    pub seq: u64,
    /// The frame the checkpoint is taken at: the log covers `frame - frames .. frame`.
    pub frame: u64,
    /// The world contract the inputs go to.
    pub world: ContractId,
    /// Code consensus: the world's code hash every player and referee must run.
    pub code_hash: CodeHash,
    /// The host root before the log (the last finalised root).
    pub prior_root: StateRoot,
    /// [`InputLog::hash`] of the checkpoint's inputs.
    pub input_log_hash: LogHash,
    /// The players.
    pub roster: Roster,
}

impl Checkpoint {
    /// The canonical bytes:
    /// ```text
    /// "meshwork/checkpoint/v1" ‖ session[32] ‖ seq u64 ‖ frame u64 ‖ world[32] ‖ code_hash[32]
    /// ‖ prior_root[32] ‖ input_log_hash[32] ‖ count u8 ‖ (key[32] ‖ bond[32])*
    /// ```
    /// (integers little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200 + 64 * self.roster.len());
        out.extend_from_slice(b"meshwork/checkpoint/v1");
        out.extend_from_slice(&self.session.0);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.frame.to_le_bytes());
        out.extend_from_slice(&self.world.0);
        out.extend_from_slice(&self.code_hash.0);
        out.extend_from_slice(&self.prior_root.0);
        out.extend_from_slice(&self.input_log_hash.0);
        self.roster.encode_into(&mut out);
        out
    }

    /// sha256 of [`Checkpoint::encode`].
    pub fn digest(&self) -> CheckpointDigest {
        CheckpointDigest(sha(&[&self.encode()]))
    }

    /// Shape checks for a decoded checkpoint (the roster's bounds).
    pub fn check_shape(&self) -> Result<(), RefereeError> {
        self.roster.check()
    }
}

/// The inputs of one checkpoint: for every frame, every player's world actions, in roster order,
/// as the world contract's `tick` op consumes them. Kept in its canonical encoding, checked on
/// construction:
///
/// ```text
/// log    = first_frame u64 ‖ players u8 ‖ frames u16 ‖ frame*
/// frame  = input × players                      (roster order)
/// input  = count u8 ‖ (len u8 ‖ action)*        count ≤ ACTIONS_PER_FRAME_MAX, 1 ≤ len ≤ ACTION_BYTES_MAX
/// action = op u8 ‖ fields                       (a world action, e.g. 0x01 place x u32 y u32 kind u8)
/// ```
///
/// An idle player costs one byte per frame. Frame `f` becomes one world input (if any player
/// acted): `tick` at `Tick(f)` from [`session_sequencer`] with `0x06 ‖ n u16 ‖ (player[32] ‖
/// action)*`, players in roster order, each player's actions in its order.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct InputLog {
    bytes: Vec<u8>,
}

impl TryFrom<Vec<u8>> for InputLog {
    type Error = RefereeError;

    fn try_from(bytes: Vec<u8>) -> Result<Self, RefereeError> {
        Self::from_bytes(bytes)
    }
}

impl From<InputLog> for Vec<u8> {
    fn from(log: InputLog) -> Self {
        log.bytes
    }
}

impl fmt::Debug for InputLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InputLog({} bytes)", self.bytes.len())
    }
}

/// Header bytes of an encoded log.
const LOG_HEADER_BYTES: usize = 11;

impl InputLog {
    /// Checks `bytes` against every bound and returns the log. Never panics.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, RefereeError> {
        if bytes.len() > LOG_BYTES_MAX {
            return Err(RefereeError::BadLog("too many bytes"));
        }
        let log = Self { bytes };
        log.walk(|_, _, _| {})?;
        Ok(log)
    }

    /// The canonical bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `sha256("meshwork/input-log/v1" ‖ bytes)`.
    pub fn hash(&self) -> LogHash {
        LogHash(sha(&[b"meshwork/input-log/v1", &self.bytes]))
    }

    /// The first frame covered.
    pub fn first_frame(&self) -> u64 {
        u64::from_le_bytes(self.bytes[..8].try_into().expect("checked header"))
    }

    /// Players per frame.
    pub fn players(&self) -> u8 {
        self.bytes[8]
    }

    /// Frames covered.
    pub fn frames(&self) -> u16 {
        u16::from_le_bytes([self.bytes[9], self.bytes[10]])
    }

    /// The frame after the last one covered.
    pub fn end_frame(&self) -> u64 {
        self.first_frame().saturating_add(u64::from(self.frames()))
    }

    /// Visits every action as `(frame index, player index, action)`; checks the structure.
    fn walk(&self, mut visit: impl FnMut(u16, u8, &[u8])) -> Result<(), RefereeError> {
        let b = &self.bytes;
        if b.len() < LOG_HEADER_BYTES {
            return Err(RefereeError::BadLog("short header"));
        }
        let players = b[8];
        let frames = u16::from_le_bytes([b[9], b[10]]);
        if players == 0 || usize::from(players) > ROSTER_MAX {
            return Err(RefereeError::BadLog("player count out of range"));
        }
        if frames == 0 || frames > FRAMES_PER_CHECKPOINT_MAX {
            return Err(RefereeError::BadLog("frame count out of range"));
        }
        u64::from_le_bytes(b[..8].try_into().expect("length checked"))
            .checked_add(u64::from(frames))
            .ok_or(RefereeError::BadLog("frame overflow"))?;
        let mut at = LOG_HEADER_BYTES;
        let byte = |at: &mut usize| -> Result<u8, RefereeError> {
            let v = *b.get(*at).ok_or(RefereeError::BadLog("truncated"))?;
            *at += 1;
            Ok(v)
        };
        for f in 0..frames {
            for p in 0..players {
                let count = byte(&mut at)?;
                if count > ACTIONS_PER_FRAME_MAX {
                    return Err(RefereeError::BadLog("too many actions in a frame"));
                }
                for _ in 0..count {
                    let len = byte(&mut at)?;
                    if len == 0 || len > ACTION_BYTES_MAX {
                        return Err(RefereeError::BadLog("action length out of range"));
                    }
                    let end = at + usize::from(len);
                    let action = b.get(at..end).ok_or(RefereeError::BadLog("truncated"))?;
                    visit(f, p, action);
                    at = end;
                }
            }
        }
        if at != b.len() {
            return Err(RefereeError::BadLog("trailing bytes"));
        }
        Ok(())
    }

    /// The world inputs of this log for `roster` (one `tick` per frame in which anyone acted).
    pub fn to_inputs(
        &self,
        world: ContractId,
        roster: &Roster,
    ) -> Result<Vec<Input>, RefereeError> {
        if usize::from(self.players()) != roster.len() {
            return Err(RefereeError::BadLog("player count is not the roster's"));
        }
        let addresses: Vec<Address> = roster
            .members()
            .iter()
            .map(|m| Address(PeerId::from_public_key(&m.key).0))
            .collect();
        let first = self.first_frame();
        let mut frames: Vec<(u16, TickInput)> = Vec::new();
        self.walk(|f, p, action| {
            if frames.last().is_none_or(|(last, _)| *last != f) {
                frames.push((f, TickInput::with_capacity(addresses.len())));
            }
            let (_, tick) = frames.last_mut().expect("pushed above");
            tick.push(&addresses[usize::from(p)], action);
        })?;
        Ok(frames
            .into_iter()
            .map(|(f, tick)| tick.finish(world, Tick(first + u64::from(f))))
            .collect())
    }
}

/// One frame's world `tick` input (op [`WORLD_TICK_OP`] `count u16 (player[32] action)*`, from
/// [`session_sequencer`], [`TICK_FUEL`]), built action by action: what
/// [`InputLog::to_inputs`] makes of each frame, and what a player applying confirmed frames
/// locally must apply byte for byte to reach the roots referees compute.
#[derive(Clone, Debug)]
pub struct TickInput {
    data: Vec<u8>,
    count: u16,
}

impl Default for TickInput {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl TickInput {
    /// An empty tick with room for about `players` actions.
    pub fn with_capacity(players: usize) -> Self {
        let mut data = Vec::with_capacity(3 + 43 * players);
        data.extend_from_slice(&[WORLD_TICK_OP, 0, 0]);
        Self { data, count: 0 }
    }

    /// Appends `player`'s `action` (the world op byte and its fields). The count saturates at
    /// `u16::MAX`; logs never come near it ([`ROSTER_MAX`] × [`ACTIONS_PER_FRAME_MAX`]).
    pub fn push(&mut self, player: &Address, action: &[u8]) {
        self.count = self.count.saturating_add(1);
        self.data.extend_from_slice(&player.0);
        self.data.extend_from_slice(action);
    }

    /// Actions pushed.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no action was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The input for `world` at `tick`.
    pub fn finish(mut self, world: ContractId, tick: Tick) -> Input {
        self.data[1..3].copy_from_slice(&self.count.to_le_bytes());
        Input {
            contract: world,
            caller: session_sequencer(),
            tick,
            fuel_limit: TICK_FUEL,
            data: self.data,
        }
    }
}

/// Builds an [`InputLog`] frame by frame (what a session records as GGRS confirms frames).
#[derive(Clone, Debug)]
pub struct InputLogBuilder {
    bytes: Vec<u8>,
    players: u8,
    frames: u16,
}

impl InputLogBuilder {
    /// An empty log for `players` players starting at `first_frame`.
    pub fn new(first_frame: u64, players: u8) -> Self {
        let mut bytes = Vec::with_capacity(1024);
        bytes.extend_from_slice(&first_frame.to_le_bytes());
        bytes.push(players);
        bytes.extend_from_slice(&[0, 0]);
        Self {
            bytes,
            players,
            frames: 0,
        }
    }

    /// Appends one frame: `inputs[p]` = player `p`'s actions (roster order).
    pub fn push_frame(&mut self, inputs: &[Vec<Vec<u8>>]) -> Result<(), RefereeError> {
        if inputs.len() != usize::from(self.players) {
            return Err(RefereeError::BadLog("one input per player"));
        }
        if self.frames >= FRAMES_PER_CHECKPOINT_MAX {
            return Err(RefereeError::BadLog("frame count out of range"));
        }
        let mark = self.bytes.len();
        for actions in inputs {
            let Ok(count) = u8::try_from(actions.len()) else {
                self.bytes.truncate(mark);
                return Err(RefereeError::BadLog("too many actions in a frame"));
            };
            if count > ACTIONS_PER_FRAME_MAX {
                self.bytes.truncate(mark);
                return Err(RefereeError::BadLog("too many actions in a frame"));
            }
            self.bytes.push(count);
            for action in actions {
                match u8::try_from(action.len()) {
                    Ok(len) if len > 0 && len <= ACTION_BYTES_MAX => {
                        self.bytes.push(len);
                        self.bytes.extend_from_slice(action);
                    }
                    _ => {
                        self.bytes.truncate(mark);
                        return Err(RefereeError::BadLog("action length out of range"));
                    }
                }
            }
        }
        if self.bytes.len() > LOG_BYTES_MAX {
            self.bytes.truncate(mark);
            return Err(RefereeError::BadLog("too many bytes"));
        }
        self.frames += 1;
        Ok(())
    }

    /// Frames pushed so far.
    pub fn frames(&self) -> u16 {
        self.frames
    }

    /// The finished log.
    pub fn finish(mut self) -> Result<InputLog, RefereeError> {
        self.bytes[9..11].copy_from_slice(&self.frames.to_le_bytes());
        InputLog::from_bytes(self.bytes)
    }
}
