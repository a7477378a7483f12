//! Wallets and validators wired together in memory: a payment settles in one round trip, a payee
//! spends what it received, an equivocation is caught and the bond forfeited, and a certified
//! reconfiguration carries every lock into the next epoch.

use std::collections::BTreeMap;

use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::{PeerId, PublicKey};
use meshwork::proto::ledger::{
    Amount, CertifiedReconfiguration, Epoch, LedgerError, LedgerEvent, LedgerMsg, MemoryStore,
    Validator, Vote, Wallet, WalletConfig, WalletEvent, WorkAttestation, WorkCertificate,
};

use super::Fixture;

/// Delivers every message at once, in order, counting delivery rounds (shared with `tickets`).
pub(super) struct Net {
    pub(super) f: Fixture,
    wallets: BTreeMap<PeerId, Wallet>,
    vals: BTreeMap<PeerId, Validator<MemoryStore>>,
    pub(super) events: Vec<(PeerId, WalletEvent)>,
    rounds: u32,
}

impl Net {
    pub(super) fn new(mut f: Fixture) -> Self {
        let mut wallets = BTreeMap::new();
        for u in &f.users {
            let mut w = Wallet::new(
                u.clone(),
                f.genesis.committee.clone(),
                WalletConfig::default(),
            );
            for (id, o) in f.genesis.created() {
                w.add_coin(id, o.clone(), None);
            }
            for v in 0..f.validators.len() {
                w.watch_bond(f.bond(v));
            }
            wallets.insert(u.peer_id(), w);
        }
        let vals = std::mem::take(&mut f.vals)
            .into_iter()
            .zip(&f.validators)
            .map(|(v, k)| (k.peer_id(), v))
            .collect();
        Self {
            f,
            wallets,
            vals,
            events: Vec::new(),
            rounds: 0,
        }
    }

    pub(super) fn wallet(&mut self, u: usize) -> &mut Wallet {
        let p = self.f.users[u].peer_id();
        self.wallets.get_mut(&p).expect("wallet")
    }

    pub(super) fn user(&self, u: usize) -> PublicKey {
        self.f.users[u].public_key()
    }

    /// Deliver messages round by round until none are left.
    pub(super) fn run(&mut self) {
        loop {
            let mut out: Vec<(PeerId, PeerId, LedgerMsg)> = Vec::new();
            for (p, w) in &mut self.wallets {
                while let Some((to, m)) = w.poll_transmit() {
                    out.push((*p, to, m));
                }
                while let Some(e) = w.poll_event() {
                    self.events.push((*p, e));
                }
            }
            for (p, v) in &mut self.vals {
                while let Some((to, m)) = v.poll_transmit() {
                    out.push((*p, to, m));
                }
            }
            if out.is_empty() {
                return;
            }
            self.rounds += 1;
            for (from, to, m) in out {
                // Through the codec, as on a real link.
                let m = LedgerMsg::decode(&m.encode().expect("encode")).expect("decode");
                if let Some(w) = self.wallets.get_mut(&to) {
                    let _ = w.handle_message(0, from, m);
                } else if let Some(v) = self.vals.get_mut(&to) {
                    let _ = v.handle_message(from, m);
                }
            }
        }
    }

    pub(super) fn settled(&self) -> usize {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, WalletEvent::Settled { .. }))
            .count()
    }
}

#[test]
fn payment_settles_in_one_round_trip_and_the_payee_can_spend_it() {
    let mut net = Net::new(Fixture::new(7, 4));
    let to = net.user(1);
    net.wallet(0)
        .pay(0, to, Amount(300), Amount(2))
        .expect("pay");
    net.run();
    assert_eq!(net.settled(), 1);
    // Round 1: orders to validators; round 2: votes back (settled); then certificate to payee
    // and its acknowledgement.
    assert_eq!(net.rounds, 4, "order, votes, confirm, confirmed");
    assert_eq!(net.wallet(0).balance(), Amount(698));
    assert_eq!(net.wallet(1).balance(), Amount(1_300));
    // The payee spends the received coin; its validators learn of its creation from the proof.
    let to = net.user(2);
    net.wallet(1)
        .pay(0, to, Amount(1_250), Amount(0))
        .expect("pay with the received coin");
    net.run();
    assert_eq!(net.settled(), 2);
    assert_eq!(net.wallet(2).balance(), Amount(2_250));
    assert!(matches!(
        net.wallet(3).pay(0, to, Amount(5_000), Amount(0)),
        Err(LedgerError::InsufficientFunds { .. })
    ));
}

#[test]
fn equivocation_is_reported_and_the_bond_forfeited() {
    let mut net = Net::new(Fixture::new(4, 4));
    // User 3 double-spends its coin; validator 0 (byzantine) votes for both orders, the others
    // for whichever came first.
    let a = net.f.pay(3, 0, 10, 1);
    let b = net.f.pay(3, 1, 10, 2);
    let bad = net.f.validators[0].clone();
    let bad_peer = bad.peer_id();
    let honest: Vec<PeerId> = net.f.validators[1..].iter().map(|v| v.peer_id()).collect();
    let w = net.f.users[3].peer_id();
    let wallet = net.wallets.get_mut(&w).expect("wallet");
    let da = wallet.submit(0, a.clone(), vec![]).expect("submit a");
    let db = wallet.submit(0, b.clone(), vec![]).expect("submit b");
    // Hand-deliver: the byzantine validator votes for both; validators 1, 2 lock a, 3 locks b.
    while wallet.poll_transmit().is_some() {}
    for (order, digest, voters) in [(&a, da, &honest[..2]), (&b, db, &honest[2..])] {
        wallet
            .handle_message(
                0,
                bad_peer,
                LedgerMsg::Vote {
                    order: digest,
                    vote: Vote::sign(&bad, &digest),
                },
            )
            .expect("vote");
        for p in voters {
            let v = net.vals.get_mut(p).expect("validator");
            v.handle_message(
                w,
                LedgerMsg::Order {
                    order: order.clone(),
                    proofs: vec![],
                },
            )
            .expect("vote");
        }
    }
    // b's validators refuse a and vice versa.
    for p in &honest {
        let v = net.vals.get_mut(p).expect("validator");
        let _ = v.handle_message(
            w,
            LedgerMsg::Order {
                order: a.clone(),
                proofs: vec![],
            },
        );
        let _ = v.handle_message(
            w,
            LedgerMsg::Order {
                order: b.clone(),
                proofs: vec![],
            },
        );
    }
    net.run();
    // a has 3 of 4 votes: certified. b failed; the wallet reported both sides.
    let settled_by = |p: PeerId| {
        net.events
            .iter()
            .filter(|(q, e)| *q == p && matches!(e, WalletEvent::Settled { .. }))
            .count()
    };
    assert_eq!(settled_by(w), 1);
    assert!(
        net.events
            .iter()
            .any(|(q, e)| *q == w && matches!(e, WalletEvent::Failed { .. }))
    );
    // Both beneficiaries submitted the (identical) forfeit order; both saw it settle.
    assert_eq!(settled_by(net.f.users[0].peer_id()), 1);
    assert!(net.vals.values_mut().any(|v| {
        std::iter::from_fn(|| v.poll_event())
            .any(|e| matches!(e, LedgerEvent::EquivocationDetected(_)))
    }));
    // The beneficiaries (users 0 and 1) forfeited the bond: 5,000 each.
    assert_eq!(net.wallet(0).balance(), Amount(1_000 + 10 + 5_000));
    assert_eq!(net.wallet(1).balance(), Amount(1_000 + 5_000));
}

#[test]
fn reconfiguration_is_certified_and_carries_locks_over() {
    let mut f = Fixture::new(4, 4);
    let a = f.pay(0, 1, 100, 1);
    for v in &mut f.vals[..3] {
        v.handle_order(&a, &[]).expect("vote");
    }
    // Work certified in epoch 0 adds weight to validator 3 in epoch 1 (capped at its bond).
    let work = WorkAttestation {
        worker: f.validators[3].public_key(),
        epoch: Epoch(0),
        fuel: Fuel(4_000 * 1_000_000),
        digest: [3; 32],
    };
    let few = WorkCertificate {
        attestation: work.clone(),
        signatures: f.validators[..2].iter().map(|k| work.sign(k)).collect(),
    };
    let committee = f.genesis.committee.clone();
    assert!(matches!(
        few.verify(&committee),
        Err(LedgerError::ForgedCertificate(_))
    ));
    let enough = WorkCertificate {
        attestation: work.clone(),
        signatures: f.validators[..3].iter().map(|k| work.sign(k)).collect(),
    };
    let members = committee
        .validators()
        .iter()
        .map(|v| (v.public, v.bond, v.bond_amount))
        .collect();
    let next = committee
        .next(members, &[enough.clone(), enough])
        .expect("next committee");
    let i3 = next
        .index_of(&f.validators[3].public_key())
        .expect("member");
    assert_eq!(
        next.weight(i3),
        14_000,
        "work counted once, capped at the bond"
    );
    // Two endorsements are not > 2/3; three are.
    let weak = CertifiedReconfiguration {
        next: next.clone(),
        signatures: f.validators[..2]
            .iter()
            .map(|k| CertifiedReconfiguration::endorse(k, &next))
            .collect(),
    };
    assert!(f.vals[0].handle_reconfiguration(&weak).is_err());
    let cert = CertifiedReconfiguration {
        next: next.clone(),
        signatures: f.validators[..3]
            .iter()
            .map(|k| CertifiedReconfiguration::endorse(k, &next))
            .collect(),
    };
    let mut handoffs = Vec::new();
    for v in &mut f.vals {
        v.handle_reconfiguration(&cert).expect("reconfigure");
        while let Some((_, m)) = v.poll_transmit() {
            if let LedgerMsg::Handoff(h) = m {
                handoffs.push(h);
            }
        }
    }
    // Validator 3 never locked `a`; before absorbing handoffs it refuses to vote in epoch 1.
    let mut b = f.order(f.input(0), f.users[2].public_key(), 100, 1, 2);
    b.epoch = Epoch(1);
    let b = b.signed_by(&[&f.users[0]]);
    assert!(matches!(
        f.vals[3].handle_order(&b, &[]),
        Err(LedgerError::NotSynced(_))
    ));
    for h in &handoffs {
        f.vals[3].handle_handoff(h).expect("absorb");
    }
    // Now it knows `a`'s lock and refuses the conflicting epoch-1 order.
    assert!(matches!(
        f.vals[3].handle_order(&b, &[]),
        Err(LedgerError::Conflicting { .. })
    ));
    // Epoch-0 orders are refused in epoch 1, and the bond (expiry epoch 0) is now released.
    let old = f.pay(1, 0, 5, 3);
    assert!(matches!(
        f.vals[3].handle_order(&old, &[]),
        Err(LedgerError::WrongEpoch { .. })
    ));
    let mut release = f.order(f.bond(0), f.validators[0].public_key(), 9_999, 1, 1);
    release.epoch = Epoch(1);
    let release = release.signed_by(&[&f.validators[0]]);
    f.vals[3]
        .handle_order(&release, &[])
        .expect("bond released after expiry");
}

#[test]
fn a_session_bond_is_proven_offline_and_forfeited_on_a_referee_verdict() {
    use meshwork::proto::ledger::{BondTerms, Evidence, SignedOrder, Verdict};
    let mut net = Net::new(Fixture::new(4, 4));
    let referees: Vec<_> = (0..3).map(|i| super::id(9, i)).collect();
    let terms = BondTerms {
        expiry: Epoch(50),
        beneficiaries: Vec::new(),
        referees: referees.iter().map(|r| r.public_key()).collect(),
        referee_quorum: 2,
        lottery: None,
    };
    net.wallet(0)
        .lock_bond(0, Amount(400), Amount(1), terms.clone())
        .expect("lock");
    net.run();
    assert_eq!(net.settled(), 1);
    // The bond is not spendable balance, and the wallet proves it to anyone holding the
    // committee.
    assert_eq!(net.wallet(0).balance(), Amount(599));
    let (id, _) = net
        .wallet(0)
        .bonds()
        .map(|(id, c)| (*id, c.clone()))
        .next()
        .expect("a bond");
    let proof = net.wallet(0).output_proof(&id).expect("proof");
    let (proven, output) = proof.verify(&net.f.genesis.committee).expect("verifies");
    assert_eq!(proven, id);
    assert_eq!(output.bond.as_ref(), Some(&terms));
    assert_eq!(output.amount, Amount(400));
    // An escrow is not opened this way.
    let mut lottery = terms.clone();
    lottery.lottery = Some(meshwork::proto::ledger::ticket::LotteryTerms::new([1; 32]));
    assert!(
        net.wallet(0)
            .lock_bond(0, Amount(1), Amount(0), lottery)
            .is_err()
    );
    // One referee is not a quorum: the validators refuse the forfeit.
    let case = [5; 32];
    let one = Verdict {
        bond: id,
        case,
        beneficiaries: Vec::new(),
        signatures: vec![Verdict::sign(&referees[0], &id, &case)],
    };
    let weak = SignedOrder::forfeit(
        Epoch(0),
        proof.input().expect("input"),
        Evidence::Verdict(one),
    )
    .expect("well-formed");
    net.wallet(1)
        .submit(0, weak, vec![proof.certificate.clone()])
        .expect("submit");
    net.run();
    assert_eq!(net.settled(), 1, "one referee of three does not forfeit");
    let w1 = net.f.users[1].peer_id();
    assert!(
        net.events
            .iter()
            .any(|(q, e)| *q == w1 && matches!(e, WalletEvent::Failed { .. }))
    );
    // Two of three: forfeited, and burned (the terms and the verdict name no beneficiaries).
    let verdict = Verdict {
        bond: id,
        case,
        beneficiaries: Vec::new(),
        signatures: referees[..2]
            .iter()
            .map(|r| Verdict::sign(r, &id, &case))
            .collect(),
    };
    let order = SignedOrder::forfeit(
        Epoch(0),
        proof.input().expect("input"),
        Evidence::Verdict(verdict),
    )
    .expect("forfeit order");
    net.wallet(2)
        .submit(0, order, vec![proof.certificate.clone()])
        .expect("submit");
    net.run();
    assert_eq!(net.settled(), 2, "the forfeit is certified");
    assert_eq!(net.wallet(2).balance(), Amount(1_000));
}

#[test]
fn one_order_pays_many_payees() {
    let mut net = Net::new(Fixture::new(4, 4));
    let (a, b) = (net.user(1), net.user(2));
    net.wallet(0)
        .pay_all(0, &[(a, Amount(100)), (b, Amount(200))], Amount(1))
        .expect("pay all");
    net.run();
    assert_eq!(net.settled(), 1);
    assert_eq!(net.wallet(0).balance(), Amount(699));
    assert_eq!(net.wallet(1).balance(), Amount(1_100));
    assert_eq!(net.wallet(2).balance(), Amount(1_200));
    assert!(net.wallet(0).pay_all(0, &[], Amount(0)).is_err());
    assert!(
        net.wallet(0)
            .pay_all(0, &[(a, Amount(0))], Amount(0))
            .is_err()
    );
}
