//! Overlay benchmark on the simulator: bootstrap N peers, route 10,000 messages to random keys,
//! print hops (p50/p95/max), frames per delivery, live links per peer and memory per peer.
//!
//! Run: `cargo bench -p meshwork --features sim --bench overlay`
//! Sizes: `MESHWORK_BENCH_SIZES=1000,10000,100000` (the default).

#![expect(
    unsafe_code,
    reason = "a counting global allocator measures memory per simulated peer"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use meshwork::sim::{Sim, SimConfig};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY-free wrapper: delegates to the system allocator and counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    let sizes: Vec<usize> = std::env::var("MESHWORK_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "overlay benchmark (simulator, no faults, links_max 24, k 8, 10,000 messages to random keys)"
    );
    println!(
        "{:>7} {:>9} {:>9} {:>5} {:>5} {:>5} {:>10} {:>9} {:>9} {:>10} {:>12} {:>9}",
        "peers",
        "delivered",
        "closest",
        "p50",
        "p95",
        "max",
        "frames/msg*",
        "links avg",
        "links max",
        "state B/p",
        "process B/p",
        "wall s"
    );
    for n in sizes {
        let start = Instant::now();
        let before = LIVE.load(Ordering::Relaxed);
        let mut sim = Sim::new(SimConfig {
            seed: 7,
            ..SimConfig::default()
        });
        // A minute of joining, at 50 to 500 joins per virtual second (MESHWORK_BENCH_JOINS_PER_S
        // overrides). At 1,666 per second (100k in a minute) dials outran routing-table updates:
        // 17 of 43 link requests per peer timed out and the network was still re-dialling through
        // the settling minute, which then took 33 minutes of wall time alone.
        let joins_per_s = std::env::var("MESHWORK_BENCH_JOINS_PER_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| (n as u64 / 60).clamp(50, 500));
        // In tenths, so a long run shows its progress and what a join cost the network in each.
        let mut grown = 0;
        let mut last = (0, 0, 0, 0);
        for tenth in 1..=10 {
            let upto = n * tenth / 10;
            let joined = (upto - grown).max(1) as f64;
            sim.grow(upto - grown, joins_per_s);
            grown = upto;
            let frames = sim.frame_counts().0;
            let opened = sim.links_opened();
            let (mut dials, mut forwarded) = (0, 0);
            for slot in sim.live_slots() {
                if let Some(o) = sim.overlay(slot) {
                    dials += o.stats().dials;
                    forwarded += o.stats().forwarded;
                }
            }
            eprintln!(
                "  [{n} peers] {grown} joined after {:.1} s; per join in this tenth: {:.0} frames, {:.1} links opened, {:.1} link requests, {:.0} routed forwards",
                start.elapsed().as_secs_f64(),
                (frames - last.0) as f64 / joined,
                (opened - last.1) as f64 / joined,
                (dials - last.2) as f64 / joined,
                (forwarded - last.3) as f64 / joined,
            );
            last = (frames, opened, dials, forwarded);
        }
        let grown_s = start.elapsed().as_secs_f64();
        sim.run_for(60_000);
        eprintln!(
            "  [{n} peers] wall: {grown_s:.1} s to join ({} joins per virtual s), {:.1} s for 60 virtual s of settling",
            joins_per_s,
            start.elapsed().as_secs_f64() - grown_s
        );
        let process_bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
        let (queued, queue_cap, sim_links) = sim.overhead();
        eprintln!(
            "  [{n} peers] sim overhead: {queued} events queued (capacity {queue_cap}, {} B each), {sim_links} links",
            size_of::<(u64, u64, u64, Vec<u8>)>()
        );
        let (mut dials, mut refused, mut timed_out, mut handshakes_rejected) = (0, 0, 0, 0);
        let (mut dup, mut room, mut shed) = (0, 0, 0);
        for slot in sim.live_slots() {
            if let Some(o) = sim.overlay(slot) {
                let s = o.stats();
                dials += s.dials;
                refused += s.dials_refused;
                timed_out += s.dials_timed_out;
                handshakes_rejected += s.handshakes_rejected;
                dup += s.links_closed_duplicate;
                room += s.links_closed_for_room;
                shed += s.links_shed;
            }
        }
        eprintln!(
            "  [{n} peers] per peer over joining and the settling minute: {:.1} link requests ({:.1} refused, {:.1} timed out), {:.1} links opened, {handshakes_rejected} handshakes rejected",
            dials as f64 / n as f64,
            refused as f64 / n as f64,
            timed_out as f64 / n as f64,
            sim.links_opened() as f64 / n as f64,
        );
        eprintln!(
            "  [{n} peers] links closed per peer: {:.1} duplicates, {:.1} for room, {:.1} over the cap",
            dup as f64 / n as f64,
            room as f64 / n as f64,
            shed as f64 / n as f64,
        );
        let report = sim.route_random(10_000, 10_000, 20_000);
        let links = sim.links_per_peer();
        let links_avg = links.iter().sum::<usize>() as f64 / links.len().max(1) as f64;
        println!(
            "{:>7} {:>8.2}% {:>8.2}% {:>5} {:>5} {:>5} {:>10.1} {:>9.1} {:>9} {:>10} {:>12} {:>9.1}",
            n,
            report.delivered as f64 * 100.0 / report.sent.max(1) as f64,
            report.success() * 100.0,
            report.hops_quantile(0.5),
            report.hops_quantile(0.95),
            report.hops.last().copied().unwrap_or(0),
            report.frames as f64 / report.delivered.max(1) as f64,
            links_avg,
            links.iter().max().copied().unwrap_or(0),
            sim.overlay_bytes_per_peer(),
            process_bytes / n,
            start.elapsed().as_secs_f64(),
        );
    }
    println!(
        "delivered: reached some peer; closest: reached the live peer closest to its key (the target)"
    );
    println!(
        "* every frame the network carried in the 30 s message window (routed hops, acks, pings, lookups) / deliveries"
    );
    println!(
        "state B/p: the overlay cores' own bytes; process B/p: all live heap of the simulator / peers"
    );
    println!(
        "targets: p95 hops <= 10 at 100k, links avg <= 24, <= 16384 B per simulated peer (seed budget 65536)"
    );
}
