//! Sessions and referees: the simulator acceptance run (200 sessions of 2–8 players joining and
//! leaving, 20% with a cheater, 10% corrupt referees) over a fixed seed corpus, and one test
//! for each way the referee core refuses what a peer sends.
//!
//! The Rust contracts must be built first: `scripts/build-contracts.sh`.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly on the first surprise"
)]

mod rejections;

use meshwork::sim::sessions::{SessionSim, SessionSimConfig};

use crate::seeds::{seeds, slow, with_seed};

/// The fixed seed corpus CI runs.
const CORPUS: [u64; 2] = [1, 2];
/// More seeds with `MESHWORK_SLOW_TESTS=1`.
const SLOW_CORPUS: [u64; 6] = [1, 2, 3, 4, 5, 6];

pub(crate) use crate::contract::built;

fn config(seed: u64) -> SessionSimConfig {
    SessionSimConfig {
        seed,
        ..SessionSimConfig::new(built("token"), built("world"))
    }
}

/// Simulated time limit: far beyond what 200 sessions need (a few seconds each).
const RUN_MS_MAX: u64 = 10 * 60 * 1000;

#[test]
fn sessions_sim_finalises_true_roots_and_punishes_cheaters() {
    let corpus: &[u64] = if slow() { &SLOW_CORPUS } else { &CORPUS };
    for seed in seeds(corpus) {
        with_seed(
            "sessions_sim_finalises_true_roots_and_punishes_cheaters",
            seed,
            |seed| {
                let mut s = SessionSim::new(config(seed));
                s.run(RUN_MS_MAX);
                s.assert_punished();
                let r = s.report();
                println!(
                    "seed {seed}: sessions {} (cheating {}); checkpoints {} finalised {} stalled {} \
                     retries {}; finality p50 {:.2} p95 {:.2} round trips; cheats caught {}; \
                     corrupt referees caught {}; executions {} memo hits {}; messages {} ({} \
                     bytes), refusals {}; simulated {} ms",
                    r.sessions,
                    r.cheating_sessions,
                    r.checkpoints,
                    r.finalised,
                    r.stalled,
                    r.retries,
                    r.round_trips_quantile(0.5),
                    r.round_trips_quantile(0.95),
                    r.cheats_caught,
                    r.corrupt_referees_caught,
                    r.executions,
                    r.memo_hits,
                    r.messages,
                    r.bytes,
                    r.refusals,
                    s.now_ms(),
                );
                assert_eq!(r.sessions, 200);
                assert!(r.cheating_sessions >= 20, "the run has cheaters");
                assert!(r.checkpoints >= 200);
                assert_eq!(
                    r.finalised + r.stalled,
                    r.checkpoints,
                    "every checkpoint is decided"
                );
                assert!(r.cheats_caught > 0, "cheaters were caught");
                assert!(
                    r.corrupt_referees_caught > 0,
                    "corrupt referees were caught"
                );
                assert!(
                    r.executions >= r.checkpoints,
                    "every checkpoint was really executed"
                );
                assert!(
                    r.round_trips_quantile(0.95) <= 3.0,
                    "p95 finality within 3 round trips"
                );
            },
        );
    }
}

#[test]
fn sessions_sim_same_seed_same_trace() {
    let seed = seeds(&CORPUS)[0];
    with_seed("sessions_sim_same_seed_same_trace", seed, |seed| {
        let small = |seed| SessionSimConfig {
            sessions: 20,
            regions: 5,
            peers: 120,
            ..config(seed)
        };
        let mut a = SessionSim::new(small(seed));
        a.run(RUN_MS_MAX);
        let mut b = SessionSim::new(small(seed));
        b.run(RUN_MS_MAX);
        assert_eq!(a.trace_hash(), b.trace_hash());
        assert!(a.report().finalised > 10);
        let mut c = SessionSim::new(small(seed + 1));
        c.run(RUN_MS_MAX);
        assert_ne!(a.trace_hash(), c.trace_hash());
    });
}

#[test]
fn sessions_sim_checker_catches_a_corrupt_majority() {
    // With nine referees in ten corrupt, drawn sets hold corrupt quorums: the checker must
    // notice the wrong root the moment it is final (a checker that cannot fail proves nothing).
    let seed = seeds(&CORPUS)[0];
    let cfg = SessionSimConfig {
        sessions: 5,
        regions: 5,
        peers: 100,
        corrupt_percent: 90,
        ..config(seed)
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut s = SessionSim::new(cfg);
        s.run(RUN_MS_MAX);
    }));
    let message = result.expect_err("a corrupt majority finalises a wrong root");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("wrong root"), "{text}");
}
