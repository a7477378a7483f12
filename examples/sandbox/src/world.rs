//! The sandbox's world state: the token and world contracts in a local [`ContractHost`], fed
//! with players' actions frame by frame. No Bevy here: the same struct runs in the window, the
//! browser, the node's bot players and the tests.
//!
//! Every peer builds the same genesis (same code, same creator, same salts, same config), so the
//! same ordered actions give the same contract root everywhere. That root and the per-frame
//! input log ([`SandboxWorld::log`]) are what a session checkpoint will carry to referees.
//!
//! A player's first action onboards it: the world's admin grants it [`GRANT`] tokens and the
//! player approves the world contract to charge it. Both are ordinary inputs, deterministic in
//! the log, so every peer credits the same players the same amount. (A sandbox faucet: anyone
//! can get a grant with a fresh key. Real tokens come from the ledger.)

use std::collections::BTreeMap;

use meshwork::proto::contract::{
    Address, ConsensusParams, ContractError, ContractHost, ContractId, Fuel, Input, StateRoot, Tick,
};
use meshwork::proto::referee::{TICK_FUEL, WORLD_TICK_OP, session_sequencer};
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
/// Frames kept in [`SandboxWorld::log`] (older ones are dropped; a checkpoint takes them first).
pub const LOG_FRAMES_MAX: usize = 4_096;

/// Cells across the whole world.
pub const fn cells_x() -> u32 {
    REGIONS_X as u32 * REGION_SIZE as u32
}

/// Cells down the whole world.
pub const fn cells_y() -> u32 {
    REGIONS_Y as u32 * REGION_SIZE as u32
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

/// What became of one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (and paid for, if priced).
    Done,
    /// Refused by the contract (occupied cell, not your block, cannot pay…), with its reason.
    Refused(String),
}

/// One frame's inputs as the host applied them, with the roots around them.
#[derive(Clone, Debug)]
pub struct LoggedFrame {
    /// The frame number.
    pub frame: u64,
    /// Inputs in the order applied.
    pub inputs: Vec<Input>,
    /// [`ContractHost::root`] before.
    pub prior_root: StateRoot,
    /// [`ContractHost::root`] after.
    pub next_root: StateRoot,
}

/// The token and world contracts, the blocks they hold, and the log of what was applied.
#[derive(Clone)]
pub struct SandboxWorld {
    host: ContractHost,
    token: ContractId,
    world: ContractId,
    blocks: BTreeMap<(u32, u32), Block>,
    log: Vec<LoggedFrame>,
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
            log: Vec::new(),
            frames_applied: 0,
        })
    }

    /// Applies one frame's actions in order, onboarding players on their first action.
    /// Returns one outcome per action.
    pub fn apply_frame(&mut self, frame: u64, actions: &[(Address, Action)]) -> Vec<Outcome> {
        if actions.is_empty() {
            return Vec::new();
        }
        let mut inputs = Vec::with_capacity(actions.len() * 3);
        let mut action_input = Vec::with_capacity(actions.len());
        let mut onboarded: Vec<Address> = Vec::new();
        for (player, action) in actions {
            if !self.is_onboarded(player) && !onboarded.contains(player) {
                onboarded.push(*player);
                let mut grant = vec![0x01];
                grant.extend_from_slice(&player.0);
                grant.extend_from_slice(&GRANT.to_le_bytes());
                inputs.push(input(self.token, admin(), frame, grant));
                let mut approve = vec![0x02];
                approve.extend_from_slice(&self.world.0);
                approve.extend_from_slice(&u64::MAX.to_le_bytes());
                inputs.push(input(self.token, *player, frame, approve));
            }
            action_input.push(inputs.len());
            inputs.push(input(self.world, *player, frame, action.encode()));
        }
        let result = self.host.apply_transition(&inputs);
        let mut outcomes = Vec::with_capacity(actions.len());
        for ((_, action), i) in actions.iter().zip(action_input) {
            let receipt = &result.receipts[i];
            match &receipt.result {
                Ok(_) => {
                    self.note(action, receipt);
                    outcomes.push(Outcome::Done);
                }
                Err(e) => outcomes.push(Outcome::Refused(refusal(e))),
            }
        }
        if self.log.len() >= LOG_FRAMES_MAX {
            self.log.remove(0);
        }
        self.log.push(LoggedFrame {
            frame,
            inputs,
            prior_root: result.prior_root,
            next_root: result.next_root,
        });
        self.frames_applied += 1;
        outcomes
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
        let count = u16::try_from(actions.len()).unwrap_or(u16::MAX);
        let mut data = vec![WORLD_TICK_OP];
        data.extend_from_slice(&count.to_le_bytes());
        for (player, action) in actions.iter().take(usize::from(count)) {
            data.extend_from_slice(&player.0);
            data.extend_from_slice(&action.encode());
        }
        let tick_input = Input {
            contract: self.world,
            caller: session_sequencer(),
            tick: Tick(tick),
            fuel_limit: TICK_FUEL,
            data,
        };
        let result = self
            .host
            .apply_transition(std::slice::from_ref(&tick_input));
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
        if self.log.len() >= LOG_FRAMES_MAX {
            self.log.remove(0);
        }
        self.log.push(LoggedFrame {
            frame: tick,
            inputs: vec![tick_input],
            prior_root: result.prior_root,
            next_root: result.next_root,
        });
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
        key.push(b'B');
        key.extend_from_slice(&x.to_le_bytes());
        key.extend_from_slice(&y.to_le_bytes());
        match self.host.read(&self.world, &key) {
            Ok(Some(v)) if v.len() == 33 && v[0] != 0 => {
                let mut placer = [0; 32];
                placer.copy_from_slice(&v[1..]);
                self.blocks.insert((x, y), Block { kind: v[0], placer });
            }
            _ => {
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
        let mut blocks = BTreeMap::new();
        for (key, value) in entries {
            if key.len() == 9 && key[0] == b'B' && value.len() == 33 && value[0] != 0 {
                let x = u32::from_le_bytes(key[1..5].try_into().unwrap_or([0; 4]));
                let y = u32::from_le_bytes(key[5..9].try_into().unwrap_or([0; 4]));
                let mut placer = [0; 32];
                placer.copy_from_slice(&value[1..]);
                blocks.insert(
                    (x, y),
                    Block {
                        kind: value[0],
                        placer,
                    },
                );
            }
        }
        Ok(Self {
            host,
            token: self.token,
            world: self.world,
            blocks,
            log: Vec::new(),
            frames_applied: 0,
        })
    }

    /// Mirrors a successful action's `place`/`remove` event into the block map.
    fn note(&mut self, action: &Action, receipt: &meshwork::proto::contract::Receipt) {
        for event in &receipt.events {
            if event.contract != self.world {
                continue;
            }
            match (event.topic.as_slice(), action) {
                (b"place", Action::Place { x, y, kind }) => {
                    let mut placer = [0; 32];
                    if let Some(who) = event.data.get(9..41) {
                        placer.copy_from_slice(who);
                    }
                    self.blocks.insert(
                        (*x, *y),
                        Block {
                            kind: *kind,
                            placer,
                        },
                    );
                }
                (b"remove", Action::Remove { x, y }) => {
                    self.blocks.remove(&(*x, *y));
                }
                _ => {}
            }
        }
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

    /// The frames applied (those with actions), newest last; at most [`LOG_FRAMES_MAX`].
    pub fn log(&self) -> &[LoggedFrame] {
        &self.log
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
        let a = player(1);
        let place = Action::Place {
            x: 3,
            y: 4,
            kind: 2,
        };
        assert_eq!(w.apply_frame(1, &[(a, place)]), vec![Outcome::Done]);
        assert_eq!(w.balance(&a), GRANT - BLOCK_PRICE);
        assert_eq!(w.blocks().get(&(3, 4)).map(|b| b.kind), Some(2));
        assert_eq!(w.blocks()[&(3, 4)].placer, a.0);
        // Occupied: refused, and not charged.
        let again = w.apply_frame(2, &[(player(2), place)]);
        assert!(
            matches!(&again[0], Outcome::Refused(r) if r.contains("occupied")),
            "{again:?}"
        );
        assert_eq!(w.balance(&player(2)), GRANT);
        // Only the placer removes it in an unowned region.
        let remove = Action::Remove { x: 3, y: 4 };
        assert!(matches!(
            w.apply_frame(3, &[(player(2), remove)])[0],
            Outcome::Refused(_)
        ));
        assert_eq!(w.apply_frame(4, &[(a, remove)]), vec![Outcome::Done]);
        assert!(w.blocks().is_empty());
        assert_eq!(w.log().len(), 4);
        assert_eq!(w.log()[3].next_root, w.root());
    }

    #[test]
    fn the_same_frames_give_the_same_root() {
        let frames: Vec<(u64, Vec<(Address, Action)>)> = (0..20u32)
            .map(|i| {
                let who = player((i % 3) as u8 + 1);
                let action = if i % 4 == 3 {
                    Action::Remove { x: i - 1, y: 1 }
                } else {
                    Action::Place {
                        x: i,
                        y: 1,
                        kind: 1,
                    }
                };
                (u64::from(i), vec![(who, action)])
            })
            .collect();
        let (mut a, mut b) = (world(), world());
        assert_eq!(a.root(), b.root());
        for (f, actions) in &frames {
            a.apply_frame(*f, actions);
        }
        for (f, actions) in &frames {
            b.apply_frame(*f, actions);
        }
        assert_eq!(a.root(), b.root());
        assert_eq!(a.blocks(), b.blocks());
        let mut c = world();
        c.apply_frame(0, &frames[0].1);
        assert_ne!(a.root(), c.root());
    }

    #[test]
    fn a_player_who_cannot_pay_places_nothing() {
        let mut w = world();
        let a = player(9);
        let places: Vec<(Address, Action)> = (0..(GRANT / BLOCK_PRICE) as u32 + 1)
            .map(|i| {
                (
                    a,
                    Action::Place {
                        x: i % cells_x(),
                        y: i / cells_x(),
                        kind: 1,
                    },
                )
            })
            .collect();
        let out = w.apply_frame(1, &places);
        assert_eq!(w.balance(&a), 0);
        assert!(matches!(out.last(), Some(Outcome::Refused(_))));
        assert_eq!(w.blocks().len() as u64, GRANT / BLOCK_PRICE);
    }
}
