//! Fetch on the simulator: 2,000 peers over the real overlay, 20% of responders lying (wrong
//! contract results, wrong blocks) and 10% answering late, a 7-referee audit committee, and a
//! real ledger committee certifying every bond, redemption and forfeit.

use meshwork::sim::fetch::{FetchSim, FetchSimConfig, Role};

use crate::seeds::{seeds, slow, with_seed};

/// CI runs one 2,000-peer seed (a few minutes); `MESHWORK_SLOW_TESTS=1` adds more.
const CORPUS: [u64; 1] = [1];
const SLOW_CORPUS: [u64; 3] = [1, 2, 3];

fn quantile(v: &[u64], q: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

#[test]
fn fetch_sim_liars_lose_and_honest_responders_earn() {
    let peers = std::env::var("MESHWORK_FETCH_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let requests = if slow() { 20_000 } else { 3_000 };
    for seed in seeds(if slow() { &SLOW_CORPUS } else { &CORPUS }) {
        with_seed(
            "fetch_sim_liars_lose_and_honest_responders_earn",
            seed,
            |seed| {
                let mut s = FetchSim::new(FetchSimConfig {
                    seed,
                    peers,
                    ..FetchSimConfig::default()
                });
                s.write_blocks();
                s.requests(requests, 60_000);
                s.finish();
                let r = &s.report;
                let caught = r.verdicts as f64 / r.lies_audited.max(1) as f64;
                let hops: Vec<u64> = r.hops.iter().map(|&h| u64::from(h)).collect();
                println!(
                    "seed {seed}: {peers} peers ({} liars, {} late); requests {} answered {} failed {}; \
                 contract lies accepted {} (audited {}), wrong blocks rejected {}; verdicts {} \
                 (caught {:.1}% of audited lies), bonds forfeited {}, results retracted {}; \
                 tickets {} redeemed {} → redemptions per 1,000 paid requests {:.1} (all ledger \
                 ops incl. forfeits and re-bonds {:.1}); \
                 liars' net {} honest net {}; answer hops p50 {} p95 {}; latency p50 {} ms p95 {} ms",
                    s.role_count(Role::Liar),
                    s.role_count(Role::Late),
                    r.requests,
                    r.answered,
                    r.failed,
                    r.lies_accepted,
                    r.lies_audited - r.wrong_blocks,
                    r.wrong_blocks,
                    r.verdicts,
                    100.0 * caught,
                    r.bonds_forfeited,
                    r.retracted,
                    r.tickets,
                    r.redemptions,
                    1000.0 * r.redemptions as f64 / r.tickets.max(1) as f64,
                    1000.0 * r.ledger_ops as f64 / r.tickets.max(1) as f64,
                    r.liar_net,
                    r.honest_net,
                    quantile(&hops, 0.5),
                    quantile(&hops, 0.95),
                    quantile(&r.latency_ms, 0.5),
                    quantile(&r.latency_ms, 0.95),
                );
                assert!(
                    r.answered * 100 >= r.requests * 95,
                    "≥ 95% of requests answered"
                );
                assert!(r.lies_audited > 0, "the run audited some lies");
                assert_eq!(r.verdicts, r.lies_audited, "every audited lie is slashed");
                assert!(r.bonds_forfeited > 0);
                assert!(
                    r.redemptions > 0,
                    "winning tickets were redeemed on the ledger"
                );
                assert!(r.liar_net < 0, "liars lose money: {}", r.liar_net);
                assert!(r.honest_net > 0, "honest responders earn: {}", r.honest_net);
            },
        );
    }
}
