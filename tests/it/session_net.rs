//! The session service (players + referees exchanging real messages): a 3-player session
//! checkpoints every 30 frames; 16 referees from outside the session re-execute the world
//! contract from the state the players send and attest; every player sees each checkpoint
//! finalised. With a cheating player, the others see it caught with a verdict against its bond.

use std::collections::BTreeMap;

use meshwork::proto::contract::{Address, CodeHash, ContractHost, ContractId};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::OutputId;
use meshwork::proto::referee::{CheckpointDigest, FinaliserConfig, Member, RefereePool};
use meshwork::proto::session::{SERVICE_SESSION, SessionConfig, SessionEvent, SessionService};

use meshwork::sim::sessions::sandbox_genesis;

use crate::sessions::built;

/// The sandbox world (4×4 regions of 16×16, blocks at 10 tokens) with `players` funded.
pub(crate) fn world(players: &[Identity]) -> (ContractHost, ContractId, CodeHash) {
    let addresses: Vec<Address> = players.iter().map(|p| Address(p.peer_id().0)).collect();
    let g = sandbox_genesis(
        &built("token"),
        &built("world"),
        (4, 16, 10),
        &addresses,
        1_000_000,
    );
    (g.host, g.world, g.code)
}

struct Net {
    peers: Vec<SessionService>,
    ids: Vec<PeerId>,
    events: Vec<(usize, SessionEvent)>,
    now: u64,
}

impl Net {
    fn run(&mut self) {
        for _ in 0..20 {
            let mut moved = false;
            for from in 0..self.peers.len() {
                while let Some((to, payload)) = self.peers[from].poll_send() {
                    moved = true;
                    assert_eq!(payload[0], SERVICE_SESSION);
                    let Some(t) = self.ids.iter().position(|p| *p == to) else {
                        continue;
                    };
                    let origin = self.ids[from];
                    let _ = self.peers[t].handle_message(self.now, origin, &payload[1..]);
                }
            }
            for (i, p) in self.peers.iter_mut().enumerate() {
                while let Some(e) = p.poll_event() {
                    self.events.push((i, e));
                }
            }
            if !moved {
                break;
            }
        }
    }
}

/// A service per player (player `i` configured by `cfg(i)`), each started in one session of
/// them all from `host`, every member with a placeholder bond named after its key.
fn started(
    players: &[Identity],
    host: &ContractHost,
    cfg: impl Fn(usize) -> SessionConfig,
) -> Vec<SessionService> {
    let members: Vec<Member> = players
        .iter()
        .map(|p| Member {
            key: p.public_key(),
            bond: OutputId([p.public_key().0[0]; 32]),
        })
        .collect();
    players
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = SessionService::new(p.clone(), cfg(i), host.clone());
            s.start(
                members.clone(),
                host.clone(),
                CheckpointDigest::default(),
                0,
            )
            .expect("starts");
            s
        })
        .collect()
}

fn session(cheater: Option<usize>) -> Net {
    let players: Vec<Identity> = (0..3u8)
        .map(|i| Identity::from_seed([0x70 + i; 32]))
        .collect();
    let (host, world, code) = world(&players);
    let referees: Vec<Identity> = (0..16u8)
        .map(|i| Identity::from_seed([0x90 + i; 32]))
        .collect();
    let pool = RefereePool::new(referees.iter().map(Identity::public_key).collect()).expect("pool");
    let cfg = |referee: bool, cheat: bool| SessionConfig {
        world,
        code,
        pool: pool.clone(),
        frames_per_checkpoint: 30,
        finaliser: FinaliserConfig::default(),
        referee,
        cheat,
    };
    let mut peers = started(&players, &host, |i| cfg(false, cheater == Some(i)));
    for r in &referees {
        peers.push(SessionService::new(
            r.clone(),
            cfg(true, false),
            host.clone(),
        ));
    }
    let ids = players
        .iter()
        .chain(&referees)
        .map(Identity::peer_id)
        .collect();
    Net {
        peers,
        ids,
        events: Vec::new(),
        now: 0,
    }
}

fn play(net: &mut Net, frames: u64) {
    for f in 0..frames {
        net.now = f * 16;
        // Every 5th frame a player places a block (op 0x01, x, y, kind) somewhere.
        let mut actions = vec![vec![], vec![], vec![]];
        if f % 5 == 0 {
            let (x, y) = ((f % 12) as u32, ((f / 12) % 12) as u32);
            let mut a = vec![0x01];
            a.extend_from_slice(&x.to_le_bytes());
            a.extend_from_slice(&y.to_le_bytes());
            a.push(1);
            actions[(f % 3) as usize] = vec![a];
        }
        for p in 0..3 {
            net.peers[p].push_frame(net.now, &actions).expect("frame");
        }
        net.run();
    }
}

#[test]
fn checkpoints_are_finalised_by_referees_from_outside_the_session() {
    let mut net = session(None);
    play(&mut net, 90);
    let mut finalised: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (i, e) in &net.events {
        if let SessionEvent::CheckpointFinalised { seq, agreed, .. } = e {
            assert!(*agreed, "honest players agree with the referees");
            finalised.entry(*i).or_default().push(*seq);
        }
    }
    for p in 0..3 {
        assert_eq!(
            finalised.get(&p),
            Some(&vec![0, 1, 2]),
            "player {p} saw every checkpoint final"
        );
    } // The blocks changed the world: the finalised roots moved.
    let roots: Vec<_> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            SessionEvent::CheckpointFinalised { root, .. } if *i == 0 => Some(*root),
            _ => None,
        })
        .collect();
    assert!(
        roots.windows(2).all(|w| w[0] != w[1]),
        "each checkpoint changed the state"
    );

    let refereed: u64 = net.peers[3..].iter().map(|p| p.stats().refereed).sum();
    assert!(
        refereed >= 3 * 11,
        "a quorum of referees attested each checkpoint: {refereed}"
    );
    assert!(
        net.peers[..3].iter().all(|p| p.stats().refereed == 0),
        "players do not referee their own session"
    );
}

#[test]
fn a_cheating_player_is_caught_and_its_bond_named() {
    let mut net = session(Some(2));
    play(&mut net, 30);
    let cheater = net.peers[2].session().map(|_| ());
    assert!(cheater.is_some());
    let cheater_key = Identity::from_seed([0x72; 32]).public_key();
    let caught: Vec<_> = net
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            SessionEvent::CheatDetected {
                player,
                bond,
                verdict,
            } if *i < 2 => Some((*player, *bond, verdict.signatures.len())),
            _ => None,
        })
        .collect();
    assert!(
        !caught.is_empty(),
        "the honest players caught the cheater: {:?}",
        net.events
    );
    for (player, bond, sigs) in caught {
        assert_eq!(player, cheater_key);
        assert_eq!(bond, OutputId([cheater_key.0[0]; 32]));
        assert!(sigs >= 11, "a verdict by > 2/3 of the panel");
    }
    let honest_final = net.events.iter().any(|(i, e)| {
        *i == 0 && matches!(e, SessionEvent::CheckpointFinalised { agreed: true, .. })
    });
    assert!(honest_final, "the honest root is final");
    let cheater_final = net.events.iter().any(|(i, e)| {
        *i == 2 && matches!(e, SessionEvent::CheckpointFinalised { agreed: false, .. })
    });
    assert!(
        cheater_final,
        "the cheater learns its root was not the final one"
    );
}

/// Players of *another* session attest: the pool names 4 judges and 6 attesters (players
/// outside this session, whose own configured pool knows nothing of attesters), 4 drawn per
/// checkpoint. The requests carry the session's pool, so the attesters find themselves drawn,
/// re-execute and sign; every checkpoint is final and attesters did part of the work.
#[test]
fn players_of_other_sessions_attest_with_the_pool_the_request_carries() {
    let players: Vec<Identity> = (0..3u8)
        .map(|i| Identity::from_seed([0x70 + i; 32]))
        .collect();
    let (host, world, code) = world(&players);
    let judges: Vec<Identity> = (0..4u8)
        .map(|i| Identity::from_seed([0x90 + i; 32]))
        .collect();
    let attesters: Vec<Identity> = (0..6u8)
        .map(|i| Identity::from_seed([0xb0 + i; 32]))
        .collect();
    let own = RefereePool::new(judges.iter().map(Identity::public_key).collect())
        .and_then(|p| p.with_per_checkpoint(4))
        .expect("pool");
    let session_pool = own
        .clone()
        .with_attesters(attesters.iter().map(Identity::public_key).collect())
        .expect("attesters");
    let cfg = |pool: &RefereePool, referee: bool| SessionConfig {
        world,
        code,
        pool: pool.clone(),
        frames_per_checkpoint: 30,
        finaliser: FinaliserConfig::default(),
        referee,
        cheat: false,
    };
    let mut peers = started(&players, &host, |_| cfg(&session_pool, false));
    // Another deployment's referee, configured with other judges: it must not take the judges
    // a request names (a requester cannot make a referee judge a session it does not judge).
    let other = RefereePool::new(judges[1..].iter().map(Identity::public_key).collect())
        .and_then(|p| p.with_per_checkpoint(4))
        .expect("pool");
    for (i, r) in judges.iter().chain(&attesters).enumerate() {
        // Referees and other sessions' players know only the judges.
        let pool = if i == judges.len() { &other } else { &own };
        peers.push(SessionService::new(
            r.clone(),
            cfg(pool, true),
            host.clone(),
        ));
    }
    let ids = players
        .iter()
        .chain(&judges)
        .chain(&attesters)
        .map(Identity::peer_id)
        .collect();
    let mut net = Net {
        peers,
        ids,
        events: Vec::new(),
        now: 0,
    };
    play(&mut net, 90);
    let finals = net
        .events
        .iter()
        .filter(|(i, e)| {
            *i == 0 && matches!(e, SessionEvent::CheckpointFinalised { agreed: true, .. })
        })
        .count();
    assert_eq!(finals, 3, "every checkpoint final: {:?}", net.events);
    assert_eq!(
        net.peers[7].stats().refereed,
        0,
        "a referee with other judges re-executed a request naming ours"
    );
    assert!(
        net.peers[7].stats().dropped >= 1,
        "the referee with other judges was never asked (the check above proves nothing)"
    );
    let by_attesters: u64 = net.peers[8..].iter().map(|p| p.stats().refereed).sum();
    let by_judges: u64 = net.peers[3..7].iter().map(|p| p.stats().refereed).sum();
    assert!(
        by_attesters >= 1,
        "no attester was drawn or none re-executed (judges did {by_judges})"
    );
}

mod bevy_glue {
    use std::time::Duration;

    use bevy::prelude::*;
    use bevy::time::TimeUpdateStrategy;
    use meshwork::bevy::MeshworkNode;
    use meshwork::bevy::prelude::*;
    use meshwork::proto::identity::Identity;
    use meshwork::proto::ledger::OutputId;
    use meshwork::proto::referee::{CheckpointDigest, FinaliserConfig, Member, RefereePool};
    use meshwork::proto::session::{SessionConfig, SessionService};
    use meshwork::transport::memory::MemoryNetwork;

    #[derive(Resource, Default)]
    struct Finals(Vec<CheckpointFinalised>);

    fn record(mut r: MessageReader<CheckpointFinalised>, mut f: ResMut<Finals>) {
        f.0.extend(r.read().cloned());
    }

    /// 3 player apps and 16 referee apps on the in-memory mesh: the players' `SubmitFrame`s
    /// become checkpoints that the referee apps finalise over routed messages, and the players
    /// read `CheckpointFinalised`.
    #[test]
    fn bevy_players_see_checkpoints_finalised_by_referee_apps() {
        let seeds: Vec<[u8; 32]> = (0..19u8).map(|i| [0xB0 + i; 32]).collect();
        let ids: Vec<Identity> = seeds.iter().map(|s| Identity::from_seed(*s)).collect();
        let (players, referees) = ids.split_at(3);
        let (host, world, code) = super::world(players);
        let pool =
            RefereePool::new(referees.iter().map(Identity::public_key).collect()).expect("pool");
        let net = MemoryNetwork::new();
        let mut apps: Vec<App> = Vec::new();
        let members: Vec<Member> = players
            .iter()
            .map(|p| Member {
                key: p.public_key(),
                bond: OutputId([1; 32]),
            })
            .collect();
        for (i, seed) in seeds.iter().enumerate() {
            let mut app = App::new();
            app.add_plugins(MinimalPlugins)
                .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
                    20,
                )))
                .add_plugins(MeshworkPlugin::new(
                    MeshworkConfig::memory(net.clone()).with_seed(*seed),
                ))
                .init_resource::<Finals>()
                .add_systems(Update, record);
            let cfg = SessionConfig {
                world,
                code,
                pool: pool.clone(),
                frames_per_checkpoint: 30,
                finaliser: FinaliserConfig::default(),
                referee: i >= 3,
                cheat: false,
            };
            let mut service = SessionService::new(ids[i].clone(), cfg, host.clone());
            if i < 3 {
                service
                    .start(
                        members.clone(),
                        host.clone(),
                        CheckpointDigest::default(),
                        0,
                    )
                    .expect("starts");
            }
            attach_session(&mut app.world_mut().non_send_mut::<MeshworkNode>(), service);
            apps.push(app);
        }
        // Let the mesh form.
        for _ in 0..60 {
            apps.iter_mut().for_each(|a| a.update());
        }
        for _ in 0..150 {
            for a in apps.iter_mut().take(3) {
                a.world_mut().write_message(SubmitFrame {
                    actions: vec![vec![], vec![], vec![]],
                });
            }
            apps.iter_mut().for_each(|a| a.update());
        }
        for _ in 0..100 {
            apps.iter_mut().for_each(|a| a.update());
        }
        for (i, a) in apps.iter().enumerate().take(3) {
            let f = &a.world().resource::<Finals>().0;
            assert!(
                f.len() >= 4 && f.iter().all(|c| c.agreed),
                "player {i} saw checkpoints finalised: {f:?}"
            );
        }
        let duties: u64 = apps[3..]
            .iter_mut()
            .map(|a| {
                a.world_mut()
                    .non_send_mut::<MeshworkNode>()
                    .node
                    .session
                    .as_ref()
                    .map_or(0, |s| s.stats().refereed)
            })
            .sum();
        assert!(duties >= 4 * 11, "referee apps did the duties: {duties}");
    }
}
