//! The referee core on the real world contract: an honest checkpoint finalises, a cheater gets
//! a verdict the ledger accepts, a corrupt referee gets evidence; and every refusal the brief
//! lists (wrong code hash, wrong roster, forged or duplicate attestation, a referee from inside
//! the session, an oversized log), each a typed `RefereeError`.

use meshwork::proto::contract::{Address, CodeHash, ContractHost, ContractId, StateRoot};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::{Amount, Epoch, Evidence, Output, OutputId};
use meshwork::proto::referee::{
    ACTION_BYTES_MAX, ACTIONS_PER_FRAME_MAX, Attestation, Checkpoint, CheckpointDigest, Claim,
    Executor, FRAMES_PER_CHECKPOINT_MAX, Finaliser, FinaliserConfig, FinaliserEvent, HostExecutor,
    InputLog, InputLogBuilder, Karma, LOG_BYTES_MAX, Member, Panel, Referee, RefereeError,
    RefereeMsg, RefereePool, Roster, SessionId, VerdictShare, execute, quorum,
};
use meshwork::sim::sessions::{SandboxGenesis, sandbox_genesis};

use super::built;

struct Fixture {
    host: ContractHost,
    world: ContractId,
    code: CodeHash,
    players: Vec<Identity>,
    referees: Vec<Identity>,
    panel: Panel,
    checkpoint: Checkpoint,
    log: InputLog,
}

fn addr(i: &Identity) -> Address {
    Address(PeerId::from_public_key(&i.public_key()).0)
}

fn place(x: u32, y: u32) -> Vec<u8> {
    let mut a = vec![0x01];
    a.extend_from_slice(&x.to_le_bytes());
    a.extend_from_slice(&y.to_le_bytes());
    a.push(1);
    a
}

/// Three funded players who delegated to the session sequencer, 70 bonded referees, and a
/// 30-frame checkpoint in which they place blocks.
fn fixture() -> Fixture {
    let players: Vec<Identity> = (1..=3u8).map(|i| Identity::from_seed([i; 32])).collect();
    let referees: Vec<Identity> = (100..170u8).map(|i| Identity::from_seed([i; 32])).collect();
    let addresses: Vec<Address> = players.iter().map(addr).collect();
    let SandboxGenesis {
        host, world, code, ..
    } = sandbox_genesis(
        &built("token"),
        &built("world"),
        (4, 16, 10),
        &addresses,
        100_000,
    );
    let roster = roster_of(&players);
    let session = SessionId::derive(
        &CheckpointDigest::default(),
        &world,
        &code,
        &host.root(),
        &roster,
    );
    let pool = RefereePool::new(referees.iter().map(|r| r.public_key()).collect()).unwrap();
    let panel = Panel::draw(&pool, &session, &roster).unwrap();
    let mut log = InputLogBuilder::new(100, 3);
    for f in 0..30u32 {
        let frame: Vec<Vec<Vec<u8>>> = (0..3u32)
            .map(|p| {
                if (f + p) % 4 == 0 {
                    vec![place(f, p)]
                } else {
                    vec![]
                }
            })
            .collect();
        log.push_frame(&frame).unwrap();
    }
    let log = log.finish().unwrap();
    let checkpoint = Checkpoint {
        session,
        seq: 0,
        frame: 130,
        world,
        code_hash: code,
        prior_root: host.root(),
        input_log_hash: log.hash(),
        roster,
    };
    Fixture {
        host,
        world,
        code,
        players,
        referees,
        panel,
        checkpoint,
        log,
    }
}

fn roster_of(players: &[Identity]) -> Roster {
    Roster::new(
        players
            .iter()
            .map(|p| Member {
                key: p.public_key(),
                bond: OutputId([p.public_key().0[0] ^ 0xb0; 32]),
            })
            .collect(),
    )
    .unwrap()
}

impl Fixture {
    fn referee(&self, key: &meshwork::proto::identity::PublicKey) -> Referee {
        let id = self
            .referees
            .iter()
            .find(|r| r.public_key() == *key)
            .unwrap();
        Referee::new(id.clone(), self.code)
    }

    fn finaliser(&self) -> (Finaliser, Vec<meshwork::proto::identity::PublicKey>) {
        let mut f = Finaliser::new(
            self.checkpoint.clone(),
            self.panel.clone(),
            0,
            FinaliserConfig::default(),
        )
        .unwrap();
        match f.poll_event() {
            Some(FinaliserEvent::RequestAttestations {
                attempt: 0,
                referees,
            }) => (f, referees),
            other => panic!("expected the first request, got {other:?}"),
        }
    }

    fn true_root(&self) -> StateRoot {
        execute(&self.host, &self.checkpoint, &self.log)
            .unwrap()
            .root()
    }
}

/// Always answers `root` (a corrupt referee's executor, or a stand-in).
struct Fixed(StateRoot);

impl Executor for Fixed {
    fn execute(&mut self, _: &Checkpoint, _: &InputLog) -> Result<StateRoot, RefereeError> {
        Ok(self.0)
    }
}

fn events(f: &mut Finaliser) -> Vec<FinaliserEvent> {
    std::iter::from_fn(|| f.poll_event()).collect()
}

#[test]
fn honest_checkpoint_finalises_and_the_cheater_and_corrupt_referee_are_caught() {
    let fx = fixture();
    let truth = fx.true_root();
    assert_ne!(
        truth, fx.checkpoint.prior_root,
        "the blocks changed the world"
    );
    let lie = StateRoot([0xee; 32]);
    let (mut f, selected) = fx.finaliser();
    let digest = fx.checkpoint.digest();
    // Players 0 and 1 honest, player 2 cheats.
    for (i, p) in fx.players.iter().enumerate() {
        let root = if i == 2 { lie } else { truth };
        f.handle_claim(Claim::sign(p, digest, root)).unwrap();
    }
    // The first referee is corrupt; the others re-execute the real world contract.
    let mut karma = Karma::default();
    let corrupt = selected[0];
    let a = fx
        .referee(&corrupt)
        .attest(&mut Fixed(lie), &fx.panel, &fx.checkpoint, 0, &fx.log)
        .unwrap();
    f.handle_attestation(a).unwrap();
    for (n, key) in selected[1..].iter().enumerate() {
        let mut exec = HostExecutor { host: &fx.host };
        let a = fx
            .referee(key)
            .attest(&mut exec, &fx.panel, &fx.checkpoint, 0, &fx.log)
            .unwrap();
        assert_eq!(a.root, truth);
        f.handle_attestation(a).unwrap();
        // Not final before a quorum of the 16.
        assert_eq!(f.finalised().is_some(), n + 1 >= quorum(16));
        if f.finalised().is_some() {
            break;
        }
    }
    assert_eq!(f.finalised().unwrap().root, truth);
    f.finalised().unwrap().verify(&fx.panel).unwrap();
    let evs = events(&mut f);
    evs.iter().for_each(|e| karma.record(e));
    let Some(FinaliserEvent::Finalised {
        agreeing_players, ..
    }) = evs.first()
    else {
        panic!("finalised first: {evs:?}");
    };
    assert_eq!(agreeing_players.len(), 2);
    let fault = evs
        .iter()
        .find_map(|e| match e {
            FinaliserEvent::RefereeFaulted(fault) => Some(fault.clone()),
            _ => None,
        })
        .expect("the corrupt referee is faulted");
    assert_eq!(fault.referee(), corrupt);
    fault.verify(&fx.panel).unwrap();
    let claim = evs
        .iter()
        .find_map(|e| match e {
            FinaliserEvent::RequestJudgement { claim, referees } => {
                assert_eq!(referees.len(), 64);
                Some(*claim)
            }
            _ => None,
        })
        .expect("the cheater's claim goes to the panel");
    assert_eq!(claim.player, fx.players[2].public_key());
    // The whole panel judges (re-executing once each); > 2/3 of it make a verdict.
    let mut shares = 0;
    for key in fx.panel.keys() {
        let mut exec = HostExecutor { host: &fx.host };
        let share = fx
            .referee(key)
            .judge(&mut exec, &fx.panel, &fx.checkpoint, &fx.log, &claim)
            .unwrap();
        f.handle_verdict_share(share).unwrap();
        shares += 1;
        if shares == fx.panel.verdict_quorum() {
            break;
        }
    }
    let evs = events(&mut f);
    evs.iter().for_each(|e| karma.record(e));
    let Some(FinaliserEvent::CheatDetected {
        player,
        bond,
        verdict,
        ..
    }) = evs.first()
    else {
        panic!("cheat detected: {evs:?}");
    };
    assert_eq!(*player, fx.players[2].public_key());
    let terms = fx
        .panel
        .bond_terms(Epoch(10), vec![fx.players[0].public_key()]);
    let output = Output {
        owner: *player,
        amount: Amount(1_000),
        bond: Some(terms.clone()),
    };
    Evidence::Verdict(verdict.clone())
        .verify(bond, &output)
        .unwrap();
    // The same verdict cannot forfeit an honest player's bond.
    let honest_bond = fx
        .checkpoint
        .roster
        .member(&fx.players[0].public_key())
        .unwrap()
        .bond;
    assert!(
        Evidence::Verdict(verdict.clone())
            .verify(&honest_bond, &output)
            .is_err()
    );
    // Honest claims are never judged: a share against an honest player is refused.
    let honest_claim = Claim::sign(&fx.players[0], digest, truth);
    let mut exec = HostExecutor { host: &fx.host };
    assert_eq!(
        fx.referee(&fx.panel.keys()[0]).judge(
            &mut exec,
            &fx.panel,
            &fx.checkpoint,
            &fx.log,
            &honest_claim
        ),
        Err(RefereeError::ClaimAgrees)
    );
    let id = |k: &meshwork::proto::identity::PublicKey| PeerId::from_public_key(k);
    assert_eq!(karma.score(&id(&fx.players[0].public_key())), 1);
    assert_eq!(karma.score(&id(&fx.players[2].public_key())), -100);
    assert_eq!(karma.score(&id(&corrupt)), -100);
    assert_eq!(karma.score(&id(&selected[1])), 1);
}

#[test]
fn wrong_code_hash_is_refused_before_running() {
    let fx = fixture();
    let (_, selected) = fx.finaliser();
    // A referee agreed to run other code.
    let mut other = Referee::new(
        fx.referees
            .iter()
            .find(|r| r.public_key() == selected[0])
            .unwrap()
            .clone(),
        CodeHash([9; 32]),
    );
    let mut exec = HostExecutor { host: &fx.host };
    assert!(matches!(
        other.attest(&mut exec, &fx.panel, &fx.checkpoint, 0, &fx.log),
        Err(RefereeError::CodeHashMismatch { .. })
    ));
    // A checkpoint naming other code than the state's world runs: refused by `execute`.
    let mut c = fx.checkpoint.clone();
    c.code_hash = CodeHash([9; 32]);
    assert!(matches!(
        execute(&fx.host, &c, &fx.log),
        Err(RefereeError::CodeHashMismatch { .. })
    ));
    // State at another root.
    let mut c = fx.checkpoint.clone();
    c.prior_root = StateRoot([1; 32]);
    assert!(matches!(
        execute(&fx.host, &c, &fx.log),
        Err(RefereeError::PriorRootMismatch { .. })
    ));
}

#[test]
fn wrong_roster_is_refused() {
    let fx = fixture();
    let (_, selected) = fx.finaliser();
    // The checkpoint's roster is not the one the panel (session) was drawn for.
    let mut c = fx.checkpoint.clone();
    c.roster = roster_of(&fx.players[..2]);
    let mut exec = HostExecutor { host: &fx.host };
    assert_eq!(
        fx.referee(&selected[0])
            .attest(&mut exec, &fx.panel, &c, 0, &fx.log),
        Err(RefereeError::WrongRoster)
    );
    assert_eq!(
        Finaliser::new(c, fx.panel.clone(), 0, FinaliserConfig::default()).unwrap_err(),
        RefereeError::WrongRoster
    );
    // A log for another number of players than the roster.
    let mut log = InputLogBuilder::new(100, 2);
    for _ in 0..30 {
        log.push_frame(&[vec![], vec![]]).unwrap();
    }
    let log = log.finish().unwrap();
    let mut c = fx.checkpoint.clone();
    c.input_log_hash = log.hash();
    assert!(matches!(
        execute(&fx.host, &c, &log),
        Err(RefereeError::BadLog(_))
    ));
    // Unsorted or duplicate rosters do not decode.
    let members = fx.checkpoint.roster.members().to_vec();
    let mut reversed = members.clone();
    reversed.reverse();
    assert!(matches!(
        Roster::try_from(reversed),
        Err(RefereeError::BadRoster(_))
    ));
    let dup = vec![members[0], members[0]];
    assert!(Roster::new(dup).is_err());
    assert!(Roster::new(Vec::new()).is_err());
    // A claim by someone outside the roster.
    let (mut f, _) = fx.finaliser();
    let outsider = Identity::from_seed([42; 32]);
    assert_eq!(
        f.handle_claim(Claim::sign(
            &outsider,
            fx.checkpoint.digest(),
            StateRoot([1; 32])
        )),
        Err(RefereeError::NotAPlayer(outsider.public_key()))
    );
}

#[test]
fn forged_and_duplicate_attestations_are_refused() {
    let fx = fixture();
    let (mut f, selected) = fx.finaliser();
    let digest = fx.checkpoint.digest();
    let root = StateRoot([5; 32]);
    let id = |k| fx.referees.iter().find(|r| r.public_key() == k).unwrap();
    // Signed by another key than the one it names.
    let mut forged = Attestation::sign(id(selected[1]), digest, root);
    forged.referee = selected[0];
    assert_eq!(
        f.handle_attestation(forged),
        Err(RefereeError::BadSignature(selected[0]))
    );
    // A root changed after signing.
    let mut changed = Attestation::sign(id(selected[0]), digest, root);
    changed.root = StateRoot([6; 32]);
    assert_eq!(
        f.handle_attestation(changed),
        Err(RefereeError::BadSignature(selected[0]))
    );
    // Another checkpoint.
    let other = Attestation::sign(id(selected[0]), CheckpointDigest([1; 32]), root);
    assert_eq!(
        f.handle_attestation(other),
        Err(RefereeError::WrongCheckpoint)
    );
    // A referee not selected for this checkpoint.
    let stranger = fx
        .panel
        .keys()
        .iter()
        .find(|k| !selected.contains(k))
        .unwrap();
    assert_eq!(
        f.handle_attestation(Attestation::sign(id(*stranger), digest, root)),
        Err(RefereeError::NotSelected(*stranger))
    );
    let mut exec = Fixed(root);
    assert_eq!(
        fx.referee(stranger)
            .attest(&mut exec, &fx.panel, &fx.checkpoint, 0, &fx.log),
        Err(RefereeError::NotSelected(*stranger))
    );
    // Duplicates: the same attestation twice, or a second root from the same referee.
    let a = Attestation::sign(id(selected[0]), digest, root);
    f.handle_attestation(a).unwrap();
    assert_eq!(
        f.handle_attestation(a),
        Err(RefereeError::Duplicate(selected[0]))
    );
    assert_eq!(
        f.handle_attestation(Attestation::sign(
            id(selected[0]),
            digest,
            StateRoot([7; 32])
        )),
        Err(RefereeError::Duplicate(selected[0]))
    );
    // Duplicate claims too.
    let c = Claim::sign(&fx.players[0], digest, root);
    f.handle_claim(c).unwrap();
    assert_eq!(
        f.handle_claim(c),
        Err(RefereeError::Duplicate(fx.players[0].public_key()))
    );
    // Forged verdict share: signed by a referee for another bond.
    let share = VerdictShare::sign(
        id(selected[0]),
        digest,
        fx.players[1].public_key(),
        OutputId([3; 32]),
    );
    assert!(f.handle_verdict_share(share).is_err());
}

#[test]
fn a_player_cannot_referee_its_own_session() {
    let fx = fixture();
    // The panel never holds a player, even when players are bonded referees.
    let mut keys: Vec<_> = fx.referees.iter().map(|r| r.public_key()).collect();
    keys.extend(fx.players.iter().map(|p| p.public_key()));
    let pool = RefereePool::new(keys).unwrap();
    let panel = Panel::draw(&pool, &fx.checkpoint.session, &fx.checkpoint.roster).unwrap();
    for p in &fx.players {
        assert!(!panel.contains(&p.public_key()));
    }
    // A player asked to referee refuses; a finaliser refuses a player's attestation.
    let mut own = Referee::new(fx.players[0].clone(), fx.code);
    let mut exec = Fixed(StateRoot([1; 32]));
    assert_eq!(
        own.attest(&mut exec, &fx.panel, &fx.checkpoint, 0, &fx.log),
        Err(RefereeError::RefereeInSession(fx.players[0].public_key()))
    );
    let (mut f, _) = fx.finaliser();
    let a = Attestation::sign(&fx.players[0], fx.checkpoint.digest(), StateRoot([1; 32]));
    assert_eq!(
        f.handle_attestation(a),
        Err(RefereeError::RefereeInSession(fx.players[0].public_key()))
    );
}

#[test]
fn oversized_and_malformed_logs_are_refused() {
    assert!(matches!(
        InputLog::from_bytes(vec![0; LOG_BYTES_MAX + 1]),
        Err(RefereeError::BadLog("too many bytes"))
    ));
    let mut b = InputLogBuilder::new(0, 1);
    for _ in 0..FRAMES_PER_CHECKPOINT_MAX {
        b.push_frame(&[vec![]]).unwrap();
    }
    assert!(b.push_frame(&[vec![]]).is_err(), "frame bound");
    let mut b = InputLogBuilder::new(0, 1);
    let long = vec![1u8; usize::from(ACTION_BYTES_MAX) + 1];
    assert!(b.push_frame(&[vec![long]]).is_err(), "action bound");
    let many = vec![vec![1u8]; usize::from(ACTIONS_PER_FRAME_MAX) + 1];
    assert!(b.push_frame(&[many]).is_err(), "actions per frame bound");
    assert!(
        b.push_frame(&[vec![], vec![]]).is_err(),
        "one input per player"
    );
    assert!(b.finish().is_err(), "no frames");
    // Truncated, trailing and zero-player logs.
    let mut b = InputLogBuilder::new(0, 2);
    b.push_frame(&[vec![place(1, 1)], vec![]]).unwrap();
    let good = b.finish().unwrap().as_bytes().to_vec();
    assert!(InputLog::from_bytes(good[..good.len() - 1].to_vec()).is_err());
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(InputLog::from_bytes(trailing).is_err());
    let mut zero = good.clone();
    zero[8] = 0;
    assert!(InputLog::from_bytes(zero).is_err());
    assert!(InputLog::from_bytes(good).is_ok());
    // An oversized log inside a message does not decode.
    let fx = fixture();
    let msg = RefereeMsg::Request {
        checkpoint: fx.checkpoint.clone(),
        attempt: 0,
        log: fx.log.clone(),
    };
    let bytes = msg.encode().unwrap();
    assert_eq!(RefereeMsg::decode(&bytes).unwrap(), msg);
    assert!(RefereeMsg::decode(&bytes[..bytes.len() - 3]).is_err());
}

#[test]
fn no_quorum_retries_with_the_next_set_and_never_finalises_a_wrong_root() {
    let fx = fixture();
    let (mut f, first) = fx.finaliser();
    let truth = StateRoot([1; 32]);
    let lie = StateRoot([2; 32]);
    // Six of sixteen lie, ten tell the truth: neither reaches 11.
    for (i, key) in first.iter().enumerate() {
        let root = if i < 6 { lie } else { truth };
        let a = fx
            .referee(key)
            .attest(&mut Fixed(root), &fx.panel, &fx.checkpoint, 0, &fx.log)
            .unwrap();
        f.handle_attestation(a).unwrap();
    }
    assert!(f.finalised().is_none());
    f.handle_timeout(1_999);
    assert!(f.poll_event().is_none(), "not before the deadline");
    f.handle_timeout(2_000);
    let evs = events(&mut f);
    assert!(matches!(&evs[0], FinaliserEvent::Unresponsive(_)) || evs.len() == 1);
    let second = evs
        .iter()
        .find_map(|e| match e {
            FinaliserEvent::RequestAttestations {
                attempt: 1,
                referees,
            } => Some(referees.clone()),
            _ => None,
        })
        .expect("the next set is asked");
    assert!(second.iter().all(|k| !first.contains(k)), "disjoint sets");
    for key in &second {
        let a = fx
            .referee(key)
            .attest(&mut Fixed(truth), &fx.panel, &fx.checkpoint, 1, &fx.log)
            .unwrap();
        f.handle_attestation(a).unwrap();
    }
    let cert = f.finalised().unwrap();
    assert_eq!((cert.root, cert.attempt), (truth, 1));
    let faulted = events(&mut f)
        .iter()
        .filter(|e| matches!(e, FinaliserEvent::RefereeFaulted(_)))
        .count();
    assert_eq!(faulted, 6, "the first set's liars are faulted");

    // Nobody answers at all: every set is tried, then the checkpoint stalls, unfinalised.
    let (mut f, _) = fx.finaliser();
    let mut now = 0;
    while let Some(t) = f.poll_timeout() {
        now = now.max(t);
        f.handle_timeout(now);
    }
    assert!(f.is_stalled());
    assert!(f.finalised().is_none());
    assert_eq!(f.attempt(), fx.panel.attempts() - 1);
    assert!(events(&mut f).contains(&FinaliserEvent::Stalled));
}

#[test]
fn a_session_id_depends_on_everything_it_continues_from() {
    let fx = fixture();
    let r = &fx.checkpoint.roster;
    let base = SessionId::derive(
        &CheckpointDigest::default(),
        &fx.world,
        &fx.code,
        &fx.checkpoint.prior_root,
        r,
    );
    assert_eq!(base, fx.checkpoint.session);
    let changed = [
        SessionId::derive(
            &CheckpointDigest([1; 32]),
            &fx.world,
            &fx.code,
            &fx.checkpoint.prior_root,
            r,
        ),
        SessionId::derive(
            &CheckpointDigest::default(),
            &fx.world,
            &fx.code,
            &StateRoot([1; 32]),
            r,
        ),
        SessionId::derive(
            &CheckpointDigest::default(),
            &fx.world,
            &fx.code,
            &fx.checkpoint.prior_root,
            &roster_of(&fx.players[..2]),
        ),
    ];
    for c in changed {
        assert_ne!(c, base);
    }
}
