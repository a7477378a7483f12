//! Lottery tickets: signing, the win rule and its statistics, redemption from an escrow (and
//! every way a redemption can be wrong, refused with its typed error and no lock taken),
//! redemptions in sequence through the escrow's change, verdict-named beneficiaries, offline
//! output proofs, and the wallet's escrow and redemption flow.

use meshwork::proto::identity::{Domain, Signature};
use meshwork::proto::ledger::ticket::{commit, draw};
use meshwork::proto::ledger::{
    Amount, Authority, BondTerms, Certificate, CertifiedReconfiguration, Epoch, Evidence, Input,
    LedgerError, LedgerMsg, LedgerStore, LotteryTerms, Output, OutputId, OutputProof, REDEEMED_MAX,
    SignedOrder, SignedTicket, Ticket, TicketId, TransferOrder, Verdict, WalletEvent,
    WinningTicket, win_threshold_for,
};

use super::Fixture;
use super::flows::Net;

const ROOT: [u8; 32] = [0xe5; 32];

/// User `u` turns its genesis coin of 1,000 into an output of `amount` under `terms` (plus
/// change, fee 1), certified by all four validators: the new output as an input, and its
/// creation certificate.
fn open(f: &mut Fixture, u: usize, amount: u64, terms: BondTerms) -> (Input, Certificate) {
    let owner = f.users[u].public_key();
    let mut outputs = vec![Output {
        owner,
        amount: Amount(amount),
        bond: Some(terms),
    }];
    if amount < 999 {
        outputs.push(Output::plain(owner, Amount(999 - amount)));
    }
    let order = TransferOrder {
        epoch: Epoch(0),
        nonce: 77,
        inputs: vec![f.input(u)],
        outputs,
        fee: Amount(1),
    }
    .signed_by(&[&f.users[u]]);
    let cert = f.certify(&order);
    assert_eq!(cert.votes.len(), 4, "every validator voted");
    let (id, output) = OutputProof::new(cert.clone(), 0)
        .verify(&f.genesis.committee)
        .expect("a real certificate");
    (Input { id, output }, cert)
}

/// User 0's escrow of 600 for lineage `ROOT`, locked through epoch 5.
fn escrow(f: &mut Fixture) -> (Input, Certificate) {
    open(f, 0, 600, BondTerms::escrow(Epoch(5), ROOT))
}

fn secret(n: u8) -> [u8; 32] {
    [n; 32]
}

/// A ticket from user `payer` to user `payee` on `ROOT`, committed to `secret(n)`.
fn ticket(f: &Fixture, payer: usize, payee: usize, face: u64, threshold: u64, n: u8) -> Ticket {
    Ticket {
        escrow_root: ROOT,
        payer: f.users[payer].public_key(),
        payee: f.users[payee].public_key(),
        face: Amount(face),
        win_threshold: threshold,
        payee_commit: commit(&secret(n)),
        payer_rand: [n.wrapping_mul(3); 32],
        expiry: Epoch(4),
    }
}

/// A ticket of `face` from user 0 to user `payee` that wins (threshold `u64::MAX`), with its
/// reveal.
fn winning(f: &Fixture, payee: usize, face: u64, n: u8) -> WinningTicket {
    WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], ticket(f, 0, payee, face, u64::MAX, n)),
        reveal: secret(n),
    }
}

/// Votes from all four validators (the order's input proven by `proofs`), as a certificate.
fn certify(f: &mut Fixture, order: &SignedOrder, proofs: &[Certificate]) -> Certificate {
    let votes: Vec<_> = f
        .vals
        .iter_mut()
        .map(|v| v.handle_order(order, proofs).expect("vote"))
        .collect();
    Certificate {
        order: order.order.clone(),
        votes,
    }
}

/// A redemption order built by hand (the builder refuses what these tests need to send).
fn raw(escrow: &Input, winning: WinningTicket, fee: u64, outputs: Vec<Output>) -> SignedOrder {
    SignedOrder {
        order: TransferOrder {
            epoch: Epoch(0),
            nonce: 0,
            inputs: vec![escrow.clone()],
            outputs,
            fee: Amount(fee),
        },
        authority: Authority::Redeem(Box::new(winning)),
    }
}

/// The outputs a redemption of `t` from `escrow` would have if the ticket were good.
fn would_pay(escrow: &Input, t: &Ticket, fee: u64) -> Vec<Output> {
    let paid = t.face.0.min(escrow.output.amount.0);
    let mut out = Vec::new();
    if paid > fee {
        out.push(Output::plain(t.payee, Amount(paid - fee)));
    }
    let change = escrow.output.amount.0 - paid;
    if change > 0 {
        let mut o = escrow.output.clone();
        o.amount = Amount(change);
        let terms = o.bond.as_mut().expect("bond");
        if let Some(l) = terms.lottery.as_mut()
            && !l.redeemed.contains(&t.id())
        {
            l.redeemed.push(t.id());
        }
        out.push(o);
    }
    out
}

/// Validator 0 refuses `order` with `err`, and `escrow` stays unlocked and unspent.
fn refused(f: &mut Fixture, order: &SignedOrder, proofs: &[Certificate], err: LedgerError) {
    assert_eq!(f.vals[0].handle_order(order, proofs), Err(err));
    for id in order.order.inputs.iter().map(|i| i.id) {
        let state = f.vals[0].store().output(&id).expect("memory store");
        assert_eq!(state.lock, None, "a refused redemption locked its input");
        assert_eq!(state.spent, None);
    }
}

#[test]
fn tickets_are_signed_by_their_payer_and_verified() {
    let f = Fixture::new(4, 4);
    let t = ticket(&f, 0, 1, 1_000, 7, 1);
    assert_eq!(t.encode().len(), 184);
    let signed = SignedTicket::sign(&f.users[0], t.clone());
    signed.verify().expect("valid");
    // Every field is covered by the id, hence by the signature.
    let mut changed = Vec::new();
    for i in 0..8 {
        let mut u = t.clone();
        match i {
            0 => u.escrow_root[0] ^= 1,
            1 => u.payer = f.users[2].public_key(),
            2 => u.payee = f.users[2].public_key(),
            3 => u.face = Amount(1_001),
            4 => u.win_threshold = 8,
            5 => u.payee_commit[0] ^= 1,
            6 => u.payer_rand[0] ^= 1,
            _ => u.expiry = Epoch(5),
        }
        assert_ne!(u.id(), t.id(), "field {i} is not in the id");
        let forged = SignedTicket {
            ticket: u,
            signature: signed.signature,
        };
        assert_eq!(forged.verify(), Err(LedgerError::BadSignature));
        changed.push(i);
    }
    assert_eq!(changed.len(), 8);
    // Someone else's signature, or another domain's, is not the payer's.
    let by_other = SignedTicket {
        ticket: t.clone(),
        signature: f.users[1].sign(Domain::LedgerTicket, &t.id().0),
    };
    assert_eq!(by_other.verify(), Err(LedgerError::BadSignature));
    let other_domain = SignedTicket {
        ticket: t.clone(),
        signature: f.users[0].sign(Domain::LedgerOrder, &t.id().0),
    };
    assert_eq!(other_domain.verify(), Err(LedgerError::BadSignature));
    let zero = SignedTicket::sign(
        &f.users[0],
        Ticket {
            face: Amount::ZERO,
            ..t
        },
    );
    assert_eq!(
        zero.verify(),
        Err(LedgerError::BadTicket("zero face value"))
    );
}

#[test]
fn win_threshold_prices_the_ticket_and_the_draw_is_fair() {
    // face × P(win) = fee, rounding down by less than one 2^64th of the face.
    for (fee, face) in [
        (10u64, 1_000u64),
        (1, 3),
        (7, 7),
        (1, u64::MAX),
        (999, 1_000),
    ] {
        let t = win_threshold_for(Amount(fee), Amount(face)).expect("valid");
        let exact = u128::from(fee) << 64;
        let priced = u128::from(t) * u128::from(face);
        if fee == face {
            assert_eq!(t, u64::MAX);
        } else {
            assert!(
                priced <= exact && exact - priced < u128::from(face),
                "{fee}/{face}"
            );
        }
    }
    assert_eq!(
        win_threshold_for(Amount(11), Amount(10)),
        Err(LedgerError::BadTicket("fee above face value"))
    );
    assert_eq!(
        win_threshold_for(Amount(0), Amount(0)),
        Err(LedgerError::BadTicket("zero face value"))
    );
    assert_eq!(win_threshold_for(Amount(0), Amount(10)), Ok(0));

    // 100,000 reveals at P = 1/100: the win count stays within 5 standard deviations (±157) of
    // 1,000. The reveals are a fixed sequence, so the count is the same on every run.
    let f = Fixture::new(1, 1);
    let threshold = win_threshold_for(Amount(10), Amount(1_000)).expect("valid");
    let t = ticket(&f, 0, 1, 1_000, threshold, 1);
    let id = t.id();
    let n = 100_000u32;
    let wins = (0..n)
        .filter(|i| {
            let mut reveal = [0x42; 32];
            reveal[..4].copy_from_slice(&i.to_le_bytes());
            draw(&id, &reveal) < threshold
        })
        .count();
    println!("win rule: {wins} wins of {n} at P = 1/100 (expected 1,000 ± 31)");
    assert!((843..=1_157).contains(&wins), "{wins} wins of {n}");

    // `wins` also needs the reveal to open the payee's commitment.
    let sure = ticket(&f, 0, 1, 1_000, u64::MAX, 1);
    assert!(sure.wins(&sure.id(), &secret(1)));
    assert!(!sure.wins(&sure.id(), &secret(2)));
    let never = ticket(&f, 0, 1, 1_000, 0, 1);
    assert!(!never.wins(&never.id(), &secret(1)));
}

#[test]
fn a_winning_ticket_redeems_and_pays() {
    let mut f = Fixture::new(4, 4);
    let (escrow, proof) = escrow(&mut f);
    // A realistic ticket: P(win) = 1/100, the payer draws `payer_rand` until one wins for the
    // payee's secret (in tests only: a payer has no reason to help).
    let threshold = win_threshold_for(Amount(10), Amount(250)).expect("valid");
    let mut t = ticket(&f, 0, 1, 250, threshold, 9);
    let mut tries = 0u32;
    while !t.wins(&t.id(), &secret(9)) {
        tries += 1;
        t.payer_rand[..4].copy_from_slice(&tries.to_le_bytes());
        assert!(tries < 10_000, "no winning draw found");
    }
    let id = t.id();
    let win = WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], t),
        reveal: secret(9),
    };
    let order = SignedOrder::redeem(Epoch(0), escrow.clone(), win, Amount(0)).expect("builds");
    assert_eq!(order.order.nonce, 0);
    let cert = certify(&mut f, &order, std::slice::from_ref(&proof));
    let digest = cert.verify(&f.genesis.committee).expect("certified");
    // The payee gets the face; the escrow's change keeps its terms plus the ticket id.
    let out = &cert.order.outputs;
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], Output::plain(f.users[1].public_key(), Amount(250)));
    assert_eq!(out[1].owner, f.users[0].public_key());
    assert_eq!(out[1].amount, Amount(350));
    let terms = out[1].bond.as_ref().expect("still a bond");
    assert_eq!(terms.expiry, Epoch(5));
    assert_eq!(
        terms.lottery,
        Some(LotteryTerms {
            root: ROOT,
            redeemed: vec![id]
        })
    );
    // Value conserved: 600 = 250 + 350.
    assert_eq!(250 + 350, escrow.output.amount.0);
    for v in &mut f.vals {
        v.handle_certificate(&cert).expect("accepted");
        let state = v.store().output(&escrow.id).expect("read");
        assert_eq!(state.spent, Some(digest));
    }
    // The payee's output is spendable like any coin, with the redemption as its proof.
    let payee_coin = OutputProof::new(cert.clone(), 0).input().expect("output 0");
    let spend = TransferOrder {
        epoch: Epoch(0),
        nonce: 1,
        inputs: vec![payee_coin],
        outputs: vec![Output::plain(f.users[2].public_key(), Amount(250))],
        fee: Amount::ZERO,
    }
    .signed_by(&[&f.users[1]]);
    certify(&mut f, &spend, &[cert]);
}

#[test]
fn bad_redemptions_are_refused_with_typed_errors_and_lock_nothing() {
    let mut f = Fixture::new(4, 4);
    let (escrow, proof) = escrow(&mut f);
    let proofs = std::slice::from_ref(&proof);

    // A losing ticket.
    let lose = WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], ticket(&f, 0, 1, 100, 0, 1)),
        reveal: secret(1),
    };
    assert_eq!(
        SignedOrder::redeem(Epoch(0), escrow.clone(), lose.clone(), Amount(0)),
        Err(LedgerError::TicketLost)
    );
    let o = raw(
        &escrow,
        lose.clone(),
        0,
        would_pay(&escrow, &lose.ticket.ticket, 0),
    );
    refused(&mut f, &o, proofs, LedgerError::TicketLost);

    // A reveal that does not open the commitment (even on a ticket that always wins).
    let mut wrong = winning(&f, 1, 100, 2);
    wrong.reveal = secret(3);
    let o = raw(
        &escrow,
        wrong.clone(),
        0,
        would_pay(&escrow, &wrong.ticket.ticket, 0),
    );
    refused(&mut f, &o, proofs, LedgerError::WrongReveal);

    // A forged payer signature (user 1 signs a ticket naming user 0 as payer).
    let t = ticket(&f, 0, 1, 100, u64::MAX, 4);
    let forged = WinningTicket {
        ticket: SignedTicket {
            signature: f.users[1].sign(Domain::LedgerTicket, &t.id().0),
            ticket: t.clone(),
        },
        reveal: secret(4),
    };
    let o = raw(&escrow, forged.clone(), 0, would_pay(&escrow, &t, 0));
    refused(&mut f, &o, proofs, LedgerError::BadSignature);
    let mut garbage = forged;
    garbage.ticket.signature = Signature([0xff; 64]);
    let o = raw(&escrow, garbage, 0, would_pay(&escrow, &t, 0));
    refused(&mut f, &o, proofs, LedgerError::BadSignature);

    // A ticket drawn on another escrow lineage.
    let mut t = ticket(&f, 0, 1, 100, u64::MAX, 5);
    t.escrow_root = [0x99; 32];
    let other_root = WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], t.clone()),
        reveal: secret(5),
    };
    let o = raw(&escrow, other_root, 0, would_pay(&escrow, &t, 0));
    refused(&mut f, &o, proofs, LedgerError::TicketForAnotherEscrow);

    // A ticket that outlives the escrow (the owner could take the escrow back first).
    let mut t = ticket(&f, 0, 1, 100, u64::MAX, 6);
    t.expiry = Epoch(6);
    let long = WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], t.clone()),
        reveal: secret(6),
    };
    let o = raw(&escrow, long, 0, would_pay(&escrow, &t, 0));
    refused(
        &mut f,
        &o,
        proofs,
        LedgerError::TicketOutlivesEscrow {
            ticket: 6,
            escrow: 5,
        },
    );

    // A ticket whose payer does not own the escrow (user 1 pays from user 0's escrow).
    let t = ticket(&f, 1, 2, 100, u64::MAX, 7);
    let not_theirs = WinningTicket {
        ticket: SignedTicket::sign(&f.users[1], t.clone()),
        reveal: secret(7),
    };
    let o = raw(&escrow, not_theirs, 0, would_pay(&escrow, &t, 0));
    refused(&mut f, &o, proofs, LedgerError::EscrowNotPayers);

    // Not an escrow at all: user 0's plain change output.
    let plain = OutputProof::new(proof.clone(), 1).input().expect("change");
    let w = winning(&f, 1, 100, 8);
    let o = raw(
        &plain,
        w.clone(),
        0,
        vec![
            Output::plain(w.ticket.ticket.payee, Amount(100)),
            Output::plain(f.users[0].public_key(), Amount(299)),
        ],
    );
    refused(&mut f, &o, proofs, LedgerError::NotAnEscrow(plain.id));

    // Wrong outputs: paid to someone else, or a change that forgets the ticket.
    let w = winning(&f, 1, 100, 10);
    let mut outputs = would_pay(&escrow, &w.ticket.ticket, 0);
    outputs[0].owner = f.users[3].public_key();
    let o = raw(&escrow, w.clone(), 0, outputs);
    refused(
        &mut f,
        &o,
        proofs,
        LedgerError::BadRedemption("outputs differ from the ticket's"),
    );
    let mut outputs = would_pay(&escrow, &w.ticket.ticket, 0);
    outputs[1] = Output {
        amount: Amount(500),
        ..escrow.output.clone()
    };
    let o = raw(&escrow, w.clone(), 0, outputs);
    refused(
        &mut f,
        &o,
        proofs,
        LedgerError::BadRedemption("outputs differ from the ticket's"),
    );
    // A nonce other than 0 (the only free choice of a redemption is its fee).
    let mut o = raw(
        &escrow,
        w.clone(),
        0,
        would_pay(&escrow, &w.ticket.ticket, 0),
    );
    o.order.nonce = 1;
    refused(
        &mut f,
        &o,
        proofs,
        LedgerError::BadRedemption("a redemption has nonce 0"),
    );

    // Any fee: a redemption burns none, so no copy of it can differ.
    assert_eq!(
        SignedOrder::redeem(Epoch(0), escrow.clone(), w.clone(), Amount(1)),
        Err(LedgerError::RedeemFee { fee: 1 })
    );
    let o = raw(
        &escrow,
        w.clone(),
        101,
        vec![Output {
            amount: Amount(499),
            ..would_pay(&escrow, &w.ticket.ticket, 0)[1].clone()
        }],
    );
    refused(&mut f, &o, proofs, LedgerError::RedeemFee { fee: 101 });

    // The owner cannot spend the escrow before its expiry: it stays for tickets.
    let grab = TransferOrder {
        epoch: Epoch(0),
        nonce: 1,
        inputs: vec![escrow.clone()],
        outputs: vec![Output::plain(f.users[0].public_key(), Amount(600))],
        fee: Amount::ZERO,
    }
    .signed_by(&[&f.users[0]]);
    refused(&mut f, &grab, proofs, LedgerError::BondLocked(escrow.id));

    // Nothing above locked the escrow: an honest redemption still gets every vote.
    let good = SignedOrder::redeem(Epoch(0), escrow, w, Amount(0)).expect("builds");
    certify(&mut f, &good, proofs);
}

#[test]
fn a_ticket_pays_once_and_a_full_escrow_pays_no_more() {
    let mut f = Fixture::new(4, 4);
    let (escrow, proof) = escrow(&mut f);
    let first = winning(&f, 1, 100, 1);
    let second = winning(&f, 2, 150, 2);
    let a = SignedOrder::redeem(Epoch(0), escrow.clone(), first.clone(), Amount(0)).expect("a");
    let cert_a = certify(&mut f, &a, std::slice::from_ref(&proof));
    // A second ticket racing the first on the same escrow output conflicts like any order.
    let racing =
        SignedOrder::redeem(Epoch(0), escrow.clone(), second.clone(), Amount(0)).expect("builds");
    assert_eq!(
        f.vals[0].handle_order(&racing, std::slice::from_ref(&proof)),
        Err(LedgerError::Conflicting {
            input: escrow.id,
            locked_by: a.order.digest()
        })
    );
    // The first ticket again, against the change: already redeemed.
    let change = OutputProof::new(cert_a.clone(), 1)
        .input()
        .expect("change output");
    assert_eq!(change.output.amount, Amount(500));
    assert_eq!(
        SignedOrder::redeem(Epoch(0), change.clone(), first.clone(), Amount(0)),
        Err(LedgerError::TicketRedeemed(first.ticket.id()))
    );
    let replay = raw(
        &change,
        first.clone(),
        0,
        would_pay(&change, &first.ticket.ticket, 0),
    );
    refused(
        &mut f,
        &replay,
        std::slice::from_ref(&cert_a),
        LedgerError::TicketRedeemed(first.ticket.id()),
    );
    // The second ticket, against the change: paid; the lineage now lists both.
    let b = SignedOrder::redeem(Epoch(0), change, second.clone(), Amount(0)).expect("b");
    let cert_b = certify(&mut f, &b, std::slice::from_ref(&cert_a));
    assert_eq!(
        cert_b.order.outputs[0],
        Output::plain(f.users[2].public_key(), Amount(150))
    );
    let last = OutputProof::new(cert_b, 1)
        .verify(&f.genesis.committee)
        .expect("real")
        .1;
    assert_eq!(last.amount, Amount(350));
    let lottery = last.bond.and_then(|t| t.lottery).expect("escrow");
    assert_eq!(
        lottery.redeemed,
        vec![first.ticket.id(), second.ticket.id()]
    );

    // A ticket worth more than the escrow pays the whole escrow and leaves no change.
    let mut g = Fixture::new(4, 4);
    let (small, proof) = open(&mut g, 0, 60, BondTerms::escrow(Epoch(5), ROOT));
    let big = winning(&g, 1, 1_000, 3);
    let o = SignedOrder::redeem(Epoch(0), small, big, Amount(0)).expect("builds");
    assert_eq!(
        o.order.outputs,
        vec![Output::plain(g.users[1].public_key(), Amount(60))]
    );
    certify(&mut g, &o, &[proof]);

    // An escrow whose `redeemed` list is full pays no more.
    let mut h = Fixture::new(4, 4);
    let full = LotteryTerms {
        root: ROOT,
        redeemed: (0..REDEEMED_MAX as u8).map(|i| TicketId([i; 32])).collect(),
    };
    let terms = BondTerms {
        lottery: Some(full),
        ..BondTerms::until(Epoch(5))
    };
    let (escrow, proof) = open(&mut h, 0, 600, terms);
    let w = winning(&h, 1, 100, 4);
    assert_eq!(
        SignedOrder::redeem(Epoch(0), escrow.clone(), w.clone(), Amount(0)),
        Err(LedgerError::EscrowFull)
    );
    let mut outputs = would_pay(&escrow, &w.ticket.ticket, 0);
    if let Some(l) = outputs[1].bond.as_mut().and_then(|t| t.lottery.as_mut()) {
        l.redeemed.remove(0);
    }
    let o = raw(&escrow, w, 0, outputs);
    refused(&mut h, &o, &[proof], LedgerError::EscrowFull);
    // And no escrow may be created with more than REDEEMED_MAX ids.
    let mut over = LotteryTerms::new(ROOT);
    over.redeemed = (0..=REDEEMED_MAX as u8)
        .map(|i| TicketId([i; 32]))
        .collect();
    assert_eq!(
        over.check_shape(),
        Err(LedgerError::Malformed("too many redeemed tickets"))
    );
}

/// Move every validator of `f` to epoch 1 (same members), handoffs absorbed.
fn next_epoch(f: &mut Fixture) {
    let committee = f.genesis.committee.clone();
    let members = committee
        .validators()
        .iter()
        .map(|v| (v.public, v.bond, v.bond_amount))
        .collect();
    let next = committee.next(members, &[]).expect("next committee");
    let cert = CertifiedReconfiguration {
        next: next.clone(),
        signatures: f
            .validators
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
    for v in &mut f.vals {
        for h in &handoffs {
            v.handle_handoff(h).expect("absorb");
        }
    }
}

#[test]
fn an_expired_ticket_is_refused() {
    let mut f = Fixture::new(4, 4);
    let (escrow, proof) = escrow(&mut f);
    let mut t = ticket(&f, 0, 1, 100, u64::MAX, 1);
    t.expiry = Epoch(0);
    let w = WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], t.clone()),
        reveal: secret(1),
    };
    // Valid in epoch 0…
    SignedOrder::redeem(Epoch(0), escrow.clone(), w.clone(), Amount(0)).expect("valid now");
    next_epoch(&mut f);
    // …not in epoch 1.
    let expired = LedgerError::TicketExpired {
        expiry: 0,
        epoch: 1,
    };
    assert_eq!(
        SignedOrder::redeem(Epoch(1), escrow.clone(), w.clone(), Amount(0)),
        Err(expired.clone())
    );
    let mut o = raw(&escrow, w, 0, would_pay(&escrow, &t, 0));
    o.order.epoch = Epoch(1);
    refused(&mut f, &o, std::slice::from_ref(&proof), expired);
    // A ticket still valid in epoch 1 redeems there.
    let mut t = ticket(&f, 0, 1, 100, u64::MAX, 2);
    t.expiry = Epoch(1);
    let w = WinningTicket {
        ticket: SignedTicket::sign(&f.users[0], t),
        reveal: secret(2),
    };
    let o = SignedOrder::redeem(Epoch(1), escrow, w, Amount(0)).expect("builds");
    certify(&mut f, &o, &[proof]);
}

#[test]
fn a_verdict_names_the_beneficiaries_of_a_bond_without_any() {
    let mut f = Fixture::new(4, 4);
    // User 2 posts a bond before knowing whom it may owe: no beneficiaries, users 1 and 3 referee.
    let terms = BondTerms {
        expiry: Epoch(5),
        beneficiaries: Vec::new(),
        referees: vec![f.users[1].public_key(), f.users[3].public_key()],
        referee_quorum: 2,
        lottery: None,
    };
    let (bond, proof) = open(&mut f, 2, 501, terms);
    let case = [7; 32];
    let to = vec![f.users[0].public_key(), f.users[3].public_key()];
    let verdict = Verdict {
        bond: bond.id,
        case,
        beneficiaries: to.clone(),
        signatures: vec![
            Verdict::sign_naming(&f.users[1], &bond.id, &case, &to),
            Verdict::sign_naming(&f.users[3], &bond.id, &case, &to),
        ],
    };
    // Beneficiaries changed after signing: the signatures no longer cover them.
    let mut swapped = verdict.clone();
    swapped.beneficiaries[1] = f.users[1].public_key();
    let o = SignedOrder::forfeit(Epoch(0), bond.clone(), Evidence::Verdict(swapped)).expect("o");
    refused(
        &mut f,
        &o,
        std::slice::from_ref(&proof),
        LedgerError::BadSignature,
    );
    // The same beneficiary twice (a double share) is refused.
    let twice = vec![f.users[0].public_key(), f.users[0].public_key()];
    let dup = Verdict {
        bond: bond.id,
        case,
        beneficiaries: twice.clone(),
        signatures: vec![
            Verdict::sign_naming(&f.users[1], &bond.id, &case, &twice),
            Verdict::sign_naming(&f.users[3], &bond.id, &case, &twice),
        ],
    };
    let o = SignedOrder::forfeit(Epoch(0), bond.clone(), Evidence::Verdict(dup)).expect("o");
    refused(
        &mut f,
        &o,
        std::slice::from_ref(&proof),
        LedgerError::Malformed("duplicate verdict beneficiary"),
    );
    // Outputs other than the verdict's split are refused.
    let mut o = SignedOrder::forfeit(Epoch(0), bond.clone(), Evidence::Verdict(verdict.clone()))
        .expect("o");
    assert_eq!(
        o.order.outputs,
        vec![
            Output::plain(f.users[0].public_key(), Amount(250)),
            Output::plain(f.users[3].public_key(), Amount(250)),
        ]
    );
    assert_eq!(o.order.fee, Amount(1), "the remainder is burned");
    let honest = o.clone();
    o.order.outputs[1].owner = f.users[2].public_key();
    refused(
        &mut f,
        &o,
        std::slice::from_ref(&proof),
        LedgerError::BadEvidence("outputs differ from the bond's terms"),
    );
    // The verdict forfeits the bond to the beneficiaries it names.
    let cert = certify(&mut f, &honest, &[proof]);
    cert.verify(&f.genesis.committee).expect("certified");

    // A bond whose terms name beneficiaries refuses a verdict that names any.
    let mut g = Fixture::new(4, 4);
    let vbond = g.bond(1);
    let to = vec![g.users[3].public_key()];
    let naming = Verdict {
        bond: vbond.id,
        case,
        beneficiaries: to.clone(),
        signatures: vec![
            Verdict::sign_naming(&g.users[2], &vbond.id, &case, &to),
            Verdict::sign_naming(&g.users[3], &vbond.id, &case, &to),
        ],
    };
    let mut o =
        SignedOrder::forfeit(Epoch(0), vbond.clone(), Evidence::Verdict(naming)).expect("o");
    // Built with the terms' beneficiaries (the terms decide), still refused for naming some.
    assert_eq!(o.order.outputs.len(), 2);
    refused(
        &mut g,
        &o,
        &[],
        LedgerError::BadEvidence("the bond's terms name its beneficiaries"),
    );
    o.order.outputs = vec![Output::plain(g.users[3].public_key(), Amount(10_000))];
    o.order.fee = Amount::ZERO;
    refused(
        &mut g,
        &o,
        &[],
        LedgerError::BadEvidence("outputs differ from the bond's terms"),
    );
}

#[test]
fn an_output_proof_accepts_a_real_output_and_rejects_forgeries() {
    let mut f = Fixture::new(4, 4);
    let (escrow, cert) = escrow(&mut f);
    let committee = f.genesis.committee.clone();
    let proof = OutputProof::new(cert.clone(), 0);
    assert_eq!(
        proof.verify(&committee),
        Ok((escrow.id, escrow.output.clone()))
    );
    let (id, change) = OutputProof::new(cert.clone(), 1)
        .verify(&committee)
        .expect("change");
    assert_eq!(change, Output::plain(f.users[0].public_key(), Amount(399)));
    assert_ne!(id, escrow.id);
    // A forged escrow: the amount inflated after certification (balanced by the change, or
    // not).
    let mut forged = proof.clone();
    forged.certificate.order.outputs[0].amount = Amount(998);
    forged.certificate.order.outputs[1].amount = Amount(1);
    assert_eq!(
        forged.verify(&committee),
        Err(LedgerError::ForgedCertificate("bad vote signature"))
    );
    forged.certificate.order.outputs[1].amount = Amount(60_000);
    assert!(matches!(
        forged.verify(&committee),
        Err(LedgerError::Overspend { .. })
    ));
    // Too few votes.
    let mut thin = proof.clone();
    thin.certificate.votes.truncate(2);
    assert_eq!(
        thin.verify(&committee),
        Err(LedgerError::ForgedCertificate("no quorum for an input"))
    );
    // Votes signed by someone else.
    let mut fake = proof.clone();
    for v in &mut fake.certificate.votes {
        v.signature = Signature([3; 64]);
    }
    assert_eq!(
        fake.verify(&committee),
        Err(LedgerError::ForgedCertificate("bad vote signature"))
    );
    // An index the order does not have.
    assert_eq!(
        OutputProof::new(cert, 2).verify(&committee),
        Err(LedgerError::Malformed("no output at this index"))
    );
    // It survives the wire.
    let bytes = meshwork::proto::wire::encode_body(&proof).expect("encode");
    let back: OutputProof = meshwork::proto::wire::decode(&bytes).expect("decode");
    assert_eq!(back, proof);
    let _: OutputId = back.verify(&committee).expect("still valid").0;
}

#[test]
fn wallets_open_an_escrow_and_redeem_tickets_from_it() {
    let mut net = Net::new(Fixture::new(4, 4));
    net.wallet(0)
        .open_escrow(0, Amount(500), Amount(1), Epoch(5), ROOT)
        .expect("open");
    net.run();
    assert_eq!(net.settled(), 1);
    assert_eq!(
        net.wallet(0).balance(),
        Amount(499),
        "the escrow is not spendable"
    );
    let (escrow_id, coin) = net
        .wallet(0)
        .escrow(&ROOT)
        .map(|(i, c)| (*i, c.clone()))
        .expect("tracked");
    assert_eq!(coin.output.amount, Amount(500));
    assert_eq!(net.wallet(0).escrows().count(), 1);
    // The payer hands the payee a proof of the escrow with its tickets.
    let proof = OutputProof::new(coin.proof.clone().expect("certified"), 0);
    let committee = net.f.genesis.committee.clone();
    let (id, _) = proof.verify(&committee).expect("real escrow");
    assert_eq!(id, escrow_id);

    let w = winning(&net.f, 1, 120, 1);
    let input = proof.input().expect("input");
    net.wallet(1)
        .redeem(0, w, input, Some(proof.certificate.clone()), Amount(0))
        .expect("redeem");
    net.run();
    assert_eq!(net.settled(), 2);
    assert_eq!(net.wallet(1).balance(), Amount(1_120));
    // The payer follows its escrow: the change replaced the spent output.
    let (change_id, change) = net
        .wallet(0)
        .escrow(&ROOT)
        .map(|(i, c)| (*i, c.clone()))
        .expect("change tracked");
    assert_ne!(change_id, escrow_id);
    assert_eq!(change.output.amount, Amount(380));
    assert!(net.events.iter().any(|(_, e)| matches!(
        e,
        WalletEvent::EscrowSpent { escrow, paid, .. } if *escrow == escrow_id && *paid == Amount(120)
    )));
    // A second ticket to another payee, drawn on the change, through the payer's new proof.
    let w = winning(&net.f, 2, 400, 2);
    let proof = OutputProof::new(change.proof.clone().expect("certified"), 1);
    let input = proof.input().expect("input");
    assert_eq!(input.id, change_id);
    net.wallet(2)
        .redeem(0, w, input, Some(proof.certificate), Amount(0))
        .expect("redeem");
    net.run();
    assert_eq!(net.settled(), 3);
    assert_eq!(
        net.wallet(2).balance(),
        Amount(1_380),
        "capped at the escrow"
    );
    assert!(
        net.wallet(0).escrow(&ROOT).is_none(),
        "drained: no change left"
    );
    assert!(net.events.iter().any(|(_, e)| matches!(
        e,
        WalletEvent::EscrowSpent { escrow, paid, .. } if *escrow == change_id && *paid == Amount(380)
    )));
    // A losing ticket is refused by the wallet before anything is sent.
    let lose = WinningTicket {
        ticket: SignedTicket::sign(&net.f.users[0], ticket(&net.f, 0, 3, 10, 0, 3)),
        reveal: secret(3),
    };
    let input = OutputProof::new(change.proof.expect("certified"), 1)
        .input()
        .expect("input");
    assert_eq!(
        net.wallet(3).redeem(0, lose, input, None, Amount(0)),
        Err(LedgerError::TicketLost)
    );
}
