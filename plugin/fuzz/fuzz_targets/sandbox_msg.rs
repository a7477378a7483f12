//! What sandbox players send each other: world-topic and direct messages (`SandboxMsg`) and
//! GGRS inputs (`Pad`) decode or are refused, never panic. A message that decodes re-encodes to
//! one that decodes equal; an input's action and position stay inside the world, and a frame
//! of the avatars' simulation on any inputs keeps every avatar inside it too. The ledger setup
//! a page fetches (`LedgerSetup`) decodes or is refused too, and a bond proof that decodes is
//! checked against that setup's committee without panicking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshwork::proto::contract::Fuel;
use meshwork::proto::identity::{Identity, PublicKey};
use meshwork::proto::ledger::{Amount, BondTerms, Committee, Epoch, Genesis};
use meshwork_sandbox::input::{Pad, Sim, unpad, unpad_position};
use meshwork_sandbox::ledger::{LedgerSetup, check_session_bond};
use meshwork_sandbox::net::SandboxMsg;
use meshwork_sandbox::world::{cells_x, cells_y};

/// A committee no fuzzed certificate can reach a quorum of (its keys' secrets are not in the
/// input): every bond proof must be refused, cleanly.
fn committee() -> &'static Committee {
    static C: OnceLock<Committee> = OnceLock::new();
    C.get_or_init(|| {
        let bonds: Vec<_> = (0..4u8)
            .map(|i| {
                let key = Identity::from_seed([100 + i; 32]).public_key();
                (key, Amount(1_000), Fuel(0))
            })
            .collect();
        Genesis::new(Vec::new(), &bonds, &BondTerms::until(Epoch(9)), 4)
            .expect("genesis")
            .committee
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SandboxMsg::decode(data) {
        let again = SandboxMsg::decode(&msg.encode()).expect("a decoded message re-decodes");
        assert_eq!(again, msg);
        if let SandboxMsg::Bond(proof) = &msg {
            let c = committee();
            let owner = PublicKey([1; 32]);
            assert!(check_session_bond(c, proof, &owner, &[owner], c.epoch).is_err());
        }
    }
    if let Ok(setup) = LedgerSetup::decode(data) {
        assert_eq!(LedgerSetup::decode(&setup.encode()).ok(), Some(setup));
    }
    let (w, h) = (cells_x() as i32 * 100, cells_y() as i32 * 100);
    let pads: Vec<Pad> = data
        .chunks_exact(14)
        .take(16)
        .map(|c| c.try_into().expect("14 bytes"))
        .collect();
    let mut sim = Sim::default();
    for pad in &pads {
        if let Some(action) = unpad(pad) {
            let (x, y) = action.cell();
            assert!(x < cells_x() && y < cells_y());
        }
        if let Some((x, y)) = unpad_position(pad) {
            assert!((0..=w).contains(&x) && (0..=h).contains(&y));
        }
    }
    for _ in 0..3 {
        sim.advance(&pads);
    }
    for (x, y) in sim.avatars.iter().flatten() {
        assert!((0..=w).contains(x) && (0..=h).contains(y));
    }
});
