//! Deterministic many-peer simulator: the real [`Overlay`] cores over an in-memory network with a
//! virtual clock. Latency, loss, duplication, partitions and churn all come from one `u64` seed;
//! the same seed gives the same trace hash. Used by tests and benchmarks (feature `sim`).
//!
//! What it models: per-link latency (fixed per link, so links stay FIFO like an ordered SCTP
//! stream), independent per-frame loss and duplication, partitions (frames between groups are
//! dropped), peers leaving gracefully (links close after one latency) or silently (peers find out
//! by timeout), and a bootstrap server that introduces a newcomer to a few random live peers.
//! A WebRTC link requested through the mesh opens `connect_delay_ms` after the accepting peer
//! agreed (standing in for the offer/answer exchange, which the real transport routes through
//! the same mesh).

pub mod fetch;
pub mod ledger;
pub mod sessions;

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::proto::identity::{Identity, PeerId};
use crate::proto::overlay::{Event, LinkId, Overlay, OverlayConfig, TransportId};

mod queue;
use queue::EventQueue;

/// Network and fault parameters of a run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// One-way link latency range (uniform).
    pub latency_ms_min: u64,
    /// See `latency_ms_min`.
    pub latency_ms_max: u64,
    /// Frame loss, in parts per million.
    pub loss_ppm: u32,
    /// Frame duplication, in parts per million.
    pub duplicate_ppm: u32,
    /// Peers a newcomer is introduced to by the bootstrap server.
    pub introductions: usize,
    /// Time from an accepted link request to the link opening.
    pub connect_delay_ms: u64,
    /// Overlay configuration of every peer.
    pub overlay: OverlayConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            latency_ms_min: 10,
            latency_ms_max: 60,
            loss_ppm: 0,
            duplicate_ppm: 0,
            introductions: 3,
            connect_delay_ms: 150,
            overlay: OverlayConfig::default(),
        }
    }
}

/// A routed message that arrived, as seen by the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Index of the receiving peer.
    pub at: usize,
    /// The claimed origin.
    pub origin: PeerId,
    /// The key it was sent to.
    pub target: PeerId,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Hops taken.
    pub hops: u8,
    /// Whether the receiver was the live peer closest to `target` when it arrived.
    pub at_closest: bool,
}

/// What happened to a batch of routed messages ([`Sim::route_random`]).
#[derive(Clone, Debug, Default)]
pub struct RoutingReport {
    /// Messages sent.
    pub sent: usize,
    /// Distinct messages that arrived somewhere.
    pub delivered: usize,
    /// Distinct messages that arrived at the live peer closest to their key.
    pub at_closest: usize,
    /// Hops of each distinct delivery, sorted.
    pub hops: Vec<u8>,
    /// Frames the network carried during the batch (all kinds, including acks and pings).
    pub frames: u64,
}

impl RoutingReport {
    /// The `q`-quantile (0.0..=1.0) of hops.
    pub fn hops_quantile(&self, q: f64) -> u8 {
        if self.hops.is_empty() {
            return 0;
        }
        let i = ((self.hops.len() - 1) as f64 * q).round() as usize;
        self.hops[i.min(self.hops.len() - 1)]
    }

    /// Fraction of sent messages delivered to the closest peer.
    pub fn success(&self) -> f64 {
        self.at_closest as f64 / self.sent.max(1) as f64
    }
}

#[derive(Debug)]
struct Node {
    overlay: Overlay,
    timer_at: u64,
    /// Peers this node agreed to take a link from, and when (the signalling stand-in's state).
    /// A dial that never comes is forgotten after [`ACCEPT_TTL_MS`]; a small sorted vector
    /// rather than a B-tree, whose first node alone is ~370 bytes and outlives its last entry.
    accepts: litemap::LiteMap<PeerId, u64>,
}

/// How long an accepted, undialled link waits in the simulated signalling (the overlay gives
/// up on a dial after its 10 s handshake timeout).
const ACCEPT_TTL_MS: u64 = 30_000;

#[derive(Debug, Clone, Copy)]
struct SimLink {
    a: usize,
    b: usize,
    latency_ms: u64,
}

/// Every link the run ever opened, indexed by link id (ids count up from 1 and are never
/// reused). A flat array of 12-byte records: the per-frame lookup is one memory access, where a
/// `BTreeMap` cost several cache misses per frame at 100k peers (it was a quarter of the run).
#[derive(Debug, Default)]
struct LinkTable {
    /// `(a, b, latency_ms)`; `a == u32::MAX` marks a closed link.
    rows: Vec<(u32, u32, u32)>,
    live: usize,
}

impl LinkTable {
    const CLOSED: u32 = u32::MAX;

    fn index(id: u64) -> Option<usize> {
        usize::try_from(id.checked_sub(1)?).ok()
    }

    /// Record a new link; its id is one more than the last one's.
    fn open(&mut self, l: SimLink) -> u64 {
        let slot = |v: usize| u32::try_from(v).expect("fewer than 4 billion simulated peers");
        let latency = u32::try_from(l.latency_ms).unwrap_or(u32::MAX);
        self.rows.push((slot(l.a), slot(l.b), latency));
        self.live += 1;
        self.opened()
    }

    /// Links opened so far (the last id).
    fn opened(&self) -> u64 {
        self.rows.len() as u64
    }

    fn get(&self, id: u64) -> Option<SimLink> {
        let &(a, b, latency) = self.rows.get(Self::index(id)?)?;
        (a != Self::CLOSED).then_some(SimLink {
            a: a as usize,
            b: b as usize,
            latency_ms: u64::from(latency),
        })
    }

    fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    fn remove(&mut self, id: u64) -> Option<SimLink> {
        let l = self.get(id)?;
        self.rows[Self::index(id)?].0 = Self::CLOSED;
        self.live -= 1;
        Some(l)
    }

    /// Open links touching `slot`, in id order.
    fn of(&self, slot: usize) -> Vec<u64> {
        let Ok(s) = u32::try_from(slot) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .zip(1u64..)
            .filter(|((a, b, _), _)| *a != Self::CLOSED && (*a == s || *b == s))
            .map(|(_, id)| id)
            .collect()
    }

    fn len(&self) -> usize {
        self.live
    }
}

#[derive(Debug)]
enum Ev {
    Timer {
        node: usize,
        at: u64,
    },
    Frame {
        link: u64,
        to: usize,
        bytes: Vec<u8>,
    },
    LinkUp {
        link: u64,
        node: usize,
        local: [u8; 16],
        remote: [u8; 16],
    },
    LinkDown {
        link: u64,
        node: usize,
    },
    Open {
        a: usize,
        b: usize,
    },
}

/// The simulator.
#[derive(Debug)]
pub struct Sim {
    cfg: SimConfig,
    now_ms: u64,
    rng: ChaCha8Rng,
    nodes: Vec<Option<Node>>,
    index: BTreeMap<PeerId, usize>,
    sorted: std::cell::RefCell<Option<Vec<(PeerId, usize)>>>,
    links: LinkTable,
    queue: EventQueue<Ev>,
    partition: Option<Vec<u8>>,
    trace: Sha256,
    deliveries: Vec<Delivery>,
    published: Vec<(usize, Vec<u8>)>,
    frames: u64,
    frames_dropped: u64,
    sent: u64,
    sent_at_clear: u64,
    frames_at_clear: u64,
}

impl Sim {
    /// An empty network.
    pub fn new(cfg: SimConfig) -> Self {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        Self {
            rng: ChaCha8Rng::from_seed(seed),
            cfg,
            now_ms: 0,
            nodes: Vec::new(),
            index: BTreeMap::new(),
            sorted: std::cell::RefCell::new(None),
            links: LinkTable::default(),
            queue: EventQueue::new(),
            partition: None,
            trace: Sha256::new(),
            deliveries: Vec::new(),
            published: Vec::new(),
            frames: 0,
            frames_dropped: 0,
            sent: 0,
            sent_at_clear: 0,
            frames_at_clear: 0,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.cfg.seed
    }

    /// Virtual time now.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The line that reproduces this run, printed by failing tests.
    pub fn reproduce_line(&self, test: &str) -> String {
        format!(
            "reproduce: SIM_SEED={} cargo test -p meshwork --features sim {test}",
            self.cfg.seed
        )
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn rand_below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.next_u64() % n }
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rand_below(1_000_000) < u64::from(ppm)
    }

    /// Add a peer; the bootstrap server introduces it to a few random live peers.
    pub fn add_peer(&mut self) -> usize {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let identity = Identity::from_seed(seed);
        self.rng.fill_bytes(&mut seed);
        let overlay = Overlay::new(identity, self.cfg.overlay.clone(), self.now_ms, seed);
        let id = overlay.peer_id();
        let slot = self.nodes.len();
        self.nodes.push(Some(Node {
            overlay,
            timer_at: u64::MAX,
            accepts: litemap::LiteMap::new(),
        }));
        self.index.insert(id, slot);
        *self.sorted.get_mut() = None;
        // A few random live peers other than the newcomer, drawn by rejection from the slots
        // before it (no pass over every peer per join: that made joining 100k peers quadratic).
        let want = self.cfg.introductions.min(self.index.len() - 1);
        let mut intro = BTreeSet::new();
        for _ in 0..want * 64 {
            if intro.len() >= want {
                break;
            }
            let pick = usize::try_from(self.rand_below(slot as u64)).expect("fits");
            if self.nodes[pick].is_some() {
                intro.insert(pick);
            }
        }
        for other in intro {
            self.schedule(self.now_ms, Ev::Open { a: other, b: slot });
        }
        self.arm_timer(slot);
        slot
    }

    /// Remove a peer. Graceful: its links close at the other ends after one latency; otherwise
    /// the others notice only by timeout.
    pub fn remove_peer(&mut self, slot: usize, graceful: bool) {
        let Some(node) = self.nodes.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.index.remove(&node.overlay.peer_id());
        *self.sorted.get_mut() = None;
        for id in self.links.of(slot) {
            let l = self.links.remove(id).expect("listed");
            let other = if l.a == slot { l.b } else { l.a };
            if graceful {
                self.schedule(
                    self.now_ms + l.latency_ms,
                    Ev::LinkDown {
                        link: id,
                        node: other,
                    },
                );
            }
        }
    }

    /// Indices of live peers.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_some())
            .map(|(i, _)| i)
    }

    /// Number of live peers.
    pub fn live_count(&self) -> usize {
        self.index.len()
    }

    /// The overlay of peer `slot`.
    pub fn overlay(&self, slot: usize) -> Option<&Overlay> {
        self.nodes
            .get(slot)
            .and_then(Option::as_ref)
            .map(|n| &n.overlay)
    }

    /// Mutable access to the overlay of a live peer (to send from it); re-arms its timer.
    pub fn with_overlay<R>(
        &mut self,
        slot: usize,
        f: impl FnOnce(&mut Overlay, u64) -> R,
    ) -> Option<R> {
        let now = self.now_ms;
        let r = f(&mut self.nodes.get_mut(slot)?.as_mut()?.overlay, now);
        self.drain(slot);
        Some(r)
    }

    /// Route `payload` from peer `from` toward `target`.
    pub fn send(&mut self, from: usize, target: PeerId, payload: Vec<u8>) {
        self.with_overlay(from, |o, now| o.send(now, target, false, payload));
    }

    /// The live peer closest to `key` (the right destination of a routed message): a walk down
    /// the binary trie of live ids, done with binary searches over the sorted index.
    pub fn closest_live(&self, key: &PeerId) -> Option<usize> {
        if self.sorted.borrow().is_none() {
            let v: Vec<(PeerId, usize)> = self.index.iter().map(|(k, s)| (*k, *s)).collect();
            *self.sorted.borrow_mut() = Some(v);
        }
        let sorted = self.sorted.borrow();
        let sorted = sorted.as_deref().expect("filled above");
        if sorted.is_empty() {
            return None;
        }
        let (mut lo, mut hi) = (0usize, sorted.len());
        for bit in 0..=255u8 {
            if hi - lo <= 1 {
                break;
            }
            let split = lo + sorted[lo..hi].partition_point(|(id, _)| !id.bit(bit));
            if key.bit(bit) {
                if split < hi {
                    lo = split;
                }
            } else if split > lo {
                hi = split;
            }
        }
        Some(sorted[lo].1)
    }

    /// Split live peers into groups (`group(slot)`); frames between groups are dropped.
    pub fn partition(&mut self, group: impl Fn(usize) -> u8) {
        self.partition = Some((0..self.nodes.len()).map(group).collect());
    }

    /// End the partition.
    pub fn heal(&mut self) {
        self.partition = None;
    }

    /// The bootstrap server introduces every live peer to `n` random live peers again, as when
    /// peers re-contact it after a split: once every link across a split has died, the halves
    /// can only find each other through a signalling path outside the mesh.
    pub fn reintroduce(&mut self, n: usize) {
        let live: Vec<usize> = self.live_slots().collect();
        for &a in &live {
            for _ in 0..n {
                let b = live[usize::try_from(self.rand_below(live.len() as u64)).expect("fits")];
                if a != b {
                    self.schedule(self.now_ms, Ev::Open { a, b });
                }
            }
        }
    }

    /// Deliveries so far.
    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// Forget recorded deliveries.
    pub fn clear_deliveries(&mut self) {
        self.sent_at_clear = self.sent;
        self.frames_at_clear = self.frames;
        self.deliveries.clear();
        self.published.clear();
    }

    /// Publications received so far, by peer index.
    pub fn published(&self) -> &[(usize, Vec<u8>)] {
        &self.published
    }

    /// Frames carried and frames dropped by faults so far.
    pub fn frame_counts(&self) -> (u64, u64) {
        (self.frames, self.frames_dropped)
    }

    /// Hash of everything that happened so far (same seed ⇒ same hash).
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// Run until virtual time `now + ms`.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while let Some((at, ev)) = self.queue.pop_until(end) {
            self.now_ms = at;
            self.step(ev);
        }
        self.now_ms = end;
        // A bootstrap burst must not count as per-peer memory for the rest of the run.
        self.queue.shrink();
    }

    fn step(&mut self, ev: Ev) {
        let now = self.now_ms;
        match ev {
            Ev::Timer { node, at } => {
                let Some(n) = self.nodes.get_mut(node).and_then(Option::as_mut) else {
                    return;
                };
                if n.timer_at != at {
                    return;
                }
                n.timer_at = u64::MAX;
                n.overlay.handle_timeout(now);
                self.trace.update([0u8]);
                self.trace.update((node as u64).to_le_bytes());
                self.drain(node);
            }
            Ev::Frame { link, to, bytes } => {
                if !self.links.contains(link) {
                    return;
                }
                let Some(n) = self.nodes.get_mut(to).and_then(Option::as_mut) else {
                    return;
                };
                n.overlay.handle_frame(now, LinkId(link), &bytes);
                self.trace.update([1u8]);
                self.trace.update(link.to_le_bytes());
                self.trace.update(&bytes);
                self.drain(to);
            }
            Ev::LinkUp {
                link,
                node,
                local,
                remote,
            } => {
                if !self.links.contains(link) {
                    return;
                }
                let Some(n) = self.nodes.get_mut(node).and_then(Option::as_mut) else {
                    return;
                };
                n.overlay.handle_link_up(
                    now,
                    LinkId(link),
                    TransportId(local),
                    TransportId(remote),
                );
                self.trace.update([2u8]);
                self.trace.update(link.to_le_bytes());
                self.drain(node);
            }
            Ev::LinkDown { link, node } => {
                let Some(n) = self.nodes.get_mut(node).and_then(Option::as_mut) else {
                    return;
                };
                n.overlay.handle_link_down(now, LinkId(link));
                self.trace.update([3u8]);
                self.trace.update(link.to_le_bytes());
                self.drain(node);
            }
            Ev::Open { a, b } => self.open_link(a, b),
        }
    }

    fn open_link(&mut self, a: usize, b: usize) {
        if self.nodes.get(a).is_none_or(Option::is_none)
            || self.nodes.get(b).is_none_or(Option::is_none)
        {
            return;
        }
        let latency_ms = self.cfg.latency_ms_min
            + self.rand_below(
                self.cfg
                    .latency_ms_max
                    .saturating_sub(self.cfg.latency_ms_min)
                    + 1,
            );
        let id = self.links.open(SimLink { a, b, latency_ms });
        let mut ta = [0u8; 16];
        let mut tb = [0u8; 16];
        self.rng.fill_bytes(&mut ta);
        self.rng.fill_bytes(&mut tb);
        let now = self.now_ms;
        self.schedule(
            now,
            Ev::LinkUp {
                link: id,
                node: a,
                local: ta,
                remote: tb,
            },
        );
        self.schedule(
            now,
            Ev::LinkUp {
                link: id,
                node: b,
                local: tb,
                remote: ta,
            },
        );
    }

    fn arm_timer(&mut self, slot: usize) {
        let Some(n) = self.nodes.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let at = n.overlay.poll_timeout().max(self.now_ms);
        if at < n.timer_at {
            n.timer_at = at;
            self.schedule(at, Ev::Timer { node: slot, at });
        }
    }

    /// Move a node's transmits onto the network and act on its events.
    fn drain(&mut self, slot: usize) {
        loop {
            let Some(n) = self.nodes.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if let Some(t) = n.overlay.poll_transmit() {
                self.transmit(slot, t.link.0, t.frame);
                continue;
            }
            let Some(ev) = n.overlay.poll_event() else {
                break;
            };
            match ev {
                Event::Delivered {
                    origin,
                    target,
                    payload,
                    hops,
                } => {
                    let at_closest = self.closest_live(&target) == Some(slot);
                    self.deliveries.push(Delivery {
                        at: slot,
                        origin,
                        target,
                        payload,
                        hops,
                        at_closest,
                    });
                }
                Event::Published { payload, .. } => self.published.push((slot, payload)),
                Event::Accept { peer } => {
                    let now = self.now_ms;
                    n.accepts
                        .retain(|_, at| now.saturating_sub(*at) < ACCEPT_TTL_MS);
                    n.accepts.insert(peer, now);
                }
                Event::Dial { peer } => {
                    let me = n.overlay.peer_id();
                    if let Some(&other) = self.index.get(&peer) {
                        let accepted = self.nodes[other].as_mut().is_some_and(|o| {
                            let hit = o.accepts.remove(&me).is_some();
                            if o.accepts.is_empty() {
                                o.accepts = litemap::LiteMap::new();
                            }
                            hit
                        });
                        if accepted {
                            let at = self.now_ms + self.cfg.connect_delay_ms;
                            self.schedule(at, Ev::Open { a: slot, b: other });
                        }
                    }
                }
                Event::CloseLink { link } => {
                    if let Some(l) = self.links.remove(link.0) {
                        let other = if l.a == slot { l.b } else { l.a };
                        self.schedule(
                            self.now_ms + l.latency_ms,
                            Ev::LinkDown {
                                link: link.0,
                                node: other,
                            },
                        );
                    }
                }
                Event::PeerJoined { .. }
                | Event::PeerLeft { .. }
                | Event::Signal { .. }
                | Event::LookupDone { .. } => {}
            }
        }
        self.arm_timer(slot);
    }

    fn transmit(&mut self, from: usize, link: u64, bytes: Vec<u8>) {
        let Some(l) = self.links.get(link) else {
            return;
        };
        let to = if l.a == from { l.b } else { l.a };
        let latency = l.latency_ms;
        self.frames += 1;
        if let Some(p) = &self.partition
            && p.get(from) != p.get(to)
        {
            self.frames_dropped += 1;
            return;
        }
        if self.chance(self.cfg.loss_ppm) {
            self.frames_dropped += 1;
            return;
        }
        let at = self.now_ms + latency;
        if self.chance(self.cfg.duplicate_ppm) {
            self.schedule(
                at + 1,
                Ev::Frame {
                    link,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
        self.schedule(at, Ev::Frame { link, to, bytes });
    }

    /// Live links per live peer (authenticated ones), for the link-cap figures.
    pub fn links_per_peer(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.overlay.linked_peers().count())
            .collect()
    }

    /// Bytes of overlay state per live peer, averaged (excluding queued network frames).
    pub fn overlay_bytes_per_peer(&self) -> usize {
        let total: usize = self
            .nodes
            .iter()
            .flatten()
            .map(|n| size_of::<Node>() + n.overlay.heap_bytes())
            .sum();
        total / self.live_count().max(1)
    }

    /// Add `n` peers, `joins_per_s` per virtual second.
    pub fn grow(&mut self, n: usize, joins_per_s: u64) {
        let gap_ms = (1000 / joins_per_s.max(1)).max(1);
        let per_tick = usize::try_from(joins_per_s.div_ceil(1000))
            .unwrap_or(1)
            .max(1);
        // Exactly the room needed: a doubling vector of nodes would count up to one spare node
        // (over a kilobyte each) per peer in the memory figures.
        self.nodes.reserve_exact(n);
        let mut added = 0;
        while added < n {
            for _ in 0..per_tick.min(n - added) {
                self.add_peer();
                added += 1;
            }
            self.run_for(gap_ms);
        }
    }

    /// Send `messages` routed messages from random live peers to random keys over `spread_ms`,
    /// then let them settle for `settle_ms`, and report where they went.
    pub fn route_random(
        &mut self,
        messages: usize,
        spread_ms: u64,
        settle_ms: u64,
    ) -> RoutingReport {
        self.clear_deliveries();
        let gap = spread_ms / messages.max(1) as u64;
        for _ in 0..messages {
            self.send_random(1);
            if gap > 0 {
                self.run_for(gap);
            }
        }
        self.run_for(settle_ms);
        self.routing_report()
    }

    /// Send `n` routed messages now, from random live peers to random keys.
    pub fn send_random(&mut self, n: usize) {
        if self.live_count() == 0 {
            return;
        }
        let live: Vec<usize> = self.live_slots().collect();
        for _ in 0..n {
            let from = live[usize::try_from(self.rand_below(live.len() as u64)).expect("fits")];
            let mut key = [0u8; 32];
            self.rng.fill_bytes(&mut key);
            let mut payload = b"sim-route".to_vec();
            payload.extend_from_slice(&self.sent.to_le_bytes());
            self.sent += 1;
            self.send(from, PeerId(key), payload);
        }
    }

    /// Where the messages sent since the last [`Sim::clear_deliveries`] went.
    pub fn routing_report(&self) -> RoutingReport {
        let mut seen = BTreeSet::new();
        let mut report = RoutingReport {
            sent: usize::try_from(self.sent - self.sent_at_clear).expect("fits"),
            frames: self.frames - self.frames_at_clear,
            ..RoutingReport::default()
        };
        for d in &self.deliveries {
            if !d.payload.starts_with(b"sim-route") || !seen.insert(d.payload.as_slice()) {
                continue;
            }
            report.delivered += 1;
            report.at_closest += usize::from(d.at_closest);
            report.hops.push(d.hops);
        }
        report.hops.sort_unstable();
        report
    }

    /// Replace `n` random live peers with newcomers (half leave gracefully, half silently).
    pub fn churn(&mut self, n: usize) {
        for _ in 0..n {
            let live: Vec<usize> = self.live_slots().collect();
            if live.len() <= 1 {
                break;
            }
            let victim = live[usize::try_from(self.rand_below(live.len() as u64)).expect("fits")];
            let graceful = self.rand_below(2) == 0;
            self.remove_peer(victim, graceful);
            self.add_peer();
        }
    }

    /// Transport links opened so far (bootstrap introductions and mesh-signalled links).
    pub fn links_opened(&self) -> u64 {
        self.links.opened()
    }

    /// `(events queued, event-queue capacity, simulated links)`: the simulator's own overhead.
    pub fn overhead(&self) -> (usize, usize, usize) {
        (self.queue.len(), self.queue.capacity(), self.links.len())
    }

    /// Frames waiting in the network.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
