//! The fetch core without a network: cores wired directly (routing = closest by XOR), a real
//! ledger committee certifying bonds and escrows. Each bad input is a typed error and changes
//! nothing; a flood from one requester is rate-limited without affecting another.

use meshwork::proto::contract::ContractId;
use meshwork::proto::fetch::{
    Fetch, FetchConfig, FetchError, FetchEvent, FetchMsg, Method, Outgoing, Proof, RefusalReason,
    Request, RequestId, ResponseHead, SERVICE_FETCH,
};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::{Amount, BondTerms, Epoch, LotteryTerms, OutputProof};
use meshwork::sim::fetch::{MiniLedger, echo_contracts};
use sha2::{Digest, Sha256};

fn id(tag: u8, i: usize) -> Identity {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Identity::from_seed(seed)
}

/// Cores wired directly. `route` delivers to the core closest to the key.
struct Net {
    cores: Vec<Fetch>,
    ids: Vec<PeerId>,
    now: u64,
    events: Vec<(usize, FetchEvent)>,
    errors: Vec<(usize, FetchError)>,
}

impl Net {
    fn closest(&self, key: &PeerId, skip: Option<usize>) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.ids.len()).filter(|&i| Some(i) != skip).collect();
        v.sort_by_key(|&i| self.ids[i].distance(key));
        v
    }

    fn run(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            for from in 0..self.cores.len() {
                while let Some(o) = self.cores[from].poll_send() {
                    moved = true;
                    let (targets, payload) = match o {
                        Outgoing::Route {
                            key,
                            exact,
                            payload,
                        } => {
                            let t = if exact {
                                self.ids
                                    .iter()
                                    .position(|p| *p == key)
                                    .into_iter()
                                    .collect()
                            } else {
                                vec![self.closest(&key, None)[0]]
                            };
                            (t, payload)
                        }
                        Outgoing::Forward {
                            key,
                            count,
                            exclude,
                            payload,
                        } => {
                            let t = self
                                .closest(&key, Some(from))
                                .into_iter()
                                .filter(|&i| Some(self.ids[i]) != exclude)
                                .take(usize::from(count))
                                .collect();
                            (t, payload)
                        }
                    };
                    assert_eq!(payload[0], SERVICE_FETCH);
                    for t in targets {
                        let origin = self.ids[from];
                        if let Err(e) =
                            self.cores[t].handle_message(self.now, origin, &payload[1..])
                        {
                            self.errors.push((t, e));
                        }
                    }
                }
            }
            for (i, c) in self.cores.iter_mut().enumerate() {
                while let Some(e) = c.poll_event() {
                    self.events.push((i, e));
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        for c in &mut self.cores {
            c.handle_timeout(self.now);
        }
        self.run();
    }

    fn completed(
        &mut self,
        at: usize,
        rid: RequestId,
    ) -> Option<Result<meshwork::proto::fetch::Response, FetchError>> {
        self.events.iter().find_map(|(i, e)| match e {
            FetchEvent::Completed { id, result } if *i == at && *id == rid => Some(result.clone()),
            _ => None,
        })
    }
}

struct World {
    net: Net,
    users: Vec<Identity>,
    contract: ContractId,
    ledger: MiniLedger,
}

/// Five bonded peers, all serving the contract; 0 is the usual requester, 4 the only referee.
fn world() -> World {
    let users: Vec<_> = (0..5).map(|i| id(7, i)).collect();
    let owners: Vec<_> = users.iter().map(Identity::public_key).collect();
    let mut ledger = MiniLedger::new(&owners, 1_000_000, Epoch(100));
    let referees = vec![users[4].public_key()];
    let bond_terms = BondTerms {
        referees: referees.clone(),
        referee_quorum: 1,
        ..BondTerms::until(Epoch(100))
    };
    let (host, ids) = echo_contracts(1);
    let contract = ids[0];
    let mut cores = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let bond = ledger.post(u, bond_terms.clone(), 10_000);
        let escrow = ledger.post(
            u,
            BondTerms {
                lottery: Some(LotteryTerms::new([i as u8; 32])),
                ..BondTerms::until(Epoch(100))
            },
            50_000,
        );
        let cfg = FetchConfig {
            price: Amount(10),
            bond: Some(bond),
            escrow: Some(escrow),
            ticket_face: Amount(100),
            referees: referees.clone(),
            referee_quorum: 1,
            audit_ppm: 1_000_000,
            committee: Some(ledger.committee().clone()),
            requests_per_s: 5,
            requests_burst: 10,
            ..FetchConfig::default()
        };
        let mut core = Fetch::new(u.clone(), cfg, [i as u8 + 1; 32]);
        if i <= 4 {
            core.serve_contract(contract, host.clone());
        }
        cores.push(core);
    }
    let ids = users.iter().map(Identity::peer_id).collect();
    World {
        net: Net {
            cores,
            ids,
            now: 0,
            events: Vec::new(),
            errors: Vec::new(),
        },
        users,
        contract,
        ledger,
    }
}

fn call(contract: ContractId, body: &[u8]) -> Request {
    Request::get(&format!("mesh://{}/echo", hex::encode(contract.0)))
        .expect("url")
        .with_body(Method::Post, body.to_vec())
        .paying(Amount(10))
}

#[test]
fn a_paid_contract_call_returns_the_right_bytes_and_pays_a_ticket() {
    let mut w = world();
    let rid = w.net.cores[0]
        .fetch(0, call(w.contract, b"hello"))
        .expect("starts");
    w.net.run();
    let r = w
        .net
        .completed(0, rid)
        .expect("completed")
        .expect("answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello");
    assert!(r.bond.is_some());
    assert!(r.audited, "audit rate 100% in this world");
    let paid = w
        .net
        .events
        .iter()
        .filter(|(_, e)| matches!(e, FetchEvent::Paid { .. }))
        .count();
    assert_eq!(
        paid, 1,
        "exactly the winner is paid, not the competing replica"
    );
    assert!(
        w.net
            .events
            .iter()
            .all(|(_, e)| !matches!(e, FetchEvent::Slashed { .. })),
        "honest answers are not slashed"
    );
}

#[test]
fn a_lie_is_audited_slashed_and_retracted() {
    let mut w = world();
    for c in 0..=3 {
        w.net.cores[c].config_mut().fault = meshwork::proto::fetch::Fault::Lie;
    }
    // The referee judges but does not compete.
    w.net.cores[4].config_mut().serve = false;
    let rid = w.net.cores[0]
        .fetch(0, call(w.contract, b"truth"))
        .expect("starts");
    w.net.run();
    let r = w
        .net
        .completed(0, rid)
        .expect("completed")
        .expect("answered");
    assert_ne!(r.body, b"truth");
    let verdict = w
        .net
        .events
        .iter()
        .find_map(|(i, e)| match e {
            FetchEvent::Slashed {
                verdict, responder, ..
            } if *i == 0 => Some((verdict.clone(), *responder)),
            _ => None,
        })
        .expect("slashed");
    assert_eq!(verdict.1, r.responder);
    assert!(
        w.net
            .events
            .iter()
            .any(|(i, e)| *i == 0 && matches!(e, FetchEvent::Retracted { id } if *id == rid))
    );
    // The verdict forfeits the liar's bond on the ledger, to the requester and the referee.
    let bond = r
        .evidence
        .response
        .head
        .bond
        .as_ref()
        .expect("bonded")
        .input()
        .expect("input");
    let order = meshwork::proto::ledger::SignedOrder::forfeit(
        Epoch(0),
        bond,
        meshwork::proto::ledger::Evidence::Verdict(*verdict.0),
    )
    .expect("forfeit order");
    assert!(
        w.ledger.certify(&order).is_some(),
        "the validators certify the forfeit"
    );
    w.ledger.check_conservation();
    assert_eq!(order.order.outputs.len(), 2);
    assert_eq!(order.order.outputs[0].owner, w.users[0].public_key());
}

#[test]
fn a_wrong_block_is_rejected_and_the_honest_copy_wins() {
    let mut w = world();
    let block = b"content addressed".to_vec();
    let hash: [u8; 32] = Sha256::digest(&block).into();
    for c in 1..=4 {
        w.net.cores[c].store_block(block.clone());
    }
    // The closest holder lies; the forwarded replica answers honestly.
    let closest = w.net.closest(&PeerId(hash), Some(0))[0];
    w.net.cores[closest].config_mut().fault = meshwork::proto::fetch::Fault::Lie;
    let req = Request::get(&format!("mesh://block/{}", hex::encode(hash)))
        .expect("url")
        .paying(Amount(10));
    let rid = w.net.cores[0].fetch(0, req).expect("starts");
    w.net.run();
    let r = w
        .net
        .completed(0, rid)
        .expect("completed")
        .expect("answered");
    assert_eq!(r.body, block);
    assert!(
        w.net
            .errors
            .iter()
            .any(|(i, e)| *i == 0 && matches!(e, FetchError::WrongContent(_)))
    );
}

#[test]
fn forged_and_malformed_input_is_rejected_with_typed_errors() {
    let mut w = world();
    let me = w.net.ids[0];
    // Garbage.
    assert!(matches!(
        w.net.cores[1].handle_message(0, me, &[0xFF; 40]),
        Err(FetchError::Malformed(_))
    ));
    assert!(matches!(
        w.net.cores[1].handle_message(0, me, &vec![0; 400_000]),
        Err(FetchError::TooLarge(_))
    ));
    // A request with a forged signature.
    let rid = w.net.cores[0]
        .fetch(0, call(w.contract, b"x"))
        .expect("starts");
    let Some(Outgoing::Route { payload, .. }) = w.net.cores[0].poll_send() else {
        panic!("a request")
    };
    let FetchMsg::Request { mut request, .. } = FetchMsg::decode(&payload[1..]).expect("decodes")
    else {
        panic!()
    };
    request.head.body = b"tampered".to_vec();
    let bytes = FetchMsg::Request {
        request: request.clone(),
        forwarded: false,
    }
    .encode();
    assert_eq!(
        w.net.cores[1].handle_message(0, me, &bytes),
        Err(FetchError::BadSignature("request"))
    );
    // Handed back to its own requester (as when it is closest to the key), a request in its
    // name is trusted only if it is byte for byte the one pending: a changed body or a changed
    // signature is checked, and fails.
    assert_eq!(
        w.net.cores[0].handle_message(0, me, &bytes),
        Err(FetchError::BadSignature("request"))
    );
    let FetchMsg::Request {
        request: mut resigned,
        ..
    } = FetchMsg::decode(&payload[1..]).expect("decodes")
    else {
        panic!()
    };
    resigned.signature.0[0] ^= 1;
    let bytes = FetchMsg::Request {
        request: resigned,
        forwarded: false,
    }
    .encode();
    assert_eq!(
        w.net.cores[0].handle_message(0, me, &bytes),
        Err(FetchError::BadSignature("request"))
    );
    // Answers to a fresh request: forged signature, forged bond, price above the maximum.
    let _ = rid;
    w.net.run();
    let rid = w.net.cores[0]
        .fetch(1, call(w.contract, b"y"))
        .expect("starts");
    let Some(Outgoing::Route { payload, .. }) = w.net.cores[0].poll_send() else {
        panic!("a request")
    };
    let FetchMsg::Request { request, .. } = FetchMsg::decode(&payload[1..]).expect("decodes")
    else {
        panic!()
    };
    let responder = &w.users[1];
    let good_bond = w.net.cores[1].config().bond.clone().expect("bond");
    let head = |bond: OutputProof, price: u64| ResponseHead {
        request: request.head.digest(),
        responder: responder.public_key(),
        status: 200,
        headers: Vec::new(),
        body: b"y".to_vec(),
        price: Amount(price),
        payee_commit: [0; 32],
        bond: Some(Box::new(bond)),
        proof: Proof::None,
    };
    let from = w.net.ids[1];
    let mut forged_sig = head(good_bond.clone(), 10).sign(responder);
    forged_sig.head.body = b"z".to_vec();
    let msg = FetchMsg::Response(Box::new(forged_sig)).encode();
    assert_eq!(
        w.net.cores[0].handle_message(1, from, &msg),
        Err(FetchError::BadSignature("response"))
    );
    let mut forged_bond = good_bond.clone();
    forged_bond.certificate.votes.truncate(1);
    let msg = FetchMsg::Response(Box::new(head(forged_bond, 10).sign(responder))).encode();
    assert!(matches!(
        w.net.cores[0].handle_message(1, from, &msg),
        Err(FetchError::Ledger(_))
    ));
    let someone_elses = w.net.cores[2].config().bond.clone().expect("bond");
    let msg = FetchMsg::Response(Box::new(head(someone_elses, 10).sign(responder))).encode();
    assert_eq!(
        w.net.cores[0].handle_message(1, from, &msg),
        Err(FetchError::BadProof("bond owned by someone else"))
    );
    let msg = FetchMsg::Response(Box::new(head(good_bond.clone(), 11).sign(responder))).encode();
    assert!(matches!(
        w.net.cores[0].handle_message(1, from, &msg),
        Err(FetchError::PriceAboveMax { .. })
    ));
    assert!(w.net.completed(0, rid).is_none(), "nothing accepted");
    // A valid one is then accepted: the rejections changed nothing.
    let msg = FetchMsg::Response(Box::new(head(good_bond, 10).sign(responder))).encode();
    assert_eq!(w.net.cores[0].handle_message(1, from, &msg), Ok(()));
    while let Some(e) = w.net.cores[0].poll_event() {
        w.net.events.push((0, e));
    }
    assert!(matches!(w.net.completed(0, rid), Some(Ok(_))));
    // A ticket for an answer nobody gave, and an audit from a non-referee, change nothing.
}

#[test]
fn unpaid_and_underpaid_requests_are_refused() {
    let mut w = world();
    // Underpaid: a fee below the servers' price.
    let mut req = call(w.contract, b"cheap");
    req.fee_max = Amount(1);
    req.collateral_min = Amount(0);
    let rid = w.net.cores[0].fetch(0, req).expect("starts");
    w.net.run();
    w.net.advance(20_000);
    assert_eq!(
        w.net.completed(0, rid),
        Some(Err(FetchError::Refused(RefusalReason::Underpaid)))
    );
    // Unpaid: no escrow behind a paid request.
    w.net.cores[0].config_mut().escrow = None;
    assert_eq!(
        w.net.cores[0].fetch(w.net.now, call(w.contract, b"free ride")),
        Err(FetchError::NoEscrow)
    );
}

#[test]
fn a_flood_from_one_requester_does_not_starve_another() {
    let mut w = world();
    // Peer 0 floods 200 requests at once; peer 4 (the referee, not answering here) sends one.
    // Each peer allows a burst of 10 per requester.
    let mut flood = Vec::new();
    for i in 0..200u32 {
        flood.push(
            w.net.cores[0]
                .fetch(0, call(w.contract, &i.to_le_bytes()))
                .expect("starts"),
        );
    }
    let other = {
        let req = call(w.contract, b"me too");
        w.net.cores[4].config_mut().serve = false;
        w.net.cores[4].fetch(0, req).expect("starts")
    };
    w.net.run();
    let answered = flood
        .iter()
        .filter(|r| matches!(w.net.completed(0, **r), Some(Ok(_))))
        .count();
    assert!(answered <= 40, "the flood is limited: {answered} answered");
    assert!(
        matches!(w.net.completed(4, other), Some(Ok(_))),
        "the other requester is served"
    );
    let refused = w.net.cores.iter().map(|c| c.stats().refused).sum::<u64>();
    assert!(refused > 100, "peers refused the flood: {refused}");
}
