//! Ledger benchmark: prints the figures issue 4 asks for, next to their targets.
//!
//! - orders validated per second per core by one validator (structure, owner signature in an
//!   ed25519 batch, input state, lock recorded in the store, vote signed), batched and one by one;
//! - certificates verified per second per core (all vote signatures of a certificate in one batch,
//!   and many certificates per batch);
//! - lottery tickets: ticket signature checks per second, and redemptions (a winning ticket paid
//!   from an escrow) validated and voted per second per core;
//! - settlement latency in round trips, measured on the ledger simulator with a fixed one-way
//!   latency (so a round trip is exactly 2 × latency), without and with byzantine validators.
//!
//! Run: `cargo bench -p meshwork --features sim --bench ledger`

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::Identity;
use meshwork::proto::ledger::ticket::{commit, draw};
use meshwork::proto::ledger::{
    Amount, BondTerms, Certificate, Epoch, Genesis, Input, MemoryStore, Output, SignedOrder,
    SignedTicket, Ticket, TransferOrder, Validator, Vote, WinningTicket, verify_batch,
    win_threshold_for,
};
use meshwork::sim::ledger::{LedgerSim, LedgerSimConfig};

const VALIDATORS: usize = 64;
const SHARD: u16 = 16;
const OWNERS: usize = 1_000;
const OUTPUTS: usize = 40_000;

fn id(tag: u8, i: usize) -> Identity {
    let mut s = [tag; 32];
    s[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Identity::from_seed(s)
}

struct Setup {
    genesis: Genesis,
    validators: Vec<Identity>,
    owners: Vec<Identity>,
}

fn setup() -> Setup {
    setup_with(OUTPUTS)
}

fn setup_with(coins: usize) -> Setup {
    let validators: Vec<_> = (0..VALIDATORS).map(|i| id(1, i)).collect();
    let owners: Vec<_> = (0..OWNERS).map(|i| id(2, i)).collect();
    let outputs = (0..coins)
        .map(|i| Output::plain(owners[i % OWNERS].public_key(), Amount(1_000)))
        .collect();
    let vinfo: Vec<_> = validators
        .iter()
        .map(|k| (k.public_key(), Amount(10_000), Fuel(0)))
        .collect();
    let terms = BondTerms::until(Epoch(10));
    let genesis = Genesis::new(outputs, &vinfo, &terms, SHARD).expect("genesis");
    Setup {
        genesis,
        validators,
        owners,
    }
}

/// Orders spending the genesis outputs validator `v` is responsible for (one input, two outputs).
fn orders_for(s: &Setup, v: usize) -> Vec<SignedOrder> {
    let c = &s.genesis.committee;
    let me = c.index_of(&s.validators[v].public_key()).expect("member");
    s.genesis
        .created()
        .take(OUTPUTS)
        .enumerate()
        .filter(|(_, (oid, _))| c.shard(oid).contains(&me))
        .map(|(i, (oid, o))| {
            let owner = &s.owners[i % OWNERS];
            TransferOrder {
                epoch: Epoch(0),
                nonce: i as u64,
                inputs: vec![Input {
                    id: oid,
                    output: o.clone(),
                }],
                outputs: vec![
                    Output::plain(s.owners[(i + 1) % OWNERS].public_key(), Amount(600)),
                    Output::plain(owner.public_key(), Amount(399)),
                ],
                fee: Amount(1),
            }
            .signed_by(&[owner])
        })
        .collect()
}

/// Escrows instead of coins: output `i` is an escrow of 1,000 owned by owner `i % OWNERS`,
/// lineage root `i`.
fn setup_escrows(escrows: usize) -> Setup {
    let base = setup_with(0);
    let outputs = (0..escrows)
        .map(|i| Output {
            owner: base.owners[i % OWNERS].public_key(),
            amount: Amount(1_000),
            bond: Some(BondTerms::escrow(Epoch(10), root(i))),
        })
        .collect();
    let vinfo: Vec<_> = base
        .validators
        .iter()
        .map(|k| (k.public_key(), Amount(10_000), Fuel(0)))
        .collect();
    let terms = BondTerms::until(Epoch(10));
    Setup {
        genesis: Genesis::new(outputs, &vinfo, &terms, SHARD).expect("genesis"),
        ..base
    }
}

fn root(i: usize) -> [u8; 32] {
    let mut r = [0xe5; 32];
    r[..8].copy_from_slice(&(i as u64).to_le_bytes());
    r
}

/// For each escrow validator `v` is responsible for, a redemption of a ticket of face 100 at
/// P(win) = 1/100 (fee 1), with a winning reveal found by drawing secrets.
fn redemptions_for(s: &Setup, v: usize) -> Vec<SignedOrder> {
    let c = &s.genesis.committee;
    let me = c.index_of(&s.validators[v].public_key()).expect("member");
    let threshold = win_threshold_for(Amount(1), Amount(100)).expect("valid");
    s.genesis
        .created()
        .enumerate()
        .filter(|(_, (oid, o))| {
            o.bond.as_ref().is_some_and(|t| t.lottery.is_some()) && c.shard(oid).contains(&me)
        })
        .map(|(i, (oid, o))| {
            let payer = &s.owners[i % OWNERS];
            let mut n = 0u64;
            loop {
                let mut secret = [7; 32];
                secret[..8].copy_from_slice(&n.to_le_bytes());
                let ticket = Ticket {
                    escrow_root: root(i),
                    payer: payer.public_key(),
                    payee: s.owners[(i + 1) % OWNERS].public_key(),
                    face: Amount(100),
                    win_threshold: threshold,
                    payee_commit: commit(&secret),
                    payer_rand: [i as u8; 32],
                    expiry: Epoch(10),
                };
                if draw(&ticket.id(), &secret) < threshold {
                    let winning = WinningTicket {
                        ticket: SignedTicket::sign(payer, ticket),
                        reveal: secret,
                    };
                    let escrow = Input {
                        id: oid,
                        output: o.clone(),
                    };
                    return SignedOrder::redeem(Epoch(0), escrow, winning, Amount::ZERO)
                        .expect("a winning redemption");
                }
                n += 1;
            }
        })
        .collect()
}

fn validator(s: &Setup, v: usize) -> Validator<MemoryStore> {
    Validator::new(s.validators[v].clone(), &s.genesis, MemoryStore::new()).expect("validator")
}

fn orders_per_s(s: &Setup, orders: &[SignedOrder], batch: usize) -> (f64, u64) {
    let mut v = validator(s, 0);
    let t = Instant::now();
    let mut ok = 0usize;
    for chunk in orders.chunks(batch) {
        let items: Vec<(&SignedOrder, &[Certificate])> =
            chunk.iter().map(|o| (o, &[][..])).collect();
        ok += v.handle_orders(&items).iter().filter(|r| r.is_ok()).count();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(ok, orders.len(), "every order gets a vote");
    (orders.len() as f64 / secs, v.store().commits)
}

fn main() {
    println!("ledger benchmark (one core; committee {VALIDATORS}, shard {SHARD})");
    let s = setup();
    let orders = orders_for(&s, 0);
    println!("  {} orders, one input each, for validator 0", orders.len());

    // The box is shared: take the best of three runs of everything, anchor included.
    let best = |f: &mut dyn FnMut() -> f64| (0..3).map(|_| f()).fold(0.0, f64::max);
    let key = SigningKey::from_bytes(&[5; 32]);
    let msgs: Vec<[u8; 32]> = (0..4096u32).map(|i| [i as u8; 32]).collect();
    let sigs: Vec<_> = msgs.iter().map(|m| key.sign(m)).collect();
    let keys = vec![key.verifying_key(); msgs.len()];
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let anchor_at = |size: usize| {
        best(&mut || {
            let t = Instant::now();
            for i in (0..msgs.len()).step_by(size) {
                ed25519_dalek::verify_batch(
                    &refs[i..i + size],
                    &sigs[i..i + size],
                    &keys[i..i + size],
                )
                .expect("valid");
            }
            black_box(msgs.len() as f64 / t.elapsed().as_secs_f64())
        })
    };
    let _ = orders_per_s(&s, &orders[..orders.len().min(500)], 64);
    for size in [64, 256] {
        let anchor = anchor_at(size);
        println!(
            "  anchor: ed25519 batch verification, batches of {size:>3}, on this box now: {anchor:>9.0} signatures/s"
        );
        let mut commits = 0;
        let batched = best(&mut || {
            let (r, c) = orders_per_s(&s, &orders, size);
            commits = c;
            r
        });
        println!(
            "  orders validated + voted, batches of {size:>3} : {batched:>9.0} /s per core   (target ≥ 40,000; \
             {:.0}% of the anchor; {commits} store commits, one vote signature per batch)",
            100.0 * batched / anchor
        );
    }
    let single = best(&mut || orders_per_s(&s, &orders, 1).0);
    println!(
        "  orders validated + voted, one by one     : {single:>9.0} /s per core   (a verify and a sign \
         per order; FastPay reported ~8,500)"
    );

    // Certificates: all 16 shard validators vote for each order.
    let certs: Vec<Certificate> = orders
        .iter()
        .take(2_000)
        .map(|o| {
            let digest = o.order.digest();
            let c = &s.genesis.committee;
            let shard = c.shard(&o.order.inputs[0].id);
            // A minimal quorum: the first members of the shard until > 2/3 of its weight.
            let votes = shard
                .iter()
                .take(usize::from(SHARD) * 2 / 3 + 1)
                .map(|&i| {
                    let k = s
                        .validators
                        .iter()
                        .find(|k| k.public_key() == c.validators()[i].public)
                        .expect("member");
                    Vote::sign(k, &digest)
                })
                .collect();
            Certificate {
                order: o.order.clone(),
                votes,
            }
        })
        .collect();
    let committee = &s.genesis.committee;
    let one = best(&mut || {
        let t = Instant::now();
        for c in &certs {
            c.verify(committee).expect("valid certificate");
        }
        certs.len() as f64 / t.elapsed().as_secs_f64()
    });
    let refs: Vec<&Certificate> = certs.iter().collect();
    let many = best(&mut || {
        let t = Instant::now();
        for chunk in refs.chunks(16) {
            assert!(verify_batch(chunk, committee).iter().all(Result::is_ok));
        }
        certs.len() as f64 / t.elapsed().as_secs_f64()
    });
    println!(
        "  certificates verified ({} votes each), one per batch : {one:>9.0} /s per core",
        certs[0].votes.len()
    );
    println!("  certificates verified, 16 per batch                : {many:>9.0} /s per core");

    // Lottery tickets: only winners reach the ledger, as redemptions.
    let e = setup_escrows(8_000);
    let redemptions = redemptions_for(&e, 0);
    let tickets: Vec<&SignedTicket> = redemptions
        .iter()
        .filter_map(|o| match &o.authority {
            meshwork::proto::ledger::Authority::Redeem(w) => Some(&w.ticket),
            _ => None,
        })
        .collect();
    let checks = best(&mut || {
        let t = Instant::now();
        for ticket in &tickets {
            ticket.verify().expect("valid ticket");
        }
        tickets.len() as f64 / t.elapsed().as_secs_f64()
    });
    println!(
        "  ticket signatures checked, one by one   : {checks:>9.0} /s per core   ({} tickets; id \
         hash + ed25519 verify — what a payee does per paid response)",
        tickets.len()
    );
    let _ = orders_per_s(&e, &redemptions[..redemptions.len().min(200)], 64);
    let redeemed = best(&mut || orders_per_s(&e, &redemptions, 64).0);
    let redeemed_one = best(&mut || orders_per_s(&e, &redemptions, 1).0);
    println!(
        "  redemptions validated + voted, batches of 64: {redeemed:>9.0} /s per core   ({} \
         redemptions; ticket signature batched, draw, outputs rebuilt, lock, vote)",
        redemptions.len()
    );
    println!(
        "  redemptions validated + voted, one by one   : {redeemed_one:>9.0} /s per core   \
         (at fee/face = 1/100 one redemption settles ~100 paid responses)"
    );

    // Settlement latency on the simulator, fixed 50 ms one way (round trip 100 ms).
    for (label, equivocators, withholders) in [("honest committee", 0, 0), ("20% byzantine", 7, 6)]
    {
        let mut sim = LedgerSim::new(LedgerSimConfig {
            seed: 7,
            clients: 300,
            latency_ms_min: 50,
            latency_ms_max: 50,
            loss_ppm: 0,
            equivocators,
            withholders,
            double_spenders: 0,
            payments_per_s: 20,
            ..LedgerSimConfig::default()
        });
        sim.run_for(30_000);
        sim.set_paying(false);
        sim.run_for(10_000);
        let r = sim.report();
        println!(
            "  settlement latency, {label:<16}: p50 {:.2} p95 {:.2} max {:.2} round trips ({} payments; target 1)",
            r.round_trips_quantile(0.5),
            r.round_trips_quantile(0.95),
            r.round_trips_quantile(1.0),
            r.round_trips.len()
        );
    }
}
