//! Referee benchmark: prints the figures issue 6 asks of the referee core.
//!
//! Run `scripts/build-contracts.sh` first, then `cargo bench -p meshwork --features sim --bench referee`.
//!
//! - **Referee load**: checkpoints verified per second per core. One checkpoint = K = 30 frames
//!   of a 16-player region in which every player places a block every frame (each frame one
//!   world `tick` input of 16 paid placements, the real world and token contracts on wasmi),
//!   re-executed on a fork of the prior state by [`Referee::attest`] (code-hash and log checks,
//!   execution, the attestation's signature), plus verifying the 16 players' signed claims.
//! - **Input log bytes per player per second at 60 Hz**, from the real encoded logs: every
//!   player acting every frame, a realistic 10% of frames, idle; and the bytes of the request a
//!   referee receives per checkpoint.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use meshwork::proto::contract::{Address, ContractHost, ContractId};
use meshwork::proto::identity::{Identity, PeerId};
use meshwork::proto::ledger::OutputId;
use meshwork::proto::referee::{
    Checkpoint, CheckpointDigest, Claim, HostExecutor, InputLog, InputLogBuilder, Member, Panel,
    Referee, RefereeMsg, RefereePool, Roster, SessionId,
};
use meshwork::sim::sessions::sandbox_genesis;

/// Frames per checkpoint.
const K: u16 = 30;
/// Players in the region.
const PLAYERS: u8 = 16;

fn built(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/target/wasm")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/build-contracts.sh first",
            path.display()
        )
    })
}

/// This thread's on-CPU time (Linux), so other builds on the shared machine are not counted.
fn cpu_time() -> Option<Duration> {
    std::thread::yield_now();
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Mean time per run of `f` over the fastest of 5 slices of about `budget / 5` each.
fn time_per_run(budget: Duration, mut f: impl FnMut()) -> Duration {
    f();
    (0..5)
        .map(|_| {
            let (start, cpu) = (Instant::now(), cpu_time());
            let mut runs = 0u32;
            while start.elapsed() < budget / 5 || runs == 0 {
                f();
                runs += 1;
            }
            let spent = match (cpu, cpu_time()) {
                (Some(a), Some(b)) if b > a => b - a,
                _ => start.elapsed(),
            };
            spent / runs
        })
        .min()
        .expect("five slices")
}

fn address(i: &Identity) -> Address {
    Address(PeerId::from_public_key(&i.public_key()).0)
}

/// The world with `PLAYERS` funded players who delegated to the session sequencer.
fn world(players: &[Identity]) -> (ContractHost, ContractId) {
    let addresses: Vec<Address> = players.iter().map(address).collect();
    let g = sandbox_genesis(
        &built("token"),
        &built("world"),
        (4, 16, 10),
        &addresses,
        1_000_000,
    );
    (g.host, g.world)
}

/// K frames; in each, player `p` acts with probability `percent` (a place, on its own cells).
fn log(percent: u64) -> InputLog {
    let mut b = InputLogBuilder::new(0, PLAYERS);
    let mut roll = 0x1234_5678_u64;
    for f in 0..u32::from(K) {
        let frame: Vec<Vec<Vec<u8>>> = (0..u32::from(PLAYERS))
            .map(|p| {
                roll = roll.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                if (roll >> 33) % 100 >= percent {
                    return Vec::new();
                }
                let mut a = vec![0x01];
                a.extend_from_slice(&(p * 4 + f % 4).to_le_bytes());
                a.extend_from_slice(&(f / 4).to_le_bytes());
                a.push(1);
                vec![a]
            })
            .collect();
        b.push_frame(&frame).expect("within bounds");
    }
    b.finish().expect("within bounds")
}

fn main() {
    let players: Vec<Identity> = (1..=PLAYERS)
        .map(|i| Identity::from_seed([i; 32]))
        .collect();
    let referees: Vec<Identity> = (100..180u8).map(|i| Identity::from_seed([i; 32])).collect();
    let (host, world) = world(&players);
    let code = host.code_of(&world).expect("world");
    let roster = Roster::new(
        players
            .iter()
            .map(|p| Member {
                key: p.public_key(),
                bond: OutputId([p.public_key().0[0]; 32]),
            })
            .collect(),
    )
    .expect("roster");
    let session = SessionId::derive(
        &CheckpointDigest::default(),
        &world,
        &code,
        &host.root(),
        &roster,
    );
    let pool = RefereePool::new(referees.iter().map(|r| r.public_key()).collect()).expect("pool");
    let panel = Panel::draw(&pool, &session, &roster).expect("panel");
    let full = log(100);
    let checkpoint = Checkpoint {
        session,
        seq: 0,
        frame: u64::from(K),
        world,
        code_hash: code,
        prior_root: host.root(),
        input_log_hash: full.hash(),
        roster,
    };
    let me = panel.selected(0, 0).expect("attempt 0")[0];
    let identity = referees
        .iter()
        .find(|r| r.public_key() == me)
        .expect("a referee")
        .clone();
    let digest = checkpoint.digest();
    let executed = meshwork::proto::referee::execute(&host, &checkpoint, &full).expect("runs");
    let root = executed.root();
    // Every player's block of every frame is placed (a refused action would still be a
    // successful tick, just a cheaper one to time): empty before, present after.
    let block_key = |f: u32, p: u32| {
        let mut k = vec![b'B'];
        k.extend_from_slice(&(p * 4 + f % 4).to_le_bytes());
        k.extend_from_slice(&(f / 4).to_le_bytes());
        k
    };
    for f in 0..u32::from(K) {
        for p in 0..u32::from(PLAYERS) {
            let key = block_key(f, p);
            assert!(host.read(&world, &key).expect("world").is_none());
            assert!(
                executed.read(&world, &key).expect("world").is_some(),
                "frame {f}: player {p}'s block was placed"
            );
        }
    }
    let claims: Vec<Claim> = players
        .iter()
        .map(|p| Claim::sign(p, digest, root))
        .collect();

    println!("referee benchmark (K = {K} frames, {PLAYERS} players placing every frame)");
    let budget = Duration::from_secs(4);
    let execute_only = time_per_run(budget, || {
        let next =
            meshwork::proto::referee::execute(&host, &checkpoint, black_box(&full)).expect("runs");
        black_box(next.root());
    });
    let verify = time_per_run(budget, || {
        // A fresh referee: nothing remembered, so it really re-executes.
        let mut referee = Referee::new(identity.clone(), code);
        let mut exec = HostExecutor { host: &host };
        let a = referee
            .attest(&mut exec, &panel, &checkpoint, 0, black_box(&full))
            .expect("attests");
        assert_eq!(a.root, root);
        for c in &claims {
            c.verify().expect("valid claim");
        }
    });
    let sigs = time_per_run(budget / 4, || {
        for c in &claims {
            c.verify().expect("valid claim");
        }
    });
    println!(
        "  re-execution     {:>8.2} ms per checkpoint ({:.1} µs per 16-player tick)",
        execute_only.as_secs_f64() * 1e3,
        execute_only.as_secs_f64() * 1e6 / f64::from(K)
    );
    println!(
        "  claims           {:>8.2} ms per checkpoint (16 signature checks)",
        sigs.as_secs_f64() * 1e3
    );
    println!(
        "  referee load     {:>8.1} checkpoints verified per second per core ({:.0} ticks/s; \
         attest = checks + re-execution + signature, plus the 16 claims)",
        1.0 / verify.as_secs_f64(),
        f64::from(K) / verify.as_secs_f64()
    );
    println!("input log at 60 Hz ({PLAYERS} players, K = {K}):");
    let seconds = f64::from(K) / 60.0;
    for (name, percent) in [("every frame", 100), ("10% of frames", 10), ("idle", 0)] {
        let l = log(percent);
        let request = RefereeMsg::Request {
            checkpoint: checkpoint.clone(),
            attempt: 0,
            log: l.clone(),
        }
        .encode()
        .expect("encodes");
        println!(
            "  {name:<14} {:>7.1} bytes per player per second (log {} bytes; a referee's \
             request {} bytes per checkpoint)",
            l.as_bytes().len() as f64 / f64::from(PLAYERS) / seconds,
            l.as_bytes().len(),
            request.len()
        );
    }
    let claim = RefereeMsg::Claim(claims[0])
        .encode()
        .expect("encodes")
        .len();
    let attestation = RefereeMsg::Attestation(meshwork::proto::referee::Attestation::sign(
        &identity, digest, root,
    ))
    .encode()
    .expect("encodes")
    .len();
    println!(
        "  per checkpoint: a claim {claim} bytes to each player, an attestation {attestation} \
         bytes from each of 16 referees to each player"
    );
}
