//! Every way an order, certificate or piece of evidence can be bad is refused with a typed
//! `LedgerError`, and nothing is locked by a refused order.

use meshwork::proto::identity::Signature;
use meshwork::proto::ledger::{
    Amount, Authority, Certificate, Epoch, EquivocationProof, Evidence, Input, LedgerError,
    LedgerMsg, LedgerStore, Output, OutputId, SignedOrder, Verdict, Vote,
};

use super::{Fixture, id};

#[test]
fn valid_order_gets_a_vote_and_replay_gets_the_same_vote() {
    let mut f = Fixture::new(4, 4);
    let order = f.pay(0, 1, 100, 1);
    let a = f.vals[0].handle_order(&order, &[]).expect("vote");
    let b = f.vals[0]
        .handle_order(&order, &[])
        .expect("idempotent re-sign");
    assert_eq!(a, b);
    a.verify(&order.order.digest()).expect("vote verifies");
}

#[test]
fn conflicting_order_is_refused() {
    let mut f = Fixture::new(4, 4);
    let first = f.pay(0, 1, 100, 1);
    let second = f.pay(0, 2, 100, 2);
    f.vals[0].handle_order(&first, &[]).expect("vote");
    let err = f.vals[0].handle_order(&second, &[]).expect_err("conflict");
    assert_eq!(
        err,
        LedgerError::Conflicting {
            input: f.input(0).id,
            locked_by: first.order.digest()
        }
    );
    // Inside one batch too: the first wins, the second is refused.
    let mut g = Fixture::new(4, 4);
    let r = g.vals[1].handle_orders(&[(&first, &[]), (&second, &[])]);
    assert!(r[0].is_ok());
    assert!(matches!(r[1], Err(LedgerError::Conflicting { .. })));
}

#[test]
fn bad_signature_and_wrong_signers_are_refused() {
    let mut f = Fixture::new(4, 4);
    let mut order = f.pay(0, 1, 100, 1);
    if let Authority::Owners(sigs) = &mut order.authority {
        sigs[0].signature = Signature([7; 64]);
    }
    assert_eq!(
        f.vals[0].handle_order(&order, &[]),
        Err(LedgerError::BadSignature)
    );
    // Signed by someone else than the owner.
    let other = f
        .order(f.input(0), f.users[1].public_key(), 100, 1, 1)
        .signed_by(&[&f.users[1]]);
    assert_eq!(
        f.vals[0].handle_order(&other, &[]),
        Err(LedgerError::WrongSigners)
    );
    // A refused order locked nothing: the honest order still gets a vote.
    let honest = f.pay(0, 1, 100, 9);
    f.vals[0].handle_order(&honest, &[]).expect("vote");
}

#[test]
fn bad_signature_in_a_batch_only_fails_its_own_order() {
    let mut f = Fixture::new(4, 4);
    let good = f.pay(0, 1, 100, 1);
    let mut bad = f.pay(1, 2, 100, 1);
    if let Authority::Owners(sigs) = &mut bad.authority {
        sigs[0].signature.0[10] ^= 1;
    }
    let r = f.vals[0].handle_orders(&[(&good, &[]), (&bad, &[])]);
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(LedgerError::BadSignature));
}

#[test]
fn overspend_and_overflow_are_refused() {
    let mut f = Fixture::new(4, 4);
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.outputs[0].amount = Amount(5_000);
    let signed = o.signed_by(&[&f.users[0]]);
    assert!(matches!(
        f.vals[0].handle_order(&signed, &[]),
        Err(LedgerError::Overspend { .. })
    ));
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.outputs[0].amount = Amount(u64::MAX);
    let signed = o.signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&signed, &[]),
        Err(LedgerError::Overflow)
    );
    // Underspend (value would vanish without being a declared fee) is refused too.
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.outputs.pop();
    let signed = o.signed_by(&[&f.users[0]]);
    assert!(matches!(
        f.vals[0].handle_order(&signed, &[]),
        Err(LedgerError::Overspend { .. })
    ));
}

#[test]
fn replay_from_another_epoch_is_refused() {
    let mut f = Fixture::new(4, 4);
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.epoch = Epoch(3);
    let signed = o.signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&signed, &[]),
        Err(LedgerError::WrongEpoch {
            order: 3,
            current: 0
        })
    );
}

#[test]
fn unknown_output_and_false_claims_are_refused() {
    let mut f = Fixture::new(4, 4);
    let fake = Input {
        id: OutputId([9; 32]),
        output: Output::plain(f.users[0].public_key(), Amount(1_000)),
    };
    let signed = f
        .order(fake.clone(), f.users[1].public_key(), 100, 1, 1)
        .signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&signed, &[]),
        Err(LedgerError::UnknownOutput(fake.id))
    );
    let mut inflated = f.input(0);
    inflated.output.amount = Amount(1_000_000);
    let signed = f
        .order(inflated, f.users[1].public_key(), 100, 1, 1)
        .signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&signed, &[]),
        Err(LedgerError::InputMismatch(f.input(0).id))
    );
}

#[test]
fn malformed_orders_are_refused() {
    let mut f = Fixture::new(4, 4);
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.inputs.clear();
    let s = o.signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&s, &[]),
        Err(LedgerError::Malformed("no inputs"))
    );
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.inputs.push(o.inputs[0].clone());
    let s = o.signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&s, &[]),
        Err(LedgerError::Malformed("duplicate input"))
    );
    let mut o = f.order(f.input(0), f.users[1].public_key(), 100, 1, 1);
    o.outputs = vec![o.outputs[0].clone(); 17];
    let s = o.signed_by(&[&f.users[0]]);
    assert_eq!(
        f.vals[0].handle_order(&s, &[]),
        Err(LedgerError::Malformed("too many outputs"))
    );
    // Garbage bytes are a decode error, not a panic.
    assert!(matches!(
        LedgerMsg::decode(&[0xff, 0x13, 0x37]),
        Err(LedgerError::Decode(_))
    ));
    let msg = LedgerMsg::Order {
        order: f.pay(0, 1, 100, 1),
        proofs: vec![],
    };
    let mut bytes = msg.encode().expect("encode");
    assert_eq!(LedgerMsg::decode(&bytes).expect("round trip"), msg);
    bytes.push(0);
    assert!(matches!(
        LedgerMsg::decode(&bytes),
        Err(LedgerError::Decode(_))
    ));
}

#[test]
fn validator_outside_the_shard_is_not_responsible() {
    // 8 validators, shards of 2: most validators are not responsible for a given output.
    let mut f = Fixture::new(8, 2);
    let order = f.pay(0, 1, 100, 1);
    let outcomes: Vec<_> = f
        .vals
        .iter_mut()
        .map(|v| v.handle_order(&order, &[]))
        .collect();
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(
        outcomes
            .iter()
            .filter(|r| r.is_err())
            .all(|r| *r == Err(LedgerError::NotResponsible))
    );
}

#[test]
fn forged_certificates_are_refused() {
    let mut f = Fixture::new(4, 4);
    let order = f.pay(0, 1, 100, 1);
    let cert = f.certify(&order);
    assert_eq!(cert.votes.len(), 4);
    let committee = f.genesis.committee.clone();
    cert.verify(&committee).expect("real certificate");
    // Two of four is not > 2/3.
    let short = Certificate {
        order: cert.order.clone(),
        votes: cert.votes[..2].to_vec(),
    };
    assert!(matches!(
        short.verify(&committee),
        Err(LedgerError::ForgedCertificate(_))
    ));
    // Three of four, but one duplicated to look like four.
    let dup = Certificate {
        order: cert.order.clone(),
        votes: vec![
            cert.votes[0].clone(),
            cert.votes[0].clone(),
            cert.votes[1].clone(),
        ],
    };
    assert_eq!(
        dup.verify(&committee),
        Err(LedgerError::ForgedCertificate("duplicate voter"))
    );
    // A vote by a stranger.
    let stranger = id(9, 0);
    let mut odd = cert.clone();
    odd.votes[0] = Vote::sign(&stranger, &order.order.digest());
    assert_eq!(
        odd.verify(&committee),
        Err(LedgerError::ForgedCertificate("voter not in committee"))
    );
    // A vote whose signature is over another order.
    let mut bad = cert.clone();
    bad.votes[3] = Vote::sign(&f.validators[3], &f.pay(0, 2, 5, 5).order.digest());
    assert_eq!(
        bad.verify(&committee),
        Err(LedgerError::ForgedCertificate("bad vote signature"))
    );
    // A different order under honest votes.
    let mut swapped = cert.clone();
    swapped.order.outputs[0].amount = Amount(101);
    swapped.order.outputs[1].amount = Amount(898);
    assert!(swapped.verify(&committee).is_err());
    // A validator offered a forged certificate as proof of creation refuses it.
    let payee_order = f
        .order(
            Input {
                id: cert
                    .order
                    .created(&cert.order.digest())
                    .next()
                    .expect("out")
                    .0,
                output: cert.order.outputs[0].clone(),
            },
            f.users[2].public_key(),
            50,
            0,
            1,
        )
        .signed_by(&[&f.users[1]]);
    let mut g = Fixture::new(4, 4);
    assert_eq!(
        g.vals[0].handle_order(&payee_order, &[short]),
        Err(LedgerError::ForgedCertificate("no quorum for an input"))
    );
    g.vals[0]
        .handle_order(&payee_order, &[cert])
        .expect("real proof of creation accepted");
}

#[test]
fn failing_store_means_no_vote_and_no_lock() {
    let mut f = Fixture::new(4, 4);
    let order = f.pay(0, 1, 100, 1);
    f.vals[0].store_mut().fail_writes = true;
    assert!(matches!(
        f.vals[0].handle_order(&order, &[]),
        Err(LedgerError::Store(_))
    ));
    assert_eq!(
        f.vals[0].store().output(&f.input(0).id).expect("read").lock,
        None
    );
    f.vals[0].store_mut().fail_writes = false;
    f.vals[0]
        .handle_order(&order, &[])
        .expect("vote once the store works");
}

#[test]
fn restarted_validator_keeps_its_locks() {
    let mut f = Fixture::new(4, 4);
    let first = f.pay(0, 1, 100, 1);
    f.vals[0].handle_order(&first, &[]).expect("vote");
    let store = f.vals[0].store().clone();
    let mut restarted =
        meshwork::proto::ledger::Validator::new(f.validators[0].clone(), &f.genesis, store)
            .expect("reopen");
    assert!(matches!(
        restarted.handle_order(&f.pay(0, 2, 100, 2), &[]),
        Err(LedgerError::Conflicting { .. })
    ));
    restarted
        .handle_order(&first, &[])
        .expect("same order again");
}

#[test]
fn bonds_are_locked_until_expiry_and_forfeit_needs_real_evidence() {
    let mut f = Fixture::new(4, 4);
    let bond = f.bond(0);
    // The owner cannot release it in its expiry epoch.
    let release = f
        .order(bond.clone(), f.validators[0].public_key(), 9_000, 0, 1)
        .signed_by(&[&f.validators[0]]);
    assert_eq!(
        f.vals[1].handle_order(&release, &[]),
        Err(LedgerError::BondLocked(bond.id))
    );
    // Equivocation by validator 0: two votes for conflicting orders.
    let a = f.pay(2, 0, 10, 1).order;
    let b = f.pay(2, 1, 10, 2).order;
    let proof = EquivocationProof {
        validator: f.validators[0].public_key(),
        first_vote: Vote::sign(&f.validators[0], &a.digest()),
        second_vote: Vote::sign(&f.validators[0], &b.digest()),
        first: a.clone(),
        second: b.clone(),
    };
    proof.verify().expect("a real proof");
    // Against the wrong bond.
    let wrong = SignedOrder::forfeit(
        Epoch(0),
        f.bond(1),
        Evidence::Equivocation(Box::new(proof.clone())),
    )
    .expect("order");
    assert_eq!(
        f.vals[2].handle_order(&wrong, &[]),
        Err(LedgerError::BadEvidence("proof is against another key"))
    );
    // Not an equivocation: the same order twice.
    let mut same = proof.clone();
    same.second = same.first.clone();
    same.second_vote = same.first_vote.clone();
    assert_eq!(
        same.verify(),
        Err(LedgerError::BadEvidence("the two orders are the same"))
    );
    // Forged signature.
    let mut forged = proof.clone();
    forged.second_vote.signature = Signature([1; 64]);
    assert_eq!(forged.verify(), Err(LedgerError::BadSignature));
    // Forfeit with outputs other than the terms say.
    let mut greedy = SignedOrder::forfeit(
        Epoch(0),
        bond.clone(),
        Evidence::Equivocation(Box::new(proof.clone())),
    )
    .expect("order");
    greedy.order.outputs[0].amount = Amount(10_000);
    greedy.order.outputs.pop();
    greedy.order.fee = Amount(0);
    assert_eq!(
        f.vals[2].handle_order(&greedy, &[]),
        Err(LedgerError::BadEvidence(
            "outputs differ from the bond's terms"
        ))
    );
    // The real forfeit is certified: value goes to the beneficiaries.
    let forfeit = SignedOrder::forfeit(Epoch(0), bond, Evidence::Equivocation(Box::new(proof)))
        .expect("order");
    let cert = f.certify(&forfeit);
    cert.verify(&f.genesis.committee)
        .expect("forfeit certified");
    assert_eq!(cert.order.outputs.len(), 2);
    assert!(cert.order.outputs.iter().all(|o| o.amount == Amount(5_000)));
}

#[test]
fn verdicts_need_a_referee_quorum() {
    let mut f = Fixture::new(4, 4);
    let bond = f.bond(1);
    let case = [5; 32];
    let one = Verdict {
        bond: bond.id,
        case,
        beneficiaries: Vec::new(),
        signatures: vec![Verdict::sign(&f.users[2], &bond.id, &case)],
    };
    let order = SignedOrder::forfeit(Epoch(0), bond.clone(), Evidence::Verdict(one)).expect("o");
    assert_eq!(
        f.vals[0].handle_order(&order, &[]),
        Err(LedgerError::BadEvidence("too few referee signatures"))
    );
    let outsider = Verdict {
        bond: bond.id,
        case,
        beneficiaries: Vec::new(),
        signatures: vec![
            Verdict::sign(&f.users[2], &bond.id, &case),
            Verdict::sign(&f.users[0], &bond.id, &case),
        ],
    };
    let order =
        SignedOrder::forfeit(Epoch(0), bond.clone(), Evidence::Verdict(outsider)).expect("o");
    assert_eq!(
        f.vals[0].handle_order(&order, &[]),
        Err(LedgerError::BadEvidence("unlisted or duplicate referee"))
    );
    let full = Verdict {
        bond: bond.id,
        case,
        beneficiaries: Vec::new(),
        signatures: vec![
            Verdict::sign(&f.users[2], &bond.id, &case),
            Verdict::sign(&f.users[3], &bond.id, &case),
        ],
    };
    let order = SignedOrder::forfeit(Epoch(0), bond, Evidence::Verdict(full)).expect("o");
    f.vals[0]
        .handle_order(&order, &[])
        .expect("verdict forfeits");
}

#[test]
fn batched_votes_verify_only_for_their_own_order() {
    let mut f = Fixture::new(4, 4);
    let orders: Vec<_> = (0..4).map(|u| f.pay(u, (u + 1) % 4, 10, 1)).collect();
    let items: Vec<_> = orders.iter().map(|o| (o, &[][..])).collect();
    let votes: Vec<Vote> = f.vals[0]
        .handle_orders(&items)
        .into_iter()
        .map(|r| r.expect("vote"))
        .collect();
    // One signature covers the batch; each vote verifies for its own order only.
    assert!(votes.iter().all(|v| v.signature == votes[0].signature));
    for (v, o) in votes.iter().zip(&orders) {
        v.verify(&o.order.digest()).expect("own order");
    }
    assert_eq!(
        votes[0].verify(&orders[1].order.digest()),
        Err(LedgerError::BadSignature)
    );
    let mut cut = votes[2].clone();
    cut.batch.path.pop();
    assert_eq!(
        cut.verify(&orders[2].order.digest()),
        Err(LedgerError::Malformed("vote path too short"))
    );
    let mut moved = votes[2].clone();
    moved.batch.index = 9;
    assert_eq!(
        moved.verify(&orders[2].order.digest()),
        Err(LedgerError::Malformed("vote batch position"))
    );
    // Batched votes make certificates like any others.
    let mut votes_b: Vec<Vote> = Vec::new();
    for v in &mut f.vals[1..] {
        votes_b.push(v.handle_orders(&items).remove(3).expect("vote"));
    }
    votes_b.push(votes[3].clone());
    let cert = Certificate {
        order: orders[3].order.clone(),
        votes: votes_b,
    };
    cert.verify(&f.genesis.committee)
        .expect("certificate of batched votes");
}
