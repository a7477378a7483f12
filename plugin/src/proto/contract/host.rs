//! [`ContractHost`]: the Bevy-free API a game or a referee calls.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use wasmi::{Engine, Module};

use super::batch::{Applied, Entry, StoreCache, instantiate_only, run_inputs};
use super::error::ContractError;
use super::exec::{ContractEntry, Shared};
use super::merkle::{MerkleMap, MerkleProof};
use super::params::ConsensusParams;
use super::types::{Address, CodeHash, ContractId, Digest, Fuel, Input, Receipt, StateRoot, Tick};
use super::validate;

/// One key-value pair of a contract's state.
pub type StateEntry = (Vec<u8>, Vec<u8>);

/// Runs deterministic wasm contracts over Merkle-committed state.
///
/// Sans-IO and single-threaded: no clock, no randomness, no threads. Cloning is cheap (modules
/// and state trees are shared, copied on write), which is how a referee forks the state to
/// re-execute a transition ([`ContractHost::verify_transition`]).
#[derive(Clone, Debug)]
pub struct ContractHost {
    shared: Arc<Shared>,
    contracts: BTreeMap<ContractId, ContractEntry>,
    /// Commits every contract: key = contract id, value = code hash ‖ state root.
    index: MerkleMap,
    /// Contracts written since their root was last folded into `index`.
    dirty: Vec<ContractId>,
    /// The wasmi store (host functions, pooled instances) kept between transitions; shared with
    /// forks. Holds no state that affects results (see `batch.rs`).
    stores: StoreCache,
}

/// The result of applying ordered inputs: `(prior root, inputs) → (next root, receipts, fuel)`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TransitionResult {
    /// [`ContractHost::root`] before the inputs.
    pub prior_root: StateRoot,
    /// [`ContractHost::root`] after the inputs.
    pub next_root: StateRoot,
    /// One receipt per input, in order.
    pub receipts: Vec<Receipt>,
    /// Sum of the receipts' fuel.
    pub fuel_used: Fuel,
}

impl TransitionResult {
    /// The canonical bytes of the result; equal on every peer that re-executes the transition.
    ///
    /// ```text
    /// "meshwork/transition/v1" ‖ prior_root[32] ‖ next_root[32] ‖ fuel_used u64
    /// ‖ receipt_count u32 ‖ receipt*
    /// receipt = fuel_used u64 ‖ ( 0x00 ‖ len u32 ‖ output | 0x01 ‖ error_code u16 ‖ len u32 ‖ abort_message )
    ///           ‖ event_count u32 ‖ (contract[32] ‖ len u32 ‖ topic ‖ len u32 ‖ data)*
    /// ```
    /// Integers are little-endian; the abort message is empty for other errors.
    pub fn encode(&self) -> Vec<u8> {
        fn bytes(out: &mut Vec<u8>, b: &[u8]) {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"meshwork/transition/v1");
        out.extend_from_slice(&self.prior_root.0);
        out.extend_from_slice(&self.next_root.0);
        out.extend_from_slice(&self.fuel_used.0.to_le_bytes());
        out.extend_from_slice(&(self.receipts.len() as u32).to_le_bytes());
        for receipt in &self.receipts {
            out.extend_from_slice(&receipt.fuel_used.0.to_le_bytes());
            match &receipt.result {
                Ok(output) => {
                    out.push(0);
                    bytes(&mut out, output);
                }
                Err(error) => {
                    out.push(1);
                    out.extend_from_slice(&error.code().to_le_bytes());
                    match error {
                        ContractError::Aborted { message } => bytes(&mut out, message),
                        _ => bytes(&mut out, &[]),
                    }
                }
            }
            out.extend_from_slice(&(receipt.events.len() as u32).to_le_bytes());
            for event in &receipt.events {
                out.extend_from_slice(&event.contract.0);
                bytes(&mut out, &event.topic);
                bytes(&mut out, &event.data);
            }
        }
        out
    }

    /// sha256 of [`TransitionResult::encode`]: what referees sign.
    pub fn digest(&self) -> Digest {
        Sha256::digest(self.encode()).into()
    }
}

impl ContractHost {
    /// A host with no code and no contracts.
    ///
    /// The first call in a process also checks that this build's wasmi dispatch keeps the native
    /// stack flat (a probe of ~1 ms, see `dispatch.rs`); a build that does not gets
    /// [`ContractError::UnsafeDispatch`] here, every time, and runs no contract.
    pub fn new(params: ConsensusParams) -> Result<Self, ContractError> {
        params.validate()?;
        super::dispatch::check()?;
        let engine = Engine::new(&params.wasmi_config());
        let mut index = MerkleMap::new();
        index.commit();
        Ok(Self {
            shared: Arc::new(Shared {
                params,
                engine,
                modules: BTreeMap::new(),
                resettable: BTreeSet::new(),
            }),
            contracts: BTreeMap::new(),
            index,
            dirty: Vec::new(),
            stores: StoreCache::default(),
        })
    }

    /// The consensus parameters.
    pub fn params(&self) -> &ConsensusParams {
        &self.shared.params
    }

    /// Validates and compiles `wasm` (eagerly; compiling costs no fuel, it happens once per peer)
    /// and returns its hash. Loading the same bytes twice is a no-op.
    pub fn load_code(&mut self, wasm: &[u8]) -> Result<CodeHash, ContractError> {
        let hash = CodeHash::of(wasm);
        if self.shared.modules.contains_key(&hash) {
            return Ok(hash);
        }
        let resettable = validate::prescan(wasm, &self.shared.params)?;
        let module =
            Module::new(&self.shared.engine, wasm).map_err(|e| ContractError::InvalidModule {
                reason: e.to_string(),
            })?;
        validate::check_interface(&module)?;
        let shared = Arc::make_mut(&mut self.shared);
        shared.modules.insert(hash, module);
        if resettable {
            shared.resettable.insert(hash);
        }
        Ok(hash)
    }

    /// [`ContractHost::load_code`], refusing bytes whose hash is not `expected` (the session's
    /// agreed code hash).
    pub fn load_code_expecting(
        &mut self,
        wasm: &[u8],
        expected: CodeHash,
    ) -> Result<CodeHash, ContractError> {
        let actual = CodeHash::of(wasm);
        if actual != expected {
            return Err(ContractError::CodeHashMismatch { expected, actual });
        }
        self.load_code(wasm)
    }

    /// Whether calls into code with this hash reuse reset instances instead of instantiating
    /// afresh (decided at load time; see "Instance reuse" in the module docs). Either way the
    /// results and fuel are the same; reuse is only faster.
    pub fn reuses_instances(&self, code: &CodeHash) -> bool {
        self.shared.resettable.contains(code)
    }

    /// Whether code with this hash is loaded.
    pub fn has_code(&self, code: &CodeHash) -> bool {
        self.shared.modules.contains_key(code)
    }

    /// Creates a contract running `code` at [`ContractId::derive`]`(code, creator, salt)` and runs
    /// its optional `mw_init` export with `init` as input and `creator` as caller. If `mw_init`
    /// fails, the contract is not created.
    pub fn instantiate(
        &mut self,
        code: CodeHash,
        creator: Address,
        salt: &Digest,
        init: &[u8],
        tick: Tick,
        fuel_limit: Fuel,
    ) -> Result<(ContractId, Receipt), ContractError> {
        if !self.has_code(&code) {
            return Err(ContractError::UnknownCode(code));
        }
        let id = ContractId::derive(code, creator, salt);
        if self.contracts.contains_key(&id) {
            return Err(ContractError::ContractExists(id));
        }
        self.contracts.insert(
            id,
            ContractEntry {
                code_hash: code,
                state: MerkleMap::new(),
            },
        );
        let input = Input {
            contract: id,
            caller: creator,
            tick,
            fuel_limit,
            data: init.to_vec(),
        };
        let (receipt, touched) = self
            .run(std::slice::from_ref(&input), Entry::Init)
            .pop()
            .unwrap_or_else(unreachable_receipt);
        if let Err(error) = &receipt.result {
            self.contracts.remove(&id);
            return Err(error.clone());
        }
        self.dirty.extend(touched);
        self.dirty.push(id);
        self.commit_roots();
        Ok((id, receipt))
    }

    /// Applies one input and commits the roots. A failed input changes nothing but still
    /// reports the fuel it burned.
    pub fn apply(&mut self, input: &Input) -> Receipt {
        let (receipt, touched) = self
            .run(std::slice::from_ref(input), Entry::Call)
            .pop()
            .unwrap_or_else(unreachable_receipt);
        self.dirty.extend(touched);
        self.commit_roots();
        receipt
    }

    fn run(&mut self, inputs: &[Input], entry: Entry) -> Vec<Applied> {
        run_inputs(
            &self.shared,
            &self.stores,
            &mut self.contracts,
            inputs,
            entry,
        )
    }

    /// Applies ordered inputs as one transition (roots hashed once, at the end).
    pub fn apply_transition(&mut self, inputs: &[Input]) -> TransitionResult {
        let prior_root = self.root();
        let mut receipts = Vec::with_capacity(inputs.len());
        let mut fuel_used = Fuel::ZERO;
        for (receipt, touched) in self.run(inputs, Entry::Call) {
            fuel_used = Fuel(fuel_used.0.saturating_add(receipt.fuel_used.0));
            self.dirty.extend(touched);
            receipts.push(receipt);
        }
        self.commit_roots();
        TransitionResult {
            prior_root,
            next_root: self.root(),
            receipts,
            fuel_used,
        }
    }

    /// Re-executes `inputs` on a fork of this host and checks the result's canonical bytes
    /// ([`TransitionResult::encode`]) equal `claimed`'s — what a referee does. This host is left
    /// unchanged.
    pub fn verify_transition(&self, inputs: &[Input], claimed: &TransitionResult) -> bool {
        if claimed.prior_root != self.root() {
            return false;
        }
        let mut fork = self.clone();
        fork.apply_transition(inputs).encode() == claimed.encode()
    }

    fn commit_roots(&mut self) {
        self.dirty.sort_unstable();
        self.dirty.dedup();
        for id in std::mem::take(&mut self.dirty) {
            let Some(entry) = self.contracts.get_mut(&id) else {
                continue;
            };
            let root = entry.state.commit();
            let mut value = [0u8; 64];
            value[..32].copy_from_slice(&entry.code_hash.0);
            value[32..].copy_from_slice(&root);
            self.index.insert(&id.0, &value);
        }
        self.index.commit();
    }

    /// Creates a store (with its host functions) and `count` fresh instances of `code` in it,
    /// running nothing: what calls pay before their first instruction. For the benchmark.
    #[doc(hidden)]
    pub fn bench_instantiate(&self, code: &CodeHash, count: u32) -> Result<(), ContractError> {
        instantiate_only(&self.shared, code, count)
    }

    /// The root committing every contract's code hash and state root.
    pub fn root(&self) -> StateRoot {
        StateRoot(self.index.root())
    }

    /// Ids of every contract, in order.
    pub fn contracts(&self) -> impl Iterator<Item = &ContractId> {
        self.contracts.keys()
    }

    /// A contract's code hash.
    pub fn code_of(&self, contract: &ContractId) -> Result<CodeHash, ContractError> {
        Ok(self.entry(contract)?.code_hash)
    }

    /// The root of one contract's key-value state.
    pub fn contract_root(&self, contract: &ContractId) -> Result<StateRoot, ContractError> {
        Ok(StateRoot(self.entry(contract)?.state.root()))
    }

    /// Reads a key of a contract's committed state.
    pub fn read(&self, contract: &ContractId, key: &[u8]) -> Result<Option<&[u8]>, ContractError> {
        Ok(self.entry(contract)?.state.get(key))
    }

    /// Proves the value (or absence) of `key` under [`ContractHost::contract_root`].
    pub fn prove(&self, contract: &ContractId, key: &[u8]) -> Result<MerkleProof, ContractError> {
        Ok(self.entry(contract)?.state.prove(key))
    }

    /// Proves a contract's `code hash ‖ state root` (64 bytes) under [`ContractHost::root`];
    /// chain with [`ContractHost::prove`] to prove a key under the host root.
    pub fn prove_contract(&self, contract: &ContractId) -> MerkleProof {
        self.index.prove(&contract.0)
    }

    /// Every entry of a contract's state, ordered by `sha256(key)`; feed it to
    /// [`ContractHost::import_contract`] on another peer.
    pub fn export_state(&self, contract: &ContractId) -> Result<Vec<StateEntry>, ContractError> {
        Ok(self
            .entry(contract)?
            .state
            .entries()
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect())
    }

    /// Installs a contract's state received from elsewhere, refusing it unless it hashes to
    /// `expected_root`. The code must be loaded. Replaces any existing state of that id.
    pub fn import_contract(
        &mut self,
        contract: ContractId,
        code: CodeHash,
        entries: &[StateEntry],
        expected_root: StateRoot,
    ) -> Result<(), ContractError> {
        if !self.has_code(&code) {
            return Err(ContractError::UnknownCode(code));
        }
        let mut state = MerkleMap::new();
        for (key, value) in entries {
            state.insert(key, value);
        }
        let actual = StateRoot(state.commit());
        if actual != expected_root {
            return Err(ContractError::StateRootMismatch {
                expected: expected_root,
                actual,
            });
        }
        self.contracts.insert(
            contract,
            ContractEntry {
                code_hash: code,
                state,
            },
        );
        self.dirty.push(contract);
        self.commit_roots();
        Ok(())
    }

    fn entry(&self, contract: &ContractId) -> Result<&ContractEntry, ContractError> {
        self.contracts
            .get(contract)
            .ok_or(ContractError::UnknownContract(*contract))
    }
}

/// `run_inputs` returns one result per input; this stands in for the impossible empty case.
fn unreachable_receipt() -> Applied {
    (
        Receipt {
            result: Err(ContractError::Internal {
                reason: "no receipt for an input".into(),
            }),
            fuel_used: Fuel::ZERO,
            events: Vec::new(),
        },
        Vec::new(),
    )
}
