//! Known world states, the honest computation, and the memoised executor the simulated referees
//! share (a pure function of `(code, prior root, log, world, roster)`; only a simulator of many
//! referees on one machine may memoise it).

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

use crate::proto::contract::{
    Address, CodeHash, ConsensusParams, ContractHost, ContractId, Fuel, Input, StateRoot, Tick,
};
use crate::proto::referee::{
    Checkpoint, Executor, InputLog, RefereeError, execute, session_sequencer,
};

/// The cheaters' and corrupt referees' shared lie about a root.
pub fn tampered(root: &StateRoot) -> StateRoot {
    StateRoot(
        Sha256::new()
            .chain_update(b"meshwork-sim/tampered")
            .chain_update(root.0)
            .finalize()
            .into(),
    )
}

/// Memo key of a re-execution: everything the result depends on.
fn memo_key(c: &Checkpoint) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(c.code_hash.0);
    h.update(c.prior_root.0);
    h.update(c.input_log_hash.0);
    h.update(c.world.0);
    for m in c.roster.members() {
        h.update(m.key.0);
    }
    h.finalize().into()
}

/// Known states and the memo of results, shared by every simulated peer.
#[derive(Default)]
pub(super) struct Worlds {
    pub(super) states: BTreeMap<StateRoot, ContractHost>,
    pub(super) memo: BTreeMap<[u8; 32], StateRoot>,
    pub(super) executions: u64,
    pub(super) hits: u64,
}

impl Worlds {
    /// Really runs `log` (an honest player's computation) and records the result.
    pub(super) fn run(
        &mut self,
        c: &Checkpoint,
        log: &InputLog,
    ) -> Result<StateRoot, RefereeError> {
        let host = self
            .states
            .get(&c.prior_root)
            .ok_or(RefereeError::PriorRootMismatch {
                expected: c.prior_root,
                actual: StateRoot::default(),
            })?;
        let next = execute(host, c, log)?;
        self.executions += 1;
        let root = next.root();
        self.states.insert(root, next);
        self.memo.insert(memo_key(c), root);
        Ok(root)
    }
}

/// An [`Executor`] over the shared worlds; `corrupt` lies.
pub(super) struct SimExecutor<'a> {
    pub(super) worlds: &'a mut Worlds,
    pub(super) corrupt: bool,
}

impl Executor for SimExecutor<'_> {
    fn execute(&mut self, c: &Checkpoint, log: &InputLog) -> Result<StateRoot, RefereeError> {
        let root = match self.worlds.memo.get(&memo_key(c)) {
            Some(root) => {
                self.worlds.hits += 1;
                *root
            }
            None => self.worlds.run(c, log)?,
        };
        Ok(if self.corrupt { tampered(&root) } else { root })
    }
}

/// The sandbox world at genesis, as simulators and tests set it up.
#[derive(Clone, Debug)]
pub struct SandboxGenesis {
    /// The host holding the token and the world.
    pub host: ContractHost,
    /// The token contract.
    pub token: ContractId,
    /// The world contract.
    pub world: ContractId,
    /// The world's code hash.
    pub code: CodeHash,
}

/// Instantiate the token and a `regions × regions` world of `region_size` cells at
/// `block_price` tokens a block, then for each player: fund it with `funds`, approve the world
/// to charge it, and delegate its actions to the session sequencer (so session input logs can
/// act for it). Panics if any genesis input fails: the inputs are fixed and tested.
pub fn sandbox_genesis(
    token_wasm: &[u8],
    world_wasm: &[u8],
    world: (u16, u16, u64),
    players: &[Address],
    funds: u64,
) -> SandboxGenesis {
    const FUEL: Fuel = Fuel(5_000_000);
    let (regions, region_size, block_price) = world;
    let mut host = ContractHost::new(ConsensusParams::default()).expect("default params are valid");
    let token_code = host.load_code(token_wasm).expect("the token loads");
    let code = host.load_code(world_wasm).expect("the world loads");
    let admin = Address([0xad; 32]);
    let (token, _) = host
        .instantiate(
            token_code,
            admin,
            &[1; 32],
            &u64::MAX.to_le_bytes(),
            Tick(0),
            FUEL,
        )
        .expect("the token instantiates");
    let mut config = Vec::new();
    config.extend_from_slice(&token.0);
    config.extend_from_slice(&admin.0);
    config.extend_from_slice(&regions.to_le_bytes());
    config.extend_from_slice(&regions.to_le_bytes());
    config.extend_from_slice(&region_size.to_le_bytes());
    config.extend_from_slice(&block_price.to_le_bytes());
    config.extend_from_slice(&500u64.to_le_bytes());
    let (world, _) = host
        .instantiate(code, admin, &[2; 32], &config, Tick(0), FUEL)
        .expect("the world instantiates");
    let call = |contract, caller, data: Vec<u8>| Input {
        contract,
        caller,
        tick: Tick(0),
        fuel_limit: FUEL,
        data,
    };
    let mut inputs = Vec::with_capacity(players.len() * 3);
    for who in players {
        let mut transfer = vec![0x01];
        transfer.extend_from_slice(&who.0);
        transfer.extend_from_slice(&funds.to_le_bytes());
        inputs.push(call(token, admin, transfer));
        let mut approve = vec![0x02];
        approve.extend_from_slice(&world.0);
        approve.extend_from_slice(&u64::MAX.to_le_bytes());
        inputs.push(call(token, *who, approve));
        let mut delegate = vec![0x05];
        delegate.extend_from_slice(&session_sequencer().0);
        inputs.push(call(world, *who, delegate));
    }
    let setup = host.apply_transition(&inputs);
    assert!(
        setup.receipts.iter().all(|r| r.result.is_ok()),
        "genesis inputs succeed"
    );
    SandboxGenesis {
        host,
        token,
        world,
        code,
    }
}
