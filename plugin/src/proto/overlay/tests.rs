//! Unit tests of the overlay core that need no simulator.

use super::OverlayConfig;
use crate::transport::memory::{MemoryNetwork, test_nodes};

/// A link that never falls idle (a message each way every 100 ms) still gets its round-trip
/// time measured, and measured again: busy links are probed every `rtt_probe_ms`.
#[test]
fn busy_links_get_their_round_trip_time_measured() {
    let net = MemoryNetwork::new();
    let mut nodes = test_nodes(&net, 2);
    let ids: Vec<_> = nodes.iter().map(|n| n.overlay.peer_id()).collect();
    let cfg = OverlayConfig::default();
    let mut pings_seen = 0;
    let mut now = 0;
    while now < 3 * cfg.rtt_probe_ms + 1_000 {
        now += 10;
        for (i, n) in nodes.iter_mut().enumerate() {
            if now % 100 == 0 {
                n.send(now, ids[1 - i], true, vec![i as u8; 32]);
            }
            n.tick(now);
        }
        let pinging = nodes[0].overlay.links.iter().any(|l| l.ping.is_some());
        if pinging {
            pings_seen += 1;
        }
    }
    assert!(nodes[0].overlay.link_count() >= 1, "the two nodes linked");
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            n.overlay.rtt_ms(&ids[1 - i]).is_some(),
            "node {i}: no round-trip time on a busy link"
        );
    }
    assert!(pings_seen >= 1);
    let probes = nodes[0]
        .overlay
        .links
        .iter()
        .map(|l| l.last_ping_ms)
        .max()
        .unwrap_or(0);
    assert!(
        probes >= 2 * cfg.rtt_probe_ms,
        "the link was probed again later (last probe at {probes} ms)"
    );
}
