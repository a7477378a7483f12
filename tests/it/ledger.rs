//! The ledger: typed rejections of bad input, wallet ↔ validator flows, reconfiguration, and the
//! many-peer simulator with byzantine validators and double-spending clients, lottery tickets.

mod flows;
mod rejections;
mod sim;
mod tickets;

use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::{Identity, PublicKey};
use meshwork::proto::ledger::{
    Amount, BondTerms, Certificate, Epoch, Genesis, Input, MemoryStore, Output, SignedOrder,
    TransferOrder, Validator,
};

/// A small ledger: `v` validators (each in every shard when `shard >= v`), users 0..4 each with
/// one genesis coin of 1,000, validator bonds of 10,000 expiring at epoch 0 with users 0 and 1
/// as beneficiaries and users 2 and 3 as referees (quorum 2).
pub struct Fixture {
    pub genesis: Genesis,
    pub validators: Vec<Identity>,
    pub users: Vec<Identity>,
    pub vals: Vec<Validator<MemoryStore>>,
}

pub fn id(tag: u8, i: usize) -> Identity {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Identity::from_seed(seed)
}

impl Fixture {
    pub fn new(v: usize, shard: u16) -> Self {
        let validators: Vec<_> = (0..v).map(|i| id(1, i)).collect();
        let users: Vec<_> = (0..4).map(|i| id(2, i)).collect();
        let outputs = users
            .iter()
            .map(|u| Output::plain(u.public_key(), Amount(1_000)))
            .collect();
        let terms = BondTerms {
            expiry: Epoch(0),
            beneficiaries: vec![users[0].public_key(), users[1].public_key()],
            referees: vec![users[2].public_key(), users[3].public_key()],
            referee_quorum: 2,
            lottery: None,
        };
        let vinfo: Vec<_> = validators
            .iter()
            .map(|k| (k.public_key(), Amount(10_000), Fuel(0)))
            .collect();
        let genesis = Genesis::new(outputs, &vinfo, &terms, shard).expect("genesis");
        let vals = validators
            .iter()
            .map(|k| Validator::new(k.clone(), &genesis, MemoryStore::new()).expect("validator"))
            .collect();
        Self {
            genesis,
            validators,
            users,
            vals,
        }
    }

    /// Genesis output `i` as an input.
    pub fn input(&self, i: usize) -> Input {
        let (id, output) = self.genesis.created().nth(i).expect("genesis output");
        Input {
            id,
            output: output.clone(),
        }
    }

    /// The bond of validator `v` as an input.
    pub fn bond(&self, v: usize) -> Input {
        self.input(self.users.len() + v)
    }

    pub fn order(
        &self,
        input: Input,
        to: PublicKey,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> TransferOrder {
        let change = input.output.amount.0 - amount - fee;
        let mut outputs = vec![Output::plain(to, Amount(amount))];
        if change > 0 {
            outputs.push(Output::plain(input.output.owner, Amount(change)));
        }
        TransferOrder {
            epoch: Epoch(0),
            nonce,
            inputs: vec![input],
            outputs,
            fee: Amount(fee),
        }
    }

    /// User `u` pays `amount` from its genesis coin to user `to`.
    pub fn pay(&self, u: usize, to: usize, amount: u64, nonce: u64) -> SignedOrder {
        self.order(self.input(u), self.users[to].public_key(), amount, 1, nonce)
            .signed_by(&[&self.users[u]])
    }

    /// Collect votes from every validator that gives one and build the certificate.
    pub fn certify(&mut self, order: &SignedOrder) -> Certificate {
        let votes = self
            .vals
            .iter_mut()
            .filter_map(|v| v.handle_order(order, &[]).ok())
            .collect();
        Certificate {
            order: order.order.clone(),
            votes,
        }
    }
}
