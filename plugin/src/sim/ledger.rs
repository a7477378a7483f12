//! Ledger simulator: many [`Wallet`]s and [`Validator`]s exchanging [`LedgerMsg`]s directly over a
//! simulated network (not over the overlay: the ledger's properties do not depend on routing,
//! and a direct network keeps 1,000-client runs fast). Everything derives from one seed:
//! per-pair latency (fixed, so pairs are FIFO), loss, partitions, which validators are byzantine
//! (equivocating: vote for every order; withholding: never answer), which clients double-spend,
//! the payments, and the lottery tickets paid from a few clients' escrows (`tickets.rs`: winners
//! are redeemed). The same seed gives the same trace hash.
//!
//! A [`Checker`] watches every certificate the wallets form and asserts, after every step:
//! no two certificates spend one input, every certificate's inputs existed with the claimed
//! content, and `Σ live outputs + Σ burned == Σ minted`. [`LedgerSim::assert_settled`] checks
//! liveness after a heal: every honest payment whose inputs' validators hold > 2/3 honest weight
//! is certified; [`LedgerSim::assert_equivocators_punished`] checks that every caught
//! equivocator's bond was forfeited and no honest validator's was.
//!
//! Byzantine sets are drawn under the protocol's assumption: less than 1/3 of the weight of every
//! possible shard is byzantine (all shards of the committee are enumerated exactly).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

mod check;
mod tickets;

pub use check::{Checker, all_shards};

use crate::proto::contract::Fuel;
use crate::proto::identity::{Identity, PeerId, PublicKey};
use crate::proto::ledger::{
    Amount, BondTerms, Committee, Epoch, Genesis, Input, LedgerEvent, LedgerMsg, MemoryStore,
    OrderDigest, Output, OutputId, TransferOrder, Validator, Vote, Wallet, WalletConfig,
    WalletEvent,
};

/// Parameters of a ledger run.
#[derive(Clone, Debug)]
pub struct LedgerSimConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// Clients (wallets).
    pub clients: usize,
    /// Committee size.
    pub validators: usize,
    /// Validators per output.
    pub shard_size: u16,
    /// Validators that vote for every order (equivocators).
    pub equivocators: usize,
    /// Validators that never answer.
    pub withholders: usize,
    /// Clients that sometimes double-spend.
    pub double_spenders: usize,
    /// One-way latency range (uniform per pair of nodes).
    pub latency_ms_min: u64,
    /// See `latency_ms_min`.
    pub latency_ms_max: u64,
    /// Message loss, parts per million.
    pub loss_ppm: u32,
    /// Payments started per simulated second (all clients together).
    pub payments_per_s: u64,
    /// Each client's genesis coin.
    pub coin: u64,
    /// Honest clients that open an escrow (of 10 × `ticket_face`) and pay lottery tickets.
    pub ticket_payers: usize,
    /// Tickets issued per simulated second (paid responses, all payers together).
    pub tickets_per_s: u64,
    /// A ticket's expected value.
    pub ticket_fee: u64,
    /// A winning ticket's value (`P(win) = ticket_fee / ticket_face`).
    pub ticket_face: u64,
}

impl Default for LedgerSimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            clients: 1_000,
            validators: 64,
            shard_size: 16,
            equivocators: 7,
            withholders: 6,
            double_spenders: 50,
            latency_ms_min: 10,
            latency_ms_max: 60,
            loss_ppm: 20_000,
            payments_per_s: 6,
            coin: 100_000,
            ticket_payers: 8,
            tickets_per_s: 20,
            ticket_fee: 10,
            ticket_face: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Honest,
    Equivocator,
    Withholder,
}

#[derive(Debug)]
enum Node {
    Validator {
        core: Box<Validator<MemoryStore>>,
        identity: Identity,
        role: Role,
    },
    Client {
        wallet: Box<Wallet>,
        identity: Identity,
        double_spender: bool,
    },
}

/// Figures of a run.
#[derive(Debug, Default, Clone)]
pub struct LedgerReport {
    /// Honest payments started.
    pub honest_payments: u64,
    /// Of those, certified.
    pub honest_settled: u64,
    /// Double-spend attempts (pairs of conflicting orders).
    pub double_spends: u64,
    /// Double-spend attempts of which one side was certified.
    pub double_spends_one_side: u64,
    /// Equivocators caught (distinct).
    pub equivocators_caught: u64,
    /// Bonds forfeited.
    pub bonds_forfeited: u64,
    /// Messages delivered / dropped.
    pub delivered: u64,
    /// See `delivered`.
    pub dropped: u64,
    /// Lottery tickets issued (paid responses).
    pub tickets_issued: u64,
    /// Of those, winning.
    pub tickets_won: u64,
    /// Redemptions submitted.
    pub redemptions: u64,
    /// Of those, certified.
    pub redemptions_settled: u64,
    /// Winning tickets not paid (their escrow was drained).
    pub tickets_unpaid: u64,
    /// Settlement latency of honest payments settled in their first attempt, in round trips
    /// (elapsed / the mean round trip of the run's latency range), sorted.
    pub round_trips: Vec<f64>,
}

impl LedgerReport {
    /// A quantile of `round_trips`.
    pub fn round_trips_quantile(&self, q: f64) -> f64 {
        if self.round_trips.is_empty() {
            return 0.0;
        }
        let i = ((self.round_trips.len() - 1) as f64 * q).round() as usize;
        self.round_trips[i.min(self.round_trips.len() - 1)]
    }
}

/// The ledger simulator.
#[derive(Debug)]
pub struct LedgerSim {
    cfg: LedgerSimConfig,
    now_ms: u64,
    rng: ChaCha8Rng,
    genesis: Genesis,
    nodes: Vec<Node>,
    index: BTreeMap<PeerId, usize>,
    queue: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    group: Option<Vec<u8>>,
    active: BTreeSet<usize>,
    trace: Sha256,
    checker: Checker,
    honest: BTreeMap<OrderDigest, (usize, Vec<OutputId>)>,
    doubles: Vec<(OrderDigest, OrderDigest)>,
    caught: BTreeSet<PublicKey>,
    report: LedgerReport,
    paying: bool,
    pay_credit: u64,
    tickets: tickets::Tickets,
}

/// A message in flight: `(arrival ms, sequence, to, from, bytes)`.
type Queued = (u64, u64, usize, usize, Vec<u8>);

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn identity(seed: u64, tag: u8, i: usize) -> Identity {
    let mut s = [tag; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(&(i as u64).to_le_bytes());
    Identity::from_seed(s)
}

impl LedgerSim {
    /// A network of validators (genesis committee) and clients each holding one genesis coin.
    pub fn new(cfg: LedgerSimConfig) -> Self {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        seed[8] = 0x1e;
        let mut rng = ChaCha8Rng::from_seed(seed);
        let vids: Vec<_> = (0..cfg.validators)
            .map(|i| identity(cfg.seed, 1, i))
            .collect();
        let cids: Vec<_> = (0..cfg.clients).map(|i| identity(cfg.seed, 2, i)).collect();
        // Bonds 10,000..15,000 plus up to 5,000 units of genesis work: unequal weights.
        let vinfo: Vec<_> = vids
            .iter()
            .map(|k| {
                let bond = 10_000 + rng.next_u64() % 5_000;
                let work = (rng.next_u64() % 5_000) * crate::proto::ledger::FUEL_PER_WEIGHT;
                (k.public_key(), Amount(bond), Fuel(work))
            })
            .collect();
        // The first four clients are the bonds' beneficiaries (they forfeit equivocators' bonds).
        let terms = BondTerms {
            expiry: Epoch(1_000),
            beneficiaries: cids.iter().take(4).map(|c| c.public_key()).collect(),
            referees: Vec::new(),
            referee_quorum: 0,
            lottery: None,
        };
        let outputs = cids
            .iter()
            .map(|c| Output::plain(c.public_key(), Amount(cfg.coin)))
            .collect();
        let genesis =
            Genesis::new(outputs, &vinfo, &terms, cfg.shard_size).expect("valid genesis config");
        let roles = Self::draw_roles(&cfg, &genesis.committee, &mut rng);
        // Node i is committee member i (the committee sorts its members by key).
        let mut vids = vids;
        vids.sort_by_key(|k| k.public_key());
        let mut nodes = Vec::new();
        let mut index = BTreeMap::new();
        for (k, role) in vids.iter().zip(&roles) {
            let core = Validator::new(k.clone(), &genesis, MemoryStore::new())
                .expect("memory store never fails");
            index.insert(k.peer_id(), nodes.len());
            nodes.push(Node::Validator {
                core: Box::new(core),
                identity: k.clone(),
                role: *role,
            });
        }
        let bonds: Vec<Input> = genesis
            .created()
            .skip(cfg.clients)
            .map(|(id, o)| Input {
                id,
                output: o.clone(),
            })
            .collect();
        for (i, k) in cids.iter().enumerate() {
            let mut w = Wallet::new(
                k.clone(),
                genesis.committee.clone(),
                WalletConfig::default(),
            );
            let (id, o) = genesis.created().nth(i).expect("client coin");
            w.add_coin(id, o.clone(), None);
            if i < 4 {
                for b in &bonds {
                    w.watch_bond(b.clone());
                }
            }
            index.insert(k.peer_id(), nodes.len());
            nodes.push(Node::Client {
                wallet: Box::new(w),
                identity: k.clone(),
                double_spender: i >= 4 && i < 4 + cfg.double_spenders,
            });
        }
        let checker = Checker::new(&genesis);
        Self {
            cfg,
            now_ms: 0,
            rng,
            genesis,
            nodes,
            index,
            queue: BinaryHeap::new(),
            seq: 0,
            group: None,
            active: BTreeSet::new(),
            trace: Sha256::new(),
            checker,
            honest: BTreeMap::new(),
            doubles: Vec::new(),
            caught: BTreeSet::new(),
            report: LedgerReport::default(),
            paying: true,
            pay_credit: 0,
            tickets: tickets::Tickets::default(),
        }
    }

    /// Draw equivocators and withholders until no shard has ≥ 1/3 byzantine weight.
    fn draw_roles(cfg: &LedgerSimConfig, committee: &Committee, rng: &mut ChaCha8Rng) -> Vec<Role> {
        let shards = all_shards(committee);
        for _ in 0..10_000 {
            let mut order: Vec<usize> = (0..cfg.validators).collect();
            for i in (1..order.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            let mut roles = vec![Role::Honest; cfg.validators];
            for (n, &v) in order.iter().enumerate() {
                if n < cfg.equivocators {
                    roles[v] = Role::Equivocator;
                } else if n < cfg.equivocators + cfg.withholders {
                    roles[v] = Role::Withholder;
                }
            }
            let safe = shards.iter().all(|s| {
                let total: u64 = s.iter().map(|&i| committee.weight(i)).sum();
                let bad: u64 = s
                    .iter()
                    .filter(|&&i| roles[i] != Role::Honest)
                    .map(|&i| committee.weight(i))
                    .sum();
                bad * 3 < total
            });
            if safe {
                return roles;
            }
        }
        panic!("no byzantine set keeps every shard below 1/3: lower the byzantine count");
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Virtual time.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Hash of every delivered message and its time (same seed ⇒ same hash).
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// The checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Figures so far.
    pub fn report(&self) -> LedgerReport {
        let mut r = self.report.clone();
        r.honest_settled = self
            .honest
            .keys()
            .filter(|d| self.checker.is_certified(d))
            .count() as u64;
        r.double_spends = self.doubles.len() as u64;
        r.double_spends_one_side = self
            .doubles
            .iter()
            .filter(|(a, b)| self.checker.is_certified(a) || self.checker.is_certified(b))
            .count() as u64;
        r.equivocators_caught = self.caught.len() as u64;
        r.bonds_forfeited = self
            .genesis
            .committee
            .validators()
            .iter()
            .filter(|v| self.checker.spent_by.contains_key(&v.bond))
            .count() as u64;
        r.tickets_issued = self.tickets.issued;
        r.tickets_won = self.tickets.won;
        r.tickets_unpaid = self.tickets.unpaid;
        r.redemptions = self.tickets.redemptions.len() as u64;
        r.redemptions_settled = self
            .tickets
            .redemptions
            .keys()
            .filter(|d| self.checker.is_certified(d))
            .count() as u64;
        r.round_trips.sort_by(f64::total_cmp);
        r
    }

    /// The line that reruns a failing test with this seed.
    pub fn reproduce_line(&self, test: &str) -> String {
        format!(
            "reproduce: SIM_SEED={} cargo test -p meshwork --features sim --test it {test}",
            self.cfg.seed
        )
    }

    /// Split the network: node `i` (validators first, then clients) goes to group `group(i)`.
    pub fn partition(&mut self, group: impl Fn(usize) -> u8) {
        self.group = Some((0..self.nodes.len()).map(group).collect());
    }

    /// Split into two random groups, `ppm` parts per million of nodes in the smaller one.
    pub fn partition_random(&mut self, ppm: u32) {
        let groups: Vec<u8> = (0..self.nodes.len())
            .map(|_| u8::from(self.rng.next_u32() % 1_000_000 < ppm))
            .collect();
        self.partition(|i| groups[i]);
    }

    /// Remove the partition.
    pub fn heal(&mut self) {
        self.group = None;
    }

    /// Stop or resume starting new payments.
    pub fn set_paying(&mut self, paying: bool) {
        self.paying = paying;
    }

    fn latency(&self, a: usize, b: usize) -> u64 {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let span = self.cfg.latency_ms_max - self.cfg.latency_ms_min + 1;
        self.cfg.latency_ms_min + splitmix(self.cfg.seed ^ (lo << 32) ^ hi) % span
    }

    fn mean_rtt_ms(&self) -> f64 {
        (self.cfg.latency_ms_min + self.cfg.latency_ms_max) as f64
    }

    fn send(&mut self, from: usize, to: PeerId, msg: &LedgerMsg) {
        let Some(&to) = self.index.get(&to) else {
            return;
        };
        if self.group.as_ref().is_some_and(|g| g[from] != g[to])
            || self.rng.next_u32() % 1_000_000 < self.cfg.loss_ppm
        {
            self.report.dropped += 1;
            return;
        }
        let bytes = msg.encode().expect("ledger messages encode");
        let at = self.now_ms + self.latency(from, to);
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, to, from, bytes)));
    }

    /// Run for `ms` of virtual time: payments (if on), message delivery, retries, checks.
    pub fn run_for(&mut self, ms: u64) {
        const TICK_MS: u64 = 100;
        let end = self.now_ms + ms;
        while self.now_ms < end {
            let tick_end = (self.now_ms + TICK_MS).min(end);
            while let Some(Reverse((at, ..))) = self.queue.peek() {
                if *at > tick_end {
                    break;
                }
                let Reverse((at, _, to, from, bytes)) = self.queue.pop().expect("peeked");
                self.now_ms = at;
                self.deliver(from, to, &bytes);
            }
            self.now_ms = tick_end;
            self.tick();
            self.checker.assert_conserved();
        }
    }

    fn tick(&mut self) {
        let now = self.now_ms;
        let active: Vec<usize> = self.active.iter().copied().collect();
        for n in active {
            if let Node::Client { wallet, .. } = &mut self.nodes[n] {
                match wallet.poll_timeout() {
                    Some(t) if t <= now => wallet.handle_timeout(now),
                    Some(_) => {}
                    None => {
                        self.active.remove(&n);
                    }
                }
            }
            self.drain(n);
        }
        self.tick_tickets(self.paying);
        if !self.paying {
            return;
        }
        self.pay_credit += self.cfg.payments_per_s;
        while self.pay_credit >= 10 {
            self.pay_credit -= 10;
            self.start_payment();
        }
    }

    fn start_payment(&mut self) {
        let v = self.cfg.validators;
        let c = self.cfg.clients as u64;
        let from = v + (self.rng.next_u64() % c) as usize;
        let mut to = v + (self.rng.next_u64() % c) as usize;
        if to == from {
            to = v + ((to - v + 1) % self.cfg.clients);
        }
        let Node::Client {
            identity: payee, ..
        } = &self.nodes[to]
        else {
            return;
        };
        let payee = payee.public_key();
        let other = v + (self.rng.next_u64() % c) as usize;
        let Node::Client {
            identity: other, ..
        } = &self.nodes[other]
        else {
            return;
        };
        let other = other.public_key();
        let now = self.now_ms;
        let double_roll = self.rng.next_u32().is_multiple_of(2);
        let amount_roll = self.rng.next_u64();
        let Node::Client {
            wallet,
            identity,
            double_spender,
        } = &mut self.nodes[from]
        else {
            return;
        };
        let balance = wallet.balance().0;
        if balance < 10 {
            return;
        }
        let amount = Amount(1 + amount_roll % (balance / 4).max(1));
        if *double_spender && double_roll {
            // Two orders spending the same coin to two payees.
            let Some((id, coin)) = wallet.coins().next().map(|(i, c)| (*i, c.clone())) else {
                return;
            };
            let mk = |to: PublicKey, nonce: u64| {
                let amt = Amount(1 + amount_roll % coin.output.amount.0.max(2).saturating_sub(1));
                let mut outputs = vec![Output::plain(to, amt)];
                let change = coin.output.amount.0 - amt.0;
                if change > 0 {
                    outputs.push(Output::plain(identity.public_key(), Amount(change)));
                }
                TransferOrder {
                    epoch: Epoch(0),
                    nonce,
                    inputs: vec![Input {
                        id,
                        output: coin.output.clone(),
                    }],
                    outputs,
                    fee: Amount::ZERO,
                }
                .signed_by(&[identity])
            };
            let proofs: Vec<_> = coin.proof.clone().into_iter().collect();
            let a = wallet.submit(now, mk(payee, now), proofs.clone());
            let b = wallet.submit(now, mk(other, now + 1), proofs);
            if let (Ok(a), Ok(b)) = (a, b) {
                self.doubles.push((a, b));
            }
        } else if let Ok(d) = wallet.pay(now, payee, amount, Amount(1))
            && !*double_spender
        {
            let inputs = wallet
                .pending_order(&d)
                .map(|o| o.order.inputs.iter().map(|i| i.id).collect())
                .unwrap_or_default();
            self.honest.insert(d, (from, inputs));
            self.report.honest_payments += 1;
        }
        self.active.insert(from);
        self.drain(from);
    }

    fn deliver(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.trace.update(self.now_ms.to_le_bytes());
        self.trace.update((from as u64).to_le_bytes());
        self.trace.update((to as u64).to_le_bytes());
        self.trace.update(bytes);
        self.report.delivered += 1;
        let msg = LedgerMsg::decode(bytes).expect("the simulator only sends valid messages");
        let from_peer = match &self.nodes[from] {
            Node::Validator { identity, .. } | Node::Client { identity, .. } => identity.peer_id(),
        };
        let now = self.now_ms;
        match &mut self.nodes[to] {
            Node::Validator {
                core,
                identity,
                role,
            } => match role {
                Role::Honest => {
                    let _ = core.handle_message(from_peer, msg);
                }
                Role::Withholder => {}
                Role::Equivocator => {
                    if let LedgerMsg::Order { order, .. } = msg
                        && order.order.check_shape().is_ok()
                    {
                        let digest = order.order.digest();
                        let vote = Vote::sign(identity, &digest);
                        let reply = LedgerMsg::Vote {
                            order: digest,
                            vote,
                        };
                        self.send(to, from_peer, &reply);
                    }
                }
            },
            Node::Client { wallet, .. } => {
                let _ = wallet.handle_message(now, from_peer, msg);
                self.active.insert(to);
            }
        }
        self.drain(to);
    }

    /// Send what node `n` has queued and absorb its events.
    fn drain(&mut self, n: usize) {
        let mut out = Vec::new();
        let mut settled = Vec::new();
        let mut failed = Vec::new();
        match &mut self.nodes[n] {
            Node::Validator { core, .. } => {
                while let Some(m) = core.poll_transmit() {
                    out.push(m);
                }
                while let Some(e) = core.poll_event() {
                    if let LedgerEvent::EquivocationDetected(p) = e {
                        self.caught.insert(p.validator);
                    }
                }
            }
            Node::Client { wallet, .. } => {
                while let Some(m) = wallet.poll_transmit() {
                    out.push(m);
                }
                while let Some(e) = wallet.poll_event() {
                    match e {
                        WalletEvent::Settled {
                            certificate,
                            elapsed_ms,
                            order,
                        } => settled.push((order, elapsed_ms, certificate)),
                        WalletEvent::Failed { order, .. } => failed.push(order),
                        _ => {}
                    }
                }
            }
        }
        for (order, elapsed_ms, cert) in settled {
            self.checker.certificate(&cert);
            if self.honest.contains_key(&order) {
                self.report
                    .round_trips
                    .push(elapsed_ms as f64 / self.mean_rtt_ms());
            }
        }
        for order in failed {
            self.redemption_failed(&order);
        }
        for (to, m) in out {
            self.send(n, to, &m);
        }
    }

    /// Total honest weight of the validators of `input` over its shard weight: > 2/3 means an
    /// honest payment from it must settle once the network is whole.
    fn honest_quorum(&self, input: &OutputId) -> bool {
        let c = &self.genesis.committee;
        let shard = c.shard(input);
        let total: u64 = shard.iter().map(|&i| c.weight(i)).sum();
        let honest: u64 = shard
            .iter()
            .filter(|&&i| {
                matches!(
                    &self.nodes[i],
                    Node::Validator {
                        role: Role::Honest,
                        ..
                    }
                )
            })
            .map(|&i| c.weight(i))
            .sum();
        u128::from(honest) * 3 > u128::from(total) * 2
    }

    /// Every honest payment whose inputs' validators hold > 2/3 honest weight is certified.
    /// Returns how many honest payments were excused (none while byzantine sets are drawn
    /// below 1/3 of every shard).
    pub fn assert_settled(&self) -> usize {
        let mut missing = Vec::new();
        let mut excused = 0;
        for (d, (client, inputs)) in &self.honest {
            if self.checker.is_certified(d) {
                continue;
            }
            if !inputs.iter().all(|i| self.honest_quorum(i)) {
                excused += 1;
                continue;
            }
            let Node::Client { wallet, .. } = &self.nodes[*client] else {
                continue;
            };
            missing.push((*d, *client, wallet.pending().any(|p| p == d)));
        }
        if let Some((d, c, _)) = missing.first() {
            eprintln!("{}", self.explain(d, *c));
        }
        assert!(
            missing.is_empty(),
            "{} honest payments with an honest quorum did not settle (first: {:?} \
             (order, client, still pending))",
            missing.len(),
            missing.first()
        );
        excused
    }

    /// Every caught equivocator's bond was forfeited; no honest validator was caught.
    pub fn assert_equivocators_punished(&self) {
        for (i, v) in self.genesis.committee.validators().iter().enumerate() {
            let Node::Validator { role, .. } = &self.nodes[i] else {
                unreachable!("validators come first");
            };
            let caught = self.caught.contains(&v.public);
            assert!(
                !caught || *role == Role::Equivocator,
                "honest or withholding validator {i} accused"
            );
            if caught {
                assert!(
                    self.checker.spent_by.contains_key(&v.bond),
                    "caught equivocator {i} kept its bond"
                );
            }
        }
    }

    /// Why `order` (pending at `client`) is stuck: each input's validators and what they hold.
    pub fn explain(&self, order: &OrderDigest, client: usize) -> String {
        use crate::proto::ledger::LedgerStore as _;
        let Node::Client { wallet, .. } = &self.nodes[client] else {
            return String::new();
        };
        let Some(o) = wallet.pending_order(order) else {
            return "not pending".into();
        };
        let c = &self.genesis.committee;
        let mut out = format!(
            "now {} progress {:?} timeout {:?} active {} {:?}\n",
            self.now_ms,
            wallet.progress(order),
            wallet.poll_timeout(),
            self.active.contains(&client),
            o.order
        );
        for i in &o.order.inputs {
            for v in c.shard(&i.id) {
                let Node::Validator { core, role, .. } = &self.nodes[v] else {
                    continue;
                };
                let st = core.store().output(&i.id).ok();
                out += &format!("  validator {v} {role:?}: {st:?}\n");
            }
        }
        out
    }

    /// Queued messages.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
