//! Two overlay nodes over real matchbox links, bootstrapped through the room at `url` and
//! driven until each is linked to the other (shared by the real-link benchmarks).

use std::time::{Duration, Instant};

use meshwork::proto::identity::Identity;
use meshwork::proto::overlay::{Overlay, OverlayConfig};
use meshwork::transport::Node;
use meshwork::transport::matchbox::{MatchboxConfig, MatchboxTransport};

/// Nodes from seeds 1 and 2 (the second joins 200 ms after the first), linked to each other
/// within 30 s (panics otherwise); `now` is the benchmark's millisecond clock.
pub fn linked_pair(
    url: &str,
    now: &dyn Fn() -> u64,
) -> (Node<MatchboxTransport>, Node<MatchboxTransport>) {
    let node = |seed: u8| {
        let overlay = Overlay::new(
            Identity::from_seed([seed; 32]),
            OverlayConfig::default(),
            now(),
            [seed; 32],
        );
        Node::new(overlay, MatchboxTransport::new(MatchboxConfig::new(url)))
    };
    let mut a = node(1);
    std::thread::sleep(Duration::from_millis(200));
    let mut b = node(2);
    let (ida, idb) = (a.overlay.peer_id(), b.overlay.peer_id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(a.overlay.linked_peers().any(|(p, _)| p == idb)
        && b.overlay.linked_peers().any(|(p, _)| p == ida))
    {
        assert!(Instant::now() < deadline, "the two peers did not link");
        a.tick(now());
        b.tick(now());
        std::thread::sleep(Duration::from_millis(1));
    }
    (a, b)
}
