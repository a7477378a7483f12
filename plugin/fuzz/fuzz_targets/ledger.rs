//! Ledger messages from arbitrary bytes never panic a validator or a wallet: raw decoding of
//! every ledger message, and mutations of a valid order's encoding fed to a validator (which must
//! refuse anything that no longer verifies, and never lock an input for a refused order). The
//! first byte picks which valid message is mutated: a transfer, or a lottery-ticket redemption
//! from an escrow. Tickets, output proofs and verdicts are decoded and checked too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::ticket::commit;
use meshwork::proto::ledger::{
    Amount, BondTerms, Certificate, Epoch, Genesis, Input, LedgerMsg, LedgerStore, MemoryStore,
    Output, OutputProof, SignedOrder, SignedTicket, Ticket, TransferOrder, Validator, Verdict,
    Vote, Wallet, WalletConfig, WinningTicket,
};
use meshwork::proto::wire;

struct Fixture {
    genesis: Genesis,
    validator: Identity,
    user: Identity,
    valid: Vec<u8>,
    redeem: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let validators: Vec<_> = (0..4u8).map(|i| Identity::from_seed([i + 1; 32])).collect();
        let user = Identity::from_seed([9; 32]);
        let terms = BondTerms {
            expiry: Epoch(0),
            beneficiaries: vec![user.public_key()],
            referees: vec![user.public_key()],
            referee_quorum: 1,
            lottery: None,
        };
        let vinfo: Vec<_> = validators
            .iter()
            .map(|k| (k.public_key(), Amount(1_000), Fuel(0)))
            .collect();
        let escrow = Output {
            owner: user.public_key(),
            amount: Amount(300),
            bond: Some(BondTerms::escrow(Epoch(5), [4; 32])),
        };
        let genesis = Genesis::new(
            vec![Output::plain(user.public_key(), Amount(500)), escrow],
            &vinfo,
            &terms,
            4,
        )
        .expect("genesis");
        let (id, output) = genesis.created().next().expect("coin");
        let order = TransferOrder {
            epoch: Epoch(0),
            nonce: 1,
            inputs: vec![Input {
                id,
                output: output.clone(),
            }],
            outputs: vec![Output::plain(validators[0].public_key(), Amount(499))],
            fee: Amount(1),
        }
        .signed_by(&[&user]);
        let valid = LedgerMsg::Order {
            order,
            proofs: Vec::new(),
        }
        .encode()
        .expect("encode");
        let (id, output) = genesis.created().nth(1).expect("escrow");
        let ticket = Ticket {
            escrow_root: [4; 32],
            payer: user.public_key(),
            payee: validators[1].public_key(),
            face: Amount(100),
            win_threshold: u64::MAX,
            payee_commit: commit(&[8; 32]),
            payer_rand: [2; 32],
            expiry: Epoch(3),
        };
        let winning = WinningTicket {
            ticket: SignedTicket::sign(&user, ticket),
            reveal: [8; 32],
        };
        let escrow = Input {
            id,
            output: output.clone(),
        };
        let order = SignedOrder::redeem(Epoch(0), escrow, winning, Amount(0)).expect("redeem");
        let redeem = LedgerMsg::Order {
            order,
            proofs: Vec::new(),
        }
        .encode()
        .expect("encode");
        Fixture {
            genesis,
            redeem,
            validator: validators[0].clone(),
            user,
            valid,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let _ = wire::decode::<SignedOrder>(data);
    let _ = wire::decode::<Certificate>(data);
    let _ = wire::decode::<Vote>(data);
    if let Ok(t) = wire::decode::<WinningTicket>(data) {
        let _ = t.ticket.verify();
        let _ = t.ticket.wins(&t.reveal);
    }
    let _ = wire::decode::<SignedTicket>(data).map(|t| t.verify());
    let _ = wire::decode::<Verdict>(data);
    if let Ok(p) = wire::decode::<OutputProof>(data) {
        let _ = p.input();
        let _ = p.verify(&f.genesis.committee);
    }
    let mut validator =
        Validator::new(f.validator.clone(), &f.genesis, MemoryStore::new()).expect("validator");
    let mut wallet = Wallet::new(
        f.user.clone(),
        f.genesis.committee.clone(),
        WalletConfig::default(),
    );
    let from = PeerId([7; 32]);
    if let Ok(msg) = LedgerMsg::decode(data) {
        let _ = validator.handle_message(from, msg.clone());
        let _ = wallet.handle_message(0, from, msg);
    }
    // Mutate the valid order: the input is (offset, byte) pairs.
    let mut bytes = if data.first().is_some_and(|b| b % 2 == 1) {
        f.redeem.clone()
    } else {
        f.valid.clone()
    };
    for pair in data.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
        bytes[at] = pair[2];
    }
    if let Ok(msg) = LedgerMsg::decode(&bytes) {
        let order = match &msg {
            LedgerMsg::Order { order, .. } => Some(order.order.clone()),
            _ => None,
        };
        // A fresh validator: nothing may be locked but by an order it accepted.
        let mut validator =
            Validator::new(f.validator.clone(), &f.genesis, MemoryStore::new()).expect("validator");
        let refused = validator.handle_message(from, msg).is_err();
        if let (Some(order), true) = (order, refused) {
            for input in &order.inputs {
                let state = validator.store().output(&input.id).expect("memory store");
                assert_ne!(
                    state.lock,
                    Some(order.digest()),
                    "a refused order locked an input"
                );
            }
        }
    }
});
