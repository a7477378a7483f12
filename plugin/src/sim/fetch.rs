//! Fetch simulator: a [`Fetch`] core on every peer of an overlay [`Sim`] (real routing, real
//! signatures), a small in-process ledger committee that certifies every bond, escrow, ticket
//! redemption and forfeit with real [`Validator`]s, and responders that lie.
//!
//! Roles, from the seed: a share of peers lie (wrong contract results, wrong block bytes), a
//! share answer late; a fixed audit committee of honest referees holds every contract. Contract
//! servers are the peers closest to each contract id; blocks are `PUT` to the closest peers of
//! their hash by random writers. Requests go from random peers to random contracts and blocks.
//!
//! The simulator records every lie it lets through and checks: every audited lie is slashed
//! (its bond forfeited through a certified order), every result an audit flagged is retracted
//! at its requester, no honest responder is ever slashed, and value is conserved on the ledger.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use super::{Sim, SimConfig};
use crate::proto::contract::{Address, ConsensusParams, ContractHost, ContractId, Fuel, Tick};
use crate::proto::fetch::{
    Fault, Fetch, FetchConfig, FetchError, FetchEvent, Method, Outgoing, Request, RequestId,
    SERVICE_FETCH, Target,
};
use crate::proto::identity::{Identity, PeerId, PublicKey};
use crate::proto::ledger::{
    Amount, BondTerms, Certificate, Epoch, Evidence, Genesis, Input, LotteryTerms, MemoryStore,
    Output, OutputId, OutputProof, SignedOrder, TransferOrder, Validator,
};

/// The contract every server holds: stores its input under "k" and echoes it.
pub const ECHO_WAT: &str = r#"(module
    (import "mw1" "input_len" (func $input_len (result i32)))
    (import "mw1" "input_read" (func $input_read (param i32)))
    (import "mw1" "storage_set" (func $set (param i32 i32 i32 i32)))
    (import "mw1" "output" (func $output (param i32 i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "k")
    (func (export "mw_call") (local $n i32)
        (local.set $n (call $input_len))
        (call $input_read (i32.const 16))
        (call $set (i32.const 0) (i32.const 1) (i32.const 16) (local.get $n))
        (call $output (i32.const 16) (local.get $n))))"#;

/// A host holding `n` instances of [`ECHO_WAT`] (salts 0..n), and their ids.
pub fn echo_contracts(n: usize) -> (ContractHost, Vec<ContractId>) {
    let wasm = wat::parse_str(ECHO_WAT).expect("valid WAT");
    let mut host = ContractHost::new(ConsensusParams::default()).expect("host");
    let code = host.load_code(&wasm).expect("loads");
    let ids = (0..n)
        .map(|c| {
            let mut salt = [0u8; 32];
            salt[..8].copy_from_slice(&(c as u64).to_le_bytes());
            host.instantiate(code, Address([9; 32]), &salt, &[], Tick(0), Fuel(1_000_000))
                .expect("instantiates")
                .0
        })
        .collect();
    (host, ids)
}

/// Parameters of a fetch run.
#[derive(Clone, Debug)]
pub struct FetchSimConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Peers.
    pub peers: usize,
    /// Share of responders that lie, per mille.
    pub liars_permille: u32,
    /// Share that answer late, per mille.
    pub late_permille: u32,
    /// How late.
    pub late_ms: u64,
    /// Contracts served.
    pub contracts: usize,
    /// Servers per contract (the closest peers to its id).
    pub servers_per_contract: usize,
    /// Blocks written.
    pub blocks: usize,
    /// Copies of each block.
    pub block_replicas: u8,
    /// Referees in the audit committee.
    pub referees: usize,
    /// Fee per answer.
    pub fee: Amount,
    /// Ticket face value.
    pub ticket_face: Amount,
    /// Audit rate, parts per million.
    pub audit_ppm: u32,
    /// Overlay network parameters.
    pub net: SimConfig,
}

impl Default for FetchSimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            peers: 2_000,
            liars_permille: 200,
            late_permille: 100,
            late_ms: 400,
            contracts: 16,
            servers_per_contract: 4,
            blocks: 64,
            block_replicas: 3,
            referees: 7,
            fee: Amount(10),
            ticket_face: Amount(200),
            audit_ppm: crate::proto::fetch::DEFAULT_AUDIT_PPM,
            net: SimConfig::default(),
        }
    }
}

/// How a peer behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Answers correctly and promptly.
    Honest,
    /// Answers wrongly.
    Liar,
    /// Answers correctly, late.
    Late,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct FetchReport {
    /// Requests started.
    pub requests: u64,
    /// Completed with an answer.
    pub answered: u64,
    /// Timed out or refused.
    pub failed: u64,
    /// Lies accepted by a requester (contract results).
    pub lies_accepted: u64,
    /// Wrong blocks received (each rejected by its hash).
    pub wrong_blocks: u64,
    /// Lies that were audited (accepted-and-sampled contract lies + every wrong block).
    pub lies_audited: u64,
    /// Verdicts reached.
    pub verdicts: u64,
    /// Bonds forfeited on the ledger.
    pub bonds_forfeited: u64,
    /// Flagged results retracted at their requester.
    pub retracted: u64,
    /// Winning tickets redeemed on the ledger.
    pub redemptions: u64,
    /// Tickets drawn (= paid answers).
    pub tickets: u64,
    /// Ledger orders certified after setup (redemptions + forfeits + re-bonds).
    pub ledger_ops: u64,
    /// Hops of the requests' answers (the routed response's hop count).
    pub hops: Vec<u8>,
    /// Request → accepted answer, in simulated ms.
    pub latency_ms: Vec<u64>,
    /// Net earnings of liars (winnings − forfeited bonds − re-bonds).
    pub liar_net: i64,
    /// Net earnings of honest and late responders.
    pub honest_net: i64,
}

/// An in-process ledger for simulations and tests: four real [`Validator`]s certifying real
/// orders synchronously, one genesis coin per owner, and the bookkeeping to assert
/// `Σ live + Σ burned == Σ minted` at any point.
pub struct MiniLedger {
    vals: Vec<Validator<MemoryStore>>,
    committee: crate::proto::ledger::Committee,
    /// Every live output, for the conservation check and balances.
    live: BTreeMap<OutputId, Output>,
    coins: BTreeMap<PublicKey, Input>,
    minted: u64,
    burned: u64,
    nonce: u64,
}

impl MiniLedger {
    /// A committee of 4 (bonds expiring at `expiry`) and a coin of `coin` for each owner.
    pub fn new(owners: &[PublicKey], coin: u64, expiry: Epoch) -> Self {
        let validators: Vec<Identity> = (0..4u8)
            .map(|i| Identity::from_seed([0xA0 + i; 32]))
            .collect();
        let outputs: Vec<Output> = owners
            .iter()
            .map(|k| Output::plain(*k, Amount(coin)))
            .collect();
        let vinfo: Vec<_> = validators
            .iter()
            .map(|k| (k.public_key(), Amount(1_000_000), Fuel(0)))
            .collect();
        let genesis = Genesis::new(outputs, &vinfo, &BondTerms::until(expiry), 4).expect("genesis");
        let vals = validators
            .iter()
            .map(|k| Validator::new(k.clone(), &genesis, MemoryStore::new()).expect("validator"))
            .collect();
        let mut live = BTreeMap::new();
        let mut coins = BTreeMap::new();
        for (id, o) in genesis.created() {
            live.insert(id, o.clone());
            if o.bond.is_none() {
                coins.insert(
                    o.owner,
                    Input {
                        id,
                        output: o.clone(),
                    },
                );
            }
        }
        Self {
            vals,
            committee: genesis.committee.clone(),
            live,
            coins,
            minted: genesis.minted().0,
            burned: 0,
            nonce: 0,
        }
    }

    /// The committee certificates are checked against.
    pub fn committee(&self) -> &crate::proto::ledger::Committee {
        &self.committee
    }

    /// What `owner`'s coin (the change of its last post) holds.
    pub fn coin(&self, owner: &PublicKey) -> Option<Amount> {
        self.coins.get(owner).map(|c| c.output.amount)
    }

    /// Lock `amount` of `who`'s coin under `terms`; the proof of the new output.
    pub fn post(&mut self, who: &Identity, terms: BondTerms, amount: u64) -> OutputProof {
        let coin = self.coins.remove(&who.public_key()).expect("a coin left");
        let change = coin.output.amount.0 - amount;
        self.nonce += 1;
        let order = TransferOrder {
            epoch: Epoch(0),
            nonce: self.nonce,
            inputs: vec![coin],
            outputs: vec![
                Output {
                    owner: who.public_key(),
                    amount: Amount(amount),
                    bond: Some(terms),
                },
                Output::plain(who.public_key(), Amount(change)),
            ],
            fee: Amount::ZERO,
        };
        let cert = self
            .certify(&order.signed_by(&[who]))
            .expect("posting from a coin certifies");
        let digest = cert.order.digest();
        let (cid, cout) = cert.order.created(&digest).nth(1).expect("change");
        self.coins.insert(
            who.public_key(),
            Input {
                id: cid,
                output: cout.clone(),
            },
        );
        OutputProof::new(cert, 0)
    }

    /// Collect every validator's vote; if they form a certificate, apply it everywhere.
    pub fn certify(&mut self, order: &SignedOrder) -> Option<Certificate> {
        let votes: Vec<_> = self
            .vals
            .iter_mut()
            .filter_map(|v| v.handle_order(order, &[]).ok())
            .collect();
        let cert = Certificate {
            order: order.order.clone(),
            votes,
        };
        if cert.verify(&self.committee).is_err() {
            return None;
        }
        for v in &mut self.vals {
            let _ = v.handle_certificate(&cert);
        }
        let digest = order.order.digest();
        for i in &order.order.inputs {
            self.live.remove(&i.id);
        }
        let mut out_sum = 0u64;
        for (id, o) in order.order.created(&digest) {
            out_sum += o.amount.0;
            self.live.insert(id, o.clone());
        }
        let in_sum: u64 = order.order.inputs.iter().map(|i| i.output.amount.0).sum();
        self.burned += in_sum - out_sum;
        Some(cert)
    }

    /// Assert `Σ live + Σ burned == Σ minted`.
    pub fn check_conservation(&self) {
        let live: u64 = self.live.values().map(|o| o.amount.0).sum();
        assert_eq!(live + self.burned, self.minted, "value not conserved");
    }

    /// Everything `owner` holds (plain and locked).
    pub fn balance(&self, owner: &PublicKey) -> u64 {
        self.live
            .values()
            .filter(|o| o.owner == *owner)
            .map(|o| o.amount.0)
            .sum()
    }
}

struct Lie {
    requester: usize,
    id: RequestId,
    audited: bool,
}

/// A fetch run.
pub struct FetchSim {
    /// The overlay simulator underneath.
    pub sim: Sim,
    cfg: FetchSimConfig,
    rng: ChaCha8Rng,
    cores: Vec<Option<Fetch>>,
    roles: Vec<Role>,
    delayed: Vec<(u64, usize, Outgoing)>,
    book: MiniLedger,
    escrows: BTreeMap<[u8; 32], OutputProof>,
    escrow_owner: BTreeMap<[u8; 32], usize>,
    bonds: BTreeMap<usize, OutputProof>,
    contracts: Vec<ContractId>,
    blocks: Vec<[u8; 32]>,
    started: BTreeMap<(usize, RequestId), u64>,
    lies: Vec<Lie>,
    retracted: BTreeSet<(usize, RequestId)>,
    slashed: BTreeSet<usize>,
    initial: BTreeMap<PublicKey, u64>,
    /// What was measured.
    pub report: FetchReport,
}

const STEP_MS: u64 = 5;

impl FetchSim {
    /// Grow the overlay, set up the ledger, bonds, escrows, contracts and blocks.
    #[expect(
        clippy::needless_range_loop,
        reason = "slots index several parallel tables"
    )]
    pub fn new(cfg: FetchSimConfig) -> Self {
        let mut net = cfg.net.clone();
        net.seed = cfg.seed;
        let mut sim = Sim::new(net);
        sim.grow(cfg.peers, 200);
        sim.run_for(30_000);
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xfe7c);
        let n = cfg.peers;
        let ids: Vec<Identity> = (0..n)
            .map(|s| sim.overlay(s).expect("live").identity().clone())
            .collect();

        // Roles and the audit committee (honest, on time).
        let mut roles = vec![Role::Honest; n];
        let referee_slots: Vec<usize> = pick(&mut rng, n, cfg.referees, &BTreeSet::new());
        let taken: BTreeSet<usize> = referee_slots.iter().copied().collect();
        for s in 0..n {
            if taken.contains(&s) {
                continue;
            }
            let r = rng.next_u32() % 1000;
            roles[s] = if r < cfg.liars_permille {
                Role::Liar
            } else if r < cfg.liars_permille + cfg.late_permille {
                Role::Late
            } else {
                Role::Honest
            };
        }
        let referees: Vec<PublicKey> = referee_slots.iter().map(|&s| ids[s].public_key()).collect();
        let quorum = u16::try_from(referees.len() * 2 / 3 + 1).expect("few referees");

        // Ledger: every peer gets a genesis coin; 4 validators.
        let coin = 100_000u64;
        let owners: Vec<PublicKey> = ids.iter().map(Identity::public_key).collect();
        let book = MiniLedger::new(&owners, coin, Epoch(1_000));
        let initial = ids.iter().map(|i| (i.public_key(), coin)).collect();

        // The contract, served by the closest peers to each contract id and by every referee.
        let (host, contracts) = echo_contracts(cfg.contracts);
        let mut servers: BTreeMap<usize, Vec<ContractId>> = BTreeMap::new();
        for c in &contracts {
            for s in closest_slots(&sim, &PeerId(c.0), cfg.servers_per_contract) {
                servers.entry(s).or_default().push(*c);
            }
            for &s in &referee_slots {
                servers.entry(s).or_default().push(*c);
            }
        }

        let mut me = Self {
            sim,
            rng,
            cores: Vec::new(),
            roles,
            delayed: Vec::new(),
            book,
            escrows: BTreeMap::new(),
            escrow_owner: BTreeMap::new(),
            bonds: BTreeMap::new(),
            contracts,
            blocks: Vec::new(),
            started: BTreeMap::new(),
            lies: Vec::new(),
            retracted: BTreeSet::new(),
            slashed: BTreeSet::new(),
            initial,
            report: FetchReport::default(),
            cfg: cfg.clone(),
        };
        let bond_terms = BondTerms {
            referees: referees.clone(),
            referee_quorum: quorum,
            ..BondTerms::until(Epoch(1_000))
        };
        let committee = me.book.committee().clone();
        for s in 0..n {
            let identity = ids[s].clone();
            let bond = me
                .book
                .post(&identity, bond_terms.clone(), collateral(&cfg));
            let mut root = [0u8; 32];
            root[..8].copy_from_slice(&(s as u64).to_le_bytes());
            root[8] = 0xE5;
            let escrow = me.book.post(
                &identity,
                BondTerms {
                    lottery: Some(LotteryTerms::new(root)),
                    ..BondTerms::until(Epoch(1_000))
                },
                cfg.ticket_face.0 * 50,
            );
            me.escrows.insert(root, escrow.clone());
            me.escrow_owner.insert(root, s);
            me.bonds.insert(s, bond.clone());
            let fcfg = FetchConfig {
                price: cfg.fee,
                bond: Some(bond),
                escrow: Some(escrow),
                ticket_face: cfg.ticket_face,
                referees: referees.clone(),
                referee_quorum: quorum,
                audit_ppm: cfg.audit_ppm,
                committee: Some(committee.clone()),
                fault: match me.roles[s] {
                    Role::Liar => Fault::Lie,
                    Role::Late => Fault::Late,
                    Role::Honest => Fault::None,
                },
                ..FetchConfig::default()
            };
            let mut seed = [0u8; 32];
            me.rng.fill_bytes(&mut seed);
            let mut core = Fetch::new(identity, fcfg, seed);
            for c in servers.get(&s).into_iter().flatten() {
                core.serve_contract(*c, host.clone());
            }
            me.cores.push(Some(core));
        }
        me.book.check_conservation();
        me
    }

    /// Store every block at its closest peers by a random writer, then let the writers go.
    pub fn write_blocks(&mut self) {
        for b in 0..self.cfg.blocks {
            let mut bytes = vec![0u8; 512 + (b % 7) * 100];
            self.rng.fill_bytes(&mut bytes);
            let hash: [u8; 32] = Sha256::digest(&bytes).into();
            self.blocks.push(hash);
            let writer = self.random_live();
            let req = Request {
                target: Target::Block { hash },
                replicas: self.cfg.block_replicas,
                ..Request::get(&format!("mesh://block/{}", hex::encode(hash)))
                    .expect("valid")
                    .with_body(Method::Put, bytes)
                    .paying(self.cfg.fee)
            };
            self.start(writer, req);
        }
        self.run_for(5_000);
    }

    fn random_live(&mut self) -> usize {
        loop {
            let s = (self.rng.next_u64() % self.cores.len() as u64) as usize;
            if self.cores[s].is_some() {
                return s;
            }
        }
    }

    fn start(&mut self, slot: usize, req: Request) {
        let now = self.sim.now_ms();
        let core = self.cores[slot].as_mut().expect("live");
        if let Ok(id) = core.fetch(now, req) {
            self.report.requests += 1;
            self.started.insert((slot, id), now);
        }
        self.flush(slot);
    }

    /// Start `n` random requests (contract calls and block reads), spread over `over_ms`.
    pub fn requests(&mut self, n: usize, over_ms: u64) {
        let per_step = (n as u64 * STEP_MS).div_ceil(over_ms.max(STEP_MS)).max(1);
        let mut left = n as u64;
        while left > 0 {
            for _ in 0..per_step.min(left) {
                let from = self.random_live();
                let req = if self.rng.next_u32().is_multiple_of(2) || self.blocks.is_empty() {
                    let c = self.contracts[(self.rng.next_u32() as usize) % self.contracts.len()];
                    let mut body = vec![0u8; 16];
                    self.rng.fill_bytes(&mut body);
                    Request::get(&format!("mesh://{}/echo", hex::encode(c.0)))
                        .expect("valid")
                        .with_body(Method::Post, body)
                        .paying(self.cfg.fee)
                } else {
                    let h = self.blocks[(self.rng.next_u32() as usize) % self.blocks.len()];
                    Request::get(&format!("mesh://block/{}", hex::encode(h)))
                        .expect("valid")
                        .paying(self.cfg.fee)
                };
                self.start(from, req);
                left -= 1;
            }
            self.step();
        }
    }

    /// Kill `n` random peers abruptly (block holders among them), never a referee.
    pub fn kill_random(&mut self, n: usize) {
        for _ in 0..n {
            let s = self.random_live();
            if self.cfg.referees > 0 && self.is_referee(s) {
                continue;
            }
            self.kill(s);
        }
    }

    fn is_referee(&self, s: usize) -> bool {
        let Some(c) = self.cores[s].as_ref() else {
            return false;
        };
        c.config().referees.contains(&c.public_key())
    }

    /// Kill peer `slot` abruptly.
    pub fn kill(&mut self, slot: usize) {
        self.sim.remove_peer(slot, false);
        self.cores[slot] = None;
    }

    /// Run for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.sim.now_ms() + ms;
        while self.sim.now_ms() < end {
            self.step();
        }
    }

    fn step(&mut self) {
        self.sim.run_for(STEP_MS);
        let now = self.sim.now_ms();
        let deliveries = self.sim.deliveries().to_vec();
        self.sim.clear_deliveries();
        for d in deliveries {
            let Some((&tag, rest)) = d.payload.split_first() else {
                continue;
            };
            if tag != SERVICE_FETCH {
                continue;
            }
            if let Some(core) = self.cores[d.at].as_mut() {
                let is_response = is_response(rest);
                match core.handle_message(now, d.origin, rest) {
                    Err(FetchError::WrongContent(_)) => {
                        // Every wrong block is caught by its hash and disputed at once.
                        self.report.wrong_blocks += 1;
                        self.report.lies_audited += 1;
                    }
                    Ok(()) if is_response => self.report.hops.push(d.hops),
                    _ => {}
                }
            }
        }
        // Late answers due now.
        let due: Vec<_> = {
            let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
                .into_iter()
                .partition(|(t, _, _)| *t <= now);
            self.delayed = keep;
            due
        };
        for (_, slot, o) in due {
            self.send(slot, o);
        }
        for slot in 0..self.cores.len() {
            let Some(core) = self.cores[slot].as_mut() else {
                continue;
            };
            if core.poll_timeout() <= now {
                core.handle_timeout(now);
            }
            self.flush(slot);
            self.events(slot);
        }
        self.book.check_conservation();
    }

    fn flush(&mut self, slot: usize) {
        let now = self.sim.now_ms();
        while let Some(o) = self.cores[slot].as_mut().and_then(Fetch::poll_send) {
            let is_response =
                matches!(&o, Outgoing::Route { payload, .. } if is_response(&payload[1..]));
            if self.roles[slot] == Role::Late && is_response {
                self.delayed.push((now + self.cfg.late_ms, slot, o));
            } else {
                self.send(slot, o);
            }
        }
    }

    fn send(&mut self, slot: usize, o: Outgoing) {
        self.sim.with_overlay(slot, |ov, now| o.send_on(ov, now));
    }

    fn events(&mut self, slot: usize) {
        let now = self.sim.now_ms();
        while let Some(ev) = self.cores[slot].as_mut().and_then(Fetch::poll_event) {
            match ev {
                FetchEvent::Completed { id, result } => {
                    let started = self.started.remove(&(slot, id)).unwrap_or(now);
                    match result {
                        Ok(r) => {
                            self.report.answered += 1;
                            self.report.latency_ms.push(now - started);
                            if r.price > Amount::ZERO {
                                self.report.tickets += 1;
                            }
                            let liar = self.slot_of(&r.responder).map(|s| self.roles[s])
                                == Some(Role::Liar);
                            if liar
                                && matches!(r.evidence.request.head.target, Target::Contract { .. })
                            {
                                self.report.lies_accepted += 1;
                                if r.audited {
                                    self.report.lies_audited += 1;
                                }
                                self.lies.push(Lie {
                                    requester: slot,
                                    id,
                                    audited: r.audited,
                                });
                            }
                            if let Target::Block { hash } = r.evidence.request.head.target
                                && r.status == 200
                            {
                                assert_eq!(
                                    <[u8; 32]>::from(Sha256::digest(&r.body)),
                                    hash,
                                    "a wrong block was accepted"
                                );
                            }
                        }
                        Err(_) => self.report.failed += 1,
                    }
                }
                FetchEvent::TicketWon { winning, escrow: _ } => {
                    let root = winning.ticket.ticket.escrow_root;
                    let Some(current) = self.escrows.get(&root).cloned() else {
                        continue;
                    };
                    let Ok(input) = current.input() else { continue };
                    let Ok(order) = SignedOrder::redeem(Epoch(0), input, *winning, Amount::ZERO)
                    else {
                        continue;
                    };
                    if let Some(cert) = self.book.certify(&order) {
                        self.report.redemptions += 1;
                        self.report.ledger_ops += 1;
                        if cert.order.outputs.len() > 1 {
                            self.escrows.insert(root, OutputProof::new(cert, 1));
                        } else {
                            self.escrows.remove(&root);
                        }
                        if let (Some(&owner), Some(p)) =
                            (self.escrow_owner.get(&root), self.escrows.get(&root))
                            && let Some(c) = self.cores[owner].as_mut()
                        {
                            c.config_mut().escrow = Some(p.clone());
                        }
                    }
                }
                FetchEvent::Slashed {
                    verdict, responder, ..
                } => {
                    self.report.verdicts += 1;
                    let Some(rs) = self.slot_of(&responder) else {
                        continue;
                    };
                    assert_ne!(
                        self.roles[rs],
                        Role::Honest,
                        "an honest responder was slashed"
                    );
                    assert_ne!(
                        self.roles[rs],
                        Role::Late,
                        "a late honest responder was slashed"
                    );
                    let Some(bond) = self.bonds.get(&rs).cloned() else {
                        continue;
                    };
                    let Ok(input) = bond.input() else { continue };
                    if input.id != verdict.bond {
                        continue; // a verdict against a bond already replaced
                    }
                    let Ok(order) =
                        SignedOrder::forfeit(Epoch(0), input, Evidence::Verdict(*verdict))
                    else {
                        continue;
                    };
                    if self.book.certify(&order).is_some() {
                        self.report.bonds_forfeited += 1;
                        self.report.ledger_ops += 1;
                        self.slashed.insert(rs);
                        self.bonds.remove(&rs);
                        // The liar re-bonds if it can afford to, and carries on.
                        let who = self.cores[rs].as_ref().map(|c| c.public_key());
                        let amount = collateral(&self.cfg);
                        let can = who
                            .and_then(|k| self.book.coin(&k))
                            .is_some_and(|c| c.0 > amount);
                        let terms = self.rebond_terms();
                        if let (true, Some(terms)) = (can, terms) {
                            let identity = self.sim.overlay(rs).map(|o| o.identity().clone());
                            if let Some(identity) = identity {
                                let p = self.book.post(&identity, terms, amount);
                                self.report.ledger_ops += 1;
                                self.bonds.insert(rs, p.clone());
                                if let Some(c) = self.cores[rs].as_mut() {
                                    c.config_mut().bond = Some(p);
                                }
                            }
                        } else if let Some(c) = self.cores[rs].as_mut() {
                            c.config_mut().bond = None;
                        }
                    }
                }
                FetchEvent::Retracted { id } => {
                    self.report.retracted += 1;
                    self.retracted.insert((slot, id));
                }
                FetchEvent::Paid { .. } | FetchEvent::Incoming(_) => {}
            }
        }
    }

    fn rebond_terms(&self) -> Option<BondTerms> {
        let any = self.bonds.values().next()?;
        any.output().ok().and_then(|(_, o)| o.bond.clone())
    }

    fn slot_of(&self, key: &PublicKey) -> Option<usize> {
        let id = PeerId::from_public_key(key);
        (0..self.cores.len()).find(|&s| self.sim.overlay(s).is_some_and(|o| o.peer_id() == id))
    }

    /// Settle: let audits and late answers finish, then compute earnings and check the
    /// invariants. Panics (with the seed in the caller's `reproduce:` line) on a violation.
    pub fn finish(&mut self) {
        self.run_for(15_000);
        for lie in &self.lies {
            if lie.audited {
                assert!(
                    self.retracted.contains(&(lie.requester, lie.id)),
                    "an audited lie was not retracted at its requester"
                );
            }
        }
        let mut liar = 0i64;
        let mut honest = 0i64;
        for s in 0..self.cores.len() {
            let Some(c) = self.cores[s].as_ref() else {
                continue;
            };
            let k = c.public_key();
            let start = i64::try_from(*self.initial.get(&k).unwrap_or(&0)).unwrap_or(0);
            let now = i64::try_from(self.book.balance(&k)).unwrap_or(0);
            // Spending on our own requests is not earning: add back tickets we paid out.
            let paid_out: i64 = self
                .escrow_owner
                .iter()
                .filter(|(_, o)| **o == s)
                .map(|(root, _)| {
                    let left = self
                        .escrows
                        .get(root)
                        .and_then(|p| p.output().ok().map(|(_, o)| o.amount.0));
                    i64::try_from(self.cfg.ticket_face.0 * 50 - left.unwrap_or(0)).unwrap_or(0)
                })
                .sum();
            let net = now - start + paid_out;
            match self.roles[s] {
                Role::Liar => liar += net,
                _ => honest += net,
            }
        }
        self.report.liar_net = liar;
        self.report.honest_net = honest;
        self.book.check_conservation();
    }

    /// Liars that lost at least one bond.
    pub fn liars_slashed(&self) -> usize {
        self.slashed.len()
    }

    /// Peers by role.
    pub fn role_count(&self, role: Role) -> usize {
        self.roles.iter().filter(|r| **r == role).count()
    }
}

/// Whether encoded fetch message bytes are a `FetchMsg::Response` (bincode writes the enum
/// variant first; `Response` is variant 1).
fn is_response(msg: &[u8]) -> bool {
    msg.first() == Some(&1)
}

fn collateral(cfg: &FetchSimConfig) -> u64 {
    crate::proto::fetch::collateral_for(cfg.fee).0
}

fn pick(rng: &mut ChaCha8Rng, n: usize, k: usize, exclude: &BTreeSet<usize>) -> Vec<usize> {
    let mut out = BTreeSet::new();
    while out.len() < k.min(n - exclude.len()) {
        let s = (rng.next_u64() % n as u64) as usize;
        if !exclude.contains(&s) {
            out.insert(s);
        }
    }
    out.into_iter().collect()
}

fn closest_slots(sim: &Sim, key: &PeerId, k: usize) -> Vec<usize> {
    let mut v: Vec<(crate::proto::identity::Distance, usize)> = sim
        .live_slots()
        .filter_map(|s| sim.overlay(s).map(|o| (o.peer_id().distance(key), s)))
        .collect();
    v.sort();
    v.truncate(k);
    v.into_iter().map(|(_, s)| s).collect()
}
