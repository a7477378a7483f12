//! The ledger on the simulator: 1,000 clients, 64 validators (20% byzantine: equivocating or
//! withholding), double-spending clients, lottery tickets redeemed from escrows, loss and a
//! partition. Checked after every step:
//! no two certificates for one input, value conserved; after the heal: every honest payment
//! settled, caught equivocators lost their bonds. Same seed, same trace hash.

use meshwork::sim::ledger::{LedgerSim, LedgerSimConfig};

use crate::seeds::{seeds, slow, with_seed};

/// The fixed seed corpus CI runs.
const CORPUS: [u64; 2] = [1, 2];

/// Payments for `minutes` with 2% loss, a quarter of the network cut off for 30 s in the
/// middle, then a quiet period for retries to finish.
fn story(seed: u64, minutes: u64, cfg: LedgerSimConfig) -> LedgerSim {
    let mut s = LedgerSim::new(LedgerSimConfig { seed, ..cfg });
    let half = minutes * 30_000;
    s.run_for(half);
    s.partition_random(250_000);
    s.run_for(30_000);
    s.heal();
    s.run_for(half);
    s.set_paying(false);
    s.run_for(120_000);
    s
}

#[test]
fn ledger_sim_safe_live_and_punishing() {
    let minutes = if slow() { 20 } else { 4 };
    for seed in seeds(&CORPUS) {
        with_seed("ledger_sim_safe_live_and_punishing", seed, |seed| {
            let s = story(seed, minutes, LedgerSimConfig::default());
            let excused = s.assert_settled();
            s.assert_equivocators_punished();
            s.checker().assert_conserved();
            let r = s.report();
            println!(
                "seed {seed}: {} certificates; honest payments {} settled {} (excused {excused}); \
                 double spends {} (one side certified {}); equivocators caught {}, bonds \
                 forfeited {}; messages delivered {} dropped {}; round trips p50 {:.2} p95 {:.2}",
                s.checker().certificates(),
                r.honest_payments,
                r.honest_settled,
                r.double_spends,
                r.double_spends_one_side,
                r.equivocators_caught,
                r.bonds_forfeited,
                r.delivered,
                r.dropped,
                r.round_trips_quantile(0.5),
                r.round_trips_quantile(0.95),
            );
            assert_eq!(
                excused, 0,
                "every shard has an honest quorum by construction"
            );
            assert!(r.honest_payments > 500, "the run made payments");
            assert!(r.double_spends > 0, "the run tried double spends");
            assert!(r.equivocators_caught > 0, "some equivocation surfaced");
            assert_eq!(r.bonds_forfeited, r.equivocators_caught);
            println!(
                "seed {seed}: tickets issued {} won {} (P = 1/100); redemptions {} settled {}; \
                 unpaid (drained escrow) {}",
                r.tickets_issued,
                r.tickets_won,
                r.redemptions,
                r.redemptions_settled,
                r.tickets_unpaid,
            );
            assert!(r.redemptions > 10, "the run redeemed tickets");
            assert_eq!(
                r.redemptions_settled, r.redemptions,
                "every redemption from a free escrow output settles"
            );
            assert_eq!(r.tickets_won, r.redemptions + r.tickets_unpaid);
        });
    }
}

#[test]
fn ledger_sim_same_seed_same_trace() {
    let small = LedgerSimConfig {
        clients: 100,
        validators: 16,
        shard_size: 8,
        equivocators: 1,
        withholders: 1,
        double_spenders: 10,
        payments_per_s: 5,
        ..LedgerSimConfig::default()
    };
    let seed = seeds(&CORPUS)[0];
    with_seed("ledger_sim_same_seed_same_trace", seed, |seed| {
        let a = story(seed, 1, small.clone());
        let b = story(seed, 1, small.clone());
        assert_eq!(a.trace_hash(), b.trace_hash());
        assert!(a.checker().certificates() > 50);
        let c = story(seed + 1, 1, small.clone());
        assert_ne!(a.trace_hash(), c.trace_hash());
    });
}
