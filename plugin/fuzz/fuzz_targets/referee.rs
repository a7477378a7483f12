//! Referee messages, session messages and input logs from arbitrary bytes never panic:
//! decoding every message (and a session message's carried referee pool)
//! (checkpoints with their rosters, claims, attestations, verdict shares, certificates, input
//! logs), then what a referee or finaliser does next with a decoded one (signature checks,
//! certificate checks against a panel, turning a log into world inputs).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshwork::proto::contract::{CodeHash, ContractId, StateRoot};
use meshwork::proto::identity::Identity;
use meshwork::proto::ledger::OutputId;
use meshwork::proto::referee::{
    CheckpointDigest, InputLog, Member, Panel, RefereeMsg, RefereePool, Roster, SessionId,
};

fn panel() -> &'static Panel {
    static P: OnceLock<Panel> = OnceLock::new();
    P.get_or_init(|| {
        let player = Identity::from_seed([1; 32]);
        let roster = Roster::new(vec![Member {
            key: player.public_key(),
            bond: OutputId([2; 32]),
        }])
        .expect("one player");
        let session = SessionId::derive(
            &CheckpointDigest::default(),
            &ContractId([3; 32]),
            &CodeHash([4; 32]),
            &StateRoot([5; 32]),
            &roster,
        );
        let pool = RefereePool::new(
            (10..30u8)
                .map(|i| Identity::from_seed([i; 32]).public_key())
                .collect(),
        )
        .expect("pool");
        Panel::draw(&pool, &session, &roster).expect("panel")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = InputLog::from_bytes(data.to_vec()) {
        let _ = log.hash();
        let roster = Roster::new(
            (0..log.players())
                .map(|i| Member {
                    key: Identity::from_seed([i.wrapping_add(100); 32]).public_key(),
                    bond: OutputId([i; 32]),
                })
                .collect(),
        );
        if let Ok(roster) = roster {
            let inputs = log.to_inputs(ContractId([3; 32]), &roster).expect("valid log");
            assert!(inputs.len() <= usize::from(log.frames()));
        }
    }
    // A session message as peers send it: the carried referee pool must turn into a pool or a
    // typed error, within its bounds.
    if let Ok(m) = meshwork::proto::wire::decode::<meshwork::proto::session::SessionMsg>(data)
        && let Some(spec) = m.pool
        && let Ok(pool) = spec.pool()
    {
        assert!(pool.keys().len() <= meshwork::proto::session::POOL_SPEC_KEYS_MAX);
        assert!(pool.attesters().len() <= meshwork::proto::session::POOL_SPEC_KEYS_MAX);
    }
    let Ok(msg) = RefereeMsg::decode(data) else {
        return;
    };
    match msg {
        RefereeMsg::Request { checkpoint, log, .. } | RefereeMsg::Judge { checkpoint, log, .. } => {
            let _ = checkpoint.digest();
            let _ = panel().check(&checkpoint);
            let _ = log.to_inputs(checkpoint.world, &checkpoint.roster);
        }
        RefereeMsg::Claim(c) => {
            let _ = c.verify();
        }
        RefereeMsg::Attestation(a) => {
            let _ = a.verify();
        }
        RefereeMsg::Share(s) => {
            let _ = s.verify();
        }
        RefereeMsg::Finalised(cert) => {
            let _ = cert.verify(panel());
        }
    }
});
