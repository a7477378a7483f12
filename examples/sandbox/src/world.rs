//! The sandbox's world state: the token and world contracts in a local [`ContractHost`], fed
//! with players' actions frame by frame. No Bevy here: the same struct runs in the window, the
//! browser, the node's bot players and the tests.
//!
//! Every peer builds the same genesis (same code, same creator, same salts, same config), so the
//! same ordered actions give the same contract root everywhere. Actions arrive as session
//! frames ([`SandboxWorld::apply_tick`]), the same world `tick` inputs referees re-execute from
//! the session's input log.
//!
//! A player joining a session is onboarded first ([`SandboxWorld::onboard`]): the world's admin
//! grants it [`GRANT`] tokens, and the player approves the world contract to charge it and
//! delegates its actions to the session sequencer. Every member applies the same onboarding, so
//! every peer credits the same players the same amount. (A sandbox faucet: anyone can get a
//! grant with a fresh key. Real tokens come from the ledger.)

use std::collections::BTreeMap;

use meshwork::proto::contract::{
    Address, ConsensusParams, ContractError, ContractHost, ContractId, Fuel, Input, StateRoot, Tick,
};
use meshwork::proto::referee::{TickInput, session_sequencer};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Regions across.
pub const REGIONS_X: u16 = 4;
/// Regions down.
pub const REGIONS_Y: u16 = 3;
/// Cells per region side.
pub const REGION_SIZE: u16 = 10;
/// What one block costs, in world tokens.
pub const BLOCK_PRICE: u64 = 10;
/// What claiming a region costs (not offered in the demo's controls yet).
pub const CLAIM_PRICE: u64 = 500;
/// Tokens granted to a player on its first action.
pub const GRANT: u64 = 10_000;
/// Token supply minted to the admin at genesis.
pub const SUPPLY: u64 = 1_000_000_000_000;
/// Fuel each input may burn.
pub const INPUT_FUEL: u64 = 5_000_000;

/// Cells across the whole world.
pub const fn cells_x() -> u32 {
    REGIONS_X as u32 * REGION_SIZE as u32
}

/// Cells down the whole world.
pub const fn cells_y() -> u32 {
    REGIONS_Y as u32 * REGION_SIZE as u32
}

/// The checkpoint every session of `region` first starts from (the parent of the region's
/// first session): each region is its own world instance, and distinct parents keep the
/// regions' sessions apart even when the same players meet in two of them.
pub fn region_genesis(region: (u16, u16)) -> meshwork::proto::referee::CheckpointDigest {
    let mut h = Sha256::new();
    h.update(b"meshwork-sandbox/region-genesis");
    h.update(region.0.to_le_bytes());
    h.update(region.1.to_le_bytes());
    meshwork::proto::referee::CheckpointDigest(h.finalize().into())
}

/// The cells of `region`: `(x0, y0, x1, y1)`, end exclusive.
pub fn region_cells(region: (u16, u16)) -> (u32, u32, u32, u32) {
    let s = u32::from(REGION_SIZE);
    let (x0, y0) = (u32::from(region.0) * s, u32::from(region.1) * s);
    (x0, y0, x0 + s, y0 + s)
}

/// The region holding cell `(x, y)`.
pub fn region_of(x: u32, y: u32) -> (u16, u16) {
    let s = u32::from(REGION_SIZE);
    (
        u16::try_from(x / s).unwrap_or(u16::MAX),
        u16::try_from(y / s).unwrap_or(u16::MAX),
    )
}

/// What can go wrong building the world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The contracts were not built (`scripts/build-contracts.sh`) when this binary was.
    #[error("the world contract is not built: run scripts/build-contracts.sh, then rebuild")]
    NotBuilt,
    /// The host refused the code or genesis failed.
    #[error("contract host: {0}")]
    Contract(#[from] ContractError),
    /// A genesis input failed.
    #[error("genesis input failed: {0}")]
    Genesis(String),
}

/// A player's action on the world (what the world contract's ops `0x01`/`0x02` take).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Put a block of `kind` (non-zero) at cell `(x, y)`; costs [`BLOCK_PRICE`].
    Place {
        /// Column.
        x: u32,
        /// Row.
        y: u32,
        /// Block kind, 1..=3 in the demo.
        kind: u8,
    },
    /// Take away the block at `(x, y)` (the placer's, in an unowned region).
    Remove {
        /// Column.
        x: u32,
        /// Row.
        y: u32,
    },
}

impl Action {
    /// The world contract's input bytes for this action.
    pub fn encode(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(10);
        match *self {
            Self::Place { x, y, kind } => {
                data.push(0x01);
                data.extend_from_slice(&x.to_le_bytes());
                data.extend_from_slice(&y.to_le_bytes());
                data.push(kind);
            }
            Self::Remove { x, y } => {
                data.push(0x02);
                data.extend_from_slice(&x.to_le_bytes());
                data.extend_from_slice(&y.to_le_bytes());
            }
        }
        data
    }

    /// The cell it acts on.
    pub fn cell(&self) -> (u32, u32) {
        match *self {
            Self::Place { x, y, .. } | Self::Remove { x, y } => (x, y),
        }
    }
}

/// A block in the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Its kind (non-zero).
    pub kind: u8,
    /// Who placed it.
    pub placer: [u8; 32],
}

impl Block {
    /// A block from the world contract's stored value (`kind ‖ placer[32]`; kind 0 is no block).
    pub fn decode(value: &[u8]) -> Option<Self> {
        let (&kind, placer) = value.split_first()?;
        Some(Self {
            kind,
            placer: placer.try_into().ok()?,
        })
        .filter(|b| b.kind != 0)
    }
}

/// The world contract's key prefix of blocks: `B ‖ x u32 ‖ y u32` (little-endian).
pub const BLOCK_PREFIX: &[u8] = b"B";

/// The cell and block one world-contract entry holds, if it is a block.
pub fn block_entry(key: &[u8], value: &[u8]) -> Option<((u32, u32), Block)> {
    let rest = key.strip_prefix(BLOCK_PREFIX)?;
    let (x, y) = rest.split_at_checked(4)?;
    let x = u32::from_le_bytes(x.try_into().ok()?);
    let y = u32::from_le_bytes(y.try_into().ok()?);
    Some(((x, y), Block::decode(value)?))
}

/// What became of one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (and paid for, if priced).
    Done,
    /// Refused by the contract (occupied cell, not your block, cannot pay…), with its reason.
    Refused(String),
}

/// The token and world contracts and the blocks they hold.
#[derive(Clone)]
pub struct SandboxWorld {
    host: ContractHost,
    token: ContractId,
    world: ContractId,
    blocks: BTreeMap<(u32, u32), Block>,
    frames_applied: u64,
}

impl std::fmt::Debug for SandboxWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxWorld")
            .field("root", &hex::encode(self.root().0))
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

/// The admin that creates the contracts, receives payments and grants tokens.
pub fn admin() -> Address {
    Address(Sha256::digest(b"meshwork-sandbox/admin").into())
}

fn input(contract: ContractId, caller: Address, frame: u64, data: Vec<u8>) -> Input {
    Input {
        contract,
        caller,
        tick: Tick(frame),
        fuel_limit: Fuel(INPUT_FUEL),
        data,
    }
}

impl SandboxWorld {
    /// The genesis every peer builds from the same contract code.
    pub fn genesis(token_wasm: &[u8], world_wasm: &[u8]) -> Result<Self, WorldError> {
        if token_wasm.is_empty() || world_wasm.is_empty() {
            return Err(WorldError::NotBuilt);
        }
        let mut host = ContractHost::new(ConsensusParams::default())?;
        let token_code = host.load_code(token_wasm)?;
        let world_code = host.load_code(world_wasm)?;
        let fuel = Fuel(INPUT_FUEL);
        let (token, _) = host.instantiate(
            token_code,
            admin(),
            &[1; 32],
            &SUPPLY.to_le_bytes(),
            Tick(0),
            fuel,
        )?;
        let mut config = Vec::with_capacity(86);
        config.extend_from_slice(&token.0);
        config.extend_from_slice(&admin().0);
        config.extend_from_slice(&REGIONS_X.to_le_bytes());
        config.extend_from_slice(&REGIONS_Y.to_le_bytes());
        config.extend_from_slice(&REGION_SIZE.to_le_bytes());
        config.extend_from_slice(&BLOCK_PRICE.to_le_bytes());
        config.extend_from_slice(&CLAIM_PRICE.to_le_bytes());
        let (world, _) = host.instantiate(world_code, admin(), &[2; 32], &config, Tick(0), fuel)?;
        Ok(Self {
            host,
            token,
            world,
            blocks: BTreeMap::new(),
            frames_applied: 0,
        })
    }

    /// Onboards the `players` who are not yet (sessions): the admin grants each [`GRANT`]
    /// tokens, and the player approves the world to charge it and delegates its actions to the
    /// session sequencer. Deterministic: every member of a new session applies it to the same
    /// state before the session starts, so they all start from the same root. (The sandbox's
    /// faucet; a real game funds players from the ledger.)
    pub fn onboard(&mut self, tick: u64, players: &[Address]) {
        let mut inputs = Vec::new();
        for player in players {
            if self.is_delegated(player) {
                continue;
            }
            if !self.is_onboarded(player) {
                let mut grant = vec![0x01];
                grant.extend_from_slice(&player.0);
                grant.extend_from_slice(&GRANT.to_le_bytes());
                inputs.push(input(self.token, admin(), tick, grant));
                let mut approve = vec![0x02];
                approve.extend_from_slice(&self.world.0);
                approve.extend_from_slice(&u64::MAX.to_le_bytes());
                inputs.push(input(self.token, *player, tick, approve));
            }
            let mut delegate = vec![0x05];
            delegate.extend_from_slice(&session_sequencer().0);
            inputs.push(input(self.world, *player, tick, delegate));
        }
        if !inputs.is_empty() {
            self.host.apply_transition(&inputs);
        }
    }

    fn is_delegated(&self, player: &Address) -> bool {
        let mut key = Vec::with_capacity(33);
        key.push(b'D');
        key.extend_from_slice(&player.0);
        matches!(self.host.read(&self.world, &key), Ok(Some(v)) if v == session_sequencer().0)
    }

    /// One session frame at `tick`: every action in one world `tick` input from the session
    /// sequencer, byte for byte what referees re-execute from the session's input log
    /// ([`InputLog::to_inputs`](meshwork::proto::referee::InputLog::to_inputs)). A frame
    /// without actions changes nothing. Returns one outcome per action.
    pub fn apply_tick(&mut self, tick: u64, actions: &[(Address, Action)]) -> Vec<Outcome> {
        if actions.is_empty() {
            return Vec::new();
        }
        let mut tick_input = TickInput::with_capacity(actions.len());
        for (player, action) in actions {
            tick_input.push(player, &action.encode());
        }
        let result = self
            .host
            .apply_transition(&[tick_input.finish(self.world, Tick(tick))]);
        let status: Vec<u8> = match result.receipts.first().map(|r| &r.result) {
            Some(Ok(out)) => out.clone(),
            Some(Err(e)) => {
                let why = refusal(e);
                return actions
                    .iter()
                    .map(|_| Outcome::Refused(why.clone()))
                    .collect();
            }
            None => Vec::new(),
        };
        for (_, action) in actions {
            let (x, y) = action.cell();
            self.refresh_cell(x, y);
        }
        self.frames_applied += 1;
        actions
            .iter()
            .enumerate()
            .map(|(i, _)| match status.get(i) {
                Some(0) => Outcome::Done,
                Some(1) => Outcome::Refused("not authorised".into()),
                Some(2) => Outcome::Refused("cannot pay".into()),
                Some(_) => Outcome::Refused("refused by the world".into()),
                None => Outcome::Refused("no status".into()),
            })
            .collect()
    }

    /// Re-reads one cell's block from the world contract's state.
    fn refresh_cell(&mut self, x: u32, y: u32) {
        let mut key = Vec::with_capacity(9);
        key.extend_from_slice(BLOCK_PREFIX);
        key.extend_from_slice(&x.to_le_bytes());
        key.extend_from_slice(&y.to_le_bytes());
        match self
            .host
            .read(&self.world, &key)
            .ok()
            .flatten()
            .and_then(Block::decode)
        {
            Some(block) => {
                self.blocks.insert((x, y), block);
            }
            None => {
                self.blocks.remove(&(x, y));
            }
        }
    }

    /// The host (for a session's start state and snapshots).
    pub fn host(&self) -> &ContractHost {
        &self.host
    }

    /// This world at another state of the same contracts (a snapshot restored at a finalised
    /// root); the block map is rebuilt from the world contract's state.
    pub fn with_host(&self, host: ContractHost) -> Result<Self, WorldError> {
        let entries = host.export_state(&self.world)?;
        let blocks = entries
            .iter()
            .filter_map(|(key, value)| block_entry(key, value))
            .collect();
        Ok(Self {
            host,
            token: self.token,
            world: self.world,
            blocks,
            frames_applied: 0,
        })
    }

    fn is_onboarded(&self, player: &Address) -> bool {
        let mut key = Vec::with_capacity(65);
        key.push(b'l');
        key.extend_from_slice(&player.0);
        key.extend_from_slice(&self.world.0);
        matches!(self.host.read(&self.token, &key), Ok(Some(_)))
    }

    /// `player`'s token balance (0 before its first action).
    pub fn balance(&self, player: &Address) -> u64 {
        let mut key = Vec::with_capacity(33);
        key.push(b'b');
        key.extend_from_slice(&player.0);
        match self.host.read(&self.token, &key) {
            Ok(Some(v)) => v.try_into().map(u64::from_le_bytes).unwrap_or(0),
            _ => 0,
        }
    }

    /// What `player` would hold after onboarding: its balance, or the grant if it has none yet.
    pub fn spendable(&self, player: &Address) -> u64 {
        if self.is_onboarded(player) {
            self.balance(player)
        } else {
            GRANT
        }
    }

    /// The blocks, by cell.
    pub fn blocks(&self) -> &BTreeMap<(u32, u32), Block> {
        &self.blocks
    }

    /// The contract root (every contract's code hash and state root).
    pub fn root(&self) -> StateRoot {
        self.host.root()
    }

    /// Frames with actions applied since genesis.
    pub fn frames_applied(&self) -> u64 {
        self.frames_applied
    }

    /// The world contract's id.
    pub fn world_contract(&self) -> ContractId {
        self.world
    }
}

/// A short reason for a refused action (the contract's abort message when it gave one).
fn refusal(e: &ContractError) -> String {
    match e {
        ContractError::Aborted { message } => String::from_utf8_lossy(message).into_owned(),
        other => other.to_string(),
    }
}

/// The built contracts, embedded at compile time (empty when they were not built; see build.rs).
pub mod code {
    /// The token contract.
    pub const TOKEN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/token.wasm"));
    /// The world contract.
    pub const WORLD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/world.wasm"));
}

#[cfg(test)]
mod tests {
    use meshwork::proto::identity::{Identity, PeerId};
    use meshwork::proto::ledger::OutputId;
    use meshwork::proto::referee::{InputLogBuilder, Member, Roster};

    use super::*;

    fn world() -> SandboxWorld {
        SandboxWorld::genesis(code::TOKEN, code::WORLD)
            .expect("contracts built by scripts/build-contracts.sh before the tests")
    }

    fn player(i: u8) -> Address {
        Address([i; 32])
    }

    #[test]
    fn place_charges_and_remove_frees_the_cell() {
        let mut w = world();
        let (a, b) = (player(1), player(2));
        w.onboard(0, &[a, b]);
        assert_eq!(w.balance(&a), GRANT);
        let place = Action::Place {
            x: 3,
            y: 4,
            kind: 2,
        };
        assert_eq!(w.apply_tick(1, &[(a, place)]), vec![Outcome::Done]);
        assert_eq!(w.balance(&a), GRANT - BLOCK_PRICE);
        assert_eq!(w.blocks().get(&(3, 4)).map(|b| b.kind), Some(2));
        assert_eq!(w.blocks()[&(3, 4)].placer, a.0);
        // Occupied: refused, and (a tick's rule) its fee kept.
        assert_eq!(
            w.apply_tick(2, &[(b, place)]),
            vec![Outcome::Refused("refused by the world".into())]
        );
        assert_eq!(w.balance(&b), GRANT - BLOCK_PRICE);
        assert_eq!(w.blocks()[&(3, 4)].placer, a.0);
        // Only the placer removes it in an unowned region.
        let remove = Action::Remove { x: 3, y: 4 };
        assert!(matches!(
            w.apply_tick(3, &[(b, remove)])[0],
            Outcome::Refused(_)
        ));
        assert_eq!(w.apply_tick(4, &[(a, remove)]), vec![Outcome::Done]);
        assert!(w.blocks().is_empty());
        assert_eq!(w.frames_applied(), 4);
        // A player not onboarded has delegated nothing: the sequencer may not act for it.
        assert_eq!(
            w.apply_tick(5, &[(player(3), place)]),
            vec![Outcome::Refused("not authorised".into())]
        );
    }

    #[test]
    fn the_same_frames_give_the_same_root_as_the_referees_log() {
        let ids: Vec<Identity> = (1..=3u8).map(|i| Identity::from_seed([i; 32])).collect();
        let roster = Roster::new(
            ids.iter()
                .map(|id| Member {
                    key: id.public_key(),
                    bond: OutputId([0; 32]),
                })
                .collect(),
        )
        .expect("three players");
        let addresses: Vec<Address> = roster
            .members()
            .iter()
            .map(|m| Address(PeerId::from_public_key(&m.key).0))
            .collect();
        let frames: Vec<Vec<(usize, Action)>> = (0..20u32)
            .map(|i| {
                let action = if i % 4 == 3 {
                    Action::Remove { x: i - 1, y: 1 }
                } else {
                    Action::Place {
                        x: i,
                        y: 1,
                        kind: 1,
                    }
                };
                let mut frame = vec![((i % 3) as usize, action)];
                if i % 5 == 0 {
                    frame.push((
                        ((i + 1) % 3) as usize,
                        Action::Place {
                            x: i,
                            y: 2,
                            kind: 3,
                        },
                    ));
                }
                frame
            })
            .collect();
        let (mut a, mut b) = (world(), world());
        a.onboard(0, &addresses);
        b.onboard(0, &addresses);
        let start = a.host().clone();
        assert_eq!(a.root(), b.root());
        let mut log = InputLogBuilder::new(0, 3);
        for (f, frame) in frames.iter().enumerate() {
            let actions: Vec<(Address, Action)> =
                frame.iter().map(|(p, act)| (addresses[*p], *act)).collect();
            a.apply_tick(f as u64, &actions);
            b.apply_tick(f as u64, &actions);
            let mut per_player = vec![Vec::new(); 3];
            for (p, act) in frame {
                per_player[*p].push(act.encode());
            }
            log.push_frame(&per_player).expect("a valid frame");
        }
        assert_eq!(a.root(), b.root());
        assert_eq!(a.blocks(), b.blocks());
        assert!(!a.blocks().is_empty());
        // What a referee runs from the session's input log reaches the same root.
        let inputs = log
            .finish()
            .expect("a valid log")
            .to_inputs(a.world_contract(), &roster)
            .expect("the roster's log");
        let mut referee = start;
        referee.apply_transition(&inputs);
        assert_eq!(referee.root(), a.root());
        let mut c = world();
        c.onboard(0, &addresses);
        c.apply_tick(0, &[(addresses[0], frames[0][0].1)]);
        assert_ne!(a.root(), c.root());
    }

    #[test]
    fn a_player_who_cannot_pay_places_nothing() {
        let mut w = world();
        let a = player(9);
        w.onboard(0, &[a]);
        let affordable = (GRANT / BLOCK_PRICE) as u32;
        let place = |i: u32| {
            (
                a,
                Action::Place {
                    x: i % cells_x(),
                    y: i / cells_x(),
                    kind: 1,
                },
            )
        };
        for (t, chunk) in (0..affordable).collect::<Vec<_>>().chunks(100).enumerate() {
            let actions: Vec<(Address, Action)> = chunk.iter().map(|i| place(*i)).collect();
            let out = w.apply_tick(t as u64 + 1, &actions);
            assert!(out.iter().all(|o| *o == Outcome::Done), "{out:?}");
        }
        assert_eq!(w.balance(&a), 0);
        assert_eq!(
            w.apply_tick(1_000, &[place(affordable)]),
            vec![Outcome::Refused("cannot pay".into())]
        );
        assert_eq!(w.blocks().len() as u64, GRANT / BLOCK_PRICE);
    }
}
