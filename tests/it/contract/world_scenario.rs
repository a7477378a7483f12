//! A reproducible sandbox-world session: 16 players placing, removing, claiming and paying, from
//! one seed. Shared by the native determinism tests and the wasm32 host driven under Node
//! (`contracts/host-node` includes this file), so both run the very same inputs.
//!
//! Uses only `meshwork::proto::contract` and `sha2`; no randomness beyond the seeded generator.

use meshwork::proto::contract::{
    Address, ConsensusParams, ContractHost, ContractId, Fuel, Input, StateRoot, Tick,
};
use sha2::{Digest as _, Sha256};

/// Players in the region.
pub const PLAYERS: u8 = 16;
/// The world is `REGIONS × REGIONS` regions of `REGION_SIZE` cells a side.
pub const REGIONS: u16 = 4;
/// Cells per region side.
pub const REGION_SIZE: u16 = 16;
/// Price of one block, in token units.
pub const BLOCK_PRICE: u64 = 10;
/// Price of claiming a region.
pub const CLAIM_PRICE: u64 = 500;
/// Fuel each input may use.
pub const INPUT_FUEL: u64 = 5_000_000;

/// What a run produced; equal across runs, hosts and platforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The host root at the end.
    pub root: [u8; 32],
    /// sha256 chain over every transition's digest (outputs, errors, events, fuel, roots).
    pub chain: [u8; 32],
    /// Total fuel of the random inputs.
    pub fuel: u64,
    /// Inputs that succeeded.
    pub ok: u32,
}

impl Outcome {
    /// `root ‖ chain ‖ fuel u64 LE ‖ ok u32 LE` (76 bytes), the form the Node driver returns.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(76);
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.chain);
        out.extend_from_slice(&self.fuel.to_le_bytes());
        out.extend_from_slice(&self.ok.to_le_bytes());
        out
    }
}

/// splitmix64: tiny, seedable, identical everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The admin who creates the token and the world and receives payments.
pub fn admin() -> Address {
    Address([0xad; 32])
}

/// Player `i`.
pub fn player(i: u8) -> Address {
    let mut id = [0x50; 32];
    id[0] = i;
    Address(id)
}

/// The region's sequencer: every player delegates to it, so it may submit their actions in one
/// `tick` input.
pub fn sequencer() -> Address {
    Address([0x5e; 32])
}

/// A session in progress.
pub struct World {
    /// The host.
    pub host: ContractHost,
    /// The token contract.
    pub token: ContractId,
    /// The world contract.
    pub world: ContractId,
}

/// Loads the code, creates the token (supply to the admin) and the world, funds every player and
/// has each approve the world.
pub fn setup(token_wasm: &[u8], world_wasm: &[u8]) -> World {
    let mut host = ContractHost::new(ConsensusParams::default()).expect("default params are valid");
    let token_code = host.load_code(token_wasm).expect("token loads");
    let world_code = host.load_code(world_wasm).expect("world loads");
    let fuel = Fuel(INPUT_FUEL);
    let supply: u64 = 1_000_000_000_000;
    let (token, _) = host
        .instantiate(
            token_code,
            admin(),
            &[1; 32],
            &supply.to_le_bytes(),
            Tick(0),
            fuel,
        )
        .expect("token instantiates");
    let mut config = Vec::new();
    config.extend_from_slice(&token.0);
    config.extend_from_slice(&admin().0);
    config.extend_from_slice(&REGIONS.to_le_bytes());
    config.extend_from_slice(&REGIONS.to_le_bytes());
    config.extend_from_slice(&REGION_SIZE.to_le_bytes());
    config.extend_from_slice(&BLOCK_PRICE.to_le_bytes());
    config.extend_from_slice(&CLAIM_PRICE.to_le_bytes());
    let (world, _) = host
        .instantiate(world_code, admin(), &[2; 32], &config, Tick(0), fuel)
        .expect("world instantiates");
    let mut inputs = Vec::new();
    for i in 0..PLAYERS {
        let mut transfer = vec![0x01];
        transfer.extend_from_slice(&player(i).0);
        transfer.extend_from_slice(&100_000u64.to_le_bytes());
        inputs.push(input(token, admin(), 0, transfer));
        let mut approve = vec![0x02];
        approve.extend_from_slice(&world.0);
        approve.extend_from_slice(&u64::MAX.to_le_bytes());
        inputs.push(input(token, player(i), 0, approve));
        let mut delegate = vec![0x05];
        delegate.extend_from_slice(&sequencer().0);
        inputs.push(input(world, player(i), 0, delegate));
    }
    let setup = host.apply_transition(&inputs);
    assert!(
        setup.receipts.iter().all(|r| r.result.is_ok()),
        "setup inputs must succeed: {:?}",
        setup.receipts
    );
    World { host, token, world }
}

/// An input with the scenario's fuel limit.
pub fn input(contract: ContractId, caller: Address, tick: u64, data: Vec<u8>) -> Input {
    Input {
        contract,
        caller,
        tick: Tick(tick),
        fuel_limit: Fuel(INPUT_FUEL),
        data,
    }
}

/// A world `tick` input from the sequencer carrying `actions` (player, op byte ‖ fields).
pub fn tick_input(w: &World, tick: u64, actions: &[(Address, Vec<u8>)]) -> Input {
    let mut data = vec![0x06];
    data.extend_from_slice(&(actions.len() as u16).to_le_bytes());
    for (who, action) in actions {
        data.extend_from_slice(&who.0);
        data.extend_from_slice(action);
    }
    input(w.world, sequencer(), tick, data)
}

/// A random world action (op byte ‖ fields) with the given roll in `0..97`: placements and
/// removals in a 64×64 world, some claims and releases.
fn random_action(rng: &mut Rng, roll: u64) -> Vec<u8> {
    let side = u64::from(REGIONS) * u64::from(REGION_SIZE);
    let mut data = Vec::new();
    if roll < 60 {
        data.push(0x01);
        data.extend_from_slice(&(rng.below(side) as u32).to_le_bytes());
        data.extend_from_slice(&(rng.below(side) as u32).to_le_bytes());
        data.push(1 + rng.below(3) as u8);
    } else if roll < 85 {
        data.push(0x02);
        data.extend_from_slice(&(rng.below(side) as u32).to_le_bytes());
        data.extend_from_slice(&(rng.below(side) as u32).to_le_bytes());
    } else {
        data.push(if roll < 92 { 0x03 } else { 0x04 });
        data.extend_from_slice(&(rng.below(u64::from(REGIONS)) as u16).to_le_bytes());
        data.extend_from_slice(&(rng.below(u64::from(REGIONS)) as u16).to_le_bytes());
    }
    data
}

/// The `index`-th random input of the session: mostly single block placements and removals,
/// some claims, releases, sequencer ticks of a few players' actions, and token transfers.
pub fn random_input(w: &World, rng: &mut Rng, index: u64) -> Input {
    let who = rng.below(u64::from(PLAYERS)) as u8;
    let tick = index / u64::from(PLAYERS);
    let roll = rng.below(100);
    if roll < 95 {
        let action = random_action(rng, roll);
        input(w.world, player(who), tick, action)
    } else if roll < 98 {
        let actions: Vec<(Address, Vec<u8>)> = (0..2 + rng.below(5))
            .map(|_| {
                let who = player(rng.below(u64::from(PLAYERS)) as u8);
                let roll = rng.below(97);
                (who, random_action(rng, roll))
            })
            .collect();
        tick_input(w, tick, &actions)
    } else {
        let mut data = vec![0x01];
        data.extend_from_slice(&player(rng.below(u64::from(PLAYERS)) as u8).0);
        data.extend_from_slice(&rng.below(1_000).to_le_bytes());
        input(w.token, player(who), tick, data)
    }
}

/// Runs `count` random inputs from `seed` in transitions of one tick (16 inputs) each. With
/// `fork_at = Some(k)`, after `k` transitions the state is exported, checked and imported into a
/// brand-new host which runs the rest: the result must not change.
pub fn run(
    token_wasm: &[u8],
    world_wasm: &[u8],
    seed: u64,
    count: u64,
    fork_at: Option<u64>,
) -> Outcome {
    let mut w = setup(token_wasm, world_wasm);
    let mut rng = Rng::new(seed);
    let mut chain = [0u8; 32];
    let mut fuel = 0u64;
    let mut ok = 0u32;
    let batch = u64::from(PLAYERS);
    let mut index = 0;
    let mut transitions = 0;
    while index < count {
        if fork_at == Some(transitions) {
            w = refork(&w, token_wasm, world_wasm);
        }
        let n = batch.min(count - index);
        let inputs: Vec<Input> = (0..n)
            .map(|k| random_input(&w, &mut rng, index + k))
            .collect();
        let result = w.host.apply_transition(&inputs);
        fuel += result.fuel_used.0;
        ok += result.receipts.iter().filter(|r| r.result.is_ok()).count() as u32;
        let mut h = Sha256::new();
        h.update(chain);
        h.update(result.digest());
        chain = h.finalize().into();
        index += n;
        transitions += 1;
    }
    Outcome {
        root: w.host.root().0,
        chain,
        fuel,
        ok,
    }
}

/// A new host holding exactly the exported state of `w` (what a referee reconstructs from blocks
/// fetched from the mesh), checked against each contract's root.
fn refork(w: &World, token_wasm: &[u8], world_wasm: &[u8]) -> World {
    let mut host = ContractHost::new(ConsensusParams::default()).expect("default params are valid");
    host.load_code(token_wasm).expect("token loads");
    host.load_code(world_wasm).expect("world loads");
    for id in [w.token, w.world] {
        let code = w.host.code_of(&id).expect("contract exists");
        let root: StateRoot = w.host.contract_root(&id).expect("contract exists");
        let entries = w.host.export_state(&id).expect("contract exists");
        host.import_contract(id, code, &entries, root)
            .expect("exported state matches its root");
    }
    assert_eq!(
        host.root(),
        w.host.root(),
        "the rebuilt host commits to the same state"
    );
    World {
        host,
        token: w.token,
        world: w.world,
    }
}
