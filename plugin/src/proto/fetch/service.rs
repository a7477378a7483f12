//! What a peer can serve: contract evaluations (from a [`ContractHost`] it keeps) and
//! content-addressed blocks (a bounded [`BlockStore`]).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::msg::Proof;
use crate::proto::contract::{Address, ContractHost, ContractId, Fuel, Input, Tick};
use crate::proto::identity::PeerId;

/// Fuel one fetch evaluation may burn.
pub const FETCH_FUEL_MAX: Fuel = Fuel(10_000_000);

/// An evaluation's outcome: status, body, and what a referee re-executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// 200 on success, 422 if the contract failed (the body then names the error).
    pub status: u16,
    /// The contract's output, or the error text.
    pub body: Vec<u8>,
    /// Code, prior and next root, fuel and tick.
    pub proof: Proof,
}

/// Evaluate `input` as a call of `contract` by `caller` at `tick`, on a fork of `host`: the
/// host's state is left unchanged (fetch evaluates; sessions commit). `None` if the host does
/// not hold the contract.
pub fn evaluate(
    host: &ContractHost,
    contract: &ContractId,
    caller: &PeerId,
    tick: Tick,
    input: &[u8],
) -> Option<Evaluation> {
    let code = host.code_of(contract).ok()?;
    let prior_root = host.contract_root(contract).ok()?;
    let mut fork = host.clone();
    let receipt = fork.apply(&Input {
        contract: *contract,
        caller: Address(caller.0),
        tick,
        fuel_limit: FETCH_FUEL_MAX,
        data: input.to_vec(),
    });
    let next_root = fork.contract_root(contract).ok()?;
    let (status, body) = match receipt.result {
        Ok(out) => (200, out),
        Err(e) => (422, e.to_string().into_bytes()),
    };
    Some(Evaluation {
        status,
        body,
        proof: Proof::Contract {
            code,
            prior_root,
            next_root,
            fuel: receipt.fuel_used,
            tick,
        },
    })
}

/// Blocks this peer stores, keyed by sha256, with a byte budget. A full store refuses new
/// blocks rather than evicting paid ones.
#[derive(Clone, Debug, Default)]
pub struct BlockStore {
    blocks: BTreeMap<[u8; 32], Vec<u8>>,
    bytes: usize,
    bytes_max: usize,
}

impl BlockStore {
    /// An empty store holding at most `bytes_max` bytes of blocks.
    pub fn new(bytes_max: usize) -> Self {
        Self {
            blocks: BTreeMap::new(),
            bytes: 0,
            bytes_max,
        }
    }

    /// The block with this hash.
    pub fn get(&self, hash: &[u8; 32]) -> Option<&[u8]> {
        self.blocks.get(hash).map(Vec::as_slice)
    }

    /// Whether it holds this block.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Store `bytes` under its hash. `Some(hash)` if stored (or already held); `None` if the
    /// store is full.
    pub fn put(&mut self, bytes: Vec<u8>) -> Option<[u8; 32]> {
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if self.blocks.contains_key(&hash) {
            return Some(hash);
        }
        if self.bytes + bytes.len() > self.bytes_max {
            return None;
        }
        self.bytes += bytes.len();
        self.blocks.insert(hash, bytes);
        Some(hash)
    }

    /// Drop a block (e.g. once its retention ended).
    pub fn remove(&mut self, hash: &[u8; 32]) {
        if let Some(b) = self.blocks.remove(hash) {
            self.bytes -= b.len();
        }
    }

    /// Hashes of the blocks held, in order.
    pub fn hashes(&self) -> impl Iterator<Item = &[u8; 32]> + '_ {
        self.blocks.keys()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
